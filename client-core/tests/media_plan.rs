//! The player's single entry point over every kind of fixture: [`Probe`] asks for byte ranges,
//! and settles on a [`MediaPlan`]; and raw MP3/ADTS detection.

mod media_support;

use client_core::media::{
    detect_raw_audio, MediaPlan, NativeElement, NativeReason, Probe, ProbeStep, RawAudioKind,
};
use media_support::{ffprobe, fixture, read};

/// Drives a probe over `file` as the player would, fetching whole pieces of `piece` bytes around
/// each range asked for (1: exactly the range); returns the plan and the bytes fetched.
fn probe_with(file: &[u8], supported: &dyn Fn(&str) -> bool, piece: u64) -> (MediaPlan, u64) {
    let mut probe = Probe::new(file.len() as u64);
    let mut fetched = 0;
    for _ in 0..20 {
        match probe.poll(supported) {
            ProbeStep::Ready(plan) => return (plan, fetched),
            ProbeStep::Need(range) => {
                assert!(
                    !range.is_empty() && range.end <= file.len() as u64,
                    "{range:?}"
                );
                let start = range.start / piece * piece;
                let end = (range.end.div_ceil(piece) * piece).min(file.len() as u64);
                fetched += end - start;
                probe.feed(start, &file[start as usize..end as usize]);
            }
        }
    }
    panic!("probe did not settle");
}

/// 16 KiB pieces.
fn probe(file: &[u8], supported: &dyn Fn(&str) -> bool) -> (MediaPlan, u64) {
    probe_with(file, supported, 16 << 10)
}

fn everything(_: &str) -> bool {
    true
}

/// Firefox: no MP3 in MediaSource.
fn firefox(mime: &str) -> bool {
    mime != "audio/mpeg"
}

#[test]
fn every_fixture_gets_the_right_plan() {
    for name in media_support::ALL {
        let file = read(name);
        let (plan, fetched) = probe(&file, &everything);
        let kind = match &plan {
            MediaPlan::Fmp4(_) => "fmp4",
            MediaPlan::WebM(_) => "webm",
            MediaPlan::Remux(_) => "remux",
            MediaPlan::RawAudio(_) => "raw",
            MediaPlan::NativeOnly { .. } => "native",
        };
        let expected = match *name {
            n if n.starts_with("fmp4") => "fmp4",
            n if n.ends_with(".webm") => "webm",
            n if n.starts_with("prog") => "remux",
            _ => "raw",
        };
        assert_eq!(kind, expected, "{name}: {plan:?}");
        assert!(plan.mime_type().is_some());
        // A pod's file needs only its first piece or two; moov at the end costs the tail.
        let limit = if *name == "prog_moov_end.mp4" {
            40_000
        } else {
            32_768
        };
        assert!(fetched <= limit, "{name}: fetched {fetched} bytes");
        let first = plan.ranges_before_first_append(file.len() as u64);
        assert!(!first.is_empty(), "{name}");
        assert!(first.iter().all(|r| r.end <= file.len() as u64));

        // Fed exactly the ranges asked for, the probe reaches the same plan.
        let (exact, fetched) = probe_with(&file, &everything, 1);
        assert_eq!(exact.mime_type(), plan.mime_type(), "{name}");
        assert_eq!(exact.index(), plan.index(), "{name}");
        assert!(fetched <= limit, "{name}: fetched {fetched} bytes");
    }
}

#[test]
fn pod_file_plan_lists_init_and_first_fragment() {
    let file = read("fmp4_h264_aac.mp4");
    let (plan, _) = probe(&file, &everything);
    let MediaPlan::Fmp4(layout) = &plan else {
        panic!("{plan:?}")
    };
    let first = plan.ranges_before_first_append(file.len() as u64);
    assert_eq!(first[0], layout.init_range);
    assert_eq!(first[1], plan.index().unwrap().fragments()[0].byte_range);
}

#[test]
fn unsupported_types_fall_back_to_native_elements() {
    // MP3 in Firefox: plain <audio>.
    let file = read("audio.mp3");
    let (plan, _) = probe(&file, &firefox);
    match plan {
        MediaPlan::NativeOnly {
            reason: NativeReason::TypeNotSupported { mime_type },
            element: NativeElement::Audio,
        } => assert_eq!(mime_type, "audio/mpeg"),
        other => panic!("{other:?}"),
    }
    // MP3 in Chromium: MediaSource.
    let (plan, _) = probe(&file, &everything);
    assert_eq!(plan.mime_type(), Some("audio/mpeg"));

    // A browser without VP9: the WebM goes to <video>, with the reason.
    let file = read("cues_front.webm");
    let (plan, _) = probe(&file, &|m: &str| !m.contains("vp9"));
    assert!(matches!(
        plan,
        MediaPlan::NativeOnly {
            reason: NativeReason::TypeNotSupported { .. },
            element: NativeElement::Video
        }
    ));

    // Not media at all.
    let (plan, _) = probe(
        b"%PDF-1.7 not a video at all, just some text to look at",
        &everything,
    );
    assert!(matches!(
        plan,
        MediaPlan::NativeOnly {
            reason: NativeReason::Unrecognised,
            ..
        }
    ));
    // Truncated: an MP4 that ends inside its moov.
    let file = read("prog_faststart.mp4");
    let (plan, _) = probe(&file[..2000], &everything);
    assert!(matches!(
        plan,
        MediaPlan::NativeOnly {
            reason: NativeReason::Unreadable(_),
            ..
        }
    ));
}

#[test]
fn raw_audio_detection() {
    let mp3 = read("audio.mp3");
    // ffmpeg writes an ID3v2 tag first.
    assert_eq!(&mp3[..3], b"ID3");
    let audio = detect_raw_audio(&mp3).unwrap().ready().unwrap();
    assert_eq!(audio.kind, RawAudioKind::Mp3);
    assert!(audio.data_start > 10);
    assert_eq!(mp3[audio.data_start as usize], 0xff);
    assert_eq!(audio.sample_rate, 48_000);
    assert_eq!(audio.channels, 1);
    assert_eq!(audio.mime_type(), "audio/mpeg");
    let probe = ffprobe(
        &fixture("audio.mp3"),
        &["-show_entries", "stream=sample_rate"],
    );
    assert_eq!(probe["streams"][0]["sample_rate"], "48000");

    let aac = read("audio.aac");
    let audio = detect_raw_audio(&aac).unwrap().ready().unwrap();
    assert_eq!(audio.kind, RawAudioKind::Adts);
    assert_eq!((audio.data_start, audio.sample_rate), (0, 48_000));
    assert_eq!(audio.mime_type(), "audio/aac");

    // Neither WebM nor the text of a README is audio.
    let webm = read("cues_front.webm");
    assert!(detect_raw_audio(&webm).is_err());
    assert!(detect_raw_audio(&[b'a'; 20_000]).is_err());
}

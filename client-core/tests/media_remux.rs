//! Progressive MP4 (moov at the end, and faststart) made by the real ffmpeg, remuxed into
//! fragmented MP4; ffprobe and ffmpeg must accept the result with every frame of the source.

mod media_support;

use client_core::media::{MoovLocator, MoovSearch, Remuxer};
use media_support::{decode_errors, fixture, read, scratch, streams_with_frame_counts};

/// Finds moov the way the player would: the first 4 KiB, then whatever the locator asks for.
fn locate(file: &[u8]) -> (std::ops::Range<u64>, bool, usize) {
    let mut locator = MoovLocator::new(file.len() as u64);
    let mut search = locator.feed(0, &file[..4096]).unwrap();
    let mut fetches = 0;
    loop {
        match search {
            MoovSearch::Found {
                moov,
                after_media_data,
            } => return (moov, after_media_data, fetches),
            MoovSearch::Need(range) => {
                fetches += 1;
                assert!(fetches < 5, "too many fetches");
                assert!(range.end <= file.len() as u64 && !range.is_empty());
                let bytes = &file[range.start as usize..range.end as usize];
                search = locator.feed(range.start, bytes).unwrap();
            }
        }
    }
}

/// Remuxes the whole file: init segment, then every fragment from the byte ranges its plan asks
/// for. Returns the remuxer and the output.
fn remux(file: &[u8], moov: std::ops::Range<u64>) -> (Remuxer, Vec<u8>) {
    let remuxer = Remuxer::from_moov(&file[moov.start as usize..moov.end as usize]).unwrap();
    let mut out = remuxer.init_segment().to_vec();
    for i in 0..remuxer.fragment_count() {
        let plan = remuxer.fragment_plan(i).unwrap();
        let fetched: Vec<&[u8]> = plan
            .fetch
            .iter()
            .map(|r| &file[r.start as usize..r.end as usize])
            .collect();
        let fragment = remuxer.build_fragment(i, &fetched).unwrap();
        assert_eq!(&fragment[4..8], b"moof");
        out.extend(fragment);
    }
    (remuxer, out)
}

fn check(name: &str, moov_at_end: bool) {
    let source = fixture(name);
    let file = read(name);
    let (moov, after_media_data, fetches) = locate(&file);
    assert_eq!(after_media_data, moov_at_end);
    // moov at the end costs exactly one fetch: the tail.
    assert_eq!(fetches, usize::from(moov_at_end));
    assert_eq!(
        &file[moov.start as usize + 4..moov.start as usize + 8],
        b"moov"
    );

    let (remuxer, out) = remux(&file, moov);
    assert_eq!(
        remuxer.mime_type(),
        "video/mp4; codecs=\"avc1.64000D,mp4a.40.2\""
    );
    assert!(remuxer.dropped_tracks().is_empty());

    // About 2 s per fragment, each starting at a keyframe; times contiguous.
    let index = remuxer.index();
    assert_eq!(index.len(), 3);
    assert_eq!(remuxer.fragment_count(), 3);
    for (i, f) in index.fragments().iter().enumerate() {
        assert!((f.start_time_s - 2.0 * i as f64).abs() < 1e-6, "{f:?}");
        assert!((f.duration_s - 2.0).abs() < 1e-6, "{f:?}");
    }
    assert_eq!(index.fragment_at(3.9), Some(1));

    // Our own parser sees a fragmented file (no sidx: fragments by scanning).
    let layout = client_core::media::Fmp4Layout::parse(&out)
        .unwrap()
        .ready()
        .unwrap();
    assert_eq!(layout.mime_type.as_deref(), Some(remuxer.mime_type()));
    let mut scanner = layout.scanner();
    let scanned = scanner
        .feed(&out[layout.first_fragment as usize..])
        .unwrap();
    assert_eq!(scanned.len(), 3);
    for (s, f) in scanned.iter().zip(index.fragments()) {
        // Decode times (the scanner) vs presentation times (the index): within the B-frame delay.
        assert!(
            (s.start_time_s - f.start_time_s).abs() < 0.1,
            "{s:?} vs {f:?}"
        );
    }

    // ffprobe counts the same frames in source and output; ffmpeg decodes the output cleanly.
    let path = scratch(&format!("remuxed-{name}"));
    std::fs::write(&path, &out).unwrap();
    let before = streams_with_frame_counts(&source);
    let after = streams_with_frame_counts(&path);
    assert_eq!(after.len(), 2);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a["codec_name"], b["codec_name"]);
        assert_eq!(a["profile"], b["profile"]);
        assert_eq!(
            a["nb_read_packets"], b["nb_read_packets"],
            "{name}: packet counts differ: {b} vs {a}"
        );
    }
    // Every video frame decodes. (Audio differs by one decoded frame: ffmpeg applies the edit
    // list's end trim to progressive files only; the packets are the same.)
    assert_eq!(after[0]["codec_type"], "video");
    assert_eq!(after[0]["nb_read_frames"], before[0]["nb_read_frames"]);
    assert_eq!(before[0]["nb_read_frames"], "150");
    let errors = decode_errors(&path);
    assert!(errors.is_empty(), "{name}: ffmpeg decode errors: {errors}");
    let _ = std::fs::remove_file(&path);

    // Fragments can be built in any order (a seek), and the same bytes give the same fragment.
    let plan = remuxer.fragment_plan(2).unwrap();
    let fetched: Vec<&[u8]> = plan
        .fetch
        .iter()
        .map(|r| &file[r.start as usize..r.end as usize])
        .collect();
    let again = remuxer.build_fragment(2, &fetched).unwrap();
    assert!(out.ends_with(&again));
    // Wrong bytes are refused, not trusted.
    assert!(remuxer.build_fragment(2, &fetched[1..]).is_err());
    assert!(remuxer.fragment_plan(3).is_none());
}

#[test]
fn moov_at_the_end() {
    check("prog_moov_end.mp4", true);
}

#[test]
fn faststart() {
    check("prog_faststart.mp4", false);
}

#[test]
fn audio_only() {
    let name = "prog_audio.m4a";
    let file = read(name);
    let (moov, after_media_data, _) = locate(&file);
    assert!(!after_media_data);
    let (remuxer, out) = remux(&file, moov);
    assert_eq!(remuxer.mime_type(), "audio/mp4; codecs=\"mp4a.40.2\"");
    let index = remuxer.index();
    assert!(index.len() >= 3, "{index:?}");
    assert!((index.end_time_s() - 6.0).abs() < 0.05);
    let path = scratch(&format!("remuxed-{name}"));
    std::fs::write(&path, &out).unwrap();
    let before = streams_with_frame_counts(&fixture(name));
    let after = streams_with_frame_counts(&path);
    assert_eq!(after[0]["nb_read_packets"], before[0]["nb_read_packets"]);
    let errors = decode_errors(&path);
    assert!(errors.is_empty(), "{name}: ffmpeg decode errors: {errors}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn fragmented_files_are_not_remuxed() {
    let file = read("fmp4_h264_aac.mp4");
    let (moov, _, _) = locate(&file);
    assert!(Remuxer::from_moov(&file[moov.start as usize..moov.end as usize]).is_err());
}

//! Fragmented MP4 as pods write it, made by the real ffmpeg: layout from a growing prefix, codecs
//! strings checked against ffprobe, the sidx index against the file and against a scan.

mod media_support;

use client_core::media::mp4box::Boxes;
use client_core::media::{Fmp4Layout, FragmentIndex, Progress};
use media_support::{ffprobe, fixture, read};

/// Parses `file` from prefixes growing in `step`-byte increments (or straight to what the
/// parser asks for), checking every answer moves forward; returns the layout and the prefix
/// length that produced it.
fn parse_growing(file: &[u8], step: usize) -> (Fmp4Layout, usize) {
    let mut len = 0;
    loop {
        match Fmp4Layout::parse(&file[..len]).expect("parse") {
            Progress::Ready(layout) => return (layout, len),
            Progress::NeedMore { until } => {
                assert!(
                    until as usize > len,
                    "NeedMore must ask for more than it has"
                );
                assert!(until as usize <= file.len(), "asks past the end: {until}");
                len = if step == 0 {
                    until as usize
                } else {
                    (len + step).min(file.len())
                };
            }
        }
    }
}

fn assert_contiguous(index: &FragmentIndex) {
    for pair in index.fragments().windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            (a.end_time_s() - b.start_time_s).abs() < 1e-9,
            "times not contiguous: {a:?} then {b:?}"
        );
        assert_eq!(a.byte_range.end, b.byte_range.start, "bytes not contiguous");
        assert!(a.duration_s > 0.0);
    }
}

/// ffprobe's profile name → H.264 profile_idc, and whether constraint_set1 must be set.
fn h264_profile(name: &str) -> (u8, bool) {
    match name {
        "Constrained Baseline" => (66, true),
        "Baseline" => (66, false),
        "Main" => (77, false),
        "High" => (100, false),
        other => panic!("unexpected H.264 profile {other}"),
    }
}

type CodecCheck = Box<dyn Fn(&str) -> bool>;

/// The codecs strings ffprobe's view of the file implies (RFC 6381), where ffprobe says enough;
/// `None` entries are checked by shape only.
fn expected_codecs(path: &std::path::Path) -> Vec<CodecCheck> {
    let probe = ffprobe(
        path,
        &[
            "-show_entries",
            "stream=codec_name,codec_type,profile,level",
        ],
    );
    let mut video = Vec::new();
    let mut audio = Vec::new();
    for s in probe["streams"].as_array().unwrap() {
        let codec = s["codec_name"].as_str().unwrap().to_string();
        let profile = s["profile"].as_str().unwrap_or("").to_string();
        let level = s["level"].as_i64().unwrap_or(-99);
        let check: CodecCheck = match codec.as_str() {
            "h264" => {
                let (idc, constrained) = h264_profile(&profile);
                Box::new(move |c: &str| {
                    let hex = c.strip_prefix("avc1.").unwrap_or("");
                    let bytes = u32::from_str_radix(hex, 16).unwrap_or(u32::MAX);
                    hex.len() == 6
                        && (bytes >> 16) as u8 == idc
                        && (bytes & 0xff) as i64 == level
                        && ((bytes >> 8) & 0x40 != 0) == constrained
                })
            }
            "aac" => {
                assert_eq!(profile, "LC");
                Box::new(|c: &str| c == "mp4a.40.2")
            }
            "opus" => Box::new(|c: &str| c == "opus"),
            "vp9" => {
                assert_eq!(profile, "Profile 0");
                Box::new(|c: &str| {
                    let parts: Vec<&str> = c.split('.').collect();
                    parts.len() == 4
                        && parts[0] == "vp09"
                        && parts[1] == "00"
                        && parts[2].parse::<u8>().is_ok()
                        && parts[3] == "08"
                })
            }
            "av1" => {
                assert_eq!(profile, "Main");
                Box::new(move |c: &str| c == format!("av01.0.{level:02}M.08"))
            }
            other => panic!("unexpected codec {other}"),
        };
        if s["codec_type"] == "video" {
            video.push(check);
        } else {
            audio.push(check);
        }
    }
    video.extend(audio);
    video
}

/// Top-level box types and ranges.
fn top_level(file: &[u8]) -> Vec<(String, std::ops::Range<u64>)> {
    Boxes::new(file, 0)
        .map(|b| {
            let b = b.expect("top-level box");
            (b.kind.to_string(), b.offset..b.offset + b.raw.len() as u64)
        })
        .collect()
}

/// Everything a pod-made file must satisfy.
fn check_pod_file(name: &str, mime: &str, sidx_count: usize) {
    let path = fixture(name);
    let file = read(name);
    let boxes = top_level(&file);

    // Small steps, and straight to what is asked: the same layout, and no more bytes than the
    // first moof's header.
    let (layout, used) = parse_growing(&file, 0);
    let (stepped, _) = parse_growing(&file, 37);
    assert_eq!(layout, stepped);
    assert_eq!(
        Fmp4Layout::parse(&file).unwrap(),
        Progress::Ready(layout.clone())
    );
    let first_moof = boxes.iter().find(|(k, _)| k == "moof").unwrap().1.start;
    assert_eq!(layout.first_fragment, first_moof);
    assert!(used as u64 <= first_moof + 16, "{name}: used {used} bytes");

    // Init segment: ftyp + moov.
    let moov = boxes.iter().find(|(k, _)| k == "moov").unwrap().1.clone();
    assert_eq!(layout.init_range, 0..moov.end);

    // Codecs, as ffprobe sees them.
    let checks = expected_codecs(&path);
    assert_eq!(
        layout.codecs.len(),
        checks.len(),
        "{name}: {:?}",
        layout.codecs
    );
    for (codec, check) in layout.codecs.iter().zip(&checks) {
        assert!(
            check(codec),
            "{name}: codecs string {codec} does not match ffprobe"
        );
    }
    let expected_mime = format!("{mime}; codecs=\"{}\"", layout.codecs.join(","));
    assert_eq!(layout.mime_type.as_deref(), Some(expected_mime.as_str()));

    // The sidx boxes sit between the init segment and the first fragment.
    let sidxs: Vec<_> = boxes.iter().filter(|(k, _)| k == "sidx").collect();
    assert_eq!(sidxs.len(), sidx_count, "{name}: sidx boxes");
    assert_eq!(
        layout.index_range,
        Some(sidxs[0].1.start..sidxs.last().unwrap().1.end)
    );

    // The index tiles the fragments: from the first moof to the last mdat (then only mfra).
    let index = layout.index.as_ref().expect("index from sidx");
    assert_contiguous(index);
    let fragments = index.fragments();
    assert_eq!(fragments[0].byte_range.start, first_moof);
    let last_mdat = boxes.iter().rev().find(|(k, _)| k == "mdat").unwrap().1.end;
    assert_eq!(fragments.last().unwrap().byte_range.end, last_mdat);
    assert!(boxes
        .iter()
        .filter(|(_, r)| r.start >= last_mdat)
        .all(|(k, _)| k == "mfra"));
    // Every fragment starts with a moof.
    for f in fragments {
        let kind = &file[f.byte_range.start as usize + 4..f.byte_range.start as usize + 8];
        assert_eq!(kind, b"moof");
    }
    assert!(fragments[0].start_time_s.abs() < 0.1);

    // Duration agrees with ffprobe's duration of the indexed (first) stream.
    let probe = ffprobe(&path, &["-show_entries", "stream=duration"]);
    let duration: f64 = probe["streams"][0]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let ours = layout.duration_s.unwrap();
    assert!(
        (ours - duration).abs() < 0.05,
        "{name}: {ours} vs ffprobe {duration}"
    );
    assert!((index.end_time_s() - ours).abs() < 1e-9);

    // Seeking lands in the fragment holding the time.
    for t in [0.0, 1.0, 2.5, duration - 0.01] {
        let i = index.fragment_at(t).unwrap();
        let f = &fragments[i];
        assert!(
            f.start_time_s <= t + 1e-9 && t < f.end_time_s(),
            "{name}: {t} in {f:?}"
        );
    }
    assert_eq!(index.fragment_at(duration + 1.0), None);
    let piece = fragments[1].byte_range.start - 10..fragments[1].byte_range.start + 10;
    assert_eq!(index.fragments_in(piece).collect::<Vec<_>>(), [0, 1]);

    // Scanning the whole file finds the same fragments at the same byte ranges.
    let mut scanner = client_core::media::FragmentScanner::new(0, &layout.tracks);
    let mut scanned = Vec::new();
    for chunk in file.chunks(1000) {
        scanned.extend(scanner.feed(chunk).unwrap());
    }
    let ranges = |v: &[client_core::media::Fragment]| {
        v.iter().map(|f| f.byte_range.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ranges(&scanned), ranges(fragments), "{name}: scan vs sidx");
    for (s, f) in scanned.iter().zip(fragments) {
        assert!(
            (s.start_time_s - f.start_time_s).abs() < 0.1,
            "{s:?} vs {f:?}"
        );
    }
}

#[test]
fn pod_h264_aac_with_one_sidx_per_track() {
    check_pod_file("fmp4_h264_aac.mp4", "video/mp4", 2);
    let layout = Fmp4Layout::parse(&read("fmp4_h264_aac.mp4"))
        .unwrap()
        .ready()
        .unwrap();
    let index = layout.index.unwrap();
    // A keyframe every 2 s in a 6 s clip: three fragments.
    assert_eq!(index.len(), 3);
    assert_eq!(index.fragments()[1].start_time_s, 2.0);
    assert_eq!(layout.timescale, 12_800);
}

#[test]
fn pod_h264_baseline_video_only() {
    check_pod_file("fmp4_baseline.mp4", "video/mp4", 1);
    let layout = Fmp4Layout::parse(&read("fmp4_baseline.mp4"))
        .unwrap()
        .ready()
        .unwrap();
    assert_eq!(layout.codecs, ["avc1.42C01E"]);
}

#[test]
fn pod_vp9_opus_in_mp4() {
    check_pod_file("fmp4_vp9_opus.mp4", "video/mp4", 2);
}

#[test]
fn pod_av1_in_mp4() {
    check_pod_file("fmp4_av1.mp4", "video/mp4", 1);
}

#[test]
fn pod_aac_audio_only() {
    check_pod_file("fmp4_aac.mp4", "audio/mp4", 1);
    let layout = Fmp4Layout::parse(&read("fmp4_aac.mp4"))
        .unwrap()
        .ready()
        .unwrap();
    assert_eq!(
        layout.mime_type.as_deref(),
        Some("audio/mp4; codecs=\"mp4a.40.2\"")
    );
}

#[test]
fn without_sidx_the_scanner_finds_fragments_as_bytes_arrive() {
    let name = "fmp4_no_sidx.mp4";
    let file = read(name);
    let (layout, _) = parse_growing(&file, 0);
    assert_eq!(layout.index, None);
    assert_eq!(layout.index_range, None);
    assert_eq!(
        layout.mime_type.as_deref(),
        Some("video/mp4; codecs=\"avc1.64000D,mp4a.40.2\"")
    );

    // Fed from the first moof in uneven chunks, the scanner reports each moof+mdat once complete.
    let mut scanner = layout.scanner();
    let mut fragments = Vec::new();
    let mut pos = layout.first_fragment as usize;
    let mut sizes = [1usize, 7, 300, 4096, 13].iter().cycle();
    while pos < file.len() {
        let end = (pos + sizes.next().unwrap()).min(file.len());
        for f in scanner.feed(&file[pos..end]).unwrap() {
            assert!(
                f.byte_range.end <= end as u64,
                "reported before its last byte"
            );
            fragments.push(f);
        }
        pos = end;
    }
    assert_eq!(scanner.position(), file.len() as u64);
    assert_eq!(fragments.len(), 3);
    assert_eq!(fragments[0].byte_range.start, layout.first_fragment);
    for pair in fragments.windows(2) {
        assert_eq!(pair[0].byte_range.end, pair[1].byte_range.start);
        assert!((pair[0].end_time_s() - pair[1].start_time_s).abs() < 1e-6);
    }
    let total: f64 = fragments.iter().map(|f| f.duration_s).sum();
    assert!((total - 6.0).abs() < 0.05, "total {total}");
}

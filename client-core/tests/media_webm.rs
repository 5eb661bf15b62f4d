//! WebM made by the real ffmpeg: cues at the front (what pods write) and at the end (foreign
//! files), against a cluster scan and ffprobe.

mod media_support;

use client_core::media::{ClusterScanner, Progress, WebmLayout};
use media_support::{ffprobe, fixture, read};

fn parse_growing(file: &[u8]) -> (WebmLayout, usize) {
    let mut len = 0;
    let mut steps = 0;
    loop {
        match WebmLayout::parse(&file[..len]).expect("parse") {
            Progress::Ready(layout) => return (layout, len),
            Progress::NeedMore { until } => {
                assert!(until as usize > len && until as usize <= file.len());
                // Alternate between exactly what is asked and small steps.
                steps += 1;
                len = if steps % 2 == 0 {
                    until as usize
                } else {
                    (len + 11).min(until as usize)
                };
            }
        }
    }
}

/// All clusters, by scanning from byte 0 in uneven chunks.
fn scan(file: &[u8], timecode_scale_ns: u64) -> Vec<client_core::media::ScannedCluster> {
    let mut scanner = ClusterScanner::new(0, timecode_scale_ns);
    let mut clusters = Vec::new();
    let mut pos = 0;
    let mut sizes = [3usize, 500, 1, 8192].iter().cycle();
    while pos < file.len() {
        let end = (pos + sizes.next().unwrap()).min(file.len());
        clusters.extend(scanner.feed(&file[pos..end]).unwrap());
        pos = end;
    }
    assert_eq!(scanner.finish().unwrap(), None, "all clusters are sized");
    clusters
}

fn ffprobe_duration(name: &str) -> f64 {
    let probe = ffprobe(&fixture(name), &["-show_entries", "format=duration"]);
    probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn vp9_opus_with_cues_in_front() {
    let name = "cues_front.webm";
    let file = read(name);
    let (layout, used) = parse_growing(&file);
    assert_eq!(
        WebmLayout::parse(&file).unwrap(),
        Progress::Ready(layout.clone())
    );
    assert!(used as u64 <= layout.first_cluster + 12);
    assert_eq!(layout.doc_type, "webm");
    assert_eq!(layout.codecs, ["vp9", "opus"]);
    assert_eq!(
        layout.mime_type.as_deref(),
        Some("video/webm; codecs=\"vp9,opus\"")
    );
    assert_eq!(layout.init_range, 0..layout.first_cluster);
    assert_eq!(
        &file[layout.first_cluster as usize..][..4],
        [0x1F, 0x43, 0xB6, 0x75]
    );
    assert_eq!(layout.cues_offset, None);
    let duration = layout.duration_s.unwrap();
    assert!((duration - ffprobe_duration(name)).abs() < 0.01);

    // The index tiles the clusters from the first to the end of the file.
    let index = layout.index.as_ref().expect("cues in front");
    assert_eq!(index.len(), 3);
    let fragments = index.fragments();
    assert_eq!(fragments[0].byte_range.start, layout.first_cluster);
    assert_eq!(fragments.last().unwrap().byte_range.end, file.len() as u64);
    for pair in fragments.windows(2) {
        assert_eq!(pair[0].byte_range.end, pair[1].byte_range.start);
        assert!((pair[0].end_time_s() - pair[1].start_time_s).abs() < 1e-9);
    }
    assert!((index.end_time_s() - duration).abs() < 1e-9);
    assert!(fragments[0].start_time_s < 0.05);
    assert_eq!(index.fragment_at(2.5), Some(1));

    // A scan finds clusters starting exactly where the cues say.
    let clusters = scan(&file, layout.timecode_scale_ns);
    let starts: Vec<u64> = clusters.iter().map(|c| c.byte_range.start).collect();
    for f in fragments {
        assert!(
            starts.contains(&f.byte_range.start),
            "{f:?} not at a cluster"
        );
    }
    assert_eq!(clusters.last().unwrap().byte_range.end, file.len() as u64);
    for pair in clusters.windows(2) {
        assert_eq!(pair[0].byte_range.end, pair[1].byte_range.start);
        assert!(pair[0].time_s < pair[1].time_s);
    }
}

#[test]
fn vp8_vorbis_with_cues_at_the_end() {
    let name = "vp8_vorbis.webm";
    let file = read(name);
    let (layout, _) = parse_growing(&file);
    assert_eq!(
        layout.mime_type.as_deref(),
        Some("video/webm; codecs=\"vp8,vorbis\"")
    );
    assert_eq!(layout.index, None);
    let cues = layout.cues_offset.expect("SeekHead points at the Cues");
    assert_eq!(&file[cues as usize..][..4], [0x1C, 0x53, 0xBB, 0x6B]);

    // The player fetches the tail from cues_offset, growing until the Cues are whole.
    let tail = &file[cues as usize..];
    assert!(matches!(
        layout.parse_cues(&tail[..3]).unwrap(),
        Progress::NeedMore { until } if until > cues + 3
    ));
    let index = layout.parse_cues(tail).unwrap().ready().unwrap();
    assert_eq!(index.len(), 3);
    let fragments = index.fragments();
    assert_eq!(fragments[0].byte_range.start, layout.first_cluster);
    assert_eq!(fragments.last().unwrap().byte_range.end, cues);
    for pair in fragments.windows(2) {
        assert_eq!(pair[0].byte_range.end, pair[1].byte_range.start);
    }
    assert!((index.end_time_s() - ffprobe_duration(name)).abs() < 0.01);

    // Without the cues, the scanner finds the same clusters as bytes arrive.
    let clusters = scan(&file, layout.timecode_scale_ns);
    let ranges: Vec<_> = clusters.iter().map(|c| c.byte_range.clone()).collect();
    let expected: Vec<_> = fragments.iter().map(|f| f.byte_range.clone()).collect();
    assert_eq!(ranges, expected);
    for (c, f) in clusters.iter().zip(fragments) {
        assert!((c.time_s - f.start_time_s).abs() < 0.05, "{c:?} vs {f:?}");
    }
}

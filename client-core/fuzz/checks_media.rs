//! Properties of the media parsers that must hold for every input, shared by the fuzz target
//! (fuzz_targets/media.rs) and the stable replay test (../tests/media_replay.rs).
//!
//! Beyond "never panics": prefix parsing is monotone (a prefix that parses, or fails, gives the
//! whole file's answer; one that needs more asks for more than it has), scanners give the same
//! fragments however the bytes are chunked, indexes are contiguous in time, and whatever the
//! remuxer builds is well-formed fragmented MP4 our own parsers accept.
#![allow(dead_code)] // each user takes what it needs

use client_core::media::mp4box::Boxes;
use client_core::media::{
    detect_raw_audio, ClusterScanner, Fmp4Layout, Fragment, FragmentIndex, FragmentScanner,
    MediaError, MediaPlan, MoovLocator, MoovSearch, Probe, ProbeStep, Progress, Remuxer,
    ScannedCluster, Track, WebmLayout,
};

/// Every parser over `data` taken as a whole file.
pub fn media(data: &[u8]) {
    fmp4(data);
    webm(data);
    raw_audio(data);
    remux(data);
    probe(data);
}

/// Prefix lengths to compare with the whole.
fn cuts(len: usize) -> [usize; 4] {
    [0, len / 3, len / 2, len.saturating_sub(1)]
}

/// Chunkings to compare: whole, and small uneven pieces.
const CHUNKINGS: [&[usize]; 2] = [&[usize::MAX], &[1, 7, 64, 3, 1000]];

fn chunks<'a>(data: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = data;
    let mut sizes = sizes.iter().cycle();
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = (*sizes.next()?).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

/// Time-contiguous, finite, and (if `tiles`) byte ranges end to end.
pub fn check_index(index: &FragmentIndex, tiles: bool) {
    for f in index.fragments() {
        assert!(
            f.start_time_s.is_finite() && f.duration_s.is_finite(),
            "{f:?}"
        );
        assert!(f.duration_s >= 0.0, "{f:?}");
        assert!(f.byte_range.start <= f.byte_range.end, "{f:?}");
    }
    for pair in index.fragments().windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let tolerance = 1e-9 * b.start_time_s.abs().max(1.0);
        assert!(
            (a.end_time_s() - b.start_time_s).abs() <= tolerance,
            "{a:?} then {b:?}"
        );
        if tiles {
            assert_eq!(a.byte_range.end, b.byte_range.start, "{a:?} then {b:?}");
        }
    }
    for (i, f) in index.fragments().iter().enumerate() {
        let middle = f.start_time_s + f.duration_s / 2.0;
        if middle > f.start_time_s && middle < f.end_time_s() {
            assert_eq!(index.fragment_at(middle), Some(i), "{f:?}");
        }
    }
}

/// Everything a scanner reports for `data` in the given chunking, and its final error.
fn scan_fmp4(
    data: &[u8],
    tracks: &[Track],
    sizes: &[usize],
) -> (Vec<Fragment>, Option<MediaError>) {
    let mut scanner = FragmentScanner::new(0, tracks);
    let mut found = Vec::new();
    for chunk in chunks(data, sizes) {
        match scanner.feed(chunk) {
            Ok(fragments) => found.extend(fragments),
            Err(err) => return (found, Some(err)),
        }
    }
    let end = scanner.feed(&[]).err();
    (found, end)
}

pub fn fmp4(data: &[u8]) {
    let whole = Fmp4Layout::parse(data);
    for cut in cuts(data.len()) {
        match Fmp4Layout::parse(&data[..cut]) {
            Ok(Progress::NeedMore { until }) => assert!(until > cut as u64),
            other => assert_eq!(other, whole, "prefix of {cut} bytes disagrees"),
        }
    }
    let mut tracks = Vec::new();
    if let Ok(Progress::Ready(layout)) = &whole {
        assert!(layout.init_range.end <= data.len() as u64);
        assert!(layout.first_fragment >= layout.init_range.end);
        if let Some(index) = &layout.index {
            check_index(index, true);
        }
        tracks = layout.tracks.clone();
    }
    let results: Vec<_> = CHUNKINGS
        .iter()
        .map(|sizes| scan_fmp4(data, &tracks, sizes))
        .collect();
    assert_eq!(results[0], results[1], "fMP4 scan depends on chunking");
    for pair in results[0].0.windows(2) {
        assert!(pair[0].byte_range.end <= pair[1].byte_range.start);
    }
}

fn scan_webm(data: &[u8], sizes: &[usize]) -> (Vec<ScannedCluster>, Option<MediaError>) {
    let mut scanner = ClusterScanner::new(0, 1_000_000);
    let mut found = Vec::new();
    for chunk in chunks(data, sizes) {
        match scanner.feed(chunk) {
            Ok(clusters) => found.extend(clusters),
            Err(err) => return (found, Some(err)),
        }
    }
    if let Err(err) = scanner.feed(&[]) {
        return (found, Some(err));
    }
    match scanner.finish() {
        Ok(last) => found.extend(last),
        Err(err) => return (found, Some(err)),
    }
    (found, None)
}

pub fn webm(data: &[u8]) {
    let whole = WebmLayout::parse(data);
    for cut in cuts(data.len()) {
        match WebmLayout::parse(&data[..cut]) {
            Ok(Progress::NeedMore { until }) => assert!(until > cut as u64),
            other => assert_eq!(other, whole, "prefix of {cut} bytes disagrees"),
        }
    }
    if let Ok(Progress::Ready(layout)) = &whole {
        assert!(layout.init_range.end <= data.len() as u64);
        if let Some(index) = &layout.index {
            check_index(index, true);
        }
        if let Some(offset) = layout.cues_offset {
            if let Some(tail) = data.get(offset as usize..) {
                if let Ok(Progress::Ready(index)) = layout.parse_cues(tail) {
                    check_index(&index, true);
                }
            }
        }
    }
    let a = scan_webm(data, CHUNKINGS[0]);
    let b = scan_webm(data, CHUNKINGS[1]);
    assert_eq!(a, b, "WebM scan depends on chunking");
}

pub fn raw_audio(data: &[u8]) {
    let whole = detect_raw_audio(data);
    for cut in cuts(data.len()) {
        match detect_raw_audio(&data[..cut]) {
            Ok(Progress::NeedMore { until }) => assert!(until > cut as u64),
            other => assert_eq!(other, whole, "prefix of {cut} bytes disagrees"),
        }
    }
    if let Ok(Progress::Ready(audio)) = whole {
        assert!(audio.data_start < data.len() as u64);
    }
}

pub fn remux(data: &[u8]) {
    let mut locator = MoovLocator::new(data.len() as u64);
    let Ok(MoovSearch::Found { moov, .. }) = locator.feed(0, data) else {
        return;
    };
    let Some(moov) = data.get(moov.start as usize..moov.end as usize) else {
        return;
    };
    let Ok(remuxer) = Remuxer::from_moov(moov) else {
        return;
    };
    // The init segment is a fragmented MP4 head our own parser accepts.
    let init = remuxer.init_segment();
    assert!(
        matches!(Fmp4Layout::parse(init), Ok(Progress::NeedMore { .. })),
        "init segment does not parse: {:?}",
        Fmp4Layout::parse(init)
    );
    let tracks = match Fmp4Layout::parse(&[init, &[0, 0, 0, 8, b'm', b'o', b'o', b'f']].concat()) {
        Ok(Progress::Ready(layout)) => layout.tracks,
        other => panic!("init + moof header: {other:?}"),
    };
    check_index(remuxer.index(), false);
    assert_eq!(remuxer.index().len(), remuxer.fragment_count());
    for i in 0..remuxer.fragment_count().min(8) {
        let plan = remuxer
            .fragment_plan(i)
            .expect("plan for an existing fragment");
        let fetched: Option<Vec<&[u8]>> = plan
            .fetch
            .iter()
            .map(|r| data.get(r.start as usize..r.end as usize))
            .collect();
        let Some(fetched) = fetched else {
            continue; // samples past the end of this (truncated) file
        };
        let fragment = remuxer
            .build_fragment(i, &fetched)
            .expect("fetched what the plan asked for");
        let boxes: Vec<_> = Boxes::new(&fragment, 0)
            .collect::<Result<_, _>>()
            .expect("fragment is well-formed boxes");
        assert_eq!(boxes.len(), 2);
        assert_eq!(&boxes[0].kind.0, b"moof");
        assert_eq!(&boxes[1].kind.0, b"mdat");
        let (scanned, err) = scan_fmp4(&fragment, &tracks, &[usize::MAX]);
        assert_eq!(err, None);
        assert_eq!(scanned.len(), 1);
    }
}

/// A probe driven over `data` as the file settles, when fed the way the player feeds it: whole
/// 16 KiB pieces around each range it asks for.
pub fn probe(data: &[u8]) {
    const PIECE: u64 = 16 << 10;
    let len = data.len() as u64;
    let mut probe = Probe::new(len);
    // Every answer gains at least a piece of the file (or the probe gives up).
    for _ in 0..len / PIECE + 8 {
        match probe.poll(&|_| true) {
            ProbeStep::Ready(plan) => {
                for r in plan.ranges_before_first_append(len) {
                    assert!(r.start < r.end && r.end <= len);
                }
                if let MediaPlan::Fmp4(layout) = &plan {
                    assert!(layout.mime_type.is_some());
                }
                return;
            }
            ProbeStep::Need(range) => {
                assert!(range.start < range.end && range.end <= len, "{range:?}");
                let start = range.start / PIECE * PIECE;
                let end = range.end.div_ceil(PIECE).saturating_mul(PIECE).min(len);
                probe.feed(start, &data[start as usize..end as usize]);
            }
        }
    }
    panic!("probe did not settle");
}

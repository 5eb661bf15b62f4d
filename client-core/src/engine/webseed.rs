//! WebSeeds (BEP 19 `url-list`) as a source of pieces: which HTTP range requests fetch a piece,
//! and the per-seed bookkeeping (fetches in flight, rate, back-off, strikes).
//!
//! One fetch = all the not-yet-received bytes of one piece, as WebTorrent does (§4.2): a
//! contiguous range from the first missing block to the end of the piece. A fetch becomes one
//! HTTP request per file it overlaps (multi-file torrents); the engine reassembles the bodies in
//! file order. URL rules, exactly as WebTorrent (protocol §4.2):
//! - one file (`files.len() <= 1`, which includes a multi-file torrent holding a single file):
//!   the URL verbatim, **even when it ends in `/`** (WebTorrent's quirk, webtorrent#1848);
//! - several files: `url` + `/` (unless it already ends with one) + `name/path/components`,
//!   not percent-encoded (the edge's URL parser encodes what it must).

use std::ops::Range;

use super::stats::Rate;
use super::{Millis, WebSeedPart};
use crate::metainfo::Info;

/// One HTTP request of a WebSeed fetch: `GET url` with `Range: bytes=start-end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeRequest {
    pub url: String,
    /// First byte, within the file the URL names.
    pub start: u64,
    /// Last byte, inclusive (as the `Range` header spells it).
    pub end: u64,
}

impl RangeRequest {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Range` header value.
    pub fn range_header(&self) -> String {
        format!("bytes={}-{}", self.start, self.end)
    }
}

/// The requests that fetch `range` (bytes of the concatenated files) from the WebSeed at
/// `base_url`, in file order. Empty for an empty range.
pub fn requests_for_range(info: &Info, base_url: &str, range: Range<u64>) -> Vec<RangeRequest> {
    let end = range.end.min(info.total_length);
    if range.start >= end {
        return Vec::new();
    }
    if info.files.len() <= 1 {
        return vec![RangeRequest {
            url: base_url.to_owned(),
            start: range.start,
            end: end - 1,
        }];
    }
    info.file_slices(range.start..end)
        .filter_map(|(file, offset, len)| {
            let path = info.display_path(file)?;
            let sep = if base_url.ends_with('/') { "" } else { "/" };
            Some(RangeRequest {
                url: format!("{base_url}{sep}{path}"),
                start: offset,
                end: offset + len - 1,
            })
        })
        .collect()
}

/// One part of a request's body ([`WebSeedPart`]), and its bytes once they came.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub id: u64,
    pub len: u64,
    pub body: Option<Vec<u8>>,
}

impl Part {
    pub fn new(part: WebSeedPart) -> Self {
        Self {
            id: part.id,
            len: part.len,
            body: None,
        }
    }
}

/// A piece (or its tail) being fetched from one WebSeed.
///
/// Usually one request per fetch, of one part. Two exceptions: a piece across files needs
/// one request per file (parts of one fetch, in file order), and a span carries several whole
/// pieces in one request (one fetch each, sharing `request`).
#[derive(Debug, Clone)]
pub(crate) struct Fetch {
    pub piece: u32,
    /// Offset of the fetched bytes within the piece (block aligned).
    pub begin: u32,
    pub len: u32,
    pub parts: Vec<Part>,
    pub sent_at: Millis,
    /// The HTTP request it rides in (the id of that request's first part).
    pub request: u64,
    /// Bytes of its request's body that come before its own (0 unless in a span).
    pub ahead: u64,
}

impl Fetch {
    pub fn is_complete(&self) -> bool {
        self.parts.iter().all(|p| p.body.is_some())
    }

    /// The bodies concatenated in file order (call once complete).
    pub fn assemble(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len as usize);
        for part in &mut self.parts {
            if let Some(body) = part.body.take() {
                out.extend_from_slice(&body);
            }
        }
        out
    }
}

/// A WebSeed and what we are fetching from it.
#[derive(Debug, Clone)]
pub(crate) struct WebSeed {
    pub url: String,
    pub fetches: Vec<Fetch>,
    pub rate: Rate,
    /// Smoothed time from request to complete response, in ms.
    pub latency_ms: u64,
    /// No new fetches before this (after an HTTP error).
    pub backoff_until: Millis,
    pub consecutive_errors: u32,
    /// Pieces that failed their hash with this seed as a contributor.
    pub strikes: u32,
    pub disabled: bool,
    /// Useful bytes received.
    pub downloaded: u64,
}

impl WebSeed {
    pub fn new(url: String) -> Self {
        Self {
            url,
            fetches: Vec::new(),
            rate: Rate::new(),
            latency_ms: 150,
            backoff_until: Millis(0),
            consecutive_errors: 0,
            strikes: 0,
            disabled: false,
            downloaded: 0,
        }
    }

    pub fn usable(&self, now: Millis) -> bool {
        !self.disabled && now >= self.backoff_until
    }

    pub fn fetching(&self, piece: u32) -> bool {
        self.fetches.iter().any(|f| f.piece == piece)
    }

    /// HTTP requests in flight (pieces in a span share one).
    pub fn requests_in_flight(&self) -> usize {
        let mut requests: Vec<u64> = self.fetches.iter().map(|f| f.request).collect();
        requests.sort_unstable();
        requests.dedup();
        requests.len()
    }

    pub fn inflight_bytes(&self) -> u64 {
        self.fetches.iter().map(|f| u64::from(f.len)).sum()
    }

    /// Expected arrival of `bytes` requested now: queue ahead plus the new bytes at the measured
    /// (or initial) rate, plus a request's latency.
    pub fn eta(&self, bytes: u64, now: Millis, initial_rate: u64) -> Millis {
        let measured = self.rate.per_sec(now);
        let rate = if measured > 0 {
            measured.max(initial_rate / 4)
        } else {
            initial_rate
        }
        .max(1);
        let transfer = (self.inflight_bytes() + bytes).saturating_mul(1000) / rate;
        Millis(now.0 + self.latency_ms / 2 + transfer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::TorrentBuilder;

    fn multi(name: &str, files: &[(&[&str], u64)], piece: u32) -> Info {
        let files = files
            .iter()
            .map(|(p, len)| (p.iter().map(|s| s.to_string()).collect(), *len));
        let mut b = TorrentBuilder::multi_file(name, files, Some(piece)).unwrap();
        let total = b.total_length();
        b.update(&vec![0u8; total as usize]);
        b.finish().unwrap().info
    }

    #[test]
    fn single_file_uses_url_verbatim_even_with_trailing_slash() {
        let mut b = TorrentBuilder::single_file("movie.mp4", 100_000, Some(16384)).unwrap();
        b.update(&[0; 100_000]);
        let info = b.finish().unwrap().info;
        let reqs = requests_for_range(&info, "https://pod.example/ws/", 16384..32768);
        assert_eq!(
            reqs,
            vec![RangeRequest {
                url: "https://pod.example/ws/".into(),
                start: 16384,
                end: 32767
            }]
        );
        assert_eq!(reqs[0].range_header(), "bytes=16384-32767");
    }

    #[test]
    fn one_file_multi_file_torrent_is_treated_as_single_file() {
        let info = multi("folder", &[(&["file.txt"], 15)], 16384);
        assert!(!info.single_file);
        let reqs = requests_for_range(&info, "http://h/folder/", 0..15);
        assert_eq!(reqs[0].url, "http://h/folder/");
        assert_eq!((reqs[0].start, reqs[0].end), (0, 14));
    }

    #[test]
    fn multi_file_appends_name_and_path_per_file() {
        let info = multi(
            "Sintel",
            &[
                (&["a.srt"], 1000),
                (&["empty"], 0),
                (&["sub dir", "b.mp4"], 50_000),
            ],
            32768,
        );
        let reqs = requests_for_range(&info, "https://w/torrents", 0..32768);
        assert_eq!(
            reqs,
            vec![
                RangeRequest {
                    url: "https://w/torrents/Sintel/a.srt".into(),
                    start: 0,
                    end: 999
                },
                RangeRequest {
                    url: "https://w/torrents/Sintel/sub dir/b.mp4".into(),
                    start: 0,
                    end: 31767
                },
            ]
        );
        let reqs = requests_for_range(&info, "https://w/torrents/", 32768..51000);
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].url, "https://w/torrents/Sintel/sub dir/b.mp4");
        assert_eq!((reqs[0].start, reqs[0].end), (31768, 49999));
    }
}

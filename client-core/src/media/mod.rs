//! Media containers for MediaSource, sans I/O: from a torrent's bytes to what a SourceBuffer takes.
//!
//! This module owns the *shape* of media files: where the init segment is, which MIME type and
//! codecs string to give `MediaSource.isTypeSupported`/`addSourceBuffer`, and which byte range
//! holds which stretch of time. It never fetches, never touches `web-sys`, never keeps a clock:
//! callers hand it bytes (a growing prefix of the file, or ranges it asked for) and get answers
//! or "I need bytes up to here". The player in `web` is a thin adapter over [`Probe`] and
//! [`MediaPlan`]; the piece picker uses [`FragmentIndex`] to map the playhead to byte ranges.
//! See ../shared/streaming.md.
//!
//! Submodules, one per container family:
//! - [`mp4box`]: the ISO-BMFF box reader and writer everything MP4 is built on.
//! - [`codecs`]: RFC 6381 codecs strings from `avcC`, `hvcC`, `esds`, `vpcC`, `av1C`, Matroska ids.
//! - [`fmp4`]: fragmented MP4 as pods write it ([`Fmp4Layout`] from `sidx`, or [`FragmentScanner`]).
//! - [`remux`]: progressive MP4 from foreign torrents, fragmented on demand ([`Remuxer`]).
//! - [`webm`]: WebM/Matroska: init segment, Cues, [`ClusterScanner`].
//! - [`audio`]: raw MP3 and ADTS AAC detection.
//! - [`plan`]: [`Probe`] and [`MediaPlan`], the one entry point the player needs.
//!
//! Invariants, for every parser here:
//! - **Input never panics.** Torrent bytes are untrusted (a peer's piece is only as good as its
//!   hash, and a foreign torrent's file is whatever its author made). Every malformed input is a
//!   [`MediaError`]; the fuzz target `media` (client-core/fuzz) and tests/media_replay.rs hold
//!   every parser to this.
//! - **Memory is bounded.** Boxes and elements that are buffered whole are checked against the
//!   limits below *before* any buffering, table entry counts are checked against the bytes that
//!   actually hold them before anything is allocated, and incremental scanners keep at most one
//!   `moof` (or a few header bytes) whatever the file size.
//! - **Prefix parsing is monotone.** A parser that answers [`Progress::NeedMore`] for a prefix
//!   gives the same final answer whichever longer prefix it is later given.

pub mod audio;
mod bytes;
pub mod codecs;
pub mod fmp4;
mod moov;
pub mod mp4box;
pub mod plan;
pub mod remux;
pub mod webm;

use std::ops::Range;

pub use audio::{detect_raw_audio, RawAudio, RawAudioKind};
pub use codecs::Codec;
pub use fmp4::{Fmp4Layout, FragmentScanner};
pub use moov::{Track, TrackKind};
pub use mp4box::FourCc;
pub use plan::{MediaPlan, NativeElement, NativeReason, Probe, ProbeStep};
pub use remux::{FragmentPlan, MoovLocator, MoovSearch, Remuxer};
pub use webm::{ClusterScanner, ScannedCluster, WebmLayout, WebmTrack};

/// Largest box or element parsed whole (`moov`, `sidx`, `moof`, Matroska `Tracks`/`Cues`). The
/// `moov` of a two-hour progressive film is a few MiB; anything near this is hostile.
pub const MAX_PARSED_BOX: u64 = 64 << 20;

/// Most tracks considered in one file.
pub const MAX_TRACKS: usize = 64;

/// Most samples in one track of a progressive MP4 (about 19 hours of 60 fps video). Each costs
/// 32 bytes of memory in a [`Remuxer`].
pub const MAX_SAMPLES_PER_TRACK: usize = 1 << 21;

/// Most fragments an index may hold (`sidx` references, Matroska cue points).
pub const MAX_FRAGMENTS: usize = 1 << 20;

/// The outcome of parsing a growing prefix of a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress<T> {
    /// Parsing finished.
    Ready(T),
    /// Parsing cannot go on until the prefix reaches `until` bytes (an exclusive file offset,
    /// which may lie past the end of a truncated file).
    NeedMore { until: u64 },
}

impl<T> Progress<T> {
    /// The finished value, if any.
    pub fn ready(self) -> Option<T> {
        match self {
            Progress::Ready(value) => Some(value),
            Progress::NeedMore { .. } => None,
        }
    }
}

/// Why bytes are not usable media (or not yet: see [`Progress`] for "need more bytes").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error("{0} is truncated")]
    Truncated(&'static str),
    #[error("box '{kind}' at byte {offset} has an invalid size ({size} bytes)")]
    BadBoxSize {
        kind: FourCc,
        offset: u64,
        size: u64,
    },
    #[error("{what} of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        what: &'static str,
        size: u64,
        limit: u64,
    },
    #[error("{what}: {count} entries exceed the limit of {limit}")]
    TooManyEntries {
        what: &'static str,
        count: u64,
        limit: u64,
    },
    #[error("no '{0}' box")]
    MissingBox(&'static str),
    #[error("{what}: {reason}")]
    Malformed {
        what: &'static str,
        reason: &'static str,
    },
    #[error("invalid EBML element at byte {offset}: {reason}")]
    BadElement { offset: u64, reason: &'static str },
    #[error("unsupported codec {0}")]
    UnsupportedCodec(String),
    #[error("MP4 file is not fragmented (its moov has no mvex): remux it")]
    NotFragmented,
    #[error("not a media file this player recognises")]
    Unrecognised,
}

impl MediaError {
    pub(crate) fn malformed(what: &'static str, reason: &'static str) -> Self {
        MediaError::Malformed { what, reason }
    }
}

/// One independently appendable stretch of the media: a `moof`+`mdat` pair (or several, as a
/// `sidx` reference may cover), a Matroska cluster (or the clusters between two cue points), or a
/// remuxed fragment.
#[derive(Debug, Clone, PartialEq)]
pub struct Fragment {
    /// Presentation time of the fragment's first frame, in seconds.
    pub start_time_s: f64,
    pub duration_s: f64,
    /// Where its bytes are in the file. For a [`Remuxer`] fragment this is the hull of the sample
    /// bytes it is built from ([`Remuxer::fragment_plan`] has the exact ranges).
    pub byte_range: Range<u64>,
}

impl Fragment {
    pub fn end_time_s(&self) -> f64 {
        self.start_time_s + self.duration_s
    }
}

/// Fragments in presentation order, contiguous in time: each starts where the previous ends.
///
/// For fragmented MP4 and WebM the byte ranges also tile a stretch of the file in order; for a
/// [`Remuxer`] they are hulls and may overlap (audio and video chunks interleave).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FragmentIndex {
    fragments: Vec<Fragment>,
}

impl FragmentIndex {
    /// Builds an index from fragments in time order. Fragments whose times are not finite are
    /// dropped, so lookups never meet a NaN.
    pub(crate) fn new(mut fragments: Vec<Fragment>) -> Self {
        fragments.retain(|f| f.start_time_s.is_finite() && f.duration_s.is_finite());
        FragmentIndex { fragments }
    }

    pub fn fragments(&self) -> &[Fragment] {
        &self.fragments
    }

    pub fn len(&self) -> usize {
        self.fragments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fragments.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&Fragment> {
        self.fragments.get(index)
    }

    /// Presentation time at the end of the last fragment.
    pub fn end_time_s(&self) -> f64 {
        self.fragments.last().map_or(0.0, Fragment::end_time_s)
    }

    /// The fragment to append to play from `time_s`: the last one starting at or before it (the
    /// first one for times before the start). `None` past the end, for NaN, or when empty.
    pub fn fragment_at(&self, time_s: f64) -> Option<usize> {
        if time_s.is_nan() || time_s >= self.end_time_s() {
            return None;
        }
        let after = self.fragments.partition_point(|f| f.start_time_s <= time_s);
        Some(after.saturating_sub(1))
    }

    /// Indices of the fragments whose bytes overlap `bytes`, in index order: the fragments a
    /// piece (or a downloaded range) contributes to.
    pub fn fragments_in(&self, bytes: Range<u64>) -> impl Iterator<Item = usize> + '_ {
        self.fragments
            .iter()
            .enumerate()
            .filter(move |(_, f)| f.byte_range.start < bytes.end && bytes.start < f.byte_range.end)
            .map(|(i, _)| i)
    }

    /// Clamps byte ranges to the file length (an index whose last fragment runs "to the end of
    /// the file" ends at `u64::MAX` until the caller says where that is).
    pub fn clamp_to_file(&mut self, file_len: u64) {
        for f in &mut self.fragments {
            f.byte_range.end = f.byte_range.end.min(file_len);
            f.byte_range.start = f.byte_range.start.min(f.byte_range.end);
        }
    }
}

/// `buf[start..end]` for file offsets; `None` unless all of it is there. Offsets are `u64` and
/// never truncated to a 32-bit `usize` (wasm32), where a cast would silently alias.
pub(crate) fn slice(buf: &[u8], start: u64, end: u64) -> Option<&[u8]> {
    let start = usize::try_from(start).ok()?;
    let end = usize::try_from(end).ok()?;
    buf.get(start..end)
}

/// `buf[start..]`, empty when `start` is at or past the end.
pub(crate) fn slice_from(buf: &[u8], start: u64) -> &[u8] {
    usize::try_from(start)
        .ok()
        .and_then(|start| buf.get(start..))
        .unwrap_or(&[])
}

/// Builds `type/subtype; codecs="a,b"`.
pub(crate) fn mime_with_codecs(mime: &str, codecs: &[String]) -> String {
    if codecs.is_empty() {
        mime.to_string()
    } else {
        format!("{mime}; codecs=\"{}\"", codecs.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> FragmentIndex {
        FragmentIndex::new(vec![
            Fragment {
                start_time_s: 0.0,
                duration_s: 2.0,
                byte_range: 100..200,
            },
            Fragment {
                start_time_s: 2.0,
                duration_s: 2.0,
                byte_range: 200..300,
            },
            Fragment {
                start_time_s: 4.0,
                duration_s: 1.5,
                byte_range: 300..350,
            },
        ])
    }

    #[test]
    fn fragment_at_finds_the_fragment_holding_a_time() {
        let index = index();
        assert_eq!(index.fragment_at(-1.0), Some(0));
        assert_eq!(index.fragment_at(0.0), Some(0));
        assert_eq!(index.fragment_at(1.99), Some(0));
        assert_eq!(index.fragment_at(2.0), Some(1));
        assert_eq!(index.fragment_at(5.4), Some(2));
        assert_eq!(index.fragment_at(5.5), None);
        assert_eq!(index.fragment_at(f64::NAN), None);
        assert_eq!(FragmentIndex::default().fragment_at(0.0), None);
    }

    #[test]
    fn fragments_in_reports_overlaps() {
        let index = index();
        assert_eq!(index.fragments_in(0..100).count(), 0);
        assert_eq!(index.fragments_in(150..201).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(index.fragments_in(349..10_000).collect::<Vec<_>>(), [2]);
    }
}

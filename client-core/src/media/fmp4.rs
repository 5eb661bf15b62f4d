//! Fragmented MP4 as pods write it: `ftyp moov sidx [sidx] moof mdat moof mdat … [mfra]`
//! (ffmpeg `-movflags +frag_keyframe+empty_moov+default_base_moof+global_sidx -frag_interleave 5`:
//! within a fragment, video and audio alternate in runs of a few samples).
//!
//! [`Fmp4Layout::parse`] reads a growing prefix of the file until it has the init segment
//! (`ftyp`+`moov`) and the `sidx` boxes in front of the first `moof`, and from them builds the
//! whole file's [`FragmentIndex`]: the first piece or two are enough to know where every
//! fragment is. Without a `sidx`, [`FragmentScanner`] finds `moof`+`mdat` pairs as sequential
//! bytes arrive.
//!
//! Invariants:
//! - From a `sidx`, fragment byte ranges tile the file from the first referenced byte, in order,
//!   and fragment times are contiguous (each starts where the previous ends).
//! - A `sidx` with references to other `sidx` boxes (reference_type 1) is not followed: the
//!   layout then has no index and the caller scans, which is always correct, only later.
//! - The scanner buffers at most one `moof` ([`MAX_MOOF_SIZE`]) plus a box header, whatever it is
//!   fed; `mdat` payloads are counted, never copied.

use std::ops::Range;

use super::moov::{self, Movie, Track, TrackKind};
use super::mp4box::{read_header, BoxHeader, Boxes, HeaderRead, Mp4Box};
use super::{
    mime_with_codecs, slice, slice_from, Fragment, FragmentIndex, MediaError, Progress,
    MAX_FRAGMENTS, MAX_PARSED_BOX,
};

/// Largest `moof` the scanner buffers. A two-second fragment's `moof` is a few KiB.
pub const MAX_MOOF_SIZE: u64 = 16 << 20;

/// Where things are in a fragmented MP4, learnt from its first bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Fmp4Layout {
    /// `ftyp` through `moov` (and any small boxes between them): the SourceBuffer's first append.
    pub init_range: Range<u64>,
    /// The tracks in `moov`.
    pub tracks: Vec<Track>,
    /// Codecs strings of the video and audio tracks, video first.
    pub codecs: Vec<String>,
    /// `video/mp4; codecs="…"` (or `audio/mp4` without video); `None` when a track's codec
    /// cannot be named (then MediaSource cannot be asked about it).
    pub mime_type: Option<String>,
    /// Timescale of the index's timestamps (the indexed track's media timescale).
    pub timescale: u32,
    pub duration_s: Option<f64>,
    /// Time → bytes for every fragment, from the `sidx`. `None` without a usable `sidx`: use
    /// [`Fmp4Layout::scanner`].
    pub index: Option<FragmentIndex>,
    /// The `sidx` boxes (between the init segment and the first fragment).
    pub index_range: Option<Range<u64>>,
    /// Offset of the first `moof`.
    pub first_fragment: u64,
}

/// One `sidx` box (ISO/IEC 14496-12 §8.16.3).
#[derive(Debug, Clone)]
struct Sidx {
    reference_id: u32,
    timescale: u32,
    earliest_presentation_time: u64,
    /// Offset of the first referenced byte: the end of the `sidx` plus `first_offset`.
    anchor: u64,
    references: Vec<SidxReference>,
}

#[derive(Debug, Clone, Copy)]
struct SidxReference {
    /// reference_type 1: the range is another `sidx`.
    to_index: bool,
    size: u32,
    duration: u32,
}

impl Fmp4Layout {
    /// Parses a prefix of the file (any length, from byte 0). Returns
    /// [`Progress::NeedMore`] until the prefix holds the init segment and everything up to the
    /// first `moof`'s header; [`MediaError::NotFragmented`] for a progressive MP4.
    pub fn parse(prefix: &[u8]) -> Result<Progress<Fmp4Layout>, MediaError> {
        let mut pos: u64 = 0;
        let mut movie: Option<(Movie, u64)> = None;
        let mut sidxs: Vec<(Sidx, Range<u64>)> = Vec::new();
        loop {
            let rest = slice_from(prefix, pos);
            let header = match read_header(rest, pos)? {
                HeaderRead::NeedBytes(n) => {
                    return Ok(Progress::NeedMore {
                        until: pos.saturating_add(n as u64),
                    })
                }
                HeaderRead::Header(header) => header,
            };
            let kind = header.kind;
            if &kind.0 == b"moof" {
                let Some((movie, moov_end)) = movie else {
                    return Err(MediaError::malformed("fragmented MP4", "moof before moov"));
                };
                return Ok(Progress::Ready(Self::build(movie, moov_end, sidxs, pos)));
            }
            if &kind.0 == b"mdat" {
                return Err(match movie {
                    // moov after the media data: a progressive file with moov at the end.
                    None => MediaError::NotFragmented,
                    Some(_) => MediaError::malformed("fragmented MP4", "mdat before any moof"),
                });
            }
            let Some(size) = header.size else {
                return Err(MediaError::malformed(
                    "fragmented MP4",
                    "a box runs to the end of the file before any fragment",
                ));
            };
            let end = pos.checked_add(size).ok_or(MediaError::BadBoxSize {
                kind,
                offset: pos,
                size,
            })?;
            let whole = matches!(&kind.0, b"moov" | b"sidx");
            if whole {
                if size > MAX_PARSED_BOX {
                    return Err(MediaError::TooLarge {
                        what: "moov or sidx box",
                        size,
                        limit: MAX_PARSED_BOX,
                    });
                }
                let Some(raw) = slice(prefix, pos, end) else {
                    return Ok(Progress::NeedMore { until: end });
                };
                let b = Mp4Box {
                    kind,
                    offset: pos,
                    raw,
                    data: &raw[usize::from(header.header_len)..],
                };
                if &kind.0 == b"moov" {
                    let parsed = moov::parse_moov(&b)?;
                    if !parsed.fragmented {
                        return Err(MediaError::NotFragmented);
                    }
                    movie = Some((parsed, end));
                } else if sidxs.len() < super::MAX_TRACKS {
                    sidxs.push((parse_sidx(&b, end)?, pos..end));
                }
            }
            pos = end;
        }
    }

    fn build(movie: Movie, moov_end: u64, sidxs: Vec<(Sidx, Range<u64>)>, first_moof: u64) -> Self {
        let primary = movie.primary_track().map(|t| t.id);
        // ffmpeg's global_sidx writes one sidx per track; the video track's is the one to seek by.
        let chosen = sidxs
            .iter()
            .find(|(s, _)| Some(s.reference_id) == primary)
            .or(sidxs.first())
            .map(|(s, _)| s);
        let index = chosen.and_then(index_from_sidx);
        let index_range = match (sidxs.first(), sidxs.last()) {
            (Some((_, first)), Some((_, last))) => Some(first.start..last.end),
            _ => None,
        };
        let timescale = match (chosen, movie.primary_track()) {
            (Some(s), _) if index.is_some() => s.timescale,
            (_, Some(track)) => track.timescale,
            _ => movie.timescale,
        };
        let duration_s = match &index {
            Some(index) if !index.is_empty() => Some(index.end_time_s()),
            _ => movie.duration_s(),
        };
        let (codecs, mime_type) = mp4_mime(&movie.tracks);
        Fmp4Layout {
            init_range: 0..moov_end,
            tracks: movie.tracks,
            codecs,
            mime_type,
            timescale,
            duration_s,
            index,
            index_range,
            first_fragment: first_moof,
        }
    }

    /// A scanner for the fragments, starting at the first `moof`.
    pub fn scanner(&self) -> FragmentScanner {
        FragmentScanner::new(self.first_fragment, &self.tracks)
    }
}

/// Codecs strings (video first) and the MIME type for MP4 tracks.
pub(crate) fn mp4_mime(tracks: &[Track]) -> (Vec<String>, Option<String>) {
    let media = |kind| tracks.iter().filter(move |t| t.kind == kind);
    let mut codecs = Vec::new();
    let mut all_named = true;
    for track in media(TrackKind::Video).chain(media(TrackKind::Audio)) {
        match track.codec.codecs_string() {
            Some(c) if !codecs.contains(&c) => codecs.push(c),
            Some(_) => {}
            None => all_named = false,
        }
    }
    let mime = if media(TrackKind::Video).next().is_some() {
        "video/mp4"
    } else {
        "audio/mp4"
    };
    let mime_type = (all_named && !codecs.is_empty()).then(|| mime_with_codecs(mime, &codecs));
    (codecs, mime_type)
}

fn parse_sidx(b: &Mp4Box<'_>, end: u64) -> Result<Sidx, MediaError> {
    let (version, _, mut r) = b.full("sidx")?;
    let reference_id = r.u32()?;
    let timescale = r.u32()?;
    let earliest_presentation_time = r.u32_or_u64(version)?;
    let first_offset = r.u32_or_u64(version)?;
    r.u16()?; // reserved
    let count = usize::from(r.u16()?);
    if count * 12 > r.remaining() {
        return Err(MediaError::Truncated("sidx"));
    }
    let mut references = Vec::with_capacity(count);
    for _ in 0..count {
        let a = r.u32()?;
        let duration = r.u32()?;
        let _sap = r.u32()?;
        references.push(SidxReference {
            to_index: a & 0x8000_0000 != 0,
            size: a & 0x7fff_ffff,
            duration,
        });
    }
    Ok(Sidx {
        reference_id,
        timescale,
        earliest_presentation_time,
        anchor: end.saturating_add(first_offset),
        references,
    })
}

/// The fragment index a `sidx` describes, if it is a flat one (no references to other `sidx`).
fn index_from_sidx(sidx: &Sidx) -> Option<FragmentIndex> {
    if sidx.timescale == 0
        || sidx.references.is_empty()
        || sidx.references.len() > MAX_FRAGMENTS
        || sidx.references.iter().any(|r| r.to_index)
    {
        return None;
    }
    let scale = f64::from(sidx.timescale);
    let mut time = sidx.earliest_presentation_time;
    let mut offset = sidx.anchor;
    let mut fragments = Vec::with_capacity(sidx.references.len());
    for r in &sidx.references {
        let end = offset.checked_add(u64::from(r.size))?;
        fragments.push(Fragment {
            start_time_s: time as f64 / scale,
            duration_s: f64::from(r.duration) / scale,
            byte_range: offset..end,
        });
        time = time.saturating_add(u64::from(r.duration));
        offset = end;
    }
    Some(FragmentIndex::new(fragments))
}

/// Finds `moof`+`mdat` pairs in a fragmented MP4 fed sequentially, for files without a `sidx`
/// (or to check one). Each pair is reported once its last byte has been fed, with the decode time
/// (`tfdt`) and duration (`trun`) of the primary track (the first video track, else the first).
#[derive(Debug, Clone)]
pub struct FragmentScanner {
    /// File offset of the next byte to be fed.
    pos: u64,
    /// The box header being read, or the whole `moof` being buffered.
    buf: Vec<u8>,
    state: ScanState,
    /// A parsed `moof` waiting for its `mdat`: (offset, start time, duration) in seconds.
    pending: Option<(u64, f64, f64)>,
    /// (track id, timescale, trex default duration) of the tracks in `moov`.
    tracks: Vec<(u32, u32, u32)>,
    primary: Option<u32>,
    /// Where the primary track's decode time is after the last fragment, for `moof`s without
    /// `tfdt`.
    next_decode_time: u64,
    error: Option<MediaError>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ScanState {
    /// Reading a box header into `buf`.
    Header,
    /// Buffering a `moof` of this total size.
    Moof { size: usize },
    /// Counting off the payload of a box (an `mdat` completes the pending fragment).
    Body { remaining: u64, mdat: bool },
    /// Inside a box that runs to the end of the file.
    ToEnd,
}

impl FragmentScanner {
    /// A scanner whose first fed byte is at `offset` (the first `moof`, or 0: `ftyp`, `moov`,
    /// `sidx` and other boxes are skipped). `tracks` come from the `moov`.
    pub fn new(offset: u64, tracks: &[Track]) -> Self {
        let primary = tracks
            .iter()
            .find(|t| t.kind == TrackKind::Video)
            .or_else(|| tracks.first())
            .map(|t| t.id);
        FragmentScanner {
            pos: offset,
            buf: Vec::new(),
            state: ScanState::Header,
            pending: None,
            tracks: tracks
                .iter()
                .map(|t| (t.id, t.timescale, t.default_sample_duration))
                .collect(),
            primary,
            next_decode_time: 0,
            error: None,
        }
    }

    /// File offset of the next byte [`FragmentScanner::feed`] expects.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Feeds the next bytes of the file; returns the fragments completed by them. An error is
    /// returned after the fragments completed before it (by the next call if need be); then the
    /// scanner is stuck and keeps returning it.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Fragment>, MediaError> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        let mut out = Vec::new();
        match self.feed_inner(bytes, &mut out) {
            Ok(()) => Ok(out),
            Err(err) => {
                self.error = Some(err.clone());
                // What was complete before the error is still good; the error comes next call.
                if out.is_empty() {
                    Err(err)
                } else {
                    Ok(out)
                }
            }
        }
    }

    fn feed_inner(&mut self, mut input: &[u8], out: &mut Vec<Fragment>) -> Result<(), MediaError> {
        // Each state either makes progress on `input` or, when it needs input and there is none,
        // ends the loop; a complete header or moof is acted on even when no input is left.
        loop {
            match self.state {
                ScanState::ToEnd => {
                    self.pos += input.len() as u64;
                    return Ok(());
                }
                ScanState::Body { remaining, mdat } => {
                    if remaining == 0 {
                        self.finish_body(mdat, out);
                        continue;
                    }
                    if input.is_empty() {
                        return Ok(());
                    }
                    let n = remaining.min(input.len() as u64);
                    input = &input[n as usize..];
                    self.pos += n;
                    self.state = ScanState::Body {
                        remaining: remaining - n,
                        mdat,
                    };
                }
                ScanState::Moof { size } => {
                    if self.buf.len() == size {
                        self.parse_moof()?;
                        self.buf.clear();
                        self.state = ScanState::Header;
                        continue;
                    }
                    if input.is_empty() {
                        return Ok(());
                    }
                    let n = (size - self.buf.len()).min(input.len());
                    self.take(&mut input, n);
                }
                ScanState::Header => {
                    let start = self.pos - self.buf.len() as u64;
                    match read_header(&self.buf, start)? {
                        HeaderRead::NeedBytes(need) => {
                            if input.is_empty() {
                                return Ok(());
                            }
                            let n = (need - self.buf.len()).min(input.len());
                            self.take(&mut input, n);
                        }
                        HeaderRead::Header(header) => self.start_box(header)?,
                    }
                }
            }
        }
    }

    /// Acts on a complete box header in `buf`.
    fn start_box(&mut self, header: BoxHeader) -> Result<(), MediaError> {
        let header_len = self.buf.len() as u64;
        match header.size {
            None => self.state = ScanState::ToEnd,
            Some(size) if &header.kind.0 == b"moof" => {
                if size > MAX_MOOF_SIZE {
                    return Err(MediaError::TooLarge {
                        what: "moof box",
                        size,
                        limit: MAX_MOOF_SIZE,
                    });
                }
                // The header bytes stay in `buf`: they are the moof's first bytes.
                self.state = ScanState::Moof {
                    size: size as usize,
                };
                return Ok(());
            }
            Some(size) => {
                self.state = ScanState::Body {
                    remaining: size - header_len,
                    mdat: &header.kind.0 == b"mdat",
                }
            }
        }
        self.buf.clear();
        Ok(())
    }

    fn take(&mut self, input: &mut &[u8], n: usize) {
        self.buf.extend_from_slice(&input[..n]);
        *input = &input[n..];
        self.pos += n as u64;
    }

    /// A box body has been counted off: an `mdat` completes the pending fragment.
    fn finish_body(&mut self, mdat: bool, out: &mut Vec<Fragment>) {
        self.state = ScanState::Header;
        if mdat {
            if let Some((start, start_time_s, duration_s)) = self.pending.take() {
                out.push(Fragment {
                    start_time_s,
                    duration_s,
                    byte_range: start..self.pos,
                });
            }
        }
    }

    fn parse_moof(&mut self) -> Result<(), MediaError> {
        let start = self.pos - self.buf.len() as u64;
        let moof = Boxes::new(&self.buf, start)
            .next()
            .ok_or(MediaError::Truncated("moof"))??;
        let timing = moof_timing(&moof, self.primary, &self.tracks)?;
        let Some((track_id, base, duration)) = timing else {
            self.pending = None;
            return Ok(());
        };
        let timescale = self
            .tracks
            .iter()
            .find(|t| t.0 == track_id)
            .map_or(0, |t| t.1);
        if timescale == 0 {
            return Err(MediaError::malformed(
                "moof",
                "fragment of a track with no timescale",
            ));
        }
        let base = base.unwrap_or(self.next_decode_time);
        self.next_decode_time = base.saturating_add(duration);
        let scale = f64::from(timescale);
        self.pending = Some((start, base as f64 / scale, duration as f64 / scale));
        Ok(())
    }
}

/// (track id, `tfdt` decode time, summed sample durations) of the primary track's `traf` in a
/// `moof` (or the first `traf` when the primary track has none); `None` without any `traf`.
fn moof_timing(
    moof: &Mp4Box<'_>,
    primary: Option<u32>,
    tracks: &[(u32, u32, u32)],
) -> Result<Option<(u32, Option<u64>, u64)>, MediaError> {
    let mut first = None;
    for traf in moof.children() {
        let traf = traf?;
        if &traf.kind.0 != b"traf" {
            continue;
        }
        let timing = traf_timing(&traf, tracks)?;
        if Some(timing.0) == primary {
            return Ok(Some(timing));
        }
        first.get_or_insert(timing);
    }
    Ok(first)
}

fn traf_timing(
    traf: &Mp4Box<'_>,
    tracks: &[(u32, u32, u32)],
) -> Result<(u32, Option<u64>, u64), MediaError> {
    let tfhd = traf.required(b"tfhd", "tfhd")?;
    let (_, flags, mut r) = tfhd.full("tfhd")?;
    let track_id = r.u32()?;
    if flags & 0x01 != 0 {
        r.u64()?; // base data offset
    }
    if flags & 0x02 != 0 {
        r.u32()?; // sample description index
    }
    let trex_default = tracks.iter().find(|t| t.0 == track_id).map_or(0, |t| t.2);
    let default_duration = if flags & 0x08 != 0 {
        r.u32()?
    } else {
        trex_default
    };

    let mut base = None;
    let mut duration: u64 = 0;
    for child in traf.children() {
        let child = child?;
        match &child.kind.0 {
            b"tfdt" => {
                let (version, _, mut r) = child.full("tfdt")?;
                base = Some(r.u32_or_u64(version)?);
            }
            b"trun" => {
                let (_, flags, mut r) = child.full("trun")?;
                let count = u64::from(r.u32()?);
                if flags & 0x001 != 0 {
                    r.u32()?; // data offset
                }
                if flags & 0x004 != 0 {
                    r.u32()?; // first sample flags
                }
                let fields = [0x100, 0x200, 0x400, 0x800];
                let entry_len = fields.iter().filter(|&&f| flags & f != 0).count() * 4;
                if flags & 0x100 == 0 {
                    duration =
                        duration.saturating_add(count.saturating_mul(u64::from(default_duration)));
                    continue;
                }
                if count.saturating_mul(entry_len as u64) > r.remaining() as u64 {
                    return Err(MediaError::Truncated("trun"));
                }
                for _ in 0..count {
                    duration = duration.saturating_add(u64::from(r.u32()?));
                    r.skip(entry_len - 4)?;
                }
            }
            _ => {}
        }
    }
    Ok((track_id, base, duration))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::mp4box::BoxWriter;

    /// A tiny synthetic fragmented file: ftyp, moov (one video track, mvex), one sidx with two
    /// references, and two moof+mdat pairs.
    fn synthetic() -> Vec<u8> {
        let mut w = BoxWriter::new();
        let ftyp = w.begin(b"ftyp");
        w.bytes(b"iso5\0\0\0\0iso5");
        w.end(ftyp);
        let moov = w.begin(b"moov");
        let mvhd = w.begin_full(b"mvhd", 0, 0);
        w.bytes(&[0; 8]);
        w.u32(1000);
        w.u32(0);
        w.end(mvhd);
        let trak = w.begin(b"trak");
        let tkhd = w.begin_full(b"tkhd", 0, 3);
        w.bytes(&[0; 8]);
        w.u32(1);
        w.end(tkhd);
        let mdia = w.begin(b"mdia");
        let mdhd = w.begin_full(b"mdhd", 0, 0);
        w.bytes(&[0; 8]);
        w.u32(90_000);
        w.u32(0);
        w.end(mdhd);
        let hdlr = w.begin_full(b"hdlr", 0, 0);
        w.u32(0);
        w.bytes(b"vide");
        w.end(hdlr);
        let minf = w.begin(b"minf");
        let stbl = w.begin(b"stbl");
        let stsd = w.begin_full(b"stsd", 0, 0);
        w.u32(1);
        let avc1 = w.begin(b"avc1");
        w.bytes(&[0; 78]);
        let avcc = w.begin(b"avcC");
        w.bytes(&[1, 0x42, 0xc0, 0x1e]);
        w.end(avcc);
        w.end(avc1);
        w.end(stsd);
        w.end(stbl);
        w.end(minf);
        w.end(mdia);
        w.end(trak);
        let mvex = w.begin(b"mvex");
        let trex = w.begin_full(b"trex", 0, 0);
        w.u32(1);
        w.u32(1);
        w.u32(3000);
        w.u32(0);
        w.u32(0);
        w.end(trex);
        w.end(mvex);
        w.end(moov);
        // sidx v0: ref id 1, timescale 90000, ept 0, first_offset 0, two references.
        let sidx = w.begin_full(b"sidx", 0, 0);
        w.u32(1);
        w.u32(90_000);
        w.u32(0);
        w.u32(0);
        w.bytes(&[0, 0, 0, 2]); // reserved, reference count
        let fragment_len = |samples: u32| 8 + 16 + (8 + 16 + 16 + 16) + 8 + samples;
        for (samples, duration) in [(10u32, 180_000u32), (5, 90_000)] {
            w.u32(fragment_len(samples));
            w.u32(duration);
            w.u32(0x9000_0000);
        }
        w.end(sidx);
        for (samples, decode) in [(10u32, 0u32), (5, 180_000)] {
            let moof = w.begin(b"moof");
            let mfhd = w.begin_full(b"mfhd", 0, 0);
            w.u32(1);
            w.end(mfhd);
            let traf = w.begin(b"traf");
            let tfhd = w.begin_full(b"tfhd", 0, 0x02_0000);
            w.u32(1);
            w.end(tfhd);
            let tfdt = w.begin_full(b"tfdt", 0, 0);
            w.u32(decode);
            w.end(tfdt);
            // trun without per-sample durations: count × trex default (3000), then sizes... none.
            let trun = w.begin_full(b"trun", 0, 0);
            w.u32(samples * 6);
            w.end(trun);
            w.end(traf);
            w.end(moof);
            let mdat = w.begin(b"mdat");
            w.bytes(&vec![0xab; samples as usize]);
            w.end(mdat);
        }
        w.buf
    }

    #[test]
    fn layout_from_growing_prefix() {
        let file = synthetic();
        let mut len = 0;
        let layout = loop {
            match Fmp4Layout::parse(&file[..len]).unwrap() {
                Progress::Ready(layout) => break layout,
                Progress::NeedMore { until } => {
                    assert!(until as usize > len, "progress must move forward");
                    len = (until as usize).min(file.len());
                }
            }
        };
        assert_eq!(
            layout.mime_type.as_deref(),
            Some("video/mp4; codecs=\"avc1.42C01E\"")
        );
        let index = layout.index.as_ref().unwrap();
        assert_eq!(index.len(), 2);
        assert_eq!(index.fragments()[0].byte_range.start, layout.first_fragment);
        assert_eq!(index.fragments()[1].byte_range.end, file.len() as u64);
        assert_eq!(index.fragments()[1].start_time_s, 2.0);
        assert_eq!(layout.duration_s, Some(3.0));

        // The scanner, fed byte by byte from 0, finds the same fragments.
        let mut scanner = FragmentScanner::new(0, &layout.tracks);
        let mut found = Vec::new();
        for b in &file {
            found.extend(scanner.feed(std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(found, index.fragments());
    }

    #[test]
    fn progressive_file_is_not_fragmented() {
        let mut w = BoxWriter::new();
        let ftyp = w.begin(b"ftyp");
        w.end(ftyp);
        let mdat = w.begin(b"mdat");
        w.end(mdat);
        assert_eq!(Fmp4Layout::parse(&w.buf), Err(MediaError::NotFragmented));
    }
}

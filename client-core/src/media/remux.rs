//! Progressive MP4 (foreign torrents) to fragmented MP4, on demand, so MediaSource can play it
//! from the pieces at hand: the role videostream's mp4-remuxer played for WebTorrent ≤1.x
//! (../shared/webtorrent-protocol.md §3.3), without its per-seek re-reads.
//!
//! [`MoovLocator`] finds `moov` among the top-level boxes (in front, or after `mdat`: then the
//! player fetches the tail first). [`Remuxer::from_moov`] reads the sample tables of the first
//! H.264 track and the first AAC track, writes an init segment (`ftyp` + `moov` with `mvex`,
//! sample tables emptied) and plans fragments of about two seconds, each starting at a video sync
//! sample. For fragment *i*, [`Remuxer::fragment_plan`] lists the byte ranges of the source file
//! it needs and [`Remuxer::build_fragment`] turns those bytes into `moof`+`mdat`.
//!
//! Invariants:
//! - Every sample of the chosen tracks is in exactly one fragment, in decode order, so the
//!   concatenation of the init segment and all fragments is the same media as the source.
//! - Fragments are contiguous in time; each fragment after the first starts at a video sync
//!   sample, so any fragment can be the first appended after a seek.
//! - Sample tables are checked against the bytes that hold them before anything is allocated,
//!   and a track holds at most [`MAX_SAMPLES_PER_TRACK`] samples.

use std::ops::Range;

use super::codecs::Codec;
use super::fmp4::mp4_mime;
use super::moov::{self, Track, TrackKind};
use super::mp4box::{read_header, BoxWriter, Boxes, HeaderRead, Mp4Box};
use super::{
    bytes::table_count, slice, slice_from, Fragment, FragmentIndex, MediaError, MAX_PARSED_BOX,
    MAX_SAMPLES_PER_TRACK,
};

/// Fragments are cut at the first sync sample at least this far (in decode time) from the
/// fragment's start: "about 2 s", a hair under so that a keyframe every 2.00 s starts a new
/// fragment despite timestamp rounding.
const MIN_FRAGMENT_S: f64 = 1.9;

/// Largest fragment [`Remuxer::build_fragment`] writes (its `mdat` payload).
pub const MAX_FRAGMENT_LEN: u64 = 256 << 20;

/// Where `moov` is, or which bytes are needed to find out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoovSearch {
    /// The `moov` box's byte range; `after_media_data` when it follows the `mdat` (the player
    /// must fetch it from the tail before anything can play).
    Found {
        moov: Range<u64>,
        after_media_data: bool,
    },
    /// Feed these bytes next.
    Need(Range<u64>),
}

/// Walks the top-level boxes of an MP4 file to find `moov`, from whatever byte ranges it is fed.
#[derive(Debug, Clone)]
pub struct MoovLocator {
    file_len: u64,
    /// Offset of the next top-level box header to read.
    next_box: u64,
    seen_media_data: bool,
}

impl MoovLocator {
    pub fn new(file_len: u64) -> Self {
        MoovLocator {
            file_len,
            next_box: 0,
            seen_media_data: false,
        }
    }

    /// Feeds `bytes` found at file offset `offset` (a prefix of the file, or a range this locator
    /// asked for) and reports where `moov` is, or which bytes it needs next.
    pub fn feed(&mut self, offset: u64, bytes: &[u8]) -> Result<MoovSearch, MediaError> {
        loop {
            let pos = self.next_box;
            if pos >= self.file_len {
                return Err(MediaError::MissingBox("moov"));
            }
            let available = pos
                .checked_sub(offset)
                .map_or(&[][..], |skip| slice_from(bytes, skip));
            let header = match read_header(available, pos)? {
                HeaderRead::Header(header) => header,
                HeaderRead::NeedBytes(_) => return Ok(MoovSearch::Need(self.need_from(pos))),
            };
            let size = header.size.unwrap_or(self.file_len - pos);
            let end = pos.checked_add(size).ok_or(MediaError::BadBoxSize {
                kind: header.kind,
                offset: pos,
                size,
            })?;
            match &header.kind.0 {
                b"moov" => {
                    return Ok(MoovSearch::Found {
                        moov: pos..end,
                        after_media_data: self.seen_media_data,
                    })
                }
                b"mdat" => self.seen_media_data = true,
                _ => {}
            }
            self.next_box = end;
        }
    }

    /// What to ask for to read the header at `pos`: past the media data, the whole tail when it
    /// is small enough to be `moov` (saves a round trip), otherwise just a header.
    fn need_from(&self, pos: u64) -> Range<u64> {
        let tail = self.file_len - pos;
        let len = if self.seen_media_data && tail <= MAX_PARSED_BOX {
            tail
        } else {
            tail.min(16)
        };
        pos..pos + len
    }
}

/// One sample of a progressive file, located.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    offset: u64,
    dts: u64,
    size: u32,
    duration: u32,
    cts_offset: i32,
    sync: bool,
}

#[derive(Debug, Clone)]
struct RemuxTrack {
    id: u32,
    timescale: u32,
    samples: Vec<Sample>,
    /// Media time where presentation starts (first non-empty edit), and the delay before it
    /// (empty edits) in seconds: presentation time = (dts + cts − shift) / timescale + delay.
    edit_shift: i64,
    edit_delay_s: f64,
    /// Some sample has a composition offset (B-frames): `trun` then carries them.
    has_cts: bool,
}

impl RemuxTrack {
    fn presentation_s(&self, media_time: i128) -> f64 {
        (media_time - i128::from(self.edit_shift)) as f64 / f64::from(self.timescale)
            + self.edit_delay_s
    }

    fn sample_pts_s(&self, s: &Sample) -> f64 {
        self.presentation_s(i128::from(s.dts) + i128::from(s.cts_offset))
    }

    /// Presentation end: the latest sample end (with B-frames, not the last in decode order).
    fn end_s(&self) -> f64 {
        let end = self
            .samples
            .iter()
            .map(|s| i128::from(s.dts) + i128::from(s.cts_offset) + i128::from(s.duration))
            .max();
        end.map_or(0.0, |end| self.presentation_s(end))
    }
}

/// The source byte ranges one fragment is built from: sorted, merged, ready to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentPlan {
    pub fetch: Vec<Range<u64>>,
}

/// A progressive MP4's chosen tracks, planned as fragments.
#[derive(Debug, Clone)]
pub struct Remuxer {
    /// Video first, then audio; one or two tracks.
    tracks: Vec<RemuxTrack>,
    /// For each fragment, the sample index range of each track.
    fragments: Vec<Vec<Range<usize>>>,
    index: FragmentIndex,
    init: Vec<u8>,
    codecs: Vec<String>,
    mime_type: String,
    dropped: Vec<String>,
}

impl Remuxer {
    /// Reads a complete `moov` box (header included), as [`MoovLocator`] found it.
    pub fn from_moov(moov: &[u8]) -> Result<Remuxer, MediaError> {
        let moov = Boxes::new(moov, 0)
            .next()
            .ok_or(MediaError::MissingBox("moov"))??;
        if &moov.kind.0 != b"moov" {
            return Err(MediaError::MissingBox("moov"));
        }
        let mvhd = moov.required(b"mvhd", "mvhd")?;
        let mut traks = Vec::new();
        for child in moov.children() {
            let child = child?;
            match &child.kind.0 {
                b"trak" if traks.len() < super::MAX_TRACKS => {
                    traks.push((moov::parse_trak(&child)?, child))
                }
                b"mvex" => {
                    return Err(MediaError::malformed(
                        "progressive MP4",
                        "already fragmented (moov has mvex)",
                    ))
                }
                _ => {}
            }
        }

        let video = traks
            .iter()
            .find(|(t, _)| t.kind == TrackKind::Video && matches!(t.codec, Codec::Avc { .. }));
        let audio = traks
            .iter()
            .find(|(t, _)| t.kind == TrackKind::Audio && t.codec.is_aac());
        let first_video = traks.iter().find(|(t, _)| t.kind == TrackKind::Video);
        if video.is_none() {
            if let Some((t, _)) = first_video {
                // A film whose picture cannot be remuxed is not worth playing as sound only.
                return Err(MediaError::UnsupportedCodec(t.codec.name()));
            }
        }
        let chosen: Vec<&(Track, Mp4Box<'_>)> = video.into_iter().chain(audio).collect();
        if chosen.is_empty() {
            return Err(MediaError::malformed(
                "progressive MP4",
                "no H.264 video or AAC audio track",
            ));
        }
        let dropped = traks
            .iter()
            .filter(|(t, _)| t.kind != TrackKind::Other)
            .filter(|(t, _)| !chosen.iter().any(|(c, _)| c.id == t.id))
            .map(|(t, _)| t.codec.name())
            .collect();

        let movie_timescale = moov::movie_timescale(&mvhd)?;
        let mut tracks = Vec::new();
        let mut kept = Vec::new();
        for pair in chosen {
            let track = read_track(&pair.0, &pair.1, movie_timescale)?;
            // A track without samples would have nothing to cut fragments at.
            if !track.samples.is_empty() {
                tracks.push(track);
                kept.push(pair);
            }
        }
        let chosen = kept;
        if chosen.is_empty() {
            return Err(MediaError::malformed("progressive MP4", "no samples"));
        }
        let has_video = chosen.iter().any(|(t, _)| t.kind == TrackKind::Video);
        let chosen_tracks: Vec<Track> = chosen.iter().map(|(t, _)| t.clone()).collect();
        let (codecs, mime_type) = mp4_mime(&chosen_tracks);
        let mime_type = mime_type.ok_or(MediaError::malformed(
            "progressive MP4",
            "codec without a name",
        ))?;
        let init = init_segment(&mvhd, &chosen, has_video)?;
        let (fragments, index) = plan_fragments(&tracks);
        Ok(Remuxer {
            tracks,
            fragments,
            index,
            init,
            codecs,
            mime_type,
            dropped,
        })
    }

    /// `ftyp` + `moov` with `mvex`: the first append.
    pub fn init_segment(&self) -> &[u8] {
        &self.init
    }

    /// `video/mp4; codecs="avc1.…,mp4a.40.2"` (or `audio/mp4`).
    pub fn mime_type(&self) -> &str {
        &self.mime_type
    }

    pub fn codecs(&self) -> &[String] {
        &self.codecs
    }

    /// Media tracks left out (second video tracks, audio that is not AAC), by codec name.
    pub fn dropped_tracks(&self) -> &[String] {
        &self.dropped
    }

    /// Time → fragment; byte ranges are the hulls of each fragment's samples.
    pub fn index(&self) -> &FragmentIndex {
        &self.index
    }

    pub fn fragment_count(&self) -> usize {
        self.fragments.len()
    }

    /// The byte ranges of the source file that fragment `index` is built from.
    pub fn fragment_plan(&self, index: usize) -> Option<FragmentPlan> {
        let ranges = self.fragments.get(index)?;
        let mut spans: Vec<Range<u64>> = self
            .tracks
            .iter()
            .zip(ranges)
            .flat_map(|(t, r)| t.samples[r.clone()].iter())
            .map(|s| s.offset..s.offset + u64::from(s.size))
            .filter(|r| !r.is_empty())
            .collect();
        spans.sort_unstable_by_key(|r| r.start);
        let mut fetch: Vec<Range<u64>> = Vec::new();
        for span in spans {
            match fetch.last_mut() {
                Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
                _ => fetch.push(span),
            }
        }
        Some(FragmentPlan { fetch })
    }

    /// Builds fragment `index` as `moof`+`mdat`. `fetched[k]` holds the bytes of
    /// `fragment_plan(index).fetch[k]`.
    pub fn build_fragment(&self, index: usize, fetched: &[&[u8]]) -> Result<Vec<u8>, MediaError> {
        let plan = self
            .fragment_plan(index)
            .ok_or(MediaError::malformed("remux", "no such fragment"))?;
        if plan.fetch.len() != fetched.len()
            || plan
                .fetch
                .iter()
                .zip(fetched)
                .any(|(r, b)| r.end - r.start != b.len() as u64)
        {
            return Err(MediaError::malformed(
                "remux",
                "fetched bytes do not match the fragment plan",
            ));
        }
        let ranges = &self.fragments[index];

        let mut w = BoxWriter::new();
        let moof = w.begin(b"moof");
        let mfhd = w.begin_full(b"mfhd", 0, 0);
        w.u32(index as u32 + 1);
        w.end(mfhd);
        // (position of the data_offset field, bytes of sample data before this track's)
        let mut offsets = Vec::new();
        let mut data_len: u64 = 0;
        for (track, range) in self.tracks.iter().zip(ranges) {
            let samples = &track.samples[range.clone()];
            let Some(first) = samples.first() else {
                continue;
            };
            let traf = w.begin(b"traf");
            // default-base-is-moof: data offsets count from the moof's first byte.
            let tfhd = w.begin_full(b"tfhd", 0, 0x02_0000);
            w.u32(track.id);
            w.end(tfhd);
            let tfdt = w.begin_full(b"tfdt", 1, 0);
            w.u64(first.dts);
            w.end(tfdt);
            let cts = track.has_cts;
            let negative = samples.iter().any(|s| s.cts_offset < 0);
            let flags = 0x001 | 0x100 | 0x200 | 0x400 | if cts { 0x800 } else { 0 };
            let trun = w.begin_full(b"trun", u8::from(negative), flags);
            w.u32(samples.len() as u32);
            offsets.push((w.buf.len(), data_len));
            w.u32(0); // data offset, patched below
            for s in samples {
                w.u32(s.duration);
                w.u32(s.size);
                // sample_depends_on = 2 for sync samples; depends_on = 1 and is_non_sync_sample
                // for the others (ISO/IEC 14496-12 §8.8.3.1).
                w.u32(if s.sync { 0x0200_0000 } else { 0x0101_0000 });
                if cts {
                    w.u32(s.cts_offset as u32);
                }
                data_len += u64::from(s.size);
            }
            w.end(trun);
            w.end(traf);
        }
        w.end(moof);

        if data_len > MAX_FRAGMENT_LEN {
            // Only a file whose samples overlap (or a GOP of minutes at a huge bitrate) gets
            // here; building it would hold it all in memory.
            return Err(MediaError::TooLarge {
                what: "remuxed fragment",
                size: data_len,
                limit: MAX_FRAGMENT_LEN,
            });
        }
        let moof_len = w.buf.len() as u64;
        let large = data_len + 8 > u64::from(u32::MAX);
        let mdat_header: u64 = if large { 16 } else { 8 };
        for (pos, before) in offsets {
            let offset = u32::try_from(moof_len + mdat_header + before)
                .map_err(|_| MediaError::malformed("remux", "fragment larger than 4 GiB"))?;
            w.patch_u32(pos, offset);
        }
        if large {
            w.u32(1);
            w.bytes(b"mdat");
            w.u64(data_len + 16);
        } else {
            w.u32(data_len as u32 + 8);
            w.bytes(b"mdat");
        }
        w.buf.reserve(data_len as usize);
        for (track, range) in self.tracks.iter().zip(ranges) {
            for s in &track.samples[range.clone()] {
                if s.size == 0 {
                    continue; // nothing to copy, and no fetched range need hold it
                }
                let end = s.offset + u64::from(s.size);
                // The last fetched range starting at or before the sample holds all of it.
                let k = plan.fetch.partition_point(|r| r.start <= s.offset);
                let bytes = k
                    .checked_sub(1)
                    .and_then(|k| {
                        let r = &plan.fetch[k];
                        slice(fetched[k], s.offset - r.start, end - r.start)
                    })
                    .ok_or(MediaError::malformed(
                        "remux",
                        "sample outside the fetched bytes",
                    ))?;
                w.bytes(bytes);
            }
        }
        Ok(w.buf)
    }
}

/// Reads a chosen track's sample tables and edit list.
fn read_track(
    track: &Track,
    trak: &Mp4Box<'_>,
    movie_timescale: u32,
) -> Result<RemuxTrack, MediaError> {
    if track.timescale == 0 {
        return Err(MediaError::malformed("mdhd", "timescale is 0"));
    }
    let stbl = trak
        .required(b"mdia", "mdia")?
        .required(b"minf", "minf")?
        .required(b"stbl", "stbl")?;
    let samples = sample_table(&stbl)?;
    let (edit_shift, edit_delay) = match trak.child(b"edts")? {
        Some(edts) => match edts.child(b"elst")? {
            Some(elst) => edit_list(&elst)?,
            None => (0, 0),
        },
        None => (0, 0),
    };
    let edit_delay_s = if movie_timescale > 0 {
        edit_delay as f64 / f64::from(movie_timescale)
    } else {
        0.0
    };
    Ok(RemuxTrack {
        id: track.id,
        timescale: track.timescale,
        has_cts: samples.iter().any(|s| s.cts_offset != 0),
        samples,
        edit_shift,
        edit_delay_s,
    })
}

/// (media time of the first non-empty edit, total duration of the empty edits before it).
fn edit_list(elst: &Mp4Box<'_>) -> Result<(i64, u64), MediaError> {
    let (version, _, mut r) = elst.full("elst")?;
    let entry_len = if version == 1 { 20 } else { 12 };
    let count = table_count(&mut r, entry_len, "elst")?;
    let mut delay: u64 = 0;
    for _ in 0..count {
        let (duration, media_time) = if version == 1 {
            (r.u64()?, r.u64()? as i64)
        } else {
            (u64::from(r.u32()?), i64::from(r.i32()?))
        };
        r.skip(4)?; // media rate
        if media_time == -1 {
            delay = delay.saturating_add(duration);
        } else {
            return Ok((media_time, delay));
        }
    }
    Ok((0, delay))
}

/// Locates every sample of a track from `stsz`/`stz2`, `stts`, `ctts`, `stss`, `stsc`, `stco`/`co64`.
fn sample_table(stbl: &Mp4Box<'_>) -> Result<Vec<Sample>, MediaError> {
    let boxes: Vec<Mp4Box<'_>> = stbl.children().collect::<Result<_, _>>()?;
    // The first box of a kind, as players read duplicates.
    let get = |k: &[u8; 4]| boxes.iter().find(|b| &b.kind.0 == k);

    // Sizes: a constant, or a table (stz2 packs 4, 8 or 16 bits per entry).
    let (sizes, count) = if let Some(stsz) = get(b"stsz") {
        let (_, _, mut r) = stsz.full("stsz")?;
        let constant = r.u32()?;
        if constant != 0 {
            (SampleSizes::Constant(constant), r.u32()? as usize)
        } else {
            let count = table_count(&mut r, 4, "stsz")?;
            (
                SampleSizes::Table {
                    data: r.rest(),
                    bits: 32,
                },
                count,
            )
        }
    } else if let Some(stz2) = get(b"stz2") {
        let (_, _, mut r) = stz2.full("stz2")?;
        let bits = (r.u32()? & 0xff) as u8;
        if !matches!(bits, 4 | 8 | 16) {
            return Err(MediaError::malformed(
                "stz2",
                "field size is not 4, 8 or 16",
            ));
        }
        let count = r.u32()? as usize;
        if count.saturating_mul(usize::from(bits)).div_ceil(8) > r.remaining() {
            return Err(MediaError::Truncated("stz2"));
        }
        (
            SampleSizes::Table {
                data: r.rest(),
                bits,
            },
            count,
        )
    } else {
        return Err(MediaError::MissingBox("stsz"));
    };
    if count > MAX_SAMPLES_PER_TRACK {
        return Err(MediaError::TooManyEntries {
            what: "samples in a track",
            count: count as u64,
            limit: MAX_SAMPLES_PER_TRACK as u64,
        });
    }

    // Chunk offsets and the sample-to-chunk runs.
    let chunk_offsets: Vec<u64> = if let Some(stco) = get(b"stco") {
        let (_, _, mut r) = stco.full("stco")?;
        let n = table_count(&mut r, 4, "stco")?;
        (0..n)
            .map(|_| r.u32().map(u64::from))
            .collect::<Result<_, _>>()?
    } else if let Some(co64) = get(b"co64") {
        let (_, _, mut r) = co64.full("co64")?;
        let n = table_count(&mut r, 8, "co64")?;
        (0..n).map(|_| r.u64()).collect::<Result<_, _>>()?
    } else {
        return Err(MediaError::MissingBox("stco"));
    };
    let stsc = get(b"stsc").ok_or(MediaError::MissingBox("stsc"))?;
    let (_, _, mut r) = stsc.full("stsc")?;
    let n = table_count(&mut r, 12, "stsc")?;
    let mut runs = Vec::with_capacity(n);
    for _ in 0..n {
        let first_chunk = r.u32()?;
        let per_chunk = r.u32()?;
        let description = r.u32()?;
        if description != 1 {
            return Err(MediaError::UnsupportedCodec(
                "a track with several sample descriptions".into(),
            ));
        }
        if first_chunk == 0 || runs.last().is_some_and(|&(f, _)| first_chunk <= f) {
            return Err(MediaError::malformed(
                "stsc",
                "first chunks not increasing from 1",
            ));
        }
        runs.push((first_chunk, per_chunk));
    }

    let mut samples = Vec::with_capacity(count);
    let mut run = 0;
    'chunks: for (chunk_index, &chunk_offset) in chunk_offsets.iter().enumerate() {
        let chunk_number = chunk_index as u64 + 1;
        while runs
            .get(run + 1)
            .is_some_and(|&(first, _)| u64::from(first) <= chunk_number)
        {
            run += 1;
        }
        let Some(&(first, per_chunk)) = runs.get(run) else {
            break;
        };
        if u64::from(first) > chunk_number {
            return Err(MediaError::malformed("stsc", "does not start at chunk 1"));
        }
        let mut offset = chunk_offset;
        for _ in 0..per_chunk {
            if samples.len() == count {
                break 'chunks;
            }
            let size = sizes
                .get(samples.len())
                .ok_or(MediaError::Truncated("stsz"))?;
            samples.push(Sample {
                offset,
                dts: 0,
                size,
                duration: 0,
                cts_offset: 0,
                sync: true,
            });
            offset = offset
                .checked_add(u64::from(size))
                .ok_or(MediaError::malformed("stsz", "sample offsets overflow"))?;
        }
    }
    if samples.len() != count {
        return Err(MediaError::malformed(
            "stsc",
            "chunks hold fewer samples than stsz",
        ));
    }

    // Decode times.
    let stts = get(b"stts").ok_or(MediaError::MissingBox("stts"))?;
    let (_, _, mut r) = stts.full("stts")?;
    let n = table_count(&mut r, 8, "stts")?;
    let mut i = 0;
    let mut dts: u64 = 0;
    for _ in 0..n {
        let run = r.u32()?;
        let delta = r.u32()?;
        for _ in 0..run {
            let Some(s) = samples.get_mut(i) else { break };
            s.dts = dts;
            s.duration = delta;
            dts = dts.saturating_add(u64::from(delta));
            i += 1;
        }
    }
    if i != count {
        return Err(MediaError::malformed(
            "stts",
            "covers fewer samples than stsz",
        ));
    }

    // Composition offsets (version 0 is unsigned on paper, but writers put negative values
    // there too; reading both as signed is what players do).
    if let Some(ctts) = get(b"ctts") {
        let (_, _, mut r) = ctts.full("ctts")?;
        let n = table_count(&mut r, 8, "ctts")?;
        let mut i = 0;
        for _ in 0..n {
            let run = r.u32()?;
            let offset = r.i32()?;
            for _ in 0..run {
                let Some(s) = samples.get_mut(i) else { break };
                s.cts_offset = offset;
                i += 1;
            }
        }
    }

    // Sync samples (all of them when there is no stss).
    if let Some(stss) = get(b"stss") {
        let (_, _, mut r) = stss.full("stss")?;
        let n = table_count(&mut r, 4, "stss")?;
        samples.iter_mut().for_each(|s| s.sync = false);
        for _ in 0..n {
            let number = r.u32()? as usize;
            if let Some(s) = number.checked_sub(1).and_then(|i| samples.get_mut(i)) {
                s.sync = true;
            }
        }
    }
    Ok(samples)
}

/// Sample sizes: one for all, or a table of 4-, 8-, 16- or 32-bit big-endian entries.
enum SampleSizes<'a> {
    Constant(u32),
    Table { data: &'a [u8], bits: u8 },
}

impl SampleSizes<'_> {
    fn get(&self, i: usize) -> Option<u32> {
        match *self {
            SampleSizes::Constant(size) => Some(size),
            SampleSizes::Table { data, bits: 4 } => {
                let byte = *data.get(i / 2)?;
                // Two sizes per byte, the first in the high nibble.
                Some(u32::from(if i % 2 == 0 { byte >> 4 } else { byte & 0x0f }))
            }
            SampleSizes::Table { data, bits } => {
                let len = usize::from(bits / 8);
                let field = data.get(i.checked_mul(len)?..(i + 1).checked_mul(len)?)?;
                Some(field.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
            }
        }
    }
}

/// Fragment boundaries for the tracks (video first): sample ranges per fragment, and the index.
fn plan_fragments(tracks: &[RemuxTrack]) -> (Vec<Vec<Range<usize>>>, FragmentIndex) {
    let Some(primary) = tracks.first() else {
        return (Vec::new(), FragmentIndex::default());
    };
    let min_len = (MIN_FRAGMENT_S * f64::from(primary.timescale)) as u64;
    let mut starts: Vec<usize> = Vec::new();
    for (i, s) in primary.samples.iter().enumerate() {
        let cut = match starts.last() {
            None => true,
            Some(&start) => s.sync && s.dts.saturating_sub(primary.samples[start].dts) >= min_len,
        };
        if cut {
            starts.push(i);
        }
    }
    // Presentation times of the fragments' first samples, kept non-decreasing so that times
    // stay contiguous even when composition offsets are nonsense.
    let mut boundaries: Vec<f64> = Vec::with_capacity(starts.len());
    for &i in &starts {
        let pts = primary.sample_pts_s(&primary.samples[i]);
        boundaries.push(boundaries.last().map_or(pts, |&last: &f64| pts.max(last)));
    }

    // Each track's samples go to the fragment whose time span holds their presentation time; the
    // primary track's by construction.
    let mut fragments: Vec<Vec<Range<usize>>> = vec![Vec::new(); starts.len()];
    for (k, frag) in fragments.iter_mut().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(primary.samples.len());
        frag.push(starts[k]..end);
    }
    for track in &tracks[1..] {
        let len = track.samples.len();
        // cuts[k] is the first sample of fragment k; fragments never reached start at the end.
        let mut cuts = vec![len; starts.len() + 1];
        cuts[0] = 0;
        let mut k = 0;
        for (j, s) in track.samples.iter().enumerate() {
            let pts = track.sample_pts_s(s);
            while k + 1 < boundaries.len() && pts >= boundaries[k + 1] {
                k += 1;
                cuts[k] = j;
            }
        }
        for (k, frag) in fragments.iter_mut().enumerate() {
            frag.push(cuts[k]..cuts[k + 1]);
        }
    }

    let end_s = primary.end_s();
    let index = fragments
        .iter()
        .enumerate()
        .map(|(k, ranges)| {
            let start_time_s = boundaries[k];
            let next = boundaries.get(k + 1).copied().unwrap_or(end_s);
            let hull = tracks
                .iter()
                .zip(ranges)
                .flat_map(|(t, r)| t.samples[r.clone()].iter())
                .map(|s| s.offset..s.offset + u64::from(s.size))
                .reduce(|a, b| a.start.min(b.start)..a.end.max(b.end))
                .unwrap_or(0..0);
            Fragment {
                start_time_s,
                duration_s: (next - start_time_s).max(0.0),
                byte_range: hull,
            }
        })
        .collect();
    (fragments, FragmentIndex::new(index))
}

/// `ftyp` + `moov` (original `mvhd`; each chosen `trak` with its sample tables emptied; `mvex`).
fn init_segment(
    mvhd: &Mp4Box<'_>,
    chosen: &[&(Track, Mp4Box<'_>)],
    has_video: bool,
) -> Result<Vec<u8>, MediaError> {
    let mut w = BoxWriter::new();
    let ftyp = w.begin(b"ftyp");
    w.bytes(b"isom");
    w.u32(0x200);
    w.bytes(b"isomiso6iso2mp41");
    if has_video {
        w.bytes(b"avc1");
    }
    w.end(ftyp);

    let moov = w.begin(b"moov");
    w.bytes(mvhd.raw);
    for (_, trak) in chosen {
        let start = w.begin(b"trak");
        for child in trak.children() {
            let child = child?;
            match &child.kind.0 {
                b"tkhd" | b"edts" => w.bytes(child.raw),
                b"mdia" => write_mdia(&mut w, &child)?,
                _ => {} // tref, udta, meta: about tracks or data this init does not carry
            }
        }
        w.end(start);
    }
    let mvex = w.begin(b"mvex");
    for (track, _) in chosen {
        let trex = w.begin_full(b"trex", 0, 0);
        w.u32(track.id);
        w.u32(1); // default sample description index
        w.u32(0);
        w.u32(0);
        w.u32(0);
        w.end(trex);
    }
    w.end(mvex);
    w.end(moov);
    Ok(w.buf)
}

fn write_mdia(w: &mut BoxWriter, mdia: &Mp4Box<'_>) -> Result<(), MediaError> {
    let start = w.begin(b"mdia");
    for child in mdia.children() {
        let child = child?;
        if &child.kind.0 == b"minf" {
            let minf = w.begin(b"minf");
            for grandchild in child.children() {
                let grandchild = grandchild?;
                if &grandchild.kind.0 == b"stbl" {
                    write_empty_stbl(w, &grandchild)?;
                } else {
                    w.bytes(grandchild.raw);
                }
            }
            w.end(minf);
        } else {
            w.bytes(child.raw);
        }
    }
    w.end(start);
    Ok(())
}

/// `stbl` with the original `stsd` and empty `stts`, `stsc`, `stsz`, `stco`: the samples are in
/// the fragments.
fn write_empty_stbl(w: &mut BoxWriter, stbl: &Mp4Box<'_>) -> Result<(), MediaError> {
    let start = w.begin(b"stbl");
    w.bytes(stbl.required(b"stsd", "stsd")?.raw);
    for kind in [b"stts", b"stsc", b"stco"] {
        let b = w.begin_full(kind, 0, 0);
        w.u32(0);
        w.end(b);
    }
    let stsz = w.begin_full(b"stsz", 0, 0);
    w.u32(0);
    w.u32(0);
    w.end(stsz);
    w.end(start);
    Ok(())
}

//! WebM (and the Matroska it is a subset of), as far as MediaSource needs: the init segment, the
//! codecs string, and time → byte ranges from `Cues` or from scanning clusters.
//!
//! A WebM file is an EBML header, then one `Segment` holding `SeekHead`, `Info`, `Tracks`,
//! maybe `Cues`/`Tags`, then `Cluster`s (ffmpeg `-cues_to_front 1` puts `Cues` before the first
//! cluster; by default they come after the last). The init segment MediaSource wants is every
//! byte before the first `Cluster`; each cluster is then appendable on its own.
//!
//! Invariants:
//! - Element ids are 1–4 bytes and sizes 1–8 bytes; anything else is an error, as is an
//!   unknown-size element other than `Segment` and `Cluster`.
//! - Only `EBML`, `SeekHead`, `Info`, `Tracks` and `Cues` are buffered whole, each under a limit;
//!   everything else (clusters, attachments, tags) is skipped by its size.
//! - Fragments from `Cues` tile the file from their first cluster, in order, with contiguous times.
//! - [`ClusterScanner`] buffers at most one element header (12 bytes) or a cluster timecode.

use std::ops::Range;

use super::codecs::{self, Codec};
use super::moov::TrackKind;
use super::{
    mime_with_codecs, slice, slice_from, Fragment, FragmentIndex, MediaError, Progress,
    MAX_FRAGMENTS,
};

pub const ID_EBML: u32 = 0x1A45_DFA3;
const ID_DOC_TYPE: u32 = 0x4282;
const ID_SEGMENT: u32 = 0x1853_8067;
const ID_SEEK_HEAD: u32 = 0x114D_9B74;
const ID_SEEK: u32 = 0x4DBB;
const ID_SEEK_ID: u32 = 0x53AB;
const ID_SEEK_POSITION: u32 = 0x53AC;
const ID_INFO: u32 = 0x1549_A966;
const ID_TIMECODE_SCALE: u32 = 0x2A_D7B1;
const ID_DURATION: u32 = 0x4489;
const ID_TRACKS: u32 = 0x1654_AE6B;
const ID_TRACK_ENTRY: u32 = 0xAE;
const ID_TRACK_NUMBER: u32 = 0xD7;
const ID_TRACK_TYPE: u32 = 0x83;
const ID_CODEC_ID: u32 = 0x86;
const ID_CODEC_PRIVATE: u32 = 0x63A2;
const ID_CUES: u32 = 0x1C53_BB6B;
const ID_CUE_POINT: u32 = 0xBB;
const ID_CUE_TIME: u32 = 0xB3;
const ID_CUE_TRACK_POSITIONS: u32 = 0xB7;
const ID_CUE_TRACK: u32 = 0xF7;
const ID_CUE_CLUSTER_POSITION: u32 = 0xF1;
const ID_CLUSTER: u32 = 0x1F43_B675;
const ID_TIMECODE: u32 = 0xE7;

/// Level-1 elements: inside an unknown-size cluster, one of these ends the cluster.
const LEVEL1_IDS: [u32; 9] = [
    ID_SEEK_HEAD,
    ID_INFO,
    ID_TRACKS,
    ID_CUES,
    ID_CLUSTER,
    0x1254_C367, // Tags
    0x1043_A770, // Chapters
    0x1941_A469, // Attachments
    ID_EBML,
];

/// Largest `EBML`, `SeekHead`, `Info` element parsed whole.
const MAX_HEADER_ELEMENT: u64 = 1 << 20;
/// Largest `Tracks` or `Cues` element parsed whole.
const MAX_TABLE_ELEMENT: u64 = super::MAX_PARSED_BOX;
/// The default `TimecodeScale`: timestamps in milliseconds.
const DEFAULT_TIMECODE_SCALE_NS: u64 = 1_000_000;

/// An element header: id (with its length marker, as specs write ids), data size (`None` for
/// "unknown"), and the header's length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ElementHeader {
    id: u32,
    size: Option<u64>,
    header_len: usize,
}

enum HeaderRead {
    Header(ElementHeader),
    NeedBytes(usize),
}

fn read_element_header(buf: &[u8], offset: u64) -> Result<HeaderRead, MediaError> {
    let bad = |reason| MediaError::BadElement { offset, reason };
    let Some(&first) = buf.first() else {
        return Ok(HeaderRead::NeedBytes(1));
    };
    let id_len = first.leading_zeros() as usize + 1;
    if id_len > 4 {
        return Err(bad("element id longer than 4 bytes"));
    }
    let Some(&size_first) = buf.get(id_len) else {
        return Ok(HeaderRead::NeedBytes(id_len + 1));
    };
    let size_len = size_first.leading_zeros() as usize + 1;
    if size_len > 8 {
        return Err(bad("element size longer than 8 bytes"));
    }
    let header_len = id_len + size_len;
    let Some(header) = buf.get(..header_len) else {
        return Ok(HeaderRead::NeedBytes(header_len));
    };
    let id = header[..id_len]
        .iter()
        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    let mut size = u64::from(size_first) & (0xff >> size_len);
    for &b in &header[id_len + 1..] {
        size = (size << 8) | u64::from(b);
    }
    // All value bits set means "unknown size".
    let unknown = size == (1u64 << (7 * size_len)) - 1;
    Ok(HeaderRead::Header(ElementHeader {
        id,
        size: (!unknown).then_some(size),
        header_len,
    }))
}

/// Children of a complete master element.
struct Elements<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
    done: bool,
}

impl<'a> Elements<'a> {
    fn new(buf: &'a [u8], base: u64) -> Self {
        Elements {
            buf,
            pos: 0,
            base,
            done: false,
        }
    }
}

impl<'a> Iterator for Elements<'a> {
    /// (id, payload, offset of the element)
    type Item = Result<(u32, &'a [u8], u64), MediaError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.buf.len() {
            return None;
        }
        let offset = self.base + self.pos as u64;
        let rest = &self.buf[self.pos..];
        let result = match read_element_header(rest, offset) {
            Err(err) => Err(err),
            Ok(HeaderRead::NeedBytes(_)) => Err(MediaError::Truncated("EBML element header")),
            Ok(HeaderRead::Header(h)) => match h.size {
                None => Err(MediaError::BadElement {
                    offset,
                    reason: "unknown size inside a sized element",
                }),
                Some(size) if size > (rest.len() - h.header_len) as u64 => {
                    Err(MediaError::BadElement {
                        offset,
                        reason: "element extends past its parent",
                    })
                }
                Some(size) => {
                    let end = h.header_len + size as usize;
                    self.pos += end;
                    Ok((h.id, &rest[h.header_len..end], offset))
                }
            },
        };
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }
}

fn uint(data: &[u8]) -> Result<u64, MediaError> {
    if data.len() > 8 {
        return Err(MediaError::malformed(
            "EBML unsigned integer",
            "longer than 8 bytes",
        ));
    }
    Ok(data.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

fn float(data: &[u8]) -> Result<f64, MediaError> {
    match data.len() {
        0 => Ok(0.0),
        4 => Ok(f64::from(f32::from_be_bytes([
            data[0], data[1], data[2], data[3],
        ]))),
        8 => {
            let mut b = [0; 8];
            b.copy_from_slice(data);
            Ok(f64::from_be_bytes(b))
        }
        _ => Err(MediaError::malformed("EBML float", "not 0, 4 or 8 bytes")),
    }
}

/// One Matroska track.
#[derive(Debug, Clone, PartialEq)]
pub struct WebmTrack {
    pub number: u64,
    pub kind: TrackKind,
    /// `CodecID` as written (`V_VP9`, `A_OPUS`, ...).
    pub codec_id: String,
    pub codec: Codec,
}

/// Where things are in a WebM file, learnt from its first bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct WebmLayout {
    /// `DocType`: `webm` or `matroska`.
    pub doc_type: String,
    /// The EBML header and everything in the segment before the first cluster.
    pub init_range: Range<u64>,
    /// Offset of the segment's payload: Matroska positions (`Cues`, `SeekHead`) count from here.
    pub segment_data_start: u64,
    /// End of the segment, when its size is known.
    pub segment_end: Option<u64>,
    /// Nanoseconds per timestamp unit.
    pub timecode_scale_ns: u64,
    pub duration_s: Option<f64>,
    pub tracks: Vec<WebmTrack>,
    /// Codecs (`vp9`, `opus`, ...), video first.
    pub codecs: Vec<String>,
    /// `video/webm; codecs="vp9,opus"` (or `audio/webm`); `None` when a codec cannot be named or
    /// the file is Matroska rather than WebM (MediaSource takes only WebM).
    pub mime_type: Option<String>,
    /// Time → bytes from `Cues` before the first cluster. The last fragment ends at the segment's
    /// end (`u64::MAX` for an unknown-size segment: see [`FragmentIndex::clamp_to_file`]).
    pub index: Option<FragmentIndex>,
    /// Where the `Cues` are when they come after the clusters (from the `SeekHead`): fetch from
    /// there and call [`WebmLayout::parse_cues`] to be able to seek.
    pub cues_offset: Option<u64>,
    /// Offset of the first `Cluster`.
    pub first_cluster: u64,
}

impl WebmLayout {
    /// Parses a prefix of the file (from byte 0) until the first cluster's header.
    /// [`MediaError::Unrecognised`] if it does not start with an EBML header.
    pub fn parse(prefix: &[u8]) -> Result<Progress<WebmLayout>, MediaError> {
        let mut pos: u64 = 0;
        // The EBML header: its 4-byte id tells WebM from anything else.
        match prefix.get(..4) {
            Some(id) if id != ID_EBML.to_be_bytes() => return Err(MediaError::Unrecognised),
            None if !ID_EBML.to_be_bytes().starts_with(prefix) => {
                return Err(MediaError::Unrecognised)
            }
            _ => {}
        }
        let (header, ebml) = match element(prefix, pos, MAX_HEADER_ELEMENT)? {
            Step::Need(until) => return Ok(Progress::NeedMore { until }),
            Step::Element(header, data) => (header, data),
        };
        let mut doc_type = String::from("matroska");
        for child in Elements::new(ebml.unwrap_or(&[]), pos) {
            let (id, data, _) = child?;
            if id == ID_DOC_TYPE {
                doc_type = String::from_utf8_lossy(data)
                    .trim_end_matches('\0')
                    .to_string();
            }
        }
        pos += element_len(&header, pos)?;

        // The Segment, after whatever else sits at the top level (Void, usually nothing).
        let (segment_data_start, segment_end) = loop {
            let header = match peek(prefix, pos)? {
                Step::Need(until) => return Ok(Progress::NeedMore { until }),
                Step::Element(header, _) => header,
            };
            let data_start = pos + header.header_len as u64;
            if header.id == ID_SEGMENT {
                break (
                    data_start,
                    header.size.and_then(|s| data_start.checked_add(s)),
                );
            }
            pos += element_len(&header, pos)?;
        };

        let mut info = (DEFAULT_TIMECODE_SCALE_NS, None);
        let mut tracks = Vec::new();
        let mut cues_position = None;
        let mut cues = None;
        pos = segment_data_start;
        let first_cluster = loop {
            if segment_end.is_some_and(|end| pos >= end) {
                return Err(MediaError::malformed("WebM segment", "no cluster"));
            }
            let header = match peek(prefix, pos)? {
                Step::Need(until) => return Ok(Progress::NeedMore { until }),
                Step::Element(header, _) => header,
            };
            let limit = match header.id {
                ID_CLUSTER => break pos,
                ID_SEEK_HEAD | ID_INFO => MAX_HEADER_ELEMENT,
                ID_TRACKS | ID_CUES => MAX_TABLE_ELEMENT,
                _ => {
                    pos += element_len(&header, pos)?;
                    continue;
                }
            };
            let data = match element(prefix, pos, limit)? {
                Step::Need(until) => return Ok(Progress::NeedMore { until }),
                Step::Element(_, data) => data.unwrap_or(&[]),
            };
            let data_offset = pos + header.header_len as u64;
            match header.id {
                ID_SEEK_HEAD => {
                    cues_position = cues_position.or(seek_head_cues(data, data_offset)?)
                }
                ID_INFO => info = parse_info(data, data_offset)?,
                ID_TRACKS => tracks = parse_tracks(data, data_offset)?,
                _ => cues = Some(data_offset..data_offset + data.len() as u64),
            }
            pos += element_len(&header, pos)?;
        };

        let (timecode_scale_ns, duration_units) = info;
        let duration_s = duration_units
            .map(|d| d * timecode_scale_ns as f64 / 1e9)
            .filter(|d| d.is_finite());
        let mut layout = WebmLayout {
            doc_type,
            init_range: 0..first_cluster,
            segment_data_start,
            segment_end,
            timecode_scale_ns,
            duration_s,
            codecs: Vec::new(),
            mime_type: None,
            tracks,
            index: None,
            cues_offset: None,
            first_cluster,
        };
        layout.name_codecs();
        match cues {
            Some(range) => {
                let data = slice(prefix, range.start, range.end).unwrap_or(&[]);
                let end = segment_end.unwrap_or(u64::MAX);
                layout.index = Some(layout.index_from_cues(data, range.start, end)?);
            }
            None => {
                layout.cues_offset = cues_position
                    .and_then(|p| segment_data_start.checked_add(p))
                    .filter(|&p| p >= first_cluster);
            }
        }
        Ok(Progress::Ready(layout))
    }

    fn name_codecs(&mut self) {
        let media = |kind| self.tracks.iter().filter(move |t| t.kind == kind);
        let mut all_named = true;
        let mut codecs = Vec::new();
        for track in media(TrackKind::Video).chain(media(TrackKind::Audio)) {
            match track.codec.codecs_string() {
                Some(c) if !codecs.contains(&c) => codecs.push(c),
                Some(_) => {}
                None => all_named = false,
            }
        }
        let mime = if media(TrackKind::Video).next().is_some() {
            "video/webm"
        } else {
            "audio/webm"
        };
        self.mime_type = (all_named && !codecs.is_empty() && self.doc_type == "webm")
            .then(|| mime_with_codecs(mime, &codecs));
        self.codecs = codecs;
    }

    /// Parses `Cues` fetched from [`WebmLayout::cues_offset`]: `bytes` start at that offset.
    /// The index's last fragment ends where the `Cues` begin.
    pub fn parse_cues(&self, bytes: &[u8]) -> Result<Progress<FragmentIndex>, MediaError> {
        let Some(offset) = self.cues_offset else {
            return Err(MediaError::MissingBox("Cues"));
        };
        let header = match peek(bytes, 0)? {
            Step::Need(until) => {
                return Ok(Progress::NeedMore {
                    until: offset.saturating_add(until),
                })
            }
            Step::Element(header, _) => header,
        };
        if header.id != ID_CUES {
            return Err(MediaError::malformed(
                "Cues",
                "no Cues element at the SeekHead's position",
            ));
        }
        let data = match element(bytes, 0, MAX_TABLE_ELEMENT)? {
            Step::Need(until) => {
                return Ok(Progress::NeedMore {
                    until: offset.saturating_add(until),
                })
            }
            Step::Element(_, data) => data.unwrap_or(&[]),
        };
        let data_offset = offset + header.header_len as u64;
        self.index_from_cues(data, data_offset, offset)
            .map(Progress::Ready)
    }

    /// Fragments from cue points: one per distinct cluster position (for the first video track,
    /// or every track if it has none), each running to the next; the last one ends at `end`.
    fn index_from_cues(
        &self,
        cues: &[u8],
        base: u64,
        end: u64,
    ) -> Result<FragmentIndex, MediaError> {
        let video = self
            .tracks
            .iter()
            .find(|t| t.kind == TrackKind::Video)
            .map(|t| t.number);
        // (cluster position, time, for the video track)
        let mut points: Vec<(u64, u64, bool)> = Vec::new();
        for point in Elements::new(cues, base) {
            let (id, data, offset) = point?;
            if id != ID_CUE_POINT {
                continue;
            }
            if points.len() == MAX_FRAGMENTS {
                return Err(MediaError::TooManyEntries {
                    what: "Cues",
                    count: points.len() as u64 + 1,
                    limit: MAX_FRAGMENTS as u64,
                });
            }
            let mut time = None;
            let mut position: Option<(u64, bool)> = None;
            for child in Elements::new(data, offset) {
                let (id, data, offset) = child?;
                match id {
                    ID_CUE_TIME => time = Some(uint(data)?),
                    ID_CUE_TRACK_POSITIONS => {
                        let mut track = None;
                        let mut cluster = None;
                        for field in Elements::new(data, offset) {
                            let (id, data, _) = field?;
                            match id {
                                ID_CUE_TRACK => track = Some(uint(data)?),
                                ID_CUE_CLUSTER_POSITION => cluster = Some(uint(data)?),
                                _ => {}
                            }
                        }
                        if let Some(cluster) = cluster {
                            let is_video = video.is_some() && track == video;
                            if position.is_none_or(|(_, v)| is_video && !v) {
                                position = Some((cluster, is_video));
                            }
                        }
                    }
                    _ => {}
                }
            }
            if let (Some(time), Some((cluster, is_video))) = (time, position) {
                points.push((cluster, time, is_video));
            }
        }
        if points.iter().any(|p| p.2) {
            points.retain(|p| p.2);
        }
        points.sort_unstable();
        points.dedup_by_key(|p| p.0);

        let scale = self.timecode_scale_ns as f64 / 1e9;
        let mut fragments: Vec<Fragment> = Vec::with_capacity(points.len());
        for (i, &(position, time, _)) in points.iter().enumerate() {
            let start = self
                .segment_data_start
                .checked_add(position)
                .filter(|&s| s >= self.first_cluster && s < end)
                .ok_or(MediaError::malformed(
                    "Cues",
                    "cluster position outside the clusters",
                ))?;
            let next = points.get(i + 1);
            let stop = match next {
                Some(&(p, _, _)) => self.segment_data_start.saturating_add(p),
                None => end,
            };
            let start_time_s = time as f64 * scale;
            let end_time_s = match next {
                Some(&(_, t, _)) if t >= time => t as f64 * scale,
                Some(_) => {
                    return Err(MediaError::malformed("Cues", "times go backwards"));
                }
                None => self.duration_s.unwrap_or(start_time_s).max(start_time_s),
            };
            fragments.push(Fragment {
                start_time_s,
                duration_s: end_time_s - start_time_s,
                byte_range: start..stop,
            });
        }
        Ok(FragmentIndex::new(fragments))
    }

    /// A scanner for the clusters, starting at the first one.
    pub fn scanner(&self) -> ClusterScanner {
        ClusterScanner::new(self.first_cluster, self.timecode_scale_ns)
    }
}

enum Step<'a> {
    Need(u64),
    /// The header, and the payload when it was asked for and is complete.
    Element(ElementHeader, Option<&'a [u8]>),
}

/// The element header at `pos` of a prefix.
fn peek(prefix: &[u8], pos: u64) -> Result<Step<'_>, MediaError> {
    let rest = slice_from(prefix, pos);
    Ok(match read_element_header(rest, pos)? {
        HeaderRead::NeedBytes(n) => Step::Need(pos + n as u64),
        HeaderRead::Header(h) => Step::Element(h, None),
    })
}

/// The whole element at `pos` of a prefix, at most `limit` bytes of payload.
fn element(prefix: &[u8], pos: u64, limit: u64) -> Result<Step<'_>, MediaError> {
    let header = match peek(prefix, pos)? {
        Step::Element(h, _) => h,
        need => return Ok(need),
    };
    let size = header.size.ok_or(MediaError::BadElement {
        offset: pos,
        reason: "unknown size where a size is required",
    })?;
    if size > limit {
        return Err(MediaError::TooLarge {
            what: "EBML element",
            size,
            limit,
        });
    }
    let start = pos + header.header_len as u64;
    let end = start.checked_add(size).ok_or(MediaError::BadElement {
        offset: pos,
        reason: "size overflows",
    })?;
    Ok(match slice(prefix, start, end) {
        Some(data) => Step::Element(header, Some(data)),
        None => Step::Need(end),
    })
}

/// Total length of a sized element.
fn element_len(header: &ElementHeader, offset: u64) -> Result<u64, MediaError> {
    header
        .size
        .and_then(|s| s.checked_add(header.header_len as u64))
        .ok_or(MediaError::BadElement {
            offset,
            reason: "unknown size where a size is required",
        })
}

/// The `Cues` position (relative to the segment data) from a `SeekHead`.
fn seek_head_cues(data: &[u8], base: u64) -> Result<Option<u64>, MediaError> {
    for seek in Elements::new(data, base) {
        let (id, data, offset) = seek?;
        if id != ID_SEEK {
            continue;
        }
        let mut target = None;
        let mut position = None;
        for field in Elements::new(data, offset) {
            let (id, data, _) = field?;
            match id {
                ID_SEEK_ID => target = Some(uint(data)?),
                ID_SEEK_POSITION => position = Some(uint(data)?),
                _ => {}
            }
        }
        if target == Some(u64::from(ID_CUES)) {
            return Ok(position);
        }
    }
    Ok(None)
}

/// (`TimecodeScale`, `Duration` in timecode units).
fn parse_info(data: &[u8], base: u64) -> Result<(u64, Option<f64>), MediaError> {
    let mut scale = DEFAULT_TIMECODE_SCALE_NS;
    let mut duration = None;
    for child in Elements::new(data, base) {
        let (id, data, _) = child?;
        match id {
            ID_TIMECODE_SCALE => scale = uint(data)?,
            ID_DURATION => duration = Some(float(data)?).filter(|d| d.is_finite() && *d >= 0.0),
            _ => {}
        }
    }
    if scale == 0 {
        return Err(MediaError::malformed("Info", "TimecodeScale is 0"));
    }
    Ok((scale, duration))
}

fn parse_tracks(data: &[u8], base: u64) -> Result<Vec<WebmTrack>, MediaError> {
    let mut tracks = Vec::new();
    for entry in Elements::new(data, base) {
        let (id, data, offset) = entry?;
        if id != ID_TRACK_ENTRY {
            continue;
        }
        if tracks.len() == super::MAX_TRACKS {
            return Err(MediaError::TooManyEntries {
                what: "Tracks",
                count: tracks.len() as u64 + 1,
                limit: super::MAX_TRACKS as u64,
            });
        }
        let mut number = 0;
        let mut kind = TrackKind::Other;
        let mut codec_id = String::new();
        let mut private: &[u8] = &[];
        for field in Elements::new(data, offset) {
            let (id, data, _) = field?;
            match id {
                ID_TRACK_NUMBER => number = uint(data)?,
                ID_TRACK_TYPE => {
                    kind = match uint(data)? {
                        1 => TrackKind::Video,
                        2 => TrackKind::Audio,
                        _ => TrackKind::Other,
                    }
                }
                ID_CODEC_ID => {
                    codec_id = String::from_utf8_lossy(data).trim_end_matches('\0').into()
                }
                ID_CODEC_PRIVATE => private = data,
                _ => {}
            }
        }
        let codec = codecs::from_matroska(&codec_id, private);
        tracks.push(WebmTrack {
            number,
            kind,
            codec_id,
            codec,
        });
    }
    Ok(tracks)
}

/// A cluster found by [`ClusterScanner`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScannedCluster {
    /// The cluster's timecode, in seconds.
    pub time_s: f64,
    pub byte_range: Range<u64>,
}

/// Finds clusters in WebM bytes fed sequentially, for files whose `Cues` are not at the front.
/// It may start at the first cluster or at byte 0 (the EBML header and level-1 elements are
/// skipped; the `Segment` is entered). Clusters of unknown size (live muxers) end at the next
/// level-1 element, or at [`ClusterScanner::finish`].
#[derive(Debug, Clone)]
pub struct ClusterScanner {
    /// File offset of the next byte to be fed.
    pos: u64,
    /// An element header being read, or a cluster timecode.
    buf: Vec<u8>,
    state: ClusterState,
    timecode_scale_ns: u64,
    /// The cluster being read: start, end (if sized), timecode.
    open: Option<(u64, Option<u64>, Option<u64>)>,
    error: Option<MediaError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClusterState {
    Header,
    Skip(u64),
    Timecode(usize),
}

impl ClusterScanner {
    /// A scanner whose first fed byte is at `offset`.
    pub fn new(offset: u64, timecode_scale_ns: u64) -> Self {
        ClusterScanner {
            pos: offset,
            buf: Vec::new(),
            state: ClusterState::Header,
            timecode_scale_ns,
            open: None,
            error: None,
        }
    }

    /// File offset of the next byte [`ClusterScanner::feed`] expects.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Feeds the next bytes; returns the clusters completed by them. An error is returned
    /// after the clusters completed before it (by the next call if need be); then the scanner is
    /// stuck and keeps returning it.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<ScannedCluster>, MediaError> {
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

    /// The end of the file: closes a cluster of unknown size.
    pub fn finish(&mut self) -> Result<Option<ScannedCluster>, MediaError> {
        if self.error.is_some() {
            return Ok(None);
        }
        match self.open {
            Some((_, None, _)) => self.close(self.pos).map(Some),
            _ => Ok(None),
        }
    }

    fn close(&mut self, end: u64) -> Result<ScannedCluster, MediaError> {
        let (start, _, timecode) = self.open.take().ok_or(MediaError::malformed(
            "WebM cluster",
            "closed without being open",
        ))?;
        let timecode = timecode.ok_or(MediaError::malformed("WebM cluster", "no Timecode"))?;
        Ok(ScannedCluster {
            time_s: timecode as f64 * self.timecode_scale_ns as f64 / 1e9,
            byte_range: start..end,
        })
    }

    fn feed_inner(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<ScannedCluster>,
    ) -> Result<(), MediaError> {
        loop {
            if let Some((_, Some(end), _)) = self.open {
                if self.pos >= end && self.buf.is_empty() && self.state == ClusterState::Header {
                    out.push(self.close(end)?);
                }
            }
            match self.state {
                ClusterState::Skip(0) => self.state = ClusterState::Header,
                ClusterState::Skip(n) => {
                    if input.is_empty() {
                        return Ok(());
                    }
                    let take = n.min(input.len() as u64);
                    input = &input[take as usize..];
                    self.pos += take;
                    self.state = ClusterState::Skip(n - take);
                }
                ClusterState::Timecode(len) => {
                    if self.buf.len() == len {
                        let timecode = uint(&self.buf)?;
                        if let Some(open) = &mut self.open {
                            open.2.get_or_insert(timecode);
                        }
                        self.buf.clear();
                        self.state = ClusterState::Header;
                        continue;
                    }
                    if input.is_empty() {
                        return Ok(());
                    }
                    let n = (len - self.buf.len()).min(input.len());
                    self.take(&mut input, n);
                }
                ClusterState::Header => {
                    let start = self.pos - self.buf.len() as u64;
                    match read_element_header(&self.buf, start)? {
                        HeaderRead::NeedBytes(need) => {
                            if input.is_empty() {
                                return Ok(());
                            }
                            let n = (need - self.buf.len()).min(input.len());
                            self.take(&mut input, n);
                        }
                        HeaderRead::Header(header) => {
                            self.buf.clear();
                            self.start_element(header, start, out)?;
                        }
                    }
                }
            }
        }
    }

    fn take(&mut self, input: &mut &[u8], n: usize) {
        self.buf.extend_from_slice(&input[..n]);
        *input = &input[n..];
        self.pos += n as u64;
    }

    /// Acts on an element header starting at `start` (its bytes have been consumed).
    fn start_element(
        &mut self,
        header: ElementHeader,
        start: u64,
        out: &mut Vec<ScannedCluster>,
    ) -> Result<(), MediaError> {
        let bad = |reason| MediaError::BadElement {
            offset: start,
            reason,
        };
        let end = header
            .size
            .map(|s| self.pos.checked_add(s).ok_or(bad("size overflows")))
            .transpose()?;
        // An unknown-size cluster ends where the next level-1 element begins.
        if let Some((_, None, _)) = self.open {
            if LEVEL1_IDS.contains(&header.id) {
                out.push(self.close(start)?);
            }
        }
        if let Some((_, Some(cluster_end), _)) = self.open {
            if end.is_none_or(|e| e > cluster_end) {
                return Err(bad("element extends past its cluster"));
            }
        }
        match header.id {
            ID_CLUSTER if self.open.is_none() => {
                self.open = Some((start, end, None));
                self.state = ClusterState::Header;
            }
            ID_SEGMENT if self.open.is_none() => self.state = ClusterState::Header,
            ID_TIMECODE if self.open.is_some() => {
                let len = end.map(|e| e - self.pos).filter(|&l| l <= 8);
                let len = len.ok_or(bad("cluster timecode longer than 8 bytes"))?;
                self.state = ClusterState::Timecode(len as usize);
            }
            _ => {
                let skip = end
                    .map(|e| e - self.pos)
                    .ok_or(bad("unknown size where a size is required"))?;
                self.state = ClusterState::Skip(skip);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(id: u32, payload: &[u8]) -> Vec<u8> {
        let id_bytes = id.to_be_bytes();
        let skip = id_bytes.iter().position(|&b| b != 0).unwrap_or(3);
        let mut out = id_bytes[skip..].to_vec();
        out.push(0x01); // 8-byte size
        out.extend_from_slice(&(payload.len() as u64).to_be_bytes()[1..]);
        out.extend_from_slice(payload);
        out
    }

    fn file(cues_in_front: bool) -> Vec<u8> {
        let ebml = el(ID_EBML, &el(ID_DOC_TYPE, b"webm"));
        let info = el(
            ID_INFO,
            &[
                el(ID_TIMECODE_SCALE, &[0x0f, 0x42, 0x40]),
                el(ID_DURATION, &4000f64.to_be_bytes()),
            ]
            .concat(),
        );
        let track = |n: u8, t: u8, codec: &[u8]| {
            el(
                ID_TRACK_ENTRY,
                &[
                    el(ID_TRACK_NUMBER, &[n]),
                    el(ID_TRACK_TYPE, &[t]),
                    el(ID_CODEC_ID, codec),
                ]
                .concat(),
            )
        };
        let tracks = el(
            ID_TRACKS,
            &[track(1, 1, b"V_VP9"), track(2, 2, b"A_OPUS")].concat(),
        );
        let cluster = |time: u16, len: usize| {
            el(
                ID_CLUSTER,
                &[
                    el(ID_TIMECODE, &time.to_be_bytes()),
                    el(0xA3, &vec![0; len]),
                ]
                .concat(),
            )
        };
        let clusters = [cluster(0, 100), cluster(2000, 50)];
        let head = [info, tracks].concat();
        let cue = |time: u16, pos: u64| {
            el(
                ID_CUE_POINT,
                &[
                    el(ID_CUE_TIME, &time.to_be_bytes()),
                    el(
                        ID_CUE_TRACK_POSITIONS,
                        &[
                            el(ID_CUE_TRACK, &[1]),
                            el(ID_CUE_CLUSTER_POSITION, &pos.to_be_bytes()),
                        ]
                        .concat(),
                    ),
                ]
                .concat(),
            )
        };
        // Cue payload length does not depend on the positions (fixed-width fields).
        let cues_len = el(ID_CUES, &[cue(0, 0), cue(0, 0)].concat()).len() as u64;
        let front = if cues_in_front { cues_len } else { 0 };
        let first = head.len() as u64 + front;
        let second = first + clusters[0].len() as u64;
        let cues = el(ID_CUES, &[cue(0, first), cue(2000, second)].concat());
        let body = if cues_in_front {
            [head, cues, clusters.concat()].concat()
        } else {
            [head, clusters.concat(), cues].concat()
        };
        [ebml, el(ID_SEGMENT, &body)].concat()
    }

    #[test]
    fn layout_with_cues_in_front() {
        let f = file(true);
        let mut len = 0;
        let layout = loop {
            match WebmLayout::parse(&f[..len]).unwrap() {
                Progress::Ready(layout) => break layout,
                Progress::NeedMore { until } => {
                    assert!(until as usize > len);
                    len = until as usize;
                }
            }
        };
        assert_eq!(
            layout.mime_type.as_deref(),
            Some("video/webm; codecs=\"vp9,opus\"")
        );
        assert_eq!(layout.duration_s, Some(4.0));
        let index = layout.index.as_ref().unwrap();
        assert_eq!(index.len(), 2);
        assert_eq!(index.fragments()[0].byte_range.start, layout.first_cluster);
        assert_eq!(index.fragments()[1].byte_range.end, f.len() as u64);
        assert_eq!(index.fragments()[1].start_time_s, 2.0);
        assert_eq!(index.end_time_s(), 4.0);

        let mut scanner = layout.scanner();
        let mut clusters = Vec::new();
        for chunk in f[layout.first_cluster as usize..].chunks(7) {
            clusters.extend(scanner.feed(chunk).unwrap());
        }
        let ranges: Vec<_> = clusters.iter().map(|c| c.byte_range.clone()).collect();
        let expected: Vec<_> = index
            .fragments()
            .iter()
            .map(|f| f.byte_range.clone())
            .collect();
        assert_eq!(ranges, expected);
    }

    #[test]
    fn cues_at_the_end_are_found_through_the_seek_head_or_parsed_later() {
        let f = file(false);
        let layout = WebmLayout::parse(&f).unwrap().ready().unwrap();
        assert_eq!(layout.index, None);
        // No SeekHead in this synthetic file, so the caller scans.
        assert_eq!(layout.cues_offset, None);
        let mut scanner = ClusterScanner::new(0, layout.timecode_scale_ns);
        let clusters = scanner.feed(&f).unwrap();
        assert_eq!(clusters.len(), 2);
        assert_eq!(clusters[1].time_s, 2.0);
    }

    #[test]
    fn rejects_bad_vints() {
        assert!(read_element_header(&[0x00, 0x80], 0).is_err());
        assert!(read_element_header(&[0x80, 0x00], 0).is_err());
        assert!(matches!(
            read_element_header(&[0x1A, 0x45], 0),
            Ok(HeaderRead::NeedBytes(5))
        ));
        match read_element_header(&[0xEC, 0xFF], 0) {
            Ok(HeaderRead::Header(h)) => assert_eq!(h.size, None),
            _ => panic!("unknown size"),
        }
    }
}

//! The parts of `moov` every MP4 path needs: movie and track headers, handler, codec, and the
//! fragment defaults in `mvex`. Sample tables are the remuxer's business (remux.rs).

use super::codecs::{self, Codec};
use super::mp4box::{FourCc, Mp4Box};
use super::{MediaError, MAX_TRACKS};

/// What a track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    Video,
    Audio,
    /// Subtitles, timecode, hint and other tracks MediaSource does not play.
    Other,
}

/// One track of an MP4 file.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// `tkhd` track id (what `tfhd`, `trex` and `sidx` refer to).
    pub id: u32,
    pub kind: TrackKind,
    /// `hdlr` handler type (`vide`, `soun`, `subt`, ...).
    pub handler: FourCc,
    /// Media timescale (`mdhd`): units per second of the track's timestamps.
    pub timescale: u32,
    /// Media duration (`mdhd`) in `timescale` units; 0 in fragmented files.
    pub duration: u64,
    pub codec: Codec,
    /// `trex` default sample duration, for `trun`s that carry none (fragmented files).
    pub default_sample_duration: u32,
}

/// A parsed `moov`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Movie {
    pub timescale: u32,
    pub duration: u64,
    pub tracks: Vec<Track>,
    /// `mvex` present: samples live in movie fragments.
    pub fragmented: bool,
    /// `mehd` fragment duration, in movie timescale units.
    pub fragment_duration: Option<u64>,
}

impl Movie {
    pub fn duration_s(&self) -> Option<f64> {
        let duration = self.fragment_duration.unwrap_or(self.duration);
        (self.timescale > 0 && duration > 0).then(|| duration as f64 / f64::from(self.timescale))
    }

    /// The first video track, else the first audio track: the one whose timeline indexes are for.
    pub fn primary_track(&self) -> Option<&Track> {
        self.tracks
            .iter()
            .find(|t| t.kind == TrackKind::Video)
            .or_else(|| self.tracks.iter().find(|t| t.kind == TrackKind::Audio))
    }
}

/// Parses a complete `moov` box.
pub(crate) fn parse_moov(moov: &Mp4Box<'_>) -> Result<Movie, MediaError> {
    let (timescale, duration) = media_header(&moov.required(b"mvhd", "mvhd")?, "mvhd")?;
    let mut tracks = Vec::new();
    let mut mvex = None;
    for child in moov.children() {
        let child = child?;
        match &child.kind.0 {
            b"trak" => {
                if tracks.len() == MAX_TRACKS {
                    return Err(MediaError::TooManyEntries {
                        what: "moov tracks",
                        count: MAX_TRACKS as u64 + 1,
                        limit: MAX_TRACKS as u64,
                    });
                }
                tracks.push(parse_trak(&child)?);
            }
            b"mvex" => mvex = Some(child),
            _ => {}
        }
    }
    let mut fragment_duration = None;
    if let Some(mvex) = &mvex {
        for child in mvex.children() {
            let child = child?;
            match &child.kind.0 {
                b"mehd" => {
                    let (version, _, mut r) = child.full("mehd")?;
                    fragment_duration = Some(r.u32_or_u64(version)?).filter(|&d| d > 0);
                }
                b"trex" => {
                    let (_, _, mut r) = child.full("trex")?;
                    let track_id = r.u32()?;
                    let _description_index = r.u32()?;
                    let default_duration = r.u32()?;
                    if let Some(t) = tracks.iter_mut().find(|t| t.id == track_id) {
                        t.default_sample_duration = default_duration;
                    }
                }
                _ => {}
            }
        }
    }
    Ok(Movie {
        timescale,
        duration,
        tracks,
        fragmented: mvex.is_some(),
        fragment_duration,
    })
}

/// The movie timescale from `mvhd` (edit list durations count in it).
pub(crate) fn movie_timescale(mvhd: &Mp4Box<'_>) -> Result<u32, MediaError> {
    media_header(mvhd, "mvhd").map(|(timescale, _)| timescale)
}

/// `mvhd` or `mdhd`: (timescale, duration).
fn media_header(b: &Mp4Box<'_>, what: &'static str) -> Result<(u32, u64), MediaError> {
    let (version, _, mut r) = b.full(what)?;
    let _creation = r.u32_or_u64(version)?;
    let _modification = r.u32_or_u64(version)?;
    let timescale = r.u32()?;
    let duration = r.u32_or_u64(version)?;
    // All ones means "unknown" in version 0.
    let duration = if version == 0 && duration == u64::from(u32::MAX) {
        0
    } else {
        duration
    };
    Ok((timescale, duration))
}

/// Parses a complete `trak`: ids, handler, timescale and the first sample entry's codec.
pub(crate) fn parse_trak(trak: &Mp4Box<'_>) -> Result<Track, MediaError> {
    let tkhd = trak.required(b"tkhd", "tkhd")?;
    let (version, _, mut r) = tkhd.full("tkhd")?;
    r.u32_or_u64(version)?; // creation
    r.u32_or_u64(version)?; // modification
    let id = r.u32()?;

    let mdia = trak.required(b"mdia", "mdia")?;
    let (timescale, duration) = media_header(&mdia.required(b"mdhd", "mdhd")?, "mdhd")?;
    let hdlr = mdia.required(b"hdlr", "hdlr")?;
    let (_, _, mut r) = hdlr.full("hdlr")?;
    r.u32()?; // pre_defined
    let handler = r.fourcc()?;
    let kind = match &handler.0 {
        b"vide" => TrackKind::Video,
        b"soun" => TrackKind::Audio,
        _ => TrackKind::Other,
    };

    let stsd = mdia
        .required(b"minf", "minf")?
        .required(b"stbl", "stbl")?
        .required(b"stsd", "stsd")?;
    let codec = match first_sample_entry(&stsd)? {
        Some(entry) => codecs::from_sample_entry(&entry)?,
        None => Codec::Unknown("no sample entry".into()),
    };
    Ok(Track {
        id,
        kind,
        handler,
        timescale,
        duration,
        codec,
        default_sample_duration: 0,
    })
}

/// The first sample entry in `stsd` (entry count, then entries as boxes).
pub(crate) fn first_sample_entry<'a>(stsd: &Mp4Box<'a>) -> Result<Option<Mp4Box<'a>>, MediaError> {
    let (_, _, mut r) = stsd.full("stsd")?;
    let count = r.u32()?;
    if count == 0 {
        return Ok(None);
    }
    let base = stsd.offset + (stsd.raw.len() - stsd.data.len()) as u64 + 8;
    super::mp4box::Boxes::new(r.rest(), base).next().transpose()
}

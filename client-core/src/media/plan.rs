//! What the player does with a file: [`Probe`] asks for the bytes it needs (a prefix, maybe the
//! tail holding a progressive MP4's `moov`) and settles on a [`MediaPlan`].
//!
//! The web edge stays a thin adapter: it creates a `Probe` with the file length, satisfies each
//! [`ProbeStep::Need`] from pieces or the WebSeed, and acts on the plan (a SourceBuffer with the
//! plan's MIME type, appends of the plan's init segment and fragments, or a plain `<video>` /
//! `<audio>` element when MediaSource cannot play the file). Browser support is asked through the
//! `is_type_supported` callback (`MediaSource.isTypeSupported` in the browser), so the decision
//! itself is testable natively.

use std::ops::Range;

use super::audio::{detect_raw_audio, RawAudio};
use super::fmp4::Fmp4Layout;
use super::moov::TrackKind;
use super::mp4box::Boxes;
use super::remux::{MoovLocator, MoovSearch, Remuxer};
use super::webm::{WebmLayout, ID_EBML};
use super::{slice, FragmentIndex, MediaError, Progress, MAX_PARSED_BOX};

/// Most bytes a probe keeps: a whole `moov` and what may precede it.
pub const MAX_PROBE_BYTES: u64 = MAX_PARSED_BOX + (16 << 20);

/// Bytes of raw audio (MP3/ADTS) to have before the first append.
const RAW_AUDIO_FIRST_APPEND: u64 = 64 << 10;

/// How the player plays a file.
#[derive(Debug, Clone)]
pub enum MediaPlan {
    /// Fragmented MP4: append `init_range`, then fragments (from the index, or found by
    /// [`Fmp4Layout::scanner`]).
    Fmp4(Fmp4Layout),
    /// WebM: append `init_range`, then clusters.
    WebM(WebmLayout),
    /// Progressive MP4: append the remuxer's init segment, then fragments it builds.
    Remux(Box<Remuxer>),
    /// MP3 or ADTS through MediaSource (`audio/mpeg`, `audio/aac`): append from `data_start`.
    RawAudio(RawAudio),
    /// MediaSource cannot play this: give the file (WebSeed URL or a blob) to a plain element,
    /// or offer the download, and say why.
    NativeOnly {
        reason: NativeReason,
        element: NativeElement,
    },
}

/// Which element to fall back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeElement {
    Video,
    Audio,
}

/// Why MediaSource is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NativeReason {
    #[error("this browser cannot play {mime_type} through MediaSource")]
    TypeNotSupported { mime_type: String },
    #[error("the {codec} codec cannot be played through MediaSource")]
    UnsupportedCodec { codec: String },
    #[error("{container} files cannot be played through MediaSource")]
    UnsupportedContainer { container: String },
    #[error("not a media file this player recognises")]
    Unrecognised,
    #[error("the file could not be read: {0}")]
    Unreadable(MediaError),
}

impl MediaPlan {
    /// The MIME type for `addSourceBuffer`, if MediaSource is used.
    pub fn mime_type(&self) -> Option<&str> {
        match self {
            MediaPlan::Fmp4(layout) => layout.mime_type.as_deref(),
            MediaPlan::WebM(layout) => layout.mime_type.as_deref(),
            MediaPlan::Remux(remuxer) => Some(remuxer.mime_type()),
            MediaPlan::RawAudio(audio) => Some(audio.mime_type()),
            MediaPlan::NativeOnly { .. } => None,
        }
    }

    /// Time → bytes, when known up front.
    pub fn index(&self) -> Option<&FragmentIndex> {
        match self {
            MediaPlan::Fmp4(layout) => layout.index.as_ref(),
            MediaPlan::WebM(layout) => layout.index.as_ref(),
            MediaPlan::Remux(remuxer) => Some(remuxer.index()),
            MediaPlan::RawAudio(_) | MediaPlan::NativeOnly { .. } => None,
        }
    }

    /// The file's byte ranges needed before the first frame can play: the init segment (unless
    /// the plan generates it) and the first fragment, clamped to the file.
    pub fn ranges_before_first_append(&self, file_len: u64) -> Vec<Range<u64>> {
        let first = |index: Option<&FragmentIndex>| {
            index.and_then(|i| i.get(0)).map(|f| f.byte_range.clone())
        };
        let ranges = match self {
            MediaPlan::Fmp4(layout) => {
                let mut r = vec![layout.init_range.clone()];
                r.extend(first(layout.index.as_ref()));
                r
            }
            MediaPlan::WebM(layout) => {
                let mut r = vec![layout.init_range.clone()];
                r.extend(first(layout.index.as_ref()));
                r
            }
            MediaPlan::Remux(remuxer) => remuxer
                .fragment_plan(0)
                .map(|p| p.fetch)
                .unwrap_or_default(),
            MediaPlan::RawAudio(audio) => {
                let end = audio.data_start.saturating_add(RAW_AUDIO_FIRST_APPEND);
                let first = audio.data_start..end;
                vec![first]
            }
            MediaPlan::NativeOnly { .. } => Vec::new(),
        };
        ranges
            .into_iter()
            .map(|r| r.start.min(file_len)..r.end.min(file_len))
            .filter(|r| !r.is_empty())
            .collect()
    }
}

/// The next thing a [`Probe`] needs.
#[derive(Debug, Clone)]
pub enum ProbeStep {
    /// Feed these bytes (clamped to the file; never empty).
    Need(Range<u64>),
    Ready(MediaPlan),
}

/// Finds out how to play a file from as few of its bytes as possible.
#[derive(Debug, Clone)]
pub struct Probe {
    file_len: u64,
    /// Bytes `0..head.len()` of the file.
    head: Vec<u8>,
    /// Ranges away from the head (a progressive MP4's tail, box headers on the way there),
    /// sorted by offset: offset and bytes.
    ranges: Vec<(u64, Vec<u8>)>,
    /// Bytes were refused for lack of room.
    overflowed: bool,
}

/// The head grows by at least this much per step (a piece is at least 16 KiB anyway).
const MIN_HEAD_STEP: u64 = 16 << 10;

/// A need this close past the head extends the head rather than being fetched on its own.
const HEAD_GAP: u64 = 64 << 10;

/// Most separate ranges a probe keeps (each box between the media data and `moov` may cost one).
const MAX_PROBE_RANGES: usize = 16;

/// What the bytes so far say, before the browser is asked.
enum Found {
    Need(Range<u64>),
    Fmp4(Fmp4Layout),
    WebM(WebmLayout),
    Remux(Remuxer),
    RawAudio(RawAudio),
}

impl Probe {
    pub fn new(file_len: u64) -> Self {
        Probe {
            file_len,
            head: Vec::new(),
            ranges: Vec::new(),
            overflowed: false,
        }
    }

    /// The length of the file being probed.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Hands over bytes found at file offset `offset`: bytes that extend the prefix are kept (up
    /// to [`MAX_PROBE_BYTES`]), as are up to 16 ranges away from it (more are refused, and
    /// [`Probe::poll`] then gives up rather than ask again).
    pub fn feed(&mut self, offset: u64, bytes: &[u8]) {
        if offset <= self.head.len() as u64 {
            self.extend_head(offset, bytes);
            // Ranges the head has reached become part of it.
            while let Some((offset, _)) = self.ranges.first() {
                if *offset > self.head.len() as u64 {
                    break;
                }
                let (offset, bytes) = self.ranges.remove(0);
                self.extend_head(offset, &bytes);
            }
        } else if self.ranges.len() < MAX_PROBE_RANGES
            && self.held() + bytes.len() as u64 <= MAX_PROBE_BYTES
        {
            let at = self.ranges.partition_point(|(o, _)| *o < offset);
            self.ranges.insert(at, (offset, bytes.to_vec()));
        } else {
            // Asking again would get the same bytes refused again: give up instead.
            self.overflowed = true;
        }
    }

    /// Appends the part of `bytes` (at `offset`, which is within the head) beyond the head, up
    /// to [`MAX_PROBE_BYTES`].
    fn extend_head(&mut self, offset: u64, bytes: &[u8]) {
        let head_len = self.head.len() as u64;
        let end = offset
            .saturating_add(bytes.len() as u64)
            .min(MAX_PROBE_BYTES);
        if end > head_len {
            let new = &bytes[(head_len - offset) as usize..(end - offset) as usize];
            self.head.extend_from_slice(new);
        }
    }

    /// Bytes held outside the head.
    fn held(&self) -> u64 {
        self.ranges.iter().map(|(_, b)| b.len() as u64).sum()
    }

    /// What is needed next, or the plan. `is_type_supported` answers for a MIME type with codecs
    /// (`MediaSource.isTypeSupported` in the browser).
    pub fn poll(&self, is_type_supported: &dyn Fn(&str) -> bool) -> ProbeStep {
        let video = NativeElement::Video;
        let native = |reason, element| ProbeStep::Ready(MediaPlan::NativeOnly { reason, element });
        if self.overflowed {
            let err = MediaError::TooManyEntries {
                what: "byte ranges held by the probe",
                count: MAX_PROBE_RANGES as u64 + 1,
                limit: MAX_PROBE_RANGES as u64,
            };
            return native(NativeReason::Unreadable(err), video);
        }
        let found = match self.find() {
            Ok(found) => found,
            Err(MediaError::Unrecognised) => return native(NativeReason::Unrecognised, video),
            Err(MediaError::UnsupportedCodec(codec)) => {
                return native(NativeReason::UnsupportedCodec { codec }, video)
            }
            Err(err) => return native(NativeReason::Unreadable(err), video),
        };
        // Only MIME types the browser accepts become MediaSource plans.
        let check = |mime: Option<&str>, codecs: &[String], element, plan: MediaPlan| match mime {
            Some(mime) if is_type_supported(mime) => ProbeStep::Ready(plan),
            Some(mime) => native(
                NativeReason::TypeNotSupported {
                    mime_type: mime.to_string(),
                },
                element,
            ),
            None => native(
                NativeReason::UnsupportedCodec {
                    codec: codecs.join(","),
                },
                element,
            ),
        };
        match found {
            Found::Need(range) => {
                let range = range.start..range.end.min(self.file_len);
                // Needing bytes past the end, or bytes already held, means the file ends early.
                if range.is_empty() || self.bytes(&range).is_some() {
                    let err = MediaError::Truncated("file");
                    native(NativeReason::Unreadable(err), video)
                } else if range.end > MAX_PROBE_BYTES && range.start <= self.head.len() as u64 {
                    let err = MediaError::TooLarge {
                        what: "file header",
                        size: range.end,
                        limit: MAX_PROBE_BYTES,
                    };
                    native(NativeReason::Unreadable(err), video)
                } else {
                    ProbeStep::Need(range)
                }
            }
            Found::Fmp4(layout) => {
                let element = element_for(layout.tracks.iter().map(|t| t.kind));
                let mime = layout.mime_type.clone();
                let names = unnamed_codecs(layout.tracks.iter().map(|t| (t.kind, &t.codec)));
                check(mime.as_deref(), &names, element, MediaPlan::Fmp4(layout))
            }
            Found::WebM(layout) => {
                let element = element_for(layout.tracks.iter().map(|t| t.kind));
                if layout.doc_type != "webm" {
                    let container = "Matroska".to_string();
                    return native(NativeReason::UnsupportedContainer { container }, element);
                }
                let mime = layout.mime_type.clone();
                let names = unnamed_codecs(layout.tracks.iter().map(|t| (t.kind, &t.codec)));
                check(mime.as_deref(), &names, element, MediaPlan::WebM(layout))
            }
            Found::Remux(remuxer) => {
                let element = if remuxer.mime_type().starts_with("audio/") {
                    NativeElement::Audio
                } else {
                    video
                };
                let mime = remuxer.mime_type().to_string();
                check(
                    Some(&mime),
                    &[],
                    element,
                    MediaPlan::Remux(Box::new(remuxer)),
                )
            }
            Found::RawAudio(audio) => {
                let mime = audio.mime_type();
                check(
                    Some(mime),
                    &[],
                    NativeElement::Audio,
                    MediaPlan::RawAudio(audio),
                )
            }
        }
    }

    /// The bytes `range` if the probe holds them.
    fn bytes(&self, range: &Range<u64>) -> Option<&[u8]> {
        if let Some(b) = slice(&self.head, range.start, range.end) {
            return Some(b);
        }
        self.ranges.iter().find_map(|(offset, bytes)| {
            let start = range.start.checked_sub(*offset)?;
            slice(bytes, start, start + (range.end - range.start))
        })
    }

    /// A need starting inside the head, or a little past it, grows the head (one request, and
    /// the prefix parsers need contiguous bytes); anything else is a range of its own.
    fn need(&self, range: Range<u64>) -> Found {
        let head_len = self.head.len() as u64;
        if range.start <= head_len + HEAD_GAP {
            // Parsers ask for the next header; reading on a little saves round trips.
            Found::Need(head_len..range.end.max(head_len + MIN_HEAD_STEP))
        } else {
            Found::Need(range)
        }
    }

    fn find(&self) -> Result<Found, MediaError> {
        let head = &self.head[..];
        // Enough to tell the containers apart.
        let sniff = 12.min(self.file_len) as usize;
        if head.len() < sniff || head.is_empty() {
            return Ok(self.need(0..sniff.max(1) as u64));
        }
        if head.len() >= 4 && head[..4] == ID_EBML.to_be_bytes() {
            return Ok(match WebmLayout::parse(head)? {
                Progress::NeedMore { until } => self.need(0..until),
                Progress::Ready(layout) => Found::WebM(layout),
            });
        }
        if looks_like_mp4(head) {
            return self.find_mp4();
        }
        Ok(match detect_raw_audio(head)? {
            // Detection wants two frames; a file too short to hold them is not audio we know.
            Progress::NeedMore { until } if until > self.file_len => {
                return Err(MediaError::Unrecognised)
            }
            Progress::NeedMore { until } => self.need(0..until),
            Progress::Ready(audio) => Found::RawAudio(audio),
        })
    }

    fn find_mp4(&self) -> Result<Found, MediaError> {
        let mut locator = MoovLocator::new(self.file_len);
        let mut search = locator.feed(0, &self.head)?;
        // Headers are in increasing order, so one pass over the sorted ranges goes as far as
        // the bytes allow.
        for (offset, bytes) in &self.ranges {
            if let MoovSearch::Need(_) = search {
                search = locator.feed(*offset, bytes)?;
            }
        }
        let moov_range = match search {
            MoovSearch::Need(_) if self.ranges.len() == MAX_PROBE_RANGES => {
                return Err(MediaError::TooManyEntries {
                    what: "byte ranges fetched to find moov",
                    count: MAX_PROBE_RANGES as u64 + 1,
                    limit: MAX_PROBE_RANGES as u64,
                })
            }
            MoovSearch::Need(range) => return Ok(self.need(range)),
            MoovSearch::Found { moov, .. } => moov,
        };
        if moov_range.end > self.file_len {
            return Err(MediaError::Truncated("moov"));
        }
        if moov_range.end - moov_range.start > MAX_PARSED_BOX {
            return Err(MediaError::TooLarge {
                what: "moov box",
                size: moov_range.end - moov_range.start,
                limit: MAX_PARSED_BOX,
            });
        }
        let Some(moov) = self.bytes(&moov_range) else {
            return Ok(self.need(moov_range));
        };
        let fragmented = match Boxes::new(moov, moov_range.start).next() {
            Some(Ok(b)) => b.child(b"mvex")?.is_some(),
            Some(Err(err)) => return Err(err),
            None => false,
        };
        if fragmented {
            return Ok(match Fmp4Layout::parse(&self.head)? {
                Progress::NeedMore { until } => self.need(0..until),
                Progress::Ready(layout) => Found::Fmp4(layout),
            });
        }
        Remuxer::from_moov(moov).map(Found::Remux)
    }
}

/// Top-level box types an MP4 file starts with.
fn looks_like_mp4(head: &[u8]) -> bool {
    head.get(4..8).is_some_and(|kind| {
        [
            b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pdin",
        ]
        .iter()
        .any(|k| kind == *k)
    })
}

fn element_for(kinds: impl Iterator<Item = TrackKind>) -> NativeElement {
    let mut kinds = kinds.peekable();
    let mut any_audio = false;
    for kind in kinds.by_ref() {
        match kind {
            TrackKind::Video => return NativeElement::Video,
            TrackKind::Audio => any_audio = true,
            TrackKind::Other => {}
        }
    }
    if any_audio {
        NativeElement::Audio
    } else {
        NativeElement::Video
    }
}

/// Names of the media tracks' codecs that have no codecs string.
fn unnamed_codecs<'a>(tracks: impl Iterator<Item = (TrackKind, &'a super::Codec)>) -> Vec<String> {
    tracks
        .filter(|(kind, _)| *kind != TrackKind::Other)
        .filter(|(_, codec)| codec.codecs_string().is_none())
        .map(|(_, codec)| codec.name())
        .collect()
}

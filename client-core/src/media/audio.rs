//! Raw audio files (MP3, ADTS AAC): recognising them, so the player can choose between
//! MediaSource (`audio/mpeg` in Chromium, `audio/aac`) and a plain `<audio>` element (Firefox has
//! no MP3 in MediaSource).
//!
//! Detection skips ID3v2 tags and then insists on two consecutive valid frame headers, one
//! frame length apart: a single sync word is too common in arbitrary bytes to mean anything.

use super::{MediaError, Progress};

/// How far past the ID3 tag(s) to look for the first frame (some encoders pad).
const MAX_SYNC_SEARCH: usize = 8 << 10;
/// ID3v2 tags can hold cover art, but not more than this.
const MAX_ID3_LEN: u64 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawAudioKind {
    /// MPEG-1/2/2.5 Layer III.
    Mp3,
    /// AAC in ADTS frames.
    Adts,
}

/// A raw audio file's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAudio {
    pub kind: RawAudioKind,
    /// Offset of the first audio frame (after ID3 tags): where appends start.
    pub data_start: u64,
    pub sample_rate: u32,
    pub channels: u8,
    /// Bitrate of the first frame (MP3 only).
    pub bitrate_kbps: Option<u32>,
}

impl RawAudio {
    /// The MIME type for MediaSource and for `<audio>`.
    pub fn mime_type(&self) -> &'static str {
        match self.kind {
            RawAudioKind::Mp3 => "audio/mpeg",
            RawAudioKind::Adts => "audio/aac",
        }
    }
}

/// One parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Frame {
    kind: RawAudioKind,
    len: usize,
    sample_rate: u32,
    channels: u8,
    bitrate_kbps: Option<u32>,
}

/// Recognises MP3 or ADTS from a prefix of the file: [`Progress::NeedMore`] while the prefix is
/// too short to be sure (a caller at the end of the file treats that as "not audio"),
/// [`MediaError::Unrecognised`] when no two consecutive frames start within 8 KiB of the tags.
pub fn detect_raw_audio(prefix: &[u8]) -> Result<Progress<RawAudio>, MediaError> {
    // Skip ID3v2 tags (there may be more than one).
    let mut pos: u64 = 0;
    for _ in 0..4 {
        let rest = prefix.get(pos as usize..).unwrap_or(&[]);
        if rest.len() < 10 {
            if rest.len() < 3 && b"ID3".starts_with(rest) || rest.starts_with(b"ID3") {
                return Ok(Progress::NeedMore {
                    until: pos.saturating_add(10),
                });
            }
            break;
        }
        if !rest.starts_with(b"ID3") {
            break;
        }
        let [_, _, _, major, _, flags, a, b, c, d] = [
            rest[0], rest[1], rest[2], rest[3], rest[4], rest[5], rest[6], rest[7], rest[8],
            rest[9],
        ];
        if major == 0xff || [a, b, c, d].iter().any(|&x| x & 0x80 != 0) {
            return Err(MediaError::malformed("ID3v2 tag", "bad header"));
        }
        let size = (u64::from(a) << 21) | (u64::from(b) << 14) | (u64::from(c) << 7) | u64::from(d);
        let footer = if flags & 0x10 != 0 { 10 } else { 0 };
        if size > MAX_ID3_LEN {
            return Err(MediaError::TooLarge {
                what: "ID3v2 tag",
                size,
                limit: MAX_ID3_LEN,
            });
        }
        pos += 10 + size + footer;
    }

    // Find two consecutive frames near `pos`.
    let search_end = pos as usize + MAX_SYNC_SEARCH;
    for start in pos as usize..search_end {
        let Some(rest) = prefix.get(start..) else {
            return Ok(Progress::NeedMore {
                until: start as u64 + 4,
            });
        };
        if rest.len() < 7 {
            return Ok(Progress::NeedMore {
                until: start as u64 + 7,
            });
        }
        let Some(frame) = frame_header(rest) else {
            continue;
        };
        let next = start + frame.len;
        let Some(after) = prefix.get(next..).filter(|r| r.len() >= 7) else {
            return Ok(Progress::NeedMore {
                until: next as u64 + 7,
            });
        };
        match frame_header(after) {
            Some(second)
                if second.kind == frame.kind && second.sample_rate == frame.sample_rate =>
            {
                return Ok(Progress::Ready(RawAudio {
                    kind: frame.kind,
                    data_start: start as u64,
                    sample_rate: frame.sample_rate,
                    channels: frame.channels,
                    bitrate_kbps: frame.bitrate_kbps,
                }));
            }
            _ => continue,
        }
    }
    Err(MediaError::Unrecognised)
}

/// An MP3 (Layer III) or ADTS frame header at the start of `b` (at least 7 bytes).
fn frame_header(b: &[u8]) -> Option<Frame> {
    if b.len() < 7 || b[0] != 0xff || b[1] & 0xe0 != 0xe0 {
        return None;
    }
    let layer = (b[1] >> 1) & 3;
    if b[1] & 0xf0 == 0xf0 && layer == 0 {
        return adts_header(b);
    }
    mp3_header(b)
}

fn mp3_header(b: &[u8]) -> Option<Frame> {
    // version: 0 = MPEG 2.5, 1 = reserved, 2 = MPEG 2, 3 = MPEG 1; layer 1 = Layer III.
    let version = (b[1] >> 3) & 3;
    let layer = (b[1] >> 1) & 3;
    if version == 1 || layer != 1 {
        return None;
    }
    let bitrate_index = usize::from(b[2] >> 4);
    let rate_index = usize::from((b[2] >> 2) & 3);
    if bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None; // free-format or invalid
    }
    const MPEG1: [u32; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    const MPEG2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let (kbps, base_rate, coefficient) = match version {
        3 => (MPEG1[bitrate_index], [44100, 48000, 32000][rate_index], 144),
        2 => (MPEG2[bitrate_index], [22050, 24000, 16000][rate_index], 72),
        _ => (MPEG2[bitrate_index], [11025, 12000, 8000][rate_index], 72),
    };
    let padding = u32::from((b[2] >> 1) & 1);
    let len = (coefficient * kbps * 1000 / base_rate + padding) as usize;
    let channels = if b[3] >> 6 == 3 { 1 } else { 2 };
    Some(Frame {
        kind: RawAudioKind::Mp3,
        len,
        sample_rate: base_rate,
        channels,
        bitrate_kbps: Some(kbps),
    })
}

fn adts_header(b: &[u8]) -> Option<Frame> {
    const RATES: [u32; 13] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    let sample_rate = *RATES.get(usize::from((b[2] >> 2) & 0x0f))?;
    let channels = ((b[2] & 1) << 2) | (b[3] >> 6);
    let len = (usize::from(b[3] & 3) << 11) | (usize::from(b[4]) << 3) | usize::from(b[5] >> 5);
    let header_len = if b[1] & 1 == 0 { 9 } else { 7 };
    if len <= header_len {
        return None;
    }
    Some(Frame {
        kind: RawAudioKind::Adts,
        len,
        sample_rate,
        channels,
        bitrate_kbps: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp3_frame() -> Vec<u8> {
        // MPEG-1 Layer III, 128 kbps, 44.1 kHz, no padding: 417 bytes.
        let mut f = vec![0xff, 0xfb, 0x90, 0x64];
        f.resize(417, 0);
        f
    }

    #[test]
    fn mp3_after_an_id3_tag() {
        let mut file = b"ID3\x04\x00\x00\x00\x00\x00\x05hello".to_vec();
        file.extend(mp3_frame());
        file.extend(mp3_frame());
        let audio = detect_raw_audio(&file).unwrap().ready().unwrap();
        assert_eq!(audio.kind, RawAudioKind::Mp3);
        assert_eq!(audio.data_start, 15);
        assert_eq!(audio.sample_rate, 44100);
        assert_eq!(audio.bitrate_kbps, Some(128));
        assert_eq!(audio.mime_type(), "audio/mpeg");
        assert_eq!(
            detect_raw_audio(&file[..100]).unwrap(),
            Progress::NeedMore {
                until: 15 + 417 + 7
            }
        );
        assert_eq!(
            detect_raw_audio(&file[..4]).unwrap(),
            Progress::NeedMore { until: 10 }
        );
    }

    #[test]
    fn adts_and_noise() {
        // ADTS, AAC-LC, 48 kHz, stereo, 20-byte frames, no CRC.
        let frame = [
            0xff, 0xf1, 0x4c, 0x80, 0x02, 0x9f, 0xfc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let file = [frame, frame].concat();
        let audio = detect_raw_audio(&file).unwrap().ready().unwrap();
        assert_eq!(
            (audio.kind, audio.sample_rate, audio.channels),
            (RawAudioKind::Adts, 48000, 2)
        );
        assert_eq!(
            detect_raw_audio(&[0u8; 9000]),
            Err(MediaError::Unrecognised)
        );
    }
}

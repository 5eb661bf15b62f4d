//! Codecs as MediaSource names them: RFC 6381 codecs strings (and the WebM short names) built
//! from the codec configuration the container carries, never guessed from a file name.
//!
//! This module owns the mapping from sample entries (`avc1`+`avcC`, `mp4a`+`esds`, `vp09`+`vpcC`,
//! `av01`+`av1C`, `hvc1`+`hvcC`, `Opus`, ...) and Matroska `CodecID`s to [`Codec`], and from
//! [`Codec`] to the string `MediaSource.isTypeSupported` wants. A codec it cannot name exactly is
//! [`Codec::Unknown`] and has no string: a wrong string would make the browser accept a stream it
//! then fails to decode, which is worse than an honest "not supported".

use super::bytes::Reader;
use super::mp4box::{FourCc, Mp4Box};
use super::MediaError;

/// VP9 configuration from `vpcC` (VP Codec ISO Media File Format Binding, §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp9Config {
    pub profile: u8,
    pub level: u8,
    pub bit_depth: u8,
}

/// AV1 configuration from `av1C` (AV1 Codec ISO Media File Format Binding, §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Av1Config {
    pub profile: u8,
    pub level: u8,
    pub high_tier: bool,
    pub bit_depth: u8,
}

/// A track's codec, with what its codecs string needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    /// H.264 (`avc1`, or `avc3` with parameter sets in band), from `avcC`.
    Avc {
        in_band: bool,
        profile: u8,
        constraints: u8,
        level: u8,
    },
    /// H.265, with its codecs string already built from `hvcC`.
    Hevc {
        codecs: String,
    },
    Vp8,
    /// VP9; `None` in WebM, where the short name `vp9` is used.
    Vp9(Option<Vp9Config>),
    Av1(Av1Config),
    /// MPEG-4 audio in `mp4a` (`esds`): object type indication, and the audio object type for
    /// MPEG-4 Audio (2 = AAC-LC, 5 = HE-AAC, 29 = HE-AACv2).
    Mp4a {
        object_type: u8,
        audio_object_type: Option<u8>,
    },
    Opus,
    Vorbis,
    Flac,
    Ac3,
    Eac3,
    /// Anything else (or a known codec whose configuration is missing), by its sample entry or
    /// Matroska codec id.
    Unknown(String),
}

/// The object type indication for MPEG-4 Audio (ISO/IEC 14496-1 Table 5).
pub const OTI_MPEG4_AUDIO: u8 = 0x40;

impl Codec {
    /// The codecs string for MediaSource (`avc1.64001F`, `mp4a.40.2`, `vp09.00.10.08`, `vp9`,
    /// `opus`...), or `None` when the codec cannot be named exactly.
    pub fn codecs_string(&self) -> Option<String> {
        Some(match self {
            Codec::Avc {
                in_band,
                profile,
                constraints,
                level,
            } => {
                let entry = if *in_band { "avc3" } else { "avc1" };
                format!("{entry}.{profile:02X}{constraints:02X}{level:02X}")
            }
            Codec::Hevc { codecs } => codecs.clone(),
            Codec::Vp8 => "vp8".into(),
            Codec::Vp9(None) => "vp9".into(),
            Codec::Vp9(Some(c)) => {
                format!("vp09.{:02}.{:02}.{:02}", c.profile, c.level, c.bit_depth)
            }
            Codec::Av1(c) => format!(
                "av01.{}.{:02}{}.{:02}",
                c.profile,
                c.level,
                if c.high_tier { 'H' } else { 'M' },
                c.bit_depth
            ),
            Codec::Mp4a {
                object_type,
                audio_object_type: Some(aot),
            } => format!("mp4a.{object_type:02X}.{aot}"),
            Codec::Mp4a {
                object_type,
                audio_object_type: None,
            } => format!("mp4a.{object_type:02X}"),
            Codec::Opus => "opus".into(),
            Codec::Vorbis => "vorbis".into(),
            Codec::Flac => "flac".into(),
            Codec::Ac3 => "ac-3".into(),
            Codec::Eac3 => "ec-3".into(),
            Codec::Unknown(_) => return None,
        })
    }

    /// A short human name, for messages ("h264", "aac", "hvc1", ...).
    pub fn name(&self) -> String {
        match self {
            Codec::Avc { .. } => "h264".into(),
            Codec::Hevc { .. } => "h265".into(),
            Codec::Vp8 => "vp8".into(),
            Codec::Vp9(_) => "vp9".into(),
            Codec::Av1(_) => "av1".into(),
            Codec::Mp4a {
                object_type: OTI_MPEG4_AUDIO,
                ..
            } => "aac".into(),
            Codec::Mp4a { object_type, .. } => format!("mp4a.{object_type:02X}"),
            Codec::Opus => "opus".into(),
            Codec::Vorbis => "vorbis".into(),
            Codec::Flac => "flac".into(),
            Codec::Ac3 => "ac-3".into(),
            Codec::Eac3 => "ec-3".into(),
            Codec::Unknown(name) => name.clone(),
        }
    }

    /// AAC in any of its MPEG-4 flavours (what the remuxer and `audio/mp4` carry).
    pub fn is_aac(&self) -> bool {
        matches!(
            self,
            Codec::Mp4a {
                object_type: OTI_MPEG4_AUDIO | 0x66..=0x68,
                ..
            }
        )
    }
}

/// The codec of an MP4 sample entry (the first child of `stsd`).
pub(crate) fn from_sample_entry(entry: &Mp4Box<'_>) -> Result<Codec, MediaError> {
    let kind = entry.kind;
    let unknown = || Codec::Unknown(kind.to_string());
    Ok(match &kind.0 {
        b"avc1" | b"avc3" => match visual_child(entry, b"avcC")? {
            Some(avcc) => avc(avcc, &kind.0 == b"avc3")?,
            None => unknown(),
        },
        b"hvc1" | b"hev1" => match visual_child(entry, b"hvcC")? {
            Some(hvcc) => hevc(kind, hvcc)?,
            None => unknown(),
        },
        b"vp09" => match visual_child(entry, b"vpcC")? {
            Some(vpcc) => Codec::Vp9(Some(vpcc_config(vpcc)?)),
            None => unknown(),
        },
        b"vp08" => Codec::Vp8,
        b"av01" => match visual_child(entry, b"av1C")? {
            Some(av1c) => Codec::Av1(av1c_config(av1c)?),
            None => unknown(),
        },
        b"mp4a" => match audio_child(entry, b"esds")? {
            Some(esds) => mp4a(esds.get(4..).ok_or(MediaError::Truncated("esds"))?)?,
            None => unknown(),
        },
        b"Opus" => Codec::Opus,
        b"fLaC" => Codec::Flac,
        b"ac-3" => Codec::Ac3,
        b"ec-3" => Codec::Eac3,
        _ => unknown(),
    })
}

/// Size of the fields of a VisualSampleEntry before its child boxes (ISO/IEC 14496-12 §12.1.3).
const VISUAL_ENTRY_FIELDS: usize = 78;

fn visual_child<'a>(entry: &Mp4Box<'a>, kind: &[u8; 4]) -> Result<Option<&'a [u8]>, MediaError> {
    let children = entry
        .data
        .get(VISUAL_ENTRY_FIELDS..)
        .ok_or(MediaError::Truncated("visual sample entry"))?;
    child_payload(children, entry.offset, kind)
}

/// The payload of an audio sample entry's child box, coping with QuickTime's sound description
/// versions 1 and 2 (longer fixed fields) and with `esds` wrapped in a `wave` box.
fn audio_child<'a>(entry: &Mp4Box<'a>, kind: &[u8; 4]) -> Result<Option<&'a [u8]>, MediaError> {
    let mut r = Reader::new(entry.data, "audio sample entry");
    r.skip(8)?; // reserved, data_reference_index
    let version = r.u16()?;
    // Bytes of fixed fields before the child boxes (ISO/IEC 14496-12 §12.2.3; QuickTime sound
    // descriptions 1 and 2 are longer).
    let fields = match version {
        0 => 28,
        1 => 28 + 16,
        2 => 28 + 36,
        _ => {
            return Err(MediaError::malformed(
                "audio sample entry",
                "unknown version",
            ))
        }
    };
    let children = entry
        .data
        .get(fields..)
        .ok_or(MediaError::Truncated("audio sample entry"))?;
    if let Some(found) = child_payload(children, entry.offset, kind)? {
        return Ok(Some(found));
    }
    match child_payload(children, entry.offset, b"wave")? {
        Some(wave) => child_payload(wave, entry.offset, kind),
        None => Ok(None),
    }
}

fn child_payload<'a>(
    buf: &'a [u8],
    base: u64,
    kind: &[u8; 4],
) -> Result<Option<&'a [u8]>, MediaError> {
    for b in super::mp4box::Boxes::new(buf, base) {
        let b = b?;
        if b.kind == kind {
            return Ok(Some(b.data));
        }
    }
    Ok(None)
}

/// `avcC`: configurationVersion, then profile, constraint flags, level (ISO/IEC 14496-15 §5.3.3).
fn avc(avcc: &[u8], in_band: bool) -> Result<Codec, MediaError> {
    let mut r = Reader::new(avcc, "avcC");
    let _version = r.u8()?;
    Ok(Codec::Avc {
        in_band,
        profile: r.u8()?,
        constraints: r.u8()?,
        level: r.u8()?,
    })
}

/// `hvcC` to `hvc1.P.C.TL.B...` (ISO/IEC 14496-15 Annex E.3).
fn hevc(entry: FourCc, hvcc: &[u8]) -> Result<Codec, MediaError> {
    let mut r = Reader::new(hvcc, "hvcC");
    let _version = r.u8()?;
    let b = r.u8()?;
    let profile_space = b >> 6;
    let high_tier = b & 0x20 != 0;
    let profile_idc = b & 0x1f;
    let compatibility = r.u32()?.reverse_bits();
    let constraints = r.bytes(6)?;
    let level = r.u8()?;
    let space = ["", "A", "B", "C"][usize::from(profile_space)];
    let tier = if high_tier { 'H' } else { 'L' };
    let mut codecs = format!("{entry}.{space}{profile_idc}.{compatibility:X}.{tier}{level}");
    // Trailing zero constraint bytes are omitted.
    let used = constraints
        .iter()
        .rposition(|&c| c != 0)
        .map_or(0, |i| i + 1);
    for c in &constraints[..used] {
        codecs.push_str(&format!(".{c:X}"));
    }
    Ok(Codec::Hevc { codecs })
}

/// `vpcC`, version 1 (or the older version 0, whose first bytes agree).
fn vpcc_config(vpcc: &[u8]) -> Result<Vp9Config, MediaError> {
    let mut r = Reader::new(vpcc, "vpcC");
    r.skip(4)?; // full box version and flags
    Ok(Vp9Config {
        profile: r.u8()?,
        level: r.u8()?,
        bit_depth: r.u8()? >> 4,
    })
}

/// `av1C` (also Matroska's `CodecPrivate` for `V_AV1`).
pub(crate) fn av1c_config(av1c: &[u8]) -> Result<Av1Config, MediaError> {
    let mut r = Reader::new(av1c, "av1C");
    let marker_version = r.u8()?;
    if marker_version != 0x81 {
        return Err(MediaError::malformed("av1C", "unknown marker or version"));
    }
    let a = r.u8()?;
    let b = r.u8()?;
    let high_bitdepth = b & 0x40 != 0;
    let twelve_bit = b & 0x20 != 0;
    Ok(Av1Config {
        profile: a >> 5,
        level: a & 0x1f,
        high_tier: b & 0x80 != 0,
        bit_depth: match (high_bitdepth, twelve_bit) {
            (true, true) => 12,
            (true, false) => 10,
            _ => 8,
        },
    })
}

/// `esds` payload (after version/flags): ES_Descriptor → DecoderConfigDescriptor →
/// DecoderSpecificInfo (ISO/IEC 14496-1 §7.2.6), just far enough for the object types.
fn mp4a(esds: &[u8]) -> Result<Codec, MediaError> {
    let mut r = Reader::new(esds, "esds");
    let (tag, es) = descriptor(&mut r)?;
    if tag != 0x03 {
        return Err(MediaError::malformed("esds", "no ES descriptor"));
    }
    let mut r = Reader::new(es, "esds");
    r.skip(2)?; // ES_ID
    let flags = r.u8()?;
    if flags & 0x80 != 0 {
        r.skip(2)?; // dependsOn_ES_ID
    }
    if flags & 0x40 != 0 {
        let len = r.u8()?;
        r.skip(usize::from(len))?; // URL
    }
    if flags & 0x20 != 0 {
        r.skip(2)?; // OCR_ES_Id
    }
    // The DecoderConfigDescriptor normally comes first; skip anything before it.
    let config = loop {
        let (tag, body) = descriptor(&mut r)?;
        if tag == 0x04 {
            break body;
        }
    };
    let mut r = Reader::new(config, "esds");
    let object_type = r.u8()?;
    r.skip(12)?; // streamType etc., bufferSizeDB, maxBitrate, avgBitrate
    let mut audio_object_type = None;
    if object_type == OTI_MPEG4_AUDIO {
        while r.remaining() > 0 {
            let (tag, body) = descriptor(&mut r)?;
            if tag == 0x05 {
                audio_object_type = Some(audio_specific_config_aot(body)?);
                break;
            }
        }
    }
    Ok(Codec::Mp4a {
        object_type,
        audio_object_type,
    })
}

/// A descriptor's tag and body. Its length is 1 to 4 bytes of 7 bits each.
fn descriptor<'a>(r: &mut Reader<'a>) -> Result<(u8, &'a [u8]), MediaError> {
    let tag = r.u8()?;
    let mut len = 0usize;
    for _ in 0..4 {
        let b = r.u8()?;
        len = (len << 7) | usize::from(b & 0x7f);
        if b & 0x80 == 0 {
            break;
        }
    }
    Ok((tag, r.bytes(len)?))
}

/// The audio object type from an AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1): five bits, with
/// 31 escaping to 32 + six more bits.
pub(crate) fn audio_specific_config_aot(asc: &[u8]) -> Result<u8, MediaError> {
    let mut r = Reader::new(asc, "AudioSpecificConfig");
    let first = r.u8()?;
    let aot = first >> 3;
    if aot != 31 {
        return Ok(aot);
    }
    let second = r.u8()?;
    Ok(32 + (((first & 0x07) << 3) | (second >> 5)))
}

/// The codec of a Matroska track from its `CodecID` and `CodecPrivate`.
pub(crate) fn from_matroska(codec_id: &str, private: &[u8]) -> Codec {
    match codec_id {
        "V_VP8" => Codec::Vp8,
        "V_VP9" => Codec::Vp9(None),
        "V_AV1" => match av1c_config(private) {
            Ok(config) => Codec::Av1(config),
            Err(_) => Codec::Unknown(codec_id.into()),
        },
        "A_OPUS" => Codec::Opus,
        "A_VORBIS" => Codec::Vorbis,
        "A_FLAC" => Codec::Flac,
        other => Codec::Unknown(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avc_strings() {
        let c = avc(&[1, 0x64, 0x00, 0x1f, 0xff], false).unwrap();
        assert_eq!(c.codecs_string().unwrap(), "avc1.64001F");
        let c = avc(&[1, 0x42, 0xc0, 0x1e], true).unwrap();
        assert_eq!(c.codecs_string().unwrap(), "avc3.42C01E");
        assert!(avc(&[1, 0x42], false).is_err());
    }

    #[test]
    fn hevc_string_matches_the_spec_example() {
        // Main profile, compatibility flags 0x60000000 reversed = 0x6, level 93, one constraint
        // byte 0xB0: "hvc1.1.6.L93.B0".
        let hvcc = [1, 0x01, 0x60, 0, 0, 0, 0xb0, 0, 0, 0, 0, 0, 93];
        let c = hevc(FourCc::new(b"hvc1"), &hvcc).unwrap();
        assert_eq!(c.codecs_string().unwrap(), "hvc1.1.6.L93.B0");
    }

    #[test]
    fn esds_to_mp4a() {
        // ES_Descriptor { ES_ID, flags, DecoderConfig { OTI 0x40, ..., DSI { AAC-LC 48k stereo } } }
        let dsi = [0x05, 0x02, 0x11, 0x90];
        let mut dcd = vec![0x04, 13 + dsi.len() as u8, 0x40, 0x15];
        dcd.extend_from_slice(&[0; 11]);
        dcd.extend_from_slice(&dsi);
        let mut es = vec![0x03, 3 + dcd.len() as u8, 0, 1, 0];
        es.extend_from_slice(&dcd);
        let c = mp4a(&es).unwrap();
        assert_eq!(c.codecs_string().unwrap(), "mp4a.40.2");
        assert!(c.is_aac());
        assert_eq!(audio_specific_config_aot(&[0xf8, 0x20]).unwrap(), 33);
        assert!(mp4a(&es[..10]).is_err());
    }

    #[test]
    fn vp9_av1_and_matroska_names() {
        let c = Codec::Vp9(Some(vpcc_config(&[1, 0, 0, 0, 0, 10, 0x80]).unwrap()));
        assert_eq!(c.codecs_string().unwrap(), "vp09.00.10.08");
        let c = Codec::Av1(av1c_config(&[0x81, 0x04, 0x0c, 0]).unwrap());
        assert_eq!(c.codecs_string().unwrap(), "av01.0.04M.08");
        assert_eq!(from_matroska("V_VP9", &[]).codecs_string().unwrap(), "vp9");
        assert_eq!(
            from_matroska("A_VORBIS", &[]).codecs_string().unwrap(),
            "vorbis"
        );
        assert_eq!(from_matroska("V_MPEG4/ISO/AVC", &[]).codecs_string(), None);
    }
}

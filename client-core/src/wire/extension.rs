//! BEP 10 extension messages: the extended handshake, ut_metadata (BEP 9), lt_donthave (BEP 54).
//!
//! Ids: a peer sends an extension message with the id that the *receiver* listed in its `m`
//! dictionary. Ours are fixed like browser WebTorrent's (`ut_metadata` 1, `lt_donthave` 2) and we
//! do not advertise `ut_pex`, which cannot carry WebRTC peers (§2.4).

use std::collections::BTreeMap;

use super::{Message, WireError};
use crate::bencode::{self, Value};

/// Extended message id of the extended handshake.
pub const EXTENDED_HANDSHAKE_ID: u8 = 0;
pub const UT_METADATA: &str = "ut_metadata";
pub const LT_DONTHAVE: &str = "lt_donthave";
/// Our id for ut_metadata, as peers must address it to us.
pub const LOCAL_UT_METADATA_ID: u8 = 1;
/// Our id for lt_donthave.
pub const LOCAL_LT_DONTHAVE_ID: u8 = 2;

/// ut_metadata block size.
pub const METADATA_BLOCK_SIZE: usize = 16 * 1024;
/// Largest `metadata_size` / `total_size` accepted (WebTorrent's bound; 1 is the smallest).
pub const MAX_METADATA_SIZE: u64 = 10_000_000;

/// Bounds for the small bencoded dictionaries of extension messages.
const LIMITS: bencode::Limits = bencode::Limits {
    max_depth: 16,
    max_items: 4096,
    max_bytes_len: 64 * 1024,
};

/// The BEP 10 handshake dictionary (extended message id 0).
///
/// Decoding is lenient where BEP 10 says to ignore: unknown keys are dropped, `m` entries whose
/// id is not 0..=255 are skipped, a `metadata_size` outside 1..=[`MAX_METADATA_SIZE`] is treated
/// as absent (as WebTorrent does). An id of 0 in `m` means "disabled" and is kept so the engine
/// can see a peer turning an extension off; [`ExtendedHandshake::id_of`] hides it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtendedHandshake {
    /// Extension name → the sender's id for it.
    pub m: BTreeMap<String, u8>,
    /// Size of the info dictionary, when the sender has it.
    pub metadata_size: Option<u64>,
    /// How many outstanding requests the sender queues (WebTorrent caps its pipeline to it).
    pub reqq: Option<u32>,
    /// Client name and version.
    pub v: Option<String>,
    /// Listen port (TCP peers only).
    pub p: Option<u16>,
    /// Our address as the sender sees it (4 or 16 raw bytes).
    pub yourip: Option<Vec<u8>>,
}

impl ExtendedHandshake {
    /// What Shoal sends: `ut_metadata` 1, `lt_donthave` 2, `reqq`, a `v` naming the client, and
    /// `metadata_size` once we have the metadata.
    pub fn shoal(metadata_size: Option<u64>, reqq: u32) -> Self {
        Self {
            m: BTreeMap::from([
                (UT_METADATA.to_owned(), LOCAL_UT_METADATA_ID),
                (LT_DONTHAVE.to_owned(), LOCAL_LT_DONTHAVE_ID),
            ]),
            metadata_size,
            reqq: Some(reqq),
            v: Some(concat!("Shoal ", env!("CARGO_PKG_VERSION")).to_owned()),
            p: None,
            yourip: None,
        }
    }

    /// The sender's id for extension `name`, `None` if absent or disabled (0).
    pub fn id_of(&self, name: &str) -> Option<u8> {
        self.m.get(name).copied().filter(|&id| id != 0)
    }

    /// The bencoded dictionary (the payload after the extended id byte).
    pub fn encode(&self) -> Vec<u8> {
        let m = Value::dict(
            self.m
                .iter()
                .map(|(name, &id)| (name.as_bytes(), Value::Int(i64::from(id)))),
        );
        let mut dict = BTreeMap::new();
        dict.insert(b"m".to_vec(), m);
        if let Some(size) = self.metadata_size {
            dict.insert(b"metadata_size".to_vec(), Value::Int(saturating_i64(size)));
        }
        if let Some(reqq) = self.reqq {
            dict.insert(b"reqq".to_vec(), Value::Int(i64::from(reqq)));
        }
        if let Some(v) = &self.v {
            dict.insert(b"v".to_vec(), Value::from(v.as_str()));
        }
        if let Some(p) = self.p {
            dict.insert(b"p".to_vec(), Value::Int(i64::from(p)));
        }
        if let Some(ip) = &self.yourip {
            dict.insert(b"yourip".to_vec(), Value::Bytes(ip.clone()));
        }
        Value::Dict(dict).encode()
    }

    /// Reads the dictionary. Bytes after it are ignored, like the JavaScript decoder does.
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let (value, _) = bencode::decode_prefix(payload, &LIMITS)?;
        if value.as_dict().is_none() {
            return Err(WireError::BadExtendedHandshake("not a dictionary"));
        }
        let mut m = BTreeMap::new();
        if let Some(entries) = value.get(b"m") {
            let entries = entries
                .as_dict()
                .ok_or(WireError::BadExtendedHandshake("m is not a dictionary"))?;
            for (name, id) in entries {
                let name = std::str::from_utf8(name);
                let id = id.as_int().and_then(|id| u8::try_from(id).ok());
                if let (Ok(name), Some(id)) = (name, id) {
                    m.insert(name.to_owned(), id);
                }
            }
        }
        let int = |key: &[u8]| value.get(key).and_then(Value::as_int);
        Ok(Self {
            m,
            metadata_size: int(b"metadata_size")
                .and_then(|n| u64::try_from(n).ok())
                .filter(|n| (1..=MAX_METADATA_SIZE).contains(n)),
            reqq: int(b"reqq")
                .filter(|&n| n > 0)
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            v: value
                .get(b"v")
                .and_then(Value::as_bytes)
                .map(|v| String::from_utf8_lossy(v).into_owned()),
            p: int(b"p").and_then(|n| u16::try_from(n).ok()),
            yourip: value
                .get(b"yourip")
                .and_then(Value::as_bytes)
                .filter(|ip| ip.len() == 4 || ip.len() == 16)
                .map(<[u8]>::to_vec),
        })
    }

    /// As a wire message (extended id 0).
    pub fn to_message(&self) -> Message {
        Message::Extended {
            id: EXTENDED_HANDSHAKE_ID,
            payload: self.encode(),
        }
    }
}

/// A BEP 9 ut_metadata message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataMessage {
    /// msg_type 0.
    Request { piece: u32 },
    /// msg_type 1: one 16 KiB block of the info dictionary (shorter for the last piece).
    Data {
        piece: u32,
        total_size: u64,
        data: Vec<u8>,
    },
    /// msg_type 2.
    Reject { piece: u32 },
}

impl MetadataMessage {
    pub fn piece(&self) -> u32 {
        match *self {
            MetadataMessage::Request { piece }
            | MetadataMessage::Data { piece, .. }
            | MetadataMessage::Reject { piece } => piece,
        }
    }

    /// The payload after the extended id byte.
    ///
    /// QUIRK (§2.4): WebTorrent finds the end of the dictionary by searching for the first `ee`,
    /// then treats the rest as the block. So the dictionary is written by hand with exactly the
    /// keys `msg_type`, `piece` (and `total_size`), sorted as bencoding requires; every key ends
    /// in `e` followed by `i`, and the last value is an integer, so the first `ee` is the
    /// integer's end plus the dictionary's end.
    pub fn encode(&self) -> Vec<u8> {
        let (msg_type, piece, total_size, data): (u8, u32, Option<u64>, &[u8]) = match self {
            MetadataMessage::Request { piece } => (0, *piece, None, &[]),
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => (1, *piece, Some(*total_size), data),
            MetadataMessage::Reject { piece } => (2, *piece, None, &[]),
        };
        let mut out = Vec::with_capacity(64 + data.len());
        out.extend_from_slice(b"d8:msg_typei");
        out.extend_from_slice(msg_type.to_string().as_bytes());
        out.extend_from_slice(b"e5:piecei");
        out.extend_from_slice(piece.to_string().as_bytes());
        out.push(b'e');
        if let Some(total_size) = total_size {
            out.extend_from_slice(b"10:total_sizei");
            out.extend_from_slice(total_size.to_string().as_bytes());
            out.push(b'e');
        }
        out.push(b'e');
        out.extend_from_slice(data);
        out
    }

    /// Reads a payload: a bencoded dictionary, then (for data) the block. A data message must
    /// carry a `total_size` in 1..=[`MAX_METADATA_SIZE`], a piece inside it and a block of exactly
    /// that piece's length. Bytes after a request or reject dictionary are ignored.
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let (dict, used) = bencode::decode_prefix(payload, &LIMITS)?;
        if dict.as_dict().is_none() {
            return Err(WireError::BadMetadataMessage("not a dictionary"));
        }
        let msg_type = dict
            .get(b"msg_type")
            .and_then(Value::as_int)
            .ok_or(WireError::BadMetadataMessage("missing msg_type"))?;
        let piece = dict
            .get(b"piece")
            .and_then(Value::as_int)
            .ok_or(WireError::BadMetadataMessage("missing piece"))?;
        let piece = u32::try_from(piece)
            .map_err(|_| WireError::BadMetadataMessage("piece out of range"))?;
        match msg_type {
            0 => Ok(MetadataMessage::Request { piece }),
            2 => Ok(MetadataMessage::Reject { piece }),
            1 => {
                let total_size = dict
                    .get(b"total_size")
                    .and_then(Value::as_int)
                    .ok_or(WireError::BadMetadataMessage("data without total_size"))?;
                let total_size = u64::try_from(total_size)
                    .ok()
                    .filter(|n| (1..=MAX_METADATA_SIZE).contains(n))
                    .ok_or(WireError::BadMetadataMessage("total_size out of range"))?;
                let expected = metadata_piece_len(total_size, piece)
                    .ok_or(WireError::BadMetadataMessage("piece beyond total_size"))?;
                let data = &payload[used..];
                if data.len() != expected {
                    return Err(WireError::BadMetadataMessage(
                        "block length does not match total_size",
                    ));
                }
                Ok(MetadataMessage::Data {
                    piece,
                    total_size,
                    data: data.to_vec(),
                })
            }
            _ => Err(WireError::BadMetadataMessage("unknown msg_type")),
        }
    }

    /// As a wire message addressed with the peer's ut_metadata id.
    pub fn to_message(&self, peer_id_for_ut_metadata: u8) -> Message {
        Message::Extended {
            id: peer_id_for_ut_metadata,
            payload: self.encode(),
        }
    }
}

/// Number of 16 KiB ut_metadata pieces for a metadata size.
pub fn metadata_piece_count(total_size: u64) -> u32 {
    let count = total_size.div_ceil(METADATA_BLOCK_SIZE as u64);
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// Length of ut_metadata piece `piece`, `None` if it is past the end.
pub fn metadata_piece_len(total_size: u64, piece: u32) -> Option<usize> {
    let start = u64::from(piece) * METADATA_BLOCK_SIZE as u64;
    if start >= total_size {
        return None;
    }
    let len = (total_size - start).min(METADATA_BLOCK_SIZE as u64);
    Some(len as usize)
}

/// A BEP 54 lt_donthave message: the sender no longer has `piece`. WebTorrent only listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DontHave {
    pub piece: u32,
}

impl DontHave {
    /// The 4-byte big-endian payload.
    pub fn encode(&self) -> Vec<u8> {
        self.piece.to_be_bytes().to_vec()
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let bytes: [u8; 4] = payload
            .try_into()
            .map_err(|_| WireError::BadDontHave(payload.len()))?;
        Ok(Self {
            piece: u32::from_be_bytes(bytes),
        })
    }

    /// As a wire message addressed with the peer's lt_donthave id.
    pub fn to_message(&self, peer_id_for_lt_donthave: u8) -> Message {
        Message::Extended {
            id: peer_id_for_lt_donthave,
            payload: self.encode(),
        }
    }
}

/// An incoming extension message, dispatched on *our* ids (the ones in our `m`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtensionMessage {
    Handshake(ExtendedHandshake),
    Metadata(MetadataMessage),
    DontHave(DontHave),
    /// An id we never advertised: a peer bug, ignore it.
    Unknown {
        id: u8,
        payload: Vec<u8>,
    },
}

impl ExtensionMessage {
    /// Decodes the payload of a [`Message::Extended`] received from a peer.
    pub fn decode(id: u8, payload: &[u8]) -> Result<Self, WireError> {
        Ok(match id {
            EXTENDED_HANDSHAKE_ID => {
                ExtensionMessage::Handshake(ExtendedHandshake::decode(payload)?)
            }
            LOCAL_UT_METADATA_ID => ExtensionMessage::Metadata(MetadataMessage::decode(payload)?),
            LOCAL_LT_DONTHAVE_ID => ExtensionMessage::DontHave(DontHave::decode(payload)?),
            _ => ExtensionMessage::Unknown {
                id,
                payload: payload.to_vec(),
            },
        })
    }

    /// The wire message for sending this to a peer whose extended handshake is `peer`, using the
    /// peer's ids. `None` if the peer did not advertise the extension (or for `Unknown`).
    pub fn to_message(&self, peer: &ExtendedHandshake) -> Option<Message> {
        match self {
            ExtensionMessage::Handshake(handshake) => Some(handshake.to_message()),
            ExtensionMessage::Metadata(message) => {
                Some(message.to_message(peer.id_of(UT_METADATA)?))
            }
            ExtensionMessage::DontHave(message) => {
                Some(message.to_message(peer.id_of(LT_DONTHAVE)?))
            }
            ExtensionMessage::Unknown { .. } => None,
        }
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

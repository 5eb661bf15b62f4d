//! Peer wire messages (BEP 3, BEP 6 fast extension, BEP 10 extended envelope) and their encoding.

use super::{WireError, MAX_REQUEST_LEN};

/// Message ids (the byte after the 4-byte length prefix).
pub mod message_id {
    pub const CHOKE: u8 = 0;
    pub const UNCHOKE: u8 = 1;
    pub const INTERESTED: u8 = 2;
    pub const NOT_INTERESTED: u8 = 3;
    pub const HAVE: u8 = 4;
    pub const BITFIELD: u8 = 5;
    pub const REQUEST: u8 = 6;
    pub const PIECE: u8 = 7;
    pub const CANCEL: u8 = 8;
    pub const PORT: u8 = 9;
    pub const SUGGEST: u8 = 13;
    pub const HAVE_ALL: u8 = 14;
    pub const HAVE_NONE: u8 = 15;
    pub const REJECT: u8 = 16;
    pub const ALLOWED_FAST: u8 = 17;
    pub const EXTENDED: u8 = 20;
}

use message_id as id;

/// One peer wire message.
///
/// Unknown message ids are not an error: BEP 3 asks clients to ignore messages they do not
/// understand (and WebTorrent does), so they decode to [`Message::Unknown`] and the engine drops
/// them. Their size is still bounded by [`super::WireLimits::max_message_len`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    /// One bit per piece, high bit of the first byte = piece 0; spare bits should be zero.
    Bitfield(Vec<u8>),
    Request {
        index: u32,
        begin: u32,
        length: u32,
    },
    Piece {
        index: u32,
        begin: u32,
        data: Vec<u8>,
    },
    Cancel {
        index: u32,
        begin: u32,
        length: u32,
    },
    /// DHT port (BEP 5); browsers never send it.
    Port(u16),
    /// BEP 6.
    Suggest(u32),
    /// BEP 6.
    HaveAll,
    /// BEP 6.
    HaveNone,
    /// BEP 6: the peer will not serve this request.
    Reject {
        index: u32,
        begin: u32,
        length: u32,
    },
    /// BEP 6.
    AllowedFast(u32),
    /// BEP 10: `id` 0 is the extended handshake, other ids are the *receiver's* `m` ids.
    Extended {
        id: u8,
        payload: Vec<u8>,
    },
    /// A message id we do not know, kept so the engine can log it.
    Unknown {
        id: u8,
        payload: Vec<u8>,
    },
}

impl Message {
    /// A short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Message::KeepAlive => "keep-alive",
            Message::Unknown { .. } => "unknown",
            other => name_of(other.id().unwrap_or(u8::MAX)),
        }
    }

    /// The message id, `None` for keep-alive.
    pub fn id(&self) -> Option<u8> {
        Some(match self {
            Message::KeepAlive => return None,
            Message::Choke => id::CHOKE,
            Message::Unchoke => id::UNCHOKE,
            Message::Interested => id::INTERESTED,
            Message::NotInterested => id::NOT_INTERESTED,
            Message::Have(_) => id::HAVE,
            Message::Bitfield(_) => id::BITFIELD,
            Message::Request { .. } => id::REQUEST,
            Message::Piece { .. } => id::PIECE,
            Message::Cancel { .. } => id::CANCEL,
            Message::Port(_) => id::PORT,
            Message::Suggest(_) => id::SUGGEST,
            Message::HaveAll => id::HAVE_ALL,
            Message::HaveNone => id::HAVE_NONE,
            Message::Reject { .. } => id::REJECT,
            Message::AllowedFast(_) => id::ALLOWED_FAST,
            Message::Extended { .. } => id::EXTENDED,
            Message::Unknown { id, .. } => *id,
        })
    }

    /// Whether this message exists only under the fast extension (BEP 6).
    pub fn is_fast_extension(&self) -> bool {
        matches!(
            self,
            Message::Suggest(_)
                | Message::HaveAll
                | Message::HaveNone
                | Message::Reject { .. }
                | Message::AllowedFast(_)
        )
    }

    /// The protocol rules above framing, shared by both directions: fast-extension messages only
    /// when it was negotiated, and no request longer than [`MAX_REQUEST_LEN`] (WebTorrent closes
    /// the wire on either).
    pub fn check(&self, fast_negotiated: bool) -> Result<(), WireError> {
        if !fast_negotiated && self.is_fast_extension() {
            return Err(WireError::FastNotNegotiated(self.name()));
        }
        if let Message::Request { length, .. } = *self {
            if length > MAX_REQUEST_LEN {
                return Err(WireError::RequestTooLong { length });
            }
        }
        Ok(())
    }

    /// Bytes after the length prefix: the id byte plus the payload (0 for keep-alive).
    pub fn body_len(&self) -> usize {
        let payload = match self {
            Message::KeepAlive => return 0,
            Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => 0,
            Message::Have(_) | Message::Suggest(_) | Message::AllowedFast(_) => 4,
            Message::Port(_) => 2,
            Message::Request { .. } | Message::Cancel { .. } | Message::Reject { .. } => 12,
            Message::Bitfield(bits) => bits.len(),
            Message::Piece { data, .. } => 8 + data.len(),
            Message::Extended { payload, .. } => 1 + payload.len(),
            Message::Unknown { payload, .. } => payload.len(),
        };
        1 + payload
    }

    /// Total bytes on the wire, length prefix included.
    pub fn encoded_len(&self) -> usize {
        4 + self.body_len()
    }

    /// Appends the message (length prefix, id, payload) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        // A body cannot reach 4 GiB: every payload we build is bounded far below that.
        out.extend_from_slice(&(self.body_len() as u32).to_be_bytes());
        let Some(message_id) = self.id() else {
            return; // keep-alive: the zero length is the whole message
        };
        out.push(message_id);
        match self {
            Message::KeepAlive
            | Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => {}
            Message::Have(n) | Message::Suggest(n) | Message::AllowedFast(n) => {
                out.extend_from_slice(&n.to_be_bytes())
            }
            Message::Port(port) => out.extend_from_slice(&port.to_be_bytes()),
            Message::Request {
                index,
                begin,
                length,
            }
            | Message::Cancel {
                index,
                begin,
                length,
            }
            | Message::Reject {
                index,
                begin,
                length,
            } => {
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(&begin.to_be_bytes());
                out.extend_from_slice(&length.to_be_bytes());
            }
            Message::Bitfield(bits) => out.extend_from_slice(bits),
            Message::Piece { index, begin, data } => {
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(&begin.to_be_bytes());
                out.extend_from_slice(data);
            }
            Message::Extended { id, payload } => {
                out.push(*id);
                out.extend_from_slice(payload);
            }
            Message::Unknown { payload, .. } => out.extend_from_slice(payload),
        }
    }

    /// The encoded message as a new buffer.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Builds a message from its id and payload (the bytes after the id). Fixed-size messages
    /// must have exactly their size. Protocol rules are left to [`Message::check`].
    pub fn decode_payload(message_id: u8, payload: &[u8]) -> Result<Message, WireError> {
        if let Some(expected) = fixed_payload_len(message_id) {
            if payload.len() != expected {
                return Err(bad_length(message_id, payload.len()));
            }
        }
        // In bounds: fixed-size payloads were length-checked above; `piece` checks its own.
        let u32_at = |at: usize| {
            u32::from_be_bytes([
                payload[at],
                payload[at + 1],
                payload[at + 2],
                payload[at + 3],
            ])
        };
        Ok(match message_id {
            id::CHOKE => Message::Choke,
            id::UNCHOKE => Message::Unchoke,
            id::INTERESTED => Message::Interested,
            id::NOT_INTERESTED => Message::NotInterested,
            id::HAVE => Message::Have(u32_at(0)),
            id::BITFIELD => Message::Bitfield(payload.to_vec()),
            id::REQUEST => Message::Request {
                index: u32_at(0),
                begin: u32_at(4),
                length: u32_at(8),
            },
            id::PIECE => {
                if payload.len() < 8 {
                    return Err(bad_length(message_id, payload.len()));
                }
                Message::Piece {
                    index: u32_at(0),
                    begin: u32_at(4),
                    data: payload[8..].to_vec(),
                }
            }
            id::CANCEL => Message::Cancel {
                index: u32_at(0),
                begin: u32_at(4),
                length: u32_at(8),
            },
            id::PORT => Message::Port(u16::from_be_bytes([payload[0], payload[1]])),
            id::SUGGEST => Message::Suggest(u32_at(0)),
            id::HAVE_ALL => Message::HaveAll,
            id::HAVE_NONE => Message::HaveNone,
            id::REJECT => Message::Reject {
                index: u32_at(0),
                begin: u32_at(4),
                length: u32_at(8),
            },
            id::ALLOWED_FAST => Message::AllowedFast(u32_at(0)),
            id::EXTENDED => match payload.split_first() {
                Some((&id, rest)) => Message::Extended {
                    id,
                    payload: rest.to_vec(),
                },
                None => return Err(bad_length(message_id, 0)),
            },
            other => Message::Unknown {
                id: other,
                payload: payload.to_vec(),
            },
        })
    }
}

/// Payload size of the messages that have a fixed one.
pub(super) fn fixed_payload_len(message_id: u8) -> Option<usize> {
    match message_id {
        id::CHOKE | id::UNCHOKE | id::INTERESTED | id::NOT_INTERESTED => Some(0),
        id::HAVE_ALL | id::HAVE_NONE => Some(0),
        id::HAVE | id::SUGGEST | id::ALLOWED_FAST => Some(4),
        id::REQUEST | id::CANCEL | id::REJECT => Some(12),
        id::PORT => Some(2),
        _ => None,
    }
}

/// Name of a message id, for errors.
pub(super) fn name_of(message_id: u8) -> &'static str {
    match message_id {
        id::CHOKE => "choke",
        id::UNCHOKE => "unchoke",
        id::INTERESTED => "interested",
        id::NOT_INTERESTED => "not interested",
        id::HAVE => "have",
        id::BITFIELD => "bitfield",
        id::REQUEST => "request",
        id::PIECE => "piece",
        id::CANCEL => "cancel",
        id::PORT => "port",
        id::SUGGEST => "suggest",
        id::HAVE_ALL => "have all",
        id::HAVE_NONE => "have none",
        id::REJECT => "reject request",
        id::ALLOWED_FAST => "allowed fast",
        id::EXTENDED => "extended",
        _ => "unknown",
    }
}

fn bad_length(message_id: u8, payload_len: usize) -> WireError {
    WireError::BadLength {
        name: name_of(message_id),
        length: (payload_len + 1) as u32,
    }
}

//! The BitTorrent peer wire protocol (BEP 3, 6, 9, 10, 54) over WebRTC data channels, sans I/O.
//!
//! This module owns the bytes a wire carries and nothing else: it turns an arbitrarily chunked
//! byte stream into [`Handshake`]s and [`Message`]s ([`Decoder`]), and messages back into
//! data-channel sends ([`SendQueue`]). Choking, piece picking, timers and the decision to close a
//! connection belong to the engine above it. See ../shared/webtorrent-protocol.md §2.
//!
//! Invariants:
//! - **Framing is independent of transport chunking.** WebTorrent writes a message header and its
//!   payload as separate data-channel messages, and a receiver may see several messages in one
//!   chunk (§2.2); the decoder buffers until a whole frame is there, so any split of the same
//!   bytes yields the same messages.
//! - **Memory is bounded.** A frame's length is checked against [`WireLimits`] as soon as its
//!   4-byte prefix (and id) arrive, before the payload is buffered, and the decoder refuses to hold
//!   more than [`WireLimits::max_buffered`] unread bytes.
//! - **Network input never panics.** Every malformed input becomes a [`WireError`].
//! - **We never emit what WebTorrent punishes**: requests above [`MAX_REQUEST_LEN`] (it
//!   disconnects), ut_metadata dictionaries that its "first `ee`" search would misread (§2.4),
//!   data-channel sends above [`MAX_SEND_LEN`].

mod decoder;
mod extension;
mod handshake;
mod message;
mod send;

pub use decoder::{Decoder, WireLimits};
pub use extension::{
    metadata_piece_count, metadata_piece_len, DontHave, ExtendedHandshake, ExtensionMessage,
    MetadataMessage, EXTENDED_HANDSHAKE_ID, LOCAL_LT_DONTHAVE_ID, LOCAL_UT_METADATA_ID,
    LT_DONTHAVE, MAX_METADATA_SIZE, METADATA_BLOCK_SIZE, UT_METADATA,
};
pub use handshake::{Handshake, HANDSHAKE_LEN, PROTOCOL};
pub use message::{message_id, Message};
pub use send::{chunk_for_datachannel, SendQueue, MAX_SEND_LEN};

use crate::bencode;

/// The block size every request uses (`1 << 14`, as in WebTorrent and every mainstream client).
pub const BLOCK_SIZE: u32 = 16 * 1024;

/// Longest block a request may ask for. WebTorrent (bittorrent-protocol) destroys the wire when it
/// receives a longer request, so we never send one and refuse to serve one.
pub const MAX_REQUEST_LEN: u32 = 128 * 1024;

/// Why bytes from a peer (or a message we were about to send) break the wire protocol.
///
/// Errors split in two kinds (see [`WireError::is_recoverable`]): framing errors leave the stream
/// unsynchronised, so the [`Decoder`] keeps returning them; policy errors (a too-long request, a
/// fast-extension message without the fast extension) concern one whole, already consumed
/// message, so the engine may choose to carry on. WebTorrent closes the connection on both.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("handshake: protocol string length is {0}, expected 19")]
    BadProtocolLength(u8),
    #[error("handshake: protocol string is not \"BitTorrent protocol\"")]
    BadProtocolString,
    #[error("handshake must be {HANDSHAKE_LEN} bytes, got {0}")]
    HandshakeLength(usize),
    #[error("frame of {length} bytes exceeds the largest allowed frame ({limit} bytes)")]
    FrameTooLong { length: u32, limit: u32 },
    #[error("{name} message of {length} bytes exceeds the limit of {limit} bytes")]
    MessageTooLong {
        name: &'static str,
        length: u32,
        limit: u32,
    },
    #[error("{name} message has invalid length {length}")]
    BadLength { name: &'static str, length: u32 },
    #[error("peer sent {buffered} bytes without letting them be consumed (limit {limit})")]
    BufferOverflow { buffered: usize, limit: usize },
    #[error("request for {length} bytes exceeds the {MAX_REQUEST_LEN}-byte limit")]
    RequestTooLong { length: u32 },
    #[error("{0} message received but the fast extension (BEP 6) was not negotiated")]
    FastNotNegotiated(&'static str),
    #[error("next_message called before the handshake was read")]
    HandshakeNotRead,
    #[error("next_handshake called after the handshake was read")]
    HandshakeAlreadyRead,
    #[error("invalid extended handshake: {0}")]
    BadExtendedHandshake(&'static str),
    #[error("invalid ut_metadata message: {0}")]
    BadMetadataMessage(&'static str),
    #[error("invalid lt_donthave message: payload of {0} bytes, expected 4")]
    BadDontHave(usize),
    #[error("extension payload: {0}")]
    Bencode(#[from] bencode::Error),
}

impl WireError {
    /// True when the error concerns one complete message that the decoder has already consumed,
    /// so that decoding can go on. False for framing errors, after which the decoder is stuck.
    pub fn is_recoverable(&self) -> bool {
        matches!(
            self,
            WireError::RequestTooLong { .. }
                | WireError::FastNotNegotiated(_)
                | WireError::HandshakeNotRead
                | WireError::HandshakeAlreadyRead
                | WireError::BadExtendedHandshake(_)
                | WireError::BadMetadataMessage(_)
                | WireError::BadDontHave(_)
                | WireError::Bencode(_)
        )
    }
}

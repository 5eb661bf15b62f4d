//! Incremental decoding of the wire byte stream: handshake first, then length-prefixed messages.

use super::handshake::{check_prefix, Handshake, HANDSHAKE_LEN};
use super::message::{fixed_payload_len, message_id, name_of, Message};
use super::{WireError, BLOCK_SIZE};

/// Size bounds applied to what a peer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireLimits {
    /// Longest message body (id + payload) for every message but the bitfield. The default,
    /// 32 KiB, holds a 16 KiB piece message (16 384 + 9) and a ut_metadata data message
    /// (16 KiB + ~60 bytes) with room to spare.
    pub max_message_len: u32,
    /// Longest bitfield payload. The default, 1 MiB, covers 8 Mi pieces.
    pub max_bitfield_len: u32,
    /// Most unread bytes the decoder holds. Draining after every `feed` leaves at most one
    /// partial frame behind, so this only trips when a peer floods faster than it is read.
    pub max_buffered: usize,
}

impl Default for WireLimits {
    fn default() -> Self {
        Self {
            max_message_len: 2 * BLOCK_SIZE,
            max_bitfield_len: 1 << 20,
            max_buffered: 2 << 20,
        }
    }
}

impl WireLimits {
    /// Largest frame body any message may have.
    fn max_frame(&self) -> u32 {
        self.max_message_len
            .max(self.max_bitfield_len.saturating_add(1))
    }
}

/// A buffer shrinks back to this capacity once drained (a bitfield may have grown it to 1 MiB).
const IDLE_CAPACITY: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshake,
    Messages,
}

/// Turns the bytes of one wire, in whatever chunks they arrive, into a handshake and messages.
///
/// Use: [`feed`](Decoder::feed) every data-channel message, then call
/// [`next_handshake`](Decoder::next_handshake) once it returns `Some`, and
/// [`next_message`](Decoder::next_message) until it returns `None`. Before reading messages, tell
/// the decoder whether the fast extension is in force ([`Decoder::set_fast_negotiated`]); without
/// it, BEP 6 messages are reported as [`WireError::FastNotNegotiated`].
///
/// A framing error is sticky: every later call returns it again (the stream cannot be
/// resynchronised, the engine should close the wire). A policy error
/// ([`WireError::is_recoverable`]) consumes the offending message only.
#[derive(Debug, Clone)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Start of the unread bytes in `buf`.
    pos: usize,
    limits: WireLimits,
    state: State,
    fast: bool,
    failed: Option<WireError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(WireLimits::default())
    }
}

impl Decoder {
    /// A decoder that expects the peer's handshake first.
    pub fn new(limits: WireLimits) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            limits,
            state: State::Handshake,
            fast: false,
            failed: None,
        }
    }

    /// A decoder for a stream whose handshake was already consumed (tests, replays).
    pub fn after_handshake(limits: WireLimits, fast_negotiated: bool) -> Self {
        Self {
            state: State::Messages,
            fast: fast_negotiated,
            ..Self::new(limits)
        }
    }

    /// Whether BEP 6 messages are accepted.
    pub fn set_fast_negotiated(&mut self, on: bool) {
        self.fast = on;
    }

    pub fn fast_negotiated(&self) -> bool {
        self.fast
    }

    /// Bytes received but not yet decoded.
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Appends received bytes. If they would push the unread bytes past
    /// [`WireLimits::max_buffered`] they are dropped and the decoder fails with
    /// [`WireError::BufferOverflow`], returned by the next `next_*` call.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        // Compact: only the unread tail (at most one partial frame after a drain) moves.
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let buffered = self.buf.len().saturating_add(bytes.len());
        if buffered > self.limits.max_buffered {
            self.failed = Some(WireError::BufferOverflow {
                buffered,
                limit: self.limits.max_buffered,
            });
            self.buf = Vec::new();
            return;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The peer's handshake once all 68 bytes are there. Garbage is refused as soon as the first
    /// byte that cannot begin `\x13BitTorrent protocol` arrives. The engine then checks the
    /// info-hash and peer id, and calls [`Decoder::set_fast_negotiated`].
    pub fn next_handshake(&mut self) -> Result<Option<Handshake>, WireError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if self.state != State::Handshake {
            return Err(WireError::HandshakeAlreadyRead);
        }
        let unread = &self.buf[self.pos..];
        let result = if unread.len() < HANDSHAKE_LEN {
            check_prefix(unread).map(|()| None)
        } else {
            Handshake::decode(&unread[..HANDSHAKE_LEN]).map(Some)
        };
        match result {
            Ok(Some(handshake)) => {
                self.consume(HANDSHAKE_LEN);
                self.state = State::Messages;
                Ok(Some(handshake))
            }
            Ok(None) => Ok(None),
            Err(err) => Err(self.fail(err)),
        }
    }

    /// The next complete message, `None` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, WireError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if self.state != State::Messages {
            return Err(WireError::HandshakeNotRead);
        }
        match self.parse_message() {
            Ok(message) => Ok(message),
            Err(err) if err.is_recoverable() => Err(err),
            Err(err) => Err(self.fail(err)),
        }
    }

    fn parse_message(&mut self) -> Result<Option<Message>, WireError> {
        let unread = &self.buf[self.pos..];
        let Some(prefix) = unread.get(..4) else {
            return Ok(None);
        };
        let length = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        if length == 0 {
            self.consume(4);
            return Ok(Some(Message::KeepAlive));
        }
        // Check sizes on the header alone, before buffering a payload we would refuse anyway.
        let max_frame = self.limits.max_frame();
        if length > max_frame {
            return Err(WireError::FrameTooLong {
                length,
                limit: max_frame,
            });
        }
        let Some(&id) = unread.get(4) else {
            return Ok(None);
        };
        let limit = if id == message_id::BITFIELD {
            self.limits.max_bitfield_len.saturating_add(1)
        } else {
            self.limits.max_message_len
        };
        if length > limit {
            return Err(WireError::MessageTooLong {
                name: name_of(id),
                length,
                limit,
            });
        }
        if let Some(payload_len) = fixed_payload_len(id) {
            if length as usize != payload_len + 1 {
                return Err(WireError::BadLength {
                    name: name_of(id),
                    length,
                });
            }
        }
        let frame_len = 4 + length as usize;
        if unread.len() < frame_len {
            return Ok(None);
        }
        let decoded = Message::decode_payload(id, &unread[5..frame_len]);
        self.consume(frame_len);
        let message = decoded?;
        message.check(self.fast)?;
        Ok(Some(message))
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            if self.buf.capacity() > IDLE_CAPACITY {
                self.buf.shrink_to(IDLE_CAPACITY);
            }
        }
    }

    fn fail(&mut self, err: WireError) -> WireError {
        self.failed = Some(err.clone());
        self.buf = Vec::new();
        self.pos = 0;
        err
    }
}

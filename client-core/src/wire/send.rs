//! Outgoing framing: packing the wire byte stream into data-channel sends.
//!
//! The receiver treats the channel as a byte stream (§2.2), so any split is correct; the split
//! only matters for interop and latency. Each send is kept to at most [`MAX_SEND_LEN`] bytes:
//! - old Firefox↔Chrome pairs failed on data-channel messages above 16 KiB (SCTP without the
//!   EOR/ndata interleaving fix; peers/peerjs#130, webrtcHacks/adapter#426), and nothing guarantees
//!   every browser a peer might run is new;
//! - WebTorrent itself never sends more than a 16 KiB block plus a header in one message, so this
//!   is the size every peer in the swarm is known to accept;
//! - small sends keep a big bitfield from delaying the messages queued behind it.
//!
//! Small messages (have, interested, requests) are coalesced into one send while they fit, which
//! saves per-message overhead in the SCTP stack on both ends.

use std::collections::VecDeque;

use super::{Handshake, Message, WireError, BLOCK_SIZE};

/// Largest data-channel send we produce: a 16 KiB block plus room for the header of the message
/// that carries it (13 bytes for a piece, ~60 for a ut_metadata data message).
pub const MAX_SEND_LEN: usize = BLOCK_SIZE as usize + 64;

/// Splits an already encoded byte stream into data-channel sends of at most [`MAX_SEND_LEN`].
pub fn chunk_for_datachannel(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.chunks(MAX_SEND_LEN)
}

/// The outgoing side of a wire: messages in, data-channel sends out.
///
/// The engine pushes messages and pops sends while the channel's `bufferedAmount` is low; what
/// it has not popped yet is still cancellable by the engine's own bookkeeping (it can simply stop
/// pushing pieces for a choked peer).
#[derive(Debug, Clone)]
pub struct SendQueue {
    sends: VecDeque<Vec<u8>>,
    max_send: usize,
    queued: usize,
}

impl Default for SendQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl SendQueue {
    /// A queue producing sends of at most [`MAX_SEND_LEN`] bytes.
    pub fn new() -> Self {
        Self::with_max_send(MAX_SEND_LEN)
    }

    /// A queue producing sends of at most `max_send` bytes (at least 1).
    pub fn with_max_send(max_send: usize) -> Self {
        Self {
            sends: VecDeque::new(),
            max_send: max_send.max(1),
            queued: 0,
        }
    }

    /// Queues our handshake (68 bytes).
    pub fn push_handshake(&mut self, handshake: &Handshake) {
        self.push_bytes(&handshake.encode());
    }

    /// Queues a message. Refuses (and drops) a request longer than [`super::MAX_REQUEST_LEN`]:
    /// WebTorrent would disconnect us for it. Whether fast-extension messages may be sent is the
    /// engine's call, which knows both handshakes.
    pub fn push(&mut self, message: &Message) -> Result<(), WireError> {
        if let Message::Request { length, .. } = *message {
            if length > super::MAX_REQUEST_LEN {
                return Err(WireError::RequestTooLong { length });
            }
        }
        let len = message.encoded_len();
        self.queued += len;
        if let Some(tail) = self.sends.back_mut() {
            if tail.len() + len <= self.max_send {
                message.encode_into(tail);
                return Ok(());
            }
        }
        if len <= self.max_send {
            let mut send = Vec::with_capacity(len);
            message.encode_into(&mut send);
            self.sends.push_back(send);
        } else {
            self.queued -= len; // push_bytes counts it
            self.push_bytes(&message.encode());
        }
        Ok(())
    }

    /// Queues raw stream bytes: appended to the last send while it has room, then in new sends.
    pub fn push_bytes(&mut self, mut bytes: &[u8]) {
        self.queued += bytes.len();
        if let Some(tail) = self.sends.back_mut() {
            let room = self.max_send.saturating_sub(tail.len());
            // Only top up the tail if the bytes fit whole; otherwise start aligned on a new send.
            if bytes.len() <= room {
                tail.extend_from_slice(bytes);
                return;
            }
        }
        while !bytes.is_empty() {
            let (head, rest) = bytes.split_at(bytes.len().min(self.max_send));
            self.sends.push_back(head.to_vec());
            bytes = rest;
        }
    }

    /// The next data-channel send, if any.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        let send = self.sends.pop_front()?;
        self.queued -= send.len();
        Some(send)
    }

    /// Bytes queued and not popped yet.
    pub fn queued_bytes(&self) -> usize {
        self.queued
    }

    /// Number of sends waiting.
    pub fn len(&self) -> usize {
        self.sends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sends.is_empty()
    }

    /// Drops everything queued (the wire is closing).
    pub fn clear(&mut self) {
        self.sends.clear();
        self.queued = 0;
    }
}

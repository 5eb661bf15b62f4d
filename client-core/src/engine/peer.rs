//! Per-peer wire state: the decoder and send queue of one connection, handshakes, choke and
//! interest flags, what the peer has, requests in both directions and transfer rates.
//!
//! Invariants:
//! - `requests` holds only blocks we asked this peer for and still expect; every entry is
//!   counted in the picker's per-block request count (the engine keeps the two in step).
//! - `upload` never holds more than the configured queue length.
//! - Before metadata, what the peer announces is kept raw in [`PreMetadata`] (bounded) and
//!   applied once the piece count is known.

use std::collections::{BTreeSet, VecDeque};

use super::bitfield::Bitfield;
use super::stats::Rate;
use super::{Millis, PeerKey};
use crate::wire::{Decoder, ExtendedHandshake, Handshake, SendQueue, WireLimits, LT_DONTHAVE};
use crate::wire::{BLOCK_SIZE, UT_METADATA};
use crate::PeerId;

/// Most `have` indices remembered from a peer before we know the piece count.
const MAX_EARLY_HAVES: usize = 1 << 16;
/// Most pieces remembered as "rejected by this peer".
const MAX_REJECTED: usize = 1024;

/// A block we asked the peer for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outstanding {
    pub piece: u32,
    pub block: u32,
    pub sent_at: Millis,
}

/// What a peer announced before we had the metadata.
#[derive(Debug, Clone, Default)]
pub(crate) struct PreMetadata {
    pub bitfield: Option<Vec<u8>>,
    pub have_all: bool,
    pub haves: Vec<u32>,
}

#[derive(Debug)]
pub(crate) struct Peer {
    pub key: PeerKey,
    pub connected_at: Millis,
    pub decoder: Decoder,
    pub send: SendQueue,
    /// The edge says the channel can take more (bufferedAmount low).
    pub writable: bool,
    /// Ours is queued (at once, or when theirs arrives on an accepted connection).
    pub handshake_sent: bool,
    /// Theirs, once received.
    pub handshake: Option<Handshake>,
    pub peer_id: Option<PeerId>,
    pub fast: bool,
    pub extensions: bool,
    pub ext: Option<ExtendedHandshake>,

    pub am_choking: bool,
    pub am_interested: bool,
    pub peer_choking: bool,
    pub peer_interested: bool,
    pub unchoked_at: Millis,

    /// `None` until the metadata is known.
    pub has: Option<Bitfield>,
    pub early: PreMetadata,
    /// It sent a bitfield, have-all, have-none or a have: `has` is meaningful.
    pub announced: bool,
    /// Pieces it refused (reject) — not asked again from it.
    pub rejected: BTreeSet<u32>,

    pub requests: Vec<Outstanding>,
    pub upload: VecDeque<(u32, u32, u32)>,
    pub down: Rate,
    pub up: Rate,
    /// Last useful progress on our requests (or when the pipeline was last empty).
    pub last_progress: Millis,
    pub last_sent: Millis,
    pub last_rate: u64,
    /// Bytes of blocks we cancelled that the peer may still be sending (they take link time).
    pub cancelled_bytes: u64,
    pub metadata_useless: bool,
}

impl Peer {
    pub fn new(key: PeerKey, now: Millis, limits: WireLimits) -> Self {
        Self {
            key,
            connected_at: now,
            decoder: Decoder::new(limits),
            send: SendQueue::new(),
            writable: true,
            handshake_sent: false,
            handshake: None,
            peer_id: None,
            fast: false,
            extensions: false,
            ext: None,
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            unchoked_at: now,
            has: None,
            early: PreMetadata::default(),
            announced: false,
            rejected: BTreeSet::new(),
            requests: Vec::new(),
            upload: VecDeque::new(),
            down: Rate::new(),
            up: Rate::new(),
            last_progress: now,
            last_sent: now,
            last_rate: 0,
            cancelled_bytes: 0,
            metadata_useless: false,
        }
    }

    /// Handshake received and checked.
    pub fn is_active(&self) -> bool {
        self.handshake.is_some()
    }

    /// It has every piece (a bitfield or have-all, then haves, say so).
    pub fn is_seed(&self) -> bool {
        self.has.as_ref().is_some_and(Bitfield::is_full)
    }

    pub fn has_piece(&self, piece: u32) -> bool {
        self.has.as_ref().is_some_and(|h| h.get(piece)) && !self.rejected.contains(&piece)
    }

    pub fn remember_early_have(&mut self, piece: u32) {
        if self.early.haves.len() < MAX_EARLY_HAVES {
            self.early.haves.push(piece);
        }
    }

    pub fn remember_rejected(&mut self, piece: u32) {
        if self.rejected.len() < MAX_REJECTED {
            self.rejected.insert(piece);
        }
    }

    pub fn ut_metadata_id(&self) -> Option<u8> {
        self.ext.as_ref()?.id_of(UT_METADATA)
    }

    pub fn lt_donthave_id(&self) -> Option<u8> {
        self.ext.as_ref()?.id_of(LT_DONTHAVE)
    }

    pub fn metadata_size(&self) -> Option<u64> {
        self.ext.as_ref()?.metadata_size
    }

    /// Most requests it accepts queued (BEP 10 `reqq`; WebTorrent sends none and queues all).
    pub fn reqq(&self) -> u32 {
        self.ext.as_ref().and_then(|e| e.reqq).unwrap_or(250)
    }

    /// Download rate estimate for scheduling: the measured rate, or the last one measured, or
    /// the configured starting guess for a peer that has not sent anything yet.
    pub fn est_rate(&self, now: Millis, initial: u64) -> u64 {
        let measured = self.down.per_sec(now);
        if measured > 0 {
            measured
        } else if self.last_rate > 0 {
            self.last_rate
        } else {
            initial
        }
        .max(1)
    }

    /// Bytes still to come from the peer: our requests plus cancelled blocks it may have sent.
    pub fn outstanding_bytes(&self) -> u64 {
        self.requests.len() as u64 * u64::from(BLOCK_SIZE) + self.cancelled_bytes
    }

    /// When `extra` more bytes asked now would have arrived: what is queued ahead of them plus
    /// them, at the estimated rate.
    pub fn eta(&self, extra: u64, now: Millis, initial: u64) -> Millis {
        let rate = self.est_rate(now, initial);
        Millis(now.0 + (self.outstanding_bytes() + extra).saturating_mul(1000) / rate)
    }

    /// How many blocks to keep outstanding: enough for `pipeline_ms` of data at the measured
    /// rate, starting high (a new peer gets `initial` at once instead of WebTorrent's 2).
    pub fn pipeline_target(&self, now: Millis, initial: u32, min: u32, max: u32, ms: u64) -> u32 {
        let measured = self.down.per_sec(now).max(self.last_rate);
        let target = if measured == 0 {
            initial
        } else {
            let blocks = measured.saturating_mul(ms) / 1000 / u64::from(BLOCK_SIZE);
            (blocks as u32).saturating_add(2).max(min)
        };
        target.min(max).min(self.reqq())
    }

    pub fn remove_request(&mut self, piece: u32, block: u32) -> bool {
        match self
            .requests
            .iter()
            .position(|r| r.piece == piece && r.block == block)
        {
            Some(at) => {
                self.requests.swap_remove(at);
                true
            }
            None => false,
        }
    }
}

//! The deadline-aware piece picker's state: which pieces we hold, which are being assembled
//! (block by block, from any mix of peers and WebSeeds), how available each piece is, and which
//! pieces are wanted, when, and in what order.
//!
//! Ordering (streaming.md):
//! - with a playhead: every piece from the one under the playhead onwards gets a deadline
//!   (`playhead time + distance / playback rate − margin`); the pieces due within the urgent
//!   window (and at least the first few) are *urgent* and are scheduled by expected completion
//!   time across all sources (see the engine); the rest of the read-ahead window — as many
//!   pieces as the memory budget holds — is fetched rarest-first, nearest first on ties;
//! - without a playhead: the first missing pieces are urgent (so a download starts at once, from
//!   the WebSeed if no peer has them), the rest rarest-first with a seeded random tie-break so
//!   that a swarm's leechers spread over different pieces.
//!
//! Invariants: a piece is in at most one of {held, being assembled}; `partial_bytes` is the sum
//! of the assembling pieces' sizes; a block's `requests` counts the peers it is outstanding at.

use std::collections::BTreeMap;

use super::bitfield::Bitfield;
use super::{Millis, PeerKey};
use crate::metainfo::Info;
use crate::wire::BLOCK_SIZE;

/// Who delivered (or was asked for) a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Src {
    Peer(PeerKey),
    WebSeed(usize),
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Block {
    /// Peers this block is outstanding at.
    pub requests: u8,
    /// Set once received.
    pub from: Option<Src>,
}

/// A piece being assembled.
#[derive(Debug, Clone)]
pub(crate) struct Partial {
    pub data: Vec<u8>,
    pub blocks: Vec<Block>,
    pub remaining: u32,
    /// WebSeed fetches in flight for it.
    pub webseed_fetches: u8,
    /// The urgent end-game already sent a second copy of its outstanding blocks.
    pub duplicated: bool,
    /// Complete, and its digest is awaited under this ticket ([`super::Action::HashPiece`]).
    pub hashing: Option<u64>,
}

impl Partial {
    fn new(size: u32) -> Self {
        let blocks = size.div_ceil(BLOCK_SIZE);
        Self {
            data: vec![0; size as usize],
            blocks: vec![Block::default(); blocks as usize],
            remaining: blocks,
            webseed_fetches: 0,
            duplicated: false,
            hashing: None,
        }
    }

    /// A block nobody has been asked for and that has not arrived.
    pub fn free_block(&self) -> Option<u32> {
        if self.webseed_fetches > 0 {
            // The WebSeed fetch covers every block that was missing when it was sent.
            return None;
        }
        self.blocks
            .iter()
            .position(|b| b.from.is_none() && b.requests == 0)
            .map(|b| b as u32)
    }

    pub fn free_blocks(&self) -> Vec<u32> {
        if self.webseed_fetches > 0 {
            return Vec::new();
        }
        (0..self.blocks.len() as u32)
            .filter(|&b| {
                let block = self.blocks[b as usize];
                block.from.is_none() && block.requests == 0
            })
            .collect()
    }

    /// The contiguous blocks a WebSeed fetch should cover: from the first to the last block
    /// matching `want`, as `(first, end)` (end exclusive).
    pub fn span(&self, want: impl Fn(&Block) -> bool) -> Option<(u32, u32)> {
        let first = self.blocks.iter().position(&want)?;
        let last = self.blocks.iter().rposition(&want)?;
        Some((first as u32, last as u32 + 1))
    }

    /// First block that has not arrived.
    pub fn first_missing(&self) -> Option<u32> {
        self.blocks
            .iter()
            .position(|b| b.from.is_none())
            .map(|b| b as u32)
    }

    /// Sources that delivered blocks, de-duplicated.
    pub fn contributors(&self) -> Vec<Src> {
        let mut srcs: Vec<Src> = self.blocks.iter().filter_map(|b| b.from).collect();
        srcs.sort();
        srcs.dedup();
        srcs
    }
}

/// Where playback is: byte `offset` of the torrent at time `at`, advancing at `bytes_per_sec`
/// (0 = paused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Playhead {
    pub offset: u64,
    pub bytes_per_sec: u64,
    pub at: Millis,
}

/// What happened to a received block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Received {
    /// Not needed (piece held, not being assembled, or block already there).
    Unneeded,
    Stored {
        complete: bool,
    },
}

/// Tiny deterministic RNG (xorshift64*): the engine has no randomness of its own.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Picker {
    pub piece_count: u32,
    pub piece_length: u32,
    pub total_length: u64,
    /// Verified and currently stored.
    pub have: Bitfield,
    /// Verified at least once.
    pub verified: Bitfield,
    pub availability: Vec<u32>,
    pub partials: BTreeMap<u32, Partial>,
    pub partial_bytes: u64,
    pub playhead: Option<Playhead>,
    /// Pieces the read-ahead window may hold (memory budget / piece length).
    window_pieces: u32,
    tiebreak_seed: u64,
}

impl Picker {
    pub fn new(info: &Info, budget: u64, seed: u64) -> Self {
        let count = info.piece_count();
        let piece_length = info.piece_length.max(1);
        Self {
            piece_count: count,
            piece_length,
            total_length: info.total_length,
            have: Bitfield::new(count),
            verified: Bitfield::new(count),
            availability: vec![0; count as usize],
            partials: BTreeMap::new(),
            partial_bytes: 0,
            playhead: None,
            window_pieces: (budget / u64::from(piece_length)).clamp(1, u64::from(u32::MAX)) as u32,
            tiebreak_seed: seed,
        }
    }

    pub fn piece_size(&self, piece: u32) -> u32 {
        if piece >= self.piece_count {
            return 0;
        }
        let offset = u64::from(piece) * u64::from(self.piece_length);
        (self.total_length - offset).min(u64::from(self.piece_length)) as u32
    }

    pub fn block_len(&self, piece: u32, block: u32) -> u32 {
        let size = self.piece_size(piece);
        size.saturating_sub(block * BLOCK_SIZE).min(BLOCK_SIZE)
    }

    pub fn piece_offset(&self, piece: u32) -> u64 {
        u64::from(piece) * u64::from(self.piece_length)
    }

    pub fn piece_at(&self, offset: u64) -> u32 {
        ((offset / u64::from(self.piece_length)) as u32).min(self.piece_count.saturating_sub(1))
    }

    pub fn is_streaming(&self) -> bool {
        self.playhead.is_some()
    }

    /// The pieces we want to hold: from the playhead piece for as many pieces as the budget
    /// holds, or every piece without a playhead.
    pub fn window(&self) -> std::ops::Range<u32> {
        match self.playhead {
            Some(ph) => {
                let first = self.piece_at(ph.offset);
                first
                    ..first
                        .saturating_add(self.window_pieces)
                        .min(self.piece_count)
            }
            None => 0..self.piece_count,
        }
    }

    pub fn wanted(&self, piece: u32) -> bool {
        self.window().contains(&piece) && !self.have.get(piece)
    }

    /// When piece `piece` must be held, with a playhead.
    pub fn deadline(&self, piece: u32, margin_ms: u64) -> Option<Millis> {
        let ph = self.playhead?;
        let offset = self.piece_offset(piece);
        if offset <= ph.offset {
            return Some(ph.at);
        }
        // Paused: keep an order and a generous horizon (1 MB/s) rather than no deadline at all.
        let rate = if ph.bytes_per_sec == 0 {
            1 << 20
        } else {
            ph.bytes_per_sec
        };
        let ms = (offset - ph.offset).saturating_mul(1000) / rate;
        Some(Millis(
            (ph.at.0 + ms).saturating_sub(margin_ms).max(ph.at.0),
        ))
    }

    /// Urgent pieces not held, earliest deadline first. Without a playhead: the first `min`
    /// missing pieces, due `plain_deadline_ms` from now.
    pub fn urgent(
        &self,
        now: Millis,
        window_ms: u64,
        min: u32,
        margin_ms: u64,
        plain_deadline_ms: u64,
    ) -> Vec<(u32, Millis)> {
        let mut out = Vec::new();
        match self.playhead {
            Some(_) => {
                let window = self.window();
                for piece in window.clone() {
                    let deadline = self.deadline(piece, margin_ms).unwrap_or(now);
                    let within_min = piece - window.start < min;
                    if deadline.0 > now.0 + window_ms && !within_min {
                        break;
                    }
                    if !self.have.get(piece) {
                        out.push((piece, deadline));
                    }
                }
            }
            None => {
                for piece in 0..self.piece_count {
                    if out.len() as u32 >= min {
                        break;
                    }
                    if !self.have.get(piece) {
                        out.push((piece, Millis(now.0 + plain_deadline_ms)));
                    }
                }
            }
        }
        out
    }

    /// Ordering key among candidates: rarest first; ties nearest first when streaming, random
    /// (but stable per torrent) otherwise.
    pub fn rank(&self, piece: u32) -> (u32, u64) {
        let tie = if self.is_streaming() {
            u64::from(piece)
        } else {
            mix(self.tiebreak_seed ^ u64::from(piece))
        };
        (self.availability[piece as usize], tie)
    }

    /// The best piece to start among wanted, not-assembling pieces for which `ok` holds.
    pub fn pick_new(&self, ok: impl Fn(u32) -> bool) -> Option<u32> {
        self.window()
            .filter(|&p| !self.have.get(p) && !self.partials.contains_key(&p) && ok(p))
            .min_by_key(|&p| self.rank(p))
    }

    pub fn start(&mut self, piece: u32) -> &mut Partial {
        let size = self.piece_size(piece);
        if !self.partials.contains_key(&piece) {
            self.partial_bytes += u64::from(size);
        }
        self.partials
            .entry(piece)
            .or_insert_with(|| Partial::new(size))
    }

    /// Drops a piece being assembled; returns it.
    pub fn abandon(&mut self, piece: u32) -> Option<Partial> {
        let partial = self.partials.remove(&piece)?;
        self.partial_bytes -= partial.data.len() as u64;
        Some(partial)
    }

    /// Stores a block's bytes (any source).
    pub fn receive(&mut self, piece: u32, block: u32, data: &[u8], from: Src) -> Received {
        let Some(partial) = self.partials.get_mut(&piece) else {
            return Received::Unneeded;
        };
        let Some(slot) = partial.blocks.get_mut(block as usize) else {
            return Received::Unneeded;
        };
        if slot.from.is_some() {
            return Received::Unneeded;
        }
        let start = (block * BLOCK_SIZE) as usize;
        let Some(dest) = partial.data.get_mut(start..start + data.len()) else {
            return Received::Unneeded;
        };
        dest.copy_from_slice(data);
        slot.from = Some(from);
        partial.remaining -= 1;
        Received::Stored {
            complete: partial.remaining == 0,
        }
    }

    /// Pieces that may be evicted to make room, best candidates first: played pieces (farthest
    /// behind first), then pieces beyond the read-ahead window (farthest ahead first). Pieces in
    /// the window are never candidates; without a playhead nothing is.
    pub fn eviction_order(&self) -> Vec<u32> {
        let Some(_) = self.playhead else {
            return Vec::new();
        };
        let window = self.window();
        let behind = (0..window.start).filter(|&p| self.have.get(p));
        let ahead = (window.end..self.piece_count)
            .rev()
            .filter(|&p| self.have.get(p));
        behind.chain(ahead).collect()
    }

    /// Contiguous held bytes from the playhead on.
    pub fn buffered_ahead(&self) -> u64 {
        let Some(ph) = self.playhead else {
            return 0;
        };
        let mut piece = self.piece_at(ph.offset);
        let mut end = ph.offset;
        while piece < self.piece_count && self.have.get(piece) {
            end = self.piece_offset(piece) + u64::from(self.piece_size(piece));
            piece += 1;
        }
        end.saturating_sub(ph.offset)
    }
}

/// A 64-bit mix (splitmix64 finaliser) for stable pseudo-random tie-breaks.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::TorrentBuilder;

    fn info(len: u64, piece: u32) -> Info {
        let mut b = TorrentBuilder::single_file("f", len, Some(piece)).unwrap();
        b.update(&vec![0; len as usize]);
        b.finish().unwrap().info
    }

    #[test]
    fn deadlines_and_urgent_window() {
        let mut picker = Picker::new(&info(1 << 20, 1 << 16), 1 << 20, 1);
        picker.playhead = Some(Playhead {
            offset: 100_000,
            bytes_per_sec: 65_536,
            at: Millis(1000),
        });
        // Piece 1 holds the playhead: due now. Piece 2 starts 31 072 bytes later.
        assert_eq!(picker.deadline(1, 0), Some(Millis(1000)));
        assert_eq!(
            picker.deadline(2, 0),
            Some(Millis(1000 + 31_072 * 1000 / 65_536))
        );
        let urgent = picker.urgent(Millis(1000), 2000, 2, 0, 0);
        let pieces: Vec<u32> = urgent.iter().map(|u| u.0).collect();
        assert_eq!(pieces, vec![1, 2, 3]);
        picker.have.set(2);
        let pieces: Vec<u32> = picker
            .urgent(Millis(1000), 2000, 2, 0, 0)
            .iter()
            .map(|u| u.0)
            .collect();
        assert_eq!(pieces, vec![1, 3]);
    }

    #[test]
    fn rarest_first_and_eviction_order() {
        let mut picker = Picker::new(&info(10 << 16, 1 << 16), 4 << 16, 1);
        picker.availability = vec![3, 1, 2, 1, 5, 0, 0, 0, 0, 0];
        // Plain download: every piece is wanted, the unavailable ones first (random tie-break).
        assert!((5..10).contains(&picker.pick_new(|_| true).unwrap()));
        let rare = picker.pick_new(|p| p < 5).unwrap();
        assert!(rare == 1 || rare == 3, "{rare}");
        picker.playhead = Some(Playhead {
            offset: 3 << 16,
            bytes_per_sec: 1,
            at: Millis(0),
        });
        assert_eq!(picker.window(), 3..7);
        assert_eq!(picker.pick_new(|_| true), Some(5)); // availability 0 in window, nearest
        for p in [0, 2, 4, 8, 9] {
            picker.have.set(p);
        }
        assert_eq!(picker.eviction_order(), vec![0, 2, 9, 8]);
    }

    #[test]
    fn assemble_blocks() {
        let mut picker = Picker::new(&info(40_000, 32_768), 1 << 20, 1);
        picker.start(0);
        assert_eq!(picker.partial_bytes, 32_768);
        assert_eq!(
            picker.receive(0, 1, &[1; 16_384], Src::Peer(PeerKey(1))),
            Received::Stored { complete: false }
        );
        assert_eq!(
            picker.receive(0, 1, &[1; 16_384], Src::Peer(PeerKey(1))),
            Received::Unneeded
        );
        assert_eq!(
            picker.receive(0, 0, &[1; 16_384], Src::WebSeed(0)),
            Received::Stored { complete: true }
        );
        assert_eq!(picker.block_len(1, 0), 40_000 - 32_768);
        assert!(picker.abandon(0).is_some());
        assert_eq!(picker.partial_bytes, 0);
    }
}

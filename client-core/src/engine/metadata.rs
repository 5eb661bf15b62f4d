//! ut_metadata (BEP 9): fetching the info dictionary for a magnet-only leecher, and serving it.
//!
//! Fetching: the size comes from a peer's extended handshake (`metadata_size`); each 16 KiB
//! piece is asked of one peer at a time, spread over the peers that advertise the size, retried
//! elsewhere on reject, timeout or disconnect. The assembled bytes are accepted only if their
//! SHA-1 is the info-hash; on mismatch everything is dropped and fetched again, and the peers
//! that contributed are reported so the engine can stop asking them. Memory is bounded by
//! [`crate::wire::MAX_METADATA_SIZE`] (the wire already refuses larger sizes).

use sha1::{Digest, Sha1};

use super::{Millis, PeerKey};
use crate::wire::{metadata_piece_count, metadata_piece_len, MetadataMessage, METADATA_BLOCK_SIZE};
use crate::InfoHash;

/// How long one metadata piece request may stay unanswered before it is asked elsewhere.
const REQUEST_TIMEOUT_MS: u64 = 10_000;
/// Most metadata pieces outstanding to one peer (WebTorrent asks for all at once; a bound keeps
/// one slow peer from holding everything).
const MAX_PER_PEER: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Missing,
    Requested { peer: PeerKey, at: Millis },
    Have { peer: PeerKey },
}

/// What a data message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetadataProgress {
    /// Stored (or ignored); more is needed.
    Pending,
    /// All pieces arrived and hash to the info-hash: the info dictionary.
    Complete(Vec<u8>),
    /// All pieces arrived but the hash is wrong; these peers sent pieces of it.
    HashMismatch(Vec<PeerKey>),
}

/// The info dictionary being fetched.
#[derive(Debug, Clone)]
pub(crate) struct MetadataFetch {
    info_hash: InfoHash,
    size: Option<u64>,
    buf: Vec<u8>,
    slots: Vec<Slot>,
}

impl MetadataFetch {
    pub fn new(info_hash: InfoHash) -> Self {
        Self {
            info_hash,
            size: None,
            buf: Vec::new(),
            slots: Vec::new(),
        }
    }

    #[cfg(test)]
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// A peer advertised `metadata_size`. The first size seen is used until it fails the hash.
    pub fn offer_size(&mut self, size: u64) {
        if self.size.is_none() {
            self.size = Some(size);
            self.buf = vec![0; size as usize];
            self.slots = vec![Slot::Missing; metadata_piece_count(size) as usize];
        }
    }

    /// Pieces to ask `peer` for now (marked as requested from it).
    pub fn requests_for(&mut self, peer: PeerKey, peer_size: u64, now: Millis) -> Vec<u32> {
        if self.size != Some(peer_size) {
            return Vec::new();
        }
        let already = self
            .slots
            .iter()
            .filter(|s| matches!(s, Slot::Requested { peer: p, .. } if *p == peer))
            .count();
        let mut out = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if already + out.len() >= MAX_PER_PEER {
                break;
            }
            if *slot == Slot::Missing {
                *slot = Slot::Requested { peer, at: now };
                out.push(index as u32);
            }
        }
        out
    }

    /// A data message from `peer`.
    pub fn on_data(
        &mut self,
        peer: PeerKey,
        piece: u32,
        total_size: u64,
        data: &[u8],
    ) -> MetadataProgress {
        let Some(size) = self.size else {
            return MetadataProgress::Pending;
        };
        if total_size != size {
            return MetadataProgress::Pending;
        }
        let Some(slot) = self.slots.get_mut(piece as usize) else {
            return MetadataProgress::Pending;
        };
        if matches!(slot, Slot::Have { .. }) || metadata_piece_len(size, piece) != Some(data.len())
        {
            return MetadataProgress::Pending;
        }
        let start = piece as usize * METADATA_BLOCK_SIZE;
        self.buf[start..start + data.len()].copy_from_slice(data);
        *slot = Slot::Have { peer };
        if !self.slots.iter().all(|s| matches!(s, Slot::Have { .. })) {
            return MetadataProgress::Pending;
        }
        if Sha1::digest(&self.buf).as_slice() == self.info_hash.as_bytes() {
            return MetadataProgress::Complete(std::mem::take(&mut self.buf));
        }
        let mut peers: Vec<PeerKey> = self
            .slots
            .iter()
            .filter_map(|s| match s {
                Slot::Have { peer } => Some(*peer),
                _ => None,
            })
            .collect();
        peers.sort();
        peers.dedup();
        // Start over; the size itself may be the lie, so forget it too.
        *self = Self::new(self.info_hash);
        MetadataProgress::HashMismatch(peers)
    }

    /// The peer rejected a request or went away: its pieces are asked elsewhere.
    pub fn release_peer(&mut self, peer: PeerKey) {
        for slot in &mut self.slots {
            if matches!(slot, Slot::Requested { peer: p, .. } if *p == peer) {
                *slot = Slot::Missing;
            }
        }
    }

    pub fn release_piece(&mut self, peer: PeerKey, piece: u32) {
        if let Some(slot) = self.slots.get_mut(piece as usize) {
            if matches!(slot, Slot::Requested { peer: p, .. } if *p == peer) {
                *slot = Slot::Missing;
            }
        }
    }

    /// Requests older than the timeout go back to missing; returns the peers that timed out.
    pub fn expire(&mut self, now: Millis) -> Vec<PeerKey> {
        let mut late = Vec::new();
        for slot in &mut self.slots {
            if let Slot::Requested { peer, at } = *slot {
                if now.0.saturating_sub(at.0) > REQUEST_TIMEOUT_MS {
                    late.push(peer);
                    *slot = Slot::Missing;
                }
            }
        }
        late
    }

    #[cfg(test)]
    pub fn has_outstanding(&self) -> bool {
        self.slots
            .iter()
            .any(|s| matches!(s, Slot::Requested { .. }))
    }
}

/// The answer to a peer's ut_metadata request: the piece of `raw_info`, or a reject when we do
/// not have the metadata or the piece is out of range.
pub(crate) fn serve(raw_info: Option<&[u8]>, piece: u32) -> MetadataMessage {
    let Some(raw) = raw_info else {
        return MetadataMessage::Reject { piece };
    };
    let total_size = raw.len() as u64;
    match metadata_piece_len(total_size, piece) {
        Some(len) => {
            let start = piece as usize * METADATA_BLOCK_SIZE;
            MetadataMessage::Data {
                piece,
                total_size,
                data: raw[start..start + len].to_vec(),
            }
        }
        None => MetadataMessage::Reject { piece },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_verify_and_retry() {
        let info = vec![7u8; 40_000];
        let hash = InfoHash(Sha1::digest(&info).into());
        let mut fetch = MetadataFetch::new(hash);
        fetch.offer_size(40_000);
        let a = PeerKey(1);
        assert_eq!(fetch.requests_for(a, 40_000, Millis(0)), vec![0, 1, 2]);
        assert!(fetch.requests_for(PeerKey(2), 40_000, Millis(0)).is_empty());
        // A wrong size from another peer is not used.
        assert!(fetch.requests_for(PeerKey(2), 39_999, Millis(0)).is_empty());
        for piece in 0..3u32 {
            let MetadataMessage::Data {
                piece,
                total_size,
                data,
                ..
            } = serve(Some(&info), piece)
            else {
                panic!()
            };
            let progress = fetch.on_data(a, piece, total_size, &data);
            if piece < 2 {
                assert_eq!(progress, MetadataProgress::Pending);
            } else {
                assert_eq!(progress, MetadataProgress::Complete(info.clone()));
            }
        }
        assert_eq!(serve(None, 0), MetadataMessage::Reject { piece: 0 });
        assert_eq!(serve(Some(&info), 3), MetadataMessage::Reject { piece: 3 });
    }

    #[test]
    fn hash_mismatch_blames_and_restarts() {
        let mut fetch = MetadataFetch::new(InfoHash([1; 20]));
        fetch.offer_size(10);
        fetch.requests_for(PeerKey(5), 10, Millis(0));
        assert_eq!(
            fetch.on_data(PeerKey(5), 0, 10, &[0; 10]),
            MetadataProgress::HashMismatch(vec![PeerKey(5)])
        );
        assert_eq!(fetch.size(), None);
    }

    #[test]
    fn timeouts_release() {
        let mut fetch = MetadataFetch::new(InfoHash([1; 20]));
        fetch.offer_size(10);
        fetch.requests_for(PeerKey(5), 10, Millis(0));
        assert!(fetch.expire(Millis(5_000)).is_empty());
        assert_eq!(fetch.expire(Millis(20_000)), vec![PeerKey(5)]);
        assert!(!fetch.has_outstanding());
    }
}

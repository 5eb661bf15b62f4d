//! Verified piece storage behind a trait, with a bounded in-memory default.
//!
//! The store only ever receives pieces whose SHA-1 matched. It does not choose what to evict:
//! the engine knows the playhead and calls [`PieceStore::remove`] itself (played pieces first,
//! never the urgent or unread window), then [`PieceStore::put`]. The store's own capacity is a
//! second line of defence: [`MemoryStore`] refuses a piece that would overflow it.

use std::collections::BTreeMap;

/// A piece could not be stored: it would exceed the store's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("storing piece {index} ({len} bytes) would exceed the store capacity")]
pub struct StoreFull {
    pub index: u32,
    pub len: u64,
}

/// Where verified pieces live.
///
/// Synchronous by design: the engine serves uploads and feeds the player straight from it. A
/// persistent browser store (OPFS) would sit behind this trait with its own in-memory cache.
pub trait PieceStore {
    /// Stores a verified piece (replacing any previous copy).
    fn put(&mut self, index: u32, data: Vec<u8>) -> Result<(), StoreFull>;
    /// The whole piece, if held.
    fn get(&self, index: u32) -> Option<&[u8]>;
    /// Drops a piece; returns whether it was held.
    fn remove(&mut self, index: u32) -> bool;
    fn contains(&self, index: u32) -> bool {
        self.get(index).is_some()
    }
    /// Bytes held.
    fn used_bytes(&self) -> u64;
    /// Most bytes the store will hold.
    fn capacity(&self) -> u64;
}

/// Pieces in memory, bounded by a byte budget.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    pieces: BTreeMap<u32, Vec<u8>>,
    used: u64,
    capacity: u64,
}

impl MemoryStore {
    pub fn new(capacity: u64) -> Self {
        Self {
            pieces: BTreeMap::new(),
            used: 0,
            capacity,
        }
    }

    /// Indices held, ascending.
    pub fn indices(&self) -> impl Iterator<Item = u32> + '_ {
        self.pieces.keys().copied()
    }
}

impl PieceStore for MemoryStore {
    fn put(&mut self, index: u32, data: Vec<u8>) -> Result<(), StoreFull> {
        let len = data.len() as u64;
        let previous = self.pieces.get(&index).map_or(0, |p| p.len() as u64);
        if self.used - previous + len > self.capacity {
            return Err(StoreFull { index, len });
        }
        self.used = self.used - previous + len;
        self.pieces.insert(index, data);
        Ok(())
    }

    fn get(&self, index: u32) -> Option<&[u8]> {
        self.pieces.get(&index).map(Vec::as_slice)
    }

    fn remove(&mut self, index: u32) -> bool {
        match self.pieces.remove(&index) {
            Some(piece) => {
                self.used -= piece.len() as u64;
                true
            }
            None => false,
        }
    }

    fn used_bytes(&self) -> u64 {
        self.used
    }

    fn capacity(&self) -> u64 {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_is_bounded() {
        let mut store = MemoryStore::new(10);
        store.put(0, vec![0; 6]).unwrap();
        assert_eq!(
            store.put(1, vec![0; 6]),
            Err(StoreFull { index: 1, len: 6 })
        );
        store.put(0, vec![1; 4]).unwrap(); // replacing frees the old copy
        store.put(1, vec![0; 6]).unwrap();
        assert_eq!(store.used_bytes(), 10);
        assert!(store.remove(0));
        assert!(!store.remove(0));
        assert_eq!(store.used_bytes(), 6);
        assert_eq!(store.get(1), Some(&[0u8; 6][..]));
    }
}

//! What the pod serves, in memory: info-hash → the stored file behind it. The WebSeed reads it on
//! every request and the trackers ask it whether a swarm is allowed (private by default: only
//! info-hashes this pod knows), so it must answer without touching SQLite. The database stays the
//! record; the catalogue is rebuilt from it at start and updated with every insert and delete.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::RwLock;

use client_core::InfoHash;

/// One servable file (every Shoal torrent holds exactly one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Where the bytes are.
    pub path: PathBuf,
    pub size: u64,
    pub mime_type: String,
    /// The file's name inside the torrent (the last segment of its WebSeed URL).
    pub file_name: String,
}

#[derive(Default)]
pub struct Catalogue {
    entries: RwLock<HashMap<InfoHash, Entry>>,
}

impl Catalogue {
    pub fn insert(&self, info_hash: InfoHash, entry: Entry) {
        self.write().insert(info_hash, entry);
    }

    pub fn remove(&self, info_hash: &InfoHash) {
        self.write().remove(info_hash);
    }

    pub fn get(&self, info_hash: &InfoHash) -> Option<Entry> {
        self.read().get(info_hash).cloned()
    }

    /// Whether the trackers should accept announces for this swarm.
    pub fn contains(&self, info_hash: &InfoHash) -> bool {
        self.read().contains_key(info_hash)
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // A poisoned lock only means a panic elsewhere while holding it; the map itself is always
    // consistent (single inserts/removes), so keep serving.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<InfoHash, Entry>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<InfoHash, Entry>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }
}

//! What the pod serves, in memory: info-hash → the stored file behind it. The WebSeed reads it on
//! every request and the trackers ask it whether a swarm is allowed (private by default: only
//! info-hashes this pod knows), so it must answer without touching SQLite. The database stays the
//! record; the catalogue is rebuilt from it at start and updated with every insert and delete.
//!
//! Each entry keeps its file open once first read: a WebSeed answer for a 16 KiB piece is then one
//! positioned read (`pread`) with no `open`/`close` around it, which is what lets the pod keep up
//! with nginx on small ranges. A deleted video's descriptor closes when the last answer that is
//! still streaming from it ends.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};

use client_core::InfoHash;

/// One servable file (every Shoal torrent holds exactly one).
#[derive(Debug)]
pub struct Entry {
    /// Where the bytes are.
    pub path: PathBuf,
    pub size: u64,
    pub mime_type: String,
    /// The file's name inside the torrent (the last segment of its WebSeed URL).
    pub file_name: String,
    /// Opened on first use (blocking: call it off the async threads).
    open: OnceLock<Arc<File>>,
}

impl Entry {
    pub fn new(path: PathBuf, size: u64, mime_type: String, file_name: String) -> Self {
        Self {
            path,
            size,
            mime_type,
            file_name,
            open: OnceLock::new(),
        }
    }

    /// The file if it is already open (never blocks).
    pub fn opened(&self) -> Option<&Arc<File>> {
        self.open.get()
    }

    /// The open file, for positioned reads. Blocking (the first call opens it). A failed open
    /// is not remembered, so a file that comes back is served again.
    pub fn file(&self) -> io::Result<Arc<File>> {
        if let Some(file) = self.open.get() {
            return Ok(file.clone());
        }
        let file = Arc::new(File::open(&self.path)?);
        // Two first readers may race: both opened it, one descriptor is kept.
        Ok(self.open.get_or_init(|| file).clone())
    }
}

#[derive(Default)]
pub struct Catalogue {
    entries: RwLock<HashMap<InfoHash, Arc<Entry>>>,
}

impl Catalogue {
    pub fn insert(&self, info_hash: InfoHash, entry: Entry) {
        self.write().insert(info_hash, Arc::new(entry));
    }

    pub fn remove(&self, info_hash: &InfoHash) {
        self.write().remove(info_hash);
    }

    pub fn get(&self, info_hash: &InfoHash) -> Option<Arc<Entry>> {
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
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<InfoHash, Arc<Entry>>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<InfoHash, Arc<Entry>>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }
}

//! Counters the pod keeps since start, for `GET /api/v1/server/stats`. Plain atomics: they are
//! bumped on hot paths (every WebSeed chunk) and read rarely.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Counters {
    /// Bytes of file content sent by the WebSeed.
    pub webseed_bytes_served: AtomicU64,
    /// WebSeed requests answered (200 or 206).
    pub webseed_requests: AtomicU64,
}

impl Counters {
    pub fn add_webseed_bytes(&self, n: u64) {
        self.webseed_bytes_served.fetch_add(n, Ordering::Relaxed);
    }

    pub fn webseed_bytes(&self) -> u64 {
        self.webseed_bytes_served.load(Ordering::Relaxed)
    }
}

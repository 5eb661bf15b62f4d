//! Transfer accounting: moving-window rates and the public [`Stats`] snapshot.
//!
//! Owns nothing but counters. Rates are measured over a short sliding window of fixed buckets
//! (3 s of 250 ms buckets), so that the picker's expected-completion estimates react within a
//! second to a peer slowing down, and so that memory per rate is constant.

use serde::Serialize;

use super::Millis;

const BUCKET_MS: u64 = 250;
const BUCKETS: usize = 12;
/// A rate is never computed over less than this, so that the first block does not read as a
/// burst of hundreds of MB/s.
const MIN_SPAN_MS: u64 = 500;

/// Bytes per second over the last few seconds.
#[derive(Debug, Clone)]
pub struct Rate {
    buckets: [u64; BUCKETS],
    /// Bucket number (time / BUCKET_MS) of the newest bucket written.
    head: u64,
    started: Option<Millis>,
    total: u64,
}

impl Default for Rate {
    fn default() -> Self {
        Self::new()
    }
}

impl Rate {
    pub fn new() -> Self {
        Self {
            buckets: [0; BUCKETS],
            head: 0,
            started: None,
            total: 0,
        }
    }

    /// Counts `bytes` transferred at `now`.
    pub fn record(&mut self, bytes: u64, now: Millis) {
        let index = now.0 / BUCKET_MS;
        if self.started.is_none() {
            self.started = Some(now);
            self.head = index;
        }
        if index > self.head {
            let stale = (index - self.head).min(BUCKETS as u64);
            for step in 1..=stale {
                self.buckets[((self.head + step) % BUCKETS as u64) as usize] = 0;
            }
            self.head = index;
        }
        // A time before `head` (the caller's clock went backwards) lands in the newest bucket.
        self.buckets[(self.head % BUCKETS as u64) as usize] += bytes;
        self.total = self.total.saturating_add(bytes);
    }

    /// Bytes per second over the window ending at `now`.
    pub fn per_sec(&self, now: Millis) -> u64 {
        let Some(started) = self.started else {
            return 0;
        };
        let now_index = (now.0 / BUCKET_MS).max(self.head);
        let oldest = now_index.saturating_sub(BUCKETS as u64 - 1);
        let first = oldest.max(self.head.saturating_sub(BUCKETS as u64 - 1));
        let sum: u64 = (first..=self.head)
            .map(|i| self.buckets[(i % BUCKETS as u64) as usize])
            .sum();
        let window = BUCKETS as u64 * BUCKET_MS;
        let span = now.0.saturating_sub(started.0).clamp(MIN_SPAN_MS, window);
        sum.saturating_mul(1000) / span
    }

    /// Bytes counted since creation.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether anything was counted in the current window.
    pub fn is_idle(&self, now: Millis) -> bool {
        self.per_sec(now) == 0
    }
}

/// A snapshot of one torrent for the JS API and the player's P2P panel.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Stats {
    /// Lowercase hex.
    pub info_hash: String,
    pub has_metadata: bool,
    pub pieces_total: u32,
    /// Pieces held right now (verified, not evicted).
    pub pieces_held: u32,
    /// Pieces verified at least once.
    pub pieces_verified: u32,
    pub bytes_total: u64,
    /// Bytes of verified pieces in the store.
    pub bytes_stored: u64,
    /// Bytes of pieces being assembled.
    pub bytes_in_progress: u64,
    pub memory_budget: u64,
    /// Useful payload bytes received from peers.
    pub downloaded_from_peers: u64,
    /// Useful payload bytes received from WebSeeds.
    pub downloaded_from_webseeds: u64,
    /// Payload bytes sent to peers.
    pub uploaded: u64,
    /// Bytes thrown away: pieces that failed their hash, duplicate or unrequested blocks.
    pub wasted: u64,
    pub hash_failures: u32,
    pub down_rate: u64,
    pub up_rate: u64,
    pub webseed_rate: u64,
    pub peers_connected: u32,
    pub peers_banned: u32,
    pub webseeds: u32,
    pub done: bool,
    pub peers: Vec<PeerStats>,
}

/// One connected peer.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PeerStats {
    /// The caller's key for the connection.
    pub key: u64,
    /// Hex of the handshake peer id, once received.
    pub peer_id: Option<String>,
    /// The `v` of its extended handshake.
    pub client: Option<String>,
    pub down_rate: u64,
    pub up_rate: u64,
    pub downloaded: u64,
    pub uploaded: u64,
    /// Pieces it announced (0 before metadata).
    pub pieces: u32,
    pub choking_us: bool,
    pub interested_in_us: bool,
    pub outstanding_requests: u32,
    pub hash_strikes: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_over_window() {
        let mut rate = Rate::new();
        for ms in (0..3000).step_by(100) {
            rate.record(10_000, Millis(ms));
        }
        // 100 KB/s steady.
        let r = rate.per_sec(Millis(3000));
        assert!((90_000..=110_000).contains(&r), "{r}");
        // Silent for longer than the window: zero.
        assert_eq!(rate.per_sec(Millis(7000)), 0);
        assert_eq!(rate.total(), 300_000);
    }

    #[test]
    fn first_sample_is_not_a_spike() {
        let mut rate = Rate::new();
        rate.record(16_384, Millis(10_000));
        assert!(rate.per_sec(Millis(10_001)) <= 32_768);
    }
}

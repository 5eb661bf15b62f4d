//! The trackers' state, sans I/O: every swarm's peers, their counts, which peers an announce's
//! offers go to, expiry and the bounds on all of it.
//!
//! Nothing here touches a socket, a clock or a task: callers pass the current time and a random
//! number generator, and get back what to send to whom (as connection ids). That keeps the rules
//! testable one by one (see the tests at the bottom).
//!
//! Invariants:
//! - A swarm exists only while it has at least one peer; an empty swarm is removed at once, so
//!   [`Swarms::swarm_count`] is the number of active swarms.
//! - WebSocket peers are keyed by peer id and remember the connection they last announced on
//!   (refreshed on *every* announce: the reference server keeps the first socket forever, §1.7).
//!   HTTP peers are keyed by `ip:port` (what the reference does, and what a NAT-ed client can
//!   prove).
//! - `seeders` counts the swarm's peers with `complete`; a peer is complete only when it said
//!   `left: 0` or `completed`. An unknown `left` (a magnet leecher) is never a seeder.
//! - `order` holds exactly one entry per peer, keyed by the sequence number of its last announce,
//!   so its first entry is the least recently announced peer: that is who is evicted when the
//!   swarm is full and where expiry starts.
//! - `classes` lists every peer exactly once, under its transport and completeness (WebSocket
//!   leechers, WebSocket seeders, HTTP leechers, HTTP seeders), and each peer's `slot` is its
//!   position there. Choosing whom to send offers to, or which peers an HTTP announce gets, is
//!   then a draw of a few random positions, never a walk over a swarm of 1000 peers.
//! - `conns` lists, per WebSocket connection, the (swarm, peer id) pairs it announced; entries may
//!   be stale (the peer moved to another connection or was evicted) and are checked against the
//!   peer's own connection before anything is removed. Its length per connection is bounded.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use client_core::tracker::{AnnounceEvent, ScrapeStats};
use client_core::{InfoHash, PeerId};
use rand::seq::index;
use rand::Rng;

/// One WebSocket connection, as the tracker numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// How a peer is known: WebSocket peers by their peer id, HTTP peers by address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerKey {
    Ws(PeerId),
    Http(SocketAddr),
}

/// Bounds on the state (see `TrackerConfig` for the defaults and why).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_swarms: usize,
    pub max_peers_per_swarm: usize,
    pub max_swarms_per_connection: usize,
    /// A peer that has not announced for this long is dropped.
    pub peer_ttl: Duration,
}

/// Why an announce changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("tracker is full (too many swarms)")]
    TooManySwarms,
    #[error("too many torrents announced on this connection")]
    TooManyTorrentsOnConnection,
}

/// What an announce says about the announcer, whatever its transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerState {
    /// Bytes missing; `None` when unknown.
    pub left: Option<u64>,
    pub event: Option<AnnounceEvent>,
}

impl PeerState {
    fn is_complete(self) -> bool {
        self.left == Some(0) || self.event == Some(AnnounceEvent::Completed)
    }
}

/// The result of a WebSocket announce: the counts to answer with, and the peers the announce's
/// offers go to (offer `i` to `targets[i]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsAnnounced {
    pub stats: ScrapeStats,
    pub targets: Vec<(PeerId, ConnId)>,
}

/// The result of an HTTP announce: the counts and the addresses of other HTTP peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnnounced {
    pub stats: ScrapeStats,
    pub peers: Vec<SocketAddr>,
}

#[derive(Debug)]
struct Peer {
    /// The connection a WebSocket peer last announced on; `None` for HTTP peers.
    conn: Option<ConnId>,
    complete: bool,
    last_seen: Instant,
    /// Key of this peer's entry in [`Swarm::order`].
    seq: u64,
    /// Position of this peer in its [`Class`] list of [`Swarm::classes`].
    slot: usize,
}

/// Peers grouped by what the selection rules ask for: transport and completeness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    WsLeecher = 0,
    WsSeeder = 1,
    HttpLeecher = 2,
    HttpSeeder = 3,
}

impl Class {
    fn of(key: &PeerKey, complete: bool) -> Self {
        match (key, complete) {
            (PeerKey::Ws(_), false) => Self::WsLeecher,
            (PeerKey::Ws(_), true) => Self::WsSeeder,
            (PeerKey::Http(_), false) => Self::HttpLeecher,
            (PeerKey::Http(_), true) => Self::HttpSeeder,
        }
    }
}

#[derive(Debug, Default)]
struct Swarm {
    peers: HashMap<PeerKey, Peer>,
    order: BTreeMap<u64, PeerKey>,
    /// Every peer's key, once, in the list of its [`Class`] (indexed by `Class as usize`).
    classes: [Vec<PeerKey>; 4],
    seeders: usize,
    /// `completed` events seen (BEP 48's `downloaded`).
    downloaded: u64,
}

impl Swarm {
    fn stats(&self) -> ScrapeStats {
        ScrapeStats {
            complete: self.seeders as u64,
            incomplete: (self.peers.len() - self.seeders) as u64,
            downloaded: self.downloaded,
        }
    }

    fn remove(&mut self, key: &PeerKey) -> Option<Peer> {
        let peer = self.peers.remove(key)?;
        self.order.remove(&peer.seq);
        self.unlist(Class::of(key, peer.complete), peer.slot);
        if peer.complete {
            self.seeders -= 1;
        }
        Some(peer)
    }

    /// Adds `key` to its class list; returns its slot.
    fn list(&mut self, class: Class, key: PeerKey) -> usize {
        let list = &mut self.classes[class as usize];
        list.push(key);
        list.len() - 1
    }

    /// Takes the entry at `slot` out of its class list; the last entry moves into the gap and
    /// its peer learns its new slot.
    fn unlist(&mut self, class: Class, slot: usize) {
        let list = &mut self.classes[class as usize];
        list.swap_remove(slot);
        if let Some(moved) = list.get(slot) {
            if let Some(peer) = self.peers.get_mut(moved) {
                peer.slot = slot;
            }
        }
    }

    /// Up to `amount` distinct random peers from the given classes (taken as one list), in
    /// random order, never `exclude`.
    fn sample(
        &self,
        classes: &[Class],
        amount: usize,
        exclude: &PeerKey,
        rng: &mut impl Rng,
    ) -> Vec<PeerKey> {
        let lists: Vec<&Vec<PeerKey>> =
            classes.iter().map(|&c| &self.classes[c as usize]).collect();
        let total: usize = lists.iter().map(|l| l.len()).sum();
        // One spare draw, in case the announcer itself is drawn.
        let draws = (amount + 1).min(total);
        index::sample(rng, total, draws)
            .into_iter()
            .filter_map(|mut i| {
                for list in &lists {
                    if i < list.len() {
                        return Some(list[i]);
                    }
                    i -= list.len();
                }
                None
            })
            .filter(|key| key != exclude)
            .take(amount)
            .collect()
    }

    /// Inserts or refreshes a peer. Returns the peer evicted to make room, if any.
    fn upsert(
        &mut self,
        key: PeerKey,
        conn: Option<ConnId>,
        state: PeerState,
        now: Instant,
        seq: u64,
        max_peers: usize,
    ) -> Option<(PeerKey, Peer)> {
        let complete = state.is_complete();
        let mut evicted = None;
        match self.peers.get_mut(&key) {
            Some(peer) => {
                self.order.remove(&peer.seq);
                if state.event == Some(AnnounceEvent::Completed) && !peer.complete {
                    self.downloaded += 1;
                }
                match (peer.complete, complete) {
                    (false, true) => self.seeders += 1,
                    (true, false) => self.seeders -= 1,
                    _ => {}
                }
                let was_complete = std::mem::replace(&mut peer.complete, complete);
                peer.conn = conn;
                peer.last_seen = now;
                peer.seq = seq;
                if was_complete != complete {
                    let slot = peer.slot;
                    self.unlist(Class::of(&key, was_complete), slot);
                    let slot = self.list(Class::of(&key, complete), key);
                    if let Some(peer) = self.peers.get_mut(&key) {
                        peer.slot = slot;
                    }
                }
            }
            None => {
                if self.peers.len() >= max_peers {
                    // Full: the least recently announced peer makes room (the reference's LRU).
                    if let Some((_, oldest)) = self.order.first_key_value() {
                        let oldest = *oldest;
                        evicted = self.remove(&oldest).map(|peer| (oldest, peer));
                    }
                }
                if state.event == Some(AnnounceEvent::Completed) {
                    self.downloaded += 1;
                }
                if complete {
                    self.seeders += 1;
                }
                let slot = self.list(Class::of(&key, complete), key);
                self.peers.insert(
                    key,
                    Peer {
                        conn,
                        complete,
                        last_seen: now,
                        seq,
                        slot,
                    },
                );
            }
        }
        self.order.insert(seq, key);
        evicted
    }

    /// Removes peers silent since `cutoff`, oldest first. Returns them.
    fn expire(&mut self, cutoff: Instant) -> Vec<(PeerKey, Peer)> {
        let mut expired = Vec::new();
        while let Some((_, key)) = self.order.first_key_value() {
            let key = *key;
            let stale = self.peers.get(&key).is_some_and(|p| p.last_seen < cutoff);
            if !stale {
                break;
            }
            if let Some(peer) = self.remove(&key) {
                expired.push((key, peer));
            }
        }
        expired
    }
}

/// All swarms of the pod's trackers.
#[derive(Debug)]
pub struct Swarms {
    limits: Limits,
    swarms: HashMap<InfoHash, Swarm>,
    conns: HashMap<ConnId, Vec<(InfoHash, PeerId)>>,
    /// Source of [`Peer::seq`]: increases with every announce, so it orders peers by recency.
    next_seq: u64,
}

impl Swarms {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            swarms: HashMap::new(),
            conns: HashMap::new(),
            next_seq: 0,
        }
    }

    /// Swarms with at least one peer.
    pub fn swarm_count(&self) -> usize {
        self.swarms.len()
    }

    /// Peers over all swarms (a client in two swarms counts twice).
    pub fn peer_count(&self) -> usize {
        self.swarms.values().map(|swarm| swarm.peers.len()).sum()
    }

    /// Counts for one swarm; zeros for a swarm nobody is in.
    pub fn stats(&self, info_hash: &InfoHash) -> ScrapeStats {
        self.swarms
            .get(info_hash)
            .map(Swarm::stats)
            .unwrap_or_default()
    }

    /// Counts of up to `max` active swarms (scrape without info-hashes).
    pub fn all_stats(&self, max: usize) -> Vec<(InfoHash, ScrapeStats)> {
        self.swarms
            .iter()
            .take(max)
            .map(|(hash, swarm)| (*hash, swarm.stats()))
            .collect()
    }

    /// A WebSocket announce (not an answer) from `peer_id` on `conn`. Chooses up to `offers`
    /// peers to relay its offers to (none for `stopped` and `paused`).
    ///
    /// Selection: other WebSocket peers only, in random order, leechers first; a seeder's offers
    /// go to leechers only, since seed-to-seed connections carry nothing (§1.7 IMPROVE).
    #[allow(clippy::too_many_arguments)]
    pub fn announce_ws(
        &mut self,
        info_hash: InfoHash,
        peer_id: PeerId,
        conn: ConnId,
        state: PeerState,
        offers: usize,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Result<WsAnnounced, Refused> {
        let key = PeerKey::Ws(peer_id);
        if state.event == Some(AnnounceEvent::Stopped) {
            self.remove_peer(&info_hash, &key);
            return Ok(WsAnnounced {
                stats: self.stats(&info_hash),
                targets: Vec::new(),
            });
        }
        let joined = self
            .conns
            .get(&conn)
            .is_some_and(|list| list.contains(&(info_hash, peer_id)));
        if !joined
            && self.conns.get(&conn).map_or(0, Vec::len) >= self.limits.max_swarms_per_connection
        {
            return Err(Refused::TooManyTorrentsOnConnection);
        }
        let previous_conn = self.upsert(info_hash, key, Some(conn), state, now)?;
        if let Some(old) = previous_conn.filter(|&old| old != conn) {
            self.forget_conn_entry(old, &info_hash, &peer_id);
        }
        if !joined {
            self.conns
                .entry(conn)
                .or_default()
                .push((info_hash, peer_id));
        }

        let mut targets = Vec::new();
        if offers > 0 && state.event != Some(AnnounceEvent::Paused) {
            if let Some(swarm) = self.swarms.get(&info_hash) {
                // Leechers first (in random order), then seeders for a leecher's spare offers.
                let mut chosen = swarm.sample(&[Class::WsLeecher], offers, &key, rng);
                if chosen.len() < offers && !state.is_complete() {
                    let more = offers - chosen.len();
                    chosen.extend(swarm.sample(&[Class::WsSeeder], more, &key, rng));
                }
                targets = chosen
                    .into_iter()
                    .filter_map(|key| match key {
                        PeerKey::Ws(id) => swarm.peers.get(&key)?.conn.map(|conn| (id, conn)),
                        PeerKey::Http(_) => None,
                    })
                    .collect();
            }
        }
        Ok(WsAnnounced {
            stats: self.stats(&info_hash),
            targets,
        })
    }

    /// An answer from `from` (on `conn`) to `to`'s offer: refreshes the answerer if it is in the
    /// swarm (it is not added: an answer says nothing about what it has) and returns the
    /// connection to relay the answer to, if `to` is a WebSocket peer of this swarm.
    pub fn answer(
        &mut self,
        info_hash: &InfoHash,
        from: PeerId,
        conn: ConnId,
        to: PeerId,
        now: Instant,
    ) -> Option<ConnId> {
        let seq = self.next_seq();
        let swarm = self.swarms.get_mut(info_hash)?;
        if let Some(peer) = swarm.peers.get_mut(&PeerKey::Ws(from)) {
            if peer.conn == Some(conn) {
                swarm.order.remove(&peer.seq);
                peer.seq = seq;
                peer.last_seen = now;
                swarm.order.insert(seq, PeerKey::Ws(from));
            }
        }
        swarm.peers.get(&PeerKey::Ws(to)).and_then(|peer| peer.conn)
    }

    /// An HTTP announce from `addr`. Returns up to `numwant` other HTTP peers in random order
    /// (only leechers when the announcer is a seeder; none on `stopped`).
    pub fn announce_http(
        &mut self,
        info_hash: InfoHash,
        addr: SocketAddr,
        state: PeerState,
        numwant: usize,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Result<HttpAnnounced, Refused> {
        let key = PeerKey::Http(addr);
        if state.event == Some(AnnounceEvent::Stopped) {
            self.remove_peer(&info_hash, &key);
            return Ok(HttpAnnounced {
                stats: self.stats(&info_hash),
                peers: Vec::new(),
            });
        }
        self.upsert(info_hash, key, None, state, now)?;
        // A seeder gets leechers only; a leecher gets anyone.
        let classes: &[Class] = if state.is_complete() {
            &[Class::HttpLeecher]
        } else {
            &[Class::HttpLeecher, Class::HttpSeeder]
        };
        let peers = match self.swarms.get(&info_hash) {
            Some(swarm) => swarm
                .sample(classes, numwant, &key, rng)
                .into_iter()
                .filter_map(|key| match key {
                    PeerKey::Http(addr) => Some(addr),
                    PeerKey::Ws(_) => None,
                })
                .collect(),
            None => Vec::new(),
        };
        Ok(HttpAnnounced {
            stats: self.stats(&info_hash),
            peers,
        })
    }

    /// Removes a whole swarm. Returns how many peers it had.
    pub fn remove_swarm(&mut self, info_hash: &InfoHash) -> usize {
        let Some(swarm) = self.swarms.remove(info_hash) else {
            return 0;
        };
        for (key, peer) in &swarm.peers {
            if let (PeerKey::Ws(peer_id), Some(conn)) = (key, peer.conn) {
                self.forget_conn_entry(conn, info_hash, peer_id);
            }
        }
        swarm.peers.len()
    }

    /// Removes every peer that announced on `conn` and still belongs to it (the socket closed).
    /// Returns how many were removed.
    pub fn disconnect(&mut self, conn: ConnId) -> usize {
        let Some(joined) = self.conns.remove(&conn) else {
            return 0;
        };
        let mut removed = 0;
        for (info_hash, peer_id) in joined {
            let Some(swarm) = self.swarms.get_mut(&info_hash) else {
                continue;
            };
            let key = PeerKey::Ws(peer_id);
            // The peer may have moved to a newer connection since: leave it there.
            if swarm.peers.get(&key).is_some_and(|p| p.conn == Some(conn)) {
                swarm.remove(&key);
                removed += 1;
            }
            if swarm.peers.is_empty() {
                self.swarms.remove(&info_hash);
            }
        }
        removed
    }

    /// Drops peers that have not announced within the TTL. Returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let Some(cutoff) = now.checked_sub(self.limits.peer_ttl) else {
            return 0;
        };
        let mut expired = Vec::new();
        self.swarms.retain(|info_hash, swarm| {
            expired.extend(
                swarm
                    .expire(cutoff)
                    .into_iter()
                    .map(|(key, peer)| (*info_hash, key, peer)),
            );
            !swarm.peers.is_empty()
        });
        for (info_hash, key, peer) in &expired {
            if let (PeerKey::Ws(peer_id), Some(conn)) = (key, peer.conn) {
                self.forget_conn_entry(conn, info_hash, peer_id);
            }
        }
        expired.len()
    }

    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Inserts or refreshes a peer, creating its swarm if needed. Returns the connection the
    /// peer was on before (WebSocket peers that were already there).
    fn upsert(
        &mut self,
        info_hash: InfoHash,
        key: PeerKey,
        conn: Option<ConnId>,
        state: PeerState,
        now: Instant,
    ) -> Result<Option<ConnId>, Refused> {
        if !self.swarms.contains_key(&info_hash) && self.swarms.len() >= self.limits.max_swarms {
            return Err(Refused::TooManySwarms);
        }
        let seq = self.next_seq();
        let max_peers = self.limits.max_peers_per_swarm.max(1);
        let swarm = self.swarms.entry(info_hash).or_default();
        let previous_conn = swarm.peers.get(&key).and_then(|peer| peer.conn);
        let evicted = swarm.upsert(key, conn, state, now, seq, max_peers);
        if let Some((PeerKey::Ws(peer_id), Peer { conn: Some(c), .. })) = evicted {
            self.forget_conn_entry(c, &info_hash, &peer_id);
        }
        Ok(previous_conn)
    }

    fn remove_peer(&mut self, info_hash: &InfoHash, key: &PeerKey) {
        let Some(swarm) = self.swarms.get_mut(info_hash) else {
            return;
        };
        let removed = swarm.remove(key);
        if swarm.peers.is_empty() {
            self.swarms.remove(info_hash);
        }
        if let (PeerKey::Ws(peer_id), Some(Peer { conn: Some(c), .. })) = (key, removed) {
            self.forget_conn_entry(c, info_hash, peer_id);
        }
    }

    fn forget_conn_entry(&mut self, conn: ConnId, info_hash: &InfoHash, peer_id: &PeerId) {
        if let Some(list) = self.conns.get_mut(&conn) {
            list.retain(|entry| entry != &(*info_hash, *peer_id));
            if list.is_empty() {
                self.conns.remove(&conn);
            }
        }
    }

    /// Connections with at least one swarm entry (for tests and stats).
    #[cfg(test)]
    fn conn_entries(&self, conn: ConnId) -> usize {
        self.conns.get(&conn).map_or(0, Vec::len)
    }

    /// Panics unless the invariants in the module doc hold for every swarm.
    #[cfg(test)]
    fn check_invariants(&self) {
        for swarm in self.swarms.values() {
            assert!(!swarm.peers.is_empty(), "empty swarm kept");
            assert_eq!(swarm.order.len(), swarm.peers.len());
            let listed: usize = swarm.classes.iter().map(Vec::len).sum();
            assert_eq!(listed, swarm.peers.len(), "class lists and peers disagree");
            let seeders = swarm.peers.values().filter(|p| p.complete).count();
            assert_eq!(seeders, swarm.seeders);
            for (key, peer) in &swarm.peers {
                let list = &swarm.classes[Class::of(key, peer.complete) as usize];
                assert_eq!(list.get(peer.slot), Some(key), "slot of {key:?}");
                assert_eq!(swarm.order.get(&peer.seq), Some(key));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const LIMITS: Limits = Limits {
        max_swarms: 4,
        max_peers_per_swarm: 1000,
        max_swarms_per_connection: 3,
        peer_ttl: Duration::from_secs(20 * 60),
    };

    fn hash(n: u8) -> InfoHash {
        InfoHash([n; 20])
    }

    fn peer(n: u8) -> PeerId {
        PeerId([n; 20])
    }

    fn leecher() -> PeerState {
        PeerState {
            left: Some(100),
            event: Some(AnnounceEvent::Started),
        }
    }

    fn seeder() -> PeerState {
        PeerState {
            left: Some(0),
            event: Some(AnnounceEvent::Started),
        }
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    /// Announces peer `n` on connection `n` with no offers.
    fn join(swarms: &mut Swarms, n: u8, state: PeerState, now: Instant) {
        swarms
            .announce_ws(
                hash(1),
                peer(n),
                ConnId(n.into()),
                state,
                0,
                now,
                &mut rng(),
            )
            .expect("announce");
    }

    #[test]
    fn offers_go_to_other_peers_never_the_announcer() {
        let now = Instant::now();
        let mut swarms = Swarms::new(LIMITS);
        join(&mut swarms, 1, leecher(), now);
        join(&mut swarms, 2, leecher(), now);
        let out = swarms
            .announce_ws(hash(1), peer(1), ConnId(1), leecher(), 5, now, &mut rng())
            .unwrap();
        assert_eq!(out.targets, vec![(peer(2), ConnId(2))]);
        assert_eq!(out.stats.incomplete, 2);
        assert_eq!(out.stats.complete, 0);
    }

    #[test]
    fn leechers_get_offers_before_seeders() {
        let now = Instant::now();
        let mut swarms = Swarms::new(LIMITS);
        for n in 10..20 {
            join(&mut swarms, n, seeder(), now);
        }
        for n in 20..23 {
            join(&mut swarms, n, leecher(), now);
        }
        for seed in 0..20 {
            let out = swarms
                .announce_ws(
                    hash(1),
                    peer(1),
                    ConnId(1),
                    leecher(),
                    5,
                    now,
                    &mut StdRng::seed_from_u64(seed),
                )
                .unwrap();
            assert_eq!(out.targets.len(), 5);
            let leechers: Vec<_> = out.targets[..3].iter().map(|t| t.0 .0[0]).collect();
            assert!(
                leechers.iter().all(|n| (20..23).contains(n)),
                "{leechers:?}"
            );
            assert!(out.targets[3..]
                .iter()
                .all(|t| (10..20).contains(&t.0 .0[0])));
        }
    }

    #[test]
    fn a_seeders_offers_go_only_to_leechers() {
        let now = Instant::now();
        let mut swarms = Swarms::new(LIMITS);
        for n in 10..20 {
            join(&mut swarms, n, seeder(), now);
        }
        join(&mut swarms, 20, leecher(), now);
        let out = swarms
            .announce_ws(hash(1), peer(1), ConnId(1), seeder(), 5, now, &mut rng())
            .unwrap();
        assert_eq!(out.targets, vec![(peer(20), ConnId(20))]);
        assert_eq!(out.stats.complete, 11);
    }

    #[test]
    fn selection_is_random_and_bounded() {
        let now = Instant::now();
        let mut swarms = Swarms::new(LIMITS);
        for n in 10..60 {
            join(&mut swarms, n, leecher(), now);
        }
        let mut seen = std::collections::HashSet::new();
        for seed in 0..30 {
            let out = swarms
                .announce_ws(
                    hash(1),
                    peer(1),
                    ConnId(1),
                    leecher(),
                    5,
                    now,
                    &mut StdRng::seed_from_u64(seed),
                )
                .unwrap();
            assert_eq!(out.targets.len(), 5);
            let distinct: std::collections::HashSet<_> = out.targets.iter().collect();
            assert_eq!(distinct.len(), 5, "no peer twice");
            seen.extend(out.targets.iter().map(|t| t.0));
        }
        assert!(seen.len() > 30, "only {} distinct peers chosen", seen.len());
    }

    #[test]
    fn unknown_left_is_a_leecher_and_completed_makes_a_seeder() {
        let now = Instant::now();
        let mut swarms = Swarms::new(LIMITS);
        let magnet = PeerState {
            left: None,
            event: Some(AnnounceEvent::Started),
        };
        join(&mut swarms, 1, magnet, now);
        assert_eq!(
            swarms.stats(&hash(1)),
            ScrapeStats {
                complete: 0,
                incomplete: 1,
                downloaded: 0
            }
        );
        let done = PeerState {
            left: Some(0),
            event: Some(AnnounceEvent::Completed),
        };
        join(&mut swarms, 1, done, now);
        join(&mut swarms, 1, done, now); // a repeated `completed` is not a second download
        assert_eq!(
            swarms.stats(&hash(1)),
            ScrapeStats {
                complete: 1,
                incomplete: 0,
                downloaded: 1
            }
        );
        // An update that says there is something left again (a re-check found bad data).
        join(&mut swarms, 1, leecher(), now);
        assert_eq!(swarms.stats(&hash(1)).complete, 0);
        assert_eq!(swarms.stats(&hash(1)).incomplete, 1);
    }

    #[test]
    fn stopped_removes_the_peer_and_the_empty_swarm() {
        let now = Instant::now();
        let mut swarms = Swarms::new(LIMITS);
        join(&mut swarms, 1, seeder(), now);
        assert_eq!((swarms.swarm_count(), swarms.peer_count()), (1, 1));
        let stopped = PeerState {
            left: Some(0),
            event: Some(AnnounceEvent::Stopped),
        };
        let out = swarms
            .announce_ws(hash(1), peer(1), ConnId(1), stopped, 5, now, &mut rng())
            .unwrap();
        assert!(out.targets.is_empty());
        assert_eq!((swarms.swarm_count(), swarms.peer_count()), (0, 0));
        assert_eq!(swarms.conn_entries(ConnId(1)), 0);
    }

    #[test]
    fn closing_a_connection_leaves_every_swarm_it_joined() {
        let now = Instant::now();
        let mut swarms = Swarms::new(LIMITS);
        for h in 1..=3 {
            swarms
                .announce_ws(hash(h), peer(1), ConnId(1), leecher(), 0, now, &mut rng())
                .unwrap();
            swarms
                .announce_ws(hash(h), peer(2), ConnId(2), leecher(), 0, now, &mut rng())
                .unwrap();
        }
        assert_eq!(swarms.peer_count(), 6);
        assert_eq!(swarms.disconnect(ConnId(1)), 3);
        assert_eq!((swarms.swarm_count(), swarms.peer_count()), (3, 3));
        assert_eq!(swarms.disconnect(ConnId(2)), 3);
        assert_eq!((swarms.swarm_count(), swarms.peer_count()), (0, 0));
    }

    #[test]
    fn the_socket_is_refreshed_on_every_announce() {
        let now = Instant::now();
        let mut swarms = Swarms::new(LIMITS);
        join(&mut swarms, 2, leecher(), now);
        // Peer 1 on connection 10, then again (a reconnect) on connection 11.
        for conn in [10, 11] {
            swarms
                .announce_ws(
                    hash(1),
                    peer(1),
                    ConnId(conn),
                    leecher(),
                    0,
                    now,
                    &mut rng(),
                )
                .unwrap();
        }
        let out = swarms
            .announce_ws(hash(1), peer(2), ConnId(2), leecher(), 5, now, &mut rng())
            .unwrap();
        assert_eq!(out.targets, vec![(peer(1), ConnId(11))]);
        // The old socket closing does not remove the peer that moved away from it.
        assert_eq!(swarms.disconnect(ConnId(10)), 0);
        assert_eq!(swarms.peer_count(), 2);
        assert_eq!(swarms.disconnect(ConnId(11)), 1);
    }

    #[test]
    fn answers_find_the_offerer_in_the_same_swarm() {
        let now = Instant::now();
        let mut swarms = Swarms::new(LIMITS);
        join(&mut swarms, 1, leecher(), now);
        join(&mut swarms, 2, leecher(), now);
        assert_eq!(
            swarms.answer(&hash(1), peer(2), ConnId(2), peer(1), now),
            Some(ConnId(1))
        );
        assert_eq!(
            swarms.answer(&hash(1), peer(2), ConnId(2), peer(9), now),
            None
        );
        assert_eq!(
            swarms.answer(&hash(2), peer(2), ConnId(2), peer(1), now),
            None
        );
        // An answer does not add its sender.
        swarms.answer(&hash(1), peer(7), ConnId(7), peer(1), now);
        assert_eq!(swarms.peer_count(), 2);
    }

    #[test]
    fn peers_expire_after_the_ttl_without_announcing() {
        let start = Instant::now();
        let mut swarms = Swarms::new(LIMITS);
        join(&mut swarms, 1, leecher(), start);
        join(&mut swarms, 2, leecher(), start);
        let later = start + Duration::from_secs(15 * 60);
        join(&mut swarms, 2, leecher(), later);
        assert_eq!(swarms.expire(start + Duration::from_secs(19 * 60)), 0);
        assert_eq!(swarms.expire(start + Duration::from_secs(21 * 60)), 1);
        assert_eq!(swarms.peer_count(), 1);
        assert_eq!(swarms.conn_entries(ConnId(1)), 0);
        assert_eq!(swarms.expire(later + Duration::from_secs(21 * 60)), 1);
        assert_eq!(swarms.swarm_count(), 0);
    }

    #[test]
    fn a_full_swarm_drops_its_oldest_peer() {
        let now = Instant::now();
        let mut swarms = Swarms::new(Limits {
            max_peers_per_swarm: 3,
            ..LIMITS
        });
        for n in 1..=3 {
            join(&mut swarms, n, leecher(), now);
        }
        join(&mut swarms, 1, seeder(), now); // peer 1 is now the most recent
        join(&mut swarms, 4, leecher(), now);
        assert_eq!(swarms.peer_count(), 3);
        assert_eq!(swarms.conn_entries(ConnId(2)), 0, "peer 2 was the oldest");
        assert_eq!(swarms.stats(&hash(1)).complete, 1);
        let out = swarms
            .announce_ws(hash(1), peer(9), ConnId(9), leecher(), 5, now, &mut rng())
            .unwrap();
        // Peer 9 took peer 3's place (the oldest then): it is offered to 1 and 4.
        let mut chosen: Vec<_> = out.targets.iter().map(|t| t.0 .0[0]).collect();
        chosen.sort();
        assert_eq!(chosen, vec![1, 4]);
    }

    #[test]
    fn swarm_and_per_connection_caps() {
        let now = Instant::now();
        let mut swarms = Swarms::new(LIMITS);
        for h in 1..=3 {
            swarms
                .announce_ws(hash(h), peer(1), ConnId(1), leecher(), 0, now, &mut rng())
                .unwrap();
        }
        assert_eq!(
            swarms.announce_ws(hash(4), peer(1), ConnId(1), leecher(), 0, now, &mut rng()),
            Err(Refused::TooManyTorrentsOnConnection)
        );
        // Re-announcing a swarm it is already in is fine.
        swarms
            .announce_ws(hash(3), peer(1), ConnId(1), leecher(), 0, now, &mut rng())
            .unwrap();
        swarms
            .announce_ws(hash(4), peer(2), ConnId(2), leecher(), 0, now, &mut rng())
            .unwrap();
        assert_eq!(
            swarms.announce_ws(hash(5), peer(2), ConnId(2), leecher(), 0, now, &mut rng()),
            Err(Refused::TooManySwarms)
        );
        assert_eq!(swarms.swarm_count(), 4);
    }

    #[test]
    fn http_peers_see_http_peers_only_and_seeders_see_leechers_only() {
        let now = Instant::now();
        let mut swarms = Swarms::new(LIMITS);
        join(&mut swarms, 1, leecher(), now); // a WebSocket peer
        let addr = |port: u16| SocketAddr::from(([10, 0, 0, 1], port));
        let announce = |swarms: &mut Swarms, port, state| {
            swarms
                .announce_http(hash(1), addr(port), state, 50, now, &mut rng())
                .unwrap()
        };
        assert!(announce(&mut swarms, 1000, seeder()).peers.is_empty());
        let out = announce(&mut swarms, 1001, leecher());
        assert_eq!(out.peers, vec![addr(1000)]);
        assert_eq!(out.stats.complete, 1);
        assert_eq!(out.stats.incomplete, 2, "counts include the WebSocket peer");
        let out = announce(&mut swarms, 1002, seeder());
        assert_eq!(out.peers, vec![addr(1001)]);
        // WebSocket announcers never get HTTP peers as offer targets.
        let out = swarms
            .announce_ws(hash(1), peer(2), ConnId(2), leecher(), 5, now, &mut rng())
            .unwrap();
        assert_eq!(out.targets, vec![(peer(1), ConnId(1))]);
        let stopped = PeerState {
            left: None,
            event: Some(AnnounceEvent::Stopped),
        };
        assert!(announce(&mut swarms, 1000, stopped).peers.is_empty());
        assert_eq!(swarms.peer_count(), 4);
    }

    #[test]
    fn numwant_bounds_http_peers() {
        let now = Instant::now();
        let mut swarms = Swarms::new(LIMITS);
        for port in 1..=100 {
            swarms
                .announce_http(
                    hash(1),
                    SocketAddr::from(([10, 0, 0, 1], port)),
                    leecher(),
                    50,
                    now,
                    &mut rng(),
                )
                .unwrap();
        }
        let out = swarms
            .announce_http(
                hash(1),
                SocketAddr::from(([10, 0, 0, 2], 1)),
                leecher(),
                82,
                now,
                &mut rng(),
            )
            .unwrap();
        assert_eq!(out.peers.len(), 82);
    }

    /// Peers joining, completing, going back to leeching, stopping, being evicted and expiring in
    /// random order: the class lists that selection draws from always match the swarm, and no
    /// selection ever returns the announcer, a duplicate, or a peer of the wrong kind.
    #[test]
    fn selection_lists_stay_consistent_under_churn() {
        let limits = Limits {
            max_peers_per_swarm: 40,
            ..LIMITS
        };
        let mut swarms = Swarms::new(limits);
        let mut rng = StdRng::seed_from_u64(99);
        let start = Instant::now();
        for step in 0..20_000u32 {
            let now = start + Duration::from_millis(step as u64 * 100);
            let n: u8 = rng.gen_range(0..60);
            let state = PeerState {
                left: match rng.gen_range(0..3) {
                    0 => Some(0),
                    1 => Some(10),
                    _ => None,
                },
                event: match rng.gen_range(0..10) {
                    0 => Some(AnnounceEvent::Stopped),
                    1 => Some(AnnounceEvent::Completed),
                    _ => None,
                },
            };
            if rng.gen_bool(0.5) {
                let out = swarms
                    .announce_ws(hash(1), peer(n), ConnId(n.into()), state, 5, now, &mut rng)
                    .unwrap();
                let mut ids: Vec<_> = out.targets.iter().map(|(id, _)| *id).collect();
                assert!(!ids.contains(&peer(n)));
                ids.sort_by_key(|id| id.0);
                ids.dedup();
                assert_eq!(ids.len(), out.targets.len(), "duplicate target");
            } else {
                let addr = SocketAddr::from(([10, 0, 0, n], 6881));
                let out = swarms
                    .announce_http(hash(1), addr, state, 10, now, &mut rng)
                    .unwrap();
                assert!(!out.peers.contains(&addr));
                let mut peers = out.peers.clone();
                peers.sort();
                peers.dedup();
                assert_eq!(peers.len(), out.peers.len(), "duplicate peer");
            }
            if step % 1000 == 999 {
                swarms.expire(now);
            }
            swarms.check_invariants();
        }
    }

    #[test]
    fn a_removed_swarm_leaves_no_trace() {
        let now = Instant::now();
        let mut swarms = Swarms::new(LIMITS);
        join(&mut swarms, 1, leecher(), now);
        join(&mut swarms, 2, seeder(), now);
        assert_eq!(swarms.remove_swarm(&hash(1)), 2);
        assert_eq!((swarms.swarm_count(), swarms.peer_count()), (0, 0));
        assert_eq!(swarms.conn_entries(ConnId(1)), 0);
        assert_eq!(swarms.remove_swarm(&hash(1)), 0);
        swarms.check_invariants();
    }
}

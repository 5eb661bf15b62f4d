//! A deterministic in-memory network for engine tests: N engines joined by links with a
//! bandwidth and a latency, data delivered in random chunk sizes (the data channel is a byte
//! stream), a simulated WebSeed serving byte ranges of the real content with its own bandwidth
//! and latency, and a fake clock. Everything is driven by one event queue.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use client_core::engine::{
    Action, CloseReason, Config, Engine, Millis, PeerKey, WebSeedError, WebSeedPart,
};
use client_core::metainfo::Metainfo;

#[path = "../support/rng.rs"]
mod rng;
pub use rng::Rng;

/// A torrent over pseudo-random content.
pub fn random_torrent(len: usize, piece: u32, seed: u64) -> (Metainfo, Vec<u8>) {
    let data = Rng(seed | 1).bytes(len);
    let mut b =
        client_core::metainfo::TorrentBuilder::single_file("video.mp4", len as u64, Some(piece))
            .unwrap();
    b.update(&data);
    (b.finish().unwrap(), data)
}

/// An engine configuration where the caller hashes the pieces (as the browser does, with
/// SubtleCrypto): the sim answers each `HashPiece` after a random delay
/// ([`Node::hash_delay_ms`]), so digests also come back out of order.
pub fn hashed_outside() -> Config {
    Config {
        hash_outside: true,
        ..Config::default()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct LinkCfg {
    /// Bytes per second.
    pub bandwidth: u64,
    pub latency_ms: u64,
}

impl LinkCfg {
    pub fn new(bandwidth: u64, latency_ms: u64) -> Self {
        Self {
            bandwidth,
            latency_ms,
        }
    }
}

struct Link {
    cfg: LinkCfg,
    /// When the link finishes sending what is queued, in ms (fractional).
    busy_until: f64,
    open: bool,
}

/// Serves byte ranges of files by URL.
pub struct WebSeedSim {
    files: HashMap<String, Vec<u8>>,
    pub bandwidth: u64,
    pub latency_ms: u64,
    busy_until: f64,
    pending: std::collections::VecDeque<Pending>,
    /// Bytes sent in responses.
    pub served: u64,
    pub requests: u64,
    /// (time, node, start byte) of every response sent.
    pub log: Vec<(u64, usize, u64)>,
}

impl WebSeedSim {
    /// A single-file WebSeed: the URL names the file.
    pub fn single(url: &str, data: &[u8], bandwidth: u64, latency_ms: u64) -> Self {
        Self {
            files: HashMap::from([(url.to_owned(), data.to_vec())]),
            bandwidth,
            latency_ms,
            busy_until: 0.0,
            pending: Default::default(),
            served: 0,
            requests: 0,
            log: Vec::new(),
        }
    }

    /// A multi-file WebSeed: `base/name/path` per file (BEP 19).
    pub fn multi(
        base: &str,
        meta: &Metainfo,
        data: &[u8],
        bandwidth: u64,
        latency_ms: u64,
    ) -> Self {
        let mut files = HashMap::new();
        for (i, f) in meta.info.files.iter().enumerate() {
            let path = meta.info.display_path(i).unwrap();
            let sep = if base.ends_with('/') { "" } else { "/" };
            let range = f.range();
            files.insert(
                format!("{base}{sep}{path}"),
                data[range.start as usize..range.end as usize].to_vec(),
            );
        }
        Self {
            files,
            bandwidth,
            latency_ms,
            busy_until: 0.0,
            pending: Default::default(),
            served: 0,
            requests: 0,
            log: Vec::new(),
        }
    }

    /// Queues a request; it reaches the server after the latency.
    fn request(
        &mut self,
        node: usize,
        url: String,
        start: u64,
        end: u64,
        parts: Vec<WebSeedPart>,
        now: f64,
    ) -> f64 {
        self.requests += 1;
        let ready = now + self.latency_ms as f64;
        self.pending.push_back(Pending {
            node,
            url,
            start,
            end,
            parts: parts
                .into_iter()
                .map(|p| PendingPart {
                    id: p.id,
                    len: p.len,
                    cancelled: false,
                })
                .collect(),
            ready,
        });
        ready
    }

    /// A cancelled part is skipped; a request still queued with no part left is dropped.
    fn cancel(&mut self, node: usize, id: u64) {
        for p in self.pending.iter_mut().filter(|p| p.node == node) {
            if let Some(part) = p.parts.iter_mut().find(|part| part.id == id) {
                part.cancelled = true;
            }
        }
        self.pending
            .retain(|p| p.parts.iter().any(|part| !part.cancelled));
    }

    /// If the server is free, starts the next queued response: its parts arrive one after
    /// another as the body streams (the bandwidth is the server's).
    fn next(&mut self, now: f64) -> Vec<Reply> {
        if self.busy_until > now + 1e-6 {
            return Vec::new();
        }
        let Some(at) = self.pending.iter().position(|p| p.ready <= now + 1e-6) else {
            return Vec::new();
        };
        let p = self.pending.remove(at).expect("queued");
        let latency = self.latency_ms as f64;
        let failed = |err: WebSeedError| {
            p.parts
                .iter()
                .map(|part| (p.node, part.id, Err(err.clone()), now + latency))
                .collect()
        };
        let Some(file) = self.files.get(&p.url) else {
            return failed(WebSeedError::Status(404));
        };
        if p.end < p.start || p.end as usize >= file.len() {
            return failed(WebSeedError::Status(416));
        }
        self.log.push((now as u64, p.node, p.start));
        let mut replies = Vec::new();
        let mut offset = p.start as usize;
        let mut sent_until = now;
        for part in &p.parts {
            let body = file[offset..offset + part.len as usize].to_vec();
            offset += body.len();
            sent_until += body.len() as f64 * 1000.0 / self.bandwidth as f64;
            self.served += body.len() as u64;
            if !part.cancelled {
                replies.push((p.node, part.id, Ok(body), sent_until + latency));
            }
        }
        self.busy_until = sent_until;
        replies
    }
}

/// A response part leaving the server: (node, part id, body, arrival time).
type Reply = (usize, u64, Result<Vec<u8>, WebSeedError>, f64);

struct Pending {
    node: usize,
    url: String,
    start: u64,
    end: u64,
    parts: Vec<PendingPart>,
    ready: f64,
}

struct PendingPart {
    id: u64,
    len: u64,
    cancelled: bool,
}

pub struct Node {
    pub engine: Engine,
    /// Our key for a peer → its node index.
    pub peers: BTreeMap<PeerKey, usize>,
    pub verified: Vec<(u32, u64)>,
    pub failed: Vec<(u32, Vec<PeerKey>)>,
    pub closed: Vec<(PeerKey, CloseReason)>,
    pub done_at: Option<u64>,
    pub metadata_at: Option<u64>,
    /// Flip a byte in every block this node sends.
    pub corrupt: bool,
    pub webseed_requests: u64,
    /// Total upload capacity over all links (bytes/s), if limited.
    pub uplink: Option<u64>,
    uplink_busy: f64,
    /// For an engine with `hash_outside`: each digest comes back after a random delay in this
    /// range of ms (so digests also come back out of order), as from a browser's SubtleCrypto.
    pub hash_delay_ms: std::ops::RangeInclusive<u64>,
    /// Digests handed back to the engine.
    pub hashes: u64,
    /// Every `HashPiece` the engine asked for: (piece, ticket).
    pub hash_requests: Vec<(u32, u64)>,
}

#[derive(Debug)]
enum Event {
    Deliver {
        from: usize,
        to: usize,
        data: Vec<u8>,
    },
    Closed {
        node: usize,
        key: PeerKey,
    },
    WebSeedReply {
        node: usize,
        id: u64,
        result: Result<Vec<u8>, WebSeedError>,
    },
    WebSeedWake,
    Writable {
        node: usize,
        peer: usize,
    },
    Tick(usize),
    Hashed {
        node: usize,
        index: u32,
        ticket: u64,
        digest: [u8; 20],
    },
}

pub struct Sim {
    /// Current time in ms (fractional internally for bandwidth accounting).
    now: f64,
    pub rng: Rng,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Event>,
    seq: u64,
    pub nodes: Vec<Node>,
    links: HashMap<(usize, usize), Link>,
    pub webseed: Option<WebSeedSim>,
    pub tick_ms: u64,
    /// Sends above this backlog on a link make the engine hold its sends (bufferedAmount).
    pub backlog_limit: u64,
}

impl Sim {
    pub fn new(seed: u64) -> Self {
        Self {
            now: 0.0,
            rng: Rng(seed | 1),
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            seq: 0,
            nodes: Vec::new(),
            links: HashMap::new(),
            webseed: None,
            tick_ms: 50,
            backlog_limit: 256 * 1024,
        }
    }

    pub fn now(&self) -> Millis {
        Millis(self.now as u64)
    }

    pub fn now_ms(&self) -> u64 {
        self.now as u64
    }

    fn push(&mut self, at: f64, event: Event) {
        // Events are ordered by whole microseconds, then by insertion.
        let at_us = (at.max(self.now) * 1000.0).ceil() as u64;
        self.seq += 1;
        self.events.insert(self.seq, event);
        self.queue.push(Reverse((at_us, self.seq)));
    }

    /// Adds an engine; it starts ticking now.
    pub fn add_node(&mut self, engine: Engine) -> usize {
        let index = self.nodes.len();
        self.nodes.push(Node {
            engine,
            peers: BTreeMap::new(),
            verified: Vec::new(),
            failed: Vec::new(),
            closed: Vec::new(),
            done_at: None,
            metadata_at: None,
            corrupt: false,
            webseed_requests: 0,
            uplink: None,
            uplink_busy: 0.0,
            hash_delay_ms: 0..=3,
            hashes: 0,
            hash_requests: Vec::new(),
        });
        self.push(self.now, Event::Tick(index));
        index
    }

    /// Opens a connection between two nodes (each names the other by its node index).
    pub fn connect(&mut self, a: usize, b: usize, ab: LinkCfg, ba: LinkCfg) {
        for (from, to, cfg) in [(a, b, ab), (b, a, ba)] {
            self.links.insert(
                (from, to),
                Link {
                    cfg,
                    busy_until: self.now,
                    open: true,
                },
            );
            self.nodes[from].peers.insert(PeerKey(to as u64), to);
        }
        let now = self.now();
        self.nodes[a].engine.peer_connected(PeerKey(b as u64), now);
        self.nodes[b].engine.peer_connected(PeerKey(a as u64), now);
        self.drain(a);
        self.drain(b);
    }

    fn transmit(&mut self, from: usize, to: usize, mut data: Vec<u8>) {
        if self.nodes[from].corrupt && data.len() >= 16_000 {
            // Inside the block of the piece message that ends this send.
            data[100] ^= 0xFF;
        }
        let now = self.now;
        let Some(link) = self.links.get_mut(&(from, to)) else {
            return;
        };
        if !link.open {
            return;
        }
        let node = &mut self.nodes[from];
        let start = link.busy_until.max(now).max(node.uplink_busy);
        let mut duration = data.len() as f64 * 1000.0 / link.cfg.bandwidth as f64;
        if let Some(uplink) = node.uplink {
            let on_uplink = data.len() as f64 * 1000.0 / uplink as f64;
            node.uplink_busy = start + on_uplink;
            duration = duration.max(on_uplink);
        }
        link.busy_until = start + duration;
        let arrive = link.busy_until + link.cfg.latency_ms as f64;
        let backlog = (link.busy_until - now) * link.cfg.bandwidth as f64 / 1000.0;
        let limit = self.backlog_limit as f64;
        let writable_at = link.busy_until - limit / 2.0 * 1000.0 / link.cfg.bandwidth as f64;
        // The byte stream arrives in random pieces (several sends may also share one).
        let mut rest = &data[..];
        while !rest.is_empty() {
            let cut = if rest.len() <= 1 {
                rest.len()
            } else {
                1 + self.rng.below(rest.len())
            };
            let cut = if self.rng.below(3) == 0 {
                rest.len()
            } else {
                cut
            };
            let (head, tail) = rest.split_at(cut);
            self.push(
                arrive,
                Event::Deliver {
                    from,
                    to,
                    data: head.to_vec(),
                },
            );
            rest = tail;
        }
        if backlog > limit {
            self.nodes[from]
                .engine
                .set_peer_writable(PeerKey(to as u64), false);
            self.push(
                writable_at,
                Event::Writable {
                    node: from,
                    peer: to,
                },
            );
        }
    }

    /// Runs every action an engine has.
    pub fn drain(&mut self, node: usize) {
        while let Some(action) = self.nodes[node].engine.poll_action() {
            let now = self.now_ms();
            match action {
                Action::Send { peer, data } => {
                    if let Some(&to) = self.nodes[node].peers.get(&peer) {
                        self.transmit(node, to, data);
                    }
                }
                Action::ClosePeer { peer, reason } => {
                    self.nodes[node].closed.push((peer, reason));
                    if let Some(to) = self.nodes[node].peers.remove(&peer) {
                        for key in [(node, to), (to, node)] {
                            if let Some(link) = self.links.get_mut(&key) {
                                link.open = false;
                            }
                        }
                        let latency = self.links[&(node, to)].cfg.latency_ms as f64;
                        self.nodes[to].peers.remove(&PeerKey(node as u64));
                        self.push(
                            self.now + latency,
                            Event::Closed {
                                node: to,
                                key: PeerKey(node as u64),
                            },
                        );
                    }
                }
                Action::WebSeedRequest {
                    url,
                    start,
                    end,
                    parts,
                } => {
                    assert_eq!(
                        parts.iter().map(|p| p.len).sum::<u64>(),
                        end - start + 1,
                        "the parts make up the range"
                    );
                    self.nodes[node].webseed_requests += 1;
                    let now = self.now;
                    match self.webseed.as_mut() {
                        Some(ws) => {
                            let ready = ws.request(node, url, start, end, parts, now);
                            self.push(ready, Event::WebSeedWake);
                        }
                        None => {
                            for WebSeedPart { id, .. } in parts {
                                let result = Err(WebSeedError::Network("no webseed".into()));
                                self.push(now + 1.0, Event::WebSeedReply { node, id, result });
                            }
                        }
                    }
                }
                Action::WebSeedCancel { id } => {
                    if let Some(ws) = self.webseed.as_mut() {
                        ws.cancel(node, id);
                    }
                }
                Action::HashPiece { index, ticket } => {
                    use sha1::{Digest, Sha1};
                    self.nodes[node].hash_requests.push((index, ticket));
                    let input = self.nodes[node].engine.hash_input(index, ticket);
                    let digest: [u8; 20] = Sha1::digest(input.expect("a fresh ticket")).into();
                    let range = self.nodes[node].hash_delay_ms.clone();
                    let delay = range.start() + self.rng.below_u64(range.end() - range.start() + 1);
                    let at = self.now + delay as f64;
                    self.push(
                        at,
                        Event::Hashed {
                            node,
                            index,
                            ticket,
                            digest,
                        },
                    );
                }
                Action::PieceVerified { index } => self.nodes[node].verified.push((index, now)),
                Action::PieceFailed { index, peers } => {
                    self.nodes[node].failed.push((index, peers))
                }
                Action::MetadataReady => self.nodes[node].metadata_at = Some(now),
                Action::Done => self.nodes[node].done_at = Some(now),
            }
        }
    }

    /// Processes events up to `until` (ms).
    pub fn run_until(&mut self, until: u64) {
        while let Some(&Reverse((at_us, seq))) = self.queue.peek() {
            if at_us > until * 1000 {
                break;
            }
            self.queue.pop();
            self.now = self.now.max(at_us as f64 / 1000.0);
            let Some(event) = self.events.remove(&seq) else {
                continue;
            };
            self.handle(event);
        }
        self.now = self.now.max(until as f64);
    }

    pub fn run_for(&mut self, ms: u64) {
        let until = self.now_ms() + ms;
        self.run_until(until);
    }

    /// Runs until `done` holds or `limit` ms have passed (checked every 10 ms).
    pub fn run_while(&mut self, limit: u64, mut keep_going: impl FnMut(&Sim) -> bool) {
        while self.now_ms() < limit && keep_going(self) {
            self.run_for(10);
        }
    }

    fn handle(&mut self, event: Event) {
        let now = self.now();
        match event {
            Event::Deliver { from, to, data } => {
                let open = self.links.get(&(from, to)).is_some_and(|l| l.open);
                if open {
                    self.nodes[to]
                        .engine
                        .peer_data(PeerKey(from as u64), &data, now);
                    self.drain(to);
                }
            }
            Event::Closed { node, key } => {
                self.nodes[node].engine.peer_closed(key, now);
                self.drain(node);
            }
            Event::WebSeedReply { node, id, result } => {
                self.nodes[node].engine.webseed_response(id, result, now);
                self.drain(node);
            }
            Event::WebSeedWake => {
                let now = self.now;
                let replies = self.webseed.as_mut().map(|w| w.next(now));
                for (node, id, result, at) in replies.unwrap_or_default() {
                    self.push(at, Event::WebSeedReply { node, id, result });
                }
                if let Some(ws) = self.webseed.as_ref() {
                    if ws.busy_until > now {
                        let at = ws.busy_until;
                        self.push(at, Event::WebSeedWake);
                    }
                }
            }
            Event::Writable { node, peer } => {
                let open = self.links.get(&(node, peer)).is_some_and(|l| l.open);
                if open {
                    self.nodes[node]
                        .engine
                        .set_peer_writable(PeerKey(peer as u64), true);
                    self.drain(node);
                }
            }
            Event::Hashed {
                node,
                index,
                ticket,
                digest,
            } => {
                self.nodes[node].hashes += 1;
                self.nodes[node]
                    .engine
                    .piece_hashed(index, ticket, digest, now);
                self.drain(node);
            }
            Event::Tick(node) => {
                self.nodes[node].engine.tick(now);
                self.drain(node);
                let at = self.now + self.tick_ms as f64;
                self.push(at, Event::Tick(node));
            }
        }
    }
}

//! The torrent engine: one torrent's peers, WebSeeds, piece picking, verification and storage,
//! as a sans-IO state machine (str0m style).
//!
//! Bytes, events and the time go in; [`Action`]s come out of [`Engine::poll_action`]. The engine
//! owns no socket, timer, thread or random source: the caller (the browser edge, a test's
//! simulator) names connections with its own [`PeerKey`]s, passes the current time as [`Millis`]
//! since an epoch of its choosing, performs the HTTP range requests it is asked for, and calls
//! [`Engine::tick`] by [`Engine::next_timeout`].
//!
//! What each part owns:
//! - this module: the drive loop — connections, handshakes, choking, serving, request
//!   scheduling across sources, verification, eviction, timers;
//! - [`peer`](self) state per connection; the picker's piece state and ordering; the
//!   [`PieceStore`]; WebSeed URL rules ([`requests_for_range`]); ut_metadata; [`Stats`].
//!
//! Invariants:
//! - **Nothing unverified leaves the engine**: a piece is stored, announced (`have`), served
//!   to peers and readable by the app only after its SHA-1 matched.
//! - **Peer input never panics** and never grows memory without bound: wire frames are bounded
//!   by the decoder, queued upload requests by `Config::max_upload_queue`, peers by
//!   `Config::max_peers`, pieces being assembled plus stored pieces by the store's capacity.
//! - **We never send what WebTorrent punishes**: requests are 16 KiB blocks, data-channel sends
//!   are at most [`crate::wire::MAX_SEND_LEN`], fast-extension messages only when negotiated.
//! - Deterministic: the same inputs and seed give the same actions.
//!
//! Scheduling, every time something changes (see `picker` for the ordering):
//! 1. *urgent* pieces (due within `urgent_window_ms` of the playhead) go to the source expected
//!    to finish first: blocks spread greedily over the peers that have the piece by their
//!    expected completion time; if they cannot meet the deadline (or nobody has the piece) the
//!    whole piece goes to a WebSeed (with nothing buffered at the playhead, the urgent pieces
//!    after it that only the WebSeed has go in the same request: a span). Close to the deadline, a piece still in flight is requested
//!    a second time from another source (end-game for the urgent window only), and the
//!    duplicate is cancelled when the first copy lands;
//! 2. every peer's pipeline (sized from its measured rate, starting at `initial_pipeline`
//!    blocks) is filled rarest-first from the read-ahead window;
//! 3. the WebSeed takes non-urgent pieces only when no connected peer has them and (when
//!    streaming) the buffer ahead of the playhead is running short.
//!
//! ```
//! use client_core::engine::{Action, Config, Engine, Millis, PeerKey};
//! use client_core::metainfo::TorrentBuilder;
//! use client_core::PeerId;
//!
//! let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
//! let mut builder = TorrentBuilder::single_file("demo.bin", data.len() as u64, Some(16384)).unwrap();
//! builder.update(&data);
//! let torrent = builder.finish().unwrap();
//!
//! let mut seeder = Engine::new(Config::default(), PeerId([1; 20]), torrent.clone(), 1);
//! seeder.add_local_data(&data, Millis(0)).unwrap();
//! let mut leecher = Engine::new(Config::default(), PeerId([2; 20]), torrent, 2);
//!
//! // One connection; each side names it with a key of its own choosing.
//! let (to_leecher, to_seeder) = (PeerKey(7), PeerKey(9));
//! let mut now = Millis(0);
//! seeder.peer_connected(to_leecher, now);
//! leecher.peer_connected(to_seeder, now);
//! while !leecher.is_done() && now.0 < 10_000 {
//!     while let Some(action) = seeder.poll_action() {
//!         if let Action::Send { data, .. } = action {
//!             leecher.peer_data(to_seeder, &data, now);
//!         }
//!     }
//!     while let Some(action) = leecher.poll_action() {
//!         if let Action::Send { data, .. } = action {
//!             seeder.peer_data(to_leecher, &data, now);
//!         }
//!     }
//!     now = Millis(now.0 + 10);
//!     seeder.tick(now);
//!     leecher.tick(now);
//! }
//! assert_eq!(leecher.read(0, data.len()).unwrap(), data);
//! assert_eq!(leecher.stats(now).downloaded_from_peers, data.len() as u64);
//! ```

mod bitfield;
mod metadata;
mod peer;
mod picker;
mod stats;
mod store;
mod webseed;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use serde::Serialize;
use sha1::{Digest, Sha1};

pub use bitfield::Bitfield;
pub use picker::Playhead;
pub use stats::{PeerStats, Rate, Stats};
pub use store::{MemoryStore, PieceStore, StoreFull};
pub use webseed::{requests_for_range, RangeRequest};

use metadata::{MetadataFetch, MetadataProgress};
use peer::{Outstanding, Peer};
use picker::{Picker, Received, Rng, Src};
use webseed::{Fetch, Part, WebSeed};

use crate::magnet::Magnet;
use crate::metainfo::Metainfo;
use crate::wire::{
    ExtendedHandshake, ExtensionMessage, Handshake, Message, MetadataMessage, WireError,
    WireLimits, BLOCK_SIZE, MAX_REQUEST_LEN,
};
use crate::{InfoHash, PeerId};

/// A point in time: milliseconds since an epoch the caller chooses (monotonic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Millis(pub u64);

impl Millis {
    pub fn plus(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }

    pub fn since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// The caller's name for one connection (the browser edge maps data channels to keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct PeerKey(pub u64);

/// What the engine starts from.
#[derive(Debug, Clone)]
pub enum TorrentSource {
    /// The whole torrent: ready to download or seed.
    Torrent(Box<Metainfo>),
    /// Only the info-hash (and maybe WebSeeds, used once the metadata arrives over ut_metadata).
    Magnet(Magnet),
}

impl From<Metainfo> for TorrentSource {
    fn from(m: Metainfo) -> Self {
        TorrentSource::Torrent(Box::new(m))
    }
}

impl From<Magnet> for TorrentSource {
    fn from(m: Magnet) -> Self {
        TorrentSource::Magnet(m)
    }
}

impl From<InfoHash> for TorrentSource {
    fn from(h: InfoHash) -> Self {
        TorrentSource::Magnet(Magnet::new(h))
    }
}

/// Tunables. Times in milliseconds, rates in bytes per second.
#[derive(Debug, Clone)]
pub struct Config {
    /// Connections beyond this are closed at once.
    pub max_peers: usize,
    /// Peers we upload to at a time (one of them rotates, optimistically).
    pub upload_slots: usize,
    /// Capacity of the default [`MemoryStore`] (pieces held plus pieces being assembled).
    pub memory_budget: u64,
    /// Blocks outstanding to a peer before its rate is known (WebTorrent starts with 2).
    pub initial_pipeline: u32,
    pub min_pipeline: u32,
    pub max_pipeline: u32,
    /// The pipeline holds this much time's worth of data at the peer's measured rate.
    pub pipeline_ms: u64,
    /// Extra blocks an urgent piece may put on top of a peer's pipeline.
    pub urgent_extra_blocks: u32,
    /// `reqq` we advertise; queued upload requests per peer beyond it are rejected.
    pub max_upload_queue: u32,
    /// Rate assumed for a peer before it delivered anything.
    pub initial_peer_rate: u64,
    /// Rate assumed for a WebSeed before it delivered anything.
    pub initial_webseed_rate: u64,
    /// HTTP requests to one WebSeed at a time (WebTorrent: 4, of one piece each).
    pub webseed_max_inflight: usize,
    /// Most bytes one WebSeed request may cover: urgent pieces that follow each other and that
    /// only the WebSeed has go in one request (a span), whose body the caller hands over piece
    /// by piece as it arrives. A browser spends a few milliseconds on every request (and has six
    /// connections per host); one streamed request reaches the start-up pieces sooner.
    pub webseed_max_span_bytes: u64,
    /// Use the torrent's `url-list`.
    pub use_url_list: bool,
    /// Failed pieces a peer may be proven to have corrupted before it is banned.
    pub max_hash_strikes: u32,
    /// The caller hashes complete pieces ([`Action::HashPiece`], answered with
    /// [`Engine::piece_hashed`]) instead of the engine hashing them inline, except while a
    /// player starts up. In the browser, SubtleCrypto's SHA-1 runs off the main thread: a
    /// 60 MB download of 64 KiB pieces spent 290 ms of main-thread time in SHA-1 compiled to
    /// wasm, and 155 ms in the calls to `digest`.
    pub hash_outside: bool,
    pub handshake_timeout_ms: u64,
    /// A peer with requests outstanding that delivers nothing this long is dropped.
    pub request_timeout_ms: u64,
    /// A block outstanding this long is asked elsewhere (the peer is told `cancel`).
    pub block_timeout_ms: u64,
    pub webseed_timeout_ms: u64,
    pub keepalive_ms: u64,
    pub rechoke_ms: u64,
    /// How long an optimistic unchoke is kept.
    pub optimistic_ms: u64,
    /// Pieces due within this of now are urgent.
    pub urgent_window_ms: u64,
    /// At least this many pieces from the playhead are urgent.
    pub min_urgent_pieces: u32,
    /// Deadlines are this much before the playhead reaches a piece.
    pub deadline_margin_ms: u64,
    /// An urgent piece still in flight this close to its deadline gets a second source.
    pub endgame_ms: u64,
    /// Without a playhead, the first missing pieces should arrive within this.
    pub plain_deadline_ms: u64,
    /// When streaming, the WebSeed fills non-urgent pieces nobody has only while fewer than
    /// this many milliseconds of media are buffered ahead of the playhead.
    pub buffer_low_ms: u64,
    /// Most pieces assembled at once.
    pub max_pieces_in_progress: usize,
    /// How often the caller should call [`Engine::tick`] while transfers are running.
    pub tick_ms: u64,
    pub wire_limits: WireLimits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_peers: 50,
            upload_slots: 8,
            memory_budget: 256 << 20,
            initial_pipeline: 24,
            min_pipeline: 4,
            max_pipeline: 128,
            pipeline_ms: 1000,
            urgent_extra_blocks: 8,
            max_upload_queue: 250,
            initial_peer_rate: 256 << 10,
            initial_webseed_rate: 1 << 20,
            webseed_max_inflight: 4,
            webseed_max_span_bytes: 1 << 20,
            use_url_list: true,
            max_hash_strikes: 2,
            hash_outside: false,
            handshake_timeout_ms: 25_000,
            request_timeout_ms: 30_000,
            block_timeout_ms: 10_000,
            webseed_timeout_ms: 60_000,
            keepalive_ms: 55_000,
            rechoke_ms: 10_000,
            optimistic_ms: 30_000,
            urgent_window_ms: 3_000,
            min_urgent_pieces: 2,
            deadline_margin_ms: 300,
            endgame_ms: 700,
            plain_deadline_ms: 2_000,
            buffer_low_ms: 6_000,
            max_pieces_in_progress: 64,
            tick_ms: 100,
            wire_limits: WireLimits::default(),
        }
    }
}

/// Why the engine closes a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    TooManyPeers,
    /// The peer broke the wire protocol.
    Protocol(String),
    WrongInfoHash,
    /// The handshake carried our own peer id.
    OwnPeerId,
    /// Another connection to the same peer id exists.
    Duplicate,
    /// The peer id is banned (it sent corrupt data before).
    Banned,
    HandshakeTimeout,
    /// Requests outstanding and nothing delivered for `request_timeout_ms`.
    RequestTimeout,
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send these bytes on the connection (one data-channel message, ≤ `wire::MAX_SEND_LEN`).
    Send { peer: PeerKey, data: Vec<u8> },
    /// Close the connection; the engine has forgotten it.
    ClosePeer { peer: PeerKey, reason: CloseReason },
    /// `GET url` with `Range: bytes=start-end` (inclusive) and `Cache-Control: no-store`
    /// (§4.2). The body is the `parts` one after another (their lengths add up to the range):
    /// hand each part to [`Engine::webseed_response`] with its id as soon as its bytes are in,
    /// without waiting for the rest of the body; on failure, every part not yet handed over
    /// gets the error.
    WebSeedRequest {
        url: String,
        start: u64,
        end: u64,
        parts: Vec<WebSeedPart>,
    },
    /// This part of a request is no longer needed: skip it, and abort the request once none
    /// of its parts is needed.
    WebSeedCancel { id: u64 },
    /// With [`Config::hash_outside`]: every block of this piece is in. Hash
    /// [`Engine::hash_input`]`(index, ticket)` with SHA-1 and give the digest to
    /// [`Engine::piece_hashed`] (in any order, at any later time; a ticket whose piece was
    /// given up meanwhile is ignored). The bytes do not change until then.
    HashPiece { index: u32, ticket: u64 },
    /// A piece passed its SHA-1 check and is readable.
    PieceVerified { index: u32 },
    /// A piece failed its SHA-1 check and was discarded; these peers contributed blocks.
    PieceFailed { index: u32, peers: Vec<PeerKey> },
    /// A magnet's info dictionary arrived and verified.
    MetadataReady,
    /// Every piece has been verified at least once.
    Done,
}

/// One part of a [`Action::WebSeedRequest`]'s body: `len` bytes, answered under `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebSeedPart {
    pub id: u64,
    pub len: u64,
}

/// A WebSeed request that did not produce the bytes asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebSeedError {
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("network error: {0}")]
    Network(String),
}

/// Local data that cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalDataError {
    #[error("the torrent's metadata is not known yet")]
    NoMetadata,
    #[error("piece {0} does not exist")]
    NoSuchPiece(u32),
    #[error("data of {got} bytes, expected {expected}")]
    Length { got: u64, expected: u64 },
    #[error("piece {0} does not match its hash")]
    HashMismatch(u32),
    #[error(transparent)]
    StoreFull(#[from] StoreFull),
}

/// Below this many queued bytes, more upload blocks are read from the store into a send queue.
const UPLOAD_LOW_WATER: usize = 64 * 1024;
/// How long a new peer may take to say what it has before a plain download stops waiting for
/// it and turns to the WebSeed.
const ANNOUNCE_GRACE_MS: u64 = 2_000;
/// Cancelled bytes assumed still on the way from one peer, at most.
const MAX_CANCELLED_BYTES: u64 = 1 << 20;
/// Blocks an unmeasured peer may hold of urgent pieces, while a WebSeed can cover them.
const PROBE_BLOCKS: u32 = 2;
/// How long an idle plain download waits for the owners of unavailable pieces to fetch them
/// from the WebSeed before it fetches them itself.
const OWNER_WAIT_MS: u64 = 2_000;
/// Failed pieces whose block hashes are kept to find the corrupting peer later.
const MAX_FAILED_RECORDS: usize = 64;

/// One block of a failed piece: who sent it and its hash, compared when the piece later verifies.
#[derive(Debug, Clone)]
struct BlockRecord {
    block: u32,
    src: Src,
    peer_id: Option<PeerId>,
    hash: [u8; 20],
}

/// One torrent's engine. See the module documentation.
pub struct Engine {
    config: Config,
    our_id: PeerId,
    info_hash: InfoHash,
    meta: Option<Metainfo>,
    picker: Option<Picker>,
    metadata: MetadataFetch,
    store: Box<dyn PieceStore>,
    peers: BTreeMap<PeerKey, Peer>,
    by_peer_id: HashMap<PeerId, PeerKey>,
    banned: HashSet<PeerId>,
    strikes: HashMap<PeerId, u32>,
    failed: BTreeMap<u32, Vec<BlockRecord>>,
    webseeds: Vec<WebSeed>,
    pending_webseeds: Vec<String>,
    webseed_parts: HashMap<u64, usize>,
    next_request_id: u64,
    /// Numbers the [`Action::HashPiece`]s, so that a late digest of a piece that was given up
    /// and assembled again is not taken for the new copy's.
    next_hash_ticket: u64,
    pending_playhead: Option<(u64, u64)>,
    actions: VecDeque<Action>,
    rng: Rng,
    seed: u64,
    now: Millis,
    send_cursor: PeerKey,
    last_rechoke: Millis,
    last_interest_check: Millis,
    optimistic: Option<(PeerKey, Millis)>,
    /// Since when peers have left a plain download idle.
    idle_since: Option<Millis>,
    /// A player waits for its first frame: the WebSeed fetches urgent pieces only (see
    /// [`Engine::set_starting_up`]).
    starting_up: bool,
    /// First time the caller gave us.
    started_at: Option<Millis>,
    done: bool,
    // Counters for stats.
    from_peers: u64,
    from_webseeds: u64,
    uploaded: u64,
    wasted: u64,
    hash_failures: u32,
    down_rate: Rate,
    up_rate: Rate,
}

impl Engine {
    /// An engine with a [`MemoryStore`] of `config.memory_budget` bytes. `seed` drives every
    /// random choice (tie-breaks, optimistic unchokes).
    pub fn new(
        config: Config,
        peer_id: PeerId,
        source: impl Into<TorrentSource>,
        seed: u64,
    ) -> Self {
        let store = Box::new(MemoryStore::new(config.memory_budget));
        Self::with_store(config, peer_id, source, seed, store)
    }

    /// An engine over a store of the caller's choice; its capacity is the memory budget.
    pub fn with_store(
        config: Config,
        peer_id: PeerId,
        source: impl Into<TorrentSource>,
        seed: u64,
        store: Box<dyn PieceStore>,
    ) -> Self {
        let source = source.into();
        let info_hash = match &source {
            TorrentSource::Torrent(m) => m.info_hash,
            TorrentSource::Magnet(m) => m.info_hash,
        };
        let mut engine = Self {
            config,
            our_id: peer_id,
            info_hash,
            meta: None,
            picker: None,
            metadata: MetadataFetch::new(info_hash),
            store,
            peers: BTreeMap::new(),
            by_peer_id: HashMap::new(),
            banned: HashSet::new(),
            strikes: HashMap::new(),
            failed: BTreeMap::new(),
            webseeds: Vec::new(),
            pending_webseeds: Vec::new(),
            webseed_parts: HashMap::new(),
            next_request_id: 1,
            next_hash_ticket: 1,
            pending_playhead: None,
            actions: VecDeque::new(),
            rng: Rng::new(seed ^ 0x5348_4f41_4c00_0000),
            seed,
            now: Millis(0),
            send_cursor: PeerKey(0),
            last_rechoke: Millis(0),
            last_interest_check: Millis(0),
            optimistic: None,
            idle_since: None,
            starting_up: false,
            started_at: None,
            done: false,
            from_peers: 0,
            from_webseeds: 0,
            uploaded: 0,
            wasted: 0,
            hash_failures: 0,
            down_rate: Rate::new(),
            up_rate: Rate::new(),
        };
        match source {
            TorrentSource::Torrent(meta) => engine.install_metadata(*meta),
            TorrentSource::Magnet(magnet) => engine.pending_webseeds = magnet.web_seeds,
        }
        engine
    }

    // ---------------------------------------------------------------------------------------
    // Queries
    // ---------------------------------------------------------------------------------------

    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    pub fn peer_id(&self) -> PeerId {
        self.our_id
    }

    pub fn metainfo(&self) -> Option<&Metainfo> {
        self.meta.as_ref()
    }

    /// Every piece verified at least once.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether a verified piece is held right now.
    pub fn has_piece(&self, index: u32) -> bool {
        self.picker.as_ref().is_some_and(|p| p.have.get(index))
    }

    /// Whether a piece is being assembled right now (blocks requested or arriving): for piece
    /// maps that show downloads in flight.
    pub fn is_downloading(&self, index: u32) -> bool {
        self.picker
            .as_ref()
            .is_some_and(|p| p.partials.contains_key(&index))
    }

    /// A verified piece.
    pub fn read_piece(&self, index: u32) -> Option<&[u8]> {
        if !self.has_piece(index) {
            return None;
        }
        self.store.get(index)
    }

    /// `len` bytes of the torrent from `offset`, if every piece they span is held.
    pub fn read(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        let bytes = self.read_available(offset, len);
        (bytes.len() == len).then_some(bytes)
    }

    /// Up to `len` bytes of the torrent from `offset`: as far as the pieces held go without a
    /// gap (empty when the first is missing).
    pub fn read_available(&self, offset: u64, len: usize) -> Vec<u8> {
        let Some(picker) = self.picker.as_ref() else {
            return Vec::new();
        };
        let end = offset.saturating_add(len as u64).min(picker.total_length);
        let mut out = Vec::new();
        let mut at = offset;
        while at < end {
            let piece = picker.piece_at(at);
            let Some(data) = self.read_piece(piece) else {
                break;
            };
            let from = (at - picker.piece_offset(piece)) as usize;
            let take = ((end - at) as usize).min(data.len() - from);
            out.extend_from_slice(&data[from..from + take]);
            at += take as u64;
        }
        out
    }

    /// Peer ids banned for sending corrupt data.
    pub fn banned_peers(&self) -> Vec<PeerId> {
        let mut ids: Vec<PeerId> = self.banned.iter().copied().collect();
        ids.sort();
        ids
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Bytes of verified pieces held.
    pub fn stored_bytes(&self) -> u64 {
        self.store.used_bytes()
    }

    /// Bytes of pieces being assembled.
    pub fn in_progress_bytes(&self) -> u64 {
        self.picker.as_ref().map_or(0, |p| p.partial_bytes)
    }

    /// Peers with a request for this block outstanding.
    fn peers_requesting(&self, piece: u32, block: u32) -> Vec<PeerKey> {
        self.peers
            .values()
            .filter(|p| {
                p.requests
                    .iter()
                    .any(|r| r.piece == piece && r.block == block)
            })
            .map(|p| p.key)
            .collect()
    }

    /// When [`Engine::tick`] should be called next.
    pub fn next_timeout(&self) -> Millis {
        let busy = !self.peers.is_empty()
            || self.webseeds.iter().any(|w| !w.fetches.is_empty())
            || self.picker.as_ref().is_some_and(|p| !p.partials.is_empty());
        self.now.plus(if busy { self.config.tick_ms } else { 1000 })
    }

    /// A snapshot for the UI.
    pub fn stats(&self, now: Millis) -> Stats {
        let picker = self.picker.as_ref();
        let peers = self
            .peers
            .values()
            .map(|p| PeerStats {
                key: p.key.0,
                peer_id: p.peer_id.map(|id| id.to_hex()),
                client: p.ext.as_ref().and_then(|e| e.v.clone()),
                down_rate: p.down.per_sec(now),
                up_rate: p.up.per_sec(now),
                downloaded: p.down.total(),
                uploaded: p.up.total(),
                pieces: p.has.as_ref().map_or(0, Bitfield::count),
                choking_us: p.peer_choking,
                interested_in_us: p.peer_interested,
                outstanding_requests: p.requests.len() as u32,
                hash_strikes: p
                    .peer_id
                    .and_then(|id| self.strikes.get(&id).copied())
                    .unwrap_or(0),
            })
            .collect();
        Stats {
            info_hash: self.info_hash.to_hex(),
            has_metadata: self.meta.is_some(),
            pieces_total: picker.map_or(0, |p| p.piece_count),
            pieces_held: picker.map_or(0, |p| p.have.count()),
            pieces_verified: picker.map_or(0, |p| p.verified.count()),
            bytes_total: picker.map_or(0, |p| p.total_length),
            bytes_stored: self.store.used_bytes(),
            bytes_in_progress: picker.map_or(0, |p| p.partial_bytes),
            memory_budget: self.store.capacity(),
            downloaded_from_peers: self.from_peers,
            downloaded_from_webseeds: self.from_webseeds,
            uploaded: self.uploaded,
            wasted: self.wasted,
            hash_failures: self.hash_failures,
            down_rate: self.down_rate.per_sec(now),
            up_rate: self.up_rate.per_sec(now),
            webseed_rate: self.webseeds.iter().map(|w| w.rate.per_sec(now)).sum(),
            peers_connected: self.peers.len() as u32,
            peers_banned: self.banned.len() as u32,
            webseeds: self.webseeds.len() as u32,
            done: self.done,
            peers,
        }
    }

    // ---------------------------------------------------------------------------------------
    // Inputs
    // ---------------------------------------------------------------------------------------

    /// The next thing to do, `None` when there is nothing for now.
    pub fn poll_action(&mut self) -> Option<Action> {
        if let Some(action) = self.actions.pop_front() {
            return Some(action);
        }
        // Round-robin over connections so that one large upload does not delay the others.
        let keys: Vec<PeerKey> = self
            .peers
            .range(self.send_cursor..)
            .chain(self.peers.range(..self.send_cursor))
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            self.pump_uploads(key);
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            if !peer.writable {
                continue;
            }
            if let Some(data) = peer.send.pop() {
                self.send_cursor = PeerKey(key.0.saturating_add(1));
                return Some(Action::Send { peer: key, data });
            }
        }
        None
    }

    /// A connection we initiated (our WebRTC offer) opened: our handshake is sent at once
    /// (§2.3).
    pub fn peer_connected(&mut self, key: PeerKey, now: Millis) {
        self.connect(key, now, true);
    }

    /// A connection the far side initiated opened (we answered its WebRTC offer). Our
    /// handshake waits for theirs, as BEP 3 allows the recipient to: a message the answerer
    /// sends the moment its data channel opens can be lost before the offerer's channel is
    /// open (seen with Chromium offerers), while anything sent after the offerer spoke arrives.
    pub fn peer_accepted(&mut self, key: PeerKey, now: Millis) {
        self.connect(key, now, false);
    }

    fn connect(&mut self, key: PeerKey, now: Millis, handshake_now: bool) {
        self.now = now;
        self.started_at.get_or_insert(now);
        if self.peers.contains_key(&key) {
            return;
        }
        if self.peers.len() >= self.config.max_peers {
            self.actions.push_back(Action::ClosePeer {
                peer: key,
                reason: CloseReason::TooManyPeers,
            });
            return;
        }
        let mut peer = Peer::new(key, now, self.config.wire_limits);
        if handshake_now {
            peer.send
                .push_handshake(&Handshake::shoal(self.info_hash, self.our_id));
            peer.handshake_sent = true;
        }
        self.peers.insert(key, peer);
    }

    /// The connection closed on its own (the engine did not ask for it).
    pub fn peer_closed(&mut self, key: PeerKey, now: Millis) {
        self.now = now;
        self.drop_peer(key, None);
        self.schedule(now);
    }

    /// Backpressure from the edge: while `false`, nothing is sent to this peer and no upload
    /// blocks are read for it (the data channel's `bufferedAmount` is high).
    pub fn set_peer_writable(&mut self, key: PeerKey, writable: bool) {
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.writable = writable;
        }
    }

    /// Bytes received on a connection, in whatever chunks the data channel delivered.
    pub fn peer_data(&mut self, key: PeerKey, data: &[u8], now: Millis) {
        self.now = now;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.decoder.feed(data);
        if peer.handshake.is_none() {
            match peer.decoder.next_handshake() {
                Ok(None) => return,
                Ok(Some(handshake)) => {
                    if !self.on_handshake(key, handshake, now) {
                        return;
                    }
                }
                Err(err) => {
                    self.close(key, CloseReason::Protocol(err.to_string()));
                    return;
                }
            }
        }
        let mut handled = false;
        loop {
            let Some(peer) = self.peers.get_mut(&key) else {
                return;
            };
            match peer.decoder.next_message() {
                Ok(Some(message)) => {
                    // Keep-alives and the like change nothing the scheduler looks at.
                    handled |= !matches!(message, Message::KeepAlive | Message::Cancel { .. });
                    self.on_message(key, message, now);
                }
                Ok(None) => break,
                Err(err) if err.is_recoverable() && !fatal_policy_error(&err) => {
                    tracing::debug!(peer = key.0, %err, "ignoring a malformed message");
                }
                Err(err) => {
                    self.close(key, CloseReason::Protocol(err.to_string()));
                    return;
                }
            }
        }
        if handled {
            self.schedule(now);
        }
    }

    /// Adds a WebSeed (BEP 19). Before the metadata is known it is kept for later (§4.1).
    pub fn add_webseed(&mut self, url: &str) {
        let known = self.webseeds.iter().any(|w| w.url == url)
            || self.pending_webseeds.iter().any(|u| u == url);
        if known || !(url.starts_with("http://") || url.starts_with("https://")) {
            return;
        }
        if self.meta.is_some() {
            self.webseeds.push(WebSeed::new(url.to_owned()));
        } else {
            self.pending_webseeds.push(url.to_owned());
        }
    }

    /// The result of a [`Action::WebSeedRequest`]: the body of a 206 response, or an error. A
    /// body of the wrong length counts as an error (a server ignoring `Range` would otherwise
    /// feed garbage into the piece, §4.2).
    pub fn webseed_response(
        &mut self,
        id: u64,
        result: Result<Vec<u8>, WebSeedError>,
        now: Millis,
    ) {
        self.now = now;
        let Some(seed_index) = self.webseed_parts.remove(&id) else {
            return; // cancelled or unknown
        };
        let Some(seed) = self.webseeds.get_mut(seed_index) else {
            return;
        };
        let Some(fetch_index) = seed
            .fetches
            .iter()
            .position(|f| f.parts.iter().any(|p| p.id == id))
        else {
            return;
        };
        let fetch = &mut seed.fetches[fetch_index];
        let ok = match result {
            Ok(body) => {
                let part = fetch.parts.iter_mut().find(|p| p.id == id);
                match part {
                    Some(part) if body.len() as u64 == part.len => {
                        seed.rate.record(part.len, now);
                        part.body = Some(body);
                        true
                    }
                    _ => false,
                }
            }
            Err(err) => {
                tracing::debug!(url = %seed.url, %err, "webseed request failed");
                false
            }
        };
        if !ok {
            let fetch = seed.fetches.swap_remove(fetch_index);
            seed.consecutive_errors += 1;
            let backoff = (1000u64 << seed.consecutive_errors.min(5)).min(30_000);
            seed.backoff_until = now.plus(backoff);
            self.end_fetch(fetch);
            self.schedule(now);
            return;
        }
        if !fetch.is_complete() {
            return;
        }
        let mut fetch = seed.fetches.swap_remove(fetch_index);
        seed.consecutive_errors = 0;
        // Latency is the wait for a request's first bytes: later pieces of a span also waited
        // for the pieces before them.
        if fetch.ahead == 0 {
            seed.latency_ms = (seed.latency_ms * 3 + now.since(fetch.sent_at)) / 4;
        }
        let body = fetch.assemble();
        self.end_fetch(fetch.clone());
        self.deliver_webseed(seed_index, fetch.piece, fetch.begin, &body, now);
        self.schedule(now);
    }

    /// Timers: timeouts, keep-alives, rechoking, and scheduling that depends on time.
    pub fn tick(&mut self, now: Millis) {
        self.now = now;
        self.started_at.get_or_insert(now);
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.peer_timers(key, now);
        }
        if self.meta.is_none() {
            for peer in self.metadata.expire(now) {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.metadata_useless = true;
                }
            }
        }
        self.webseed_timeouts(now);
        if now.since(self.last_rechoke) >= self.config.rechoke_ms {
            self.last_rechoke = now;
            self.rechoke(now);
        }
        if now.since(self.last_interest_check) >= 1000 {
            self.last_interest_check = now;
            let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
            for key in keys {
                self.update_interest(key);
            }
        }
        self.schedule(now);
    }

    /// Whether a player is waiting for its first frame. Meanwhile the WebSeed is asked for the
    /// urgent pieces only: every other request costs the page's main thread and the browser's
    /// network process the time that the first frame is waiting for (measured in Chromium:
    /// background fetches at start-up stretched its media pipeline's set-up). The caller says
    /// `false` once the frame is shown, or the player gives up.
    pub fn set_starting_up(&mut self, starting_up: bool) {
        self.starting_up = starting_up;
    }

    pub fn starting_up(&self) -> bool {
        self.starting_up
    }

    /// Whether any WebSeed serves this torrent (else peers are its only source).
    pub fn has_webseeds(&self) -> bool {
        !self.webseeds.is_empty()
    }

    /// Where playback is: byte `offset` of the torrent, advancing at `bytes_per_sec` (0 when
    /// paused). Call it whenever the player's position or rate changes (a few times a second
    /// is plenty). Pieces behind the new window are abandoned and their requests cancelled.
    pub fn set_playhead(&mut self, offset: u64, bytes_per_sec: u64, now: Millis) {
        self.now = now;
        let Some(picker) = self.picker.as_mut() else {
            self.pending_playhead = Some((offset, bytes_per_sec));
            return;
        };
        let old_window = picker.window();
        picker.playhead = Some(Playhead {
            offset: offset.min(picker.total_length),
            bytes_per_sec,
            at: now,
        });
        if picker.window() != old_window {
            self.retarget(now);
        }
        self.schedule(now);
    }

    /// A seek: the playhead jumps to `offset` at once, requests no longer needed are cancelled,
    /// and the piece under the new playhead is scheduled immediately.
    pub fn seek(&mut self, offset: u64, now: Millis) {
        let rate = self
            .picker
            .as_ref()
            .and_then(|p| p.playhead)
            .map_or(0, |ph| ph.bytes_per_sec);
        self.set_playhead(offset, rate, now);
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.update_interest(key);
        }
        self.schedule(now);
    }

    /// Back to a plain download (every piece wanted, nothing evicted).
    pub fn clear_playhead(&mut self, now: Millis) {
        self.pending_playhead = None;
        if let Some(picker) = self.picker.as_mut() {
            picker.playhead = None;
        }
        self.schedule(now);
    }

    /// Adds a piece we already have (seeding). It is verified like any other.
    pub fn add_local_piece(
        &mut self,
        index: u32,
        data: Vec<u8>,
        now: Millis,
    ) -> Result<(), LocalDataError> {
        self.now = now;
        let picker = self.picker.as_ref().ok_or(LocalDataError::NoMetadata)?;
        if index >= picker.piece_count {
            return Err(LocalDataError::NoSuchPiece(index));
        }
        let expected = u64::from(picker.piece_size(index));
        if data.len() as u64 != expected {
            return Err(LocalDataError::Length {
                got: data.len() as u64,
                expected,
            });
        }
        if !self.hash_ok(index, &data) {
            return Err(LocalDataError::HashMismatch(index));
        }
        if self.has_piece(index) {
            return Ok(());
        }
        self.abandon_piece(index);
        if !self.make_room(expected) {
            return Err(StoreFull {
                index,
                len: expected,
            }
            .into());
        }
        self.store_verified(index, data)?;
        Ok(())
    }

    /// Adds the whole torrent's content (the concatenation of its files), piece by piece.
    pub fn add_local_data(&mut self, data: &[u8], now: Millis) -> Result<(), LocalDataError> {
        let picker = self.picker.as_ref().ok_or(LocalDataError::NoMetadata)?;
        if data.len() as u64 != picker.total_length {
            return Err(LocalDataError::Length {
                got: data.len() as u64,
                expected: picker.total_length,
            });
        }
        let ranges: Vec<(u32, usize, usize)> = (0..picker.piece_count)
            .map(|i| {
                let start = picker.piece_offset(i) as usize;
                (i, start, start + picker.piece_size(i) as usize)
            })
            .collect();
        for (index, start, end) in ranges {
            self.add_local_piece(index, data[start..end].to_vec(), now)?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Connections
    // ---------------------------------------------------------------------------------------

    fn close(&mut self, key: PeerKey, reason: CloseReason) {
        self.drop_peer(key, Some(reason));
    }

    /// Forgets a connection: its requests go back to the picker, its pieces leave the
    /// availability counts.
    fn drop_peer(&mut self, key: PeerKey, reason: Option<CloseReason>) {
        let Some(peer) = self.peers.remove(&key) else {
            return;
        };
        if let Some(id) = peer.peer_id {
            if self.by_peer_id.get(&id) == Some(&key) {
                self.by_peer_id.remove(&id);
            }
        }
        if let Some(picker) = self.picker.as_mut() {
            for r in &peer.requests {
                release_block(picker, r.piece, r.block);
            }
            if let Some(has) = &peer.has {
                for piece in has.ones() {
                    let a = &mut picker.availability[piece as usize];
                    *a = a.saturating_sub(1);
                }
            }
        }
        self.metadata.release_peer(key);
        if self.optimistic.is_some_and(|(k, _)| k == key) {
            self.optimistic = None;
        }
        if let Some(reason) = reason {
            tracing::debug!(peer = key.0, ?reason, "closing peer");
            self.actions
                .push_back(Action::ClosePeer { peer: key, reason });
        }
    }

    fn send(&mut self, key: PeerKey, message: &Message) {
        if let Some(peer) = self.peers.get_mut(&key) {
            if message.is_fast_extension() && !peer.fast {
                return;
            }
            // Only requests can be refused, and we never build one above MAX_REQUEST_LEN.
            let _ = peer.send.push(message);
            peer.last_sent = self.now;
        }
    }

    /// Checks the peer's handshake and sends what follows ours. Returns false if it was closed.
    fn on_handshake(&mut self, key: PeerKey, theirs: Handshake, now: Millis) -> bool {
        let reason = if theirs.info_hash != self.info_hash {
            Some(CloseReason::WrongInfoHash)
        } else if theirs.peer_id == self.our_id {
            Some(CloseReason::OwnPeerId)
        } else if self.banned.contains(&theirs.peer_id) {
            Some(CloseReason::Banned)
        } else if self
            .by_peer_id
            .get(&theirs.peer_id)
            .is_some_and(|&k| k != key && self.peers.contains_key(&k))
        {
            Some(CloseReason::Duplicate)
        } else {
            None
        };
        if let Some(reason) = reason {
            self.close(key, reason);
            return false;
        }
        let ours = Handshake::shoal(self.info_hash, self.our_id);
        let fast = ours.fast_negotiated_with(&theirs);
        let extensions = ours.extension_protocol_negotiated_with(&theirs);
        let piece_count = self.picker.as_ref().map(|p| p.piece_count);
        let Some(peer) = self.peers.get_mut(&key) else {
            return false;
        };
        if !peer.handshake_sent {
            peer.send.push_handshake(&ours);
            peer.handshake_sent = true;
        }
        peer.handshake = Some(theirs);
        peer.peer_id = Some(theirs.peer_id);
        peer.fast = fast;
        peer.extensions = extensions;
        peer.decoder.set_fast_negotiated(fast);
        peer.last_progress = now;
        if let Some(count) = piece_count {
            peer.has = Some(Bitfield::new(count));
        }
        self.by_peer_id.insert(theirs.peer_id, key);
        if extensions {
            let ext = ExtendedHandshake::shoal(
                self.meta.as_ref().map(|m| m.raw_info.len() as u64),
                self.config.max_upload_queue,
            );
            self.send(key, &ext.to_message());
        }
        self.send_availability(key);
        true
    }

    /// Bitfield / have-all / have-none after the handshakes (§2.5).
    fn send_availability(&mut self, key: PeerKey) {
        let message = match self.picker.as_ref() {
            Some(picker) if picker.have.is_full() => {
                let fast = self.peers.get(&key).is_some_and(|p| p.fast);
                if fast {
                    Message::HaveAll
                } else {
                    Message::Bitfield(picker.have.as_bytes().to_vec())
                }
            }
            Some(picker) if picker.have.count() > 0 => {
                Message::Bitfield(picker.have.as_bytes().to_vec())
            }
            // Nothing to offer (or no metadata yet): have-none if we can say it.
            _ => Message::HaveNone,
        };
        self.send(key, &message);
    }

    fn on_message(&mut self, key: PeerKey, message: Message, now: Millis) {
        match message {
            Message::KeepAlive | Message::Port(_) | Message::Suggest(_) => {}
            Message::AllowedFast(_) | Message::Unknown { .. } => {}
            Message::Choke => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.peer_choking = true;
                    // Without the fast extension a choke drops our requests; with it the peer
                    // should reject them, but WebTorrent may just ignore them: re-ask elsewhere.
                    let requests = std::mem::take(&mut peer.requests);
                    if let Some(picker) = self.picker.as_mut() {
                        for r in requests {
                            release_block(picker, r.piece, r.block);
                        }
                    }
                }
            }
            Message::Unchoke => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.peer_choking = false;
                    peer.last_progress = now;
                }
            }
            Message::Interested => {
                let unchoked = self.busy_slots();
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.peer_interested = true;
                    if peer.am_choking && unchoked < self.config.upload_slots {
                        self.unchoke(key, now);
                    }
                }
            }
            Message::NotInterested => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.peer_interested = false;
                }
                // Its slot is free for someone who wants something.
                self.choke(key);
            }
            Message::Have(piece) => self.on_have(key, piece),
            Message::Bitfield(bits) => self.on_bitfield(key, Some(bits), false),
            Message::HaveAll => self.on_bitfield(key, None, true),
            Message::HaveNone => self.on_bitfield(key, None, false),
            Message::Request {
                index,
                begin,
                length,
            } => self.on_request(key, index, begin, length),
            Message::Cancel {
                index,
                begin,
                length,
            } => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.upload.retain(|&r| r != (index, begin, length));
                }
            }
            Message::Reject { index, begin, .. } => {
                if let (Some(peer), Some(picker)) = (self.peers.get_mut(&key), self.picker.as_mut())
                {
                    let block = begin / BLOCK_SIZE;
                    if peer.remove_request(index, block) {
                        release_block(picker, index, block);
                        peer.remember_rejected(index);
                    }
                }
            }
            Message::Piece { index, begin, data } => self.on_block(key, index, begin, data, now),
            Message::Extended { id, payload } => match ExtensionMessage::decode(id, &payload) {
                Ok(ext) => self.on_extension(key, ext, now),
                Err(err) => tracing::debug!(peer = key.0, %err, "bad extension message"),
            },
        }
    }

    fn on_have(&mut self, key: PeerKey, piece: u32) {
        let Some(count) = self.picker.as_ref().map(|p| p.piece_count) else {
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.announced = true;
                peer.remember_early_have(piece);
            }
            return;
        };
        if piece >= count {
            self.close(key, CloseReason::Protocol(format!("have {piece}")));
            return;
        }
        let (Some(picker), Some(peer)) = (self.picker.as_mut(), self.peers.get_mut(&key)) else {
            return;
        };
        peer.announced = true;
        let has = peer.has.get_or_insert_with(|| Bitfield::new(count));
        if has.set(piece) {
            picker.availability[piece as usize] += 1;
            peer.rejected.remove(&piece);
        }
        let interesting = peer.is_active() && !peer.am_interested && picker.wanted(piece);
        // A piece we fetch from the WebSeed only because nobody had it: now a peer has it, so
        // abort the fetch (the pod's bandwidth is the scarce one) unless it is due soon.
        let fetching = picker
            .partials
            .get(&piece)
            .is_some_and(|p| p.webseed_fetches > 0 && !p.duplicated);
        let due_soon = picker
            .deadline(piece, 0)
            .is_some_and(|d| d.0 <= self.now.0 + self.config.urgent_window_ms);
        if interesting {
            peer.am_interested = true;
            self.send(key, &Message::Interested);
        }
        if fetching && !due_soon {
            self.cancel_fetches(piece);
        }
    }

    /// A bitfield (`bits`), have-all (`all`) or have-none (neither) — before or after metadata.
    fn on_bitfield(&mut self, key: PeerKey, bits: Option<Vec<u8>>, all: bool) {
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.announced = true;
        }
        let Some(picker) = self.picker.as_ref() else {
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.early.have_all = all;
                peer.early.bitfield = bits;
                if !all {
                    peer.early.haves.clear();
                }
            }
            return;
        };
        let count = picker.piece_count;
        let field = match (bits, all) {
            (_, true) => Bitfield::full(count),
            (Some(bits), false) => match Bitfield::from_bytes(&bits, count) {
                Some(field) => field,
                None => {
                    let reason = format!("bitfield of {} bytes", bits.len());
                    self.close(key, CloseReason::Protocol(reason));
                    return;
                }
            },
            (None, false) => Bitfield::new(count),
        };
        self.set_peer_has(key, field);
        self.update_interest(key);
    }

    /// Replaces what a peer has, keeping availability counts in step.
    fn set_peer_has(&mut self, key: PeerKey, field: Bitfield) {
        let (Some(picker), Some(peer)) = (self.picker.as_mut(), self.peers.get_mut(&key)) else {
            return;
        };
        if let Some(old) = &peer.has {
            for piece in old.ones() {
                let a = &mut picker.availability[piece as usize];
                *a = a.saturating_sub(1);
            }
        }
        for piece in field.ones() {
            picker.availability[piece as usize] += 1;
        }
        peer.has = Some(field);
    }

    fn on_request(&mut self, key: PeerKey, index: u32, begin: u32, length: u32) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        let valid = self.picker.as_ref().is_some_and(|p| {
            index < p.piece_count
                && length > 0
                && length <= MAX_REQUEST_LEN
                && u64::from(begin) + u64::from(length) <= u64::from(p.piece_size(index))
        });
        let serve = valid
            && !peer.am_choking
            && self.has_piece(index)
            && peer.upload.len() < self.config.max_upload_queue as usize;
        if serve {
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.upload.push_back((index, begin, length));
            }
        } else {
            // WebTorrent stays silent here; with the fast extension we can say no.
            self.send(
                key,
                &Message::Reject {
                    index,
                    begin,
                    length,
                },
            );
        }
    }

    /// Moves queued upload requests into the send queue while it is short.
    fn pump_uploads(&mut self, key: PeerKey) {
        let now = self.now;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        while peer.writable && !peer.am_choking && peer.send.queued_bytes() < UPLOAD_LOW_WATER {
            let Some((index, begin, length)) = peer.upload.pop_front() else {
                break;
            };
            let held = self.picker.as_ref().is_some_and(|p| p.have.get(index));
            let block = self
                .store
                .get(index)
                .filter(|_| held)
                .and_then(|piece| piece.get(begin as usize..(begin + length) as usize));
            let message = match block {
                Some(data) => {
                    self.uploaded += u64::from(length);
                    peer.up.record(u64::from(length), now);
                    self.up_rate.record(u64::from(length), now);
                    Message::Piece {
                        index,
                        begin,
                        data: data.to_vec(),
                    }
                }
                // Evicted since it was queued.
                None if peer.fast => Message::Reject {
                    index,
                    begin,
                    length,
                },
                None => continue,
            };
            let _ = peer.send.push(&message);
            peer.last_sent = now;
        }
    }

    /// Upload slots in use: unchoked peers that still want something.
    fn busy_slots(&self) -> usize {
        self.peers
            .values()
            .filter(|p| !p.am_choking && p.peer_interested)
            .count()
    }

    fn unchoke(&mut self, key: PeerKey, now: Millis) {
        if let Some(peer) = self.peers.get_mut(&key) {
            if peer.am_choking {
                peer.am_choking = false;
                peer.unchoked_at = now;
                self.send(key, &Message::Unchoke);
            }
        }
    }

    fn choke(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.am_choking {
            return;
        }
        peer.am_choking = true;
        let queued: Vec<(u32, u32, u32)> = peer.upload.drain(..).collect();
        self.send(key, &Message::Choke);
        for (index, begin, length) in queued {
            self.send(
                key,
                &Message::Reject {
                    index,
                    begin,
                    length,
                },
            );
        }
    }

    /// Every `rechoke_ms`: the interested peers that give us the most (then take the most) keep
    /// their slots, one more rotates optimistically every `optimistic_ms`.
    fn rechoke(&mut self, now: Millis) {
        let mut interested: Vec<(u64, u64, PeerKey)> = self
            .peers
            .values()
            .filter(|p| p.is_active() && p.peer_interested)
            .map(|p| (p.down.per_sec(now), p.up.per_sec(now), p.key))
            .collect();
        interested.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        let regular = self.config.upload_slots.saturating_sub(1).max(1);
        let mut keep: BTreeSet<PeerKey> = interested.iter().take(regular).map(|e| e.2).collect();
        let rest: Vec<PeerKey> = interested.iter().skip(regular).map(|e| e.2).collect();
        let current = self
            .optimistic
            .filter(|(k, since)| rest.contains(k) && now.since(*since) < self.config.optimistic_ms);
        self.optimistic = match current {
            Some(o) => Some(o),
            None if !rest.is_empty() => Some((rest[self.rng.below(rest.len())], now)),
            None => None,
        };
        if let Some((k, _)) = self.optimistic {
            keep.insert(k);
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            if keep.contains(&key) {
                self.unchoke(key, now);
            } else {
                self.choke(key);
            }
        }
    }

    /// Interested iff the peer has a piece of the window we lack.
    fn update_interest(&mut self, key: PeerKey) {
        let (Some(picker), Some(peer)) = (self.picker.as_ref(), self.peers.get_mut(&key)) else {
            return;
        };
        if !peer.is_active() {
            return;
        }
        let want = peer
            .has
            .as_ref()
            .is_some_and(|has| picker.window().any(|p| has.get(p) && !picker.have.get(p)));
        if want != peer.am_interested {
            peer.am_interested = want;
            let message = if want {
                Message::Interested
            } else {
                Message::NotInterested
            };
            self.send(key, &message);
        }
    }

    fn peer_timers(&mut self, key: PeerKey, now: Millis) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if !peer.is_active() {
            if now.since(peer.connected_at) > self.config.handshake_timeout_ms {
                self.close(key, CloseReason::HandshakeTimeout);
            }
            return;
        }
        if !peer.requests.is_empty()
            && now.since(peer.last_progress) > self.config.request_timeout_ms
        {
            self.close(key, CloseReason::RequestTimeout);
            return;
        }
        // Hot-swap: the oldest block waiting too long is asked elsewhere.
        let late: Vec<Outstanding> = peer
            .requests
            .iter()
            .filter(|r| now.since(r.sent_at) > self.config.block_timeout_ms)
            .copied()
            .collect();
        for r in late {
            self.cancel_request(key, r.piece, r.block);
        }
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if now.since(peer.last_sent) >= self.config.keepalive_ms {
            self.send(key, &Message::KeepAlive);
        }
    }

    /// Withdraws one of our requests from a peer (sends `cancel`).
    fn cancel_request(&mut self, key: PeerKey, piece: u32, block: u32) {
        let (Some(peer), Some(picker)) = (self.peers.get_mut(&key), self.picker.as_mut()) else {
            return;
        };
        if !peer.remove_request(piece, block) {
            return;
        }
        release_block(picker, piece, block);
        let length = picker.block_len(piece, block);
        // The peer may have sent it already; until it arrives it delays what follows.
        peer.cancelled_bytes = (peer.cancelled_bytes + u64::from(length)).min(MAX_CANCELLED_BYTES);
        self.send(
            key,
            &Message::Cancel {
                index: piece,
                begin: block * BLOCK_SIZE,
                length,
            },
        );
    }

    // ---------------------------------------------------------------------------------------
    // Extensions and metadata
    // ---------------------------------------------------------------------------------------

    fn on_extension(&mut self, key: PeerKey, ext: ExtensionMessage, now: Millis) {
        match ext {
            ExtensionMessage::Handshake(handshake) => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.ext = Some(handshake);
                }
            }
            ExtensionMessage::Metadata(MetadataMessage::Request { piece }) => {
                let Some(id) = self.peers.get(&key).and_then(Peer::ut_metadata_id) else {
                    return;
                };
                let raw = self.meta.as_ref().map(|m| m.raw_info.as_slice());
                let answer = metadata::serve(raw, piece);
                self.send(key, &answer.to_message(id));
            }
            ExtensionMessage::Metadata(MetadataMessage::Reject { piece }) => {
                self.metadata.release_piece(key, piece);
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.metadata_useless = true;
                }
            }
            ExtensionMessage::Metadata(MetadataMessage::Data {
                piece,
                total_size,
                data,
            }) => {
                if self.meta.is_some() {
                    return;
                }
                match self.metadata.on_data(key, piece, total_size, &data) {
                    MetadataProgress::Pending => {}
                    MetadataProgress::Complete(raw) => match Metainfo::from_info_bytes(raw) {
                        Ok(meta) if meta.info_hash == self.info_hash => {
                            self.install_metadata(meta);
                            self.after_metadata(now);
                        }
                        Ok(_) => {}
                        Err(err) => {
                            // The bytes hash right, so the torrent itself is unusable.
                            tracing::warn!(%err, "metadata verified but does not parse");
                        }
                    },
                    MetadataProgress::HashMismatch(peers) => {
                        for peer in peers {
                            if let Some(p) = self.peers.get_mut(&peer) {
                                p.metadata_useless = true;
                            }
                        }
                    }
                }
            }
            ExtensionMessage::DontHave(dont) => {
                let (Some(peer), Some(picker)) = (self.peers.get_mut(&key), self.picker.as_mut())
                else {
                    return;
                };
                if let Some(has) = peer.has.as_mut() {
                    if has.clear(dont.piece) {
                        let a = &mut picker.availability[dont.piece as usize];
                        *a = a.saturating_sub(1);
                    }
                }
                let gone: Vec<u32> = peer
                    .requests
                    .iter()
                    .filter(|r| r.piece == dont.piece)
                    .map(|r| r.block)
                    .collect();
                for block in gone {
                    self.cancel_request(key, dont.piece, block);
                }
            }
            ExtensionMessage::Unknown { .. } => {}
        }
    }

    fn install_metadata(&mut self, meta: Metainfo) {
        let mut picker = Picker::new(&meta.info, self.store.capacity(), self.seed);
        if let Some((offset, rate)) = self.pending_playhead.take() {
            picker.playhead = Some(Playhead {
                offset: offset.min(picker.total_length),
                bytes_per_sec: rate,
                at: self.now,
            });
        }
        self.picker = Some(picker);
        let mut urls = std::mem::take(&mut self.pending_webseeds);
        if self.config.use_url_list {
            urls.extend(meta.url_list.iter().cloned());
        }
        self.meta = Some(meta);
        for url in urls {
            self.add_webseed(&url);
        }
    }

    /// The magnet's metadata just arrived: apply what peers announced meanwhile, re-announce
    /// our extended handshake with `metadata_size` so we can serve it too.
    fn after_metadata(&mut self, now: Millis) {
        self.actions.push_back(Action::MetadataReady);
        let count = self.picker.as_ref().map_or(0, |p| p.piece_count);
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            if !peer.is_active() {
                continue;
            }
            let early = std::mem::take(&mut peer.early);
            let mut field = if early.have_all {
                Bitfield::full(count)
            } else if let Some(bits) = &early.bitfield {
                match Bitfield::from_bytes(bits, count) {
                    Some(field) => field,
                    None => {
                        self.close(key, CloseReason::Protocol("bitfield length".into()));
                        continue;
                    }
                }
            } else {
                Bitfield::new(count)
            };
            for piece in early.haves {
                field.set(piece);
            }
            self.set_peer_has(key, field);
            let extensions = self.peers.get(&key).is_some_and(|p| p.extensions);
            if extensions {
                let ext = ExtendedHandshake::shoal(
                    self.meta.as_ref().map(|m| m.raw_info.len() as u64),
                    self.config.max_upload_queue,
                );
                self.send(key, &ext.to_message());
            }
            self.update_interest(key);
        }
        self.schedule(now);
    }

    fn schedule_metadata(&mut self, now: Millis) {
        let candidates: Vec<(PeerKey, u64, u8)> = self
            .peers
            .values()
            .filter(|p| p.is_active() && !p.metadata_useless)
            .filter_map(|p| Some((p.key, p.metadata_size()?, p.ut_metadata_id()?)))
            .collect();
        for (key, size, id) in candidates {
            self.metadata.offer_size(size);
            for piece in self.metadata.requests_for(key, size, now) {
                self.send(key, &MetadataMessage::Request { piece }.to_message(id));
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Receiving and verifying pieces
    // ---------------------------------------------------------------------------------------

    fn on_block(&mut self, key: PeerKey, index: u32, begin: u32, data: Vec<u8>, now: Millis) {
        let len = data.len() as u64;
        let (Some(picker), Some(peer)) = (self.picker.as_mut(), self.peers.get_mut(&key)) else {
            self.wasted += len;
            return;
        };
        peer.down.record(len, now);
        peer.last_rate = peer.down.per_sec(now).max(1);
        self.down_rate.record(len, now);
        let block = begin / BLOCK_SIZE;
        let well_formed = index < picker.piece_count
            && begin % BLOCK_SIZE == 0
            && data.len() as u32 == picker.block_len(index, block)
            && !data.is_empty();
        if !well_formed {
            self.wasted += len;
            return;
        }
        if peer.remove_request(index, block) {
            release_block(picker, index, block);
            peer.last_progress = now;
        } else {
            // Probably a block we cancelled after it had been sent: it no longer delays the
            // blocks behind it.
            peer.cancelled_bytes = peer.cancelled_bytes.saturating_sub(len);
        }
        match picker.receive(index, block, &data, Src::Peer(key)) {
            Received::Unneeded => self.wasted += len,
            Received::Stored { complete } => {
                self.from_peers += len;
                self.cancel_duplicates(index, block);
                if complete {
                    self.finish_piece(index, now);
                }
            }
        }
    }

    /// A block just arrived: withdraw the other requests for it.
    fn cancel_duplicates(&mut self, piece: u32, block: u32) {
        let outstanding = self
            .picker
            .as_ref()
            .and_then(|p| p.partials.get(&piece))
            .and_then(|p| p.blocks.get(block as usize))
            .is_some_and(|b| b.requests > 0);
        if !outstanding {
            return;
        }
        for key in self.peers_requesting(piece, block) {
            self.cancel_request(key, piece, block);
        }
    }

    fn deliver_webseed(&mut self, seed: usize, piece: u32, begin: u32, body: &[u8], now: Millis) {
        let Some(picker) = self.picker.as_mut() else {
            return;
        };
        let mut complete = false;
        let mut useful = 0u64;
        let mut fresh = Vec::new();
        for (i, chunk) in body.chunks(BLOCK_SIZE as usize).enumerate() {
            let block = begin / BLOCK_SIZE + i as u32;
            if let Received::Stored { complete: c } =
                picker.receive(piece, block, chunk, Src::WebSeed(seed))
            {
                useful += chunk.len() as u64;
                complete |= c;
                fresh.push(block);
            }
        }
        self.from_webseeds += useful;
        self.wasted += body.len() as u64 - useful;
        if let Some(ws) = self.webseeds.get_mut(seed) {
            ws.downloaded += useful;
        }
        self.down_rate.record(body.len() as u64, now);
        for block in fresh {
            self.cancel_duplicates(piece, block);
        }
        if complete {
            self.finish_piece(piece, now);
        }
    }

    fn hash_ok(&self, index: u32, data: &[u8]) -> bool {
        self.digest_ok(index, &Sha1::digest(data).into())
    }

    fn digest_ok(&self, index: u32, digest: &[u8; 20]) -> bool {
        let expected = self.meta.as_ref().and_then(|m| m.info.piece_hash(index));
        expected.is_some_and(|h| h == digest)
    }

    /// All blocks of a piece are there: verify (or have the caller hash it), then store and
    /// announce, or blame.
    fn finish_piece(&mut self, index: u32, now: Millis) {
        // Start-up pieces are hashed here: the player appends each piece as soon as it is
        // verified, and a digest from outside comes back later (measured in Chromium: the first
        // piece verified 8 ms later with SubtleCrypto, each call costing ~170 µs of the main
        // thread before its result even came back as a task of its own).
        if self.config.hash_outside && !self.starting_up {
            // The piece stays with the picker, complete (nothing of it is requested again),
            // until its digest comes back; requests still out for its blocks are withdrawn.
            self.withdraw_requests(index);
            let ticket = self.next_hash_ticket;
            self.next_hash_ticket += 1;
            let partial = self
                .picker
                .as_mut()
                .and_then(|p| p.partials.get_mut(&index));
            if let Some(partial) = partial {
                partial.hashing = Some(ticket);
                self.actions.push_back(Action::HashPiece { index, ticket });
            }
            return;
        }
        let Some(partial) = self.abandon_piece(index) else {
            return;
        };
        let ok = self.hash_ok(index, &partial.data);
        self.piece_checked(index, partial, ok, now);
    }

    /// The bytes to hash for [`Action::HashPiece`]; `None` once the ticket is stale.
    pub fn hash_input(&self, index: u32, ticket: u64) -> Option<&[u8]> {
        let partial = self.picker.as_ref()?.partials.get(&index)?;
        (partial.hashing == Some(ticket)).then_some(partial.data.as_slice())
    }

    /// The SHA-1 `digest` of [`Engine::hash_input`]`(index, ticket)`: the piece is stored and
    /// announced, or discarded and its sources blamed. A stale ticket is ignored.
    pub fn piece_hashed(&mut self, index: u32, ticket: u64, digest: [u8; 20], now: Millis) {
        self.now = now;
        if self.hash_input(index, ticket).is_none() {
            return;
        }
        let Some(partial) = self.abandon_piece(index) else {
            return;
        };
        let ok = self.digest_ok(index, &digest);
        self.piece_checked(index, partial, ok, now);
        self.schedule(now);
    }

    /// A complete piece's verdict: store and announce it, or discard it and blame.
    fn piece_checked(&mut self, index: u32, partial: picker::Partial, ok: bool, now: Millis) {
        if ok {
            self.smart_ban_check(index, &partial.data);
            if let Err(err) = self.store_verified(index, partial.data) {
                tracing::warn!(%err, "verified piece could not be stored");
            }
            return;
        }
        self.hash_failures += 1;
        self.wasted += partial.data.len() as u64;
        let contributors = partial.contributors();
        let peers: Vec<PeerKey> = contributors
            .iter()
            .filter_map(|s| match s {
                Src::Peer(k) => Some(*k),
                Src::WebSeed(_) => None,
            })
            .collect();
        tracing::debug!(index, ?contributors, "piece failed its hash");
        if contributors.len() == 1 {
            // Sole source: certainly the culprit.
            let id = self.src_peer_id(contributors[0]);
            self.strike(contributors[0], id, now);
        } else if self.failed.len() < MAX_FAILED_RECORDS {
            // Several sources: remember who sent what, judge when a good copy arrives.
            let records = partial
                .blocks
                .iter()
                .enumerate()
                .filter_map(|(b, block)| {
                    let src = block.from?;
                    let start = b * BLOCK_SIZE as usize;
                    let end = (start + BLOCK_SIZE as usize).min(partial.data.len());
                    Some(BlockRecord {
                        block: b as u32,
                        src,
                        peer_id: self.src_peer_id(src),
                        hash: Sha1::digest(&partial.data[start..end]).into(),
                    })
                })
                .collect();
            self.failed.insert(index, records);
        }
        self.actions.push_back(Action::PieceFailed { index, peers });
    }

    fn src_peer_id(&self, src: Src) -> Option<PeerId> {
        match src {
            Src::Peer(key) => self.peers.get(&key).and_then(|p| p.peer_id),
            Src::WebSeed(_) => None,
        }
    }

    /// A piece that failed before now verified: every source whose block differs from the good
    /// copy sent corrupt data.
    fn smart_ban_check(&mut self, index: u32, good: &[u8]) {
        let Some(records) = self.failed.remove(&index) else {
            return;
        };
        let mut guilty: Vec<(Src, Option<PeerId>)> = Vec::new();
        for record in records {
            let start = record.block as usize * BLOCK_SIZE as usize;
            let end = (start + BLOCK_SIZE as usize).min(good.len());
            let Some(block) = good.get(start..end) else {
                continue;
            };
            let hash: [u8; 20] = Sha1::digest(block).into();
            if hash != record.hash && !guilty.iter().any(|g| g.0 == record.src) {
                guilty.push((record.src, record.peer_id));
            }
        }
        for (src, id) in guilty {
            self.strike(src, id, self.now);
        }
    }

    /// One proven corruption. Peers reaching `max_hash_strikes` are banned (by peer id, so a
    /// reconnection is refused too) and dropped; WebSeeds are disabled.
    fn strike(&mut self, src: Src, peer_id: Option<PeerId>, _now: Millis) {
        match src {
            Src::WebSeed(i) => {
                if let Some(seed) = self.webseeds.get_mut(i) {
                    seed.strikes += 1;
                    if seed.strikes >= self.config.max_hash_strikes {
                        tracing::warn!(url = %seed.url, "disabling a corrupt webseed");
                        seed.disabled = true;
                    }
                }
            }
            Src::Peer(key) => {
                let Some(id) = peer_id else {
                    return;
                };
                let strikes = self.strikes.entry(id).or_insert(0);
                *strikes += 1;
                if *strikes >= self.config.max_hash_strikes {
                    self.banned.insert(id);
                    let key = self.by_peer_id.get(&id).copied().unwrap_or(key);
                    if self.peers.get(&key).and_then(|p| p.peer_id) == Some(id) {
                        self.close(key, CloseReason::Banned);
                    }
                }
            }
        }
    }

    /// Stores a verified piece and tells everyone.
    fn store_verified(&mut self, index: u32, data: Vec<u8>) -> Result<(), StoreFull> {
        self.store.put(index, data)?;
        let Some(picker) = self.picker.as_mut() else {
            return Ok(());
        };
        picker.have.set(index);
        picker.verified.set(index);
        let all_verified = picker.verified.is_full();
        // Not to seeds: a have tells a peer what it may request from us, and a seed requests
        // nothing. Downloading from a seed, these were a data-channel message per piece (926
        // of the 1,153 a 60 MB download sent), each an event on the seed's main thread.
        let keys: Vec<PeerKey> = self
            .peers
            .values()
            .filter(|p| p.is_active() && !p.is_seed())
            .map(|p| p.key)
            .collect();
        for key in keys {
            self.send(key, &Message::Have(index));
        }
        self.actions.push_back(Action::PieceVerified { index });
        if all_verified && !self.done {
            self.done = true;
            self.actions.push_back(Action::Done);
        }
        Ok(())
    }

    /// Removes a piece being assembled, withdrawing every request and fetch for it.
    fn abandon_piece(&mut self, index: u32) -> Option<picker::Partial> {
        self.withdraw_requests(index);
        self.picker.as_mut()?.abandon(index)
    }

    /// Cancels every peer request and WebSeed fetch still out for blocks of `index`.
    fn withdraw_requests(&mut self, index: u32) {
        let holders: Vec<(PeerKey, u32)> = self
            .peers
            .values()
            .flat_map(|p| {
                p.requests
                    .iter()
                    .filter(|r| r.piece == index)
                    .map(move |r| (p.key, r.block))
            })
            .collect();
        for (key, block) in holders {
            self.cancel_request(key, index, block);
        }
        self.cancel_fetches(index);
    }

    /// Withdraws every WebSeed fetch for `piece`; its missing blocks become free again.
    fn cancel_fetches(&mut self, piece: u32) {
        for seed in 0..self.webseeds.len() {
            while let Some(at) = self.webseeds[seed]
                .fetches
                .iter()
                .position(|f| f.piece == piece)
            {
                let fetch = self.webseeds[seed].fetches.swap_remove(at);
                self.end_fetch(fetch);
            }
        }
    }

    /// A fetch ended (complete or failed): forget its ids and release the piece's blocks.
    fn end_fetch(&mut self, fetch: Fetch) {
        for part in &fetch.parts {
            if self.webseed_parts.remove(&part.id).is_some() && part.body.is_none() {
                self.actions
                    .push_back(Action::WebSeedCancel { id: part.id });
            }
        }
        if let Some(partial) = self
            .picker
            .as_mut()
            .and_then(|p| p.partials.get_mut(&fetch.piece))
        {
            partial.webseed_fetches = partial.webseed_fetches.saturating_sub(1);
        }
    }

    fn webseed_timeouts(&mut self, now: Millis) {
        let timeout = self.config.webseed_timeout_ms;
        for seed in 0..self.webseeds.len() {
            while let Some(at) = self.webseeds[seed]
                .fetches
                .iter()
                .position(|f| now.since(f.sent_at) > timeout)
            {
                let fetch = self.webseeds[seed].fetches.swap_remove(at);
                self.webseeds[seed].consecutive_errors += 1;
                self.webseeds[seed].backoff_until = now.plus(10_000);
                self.end_fetch(fetch);
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Memory
    // ---------------------------------------------------------------------------------------

    /// Evicts played (then far-ahead) pieces until `size` more bytes fit in the budget.
    fn make_room(&mut self, size: u64) -> bool {
        let budget = self.store.capacity();
        let partial = self.picker.as_ref().map_or(0, |p| p.partial_bytes);
        if self.store.used_bytes() + partial + size <= budget {
            return true;
        }
        let order = self
            .picker
            .as_ref()
            .map(Picker::eviction_order)
            .unwrap_or_default();
        for piece in order {
            self.evict(piece);
            if self.store.used_bytes() + partial + size <= budget {
                return true;
            }
        }
        false
    }

    /// Drops a held piece and withdraws it from peers that understand lt_donthave (BEP 54).
    fn evict(&mut self, piece: u32) {
        self.store.remove(piece);
        if let Some(picker) = self.picker.as_mut() {
            picker.have.clear(piece);
        }
        let targets: Vec<(PeerKey, u8)> = self
            .peers
            .values()
            .filter(|p| p.is_active())
            .filter_map(|p| Some((p.key, p.lt_donthave_id()?)))
            .collect();
        for (key, id) in targets {
            let message = crate::wire::DontHave { piece }.to_message(id);
            self.send(key, &message);
        }
    }

    /// The window moved: abandon pieces outside it.
    fn retarget(&mut self, _now: Millis) {
        let Some(picker) = self.picker.as_ref() else {
            return;
        };
        let window = picker.window();
        let stale: Vec<u32> = picker
            .partials
            .keys()
            .copied()
            .filter(|p| !window.contains(p))
            .collect();
        for piece in stale {
            self.abandon_piece(piece);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Scheduling
    // ---------------------------------------------------------------------------------------

    fn schedule(&mut self, now: Millis) {
        if self.picker.is_none() {
            self.schedule_metadata(now);
            return;
        }
        let urgent = {
            let c = &self.config;
            let picker = self.picker.as_ref().expect("checked above");
            picker.urgent(
                now,
                c.urgent_window_ms,
                c.min_urgent_pieces,
                c.deadline_margin_ms,
                c.plain_deadline_ms,
            )
        };
        self.schedule_urgent(&urgent, now);
        let urgent: BTreeSet<u32> = urgent.iter().map(|u| u.0).collect();
        self.schedule_peers(&urgent, now);
        if !self.starting_up {
            self.schedule_webseed_background(&urgent, now);
        }
    }

    fn can_request(peer: &Peer) -> bool {
        peer.is_active() && !peer.peer_choking && peer.has.is_some()
    }

    fn target(&self, peer: &Peer, now: Millis) -> u32 {
        let c = &self.config;
        peer.pipeline_target(
            now,
            c.initial_pipeline,
            c.min_pipeline,
            c.max_pipeline,
            c.pipeline_ms,
        )
    }

    fn request_block(&mut self, key: PeerKey, piece: u32, block: u32, now: Millis) {
        let (Some(picker), Some(peer)) = (self.picker.as_mut(), self.peers.get_mut(&key)) else {
            return;
        };
        let Some(slot) = picker
            .partials
            .get_mut(&piece)
            .and_then(|p| p.blocks.get_mut(block as usize))
        else {
            return;
        };
        slot.requests = slot.requests.saturating_add(1);
        if peer.requests.is_empty() {
            peer.last_progress = now;
        }
        peer.requests.push(Outstanding {
            piece,
            block,
            sent_at: now,
        });
        let length = picker.block_len(piece, block);
        self.send(
            key,
            &Message::Request {
                index: piece,
                begin: block * BLOCK_SIZE,
                length,
            },
        );
    }

    /// Spreads `blocks` over the peers that have `piece`, each block to the peer that would
    /// deliver it first. Returns the assignment and when the last block is expected.
    fn plan_peers(
        &self,
        piece: u32,
        blocks: &[u32],
        exclude: &[PeerKey],
        measured_only: bool,
        now: Millis,
    ) -> (Vec<(PeerKey, u32)>, Option<Millis>) {
        let initial = self.config.initial_peer_rate;
        let mut candidates: Vec<(PeerKey, u64, u64, u32)> = self
            .peers
            .values()
            .filter(|p| Self::can_request(p) && p.has_piece(piece) && !exclude.contains(&p.key))
            .map(|p| {
                let limit = self.target(p, now) + self.config.urgent_extra_blocks;
                let room = limit.saturating_sub(p.requests.len() as u32);
                if measured_only && p.last_rate == 0 {
                    // Unproven: a small probe, planned pessimistically.
                    let probe = (PROBE_BLOCKS).saturating_sub(p.requests.len() as u32);
                    (
                        p.key,
                        p.outstanding_bytes(),
                        (initial / 4).max(1),
                        room.min(probe),
                    )
                } else {
                    (p.key, p.outstanding_bytes(), p.est_rate(now, initial), room)
                }
            })
            .filter(|c| c.3 > 0)
            .collect();
        let mut plan = Vec::new();
        let mut finish: Option<Millis> = None;
        for &block in blocks {
            let best = candidates
                .iter_mut()
                .filter(|c| c.3 > 0)
                .min_by_key(|c| (c.1 + u64::from(BLOCK_SIZE)).saturating_mul(1000) / c.2);
            let Some(c) = best else {
                break;
            };
            c.1 += u64::from(BLOCK_SIZE);
            c.3 -= 1;
            let eta = now.plus(c.1.saturating_mul(1000) / c.2);
            finish = Some(finish.map_or(eta, |f| f.max(eta)));
            plan.push((c.0, block));
        }
        if plan.len() < blocks.len() && !plan.is_empty() {
            // Not every block found a peer: they wait, so the piece cannot be on time.
            finish = Some(Millis(u64::MAX));
        }
        (plan, finish)
    }

    /// The WebSeed that would deliver the rest of `piece` first, among those with a free slot.
    fn best_webseed(&self, piece: u32, bytes: u64, now: Millis) -> Option<(usize, Millis)> {
        self.webseeds
            .iter()
            .enumerate()
            .filter(|(_, w)| {
                w.usable(now)
                    && w.requests_in_flight() < self.config.webseed_max_inflight
                    && !w.fetching(piece)
            })
            .map(|(i, w)| (i, w.eta(bytes, now, self.config.initial_webseed_rate)))
            .min_by_key(|&(_, eta)| eta)
    }

    /// Whether our peers leave us idle, so that a plain download may use the WebSeed for pieces
    /// no peer has: every peer has said what it has (or had `ANNOUNCE_GRACE_MS` to), and hardly
    /// any request to peers is outstanding.
    fn peers_leave_us_idle(&self, now: Millis) -> bool {
        let waiting = self
            .peers
            .values()
            .any(|p| !p.announced && now.since(p.connected_at) < ANNOUNCE_GRACE_MS);
        let outstanding: usize = self.peers.values().map(|p| p.requests.len()).sum();
        !waiting && outstanding < self.config.min_pipeline as usize
    }

    fn any_webseed_usable(&self, now: Millis) -> bool {
        self.webseeds.iter().any(|w| w.usable(now))
    }

    /// Fetches blocks of `piece` from WebSeed `seed`: the span of blocks still free (not asked
    /// of any peer), or with `all_missing` every block that has not arrived (end-game). Whole
    /// `followers` (from [`Engine::span_followers`], already started) ride in the same request
    /// when the fetch reaches the end of `piece`.
    fn start_fetch(
        &mut self,
        seed: usize,
        piece: u32,
        all_missing: bool,
        followers: &[u32],
        now: Millis,
    ) {
        let (Some(picker), Some(meta)) = (self.picker.as_mut(), self.meta.as_ref()) else {
            return;
        };
        let size = picker.piece_size(piece);
        let offset = picker.piece_offset(piece);
        let Some(partial) = picker.partials.get(&piece) else {
            return;
        };
        let span = if all_missing {
            partial.span(|b| b.from.is_none())
        } else {
            partial.span(|b| b.from.is_none() && b.requests == 0)
        };
        let Some((first, end)) = span else {
            return;
        };
        let begin = first * BLOCK_SIZE;
        let stop = (end * BLOCK_SIZE).min(size);
        // (piece, first byte within it, length), in torrent order without gaps.
        let mut segments = vec![(piece, begin, stop - begin)];
        if stop == size {
            segments.extend(followers.iter().map(|&p| (p, 0, picker.piece_size(p))));
        }
        let Some(ws) = self.webseeds.get(seed) else {
            return;
        };
        let (last, last_begin, last_len) = segments[segments.len() - 1];
        let range_end = picker.piece_offset(last) + u64::from(last_begin + last_len);
        let requests =
            requests_for_range(&meta.info, &ws.url, offset + u64::from(begin)..range_end);
        if requests.is_empty() {
            return;
        }
        // A piece across files needs one request per file: no followers then (multi-file
        // torrents have none, `span_followers`).
        debug_assert!(requests.len() == 1 || segments.len() == 1);
        for &(p, _, _) in &segments {
            if let Some(partial) = picker.partials.get_mut(&p) {
                partial.webseed_fetches = partial.webseed_fetches.saturating_add(1);
            }
        }
        let request_id = self.next_request_id;
        let mut next_id = || {
            let id = self.next_request_id;
            self.next_request_id += 1;
            self.webseed_parts.insert(id, seed);
            id
        };
        let ws = &mut self.webseeds[seed];
        if segments.len() == 1 {
            let mut parts = Vec::with_capacity(requests.len());
            for request in requests {
                let part = WebSeedPart {
                    id: next_id(),
                    len: request.len(),
                };
                parts.push(Part::new(part));
                self.actions.push_back(Action::WebSeedRequest {
                    url: request.url,
                    start: request.start,
                    end: request.end,
                    parts: vec![part],
                });
            }
            ws.fetches.push(Fetch {
                piece,
                begin,
                len: stop - begin,
                parts,
                sent_at: now,
                request: request_id,
                ahead: 0,
            });
            return;
        }
        // A span: one request, one part (and one fetch) per piece.
        let mut parts = Vec::with_capacity(segments.len());
        let mut ahead = 0;
        for (p, begin, len) in segments {
            let part = WebSeedPart {
                id: next_id(),
                len: u64::from(len),
            };
            parts.push(part);
            ws.fetches.push(Fetch {
                piece: p,
                begin,
                len,
                parts: vec![Part::new(part)],
                sent_at: now,
                request: request_id,
                ahead,
            });
            ahead += u64::from(len);
        }
        let request = requests.into_iter().next().expect("one request");
        self.actions.push_back(Action::WebSeedRequest {
            url: request.url,
            start: request.start,
            end: request.end,
            parts,
        });
    }

    /// Whole pieces that may ride in the WebSeed request for `piece` (a span): the urgent
    /// pieces right after it, without a gap, that no connected peer has (the WebSeed is their
    /// only source anyway) and that nobody is fetching yet, within `webseed_max_span_bytes`
    /// in all. Only while nothing is buffered at the playhead (start-up, after a seek, a
    /// stall): then the whole urgent window comes in one request, sooner than a new peer could
    /// deliver it. Once playing, urgent pieces go one per request, so that neighbours who
    /// fetch the same stretch share the pieces each fetched (the background pass's owners).
    /// The followers are started here (memory permitting). Single-file torrents only: a span
    /// is one range of one URL.
    fn span_followers(&mut self, piece: u32, urgent: &[(u32, Millis)]) -> Vec<u32> {
        let (Some(picker), Some(meta)) = (self.picker.as_ref(), self.meta.as_ref()) else {
            return Vec::new();
        };
        if meta.info.files.len() > 1 || picker.buffered_ahead() > 0 {
            return Vec::new();
        }
        let untouched = |p: u32| {
            picker.partials.get(&p).is_none_or(|part| {
                part.webseed_fetches == 0
                    && part
                        .blocks
                        .iter()
                        .all(|b| b.requests == 0 && b.from.is_none())
            })
        };
        let mut bytes = u64::from(picker.piece_size(piece));
        let mut followers = Vec::new();
        let after = urgent.iter().skip_while(|&&(p, _)| p != piece).skip(1);
        for (expected, &(p, _)) in (piece + 1..).zip(after) {
            bytes += u64::from(picker.piece_size(p));
            if p != expected
                || bytes > self.config.webseed_max_span_bytes
                || picker.availability[p as usize] > 0
                || !untouched(p)
            {
                break;
            }
            followers.push(p);
        }
        let started = followers
            .iter()
            .take_while(|&&p| self.ensure_started(p))
            .count();
        followers.truncate(started);
        followers
    }

    /// Starts assembling `piece` if it is not yet, within the memory budget.
    fn ensure_started(&mut self, piece: u32) -> bool {
        let Some(picker) = self.picker.as_ref() else {
            return false;
        };
        if picker.partials.contains_key(&piece) {
            return true;
        }
        let size = u64::from(picker.piece_size(piece));
        if !self.make_room(size) {
            return false;
        }
        if let Some(picker) = self.picker.as_mut() {
            picker.start(piece);
        }
        true
    }

    /// When the blocks of `piece` in flight are expected to have arrived.
    fn estimate_finish(&self, piece: u32, now: Millis) -> Millis {
        let initial = self.config.initial_peer_rate;
        let mut finish = now;
        for peer in self.peers.values() {
            if peer.requests.iter().any(|r| r.piece == piece) {
                finish = finish.max(peer.eta(0, now, initial));
            }
        }
        for seed in &self.webseeds {
            for fetch in seed.fetches.iter().filter(|f| f.piece == piece) {
                let rate = seed
                    .rate
                    .per_sec(now)
                    .max(self.config.initial_webseed_rate / 4);
                let bytes = fetch.ahead + u64::from(fetch.len);
                let expected = fetch
                    .sent_at
                    .plus(seed.latency_ms + bytes * 1000 / rate.max(1));
                finish = finish.max(expected);
            }
        }
        finish
    }

    /// Pass 1: urgent pieces to the source expected to meet their deadline.
    fn schedule_urgent(&mut self, urgent: &[(u32, Millis)], now: Millis) {
        let streaming = self.picker.as_ref().is_some_and(Picker::is_streaming);
        for &(piece, deadline) in urgent {
            if !self.ensure_started(piece) {
                break;
            }
            let Some(picker) = self.picker.as_ref() else {
                return;
            };
            let Some(partial) = picker.partials.get(&piece) else {
                continue;
            };
            let free = partial.free_blocks();
            let missing_bytes = partial
                .first_missing()
                .map_or(0, |b| u64::from(picker.piece_size(piece) - b * BLOCK_SIZE));
            if !free.is_empty() {
                // A deadline is only trusted to peers whose rate we have measured, when the
                // WebSeed is there to fall back on; new peers prove themselves on later pieces.
                let measured_only = streaming && self.any_webseed_usable(now);
                let (plan, finish) = self.plan_peers(piece, &free, &[], measured_only, now);
                // Without a playhead nothing is really due: any peer that has the piece beats
                // the WebSeed, which is kept for pieces nobody has (start-up, a fresh swarm).
                let on_time = finish.is_some_and(|f| !streaming || f <= deadline);
                let webseed = self.best_webseed(piece, missing_bytes, now);
                if on_time {
                    for (key, block) in plan {
                        self.request_block(key, piece, block, now);
                    }
                } else if let Some((seed, eta)) = webseed.filter(|(_, eta)| {
                    // A plain download with peers leaves unavailable pieces to the background
                    // pass, which shares the WebSeed work with the neighbours.
                    let alone = self.peers.is_empty();
                    finish.is_none_or(|f| *eta < f) && (streaming || alone)
                }) {
                    let _ = eta;
                    let followers = self.span_followers(piece, urgent);
                    self.start_fetch(seed, piece, false, &followers, now);
                } else if finish.is_some() && (!self.any_webseed_usable(now) || deadline <= now) {
                    for (key, block) in plan {
                        self.request_block(key, piece, block, now);
                    }
                }
                // Otherwise wait for a WebSeed slot: it will be faster than these peers.
            } else if streaming
                && !partial.duplicated
                && partial.remaining > 0
                && (deadline.0 <= now.0 + self.config.endgame_ms
                    || self.estimate_finish(piece, now) > deadline)
            {
                self.duplicate(piece, deadline, missing_bytes, now);
            }
        }
    }

    /// End-game for one urgent piece: a second source for everything still missing.
    fn duplicate(&mut self, piece: u32, deadline: Millis, missing_bytes: u64, now: Millis) {
        let Some(partial) = self
            .picker
            .as_mut()
            .and_then(|p| p.partials.get_mut(&piece))
        else {
            return;
        };
        let already_webseed = partial.webseed_fetches > 0;
        let missing: Vec<u32> = partial
            .blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| b.from.is_none())
            .map(|(i, _)| i as u32)
            .collect();
        if !already_webseed {
            if let Some((seed, _)) = self.best_webseed(piece, missing_bytes, now) {
                self.start_fetch(seed, piece, true, &[], now);
                self.mark_duplicated(piece);
                return;
            }
        }
        // A second peer only helps if it beats the copy in flight and the deadline.
        let current = self.estimate_finish(piece, now);
        let mut sent = false;
        for block in missing {
            let holders = self.peers_requesting(piece, block);
            let (plan, finish) = self.plan_peers(piece, &[block], &holders, true, now);
            if finish.is_none_or(|f| f >= current || f > deadline) {
                continue;
            }
            for (key, block) in plan {
                self.request_block(key, piece, block, now);
                sent = true;
            }
        }
        // Nobody could take a second copy: try again on the next pass.
        if sent {
            self.mark_duplicated(piece);
        }
    }

    fn mark_duplicated(&mut self, piece: u32) {
        if let Some(partial) = self
            .picker
            .as_mut()
            .and_then(|p| p.partials.get_mut(&piece))
        {
            partial.duplicated = true;
        }
    }

    /// Pass 2: fill every peer's pipeline, fastest peers first, rarest-first.
    fn schedule_peers(&mut self, urgent: &BTreeSet<u32>, now: Millis) {
        let initial = self.config.initial_peer_rate;
        let mut order: Vec<(u64, PeerKey)> = self
            .peers
            .values()
            .filter(|p| Self::can_request(p))
            .map(|p| (p.est_rate(now, initial), p.key))
            .collect();
        order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, key) in order {
            // A busy pipeline is topped up in batches, not a block at a time: every refill is
            // a data-channel message to the peer (and an event there), and one message of
            // eight requests costs hardly more than one of one. The batch is an eighth of the
            // pipeline, so a peer still has 7/8 of it queued when we ask again.
            if let Some(peer) = self.peers.get(&key) {
                let outstanding = peer.requests.len() as u32;
                let target = self.target(peer, now);
                if outstanding > 0 && outstanding + (target / 8).max(1) > target {
                    continue;
                }
            }
            while let Some(peer) = self.peers.get(&key) {
                if peer.requests.len() as u32 >= self.target(peer, now) {
                    break;
                }
                let Some(picker) = self.picker.as_ref() else {
                    return;
                };
                // When streaming, a peer only takes pieces it can deliver before they are due:
                // a slow peer works far ahead of the playhead, where it has time.
                let margin = self.config.deadline_margin_ms;
                let initial = self.config.initial_peer_rate;
                let in_time = |p: u32| {
                    let eta = peer.eta(u64::from(picker.piece_size(p)), now, initial);
                    picker
                        .deadline(p, margin)
                        .is_none_or(|d| eta.plus(2 * self.config.endgame_ms) <= d)
                };
                // Blocks of pieces already being assembled first: finish what was started.
                let next = picker
                    .partials
                    .iter()
                    .filter(|(p, _)| !urgent.contains(p) && peer.has_piece(**p) && in_time(**p))
                    .find_map(|(p, partial)| partial.free_block().map(|b| (*p, b)));
                if let Some((piece, block)) = next {
                    self.request_block(key, piece, block, now);
                    continue;
                }
                if picker.partials.len() >= self.config.max_pieces_in_progress {
                    break;
                }
                let Some(piece) =
                    picker.pick_new(|p| !urgent.contains(&p) && peer.has_piece(p) && in_time(p))
                else {
                    break;
                };
                if !self.ensure_started(piece) {
                    break;
                }
            }
        }
    }

    /// Pass 3: the WebSeed takes non-urgent pieces that no connected peer has, when streaming
    /// only while the buffer ahead is short.
    fn schedule_webseed_background(&mut self, urgent: &BTreeSet<u32>, now: Millis) {
        let Some(picker) = self.picker.as_ref() else {
            return;
        };
        if let Some(ph) = picker.playhead {
            let low = ph.bytes_per_sec.saturating_mul(self.config.buffer_low_ms) / 1000;
            if picker.buffered_ahead() >= low {
                return;
            }
        } else if !self.peers_leave_us_idle(now) {
            self.idle_since = None;
            return;
        }
        let idle_since = *self.idle_since.get_or_insert(now);
        // A plain download shares the first copies with its neighbours: of the pieces nobody
        // has, it fetches only those it "owns" by rendezvous hashing over its own and its
        // peers' ids — the same choice every fully connected neighbour makes, so each piece
        // enters the swarm once. If the swarm stays idle anyway, it stops waiting for owners.
        // Only peers connected for a while count as owners, and we claim nothing in our own
        // first moments: a newcomer must not take over pieces an older peer is already fetching.
        let started = self.started_at.unwrap_or(now);
        let owners: Option<Vec<PeerId>> =
            (picker.playhead.is_none() && now.since(idle_since) < OWNER_WAIT_MS).then(|| {
                let mut ids: Vec<PeerId> = self
                    .peers
                    .values()
                    .filter(|p| p.is_active() && now.since(p.connected_at) >= OWNER_WAIT_MS)
                    .filter_map(|p| p.peer_id)
                    .collect();
                if now.since(started) < OWNER_WAIT_MS && !ids.is_empty() {
                    // Some older peer will do; a never-winning id keeps us out.
                    ids.push(self.our_id);
                }
                ids
            });
        let max_fetches = self.config.webseed_max_inflight;
        loop {
            let Some(picker) = self.picker.as_ref() else {
                return;
            };
            if picker.partials.len() >= self.config.max_pieces_in_progress {
                return;
            }
            let ours = |p: u32| match &owners {
                Some(ids) => {
                    let mine = rendezvous(&self.our_id, p);
                    ids.iter().all(|id| rendezvous(id, p) < mine)
                }
                None => true,
            };
            // (With our own id among `ids`, `<` never holds for it: we own nothing yet.)
            // Urgent pieces are the urgent pass's business when streaming; without a playhead
            // they are just the first pieces, and may wait here for their owner.
            let streaming = picker.playhead.is_some();
            let idle_partial = |p: u32| {
                picker.partials.get(&p).is_none_or(|part| {
                    part.hashing.is_none()
                        && part.webseed_fetches == 0
                        && part.blocks.iter().all(|b| b.requests == 0)
                })
            };
            let Some(piece) = picker
                .window()
                .filter(|&p| {
                    !picker.have.get(p)
                        && picker.availability[p as usize] == 0
                        && !(streaming && urgent.contains(&p))
                        && idle_partial(p)
                        && ours(p)
                })
                .min_by_key(|&p| picker.rank(p))
            else {
                return;
            };
            let requests: usize = self.webseeds.iter().map(|w| w.requests_in_flight()).sum();
            if requests >= max_fetches {
                return;
            }
            let bytes = u64::from(picker.piece_size(piece));
            let Some((seed, _)) = self.best_webseed(piece, bytes, now) else {
                return;
            };
            if !self.ensure_started(piece) {
                return;
            }
            self.start_fetch(seed, piece, false, &[], now);
        }
    }
}

/// A peer's score for a piece in rendezvous hashing: the highest score owns the piece.
fn rendezvous(id: &PeerId, piece: u32) -> u64 {
    id.0.chunks(8).fold(u64::from(piece), |h, chunk| {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        picker::mix(h ^ u64::from_le_bytes(word))
    })
}

/// A request for a block ended (arrived, rejected, cancelled, peer gone).
fn release_block(picker: &mut Picker, piece: u32, block: u32) {
    if let Some(slot) = picker
        .partials
        .get_mut(&piece)
        .and_then(|p| p.blocks.get_mut(block as usize))
    {
        slot.requests = slot.requests.saturating_sub(1);
    }
}

/// Policy errors after which WebTorrent would close the wire, and so do we.
fn fatal_policy_error(err: &WireError) -> bool {
    matches!(
        err,
        WireError::RequestTooLong { .. } | WireError::FastNotNegotiated(_)
    )
}

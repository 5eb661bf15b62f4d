//! The pod's trackers: the WebSocket tracker at `/tracker/socket` (bittorrent-tracker compatible,
//! for browsers), the HTTP tracker at `/tracker/announce` and `/tracker/scrape` (BEP 3/23/48, for
//! desktop clients). See ../shared/webtorrent-protocol.md §1.
//!
//! Layout, mini-redis style: messages are parsed and built by `client_core::tracker` (one
//! definition for client and server); [`swarm`] is the state without I/O; this module applies a
//! parsed request to the state and says what to send ([`Tracker::handle_ws_text`],
//! [`Tracker::http_announce`], [`Tracker::http_scrape`]); `ws` and `http` only move bytes, and
//! `outbox` is a connection's queue of relayed messages.
//!
//! Invariants:
//! - Private: only info-hashes the caller's `allowed` says yes to (the pod's catalogue) get a
//!   swarm; anything else is refused with "unknown info_hash". Scrapes of other hashes read zeros.
//! - Every WebSocket failure carries `action` (and `info_hash` when it can be read): a failure
//!   without `action` makes the JS client drop its socket and back off for minutes (§1.6).
//! - Everything is bounded ([`TrackerConfig`]): connections in total and per IP, swarms, peers per
//!   swarm, torrents per connection, messages per outgoing queue. When a connection's queue is
//!   full, further relays to it are dropped (the offerer's offer times out, as when the reference
//!   has no peer for it) rather than closing the socket, which would cost a JS client minutes of
//!   reconnect back-off; a connection that stops reading altogether is closed by the send
//!   timeout.
//! - One lock over all state. Every critical section is short and never awaits; messages for
//!   other connections are serialised and queued after it is released. If one lock ever becomes
//!   the bottleneck, shard `State` by info-hash.

pub(crate) mod http;
mod outbox;
pub mod swarm;
mod websocket;
mod ws;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use client_core::tracker::http::{
    encode_failure, HttpAnnounce, HttpAnnounceResponse, HttpScrape, HttpScrapeResponse,
};
use client_core::tracker::ws::{
    Action, Announce, AnnounceResponse, ClientMessage, Failure, RelayedAnswer, RelayedOffer,
    Scrape, ScrapeResponse, ServerMessage,
};
use client_core::tracker::{MAX_NUMWANT, MAX_SCRAPE_HASHES};
use client_core::InfoHash;
use tokio::sync::watch;

use crate::Pod;
use outbox::{Outbox, PushError};
use swarm::{ConnId, Limits, PeerState, Swarms};

/// The trackers' knobs. The defaults follow bittorrent-tracker where it has one.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// Announce interval told to WebSocket clients (bittorrent-tracker: 120 s).
    pub ws_interval: Duration,
    /// Announce interval told to HTTP clients, also the scrape `min_request_interval` (600 s).
    pub http_interval: Duration,
    /// A peer that has not announced for this long leaves its swarm (20 min).
    pub peer_ttl: Duration,
    /// WebSocket pings, so that proxies (which often close sockets idle for ~100 s) do not cut
    /// sockets between two announces.
    pub ping_interval: Duration,
    /// A socket that sent nothing, not even a pong, for this long is closed.
    pub idle_timeout: Duration,
    /// Longest wait for one outgoing WebSocket message to be written.
    pub send_timeout: Duration,
    pub max_connections: usize,
    /// Connections per client IP. Loopback is exempt: behind a reverse proxy on the same host,
    /// every client arrives from 127.0.0.1.
    pub max_connections_per_ip: usize,
    pub max_swarms: usize,
    /// When full, the least recently announced peer makes room (bittorrent-tracker: 1000).
    pub max_peers_per_swarm: usize,
    /// Torrents one WebSocket may announce (the JS client shares one socket between torrents).
    pub max_swarms_per_connection: usize,
    /// Messages waiting for one WebSocket (relayed offers and answers); relays beyond are
    /// dropped. Costs nothing while empty.
    pub outbox_len: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        let ws_interval = Duration::from_secs(120);
        Self {
            ws_interval,
            http_interval: Duration::from_secs(600),
            peer_ttl: Duration::from_secs(20 * 60),
            ping_interval: Duration::from_secs(30),
            idle_timeout: 2 * ws_interval,
            send_timeout: Duration::from_secs(10),
            max_connections: 20_000,
            max_connections_per_ip: 64,
            max_swarms: 100_000,
            max_peers_per_swarm: 1000,
            max_swarms_per_connection: 256,
            outbox_len: 64,
        }
    }
}

impl TrackerConfig {
    fn limits(&self) -> Limits {
        Limits {
            max_swarms: self.max_swarms,
            max_peers_per_swarm: self.max_peers_per_swarm,
            max_swarms_per_connection: self.max_swarms_per_connection,
            peer_ttl: self.peer_ttl,
        }
    }
}

/// How often expired peers are swept (lazily, by whoever touches the state next).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The trackers' shared state; one per pod.
pub struct Tracker {
    config: TrackerConfig,
    state: Mutex<State>,
    next_conn: AtomicU64,
    /// Flips to `true` once, when the pod shuts down: every WebSocket task watches it.
    shutdown: watch::Sender<bool>,
}

struct State {
    swarms: Swarms,
    /// Open WebSocket connections. Closing a connection's outbox ends its task.
    conns: HashMap<ConnId, Conn>,
    per_ip: HashMap<IpAddr, usize>,
    last_sweep: Instant,
}

struct Conn {
    outbox: Arc<Outbox>,
    ip: IpAddr,
}

/// Why a WebSocket was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("too many tracker connections")]
    TooMany,
    #[error("too many tracker connections from this address")]
    TooManyFromIp,
    #[error("the pod is shutting down")]
    ShuttingDown,
}

/// An accepted WebSocket connection: its id and the queue of messages other peers' requests
/// produce for it.
pub(crate) struct Connection {
    pub id: ConnId,
    pub outbox: Arc<Outbox>,
    pub shutdown: watch::Receiver<bool>,
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Self {
        Self {
            state: Mutex::new(State {
                swarms: Swarms::new(config.limits()),
                conns: HashMap::new(),
                per_ip: HashMap::new(),
                last_sweep: Instant::now(),
            }),
            config,
            next_conn: AtomicU64::new(1),
            shutdown: watch::Sender::new(false),
        }
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Swarms with at least one peer (stats: `trackerSwarms`).
    pub fn swarm_count(&self) -> usize {
        self.lock().swarms.swarm_count()
    }

    /// Peers over all swarms, WebSocket and HTTP (stats: `trackerPeers`).
    pub fn peer_count(&self) -> usize {
        self.lock().swarms.peer_count()
    }

    /// Open WebSocket connections.
    pub fn connection_count(&self) -> usize {
        self.lock().conns.len()
    }

    /// Ends every WebSocket task (with a close frame) and refuses new ones. Called when the pod
    /// stops: upgraded sockets outlive the HTTP server's graceful shutdown otherwise.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// After [`shutdown`](Self::shutdown): waits until every WebSocket task has sent its close
    /// frame and unregistered, or `grace` has passed. An event loop whose runtime is about to
    /// end calls it, since tasks left on a dropped runtime never run again.
    pub async fn closed(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        while self.connection_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Registers a new WebSocket from `ip`.
    pub(crate) fn connect(&self, ip: IpAddr) -> Result<Connection, ConnectError> {
        if *self.shutdown.borrow() {
            return Err(ConnectError::ShuttingDown);
        }
        let mut state = self.lock();
        if state.conns.len() >= self.config.max_connections {
            return Err(ConnectError::TooMany);
        }
        let from_ip = state.per_ip.get(&ip).copied().unwrap_or(0);
        if !ip.is_loopback() && from_ip >= self.config.max_connections_per_ip {
            return Err(ConnectError::TooManyFromIp);
        }
        let id = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
        let outbox = Outbox::new(self.config.outbox_len);
        state.conns.insert(
            id,
            Conn {
                outbox: outbox.clone(),
                ip,
            },
        );
        *state.per_ip.entry(ip).or_default() += 1;
        Ok(Connection {
            id,
            outbox,
            shutdown: self.shutdown.subscribe(),
        })
    }

    /// Forgets a WebSocket and takes its peers out of every swarm it joined. Idempotent.
    /// Ends a swarm at once (its video was deleted): its peers are forgotten, so nobody is
    /// relayed offers for it any more, and new announces are refused by the private rule.
    pub fn forget_swarm(&self, info_hash: &InfoHash) -> usize {
        self.lock().swarms.remove_swarm(info_hash)
    }

    pub(crate) fn disconnect(&self, conn: ConnId) {
        let mut state = self.lock();
        state.drop_conn(conn);
    }

    /// Applies one WebSocket message from `conn`. Returns the reply for that connection, if
    /// any; relayed offers and answers go straight into the other connections' queues.
    pub(crate) fn handle_ws_text(
        &self,
        conn: ConnId,
        text: &str,
        allowed: impl Fn(&InfoHash) -> bool,
    ) -> Option<String> {
        let message = match ClientMessage::parse(text) {
            Ok(message) => message,
            Err(err) => {
                tracing::debug!(conn = conn.0, %err, "invalid tracker message");
                let mut failure = Failure::for_request(text, err);
                // Unreadable action: say "announce" anyway, which the JS client takes as a
                // warning (ignored for a foreign info_hash) instead of a broken socket.
                failure.action.get_or_insert(Action::Announce);
                return Some(ServerMessage::Failure(failure).to_json());
            }
        };
        let reply = match message {
            ClientMessage::Announce(announce) => self.ws_announce(conn, announce, &allowed),
            ClientMessage::Scrape(scrape) => Some(self.ws_scrape(&scrape)),
        };
        reply.map(|message| message.to_json())
    }

    fn ws_announce(
        &self,
        conn: ConnId,
        announce: Announce,
        allowed: &impl Fn(&InfoHash) -> bool,
    ) -> Option<ServerMessage> {
        let info_hash = announce.info_hash;
        let failure = |reason: String| {
            Some(ServerMessage::Failure(Failure {
                action: Some(Action::Announce),
                info_hash: Some(info_hash),
                reason,
            }))
        };
        if !allowed(&info_hash) {
            return failure("unknown info_hash".into());
        }
        let now = Instant::now();
        let mut state = self.lock();
        state.sweep(now);

        if let Some(answer) = announce.answer {
            // No reply to an answer (the reference sends none either).
            let to =
                state
                    .swarms
                    .answer(&info_hash, announce.peer_id, conn, answer.to_peer_id, now);
            let outbox = to.and_then(|to| state.outbox(to));
            drop(state);
            match (to, outbox) {
                (Some(to), Some(outbox)) => self.deliver(
                    to,
                    outbox,
                    ServerMessage::Answer(RelayedAnswer {
                        info_hash,
                        peer_id: announce.peer_id,
                        offer_id: answer.offer_id,
                        sdp: answer.sdp,
                    }),
                ),
                _ => tracing::debug!(conn = conn.0, "answer for a peer not in the swarm"),
            }
            return None;
        }

        let wanted = announce
            .offers
            .len()
            .min(announce.numwant.map_or(usize::MAX, |n| n as usize))
            .min(MAX_NUMWANT as usize);
        let peer_state = PeerState {
            left: announce.left,
            event: announce.event,
        };
        let announced = match state.swarms.announce_ws(
            info_hash,
            announce.peer_id,
            conn,
            peer_state,
            wanted,
            now,
            &mut rand::thread_rng(),
        ) {
            Ok(announced) => announced,
            Err(refused) => return failure(refused.to_string()),
        };
        // Serialising and queueing happen outside the lock: only the queues' handles are
        // taken under it.
        let outboxes: Vec<_> = announced
            .targets
            .iter()
            .map(|(_, to)| state.outbox(*to))
            .collect();
        drop(state);
        for (((_, to), outbox), offer) in
            announced.targets.iter().zip(outboxes).zip(announce.offers)
        {
            let Some(outbox) = outbox else { continue };
            self.deliver(
                *to,
                outbox,
                ServerMessage::Offer(RelayedOffer {
                    info_hash,
                    peer_id: announce.peer_id,
                    offer_id: offer.offer_id,
                    sdp: offer.sdp,
                }),
            );
        }
        Some(ServerMessage::Announce(AnnounceResponse {
            info_hash,
            complete: announced.stats.complete,
            incomplete: announced.stats.incomplete,
            interval: Some(secs(self.config.ws_interval)),
            min_interval: None,
            tracker_id: None,
            warning: None,
        }))
    }

    fn ws_scrape(&self, scrape: &Scrape) -> ServerMessage {
        let state = self.lock();
        let files = match scrape {
            Scrape::All => state.swarms.all_stats(MAX_SCRAPE_HASHES),
            named => named
                .info_hashes()
                .iter()
                .map(|hash| (*hash, state.swarms.stats(hash)))
                .collect(),
        };
        ServerMessage::Scrape(ScrapeResponse {
            files: files.into_iter().collect(),
            min_request_interval: Some(secs(self.config.http_interval)),
        })
    }

    /// Answers `GET /tracker/announce?<query>` from `ip`: a bencoded body (failures included,
    /// as `failure reason`, since BitTorrent clients read the body whatever the status).
    pub(crate) fn http_announce(
        &self,
        query: &str,
        ip: IpAddr,
        allowed: impl Fn(&InfoHash) -> bool,
    ) -> Vec<u8> {
        let announce = match HttpAnnounce::parse_query(query) {
            Ok(announce) => announce,
            Err(err) => return encode_failure(&err.to_string()),
        };
        if !allowed(&announce.info_hash) {
            return encode_failure("unknown info_hash");
        }
        // The address is the socket's, never the `ip` parameter: anyone could otherwise point
        // a swarm at a third party.
        let addr = SocketAddr::new(ip, announce.port);
        let now = Instant::now();
        let mut state = self.lock();
        state.sweep(now);
        let result = state.swarms.announce_http(
            announce.info_hash,
            addr,
            PeerState {
                left: announce.left,
                event: announce.event,
            },
            announce.numwant.min(MAX_NUMWANT) as usize,
            now,
            &mut rand::thread_rng(),
        );
        drop(state);
        match result {
            Ok(announced) => HttpAnnounceResponse {
                complete: announced.stats.complete,
                incomplete: announced.stats.incomplete,
                interval: secs(self.config.http_interval),
                min_interval: None,
                warning: None,
                peers: announced.peers,
            }
            .encode(),
            Err(refused) => encode_failure(&refused.to_string()),
        }
    }

    /// Answers `GET /tracker/scrape?<query>`: counts for the named hashes, or for up to
    /// [`MAX_SCRAPE_HASHES`] active swarms when none is named.
    pub(crate) fn http_scrape(&self, query: &str) -> Vec<u8> {
        let scrape = match HttpScrape::parse_query(query) {
            Ok(scrape) => scrape,
            Err(err) => return encode_failure(&err.to_string()),
        };
        let state = self.lock();
        let files = if scrape.info_hashes.is_empty() {
            state.swarms.all_stats(MAX_SCRAPE_HASHES)
        } else {
            scrape
                .info_hashes
                .iter()
                .map(|hash| (*hash, state.swarms.stats(hash)))
                .collect()
        };
        drop(state);
        HttpScrapeResponse {
            files: files.into_iter().collect(),
            min_request_interval: Some(secs(self.config.http_interval)),
        }
        .encode()
    }

    /// Queues `message` for `conn`, or drops it if `conn`'s queue is full (see the module doc).
    fn deliver(&self, conn: ConnId, outbox: Arc<Outbox>, message: ServerMessage) {
        match outbox.push(message.to_json()) {
            Ok(()) => {}
            Err(PushError::Full) => {
                tracing::debug!(
                    conn = conn.0,
                    "tracker connection's queue is full, relay dropped"
                )
            }
            Err(PushError::Closed) => self.lock().drop_conn(conn),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than refusing all tracker traffic would: keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// A handle on `conn`'s outgoing queue, if it is still open.
    fn outbox(&self, conn: ConnId) -> Option<Arc<Outbox>> {
        self.conns.get(&conn).map(|c| c.outbox.clone())
    }

    fn drop_conn(&mut self, conn: ConnId) {
        if let Some(closed) = self.conns.remove(&conn) {
            closed.outbox.close();
            if let Some(count) = self.per_ip.get_mut(&closed.ip) {
                *count -= 1;
                if *count == 0 {
                    self.per_ip.remove(&closed.ip);
                }
            }
        }
        self.swarms.disconnect(conn);
    }

    fn sweep(&mut self, now: Instant) {
        if now.duration_since(self.last_sweep) >= SWEEP_EVERY {
            self.last_sweep = now;
            let expired = self.swarms.expire(now);
            if expired > 0 {
                tracing::debug!(expired, "tracker peers expired");
            }
        }
    }
}

fn secs(duration: Duration) -> u32 {
    u32::try_from(duration.as_secs()).unwrap_or(u32::MAX)
}

/// Where the WebSocket tracker listens.
pub const SOCKET_PATH: &str = "/tracker/socket";
/// Where the HTTP tracker answers announces (BEP 3).
pub const ANNOUNCE_PATH: &str = "/tracker/announce";
/// Where the HTTP tracker answers scrapes (BEP 48).
pub const SCRAPE_PATH: &str = "/tracker/scrape";

/// The trackers' routes, at [`SOCKET_PATH`], [`ANNOUNCE_PATH`] and [`SCRAPE_PATH`].
pub fn router() -> Router<Pod> {
    Router::new()
        .route(SOCKET_PATH, get(ws::socket))
        .route(ANNOUNCE_PATH, get(http::announce))
        .route(SCRAPE_PATH, get(http::scrape))
}

#[cfg(test)]
mod tests {
    use super::*;
    use client_core::tracker::ws::{Offer, OfferId, Sdp};
    use client_core::tracker::AnnounceEvent;
    use client_core::PeerId;

    fn allowed(hash: &InfoHash) -> bool {
        hash.0[0] == 1
    }

    fn tracker_with_conns(n: usize) -> (Tracker, Vec<Connection>) {
        let tracker = Tracker::new(TrackerConfig::default());
        let conns = (0..n)
            .map(|_| tracker.connect(IpAddr::from([10, 0, 0, 1])).unwrap())
            .collect();
        (tracker, conns)
    }

    fn announce(peer: u8, offers: usize) -> Announce {
        let mut announce = Announce::new(InfoHash([1; 20]), PeerId([peer; 20]));
        announce.left = Some(10);
        announce.event = Some(AnnounceEvent::Started);
        announce.offers = (0..offers)
            .map(|i| Offer {
                offer_id: OfferId([i as u8 + 100; 20]),
                sdp: Sdp::from_text(&format!("sdp {i}")),
            })
            .collect();
        announce
    }

    fn send(
        tracker: &Tracker,
        conn: &Connection,
        message: &ClientMessage,
    ) -> Option<ServerMessage> {
        tracker
            .handle_ws_text(conn.id, &message.to_json(), allowed)
            .map(|json| ServerMessage::parse(&json).expect("valid server message"))
    }

    #[test]
    fn offer_and_answer_are_relayed() {
        let (tracker, conns) = tracker_with_conns(2);
        let reply = send(
            &tracker,
            &conns[1],
            &ClientMessage::Announce(announce(2, 0)),
        );
        assert!(
            matches!(reply, Some(ServerMessage::Announce(r)) if r.incomplete == 1 && r.interval == Some(120))
        );
        let reply = send(
            &tracker,
            &conns[0],
            &ClientMessage::Announce(announce(1, 5)),
        );
        assert!(matches!(reply, Some(ServerMessage::Announce(r)) if r.incomplete == 2));
        let relayed = conns[1].outbox.try_recv().expect("offer relayed");
        let ServerMessage::Offer(offer) = ServerMessage::parse(&relayed).unwrap() else {
            panic!("not an offer: {relayed}");
        };
        assert_eq!(offer.peer_id, PeerId([1; 20]));
        assert_eq!(offer.offer_id, OfferId([100; 20]));
        assert!(conns[1].outbox.try_recv().is_none(), "one offer per peer");

        let answer = Announce::answer(
            InfoHash([1; 20]),
            PeerId([2; 20]),
            client_core::tracker::ws::Answer {
                to_peer_id: PeerId([1; 20]),
                offer_id: offer.offer_id,
                sdp: Sdp::from_text("answer sdp"),
            },
        );
        assert_eq!(
            send(&tracker, &conns[1], &ClientMessage::Announce(answer)),
            None
        );
        let relayed = conns[0].outbox.try_recv().expect("answer relayed");
        let ServerMessage::Answer(answer) = ServerMessage::parse(&relayed).unwrap() else {
            panic!("not an answer: {relayed}");
        };
        assert_eq!(answer.peer_id, PeerId([2; 20]));
        assert_eq!(answer.sdp.to_text(), "answer sdp");
    }

    #[test]
    fn failures_carry_action_and_info_hash() {
        let (tracker, conns) = tracker_with_conns(1);
        let mut unknown = announce(1, 0);
        unknown.info_hash = InfoHash([2; 20]);
        let Some(ServerMessage::Failure(failure)) =
            send(&tracker, &conns[0], &ClientMessage::Announce(unknown))
        else {
            panic!("no failure");
        };
        assert_eq!(failure.action, Some(Action::Announce));
        assert_eq!(failure.info_hash, Some(InfoHash([2; 20])));
        assert_eq!(failure.reason, "unknown info_hash");
        assert_eq!(tracker.swarm_count(), 0);

        for bad in ["{not json", "[1]", r#"{"action":"scrape","info_hash":5}"#] {
            let reply = tracker.handle_ws_text(conns[0].id, bad, allowed).unwrap();
            let Ok(ServerMessage::Failure(failure)) = ServerMessage::parse(&reply) else {
                panic!("not a failure: {reply}");
            };
            assert!(failure.action.is_some(), "{reply}");
        }
        // A bad offer_id is refused, with the info_hash read from the message.
        let json = ClientMessage::Announce(announce(1, 1))
            .to_json()
            .replace(&OfferId([100; 20]).to_binary_string(), "short");
        let reply = tracker.handle_ws_text(conns[0].id, &json, allowed).unwrap();
        let ServerMessage::Failure(failure) = ServerMessage::parse(&reply).unwrap() else {
            panic!("not a failure: {reply}");
        };
        assert_eq!(failure.info_hash, Some(InfoHash([1; 20])));
        assert_eq!(failure.action, Some(Action::Announce));
        assert_eq!(tracker.peer_count(), 0);
    }

    #[test]
    fn a_full_queue_drops_relays_not_the_connection() {
        let (tracker, conns) = tracker_with_conns(2);
        send(
            &tracker,
            &conns[1],
            &ClientMessage::Announce(announce(2, 0)),
        );
        let len = tracker.config().outbox_len;
        for _ in 0..len + 10 {
            send(
                &tracker,
                &conns[0],
                &ClientMessage::Announce(announce(1, 1)),
            );
        }
        // Connection 1 never read its queue: it holds `len` relays, the rest were dropped.
        assert_eq!(tracker.connection_count(), 2);
        assert_eq!(tracker.peer_count(), 2);
        let queued = std::iter::from_fn(|| conns[1].outbox.try_recv()).count();
        assert_eq!(queued, len);
    }

    #[test]
    fn connection_limits() {
        let tracker = Tracker::new(TrackerConfig {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..TrackerConfig::default()
        });
        let ip = IpAddr::from([10, 0, 0, 1]);
        let a = tracker.connect(ip).unwrap();
        let _b = tracker.connect(ip).unwrap();
        assert_eq!(tracker.connect(ip).err(), Some(ConnectError::TooManyFromIp));
        let _c = tracker.connect(IpAddr::from([10, 0, 0, 2])).unwrap();
        assert_eq!(
            tracker.connect(IpAddr::from([10, 0, 0, 3])).err(),
            Some(ConnectError::TooMany)
        );
        tracker.disconnect(a.id);
        tracker.connect(ip).unwrap();
        tracker.shutdown();
        tracker.disconnect(ConnId(1));
        assert_eq!(
            tracker.connect(IpAddr::from([10, 0, 0, 4])).err(),
            Some(ConnectError::ShuttingDown)
        );
    }

    #[test]
    fn scrape_named_and_all() {
        let (tracker, conns) = tracker_with_conns(1);
        send(
            &tracker,
            &conns[0],
            &ClientMessage::Announce(announce(1, 0)),
        );
        let reply = send(
            &tracker,
            &conns[0],
            &ClientMessage::Scrape(Scrape::List(vec![InfoHash([1; 20]), InfoHash([3; 20])])),
        );
        let Some(ServerMessage::Scrape(scrape)) = reply else {
            panic!("no scrape response");
        };
        assert_eq!(scrape.files.len(), 2);
        assert_eq!(scrape.files[&InfoHash([1; 20])].incomplete, 1);
        assert_eq!(scrape.files[&InfoHash([3; 20])].incomplete, 0);
        let Some(ServerMessage::Scrape(all)) =
            send(&tracker, &conns[0], &ClientMessage::Scrape(Scrape::All))
        else {
            panic!("no scrape response");
        };
        assert_eq!(all.files.len(), 1);
    }

    #[test]
    fn http_announce_uses_the_socket_address_and_private_rule() {
        let tracker = Tracker::new(TrackerConfig::default());
        let query = |port: u16, ip_param: &str| {
            let announce = HttpAnnounce {
                info_hash: InfoHash([1; 20]),
                peer_id: PeerId([port as u8; 20]),
                port,
                uploaded: 0,
                downloaded: 0,
                left: Some(5),
                compact: true,
                event: Some(AnnounceEvent::Started),
                numwant: 50,
            };
            format!("{}&ip={ip_param}", announce.to_query())
        };
        let ip = IpAddr::from([192, 0, 2, 1]);
        let first = tracker.http_announce(&query(6881, "1.2.3.4"), ip, allowed);
        assert_eq!(HttpAnnounceResponse::decode(&first).unwrap().peers, vec![]);
        let second = tracker.http_announce(&query(6882, "1.2.3.4"), ip, allowed);
        let response = HttpAnnounceResponse::decode(&second).unwrap();
        assert_eq!(response.peers, vec![SocketAddr::new(ip, 6881)]);
        assert_eq!(response.interval, 600);
        assert_eq!(response.incomplete, 2);

        let unknown = HttpAnnounce::parse_query(&query(6883, "x"))
            .map(|mut a| {
                a.info_hash = InfoHash([2; 20]);
                a.to_query()
            })
            .unwrap();
        let reply = tracker.http_announce(&unknown, ip, allowed);
        assert!(HttpAnnounceResponse::decode(&reply).is_err());
        assert!(String::from_utf8_lossy(&reply).contains("unknown info_hash"));
        assert!(
            String::from_utf8_lossy(&tracker.http_announce("port=1", ip, allowed))
                .contains("failure reason")
        );
    }
}

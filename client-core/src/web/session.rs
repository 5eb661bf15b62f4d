//! One torrent in the page: the sans-IO [`Engine`] driven by browser I/O. This module is the
//! only place where the engine meets the world:
//! - WebRTC links ([`rtc::Link`]) become [`PeerKey`]s: their bytes go in, `Send` actions go out;
//! - tracker messages ([`tracker`]) create offers and answers; announces go to every tracker at
//!   once, each with its own offers (an RTCPeerConnection answers one offer only);
//! - `WebSeedRequest` actions become `fetch` calls with `Range`;
//! - `HashPiece` actions go to SubtleCrypto's `digest`, which hashes off the main thread (in a
//!   secure context; elsewhere the engine hashes inline); a piece it fails to hash is hashed
//!   here;
//! - the engine's timer is a `setTimeout` at [`Engine::next_timeout`].
//!
//! Every input ends with [`Inner::pump`], which carries out the engine's actions. Events for
//! the page (JS callbacks) are collected while the state is borrowed and fired after, so a
//! callback may call back into the torrent.
//!
//! Bounded: links (including pending offers) by `max_conns`; offers per announce by
//! [`MAX_OFFERS_PER_ANNOUNCE`]; unanswered offers expire after [`OFFER_LIFETIME_MS`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::AbortController;

use super::rtc::{self, Link, LinkEvent};
use super::tracker::{Subscriber, TrackerSocket, Trackers};
use super::util;
use super::webseed;
use crate::engine::{
    Action, Config as EngineConfig, Engine, Millis, PeerKey, Stats, TorrentSource, WebSeedError,
    WebSeedPart,
};
use crate::tracker::ws::{Announce, ClientMessage, Offer, OfferId, Sdp, ServerMessage};
use crate::tracker::AnnounceEvent;
use crate::{InfoHash, PeerId};

/// WebTorrent sends 5 offers per announce per tracker (§1.3); we send at most this many, and
/// only as many as free connection slots allow.
pub const MAX_OFFERS_PER_ANNOUNCE: usize = 5;
/// Unanswered offers are closed after this (as simple-peer does).
pub const OFFER_LIFETIME_MS: u64 = 50_000;
/// Announce interval until a tracker tells its own.
const DEFAULT_INTERVAL_MS: u64 = 120_000;
/// While the swarm gives fewer peers than wanted, announce again this soon for more offers.
const HUNGRY_INTERVAL_MS: u64 = 15_000;
/// While no peer at all is connected though the tracker counts others, announce again after
/// this, doubling up to [`HUNGRY_INTERVAL_MS`]. A swarm can list peers that have gone (a page
/// left without closing its tracker socket yet); offers sent only to them are never answered,
/// and a newcomer should not sit alone for a whole hungry interval because of it.
const LONELY_FIRST_WAIT_MS: u64 = 2_000;
/// Longest the first announce's offers wait for the start-up (the first verified piece and
/// the player's first frame, see `Session::start_up_done`). Chromium on a busy 2-core machine
/// takes 250-400 ms to a first frame: a shorter wait made the offers land in the middle of it.
const START_UP_MS: u64 = 600;

/// Options of a session (from the JS API's options object).
#[derive(Clone)]
pub struct Options {
    pub max_conns: usize,
    pub p2p: bool,
    pub webseeds: bool,
    pub ice_servers: JsValue,
    pub extra_trackers: Vec<String>,
    pub memory_budget: Option<u64>,
    /// A player will stream the file from its beginning: the start-up begins with the session.
    pub playing: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_conns: 20,
            p2p: true,
            webseeds: true,
            ice_servers: JsValue::UNDEFINED,
            extra_trackers: Vec::new(),
            memory_budget: None,
            playing: false,
        }
    }
}

/// A connection's state in the page.
struct PeerLink {
    link: Rc<Link>,
    /// The tracker peer id of the far side (duplicate detection).
    remote: PeerId,
    /// True once the data channel opened and the engine knows the key.
    open: bool,
    /// True when we made the offer.
    offered: bool,
}

struct PendingOffer {
    link: Rc<Link>,
    key: PeerKey,
    created: Millis,
}

/// Events for the page, fired after the state is released.
enum PageEvent {
    Named(&'static str, JsValue),
}

pub struct Inner {
    engine: Engine,
    options: Options,
    info_hash: InfoHash,
    peer_id: PeerId,
    rtc_config: web_sys::RtcConfiguration,
    links: HashMap<PeerKey, PeerLink>,
    pending: HashMap<OfferId, PendingOffer>,
    next_key: u64,
    trackers: Vec<Rc<TrackerSocket>>,
    subscriber: Option<Subscriber>,
    fetches: HashMap<u64, AbortController>,
    /// Hashes complete pieces when the page has it (the engine's `hash_outside`).
    subtle: Option<web_sys::SubtleCrypto>,
    timer: Option<(i32, Millis)>,
    timer_closure: Option<Closure<dyn FnMut()>>,
    next_announce: Millis,
    interval_ms: u64,
    /// The next wait while lonely (see [`LONELY_FIRST_WAIT_MS`]); reset when a link opens.
    lonely_wait_ms: u64,
    listeners: HashMap<String, Vec<Function>>,
    events: Vec<PageEvent>,
    destroyed: bool,
    me: Weak<RefCell<Inner>>,
    /// Called after every pump (the media player follows verified pieces this way).
    pub on_pump: Option<Rc<dyn Fn()>>,
    /// Resolvers of `Session::start_up_done` promises, called by the pump that ends the
    /// start-up (or by their own deadline timer).
    start_up_waiters: Vec<Function>,
}

/// A cheap handle on a torrent's session.
#[derive(Clone)]
pub struct Session(pub Rc<RefCell<Inner>>);

impl Session {
    pub fn start(
        source: TorrentSource,
        trackers_for: &Trackers,
        peer_id: PeerId,
        options: Options,
    ) -> Session {
        let defaults = EngineConfig::default();
        let subtle = util::subtle_crypto();
        let config = EngineConfig {
            hash_outside: subtle.is_some(),
            max_peers: options.max_conns.max(1),
            use_url_list: options.webseeds,
            memory_budget: options.memory_budget.unwrap_or(defaults.memory_budget),
            ..defaults
        };
        let mut tracker_urls: Vec<String> = Vec::new();
        let mut webseeds: Vec<String> = Vec::new();
        match &source {
            TorrentSource::Torrent(m) => {
                tracker_urls.extend(m.announce.iter().cloned());
            }
            TorrentSource::Magnet(m) => {
                tracker_urls.extend(m.trackers.iter().cloned());
                webseeds.extend(m.web_seeds.iter().cloned());
            }
        }
        tracker_urls.extend(options.extra_trackers.iter().cloned());
        let seed = u64::from_le_bytes(util::random_bytes::<8>());
        let mut engine = Engine::new(config, peer_id, source, seed);
        if options.webseeds {
            for url in &webseeds {
                engine.add_webseed(url);
            }
        }
        let info_hash = engine.info_hash();
        let rtc_config = rtc::configuration(&options.ice_servers);
        let inner = Rc::new(RefCell::new(Inner {
            engine,
            info_hash,
            peer_id,
            rtc_config,
            links: HashMap::new(),
            pending: HashMap::new(),
            next_key: 1,
            trackers: Vec::new(),
            subscriber: None,
            fetches: HashMap::new(),
            subtle,
            timer: None,
            timer_closure: None,
            next_announce: Millis(0),
            lonely_wait_ms: LONELY_FIRST_WAIT_MS,
            interval_ms: DEFAULT_INTERVAL_MS,
            listeners: HashMap::new(),
            events: Vec::new(),
            destroyed: false,
            me: Weak::new(),
            on_pump: None,
            start_up_waiters: Vec::new(),
            options,
        }));
        inner.borrow_mut().me = Rc::downgrade(&inner);
        let session = Session(inner.clone());
        if session.0.borrow().options.playing {
            // The first WebSeed request leaves before the tracker sockets open: 1-3 ms sooner
            // on the way to the first frame.
            super::player::fetch_from_start(&session);
        }

        if session.0.borrow().options.p2p {
            let weak = Rc::downgrade(&inner);
            let subscriber: Subscriber = Rc::new(move |message| {
                if let Some(inner) = weak.upgrade() {
                    Session(inner).on_tracker_message(message);
                }
            });
            let mut seen = std::collections::HashSet::new();
            let sockets: Vec<Rc<TrackerSocket>> = tracker_urls
                .iter()
                .filter(|u| seen.insert(u.trim_end_matches('/').to_owned()))
                .filter_map(|u| trackers_for.socket(u))
                .collect();
            for socket in &sockets {
                socket.subscribe(info_hash, &subscriber);
            }
            let mut state = inner.borrow_mut();
            state.trackers = sockets;
            state.subscriber = Some(subscriber);
        }
        session.announce(Some(AnnounceEvent::Started));
        session.pump();
        session
    }

    pub fn info_hash(&self) -> InfoHash {
        self.0.borrow().info_hash
    }

    pub fn stats(&self) -> Stats {
        self.0.borrow().engine.stats(util::now())
    }

    /// Verified bytes at `offset`, if every piece they span is held.
    pub fn read(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        self.0.borrow().engine.read(offset, len)
    }

    pub fn read_available(&self, offset: u64, len: usize) -> Vec<u8> {
        self.0.borrow().engine.read_available(offset, len)
    }

    pub fn with_engine<T>(&self, f: impl FnOnce(&mut Engine) -> T) -> T {
        let result = f(&mut self.0.borrow_mut().engine);
        self.pump();
        result
    }

    /// Reads engine state without driving it (safe inside a pump).
    pub fn peek<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        f(&self.0.borrow().engine)
    }

    /// Like [`Session::with_engine`], but the engine's actions are carried out on the next
    /// turn of the event loop: for callers that run inside a pump (the player).
    pub fn with_engine_quiet<T>(&self, f: impl FnOnce(&mut Engine) -> T) -> T {
        let result = f(&mut self.0.borrow_mut().engine);
        let session = self.clone();
        spawn_local(async move { session.pump() });
        result
    }

    pub fn on(&self, event: &str, callback: Function) {
        self.0
            .borrow_mut()
            .listeners
            .entry(event.to_owned())
            .or_default()
            .push(callback);
    }

    pub fn emit(&self, event: &'static str, value: JsValue) {
        self.0
            .borrow_mut()
            .events
            .push(PageEvent::Named(event, value));
        self.fire_events();
    }

    /// Stops everything: links, fetches, timers, tracker subscriptions (a `stopped` announce).
    pub fn destroy(&self) {
        let (links, pending, fetches, trackers, stopped) = {
            let mut s = self.0.borrow_mut();
            if s.destroyed {
                return;
            }
            s.destroyed = true;
            if let Some((id, _)) = s.timer.take() {
                if let Some(w) = web_sys::window() {
                    w.clear_timeout_with_handle(id);
                }
            }
            let stopped = s.announce_message(Some(AnnounceEvent::Stopped), Vec::new());
            (
                std::mem::take(&mut s.links),
                std::mem::take(&mut s.pending),
                std::mem::take(&mut s.fetches),
                std::mem::take(&mut s.trackers),
                stopped,
            )
        };
        for link in links.values() {
            link.link.close();
        }
        for offer in pending.values() {
            offer.link.close();
        }
        for controller in fetches.values() {
            controller.abort();
        }
        let info_hash = self.info_hash();
        for socket in trackers {
            socket.send(stopped.clone());
            socket.unsubscribe(&info_hash);
        }
        self.wake_start_up_waiters();
    }

    // -----------------------------------------------------------------------------------
    // Trackers and signalling
    // -----------------------------------------------------------------------------------

    /// Announces to every tracker at once; each gets fresh offers for the free slots.
    fn announce(&self, event: Option<AnnounceEvent>) {
        let (trackers, wanted, config) = {
            let mut s = self.0.borrow_mut();
            if s.destroyed || !s.options.p2p || s.trackers.is_empty() {
                return;
            }
            let now = util::now();
            s.next_announce = now.plus(s.interval_ms);
            let used = s.links.len() + s.pending.len();
            let free = s.options.max_conns.saturating_sub(used);
            // A seeder's offers are useful too (leechers need it), but never more than the
            // free slots: every offer is an RTCPeerConnection.
            let per_tracker = (free / s.trackers.len().max(1)).min(MAX_OFFERS_PER_ANNOUNCE);
            let wanted = if matches!(
                event,
                Some(AnnounceEvent::Completed | AnnounceEvent::Stopped)
            ) {
                0
            } else {
                per_tracker
            };
            (s.trackers.clone(), wanted, s.rtc_config.clone())
        };
        for socket in trackers {
            let session = self.clone();
            let config = config.clone();
            spawn_local(async move {
                if event == Some(AnnounceEvent::Started) {
                    session.start_up_done().await;
                }
                let mut offers = Vec::new();
                // Offers of one announce are gathered in parallel.
                let made = futures_util::future::join_all((0..wanted).map(|_| {
                    let session = session.clone();
                    let config = config.clone();
                    async move { session.make_offer(&config).await }
                }))
                .await;
                for offer in made.into_iter().flatten() {
                    offers.push(offer);
                }
                let json = session.0.borrow().announce_message(event, offers);
                socket.send(json);
            });
        }
    }

    /// Resolves once the first piece is verified (or held from the start, when seeding) and a
    /// player streaming the torrent shows its first frame, or after [`START_UP_MS`]; at once
    /// when there is no WebSeed (peers are the only source). The first announce's offers wait
    /// for it: each RTCPeerConnection costs the main thread 3-5 ms, which at start-up belongs
    /// to the first WebSeed pieces and to the player appending them (the first frame waits for
    /// those; peers help from the second second on). Woken by the pump that ends the start-up,
    /// not by polling: nothing runs on the main thread meanwhile.
    async fn start_up_done(&self) {
        let promise = {
            let mut s = self.0.borrow_mut();
            if s.start_up_over() {
                return;
            }
            let waiters = &mut s.start_up_waiters;
            js_sys::Promise::new(&mut |resolve, _| {
                if let Some(window) = web_sys::window() {
                    let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(
                        &resolve,
                        START_UP_MS as i32,
                    );
                }
                waiters.push(resolve);
            })
        };
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }

    /// Resolves the `start_up_done` waits once the start-up is over.
    fn wake_start_up_waiters(&self) {
        let waiters = {
            let mut s = self.0.borrow_mut();
            if s.start_up_waiters.is_empty() || !s.start_up_over() {
                return;
            }
            std::mem::take(&mut s.start_up_waiters)
        };
        for resolve in waiters {
            let _ = resolve.call0(&JsValue::NULL);
        }
    }

    async fn make_offer(&self, config: &web_sys::RtcConfiguration) -> Option<Offer> {
        let key = self.0.borrow_mut().new_key();
        let sink = self.link_sink(key);
        match Link::offer(config, sink).await {
            Ok((link, sdp)) => {
                let offer_id = OfferId(util::random_bytes::<20>());
                let mut s = self.0.borrow_mut();
                if s.destroyed {
                    link.close();
                    return None;
                }
                s.pending.insert(
                    offer_id,
                    PendingOffer {
                        link: Rc::new(link),
                        key,
                        created: util::now(),
                    },
                );
                Some(Offer {
                    offer_id,
                    sdp: Sdp::from_text(&sdp),
                })
            }
            Err(e) => {
                // One failed offer must not block the announce (a WebTorrent bug, §1.3).
                util::warn(&format!(
                    "cannot create a WebRTC offer: {}",
                    util::describe(&e)
                ));
                None
            }
        }
    }

    fn on_tracker_message(&self, message: ServerMessage) {
        match message {
            ServerMessage::Announce(response) => {
                let mut s = self.0.borrow_mut();
                if let Some(interval) = response.interval.filter(|&i| i > 0) {
                    s.interval_ms = (u64::from(interval) * 1000).clamp(10_000, 3_600_000);
                }
                let now = util::now();
                let others = response.complete + response.incomplete;
                let lonely = others > 1 && !s.engine.is_done() && !s.links.values().any(|l| l.open);
                let hungry =
                    s.links.len() < s.options.max_conns / 2 && others > s.links.len() as u64 + 1;
                let wait = if lonely {
                    let wait = s.lonely_wait_ms;
                    s.lonely_wait_ms = (wait * 2).min(HUNGRY_INTERVAL_MS);
                    wait
                } else if hungry {
                    HUNGRY_INTERVAL_MS
                } else {
                    s.interval_ms
                };
                s.next_announce = now.plus(wait);
                drop(s);
                self.schedule_timer();
            }
            ServerMessage::Offer(offer) => self.on_offer(offer),
            ServerMessage::Answer(answer) => self.on_answer(answer),
            ServerMessage::Failure(failure) => {
                util::warn(&format!("tracker: {}", failure.reason));
                self.emit("warning", JsValue::from_str(&failure.reason));
            }
            ServerMessage::Scrape(_) => {}
        }
    }

    fn on_offer(&self, offer: crate::tracker::ws::RelayedOffer) {
        let (config, key) = {
            let mut s = self.0.borrow_mut();
            if s.destroyed || offer.peer_id == s.peer_id {
                return;
            }
            let used = s.links.len() + s.pending.len();
            // Never answer a peer we are already linked to (§2.9): one connection per pair.
            if used >= s.options.max_conns || s.links.values().any(|l| l.remote == offer.peer_id) {
                return;
            }
            (s.rtc_config.clone(), s.new_key())
        };
        let session = self.clone();
        spawn_local(async move {
            let sink = session.link_sink(key);
            match Link::answer(&config, &offer.sdp.to_text(), sink).await {
                Ok((link, sdp)) => {
                    let json = {
                        let mut s = session.0.borrow_mut();
                        if s.destroyed || s.links.values().any(|l| l.remote == offer.peer_id) {
                            link.close();
                            return;
                        }
                        s.links.insert(
                            key,
                            PeerLink {
                                link: Rc::new(link),
                                remote: offer.peer_id,
                                open: false,
                                offered: false,
                            },
                        );
                        let mut answer = Announce::new(s.info_hash, s.peer_id);
                        answer.answer = Some(crate::tracker::ws::Answer {
                            to_peer_id: offer.peer_id,
                            offer_id: offer.offer_id,
                            sdp: Sdp::from_text(&sdp),
                        });
                        ClientMessage::Announce(answer).to_json()
                    };
                    // The answer goes back through every tracker socket that may know the peer:
                    // the one the offer came by is among them.
                    let trackers = session.0.borrow().trackers.clone();
                    for socket in trackers.iter().filter(|t| t.is_open()) {
                        socket.send(json.clone());
                    }
                }
                Err(e) => util::warn(&format!(
                    "cannot answer a WebRTC offer: {}",
                    util::describe(&e)
                )),
            }
        });
    }

    fn on_answer(&self, answer: crate::tracker::ws::RelayedAnswer) {
        let pending = {
            let mut s = self.0.borrow_mut();
            let Some(pending) = s.pending.remove(&answer.offer_id) else {
                return;
            };
            if let Some((&existing_key, existing)) =
                s.links.iter().find(|(_, l)| l.remote == answer.peer_id)
            {
                // Both sides offered to each other. Keep the connection offered by the lower
                // peer id, on both sides alike, so exactly one survives (§2.9).
                let keep_ours = s.peer_id < answer.peer_id;
                if !keep_ours || existing.offered {
                    pending.link.close();
                    return;
                }
                let existing = s.links.remove(&existing_key);
                if let Some(existing) = existing {
                    existing.link.close();
                    if existing.open {
                        s.engine.peer_closed(existing_key, util::now());
                    }
                }
            }
            s.links.insert(
                pending.key,
                PeerLink {
                    link: pending.link.clone(),
                    remote: answer.peer_id,
                    open: false,
                    offered: true,
                },
            );
            pending
        };
        let session = self.clone();
        spawn_local(async move {
            if let Err(e) = pending.link.accept_answer(&answer.sdp.to_text()).await {
                util::warn(&format!("a WebRTC answer failed: {}", util::describe(&e)));
                let mut s = session.0.borrow_mut();
                s.links.remove(&pending.key);
            }
        });
    }

    fn link_sink(&self, key: PeerKey) -> rtc::EventSink {
        let weak = Rc::downgrade(&self.0);
        Rc::new(move |event| {
            let Some(inner) = weak.upgrade() else { return };
            Session(inner).on_link_event(key, event);
        })
    }

    fn on_link_event(&self, key: PeerKey, event: LinkEvent) {
        {
            let mut s = self.0.borrow_mut();
            if s.destroyed {
                return;
            }
            let now = util::now();
            match event {
                LinkEvent::Open => s.link_open(key, now),
                LinkEvent::Data(bytes) => {
                    // A message before the `open` event means the channel is open: an accepted
                    // link waits for exactly this first message, it must not be lost.
                    s.link_open(key, now);
                    if s.links.get(&key).is_some_and(|l| l.open) {
                        s.engine.peer_data(key, &bytes, now);
                    }
                }
                LinkEvent::Writable => s.engine.set_peer_writable(key, true),
                LinkEvent::Closed => {
                    if let Some(link) = s.links.remove(&key) {
                        link.link.close();
                        if link.open {
                            s.engine.peer_closed(key, now);
                        }
                    }
                }
            }
        }
        self.pump();
    }

    // -----------------------------------------------------------------------------------
    // The drive loop
    // -----------------------------------------------------------------------------------

    /// Carries out every action the engine has, then re-arms the timer and fires page events.
    pub fn pump(&self) {
        let mut fetches = Vec::new();
        let mut hashing = Vec::new();
        let mut completed = false;
        {
            let mut s = self.0.borrow_mut();
            if s.destroyed {
                return;
            }
            while let Some(action) = s.engine.poll_action() {
                match action {
                    Action::Send { peer, data } => {
                        let link = s.links.get(&peer).map(|l| l.link.clone());
                        match link {
                            Some(link) if link.send(&data) => {
                                if link.buffered() > rtc::HIGH_WATER {
                                    s.engine.set_peer_writable(peer, false);
                                }
                            }
                            _ => {
                                s.engine.peer_closed(peer, util::now());
                                if let Some(l) = s.links.remove(&peer) {
                                    l.link.close();
                                }
                            }
                        }
                    }
                    Action::ClosePeer { peer, reason } => {
                        if let Some(l) = s.links.remove(&peer) {
                            util::log(&format!("closing a peer: {reason:?}"));
                            l.link.close();
                        }
                    }
                    Action::WebSeedRequest {
                        url,
                        start,
                        end,
                        parts,
                    } => {
                        fetches.push((url, start, end, parts));
                    }
                    Action::WebSeedCancel { id } => {
                        // A request that still carries parts someone wants goes on.
                        if let Some(controller) = s.fetches.remove(&id) {
                            if !s
                                .fetches
                                .values()
                                .any(|c| js_sys::Object::is(c, &controller))
                            {
                                controller.abort();
                            }
                        }
                    }
                    Action::HashPiece { index, ticket } => {
                        let input = s.engine.hash_input(index, ticket);
                        let started = s
                            .subtle
                            .as_ref()
                            .zip(input)
                            .and_then(|(subtle, data)| util::start_sha1(subtle, data));
                        hashing.push((index, ticket, started));
                    }
                    Action::PieceVerified { index } => {
                        s.events
                            .push(PageEvent::Named("verified", JsValue::from(index)));
                    }
                    Action::PieceFailed { index, .. } => {
                        s.events
                            .push(PageEvent::Named("hashfail", JsValue::from(index)));
                    }
                    Action::MetadataReady => {
                        s.events.push(PageEvent::Named("metadata", JsValue::TRUE));
                    }
                    Action::Done => {
                        s.events.push(PageEvent::Named("done", JsValue::TRUE));
                        // BEP 3's `completed` (WebTorrent sends it too): else trackers count
                        // us as a leecher until the next announce. Not for a torrent that was
                        // complete from the start (`seed`): its `started` says `left: 0`.
                        let stats = s.engine.stats(util::now());
                        completed =
                            stats.downloaded_from_peers + stats.downloaded_from_webseeds > 0;
                    }
                }
            }
            // Unanswered offers expire.
            let now = util::now();
            let expired: Vec<OfferId> = s
                .pending
                .iter()
                .filter(|(_, p)| now.since(p.created) > OFFER_LIFETIME_MS)
                .map(|(id, _)| *id)
                .collect();
            for id in expired {
                if let Some(p) = s.pending.remove(&id) {
                    p.link.close();
                }
            }
        }
        for (url, start, end, parts) in fetches {
            self.fetch(url, start, end, parts);
        }
        for (index, ticket, started) in hashing {
            let session = self.clone();
            spawn_local(async move {
                let digest = match started {
                    Some(promise) => util::sha1_result(promise).await,
                    None => None,
                };
                session.piece_hashed(index, ticket, digest);
            });
        }
        self.wake_start_up_waiters();
        if completed {
            self.announce(Some(AnnounceEvent::Completed));
        }
        self.schedule_timer();
        let hook = self.0.borrow().on_pump.clone();
        if let Some(hook) = hook {
            hook();
        }
        self.fire_events();
    }

    fn fire_events(&self) {
        let (events, listeners) = {
            let mut s = self.0.borrow_mut();
            if s.events.is_empty() {
                return;
            }
            (std::mem::take(&mut s.events), s.listeners.clone())
        };
        for PageEvent::Named(name, value) in events {
            for callback in listeners.get(name).into_iter().flatten() {
                if let Err(e) = callback.call1(&JsValue::NULL, &value) {
                    util::warn(&format!(
                        "a '{name}' listener threw: {}",
                        util::describe(&e)
                    ));
                }
            }
        }
    }

    fn schedule_timer(&self) {
        let mut s = self.0.borrow_mut();
        if s.destroyed {
            return;
        }
        let now = util::now();
        let mut due = s.engine.next_timeout();
        if s.options.p2p && !s.trackers.is_empty() {
            due = due.min(s.next_announce);
        }
        if let Some((_, at)) = s.timer {
            if at <= due {
                return; // an earlier (or equal) wake-up is already set
            }
        }
        let Some(window) = web_sys::window() else {
            return;
        };
        if let Some((id, _)) = s.timer.take() {
            window.clear_timeout_with_handle(id);
        }
        if s.timer_closure.is_none() {
            let weak = s.me.clone();
            s.timer_closure = Some(Closure::<dyn FnMut()>::new(move || {
                if let Some(inner) = weak.upgrade() {
                    Session(inner).on_timer();
                }
            }));
        }
        let delay = due.since(now).min(60_000) as i32;
        let Some(callback) = s.timer_closure.as_ref() else {
            return;
        };
        if let Ok(id) = window.set_timeout_with_callback_and_timeout_and_arguments_0(
            callback.as_ref().unchecked_ref(),
            delay,
        ) {
            s.timer = Some((id, due));
        }
    }

    fn on_timer(&self) {
        let announce_due = {
            let mut s = self.0.borrow_mut();
            s.timer = None;
            if s.destroyed {
                return;
            }
            let now = util::now();
            s.engine.tick(now);
            s.options.p2p && now >= s.next_announce
        };
        if announce_due {
            self.announce(None);
        }
        self.pump();
    }

    // -----------------------------------------------------------------------------------
    // WebSeed
    // -----------------------------------------------------------------------------------

    /// One WebSeed request, sent at once; its parts go to the engine as they come in
    /// (`fetches` maps every part neither delivered nor cancelled to the request's controller).
    fn fetch(&self, url: String, start: u64, end: u64, parts: Vec<WebSeedPart>) {
        let Ok(controller) = AbortController::new() else {
            return;
        };
        let request = webseed::RangeFetch::start(&url, start, end, &controller);
        {
            let mut s = self.0.borrow_mut();
            for part in &parts {
                s.fetches.insert(part.id, controller.clone());
            }
        }
        let session = self.clone();
        spawn_local(async move {
            // While the response is on its way (the first one: start-up, whose pieces the
            // engine hashes itself).
            util::warm_up_hashing();
            let result = match request {
                Ok(request) => {
                    let deliver = |(id, body): (u64, Vec<u8>)| {
                        session.webseed_parts(std::iter::once((id, Ok(body))));
                        let s = session.0.borrow();
                        !s.destroyed && parts.iter().any(|p| s.fetches.contains_key(&p.id))
                    };
                    request.stream(&parts, &controller, deliver).await
                }
                Err(err) => Err(err),
            };
            if let Err(err) = result {
                session.webseed_parts(parts.iter().map(|p| (p.id, Err(err.clone()))));
            }
        });
    }

    /// A piece's digest is back (`None`: the browser failed to hash it, so it is hashed here).
    fn piece_hashed(&self, index: u32, ticket: u64, digest: Option<[u8; 20]>) {
        {
            let mut s = self.0.borrow_mut();
            if s.destroyed {
                return;
            }
            let digest = digest.or_else(|| {
                use sha1::{Digest, Sha1};
                let input = s.engine.hash_input(index, ticket)?;
                Some(Sha1::digest(input).into())
            });
            if let Some(digest) = digest {
                s.engine.piece_hashed(index, ticket, digest, util::now());
            }
        }
        self.pump();
    }

    /// Hands parts of WebSeed responses to the engine (those neither cancelled nor delivered
    /// already), then pumps once.
    fn webseed_parts(&self, parts: impl Iterator<Item = (u64, Result<Vec<u8>, WebSeedError>)>) {
        {
            let mut s = self.0.borrow_mut();
            if s.destroyed {
                return;
            }
            let now = util::now();
            for (id, result) in parts {
                if s.fetches.remove(&id).is_some() {
                    s.engine.webseed_response(id, result, now);
                }
            }
        }
        self.pump();
    }
}

impl Inner {
    /// The link's data channel is open (once): the engine gets the connection.
    fn link_open(&mut self, key: PeerKey, now: Millis) {
        let Some(link) = self.links.get_mut(&key) else {
            return;
        };
        if link.open {
            return;
        }
        link.open = true;
        self.lonely_wait_ms = LONELY_FIRST_WAIT_MS;
        if link.offered {
            self.engine.peer_connected(key, now);
        } else {
            // The offerer speaks first: its channel may not be open yet (Engine::peer_accepted).
            self.engine.peer_accepted(key, now);
        }
        self.events
            .push(PageEvent::Named("peer", JsValue::from_f64(key.0 as f64)));
    }

    fn new_key(&mut self) -> PeerKey {
        let key = PeerKey(self.next_key);
        self.next_key += 1;
        key
    }

    /// Whether the first announce's offers may go (see `Session::start_up_done`).
    fn start_up_over(&self) -> bool {
        self.destroyed
            || !self.engine.has_webseeds()
            || (self.engine.stored_bytes() > 0 && !self.engine.starting_up())
    }

    fn announce_message(&self, event: Option<AnnounceEvent>, offers: Vec<Offer>) -> String {
        let stats = self.engine.stats(util::now());
        let mut announce = Announce::new(self.info_hash, self.peer_id);
        announce.numwant = Some(offers.len() as u32);
        announce.uploaded = Some(stats.uploaded);
        announce.downloaded = Some(stats.downloaded_from_peers + stats.downloaded_from_webseeds);
        // Unknown (no metadata yet) is left out: `null` would count us as a seeder (§1.3).
        announce.left = stats
            .has_metadata
            .then(|| stats.bytes_total.saturating_sub(self.verified_bytes()));
        announce.event = event;
        announce.offers = offers;
        ClientMessage::Announce(announce).to_json()
    }

    fn verified_bytes(&self) -> u64 {
        let Some(meta) = self.engine.metainfo() else {
            return 0;
        };
        (0..meta.info.piece_count())
            .filter(|&i| self.engine.has_piece(i))
            .map(|i| meta.info.piece_size(i) as u64)
            .sum()
    }
}

//! WebSocket tracker connections, one per tracker URL, shared by every torrent of the page (as
//! WebTorrent does, protocol §1.1): messages are JSON text frames and every server message names
//! its info-hash, so answers are routed to the torrent that subscribed to it.
//!
//! A dead or slow tracker must not hold anything up: sockets connect independently, messages for
//! a socket that is not open yet wait in a small bounded queue, and a closed socket reconnects
//! after a short jittered backoff (seconds, not WebTorrent's minutes).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use super::util;
use crate::tracker::ws::ServerMessage;
use crate::InfoHash;

/// Messages kept for a socket that is (re)connecting; older ones are dropped first (announces
/// are periodic and offers expire anyway).
const MAX_QUEUED: usize = 32;
/// Reconnect delays: 1 s doubling to at most 60 s, plus up to 1 s of jitter.
const BACKOFF_START_MS: u32 = 1_000;
const BACKOFF_MAX_MS: u32 = 60_000;

pub type Subscriber = Rc<dyn Fn(ServerMessage)>;

/// The page's tracker sockets.
#[derive(Default)]
pub struct Trackers {
    sockets: RefCell<HashMap<String, Rc<TrackerSocket>>>,
}

impl Trackers {
    /// The shared socket for `url`, connecting it on first use. Only `ws://` and `wss://` URLs
    /// work in a browser; others give `None`.
    pub fn socket(&self, url: &str) -> Option<Rc<TrackerSocket>> {
        let url = url.trim_end_matches('/').to_owned();
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return None;
        }
        let mut sockets = self.sockets.borrow_mut();
        let socket = sockets
            .entry(url.clone())
            .or_insert_with(|| TrackerSocket::new(url))
            .clone();
        Some(socket)
    }
}

/// One tracker URL's socket, its queue and its subscribers.
pub struct TrackerSocket {
    url: String,
    state: RefCell<State>,
    me: RefCell<Weak<TrackerSocket>>,
}

#[derive(Default)]
struct State {
    socket: Option<WebSocket>,
    open: bool,
    queue: VecDeque<String>,
    subscribers: HashMap<InfoHash, Weak<dyn Fn(ServerMessage)>>,
    backoff_ms: u32,
    handlers: Vec<Closure<dyn FnMut(JsValue)>>,
    /// Messages received and sent, for stats and tests.
    received: u64,
    failures: u64,
}

impl TrackerSocket {
    fn new(url: String) -> Rc<Self> {
        let socket = Rc::new(Self {
            url,
            state: RefCell::new(State {
                backoff_ms: BACKOFF_START_MS,
                ..State::default()
            }),
            me: RefCell::new(Weak::new()),
        });
        *socket.me.borrow_mut() = Rc::downgrade(&socket);
        socket.connect();
        socket
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn is_open(&self) -> bool {
        self.state.borrow().open
    }

    /// Routes this info-hash's messages to `subscriber` (held weakly: a dropped torrent simply
    /// stops receiving).
    pub fn subscribe(&self, info_hash: InfoHash, subscriber: &Subscriber) {
        self.state
            .borrow_mut()
            .subscribers
            .insert(info_hash, Rc::downgrade(subscriber));
    }

    pub fn unsubscribe(&self, info_hash: &InfoHash) {
        self.state.borrow_mut().subscribers.remove(info_hash);
    }

    /// Sends now if open, else queues (bounded).
    pub fn send(&self, json: String) {
        let mut state = self.state.borrow_mut();
        if state.open {
            if let Some(socket) = &state.socket {
                if socket.send_with_str(&json).is_ok() {
                    return;
                }
            }
        }
        if state.queue.len() >= MAX_QUEUED {
            state.queue.pop_front();
        }
        state.queue.push_back(json);
    }

    fn connect(&self) {
        let socket = match WebSocket::new(&self.url) {
            Ok(s) => s,
            Err(e) => {
                util::warn(&format!("tracker {}: {}", self.url, util::describe(&e)));
                self.schedule_reconnect();
                return;
            }
        };
        let weak = self.me.borrow().clone();
        let w = weak.clone();
        let onopen = Closure::<dyn FnMut(JsValue)>::new(move |_| {
            if let Some(me) = w.upgrade() {
                me.on_open();
            }
        });
        let w = weak.clone();
        let onmessage = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let Some(me) = w.upgrade() else { return };
            if let Some(text) = event
                .dyn_ref::<MessageEvent>()
                .and_then(|e| e.data().as_string())
            {
                me.on_message(&text);
            }
        });
        let w = weak;
        let onclose = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let Some(me) = w.upgrade() else { return };
            let code = event.dyn_ref::<CloseEvent>().map(|e| e.code()).unwrap_or(0);
            me.on_close(code);
        });
        socket.set_onopen(Some(onopen.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        socket.set_onclose(Some(onclose.as_ref().unchecked_ref()));
        let mut state = self.state.borrow_mut();
        let old = std::mem::replace(&mut state.handlers, vec![onopen, onmessage, onclose]);
        // Old handlers belong to a socket that is closed; drop them outside this call stack.
        wasm_bindgen_futures::spawn_local(async move {
            util::sleep(0).await;
            drop(old);
        });
        state.socket = Some(socket);
        state.open = false;
    }

    fn on_open(&self) {
        let mut state = self.state.borrow_mut();
        state.open = true;
        state.backoff_ms = BACKOFF_START_MS;
        let queued: Vec<String> = state.queue.drain(..).collect();
        if let Some(socket) = &state.socket {
            for json in queued {
                let _ = socket.send_with_str(&json);
            }
        }
    }

    fn on_message(&self, text: &str) {
        let message = match ServerMessage::parse(text) {
            Ok(m) => m,
            Err(e) => {
                util::warn(&format!("tracker {}: unreadable message: {e}", self.url));
                return;
            }
        };
        let subscriber = {
            let mut state = self.state.borrow_mut();
            state.received += 1;
            if matches!(message, ServerMessage::Failure(_)) {
                state.failures += 1;
            }
            message
                .info_hash()
                .and_then(|h| state.subscribers.get(&h))
                .and_then(Weak::upgrade)
        };
        // Called without holding the state: the subscriber may send on this socket.
        if let Some(subscriber) = subscriber {
            subscriber(message);
        }
    }

    fn on_close(&self, code: u16) {
        {
            let mut state = self.state.borrow_mut();
            state.open = false;
            state.socket = None;
        }
        util::warn(&format!(
            "tracker {} closed (code {code}); reconnecting",
            self.url
        ));
        self.schedule_reconnect();
    }

    fn schedule_reconnect(&self) {
        let delay = {
            let mut state = self.state.borrow_mut();
            let delay = state.backoff_ms;
            state.backoff_ms = (state.backoff_ms * 2).min(BACKOFF_MAX_MS);
            delay + (util::random_bytes::<2>()[0] as u32 * 4)
        };
        let weak = self.me.borrow().clone();
        wasm_bindgen_futures::spawn_local(async move {
            util::sleep(delay).await;
            if let Some(me) = weak.upgrade() {
                me.connect();
            }
        });
    }
}

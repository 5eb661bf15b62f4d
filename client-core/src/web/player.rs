//! MediaSource playback from verified pieces (../shared/streaming.md).
//!
//! The player asks the engine for the bytes the media [`Probe`] needs (the file's first bytes;
//! for a progressive MP4 also the tail holding its `moov`), settles on a [`MediaPlan`], then
//! appends one fragment after another as its pieces verify, keeping about [`AHEAD_S`] seconds
//! buffered. It tells the engine where the playhead is, so the picker fetches what is due first
//! (from peers, or from the WebSeed when peers are too slow); a seek moves that window at once.
//! Played media is removed from the SourceBuffer ([`BEHIND_S`]) and the engine evicts played
//! pieces, so memory stays bounded whatever the file's size.
//!
//! Feeding, by plan:
//! - fragmented MP4 and WebM with an index: init segment, then fragments by the index (seekable);
//! - progressive MP4 (foreign torrents): fragments built in wasm by the [`Remuxer`] (seekable);
//! - fragmented MP4/WebM without an index, MP3/AAC: the bytes in order (seekable within what
//!   was appended);
//! - anything MediaSource cannot take: the WebSeed URL as a plain `src`, with a `warning` event
//!   (playback still works, only without peers), or an `error` event when there is no WebSeed.

use std::cell::RefCell;
use std::ops::Range;
use std::rc::{Rc, Weak};

use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{HtmlMediaElement, MediaSource, MediaSourceReadyState, SourceBuffer, Url};

use super::session::Session;
use super::util;
use crate::engine::Engine;
use crate::media::plan::{MediaPlan, Probe, ProbeStep};
use crate::media::remux::Remuxer;
use crate::media::FragmentIndex;

/// Seconds of media kept appended ahead of the playhead.
pub const AHEAD_S: f64 = 30.0;
/// Seconds of played media kept behind the playhead (for small seeks back).
pub const BEHIND_S: f64 = 20.0;
/// Byte rate assumed before the duration is known (2 Mbit/s).
const DEFAULT_BYTES_PER_SEC: u64 = 250_000;
/// Longest the start-up waits for a decoded first frame to be presented (a hidden tab never
/// presents it).
const FRAME_WAIT_MS: u32 = 250;
/// Bytes per append when feeding in order (no index).
const SEQUENTIAL_CHUNK: u64 = 256 * 1024;
/// Fewest bytes of a fragment appended before the whole of it is verified. A fragment is 2 s
/// of media (hundreds of KB); a browser can show frames from its beginning (Firefox does), so
/// while little is buffered the verified beginning goes in first, one piece or more at a time.
const MIN_PARTIAL_APPEND: usize = 16 * 1024;
/// Below this many seconds buffered ahead of the playhead (start-up, after a seek, catching
/// up) fragments are appended in parts as they verify; above it, whole, one append each.
const PARTIAL_BELOW_S: f64 = 2.0;

pub struct Player {
    inner: Rc<RefCell<Inner>>,
}

enum Stage {
    Probing(Box<Probe>),
    Playing(Box<Playing>),
    /// Handed to a plain `src`, failed, or stopped: nothing more to do here.
    Done,
}

/// Where the bytes to append come from.
enum Feed {
    /// Init segment, then fragments by time.
    Indexed {
        init: Range<u64>,
        index: FragmentIndex,
    },
    /// Fragments built from a progressive MP4's samples.
    Remux(Box<Remuxer>),
    /// The file's bytes in order from `next` (after an optional init segment).
    Sequential { init: Option<Range<u64>>, next: u64 },
}

struct Playing {
    feed: Feed,
    buffer: SourceBuffer,
    init_appended: bool,
    /// Next fragment to append (indexed and remux feeds).
    next: usize,
    /// Bytes of fragment `next` already appended (indexed feed): the SourceBuffer's parser is in
    /// the middle of that fragment when this is not 0.
    partial: u64,
    /// Media bytes per second, for the engine's deadlines.
    bytes_per_sec: u64,
    /// The playhead offset last told to the engine.
    told_offset: Option<u64>,
    ended: bool,
}

struct Inner {
    /// Listeners on the element, the MediaSource and the SourceBuffer, removed again by
    /// [`Player::stop`] (a dropped closure still registered would throw on the next event).
    listeners: Vec<(web_sys::EventTarget, &'static str, js_sys::Function)>,
    session: Session,
    element: HtmlMediaElement,
    source: MediaSource,
    object_url: String,
    stage: Stage,
    handlers: Vec<Closure<dyn FnMut(JsValue)>>,
    /// The offset the probe asked the engine for last (so a tail fetch happens once).
    probe_asked: Option<u64>,
    /// The start-up waits for the first frame to be shown (see `end_start_up_once_shown`).
    first_frame_awaited: bool,
}

/// A media element playing from a fresh MediaSource (its `src` set to the source's object
/// URL), before the player has a torrent. Made first when the torrent is still to be fetched:
/// the element's set-up (Chromium creates its media pipeline; `sourceopen` came 25-30 ms after
/// `src` was set on a busy 2-core machine) then runs while the `.torrent` and the first pieces
/// are on their way, instead of after them.
pub struct MediaAttachment {
    element: HtmlMediaElement,
    source: MediaSource,
    object_url: String,
}

impl MediaAttachment {
    pub fn new(element: HtmlMediaElement) -> Result<MediaAttachment, JsValue> {
        let source = MediaSource::new()?;
        let object_url = Url::create_object_url_with_source(&source)?;
        element.set_src(&object_url);
        Ok(MediaAttachment {
            element,
            source,
            object_url,
        })
    }

    /// Gives the element back empty (the torrent could not be added): no `src`, nothing loading.
    pub fn detach(self) {
        let _ = Url::revoke_object_url(&self.object_url);
        let _ = self.element.remove_attribute("src");
        self.element.load();
    }
}

impl Player {
    /// Plays the session's file in `element`.
    pub fn attach(
        session: Session,
        element: HtmlMediaElement,
        _mime_hint: Option<String>,
    ) -> Result<Player, JsValue> {
        // The beginning is fetched first: the requests leave before the element and its
        // MediaSource take the main thread to set up (about 10 ms in Chromium).
        fetch_from_start(&session);
        Ok(Player::start(session, MediaAttachment::new(element)?))
    }

    /// Plays the session's file in an element made ready beforehand.
    pub fn attach_prepared(session: Session, media: MediaAttachment) -> Player {
        fetch_from_start(&session);
        Player::start(session, media)
    }

    fn start(session: Session, media: MediaAttachment) -> Player {
        let MediaAttachment {
            element,
            source,
            object_url,
        } = media;
        let inner = Rc::new(RefCell::new(Inner {
            session: session.clone(),
            element: element.clone(),
            source: source.clone(),
            object_url,
            stage: Stage::Probing(Box::new(Probe::new(0))),
            handlers: Vec::new(),
            listeners: Vec::new(),
            probe_asked: None,
            first_frame_awaited: false,
        }));
        let weak = Rc::downgrade(&inner);
        let listen = |target: &web_sys::EventTarget, name: &'static str, seek: bool| {
            let weak: Weak<RefCell<Inner>> = weak.clone();
            let closure = Closure::<dyn FnMut(JsValue)>::new(move |_| {
                if let Some(inner) = weak.upgrade() {
                    if seek {
                        on_seeking(&inner);
                    }
                    advance(&inner);
                }
            });
            let function: &js_sys::Function = closure.as_ref().unchecked_ref();
            let _ = target.add_event_listener_with_callback(name, function);
            ((target.clone(), name, function.clone()), closure)
        };
        let events: [(&web_sys::EventTarget, &'static str, bool); 5] = [
            // A prepared source may be open already: `advance` below covers that.
            (source.as_ref(), "sourceopen", false),
            // The first frame is there: the session may now spend time on peer offers.
            (element.as_ref(), "loadeddata", false),
            (element.as_ref(), "timeupdate", false),
            (element.as_ref(), "waiting", false),
            (element.as_ref(), "seeking", true),
        ];
        {
            let mut state = inner.borrow_mut();
            for (target, name, seek) in events {
                let (registration, closure) = listen(target, name, seek);
                state.listeners.push(registration);
                state.handlers.push(closure);
            }
        }
        // New verified pieces may complete what the player waits for.
        let w = weak.clone();
        session.0.borrow_mut().on_pump = Some(Rc::new(move || {
            if let Some(inner) = w.upgrade() {
                advance(&inner);
            }
        }));
        advance(&inner);
        Player { inner }
    }

    pub fn stop(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.session.0.borrow_mut().on_pump = None;
        end_start_up(&inner.session);
        for (target, name, function) in inner.listeners.drain(..) {
            let _ = target.remove_event_listener_with_callback(name, &function);
        }
        let _ = Url::revoke_object_url(&inner.object_url);
        inner.stage = Stage::Done;
        // The handlers may be on the stack right now (stop from inside an event): drop later.
        let handlers = std::mem::take(&mut inner.handlers);
        wasm_bindgen_futures::spawn_local(async move {
            util::sleep(0).await;
            drop(handlers);
        });
    }
}

/// Starts the start-up: the WebSeed serves the urgent first pieces, from byte 0. Again when the
/// session began so (`Options::playing`): nothing changes then.
pub(super) fn fetch_from_start(session: &Session) {
    session.with_engine(|e| {
        e.set_starting_up(true);
        e.set_playhead(0, DEFAULT_BYTES_PER_SEC, util::now())
    });
}

/// The player no longer waits for a first frame (it has one, stopped or gave up): the WebSeed
/// may fill the buffer ahead again, and the first announce's offers may go.
fn end_start_up(session: &Session) {
    session.with_engine_quiet(|e| e.set_starting_up(false));
}

/// Ends the start-up once the decoded first frame is presented, not at `loadeddata`: what the
/// start-up's end lets loose (background WebSeed fetches, the first announce's peer
/// connections) takes the main thread for about 10 ms in Chromium, and the frame is painted by
/// that same thread after `loadeddata` (measured: the first frame came 11 ms later). A video
/// says so through `requestVideoFrameCallback`; audio, or a browser without it, ends at once.
/// A frame that is never presented (a hidden tab paints nothing) ends it after
/// [`FRAME_WAIT_MS`].
fn end_start_up_once_shown(session: &Session, element: &HtmlMediaElement) {
    let request = js_sys::Reflect::get(element, &"requestVideoFrameCallback".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    let Some(request) = request else {
        end_start_up(session);
        return;
    };
    // Whichever comes first ends it; the other does nothing.
    let ended = Rc::new(std::cell::Cell::new(false));
    let end_once = {
        let session = session.clone();
        move || {
            if !ended.replace(true) {
                end_start_up(&session);
            }
        }
    };
    let shown = Closure::once_into_js(end_once.clone());
    if request.call1(element, &shown).is_err() {
        end_once();
        return;
    }
    wasm_bindgen_futures::spawn_local(async move {
        util::sleep(FRAME_WAIT_MS).await;
        end_once();
    });
}

/// Moves playback forward as far as verified data allows. Called on every engine pump and
/// media event; cheap when there is nothing to do.
fn advance(inner_rc: &Rc<RefCell<Inner>>) {
    let mut inner = inner_rc.borrow_mut();
    // HAVE_CURRENT_DATA: the first frame is decoded (`loadeddata`); the start-up ends once it
    // is on screen.
    if inner.element.ready_state() >= 2
        && !inner.first_frame_awaited
        && inner.session.peek(Engine::starting_up)
    {
        inner.first_frame_awaited = true;
        end_start_up_once_shown(&inner.session, &inner.element);
    }
    if matches!(inner.stage, Stage::Done)
        || inner.source.ready_state() != MediaSourceReadyState::Open
    {
        return;
    }
    if matches!(inner.stage, Stage::Probing(_)) {
        probe(&mut inner, inner_rc);
    }
    if matches!(inner.stage, Stage::Playing(_)) {
        feed(&mut inner);
    }
}

/// Feeds the probe what it asks for, as the engine verifies it, until it settles on a plan.
fn probe(inner: &mut Inner, inner_rc: &Rc<RefCell<Inner>>) {
    let Some(total) = inner
        .session
        .peek(|e| e.metainfo().map(|m| m.info.total_length))
    else {
        return; // metadata still coming (magnet)
    };
    let Stage::Probing(probe) = &mut inner.stage else {
        return;
    };
    if probe.file_len() != total {
        **probe = Probe::new(total);
    }
    let supported = |mime: &str| MediaSource::is_type_supported(mime);
    loop {
        let Stage::Probing(probe) = &mut inner.stage else {
            return;
        };
        match probe.poll(&supported) {
            ProbeStep::Need(range) => {
                let len = (range.end - range.start) as usize;
                match inner.session.read(range.start, len) {
                    Some(bytes) => probe.feed(range.start, &bytes),
                    None => {
                        // Not verified yet: point the engine there (the tail of a progressive
                        // MP4 costs one such fetch), once.
                        if inner.probe_asked != Some(range.start) {
                            inner.probe_asked = Some(range.start);
                            let at = range.start;
                            inner.session.with_engine_quiet(|e| {
                                e.set_playhead(at, DEFAULT_BYTES_PER_SEC, util::now())
                            });
                        }
                        return;
                    }
                }
            }
            ProbeStep::Ready(plan) => {
                start_playing(inner, inner_rc, plan, total);
                return;
            }
        }
    }
}

fn start_playing(inner: &mut Inner, inner_rc: &Rc<RefCell<Inner>>, plan: MediaPlan, total: u64) {
    let mime = plan.mime_type().map(str::to_owned);
    let duration = match &plan {
        MediaPlan::Fmp4(l) => l.duration_s,
        MediaPlan::WebM(l) => l.duration_s,
        MediaPlan::Remux(r) => Some(r.index().end_time_s()),
        _ => None,
    };
    let feed = match plan {
        MediaPlan::NativeOnly { reason, .. } => {
            fall_back(inner, &reason.to_string());
            return;
        }
        MediaPlan::Fmp4(layout) => match layout.index {
            Some(mut index) => {
                index.clamp_to_file(total);
                Feed::Indexed {
                    init: layout.init_range,
                    index,
                }
            }
            None => Feed::Sequential {
                init: Some(layout.init_range),
                next: layout.first_fragment,
            },
        },
        MediaPlan::WebM(layout) => match layout.index {
            Some(mut index) => {
                index.clamp_to_file(total);
                Feed::Indexed {
                    init: layout.init_range,
                    index,
                }
            }
            None => Feed::Sequential {
                init: Some(layout.init_range),
                next: layout.first_cluster,
            },
        },
        MediaPlan::Remux(remuxer) => Feed::Remux(remuxer),
        MediaPlan::RawAudio(audio) => Feed::Sequential {
            init: None,
            next: audio.data_start,
        },
    };
    let Some(mime) = mime else {
        fall_back(inner, "its codecs cannot be named for MediaSource");
        return;
    };
    let buffer = match inner.source.add_source_buffer(&mime) {
        Ok(b) => b,
        Err(e) => {
            fall_back(
                inner,
                &format!("MediaSource refused {mime}: {}", util::describe(&e)),
            );
            return;
        }
    };
    let bytes_per_sec = match duration.filter(|d| d.is_finite() && *d > 0.0) {
        Some(d) => {
            inner.source.set_duration(d);
            ((total as f64 / d) as u64).max(1)
        }
        None => DEFAULT_BYTES_PER_SEC,
    };
    let weak = Rc::downgrade(inner_rc);
    let onupdateend = Closure::<dyn FnMut(JsValue)>::new(move |_| {
        if let Some(inner) = weak.upgrade() {
            advance(&inner);
        }
    });
    let function: &js_sys::Function = onupdateend.as_ref().unchecked_ref();
    let _ = buffer.add_event_listener_with_callback("updateend", function);
    inner
        .listeners
        .push((buffer.clone().into(), "updateend", function.clone()));
    inner.handlers.push(onupdateend);
    inner.stage = Stage::Playing(Box::new(Playing {
        feed,
        buffer,
        init_appended: false,
        next: 0,
        partial: 0,
        bytes_per_sec,
        told_offset: None,
        ended: false,
    }));
}

/// Plays from the WebSeed URL directly: every browser can, but without peers.
fn fall_back(inner: &mut Inner, why: &str) {
    let url = inner
        .session
        .peek(|e| e.metainfo().and_then(|m| m.url_list.first().cloned()));
    inner.stage = Stage::Done;
    end_start_up(&inner.session);
    let message = match &url {
        Some(_) => format!("playing from the pod directly, without peers: {why}"),
        None => format!("this file cannot be streamed: {why}"),
    };
    util::warn(&message);
    let event = if url.is_some() { "warning" } else { "error" };
    inner.session.emit(event, JsValue::from_str(&message));
    if let Some(url) = url {
        inner.element.set_src(&url);
    }
}

/// Appends what is due and verified, trims what was played, and tells the engine where the
/// playhead is.
fn feed(inner: &mut Inner) {
    let now_s = inner.element.current_time();
    let session = inner.session.clone();
    let source = inner.source.clone();
    let Stage::Playing(p) = &mut inner.stage else {
        return;
    };

    // The engine's window follows the playhead (or what is to be appended next).
    if let Some(offset) = p.playhead_offset(now_s) {
        if p.told_offset != Some(offset) {
            p.told_offset = Some(offset);
            let rate = p.bytes_per_sec;
            session.with_engine_quiet(|e| e.set_playhead(offset, rate, util::now()));
        }
    }
    if p.buffer.updating() {
        return;
    }
    if !p.init_appended {
        let init = match &p.feed {
            Feed::Indexed { init, .. } => Some(read(&session, init)),
            Feed::Sequential {
                init: Some(init), ..
            } => Some(read(&session, init)),
            Feed::Sequential { init: None, .. } => None,
            Feed::Remux(remuxer) => Some(Some(remuxer.init_segment().to_vec())),
        };
        match init {
            None => p.init_appended = true,
            Some(Some(bytes)) => {
                if append(&p.buffer, &bytes) {
                    p.init_appended = true;
                }
                return;
            }
            Some(None) => return,
        }
    }
    // Trim what was played long ago: bounded memory whatever the length of the media.
    if let Ok(buffered) = p.buffer.buffered() {
        if buffered.length() > 0 {
            let start = buffered.start(0).unwrap_or(0.0);
            if now_s - start > BEHIND_S + 10.0 {
                let _ = p.buffer.remove(0.0, now_s - BEHIND_S);
                return;
            }
        }
    }
    let total = session
        .peek(|e| e.metainfo().map(|m| m.info.total_length))
        .unwrap_or(0);
    let next = match &mut p.feed {
        Feed::Indexed { index, .. } => match index.get(p.next) {
            None => None,
            Some(f) if f.start_time_s > now_s + AHEAD_S => return,
            Some(f) => {
                let from = f.byte_range.start + p.partial;
                let rest = (f.byte_range.end - from) as usize;
                let enough = if ahead_of(&p.buffer, now_s) < PARTIAL_BELOW_S {
                    rest.min(MIN_PARTIAL_APPEND)
                } else {
                    rest
                };
                let bytes = session.read_available(from, rest);
                Some((bytes.len() >= enough).then_some(bytes))
            }
        },
        Feed::Remux(remuxer) => {
            match (remuxer.index().get(p.next), remuxer.fragment_plan(p.next)) {
                (Some(f), _) if f.start_time_s > now_s + AHEAD_S => return,
                (Some(_), Some(plan)) => {
                    let parts: Option<Vec<Vec<u8>>> =
                        plan.fetch.iter().map(|r| read(&session, r)).collect();
                    Some(parts.and_then(|parts| {
                        let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
                        remuxer.build_fragment(p.next, &slices).ok()
                    }))
                }
                _ => None,
            }
        }
        Feed::Sequential { next, .. } => {
            if *next >= total {
                None
            } else {
                let buffered_ahead = ahead_of(&p.buffer, now_s);
                if buffered_ahead > AHEAD_S {
                    return;
                }
                let end = (*next + SEQUENTIAL_CHUNK).min(total);
                Some(read(&session, &(*next..end)))
            }
        }
    };
    match next {
        None => {
            if !p.ended {
                p.ended = true;
                let _ = source.end_of_stream();
            }
        }
        Some(Some(bytes)) => {
            if append(&p.buffer, &bytes) {
                match &mut p.feed {
                    Feed::Sequential { next, .. } => *next += bytes.len() as u64,
                    Feed::Indexed { index, .. } => {
                        p.partial += bytes.len() as u64;
                        let whole = index
                            .get(p.next)
                            .map_or(0, |f| f.byte_range.end - f.byte_range.start);
                        if p.partial >= whole {
                            p.next += 1;
                            p.partial = 0;
                        }
                    }
                    Feed::Remux(_) => p.next += 1,
                }
            }
        }
        Some(None) => {} // not verified yet: the engine is fetching it
    }
}

impl Playing {
    /// The byte offset the engine should treat as the playhead.
    fn playhead_offset(&self, now_s: f64) -> Option<u64> {
        let from_index = |index: &FragmentIndex| {
            let i = index
                .fragment_at(now_s)
                .unwrap_or(self.next.min(index.len().saturating_sub(1)));
            index.get(i).map(|f| f.byte_range.start)
        };
        match &self.feed {
            Feed::Indexed { index, .. } => from_index(index),
            Feed::Remux(remuxer) => from_index(remuxer.index()),
            Feed::Sequential { next, .. } => Some(*next),
        }
    }
}

fn read(session: &Session, range: &Range<u64>) -> Option<Vec<u8>> {
    session.read(range.start, (range.end - range.start) as usize)
}

/// Seconds buffered ahead of `now_s` in the range that holds it.
fn ahead_of(buffer: &SourceBuffer, now_s: f64) -> f64 {
    let Ok(ranges) = buffer.buffered() else {
        return 0.0;
    };
    for i in 0..ranges.length() {
        let (s, e) = (ranges.start(i).unwrap_or(0.0), ranges.end(i).unwrap_or(0.0));
        if s <= now_s + 0.5 && now_s < e {
            return e - now_s;
        }
    }
    0.0
}

fn append(buffer: &SourceBuffer, bytes: &[u8]) -> bool {
    let array = Uint8Array::from(bytes);
    match buffer.append_buffer_with_array_buffer_view(&array) {
        Ok(()) => true,
        Err(e) => {
            // QuotaExceededError: the next feed trims played media first, then retries.
            util::warn(&format!(
                "SourceBuffer append failed: {}",
                util::describe(&e)
            ));
            false
        }
    }
}

/// A seek: append from the fragment holding the new time, and move the engine's window there
/// at once (cancelling requests that are no longer needed).
fn on_seeking(inner_rc: &Rc<RefCell<Inner>>) {
    let mut inner = inner_rc.borrow_mut();
    let t = inner.element.current_time();
    let session = inner.session.clone();
    let Stage::Playing(p) = &mut inner.stage else {
        return;
    };
    let index = match &p.feed {
        Feed::Indexed { index, .. } => index,
        Feed::Remux(remuxer) => remuxer.index(),
        Feed::Sequential { .. } => return, // seekable only within what was appended
    };
    let Some(target) = index.fragment_at(t) else {
        return;
    };
    if ahead_of(&p.buffer, t) > 0.5 {
        return; // already buffered there
    }
    let offset = index.get(target).map(|f| f.byte_range.start);
    // A fragment half appended leaves the SourceBuffer's parser inside it: `abort` resets the
    // parser (and stops an append under way) before the new fragment starts.
    if p.buffer.updating() || p.partial > 0 {
        let _ = p.buffer.abort();
    }
    p.next = target;
    p.partial = 0;
    p.ended = false;
    if let Some(offset) = offset {
        p.told_offset = Some(offset);
        session.with_engine_quiet(|e| e.seek(offset, util::now()));
    }
}

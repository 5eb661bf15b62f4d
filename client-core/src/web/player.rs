//! MediaSource playback from verified pieces (../shared/streaming.md).
//!
//! The player asks the engine for the file's first bytes, learns the layout from them (init
//! segment, codecs, the `sidx` index from time to byte range: [`crate::media::Fmp4Layout`]),
//! then appends fragment after fragment as their pieces verify, keeping about
//! [`AHEAD_S`] seconds buffered. It tells the engine where the playhead is, so the picker
//! fetches what is due first (from peers, or from the WebSeed when peers are too slow); a seek
//! moves that window at once. Played media is removed from the SourceBuffer ([`BEHIND_S`]) and
//! the engine evicts played pieces, so memory stays bounded whatever the file size.
//!
//! Files that MediaSource cannot take from the first pieces (progressive MP4, unknown codecs)
//! fall back to the WebSeed URL as a plain `src`, with a warning event: playback still works,
//! only without peers.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{HtmlMediaElement, MediaSource, MediaSourceReadyState, SourceBuffer, Url};

use super::session::Session;
use super::util;
use crate::media::{Fmp4Layout, MediaError, Progress};

/// Seconds of media kept appended ahead of the playhead.
pub const AHEAD_S: f64 = 30.0;
/// Seconds of played media kept behind the playhead (for small seeks back).
pub const BEHIND_S: f64 = 20.0;
/// Byte rate assumed before the duration is known (2 Mbit/s).
const DEFAULT_BYTES_PER_SEC: u64 = 250_000;

pub struct Player {
    inner: Rc<RefCell<Inner>>,
}

enum Stage {
    /// Waiting for the first bytes; `need` is how long a prefix the layout parser asked for.
    Probing {
        need: u64,
    },
    Playing(Box<Playing>),
    /// Played from the WebSeed URL directly, or failed: nothing more to do here.
    Done,
}

struct Playing {
    layout: Fmp4Layout,
    buffer: SourceBuffer,
    init_appended: bool,
    /// Next fragment to append.
    next: usize,
    /// The playhead offset last told to the engine.
    told_offset: Option<u64>,
    ended: bool,
}

struct Inner {
    session: Session,
    element: HtmlMediaElement,
    source: MediaSource,
    object_url: String,
    stage: Stage,
    handlers: Vec<Closure<dyn FnMut(JsValue)>>,
    stopped: bool,
}

impl Player {
    pub fn attach(
        session: Session,
        element: HtmlMediaElement,
        _mime_hint: Option<String>,
    ) -> Result<Player, JsValue> {
        let source = MediaSource::new()?;
        let object_url = Url::create_object_url_with_source(&source)?;
        element.set_src(&object_url);
        let inner = Rc::new(RefCell::new(Inner {
            session: session.clone(),
            element: element.clone(),
            source: source.clone(),
            object_url,
            stage: Stage::Probing { need: 64 * 1024 },
            handlers: Vec::new(),
            stopped: false,
        }));
        let weak = Rc::downgrade(&inner);
        let listen =
            |target: &web_sys::EventTarget, name: &str, weak: Weak<RefCell<Inner>>, seek: bool| {
                let closure = Closure::<dyn FnMut(JsValue)>::new(move |_| {
                    if let Some(inner) = weak.upgrade() {
                        if seek {
                            on_seeking(&inner);
                        }
                        advance(&inner);
                    }
                });
                let _ =
                    target.add_event_listener_with_callback(name, closure.as_ref().unchecked_ref());
                closure
            };
        let mut handlers = vec![
            listen(source.as_ref(), "sourceopen", weak.clone(), false),
            listen(element.as_ref(), "timeupdate", weak.clone(), false),
            listen(element.as_ref(), "waiting", weak.clone(), false),
            listen(element.as_ref(), "seeking", weak.clone(), true),
        ];
        inner.borrow_mut().handlers.append(&mut handlers);
        // New verified pieces may complete what the player waits for.
        let w = weak.clone();
        session.0.borrow_mut().on_pump = Some(Rc::new(move || {
            if let Some(inner) = w.upgrade() {
                advance(&inner);
            }
        }));
        // Start fetching the beginning at once, in parallel with MediaSource opening.
        session.with_engine(|e| e.set_playhead(0, DEFAULT_BYTES_PER_SEC, util::now()));
        Ok(Player { inner })
    }

    pub fn stop(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.stopped = true;
        inner.session.0.borrow_mut().on_pump = None;
        let _ = Url::revoke_object_url(&inner.object_url);
        inner.stage = Stage::Done;
    }
}

/// Moves playback forward as far as verified data allows. Called on every engine pump and
/// media event; cheap when there is nothing to do.
fn advance(inner_rc: &Rc<RefCell<Inner>>) {
    let mut inner = inner_rc.borrow_mut();
    if inner.stopped || inner.source.ready_state() != MediaSourceReadyState::Open {
        return;
    }
    match &inner.stage {
        Stage::Probing { need } => {
            let need = *need;
            probe(&mut inner, inner_rc, need);
        }
        Stage::Playing(_) => feed(&mut inner),
        Stage::Done => {}
    }
}

fn total_length(inner: &Inner) -> Option<u64> {
    inner
        .session
        .peek(|e| e.metainfo().map(|m| m.info.total_length))
}

/// Tries to learn the layout from the verified prefix.
fn probe(inner: &mut Inner, inner_rc: &Rc<RefCell<Inner>>, need: u64) {
    let Some(total) = total_length(inner) else {
        return; // metadata still coming (magnet)
    };
    let want = need.min(total) as usize;
    let Some(prefix) = inner.session.read(0, want) else {
        return; // those pieces are not verified yet; the playhead at 0 fetches them
    };
    match Fmp4Layout::parse(&prefix) {
        Ok(Progress::NeedMore { until }) => {
            if until as usize <= want && want as u64 == total {
                fall_back(inner, "the file ends before its media index");
            } else {
                inner.stage = Stage::Probing {
                    need: until.max(need + 1),
                };
            }
        }
        Ok(Progress::Ready(mut layout)) => {
            let Some(mime) = layout.mime_type.clone() else {
                fall_back(inner, "its codecs cannot be named for MediaSource");
                return;
            };
            if !MediaSource::is_type_supported(&mime) {
                fall_back(
                    inner,
                    &format!("this browser's MediaSource does not play {mime}"),
                );
                return;
            }
            if layout.index.is_none() {
                fall_back(inner, "it has no fragment index (sidx)");
                return;
            }
            if let Some(index) = layout.index.as_mut() {
                index.clamp_to_file(total);
            }
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
            if let Some(duration) = layout.duration_s.filter(|d| d.is_finite() && *d > 0.0) {
                inner.source.set_duration(duration);
            }
            let weak = Rc::downgrade(inner_rc);
            let onupdateend = Closure::<dyn FnMut(JsValue)>::new(move |_| {
                if let Some(inner) = weak.upgrade() {
                    advance(&inner);
                }
            });
            let _ = buffer.add_event_listener_with_callback(
                "updateend",
                onupdateend.as_ref().unchecked_ref(),
            );
            inner.handlers.push(onupdateend);
            inner.stage = Stage::Playing(Box::new(Playing {
                layout,
                buffer,
                init_appended: false,
                next: 0,
                told_offset: None,
                ended: false,
            }));
            feed(inner);
        }
        Err(MediaError::NotFragmented) => fall_back(inner, "it is a progressive MP4"),
        Err(e) => fall_back(inner, &format!("its layout is not readable ({e})")),
    }
}

/// Plays from the WebSeed URL directly: every browser can, but without peers.
fn fall_back(inner: &mut Inner, why: &str) {
    let url = inner
        .session
        .peek(|e| e.metainfo().and_then(|m| m.url_list.first().cloned()));
    inner.stage = Stage::Done;
    let message = match &url {
        Some(_) => format!("playing from the pod directly, without peers: {why}"),
        None => format!("this file cannot be streamed: {why}"),
    };
    util::warn(&message);
    inner.session.emit(
        if url.is_some() { "warning" } else { "error" },
        JsValue::from_str(&message),
    );
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
    let Some(index) = p.layout.index.as_ref() else {
        return;
    };
    let total_bytes = index.fragments().last().map_or(0, |f| f.byte_range.end);
    let duration = p
        .layout
        .duration_s
        .unwrap_or_else(|| index.end_time_s())
        .max(0.001);
    let bytes_per_sec = ((total_bytes as f64 / duration) as u64).max(1);

    // The engine's window follows the playhead (or the next fragment to append, when ahead).
    let playing_fragment = index
        .fragment_at(now_s)
        .unwrap_or(p.next.min(index.len().saturating_sub(1)));
    if let Some(f) = index.get(playing_fragment) {
        let offset = f.byte_range.start;
        if p.told_offset != Some(offset) {
            p.told_offset = Some(offset);
            session.with_engine_quiet(|e| e.set_playhead(offset, bytes_per_sec, util::now()));
        }
    }

    if p.buffer.updating() {
        return;
    }
    if !p.init_appended {
        let range = p.layout.init_range.clone();
        if let Some(bytes) = session.read(range.start, (range.end - range.start) as usize) {
            if append(&p.buffer, &bytes) {
                p.init_appended = true;
            }
        }
        return;
    }
    // Trim what was played long ago: bounded memory for any length of media.
    let buffered = p.buffer.buffered();
    if let Ok(buffered) = buffered {
        if buffered.length() > 0 {
            let start = buffered.start(0).unwrap_or(0.0);
            if now_s - start > BEHIND_S + 10.0 {
                let _ = p.buffer.remove(0.0, now_s - BEHIND_S);
                return;
            }
        }
    }
    if p.next >= index.len() {
        if !p.ended {
            p.ended = true;
            let _ = source.end_of_stream();
        }
        return;
    }
    let Some(fragment) = index.get(p.next) else {
        return;
    };
    if fragment.start_time_s > now_s + AHEAD_S {
        return; // enough buffered ahead
    }
    let range = fragment.byte_range.clone();
    if let Some(bytes) = session.read(range.start, (range.end - range.start) as usize) {
        if append(&p.buffer, &bytes) {
            p.next += 1;
        }
    }
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
    let Some(index) = p.layout.index.as_ref() else {
        return;
    };
    let Some(target) = index.fragment_at(t) else {
        return;
    };
    // Already buffered there? Then nothing changes.
    if let Ok(buffered) = p.buffer.buffered() {
        for i in 0..buffered.length() {
            let (s, e) = (
                buffered.start(i).unwrap_or(0.0),
                buffered.end(i).unwrap_or(0.0),
            );
            if s <= t && t < e - 0.5 {
                return;
            }
        }
    }
    if p.buffer.updating() {
        let _ = p.buffer.abort();
    }
    p.next = target;
    p.ended = false;
    if let Some(f) = index.get(target) {
        p.told_offset = Some(f.byte_range.start);
        let offset = f.byte_range.start;
        session.with_engine_quiet(|e| e.seek(offset, util::now()));
    }
}

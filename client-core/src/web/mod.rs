//! The browser edge (wasm32 only): WebRTC links, tracker sockets, WebSeed fetches and
//! MediaSource playback around the sans-IO engine, plus the JavaScript API. Protocol logic
//! stays in the sans-IO modules; this module only adapts them to `web-sys`.
//!
//! - [`util`]: clock, timers, randomness;
//! - [`rtc`]: one RTCPeerConnection + data channel per peer, as WebTorrent JS expects;
//! - [`tracker`]: one WebSocket per tracker URL, shared by every torrent of the page;
//! - [`session`]: one torrent: the engine's drive loop over the above;
//! - [`player`]: MediaSource playback from verified pieces;
//! - `api` (feature `js-api`): the JavaScript API for web developers.

pub mod player;
pub mod rtc;
pub mod session;
pub mod tracker;
pub mod util;
mod webseed;

#[cfg(feature = "js-api")]
pub mod api;

use wasm_bindgen::prelude::*;

/// The engine's version, for pages that embed the client library.
#[wasm_bindgen(js_name = version)]
pub fn version() -> String {
    crate::VERSION.to_owned()
}

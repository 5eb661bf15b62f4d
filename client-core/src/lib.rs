//! # client-core: Shoal's WebTorrent engine
//!
//! Everything a WebTorrent peer does, as pure state machines that take bytes, events and the
//! current time and return actions (bytes to send, requests to make, pieces verified). No module
//! outside `web` touches a socket, a timer or `web-sys`, so the same code runs in the browser, in
//! native tests with a fake clock, and inside the pod (server-lite reuses the shared types).
//!
//! Layers, bottom to top (one module per protocol layer):
//! - [`id`]: info-hashes and peer ids, in their three spellings.
//! - [`bencode`]: canonical encoding, bounded decoding.
//! - [`metainfo`]: validated `.torrent` type and deterministic, streaming torrent creation.
//! - [`magnet`]: magnet links as WebTorrent writes and reads them.
//! - [`wire`]: the peer wire protocol over an arbitrarily chunked byte stream.
//! - [`tracker`]: WebSocket and HTTP tracker messages, shared with the pod.
//! - [`media`]: media containers for MediaSource: init segments, codecs strings, fragment
//!   indexes, progressive MP4 remuxing.
//! - [`engine`]: one torrent's peers, WebSeeds, deadline-aware picking, verification and storage.
//! - `web` (wasm32 only): the browser edge and the JS API.

pub mod bencode;
pub mod engine;
pub mod id;
pub mod magnet;
pub mod media;
pub mod metainfo;
pub mod tracker;
pub mod wire;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use id::{InfoHash, PeerId};

/// The crate version, shown by the UI and reported in the pod's health answer.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

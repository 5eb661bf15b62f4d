//! Tracker messages: the WebSocket tracker's JSON ([`ws`]) and the HTTP tracker's query strings
//! and bencoded responses ([`http`]), sans I/O.
//!
//! This module is the single definition of these messages for both ends: the browser client
//! builds announces and parses server messages, the pod's tracker parses announces and builds
//! responses. Everything that comes in is validated into typed values (20-byte ids checked,
//! counts bounded) so that code above never sees a half-valid message. See
//! ../shared/webtorrent-protocol.md §1.
//!
//! Timers, sockets, swarms and offer bookkeeping live elsewhere.

pub mod http;
pub mod ws;

use crate::bencode;
use crate::id::IdError;

/// Peers a client asks for when it says nothing (bittorrent-tracker's default).
pub const DEFAULT_NUMWANT: u32 = 50;
/// Most peers a tracker returns or relays to in one announce (bittorrent-tracker's cap).
pub const MAX_NUMWANT: u32 = 82;
/// Most info-hashes one scrape may name (the reference server has no cap; we bound the work).
pub const MAX_SCRAPE_HASHES: usize = 256;

/// The `event` of an announce. No event (`None` where it is optional) is the periodic update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnnounceEvent {
    Started,
    Completed,
    Stopped,
    /// WebTorrent's `paused` (the client keeps the torrent but stops seeking peers).
    Paused,
}

impl AnnounceEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            AnnounceEvent::Started => "started",
            AnnounceEvent::Completed => "completed",
            AnnounceEvent::Stopped => "stopped",
            AnnounceEvent::Paused => "paused",
        }
    }

    /// Reads an event name. `""`, `"empty"` (BEP 3) and `"update"` (bittorrent-tracker's own
    /// name) all mean the periodic update, `None`.
    pub fn parse(s: &str) -> Result<Option<Self>, TrackerError> {
        Ok(Some(match s {
            "started" => AnnounceEvent::Started,
            "completed" => AnnounceEvent::Completed,
            "stopped" => AnnounceEvent::Stopped,
            "paused" => AnnounceEvent::Paused,
            "" | "empty" | "update" => return Ok(None),
            other => return Err(TrackerError::InvalidEvent(snippet(other))),
        }))
    }
}

/// Per-torrent counts of a scrape (BEP 48; the WebSocket tracker uses the same three numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ScrapeStats {
    /// Seeders.
    pub complete: u64,
    /// Leechers.
    pub incomplete: u64,
    /// Completed downloads (bittorrent-tracker reports a copy of `complete`).
    pub downloaded: u64,
}

/// Why a tracker message was refused. The `Display` text is fit to send back as a
/// `failure reason` (it never echoes more than a short snippet of the input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackerError {
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("message is not a JSON object")]
    NotAnObject,
    #[error("invalid action: {0}")]
    InvalidAction(String),
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("invalid {field}: {reason}")]
    InvalidId {
        field: &'static str,
        reason: IdError,
    },
    #[error("invalid {0}")]
    Invalid(&'static str),
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    #[error("too many offers: {count} (at most {max})")]
    TooManyOffers { count: usize, max: usize },
    #[error("{field} SDP of {len} bytes exceeds the {max}-byte limit")]
    SdpTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} has type {found:?}, expected {expected:?}")]
    WrongSdpType {
        field: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error("too many info hashes: {count} (at most {max})")]
    TooManyInfoHashes { count: usize, max: usize },
    #[error("invalid bencoded tracker response: {0}")]
    Bencode(#[from] bencode::Error),
    /// The tracker answered with a `failure reason`.
    #[error("tracker failure: {0}")]
    Failure(String),
}

/// At most 40 characters of untrusted text, for error messages.
pub(crate) fn snippet(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

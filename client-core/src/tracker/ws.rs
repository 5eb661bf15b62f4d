//! The WebSocket tracker protocol exactly as bittorrent-tracker speaks it (§1.2–§1.6).
//!
//! One JSON object per text frame. Client → server: [`ClientMessage`] (announce, possibly with
//! offers or an answer; scrape). Server → client: [`ServerMessage`] (announce response, relayed
//! offer, relayed answer, scrape response, failure).
//!
//! Invariants:
//! - Every 20-byte id (`info_hash`, `peer_id`, `to_peer_id`, `offer_id`, the keys of a scrape's
//!   `files`) is a Latin-1 "binary string": 20 chars, each ≤ U+00FF. Parsing rejects anything
//!   else; serde_json writes them as Node does (U+0080..U+00FF as UTF-8, control chars escaped).
//! - Parsing is bounded: at most [`MAX_MESSAGE_LEN`] bytes of JSON, [`MAX_OFFERS`] offers,
//!   [`MAX_SDP_LEN`] bytes per SDP, [`super::MAX_SCRAPE_HASHES`] hashes per scrape.
//! - Unknown keys are ignored (the JS client lets apps add arbitrary announce fields); `null` is
//!   treated like an absent key. `left: null` (a magnet leecher) means "unknown", never "seeder".
//! - What we emit is what the reference implementation emits, key order aside, except where
//!   §1.13 recommends better: we omit an unknown `left` instead of sending `null` (which the
//!   reference server counts as a seeder), and our failures carry `action` and `info_hash`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{snippet, AnnounceEvent, ScrapeStats, TrackerError, MAX_SCRAPE_HASHES};
use crate::id::IdError;
use crate::{InfoHash, PeerId};

/// Largest JSON message accepted (10 offers of 16 KiB plus slack).
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;
/// Most offers accepted in one announce (WebTorrent sends 5; libtorrent bounds this too).
pub const MAX_OFFERS: usize = 10;
/// Largest SDP accepted. A non-trickle SDP with all candidates is typically 1–4 KB.
pub const MAX_SDP_LEN: usize = 16 * 1024;

/// The random 20-byte id an offerer gives each offer; the answer echoes it unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct OfferId(pub [u8; 20]);

impl OfferId {
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Lowercase hex, how the JS client keys its pending offers.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn to_binary_string(&self) -> String {
        self.0.iter().map(|&b| b as char).collect()
    }

    pub fn from_binary_string(s: &str) -> Result<Self, IdError> {
        PeerId::from_binary_string(s).map(|id| OfferId(id.0))
    }
}

impl fmt::Debug for OfferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OfferId({})", self.to_hex())
    }
}

impl From<[u8; 20]> for OfferId {
    fn from(bytes: [u8; 20]) -> Self {
        Self(bytes)
    }
}

/// One WebRTC offer in an announce: `{"offer":{"type":"offer","sdp":…},"offer_id":…}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub offer_id: OfferId,
    /// The offer SDP with every ICE candidate in it (no trickle with JS peers, §2.1).
    pub sdp: String,
}

/// The answer part of an announce that answers a relayed offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The offerer (the `peer_id` of the relayed offer).
    pub to_peer_id: PeerId,
    /// The relayed offer's id, echoed unchanged.
    pub offer_id: OfferId,
    pub sdp: String,
}

/// A client's announce. The same `action: "announce"` carries three shapes (§1.3, §1.4):
/// a start/periodic announce with `offers`, a `completed`/`stopped` announce without, and an
/// answer (only `info_hash`, `peer_id`, `answer`, `to_peer_id`, `offer_id`). Fields that a shape
/// does not send are `None`/empty and are not emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub numwant: Option<u32>,
    pub uploaded: Option<u64>,
    pub downloaded: Option<u64>,
    /// Bytes still missing; `None` when unknown (a magnet before metadata): not a seeder.
    pub left: Option<u64>,
    /// `None` is the periodic update.
    pub event: Option<AnnounceEvent>,
    pub offers: Vec<Offer>,
    pub answer: Option<Answer>,
    /// Echo of a previous response's `tracker id`.
    pub trackerid: Option<String>,
}

impl Announce {
    /// An announce with only the two ids; fill in the rest.
    pub fn new(info_hash: InfoHash, peer_id: PeerId) -> Self {
        Self {
            info_hash,
            peer_id,
            numwant: None,
            uploaded: None,
            downloaded: None,
            left: None,
            event: None,
            offers: Vec::new(),
            answer: None,
            trackerid: None,
        }
    }

    /// The answer to a relayed offer, shaped like the JS client's.
    pub fn answer(info_hash: InfoHash, peer_id: PeerId, answer: Answer) -> Self {
        Self {
            answer: Some(answer),
            ..Self::new(info_hash, peer_id)
        }
    }

    /// Whether the announcer has everything. `left: None` is not complete (see §1.3 QUIRK).
    pub fn is_complete(&self) -> bool {
        self.left == Some(0)
    }
}

/// A scrape request: `info_hash` absent (all torrents), a single binary string, or an array
/// (possibly empty: some apps use `[]` as a keep-alive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scrape {
    All,
    Single(InfoHash),
    List(Vec<InfoHash>),
}

impl Scrape {
    /// The hashes named; empty for [`Scrape::All`] (check that first).
    pub fn info_hashes(&self) -> &[InfoHash] {
        match self {
            Scrape::All => &[],
            Scrape::Single(hash) => std::slice::from_ref(hash),
            Scrape::List(hashes) => hashes,
        }
    }
}

/// The two request kinds of the WebSocket tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Announce,
    Scrape,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Announce => "announce",
            Action::Scrape => "scrape",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "announce" => Some(Action::Announce),
            "scrape" => Some(Action::Scrape),
            _ => None,
        }
    }
}

/// A message from a client to the tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    Announce(Announce),
    Scrape(Scrape),
}

impl ClientMessage {
    /// Parses and validates one text frame.
    pub fn parse(json: &str) -> Result<Self, TrackerError> {
        let object = parse_object(json)?;
        let fields = Fields(&object);
        match fields.str("action")? {
            Some("announce") => parse_announce(&fields).map(ClientMessage::Announce),
            Some("scrape") => parse_scrape(&fields).map(ClientMessage::Scrape),
            Some(other) => Err(TrackerError::InvalidAction(snippet(other))),
            None => Err(TrackerError::Missing("action")),
        }
    }

    /// The JSON text frame.
    pub fn to_json(&self) -> String {
        match self {
            ClientMessage::Announce(announce) => to_json(&AnnounceOut::from(announce)),
            ClientMessage::Scrape(scrape) => to_json(&ScrapeOut {
                action: Action::Scrape.as_str(),
                info_hash: match scrape {
                    Scrape::All => None,
                    Scrape::Single(hash) => Some(HashesOut::One(hash.to_binary_string())),
                    Scrape::List(hashes) => Some(HashesOut::Many(
                        hashes.iter().map(InfoHash::to_binary_string).collect(),
                    )),
                },
            }),
        }
    }

    pub fn action(&self) -> Action {
        match self {
            ClientMessage::Announce(_) => Action::Announce,
            ClientMessage::Scrape(_) => Action::Scrape,
        }
    }
}

/// The tracker's reply to an announce (not sent for answers). No peer list: peers arrive as
/// relayed offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceResponse {
    pub info_hash: InfoHash,
    /// Seeders. (The JS client only reports counts when `complete` is present; we always send it
    /// and read a missing one as 0.)
    pub complete: u64,
    /// Leechers.
    pub incomplete: u64,
    /// Seconds until the next announce (bittorrent-tracker: 120 for WebSocket clients).
    pub interval: Option<u32>,
    pub min_interval: Option<u32>,
    /// `tracker id`, to be echoed as `trackerid`.
    pub tracker_id: Option<String>,
    /// `warning message`.
    pub warning: Option<String>,
}

/// An offer relayed to us: `peer_id` is the offerer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayedOffer {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub offer_id: OfferId,
    pub sdp: String,
}

/// An answer relayed back to the offerer: `peer_id` is the answerer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayedAnswer {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub offer_id: OfferId,
    pub sdp: String,
}

/// `{"action":"scrape","files":{<bin hash>:{complete,incomplete,downloaded}},"flags":{…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScrapeResponse {
    pub files: BTreeMap<InfoHash, ScrapeStats>,
    /// `flags.min_request_interval`, seconds.
    pub min_request_interval: Option<u32>,
}

/// An error reply. The reference server omits `action` and `info_hash` for validation errors,
/// which makes the JS client drop the socket (§1.6); ours fills both whenever known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub action: Option<Action>,
    pub info_hash: Option<InfoHash>,
    pub reason: String,
}

impl Failure {
    /// The reply to a request that failed with `reason`, carrying the request's `action` and
    /// (single) `info_hash` when they can be read from it, even if the rest is invalid. A scrape
    /// whose `info_hash` is an array gets no `info_hash`.
    pub fn for_request(json: &str, reason: impl fmt::Display) -> Self {
        let mut failure = Failure {
            action: None,
            info_hash: None,
            reason: reason.to_string(),
        };
        if let Ok(object) = parse_object(json) {
            let fields = Fields(&object);
            failure.action = fields.str("action").ok().flatten().and_then(Action::parse);
            failure.info_hash = fields
                .id("info_hash", InfoHash::from_binary_string)
                .ok()
                .flatten();
        }
        failure
    }
}

/// A message from the tracker to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    Announce(AnnounceResponse),
    Offer(RelayedOffer),
    Answer(RelayedAnswer),
    Scrape(ScrapeResponse),
    Failure(Failure),
}

impl ServerMessage {
    /// Parses and validates one text frame. A message with `failure reason` is a
    /// [`ServerMessage::Failure`] whatever else it holds; an announce with `offer` is a relayed
    /// offer, with `answer` a relayed answer, otherwise a response.
    pub fn parse(json: &str) -> Result<Self, TrackerError> {
        let object = parse_object(json)?;
        let fields = Fields(&object);
        let action = fields.str("action")?;
        if let Some(reason) = fields.str("failure reason")? {
            return Ok(ServerMessage::Failure(Failure {
                action: action.and_then(Action::parse),
                info_hash: fields.id("info_hash", InfoHash::from_binary_string)?,
                reason: reason.to_owned(),
            }));
        }
        match action {
            Some("announce") => parse_server_announce(&fields),
            Some("scrape") => parse_scrape_response(&fields).map(ServerMessage::Scrape),
            Some(other) => Err(TrackerError::InvalidAction(snippet(other))),
            None => Err(TrackerError::Missing("action")),
        }
    }

    /// The JSON text frame.
    pub fn to_json(&self) -> String {
        match self {
            ServerMessage::Announce(response) => to_json(&AnnounceResponseOut {
                action: Action::Announce.as_str(),
                info_hash: response.info_hash.to_binary_string(),
                complete: response.complete,
                incomplete: response.incomplete,
                interval: response.interval,
                min_interval: response.min_interval,
                tracker_id: response.tracker_id.as_deref(),
                warning: response.warning.as_deref(),
            }),
            ServerMessage::Offer(offer) => to_json(&RelayOut {
                action: Action::Announce.as_str(),
                offer: Some(SdpOut::offer(&offer.sdp)),
                answer: None,
                offer_id: offer.offer_id.to_binary_string(),
                peer_id: offer.peer_id.to_binary_string(),
                info_hash: offer.info_hash.to_binary_string(),
            }),
            ServerMessage::Answer(answer) => to_json(&RelayOut {
                action: Action::Announce.as_str(),
                offer: None,
                answer: Some(SdpOut::answer(&answer.sdp)),
                offer_id: answer.offer_id.to_binary_string(),
                peer_id: answer.peer_id.to_binary_string(),
                info_hash: answer.info_hash.to_binary_string(),
            }),
            ServerMessage::Scrape(response) => to_json(&ScrapeResponseOut {
                action: Action::Scrape.as_str(),
                files: response
                    .files
                    .iter()
                    .map(|(hash, stats)| (hash.to_binary_string(), stats))
                    .collect(),
                flags: response
                    .min_request_interval
                    .map(|min_request_interval| FlagsOut {
                        min_request_interval,
                    }),
            }),
            ServerMessage::Failure(failure) => to_json(&FailureOut {
                action: failure.action.map(Action::as_str),
                info_hash: failure.info_hash.map(|hash| hash.to_binary_string()),
                reason: &failure.reason,
            }),
        }
    }

    /// The torrent the message is about, for demultiplexing a shared socket (§1.1). `None` for
    /// scrape responses (keyed inside `files`) and failures without one.
    pub fn info_hash(&self) -> Option<InfoHash> {
        match self {
            ServerMessage::Announce(m) => Some(m.info_hash),
            ServerMessage::Offer(m) => Some(m.info_hash),
            ServerMessage::Answer(m) => Some(m.info_hash),
            ServerMessage::Scrape(_) => None,
            ServerMessage::Failure(m) => m.info_hash,
        }
    }
}

// ---- parsing ------------------------------------------------------------------------------

fn parse_object(json: &str) -> Result<Map<String, Value>, TrackerError> {
    if json.len() > MAX_MESSAGE_LEN {
        return Err(TrackerError::TooLarge {
            len: json.len(),
            max: MAX_MESSAGE_LEN,
        });
    }
    match serde_json::from_str(json) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(TrackerError::NotAnObject),
        Err(err) => Err(TrackerError::Json(err.to_string())),
    }
}

/// Typed access to the members of a JSON object; `null` reads as absent.
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|value| !value.is_null())
    }

    fn str(&self, key: &'static str) -> Result<Option<&str>, TrackerError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(TrackerError::Invalid(key)),
        }
    }

    fn id<T>(
        &self,
        key: &'static str,
        parse: fn(&str) -> Result<T, IdError>,
    ) -> Result<Option<T>, TrackerError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => binary_id(key, s, parse).map(Some),
            Some(_) => Err(TrackerError::Invalid(key)),
        }
    }

    fn required_id<T>(
        &self,
        key: &'static str,
        parse: fn(&str) -> Result<T, IdError>,
    ) -> Result<T, TrackerError> {
        self.id(key, parse)?.ok_or(TrackerError::Missing(key))
    }

    /// A non-negative JSON number. JavaScript has no integers, so an integral float is fine.
    fn count(&self, key: &'static str) -> Result<Option<u64>, TrackerError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        if let Some(n) = value.as_u64() {
            return Ok(Some(n));
        }
        match value.as_f64() {
            // `as` saturates: 1e300 becomes u64::MAX.
            Some(x) if x >= 0.0 && x.fract() == 0.0 => Ok(Some(x as u64)),
            _ => Err(TrackerError::Invalid(key)),
        }
    }

    fn count_u32(&self, key: &'static str) -> Result<Option<u32>, TrackerError> {
        Ok(self
            .count(key)?
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
    }
}

fn binary_id<T>(
    field: &'static str,
    s: &str,
    parse: fn(&str) -> Result<T, IdError>,
) -> Result<T, TrackerError> {
    parse(s).map_err(|reason| TrackerError::InvalidId { field, reason })
}

/// Reads `{"type": expected, "sdp": "…"}`.
fn parse_sdp(
    value: &Value,
    field: &'static str,
    expected: &'static str,
) -> Result<String, TrackerError> {
    let object = value.as_object().ok_or(TrackerError::Invalid(field))?;
    let kind = object
        .get("type")
        .and_then(Value::as_str)
        .ok_or(TrackerError::Invalid(field))?;
    if kind != expected {
        return Err(TrackerError::WrongSdpType {
            field,
            found: snippet(kind),
            expected,
        });
    }
    let sdp = object
        .get("sdp")
        .and_then(Value::as_str)
        .ok_or(TrackerError::Invalid(field))?;
    if sdp.len() > MAX_SDP_LEN {
        return Err(TrackerError::SdpTooLong {
            field,
            len: sdp.len(),
            max: MAX_SDP_LEN,
        });
    }
    Ok(sdp.to_owned())
}

fn parse_announce(fields: &Fields) -> Result<Announce, TrackerError> {
    let info_hash = fields.required_id("info_hash", InfoHash::from_binary_string)?;
    let peer_id = fields.required_id("peer_id", PeerId::from_binary_string)?;
    let event = match fields.str("event")? {
        Some(event) => AnnounceEvent::parse(event)?,
        None => None,
    };
    let offers = match fields.get("offers") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            if items.len() > MAX_OFFERS {
                return Err(TrackerError::TooManyOffers {
                    count: items.len(),
                    max: MAX_OFFERS,
                });
            }
            items.iter().map(parse_offer).collect::<Result<_, _>>()?
        }
        Some(_) => return Err(TrackerError::Invalid("offers")),
    };
    let answer = match fields.get("answer") {
        None => None,
        Some(answer) => Some(Answer {
            sdp: parse_sdp(answer, "answer", "answer")?,
            to_peer_id: fields.required_id("to_peer_id", PeerId::from_binary_string)?,
            offer_id: fields.required_id("offer_id", OfferId::from_binary_string)?,
        }),
    };
    Ok(Announce {
        info_hash,
        peer_id,
        numwant: fields.count_u32("numwant")?,
        uploaded: fields.count("uploaded")?,
        downloaded: fields.count("downloaded")?,
        left: fields.count("left")?,
        event,
        offers,
        answer,
        trackerid: fields.str("trackerid")?.map(str::to_owned),
    })
}

fn parse_offer(value: &Value) -> Result<Offer, TrackerError> {
    let object = value.as_object().ok_or(TrackerError::Invalid("offers"))?;
    let fields = Fields(object);
    Ok(Offer {
        offer_id: fields.required_id("offer_id", OfferId::from_binary_string)?,
        sdp: parse_sdp(
            fields.get("offer").ok_or(TrackerError::Missing("offer"))?,
            "offer",
            "offer",
        )?,
    })
}

fn parse_scrape(fields: &Fields) -> Result<Scrape, TrackerError> {
    match fields.get("info_hash") {
        None => Ok(Scrape::All),
        Some(Value::String(s)) => {
            binary_id("info_hash", s, InfoHash::from_binary_string).map(Scrape::Single)
        }
        Some(Value::Array(items)) => {
            if items.len() > MAX_SCRAPE_HASHES {
                return Err(TrackerError::TooManyInfoHashes {
                    count: items.len(),
                    max: MAX_SCRAPE_HASHES,
                });
            }
            items
                .iter()
                .map(|item| match item {
                    Value::String(s) => binary_id("info_hash", s, InfoHash::from_binary_string),
                    _ => Err(TrackerError::Invalid("info_hash")),
                })
                .collect::<Result<_, _>>()
                .map(Scrape::List)
        }
        Some(_) => Err(TrackerError::Invalid("info_hash")),
    }
}

fn parse_server_announce(fields: &Fields) -> Result<ServerMessage, TrackerError> {
    let info_hash = fields.required_id("info_hash", InfoHash::from_binary_string)?;
    if let Some(offer) = fields.get("offer") {
        return Ok(ServerMessage::Offer(RelayedOffer {
            info_hash,
            peer_id: fields.required_id("peer_id", PeerId::from_binary_string)?,
            offer_id: fields.required_id("offer_id", OfferId::from_binary_string)?,
            sdp: parse_sdp(offer, "offer", "offer")?,
        }));
    }
    if let Some(answer) = fields.get("answer") {
        return Ok(ServerMessage::Answer(RelayedAnswer {
            info_hash,
            peer_id: fields.required_id("peer_id", PeerId::from_binary_string)?,
            offer_id: fields.required_id("offer_id", OfferId::from_binary_string)?,
            sdp: parse_sdp(answer, "answer", "answer")?,
        }));
    }
    Ok(ServerMessage::Announce(AnnounceResponse {
        info_hash,
        complete: fields.count("complete")?.unwrap_or(0),
        incomplete: fields.count("incomplete")?.unwrap_or(0),
        interval: fields.count_u32("interval")?,
        min_interval: fields.count_u32("min interval")?,
        tracker_id: fields.str("tracker id")?.map(str::to_owned),
        warning: fields.str("warning message")?.map(str::to_owned),
    }))
}

fn parse_scrape_response(fields: &Fields) -> Result<ScrapeResponse, TrackerError> {
    let mut files = BTreeMap::new();
    match fields.get("files") {
        None => {}
        Some(Value::Object(entries)) => {
            for (hash, stats) in entries {
                let hash = binary_id("files", hash, InfoHash::from_binary_string)?;
                let stats = Fields(stats.as_object().ok_or(TrackerError::Invalid("files"))?);
                files.insert(
                    hash,
                    ScrapeStats {
                        complete: stats.count("complete")?.unwrap_or(0),
                        incomplete: stats.count("incomplete")?.unwrap_or(0),
                        downloaded: stats.count("downloaded")?.unwrap_or(0),
                    },
                );
            }
        }
        Some(_) => return Err(TrackerError::Invalid("files")),
    }
    let min_request_interval = match fields.get("flags") {
        None => None,
        Some(Value::Object(flags)) => Fields(flags).count_u32("min_request_interval")?,
        Some(_) => return Err(TrackerError::Invalid("flags")),
    };
    Ok(ScrapeResponse {
        files,
        min_request_interval,
    })
}

// ---- serialising --------------------------------------------------------------------------
//
// Plain structs with fixed field order, so the output is deterministic whatever serde_json
// features other crates enable. Ids become binary strings here and nowhere else.

fn to_json<T: Serialize>(value: &T) -> String {
    // Cannot fail: these structs hold only strings, numbers and string-keyed maps.
    serde_json::to_string(value).unwrap_or_default()
}

#[derive(Serialize)]
struct SdpOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sdp: &'a str,
}

impl<'a> SdpOut<'a> {
    fn offer(sdp: &'a str) -> Self {
        Self { kind: "offer", sdp }
    }

    fn answer(sdp: &'a str) -> Self {
        Self {
            kind: "answer",
            sdp,
        }
    }
}

#[derive(Serialize)]
struct OfferOut<'a> {
    offer: SdpOut<'a>,
    offer_id: String,
}

#[derive(Serialize)]
struct AnnounceOut<'a> {
    action: &'static str,
    info_hash: String,
    peer_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    numwant: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uploaded: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    downloaded: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    left: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    offers: Vec<OfferOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<SdpOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_peer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trackerid: Option<&'a str>,
}

impl<'a> From<&'a Announce> for AnnounceOut<'a> {
    fn from(announce: &'a Announce) -> Self {
        let answer = announce.answer.as_ref();
        Self {
            action: Action::Announce.as_str(),
            info_hash: announce.info_hash.to_binary_string(),
            peer_id: announce.peer_id.to_binary_string(),
            numwant: announce.numwant,
            uploaded: announce.uploaded,
            downloaded: announce.downloaded,
            left: announce.left,
            event: announce.event.map(AnnounceEvent::as_str),
            offers: announce
                .offers
                .iter()
                .map(|offer| OfferOut {
                    offer: SdpOut::offer(&offer.sdp),
                    offer_id: offer.offer_id.to_binary_string(),
                })
                .collect(),
            answer: answer.map(|answer| SdpOut::answer(&answer.sdp)),
            to_peer_id: answer.map(|answer| answer.to_peer_id.to_binary_string()),
            offer_id: answer.map(|answer| answer.offer_id.to_binary_string()),
            trackerid: announce.trackerid.as_deref(),
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum HashesOut {
    One(String),
    Many(Vec<String>),
}

#[derive(Serialize)]
struct ScrapeOut {
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    info_hash: Option<HashesOut>,
}

#[derive(Serialize)]
struct AnnounceResponseOut<'a> {
    action: &'static str,
    info_hash: String,
    complete: u64,
    incomplete: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<u32>,
    #[serde(rename = "min interval", skip_serializing_if = "Option::is_none")]
    min_interval: Option<u32>,
    #[serde(rename = "tracker id", skip_serializing_if = "Option::is_none")]
    tracker_id: Option<&'a str>,
    #[serde(rename = "warning message", skip_serializing_if = "Option::is_none")]
    warning: Option<&'a str>,
}

#[derive(Serialize)]
struct RelayOut<'a> {
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    offer: Option<SdpOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<SdpOut<'a>>,
    offer_id: String,
    peer_id: String,
    info_hash: String,
}

#[derive(Serialize)]
struct FlagsOut {
    min_request_interval: u32,
}

#[derive(Serialize)]
struct ScrapeResponseOut<'a> {
    action: &'static str,
    files: BTreeMap<String, &'a ScrapeStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flags: Option<FlagsOut>,
}

#[derive(Serialize)]
struct FailureOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    info_hash: Option<String>,
    #[serde(rename = "failure reason")]
    reason: &'a str,
}

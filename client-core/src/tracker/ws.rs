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
//! - An SDP stays in its JSON form ([`Sdp`]) from the offerer's message to the answerer's: the
//!   tracker checks it once and relays it without decoding it. Relaying is the tracker's hot
//!   path (five offers of 1–4 KB per announce), and bittorrent-tracker forwards `offer` as
//!   received too.
//! - Parsing reads a message in one pass into borrowed slices of the text (`Fields`), then
//!   checks each member it needs: no tree of owned keys and values is built, and each error
//!   names the member at fault.
//! - Unknown keys are ignored (the JS client lets apps add arbitrary announce fields); `null` is
//!   treated like an absent key. `left: null` (a magnet leecher) means "unknown", never "seeder".
//! - What we emit is what the reference implementation emits, key order aside, except where
//!   §1.13 recommends better: we omit an unknown `left` instead of sending `null` (which the
//!   reference server counts as a seeder), and our failures carry `action` and `info_hash`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{snippet, AnnounceEvent, ScrapeStats, TrackerError, MAX_SCRAPE_HASHES};
use crate::id::IdError;
use crate::{InfoHash, PeerId};

/// Largest JSON message accepted (10 offers of 16 KiB plus slack).
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;
/// Most offers accepted in one announce (WebTorrent sends 5; libtorrent bounds this too).
pub const MAX_OFFERS: usize = 10;
/// Largest SDP accepted, counted in its JSON form (quotes aside). A non-trickle SDP with all
/// candidates is typically 1–4 KB.
pub const MAX_SDP_LEN: usize = 16 * 1024;

/// A session description (SDP) as tracker messages carry it: the JSON string literal, quotes
/// and escapes included, exactly as the peer that made it sent it.
///
/// Invariant: the literal is one valid JSON string of at most [`MAX_SDP_LEN`] bytes between its
/// quotes. Two `Sdp`s are equal when their literals are, so the same text escaped two ways
/// (`"\u0041"`, `"A"`) is two values; no peer escapes an SDP but the JSON way.
#[derive(Clone)]
pub struct Sdp(Box<RawValue>);

impl Sdp {
    /// The SDP of a local RTCPeerConnection description, ready to send.
    pub fn from_text(text: &str) -> Self {
        // A `&str` always serialises.
        Sdp(serde_json::value::to_raw_value(text).expect("a string serialises"))
    }

    /// The decoded text, for RTCPeerConnection.
    pub fn to_text(&self) -> String {
        // The literal was validated when parsed or written by `from_text`.
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }

    /// The JSON string literal, quotes included.
    pub fn as_json(&self) -> &str {
        self.0.get()
    }

    /// Checks a member that should hold an SDP and keeps its literal.
    fn parse(raw: &RawValue, field: &'static str) -> Result<Self, TrackerError> {
        let literal = raw.get();
        if !literal.starts_with('"') {
            return Err(TrackerError::Invalid(field));
        }
        let len = literal.len() - 2;
        if len > MAX_SDP_LEN {
            return Err(TrackerError::SdpTooLong {
                field,
                len,
                max: MAX_SDP_LEN,
            });
        }
        Ok(Sdp(raw.to_owned()))
    }
}

impl PartialEq for Sdp {
    fn eq(&self, other: &Self) -> bool {
        self.as_json() == other.as_json()
    }
}

impl Eq for Sdp {}

impl fmt::Debug for Sdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sdp({})", snippet(self.as_json()))
    }
}

impl Serialize for Sdp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // serde_json writes a RawValue as it is: no re-escaping.
        self.0.serialize(serializer)
    }
}

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
    pub sdp: Sdp,
}

/// The answer part of an announce that answers a relayed offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The offerer (the `peer_id` of the relayed offer).
    pub to_peer_id: PeerId,
    /// The relayed offer's id, echoed unchanged.
    pub offer_id: OfferId,
    pub sdp: Sdp,
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
        let fields = Fields::parse_message(json)?;
        match fields.str("action")?.as_deref() {
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
    pub sdp: Sdp,
}

/// An answer relayed back to the offerer: `peer_id` is the answerer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayedAnswer {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub offer_id: OfferId,
    pub sdp: Sdp,
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
        if let Ok(fields) = Fields::parse_message(json) {
            failure.action = fields
                .str("action")
                .ok()
                .flatten()
                .and_then(|action| Action::parse(&action));
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
        let fields = Fields::parse_message(json)?;
        let action = fields.str("action")?;
        if let Some(reason) = fields.str("failure reason")? {
            return Ok(ServerMessage::Failure(Failure {
                action: action.as_deref().and_then(Action::parse),
                info_hash: fields.id("info_hash", InfoHash::from_binary_string)?,
                reason: reason.into_owned(),
            }));
        }
        match action.as_deref() {
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
                info_hash: BinaryOut(&response.info_hash.0),
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
                offer_id: BinaryOut(&offer.offer_id.0),
                peer_id: BinaryOut(&offer.peer_id.0),
                info_hash: BinaryOut(&offer.info_hash.0),
            }),
            ServerMessage::Answer(answer) => to_json(&RelayOut {
                action: Action::Announce.as_str(),
                offer: None,
                answer: Some(SdpOut::answer(&answer.sdp)),
                offer_id: BinaryOut(&answer.offer_id.0),
                peer_id: BinaryOut(&answer.peer_id.0),
                info_hash: BinaryOut(&answer.info_hash.0),
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
                info_hash: failure.info_hash.as_ref().map(|hash| BinaryOut(&hash.0)),
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

/// The members of one JSON object, read in one pass: each key (borrowed unless it has escapes)
/// with its value still as JSON text. A member is checked only when asked for, with an error
/// that names it. A repeated key reads as its last value, as `JSON.parse` has it.
struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Fields<'a> {
    /// A whole message: at most [`MAX_MESSAGE_LEN`] bytes, one object.
    fn parse_message(json: &'a str) -> Result<Self, TrackerError> {
        if json.len() > MAX_MESSAGE_LEN {
            return Err(TrackerError::TooLarge {
                len: json.len(),
                max: MAX_MESSAGE_LEN,
            });
        }
        match serde_json::from_str::<Fields>(json) {
            Ok(fields) => Ok(fields),
            Err(err) if err.is_data() => Err(TrackerError::NotAnObject),
            Err(err) => Err(TrackerError::Json(err.to_string())),
        }
    }

    /// A member that should be an object (already valid JSON: only its shape is checked).
    fn parse_member(raw: &'a RawValue, field: &'static str) -> Result<Self, TrackerError> {
        serde_json::from_str(raw.get()).map_err(|_| TrackerError::Invalid(field))
    }

    /// The member's value as JSON text; `null` reads as absent.
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| *value)
            .filter(|value| value.get() != "null")
    }

    fn str(&self, key: &'static str) -> Result<Option<Cow<'a, str>>, TrackerError> {
        self.get(key).map(|raw| json_str(raw, key)).transpose()
    }

    fn id<T>(
        &self,
        key: &'static str,
        parse: fn(&str) -> Result<T, IdError>,
    ) -> Result<Option<T>, TrackerError> {
        match self.str(key)? {
            None => Ok(None),
            Some(s) => binary_id(key, &s, parse).map(Some),
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
        let Some(raw) = self.get(key) else {
            return Ok(None);
        };
        let number: serde_json::Number =
            serde_json::from_str(raw.get()).map_err(|_| TrackerError::Invalid(key))?;
        if let Some(n) = number.as_u64() {
            return Ok(Some(n));
        }
        match number.as_f64() {
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

    /// A member that should hold a session description, `{"type": expected, "sdp": "…"}`.
    fn sdp(&self, key: &'static str, expected: &'static str) -> Result<Option<Sdp>, TrackerError> {
        let Some(raw) = self.get(key) else {
            return Ok(None);
        };
        let description: DescriptionIn =
            serde_json::from_str(raw.get()).map_err(|_| TrackerError::Invalid(key))?;
        description.check(key, expected).map(Some)
    }
}

/// `{"type": …, "sdp": …}` in the same pass as what holds it. The members stay JSON text
/// until [`DescriptionIn::check`]: the SDP is kept as it is, never decoded.
#[derive(Deserialize)]
struct DescriptionIn<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    sdp: Option<&'a RawValue>,
}

impl DescriptionIn<'_> {
    fn check(self, field: &'static str, expected: &'static str) -> Result<Sdp, TrackerError> {
        let kind = json_str(self.kind.ok_or(TrackerError::Invalid(field))?, field)?;
        if kind != expected {
            return Err(TrackerError::WrongSdpType {
                field,
                found: snippet(&kind),
                expected,
            });
        }
        Sdp::parse(self.sdp.ok_or(TrackerError::Invalid(field))?, field)
    }
}

/// One item of an announce's `offers`, read with the array in one pass.
#[derive(Deserialize)]
struct OfferIn<'a> {
    #[serde(borrow)]
    offer_id: Option<&'a RawValue>,
    #[serde(borrow)]
    offer: Option<DescriptionIn<'a>>,
}

impl OfferIn<'_> {
    fn check(self) -> Result<Offer, TrackerError> {
        let offer_id = self.offer_id.ok_or(TrackerError::Missing("offer_id"))?;
        Ok(Offer {
            offer_id: binary_id(
                "offer_id",
                &json_str(offer_id, "offer_id")?,
                OfferId::from_binary_string,
            )?,
            sdp: self
                .offer
                .ok_or(TrackerError::Missing("offer"))?
                .check("offer", "offer")?,
        })
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;

        impl<'de> de::Visitor<'de> for Members {
            type Value = Fields<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some((Text(key), value)) = map.next_entry()? {
                    members.push((key, value));
                }
                Ok(Fields(members))
            }
        }

        deserializer.deserialize_map(Members)
    }
}

/// A JSON string, borrowed from the message unless it has escapes. (`Cow<str>`'s own
/// `Deserialize` always copies.)
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Chars;

        impl<'de> de::Visitor<'de> for Chars {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(s)))
            }

            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
        }

        deserializer.deserialize_str(Chars)
    }
}

/// A member that should be a string.
fn json_str<'a>(raw: &'a RawValue, field: &'static str) -> Result<Cow<'a, str>, TrackerError> {
    serde_json::from_str::<Text>(raw.get())
        .map(|text| text.0)
        .map_err(|_| TrackerError::Invalid(field))
}

fn binary_id<T>(
    field: &'static str,
    s: &str,
    parse: fn(&str) -> Result<T, IdError>,
) -> Result<T, TrackerError> {
    parse(s).map_err(|reason| TrackerError::InvalidId { field, reason })
}

fn parse_announce(fields: &Fields) -> Result<Announce, TrackerError> {
    let info_hash = fields.required_id("info_hash", InfoHash::from_binary_string)?;
    let peer_id = fields.required_id("peer_id", PeerId::from_binary_string)?;
    let event = match fields.str("event")? {
        Some(event) => AnnounceEvent::parse(&event)?,
        None => None,
    };
    let offers = match fields.get("offers") {
        None => Vec::new(),
        Some(raw) => {
            let items: Vec<OfferIn> =
                serde_json::from_str(raw.get()).map_err(|_| TrackerError::Invalid("offers"))?;
            if items.len() > MAX_OFFERS {
                return Err(TrackerError::TooManyOffers {
                    count: items.len(),
                    max: MAX_OFFERS,
                });
            }
            items
                .into_iter()
                .map(OfferIn::check)
                .collect::<Result<_, _>>()?
        }
    };
    let answer = match fields.sdp("answer", "answer")? {
        None => None,
        Some(sdp) => Some(Answer {
            sdp,
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
        trackerid: fields.str("trackerid")?.map(Cow::into_owned),
    })
}

fn parse_scrape(fields: &Fields) -> Result<Scrape, TrackerError> {
    let Some(raw) = fields.get("info_hash") else {
        return Ok(Scrape::All);
    };
    if raw.get().starts_with('"') {
        let hash = json_str(raw, "info_hash")?;
        return binary_id("info_hash", &hash, InfoHash::from_binary_string).map(Scrape::Single);
    }
    let items: Vec<&RawValue> =
        serde_json::from_str(raw.get()).map_err(|_| TrackerError::Invalid("info_hash"))?;
    if items.len() > MAX_SCRAPE_HASHES {
        return Err(TrackerError::TooManyInfoHashes {
            count: items.len(),
            max: MAX_SCRAPE_HASHES,
        });
    }
    items
        .into_iter()
        .map(|item| {
            let hash = json_str(item, "info_hash")?;
            binary_id("info_hash", &hash, InfoHash::from_binary_string)
        })
        .collect::<Result<_, _>>()
        .map(Scrape::List)
}

fn parse_server_announce(fields: &Fields) -> Result<ServerMessage, TrackerError> {
    let info_hash = fields.required_id("info_hash", InfoHash::from_binary_string)?;
    if let Some(sdp) = fields.sdp("offer", "offer")? {
        return Ok(ServerMessage::Offer(RelayedOffer {
            info_hash,
            peer_id: fields.required_id("peer_id", PeerId::from_binary_string)?,
            offer_id: fields.required_id("offer_id", OfferId::from_binary_string)?,
            sdp,
        }));
    }
    if let Some(sdp) = fields.sdp("answer", "answer")? {
        return Ok(ServerMessage::Answer(RelayedAnswer {
            info_hash,
            peer_id: fields.required_id("peer_id", PeerId::from_binary_string)?,
            offer_id: fields.required_id("offer_id", OfferId::from_binary_string)?,
            sdp,
        }));
    }
    Ok(ServerMessage::Announce(AnnounceResponse {
        info_hash,
        complete: fields.count("complete")?.unwrap_or(0),
        incomplete: fields.count("incomplete")?.unwrap_or(0),
        interval: fields.count_u32("interval")?,
        min_interval: fields.count_u32("min interval")?,
        tracker_id: fields.str("tracker id")?.map(Cow::into_owned),
        warning: fields.str("warning message")?.map(Cow::into_owned),
    }))
}

fn parse_scrape_response(fields: &Fields) -> Result<ScrapeResponse, TrackerError> {
    let mut files = BTreeMap::new();
    if let Some(raw) = fields.get("files") {
        for (hash, stats) in Fields::parse_member(raw, "files")?.0 {
            let hash = binary_id("files", &hash, InfoHash::from_binary_string)?;
            let stats = Fields::parse_member(stats, "files")?;
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
    let min_request_interval = match fields.get("flags") {
        None => None,
        Some(raw) => Fields::parse_member(raw, "flags")?.count_u32("min_request_interval")?,
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

/// A 20-byte id as a binary string (each byte one char, U+0000..U+00FF), written without
/// building a `String`: a relay carries three ids, and relays are the tracker's hot path.
#[derive(Clone, Copy)]
struct BinaryOut<'a>(&'a [u8; 20]);

impl Serialize for BinaryOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Each char is at most 2 bytes of UTF-8.
        let mut utf8 = [0u8; 40];
        let mut len = 0;
        for &byte in self.0 {
            len += char::from(byte).encode_utf8(&mut utf8[len..]).len();
        }
        serializer
            .serialize_str(std::str::from_utf8(&utf8[..len]).map_err(serde::ser::Error::custom)?)
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Cannot fail: these structs hold only strings, numbers and string-keyed maps.
    serde_json::to_string(value).unwrap_or_default()
}

#[derive(Serialize)]
struct SdpOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sdp: &'a Sdp,
}

impl<'a> SdpOut<'a> {
    fn offer(sdp: &'a Sdp) -> Self {
        Self { kind: "offer", sdp }
    }

    fn answer(sdp: &'a Sdp) -> Self {
        Self {
            kind: "answer",
            sdp,
        }
    }
}

#[derive(Serialize)]
struct OfferOut<'a> {
    offer: SdpOut<'a>,
    offer_id: BinaryOut<'a>,
}

#[derive(Serialize)]
struct AnnounceOut<'a> {
    action: &'static str,
    info_hash: BinaryOut<'a>,
    peer_id: BinaryOut<'a>,
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
    to_peer_id: Option<BinaryOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offer_id: Option<BinaryOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trackerid: Option<&'a str>,
}

impl<'a> From<&'a Announce> for AnnounceOut<'a> {
    fn from(announce: &'a Announce) -> Self {
        let answer = announce.answer.as_ref();
        Self {
            action: Action::Announce.as_str(),
            info_hash: BinaryOut(&announce.info_hash.0),
            peer_id: BinaryOut(&announce.peer_id.0),
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
                    offer_id: BinaryOut(&offer.offer_id.0),
                })
                .collect(),
            answer: answer.map(|answer| SdpOut::answer(&answer.sdp)),
            to_peer_id: answer.map(|answer| BinaryOut(&answer.to_peer_id.0)),
            offer_id: answer.map(|answer| BinaryOut(&answer.offer_id.0)),
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
    info_hash: BinaryOut<'a>,
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
    offer_id: BinaryOut<'a>,
    peer_id: BinaryOut<'a>,
    info_hash: BinaryOut<'a>,
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
    info_hash: Option<BinaryOut<'a>>,
    #[serde(rename = "failure reason")]
    reason: &'a str,
}

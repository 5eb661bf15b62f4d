//! The HTTP tracker (BEP 3 announce, BEP 23 compact peers, BEP 48 scrape), for desktop and Node
//! peers of the pod's tracker (§1.12). Browsers never use it.
//!
//! Invariants:
//! - `info_hash` and `peer_id` travel as percent-escaped raw bytes. Decoding follows Node's
//!   `querystring` with `unescape`, which bittorrent-tracker uses: `%XX` is one byte (Latin-1,
//!   never UTF-8), `+` is a space, a malformed escape stays literal; the result must be exactly
//!   20 bytes.
//! - Parsed announces are validated (ids, port ≠ 0) and normalised (`numwant` defaults to
//!   [`DEFAULT_NUMWANT`], capped at [`MAX_NUMWANT`]).
//! - Responses are bencoded. We always answer with compact peers (`peers` of 6-byte IPv4
//!   entries, `peers6` of 18-byte IPv6 entries); parsing also accepts the dictionary list form.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{
    snippet, AnnounceEvent, ScrapeStats, TrackerError, DEFAULT_NUMWANT, MAX_NUMWANT,
    MAX_SCRAPE_HASHES,
};
use crate::bencode::{self, Value};
use crate::{InfoHash, PeerId};

/// Bounds for decoding a tracker's bencoded response (a few thousand peers at most).
const LIMITS: bencode::Limits = bencode::Limits {
    max_depth: 8,
    max_items: 100_000,
    max_bytes_len: 1 << 20,
};

/// An HTTP announce request (the query string of `GET /announce?…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnnounce {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    /// `None` when unknown (absent or not a number: bittorrent-tracker reads it as Infinity).
    pub left: Option<u64>,
    pub compact: bool,
    /// `None` is the periodic update.
    pub event: Option<AnnounceEvent>,
    pub numwant: u32,
}

impl HttpAnnounce {
    /// The query string (without `?`), in the order real clients send it.
    pub fn to_query(&self) -> String {
        let mut query = String::new();
        push_param(&mut query, "info_hash", self.info_hash.as_bytes());
        push_param(&mut query, "peer_id", self.peer_id.as_bytes());
        push_param(&mut query, "port", self.port.to_string().as_bytes());
        push_param(&mut query, "uploaded", self.uploaded.to_string().as_bytes());
        push_param(
            &mut query,
            "downloaded",
            self.downloaded.to_string().as_bytes(),
        );
        if let Some(left) = self.left {
            push_param(&mut query, "left", left.to_string().as_bytes());
        }
        push_param(
            &mut query,
            "compact",
            if self.compact { b"1" } else { b"0" },
        );
        if let Some(event) = self.event {
            push_param(&mut query, "event", event.as_str().as_bytes());
        }
        push_param(&mut query, "numwant", self.numwant.to_string().as_bytes());
        query
    }

    /// `tracker_url` with this announce's query appended.
    pub fn announce_url(&self, tracker_url: &str) -> String {
        append_query(tracker_url, &self.to_query())
    }

    /// Parses and validates a raw query string (with or without a leading `?`). Unknown
    /// parameters are ignored; `info_hash`, `peer_id` and `port` are required.
    pub fn parse_query(query: &str) -> Result<Self, TrackerError> {
        let params = parse_params(query);
        let one = |key: &'static str| -> Result<Option<&Vec<u8>>, TrackerError> {
            let mut values = params.iter().filter(|(k, _)| k == key.as_bytes());
            match (values.next(), values.next()) {
                (Some((_, value)), None) => Ok(Some(value)),
                (None, _) => Ok(None),
                (Some(_), Some(_)) => Err(TrackerError::Invalid(key)),
            }
        };
        let id = |key: &'static str| -> Result<[u8; 20], TrackerError> {
            let bytes = one(key)?.ok_or(TrackerError::Missing(key))?;
            <[u8; 20]>::try_from(bytes.as_slice()).map_err(|_| TrackerError::InvalidId {
                field: key,
                reason: crate::id::IdError::ByteLength(bytes.len()),
            })
        };
        let number = |key: &'static str| one(key).map(|value| value.and_then(|v| parse_u64(v)));

        let port = number("port")?
            .and_then(|port| u16::try_from(port).ok())
            .filter(|&port| port != 0)
            .ok_or(TrackerError::Invalid("port"))?;
        let event = match one("event")? {
            Some(event) => AnnounceEvent::parse(&String::from_utf8_lossy(event))?,
            None => None,
        };
        // As bittorrent-tracker: `Number(numwant) || 50`, so 0 and garbage mean the default.
        let numwant = number("numwant")?
            .filter(|&n| n != 0)
            .map_or(DEFAULT_NUMWANT, |n| n.min(u64::from(MAX_NUMWANT)) as u32);
        Ok(Self {
            info_hash: InfoHash(id("info_hash")?),
            peer_id: PeerId(id("peer_id")?),
            port,
            uploaded: number("uploaded")?.unwrap_or(0),
            downloaded: number("downloaded")?.unwrap_or(0),
            left: number("left")?,
            compact: one("compact")?.is_some_and(|v| v.as_slice() == b"1"),
            event,
            numwant,
        })
    }
}

/// The tracker's successful announce reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnnounceResponse {
    pub complete: u64,
    pub incomplete: u64,
    /// Seconds between announces (bittorrent-tracker: 600).
    pub interval: u32,
    pub min_interval: Option<u32>,
    pub warning: Option<String>,
    pub peers: Vec<SocketAddr>,
}

impl HttpAnnounceResponse {
    /// Bencodes the reply with compact `peers` (IPv4) and, if any, `peers6` (IPv6).
    pub fn encode(&self) -> Vec<u8> {
        let mut peers = Vec::new();
        let mut peers6 = Vec::new();
        for peer in &self.peers {
            match peer.ip() {
                IpAddr::V4(ip) => peers.extend_from_slice(&ip.octets()),
                IpAddr::V6(ip) => peers6.extend_from_slice(&ip.octets()),
            }
            let out = if peer.is_ipv4() {
                &mut peers
            } else {
                &mut peers6
            };
            out.extend_from_slice(&peer.port().to_be_bytes());
        }
        let mut dict = BTreeMap::new();
        dict.insert(b"complete".to_vec(), int(self.complete));
        dict.insert(b"incomplete".to_vec(), int(self.incomplete));
        dict.insert(b"interval".to_vec(), Value::from(self.interval));
        if let Some(min_interval) = self.min_interval {
            dict.insert(b"min interval".to_vec(), Value::from(min_interval));
        }
        if let Some(warning) = &self.warning {
            dict.insert(b"warning message".to_vec(), Value::from(warning.as_str()));
        }
        dict.insert(b"peers".to_vec(), Value::Bytes(peers));
        if !peers6.is_empty() {
            dict.insert(b"peers6".to_vec(), Value::Bytes(peers6));
        }
        Value::Dict(dict).encode()
    }

    /// Decodes a reply. A `failure reason` becomes [`TrackerError::Failure`].
    pub fn decode(bytes: &[u8]) -> Result<Self, TrackerError> {
        let dict = decode_dict(bytes)?;
        let mut peers = Vec::new();
        match dict.get(b"peers".as_slice()) {
            None => {}
            Some(Value::Bytes(compact)) => peers.extend(compact_peers::<6>(compact, "peers")?),
            Some(Value::List(entries)) => {
                for entry in entries {
                    peers.push(dict_peer(entry)?);
                }
            }
            Some(_) => return Err(TrackerError::Invalid("peers")),
        }
        match dict.get(b"peers6".as_slice()) {
            None => {}
            Some(Value::Bytes(compact)) => peers.extend(compact_peers::<18>(compact, "peers6")?),
            Some(_) => return Err(TrackerError::Invalid("peers6")),
        }
        Ok(Self {
            complete: count(&dict, b"complete", "complete")?.unwrap_or(0),
            incomplete: count(&dict, b"incomplete", "incomplete")?.unwrap_or(0),
            interval: count(&dict, b"interval", "interval")?
                .map(saturate_u32)
                .ok_or(TrackerError::Missing("interval"))?,
            min_interval: count(&dict, b"min interval", "min interval")?.map(saturate_u32),
            warning: text(&dict, b"warning message"),
            peers,
        })
    }
}

/// A bencoded failure reply (sent with status 200, as bittorrent-tracker does).
pub fn encode_failure(reason: &str) -> Vec<u8> {
    Value::dict([(b"failure reason", Value::from(reason))]).encode()
}

/// A BEP 48 scrape request: any number of `info_hash` parameters (none = all torrents).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpScrape {
    pub info_hashes: Vec<InfoHash>,
}

impl HttpScrape {
    pub fn to_query(&self) -> String {
        let mut query = String::new();
        for hash in &self.info_hashes {
            push_param(&mut query, "info_hash", hash.as_bytes());
        }
        query
    }

    /// `scrape_url` with this scrape's query appended (see [`scrape_url`]).
    pub fn scrape_url(&self, scrape_url: &str) -> String {
        append_query(scrape_url, &self.to_query())
    }

    pub fn parse_query(query: &str) -> Result<Self, TrackerError> {
        let mut info_hashes = Vec::new();
        for (key, value) in parse_params(query) {
            if key != b"info_hash" {
                continue;
            }
            if info_hashes.len() == MAX_SCRAPE_HASHES {
                return Err(TrackerError::TooManyInfoHashes {
                    count: info_hashes.len() + 1,
                    max: MAX_SCRAPE_HASHES,
                });
            }
            let hash = InfoHash::from_slice(&value).map_err(|reason| TrackerError::InvalidId {
                field: "info_hash",
                reason,
            })?;
            info_hashes.push(hash);
        }
        Ok(Self { info_hashes })
    }
}

/// A BEP 48 scrape reply: `files` keyed by raw 20-byte info-hashes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpScrapeResponse {
    pub files: BTreeMap<InfoHash, ScrapeStats>,
    /// `flags.min_request_interval`, seconds.
    pub min_request_interval: Option<u32>,
}

impl HttpScrapeResponse {
    pub fn encode(&self) -> Vec<u8> {
        let files = self.files.iter().map(|(hash, stats)| {
            let stats = Value::dict([
                (b"complete".as_slice(), int(stats.complete)),
                (b"downloaded".as_slice(), int(stats.downloaded)),
                (b"incomplete".as_slice(), int(stats.incomplete)),
            ]);
            (hash.as_bytes().as_slice(), stats)
        });
        let mut dict = BTreeMap::new();
        dict.insert(b"files".to_vec(), Value::dict(files));
        if let Some(interval) = self.min_request_interval {
            let flags = Value::dict([(b"min_request_interval", Value::from(interval))]);
            dict.insert(b"flags".to_vec(), flags);
        }
        Value::Dict(dict).encode()
    }

    /// Decodes a reply. A `failure reason` becomes [`TrackerError::Failure`].
    pub fn decode(bytes: &[u8]) -> Result<Self, TrackerError> {
        let dict = decode_dict(bytes)?;
        let mut files = BTreeMap::new();
        match dict.get(b"files".as_slice()) {
            None => {}
            Some(Value::Dict(entries)) => {
                for (hash, stats) in entries {
                    let hash =
                        InfoHash::from_slice(hash).map_err(|reason| TrackerError::InvalidId {
                            field: "files",
                            reason,
                        })?;
                    let stats = stats.as_dict().ok_or(TrackerError::Invalid("files"))?;
                    files.insert(
                        hash,
                        ScrapeStats {
                            complete: count(stats, b"complete", "complete")?.unwrap_or(0),
                            incomplete: count(stats, b"incomplete", "incomplete")?.unwrap_or(0),
                            downloaded: count(stats, b"downloaded", "downloaded")?.unwrap_or(0),
                        },
                    );
                }
            }
            Some(_) => return Err(TrackerError::Invalid("files")),
        }
        let min_request_interval = match dict.get(b"flags".as_slice()) {
            None => None,
            Some(Value::Dict(flags)) => {
                count(flags, b"min_request_interval", "min_request_interval")?.map(saturate_u32)
            }
            Some(_) => return Err(TrackerError::Invalid("flags")),
        };
        Ok(Self {
            files,
            min_request_interval,
        })
    }
}

/// The BEP 48 scrape URL of an announce URL: the last path segment must start with `announce`,
/// which becomes `scrape` (`…/announce.php?k=v` → `…/scrape.php?k=v`). `None` if it does not.
pub fn scrape_url(announce_url: &str) -> Option<String> {
    let (path, query) = match announce_url.find('?') {
        Some(at) => announce_url.split_at(at),
        None => (announce_url, ""),
    };
    let slash = path.rfind('/')?;
    let rest = path[slash + 1..].strip_prefix("announce")?;
    Some(format!("{}scrape{rest}{query}", &path[..=slash]))
}

// ---- query strings ------------------------------------------------------------------------

/// Appends `key=value` with the value percent-escaped byte by byte.
fn push_param(query: &mut String, key: &str, value: &[u8]) {
    if !query.is_empty() {
        query.push('&');
    }
    query.push_str(key);
    query.push('=');
    percent_encode_into(value, query);
}

fn append_query(url: &str, query: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{query}")
}

/// Escapes every byte except RFC 3986 unreserved characters, with uppercase hex.
pub fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    percent_encode_into(bytes, &mut out);
    out
}

fn percent_encode_into(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

/// Decodes one query component to raw bytes, as Node's `querystring.unescape`-based parse does:
/// `+` is a space, `%XX` one byte, anything else (including a malformed `%`) literal.
pub fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let digit = |at: usize| bytes.get(at).and_then(|&b| char::from(b).to_digit(16));
                if let (Some(high), Some(low)) = (digit(i + 1), digit(i + 2)) {
                    out.push((high * 16 + low) as u8);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            other => out.push(other),
        }
        i += 1;
    }
    out
}

/// Splits `a=1&b=2` into decoded `(key, value)` pairs, in order. A key without `=` has an empty
/// value.
fn parse_params(query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let query = query.strip_prefix('?').unwrap_or(query);
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

/// Decimal digits only (Node's `Number` would also take `1e3` or ` 12 `; no real client sends
/// those).
fn parse_u64(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

// ---- bencoded responses -------------------------------------------------------------------

fn decode_dict(bytes: &[u8]) -> Result<BTreeMap<Vec<u8>, Value>, TrackerError> {
    let Value::Dict(dict) = bencode::decode_with(bytes, &LIMITS)? else {
        return Err(TrackerError::Invalid("response (not a dictionary)"));
    };
    if let Some(reason) = dict.get(b"failure reason".as_slice()) {
        let reason = reason
            .as_bytes()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        return Err(TrackerError::Failure(snippet(&reason)));
    }
    Ok(dict)
}

fn count(
    dict: &BTreeMap<Vec<u8>, Value>,
    key: &[u8],
    name: &'static str,
) -> Result<Option<u64>, TrackerError> {
    match dict.get(key) {
        None => Ok(None),
        Some(value) => value
            .as_int()
            .and_then(|n| u64::try_from(n).ok())
            .map(Some)
            .ok_or(TrackerError::Invalid(name)),
    }
}

fn text(dict: &BTreeMap<Vec<u8>, Value>, key: &[u8]) -> Option<String> {
    dict.get(key)
        .and_then(Value::as_bytes)
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
}

fn int(n: u64) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn saturate_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Compact peers: `N`-byte entries of address then big-endian port (6 for IPv4, 18 for IPv6).
fn compact_peers<const N: usize>(
    bytes: &[u8],
    name: &'static str,
) -> Result<Vec<SocketAddr>, TrackerError> {
    if bytes.len() % N != 0 {
        return Err(TrackerError::Invalid(name));
    }
    Ok(bytes
        .chunks_exact(N)
        .map(|entry| {
            let (ip, port) = entry.split_at(N - 2);
            let port = u16::from_be_bytes([port[0], port[1]]);
            let ip = match <[u8; 4]>::try_from(ip) {
                Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
                Err(_) => {
                    let mut v6 = [0u8; 16];
                    v6.copy_from_slice(ip);
                    IpAddr::V6(Ipv6Addr::from(v6))
                }
            };
            SocketAddr::new(ip, port)
        })
        .collect())
}

/// A peer in the non-compact form: `{"ip": "1.2.3.4", "port": 6881, "peer id": …}`.
fn dict_peer(entry: &Value) -> Result<SocketAddr, TrackerError> {
    let ip = entry
        .get(b"ip")
        .and_then(Value::as_str)
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .ok_or(TrackerError::Invalid("peers (ip)"))?;
    let port = entry
        .get(b"port")
        .and_then(Value::as_int)
        .and_then(|port| u16::try_from(port).ok())
        .ok_or(TrackerError::Invalid("peers (port)"))?;
    Ok(SocketAddr::new(ip, port))
}

//! Magnet links (BEP 9) as WebTorrent writes and reads them (protocol §5.5, magnet-uri).
//!
//! This module owns the text form of "a swarm plus where to find it". Invariants of [`Magnet`]:
//! the info-hash is always present; `trackers`, `web_seeds` and `exact_sources` keep their
//! first-seen order and hold no duplicates or empty strings. Output is what `torrent.magnetURI`
//! prints: `xt` in lowercase hex, then `dn` (spaces as `+`), `tr`, `ws`, `xs`, every value
//! escaped like `encodeURIComponent`, so that no raw `&` or `=` can leak into a value.
//!
//! Parsing follows magnet-uri: parameters are split on `&` and `=`, a parameter whose value
//! contains a raw `=` is dropped, `dn` turns `+` into spaces, `ws` and `as` both name web seeds.

use std::fmt;

use crate::id::InfoHash;
use crate::metainfo::Metainfo;

/// Why a string is not a usable magnet link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    #[error("not a magnet link (expected it to start with `magnet:?`)")]
    NotMagnet,
    #[error("magnet link has no `xt=urn:btih:` info-hash")]
    MissingInfoHash,
    #[error("magnet info-hash {0:?} is neither 40 hex digits nor 32 base32 characters")]
    InvalidInfoHash(String),
}

/// A parsed magnet link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    pub info_hash: InfoHash,
    /// `dn`: the display name, until the metadata says otherwise.
    pub name: Option<String>,
    /// `tr`.
    pub trackers: Vec<String>,
    /// `ws` and `as` (BEP 19 web seeds; WebTorrent's `urlList`).
    pub web_seeds: Vec<String>,
    /// `xs`: URLs of the `.torrent`, letting a browser fetch metadata over HTTP at once.
    pub exact_sources: Vec<String>,
}

impl Magnet {
    /// A magnet with only the info-hash.
    pub fn new(info_hash: InfoHash) -> Self {
        Self {
            info_hash,
            name: None,
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            exact_sources: Vec::new(),
        }
    }

    /// Parses `magnet:?…` (or magnet-uri's `stream-magnet:?…`). Unknown parameters are ignored;
    /// the first `xt` holding a BitTorrent v1 hash wins.
    pub fn parse(uri: &str) -> Result<Magnet, MagnetError> {
        let query = uri
            .strip_prefix("magnet:?")
            .or_else(|| uri.strip_prefix("stream-magnet:?"))
            .ok_or(MagnetError::NotMagnet)?;

        let mut info_hash = None;
        let mut bad_hash = None;
        let mut name = None;
        let mut magnet = Magnet::new(InfoHash::default());
        for param in query.split('&') {
            let mut parts = param.split('=');
            let (Some(key), Some(raw), None) = (parts.next(), parts.next(), parts.next()) else {
                // No value, or a raw `=` inside the value: magnet-uri drops it.
                continue;
            };
            match key {
                "xt" if info_hash.is_none() => {
                    let value = percent_decode(raw);
                    let Some(hash) = value.strip_prefix("urn:btih:") else {
                        // e.g. urn:btmh (v2), which WebTorrent cannot join either.
                        continue;
                    };
                    match parse_btih(hash) {
                        Some(hash) => info_hash = Some(hash),
                        None => bad_hash = Some(hash.to_owned()),
                    }
                }
                "dn" if name.is_none() => {
                    let value = percent_decode(raw).replace('+', " ");
                    name = Some(value).filter(|n| !n.is_empty());
                }
                "tr" => push_unique(&mut magnet.trackers, percent_decode(raw)),
                "ws" | "as" => push_unique(&mut magnet.web_seeds, percent_decode(raw)),
                "xs" => push_unique(&mut magnet.exact_sources, percent_decode(raw)),
                _ => {}
            }
        }

        magnet.info_hash = match (info_hash, bad_hash) {
            (Some(hash), _) => hash,
            (None, Some(bad)) => return Err(MagnetError::InvalidInfoHash(bad)),
            (None, None) => return Err(MagnetError::MissingInfoHash),
        };
        magnet.name = name;
        Ok(magnet)
    }
}

impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "magnet:?xt=urn:btih:{}", self.info_hash.to_hex())?;
        if let Some(name) = &self.name {
            // encodeURIComponent, then `%20` → `+` as magnet-uri does for `dn` only.
            write!(f, "&dn={}", uri_component(name).replace("%20", "+"))?;
        }
        for (key, values) in [
            ("tr", &self.trackers),
            ("ws", &self.web_seeds),
            ("xs", &self.exact_sources),
        ] {
            for value in values {
                write!(f, "&{key}={}", uri_component(value))?;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for Magnet {
    type Err = MagnetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Magnet::parse(s)
    }
}

impl From<&Metainfo> for Magnet {
    /// The magnet WebTorrent prints for a loaded torrent: name, trackers, web seeds.
    fn from(torrent: &Metainfo) -> Self {
        Magnet {
            info_hash: torrent.info_hash,
            name: Some(torrent.info.name.clone()),
            trackers: torrent.announce.clone(),
            web_seeds: torrent.url_list.clone(),
            exact_sources: Vec::new(),
        }
    }
}

fn push_unique(list: &mut Vec<String>, value: String) {
    // Magnets carry a handful of URLs; a linear scan is fine.
    if !value.is_empty() && !list.contains(&value) {
        list.push(value);
    }
}

/// 40 hex digits, or 32 RFC 4648 base32 characters (case-insensitive, no padding).
fn parse_btih(s: &str) -> Option<InfoHash> {
    match s.len() {
        40 => InfoHash::from_hex(s).ok(),
        32 => base32_decode_20(s).map(InfoHash),
        _ => None,
    }
}

/// Decodes exactly 32 base32 characters (160 bits) into 20 bytes.
fn base32_decode_20(s: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    let mut buffer: u64 = 0;
    let mut bits = 0;
    let mut n = 0;
    for c in s.bytes() {
        let value = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u64::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (buffer >> bits) as u8;
            n += 1;
        }
    }
    (n == 20).then_some(out)
}

/// `decodeURIComponent`, but lenient: a malformed escape is kept as written instead of failing
/// the whole link, and invalid UTF-8 becomes U+FFFD.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&hi), Some(&lo)) => hex_value(hi).zip(hex_value(lo)),
            _ => None,
        };
        match escaped {
            Some((hi, lo)) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// JavaScript's `encodeURIComponent`: everything but `A-Z a-z 0-9 - _ . ! ~ * ' ( )` is
/// percent-encoded as UTF-8 with uppercase hex.
fn uri_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEAVES: &str = "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36";

    #[test]
    fn leaves_as_webtorrent_prints_it() {
        let mut m = Magnet::new(LEAVES.parse().unwrap());
        m.name = Some("Leaves of Grass by Walt Whitman.epub".into());
        let expected = "magnet:?xt=urn:btih:d2474e86c95b19b8bcfdb92bc12c9d44667cfa36\
                        &dn=Leaves+of+Grass+by+Walt+Whitman.epub";
        assert_eq!(m.to_string(), expected);
        assert_eq!(Magnet::parse(expected).unwrap(), m);
    }

    #[test]
    fn base32_hashes() {
        for (b32, hex) in [
            (
                "64DZYZWMUAVLIWJUXGDIK4QGAAIN7SL6",
                "f7079c66cca02ab45934b9868572060010dfc97e",
            ),
            (
                "QHQXPYWMACKDWKP47RRVIV7VOURXFE5Q",
                "81e177e2cc00943b29fcfc635457f575237293b0",
            ),
        ] {
            let m = Magnet::parse(&format!("magnet:?xt=urn:btih:{b32}")).unwrap();
            assert_eq!(m.info_hash.to_hex(), hex);
            let lower = Magnet::parse(&format!("magnet:?xt=urn:btih:{}", b32.to_lowercase()));
            assert_eq!(lower.unwrap().info_hash.to_hex(), hex);
        }
        assert_eq!(
            Magnet::parse("magnet:?xt=urn:btih:64DZYZWMUAVLIWJUXGDIK4QGAAIN7SL1"),
            Err(MagnetError::InvalidInfoHash(
                "64DZYZWMUAVLIWJUXGDIK4QGAAIN7SL1".into()
            ))
        );
    }

    #[test]
    fn parameters_and_duplicates() {
        let uri = format!(
            "magnet:?xt=urn:btih:{}&dn=a+b%2Bc&tr=wss%3A%2F%2Ft1&tr=wss%3A%2F%2Ft1\
             &tr=udp://t2:80&ws=https%3A%2F%2Fs%2F&as=https%3A%2F%2Fs%2F&as=https://s2/\
             &xs=https%3A%2F%2Fx%2Fa.torrent&tr=http://bad?a=b&x.pe=1.2.3.4:5&kt=a&tr=",
            LEAVES.to_uppercase()
        );
        let m = Magnet::parse(&uri).unwrap();
        assert_eq!(m.info_hash.to_hex(), LEAVES);
        assert_eq!(
            m.name.as_deref(),
            Some("a b c"),
            "+ and %2B both become spaces"
        );
        assert_eq!(m.trackers, ["wss://t1", "udp://t2:80"]);
        assert_eq!(m.web_seeds, ["https://s/", "https://s2/"]);
        assert_eq!(m.exact_sources, ["https://x/a.torrent"]);
        assert_eq!(
            m.to_string(),
            format!(
                "magnet:?xt=urn:btih:{LEAVES}&dn=a+b+c&tr=wss%3A%2F%2Ft1&tr=udp%3A%2F%2Ft2%3A80\
                 &ws=https%3A%2F%2Fs%2F&ws=https%3A%2F%2Fs2%2F&xs=https%3A%2F%2Fx%2Fa.torrent"
            )
        );
        assert_eq!(Magnet::parse(&m.to_string()).unwrap(), m);
    }

    #[test]
    fn encode_uri_component_semantics() {
        assert_eq!(uri_component("AZaz09-_.!~*'()"), "AZaz09-_.!~*'()");
        assert_eq!(uri_component(" &=+/?#%"), "%20%26%3D%2B%2F%3F%23%25");
        assert_eq!(uri_component("é"), "%C3%A9");
        let mut m = Magnet::new(InfoHash([0; 20]));
        m.name = Some("x=1&y é".into());
        assert_eq!(Magnet::parse(&m.to_string()).unwrap(), m);
    }

    #[test]
    fn rejects_what_is_not_a_magnet() {
        assert_eq!(Magnet::parse("http://x"), Err(MagnetError::NotMagnet));
        assert_eq!(
            Magnet::parse("magnet:?dn=x"),
            Err(MagnetError::MissingInfoHash)
        );
        assert_eq!(
            Magnet::parse("magnet:?xt=urn:btmh:1220abcd"),
            Err(MagnetError::MissingInfoHash)
        );
        assert!(Magnet::parse("magnet:?xt=urn:btih:zz").is_err());
        assert_eq!(
            Magnet::parse(&format!("stream-magnet:?xt=urn:btih:{LEAVES}"))
                .unwrap()
                .info_hash
                .to_hex(),
            LEAVES
        );
        // Malformed escapes and odd bytes never panic.
        let m = Magnet::parse(&format!("magnet:?xt=urn:btih:{LEAVES}&dn=%E2%8&tr=%zz%")).unwrap();
        assert_eq!(m.trackers, ["%zz%"]);
    }
}

//! The 20-byte identifiers every layer shares: info-hashes and peer ids.
//!
//! Both are plain 20-byte arrays on the wire. Three spellings exist and each has one home here:
//! - lowercase hex (40 chars): magnets, URLs, logs, the pod's API;
//! - raw bytes: the peer wire handshake, HTTP tracker query strings (percent-escaped);
//! - "binary strings": the WebSocket tracker's JSON, where byte `b` becomes the char U+00`b`
//!   (Latin-1). See ../shared/webtorrent-protocol.md §1.2: that is what bittorrent-tracker sends,
//!   and anything else (hex, lossy UTF-8) breaks interop.

use std::fmt;
use std::str::FromStr;

/// Why a spelled-out id could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("expected 40 hex characters, got {0} characters")]
    HexLength(usize),
    #[error("not a hex digit in id")]
    HexDigit,
    #[error("expected 20 bytes, got {0}")]
    ByteLength(usize),
    #[error("binary string must have 20 characters, got {0}")]
    BinaryLength(usize),
    #[error("binary string has a character above U+00FF")]
    BinaryRange,
}

macro_rules! twenty_byte_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; 20]);

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 20] {
                &self.0
            }

            /// Reads exactly 20 raw bytes.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, IdError> {
                <[u8; 20]>::try_from(bytes)
                    .map(Self)
                    .map_err(|_| IdError::ByteLength(bytes.len()))
            }

            /// Lowercase hex, as magnets and the pod's API spell it.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Reads 40 hex digits (either case).
            pub fn from_hex(s: &str) -> Result<Self, IdError> {
                if s.len() != 40 {
                    return Err(IdError::HexLength(s.chars().count()));
                }
                let mut out = [0u8; 20];
                hex::decode_to_slice(s, &mut out).map_err(|_| IdError::HexDigit)?;
                Ok(Self(out))
            }

            /// The WebSocket tracker's "binary string": byte `b` becomes char U+00`b`.
            pub fn to_binary_string(&self) -> String {
                self.0.iter().map(|&b| b as char).collect()
            }

            /// Reads a "binary string": exactly 20 chars, each at most U+00FF.
            pub fn from_binary_string(s: &str) -> Result<Self, IdError> {
                let mut out = [0u8; 20];
                let mut n = 0;
                for c in s.chars() {
                    if n == 20 {
                        return Err(IdError::BinaryLength(s.chars().count()));
                    }
                    let code = c as u32;
                    if code > 0xFF {
                        return Err(IdError::BinaryRange);
                    }
                    out[n] = code as u8;
                    n += 1;
                }
                if n != 20 {
                    return Err(IdError::BinaryLength(n));
                }
                Ok(Self(out))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::from_hex(s)
            }
        }

        impl From<[u8; 20]> for $name {
            fn from(bytes: [u8; 20]) -> Self {
                Self(bytes)
            }
        }
    };
}

twenty_byte_id!(
    /// SHA-1 of a torrent's raw bencoded `info` dictionary: the name of a swarm.
    InfoHash
);

twenty_byte_id!(
    /// A peer's 20-byte id, the same on the tracker and in the wire handshake.
    PeerId
);

impl PeerId {
    /// A fresh id in the Azureus style WebTorrent uses (`-WW0300-` + 12 random printable chars),
    /// so that peer-id parsers (tracker stats pages) recognise the client. `random` supplies the
    /// entropy so that this stays deterministic under test.
    pub fn generate(prefix: &[u8; 8], random: [u8; 12]) -> Self {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = [0u8; 20];
        out[..8].copy_from_slice(prefix);
        for (slot, r) in out[8..].iter_mut().zip(random) {
            *slot = ALPHABET[(r & 63) as usize];
        }
        Self(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEAVES: &str = "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36";

    #[test]
    fn hex_round_trip() {
        let h: InfoHash = LEAVES.parse().unwrap();
        assert_eq!(h.to_hex(), LEAVES);
        assert_eq!(InfoHash::from_hex(&LEAVES.to_uppercase()).unwrap(), h);
        assert!(InfoHash::from_hex("abc").is_err());
        assert!(InfoHash::from_hex(&"zz".repeat(20)).is_err());
    }

    #[test]
    fn binary_string_matches_what_node_sends() {
        // The UTF-8 bytes of the JSON string for the leaves info-hash, as recorded from Node 20
        // in webtorrent-protocol.md §1.2 (quotes stripped).
        let wire: &[u8] = &[
            0xc3, 0x92, 0x47, 0x4e, 0xc2, 0x86, 0xc3, 0x89, 0x5b, 0x5c, 0x75, 0x30, 0x30, 0x31,
            0x39, 0xc2, 0xb8, 0xc2, 0xbc, 0xc3, 0xbd, 0xc2, 0xb9, 0x2b, 0xc3, 0x81, 0x2c, 0xc2,
            0x9d, 0x44, 0x66, 0x7c, 0xc3, 0xba, 0x36,
        ];
        let h: InfoHash = LEAVES.parse().unwrap();
        let json = serde_json::to_string(&h.to_binary_string()).unwrap();
        assert_eq!(&json.as_bytes()[1..json.len() - 1], wire);
        let back: String = serde_json::from_slice(&[b"\"", wire, b"\""].concat()).unwrap();
        assert_eq!(InfoHash::from_binary_string(&back).unwrap(), h);
    }

    #[test]
    fn binary_string_rejects_wrong_length_and_wide_chars() {
        assert_eq!(
            InfoHash::from_binary_string("short"),
            Err(IdError::BinaryLength(5))
        );
        let wide = format!("{}€", "a".repeat(19));
        assert_eq!(
            InfoHash::from_binary_string(&wide),
            Err(IdError::BinaryRange)
        );
        assert!(InfoHash::from_binary_string(&"a".repeat(21)).is_err());
    }

    #[test]
    fn generated_peer_id_is_printable_and_prefixed() {
        let id = PeerId::generate(b"-SH0100-", [7; 12]);
        assert!(id.0.starts_with(b"-SH0100-"));
        assert!(id.0.iter().all(|b| b.is_ascii_graphic()));
    }
}

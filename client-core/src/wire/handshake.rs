//! The 68-byte BitTorrent handshake (BEP 3) and its reserved bits.

use super::WireError;
use crate::{InfoHash, PeerId};

/// The protocol string every handshake starts with (after its length byte, 19).
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// Length of a handshake: 1 + 19 + 8 reserved + 20 info-hash + 20 peer id.
pub const HANDSHAKE_LEN: usize = 68;

/// (byte, mask) of each reserved bit we know.
const EXTENSION_PROTOCOL: (usize, u8) = (5, 0x10); // BEP 10
const FAST: (usize, u8) = (7, 0x04); // BEP 6
const DHT: (usize, u8) = (7, 0x01); // BEP 5

/// A BitTorrent handshake. Both sides send one immediately on connect (§2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    pub reserved: [u8; 8],
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
}

impl Handshake {
    /// A handshake with no reserved bits set.
    pub fn new(info_hash: InfoHash, peer_id: PeerId) -> Self {
        Self {
            reserved: [0; 8],
            info_hash,
            peer_id,
        }
    }

    /// The handshake Shoal sends: extension protocol and fast extension, no DHT — exactly the
    /// reserved bytes of browser WebTorrent, `00 00 00 00 00 10 00 04`.
    pub fn shoal(info_hash: InfoHash, peer_id: PeerId) -> Self {
        let mut handshake = Self::new(info_hash, peer_id);
        handshake.set_extension_protocol(true);
        handshake.set_fast(true);
        handshake
    }

    /// BEP 10 extension protocol (reserved byte 5, bit 0x10).
    pub fn supports_extension_protocol(&self) -> bool {
        self.bit(EXTENSION_PROTOCOL)
    }

    /// BEP 6 fast extension (reserved byte 7, bit 0x04). It is in force only if both sides set it.
    pub fn supports_fast(&self) -> bool {
        self.bit(FAST)
    }

    /// BEP 5 DHT (reserved byte 7, bit 0x01); never set by browsers.
    pub fn supports_dht(&self) -> bool {
        self.bit(DHT)
    }

    pub fn set_extension_protocol(&mut self, on: bool) {
        self.set_bit(EXTENSION_PROTOCOL, on)
    }

    pub fn set_fast(&mut self, on: bool) {
        self.set_bit(FAST, on)
    }

    pub fn set_dht(&mut self, on: bool) {
        self.set_bit(DHT, on)
    }

    /// Whether the fast extension is in force on a wire where `self` and `other` were exchanged.
    pub fn fast_negotiated_with(&self, other: &Handshake) -> bool {
        self.supports_fast() && other.supports_fast()
    }

    /// Whether BEP 10 extension messages may be sent on a wire where both were exchanged.
    pub fn extension_protocol_negotiated_with(&self, other: &Handshake) -> bool {
        self.supports_extension_protocol() && other.supports_extension_protocol()
    }

    /// The 68 bytes on the wire.
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = PROTOCOL.len() as u8;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(self.info_hash.as_bytes());
        out[48..68].copy_from_slice(self.peer_id.as_bytes());
        out
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.encode());
    }

    /// Reads exactly one handshake. Checking that the info-hash is the torrent's and that the
    /// peer id is not our own (WebTorrent drops such connections) is the engine's job.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        check_prefix(bytes)?;
        if bytes.len() != HANDSHAKE_LEN {
            return Err(WireError::HandshakeLength(bytes.len()));
        }
        let mut reserved = [0u8; 8];
        reserved.copy_from_slice(&bytes[20..28]);
        let mut info_hash = [0u8; 20];
        info_hash.copy_from_slice(&bytes[28..48]);
        let mut peer_id = [0u8; 20];
        peer_id.copy_from_slice(&bytes[48..68]);
        Ok(Self {
            reserved,
            info_hash: InfoHash(info_hash),
            peer_id: PeerId(peer_id),
        })
    }

    fn bit(&self, (byte, mask): (usize, u8)) -> bool {
        self.reserved[byte] & mask != 0
    }

    fn set_bit(&mut self, (byte, mask): (usize, u8), on: bool) {
        if on {
            self.reserved[byte] |= mask;
        } else {
            self.reserved[byte] &= !mask;
        }
    }
}

/// Checks as much of the `0x13 "BitTorrent protocol"` prefix as `bytes` holds, so that a peer
/// speaking something else is refused after its first bytes rather than after 68.
pub(super) fn check_prefix(bytes: &[u8]) -> Result<(), WireError> {
    if let Some(&len) = bytes.first() {
        if usize::from(len) != PROTOCOL.len() {
            return Err(WireError::BadProtocolLength(len));
        }
    }
    let seen = &bytes[1.min(bytes.len())..bytes.len().min(20)];
    if seen != &PROTOCOL[..seen.len()] {
        return Err(WireError::BadProtocolString);
    }
    Ok(())
}

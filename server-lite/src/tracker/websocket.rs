//! RFC 6455 WebSocket, the server's side, as much as the tracker needs: the opening handshake's
//! checks and accept key, a decoder of client frames into messages, and an encoder of server
//! frames. No I/O: bytes in, messages out; `ws.rs` moves the bytes.
//!
//! Why our own and not tungstenite (through axum): nearly every tracker connection is idle
//! nearly all the time, and tungstenite keeps a read buffer per connection that grows to the
//! largest message seen (an announce with offers is 3–20 KB) and never shrinks. With this
//! decoder the connection's task reads into a buffer only while bytes are arriving and drops it
//! once every whole message is taken out, so an idle connection holds no buffer at all. And a
//! batch of answers and relayed offers is encoded straight into one write.
//!
//! What is accepted (anything else is a protocol error, which ends the connection with the close
//! code of [`ProtocolError::close_code`]):
//! - masked frames only (clients must mask, §5.1), no extension (the RSV bits are 0, §5.2);
//! - text and binary messages, whole or fragmented, up to the decoder's size limit in all;
//!   the limit is checked against a frame's header, before its payload is buffered;
//! - control frames (close, ping, pong) of at most 125 bytes, never fragmented (§5.5), also
//!   between the fragments of a message.
//!
//! Text and binary are one kind of message here: bittorrent-tracker's server parses both as
//! UTF-8 JSON, and so does ours.

use base64::Engine as _;
use bytes::{Buf, Bytes, BytesMut};
use sha1::{Digest, Sha1};

/// §1.3: the key a client sends, with this appended and hashed, proves the server speaks
/// WebSocket.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`. `None` if the key is not the
/// base64 of 16 bytes (§4.2.1), which no real client sends.
pub fn accept_key(client_key: &str) -> Option<String> {
    let key = client_key.trim();
    let decoded = base64::engine::general_purpose::STANDARD.decode(key).ok()?;
    if decoded.len() != 16 {
        return None;
    }
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(ACCEPT_GUID.as_bytes());
    Some(base64::engine::general_purpose::STANDARD.encode(sha1.finalize()))
}

/// Frame opcodes (§5.2).
mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// Longest payload of a control frame (§5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// A message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    /// A text or binary message, whole (fragments joined).
    Data(Bytes),
    /// To be answered with a pong carrying the same bytes.
    Ping(Bytes),
    Pong,
    /// The client starts the closing handshake.
    Close,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("client frame not masked")]
    Unmasked,
    #[error("reserved bits set without an extension")]
    ReservedBits,
    #[error("unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    #[error("control frame fragmented or over 125 bytes")]
    BadControlFrame,
    #[error("fragment out of sequence")]
    OutOfSequence,
    #[error("message over {0} bytes")]
    TooBig(usize),
}

impl ProtocolError {
    /// The close code to send before ending the connection (§7.4.1): 1009 for a message too
    /// big, 1002 for everything else.
    pub fn close_code(&self) -> u16 {
        match self {
            ProtocolError::TooBig(_) => 1009,
            _ => 1002,
        }
    }
}

/// A frame's header, parsed and checked.
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Bytes of the header itself (2 to 14).
    len: usize,
    payload_len: usize,
}

impl Header {
    /// `Ok(None)` until `bytes` holds the whole header. `max_payload`: the most a data frame
    /// may carry.
    fn parse(bytes: &[u8], max_payload: usize) -> Result<Option<Header>, ProtocolError> {
        let [b0, b1, ..] = *bytes else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        if b0 & 0x70 != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        let opcode = b0 & 0x0F;
        // The size limit is for messages; a control frame's own limit is checked here.
        let max_payload = match opcode {
            opcode::CONTINUATION | opcode::TEXT | opcode::BINARY => max_payload,
            opcode::CLOSE | opcode::PING | opcode::PONG => {
                if !fin || usize::from(b1 & 0x7F) > MAX_CONTROL_PAYLOAD {
                    return Err(ProtocolError::BadControlFrame);
                }
                MAX_CONTROL_PAYLOAD
            }
            other => return Err(ProtocolError::UnknownOpcode(other)),
        };
        if b1 & 0x80 == 0 {
            return Err(ProtocolError::Unmasked);
        }
        let (length_bytes, short) = match b1 & 0x7F {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(usize::from(n))),
        };
        let len = 2 + length_bytes + 4;
        if bytes.len() < len {
            return Ok(None);
        }
        let payload_len = match short {
            Some(n) => n,
            None => {
                let extended = bytes[2..2 + length_bytes]
                    .iter()
                    .fold(0u64, |n, &b| (n << 8) | u64::from(b));
                // Anything past the limit is refused here, before its payload is buffered.
                usize::try_from(extended)
                    .ok()
                    .filter(|&n| n <= max_payload)
                    .ok_or(ProtocolError::TooBig(max_payload))?
            }
        };
        if payload_len > max_payload {
            return Err(ProtocolError::TooBig(max_payload));
        }
        let mut mask = [0; 4];
        mask.copy_from_slice(&bytes[len - 4..len]);
        Ok(Some(Header {
            fin,
            opcode,
            mask,
            len,
            payload_len,
        }))
    }
}

/// XORs `payload` with the frame's masking key (§5.3), eight bytes at a time.
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes(chunk.try_into().expect("8 bytes")) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

/// Turns the bytes a client sends into messages.
///
/// Invariant: `fragments` is `Some` exactly while a fragmented message is incomplete, and holds
/// at most `max_message_len` bytes.
#[derive(Debug)]
pub struct Decoder {
    max_message_len: usize,
    fragments: Option<BytesMut>,
}

impl Decoder {
    pub fn new(max_message_len: usize) -> Self {
        Self {
            max_message_len,
            fragments: None,
        }
    }

    /// The header of the first frame in `received`; a data frame may carry what the size limit
    /// leaves after the fragments already received.
    fn header(&self, received: &[u8]) -> Result<Option<Header>, ProtocolError> {
        let room = self.max_message_len - self.fragments.as_ref().map_or(0, BytesMut::len);
        Header::parse(received, room).map_err(|err| match err {
            ProtocolError::TooBig(_) => ProtocolError::TooBig(self.max_message_len),
            other => other,
        })
    }

    /// Takes the next message out of the front of `received`, removing the bytes it used.
    /// `Ok(None)`: no whole message yet (its frames stay in `received`, or in the decoder for
    /// fragments already taken). After an error the connection must end: the stream's framing
    /// can no longer be trusted.
    pub fn decode(&mut self, received: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        loop {
            let Some(header) = self.header(received)? else {
                return Ok(None);
            };
            if received.len() < header.len + header.payload_len {
                return Ok(None);
            }
            received.advance(header.len);
            let mut payload = received.split_to(header.payload_len);
            unmask(&mut payload, header.mask);
            match (header.opcode, self.fragments.as_mut()) {
                (opcode::CLOSE, _) => return Ok(Some(Message::Close)),
                (opcode::PING, _) => return Ok(Some(Message::Ping(payload.freeze()))),
                (opcode::PONG, _) => return Ok(Some(Message::Pong)),
                (opcode::TEXT | opcode::BINARY, None) if header.fin => {
                    return Ok(Some(Message::Data(payload.freeze())));
                }
                (opcode::TEXT | opcode::BINARY, None) => self.fragments = Some(payload),
                (opcode::CONTINUATION, Some(fragments)) => {
                    fragments.unsplit(payload);
                    if header.fin {
                        let whole = self.fragments.take().expect("checked above");
                        return Ok(Some(Message::Data(whole.freeze())));
                    }
                }
                _ => return Err(ProtocolError::OutOfSequence),
            }
        }
    }

    /// Bytes `received` must hold for its first frame to be whole, once its header is in: how
    /// much to read before decoding again. `None` while the header itself is incomplete (or
    /// invalid, which [`Decoder::decode`] reports), so never more than the size limit.
    pub fn frame_len(&self, received: &[u8]) -> Option<usize> {
        match self.header(received) {
            Ok(Some(header)) => Some(header.len + header.payload_len),
            _ => None,
        }
    }
}

/// Appends one whole, unmasked server frame (servers never mask, §5.1).
fn encode(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

pub fn encode_text(out: &mut Vec<u8>, text: &str) {
    encode(out, opcode::TEXT, text.as_bytes());
}

pub fn encode_ping(out: &mut Vec<u8>) {
    encode(out, opcode::PING, &[]);
}

pub fn encode_pong(out: &mut Vec<u8>, ping: &[u8]) {
    encode(out, opcode::PONG, ping);
}

/// A close frame with its code and a short reason (cut to fit the 125 bytes of a control frame,
/// at a character boundary).
pub fn encode_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    encode(out, opcode::CLOSE, &payload);
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    /// A client's frame: masked with `mask`, as browsers send.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut frame = Vec::new();
        encode(&mut frame, opcode, payload);
        frame[0] = (frame[0] & 0x7F) | if fin { 0x80 } else { 0 };
        frame[1] |= 0x80;
        let header_len = frame.len() - payload.len();
        frame.splice(header_len..header_len, mask);
        unmask(&mut frame[header_len + 4..], mask);
        frame
    }

    fn decode_all(decoder: &mut Decoder, bytes: &[u8]) -> Result<Vec<Message>, ProtocolError> {
        let mut received = BytesMut::from(bytes);
        let mut messages = Vec::new();
        while let Some(message) = decoder.decode(&mut received)? {
            messages.push(message);
        }
        assert!(received.is_empty(), "bytes left over");
        Ok(messages)
    }

    #[test]
    fn accept_key_of_the_rfc_example() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ==").as_deref(),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        assert_eq!(accept_key("not base64!"), None);
        assert_eq!(accept_key("c2hvcnQ="), None, "8 bytes, not 16");
    }

    #[test]
    fn decodes_the_rfc_masked_hello() {
        // RFC 6455 §5.7: a single-frame masked text message.
        let frame = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let messages = decode_all(&mut Decoder::new(1000), &frame).unwrap();
        assert_eq!(messages, [Message::Data(Bytes::from_static(b"Hello"))]);
    }

    #[test]
    fn each_length_encoding_round_trips_whatever_the_split() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for len in [0, 1, 7, 8, 9, 125, 126, 127, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            let frame = client_frame(true, opcode::BINARY, &payload, rng.gen());
            // Arriving in pieces of random sizes, as TCP delivers it.
            let mut decoder = Decoder::new(100_000);
            let mut received = BytesMut::new();
            let mut messages = Vec::new();
            let mut rest = &frame[..];
            while !rest.is_empty() {
                let n = rng.gen_range(1..=rest.len().min(5000));
                received.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                if let Some(needed) = decoder.frame_len(&received) {
                    assert_eq!(needed, frame.len());
                }
                messages.extend(decoder.decode(&mut received).unwrap());
            }
            assert_eq!(messages, [Message::Data(payload.into())], "length {len}");
            assert!(received.is_empty());
        }
    }

    #[test]
    fn joins_fragments_and_lets_control_frames_through_between_them() {
        let mask = [1, 2, 3, 4];
        let mut bytes = client_frame(false, opcode::TEXT, b"{\"action\":", mask);
        bytes.extend(client_frame(true, opcode::PING, b"hi", mask));
        bytes.extend(client_frame(
            false,
            opcode::CONTINUATION,
            b"\"scrape\"",
            mask,
        ));
        bytes.extend(client_frame(true, opcode::CONTINUATION, b"}", mask));
        bytes.extend(client_frame(true, opcode::PONG, b"", mask));
        bytes.extend(client_frame(
            true,
            opcode::CLOSE,
            &1000u16.to_be_bytes(),
            mask,
        ));
        let messages = decode_all(&mut Decoder::new(1000), &bytes).unwrap();
        assert_eq!(
            messages,
            [
                Message::Ping(Bytes::from_static(b"hi")),
                Message::Data(Bytes::from_static(b"{\"action\":\"scrape\"}")),
                Message::Pong,
                Message::Close,
            ]
        );
    }

    #[test]
    fn refuses_what_the_rfc_forbids() {
        let mask = [9, 9, 9, 9];
        let cases: [(Vec<u8>, ProtocolError); 7] = [
            (
                {
                    let mut unmasked = Vec::new();
                    encode_text(&mut unmasked, "hi");
                    unmasked
                },
                ProtocolError::Unmasked,
            ),
            (
                {
                    let mut frame = client_frame(true, opcode::TEXT, b"x", mask);
                    frame[0] |= 0x40; // RSV1: compression, never negotiated
                    frame
                },
                ProtocolError::ReservedBits,
            ),
            (
                client_frame(true, 0x3, b"x", mask),
                ProtocolError::UnknownOpcode(3),
            ),
            (
                client_frame(false, opcode::PING, b"x", mask),
                ProtocolError::BadControlFrame,
            ),
            (
                client_frame(true, opcode::PING, &[0; 126], mask),
                ProtocolError::BadControlFrame,
            ),
            (
                client_frame(true, opcode::CONTINUATION, b"x", mask),
                ProtocolError::OutOfSequence,
            ),
            (
                [
                    client_frame(false, opcode::TEXT, b"x", mask),
                    client_frame(true, opcode::TEXT, b"y", mask),
                ]
                .concat(),
                ProtocolError::OutOfSequence,
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(decode_all(&mut Decoder::new(1000), &bytes), Err(expected));
        }
    }

    #[test]
    fn a_message_over_the_limit_is_refused_from_its_header_alone() {
        let mask = [0; 4];
        // Only the header of a 2 KB frame: refused before any payload arrives.
        let frame = client_frame(true, opcode::TEXT, &[b'a'; 2000], mask);
        let mut received = BytesMut::from(&frame[..8]);
        let err = Decoder::new(1000).decode(&mut received).unwrap_err();
        assert_eq!(err, ProtocolError::TooBig(1000));
        assert_eq!(err.close_code(), 1009);
        // Fragments count together: 600 + 600 is over 1000.
        let bytes = [
            client_frame(false, opcode::TEXT, &[b'a'; 600], mask),
            client_frame(true, opcode::CONTINUATION, &[b'a'; 600], mask),
        ]
        .concat();
        let err = decode_all(&mut Decoder::new(1000), &bytes).unwrap_err();
        assert_eq!(err, ProtocolError::TooBig(1000));
        // A 64-bit length beyond any usize does not overflow anything.
        let mut huge = vec![0x81, 0xFF];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        huge.extend_from_slice(&mask);
        let err = decode_all(&mut Decoder::new(1000), &huge).unwrap_err();
        assert_eq!(err, ProtocolError::TooBig(1000));
    }

    #[test]
    fn server_frames_are_unmasked_and_close_reasons_fit_a_control_frame() {
        let mut out = Vec::new();
        encode_text(&mut out, "hi");
        encode_pong(&mut out, b"p");
        encode_close(&mut out, 1001, &"é".repeat(100));
        assert_eq!(&out[..4], &[0x81, 2, b'h', b'i']);
        assert_eq!(&out[4..7], &[0x8A, 1, b'p']);
        assert_eq!(out[7], 0x88);
        let close_len = usize::from(out[8]);
        assert!(close_len <= MAX_CONTROL_PAYLOAD);
        assert_eq!(&out[9..11], &1001u16.to_be_bytes());
        assert!(
            std::str::from_utf8(&out[11..]).is_ok(),
            "cut at a character"
        );
        assert_eq!(out.len(), 9 + close_len);
    }

    /// Network input never panics: random bytes, and valid frames with random bytes flipped.
    #[test]
    fn random_input_never_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for round in 0..20_000 {
            let mut bytes = if round % 2 == 0 {
                let len = rng.gen_range(0..64);
                (0..len).map(|_| rng.gen()).collect::<Vec<u8>>()
            } else {
                let payload = vec![b'x'; rng.gen_range(0..300)];
                let opcode = [0, 1, 2, 8, 9, 10][rng.gen_range(0..6)];
                client_frame(rng.gen(), opcode, &payload, rng.gen())
            };
            for _ in 0..rng.gen_range(0..3) {
                if !bytes.is_empty() {
                    let i = rng.gen_range(0..bytes.len());
                    bytes[i] = rng.gen();
                }
            }
            let mut decoder = Decoder::new(256);
            let mut received = BytesMut::from(&bytes[..]);
            let _ = decoder.frame_len(&received);
            while let Ok(Some(_)) = decoder.decode(&mut received) {}
        }
    }
}

//! Properties of the peer wire decoder that must hold for every input, shared by the fuzz
//! target (fuzz_targets/wire.rs) and the stable replay test (../tests/wire_replay.rs).
#![allow(dead_code)] // each user takes what it needs

use client_core::wire::{Decoder, Handshake, Message, WireError, WireLimits};

/// What decoding produced, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Handshake(Handshake),
    Message(Message),
    Error(WireError),
}

/// Limits for comparing chunkings: everything default except the buffer bound, which is the
/// one limit that legitimately depends on how the bytes were cut.
fn limits() -> WireLimits {
    WireLimits {
        max_buffered: usize::MAX,
        ..WireLimits::default()
    }
}

/// Feeds `stream` in chunks of the sizes in `cuts` (cycled; 0 is an empty chunk) and records
/// every handshake, message and error until the stream ends or a framing error stops it.
pub fn decode_events(
    stream: &[u8],
    cuts: &[usize],
    handshake_first: bool,
    fast: bool,
) -> Vec<Event> {
    let cuts: &[usize] = if cuts.iter().any(|&c| c > 0) {
        cuts
    } else {
        &[1]
    };
    let mut decoder = if handshake_first {
        Decoder::new(limits())
    } else {
        Decoder::after_handshake(limits(), fast)
    };
    decoder.set_fast_negotiated(fast);
    let mut awaiting_handshake = handshake_first;
    let mut events = Vec::new();
    let mut rest = stream;
    for &cut in cuts.iter().cycle() {
        let (chunk, tail) = rest.split_at(cut.min(rest.len()));
        rest = tail;
        decoder.feed(chunk);
        if awaiting_handshake {
            match decoder.next_handshake() {
                Ok(Some(handshake)) => {
                    events.push(Event::Handshake(handshake));
                    awaiting_handshake = false;
                }
                Ok(None) => {}
                Err(err) => {
                    events.push(Event::Error(err));
                    return events;
                }
            }
        }
        if !awaiting_handshake {
            loop {
                match decoder.next_message() {
                    Ok(Some(message)) => events.push(Event::Message(message)),
                    Ok(None) => break,
                    Err(err) => {
                        let fatal = !err.is_recoverable();
                        events.push(Event::Error(err));
                        if fatal {
                            return events;
                        }
                    }
                }
            }
        }
        if rest.is_empty() {
            return events;
        }
    }
    events
}

/// The decoder never panics, its output does not depend on how the bytes were chunked, and
/// what it decodes (up to the first error) re-encodes to exactly the bytes it came from.
///
/// Input layout: byte 0 = flags (bit 0: expect a handshake, bit 1: fast extension), bytes 1..5
/// = chunk sizes, the rest = the stream.
pub fn wire(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (cut_bytes, stream) = rest.split_at(rest.len().min(4));
    let cuts: Vec<usize> = cut_bytes.iter().map(|&b| usize::from(b)).collect();
    let handshake_first = flags & 1 == 1;
    let fast = flags & 2 == 2;

    let whole = decode_events(stream, &[stream.len().max(1)], handshake_first, fast);
    let chunked = decode_events(stream, &cuts, handshake_first, fast);
    assert_eq!(
        whole, chunked,
        "chunking changed the result (cuts {cuts:?})"
    );
    if stream.len() <= 4096 {
        let bytewise = decode_events(stream, &[1], handshake_first, fast);
        assert_eq!(whole, bytewise, "byte-at-a-time feeding changed the result");
    }

    let mut encoded = Vec::new();
    for event in &whole {
        match event {
            Event::Handshake(handshake) => handshake.encode_into(&mut encoded),
            Event::Message(message) => message.encode_into(&mut encoded),
            Event::Error(_) => break,
        }
    }
    assert!(
        stream.starts_with(&encoded),
        "decoded messages do not re-encode to their input"
    );
    if !whole.iter().any(|event| matches!(event, Event::Error(_))) {
        // No error: every byte was accounted for, except an incomplete tail.
        let tail = &stream[encoded.len()..];
        assert!(tail.len() < 68 + 4 + (1 << 20) + 1, "tail too long");
    }
}

//! A deterministic, stable-Rust stand-in for the `wire` fuzz target: the same checks
//! (../fuzz/checks_wire.rs) over generated, re-chunked and mutated wire streams.

#[path = "../fuzz/checks_wire.rs"]
mod checks;

use checks::{decode_events, Event};
use client_core::wire::{
    DontHave, ExtendedHandshake, Handshake, Message, MetadataMessage, SendQueue,
};
use client_core::{InfoHash, PeerId};

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

fn random_message(rng: &mut Rng) -> Message {
    match rng.below(20) {
        0 => Message::KeepAlive,
        1 => Message::Choke,
        2 => Message::Unchoke,
        3 => Message::Interested,
        4 => Message::NotInterested,
        5 => Message::Have(rng.u32()),
        6 => Message::Bitfield(rng.bytes_below(3000)),
        7 => Message::Request {
            index: rng.u32(),
            begin: rng.u32(),
            // Up to a little over MAX_REQUEST_LEN, so that some are refused.
            length: rng.below((1 << 17) + 64) as u32 + 1,
        },
        8 => Message::Piece {
            index: rng.u32(),
            begin: rng.u32(),
            data: rng.bytes_below(16385),
        },
        9 => Message::Cancel {
            index: rng.u32(),
            begin: rng.u32(),
            length: rng.u32(),
        },
        10 => Message::Port(rng.next() as u16),
        11 => Message::Suggest(rng.u32()),
        12 => Message::HaveAll,
        13 => Message::HaveNone,
        14 => Message::Reject {
            index: rng.u32(),
            begin: rng.u32(),
            length: rng.u32(),
        },
        15 => Message::AllowedFast(rng.u32()),
        16 => {
            ExtendedHandshake::shoal(Some(rng.below(10_000_000) as u64 + 1), rng.u32()).to_message()
        }
        17 => {
            let total_size = rng.below(100_000) as u64 + 1;
            let pieces = total_size.div_ceil(16384) as usize;
            let piece = rng.below(pieces) as u32;
            let len = client_core::wire::metadata_piece_len(total_size, piece).unwrap();
            MetadataMessage::Data {
                piece,
                total_size,
                data: rng.bytes(len),
            }
            .to_message(rng.below(256) as u8)
        }
        18 => DontHave { piece: rng.u32() }.to_message(2),
        _ => Message::Unknown {
            id: 21 + rng.below(235) as u8,
            payload: rng.bytes_below(100),
        },
    }
}

fn random_stream(rng: &mut Rng, with_handshake: bool) -> (Vec<u8>, Vec<Message>) {
    let mut bytes = Vec::new();
    if with_handshake {
        Handshake::shoal(InfoHash(rng.bytes(20).try_into().unwrap()), PeerId([7; 20]))
            .encode_into(&mut bytes);
    }
    let messages: Vec<Message> = (0..rng.below(30)).map(|_| random_message(rng)).collect();
    for message in &messages {
        message.encode_into(&mut bytes);
    }
    (bytes, messages)
}

/// The fuzz target's input layout: flags, four chunk sizes, stream.
fn fuzz_input(flags: u8, cuts: [u8; 4], stream: &[u8]) -> Vec<u8> {
    let mut data = vec![flags];
    data.extend_from_slice(&cuts);
    data.extend_from_slice(stream);
    data
}

#[test]
fn generated_streams_decode_identically_in_any_chunks() {
    let mut rng = Rng(0x5eed_0001);
    for round in 0..300 {
        let with_handshake = round % 2 == 0;
        let (stream, messages) = random_stream(&mut rng, with_handshake);
        let cuts = [
            rng.below(256) as u8,
            rng.below(20) as u8,
            0,
            rng.below(256) as u8,
        ];
        checks::wire(&fuzz_input(u8::from(with_handshake) | 2, cuts, &stream));

        // Valid streams decode to exactly the generated messages, bar the policy errors.
        let events = decode_events(&stream, &[rng.below(5000) + 1], with_handshake, true);
        let decoded: Vec<&Message> = events
            .iter()
            .filter_map(|event| match event {
                Event::Message(message) => Some(message),
                _ => None,
            })
            .collect();
        let accepted: Vec<&Message> = messages.iter().filter(|m| m.check(true).is_ok()).collect();
        assert_eq!(decoded, accepted);
    }
}

#[test]
fn mutated_streams_never_panic_and_stay_chunk_independent() {
    let mut rng = Rng(0x5eed_0002);
    for round in 0..1500 {
        let (mut stream, _) = random_stream(&mut rng, round % 3 == 0);
        if stream.is_empty() {
            stream.push(0);
        }
        for _ in 0..=rng.below(4) {
            let at = rng.below(stream.len());
            match rng.below(5) {
                0 => stream[at] ^= 1 << rng.below(8),
                1 => stream[at] = rng.next() as u8,
                2 => stream.truncate(at),
                3 => stream.insert(at, rng.below(24) as u8),
                _ => {
                    // A plausible length prefix in a random place.
                    let len = (rng.below(40_000) as u32).to_be_bytes();
                    stream.splice(at..at, len);
                }
            }
            if stream.is_empty() {
                stream.push(rng.next() as u8);
            }
        }
        let flags = rng.next() as u8;
        let cuts = [
            rng.next() as u8,
            rng.next() as u8,
            rng.next() as u8,
            rng.next() as u8,
        ];
        checks::wire(&fuzz_input(flags, cuts, &stream));
    }
}

#[test]
fn pure_garbage_never_panics() {
    let mut rng = Rng(0x5eed_0003);
    for _ in 0..1500 {
        let len = rng.below(600);
        let data = rng.bytes(len);
        checks::wire(&data);
    }
}

#[test]
fn send_queue_output_decodes_to_what_was_pushed() {
    let mut rng = Rng(0x5eed_0004);
    for _ in 0..100 {
        let mut queue = SendQueue::with_max_send(rng.below(20_000) + 1);
        let mut pushed = Vec::new();
        for _ in 0..rng.below(40) {
            let message = random_message(&mut rng);
            if queue.push(&message).is_ok() {
                pushed.push(message);
            }
        }
        let mut sends = Vec::new();
        while let Some(send) = queue.pop() {
            sends.push(send);
        }
        let stream = sends.concat();
        let events = decode_events(&stream, &[stream.len().max(1)], false, true);
        let decoded: Vec<Message> = events
            .into_iter()
            .filter_map(|event| match event {
                Event::Message(message) => Some(message),
                _ => None,
            })
            .collect();
        let accepted: Vec<Message> = pushed
            .into_iter()
            .filter(|m| m.check(true).is_ok())
            .collect();
        assert_eq!(decoded, accepted);
    }
}

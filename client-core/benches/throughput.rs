//! Throughput of the engine's hot paths, printed as MB/s (a plain `harness = false` bench):
//! SHA-1 piece verification, wire decoding of a stream of piece messages fed in 16 KiB
//! data-channel chunks, and a whole engine-to-engine transfer in memory.
//!
//! Run with `cargo bench -p client-core --bench throughput`.

use std::hint::black_box;
use std::time::Instant;

use client_core::engine::{Action, Config, Engine, Millis, PeerKey};
use client_core::metainfo::TorrentBuilder;
use client_core::wire::{Decoder, Message, WireLimits, BLOCK_SIZE};
use client_core::PeerId;
use sha1::{Digest, Sha1};

fn data(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn report(name: &str, bytes: usize, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:<40} {:>9.1} MB/s  ({} MiB in {:.3} s)",
        bytes as f64 / secs / 1e6,
        bytes >> 20,
        secs
    );
}

fn sha1_pieces() {
    let piece = data(256 * 1024);
    let rounds = 256; // 64 MiB
    let start = Instant::now();
    for _ in 0..rounds {
        black_box(Sha1::digest(black_box(&piece)));
    }
    report("sha1 verify (256 KiB pieces)", piece.len() * rounds, start);
}

fn wire_decode() {
    let block = data(BLOCK_SIZE as usize);
    let mut stream = Vec::new();
    for i in 0..4096u32 {
        Message::Piece {
            index: i / 16,
            begin: (i % 16) * BLOCK_SIZE,
            data: block.clone(),
        }
        .encode_into(&mut stream);
    }
    let start = Instant::now();
    let mut decoder = Decoder::after_handshake(WireLimits::default(), true);
    let mut messages = 0;
    for chunk in stream.chunks(16 * 1024) {
        decoder.feed(chunk);
        while let Ok(Some(message)) = decoder.next_message() {
            black_box(&message);
            messages += 1;
        }
    }
    assert_eq!(messages, 4096);
    report(
        "wire decode (piece msgs, 16 KiB chunks)",
        stream.len(),
        start,
    );
}

fn engine_transfer() {
    let len = 32 << 20;
    let content = data(len);
    let mut builder =
        TorrentBuilder::single_file("bench.bin", len as u64, Some(256 * 1024)).unwrap();
    builder.update(&content);
    let torrent = builder.finish().unwrap();
    let mut seeder = Engine::new(Config::default(), PeerId([1; 20]), torrent.clone(), 1);
    seeder.add_local_data(&content, Millis(0)).unwrap();
    let mut leecher = Engine::new(Config::default(), PeerId([2; 20]), torrent, 2);
    let start = Instant::now();
    let mut now = Millis(0);
    seeder.peer_connected(PeerKey(1), now);
    leecher.peer_connected(PeerKey(1), now);
    while !leecher.is_done() {
        while let Some(action) = seeder.poll_action() {
            if let Action::Send { data, .. } = action {
                leecher.peer_data(PeerKey(1), &data, now);
            }
        }
        while let Some(action) = leecher.poll_action() {
            if let Action::Send { data, .. } = action {
                seeder.peer_data(PeerKey(1), &data, now);
            }
        }
        now = now.plus(1);
        seeder.tick(now);
        leecher.tick(now);
    }
    report("engine to engine (incl. sha1, copies)", len, start);
}

fn main() {
    sha1_pieces();
    wire_decode();
    engine_transfer();
}

//! Benchmark kernels shared by the native bench (benches/throughput.rs) and the in-browser one
//! (tests/web_bench.rs), so both measure exactly the same work. `now` is a clock in seconds.

use std::hint::black_box;

use client_core::wire::{Decoder, Message, WireLimits, BLOCK_SIZE};
use sha1::{Digest, Sha1};

/// Pseudo-random bytes (xorshift): incompressible, reproducible.
pub fn data(len: usize) -> Vec<u8> {
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

/// A measurement: what, how many bytes, how long.
pub struct Measured {
    pub name: &'static str,
    pub bytes: usize,
    pub secs: f64,
}

impl Measured {
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.secs / 1e6
    }

    pub fn line(&self) -> String {
        format!(
            "{:<40} {:>9.1} MB/s  ({} MiB in {:.3} s)",
            self.name,
            self.mb_per_s(),
            self.bytes >> 20,
            self.secs
        )
    }
}

/// SHA-1 over 64 MiB in 256 KiB pieces: piece verification.
pub fn sha1_pieces(now: &dyn Fn() -> f64) -> Measured {
    let piece = data(256 * 1024);
    let rounds = 256;
    let start = now();
    for _ in 0..rounds {
        black_box(Sha1::digest(black_box(&piece)));
    }
    Measured {
        name: "sha1 verify (256 KiB pieces)",
        bytes: piece.len() * rounds,
        secs: now() - start,
    }
}

/// Decoding 64 MiB of piece messages fed in 16 KiB data-channel chunks.
pub fn wire_decode(now: &dyn Fn() -> f64) -> Measured {
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
    let start = now();
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
    Measured {
        name: "wire decode (piece msgs, 16 KiB chunks)",
        bytes: stream.len(),
        secs: now() - start,
    }
}

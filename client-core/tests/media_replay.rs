//! A deterministic, stable-Rust stand-in for the `media` fuzz target: the same checks
//! (../fuzz/checks_media.rs) over real ffmpeg-made files, then over truncations and mutations of
//! them aimed where the parsers look (box and element headers, sizes, tables).
//!
//! `SHOAL_MEDIA_REPLAY_ROUNDS` sets the mutations per fixture (default 150) and
//! `SHOAL_MEDIA_REPLAY_SEED` the seed. A failing input is written next to the fixtures and its
//! path is in the panic message.

mod media_support;

#[path = "../fuzz/checks_media.rs"]
mod checks;

use media_support::{read, scratch, Rng, ALL};

#[test]
fn fixtures_pass_every_check() {
    for name in ALL {
        checks::media(&read(name));
    }
}

/// Values that tend to break size and count fields.
fn interesting_u32(rng: &mut Rng) -> u32 {
    match rng.below(8) {
        0 => 0,
        1 => 1,
        2 => 7,
        3 => 8,
        4 => u32::MAX,
        5 => 0x7fff_ffff,
        6 => rng.below(1 << 16) as u32,
        _ => rng.next() as u32,
    }
}

/// A random position, mostly in the first or last 8 KiB (headers, moov, sidx, cues).
fn position(rng: &mut Rng, len: usize) -> usize {
    let window = 8192.min(len.max(1));
    match rng.below(3) {
        0 => rng.below(window),
        1 => len.saturating_sub(window) + rng.below(window),
        _ => rng.below(len.max(1)),
    }
    .min(len.saturating_sub(1))
}

fn mutate(file: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut data = file.to_vec();
    for _ in 0..1 + rng.below(3) {
        if data.is_empty() {
            break;
        }
        let len = data.len();
        match rng.below(7) {
            // Truncate.
            0 => data.truncate(position(rng, len)),
            // Flip bits.
            1 => {
                for _ in 0..1 + rng.below(8) {
                    let p = position(rng, len);
                    data[p] ^= 1 << rng.below(8);
                }
            }
            // Overwrite a 4-byte field (box sizes, counts, offsets).
            2 | 3 => {
                let p = position(rng, len).min(len.saturating_sub(4));
                let v = interesting_u32(rng).to_be_bytes();
                let n = 4.min(len - p);
                data[p..p + n].copy_from_slice(&v[..n]);
            }
            // Overwrite one byte (EBML vint markers, flags, versions).
            4 => {
                let p = position(rng, len);
                data[p] = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x40, 0x10][rng.below(7)];
            }
            // Delete a slice.
            5 => {
                let p = position(rng, len);
                let n = (1 + rng.below(64)).min(len - p);
                data.drain(p..p + n);
            }
            // Insert random bytes.
            _ => {
                let p = position(rng, len);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                data.splice(p..p, bytes);
            }
        }
    }
    data
}

#[test]
fn mutated_fixtures_never_break_the_parsers() {
    let rounds: usize = std::env::var("SHOAL_MEDIA_REPLAY_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let seed = std::env::var("SHOAL_MEDIA_REPLAY_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x05ee_d0f5_a0a1_u64);
    let mut rng = Rng(seed | 1);
    for name in ALL {
        let file = read(name);
        for round in 0..rounds {
            let input = mutate(&file, &mut rng);
            let result = std::panic::catch_unwind(|| checks::media(&input));
            if result.is_err() {
                let path = scratch(&format!("failing-{round}-{name}"));
                std::fs::write(&path, &input).unwrap();
                panic!(
                    "{name}, round {round}: a check failed on {}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn random_bytes_and_tiny_inputs() {
    let mut rng = Rng(42);
    for len in 0..64 {
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        checks::media(&bytes);
    }
    // Headers that promise everything and deliver nothing.
    for prefix in [
        &b"\0\0\0\x01moov\xff\xff\xff\xff\xff\xff\xff\xff"[..],
        b"\0\0\0\0ftyp",
        b"\x1a\x45\xdf\xa3\x01\xff\xff\xff\xff\xff\xff\xff",
        b"\x1a\x45\xdf\xa3\x80\x18\x53\x80\x67\xff",
        b"ID3\x04\0\0\x7f\x7f\x7f\x7f",
        b"\xff\xfb\x90\x64",
    ] {
        checks::media(prefix);
    }
}

/// Inputs the media fuzzer once stopped on (tests/data/fuzz-regressions/media-*).
#[test]
fn fuzz_regressions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz-regressions");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("regression folder") {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("media")
        {
            checks::media(&std::fs::read(&path).unwrap());
            seen += 1;
        }
    }
    assert!(seen > 0);
}

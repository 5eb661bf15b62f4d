//! A deterministic, stable-Rust stand-in for the fuzz targets in ../fuzz: the same checks
//! (../fuzz/checks.rs) over a few thousand generated and mutated inputs, so that CI exercises
//! them on every run without nightly or libFuzzer. Long, coverage-guided runs stay in ../fuzz.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::fs;
use std::path::Path;

use client_core::bencode::{self, Value};
use client_core::metainfo::Metainfo;

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

/// Bytes that steer bencode parsers into interesting states.
const SYNTAX: &[u8] = b"ilde0123456789:-";

const KEYS: &[&str] = &[
    "info",
    "name",
    "name.utf-8",
    "length",
    "files",
    "path",
    "path.utf-8",
    "piece length",
    "pieces",
    "private",
    "announce",
    "announce-list",
    "url-list",
    "creation date",
    "comment",
    "a",
];

const NASTY_STRINGS: &[&[u8]] = &[
    b"",
    b".",
    b"..",
    b"a/b",
    b"a\\b",
    b"a\0b",
    b"/abs",
    b"+ +",
    b"\xff\xfe",
    b"x",
    b"wss://t",
];

const NASTY_INTS: &[i64] = &[0, 1, -1, 20, 16384, i64::MAX, i64::MIN, 1 << 32, -(1 << 40)];

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth >= 4 { 2 } else { 4 }) {
        0 => Value::Int(rng.pick(NASTY_INTS).wrapping_add(rng.below(3) as i64 - 1)),
        1 => match rng.below(3) {
            0 => Value::bytes(*rng.pick(NASTY_STRINGS)),
            1 => Value::from(*rng.pick(KEYS)),
            _ => Value::bytes(vec![0u8; 20 * rng.below(4)]),
        },
        2 => Value::List(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => Value::dict(
            (0..rng.below(5))
                .map(|_| (*rng.pick(KEYS), random_value(rng, depth + 1)))
                .collect::<Vec<_>>(),
        ),
    }
}

/// Byte-level mutations, as a fuzzer's havoc stage would do.
fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(3) {
        let len = data.len();
        let at = rng.below(len + 1);
        match rng.below(7) {
            0 if at < len => data[at] ^= 1 << rng.below(8),
            1 if at < len => data[at] = *rng.pick(SYNTAX),
            2 => data.insert(at, *rng.pick(SYNTAX)),
            3 if at < len => {
                let end = (at + 1 + rng.below(16)).min(len);
                data.drain(at..end);
            }
            4 => data.truncate(at),
            5 if at < len => {
                let end = (at + 1 + rng.below(32)).min(len);
                let chunk = data[at..end].to_vec();
                let to = rng.below(data.len() + 1);
                data.splice(to..to, chunk);
            }
            _ => {
                let n = rng.below(4);
                data.splice(at..at, std::iter::repeat_n(b'l', n));
            }
        }
    }
}

/// Structure-aware mutation: replace, remove or add one node somewhere in the tree, so that
/// the result is still bencode and reaches the metainfo validation.
fn mutate_value(rng: &mut Rng, value: &mut Value) {
    match value {
        Value::Dict(entries) if !entries.is_empty() && rng.below(3) != 0 => {
            let key = entries.keys().nth(rng.below(entries.len())).cloned();
            if let Some(key) = key {
                match rng.below(4) {
                    0 => {
                        entries.remove(&key);
                    }
                    1 => {
                        entries.insert(rng.pick(KEYS).as_bytes().to_vec(), random_value(rng, 2));
                    }
                    _ => {
                        if let Some(child) = entries.get_mut(&key) {
                            mutate_value(rng, child);
                        }
                    }
                }
            }
        }
        Value::List(items) if !items.is_empty() && rng.below(3) != 0 => {
            let index = rng.below(items.len());
            if rng.below(4) == 0 {
                items.remove(index);
            } else {
                mutate_value(rng, &mut items[index]);
            }
        }
        Value::Int(n) if rng.below(2) == 0 => *n = n.wrapping_add(rng.below(3) as i64 - 1),
        Value::Bytes(bytes) if bytes.len() > 40 && rng.below(2) == 0 => {
            // Inside `pieces`: keeps the torrent valid but changes hashes.
            let at = rng.below(bytes.len());
            bytes[at] ^= 0x55;
        }
        _ => *value = random_value(rng, 2),
    }
}

fn vector_torrents() -> Vec<Vec<u8>> {
    fn walk(dir: &Path, out: &mut Vec<Vec<u8>>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "torrent") {
                out.push(fs::read(path).unwrap());
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
        &mut out,
    );
    assert!(out.len() >= 14, "vectors not found");
    out
}

#[test]
fn random_bytes() {
    let mut rng = Rng(0x5eed_0001);
    for _ in 0..3000 {
        let len = rng.below(48);
        let data: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(8) == 0 {
                    rng.next() as u8
                } else {
                    *rng.pick(SYNTAX)
                }
            })
            .collect();
        checks::bencode(&data);
        checks::metainfo(&data);
    }
}

#[test]
fn random_values_and_their_mutations() {
    let mut rng = Rng(0x5eed_0002);
    for _ in 0..1500 {
        let mut data = random_value(&mut rng, 0).encode();
        checks::bencode(&data);
        checks::metainfo(&data);
        mutate_bytes(&mut rng, &mut data);
        checks::bencode(&data);
        checks::metainfo(&data);
    }
}

#[test]
fn mutated_vector_torrents() {
    let mut rng = Rng(0x5eed_0003);
    let mut accepted = 0;
    for original in vector_torrents() {
        checks::bencode(&original);
        checks::metainfo(&original);
        let tree = bencode::decode(&original).unwrap();
        for _ in 0..120 {
            let mut data = original.clone();
            mutate_bytes(&mut rng, &mut data);
            checks::bencode(&data);
            checks::metainfo(&data);

            let mut value = tree.clone();
            mutate_value(&mut rng, &mut value);
            let data = value.encode();
            checks::bencode(&data);
            checks::metainfo(&data);
            accepted += usize::from(Metainfo::parse(&data).is_ok());
        }
    }
    // The success path must be exercised too, not only rejections.
    assert!(
        accepted > 200,
        "only {accepted} mutated torrents were accepted"
    );
}

#[test]
fn mutated_magnets() {
    const SEEDS: &[&str] = &[
        "magnet:?xt=urn:btih:d2474e86c95b19b8bcfdb92bc12c9d44667cfa36&dn=Leaves+of+Grass+by+Walt+Whitman.epub",
        "magnet:?xt=urn:btih:64DZYZWMUAVLIWJUXGDIK4QGAAIN7SL6&tr=wss%3A%2F%2Ft&ws=https%3A%2F%2Fs%2F&xs=https://x/a.torrent",
        "stream-magnet:?xt=urn:btih:d2474e86c95b19b8bcfdb92bc12c9d44667cfa36&as=x&tr=a&tr=a&dn=%E2%82%AC",
    ];
    const MAGNET_BYTES: &[u8] = b"&=%+:?/ aZ09E2";
    let mut rng = Rng(0x5eed_0004);
    let mut accepted = 0;
    for _ in 0..3000 {
        let mut data = rng.pick(SEEDS).as_bytes().to_vec();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(data.len() + 1);
            match rng.below(3) {
                0 => data.insert(at, *rng.pick(MAGNET_BYTES)),
                1 if at < data.len() && at > 20 => {
                    data.remove(at);
                }
                _ if at < data.len() => data[at] = *rng.pick(MAGNET_BYTES),
                _ => {}
            }
        }
        checks::magnet(&data);
        accepted += usize::from(
            client_core::magnet::Magnet::parse(&String::from_utf8_lossy(&data)).is_ok(),
        );
    }
    assert!(
        accepted > 300,
        "only {accepted} mutated magnets were accepted"
    );
}

/// Inputs the fuzzers once stopped on, kept so that they stay fixed (tests/data/fuzz-regressions).
#[test]
fn fuzz_regressions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz-regressions");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("regression folder") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("metainfo") {
            checks::metainfo(&data);
        } else if name.starts_with("bencode") {
            checks::bencode(&data);
        }
        seen += 1;
    }
    assert!(seen > 0);
}

//! Making the torrent of a large file (1 GiB by default): client-core's `TorrentBuilder` as the
//! pod and the native client use it (streaming from disk, 1 MiB reads), `openssl dgst -sha1`
//! over the same bytes (the speed of SHA-1 on this CPU, the bound for any torrent maker), and
//! create-torrent (npm, what WebTorrent's `client.seed()` uses, in Node).
//!
//! The file is random bytes from a fast PRNG, written to a temporary directory and deleted at the
//! end. It stays in the page cache (it was just written), so all three read from memory and the
//! figures compare hashing, not the disk. Each maker runs `BENCH_REPEAT` times; the best run
//! counts (the others absorb cache and scheduler noise). create-torrent's time is the one it
//! reports for hashing, without Node's start-up.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use client_core::metainfo::TorrentBuilder;
use serde_json::Value;

use crate::tools::{self, env_u64, fail, size_label};
use crate::Verdict;

const READ_SIZE: usize = 1 << 20;

pub fn run() -> Vec<Verdict> {
    let openssl = tools::require("openssl", "openssl");
    let node = tools::require("node", "nodejs");
    let js = shoal_tests::workspace_root().join("tests/js");
    if !js.join("node_modules/create-torrent").is_dir() {
        fail("create-torrent is not installed in tests/js: run ./shoal bench (npm install there)");
    }
    let size = env_u64("BENCH_TORRENT_MB", 1024) << 20;
    let repeat = env_u64("BENCH_REPEAT", 3).max(1);

    let dir = tempfile::tempdir().expect("temp dir");
    let name = "bench-file.bin";
    let path = dir.path().join(name);
    println!();
    println!(
        "== torrent creation: a {} file, best of {repeat} runs each",
        size_label(size)
    );
    write_random_file(&path, size);

    let mut ours = Duration::MAX;
    let mut our_hash = String::new();
    let mut piece_length = 0;
    for _ in 0..repeat {
        tools::wait_for_quiet_machine();
        let started = Instant::now();
        let torrent = build_torrent(&path, name, size);
        ours = ours.min(started.elapsed());
        our_hash = torrent.info_hash.to_hex();
        piece_length = torrent.info.piece_length;
    }

    let mut reference = Duration::MAX;
    for _ in 0..repeat {
        tools::wait_for_quiet_machine();
        let started = Instant::now();
        let output = Command::new(&openssl)
            .args(["dgst", "-sha1"])
            .arg(&path)
            .output()
            .unwrap_or_else(|e| fail(&format!("cannot run openssl: {e}")));
        if !output.status.success() {
            fail(&format!(
                "openssl dgst failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        reference = reference.min(started.elapsed());
    }

    let mut create_torrent = Duration::MAX;
    let mut their_hash = String::new();
    for _ in 0..repeat {
        tools::wait_for_quiet_machine();
        let output = Command::new(&node)
            .current_dir(&js)
            .arg("create-torrent-hash.mjs")
            .arg(&path)
            .arg(name)
            .output()
            .unwrap_or_else(|e| fail(&format!("cannot run node: {e}")));
        let report: Value = String::from_utf8_lossy(&output.stdout)
            .lines()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| {
                fail(&format!(
                    "create-torrent-hash.mjs failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                ))
            });
        let seconds = report["seconds"].as_f64().expect("seconds");
        create_torrent = create_torrent.min(Duration::from_secs_f64(seconds));
        their_hash = report["infoHash"].as_str().unwrap_or_default().to_owned();
    }

    let mib_s = |d: Duration| size as f64 / (1 << 20) as f64 / d.as_secs_f64();
    println!("  {:<34} {:>9} {:>10}", "maker", "seconds", "MiB/s");
    for (label, time) in [
        ("TorrentBuilder (client-core)", ours),
        ("openssl dgst -sha1 (bare SHA-1)", reference),
        ("create-torrent (npm, Node)", create_torrent),
    ] {
        println!(
            "  {label:<34} {:>9.3} {:>10.0}",
            time.as_secs_f64(),
            mib_s(time)
        );
    }
    let vs_openssl = mib_s(ours) / mib_s(reference);
    let vs_create_torrent = mib_s(ours) / mib_s(create_torrent);
    println!(
        "  builder/openssl throughput {vs_openssl:.2}; builder is {vs_create_torrent:.1}x create-torrent"
    );
    println!(
        "  piece length {}, info-hash {our_hash}: create-torrent's is {}",
        size_label(piece_length as u64),
        if their_hash == our_hash {
            "the same".to_owned()
        } else {
            format!("DIFFERENT ({their_hash})")
        }
    );
    drop(dir); // deletes the file now, not at exit
    vec![
        Verdict {
            what: format!(
                "torrent of {} vs openssl SHA-1 (throughput)",
                size_label(size)
            ),
            ratio: vs_openssl,
            goal: 0.85,
        },
        Verdict {
            what: format!(
                "torrent of {} vs create-torrent (throughput)",
                size_label(size)
            ),
            ratio: vs_create_torrent,
            goal: 1.0,
        },
    ]
}

/// What the pod does with an upload already on disk: stream it through the builder.
fn build_torrent(path: &Path, name: &str, size: u64) -> client_core::metainfo::Metainfo {
    let mut builder = TorrentBuilder::single_file(name, size, None).expect("builder");
    let mut file = File::open(path).expect("open bench file");
    let mut buf = vec![0u8; READ_SIZE];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => builder.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => fail(&format!("reading the bench file: {e}")),
        }
    }
    builder.finish().expect("torrent")
}

/// Incompressible bytes, fast: xorshift64* in 1 MiB blocks (random enough for SHA-1, which does
/// not care, and far faster than /dev/urandom).
fn write_random_file(path: &Path, size: u64) {
    let started = Instant::now();
    let mut file = File::create(path).unwrap_or_else(|e| fail(&format!("create {path:?}: {e}")));
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; READ_SIZE];
    let mut left = size;
    while left > 0 {
        for chunk in block.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            chunk.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n])
            .unwrap_or_else(|e| fail(&format!("write {path:?}: {e}")));
        left -= n as u64;
    }
    file.sync_all().ok();
    println!(
        "  (wrote {} of random bytes in {:.1} s)",
        size_label(size),
        started.elapsed().as_secs_f64()
    );
}

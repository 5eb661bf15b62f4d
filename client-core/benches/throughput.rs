//! Throughput of the engine's hot paths, printed as MB/s (a plain `harness = false` bench):
//! SHA-1 piece verification, wire decoding of a stream of piece messages fed in 16 KiB
//! data-channel chunks, and a whole engine-to-engine transfer in memory.
//!
//! Run with `cargo bench -p client-core --bench throughput`.

#[path = "kernels.rs"]
mod kernels;

use std::time::Instant;

use client_core::engine::{Action, Config, Engine, Millis, PeerKey};
use client_core::metainfo::TorrentBuilder;
use client_core::PeerId;
use kernels::data;

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
    let secs = start.elapsed().as_secs_f64();
    let m = kernels::Measured {
        name: "engine to engine (incl. sha1, copies)",
        bytes: len,
        secs,
    };
    println!("{}", m.line());
}

fn main() {
    let origin = Instant::now();
    let now = move || origin.elapsed().as_secs_f64();
    println!("{}", kernels::sha1_pieces(&now).line());
    println!("{}", kernels::wire_decode(&now).line());
    engine_transfer();
}

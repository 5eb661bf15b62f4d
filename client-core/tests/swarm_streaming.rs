//! Streaming: a viewer whose playhead advances at the video's bitrate, fed by one slow peer and
//! one WebSeed, must never miss a deadline, and a seek must be served at once; a long file must
//! play through within the memory budget.

mod sim;

use client_core::engine::{Config, Engine, Millis};
use client_core::metainfo::Metainfo;
use client_core::PeerId;
use sim::{hashed_outside, random_torrent, LinkCfg, Sim, WebSeedSim};

fn id(n: u8) -> PeerId {
    PeerId::generate(b"-SH0100-", [n; 12])
}

/// A simulator whose WebSeed (`bandwidth` bytes/s, `latency_ms` each way) serves a random file
/// of `len` bytes, and the torrent of that file, which lists the WebSeed.
fn with_webseed(
    len: usize,
    piece_len: u32,
    seed: u64,
    bandwidth: u64,
    latency_ms: u64,
) -> (Sim, Metainfo, Vec<u8>) {
    let (mut meta, data) = random_torrent(len, piece_len, seed);
    meta.url_list = vec!["https://pod/v.mp4".into()];
    let mut sim = Sim::new(seed);
    sim.webseed = Some(WebSeedSim::single(
        "https://pod/v.mp4",
        &data,
        bandwidth,
        latency_ms,
    ));
    (sim, meta, data)
}

/// A player: starts when the first piece is there, then reads `bitrate` bytes per second,
/// stalling (and counting a missed deadline) whenever the piece under it is missing.
struct Player {
    node: usize,
    len: u64,
    piece_len: u64,
    bitrate: u64,
    offset: u64,
    started_at: Option<u64>,
    missed: Vec<u32>,
    stalled_on: Option<u32>,
    /// Piece the player last read, to check its bytes.
    checked: Option<u32>,
}

impl Player {
    fn step(&mut self, sim: &mut Sim, data: &[u8], dt: u64) {
        let now = sim.now();
        let engine = &mut sim.nodes[self.node].engine;
        let piece = (self.offset / self.piece_len) as u32;
        if self.started_at.is_none() {
            if engine.has_piece(piece) {
                self.started_at = Some(now.0);
            } else {
                engine.set_playhead(self.offset, self.bitrate, now);
                return;
            }
        }
        if !engine.has_piece(piece) {
            if self.stalled_on != Some(piece) {
                self.stalled_on = Some(piece);
                self.missed.push(piece);
            }
            engine.set_playhead(self.offset, 0, now);
            return;
        }
        if self.checked != Some(piece) {
            let start = u64::from(piece) * self.piece_len;
            let got = engine.read_piece(piece).unwrap();
            assert_eq!(got, &data[start as usize..start as usize + got.len()]);
            self.checked = Some(piece);
        }
        self.stalled_on = None;
        self.offset = (self.offset + self.bitrate * dt / 1000).min(self.len);
        engine.set_playhead(self.offset, self.bitrate, now);
    }

    fn finished(&self) -> bool {
        self.offset >= self.len
    }
}

#[test]
fn slow_peer_and_webseed_meet_every_deadline_and_seek_fast() {
    deadlines_and_seek(Config::default());
}

/// As in the browser, where SubtleCrypto hashes the pieces: digests come back a few ms later
/// and out of order, and the seek gives up pieces whose digests are still out.
#[test]
fn deadlines_and_seek_with_pieces_hashed_outside() {
    deadlines_and_seek(hashed_outside());
}

fn deadlines_and_seek(viewer_config: Config) {
    let len = 4 << 20;
    let piece_len = 32 * 1024;
    let (mut sim, meta, data) = with_webseed(len, piece_len, 41, 2 << 20, 40);
    // A peer that could carry about a third of the stream.
    let mut seed = Engine::new(Config::default(), id(1), meta.clone(), 1);
    seed.add_local_data(&data, Millis(0)).unwrap();
    let seed = sim.add_node(seed);
    let outside = viewer_config.hash_outside;
    let viewer = sim.add_node(Engine::new(viewer_config, id(2), meta.clone(), 2));
    sim.connect(
        seed,
        viewer,
        LinkCfg::new(150 * 1024, 50),
        LinkCfg::new(1 << 20, 50),
    );
    let mut player = Player {
        node: viewer,
        len: len as u64,
        piece_len: u64::from(piece_len),
        bitrate: 400 * 1024,
        offset: 0,
        started_at: None,
        missed: Vec::new(),
        stalled_on: None,
        checked: None,
    };
    let step = 10;
    let mut seek: Option<(u64, u32)> = None;
    let mut seek_latency = None;
    let mut resumed = false;
    while !player.finished() && sim.now_ms() < 60_000 {
        sim.run_for(step);
        if seek.is_none() && player.offset >= len as u64 * 2 / 5 {
            // Jump to 80%.
            let target = len as u64 * 4 / 5;
            let piece = (target / u64::from(piece_len)) as u32;
            player.offset = target;
            let now = sim.now();
            sim.nodes[viewer].engine.seek(target, now);
            sim.drain(viewer);
            seek = Some((sim.now_ms(), piece));
        }
        if let (Some((at, piece)), false) = (seek, resumed) {
            let engine = &sim.nodes[viewer].engine;
            if seek_latency.is_none() && engine.has_piece(piece) {
                seek_latency = Some(sim.now_ms() - at);
            }
            // Like a media element after a seek, resume once a little is buffered.
            if engine.has_piece(piece) && engine.has_piece(piece + 1) {
                resumed = true;
            } else {
                // Waiting on the seek is not a missed deadline of the playback.
                let now = sim.now();
                sim.nodes[viewer].engine.set_playhead(player.offset, 0, now);
                sim.drain(viewer);
                continue;
            }
        }
        player.step(&mut sim, &data, step);
        sim.drain(viewer);
    }
    assert!(player.finished(), "playback stuck at {}", player.offset);
    let stats = sim.nodes[viewer].engine.stats(sim.now());
    let startup = player.started_at.unwrap();
    let seek_latency = seek_latency.unwrap();
    println!(
        "streaming: first piece after {startup} ms, seek served in {seek_latency} ms, missed deadlines {}, \
         from peers {} bytes ({:.0}%), from webseed {} bytes, wasted {}",
        player.missed.len(),
        stats.downloaded_from_peers,
        100.0 * stats.downloaded_from_peers as f64
            / (stats.downloaded_from_peers + stats.downloaded_from_webseeds) as f64,
        stats.downloaded_from_webseeds,
        stats.wasted
    );
    assert_eq!(player.missed, Vec::<u32>::new(), "missed deadlines");
    assert_eq!(
        sim.nodes[viewer].hashes > 0,
        outside,
        "who hashed the pieces"
    );
    assert!(startup < 500, "start-up took {startup} ms");
    assert!(seek_latency < 500, "seek took {seek_latency} ms");
    assert!(stats.downloaded_from_peers > 0);
}

#[test]
fn long_file_plays_within_the_memory_budget() {
    let len = 8 << 20;
    let piece_len = 32 * 1024;
    let budget = 1 << 20;
    let (mut sim, meta, data) = with_webseed(len, piece_len, 42, 4 << 20, 30);
    let mut seed = Engine::new(Config::default(), id(1), meta.clone(), 1);
    seed.add_local_data(&data, Millis(0)).unwrap();
    let seed = sim.add_node(seed);
    let config = Config {
        memory_budget: budget,
        ..Config::default()
    };
    let viewer = sim.add_node(Engine::new(config, id(2), meta.clone(), 2));
    sim.connect(
        seed,
        viewer,
        LinkCfg::new(1 << 20, 30),
        LinkCfg::new(1 << 20, 30),
    );
    let mut player = Player {
        node: viewer,
        len: len as u64,
        piece_len: u64::from(piece_len),
        bitrate: 1 << 20,
        offset: 0,
        started_at: None,
        missed: Vec::new(),
        stalled_on: None,
        checked: None,
    };
    let mut peak = 0;
    while !player.finished() && sim.now_ms() < 60_000 {
        sim.run_for(10);
        player.step(&mut sim, &data, 10);
        sim.drain(viewer);
        let engine = &sim.nodes[viewer].engine;
        let used = engine.stored_bytes() + engine.in_progress_bytes();
        assert!(used <= budget, "{used} bytes held, budget {budget}");
        peak = peak.max(used);
    }
    assert!(player.finished());
    let stats = sim.nodes[viewer].engine.stats(sim.now());
    println!(
        "budget: 8 MiB played with a {} KiB budget, peak {} KiB, {} pieces held at the end, \
         missed deadlines {}, from peers {} from webseed {}",
        budget >> 10,
        peak >> 10,
        stats.pieces_held,
        player.missed.len(),
        stats.downloaded_from_peers,
        stats.downloaded_from_webseeds
    );
    assert_eq!(player.missed, Vec::<u32>::new());
    assert_eq!(stats.pieces_verified, meta.info.piece_count());
}

/// A lone viewer starting a video: its first second comes from the WebSeed in one streamed
/// request (a span), piece after piece, about one round trip after the start, instead of four
/// pieces per round trip.
#[test]
fn start_up_pieces_come_from_the_webseed_in_one_round_trip() {
    let len = 4 << 20;
    let piece_len = 16 * 1024;
    let latency = 40;
    let (mut sim, meta, data) = with_webseed(len, piece_len, 43, 8 << 20, latency);
    let viewer = sim.add_node(Engine::new(Config::default(), id(2), meta.clone(), 2));
    let bitrate = 250_000;
    let now = sim.now();
    sim.nodes[viewer].engine.set_playhead(0, bitrate, now);
    sim.drain(viewer);
    // A second of media: what a player needs before its first frame.
    let wanted = bitrate.div_ceil(u64::from(piece_len)) as u32;
    let mut ready_at = None;
    while ready_at.is_none() && sim.now_ms() < 5_000 {
        sim.run_for(5);
        let engine = &sim.nodes[viewer].engine;
        if (0..wanted).all(|p| engine.has_piece(p)) {
            ready_at = Some(sim.now_ms());
        }
    }
    let ready_at = ready_at.expect("the first pieces never arrived");
    let requests = sim.nodes[viewer].webseed_requests;
    let stats = sim.nodes[viewer].engine.stats(sim.now());
    println!(
        "start-up: {wanted} pieces in {ready_at} ms over {requests} requests (round trip {} ms)",
        2 * latency
    );
    // One round trip, the transfer (32 ms at 8 MB/s) and the 5 ms steps; four pieces per round
    // trip would take four round trips (over 320 ms).
    assert!(ready_at <= 2 * latency + 32 + 20, "took {ready_at} ms");
    assert!(requests <= 4, "{requests} requests");
    assert_eq!(stats.wasted, 0);
    for p in 0..wanted {
        let start = p as usize * piece_len as usize;
        let got = sim.nodes[viewer].engine.read_piece(p).unwrap();
        assert_eq!(got, &data[start..start + got.len()]);
    }
}

/// While a player waits for its first frame, the WebSeed is asked for the urgent pieces and
/// nothing else (background requests would compete with the start-up for the page's main
/// thread); once the frame is shown, it fills the buffer ahead again.
#[test]
fn start_up_asks_the_webseed_for_urgent_pieces_only() {
    let len = 8 << 20;
    let piece_len = 16 * 1024;
    let (mut sim, meta, _) = with_webseed(len, piece_len, 44, 8 << 20, 20);
    // Pieces are hashed outside the engine, as in the browser, except the start-up's (a digest
    // from outside comes back later than one made here).
    let viewer = sim.add_node(Engine::new(hashed_outside(), id(2), meta.clone(), 2));
    let bitrate = 250_000;
    let config = Config::default();
    // The playhead advances at the bitrate: after a second, the urgent window (plus the
    // deadline margin) ends this far in, the most a starting player may have asked for. The
    // buffer the WebSeed fills otherwise (`buffer_low_ms`, 6 s) is far beyond it.
    let elapsed_ms = 1_000;
    let urgent_bytes =
        bitrate * (config.urgent_window_ms + config.deadline_margin_ms + elapsed_ms) / 1000;
    let urgent_pieces = urgent_bytes.div_ceil(u64::from(piece_len)) + 1;
    let now = sim.now();
    sim.nodes[viewer].engine.set_starting_up(true);
    sim.nodes[viewer].engine.set_playhead(0, bitrate, now);
    sim.drain(viewer);
    sim.run_for(elapsed_ms);
    let held = sim.nodes[viewer]
        .engine
        .stats(sim.now())
        .downloaded_from_webseeds;
    println!("starting up: {held} bytes from the WebSeed ({urgent_pieces} urgent pieces)");
    assert!(held > 0, "the urgent pieces never came");
    assert!(
        held <= urgent_pieces * u64::from(piece_len),
        "{held} bytes fetched while starting up, more than the urgent window"
    );
    assert_eq!(
        sim.nodes[viewer].hashes, 0,
        "start-up pieces are hashed inline"
    );

    sim.nodes[viewer].engine.set_starting_up(false);
    let now = sim.now();
    sim.nodes[viewer].engine.tick(now);
    sim.drain(viewer);
    sim.run_for(1_000);
    let after = sim.nodes[viewer]
        .engine
        .stats(sim.now())
        .downloaded_from_webseeds;
    println!("after the first frame: {after} bytes from the WebSeed");
    // The buffer ahead fills to `buffer_low_ms` of media again.
    assert!(
        after >= bitrate * config.buffer_low_ms / 1000,
        "only {after} bytes after the start-up"
    );
    assert!(
        sim.nodes[viewer].hashes > 0,
        "later pieces are hashed outside"
    );
}

//! Engine transfers over the simulated network: a real fixture between two engines, a
//! magnet-only leecher, a corrupting peer, a multi-file WebSeed, and wire-level behaviour.

mod sim;

use std::collections::HashMap;

use client_core::engine::{Action, CloseReason, Config, Engine, Millis, PeerKey};
use client_core::magnet::Magnet;
use client_core::metainfo::{Metainfo, TorrentBuilder};
use client_core::wire::{Decoder, ExtendedHandshake, Handshake, Message, WireLimits};
use client_core::PeerId;
use sim::{hashed_outside, random_torrent, LinkCfg, Sim, WebSeedSim};

const FIXTURES: &str = "/work/shared/vectors/webtorrent-fixtures/fixtures";

fn id(n: u8) -> PeerId {
    PeerId::generate(b"-SH0100-", [n; 12])
}

fn fast_link() -> LinkCfg {
    LinkCfg::new(4 << 20, 20)
}

fn seeder(meta: &Metainfo, data: &[u8], n: u8) -> Engine {
    let mut engine = Engine::new(Config::default(), id(n), meta.clone(), u64::from(n));
    engine.add_local_data(data, Millis(0)).unwrap();
    engine
}

#[test]
fn two_engines_exchange_the_alice_fixture() {
    let torrent = std::fs::read(format!("{FIXTURES}/alice.torrent")).unwrap();
    let data = std::fs::read(format!("{FIXTURES}/alice.txt")).unwrap();
    let meta = Metainfo::parse(&torrent).unwrap();
    assert_eq!(
        meta.info_hash.to_hex(),
        "722fe65b2aa26d14f35b4ad627d20236e481d924"
    );
    let mut sim = Sim::new(1);
    let seed = sim.add_node(seeder(&meta, &data, 1));
    let leech = sim.add_node(Engine::new(Config::default(), id(2), meta.clone(), 2));
    sim.connect(seed, leech, fast_link(), fast_link());
    sim.run_while(10_000, |s| s.nodes[leech].done_at.is_none());
    let engine = &sim.nodes[leech].engine;
    assert!(engine.is_done(), "not done after {} ms", sim.now_ms());
    assert_eq!(engine.read(0, data.len()).unwrap(), data);
    let stats = engine.stats(sim.now());
    assert_eq!(stats.downloaded_from_peers, data.len() as u64);
    assert_eq!(stats.wasted, 0);
    assert_eq!(
        sim.nodes[seed].engine.stats(sim.now()).uploaded,
        data.len() as u64
    );
    println!("alice: {} bytes in {} ms", data.len(), sim.now_ms());
}

#[test]
fn digests_from_outside_decide_and_late_ones_are_ignored() {
    let (meta, data) = random_torrent(4 * 16384, 16384, 21);
    let mut sim = Sim::new(9);
    let seed = sim.add_node(seeder(&meta, &data, 1));
    let leech = sim.add_node(Engine::new(hashed_outside(), id(2), meta.clone(), 2));
    // The sim's own digests come back a minute later: until then, the test answers.
    sim.nodes[leech].hash_delay_ms = 60_000..=60_000;
    sim.connect(seed, leech, fast_link(), fast_link());
    sim.run_for(2_000);
    let asked = sim.nodes[leech].hash_requests.clone();
    assert_eq!(
        asked.len(),
        4,
        "every piece is complete and waits for its digest"
    );
    assert!(sim.nodes[leech].verified.is_empty());
    assert_eq!(
        sim.nodes[leech].engine.hash_input(0, asked[0].1 + 100),
        None,
        "an unknown ticket"
    );
    // A wrong digest for piece 0: it is discarded and fetched again, under a new ticket.
    let (piece, ticket) = *asked.iter().find(|(p, _)| *p == 0).unwrap();
    let now = sim.now();
    sim.nodes[leech]
        .engine
        .piece_hashed(piece, ticket, [0; 20], now);
    sim.drain(leech);
    assert_eq!(sim.nodes[leech].failed.len(), 1);
    assert_eq!(sim.nodes[leech].failed[0].0, 0);
    sim.run_for(2_000);
    let again = sim.nodes[leech].hash_requests[4..].to_vec();
    assert!(
        again.iter().any(|&(p, t)| p == 0 && t != ticket),
        "{again:?}"
    );
    // The right digest of the first copy, late: its ticket is stale, nothing happens.
    let right = *meta.info.piece_hash(0).unwrap();
    let now = sim.now();
    sim.nodes[leech].engine.piece_hashed(0, ticket, right, now);
    sim.drain(leech);
    assert!(sim.nodes[leech].verified.is_empty());
    // The sim's digests arrive: everything verifies once, the late first-copy digest too is
    // ignored.
    sim.run_while(200_000, |s| s.nodes[leech].done_at.is_none());
    let node = &sim.nodes[leech];
    assert_eq!(node.engine.read(0, data.len()).unwrap(), data);
    let mut verified: Vec<u32> = node.verified.iter().map(|v| v.0).collect();
    verified.sort();
    assert_eq!(verified, vec![0, 1, 2, 3]);
    assert_eq!(node.engine.stats(sim.now()).hash_failures, 1);
}

#[test]
fn random_file_both_ways_with_random_chunking() {
    both_ways(Config::default());
}

#[test]
fn random_file_both_ways_hashed_outside() {
    both_ways(hashed_outside());
}

fn both_ways(config: Config) {
    let (meta, data) = random_torrent(3 << 20, 32 * 1024, 7);
    let mut sim = Sim::new(2);
    // Two half-seeds: each has a different half, they finish from each other.
    let mut a = Engine::new(config.clone(), id(1), meta.clone(), 1);
    let outside = config.hash_outside;
    let mut b = Engine::new(config, id(2), meta.clone(), 2);
    let pieces = meta.info.piece_count();
    for i in 0..pieces {
        let r = meta.info.piece_range(i);
        let piece = data[r.start as usize..r.end as usize].to_vec();
        if i % 2 == 0 {
            a.add_local_piece(i, piece, Millis(0)).unwrap();
        } else {
            b.add_local_piece(i, piece, Millis(0)).unwrap();
        }
    }
    let a = sim.add_node(a);
    let b = sim.add_node(b);
    sim.connect(a, b, LinkCfg::new(2 << 20, 40), LinkCfg::new(1 << 20, 40));
    sim.run_while(20_000, |s| {
        s.nodes[a].done_at.is_none() || s.nodes[b].done_at.is_none()
    });
    for node in [a, b] {
        let engine = &sim.nodes[node].engine;
        assert!(engine.is_done());
        assert_eq!(engine.read(0, data.len()).unwrap(), data);
        assert_eq!(sim.nodes[node].hashes > 0, outside, "who hashed the pieces");
    }
    println!("3 MiB swapped in {} ms", sim.now_ms());
}

#[test]
fn magnet_leecher_gets_metadata_then_file() {
    let (meta, data) = random_torrent(1 << 20, 16 * 1024, 11);
    let mut sim = Sim::new(3);
    let seed = sim.add_node(seeder(&meta, &data, 1));
    let magnet = Magnet::new(meta.info_hash);
    let leech = sim.add_node(Engine::new(Config::default(), id(2), magnet, 2));
    assert!(sim.nodes[leech].engine.metainfo().is_none());
    sim.connect(seed, leech, fast_link(), fast_link());
    sim.run_while(20_000, |s| s.nodes[leech].done_at.is_none());
    let node = &sim.nodes[leech];
    let got = node.engine.metainfo().expect("metadata");
    assert_eq!(got.info_hash, meta.info_hash);
    assert_eq!(got.raw_info, meta.raw_info);
    assert!(node.metadata_at.unwrap() < node.done_at.unwrap());
    assert_eq!(node.engine.read(0, data.len()).unwrap(), data);
    println!(
        "magnet: metadata at {} ms, done at {} ms",
        node.metadata_at.unwrap(),
        node.done_at.unwrap()
    );
}

#[test]
fn magnet_webseeds_start_after_metadata() {
    // The magnet's ws= is held until the metadata arrives from a peer, then used.
    let (meta, data) = random_torrent(512 * 1024, 16 * 1024, 12);
    let mut sim = Sim::new(4);
    sim.webseed = Some(WebSeedSim::single("https://pod/v.mp4", &data, 4 << 20, 30));
    // A peer that serves metadata but has no pieces: only the WebSeed can deliver.
    let empty = sim.add_node(Engine::new(Config::default(), id(1), meta.clone(), 1));
    let mut magnet = Magnet::new(meta.info_hash);
    magnet.web_seeds.push("https://pod/v.mp4".into());
    let leech = sim.add_node(Engine::new(Config::default(), id(2), magnet, 2));
    sim.connect(empty, leech, fast_link(), fast_link());
    sim.run_while(20_000, |s| s.nodes[leech].done_at.is_none());
    let node = &sim.nodes[leech];
    assert_eq!(node.engine.read(0, data.len()).unwrap(), data);
    assert_eq!(
        node.engine.stats(sim.now()).downloaded_from_webseeds,
        data.len() as u64
    );
}

#[test]
fn corrupting_peer_is_banned_and_download_completes() {
    corrupting_peer_is_banned(Config::default());
}

#[test]
fn corrupting_peer_is_banned_when_pieces_are_hashed_outside() {
    corrupting_peer_is_banned(hashed_outside());
}

fn corrupting_peer_is_banned(leecher: Config) {
    let (meta, data) = random_torrent(2 << 20, 32 * 1024, 13);
    let mut sim = Sim::new(5);
    let good = sim.add_node(seeder(&meta, &data, 1));
    let bad = sim.add_node(seeder(&meta, &data, 2));
    sim.nodes[bad].corrupt = true;
    let outside = leecher.hash_outside;
    let leech = sim.add_node(Engine::new(leecher, id(3), meta.clone(), 3));
    // The corrupter is the faster link, so it gets plenty of blocks.
    sim.connect(good, leech, LinkCfg::new(1 << 20, 30), fast_link());
    sim.connect(bad, leech, LinkCfg::new(3 << 20, 10), fast_link());
    sim.run_while(30_000, |s| s.nodes[leech].done_at.is_none());
    let node = &sim.nodes[leech];
    assert_eq!(node.engine.read(0, data.len()).unwrap(), data);
    let bad_key = PeerKey(bad as u64);
    assert!(
        node.closed
            .iter()
            .any(|(k, r)| *k == bad_key && *r == CloseReason::Banned),
        "closed: {:?}",
        node.closed
    );
    assert_eq!(node.engine.banned_peers(), vec![id(2)]);
    assert!(!node.closed.iter().any(|(k, _)| *k == PeerKey(good as u64)));
    assert_eq!(node.hashes > 0, outside, "who hashed the pieces");
    let stats = node.engine.stats(sim.now());
    assert!(stats.hash_failures >= 2);
    println!(
        "corrupter banned after {} failed pieces; wasted {} bytes; done at {} ms",
        stats.hash_failures,
        stats.wasted,
        node.done_at.unwrap()
    );
    // A reconnection attempt from the banned peer id is refused at the handshake.
    sim.connect(bad, leech, fast_link(), fast_link());
    sim.run_for(500);
    assert!(
        sim.nodes[leech]
            .closed
            .iter()
            .filter(|(k, r)| *k == bad_key && *r == CloseReason::Banned)
            .count()
            >= 2
    );
}

#[test]
fn multi_file_torrent_from_webseed_only() {
    let files = vec![
        (vec!["a.srt".to_string()], 1_000u64),
        (vec!["empty".to_string()], 0),
        (vec!["sub".to_string(), "movie.mp4".to_string()], 300_000),
        (vec!["z.txt".to_string()], 20_000),
    ];
    let total: u64 = files.iter().map(|f| f.1).sum();
    let data = sim::Rng(99).bytes(total as usize);
    let mut b = TorrentBuilder::multi_file("Show", files, Some(32 * 1024)).unwrap();
    b.update(&data);
    let meta = b.url_list(["https://pod/ws/"]).finish().unwrap();
    let mut sim = Sim::new(6);
    sim.webseed = Some(WebSeedSim::multi(
        "https://pod/ws/",
        &meta,
        &data,
        2 << 20,
        20,
    ));
    let leech = sim.add_node(Engine::new(Config::default(), id(1), meta.clone(), 1));
    sim.run_while(20_000, |s| s.nodes[leech].done_at.is_none());
    let node = &sim.nodes[leech];
    assert_eq!(node.engine.read(0, data.len()).unwrap(), data);
    let ws = sim.webseed.as_ref().unwrap();
    assert_eq!(ws.served, total, "each byte once");
    // Pieces spanning files cost one request per file slice.
    assert!(ws.requests > u64::from(meta.info.piece_count()));
}

/// Reads everything the engine sent to `key` as messages (after its handshake).
fn sent_messages(engine: &mut Engine, key: PeerKey) -> (Option<Handshake>, Vec<Message>) {
    let mut decoder = Decoder::new(WireLimits::default());
    let mut handshake = None;
    let mut messages = Vec::new();
    while let Some(action) = engine.poll_action() {
        if let Action::Send { peer, data } = action {
            assert_eq!(peer, key);
            assert!(data.len() <= client_core::wire::MAX_SEND_LEN);
            decoder.feed(&data);
        }
    }
    if let Ok(Some(h)) = decoder.next_handshake() {
        handshake = Some(h);
        decoder.set_fast_negotiated(true);
        while let Ok(Some(m)) = decoder.next_message() {
            messages.push(m);
        }
    }
    (handshake, messages)
}

/// Everything the engine has to send, decoded per peer; for connections past their handshakes
/// (fast extension on).
fn sent_after_handshakes(engine: &mut Engine) -> HashMap<PeerKey, Vec<Message>> {
    let mut decoders = HashMap::new();
    while let Some(action) = engine.poll_action() {
        if let Action::Send { peer, data } = action {
            decoders
                .entry(peer)
                .or_insert_with(|| Decoder::after_handshake(WireLimits::default(), true))
                .feed(&data);
        }
    }
    decoders
        .into_iter()
        .map(|(peer, mut decoder)| {
            let mut messages = Vec::new();
            while let Ok(Some(m)) = decoder.next_message() {
                messages.push(m);
            }
            (peer, messages)
        })
        .collect()
}

#[test]
fn wire_sequence_and_serving_rules() {
    let (meta, data) = random_torrent(100_000, 16 * 1024, 21);
    let mut engine = seeder(&meta, &data, 1);
    let key = PeerKey(5);
    engine.peer_connected(key, Millis(0));
    // Our handshake goes out before theirs arrives.
    let (hs, rest) = sent_messages(&mut engine, key);
    let hs = hs.unwrap();
    assert_eq!(hs.reserved, [0, 0, 0, 0, 0, 0x10, 0, 4]);
    assert!(rest.is_empty());
    let remote = Handshake::shoal(meta.info_hash, PeerId(*b"-WW0300-abcdefghijkl"));
    engine.peer_data(key, &remote.encode(), Millis(1));
    let mut ext = ExtendedHandshake::shoal(None, 250);
    ext.v = None;
    let mut bytes = ext.to_message().encode();
    Message::Interested.encode_into(&mut bytes);
    // A request split across two data-channel messages.
    let req = Message::Request {
        index: 2,
        begin: 0,
        length: 16384,
    }
    .encode();
    bytes.extend_from_slice(&req[..7]);
    engine.peer_data(key, &bytes, Millis(2));
    engine.peer_data(key, &req[7..], Millis(3));
    // A request past the end of the piece is rejected.
    let bad = Message::Request {
        index: 6,
        begin: 16384,
        length: 16384,
    };
    engine.peer_data(key, &bad.encode(), Millis(4));
    let sent = sent_after_handshakes(&mut engine)
        .remove(&key)
        .unwrap_or_default();
    // Extended handshake first (with metadata_size), then have-all, unchoke, the block, reject.
    let Message::Extended { id: 0, payload } = &sent[0] else {
        panic!("{:?}", sent[0]);
    };
    let theirs = ExtendedHandshake::decode(payload).unwrap();
    assert_eq!(theirs.metadata_size, Some(meta.raw_info.len() as u64));
    assert_eq!(theirs.reqq, Some(250));
    assert_eq!(sent[1], Message::HaveAll);
    assert_eq!(sent[2], Message::Unchoke);
    // The block is read from the store when the channel can take it, so it may follow the
    // reject that was decided at once.
    let block = Message::Piece {
        index: 2,
        begin: 0,
        data: data[32768..49152].to_vec(),
    };
    assert!(sent[3..].contains(&block));
    assert!(sent[3..]
        .iter()
        .any(|m| matches!(m, Message::Reject { index: 6, .. })));
    assert_eq!(sent.len(), 5);

    // Keep-alive after 55 s of silence; our requests never time us out as a seeder.
    engine.tick(Millis(56_000));
    let sent = sent_after_handshakes(&mut engine)
        .remove(&key)
        .unwrap_or_default();
    assert_eq!(sent.first(), Some(&Message::KeepAlive));
}

/// The side that answered a WebRTC offer speaks only after the offerer (whose channel may not
/// be open when the answerer's opens): our handshake, then everything else, in order.
#[test]
fn an_accepted_connection_waits_for_the_initiators_handshake() {
    let (meta, data) = random_torrent(100_000, 16 * 1024, 24);
    let mut engine = seeder(&meta, &data, 1);
    let key = PeerKey(5);
    engine.peer_accepted(key, Millis(0));
    let (hs, rest) = sent_messages(&mut engine, key);
    assert!(
        hs.is_none() && rest.is_empty(),
        "sent before the initiator spoke"
    );
    let remote = Handshake::shoal(meta.info_hash, PeerId(*b"-WW0300-abcdefghijkl"));
    engine.peer_data(key, &remote.encode(), Millis(1));
    let (hs, rest) = sent_messages(&mut engine, key);
    let hs = hs.expect("our handshake answers theirs");
    assert_eq!((hs.info_hash, hs.peer_id), (meta.info_hash, id(1)));
    assert!(
        matches!(rest[0], Message::Extended { id: 0, .. }),
        "{rest:?}"
    );
    assert_eq!(rest[1], Message::HaveAll);
    assert_eq!(rest.len(), 2);

    // An initiator that never speaks is dropped like any silent peer.
    engine.peer_accepted(PeerKey(6), Millis(0));
    engine.tick(Millis(26_000));
    let mut closed = Vec::new();
    while let Some(action) = engine.poll_action() {
        if let Action::ClosePeer { peer, reason } = action {
            closed.push((peer.0, reason));
        }
    }
    assert_eq!(closed, vec![(6, CloseReason::HandshakeTimeout)]);
}

#[test]
fn handshake_checks_and_timeouts() {
    let (meta, data) = random_torrent(50_000, 16 * 1024, 22);
    let mut engine = seeder(&meta, &data, 1);
    // Wrong info-hash.
    engine.peer_connected(PeerKey(1), Millis(0));
    let wrong = Handshake::shoal(client_core::InfoHash([9; 20]), id(9));
    engine.peer_data(PeerKey(1), &wrong.encode(), Millis(1));
    // Our own peer id.
    engine.peer_connected(PeerKey(2), Millis(0));
    let own = Handshake::shoal(meta.info_hash, id(1));
    engine.peer_data(PeerKey(2), &own.encode(), Millis(1));
    // Garbage instead of a handshake.
    engine.peer_connected(PeerKey(3), Millis(0));
    engine.peer_data(PeerKey(3), b"GET / HTTP/1.1\r\n", Millis(1));
    // Silence.
    engine.peer_connected(PeerKey(4), Millis(0));
    engine.tick(Millis(26_000));
    let mut closed = Vec::new();
    while let Some(action) = engine.poll_action() {
        if let Action::ClosePeer { peer, reason } = action {
            closed.push((peer.0, reason));
        }
    }
    assert_eq!(closed.len(), 4, "{closed:?}");
    assert_eq!(closed[0], (1, CloseReason::WrongInfoHash));
    assert_eq!(closed[1], (2, CloseReason::OwnPeerId));
    assert!(matches!(closed[2], (3, CloseReason::Protocol(_))));
    assert_eq!(closed[3], (4, CloseReason::HandshakeTimeout));
    assert_eq!(engine.peer_count(), 0);
}

#[test]
fn peer_cap_is_enforced() {
    let (meta, _) = random_torrent(50_000, 16 * 1024, 23);
    let config = Config {
        max_peers: 2,
        ..Config::default()
    };
    let mut engine = Engine::new(config, id(1), meta, 1);
    for k in 0..3 {
        engine.peer_connected(PeerKey(k), Millis(0));
    }
    let closes: Vec<Action> = std::iter::from_fn(|| engine.poll_action())
        .filter(|a| matches!(a, Action::ClosePeer { .. }))
        .collect();
    assert_eq!(
        closes,
        vec![Action::ClosePeer {
            peer: PeerKey(2),
            reason: CloseReason::TooManyPeers
        }]
    );
}

/// A verified piece is announced to the peers that may want it, not to seeds: a have to a seed
/// is a data-channel message and an event there for nothing (one per piece downloaded).
#[test]
fn haves_go_to_leechers_not_to_seeds() {
    let (meta, data) = random_torrent(100_000, 16 * 1024, 25);
    let mut engine = Engine::new(Config::default(), id(1), meta.clone(), 1);
    let (seed, leecher) = (PeerKey(5), PeerKey(6));
    for (key, has) in [(seed, Message::HaveAll), (leecher, Message::HaveNone)] {
        engine.peer_connected(key, Millis(0));
        let remote = Handshake::shoal(meta.info_hash, PeerId([key.0 as u8; 20]));
        let mut bytes = remote.encode().to_vec();
        has.encode_into(&mut bytes);
        engine.peer_data(key, &bytes, Millis(1));
    }
    while engine.poll_action().is_some() {}
    let piece = meta.info.piece_range(0);
    engine
        .add_local_piece(
            0,
            data[piece.start as usize..piece.end as usize].to_vec(),
            Millis(2),
        )
        .unwrap();
    let mut sent = sent_after_handshakes(&mut engine);
    let mut haves = |key: PeerKey| -> Vec<u32> {
        let messages = sent.remove(&key).unwrap_or_default();
        messages
            .into_iter()
            .filter_map(|m| match m {
                Message::Have(i) => Some(i),
                _ => None,
            })
            .collect()
    };
    assert_eq!(haves(leecher), vec![0]);
    assert_eq!(haves(seed), Vec::<u32>::new());
}

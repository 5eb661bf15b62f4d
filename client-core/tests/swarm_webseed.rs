//! A swarm of browsers joining over time around one bandwidth-limited WebSeed: the swarm must
//! finish while the WebSeed serves little more than one copy of the file.

mod sim;

use client_core::engine::{Config, Engine, Millis};
use client_core::metainfo::TorrentBuilder;
use client_core::PeerId;
use sim::{LinkCfg, Rng, Sim, WebSeedSim};

#[test]
fn swarm_of_24_with_one_webseed() {
    const PEERS: usize = 24;
    let len = 1 << 20;
    let data = Rng(31).bytes(len);
    let mut builder = TorrentBuilder::single_file("talk.mp4", len as u64, Some(16 * 1024)).unwrap();
    builder.update(&data);
    let meta = builder
        .url_list(["https://pod.example/videos/talk.mp4"])
        .finish()
        .unwrap();

    let mut sim = Sim::new(77);
    // The pod's WebSeed: 1 MB/s shared by everyone, 50 ms away.
    sim.webseed = Some(WebSeedSim::single(
        "https://pod.example/videos/talk.mp4",
        &data,
        1 << 20,
        50,
    ));
    let mut rng = Rng(5);
    let mut joined: Vec<usize> = Vec::new();
    for n in 0..PEERS {
        // One viewer every 250 ms.
        let at = n as u64 * 250;
        sim.run_until(at);
        let id = PeerId::generate(b"-SH0100-", [n as u8; 12]);
        let engine = Engine::new(Config::default(), id, meta.clone(), 1000 + n as u64);
        let node = sim.add_node(engine);
        sim.nodes[node].uplink = Some(2 << 20);
        for &other in &joined {
            let latency = 20 + rng.below_u64(60);
            let link = LinkCfg::new(1 << 20, latency);
            sim.connect(node, other, link, link);
        }
        joined.push(node);
    }
    sim.run_while(60_000, |s| s.nodes.iter().any(|n| n.done_at.is_none()));

    let mut last = 0;
    let mut times = Vec::new();
    for (n, node) in sim.nodes.iter().enumerate() {
        assert!(node.engine.is_done(), "a peer did not finish");
        assert_eq!(node.engine.read(0, len).unwrap(), data);
        last = last.max(node.done_at.unwrap());
        times.push(node.done_at.unwrap() - n as u64 * 250);
    }
    times.sort();
    println!(
        "swarm: time from join to done: median {} ms, max {} ms",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    let served = sim.webseed.as_ref().unwrap().served;
    let ratio = served as f64 / len as f64;
    let from_peers: u64 = sim
        .nodes
        .iter()
        .map(|n| n.engine.stats(Millis(last)).downloaded_from_peers)
        .sum();
    println!(
        "swarm: {PEERS} peers done by {last} ms; webseed served {served} bytes = {ratio:.2} x file; \
         peers exchanged {from_peers} bytes ({:.1} copies)",
        from_peers as f64 / len as f64
    );
    assert!(ratio <= 1.5, "webseed served {ratio:.2} copies");
}

//! Piece throughput between two browsers: Shoal's client against WebTorrent JS between the same
//! two headless Chromium processes, and against a raw RTCDataChannel transfer of the same bytes
//! (the ceiling). Goals: Shoal at least WebTorrent JS, and at least 90% of raw.
//!
//! Browser A seeds the pod's file (fetched from its WebSeed into a `File` of the torrent's name,
//! so that the info-hash is the pod's: the pod's trackers only accept info-hashes it knows);
//! browser B adds a magnet with the info-hash and the pod's WebSocket tracker only (no `ws=`,
//! no `xs=`), so the metadata and every byte come from A over WebRTC. Each rate is the file size
//! over the time from B's first payload byte to its last (to `done` for the torrent clients):
//! connection set-up and metadata are not counted, for none of the three.
//!
//! Raw sends 16 KiB messages and keeps at most 64 KiB queued in the channel, the watermark
//! simple-peer (WebTorrent) and Shoal use: in Chromium it is also the fastest one measured here
//! (1 MiB gave 17–26 MB/s, 256 KiB 24–28, 64 KiB 26–41), so raw is a real ceiling and the
//! comparison leaves backpressure policy out.

use std::path::Path;
use std::time::{Duration, Instant};

use client_core::bencode;
use client_core::metainfo::Metainfo;
use client_core::tracker::http::percent_encode;
use serde_json::{json, Value};
use shoal_tests::browser::{Browser, Kind};
use shoal_tests::media;
use shoal_tests::pod::TestPod;

use crate::{median, wait_value};

/// One page for all three transfers (`?mode=shoal|webtorrent|raw`), loaded afresh for every
/// run on both sides, so that no client, connection or buffer survives from an earlier run.
/// Each mode defines the same steps on `window`; results land in `window.result`.
pub const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>throughput</title>
<script src="/page-errors.js"></script>
<script type="module">
  const params = new URLSearchParams(location.search);
  const mode = params.get('mode');
  const fileOf = async (url, name) => new File([await (await fetch(url)).arrayBuffer()], name);
  window.result = null;

  if (mode === 'shoal') {
    const { default: init, Client } = await import('./client/shoal-client.js');
    await init();
    window.seed = async (url, name, tracker) => {
      const client = new Client({});
      const t = await client.seed(await fileOf(url, name), { announce: [tracker] });
      window.torrent = t;
      return { infoHash: t.infoHash };
    };
    window.leech = async (magnet) => {
      const client = new Client({});
      const added = performance.now();
      let first = null;
      const t = await client.add(magnet, { webSeeds: false });
      window.torrent = t;
      // No per-block event: poll for the first byte (5 ms), then stop polling so that the
      // transfer itself runs undisturbed.
      const poll = setInterval(() => {
        if (t.stats().downloaded_from_peers > 0) { first = performance.now(); clearInterval(poll); }
      }, 5);
      t.on('done', () => {
        const end = performance.now();
        clearInterval(poll);
        const s = t.stats();
        window.result = { ms: end - (first ?? added), msFromAdd: end - added, bytes: s.bytes_total,
          fromPeers: s.downloaded_from_peers, fromWebSeeds: s.downloaded_from_webseeds,
          wasted: s.wasted, hashFailures: s.hash_failures };
      });
      t.on('error', (e) => { window.result = { error: String(e) }; });
    };
    window.state = () => window.torrent ? window.torrent.stats() : null;
  }

  if (mode === 'webtorrent') {
    const { default: WebTorrent } = await import('./webtorrent.min.js');
    // Empty storage, as a new visitor has: WebTorrent keeps pieces in the origin's private
    // file system, which outlives the page (B would otherwise hold the file from a past run).
    if (navigator.storage && navigator.storage.getDirectory) {
      const root = await navigator.storage.getDirectory();
      for await (const name of root.keys()) await root.removeEntry(name, { recursive: true });
    }
    // No ICE servers: on loopback host candidates are all there is.
    const client = new WebTorrent({ tracker: { rtcConfig: { iceServers: [] } } });
    client.on('error', (e) => console.error('WebTorrent: ' + (e.message || e)));
    window.seed = async (url, name, tracker) => {
      const file = await fileOf(url, name);
      return await new Promise((resolve) =>
        client.seed(file, { announce: [tracker] }, (t) => resolve({ infoHash: t.infoHash })));
    };
    window.leech = async (magnet) => {
      const added = performance.now();
      let first = null;
      const t = client.add(magnet);
      t.on('download', () => { first ??= performance.now(); });
      t.on('done', () => {
        const end = performance.now();
        window.result = { ms: end - (first ?? added), msFromAdd: end - added, bytes: t.length,
          received: t.received, urlList: t.urlList, peers: t.wires.length };
      });
    };
    window.state = () => {
      const t = client.torrents[0];
      return t ? { progress: t.progress, received: t.received, peers: t.numPeers } : null;
    };
  }

  if (mode === 'raw') {
    // At most HIGH bytes queued in the channel (see the module doc); resume at half of it.
    const HIGH = 64 * 1024;
    const CHUNK = 16 * 1024;
    const gathered = async (pc) => {
      while (pc.iceGatheringState !== 'complete') {
        await new Promise((r) => pc.addEventListener('icegatheringstatechange', r, { once: true }));
      }
      return pc.localDescription.sdp;
    };
    // A: the offer, with every candidate (no trickle, as WebTorrent peers do).
    window.offer = async (url) => {
      window.bytes = await (await fetch(url)).arrayBuffer();
      const pc = window.pc = new RTCPeerConnection({ iceServers: [] });
      const dc = window.dc = pc.createDataChannel('bench', { ordered: true });
      dc.binaryType = 'arraybuffer';
      await pc.setLocalDescription(await pc.createOffer());
      return await gathered(pc);
    };
    // A: takes B's answer, waits for the channel, then sends the whole file in 16 KiB messages.
    window.accept = async (sdp) => {
      const dc = window.dc, bytes = window.bytes;
      await window.pc.setRemoteDescription({ type: 'answer', sdp });
      if (dc.readyState !== 'open') await new Promise((r) => dc.addEventListener('open', r, { once: true }));
      let offset = 0;
      dc.bufferedAmountLowThreshold = HIGH / 2;
      const pump = () => {
        while (offset < bytes.byteLength && dc.bufferedAmount < HIGH) {
          const end = Math.min(offset + CHUNK, bytes.byteLength);
          dc.send(new Uint8Array(bytes, offset, end - offset));
          offset = end;
        }
      };
      dc.onbufferedamountlow = pump;
      pump();
      return true;
    };
    // B: answers and counts bytes from the first message to the last.
    window.answer = async (sdp, size) => {
      const pc = window.pc = new RTCPeerConnection({ iceServers: [] });
      let received = 0, first = null;
      window.received = () => received;
      pc.ondatachannel = (e) => {
        e.channel.binaryType = 'arraybuffer';
        e.channel.onmessage = (m) => {
          first ??= performance.now();
          received += m.data.byteLength;
          if (received >= size && !window.result) {
            window.result = { ms: performance.now() - first, bytes: received };
          }
        };
      };
      await pc.setRemoteDescription({ type: 'offer', sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      return await gathered(pc);
    };
    window.state = () => ({ received: window.received ? window.received() : 0 });
  }
  window.ready = true;
</script>"#;

/// The longest one transfer may take before it counts as "did not finish".
const TRANSFER_LIMIT: Duration = Duration::from_secs(120);
/// Loading a page, fetching the file and hashing it for seeding (seconds on loopback).
const STEP_LIMIT: Duration = Duration::from_secs(60);
/// Waiting for the tracker to forget the previous run's peers (it takes about a second).
const LEAVE_LIMIT: Duration = Duration::from_secs(10);
const RUNS: usize = 3;

#[derive(Clone, Copy, PartialEq)]
enum Method {
    Shoal,
    WebTorrent,
    Raw,
}

impl Method {
    const ALL: [Method; 3] = [Method::Shoal, Method::WebTorrent, Method::Raw];

    fn name(self) -> &'static str {
        match self {
            Method::Shoal => "Shoal",
            Method::WebTorrent => "WebTorrent JS",
            Method::Raw => "raw RTCDataChannel",
        }
    }

    fn mode(self) -> &'static str {
        match self {
            Method::Shoal => "shoal",
            Method::WebTorrent => "webtorrent",
            Method::Raw => "raw",
        }
    }
}

/// What every run needs to know about the file.
struct Content {
    page: String,
    /// The tracker's HTTP scrape of the file's swarm.
    scrape: String,
    info_hash_bytes: Vec<u8>,
    file_url: String,
    name: String,
    info_hash: String,
    size: u64,
    tracker: String,
    magnet: String,
}

pub fn piece_throughput(pod: &TestPod, dir: &Path) {
    let started = Instant::now();
    println!("\n== piece throughput between two browsers (Chromium → Chromium, median of {RUNS})");
    // A video, because the pod takes media only: grain at 8 Mbit/s makes 60 s about 60 MB.
    let clip = media::noisy_clip(dir, 60, 8);
    let video = pod.upload_file(&clip, "Throughput test");
    let torrent = Metainfo::parse(&shoal_tests::get_bytes(
        video["torrentUrl"].as_str().unwrap(),
    ))
    .expect("the pod's torrent parses");
    let tracker = format!("{}/tracker/socket", pod.url().replacen("http", "ws", 1));
    let info_hash = video["infoHash"].as_str().unwrap().to_owned();
    let content = Content {
        page: format!("{}/bench-throughput.html", pod.url()),
        scrape: format!(
            "{}/tracker/scrape?info_hash={}",
            pod.url(),
            percent_encode(torrent.info_hash.as_bytes())
        ),
        info_hash_bytes: torrent.info_hash.as_bytes().to_vec(),
        file_url: video["fileUrl"].as_str().unwrap().to_owned(),
        name: torrent.info.name.clone(),
        size: video["size"].as_u64().unwrap(),
        // Only the info-hash and the tracker: no WebSeed (`ws=`) and no .torrent URL (`xs=`).
        magnet: format!(
            "magnet:?xt=urn:btih:{info_hash}&tr={}",
            percent_encode(tracker.as_bytes())
        ),
        info_hash,
        tracker,
    };
    println!(
        "file: {} bytes ({:.1} MiB), piece length {}; MB/s = 10^6 bytes/s from B's first byte to its last",
        content.size,
        content.size as f64 / (1 << 20) as f64,
        torrent.info.piece_length
    );
    let (Ok(a), Ok(b)) = (
        Browser::launch(Kind::Chromium),
        Browser::launch(Kind::Chromium),
    ) else {
        println!("cannot launch two Chromium browsers");
        return;
    };

    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); Method::ALL.len()];
    // Taking turns, so a slower moment of the machine falls on all three alike.
    for run in 1..=RUNS {
        for (i, method) in Method::ALL.into_iter().enumerate() {
            let t0 = Instant::now();
            match transfer(method, &a, &b, &content) {
                Ok((ms, note)) => {
                    let rate = content.size as f64 / ms / 1000.0;
                    rates[i].push(rate);
                    println!(
                        "run {run} {:<19} {rate:>6.1} MB/s ({ms:.0} ms{note}; run took {:.1} s)",
                        method.name(),
                        t0.elapsed().as_secs_f64()
                    );
                }
                Err(why) => println!("run {run} {:<19} {why}", method.name()),
            }
        }
    }

    let summary: Vec<f64> = rates.iter().map(|r| median(r.clone())).collect();
    for (method, (rate, runs)) in Method::ALL.iter().zip(summary.iter().zip(&rates)) {
        let runs: Vec<String> = runs.iter().map(|r| format!("{r:.1}")).collect();
        println!(
            "{:<19} {rate:>6.1} MB/s median ({}/{RUNS} finished: {})",
            method.name(),
            runs.len(),
            runs.join(", ")
        );
    }
    println!(
        "Shoal / WebTorrent JS {:.2} (goal ≥ 1.00)   Shoal / raw {:.2} (goal ≥ 0.90)",
        summary[0] / summary[1],
        summary[0] / summary[2]
    );
    println!(
        "throughput section took {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

/// One transfer from A to B; returns B's milliseconds from first byte to last, and a note
/// for the run's line. Errors say why there is no figure.
fn transfer(
    method: Method,
    a: &Browser,
    b: &Browser,
    c: &Content,
) -> Result<(f64, String), String> {
    leave(a, b, c);
    for browser in [a, b] {
        let url = format!("{}?mode={}", c.page, method.mode());
        browser
            .goto(&url)
            .map_err(|e| format!("cannot open the page: {e}"))?;
        wait_value(browser, "return window.ready === true;", STEP_LIMIT)
            .ok_or_else(|| format!("the page did not load: {}", errors(browser)))?;
    }
    // Profiled (BENCH_PROFILE) from the moment the transfer starts: after seeding, after the
    // raw sender has fetched its bytes.
    let profiling;
    if method == Method::Raw {
        profiling = raw_transfer(a, b, c)?;
    } else {
        // A seeds the pod's bytes under the torrent's name: the same info-hash as the pod's.
        let seeded = run_js(
            a,
            "window.seed(arguments[0], arguments[1], arguments[2])",
            vec![json!(c.file_url), json!(c.name), json!(c.tracker)],
        )?;
        if seeded["infoHash"].as_str() != Some(c.info_hash.as_str()) {
            return Err(format!(
                "the seeder's info-hash differs from the pod's {}: {seeded}",
                c.info_hash
            ));
        }
        profiling = Profiling::start(a, b);
        b.execute(
            "window.leech(arguments[0]).catch((e) => { window.result = { error: String(e) }; }); return true;",
            vec![json!(c.magnet)],
        )
        .map_err(|e| e.to_string())?;
    }
    let Some(result) = wait_value(b, "return window.result;", TRANSFER_LIMIT) else {
        let state = b
            .execute("return window.state();", vec![])
            .unwrap_or(Value::Null);
        return Err(format!(
            "did not finish in {} s (B: {state}; errors A: {}, B: {})",
            TRANSFER_LIMIT.as_secs(),
            errors(a),
            errors(b)
        ));
    };
    if let Some(profiling) = profiling {
        profiling.stop(method);
    }
    if !result["error"].is_null() {
        return Err(format!("failed: {result}"));
    }
    let ms = result["ms"].as_f64().unwrap_or(f64::NAN);
    let note = match method {
        Method::Shoal => {
            // Every byte from the peer, none from a WebSeed, or the figure means nothing.
            if result["fromPeers"].as_u64() != Some(c.size) || result["fromWebSeeds"] != 0 {
                return Err(format!("not all bytes came from the peer: {result}"));
            }
            format!(
                ", {:.0} ms from add(); wasted {} bytes",
                result["msFromAdd"].as_f64().unwrap_or(f64::NAN),
                result["wasted"]
            )
        }
        Method::WebTorrent => {
            if result["urlList"] != json!([]) || result["bytes"].as_u64() != Some(c.size) {
                return Err(format!("unexpected torrent: {result}"));
            }
            format!(
                ", {:.0} ms from add(); received {} bytes",
                result["msFromAdd"].as_f64().unwrap_or(f64::NAN),
                result["received"]
            )
        }
        Method::Raw => String::new(),
    };
    Ok((ms, note))
}

/// Both browsers leave their pages, and the tracker's swarm empties, before the next run.
/// Going straight from one run's page to the next leaves one of the two torrent peers in the
/// tracker's swarm each time (seen as the scrape's `complete` growing by one per Shoal run,
/// until the tracker's idle timeout), and a leecher whose 5 offers all go to such departed
/// peers waits 15 s for its next announce. Through `about:blank`, both go within a second.
fn leave(a: &Browser, b: &Browser, c: &Content) {
    for browser in [a, b] {
        let _ = browser.goto("about:blank");
    }
    let deadline = Instant::now() + LEAVE_LIMIT;
    while swarm_size(c) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Seeders plus leechers in the file's swarm, as the tracker's scrape (BEP 48) says.
fn swarm_size(c: &Content) -> i64 {
    let Ok(answer) = bencode::decode(&shoal_tests::get_bytes(&c.scrape)) else {
        return 0;
    };
    let counts = answer
        .get(b"files")
        .and_then(|f| f.as_dict())
        .and_then(|f| f.get(c.info_hash_bytes.as_slice()));
    let count = |key: &[u8]| {
        counts
            .and_then(|d| d.get(key))
            .and_then(|v| v.as_int())
            .unwrap_or(0)
    };
    count(b"complete") + count(b"incomplete")
}

/// The raw channel: the harness carries A's offer to B and B's answer back, then A sends.
fn raw_transfer<'a>(
    a: &'a Browser,
    b: &'a Browser,
    c: &Content,
) -> Result<Option<Profiling<'a>>, String> {
    let offer = run_js(a, "window.offer(arguments[0])", vec![json!(c.file_url)])?;
    let answer = run_js(
        b,
        "window.answer(arguments[0], arguments[1])",
        vec![offer, json!(c.size)],
    )?;
    let profiling = Profiling::start(a, b);
    run_js(a, "window.accept(arguments[0])", vec![answer])?;
    Ok(profiling)
}

/// Starts a promise-returning expression in the page and polls for its value (not
/// `execute_async`, whose script timeout is shorter than fetching and hashing 60 MB may take).
fn run_js(browser: &Browser, expression: &str, args: Vec<Value>) -> Result<Value, String> {
    let script = format!(
        "window.step = null; ({expression}).then((v) => {{ window.step = {{ ok: v }}; }}, \
         (e) => {{ window.step = {{ error: String(e) }}; }}); return true;"
    );
    browser.execute(&script, args).map_err(|e| e.to_string())?;
    let step = wait_value(browser, "return window.step;", STEP_LIMIT)
        .ok_or_else(|| format!("{expression} did not finish: {}", errors(browser)))?;
    if !step["error"].is_null() {
        return Err(format!("{expression} failed: {}", step["error"]));
    }
    Ok(step["ok"].clone())
}

fn errors(browser: &Browser) -> String {
    browser
        .page_errors()
        .map(|e| format!("{e:?}"))
        .unwrap_or_else(|e| e.to_string())
}

/// BENCH_PROFILE=dir: both pages' main threads sampled by V8's profiler during each transfer
/// (Chromium's DevTools protocol), saved as `.cpuprofile` files (DevTools opens them) and
/// summed up on stderr: how busy each main thread was, and where the time went. For Shoal's
/// function names, build the client with `wasm-opt -g`.
struct Profiling<'a> {
    dir: String,
    sides: [(&'static str, &'a Browser); 2],
}

impl<'a> Profiling<'a> {
    fn start(a: &'a Browser, b: &'a Browser) -> Option<Self> {
        let dir = std::env::var("BENCH_PROFILE").ok()?;
        let sides = [("sender", a), ("receiver", b)];
        for (_, browser) in sides {
            let _ = browser.devtools("Profiler.enable", json!({}));
            let _ = browser.devtools("Profiler.setSamplingInterval", json!({ "interval": 200 }));
            let _ = browser.devtools("Profiler.start", json!({}));
        }
        Some(Self { dir, sides })
    }

    fn stop(self, method: Method) {
        for (side, browser) in self.sides {
            let Ok(answer) = browser.devtools("Profiler.stop", json!({})) else {
                continue;
            };
            let profile = &answer["profile"];
            let n = std::fs::read_dir(&self.dir).map_or(0, |d| d.count());
            let path = format!("{}/{n:02}-{}-{side}.cpuprofile", self.dir, method.mode());
            let _ = std::fs::write(&path, profile.to_string());
            eprintln!("  {} {side}: {}", method.name(), summarise(profile));
        }
    }
}

/// Busy milliseconds of a CPU profile and its five heaviest functions by self time.
fn summarise(profile: &Value) -> String {
    let empty = Vec::new();
    let nodes = profile["nodes"].as_array().unwrap_or(&empty);
    let names: std::collections::HashMap<u64, String> = nodes
        .iter()
        .filter_map(|n| {
            let frame = &n["callFrame"];
            let name = frame["functionName"].as_str().unwrap_or("");
            let url = frame["url"].as_str().unwrap_or("");
            let file = url.rsplit('/').next().unwrap_or("");
            Some((
                n["id"].as_u64()?,
                format!("{name} {file}").trim().to_owned(),
            ))
        })
        .collect();
    let samples = profile["samples"].as_array().unwrap_or(&empty);
    let deltas = profile["timeDeltas"].as_array().unwrap_or(&empty);
    let mut self_us: std::collections::HashMap<&str, f64> = Default::default();
    // A sample's time is the gap to the next one.
    for (i, sample) in samples.iter().enumerate() {
        let us = deltas.get(i + 1).and_then(Value::as_f64).unwrap_or(0.0);
        let name = sample
            .as_u64()
            .and_then(|id| names.get(&id))
            .map_or("?", String::as_str);
        *self_us.entry(name).or_default() += us;
    }
    let total: f64 = self_us.values().sum();
    let idle = self_us.get("(idle)").copied().unwrap_or(0.0);
    let mut heavy: Vec<(&str, f64)> = self_us
        .into_iter()
        .filter(|(n, _)| *n != "(idle)")
        .collect();
    heavy.sort_by(|x, y| y.1.total_cmp(&x.1));
    let top: Vec<String> = heavy
        .iter()
        .take(5)
        .map(|(n, us)| format!("{n} {:.0}", us / 1000.0))
        .collect();
    format!(
        "busy {:.0} of {:.0} ms; {}",
        (total - idle) / 1000.0,
        total / 1000.0,
        top.join(", ")
    )
}

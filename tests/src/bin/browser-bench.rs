//! Playback benchmarks in real browsers, side by side on the same video, pod and browser, with
//! ratios printed (issue: "client-core in the browser"). Run by `./shoal bench` inside a private
//! network namespace (WebRTC on loopback), or by hand:
//!
//!   cargo build --release -p shoal-tests --bin browser-bench
//!   unshare -n sh -c 'ip link set lo up && ip route add default dev lo src 127.0.0.1 && \
//!       exec target/release/browser-bench'
//!
//! 1. Time from page open to first frame: a plain `<video src=WebSeed URL>` against Shoal's
//!    client streaming the same file (goal: within 1.2 times the plain player).
//! 2. Share of bytes from peers with 2, 4 and 8 viewers starting together (goal: at least 80% of
//!    the ideal (N-1)/N), and stalls (`waiting` events after playback started).
//!
//! Nothing here asserts a speed: it measures and prints. Loopback only; bounded in time.

use std::time::{Duration, Instant};

use serde_json::Value;
use shoal_tests::browser::{Browser, Kind};
use shoal_tests::media;
use shoal_tests::pod::TestPod;

/// Pages the benchmark adds to a copy of the app's bundle (same origin as the pod).
const PLAIN_PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>plain</title>
<video id="player" muted autoplay playsinline></video>
<script>
  const v = document.getElementById('player');
  window.stalls = 0; let started = false;
  v.addEventListener('timeupdate', () => { if (!started && v.currentTime > 0) { started = true; window.firstFrameMs = performance.now(); } });
  v.addEventListener('waiting', () => { if (started) window.stalls++; });
  v.src = new URLSearchParams(location.search).get('src');
</script>"#;

const SHOAL_PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>shoal</title>
<video id="player" muted autoplay playsinline></video>
<script type="module">
  import init, { Client } from './client/shoal-client.js';
  const v = document.getElementById('player');
  window.stalls = 0; let started = false;
  v.addEventListener('timeupdate', () => { if (!started && v.currentTime > 0) { started = true; window.firstFrameMs = performance.now(); } });
  v.addEventListener('waiting', () => { if (started) window.stalls++; });
  await init();
  const client = new Client({});
  const torrent = await client.add(new URLSearchParams(location.search).get('id'), {});
  window.shoalTorrent = torrent;
  torrent.streamTo(v, {});
  v.play().catch(() => {});
</script>"#;

fn bench_pod() -> (TestPod, tempfile::TempDir) {
    let bundle = tempfile::tempdir().unwrap();
    let dist = shoal_tests::workspace_root().join("www/dist");
    copy_dir(&dist, bundle.path());
    std::fs::write(bundle.path().join("bench-plain.html"), PLAIN_PAGE).unwrap();
    std::fs::write(bundle.path().join("bench-shoal.html"), SHOAL_PAGE).unwrap();
    let dir = bundle.path().to_path_buf();
    (TestPod::start_with(move |c| c.bundle = Some(dir)), bundle)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn wait_value(browser: &Browser, script: &str, timeout: Duration) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(v) = browser.execute(script, vec![]) {
            if !v.is_null() && v != Value::Bool(false) {
                return Some(v);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Opens `url` in a fresh browser and returns the page's time to first frame, in ms.
fn first_frame(kind: Kind, url: &str) -> Option<f64> {
    let browser = Browser::launch(kind).ok()?;
    browser.goto(url).ok()?;
    wait_value(
        &browser,
        "return window.firstFrameMs || null;",
        Duration::from_secs(60),
    )
    .and_then(|v| v.as_f64())
}

fn time_to_first_frame(pod: &TestPod, video: &Value) {
    println!("\n== time from page open to first frame (median of 5 fresh browsers)");
    let plain = format!(
        "{}/bench-plain.html?src={}",
        pod.url(),
        video["fileUrl"].as_str().unwrap()
    );
    let shoal = format!(
        "{}/bench-shoal.html?id={}",
        pod.url(),
        video["torrentUrl"].as_str().unwrap()
    );
    for kind in Kind::ALL {
        let mut p = Vec::new();
        let mut s = Vec::new();
        for _ in 0..5 {
            p.extend(first_frame(kind, &plain));
            s.extend(first_frame(kind, &shoal));
        }
        let (p, s) = (median(p), median(s));
        println!(
            "{:<9} plain <video src>: {p:>7.0} ms   Shoal: {s:>7.0} ms   ratio {:.2} (goal ≤ 1.20)",
            kind.name(),
            s / p
        );
    }
}

fn peer_share(pod: &TestPod, dir: &std::path::Path) {
    println!("\n== share of bytes from peers, N viewers starting together (Chromium)");
    for n in [2usize, 4, 8] {
        // A fresh clip per round, so no earlier viewer seeds it.
        let clip = media::ffmpeg_clip(dir, &format!("share-{n}.mp4"), 60, n as u32);
        let video = pod.upload_file(&clip, &format!("Share test {n}"));
        let url = format!(
            "{}/bench-shoal.html?id={}",
            pod.url(),
            video["torrentUrl"].as_str().unwrap()
        );
        let browsers: Vec<Browser> = (0..n)
            .filter_map(|_| Browser::launch(Kind::Chromium).ok())
            .collect();
        for b in &browsers {
            let _ = b.goto(&url);
        }
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut stats = Vec::new();
        for b in &browsers {
            let left = deadline.saturating_duration_since(Instant::now());
            let s = wait_value(
                b,
                "const t = window.shoalTorrent; return t && t.stats().done ? t.stats() : null;",
                left,
            );
            let stalls = b
                .execute("return window.stalls;", vec![])
                .ok()
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            stats.push((s, stalls));
        }
        let mut from_peers = 0u64;
        let mut from_seed = 0u64;
        let mut stalls = 0u64;
        let mut finished = 0;
        for (s, st) in &stats {
            stalls += st;
            if let Some(s) = s {
                finished += 1;
                from_peers += s["downloaded_from_peers"].as_u64().unwrap_or(0);
                from_seed += s["downloaded_from_webseeds"].as_u64().unwrap_or(0);
            }
        }
        let share = from_peers as f64 / (from_peers + from_seed).max(1) as f64;
        let ideal = (n as f64 - 1.0) / n as f64;
        println!(
            "N={n}: {finished}/{n} finished, {:.0}% from peers (ideal {:.0}%, {:.0}% of ideal; goal ≥ 80%), WebSeed sent {:.2} copies, {stalls} stalls",
            share * 100.0,
            ideal * 100.0,
            100.0 * share / ideal,
            from_seed as f64 / video["size"].as_f64().unwrap()
        );
    }
}

fn main() {
    let (pod, _bundle) = bench_pod();
    let dir = tempfile::tempdir().unwrap();
    let clip = media::ffmpeg_clip(dir.path(), "first-frame.mp4", 60, 0);
    let video = pod.upload_file(&clip, "First frame test");
    println!(
        "video: {:.0} s, {} bytes, piece length {}",
        video["duration"].as_f64().unwrap_or(0.0),
        video["size"],
        video["pieceLength"]
    );
    time_to_first_frame(&pod, &video);
    peer_share(&pod, dir.path());
}

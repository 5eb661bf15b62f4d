//! Playback benchmarks in real browsers, side by side on the same video, pod and browser, with
//! ratios printed (issue: "client-core in the browser"). Run by `./shoal bench` inside a private
//! network namespace (WebRTC on loopback), or by hand:
//!
//!   cargo build --release -p shoal-tests --bin browser-bench
//!   unshare -n sh -c 'ip link set lo up && ip route add default dev lo src 127.0.0.1 && \
//!       exec target/release/browser-bench [first-frame] [peer-share] [throughput] [memory]'
//!
//! With no arguments every section runs; naming sections runs only those.
//!
//! 1. Time from page open to first frame: a plain `<video src=WebSeed URL>` against Shoal's
//!    client streaming the same file (goal: within 1.2 times the plain player).
//! 2. Share of bytes from peers with 2, 4 and 8 viewers starting together (goal: at least 80% of
//!    the ideal (N-1)/N), and stalls (`waiting` events after playback started).
//! 3. Piece throughput between two browsers (about 60 MB, A seeds, B downloads from A only):
//!    Shoal's client against WebTorrent JS and against a raw RTCDataChannel transfer of the same
//!    bytes (goal: at least WebTorrent JS, and at least 90% of raw).
//! 4. Memory: a 2 GiB video played start to end at 16x in Chromium; peak memory of the tab,
//!    the browser and the wasm heap, and whether it grows with the bytes played.
//!
//! Nothing here asserts a speed: it measures and prints. Loopback only; bounded in time.

mod first_frame;
mod memory;
mod peer_share;
mod throughput;

use std::time::{Duration, Instant};

use serde_json::Value;
use shoal_tests::browser::Browser;
use shoal_tests::media;
use shoal_tests::pod::TestPod;

/// Pages the benchmark adds to a copy of the app's bundle (same origin as the pod).
/// What every page measures, the same way: `window.firstFrameMs`, when the first frame is
/// presented (`requestVideoFrameCallback`, which both browsers have; the first `timeupdate`
/// past 0 otherwise, which Chromium fires only every 250 ms), and `window.stalls`, the `waiting`
/// events once playback has advanced. A macro so that `concat!` puts it inline in each page: a
/// script file would cost every page one more fetch.
macro_rules! probe {
    () => {
        r#"<script>
  const probed = document.querySelector('video');
  // Where the time goes (printed with BENCH_MARKS=1); pages add their own steps.
  const marks = window.marks = { script: performance.now() };
  for (const e of ['loadedmetadata', 'canplay', 'playing']) probed.addEventListener(e, () => { marks[e] = marks[e] || performance.now(); });
  window.stalls = 0; let advanced = false;
  const shown = (now) => { window.firstFrameMs = window.firstFrameMs || now; };
  if (probed.requestVideoFrameCallback) probed.requestVideoFrameCallback((now) => shown(now));
  probed.addEventListener('timeupdate', () => {
    if (!advanced && probed.currentTime > 0) { advanced = true; shown(performance.now()); }
  });
  probed.addEventListener('waiting', () => { if (advanced) window.stalls++; });
</script>"#
    };
}
pub(crate) use probe;

const PLAIN_PAGE: &str = concat!(
    r#"<!doctype html><meta charset="utf-8"><title>plain</title>
<video id="player" muted autoplay playsinline></video>"#,
    probe!(),
    r#"<script>
  document.getElementById('player').src = new URLSearchParams(location.search).get('src');
</script>"#
);

/// Shoal's client streaming `?id=` (a .torrent URL), as the README's embedding snippet does:
/// the client's module, its wasm and the .torrent are all fetched while the page loads, and
/// `stream` takes the .torrent's fetch promise.
const SHOAL_PAGE: &str = concat!(
    r#"<!doctype html><meta charset="utf-8"><title>shoal</title>
<link rel="modulepreload" href="./client/shoal-client.js">
<script>
  // The wasm compiles while the module loads; `init` takes the compiled module.
  window.shoalWasm = WebAssembly.compileStreaming(fetch('./client/shoal-client_bg.wasm'));
  window.shoalWasm.then(() => { marks.compiled = performance.now(); });
  window.shoalTorrentFetch = fetch(new URLSearchParams(location.search).get('id'));
</script>
<video id="player" muted autoplay playsinline></video>"#,
    probe!(),
    r#"<script type="module">
  import init, { Client } from './client/shoal-client.js';
  const v = document.getElementById('player');
  marks.module = performance.now();
  await init({ module_or_path: window.shoalWasm });
  marks.init = performance.now();
  const client = new Client({});
  const torrent = await client.stream(window.shoalTorrentFetch, v, {});
  marks.added = performance.now();
  window.shoalTorrent = torrent;
  torrent.on('verified', () => { marks.verified = marks.verified || performance.now(); });
  v.play().catch(() => {});
</script>"#
);

/// WebTorrent JS streaming the same torrent into a `<video>` the way its documentation says:
/// its service worker serves the file to the element, pieces come from the WebSeed and peers.
const WEBTORRENT_PAGE: &str = concat!(
    r#"<!doctype html><meta charset="utf-8"><title>webtorrent</title>
<script src="/page-errors.js"></script>
<video id="player" muted autoplay playsinline></video>"#,
    probe!(),
    r#"<script type="module">
  import WebTorrent from './webtorrent.min.js';
  const v = document.getElementById('player');
  await navigator.serviceWorker.register('./sw.min.js', { scope: './' });
  const controller = await navigator.serviceWorker.ready;
  // WebTorrent refuses a worker that is still activating.
  if (controller.active.state !== 'activated') {
    await new Promise((r) => controller.active.addEventListener('statechange', () => controller.active.state === 'activated' && r()));
  }
  const client = new WebTorrent({ tracker: { rtcConfig: { iceServers: [] } } });
  client.createServer({ controller });
  client.add(new URLSearchParams(location.search).get('id'), (torrent) => {
    torrent.files[0].streamTo(v);
    v.play().catch(() => {});
  });
</script>"#
);

fn bench_pod() -> (TestPod, tempfile::TempDir) {
    let bundle = tempfile::tempdir().unwrap();
    let dist = shoal_tests::workspace_root().join("www/dist");
    copy_dir(&dist, bundle.path());
    std::fs::write(bundle.path().join("bench-plain.html"), PLAIN_PAGE).unwrap();
    std::fs::write(bundle.path().join("bench-shoal.html"), SHOAL_PAGE).unwrap();
    std::fs::write(
        bundle.path().join("bench-throughput.html"),
        throughput::PAGE,
    )
    .unwrap();
    std::fs::write(bundle.path().join("bench-webtorrent.html"), WEBTORRENT_PAGE).unwrap();
    std::fs::write(bundle.path().join("bench-long.html"), memory::PAGE).unwrap();
    // WebTorrent's browser bundle and its service worker (how WebTorrent streams into <video>).
    let webtorrent = shoal_tests::workspace_root().join("tests/js/node_modules/webtorrent/dist");
    for file in ["webtorrent.min.js", "sw.min.js"] {
        std::fs::copy(webtorrent.join(file), bundle.path().join(file))
            .unwrap_or_else(|e| panic!("{file}: {e} (run ./shoal test to install tests/js)"));
    }
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

pub fn wait_value(browser: &Browser, script: &str, timeout: Duration) -> Option<Value> {
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

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The sections, in the order they run; `browser-bench SECTION...` runs only those named.
const SECTIONS: [&str; 4] = ["first-frame", "peer-share", "throughput", "memory"];

fn main() {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    if let Some(unknown) = wanted.iter().find(|a| !SECTIONS.contains(&a.as_str())) {
        eprintln!(
            "unknown section {unknown:?}; sections: {}",
            SECTIONS.join(" ")
        );
        std::process::exit(2);
    }
    let wants = |section: &str| wanted.is_empty() || wanted.iter().any(|a| a == section);
    let (pod, _bundle) = bench_pod();
    let dir = tempfile::tempdir().unwrap();
    if wants("first-frame") {
        let clip = media::ffmpeg_clip(dir.path(), "first-frame.mp4", 60, 0);
        let video = pod.upload_file(&clip, "First frame test");
        println!(
            "video: {:.0} s, {} bytes, piece length {}",
            video["duration"].as_f64().unwrap_or(0.0),
            video["size"],
            video["pieceLength"]
        );
        first_frame::time_to_first_frame(&pod, &video);
    }
    if wants("peer-share") {
        peer_share::peer_share(&pod, dir.path());
    }
    if wants("throughput") {
        throughput::piece_throughput(&pod, dir.path());
    }
    if wants("memory") {
        memory::long_video(&pod, dir.path());
    }
}

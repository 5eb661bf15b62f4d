//! Shoal's browser client and the real WebTorrent (npm `webtorrent`, its browser bundle
//! `dist/webtorrent.min.js`) swap a video in both directions over WebRTC, introduced by nothing
//! but the pod's WebSocket tracker:
//! - a WebTorrent page seeds the file (hashed in the page, create-torrent's info-hash equals the
//!   pod's) and Shoal's client, with WebSeeds off, gets every byte from it and plays the video;
//! - Shoal's client holds the video (from the WebSeed) and a WebTorrent page given only a
//!   magnet with the info-hash and the tracker gets the metadata (ut_metadata) and every byte
//!   from it, ending with the pod's file exactly; the tracker counts Shoal's finished client
//!   as a seeder, and 25 WebTorrent visitors in a row each get the whole video from it.
//!
//! WebTorrent runs in Chromium and in Firefox, Shoal's client too. The WebTorrent page, its
//! bundle and Shoal's client are served by the pod itself (a copy of the web app with two
//! files added), so everything is same-origin. WebTorrent comes from
//! `npm install --ignore-scripts` in tests/js (`./shoal test` does it). Run inside a private
//! network namespace holding only loopback, so that WebRTC finds loopback candidates.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use client_core::bencode;
use client_core::metainfo::Metainfo;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use shoal_tests::browser::{Browser, Kind};
use shoal_tests::media;
use shoal_tests::pod::TestPod;

/// A page that loads WebTorrent's ES-module bundle and hands it to the test's scripts. No ICE
/// servers: on loopback host candidates are all there is, and unreachable STUN servers would
/// only slow down gathering.
const WEBTORRENT_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>WebTorrent peer</title>
  <script src="/page-errors.js"></script>
</head>
<body>
  <p id="status">Loading WebTorrent…</p>
  <script type="module">
    import WebTorrent from './webtorrent.min.js';
    // A fresh client as a new visitor has it: a new peer id and empty storage (WebTorrent
    // keeps pieces in the origin's private file system); the previous client is destroyed.
    window.newWebTorrent = async () => {
      if (window.webtorrent) {
        const old = window.webtorrent;
        window.webtorrent = null;
        await new Promise((resolve) => old.destroy(resolve));
      }
      if (navigator.storage && navigator.storage.getDirectory) {
        const root = await navigator.storage.getDirectory();
        for await (const name of root.keys()) await root.removeEntry(name, { recursive: true });
      }
      window.webtorrent = new WebTorrent({ tracker: { rtcConfig: { iceServers: [] } } });
      window.webtorrent.on('error', (e) => console.error('WebTorrent: ' + (e.message || e)));
      return window.webtorrent;
    };
    await window.newWebTorrent();
    document.getElementById('status').textContent = 'WebTorrent ' + WebTorrent.VERSION;
  </script>
</body>
</html>
"#;

/// The longest any one step may take; loopback transfers of this clip take seconds, so the
/// bound only turns a hang into a failure that shows the pages' state.
const STEP_LIMIT: Duration = Duration::from_secs(90);

/// Swarm counts from the tracker.
#[derive(Debug, PartialEq, Eq)]
struct Counts {
    complete: i64,
    incomplete: i64,
    downloaded: i64,
}

/// A pod serving the WebTorrent page and bundle next to Shoal's client, with a clip uploaded.
struct Setup {
    pod: TestPod,
    video: Value,
    torrent: Metainfo,
    /// The pod's file (`GET fileUrl`): what every peer must end up with.
    bytes: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn start() -> Self {
        let bundle = std::fs::read(webtorrent_bundle()).expect("WebTorrent's bundle");
        let pod = TestPod::start_with_pages(&[
            ("webtorrent-peer.html", WEBTORRENT_PAGE.as_bytes()),
            ("webtorrent.min.js", &bundle),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let clip = media::noisy_clip(dir.path(), 12, 2);
        let video = pod.upload_file(&clip, "WebTorrent interop clip");
        let bytes = shoal_tests::get_bytes(video["fileUrl"].as_str().unwrap());
        assert_eq!(bytes.len() as u64, video["size"].as_u64().unwrap());
        let torrent = Metainfo::parse(&shoal_tests::get_bytes(
            video["torrentUrl"].as_str().unwrap(),
        ))
        .expect("the pod's torrent parses");
        Self {
            pod,
            video,
            torrent,
            bytes,
            _dir: dir,
        }
    }

    fn tracker(&self) -> String {
        format!(
            "{}/tracker/socket",
            self.pod.url().replacen("http", "ws", 1)
        )
    }

    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The tracker's counts for the video, as an HTTP scrape (BEP 48) shows them.
    fn scrape(&self) -> Counts {
        let escaped: String = self
            .torrent
            .info_hash
            .as_bytes()
            .iter()
            .map(|b| format!("%{b:02X}"))
            .collect();
        let answer = shoal_tests::get_bytes(&format!(
            "{}/tracker/scrape?info_hash={escaped}",
            self.pod.url()
        ));
        let answer = bencode::decode(&answer).expect("a bencoded scrape answer");
        let files = answer.get(b"files").and_then(|f| f.as_dict());
        let counts = files
            .and_then(|f| f.get(self.torrent.info_hash.as_bytes().as_slice()))
            .unwrap_or_else(|| panic!("no counts for the video in the scrape: {answer:?}"));
        let count = |key: &[u8]| counts.get(key).and_then(|v| v.as_int()).unwrap_or(-1);
        Counts {
            complete: count(b"complete"),
            incomplete: count(b"incomplete"),
            downloaded: count(b"downloaded"),
        }
    }

    /// A browser on the WebTorrent page, with the client made.
    fn webtorrent_page(&self, kind: Kind) -> Browser {
        let browser = Browser::launch(kind).unwrap();
        browser
            .goto(&format!("{}/webtorrent-peer.html", self.pod.url()))
            .unwrap();
        wait_for(
            &browser,
            "WebTorrent's bundle to load",
            "return !!window.webtorrent;",
            Duration::from_secs(30),
        );
        browser
    }

    /// A browser on Shoal's example page, before any torrent is added.
    /// Shoal's client holding the whole video, fetched from the WebSeed (no peer has it yet).
    fn shoal_seeder(&self, kind: Kind) -> Browser {
        let seeder = self.shoal_page(
            kind,
            &format!("?id={}", self.video["torrentUrl"].as_str().unwrap()),
        );
        wait_for(
            &seeder,
            "Shoal's client to hold every piece",
            "const t = window.shoalTorrent; return !!t && t.stats().done;",
            STEP_LIMIT,
        );
        seeder
    }

    fn shoal_page(&self, kind: Kind, query: &str) -> Browser {
        let browser = Browser::launch(kind).unwrap();
        browser
            .goto(&format!("{}/client-example.html{query}", self.pod.url()))
            .unwrap();
        wait_for(
            &browser,
            "Shoal's client",
            "return !!window.shoalClient;",
            Duration::from_secs(30),
        );
        browser
    }
}

fn webtorrent_bundle() -> PathBuf {
    let path = shoal_tests::workspace_root()
        .join("tests/js/node_modules/webtorrent/dist/webtorrent.min.js");
    assert!(
        path.is_file(),
        "{} is missing: run ./shoal test (or `npm install --ignore-scripts` in tests/js)",
        path.display()
    );
    path
}

fn sha1_hex(bytes: &[u8]) -> String {
    hex(&Sha1::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a page shows when a wait fails: its errors and whichever client state it has.
const PAGE_STATE: &str = "const wt = window.webtorrent; \
    const t = wt && wt.torrents[0]; \
    const v = document.getElementById('player'); \
    return { errors: window.__shoalErrors, \
      shoal: window.shoalTorrent ? window.shoalTorrent.stats() : null, \
      video: v ? { t: v.currentTime, rs: v.readyState, err: v.error && v.error.message } : null, \
      webtorrent: t ? { infoHash: t.infoHash, ready: t.ready, done: t.done, progress: t.progress, \
        downloaded: t.downloaded, uploaded: t.uploaded, received: t.received, peers: t.numPeers, \
        wires: t.wires.map((w) => w.peerId) } : null };";

/// Polls a JS expression until it is truthy; returns its value. On timeout, fails with every
/// page's state.
fn wait_for_all(
    browser: &Browser,
    others: &[&Browser],
    what: &str,
    script: &str,
    timeout: Duration,
) -> Value {
    browser.wait_until(what, script, timeout, PAGE_STATE, others)
}

fn wait_for(browser: &Browser, what: &str, script: &str, timeout: Duration) -> Value {
    wait_for_all(browser, &[], what, script, timeout)
}

fn assert_no_page_errors(browsers: &[&Browser]) {
    for browser in browsers {
        browser.assert_no_errors("the page", None);
    }
}

/// (a) A WebTorrent page seeds the pod's file; Shoal's client, with WebSeeds off, gets every
/// byte from it over WebRTC and plays the video.
fn shoal_downloads_from_webtorrent(seeder_kind: Kind, viewer_kind: Kind) {
    let setup = Setup::start();
    let seeder = setup.webtorrent_page(seeder_kind);
    // The WebTorrent user has the file (here: the pod's bytes) and seeds it under the same
    // name, announcing to the pod's tracker only.
    let seeded = seeder
        .execute_async(
            "const [url, name, tracker, done] = arguments; \
             (async () => { \
               const bytes = await (await fetch(url)).arrayBuffer(); \
               const file = new File([bytes], name); \
               return await new Promise((resolve) => { \
                 window.webtorrent.seed(file, { announce: [tracker] }, (t) => \
                   resolve({ infoHash: t.infoHash, name: t.name, length: t.length, \
                     announce: t.announce, pieceLength: t.pieceLength })); \
               }); \
             })().then(done, (e) => done({ error: String(e) }));",
            vec![
                setup.video["fileUrl"].clone(),
                json!(setup.torrent.info.name),
                json!(setup.tracker()),
            ],
        )
        .unwrap();
    assert!(
        seeded["error"].is_null(),
        "WebTorrent cannot seed: {seeded}"
    );
    assert_eq!(
        seeded["infoHash"].as_str(),
        setup.video["infoHash"].as_str(),
        "WebTorrent's info-hash for the same name and bytes differs from the pod's: {seeded}"
    );
    assert_eq!(seeded["length"].as_u64(), Some(setup.size()), "{seeded}");
    assert_eq!(seeded["announce"], json!([setup.tracker()]), "{seeded}");

    // Shoal's client, peers only: nothing can come from the WebSeed.
    let viewer = setup.shoal_page(viewer_kind, "");
    viewer
        .execute(
            "const added = performance.now(); \
             window.shoalClient.add(arguments[0], { webSeeds: false }).then((t) => { \
               window.shoalTorrent = t; \
               t.on('done', () => { window.msToDone = performance.now() - added; }); \
               t.on('error', (e) => console.error('torrent error: ' + e)); \
               t.streamTo(document.getElementById('player'), {}); \
             }, (e) => console.error('add failed: ' + e)); return true;",
            vec![setup.video["torrentUrl"].clone()],
        )
        .unwrap();
    wait_for_all(
        &viewer,
        &[&seeder],
        "Shoal's client to hold every piece, from the WebTorrent seeder",
        "const t = window.shoalTorrent; return !!t && t.stats().done;",
        STEP_LIMIT,
    );
    let ms_to_done = wait_for(
        &viewer,
        "the 'done' event",
        "return window.msToDone;",
        Duration::from_secs(5),
    );
    wait_for_all(
        &viewer,
        &[&seeder],
        "the video to play",
        "const v = document.getElementById('player'); \
         if (v.paused) v.play().catch(() => {}); return v.currentTime > 1.0;",
        STEP_LIMIT,
    );

    let stats = viewer.torrent_stats().unwrap();
    println!(
        "WebTorrent ({}) → Shoal ({}): {} bytes from peers, {} from WebSeeds, {} pieces, {:.0} ms \
         from add() to 'done'",
        seeder_kind.name(),
        viewer_kind.name(),
        stats["downloaded_from_peers"],
        stats["downloaded_from_webseeds"],
        stats["pieces_verified"],
        ms_to_done.as_f64().unwrap()
    );
    assert_eq!(stats["bytes_total"].as_u64(), Some(setup.size()), "{stats}");
    assert_eq!(
        stats["downloaded_from_peers"].as_u64(),
        Some(setup.size()),
        "every byte must come from the WebTorrent peer: {stats}"
    );
    assert_eq!(stats["downloaded_from_webseeds"], 0, "{stats}");
    assert_eq!(stats["hash_failures"], 0, "{stats}");

    // The seeder side agrees: its only peer is Shoal's client and it sent the whole file.
    let shoal_peer_id = viewer
        .execute("return window.shoalClient.peerId;", vec![])
        .unwrap();
    let seeder_side = seeder
        .execute(
            "const t = window.webtorrent.torrents[0]; \
             return { uploaded: t.uploaded, wires: t.wires.map((w) => w.peerId) };",
            vec![],
        )
        .unwrap();
    assert!(
        seeder_side["uploaded"].as_u64().unwrap() >= setup.size(),
        "WebTorrent's upload count: {seeder_side}"
    );
    assert!(
        seeder_side["wires"]
            .as_array()
            .unwrap()
            .contains(&shoal_peer_id),
        "Shoal's client ({shoal_peer_id}) is not among WebTorrent's peers: {seeder_side}"
    );

    // What the viewer plays is the pod's file, byte for byte.
    let shoal_sha1 = viewer
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             window.shoalTorrent.blob().then((b) => b.arrayBuffer()) \
               .then((a) => crypto.subtle.digest('SHA-1', a)) \
               .then((d) => done(Array.from(new Uint8Array(d), (x) => x.toString(16).padStart(2, '0')).join('')), \
                 (e) => done('error: ' + e));",
            vec![],
        )
        .unwrap();
    assert_eq!(shoal_sha1.as_str(), Some(sha1_hex(&setup.bytes).as_str()));
    assert_no_page_errors(&[&seeder, &viewer]);
}

/// (b) Shoal's client holds the video; a WebTorrent page given only the info-hash and the
/// tracker gets the metadata and every byte from it.
fn webtorrent_downloads_from_shoal(seeder_kind: Kind, leecher_kind: Kind) {
    let setup = Setup::start();
    // Shoal's client fetches the video (from the WebSeed: there is no other peer yet).
    let seeder = setup.shoal_seeder(seeder_kind);
    let before = seeder.torrent_stats().unwrap();
    assert_eq!(before["uploaded"], 0, "{before}");
    // The pod's tracker counts it as a seeder now (BEP 3's `completed`, as WebTorrent sends):
    // what scrapes and every announcer's `complete` count show, and what the tracker's relay
    // uses to keep seeders' offers for leechers.
    let mut counts = setup.scrape();
    let deadline = Instant::now() + Duration::from_secs(10);
    while counts.complete != 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        counts = setup.scrape();
    }
    assert_eq!(
        counts,
        Counts {
            complete: 1,
            incomplete: 0,
            downloaded: 1
        },
        "the tracker does not count Shoal's finished client as a seeder (no `completed` announce?)"
    );

    // A magnet with the info-hash and the pod's tracker only: no `ws=` (WebSeed) and no `xs=`
    // (.torrent URL), so the metadata and every byte must come from Shoal's client.
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&tr={}",
        setup.video["infoHash"].as_str().unwrap(),
        setup.tracker()
    );
    let leecher = setup.webtorrent_page(leecher_kind);
    let leeched = leech(&leecher, &seeder, &magnet, &setup.tracker());
    let after = seeder.torrent_stats().unwrap();
    println!(
        "Shoal ({}) → WebTorrent ({}): {} bytes in the file, {} received by WebTorrent, {} uploaded by Shoal, \
         {:.0} ms from add(magnet) to 'done'",
        seeder_kind.name(),
        leecher_kind.name(),
        setup.size(),
        leeched["received"],
        after["uploaded"],
        leeched["ms"].as_f64().unwrap_or(f64::NAN)
    );
    assert_got_the_file_from_shoal(&setup, &seeder, &leeched);
    assert!(
        after["uploaded"].as_u64().unwrap() >= setup.size(),
        "Shoal's client uploaded less than the file: {after}"
    );
    assert_no_page_errors(&[&seeder, &leecher]);
}

/// A fresh WebTorrent client in `leecher` adds `magnet`; waits for its `done` and returns
/// what it got: the file's SHA-1, length and name, bytes received, peers (`wires`).
fn leech(leecher: &Browser, seeder: &Browser, magnet: &str, tracker: &str) -> Value {
    leecher
        .execute(
            "const [magnet, tracker] = arguments; \
             window.leeched = null; \
             window.newWebTorrent().then((client) => { \
               const added = performance.now(); \
               const t = client.add(magnet, { announce: [tracker] }); \
               t.on('done', async () => { \
                 const ms = performance.now() - added; \
                 try { \
                   const bytes = await t.files[0].arrayBuffer(); \
                   const digest = await crypto.subtle.digest('SHA-1', bytes); \
                   window.leeched = { \
                     sha1: Array.from(new Uint8Array(digest), (x) => x.toString(16).padStart(2, '0')).join(''), \
                     length: bytes.byteLength, name: t.name, received: t.received, ms, \
                     urlList: t.urlList, wires: t.wires.map((w) => w.peerId) }; \
                 } catch (e) { window.leeched = { error: String(e) }; } \
               }); \
             }, (e) => { window.leeched = { error: 'no fresh client: ' + e }; }); \
             return true;",
            vec![json!(magnet), json!(tracker)],
        )
        .unwrap();
    wait_for_all(
        leecher,
        &[seeder],
        "WebTorrent to download the video from Shoal's client",
        "return window.leeched || null;",
        STEP_LIMIT,
    )
}

/// The metadata and every byte came from Shoal's client, and the file is the pod's.
fn assert_got_the_file_from_shoal(setup: &Setup, seeder: &Browser, leeched: &Value) {
    assert!(leeched["error"].is_null(), "WebTorrent: {leeched}");
    assert_eq!(
        leeched["name"].as_str(),
        Some(setup.torrent.info.name.as_str()),
        "metadata from Shoal's client: {leeched}"
    );
    assert_eq!(leeched["length"].as_u64(), Some(setup.size()), "{leeched}");
    assert_eq!(
        leeched["sha1"].as_str(),
        Some(sha1_hex(&setup.bytes).as_str()),
        "WebTorrent's file differs from the pod's"
    );
    assert_eq!(
        leeched["urlList"],
        json!([]),
        "no WebSeed was given: {leeched}"
    );
    let shoal_peer_id = seeder
        .execute("return window.shoalClient.peerId;", vec![])
        .unwrap();
    assert_eq!(
        leeched["wires"],
        json!([shoal_peer_id]),
        "Shoal's client must be WebTorrent's only peer: {leeched}"
    );
    assert!(
        leeched["received"].as_u64().unwrap() >= setup.size(),
        "{leeched}"
    );
}

/// WebTorrent visitors one after another (each a new client, so a new WebRTC connection that
/// Shoal's client answers): every one gets the whole video. A connection that stalls (as when
/// the answerer's first message was lost, about one connection in fifteen) fails this.
#[test]
fn webtorrent_visitors_one_after_another_all_get_the_video_from_shoal() {
    const VISITORS: u64 = 25;
    let setup = Setup::start();
    let seeder = setup.shoal_seeder(Kind::Chromium);
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&tr={}",
        setup.video["infoHash"].as_str().unwrap(),
        setup.tracker()
    );
    let leecher = setup.webtorrent_page(Kind::Chromium);
    let mut times = Vec::new();
    for visitor in 1..=VISITORS {
        let leeched = leech(&leecher, &seeder, &magnet, &setup.tracker());
        assert_got_the_file_from_shoal(&setup, &seeder, &leeched);
        times.push(leeched["ms"].as_f64().unwrap_or(f64::NAN) as u64);
        println!(
            "visitor {visitor}: {} ms from add(magnet) to 'done'",
            times.last().unwrap()
        );
    }
    let uploaded = seeder
        .execute("return window.shoalTorrent.stats().uploaded;", vec![])
        .unwrap();
    assert!(
        uploaded.as_u64().unwrap() >= VISITORS * setup.size(),
        "Shoal's client uploaded {uploaded} bytes for {VISITORS} visitors"
    );
    assert_no_page_errors(&[&seeder, &leecher]);
}

#[test]
fn shoal_in_chromium_downloads_from_webtorrent_in_chromium() {
    shoal_downloads_from_webtorrent(Kind::Chromium, Kind::Chromium);
}

#[test]
fn shoal_in_firefox_downloads_from_webtorrent_in_chromium() {
    shoal_downloads_from_webtorrent(Kind::Chromium, Kind::Firefox);
}

#[test]
fn webtorrent_in_chromium_downloads_from_shoal_in_chromium() {
    webtorrent_downloads_from_shoal(Kind::Chromium, Kind::Chromium);
}

#[test]
fn webtorrent_in_chromium_downloads_from_shoal_in_firefox() {
    webtorrent_downloads_from_shoal(Kind::Firefox, Kind::Chromium);
}

#[test]
fn shoal_in_chromium_downloads_from_webtorrent_in_firefox() {
    shoal_downloads_from_webtorrent(Kind::Firefox, Kind::Chromium);
}

#[test]
fn webtorrent_in_firefox_downloads_from_shoal_in_chromium() {
    webtorrent_downloads_from_shoal(Kind::Chromium, Kind::Firefox);
}

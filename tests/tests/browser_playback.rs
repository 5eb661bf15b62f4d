//! A viewer streams a pod's video with Shoal's client in a real browser: the `<video>` element's
//! time advances and frames are decoded, a seek to 80% plays from there, and the bytes come
//! through the engine (verified pieces), not from a plain `src`.
//!
//! Run inside a private network namespace holding only loopback (`./shoal test` does), so that
//! WebRTC finds loopback candidates.

use std::time::Duration;

use client_core::media::plan::{Probe, ProbeStep};
use serde_json::Value;
use shoal_tests::browser::{Browser, Kind};
use shoal_tests::media;
use shoal_tests::pod::TestPod;

/// A 20 s clip: keyframes every 2 s, uploaded to the pod (which makes it fragmented MP4).
fn pod_with_clip() -> (TestPod, Value, tempfile::TempDir) {
    let pod = TestPod::start();
    let dir = tempfile::tempdir().unwrap();
    // At a real video's bitrate: the plain test card (200 kbit/s) is so small that a
    // viewer's start-up fetch from the WebSeed is the whole file, leaving peers nothing.
    let clip = media::noisy_clip(dir.path(), 20, 1);
    let video = pod.upload_file(&clip, "Streaming test clip");
    (pod, video, dir)
}

fn open_player(browser: &Browser, pod: &TestPod, video: &Value) {
    let url = format!(
        "{}/client-example.html?id={}",
        pod.url(),
        video["torrentUrl"].as_str().unwrap()
    );
    browser.goto(&url).unwrap();
}

/// Opens the example page without a torrent and waits until its client is ready
/// (`window.shoalClient`, `window.shoalPlay`).
fn open_client(browser: &Browser, pod: &TestPod) {
    browser
        .goto(&format!("{}/client-example.html", pod.url()))
        .unwrap();
    wait_for(
        browser,
        "the client",
        "return typeof window.shoalPlay === 'function';",
        Duration::from_secs(30),
    );
}

/// What a failed wait reports about the player page.
const PLAYER_STATE: &str = "const v = document.getElementById('player'); return {t: v.currentTime, rs: v.readyState, err: v.error && v.error.message, status: document.getElementById('status').textContent, stats: window.shoalTorrent && window.shoalTorrent.stats(), errors: window.__shoalErrors};";

/// Polls a JS expression until it is truthy; returns its value.
fn wait_for(browser: &Browser, what: &str, script: &str, timeout: Duration) -> Value {
    browser.wait_until(what, script, timeout, PLAYER_STATE, &[])
}

const DECODED_FRAMES: &str = "const v = document.getElementById('player'); \
    const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0; \
    return q > 0 ? q : (v.mozPaintedFrames || 0);";

/// Opens the player on `video`, checks that time advances with frames decoded (for video),
/// seeks to 80% and checks that playback resumes there. Returns the torrent's stats.
fn play_and_seek(browser: &Browser, pod: &TestPod, video: &Value) -> Value {
    open_player(browser, pod, video);
    wait_for(
        browser,
        "playback to start",
        "const v = document.getElementById('player'); if (v.paused) v.play().catch(() => {}); return v.currentTime > 1.0;",
        Duration::from_secs(60),
    );
    if !video["isAudio"].as_bool().unwrap_or(false) {
        let frames = wait_for(
            browser,
            "decoded frames",
            DECODED_FRAMES,
            Duration::from_secs(10),
        );
        assert!(frames.as_f64().unwrap() > 0.0);
    }
    let duration = video["duration"].as_f64().unwrap();
    let target = duration * 0.8;
    browser
        .execute(
            "document.getElementById('player').currentTime = arguments[0]; return true;",
            vec![serde_json::json!(target)],
        )
        .unwrap();
    wait_for(
        browser,
        "playback after the seek",
        &format!("const v = document.getElementById('player'); if (v.paused) v.play().catch(() => {{}}); return !v.seeking && v.currentTime > {};", target + 0.5),
        Duration::from_secs(60),
    );
    browser.torrent_stats().unwrap()
}

fn plays_and_seeks(kind: Kind) {
    let (pod, video, _dir) = pod_with_clip();
    let browser = Browser::launch(kind).unwrap();
    let stats = play_and_seek(&browser, &pod, &video);
    // The bytes went through the engine (verified pieces from the WebSeed here: no peers).
    assert!(
        stats["downloaded_from_webseeds"].as_u64().unwrap() > 0,
        "{stats}"
    );
    assert!(stats["pieces_verified"].as_u64().unwrap() > 0, "{stats}");
    browser
        .screenshot(&shoal_tests::output_dir().join(format!("client-example-{}.png", kind.name())))
        .unwrap();
    let errors = browser.page_errors().unwrap();
    assert!(errors.is_empty(), "{}: {errors:?}", kind.name());
}

/// The first frame does not wait for its whole fragment: the WebSeed here answers only the
/// requests for the first three quarters of the first fragment (2 s of a 4 Mbit/s clip, about
/// 1 MB) and never the rest, yet the element gets a frame to show. Firefox only: Chromium's
/// MediaSource takes no sample of an `mdat` before the whole of it is appended (measured: it
/// stays at HAVE_METADATA with three quarters of the fragment in).
#[test]
fn the_first_frame_does_not_wait_for_its_fragment_in_firefox() {
    let kind = Kind::Firefox;
    let pod = TestPod::start();
    let dir = tempfile::tempdir().unwrap();
    let clip = media::noisy_clip(dir.path(), 6, 4);
    let video = pod.upload_file(&clip, "Partial fragment clip");
    let fragment = first_fragment(&shoal_tests::get_bytes(video["fileUrl"].as_str().unwrap()));
    let limit = fragment.start + (fragment.end - fragment.start) * 3 / 4;

    let browser = Browser::launch(kind).unwrap();
    open_client(&browser, &pod);
    browser
        .execute(
            "const [torrentUrl, limit] = arguments;
             const realFetch = window.fetch.bind(window);
             // Range requests from `limit` on never get an answer.
             window.fetch = (input, init) => {
               const headers = input instanceof Request ? input.headers : new Headers((init && init.headers) || {});
               const range = /bytes=(\\d+)-/.exec(headers.get('range') || '');
               return range && Number(range[1]) >= limit ? new Promise(() => {}) : realFetch(input, init);
             };
             window.shoalClient.add(torrentUrl, {}).then((torrent) => {
               window.shoalTorrent = torrent;
               torrent.streamTo(document.getElementById('player'), {});
             });",
            vec![video["torrentUrl"].clone(), limit.into()],
        )
        .unwrap();
    wait_for(
        &browser,
        "a frame to show (HAVE_CURRENT_DATA)",
        "return document.getElementById('player').readyState >= 2;",
        Duration::from_secs(30),
    );
    let stats = browser.torrent_stats().unwrap();
    assert!(
        stats["downloaded_from_webseeds"].as_u64().unwrap() < fragment.end,
        "the whole first fragment ({fragment:?}) came through the gate: {stats}"
    );
    let errors = browser.page_errors().unwrap();
    assert!(errors.is_empty(), "{}: {errors:?}", kind.name());
}

/// The byte range of the first media fragment of a pod's fragmented MP4, by its index.
fn first_fragment(file: &[u8]) -> std::ops::Range<u64> {
    let mut probe = Probe::new(file.len() as u64);
    loop {
        match probe.poll(&|_| true) {
            ProbeStep::Need(range) => {
                let end = range.end.min(file.len() as u64);
                probe.feed(range.start, &file[range.start as usize..end as usize]);
            }
            ProbeStep::Ready(plan) => {
                let index = plan.index().expect("the pod's MP4 has a fragment index");
                return index.get(0).expect("a first fragment").byte_range.clone();
            }
        }
    }
}

/// Media that did not come from a pod's normaliser: the pod keeps uploads as they are here,
/// so the client meets a progressive MP4 (remuxed into fragments in wasm, one tail fetch for
/// its moov) and a WebM with its cues at the end (appended in order).
fn plays_foreign_media(kind: Kind) {
    let pod = TestPod::start_with(|c| {
        c.bundle = Some(shoal_tests::workspace_root().join("www/dist"));
        c.keep_uploads_as_is = true;
    });
    let dir = tempfile::tempdir().unwrap();
    let mp4 = media::progressive_mp4(dir.path(), "camera.mp4", 20);
    let video = pod.upload_file(&mp4, "Straight from the camera");
    assert!(
        video["processing"].as_str().unwrap().contains("kept"),
        "{video}"
    );
    let browser = Browser::launch(kind).unwrap();
    let stats = play_and_seek(&browser, &pod, &video);
    assert!(stats["pieces_verified"].as_u64().unwrap() > 0, "{stats}");
    // Through MediaSource (a blob: URL), not handed to the element as a plain WebSeed URL.
    let src = browser
        .execute("return document.getElementById('player').src;", vec![])
        .unwrap();
    assert!(
        src.as_str().unwrap_or("").starts_with("blob:"),
        "the remux path was not taken: {src}"
    );

    let webm = dir.path().join("clip.webm");
    media::ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=500",
            "-t",
            "12",
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-b:v",
            "300k",
            "-g",
            "50",
            "-c:a",
            "libvorbis",
            "-shortest",
        ],
        &webm,
    );
    let video = pod.upload_file(&webm, "A WebM clip");
    assert_eq!(video["mimeType"], "video/webm");
    open_player(&browser, &pod, &video);
    wait_for(
        &browser,
        "WebM playback",
        "const v = document.getElementById('player'); if (v.paused) v.play().catch(() => {}); return v.currentTime > 1.0;",
        Duration::from_secs(60),
    );
    let frames = wait_for(
        &browser,
        "decoded WebM frames",
        DECODED_FRAMES,
        Duration::from_secs(10),
    );
    assert!(frames.as_f64().unwrap() > 0.0);
    let src = browser
        .execute("return document.getElementById('player').src;", vec![])
        .unwrap();
    assert!(
        src.as_str().unwrap_or("").starts_with("blob:"),
        "WebM did not go through MediaSource: {src}"
    );
    let errors = browser.page_errors().unwrap();
    assert!(errors.is_empty(), "{}: {errors:?}", kind.name());
}

#[test]
fn foreign_media_plays_in_chromium() {
    plays_foreign_media(Kind::Chromium);
}

#[test]
fn foreign_media_plays_in_firefox() {
    plays_foreign_media(Kind::Firefox);
}

/// A podcast uploaded as MP3: the pod's AAC rendition streams through MediaSource in both
/// browsers (Firefox has no MP3 in MediaSource), and seeks.
fn podcast_plays(kind: Kind) {
    let pod = TestPod::start();
    let dir = tempfile::tempdir().unwrap();
    let mp3 = media::mp3(dir.path(), "episode.mp3", 20);
    let episode = pod.upload_file(&mp3, "Episode one");
    assert_eq!(episode["mimeType"], "audio/mp4");
    let browser = Browser::launch(kind).unwrap();
    let stats = play_and_seek(&browser, &pod, &episode);
    assert!(stats["pieces_verified"].as_u64().unwrap() > 0, "{stats}");
    let errors = browser.page_errors().unwrap();
    assert!(errors.is_empty(), "{}: {errors:?}", kind.name());
}

#[test]
fn a_podcast_plays_in_chromium() {
    podcast_plays(Kind::Chromium);
}

#[test]
fn a_podcast_plays_in_firefox() {
    podcast_plays(Kind::Firefox);
}

#[test]
fn a_viewer_plays_and_seeks_in_chromium() {
    plays_and_seeks(Kind::Chromium);
}

#[test]
fn a_viewer_plays_and_seeks_in_firefox() {
    plays_and_seeks(Kind::Firefox);
}

/// Two viewers of one video: the second gets a measurable share of its bytes from the first
/// over WebRTC (through the pod's tracker), and every piece verifies.
fn two_viewers(first: Kind, second: Kind) {
    let (pod, video, _dir) = pod_with_clip();
    let a = Browser::launch(first).unwrap();
    open_player(&a, &pod, &video);
    wait_for(
        &a,
        "the first viewer to hold every piece",
        "const t = window.shoalTorrent; return t && t.stats().done;",
        Duration::from_secs(90),
    );
    let b = Browser::launch(second).unwrap();
    open_player(&b, &pod, &video);
    wait_for(
        &b,
        "the second viewer to hold every piece",
        "const t = window.shoalTorrent; return t && t.stats().done;",
        Duration::from_secs(90),
    );
    wait_for(
        &b,
        "the second viewer to play",
        "const v = document.getElementById('player'); if (v.paused) v.play().catch(() => {}); return v.currentTime > 0.5;",
        Duration::from_secs(30),
    );
    let stats = b.torrent_stats().unwrap();
    let from_peers = stats["downloaded_from_peers"].as_u64().unwrap();
    let from_seed = stats["downloaded_from_webseeds"].as_u64().unwrap();
    let total = stats["bytes_total"].as_u64().unwrap();
    println!(
        "{} → {}: {from_peers} bytes from the peer, {from_seed} from the WebSeed ({:.0}% from peers)",
        first.name(),
        second.name(),
        100.0 * from_peers as f64 / total as f64
    );
    assert!(from_peers > total / 10, "too little from the peer: {stats}");
    assert_eq!(stats["hash_failures"], 0, "{stats}");
    let uploaded = a
        .execute("return window.shoalTorrent.stats().uploaded;", vec![])
        .unwrap();
    assert!(
        uploaded.as_u64().unwrap() >= from_peers,
        "the first viewer's upload count: {uploaded}"
    );
    for browser in [&a, &b] {
        let errors = browser.page_errors().unwrap();
        assert!(errors.is_empty(), "{}: {errors:?}", browser.kind.name());
    }
}

#[test]
fn two_chromium_viewers_share() {
    two_viewers(Kind::Chromium, Kind::Chromium);
}

#[test]
fn chromium_and_firefox_viewers_share() {
    two_viewers(Kind::Chromium, Kind::Firefox);
}

/// A tracker that never answers, listed before the pod's: playback starts and the two viewers
/// still find each other through the live tracker (announces go to every tracker at once).
#[test]
fn a_dead_tracker_delays_nothing() {
    let (pod, video, _dir) = pod_with_clip();
    // A port that refuses connections, and one that accepts and never speaks.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!(
        "ws://127.0.0.1:{}/dead,ws://{}/silent",
        shoal_tests::free_port(),
        silent.local_addr().unwrap()
    );
    let open = |browser: &Browser| {
        let url = format!(
            "{}/client-example.html?announce={}&id={}",
            pod.url(),
            dead,
            video["torrentUrl"].as_str().unwrap()
        );
        browser.goto(&url).unwrap();
    };
    let a = Browser::launch(Kind::Chromium).unwrap();
    open(&a);
    wait_for(
        &a,
        "playback despite the dead trackers",
        "const v = document.getElementById('player'); if (v.paused) v.play().catch(() => {}); return v.currentTime > 1.0;",
        Duration::from_secs(60),
    );
    wait_for(
        &a,
        "every piece",
        "return window.shoalTorrent.stats().done;",
        Duration::from_secs(60),
    );
    let b = Browser::launch(Kind::Chromium).unwrap();
    open(&b);
    wait_for(
        &b,
        "a peer connection through the live tracker",
        "return window.shoalTorrent && window.shoalTorrent.stats().downloaded_from_peers > 0;",
        Duration::from_secs(60),
    );
}

/// Has the example page play `id` (a JS expression), which must fail: returns the error the
/// page shows, after checking that the `<video>` that `client.stream` had made ready is left
/// empty (no MediaSource left loading). The page is ready for the next attempt.
fn play_expecting_error(browser: &Browser, id: &str) -> String {
    browser
        .execute(&format!("window.shoalPlay({id}); return true;"), vec![])
        .unwrap();
    let status = wait_for(
        browser,
        "the error on the page",
        "const s = document.getElementById('status'); return s.className === 'error' && s.textContent;",
        Duration::from_secs(30),
    );
    let src = browser
        .execute(
            "return document.getElementById('player').getAttribute('src');",
            vec![],
        )
        .unwrap();
    assert!(src.is_null(), "the player still has a source: {src}");
    browser
        .execute(
            "document.getElementById('status').className = ''; return true;",
            vec![],
        )
        .unwrap();
    status.as_str().unwrap().to_owned()
}

/// A torrent that cannot be added (its URL answers 404) is an error the page shows, and the
/// player is left empty.
#[test]
fn a_torrent_that_cannot_be_added_leaves_the_player_empty() {
    let pod = TestPod::start();
    let browser = Browser::launch(Kind::Chromium).unwrap();
    open_client(&browser, &pod);
    let missing = format!("{}/static/torrents/missing.torrent", pod.url());
    let status = play_expecting_error(&browser, &serde_json::to_string(&missing).unwrap());
    assert!(
        status.contains("404"),
        "the page's error does not say what went wrong: {status}"
    );
}

/// A page may fetch the .torrent itself (in its `<head>`, while the client loads) and hand
/// `stream` the promise: a failed fetch and an HTTP error are errors that say so, the player is
/// left empty, and a good fetch plays.
#[test]
fn a_torrent_fetched_by_the_page_plays_and_its_fetch_errors_are_clear() {
    let (pod, video, _dir) = pod_with_clip();
    let browser = Browser::launch(Kind::Chromium).unwrap();
    open_client(&browser, &pod);
    let missing = play_expecting_error(&browser, "fetch('/static/torrents/missing.torrent')");
    assert!(missing.contains("404"), "{missing}");
    // Nothing listens on port 9 (discard): the fetch itself rejects.
    let unreachable = play_expecting_error(&browser, "fetch('http://127.0.0.1:9/x.torrent')");
    assert!(
        unreachable.contains("cannot fetch the .torrent"),
        "{unreachable}"
    );

    browser
        .execute(
            "window.shoalPlay(fetch(arguments[0])); return true;",
            vec![video["torrentUrl"].clone()],
        )
        .unwrap();
    wait_for(
        &browser,
        "playback of the torrent the page fetched",
        "const v = document.getElementById('player'); if (v.paused) v.play().catch(() => {}); return v.currentTime > 1;",
        Duration::from_secs(60),
    );
}

/// A seeder whose data channel flips bytes in every block it sends: the viewer's hash checks
/// catch it, the peer is dropped, and the video still plays with every piece verified.
#[test]
fn a_corrupting_peer_is_dropped_and_the_video_still_plays() {
    let (pod, video, _dir) = pod_with_clip();
    let bad = Browser::launch(Kind::Chromium).unwrap();
    open_client(&bad, &pod);
    // Corrupt every large message (piece payloads) this page sends over WebRTC.
    bad.execute(
        "const send = RTCDataChannel.prototype.send; \
         RTCDataChannel.prototype.send = function (data) { \
           if (data && data.byteLength > 1024) { const c = new Uint8Array(data); c[c.length - 1] ^= 0xff; return send.call(this, c); } \
           return send.call(this, data); }; \
         window.shoalPlay(arguments[0]); return true;",
        vec![video["torrentUrl"].clone()],
    )
    .unwrap();
    wait_for(
        &bad,
        "the bad seeder to hold every piece",
        "const t = window.shoalTorrent; return t && t.stats().done;",
        Duration::from_secs(90),
    );

    let viewer = Browser::launch(Kind::Chromium).unwrap();
    open_player(&viewer, &pod, &video);
    wait_for(
        &viewer,
        "every piece, verified, despite the corrupting peer",
        "const t = window.shoalTorrent; return t && t.stats().done;",
        Duration::from_secs(90),
    );
    wait_for(
        &viewer,
        "playback",
        "const v = document.getElementById('player'); if (v.paused) v.play().catch(() => {}); return v.currentTime > 1.0;",
        Duration::from_secs(30),
    );
    let stats = viewer.torrent_stats().unwrap();
    assert!(
        stats["hash_failures"].as_u64().unwrap() > 0,
        "the corruption was never noticed: {stats}"
    );
    assert!(
        stats["peers_banned"].as_u64().unwrap() >= 1,
        "the corrupting peer was not dropped: {stats}"
    );
}

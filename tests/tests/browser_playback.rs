//! A viewer streams a pod's video with Shoal's client in a real browser: the `<video>` element's
//! time advances and frames are decoded, a seek to 80% plays from there, and the bytes come
//! through the engine (verified pieces), not from a plain `src`.
//!
//! Run inside a private network namespace holding only loopback (`./shoal test` does), so that
//! WebRTC finds loopback candidates.

use std::time::{Duration, Instant};

use serde_json::Value;
use shoal_tests::browser::{Browser, Kind};
use shoal_tests::media;
use shoal_tests::pod::TestPod;

/// A 20 s clip: keyframes every 2 s, uploaded to the pod (which makes it fragmented MP4).
fn pod_with_clip() -> (TestPod, Value, tempfile::TempDir) {
    let pod = TestPod::start();
    let dir = tempfile::tempdir().unwrap();
    let clip = media::progressive_mp4(dir.path(), "clip.mp4", 20);
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

/// Polls a JS expression until it is truthy; returns its last value.
fn wait_for(browser: &Browser, what: &str, script: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let value = browser.execute(script, vec![]).unwrap();
        let truthy = match &value {
            Value::Bool(b) => *b,
            Value::Null => false,
            Value::Number(n) => n.as_f64().unwrap_or(0.0) != 0.0,
            _ => true,
        };
        if truthy {
            return value;
        }
        if Instant::now() > deadline {
            let state = browser
                .execute(
                    "const v = document.getElementById('player'); return {t: v.currentTime, rs: v.readyState, err: v.error && v.error.message, status: document.getElementById('status').textContent, stats: window.shoalTorrent && window.shoalTorrent.stats(), errors: window.__shoalErrors};",
                    vec![],
                )
                .unwrap_or(Value::Null);
            panic!(
                "{}: timed out waiting for {what}; page state: {state}",
                browser.kind.name()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

const DECODED_FRAMES: &str = "const v = document.getElementById('player'); \
    const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0; \
    return q > 0 ? q : (v.mozPaintedFrames || 0);";

fn plays_and_seeks(kind: Kind) {
    let (pod, video, _dir) = pod_with_clip();
    let browser = Browser::launch(kind).unwrap();
    open_player(&browser, &pod, &video);
    wait_for(
        &browser,
        "playback to start",
        "const v = document.getElementById('player'); if (v.paused) v.play().catch(() => {}); return v.currentTime > 1.0;",
        Duration::from_secs(60),
    );
    let frames = wait_for(
        &browser,
        "decoded frames",
        DECODED_FRAMES,
        Duration::from_secs(10),
    );
    assert!(frames.as_f64().unwrap() > 0.0);

    // Seek to 80%: playback resumes from there.
    let duration = video["duration"].as_f64().unwrap();
    let target = duration * 0.8;
    browser
        .execute(
            "document.getElementById('player').currentTime = arguments[0]; return true;",
            vec![serde_json::json!(target)],
        )
        .unwrap();
    wait_for(
        &browser,
        "playback after the seek",
        &format!(
            "const v = document.getElementById('player'); return !v.seeking && v.currentTime > {};",
            target + 0.5
        ),
        Duration::from_secs(60),
    );

    // The bytes went through the engine (verified pieces from the WebSeed here: no peers).
    let stats = browser
        .execute("return window.shoalTorrent.stats();", vec![])
        .unwrap();
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

#[test]
fn a_viewer_plays_and_seeks_in_chromium() {
    plays_and_seeks(Kind::Chromium);
}

#[test]
fn a_viewer_plays_and_seeks_in_firefox() {
    plays_and_seeks(Kind::Firefox);
}

//! The pod's web app end to end, as a person uses it, in real Chromium and Firefox against a real
//! pod: upload a clip through the form, find it by search, watch it (the player streams through
//! client-core and the P2P panel counts the pod's bytes), switch P2P off and find the choice
//! remembered, see it on the home page, and play it embedded in a page of another origin.
//! Every page is checked for console errors and for fitting a 375 px phone and a 1280 px desktop
//! without a horizontal scrollbar; screenshots land in tests/output/.
//!
//! Run inside a private network namespace holding only loopback (`./shoal test` does), so that
//! WebRTC finds loopback candidates.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shoal_tests::browser::{Browser, Kind};
use shoal_tests::media;
use shoal_tests::pod::TestPod;

const TITLE: &str = "harbour seals at dawn";

/// What a failed wait reports about an app page.
const APP_STATE: &str = "const v = document.getElementById('player'); \
     const p = document.getElementById('p2p-panel'); \
     return {url: location.href, \
             player: v && {t: v.currentTime, rs: v.readyState, paused: v.paused, err: v.error && v.error.message}, \
             panel: p && p.dataset, \
             main: (document.querySelector('main') || document.body).innerText.slice(0, 600), \
             errors: window.__shoalErrors};";

/// Polls a JS snippet (a function body) until it returns something truthy; returns that.
fn wait_for(browser: &Browser, what: &str, script: &str, timeout: Duration) -> Value {
    browser.wait_until(what, script, timeout, APP_STATE, &[])
}

fn assert_no_page_errors(browser: &Browser, page: &str) {
    browser.assert_no_errors(&format!("the {page} page"), None);
}

/// A same-origin page holding the app in a 375 px wide frame, for browsers whose window will not
/// shrink that far (headless Firefox stops at 500 px): `/phone.html#/upload`.
const PHONE_PAGE: &str = "<!doctype html><meta charset=utf-8><title>375 px</title>\
    <style>body{margin:0;background:#8a949b}\
    iframe{display:block;width:375px;height:860px;border:0;background:#fff}</style>\
    <iframe id=phone></iframe>\
    <script>document.getElementById('phone').src = location.hash.slice(1);</script>";

/// Loads `path` at 375 px and at 1280 px wide: it has no horizontal scrollbar and no console
/// errors at either; saves a screenshot of each. Ends on the page loaded afresh at 1280 px.
fn check_widths(browser: &Browser, pod: &TestPod, path: &str, ready_css: &str, page: &str) {
    let secs = Duration::from_secs;
    for width in [375u32, 1280] {
        browser.set_window_size(width, 900).unwrap();
        let window_fits = browser
            .execute("return window.innerWidth;", vec![])
            .unwrap()
            .as_u64()
            .unwrap()
            <= width as u64;
        if window_fits {
            browser.goto(&format!("{}{path}", pod.url())).unwrap();
        } else {
            browser
                .goto(&format!("{}/phone.html#{path}", pod.url()))
                .unwrap();
            browser.switch_to_frame("#phone").unwrap();
        }
        browser.wait_for_element(ready_css, secs(30)).unwrap();
        // Measured after two frames, once the layout has settled.
        let sizes = browser
            .execute_async(
                "const done = arguments[arguments.length - 1]; \
                 requestAnimationFrame(() => requestAnimationFrame(() => done({ \
                   inner: window.innerWidth, scroll: document.documentElement.scrollWidth })));",
                vec![],
            )
            .unwrap();
        let inner = sizes["inner"].as_u64().unwrap();
        let scroll = sizes["scroll"].as_u64().unwrap();
        assert_eq!(
            inner,
            width as u64,
            "{}: viewport width",
            browser.kind.name()
        );
        assert!(
            scroll <= inner,
            "{}: the {page} page scrolls sideways at {width} px (scrollWidth {scroll} > {inner})",
            browser.kind.name()
        );
        assert_no_page_errors(browser, &format!("{page} ({width} px)"));
        if !window_fits {
            browser.switch_to_parent_frame().unwrap();
        }
        let shot = shoal_tests::output_dir()
            .join(format!("ui-{page}-{width}-{}.png", browser.kind.name()));
        browser.screenshot(&shot).unwrap();
    }
}

const PLAYS: &str = "const v = document.getElementById('player'); \
    if (!v) return false; if (v.paused) v.play().catch(() => {}); return v.currentTime > 1.0;";
const BYTES_FROM_POD: &str = "const p = document.getElementById('p2p-panel'); \
    return p ? Number(p.dataset.fromPod) : 0;";

fn the_web_app_in(kind: Kind) {
    let pod = TestPod::start_with_pages(&[("phone.html", PHONE_PAGE.as_bytes())]);
    let media_dir = tempfile::tempdir().unwrap();
    let clip = media::progressive_mp4(media_dir.path(), "harbour-seals.mp4", 12);
    let browser = Browser::launch(kind).unwrap();
    browser.set_window_size(1280, 900).unwrap();
    let secs = Duration::from_secs;

    // Upload through the form: the title starts from the file name.
    check_widths(&browser, &pod, "/upload", "#upload-form", "upload");
    browser
        .send_keys("#upload-file", &clip.display().to_string())
        .unwrap();
    browser
        .wait_for_text("#upload-file-info", "harbour-seals.mp4", secs(5))
        .unwrap();
    let prefilled = browser
        .execute(
            "return document.getElementById('upload-name').value;",
            vec![],
        )
        .unwrap();
    assert_eq!(prefilled, json!("harbour seals"));
    browser.send_keys("#upload-name", " at dawn").unwrap();
    browser
        .send_keys(
            "#upload-description",
            "Seals resting on the rocks at low tide.",
        )
        .unwrap();
    browser.send_keys("#upload-tags", "seals, sea").unwrap();
    browser
        .send_keys("#upload-token", &pod.admin_token())
        .unwrap();
    browser
        .screenshot(
            &shoal_tests::output_dir().join(format!("ui-upload-filled-{}.png", kind.name())),
        )
        .unwrap();
    assert_no_page_errors(&browser, "upload");
    browser.click("#upload-submit").unwrap();
    let path = wait_for(
        &browser,
        "the watch page after the upload",
        "return location.pathname.startsWith('/w/') ? location.pathname : '';",
        secs(90),
    );
    let uuid = path.as_str().unwrap().trim_start_matches("/w/").to_owned();
    let video = pod.get_json(&format!("/api/v1/videos/{uuid}"));
    assert_eq!(video["name"], json!(TITLE), "{video}");
    assert_eq!(video["tags"], json!(["seals", "sea"]), "{video}");
    let token_kept = browser
        .execute("return localStorage.getItem('shoal.adminToken');", vec![])
        .unwrap();
    assert_eq!(token_kept, json!(pod.admin_token()));

    // A file the pod refuses: the form shows the pod's own sentence, and the token it kept is
    // not asked for again.
    let notes = media_dir.path().join("notes.txt");
    std::fs::write(&notes, "not a video at all\n".repeat(100)).unwrap();
    let (status, refusal) = pod.upload(shoal_tests::pod::Form::new().text("name", "notes").file(
        "videofile",
        "notes.txt",
        &std::fs::read(&notes).unwrap(),
    ));
    assert!(status >= 400, "the pod took a text file: {refusal}");
    // The sentence without its details in brackets (they name a temporary file).
    let message = refusal["error"]["message"].as_str().unwrap();
    let reason = message.split(" (").next().unwrap().to_owned();
    browser.goto(&format!("{}/upload", pod.url())).unwrap();
    browser.wait_for_element("#upload-form", secs(30)).unwrap();
    let asks_token = browser
        .execute("return !!document.getElementById('upload-token');", vec![])
        .unwrap();
    assert_eq!(
        asks_token,
        json!(false),
        "the admin token was asked for again"
    );
    browser
        .send_keys("#upload-file", &notes.display().to_string())
        .unwrap();
    browser.click("#upload-submit").unwrap();
    browser
        .wait_for_text("#upload-error", &reason, secs(30))
        .unwrap();
    browser
        .screenshot(&shoal_tests::output_dir().join(format!("ui-upload-error-{}.png", kind.name())))
        .unwrap();
    browser.assert_no_errors(
        "the upload page (refused)",
        Some("/api/v1/videos/upload - Failed to load resource: the server responded with a status of 422"),
    );

    // Search as you type: the URL follows the box, the card leads to the watch page.
    browser.goto(&format!("{}/search", pod.url())).unwrap();
    browser.send_keys("#search-input", "seals").unwrap();
    browser
        .wait_for_text(".video-card", TITLE, secs(20))
        .unwrap();
    browser
        .wait_for_text("#search-summary", "1 result", secs(5))
        .unwrap();
    wait_for(
        &browser,
        "the search in the address",
        "return location.search.includes('search=seals');",
        secs(5),
    );
    assert_no_page_errors(&browser, "search");
    check_widths(
        &browser,
        &pod,
        "/search?search=seals",
        ".video-card",
        "search",
    );
    browser.click(".video-card").unwrap();

    // Watch: the player streams, the P2P panel counts the pod's bytes, the view is counted.
    browser
        .wait_for_text("#video-title", TITLE, secs(30))
        .unwrap();
    wait_for(&browser, "playback on the watch page", PLAYS, secs(60));
    wait_for(
        &browser,
        "bytes from the pod in the P2P panel",
        BYTES_FROM_POD,
        secs(20),
    );
    browser
        .wait_for_text("#peer-share", "% from peers", secs(5))
        .unwrap();
    browser
        .wait_for_text(".piece-legend", "Held", secs(5))
        .unwrap();
    let held = wait_for(
        &browser,
        "held pieces in the piece map",
        "const m = document.getElementById('piece-map'); \
         const n = /(\\d+) of (\\d+) pieces held/.exec(m.getAttribute('aria-label')); \
         return n && Number(n[1]) > 0 ? [Number(n[1]), Number(n[2])] : null;",
        secs(20),
    );
    assert!(held[1].as_u64().unwrap() >= held[0].as_u64().unwrap());
    let embed_code = browser
        .execute(
            "return document.getElementById('share-embed').value;",
            vec![],
        )
        .unwrap();
    assert!(
        embed_code
            .as_str()
            .unwrap()
            .contains(&format!("/embed/{uuid}\"")),
        "{embed_code}"
    );
    let deadline = Instant::now() + secs(10);
    while pod.get_json(&format!("/api/v1/videos/{uuid}"))["views"] == json!(0) {
        assert!(Instant::now() < deadline, "the view was never counted");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_no_page_errors(&browser, "watch");
    check_widths(&browser, &pod, &format!("/w/{uuid}"), "#p2p-panel", "watch");
    wait_for(&browser, "playback on the watch page", PLAYS, secs(60));

    // P2P off: remembered across a reload, and the pod alone still plays the video.
    browser.click("#p2p-toggle").unwrap();
    let stored = browser
        .execute("return localStorage.getItem('shoal.p2p');", vec![])
        .unwrap();
    assert_eq!(stored, json!("false"));
    browser.goto(&format!("{}/w/{uuid}", pod.url())).unwrap();
    browser
        .wait_for_text("#video-title", TITLE, secs(30))
        .unwrap();
    let checked = browser
        .execute(
            "return document.getElementById('p2p-toggle').checked;",
            vec![],
        )
        .unwrap();
    assert_eq!(checked, json!(false), "the P2P choice was not remembered");
    wait_for(&browser, "playback with P2P off", PLAYS, secs(60));
    wait_for(
        &browser,
        "bytes from the pod with P2P off",
        BYTES_FROM_POD,
        secs(20),
    );
    browser.click("#p2p-toggle").unwrap();
    assert_no_page_errors(&browser, "watch (P2P switched)");

    // Home: the video is recent, and popular now that it has a view.
    browser.goto(&format!("{}/", pod.url())).unwrap();
    browser
        .wait_for_text("#recent .video-card", TITLE, secs(30))
        .unwrap();
    browser
        .wait_for_text("#popular .video-card", TITLE, secs(10))
        .unwrap();
    assert_no_page_errors(&browser, "home");
    check_widths(&browser, &pod, "/", "#recent .video-card", "home");

    // The embed route alone fits a phone and a desktop too.
    check_widths(
        &browser,
        &pod,
        &format!("/embed/{uuid}?muted=1"),
        "#player",
        "embed",
    );

    // Embedded in a page of another origin (a second pod), with autoplay, muted and a start time.
    let host_page = format!(
        "<!doctype html><meta charset=utf-8><title>Embedding Shoal</title>\
         <script src=\"/page-errors.js\"></script>\
         <h1>A blog post</h1>\
         <iframe id=\"shoal-embed\" src=\"{}/embed/{uuid}?autoplay=1&muted=1&start=4\" \
         width=\"560\" height=\"315\" style=\"border:0;max-width:100%\" \
         allow=\"autoplay; fullscreen\" allowfullscreen></iframe>",
        pod.url()
    );
    let host = TestPod::start_with_pages(&[("embed-host.html", host_page.as_bytes())]);
    assert_ne!(host.url(), pod.url());
    browser
        .goto(&format!("{}/embed-host.html", host.url()))
        .unwrap();
    browser.switch_to_frame("#shoal-embed").unwrap();
    wait_for(
        &browser,
        "the embedded player to autoplay from 4 s",
        "const v = document.getElementById('player'); \
         return !!v && v.muted && !v.paused && v.currentTime > 4.5;",
        secs(60),
    );
    assert_no_page_errors(&browser, "embed (in an iframe)");
    browser.switch_to_parent_frame().unwrap();
    browser
        .screenshot(&shoal_tests::output_dir().join(format!("ui-embedded-{}.png", kind.name())))
        .unwrap();
    assert_no_page_errors(&browser, "embedding page");
}

#[test]
fn the_web_app_in_chromium() {
    the_web_app_in(Kind::Chromium);
}

#[test]
fn the_web_app_in_firefox() {
    the_web_app_in(Kind::Firefox);
}

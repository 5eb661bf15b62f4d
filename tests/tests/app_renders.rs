//! The whole chain from source to a page: the pod serves the built bundle, a real headless
//! browser runs the wasm app, the app talks to the pod's API, and nothing errors on the console.

use std::time::Duration;

use shoal_tests::browser::{Browser, Kind};
use shoal_tests::pod::TestPod;

fn app_renders_in(kind: Kind) {
    let pod = TestPod::start();
    let version = pod.get_json("/api/v1/health")["version"]
        .as_str()
        .expect("health has a version")
        .to_owned();
    let browser = Browser::launch(kind).expect("browser starts");
    browser.goto(&format!("{}/", pod.url())).unwrap();
    // Only the running wasm app writes this: it fetched /api/v1/health and rendered the answer.
    let status = browser
        .wait_for_text(
            "#pod-status",
            &format!("Pod online · Shoal {version}"),
            Duration::from_secs(30),
        )
        .unwrap();
    assert!(status.contains("app "), "{status}");
    browser
        .wait_for_text("#home-title", "Watch", Duration::from_secs(5))
        .unwrap();
    // The app's wasm (most of a first visit's bytes) came gzipped: what a viewer on a pod's
    // home connection waits for.
    let sizes = browser
        .execute(
            "return performance.getEntriesByType('resource').filter((e) => e.name.endsWith('_bg.wasm')).map((e) => [e.encodedBodySize, e.decodedBodySize]);",
            vec![],
        )
        .unwrap();
    let sizes = sizes.as_array().expect("resource timings");
    assert!(!sizes.is_empty(), "the app's wasm was not fetched");
    for pair in sizes {
        let (sent, wasm) = (pair[0].as_f64().unwrap(), pair[1].as_f64().unwrap());
        assert!(
            sent > 0.0 && sent < wasm * 0.6,
            "{}: the app's wasm came as {sent} bytes for {wasm}",
            kind.name()
        );
    }
    let shot = shoal_tests::output_dir().join(format!("home-{}.png", kind.name()));
    browser.screenshot(&shot).unwrap();
    let errors = browser.page_errors().unwrap();
    assert!(
        errors.is_empty(),
        "{} console errors: {errors:?}",
        kind.name()
    );

    // An unknown app route is served by the SPA fallback and rendered by the app's router.
    browser
        .goto(&format!("{}/no/such/page", pod.url()))
        .unwrap();
    browser
        .wait_for_text("main", "Page not found", Duration::from_secs(30))
        .unwrap();
    let errors = browser.page_errors().unwrap();
    assert!(
        errors.is_empty(),
        "{} console errors: {errors:?}",
        kind.name()
    );
}

#[test]
fn app_renders_in_chromium() {
    app_renders_in(Kind::Chromium);
}

#[test]
fn app_renders_in_firefox() {
    app_renders_in(Kind::Firefox);
}

/// Other sites import the client library as an ES module, which browsers load only with CORS.
#[test]
fn the_client_library_is_importable_from_other_origins() {
    let pod = TestPod::start();
    let r = ureq::get(&format!("{}/client/shoal-client.js", pod.url()))
        .set("Origin", "http://elsewhere.example")
        .call()
        .expect("the client library is served (./shoal test builds it)");
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(r.into_string().unwrap().contains("class Client"));
}

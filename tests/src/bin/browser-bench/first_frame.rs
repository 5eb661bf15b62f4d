//! Time from page open to first frame: a plain `<video src=WebSeed URL>` against Shoal's client
//! streaming the same file, in fresh browsers.

use std::time::Duration;

use serde_json::Value;
use shoal_tests::browser::{Browser, Kind};
use shoal_tests::pod::TestPod;

use crate::{median, wait_value};

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

pub fn time_to_first_frame(pod: &TestPod, video: &Value) {
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

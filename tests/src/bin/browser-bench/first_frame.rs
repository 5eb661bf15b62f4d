//! Time from page open to first frame: a plain `<video src=WebSeed URL>`, Shoal's client and
//! WebTorrent JS (its browser bundle and service worker) streaming the same torrent, each in
//! fresh browsers, taking turns. Goals: Shoal within 1.2 times the plain player, and faster
//! than WebTorrent JS.

use std::time::Duration;

use serde_json::Value;
use shoal_tests::browser::{Browser, Kind};
use shoal_tests::pod::TestPod;

use crate::{median, wait_value};

/// Opens `url` in a fresh browser and returns the page's time to first frame, in ms. A page
/// that never starts says why on stderr (its errors and the element's state).
fn first_frame(kind: Kind, url: &str) -> Option<f64> {
    let browser = Browser::launch(kind).ok()?;
    browser.goto(url).ok()?;
    let first = wait_value(
        &browser,
        "return window.firstFrameMs || null;",
        Duration::from_secs(60),
    )
    .and_then(|v| v.as_f64());
    if std::env::var("BENCH_MARKS").is_ok() {
        if let Ok(marks) = browser.execute("return window.marks || null;", vec![]) {
            if !marks.is_null() {
                let page = url.split('?').next().unwrap_or(url);
                eprintln!("{} {page}: {first:?} ms, marks {marks}", kind.name());
                let fetches = browser.execute(
                    "return performance.getEntriesByType('resource').map(e => \
                     `${e.name.split('/').pop().slice(0, 5)} ${e.startTime.toFixed(0)}-${e.responseEnd.toFixed(0)} ${(e.decodedBodySize / 1024).toFixed(0)}k`).join(', ');",
                    vec![],
                );
                eprintln!(
                    "  fetches: {}",
                    fetches.map(|v| v.to_string()).unwrap_or_default()
                );
            }
        }
    }
    // BENCH_TRACE=dir (with SHOAL_CHROMIUM_TRACE=categories): each page's trace, for
    // chrome://tracing or a script.
    if let Ok(dir) = std::env::var("BENCH_TRACE") {
        if let Ok(log) = browser.performance_log() {
            let page = url
                .split('?')
                .next()
                .unwrap_or(url)
                .rsplit('/')
                .next()
                .unwrap_or("page");
            let n = std::fs::read_dir(&dir).map_or(0, |d| d.count());
            let _ = std::fs::write(format!("{dir}/{n:02}-{page}.json"), log.to_string());
        }
    }
    if first.is_none() {
        let state = browser.execute(
            "const v = document.querySelector('video'); return v && {readyState: v.readyState, \
             networkState: v.networkState, error: v.error && v.error.message, src: v.src, \
             controlled: !!(navigator.serviceWorker && navigator.serviceWorker.controller)};",
            vec![],
        );
        eprintln!(
            "{} never showed a frame of {url}: {state:?}, errors {:?}",
            kind.name(),
            browser.page_errors()
        );
    }
    first
}

pub fn time_to_first_frame(pod: &TestPod, video: &Value) {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    println!("\n== time from page open to first frame (median of {runs} fresh browsers each)");
    let torrent = video["torrentUrl"].as_str().unwrap();
    let pages = [
        (
            "plain <video src>",
            format!(
                "{}/bench-plain.html?src={}",
                pod.url(),
                video["fileUrl"].as_str().unwrap()
            ),
        ),
        (
            "Shoal",
            format!("{}/bench-shoal.html?id={torrent}", pod.url()),
        ),
        (
            "WebTorrent JS",
            format!("{}/bench-webtorrent.html?id={torrent}", pod.url()),
        ),
    ];
    // BENCH_BROWSER=chromium (or firefox) measures in that browser only.
    let only = std::env::var("BENCH_BROWSER").ok();
    for kind in Kind::ALL {
        if only.as_deref().is_some_and(|only| only != kind.name()) {
            continue;
        }
        // Per page, one entry per turn (`None`: that page never started in that turn).
        let mut turns: Vec<Vec<Option<f64>>> = vec![Vec::new(); pages.len()];
        // Taking turns, so a slower moment of the machine falls on all of them alike.
        for _ in 0..runs {
            for (i, (_, url)) in pages.iter().enumerate() {
                turns[i].push(first_frame(kind, url));
            }
        }
        let times: Vec<Vec<f64>> = turns
            .iter()
            .map(|t| t.iter().flatten().copied().collect())
            .collect();
        let line: Vec<String> = pages
            .iter()
            .zip(&times)
            .map(|((name, _), t)| {
                let failed = runs - t.len();
                let note = if failed > 0 {
                    format!(" ({failed}/{runs} never started)")
                } else {
                    String::new()
                };
                format!("{name}: {:.0} ms{note}", median(t.clone()))
            })
            .collect();
        let (plain, shoal, webtorrent) = (
            median(times[0].clone()),
            median(times[1].clone()),
            median(times[2].clone()),
        );
        // The ratio within each turn, where plain and Shoal ran moments apart: steadier than the
        // ratio of the medians when the machine's speed drifts over the run.
        let paired: Vec<f64> = turns[1]
            .iter()
            .zip(&turns[0])
            .filter_map(|(shoal, plain)| Some(shoal.as_ref()? / plain.as_ref()?))
            .collect();
        println!("{:<9} {}", kind.name(), line.join("   "));
        println!(
            "{:<9} Shoal / plain {:.2} (goal ≤ 1.20; median of the turns' own ratios {:.2})   \
             Shoal / WebTorrent JS {:.2} (goal < 1)",
            "",
            shoal / plain,
            median(paired),
            shoal / webtorrent
        );
    }
}

//! Share of bytes from peers with N viewers of one video starting together.

use std::time::{Duration, Instant};

use shoal_tests::browser::{Browser, Kind};
use shoal_tests::media;
use shoal_tests::pod::TestPod;

use crate::wait_value;

pub fn peer_share(pod: &TestPod, dir: &std::path::Path) {
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

//! A 2 GiB video played start to end in Chromium by Shoal's client: the tab's memory must stay
//! bounded (the engine keeps a fixed budget of pieces and the player trims what MediaSource has
//! buffered behind the playhead).
//!
//! The video is a 10 s noisy clip looped with `-c copy` to 2 GiB (so making it is quick), about
//! 24 minutes at 12 Mbit/s, uploaded to the pod like any video and played at 16× (Chromium's
//! fastest rate), so the run takes a couple of minutes. Every 2 s it samples the memory of the
//! browser's processes (proportional set size, so shared pages count once), the wasm memory of
//! the page, and how much MediaSource holds; it prints the peaks and the tab's peak in each of the
//! fifths of the video, so growth would show.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use shoal_tests::browser::{Browser, Kind};
use shoal_tests::media;
use shoal_tests::pod::TestPod;

use crate::{probe, wait_value};

const TARGET_BYTES: u64 = 2 << 30;
const RATE: f64 = 16.0;

/// Shoal's client playing `?id=` at 16× once it starts, exposing what the benchmark samples.
pub const PAGE: &str = concat!(
    r#"<!doctype html><meta charset="utf-8"><title>shoal long video</title>
<script src="/page-errors.js"></script>
<video id="player" muted autoplay playsinline></video>"#,
    probe!(),
    r#"<script type="module">
  import init, { Client } from './client/shoal-client.js';
  const v = document.getElementById('player');
  v.addEventListener('playing', () => { v.playbackRate = 16; });
  const wasm = await init();
  const client = new Client({});
  const torrent = await client.add(new URLSearchParams(location.search).get('id'), {});
  torrent.streamTo(v, {});
  v.play().catch(() => {});
  window.sample = () => {
    let buffered = 0;
    for (let i = 0; i < v.buffered.length; i++) buffered += v.buffered.end(i) - v.buffered.start(i);
    const s = torrent.stats();
    return { time: v.currentTime, duration: v.duration, ended: v.ended, buffered,
             wasm: wasm.memory.buffer.byteLength, stalls: window.stalls,
             downloaded: s.downloaded_from_peers + s.downloaded_from_webseeds };
  };
</script>"#
);

/// One sample of the run.
struct Sample {
    at: Duration,
    media_time: f64,
    browser_pss: u64,
    renderer_pss: u64,
    wasm: u64,
    buffered: f64,
}

pub fn long_video(pod: &TestPod, dir: &Path) {
    println!("\n== a 2 GiB video played start to end at {RATE}x (Chromium): memory");
    let started = Instant::now();
    let file = make_long_video(dir);
    let size = std::fs::metadata(&file).unwrap().len();
    let video = upload_by_streaming(pod, &file);
    println!(
        "video: {:.1} GiB, {:.0} s, piece length {}; made and uploaded in {:.0} s",
        size as f64 / (1u64 << 30) as f64,
        video["duration"].as_f64().unwrap_or(0.0),
        video["pieceLength"],
        started.elapsed().as_secs_f64()
    );
    let duration = video["duration"].as_f64().unwrap_or(1500.0);
    let url = format!(
        "{}/bench-long.html?id={}",
        pod.url(),
        video["torrentUrl"].as_str().unwrap()
    );
    let browser = match Browser::launch(Kind::Chromium) {
        Ok(b) => b,
        Err(e) => return println!("Chromium did not start: {e}"),
    };
    browser.goto(&url).unwrap();
    if wait_value(
        &browser,
        "return window.firstFrameMs || null;",
        Duration::from_secs(60),
    )
    .is_none()
    {
        return println!("playback never started: {:?}", browser.page_errors());
    }
    let play_start = Instant::now();
    let limit = Duration::from_secs_f64(duration / RATE * 3.0 + 60.0);
    let mut samples = Vec::new();
    let mut last: Value = Value::Null;
    while play_start.elapsed() < limit {
        std::thread::sleep(Duration::from_secs(2));
        let Ok(s) = browser.execute("return window.sample();", vec![]) else {
            continue;
        };
        let (browser_pss, renderer_pss) = chromium_pss();
        samples.push(Sample {
            at: play_start.elapsed(),
            media_time: s["time"].as_f64().unwrap_or(0.0),
            browser_pss,
            renderer_pss,
            wasm: s["wasm"].as_u64().unwrap_or(0),
            buffered: s["buffered"].as_f64().unwrap_or(0.0),
        });
        let ended = s["ended"].as_bool() == Some(true);
        last = s;
        if ended {
            break;
        }
    }
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let peak = |f: fn(&Sample) -> u64| samples.iter().map(f).max().unwrap_or(0);
    let part_peak = |from: f64, to: f64| {
        let part: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.media_time >= from * duration && s.media_time <= to * duration)
            .collect();
        part.iter().map(|s| s.renderer_pss).max().unwrap_or(0)
    };
    println!(
        "played to {:.0} s of {duration:.0} s in {:.0} s ({}), {} stalls, {:.2} GiB downloaded",
        last["time"].as_f64().unwrap_or(0.0),
        play_start.elapsed().as_secs_f64(),
        if last["ended"].as_bool() == Some(true) {
            "ended"
        } else {
            "DID NOT END in time"
        },
        last["stalls"],
        last["downloaded"].as_f64().unwrap_or(0.0) / (1u64 << 30) as f64
    );
    println!(
        "peak memory: tab (renderer) {:.0} MiB, whole browser {:.0} MiB, wasm heap {:.0} MiB, \
         MediaSource buffered at most {:.0} s",
        mib(peak(|s| s.renderer_pss)),
        mib(peak(|s| s.browser_pss)),
        mib(peak(|s| s.wasm)),
        samples.iter().map(|s| s.buffered).fold(0.0, f64::max)
    );
    // The engine keeps pieces (to seed them to other viewers) up to its memory budget, 256 MiB
    // by default: memory rises while that fills, then must stay flat however much is played.
    let fifths: Vec<String> = (0..5)
        .map(|i| {
            format!(
                "{:.0}",
                mib(part_peak(i as f64 / 5.0, (i + 1) as f64 / 5.0))
            )
        })
        .collect();
    println!(
        "tab peak per fifth of the video: {} MiB (flat once the piece budget is full)",
        fifths.join(" / ")
    );
    if let Some(s) = samples.last() {
        println!("last sample at {:.0} s of wall time", s.at.as_secs_f64());
    }
}

/// A fragmented MP4 of at least 2 GiB: a short noisy clip looped without re-encoding.
fn make_long_video(dir: &Path) -> std::path::PathBuf {
    let clip = media::noisy_clip(dir, 10, 12);
    let clip_size = std::fs::metadata(&clip).unwrap().len().max(1);
    let loops = TARGET_BYTES.div_ceil(clip_size);
    let out = dir.join("long.mp4");
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-stream_loop"])
        .arg((loops - 1).to_string())
        .arg("-i")
        .arg(&clip)
        .args([
            "-c",
            "copy",
            "-movflags",
            "+frag_keyframe+empty_moov+default_base_moof",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg could not loop the clip");
    out
}

/// Uploads with curl, which streams the file from disk (the harness's form builder holds the
/// whole body in memory).
fn upload_by_streaming(pod: &TestPod, file: &Path) -> Value {
    let output = Command::new("curl")
        .args(["-sS", "--fail-with-body", "-H"])
        .arg(format!("Authorization: Bearer {}", pod.admin_token()))
        .arg("-F")
        .arg("name=A long video")
        .arg("-F")
        .arg(format!("videofile=@{};type=video/mp4", file.display()))
        .arg(format!("{}/api/v1/videos/upload", pod.url()))
        .output()
        .expect("curl runs");
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    assert!(
        output.status.success(),
        "upload refused: {answer} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let uuid = answer["video"]["uuid"].as_str().expect("uuid");
    pod.get_json(&format!("/api/v1/videos/{uuid}"))
}

/// Proportional set size (shared pages split between the processes that share them) of all
/// Chromium processes, and of the largest renderer (the tab), in bytes.
fn chromium_pss() -> (u64, u64) {
    let mut total = 0;
    let mut renderer = 0;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return (0, 0);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !comm.trim().starts_with("chrom") || comm.trim() == "chromedriver" {
            continue;
        }
        let pss = std::fs::read_to_string(path.join("smaps_rollup"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Pss:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .unwrap_or(0)
            * 1024;
        total += pss;
        let cmdline = std::fs::read_to_string(path.join("cmdline")).unwrap_or_default();
        if cmdline.contains("--type=renderer") {
            renderer = renderer.max(pss);
        }
    }
    (total, renderer)
}

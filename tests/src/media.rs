//! Test media made with the real ffmpeg, cached per test process under a temp dir.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs ffmpeg with `args` to write `out` (inside a fresh temp dir the caller keeps alive).
pub fn ffmpeg(args: &[&str], out: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .arg(out)
        .status()
        .expect("ffmpeg runs (install it with ./shoal test)");
    assert!(status.success(), "ffmpeg failed to make {}", out.display());
}

/// A progressive MP4 (moov at the end, as most cameras and editors write): H.264 + AAC.
pub fn progressive_mp4(dir: &Path, name: &str, seconds: u32) -> PathBuf {
    let out = dir.join(name);
    let t = seconds.to_string();
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=660",
            "-t",
            &t,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
        &out,
    );
    out
}

/// An MP3 (which Firefox cannot feed to MediaSource).
pub fn mp3(dir: &Path, name: &str, seconds: u32) -> PathBuf {
    let out = dir.join(name);
    let t = seconds.to_string();
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
            "-t",
            &t,
            "-c:a",
            "libmp3lame",
        ],
        &out,
    );
    out
}

/// A 640x360 H.264/AAC clip of `seconds` at about 1.5 Mbit/s; `variant` changes its pixels so
/// that each variant is a different file (a different swarm).
pub fn ffmpeg_clip(dir: &Path, name: &str, seconds: u32, variant: u32) -> PathBuf {
    let out = dir.join(name);
    let t = seconds.to_string();
    let source =
        format!("testsrc2=size=640x360:rate=25,drawtext=text='{variant}':fontsize=40:x=10:y=10");
    let fallback = format!("testsrc2=size=640x360:rate=25,hue=h={}", variant * 40);
    let args = |src: &str| -> Vec<String> {
        [
            "-f",
            "lavfi",
            "-i",
            src,
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
            "-t",
            &t,
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-b:v",
            "1500k",
            "-g",
            "50",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args(&source))
        .arg(&out)
        .status();
    if !status.map(|s| s.success()).unwrap_or(false) {
        // drawtext needs a font; a hue shift makes the variants differ without one.
        ffmpeg(
            &args(&fallback)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            &out,
        );
    }
    out
}

/// A clip of ffmpeg's test card with grain (which compresses poorly) at `mbit` Mbit/s and
/// keyframes every 2 s: a few MB, so that create-torrent's 16 KiB pieces number in the hundreds
/// and transfers pipeline many requests.
pub fn noisy_clip(dir: &Path, seconds: u32, mbit: u32) -> PathBuf {
    let out = dir.join("noisy.mp4");
    let (t, rate, buf) = (
        seconds.to_string(),
        format!("{mbit}M"),
        format!("{}k", mbit * 500),
    );
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x360:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=660",
            "-t",
            &t,
            "-vf",
            "noise=alls=30:allf=t",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-b:v",
            &rate,
            "-maxrate",
            &rate,
            "-bufsize",
            &buf,
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
        &out,
    );
    out
}

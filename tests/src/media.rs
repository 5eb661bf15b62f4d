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

//! Media fixtures for the media_* tests: short clips made with the real ffmpeg at test time
//! (nothing binary is committed), cached under Cargo's per-target temp dir, and ffprobe helpers.
#![allow(dead_code)] // each test binary takes what it needs

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// 6 s of 320x240 test pattern at 25 fps, and a 440 Hz tone at 48 kHz.
const VIDEO: &[&str] = &[
    "-f",
    "lavfi",
    "-i",
    "testsrc=size=320x240:rate=25:duration=6",
];
const AUDIO: &[&str] = &[
    "-f",
    "lavfi",
    "-i",
    "sine=frequency=440:sample_rate=48000:duration=6",
];
/// What pods write (server-lite/src/media.rs).
const POD_MOVFLAGS: &[&str] = &[
    "-movflags",
    "+frag_keyframe+empty_moov+default_base_moof+global_sidx",
];
/// H.264 with a keyframe every 2 s (50 frames at 25 fps).
const H264: &[&str] = &[
    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "50",
];
const AAC: &[&str] = &["-c:a", "aac", "-b:a", "96k"];
const VP9: &[&str] = &[
    "-pix_fmt",
    "yuv420p",
    "-c:v",
    "libvpx-vp9",
    "-deadline",
    "realtime",
    "-cpu-used",
    "8",
    "-g",
    "50",
];
const OPUS: &[&str] = &["-c:a", "libopus", "-b:a", "64k"];

/// Every fixture, by file name.
pub const ALL: &[&str] = &[
    "fmp4_h264_aac.mp4",
    "fmp4_baseline.mp4",
    "fmp4_no_sidx.mp4",
    "fmp4_vp9_opus.mp4",
    "fmp4_aac.mp4",
    "fmp4_av1.mp4",
    "cues_front.webm",
    "vp8_vorbis.webm",
    "prog_moov_end.mp4",
    "prog_faststart.mp4",
    "prog_audio.m4a",
    "audio.mp3",
    "audio.aac",
];

/// The ffmpeg arguments (inputs and codecs; the output is appended) for a fixture.
fn recipe(name: &str) -> Vec<&'static str> {
    let parts: Vec<&[&'static str]> = match name {
        "fmp4_h264_aac.mp4" => vec![VIDEO, AUDIO, H264, AAC, POD_MOVFLAGS],
        "fmp4_baseline.mp4" => vec![
            VIDEO,
            H264,
            &["-profile:v", "baseline", "-level", "3.0"],
            POD_MOVFLAGS,
        ],
        "fmp4_no_sidx.mp4" => vec![
            VIDEO,
            AUDIO,
            H264,
            AAC,
            &["-movflags", "+frag_keyframe+empty_moov+default_base_moof"],
        ],
        "fmp4_vp9_opus.mp4" => vec![VIDEO, AUDIO, VP9, OPUS, POD_MOVFLAGS],
        // Audio has no keyframes to cut at: without -frag_duration ffmpeg writes the whole file
        // as one fragment.
        "fmp4_aac.mp4" => vec![AUDIO, AAC, &["-frag_duration", "2000000"], POD_MOVFLAGS],
        "fmp4_av1.mp4" => vec![
            VIDEO,
            &[
                "-c:v",
                "libsvtav1",
                "-preset",
                "12",
                "-g",
                "50",
                "-svtav1-params",
                "verbosity=0",
            ],
            POD_MOVFLAGS,
        ],
        "cues_front.webm" => vec![
            VIDEO,
            AUDIO,
            VP9,
            OPUS,
            &["-cues_to_front", "1", "-f", "webm"],
        ],
        "vp8_vorbis.webm" => vec![
            VIDEO,
            AUDIO,
            &[
                "-pix_fmt",
                "yuv420p",
                "-c:v",
                "libvpx",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-g",
                "50",
            ],
            &["-c:a", "libvorbis", "-f", "webm"],
        ],
        "prog_moov_end.mp4" => vec![VIDEO, AUDIO, H264, AAC],
        "prog_faststart.mp4" => vec![VIDEO, AUDIO, H264, AAC, &["-movflags", "+faststart"]],
        "prog_audio.m4a" => vec![AUDIO, AAC, &["-movflags", "+faststart"]],
        "audio.mp3" => vec![AUDIO, &["-c:a", "libmp3lame", "-b:a", "128k"]],
        "audio.aac" => vec![AUDIO, AAC, &["-f", "adts"]],
        other => panic!("no recipe for fixture {other}"),
    };
    parts.concat()
}

fn fixture_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("media-fixtures");
    std::fs::create_dir_all(&dir).expect("create fixture dir");
    dir
}

/// The path of a fixture, generating it if needed. The file name carries a hash of the recipe,
/// so a changed recipe regenerates; generation writes a temp file and renames it, so test
/// binaries running side by side never see half a file.
pub fn fixture(name: &str) -> PathBuf {
    let args = recipe(name);
    let hash = args
        .iter()
        .flat_map(|a| a.bytes().chain([0]))
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    let path = fixture_dir().join(format!("{hash:016x}-{name}"));
    if path.exists() {
        return path;
    }
    let tmp = fixture_dir().join(format!("tmp-{}-{name}", std::process::id()));
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(&args)
        .arg(&tmp)
        .output()
        .expect(
            "these tests need ffmpeg (5.1 with libx264, libvpx, libopus, libmp3lame, libsvtav1)",
        );
    assert!(
        out.status.success(),
        "ffmpeg failed for {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &path).expect("rename fixture");
    path
}

pub fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("read fixture")
}

/// `ffprobe -of json` with the given arguments.
pub fn ffprobe(path: &Path, args: &[&str]) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(path)
        .output()
        .expect("these tests need ffprobe");
    assert!(
        out.status.success(),
        "ffprobe failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

/// The streams ffprobe sees, with frame and packet counts (`-count_frames -count_packets`).
pub fn streams_with_frame_counts(path: &Path) -> Vec<Value> {
    let v = ffprobe(
        path,
        &[
            "-count_frames",
            "-count_packets",
            "-show_entries",
            "stream=codec_name,codec_type,profile,level,nb_read_frames,nb_read_packets,duration",
        ],
    );
    v["streams"].as_array().cloned().unwrap_or_default()
}

/// Decodes the whole file with ffmpeg; returns whatever ffmpeg complained about.
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("these tests need ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg could not decode {}",
        path.display()
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A scratch path for a test's output.
pub fn scratch(name: &str) -> PathBuf {
    fixture_dir().join(format!("out-{}-{name}", std::process::id()))
}

#[path = "../support/rng.rs"]
mod rng;
#[allow(unused_imports)]
pub use rng::Rng;

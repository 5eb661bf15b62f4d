//! What the pod knows about media files, and what it does to them with ffmpeg.
//!
//! MediaSource can only play from the first pieces on when the file is laid out for it:
//! fragmented MP4 with the `moov` (and a `sidx` index for seeking) at the front, or WebM. So an
//! upload is probed ([`probe`]) and, when needed, remuxed (codecs kept) or transcoded into
//! fragmented MP4 ([`normalize`]); MP3, which Firefox cannot feed to MediaSource, becomes AAC in
//! fragmented MP4. Outputs are written with `+bitexact` and without metadata, so the same upload
//! on two pods with the same ffmpeg gives the same bytes, hence the same swarm.
//!
//! Without ffmpeg the pod still accepts files it recognises by their first bytes and keeps them
//! as they are, saying so in the video's `processing` note.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::process::Command;

/// What ffprobe (or, without it, the first bytes) says about a file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probe {
    /// ffprobe's format names, e.g. `mov,mp4,m4a,3gp,3g2,mj2` or `matroska,webm`.
    pub format: String,
    pub duration: Option<f64>,
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
}

impl Probe {
    pub fn is_audio_only(&self) -> bool {
        self.video_codec.is_none() && self.audio_codec.is_some()
    }
}

/// Whether ffmpeg and ffprobe are installed.
pub async fn ffmpeg_available() -> bool {
    let ok = |program: &'static str| async move {
        Command::new(program)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .map(|s| s.success())
            .unwrap_or(false)
    };
    ok("ffmpeg").await && ok("ffprobe").await
}

/// Runs a media tool with a time limit, so a hostile file cannot hold the upload forever.
async fn run(program: &str, args: &[&str], limit: Duration) -> anyhow::Result<Vec<u8>> {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .with_context(|| format!("{program} took longer than {limit:?}"))??;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        // ffmpeg names the input file in its messages; people see this sentence, and the
        // pod's temporary paths are none of their business.
        let mut said = last.to_owned();
        for arg in args.iter().filter(|a| a.contains('/')) {
            said = said.replace(arg, "the file");
        }
        tracing::debug!(%program, stderr = %stderr, "media tool failed");
        bail!("{program} failed: {said}");
    }
    Ok(output.stdout)
}

/// Asks ffprobe what the file is. Errors mean "not a media file we can read".
pub async fn probe(path: &Path) -> anyhow::Result<Probe> {
    let path = path.to_string_lossy();
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            &path,
        ],
        Duration::from_secs(60),
    )
    .await?;
    let json: serde_json::Value = serde_json::from_slice(&out).context("ffprobe output")?;
    let mut probe = Probe {
        format: json["format"]["format_name"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        duration: json["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse::<f64>().ok())
            .filter(|d| d.is_finite() && *d > 0.0),
        ..Probe::default()
    };
    for stream in json["streams"].as_array().into_iter().flatten() {
        let codec = stream["codec_name"].as_str().map(str::to_owned);
        // Cover art in MP3/M4A shows up as a one-frame "video" stream: not a video.
        let attached_pic = stream["disposition"]["attached_pic"].as_i64() == Some(1);
        match stream["codec_type"].as_str() {
            Some("video") if !attached_pic && probe.video_codec.is_none() => {
                probe.video_codec = codec
            }
            Some("audio") if probe.audio_codec.is_none() => probe.audio_codec = codec,
            _ => {}
        }
    }
    if probe.video_codec.is_none() && probe.audio_codec.is_none() {
        bail!("the file has no audio or video stream");
    }
    Ok(probe)
}

/// A file's kind from its first bytes, for pods without ffmpeg.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.len() >= 8 && &head[4..8] == b"ftyp" {
        return Some("video/mp4");
    }
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Some("video/webm");
    }
    if head.starts_with(b"ID3") || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0) {
        return Some("audio/mpeg");
    }
    if head.starts_with(b"OggS") {
        return Some("audio/ogg");
    }
    None
}

/// Top-level MP4 box types in order, reading only box headers (stops after `limit` boxes).
pub fn mp4_top_level_boxes(path: &Path, limit: usize) -> std::io::Result<Vec<[u8; 4]>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut boxes = Vec::new();
    let mut pos = 0u64;
    while pos + 8 <= len && boxes.len() < limit {
        file.seek(SeekFrom::Start(pos))?;
        let mut header = [0u8; 16];
        file.read_exact(&mut header[..8])?;
        let mut size = u64::from(u32::from_be_bytes([
            header[0], header[1], header[2], header[3],
        ]));
        let kind = [header[4], header[5], header[6], header[7]];
        if size == 1 {
            file.read_exact(&mut header[8..16])?;
            size = u64::from_be_bytes(header[8..16].try_into().unwrap_or([0; 8]));
        } else if size == 0 {
            size = len - pos;
        }
        if size < 8 {
            break;
        }
        boxes.push(kind);
        pos = pos.saturating_add(size);
    }
    Ok(boxes)
}

/// Whether an MP4 already streams from its first pieces: `moov` before any `mdat`, fragments
/// (`moof`), and an index (`sidx`) before the first fragment for seeking.
pub fn mp4_is_streamable(path: &Path) -> bool {
    let Ok(boxes) = mp4_top_level_boxes(path, 16) else {
        return false;
    };
    let position = |kind: &[u8; 4]| boxes.iter().position(|b| b == kind);
    match (position(b"moov"), position(b"moof"), position(b"sidx")) {
        (Some(moov), Some(moof), Some(sidx)) => {
            moov < moof && sidx < moof && position(b"mdat").is_none_or(|m| m > moof)
        }
        _ => false,
    }
}

/// What the pod will store for an upload.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// The upload is playable from the first pieces as it is.
    Keep { mime_type: String },
    /// Rewritten into fragmented MP4; `args` are ffmpeg's codec arguments.
    Rewrite {
        mime_type: String,
        extension: &'static str,
        args: Vec<&'static str>,
        note: String,
    },
}

/// The MIME type of a file kept as it is.
pub fn kept_mime_type(probe: &Probe) -> String {
    let audio = probe.is_audio_only();
    let kind = if audio { "audio" } else { "video" };
    if probe.format.contains("mp4") {
        format!("{kind}/mp4")
    } else if probe.format.contains("webm") || probe.format.contains("matroska") {
        format!("{kind}/webm")
    } else if probe.format == "mp3" {
        "audio/mpeg".into()
    } else if probe.format == "ogg" {
        format!("{kind}/ogg")
    } else {
        "application/octet-stream".into()
    }
}

/// Decides what to do with a probed upload.
pub fn plan(path: &Path, probe: &Probe) -> Plan {
    let is_mp4 = probe.format.contains("mp4");
    let is_webm = probe.format.contains("webm");
    if probe.is_audio_only() {
        let audio = probe.audio_codec.as_deref().unwrap_or("");
        if is_mp4 && audio == "aac" && mp4_is_streamable(path) {
            return Plan::Keep {
                mime_type: "audio/mp4".into(),
            };
        }
        if is_webm && matches!(audio, "opus" | "vorbis") {
            return Plan::Keep {
                mime_type: "audio/webm".into(),
            };
        }
        let (codec_args, note) = if matches!(audio, "aac" | "opus") {
            (
                vec!["-c:a", "copy"],
                format!("{audio} audio remuxed into fragmented MP4"),
            )
        } else {
            (
                vec!["-c:a", "aac", "-b:a", "160k"],
                format!("{audio} audio converted to AAC (plays in every browser)"),
            )
        };
        // frag_keyframe never cuts audio-only files: fragments of 2 s give seek points.
        let mut args = vec!["-vn", "-frag_duration", "2000000"];
        args.extend(codec_args);
        return Plan::Rewrite {
            mime_type: "audio/mp4".into(),
            extension: "m4a",
            args,
            note,
        };
    }
    let video = probe.video_codec.as_deref().unwrap_or("");
    let audio = probe.audio_codec.as_deref();
    let video_ok = matches!(video, "h264" | "vp9" | "av1");
    let audio_ok = matches!(audio, None | Some("aac") | Some("opus"));
    if is_mp4 && video_ok && audio_ok && mp4_is_streamable(path) {
        return Plan::Keep {
            mime_type: "video/mp4".into(),
        };
    }
    if is_webm && matches!(video, "vp8" | "vp9") && matches!(audio, None | Some("opus" | "vorbis"))
    {
        return Plan::Keep {
            mime_type: "video/webm".into(),
        };
    }
    let mut args: Vec<&'static str> = vec!["-map", "0:v:0", "-map", "0:a:0?"];
    let mut done = Vec::new();
    if video_ok {
        args.extend(["-c:v", "copy"]);
        done.push("remuxed into fragmented MP4".to_string());
    } else {
        // Keyframes every 2 s: fragments (and so seek points) every 2 s.
        args.extend([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-pix_fmt",
            "yuv420p",
            "-force_key_frames",
            "expr:gte(t,n_forced*2)",
        ]);
        done.push(format!("{video} video converted to H.264"));
    }
    match audio {
        Some("aac") | Some("opus") | None => args.extend(["-c:a", "copy"]),
        Some(other) => {
            args.extend(["-c:a", "aac", "-b:a", "160k"]);
            done.push(format!("{other} audio converted to AAC"));
        }
    }
    Plan::Rewrite {
        mime_type: "video/mp4".into(),
        extension: "mp4",
        args,
        note: done.join("; "),
    }
}

/// Rewrites `input` into `output` as fragmented MP4 with the index at the front.
pub async fn rewrite(input: &Path, output: &Path, codec_args: &[&str]) -> anyhow::Result<()> {
    let input = input.to_string_lossy();
    let output_str = output.to_string_lossy();
    let mut args: Vec<&str> = vec!["-nostdin", "-v", "error", "-y", "-i", &input];
    args.extend_from_slice(codec_args);
    args.extend([
        "-map_metadata",
        "-1",
        "-fflags",
        "+bitexact",
        "-flags:v",
        "+bitexact",
        "-flags:a",
        "+bitexact",
        "-movflags",
        "+frag_keyframe+empty_moov+default_base_moof+global_sidx",
        // Within each 2 s fragment, video and audio alternate every 5 samples instead of all
        // the video then all the audio: the player appends a fragment's verified beginning
        // before the rest arrives, and the browser shows the first frame once it holds both
        // tracks' first samples (the first few pieces), not the whole fragment.
        "-frag_interleave",
        "5",
        "-f",
        "mp4",
        &output_str,
    ]);
    // A transcode of a long video takes a while on a small server; bounded all the same.
    run("ffmpeg", &args, Duration::from_secs(6 * 3600)).await?;
    Ok(())
}

/// A JPEG still from about a second in (or the middle of a shorter clip), 480 px wide.
pub async fn thumbnail(input: &Path, duration: Option<f64>, output: &Path) -> anyhow::Result<()> {
    let at = duration.map(|d| (d / 2.0).min(1.0)).unwrap_or(0.0);
    let at = format!("{at:.2}");
    let input = input.to_string_lossy();
    let output = output.to_string_lossy();
    run(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-ss",
            &at,
            "-i",
            &input,
            "-frames:v",
            "1",
            "-vf",
            "scale=480:-2",
            "-q:v",
            "4",
            &output,
        ],
        Duration::from_secs(60),
    )
    .await?;
    Ok(())
}

/// Generates the demo clip a new pod shows: a test pattern with a tone, `seconds` long.
pub async fn generate_demo(output: &Path, seconds: u32) -> anyhow::Result<()> {
    let duration = seconds.to_string();
    let output = output.to_string_lossy();
    run(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            &duration,
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "60",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-shortest",
            &output,
        ],
        Duration::from_secs(300),
    )
    .await?;
    Ok(())
}

/// Where a rewrite of `input` goes: beside it, with the new extension.
pub fn rewritten_path(input: &Path, extension: &str) -> PathBuf {
    input.with_extension(format!("out.{extension}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_common_formats() {
        assert_eq!(sniff(b"\0\0\0\x20ftypisom"), Some("video/mp4"));
        assert_eq!(sniff(&[0x1A, 0x45, 0xDF, 0xA3, 1]), Some("video/webm"));
        assert_eq!(sniff(b"ID3\x04"), Some("audio/mpeg"));
        assert_eq!(sniff(b"hello world"), None);
    }

    #[test]
    fn plans() {
        let path = Path::new("/nonexistent");
        let mp3 = Probe {
            format: "mp3".into(),
            audio_codec: Some("mp3".into()),
            ..Probe::default()
        };
        match plan(path, &mp3) {
            Plan::Rewrite {
                mime_type, args, ..
            } => {
                assert_eq!(mime_type, "audio/mp4");
                assert!(args.contains(&"aac"));
            }
            other => panic!("{other:?}"),
        }
        let webm = Probe {
            format: "matroska,webm".into(),
            video_codec: Some("vp9".into()),
            audio_codec: Some("opus".into()),
            ..Probe::default()
        };
        assert_eq!(
            plan(path, &webm),
            Plan::Keep {
                mime_type: "video/webm".into()
            }
        );
        let progressive = Probe {
            format: "mov,mp4,m4a,3gp,3g2,mj2".into(),
            video_codec: Some("h264".into()),
            audio_codec: Some("aac".into()),
            ..Probe::default()
        };
        assert!(matches!(plan(path, &progressive), Plan::Rewrite { .. }));
    }
}

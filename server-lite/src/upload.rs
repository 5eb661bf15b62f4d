//! Getting a file into the pod: streaming multipart uploads and local files (the demo clip).
//!
//! The bytes are hashed into pieces while they arrive (one pass), into a temporary file under
//! `<data-dir>/tmp/`. When the last byte lands the file is probed and, if MediaSource could not
//! stream it from the first pieces, rewritten with ffmpeg (then hashed again: the bytes changed).
//! Only when the final file sits in `media/` under its info-hash is the row inserted, so:
//! - a failed or cancelled upload leaves nothing behind (the temporary file is deleted by a drop
//!   guard, also when the client disconnects and the handler is dropped);
//! - a pod killed mid-upload leaves only files in `tmp/` and unreferenced files in `media/`,
//!   which [`clean_data_dir`] removes at the next start.

use std::path::{Path, PathBuf};

use anyhow::Context;
use axum::extract::multipart::Multipart;
use axum::http::StatusCode;
use client_core::metainfo::{default_piece_length, Metainfo, TorrentBuilder};
use rand::RngCore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api::ApiError;
use crate::catalogue::Entry;
use crate::media::{self, Plan};
use crate::videos::{self, NewVideo, Video};
use crate::Pod;

pub const TMP_DIR: &str = "tmp";
pub const MEDIA_DIR: &str = "media";
pub const THUMBNAIL_DIR: &str = "thumbnails";

/// Longest title and description accepted, in characters.
const MAX_NAME: usize = 120;
const MAX_DESCRIPTION: usize = 10_000;
/// Longest non-file form field, in bytes.
const MAX_TEXT_FIELD: usize = 64 * 1024;

/// A file that is deleted when dropped, unless it was kept.
struct TempFile {
    path: Option<PathBuf>,
}

impl TempFile {
    fn new(path: PathBuf) -> Self {
        Self { path: Some(path) }
    }

    fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// The file is wanted after all: do not delete it.
    fn keep(mut self) {
        self.path = None;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn random_name(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}-{}", hex::encode(bytes))
}

pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Makes the name a file gets inside the torrent (and its WebSeed URL) from what the uploader's
/// file was called: the last path segment, without characters that break URLs or file systems.
/// Deterministic, so the same file uploaded to two pods gets the same info-hash.
pub fn torrent_file_name(original: &str, extension: Option<&str>) -> String {
    let base = original.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_control() || "#?%/\\:*\"<>|".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    let (stem, ext) = match cleaned.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem.to_owned(), Some(ext.to_owned())),
        _ => (cleaned.clone(), None),
    };
    let stem: String = if stem.is_empty() {
        "media".into()
    } else {
        stem.chars().take(100).collect()
    };
    match extension.map(str::to_owned).or(ext) {
        Some(ext) => format!("{stem}.{}", ext.to_lowercase()),
        None => stem,
    }
}

/// Metadata people give with an upload.
#[derive(Debug, Default, Clone)]
pub struct Details {
    pub name: Option<String>,
    pub description: String,
    pub tags: Vec<String>,
}

impl Details {
    fn validate(&mut self, original_name: &str) -> Result<String, ApiError> {
        let name = match self.name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => n.to_owned(),
            // Like PeerTube's web client: the file's name without its extension.
            _ => {
                let base = original_name.rsplit(['/', '\\']).next().unwrap_or("");
                base.rsplit_once('.')
                    .map(|(s, _)| s)
                    .unwrap_or(base)
                    .trim()
                    .to_owned()
            }
        };
        if name.is_empty() {
            return Err(bad_request("invalid_name", "the video needs a name"));
        }
        if name.chars().count() > MAX_NAME {
            return Err(bad_request(
                "invalid_name",
                format!("the name is longer than {MAX_NAME} characters"),
            ));
        }
        if self.description.chars().count() > MAX_DESCRIPTION {
            return Err(bad_request(
                "invalid_description",
                format!("the description is longer than {MAX_DESCRIPTION} characters"),
            ));
        }
        Ok(name)
    }
}

fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

/// Receives `POST /api/v1/videos/upload`: fields `videofile` (the file), `name`, `description`,
/// `tags`. `expected_len` (the request's Content-Length) lets the piece length be chosen before
/// the file is complete.
pub async fn receive(
    pod: &Pod,
    mut multipart: Multipart,
    expected_len: Option<u64>,
) -> Result<Video, ApiError> {
    let limit = pod.config().max_upload_bytes();
    if expected_len.is_some_and(|len| len > limit + MAX_TEXT_FIELD as u64 * 4) {
        return Err(too_big(limit));
    }
    let mut details = Details::default();
    let mut received: Option<(TempFile, String, TorrentBuilder)> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let field_name = field.name().unwrap_or("").to_owned();
        if field_name == "videofile" {
            if received.is_some() {
                return Err(bad_request("too_many_files", "send one file per upload"));
            }
            let original = field.file_name().unwrap_or("").to_owned();
            let tmp = TempFile::new(
                pod.config()
                    .data_dir
                    .join(TMP_DIR)
                    .join(random_name("upload")),
            );
            let mut file = tokio::fs::File::create(tmp.path())
                .await
                .map_err(ApiError::internal)?;
            let piece_length = default_piece_length(expected_len.unwrap_or(0));
            let mut builder = TorrentBuilder::single_file_unsized(
                torrent_file_name(&original, None),
                piece_length,
            )
            .map_err(ApiError::internal)?;
            let mut size: u64 = 0;
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                size += chunk.len() as u64;
                if size > limit {
                    return Err(too_big(limit));
                }
                builder.update(&chunk);
                file.write_all(&chunk).await.map_err(ApiError::internal)?;
            }
            file.flush().await.map_err(ApiError::internal)?;
            file.sync_all().await.map_err(ApiError::internal)?;
            if size == 0 {
                return Err(bad_request("empty_file", "the file is empty"));
            }
            received = Some((tmp, original, builder));
        } else {
            let text = read_text_field(&mut field).await?;
            match field_name.as_str() {
                "name" => details.name = Some(text),
                "description" => details.description = text,
                "tags" => details.tags = videos::normalize_tags(&text),
                _ => {} // Unknown fields (PeerTube clients send more) are ignored.
            }
        }
    }
    let Some((tmp, original, builder)) = received else {
        return Err(bad_request(
            "missing_file",
            "no file: send it in the multipart field `videofile`",
        ));
    };
    // The streamed hash is create-torrent's only if its piece length is the default for the
    // final size; otherwise `store` hashes again.
    let prehashed = builder
        .finish()
        .ok()
        .filter(|t| t.info.piece_length == default_piece_length(t.info.total_length));
    store(pod, tmp, &original, details, prehashed).await
}

fn too_big(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "file_too_large",
        format!(
            "the file is larger than this pod accepts ({} MiB)",
            limit / (1024 * 1024)
        ),
    )
}

fn multipart_error(err: axum::extract::multipart::MultipartError) -> ApiError {
    bad_request(
        "bad_upload",
        format!("the upload was cut off or malformed: {}", err.body_text()),
    )
}

async fn read_text_field(
    field: &mut axum::extract::multipart::Field<'_>,
) -> Result<String, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if bytes.len() + chunk.len() > MAX_TEXT_FIELD {
            return Err(bad_request("field_too_long", "a text field is too long"));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| bad_request("bad_text", "a text field is not UTF-8"))
}

/// Adds a file that is already on this machine (the demo clip). The file is copied.
pub async fn add_local_file(pod: &Pod, path: &Path, details: Details) -> Result<Video, ApiError> {
    let tmp = TempFile::new(
        pod.config()
            .data_dir
            .join(TMP_DIR)
            .join(random_name("local")),
    );
    tokio::fs::copy(path, tmp.path())
        .await
        .map_err(ApiError::internal)?;
    let original = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    store(pod, tmp, &original, details, None).await
}

/// Hashes a whole file from disk (after a rewrite, or when the streamed hash cannot be used).
/// On a blocking thread: hashing gigabytes takes seconds, and the event loop that runs this
/// upload also serves other connections (see `start` in lib.rs).
async fn hash_file(path: &Path, name: String) -> anyhow::Result<Metainfo> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let len = std::fs::metadata(&path)?.len();
        let mut builder = TorrentBuilder::single_file(name, len, None)?;
        builder.update_from_file(&path)?;
        Ok(builder.finish()?)
    })
    .await?
}

/// From a complete temporary file to a watchable video: probe, rewrite if needed, hash, move
/// into place, thumbnail, insert. Any failure leaves no file and no row.
async fn store(
    pod: &Pod,
    tmp: TempFile,
    original_name: &str,
    mut details: Details,
    prehashed: Option<Metainfo>,
) -> Result<Video, ApiError> {
    let name = details.validate(original_name)?;
    let ffmpeg = media::ffmpeg_available().await;
    let (content, mime_type, extension, duration, mut processing, probed) = if ffmpeg {
        let probe = media::probe(tmp.path()).await.map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not_media",
                format!("this file is not audio or video that the pod can read ({e:#})"),
            )
        })?;
        let plan = if pod.config().keep_uploads_as_is {
            Plan::Keep {
                mime_type: media::kept_mime_type(&probe),
            }
        } else {
            media::plan(tmp.path(), &probe)
        };
        match plan {
            Plan::Keep { mime_type } => (
                tmp,
                mime_type,
                None,
                probe.duration,
                String::from("kept as uploaded"),
                Some(probe),
            ),
            Plan::Rewrite {
                mime_type,
                extension,
                args,
                note,
            } => {
                let out = TempFile::new(media::rewritten_path(tmp.path(), extension));
                media::rewrite(tmp.path(), out.path(), &args)
                    .await
                    .map_err(|e| {
                        ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "unplayable_media",
                            format!("the pod could not convert this file for streaming ({e:#})"),
                        )
                    })?;
                drop(tmp);
                (
                    out,
                    mime_type,
                    Some(extension),
                    probe.duration,
                    note,
                    Some(probe),
                )
            }
        }
    } else {
        let mut head = [0u8; 16];
        let n = tokio::fs::File::open(tmp.path())
            .await
            .map_err(ApiError::internal)?
            .read(&mut head)
            .await
            .map_err(ApiError::internal)?;
        let Some(mime) = media::sniff(&head[..n]) else {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not_media",
                "this file is not audio or video that the pod recognises",
            ));
        };
        let note = "kept as uploaded: ffmpeg is not installed on this pod, so the file was \
                    not checked or converted for streaming"
            .to_string();
        (tmp, mime.to_string(), None, None, note, None)
    };

    let file_name = torrent_file_name(original_name, extension);
    let torrent = match prehashed {
        Some(t) if extension.is_none() && t.info.name == file_name => t,
        _ => hash_file(content.path(), file_name.clone())
            .await
            .map_err(ApiError::internal)?,
    };
    let info_hash = torrent.info_hash;
    if let Some(existing) = pod
        .db()
        .call(move |c| videos::get_by_info_hash(c, &info_hash))
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_uploaded",
            format!(
                "this file is already on the pod as \"{}\" ({})",
                existing.name, existing.uuid
            ),
        ));
    }

    let uuid = new_uuid();
    let data_dir = &pod.config().data_dir;
    let media_name = format!("{}.{}", info_hash.to_hex(), extension_of(&file_name));
    let media_path = data_dir.join(MEDIA_DIR).join(&media_name);
    tokio::fs::rename(content.path(), &media_path)
        .await
        .map_err(ApiError::internal)?;
    // From here the file is in media/: remove it again if anything below fails.
    let placed = TempFile::new(media_path.clone());
    drop(content); // already moved; its drop finds nothing to delete

    let is_video = probed.as_ref().is_some_and(|p| p.video_codec.is_some());
    let mut thumbnail = None;
    let mut thumb_guard = None;
    if ffmpeg && is_video {
        let thumb_name = format!("{uuid}.jpg");
        let thumb_path = data_dir.join(THUMBNAIL_DIR).join(&thumb_name);
        match media::thumbnail(&media_path, duration, &thumb_path).await {
            Ok(()) => {
                thumbnail = Some(thumb_name);
                thumb_guard = Some(TempFile::new(thumb_path));
            }
            Err(e) => {
                tracing::warn!(%e, "no thumbnail");
                processing.push_str("; no thumbnail could be made");
            }
        }
    }

    let size = torrent.info.total_length;
    let new = NewVideo {
        uuid,
        name,
        description: details.description.trim().to_owned(),
        tags: std::mem::take(&mut details.tags),
        duration,
        mime_type: mime_type.clone(),
        size,
        info_hash,
        torrent_info: torrent.raw_info.clone(),
        file_name: file_name.clone(),
        media_path: media_name,
        thumbnail,
        processing,
    };
    let video = pod
        .db()
        .call(move |c| {
            let id = videos::insert(c, &new)?;
            videos::get(c, &id.to_string())?.context("inserted row vanished")
        })
        .await
        .map_err(ApiError::internal)?;
    pod.catalogue().insert(
        info_hash,
        Entry::new(media_path, size, mime_type, file_name),
    );
    // Committed: keep the files.
    placed.keep();
    if let Some(guard) = thumb_guard {
        guard.keep();
    }
    tracing::info!(uuid = %video.uuid, %info_hash, size, "video added");
    Ok(video)
}

fn extension_of(file_name: &str) -> &str {
    file_name.rsplit_once('.').map(|(_, e)| e).unwrap_or("bin")
}

/// Prepares the data directory at start: creates its folders, empties `tmp/` (uploads cut off
/// by a crash), and removes files of `media/` and `thumbnails/` that no row refers to.
pub fn clean_data_dir(data_dir: &Path, rows: &[Video]) -> anyhow::Result<()> {
    for dir in [TMP_DIR, MEDIA_DIR, THUMBNAIL_DIR] {
        std::fs::create_dir_all(data_dir.join(dir))
            .with_context(|| format!("cannot create {}", data_dir.join(dir).display()))?;
    }
    for entry in std::fs::read_dir(data_dir.join(TMP_DIR))? {
        let _ = std::fs::remove_file(entry?.path());
    }
    let keep_media: std::collections::HashSet<&str> =
        rows.iter().map(|v| v.media_path.as_str()).collect();
    let keep_thumbs: std::collections::HashSet<&str> =
        rows.iter().filter_map(|v| v.thumbnail.as_deref()).collect();
    for (dir, keep) in [(MEDIA_DIR, &keep_media), (THUMBNAIL_DIR, &keep_thumbs)] {
        for entry in std::fs::read_dir(data_dir.join(dir))? {
            let entry = entry?;
            let name = entry.file_name();
            if !keep.contains(name.to_string_lossy().as_ref()) {
                tracing::info!(file = %entry.path().display(), "removing an orphaned file");
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torrent_names() {
        assert_eq!(
            torrent_file_name("C:\\clips\\My Clip.MP4", None),
            "My Clip.mp4"
        );
        assert_eq!(torrent_file_name("a#b?.mp3", Some("m4a")), "a_b_.m4a");
        assert_eq!(torrent_file_name("../../etc/passwd", None), "passwd");
        assert_eq!(torrent_file_name("", Some("mp4")), "media.mp4");
        assert_eq!(torrent_file_name(".hidden.webm", None), "hidden.webm");
    }

    #[test]
    fn uuids_are_v4() {
        let u = new_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}

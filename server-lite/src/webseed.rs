//! The WebSeed (BEP 19) and the other static files of a video: byte ranges of the stored media
//! for browsers (WebTorrent, Shoal's client, a plain `<video src>`) and desktop clients (aria2,
//! libtorrent), the `.torrent` files, and thumbnails.
//!
//! Range answers are exact: `206` with `Content-Range` for one satisfiable range, `416` with
//! `Content-Range: bytes */size` when nothing of it is in the file, `200` with the whole file
//! when there is no (usable) range. Responses are never compressed (byte offsets must hold),
//! carry a strong ETag (the content is immutable: its name is its info-hash) and CORS headers so
//! pages on other origins can fetch them (preflight included: browsers send `Range`,
//! `Cache-Control` and, Firefox, `User-Agent`).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use client_core::InfoHash;
use futures_util::StreamExt;
use tower_http::cors::{AllowHeaders, Any, CorsLayer};
use tower_http::services::ServeDir;

use crate::catalogue::Entry;
use crate::videos::{self, PodUrls};
use crate::Pod;

/// Read size for streaming a range: large enough for throughput, small enough to stay bounded.
const CHUNK: u64 = 256 * 1024;

pub fn router(pod: &Pod) -> Router<Pod> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([
            header::CONTENT_RANGE,
            header::CONTENT_LENGTH,
            header::ACCEPT_RANGES,
            header::ETAG,
        ])
        .max_age(std::time::Duration::from_secs(86_400));
    let thumbnails = pod.config().data_dir.join(crate::upload::THUMBNAIL_DIR);
    Router::new()
        .route("/webseed/{info_hash}/{name}", get(webseed))
        .route("/torrents/{file}", get(torrent))
        .nest_service("/thumbnails", ServeDir::new(thumbnails))
        .layer(cors)
}

/// A `Range` header reduced to what we serve: one range within a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No range, or one we ignore (several ranges, malformed): send the whole file.
    Whole,
    /// Inclusive byte range, inside the file.
    Part { start: u64, end: u64 },
    /// A well-formed range that lies outside the file.
    Unsatisfiable,
}

impl RangeRequest {
    pub fn parse(header: Option<&str>, size: u64) -> Self {
        let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
            return Self::Whole;
        };
        if spec.contains(',') {
            // Multi-range answers (multipart/byteranges) serve no BitTorrent client; RFC 9110
            // lets a server ignore the header instead.
            return Self::Whole;
        }
        let Some((first, last)) = spec.trim().split_once('-') else {
            return Self::Whole;
        };
        let (first, last) = (first.trim(), last.trim());
        let parse = |s: &str| s.parse::<u64>().ok();
        match (first.is_empty(), last.is_empty()) {
            // bytes=-N: the last N bytes.
            (true, false) => match parse(last) {
                Some(0) => Self::Unsatisfiable,
                Some(n) if size > 0 => Self::Part {
                    start: size.saturating_sub(n),
                    end: size - 1,
                },
                Some(_) => Self::Unsatisfiable,
                None => Self::Whole,
            },
            // bytes=A- or bytes=A-B
            (false, _) => {
                let Some(start) = parse(first) else {
                    return Self::Whole;
                };
                let end = if last.is_empty() {
                    u64::MAX
                } else {
                    match parse(last) {
                        Some(end) if end >= start => end,
                        _ => return Self::Whole,
                    }
                };
                if start >= size {
                    Self::Unsatisfiable
                } else {
                    Self::Part {
                        start,
                        end: end.min(size - 1),
                    }
                }
            }
            (true, true) => Self::Whole,
        }
    }
}

async fn webseed(
    State(pod): State<Pod>,
    Path((info_hash, name)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let Ok(info_hash) = InfoHash::from_hex(&info_hash) else {
        return not_found();
    };
    // The file is found by info-hash in the catalogue: the name in the URL is checked, never
    // used as a path, so no request can reach outside media/.
    let Some(entry) = pod.catalogue().get(&info_hash) else {
        return not_found();
    };
    if entry.file_name != name {
        return not_found();
    }
    let etag = format!("\"{}\"", info_hash.to_hex());
    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response_headers.insert(header::ETAG, header_value(&etag));
    response_headers.insert(header::CONTENT_TYPE, header_value(&entry.mime_type));
    response_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return (StatusCode::NOT_MODIFIED, response_headers).into_response();
    }
    let mut range = RangeRequest::parse(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        entry.size,
    );
    // If-Range with another validator: the client's copy is stale, send everything.
    if let Some(if_range) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        if if_range.trim() != etag {
            range = RangeRequest::Whole;
        }
    }
    let (status, start, len) = match range {
        RangeRequest::Whole => (StatusCode::OK, 0, entry.size),
        RangeRequest::Part { start, end } => {
            response_headers.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {start}-{end}/{}", entry.size)),
            );
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => {
            response_headers.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{}", entry.size)),
            );
            return (StatusCode::RANGE_NOT_SATISFIABLE, response_headers).into_response();
        }
    };
    response_headers.insert(header::CONTENT_LENGTH, header_value(&len.to_string()));
    if method == Method::HEAD {
        return (status, response_headers).into_response();
    }
    pod.counters()
        .webseed_requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The first chunk is read before answering, so a file that has gone missing gets a 500
    // rather than a 206 whose body breaks off. A range that fits in it (every BitTorrent piece
    // request up to 256 KiB) is answered from that one read.
    let first_len = len.min(CHUNK);
    let first = match read_chunk(entry.clone(), start, first_len).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(path = %entry.path.display(), %e, "a catalogued file cannot be read");
            return (StatusCode::INTERNAL_SERVER_ERROR, "file unavailable").into_response();
        }
    };
    pod.counters().add_webseed_bytes(first_len);
    if first_len == len {
        return (status, response_headers, Body::from(first)).into_response();
    }
    // Longer ranges stream one chunk at a time: one read in flight per answer, so memory stays
    // bounded however large the range, and a slow reader slows only its own answer.
    let rest = futures_util::stream::unfold(
        (entry, start + first_len, len - first_len),
        move |(entry, offset, left)| {
            let pod = pod.clone();
            async move {
                if left == 0 {
                    return None;
                }
                let n = left.min(CHUNK);
                match read_chunk(entry.clone(), offset, n).await {
                    Ok(bytes) => {
                        pod.counters().add_webseed_bytes(n);
                        Some((Ok(bytes), (entry, offset + n, left - n)))
                    }
                    // Ends the body early: the client sees a short answer, never wrong bytes.
                    Err(e) => Some((Err(e), (entry, offset, 0))),
                }
            }
        },
    );
    let body =
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(rest);
    (status, response_headers, Body::from_stream(body)).into_response()
}

/// `len` bytes at `offset` of the entry's file. A popular video is in the page cache: then the
/// bytes are copied right here (a read that cannot block), which costs far less than a hop to
/// the blocking pool. Otherwise, one positioned read on the blocking pool, so a cold disk never
/// stalls the async threads.
async fn read_chunk(entry: Arc<Entry>, offset: u64, len: u64) -> std::io::Result<Bytes> {
    if let Some(file) = entry.opened() {
        let mut buf = vec![0; len as usize];
        if cached_read::read_exact_at(file, &mut buf, offset)? {
            return Ok(Bytes::from(buf));
        }
    }
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0; len as usize];
        entry.file()?.read_exact_at(&mut buf, offset)?;
        Ok(Bytes::from(buf))
    })
    .await
    .map_err(std::io::Error::other)?
}

async fn torrent(State(pod): State<Pod>, Path(file): Path<String>) -> Response {
    let Some(uuid) = file.strip_suffix(".torrent").map(str::to_owned) else {
        return not_found();
    };
    let video = match pod.db().call(move |c| videos::get(c, &uuid)).await {
        Ok(Some(v)) => v,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::error!(%e, "torrent lookup failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "lookup failed").into_response();
        }
    };
    let urls = PodUrls::new(pod.public_url());
    match urls.torrent_file(&video) {
        Ok(torrent) => {
            let disposition = format!(
                "inline; filename=\"{}.torrent\"",
                video.file_name.replace('"', "")
            );
            (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/x-bittorrent"),
                    ),
                    (header::CONTENT_DISPOSITION, header_value(&disposition)),
                ],
                torrent.to_torrent_bytes(),
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(%e, "stored torrent info is invalid");
            (StatusCode::INTERNAL_SERVER_ERROR, "torrent unavailable").into_response()
        }
    }
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::{self, *};

    #[test]
    fn ranges() {
        let p = |h: &str| RangeRequest::parse(Some(h), 1000);
        assert_eq!(p("bytes=0-99"), Part { start: 0, end: 99 });
        assert_eq!(
            p("bytes=900-"),
            Part {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            p("bytes=900-5000"),
            Part {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            p("bytes=-100"),
            Part {
                start: 900,
                end: 999
            }
        );
        assert_eq!(p("bytes=-5000"), Part { start: 0, end: 999 });
        assert_eq!(p("bytes=1000-"), Unsatisfiable);
        assert_eq!(p("bytes=-0"), Unsatisfiable);
        assert_eq!(p("bytes=5-1"), Whole);
        assert_eq!(p("bytes=0-1,5-6"), Whole);
        assert_eq!(p("items=0-1"), Whole);
        assert_eq!(RangeRequest::parse(None, 1000), Whole);
        assert_eq!(RangeRequest::parse(Some("bytes=0-"), 0), Unsatisfiable);
    }
}

/// Reads that succeed only when they need no disk I/O (Linux's `preadv2` with `RWF_NOWAIT`).
mod cached_read {
    use std::fs::File;
    use std::io;

    /// Fills `buf` from `offset` if every byte is in the page cache: `Ok(true)`. `Ok(false)` when
    /// some byte would need the disk (or the kernel has no such read): the caller reads it the
    /// blocking way. Errors are real I/O errors, or the file ending before `buf` is full.
    #[cfg(target_os = "linux")]
    pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<bool> {
        use std::os::fd::AsRawFd;
        let mut filled = 0;
        while filled < buf.len() {
            let rest = &mut buf[filled..];
            let iov = libc::iovec {
                iov_base: rest.as_mut_ptr().cast(),
                iov_len: rest.len(),
            };
            let at = (offset + filled as u64) as libc::off_t;
            // SAFETY: `iov` describes `rest`, which is valid and writable for its whole length
            // and outlives the call; the descriptor stays open as long as `file` is borrowed.
            let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, at, libc::RWF_NOWAIT) };
            if n < 0 {
                let err = io::Error::last_os_error();
                return match err.raw_os_error() {
                    // Not cached (EAGAIN), or a kernel/filesystem without RWF_NOWAIT.
                    Some(libc::EAGAIN | libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) => {
                        Ok(false)
                    }
                    Some(libc::EINTR) => continue,
                    _ => Err(err),
                };
            }
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            filled += n as usize;
        }
        Ok(true)
    }

    #[cfg(not(target_os = "linux"))]
    pub fn read_exact_at(_file: &File, _buf: &mut [u8], _offset: u64) -> io::Result<bool> {
        Ok(false)
    }
}

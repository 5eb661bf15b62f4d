//! Serves the built web app. Any path that is not a file of the bundle gets `index.html`, so the
//! app's own routes (`/w/{uuid}`, `/search`, …) load directly from a link (SPA fallback).
//! When the bundle was never built, the fallback says how to build it instead of a bare 404.
//!
//! Two things a pod on a home connection needs from its web app, which is about 1.6 MB of wasm
//! and JS before the first video plays:
//! - **gzip, computed once.** When the service is made, every compressible file gets a `.gz`
//!   beside it (written to a temporary name, then renamed: never half-written), unless one newer
//!   than the file is there already. Browsers that accept gzip get it: the watch page's first
//!   load drops from about 1.6 MB to 0.67 MB. Compressing per request would cost the pod's CPU
//!   for every new viewer. A bundle directory the pod cannot write to is served uncompressed,
//!   with a warning. A file rebuilt while the pod runs gets its `.gz` at the next start; until
//!   then it is served uncompressed (its stale `.gz` is removed when it is asked for).
//! - **Caching that cannot go stale.** Trunk puts a content hash in the app's file names, so
//!   those are cached for a year (`immutable`); everything else (`index.html`, the client
//!   library at a stable URL that other sites import) is revalidated on every use (`no-cache`:
//!   a 304 when unchanged), so a pod's upgrade reaches every viewer at once.

use std::path::{Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::services::{ServeDir, ServeFile};

pub fn service(bundle_dir: &Path) -> Router {
    let index = bundle_dir.join("index.html");
    if !index.is_file() {
        tracing::warn!(dir = %bundle_dir.display(), "web app bundle not found");
        return Router::new().fallback(get(missing_bundle));
    }
    precompress(bundle_dir);
    // The client library (/client/shoal-client.js) is an ES module that other sites import, and
    // module scripts load only with CORS. Everything here is public and read-only, so any
    // origin may read it.
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::HEAD]);
    let files = ServeDir::new(bundle_dir)
        .precompressed_gzip()
        .fallback(ServeFile::new(index).precompressed_gzip());
    Router::new()
        .fallback_service(files)
        .layer(axum::middleware::from_fn_with_state(
            bundle_dir.to_path_buf(),
            bundle_headers,
        ))
        .layer(cors)
}

async fn missing_bundle() -> impl IntoResponse {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html(
            "<!doctype html><title>Shoal</title><h1>The web app is not built</h1>\
             <p>Run <code>./shoal run</code> from the checkout: it builds the app and starts the pod.</p>",
        ),
    )
}

/// Files worth compressing: text and wasm. Media, images and archives are compressed already.
const COMPRESSIBLE: [&str; 8] = ["html", "js", "mjs", "css", "wasm", "svg", "json", "ts"];

/// Below this, gzip's header and the `Vary` it brings cost more than they save.
const MIN_COMPRESSIBLE_BYTES: u64 = 1024;

/// Writes a fresh `.gz` beside every compressible file of `dir` (recursively) that lacks one.
/// Failures are logged and leave the file served as it is.
fn precompress(dir: &Path) {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                pending.push(path);
            } else if meta.len() >= MIN_COMPRESSIBLE_BYTES
                && is_compressible(&path)
                && fresh_gzip(&path).is_none()
            {
                if let Err(err) = write_gzip(&path) {
                    tracing::warn!(file = %path.display(), %err, "served uncompressed");
                }
            }
        }
    }
}

fn is_compressible(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| COMPRESSIBLE.contains(&e))
}

fn gzip_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".gz");
    PathBuf::from(name)
}

/// The `.gz` of `path` if it was written after `path` was last modified. A stale one (the file
/// was rebuilt since) is removed, so that the file server, which serves any `.gz` it finds,
/// falls back to the file itself.
fn fresh_gzip(path: &Path) -> Option<PathBuf> {
    let gz = gzip_path(path);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(path), modified(&gz)) {
        (Some(file), Some(zipped)) if zipped >= file => Some(gz),
        (_, Some(_)) => {
            let _ = std::fs::remove_file(&gz);
            None
        }
        _ => None,
    }
}

fn write_gzip(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let data = std::fs::read(path)?;
    // Several pods (the tests start many) may compress one bundle at once: each writes its own
    // temporary file, and the last rename wins with identical bytes.
    let tmp = gzip_path(path).with_extension(format!(
        "gz.{}.{}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let compress = |tmp: &Path| {
        let file = std::fs::File::create(tmp)?;
        let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::best());
        encoder.write_all(&data)?;
        encoder.finish()?.sync_all()
    };
    match compress(&tmp).and_then(|()| std::fs::rename(&tmp, gzip_path(path))) {
        Ok(()) => Ok(()),
        Err(err) => {
            let _ = std::fs::remove_file(&tmp);
            Err(err)
        }
    }
}

/// Trunk's hashed names: `player-ui-7aeed9dd3a634b49_bg.wasm`, `style-4cfe0ec0e82305a2.css`.
fn is_content_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.split('.').next().unwrap_or(name);
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-')
        .is_some_and(|(_, hash)| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Drops a stale `.gz` before the file server can pick it, and sets `Cache-Control` and `Vary`.
async fn bundle_headers(State(dir): State<PathBuf>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let immutable = is_content_hashed(path);
    // Only plain relative paths are looked at here; the file server itself refuses `..` and
    // decodes the rest. Two `stat`s (blocking, but a few microseconds on a local disk) per
    // request of the app's files, which a viewer fetches once per page load.
    let relative = path.trim_start_matches('/');
    if !relative.is_empty() && !relative.contains("..") && !relative.contains('%') {
        let file = dir.join(relative);
        if is_compressible(&file) {
            fresh_gzip(&file);
        }
    }
    // `/` and the app's routes (`/w/…`, no file extension) are answered with the index.
    if !relative.rsplit('/').next().unwrap_or("").contains('.') {
        fresh_gzip(&dir.join("index.html"));
    }
    let mut response = next.run(request).await;
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        let value = if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
        // The file server picks the `.gz` by `Accept-Encoding` but does not say so: a shared
        // cache (a reverse proxy) must not hand the gzip to a client that did not ask for it.
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use std::io::Read;
    use tower::ServiceExt;

    /// A bundle like Trunk's: an index, a hashed wasm (compressible, big enough), a tiny file.
    fn bundle() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let index = format!(
            "<!doctype html><title>app</title>{}",
            "<p>x</p>".repeat(300)
        );
        std::fs::write(dir.path().join("index.html"), index).unwrap();
        let wasm: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("player-ui-7aeed9dd3a634b49_bg.wasm"), wasm).unwrap();
        std::fs::write(dir.path().join("favicon.svg"), "<svg/>").unwrap();
        dir
    }

    async fn get(app: &Router, path: &str, gzip: bool) -> (Response, Vec<u8>) {
        let mut request = Request::get(path);
        if gzip {
            request = request.header(header::ACCEPT_ENCODING, "gzip, deflate");
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes().to_vec();
        (Response::from_parts(parts, Body::empty()), bytes)
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn header_of(response: &Response, name: header::HeaderName) -> Option<&str> {
        response.headers().get(name).map(|v| v.to_str().unwrap())
    }

    #[tokio::test]
    async fn browsers_that_accept_gzip_get_the_same_bytes_compressed() {
        let dir = bundle();
        let app = service(dir.path());
        let path = "/player-ui-7aeed9dd3a634b49_bg.wasm";
        let original = std::fs::read(dir.path().join(&path[1..])).unwrap();

        let (zipped, body) = get(&app, path, true).await;
        assert_eq!(zipped.status(), StatusCode::OK);
        assert_eq!(header_of(&zipped, header::CONTENT_ENCODING), Some("gzip"));
        assert_eq!(
            header_of(&zipped, header::CONTENT_TYPE),
            Some("application/wasm")
        );
        assert!(body.len() < original.len() / 4, "{} bytes", body.len());
        assert_eq!(gunzip(&body), original);
        assert_eq!(header_of(&zipped, header::VARY), Some("accept-encoding"));

        let (plain, body) = get(&app, path, false).await;
        assert_eq!(header_of(&plain, header::CONTENT_ENCODING), None);
        assert_eq!(body, original);

        // The SPA fallback is the index, compressed too; a tiny file is left as it is.
        let (fallback, body) = get(&app, "/w/some-video", true).await;
        assert_eq!(header_of(&fallback, header::CONTENT_ENCODING), Some("gzip"));
        assert!(String::from_utf8(gunzip(&body))
            .unwrap()
            .contains("<title>app"));
        assert!(!dir.path().join("favicon.svg.gz").exists());
    }

    #[tokio::test]
    async fn hashed_files_are_cached_for_good_and_the_rest_revalidated() {
        let dir = bundle();
        let app = service(dir.path());
        let (hashed, _) = get(&app, "/player-ui-7aeed9dd3a634b49_bg.wasm", true).await;
        assert_eq!(
            header_of(&hashed, header::CACHE_CONTROL),
            Some("public, max-age=31536000, immutable")
        );
        for path in ["/", "/index.html", "/favicon.svg", "/w/some-video"] {
            let (response, _) = get(&app, path, true).await;
            assert_eq!(
                header_of(&response, header::CACHE_CONTROL),
                Some("no-cache"),
                "{path}"
            );
        }
        assert!(is_content_hashed("/client/x-0123456789abcdef.js"));
        assert!(!is_content_hashed("/client/shoal-client_bg.wasm"));
        assert!(!is_content_hashed("/client-example.html"));
    }

    #[tokio::test]
    async fn a_file_rebuilt_while_the_pod_runs_is_never_served_from_its_old_gzip() {
        let dir = bundle();
        let app = service(dir.path());
        let index = dir.path().join("index.html");
        assert!(fresh_gzip(&index).is_some());
        // Rebuilt after its .gz was written (mtimes can be coarse: date the .gz back).
        let earlier = std::time::SystemTime::now() - std::time::Duration::from_secs(10);
        let date_gzip_back = || {
            std::fs::File::options()
                .write(true)
                .open(gzip_path(&index))
                .unwrap()
                .set_modified(earlier)
                .unwrap();
        };
        date_gzip_back();
        let rebuilt = format!(
            "<!doctype html><title>new</title>{}",
            "<p>y</p>".repeat(300)
        );
        std::fs::write(&index, &rebuilt).unwrap();

        for path in ["/", "/w/some-video", "/index.html"] {
            let (response, body) = get(&app, path, true).await;
            assert_eq!(
                header_of(&response, header::CONTENT_ENCODING),
                None,
                "{path}"
            );
            assert_eq!(String::from_utf8(body).unwrap(), rebuilt, "{path}");
            // Stale again for the next path: as if rebuilt once more.
            write_gzip(&index).unwrap();
            date_gzip_back();
        }
        // The next start compresses it again.
        let app = service(dir.path());
        let (response, body) = get(&app, "/index.html", true).await;
        assert_eq!(header_of(&response, header::CONTENT_ENCODING), Some("gzip"));
        assert_eq!(String::from_utf8(gunzip(&body)).unwrap(), rebuilt);
    }
}

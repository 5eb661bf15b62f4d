//! Serves the built web app. Any path that is not a file of the bundle gets `index.html`, so the
//! app's own routes (`/w/{uuid}`, `/search`, …) load directly from a link (SPA fallback).
//! When the bundle was never built, the fallback says how to build it instead of a bare 404.

use std::path::Path;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use tower_http::services::{ServeDir, ServeFile};

pub fn service(bundle_dir: &Path) -> Router {
    let index = bundle_dir.join("index.html");
    if !index.is_file() {
        tracing::warn!(dir = %bundle_dir.display(), "web app bundle not found");
        return Router::new().fallback(get(missing_bundle));
    }
    // The client library (/client/shoal-client.js) is an ES module that other sites import, and
    // module scripts load only with CORS. Everything here is public and read-only, so any
    // origin may read it.
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::HEAD]);
    Router::new()
        .fallback_service(ServeDir::new(bundle_dir).fallback(ServeFile::new(index)))
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

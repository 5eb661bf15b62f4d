//! The JSON API under `/api/v1`, shaped after PeerTube's where one exists (see the README's
//! "outer contract"). Every failure answers with [`ApiError`]: an HTTP status, a stable code and
//! one human sentence.

mod videos;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::Pod;

pub fn router() -> Router<Pod> {
    Router::new()
        .route("/health", get(health))
        .route("/server/stats", get(stats))
        .route("/config", get(config))
        .route("/videos", get(videos::list))
        .route(
            "/videos/upload",
            // The upload handler streams the body to disk and enforces the pod's own limit.
            post(videos::upload).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/videos/{id}",
            get(videos::get).put(videos::update).delete(videos::delete),
        )
        .route("/videos/{id}/views", post(videos::add_view))
        .route("/search/videos", get(videos::search))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API endpoint")
        })
}

/// Writes need the admin token until accounts exist.
pub fn require_admin(pod: &Pod, headers: &HeaderMap) -> Result<(), ApiError> {
    if crate::auth::is_admin(headers, pod.admin_token()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this needs the pod's admin token (Authorization: Bearer <token>)",
        ))
    }
}

/// What clients need to know before they act (e.g. the upload page checks the size limit
/// before sending a file the pod would refuse).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PodConfig {
    version: &'static str,
    max_upload_bytes: u64,
}

async fn config(State(pod): State<Pod>) -> Json<PodConfig> {
    Json(PodConfig {
        version: env!("CARGO_PKG_VERSION"),
        max_upload_bytes: pod.config().max_upload_bytes(),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    videos: u64,
    webseed_bytes_served: u64,
    webseed_requests: u64,
    tracker_swarms: u64,
    tracker_peers: u64,
}

async fn stats(State(pod): State<Pod>) -> Json<Stats> {
    Json(Stats {
        videos: pod.catalogue().len() as u64,
        webseed_bytes_served: pod.counters().webseed_bytes(),
        webseed_requests: pod
            .counters()
            .webseed_requests
            .load(std::sync::atomic::Ordering::Relaxed),
        tracker_swarms: pod.tracker().swarm_count() as u64,
        tracker_peers: pod.tracker().peer_count() as u64,
    })
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
}

async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// A failed API call: `{"error": {"code": "...", "message": "..."}}` with a matching status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(%err, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the pod hit an internal error; see its log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

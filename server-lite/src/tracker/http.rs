//! The HTTP tracker's I/O: `GET /tracker/announce` and `GET /tracker/scrape` hand the raw query
//! string (ids are percent-escaped raw bytes, so no UTF-8 query extractor) and the socket's IP to
//! [`super::Tracker`], and return its bencoded body. Status is 200 even for failures: BitTorrent
//! clients read `failure reason` from the body, as bittorrent-tracker sends it.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::ws::client_ip;
use crate::Pod;

/// `GET /tracker/announce?info_hash=…&peer_id=…&port=…`.
pub(super) async fn announce(
    State(pod): State<Pod>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let ip = client_ip(&pod, connect_info, &headers);
    let body = pod
        .tracker()
        .http_announce(query.as_deref().unwrap_or(""), ip, |hash| {
            pod.catalogue().contains(hash)
        });
    bencoded(body)
}

/// `GET /tracker/scrape[?info_hash=…]`.
pub(super) async fn scrape(State(pod): State<Pod>, RawQuery(query): RawQuery) -> Response {
    bencoded(pod.tracker().http_scrape(query.as_deref().unwrap_or("")))
}

fn bencoded(body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

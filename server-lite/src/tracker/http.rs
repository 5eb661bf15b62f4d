//! The HTTP tracker's I/O: `GET /tracker/announce` and `GET /tracker/scrape` hand the raw query
//! string (ids are percent-escaped raw bytes, so no UTF-8 query extractor) and the client's IP to
//! [`super::Tracker`], and return its bencoded body. Status is 200 even for failures: BitTorrent
//! clients read `failure reason` from the body, as bittorrent-tracker sends it.
//!
//! Two ways in, one answer: the routes below, and [`one_shot`], which the accept loop calls for
//! a request that closes its connection after the answer, as BitTorrent clients announce
//! (`serve.rs` says why that one skips hyper).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::ws::{client_ip, forwarded_client_ip};
use super::{ANNOUNCE_PATH, SCRAPE_PATH};
use crate::serve::OneShotGet;
use crate::Pod;

/// `GET /tracker/announce?info_hash=…&peer_id=…&port=…`.
pub(super) async fn announce(
    State(pod): State<Pod>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let ip = client_ip(&pod, connect_info, &headers);
    bencoded(announce_body(&pod, query.as_deref().unwrap_or(""), ip))
}

/// `GET /tracker/scrape[?info_hash=…]`.
pub(super) async fn scrape(State(pod): State<Pod>, RawQuery(query): RawQuery) -> Response {
    bencoded(pod.tracker().http_scrape(query.as_deref().unwrap_or("")))
}

/// The answer to a one-shot `GET` of the tracker's paths (the same bodies as the routes', served
/// with the same headers by `serve.rs`); `None` for any other path.
pub fn one_shot(pod: &Pod, get: &OneShotGet<'_>) -> Option<Vec<u8>> {
    match get.path {
        ANNOUNCE_PATH => {
            let ip = forwarded_client_ip(pod, get.peer.ip(), get.forwarded_for);
            Some(announce_body(pod, get.query, ip))
        }
        SCRAPE_PATH => Some(pod.tracker().http_scrape(get.query)),
        _ => None,
    }
}

fn announce_body(pod: &Pod, query: &str, ip: IpAddr) -> Vec<u8> {
    pod.tracker()
        .http_announce(query, ip, |hash| pod.catalogue().contains(hash))
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

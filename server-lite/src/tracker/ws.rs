//! The WebSocket tracker's I/O: accepts the upgrade at `/tracker/socket` and runs one task per
//! connection that moves messages between the socket and [`Tracker`]. No protocol logic here.
//!
//! One task per connection, with one small bounded queue (other peers' relayed offers and
//! answers) and small socket buffers, keeps an idle connection to a few KiB. The task ends
//! when the peer closes, errs, stays silent (not even a pong) past the idle timeout, does not
//! take a message within the send timeout, or when the pod shuts down; in every case its peers
//! leave their swarms.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use client_core::tracker::ws::{Action, Failure, ServerMessage, MAX_MESSAGE_LEN};
use client_core::InfoHash;
use futures_util::SinkExt;
use tokio::sync::watch;
use tokio::time::{interval_at, timeout, Instant, MissedTickBehavior};

use super::outbox::Outbox;
use super::swarm::ConnId;
use super::{Connection, Tracker};
use crate::Pod;

/// Initial read buffer of a socket (tungstenite's default is 128 KiB, allocated up front for
/// every connection). It grows to fit a big message (an announce with offers is 5–20 KB) and,
/// tungstenite being what it is, stays that size.
const READ_BUFFER: usize = 512;

/// Messages collected before one write to the socket. Under load a connection often has its
/// announce's answer and several relayed offers waiting: one write (one syscall, one TCP segment)
/// for all of them costs far less than one each. The buffer keeps its size afterwards, so it is
/// kept small: a few offers' worth.
const WRITE_BATCH: usize = 4 * 1024;

/// `GET /tracker/socket`.
pub(super) async fn socket(
    State(pod): State<Pod>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let ip = client_ip(&pod, connect_info, &headers);
    let connection = match pod.tracker().connect(ip) {
        Ok(connection) => connection,
        Err(err) => {
            tracing::debug!(%ip, %err, "tracker connection refused");
            return (StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response();
        }
    };
    // Dropped with the callback if the upgrade fails, or when the task ends: either way the
    // connection is unregistered.
    let guard = Registered {
        pod,
        id: connection.id,
    };
    upgrade
        .max_message_size(MAX_MESSAGE_LEN)
        .max_frame_size(MAX_MESSAGE_LEN)
        .read_buffer_size(READ_BUFFER)
        // Collect a batch (see `send_batch`) rather than 128 KiB first; flushed after each batch.
        .write_buffer_size(WRITE_BATCH)
        .on_upgrade(move |socket| run(socket, connection, guard))
}

/// The client's address: the socket's (loopback for a router driven in-process by a test), or,
/// when the pod trusts a reverse proxy on this host and the connection comes from loopback, the
/// last address of `X-Forwarded-For` (the one that proxy added; earlier ones are the client's
/// own claims).
pub(super) fn client_ip(
    pod: &Pod,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
) -> IpAddr {
    let socket_ip = connect_info.map_or(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        |Extension(ConnectInfo(addr))| addr.ip(),
    );
    if !pod.config().trust_proxy || !socket_ip.is_loopback() {
        return socket_ip;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|value| value.to_str().ok())
        .and_then(|list| list.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok())
        .unwrap_or(socket_ip)
}

struct Registered {
    pod: Pod,
    id: ConnId,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.pod.tracker().disconnect(self.id);
    }
}

/// Why a connection's task ended (for logs).
#[derive(Debug)]
enum End {
    ClosedByPeer,
    SocketError,
    Idle,
    TooSlow,
    Dropped,
    Shutdown,
}

async fn run(mut socket: WebSocket, mut connection: Connection, guard: Registered) {
    let tracker: &Tracker = guard.pod.tracker();
    let config = tracker.config();
    let conn = connection.id;
    let send_timeout = config.send_timeout;
    let mut last_heard = Instant::now();
    let mut ping = interval_at(Instant::now() + config.ping_interval, config.ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let allowed = |hash: &InfoHash| guard.pod.catalogue().contains(hash);

    let end = loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else {
                    break End::SocketError;
                };
                last_heard = Instant::now();
                let reply = match message {
                    Message::Text(text) => tracker.handle_ws_text(conn, text.as_str(), allowed),
                    // bittorrent-tracker's server parses binary frames as UTF-8 JSON too.
                    Message::Binary(bytes) => match std::str::from_utf8(&bytes) {
                        Ok(text) => tracker.handle_ws_text(conn, text, allowed),
                        Err(_) => Some(not_utf8()),
                    },
                    // tungstenite answers pings itself; a pong only proves liveness.
                    Message::Ping(_) | Message::Pong(_) => None,
                    Message::Close(_) => break End::ClosedByPeer,
                };
                if let Some(reply) = reply {
                    let batch = send_batch(&mut socket, reply, &connection.outbox, send_timeout);
                    if !batch.await {
                        break End::TooSlow;
                    }
                }
            }
            queued = connection.outbox.recv() => {
                // `None`: the tracker dropped this connection.
                let Some(text) = queued else { break End::Dropped };
                if !send_batch(&mut socket, text, &connection.outbox, send_timeout).await {
                    break End::TooSlow;
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > config.idle_timeout {
                    break End::Idle;
                }
                if !send(&mut socket, Message::Ping(Default::default()), send_timeout).await {
                    break End::TooSlow;
                }
            }
            _ = stopping(&mut connection.shutdown) => {
                let close = Message::Close(Some(CloseFrame {
                    code: 1001, // going away
                    reason: "pod shutting down".into(),
                }));
                let _ = send(&mut socket, close, Duration::from_secs(1)).await;
                break End::Shutdown;
            }
        }
    };
    tracing::debug!(conn = conn.0, ?end, "tracker connection ended");
    // `guard` drops here: the connection's peers leave their swarms.
}

/// Resolves once the pod shuts down (or the tracker is gone).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// Sends one message within `limit`. `false` if the socket failed or the peer does not read.
async fn send(socket: &mut WebSocket, message: Message, limit: Duration) -> bool {
    matches!(timeout(limit, socket.send(message)).await, Ok(Ok(())))
}

/// Sends `first` and whatever else is already queued for this connection (up to about
/// [`WRITE_BATCH`] bytes), then flushes once, all within `limit`.
async fn send_batch(
    socket: &mut WebSocket,
    first: String,
    outbox: &Outbox,
    limit: Duration,
) -> bool {
    let batch = async {
        let mut bytes = first.len();
        socket.feed(Message::text(first)).await?;
        while bytes < WRITE_BATCH {
            let Some(next) = outbox.try_recv() else { break };
            bytes += next.len();
            socket.feed(Message::text(next)).await?;
        }
        socket.flush().await
    };
    matches!(timeout(limit, batch).await, Ok(Ok(())))
}

fn not_utf8() -> String {
    ServerMessage::Failure(Failure {
        action: Some(Action::Announce),
        info_hash: None,
        reason: "binary frame is not UTF-8 JSON".into(),
    })
    .to_json()
}

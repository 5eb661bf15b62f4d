//! The WebSocket tracker's I/O: accepts the upgrade at `/tracker/socket` and runs one task per
//! connection that moves messages between the socket and [`Tracker`]. No protocol logic here.
//!
//! One task per connection, with one small bounded queue (other peers' relayed offers and
//! answers). The WebSocket framing is ours (`websocket.rs`) so that an idle connection holds no
//! buffer at all, whatever it received before: a few hundred bytes of task. The task ends
//! when the peer closes, errs, stays silent (not even a pong) past the idle timeout, does not
//! take a message within the send timeout, or when the pod shuts down; in every case its peers
//! leave their swarms.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::BytesMut;
use client_core::tracker::ws::{Action, Failure, ServerMessage, MAX_MESSAGE_LEN};
use client_core::InfoHash;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{interval_at, timeout, Instant, MissedTickBehavior};

use super::outbox::Outbox;
use super::swarm::ConnId;
use super::websocket::{self, Decoder, Message};
use super::{Connection, Tracker};
use crate::Pod;

/// Bytes asked of the socket per read when the next frame's size is not known yet: enough for
/// an announce without offers, or the header of one with. The buffer lives only while bytes
/// are arriving (see `Socket::read`).
const READ_CHUNK: usize = 4 * 1024;

/// Messages collected before one write to the socket. Under load a connection often has its
/// announce's answer and several relayed offers waiting: one write (one syscall, one TCP segment)
/// for all of them costs far less than one each.
const WRITE_BATCH: usize = 16 * 1024;

/// `GET /tracker/socket`: the WebSocket opening handshake (RFC 6455 §4.2), then one task for
/// the connection.
pub(super) async fn socket(
    State(pod): State<Pod>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    mut request: Request,
) -> Response {
    let accept = match handshake(request.headers()) {
        Ok(accept) => accept,
        Err(refusal) => return refusal.into_response(),
    };
    let ip = client_ip(&pod, connect_info, request.headers());
    let connection = match pod.tracker().connect(ip) {
        Ok(connection) => connection,
        Err(err) => {
            tracing::debug!(%ip, %err, "tracker connection refused");
            return (StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response();
        }
    };
    // Dropped if the upgrade fails, or when the task ends: either way the connection is
    // unregistered.
    let guard = Registered {
        pod,
        id: connection.id,
    };
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        // The pod serves plain TCP (`start`), so the upgraded connection is its TcpStream, with
        // whatever the client sent after its request already read.
        match upgraded.downcast::<TokioIo<crate::serve::ServedTcp>>() {
            Ok(parts) => {
                // `read_buf` is a slice of hyper's whole read buffer (8 KiB and more): copied
                // out, then dropped before the connection settles in.
                let (stream, unread) = parts.io.into_inner().into_parts();
                let socket = if unread.is_empty() {
                    Socket::new(stream, &parts.read_buf)
                } else {
                    Socket::new(stream, &[&parts.read_buf[..], &unread].concat())
                };
                drop(parts.read_buf);
                run(socket, connection, guard).await;
            }
            Err(_) => tracing::error!("tracker socket upgraded over something not TCP"),
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::UPGRADE, HeaderValue::from_static("websocket")),
            (header::CONNECTION, HeaderValue::from_static("upgrade")),
            (header::SEC_WEBSOCKET_ACCEPT, accept),
        ],
    )
        .into_response()
}

/// Checks an upgrade request (§4.2.1) and returns its `Sec-WebSocket-Accept`.
fn handshake(headers: &HeaderMap) -> Result<HeaderValue, Refusal> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|item| item.trim().eq_ignore_ascii_case(token))
    };
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        return Err(Refusal {
            status: StatusCode::UPGRADE_REQUIRED,
            hint: Some((header::UPGRADE, "websocket")),
            message: "this is the WebSocket tracker: connect with a WebSocket",
        });
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13")) {
        return Err(Refusal {
            status: StatusCode::UPGRADE_REQUIRED,
            hint: Some((header::SEC_WEBSOCKET_VERSION, "13")),
            message: "unsupported WebSocket version (13 is)",
        });
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|key| key.to_str().ok())
        .and_then(websocket::accept_key)
        .and_then(|accept| HeaderValue::from_str(&accept).ok())
        .ok_or(Refusal {
            status: StatusCode::BAD_REQUEST,
            hint: None,
            message: "missing or invalid Sec-WebSocket-Key",
        })
}

/// An upgrade request refused: the status, a header saying what would be accepted, and why.
struct Refusal {
    status: StatusCode,
    hint: Option<(header::HeaderName, &'static str)>,
    message: &'static str,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.message).into_response();
        if let Some((name, value)) = self.hint {
            response
                .headers_mut()
                .insert(name, HeaderValue::from_static(value));
        }
        response
    }
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
    let forwarded_for = headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|value| value.to_str().ok());
    forwarded_client_ip(pod, socket_ip, forwarded_for)
}

/// The client's address given the socket's and the last `X-Forwarded-For` header's value: the
/// header's last entry when the pod trusts its proxy and the connection comes from it (loopback),
/// else the socket's address.
pub(super) fn forwarded_client_ip(
    pod: &Pod,
    socket_ip: IpAddr,
    forwarded_for: Option<&str>,
) -> IpAddr {
    if !pod.config().trust_proxy || !socket_ip.is_loopback() {
        return socket_ip;
    }
    forwarded_for
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
    ProtocolError,
    Idle,
    TooSlow,
    Dropped,
    Shutdown,
}

/// A connection's socket: the TCP stream, the bytes received and not yet decoded, and the
/// frames waiting to be written.
///
/// Invariant between two events: `received` holds no whole message (all were taken out and
/// answered), and while `Socket::read` waits it owns no memory unless part of a frame is in
/// it; `unsent` is empty.
struct Socket {
    stream: TcpStream,
    received: BytesMut,
    decoder: Decoder,
    unsent: Vec<u8>,
}

impl Socket {
    fn new(stream: TcpStream, already_read: &[u8]) -> Self {
        Self {
            stream,
            received: BytesMut::from(already_read),
            decoder: Decoder::new(MAX_MESSAGE_LEN),
            unsent: Vec::new(),
        }
    }

    /// Reads what the socket has, once it is readable. `Ok(false)`: the peer closed it.
    async fn read(&mut self) -> std::io::Result<bool> {
        loop {
            // Waiting holds no buffer unless part of a frame is in it: this is what an idle
            // connection costs. (After a read, tokio keeps the readiness until a read would
            // block, so this loop usually comes back here once more before it really waits.)
            if self.received.is_empty() {
                self.received = BytesMut::new();
            }
            // `poll_read_ready`, not `readable()`: it puts this task's waker in the stream's
            // one reader slot, where hyper's connection task left its own after the handshake;
            // that waker kept the finished task's memory (1.6 KiB) alive until the first
            // message arrived.
            std::future::poll_fn(|cx| self.stream.poll_read_ready(cx)).await?;
            // The buffer is allocated here, while bytes are arriving: the size of the frame
            // under way when its header is in, a small chunk otherwise.
            let wanted = self
                .decoder
                .frame_len(&self.received)
                .map_or(READ_CHUNK, |len| len - self.received.len())
                .max(READ_CHUNK);
            self.received.reserve(wanted);
            match self.stream.try_read_buf(&mut self.received) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(err) => return Err(err),
            }
        }
    }

    /// The next whole message received, if any.
    fn next_message(&mut self) -> Result<Option<Message>, websocket::ProtocolError> {
        self.decoder.decode(&mut self.received)
    }

    /// Writes every frame encoded into `unsent`, within `limit`. `false` if the socket failed
    /// or the peer does not read.
    async fn flush(&mut self, limit: Duration) -> bool {
        let unsent = std::mem::take(&mut self.unsent);
        let written = timeout(limit, self.stream.write_all(&unsent)).await;
        matches!(written, Ok(Ok(())))
    }
}

async fn run(mut socket: Socket, mut connection: Connection, guard: Registered) {
    let tracker: &Tracker = guard.pod.tracker();
    let config = tracker.config();
    let conn = connection.id;
    let send_timeout = config.send_timeout;
    let mut last_heard = Instant::now();
    let mut ping = interval_at(Instant::now() + config.ping_interval, config.ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let allowed = |hash: &InfoHash| guard.pod.catalogue().contains(hash);

    let end = 'connection: loop {
        // Messages already received (the client may have sent some with its handshake) are
        // answered before waiting for anything else.
        loop {
            match socket.next_message() {
                Ok(None) => break,
                Ok(Some(Message::Data(bytes))) => {
                    // bittorrent-tracker's server parses binary frames as UTF-8 JSON too.
                    let reply = match std::str::from_utf8(&bytes) {
                        Ok(text) => tracker.handle_ws_text(conn, text, allowed),
                        Err(_) => Some(not_utf8()),
                    };
                    if let Some(reply) = reply {
                        websocket::encode_text(&mut socket.unsent, &reply);
                    }
                }
                Ok(Some(Message::Ping(payload))) => {
                    websocket::encode_pong(&mut socket.unsent, &payload)
                }
                // A pong only proves liveness, as every message does.
                Ok(Some(Message::Pong)) => {}
                Ok(Some(Message::Close)) => {
                    websocket::encode_close(&mut socket.unsent, 1000, "");
                    socket.flush(Duration::from_secs(1)).await;
                    break 'connection End::ClosedByPeer;
                }
                Err(err) => {
                    tracing::debug!(conn = conn.0, %err, "tracker socket protocol error");
                    websocket::encode_close(&mut socket.unsent, err.close_code(), &err.to_string());
                    socket.flush(Duration::from_secs(1)).await;
                    break 'connection End::ProtocolError;
                }
            }
        }
        if !socket.unsent.is_empty() {
            take_queued(&mut socket.unsent, &connection.outbox);
            if !socket.flush(send_timeout).await {
                break End::TooSlow;
            }
        }

        tokio::select! {
            read = socket.read() => match read {
                Ok(true) => last_heard = Instant::now(),
                Ok(false) => break End::ClosedByPeer,
                Err(_) => break End::SocketError,
            },
            queued = connection.outbox.recv() => {
                // `None`: the tracker dropped this connection.
                let Some(text) = queued else { break End::Dropped };
                websocket::encode_text(&mut socket.unsent, &text);
                take_queued(&mut socket.unsent, &connection.outbox);
                if !socket.flush(send_timeout).await {
                    break End::TooSlow;
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > config.idle_timeout {
                    break End::Idle;
                }
                websocket::encode_ping(&mut socket.unsent);
                if !socket.flush(send_timeout).await {
                    break End::TooSlow;
                }
            }
            _ = stopping(&mut connection.shutdown) => {
                websocket::encode_close(&mut socket.unsent, 1001, "pod shutting down");
                socket.flush(Duration::from_secs(1)).await;
                break End::Shutdown;
            }
        }
    };
    tracing::debug!(conn = conn.0, ?end, "tracker connection ended");
    // `guard` drops here: the connection's peers leave their swarms.
}

/// Appends relays already queued for this connection to a batch, up to about [`WRITE_BATCH`]
/// bytes: written together, they cost one syscall and one TCP segment.
fn take_queued(batch: &mut Vec<u8>, outbox: &Outbox) {
    while batch.len() < WRITE_BATCH {
        let Some(next) = outbox.try_recv() else { break };
        websocket::encode_text(batch, &next);
    }
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

fn not_utf8() -> String {
    ServerMessage::Failure(Failure {
        action: Some(Action::Announce),
        info_hash: None,
        reason: "binary frame is not UTF-8 JSON".into(),
    })
    .to_json()
}

//! The accept loop: each TCP connection is served by hyper's HTTP/1.1 server with upgrades,
//! the router answers its requests, and a shutdown stops accepting and lets requests in flight
//! finish.
//!
//! One kind of request skips hyper: a [`OneShotGet`], a `GET` whose whole head comes in the
//! connection's first read and which asks for the connection to close after its answer. That is
//! how BitTorrent clients announce to an HTTP tracker (a new connection every interval), and the
//! pod's most frequent request from desktop clients; hyper and the router cost more than the
//! tracker's own work (a connection, its buffers and timers, the request's header map), and
//! opentracker answers such a request with a read, a write and a close. The `OneShot` callback
//! says which paths it answers (the tracker's, see `tracker::http`); anything else, and anything
//! not exactly of that shape, goes to hyper with the bytes already read.
//!
//! Why not `axum::serve`: it serves through hyper-util's protocol-detecting builder, which wraps
//! every connection in a private type. An upgraded WebSocket then cannot be turned back into its
//! `TcpStream`, which the tracker needs to wait for bytes without holding a buffer (see
//! `tracker/ws.rs`). HTTP/1.1 only: browsers speak HTTP/2 only over TLS, which a reverse proxy in
//! front of the pod terminates, and proxies speak HTTP/1.1 to the pod.

use std::cell::RefCell;
use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// A client that sends no complete request head within this is disconnected (hyper's default
/// once it has a timer; written here because it is what bounds a slow-loris connection).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The connection's first read, at most: a one-shot request's head must fit (an announce is
/// 300-500 bytes); a longer head goes to hyper, which reads on.
const FIRST_READ: usize = 2048;

/// A request answered without hyper (see the module doc): `GET path?query`, read whole in the
/// connection's first read with nothing after it, asking to close the connection after its
/// answer, with no body, upgrade or expectation.
#[derive(Debug, PartialEq)]
pub struct OneShotGet<'a> {
    pub path: &'a str,
    /// The raw query string, not decoded (announce ids are percent-escaped bytes).
    pub query: &'a str,
    pub peer: SocketAddr,
    /// The value of the last `X-Forwarded-For` header (for a pod behind a proxy).
    pub forwarded_for: Option<&'a str>,
}

/// Answers a [`OneShotGet`] with the body of a `200 text/plain` answer not to be stored (what
/// the tracker's routes answer), or declines with `None`: hyper and the router then serve it.
pub type OneShot = Arc<dyn Fn(&OneShotGet<'_>) -> Option<Vec<u8>> + Send + Sync>;

/// Connections waiting to be accepted, at most: what a burst of announces can queue while the
/// pod is busy (the kernel caps it at `net.core.somaxconn`, 4096 on current Linux).
const BACKLOG: u32 = 1024;

/// Listens on `addr` with `TCP_NODELAY` set on the listening socket, which Linux passes down to
/// every accepted connection: one `setsockopt` for the pod's life instead of one per connection.
///
/// No Nagle anywhere: tracker signalling is many small WebSocket messages, and Nagle plus the
/// peer's delayed ACK stalls the second of two back-to-back writes by up to 40 ms; the tail of a
/// WebSeed range would wait the same way.
///
/// With `shared`, the port may be bound again by other sockets that also say so
/// (`SO_REUSEPORT`): each event loop of the pod listens on a socket of its own and Linux hands
/// every new connection to one of them (see `start` in lib.rs). Only sockets of the same user
/// can share a port this way.
pub fn listen(addr: SocketAddr, shared: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted pod gets its port back while old connections of
    // the previous one are still in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    if shared {
        socket.set_reuseport(true)?;
    }
    #[cfg(not(unix))]
    let _ = shared;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Listens on `addr` with a shared port (as `listen(addr, true)`), after making sure that no
/// other socket holds it: `SO_REUSEPORT` alone would let a second pod on the same port start
/// without an error and take half of the first one's connections. A plain socket is bound to the
/// port first, as a probe: it fails with "address in use" when the port is taken, shared or not,
/// and a later pod's probe fails against this one's sockets. With port 0 the probe picks the
/// port.
pub fn listen_shared_alone(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let probe = std::net::TcpListener::bind(addr)?;
    let addr = probe.local_addr()?;
    drop(probe);
    listen(addr, true)
}

/// Serves `router` on `listener` until `shutdown` resolves, then waits for the requests in
/// flight; `one_shot` answers the requests it takes before hyper sees them (module doc).
/// Handlers see the client's address as `ConnectInfo<SocketAddr>`, as with axum's own server.
/// Upgraded connections (tracker sockets) are the tracker's to end.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    one_shot: OneShot,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    // Every connection's task holds a receiver of `stop`: once the loop ends, `stop` asks them
    // to finish their request in flight, and `stop.closed()` resolves when the last is gone.
    let (stop, stopped) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    loop {
        let (tcp, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // `listen` has set TCP_NODELAY, which only Linux hands down to accepted sockets.
        #[cfg(not(target_os = "linux"))]
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let one_shot = one_shot.clone();
        let http = http.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            // In a block of its own, so that the buffer is no part of the task while hyper
            // serves the connection.
            let (tcp, unread) = {
                let mut first = [0u8; FIRST_READ];
                let read = tokio::select! {
                    read = first_read(&tcp, &mut first) => read,
                    _ = stopped.changed() => return,
                };
                let Some(read) = read else { return };
                let first = &first[..read];
                if let Some(body) = parse_one_shot(first, addr).and_then(|get| one_shot(&get)) {
                    let mut tcp = tcp;
                    let _ = tcp.write_all(&one_shot_answer(&body)).await;
                    return; // closed here: the FIN follows the answer at once
                }
                (tcp, first.to_vec())
            };
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    request
                        .extensions_mut()
                        .insert(ConnectInfo::<SocketAddr>(addr));
                    router.clone().oneshot(request)
                });
            let served = ServedTcp {
                stream: tcp,
                unread,
            };
            let connection = http
                .serve_connection(TokioIo::new(served), service)
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = stopped.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = ended {
                tracing::trace!(%addr, %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    drop(stopped);
    let _ = stop.send(());
    stop.closed().await;
    Ok(())
}

/// The connection's first bytes, waited for as long as hyper waits for a request head; `None`
/// when the client closes or fails first.
async fn first_read(tcp: &TcpStream, buf: &mut [u8]) -> Option<usize> {
    let read = async {
        loop {
            tcp.readable().await.ok()?;
            match tcp.try_read(buf) {
                Ok(0) => return None,
                Ok(n) => return Some(n),
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return None,
            }
        }
    };
    tokio::time::timeout(HEADER_READ_TIMEOUT, read)
        .await
        .ok()
        .flatten()
}

/// `bytes` as a [`OneShotGet`], when they are exactly one: anything else (a partial head,
/// another method, a body, keep-alive, an upgrade, too many headers) is hyper's.
fn parse_one_shot(bytes: &[u8], peer: SocketAddr) -> Option<OneShotGet<'_>> {
    let mut headers = [httparse::EMPTY_HEADER; 24];
    let mut request = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head_len) = request.parse(bytes).ok()? else {
        return None;
    };
    if head_len != bytes.len() || request.method? != "GET" {
        return None;
    }
    let target = request.path?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    // HTTP/1.0 closes unless asked not to; HTTP/1.1 keeps the connection unless asked to close.
    let mut close = request.version? == 0;
    let mut forwarded_for = None;
    for header in request.headers.iter() {
        let name = header.name;
        let value = std::str::from_utf8(header.value).ok()?;
        if name.eq_ignore_ascii_case("connection") {
            for option in value.split(',').map(str::trim) {
                if option.eq_ignore_ascii_case("close") {
                    close = true;
                } else if option.eq_ignore_ascii_case("keep-alive") && request.version? == 0 {
                    close = false;
                } else if option.eq_ignore_ascii_case("upgrade") {
                    return None;
                }
            }
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            forwarded_for = Some(value);
        } else if (name.eq_ignore_ascii_case("content-length") && value.trim() != "0")
            || ["transfer-encoding", "upgrade", "expect"]
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n))
        {
            return None;
        }
    }
    close.then_some(OneShotGet {
        path,
        query,
        peer,
        forwarded_for,
    })
}

/// The whole answer to a one-shot request, as hyper and the tracker's routes write it.
fn one_shot_answer(body: &[u8]) -> Vec<u8> {
    let mut answer = Vec::with_capacity(160 + body.len());
    answer.extend_from_slice(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncache-control: no-store\r\n",
    );
    answer.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    answer.extend_from_slice(b"connection: close\r\ndate: ");
    http_date(|date| answer.extend_from_slice(date.as_bytes()));
    answer.extend_from_slice(b"\r\n\r\n");
    answer.extend_from_slice(body);
    answer
}

/// Calls `f` with the current `Date` header value, formatted once a second per thread (as hyper
/// does: formatting a date costs more than the rest of the answer's head).
fn http_date(f: impl FnOnce(&str)) {
    thread_local! {
        static DATE: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|date| {
        let mut date = date.borrow_mut();
        if date.0 != second || date.1.is_empty() {
            *date = (second, httpdate::fmt_http_date(now));
        }
        f(&date.1);
    });
}

/// An accept that failed: the client's own failure is skipped; running out of file descriptors
/// or memory is logged and waited out, so that the loop does not spin.
async fn accept_failed(err: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    ) {
        return;
    }
    tracing::error!(%err, "cannot accept connections; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// A served connection: the `TcpStream`, read from after what the accept loop read first
/// (`unread`), and with hyper's `shutdown` after a last response (`Connection: close`) doing
/// nothing: closing the socket right after sends the same FIN, one system call fewer per
/// connection.
///
/// The tracker takes an upgraded connection back out as `TokioIo<ServedTcp>` (`tracker/ws.rs`).
pub struct ServedTcp {
    stream: TcpStream,
    unread: Vec<u8>,
}

impl ServedTcp {
    /// The stream, and what was read from it that hyper has not taken (nothing, once hyper has
    /// read a request: its first read takes all of it).
    pub fn into_parts(self) -> (TcpStream, Vec<u8>) {
        (self.stream, self.unread)
    }
}

impl AsyncRead for ServedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.unread.is_empty() {
            let n = this.unread.len().min(buf.remaining());
            buf.put_slice(&this.unread[..n]);
            this.unread.drain(..n);
            if this.unread.is_empty() {
                this.unread = Vec::new(); // its memory is not kept for the connection's life
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ServedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // A TcpStream has no buffer of its own to flush.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:50000".parse().unwrap()
    }

    fn parsed(head: &str) -> Option<OneShotGet<'_>> {
        parse_one_shot(head.as_bytes(), peer())
    }

    #[test]
    fn a_closing_get_is_one_shot() {
        let get = parsed(
            "GET /tracker/announce?info_hash=%01&port=1 HTTP/1.1\r\nHost: pod\r\n\
             Connection: close\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2, 10.0.0.3\r\n\r\n",
        )
        .expect("one-shot");
        assert_eq!(
            get,
            OneShotGet {
                path: "/tracker/announce",
                query: "info_hash=%01&port=1",
                peer: peer(),
                forwarded_for: Some("10.0.0.2, 10.0.0.3"),
            }
        );
        // HTTP/1.0 closes unless asked to keep alive; a path without a query.
        let get = parsed("GET /tracker/scrape HTTP/1.0\r\n\r\n").expect("one-shot");
        assert_eq!((get.path, get.query), ("/tracker/scrape", ""));
        assert!(parsed("GET /x HTTP/1.1\r\nconnection: keep-alive, Close\r\n\r\n").is_some());
    }

    #[test]
    fn anything_else_is_hyper_s() {
        for head in [
            // Kept alive: HTTP/1.1 by default, HTTP/1.0 when asked.
            "GET /tracker/announce HTTP/1.1\r\nHost: pod\r\n\r\n",
            "GET /tracker/announce HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            // Not a plain GET without a body.
            "HEAD /tracker/announce HTTP/1.1\r\nConnection: close\r\n\r\n",
            "POST /tracker/announce HTTP/1.1\r\nConnection: close\r\nContent-Length: 2\r\n\r\n",
            "GET /tracker/announce HTTP/1.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /tracker/announce HTTP/1.1\r\nConnection: close\r\nExpect: 100-continue\r\n\r\n",
            "GET /tracker/socket HTTP/1.1\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\r\n",
            // A head that is not whole yet, or that has bytes after it.
            "GET /tracker/announce HTTP/1.1\r\nConnection: close\r\n",
            "GET /tracker/announce HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            // Not HTTP at all.
            "\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03",
        ] {
            assert_eq!(parsed(head), None, "{head:?}");
        }
        // More headers than the one-shot path looks at.
        let many: String = (0..30).map(|i| format!("X-{i}: {i}\r\n")).collect();
        let head = format!("GET /tracker/announce HTTP/1.1\r\nConnection: close\r\n{many}\r\n");
        assert_eq!(parsed(&head), None);
        // A body of length 0 is no body.
        assert!(
            parsed("GET /a HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").is_some()
        );
    }

    #[test]
    fn the_answer_is_what_hyper_writes() {
        let answer = String::from_utf8(one_shot_answer(b"d5:peers0:e")).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, "d5:peers0:e");
        let mut lines = head.lines();
        assert_eq!(lines.next(), Some("HTTP/1.1 200 OK"));
        let headers: Vec<&str> = lines.collect();
        assert_eq!(
            headers[..4],
            [
                "content-type: text/plain",
                "cache-control: no-store",
                "content-length: 11",
                "connection: close"
            ]
        );
        let date = headers[4].strip_prefix("date: ").expect("a date");
        assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
    }
}

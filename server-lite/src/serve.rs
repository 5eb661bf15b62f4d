//! The accept loop: each TCP connection is served by hyper's HTTP/1.1 server with upgrades,
//! the router answers its requests, and a shutdown stops accepting and lets requests in flight
//! finish.
//!
//! Why not `axum::serve`: it serves through hyper-util's protocol-detecting builder, which wraps
//! every connection in a private type. An upgraded WebSocket then cannot be turned back into its
//! `TcpStream`, which the tracker needs to wait for bytes without holding a buffer (see
//! `tracker/ws.rs`). HTTP/1.1 only: browsers speak HTTP/2 only over TLS, which a reverse proxy in
//! front of the pod terminates, and proxies speak HTTP/1.1 to the pod.

use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// A client that sends no complete request head within this is disconnected (hyper's default
/// once it has a timer; written here because it is what bounds a slow-loris connection).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

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
/// flight. Handlers see the client's address as `ConnectInfo<SocketAddr>`, as with axum's own
/// server. Upgraded connections (tracker sockets) are the tracker's to end.
pub async fn serve(
    listener: TcpListener,
    router: Router,
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
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(addr));
            router.clone().oneshot(request)
        });
        let connection = http
            .serve_connection(TokioIo::new(ServedTcp(tcp)), service)
            .with_upgrades();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
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

/// A served connection: the `TcpStream` as is, except that hyper's `shutdown` after a last
/// response (`Connection: close`, every HTTP tracker announce) does nothing; closing the socket
/// right after sends the same FIN, one system call fewer per connection.
///
/// The tracker takes an upgraded connection back out as `TokioIo<ServedTcp>` (`tracker/ws.rs`).
pub struct ServedTcp(pub TcpStream);

impl AsyncRead for ServedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ServedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // A TcpStream has no buffer of its own to flush.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

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
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// A client that sends no complete request head within this is disconnected (hyper's default
/// once it has a timer; written here because it is what bounds a slow-loris connection).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

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
        // No Nagle: tracker signalling is many small WebSocket messages, and Nagle plus the
        // peer's delayed ACK stalls the second of two back-to-back writes by up to 40 ms.
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(addr));
            router.clone().oneshot(request)
        });
        let connection = http
            .serve_connection(TokioIo::new(tcp), service)
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

//! # server-lite: the Shoal pod
//!
//! One binary that serves the web app, the REST API, the WebSeed and the trackers. The router is
//! built by [`app`] from a [`Pod`] state so that tests can drive it without a socket (as in axum's
//! `examples/testing`); [`start`] binds it to a real socket for the binary and end-to-end tests.
//!
//! Modules: [`config`] (flags and environment), [`db`] (SQLite and migrations), [`api`] (JSON
//! endpoints under `/api/v1`), [`bundle`] (the built web app with SPA fallback), [`auth`] (the
//! interim admin token).

pub mod api;
pub mod auth;
pub mod bundle;
pub mod config;
pub mod db;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

pub use config::Config;
use db::Db;

/// The pod's shared state, cheap to clone into every handler.
#[derive(Clone)]
pub struct Pod {
    inner: Arc<PodInner>,
}

struct PodInner {
    config: Config,
    db: Db,
    admin_token: String,
}

impl Pod {
    /// Prepares the data directory (created if missing), opens the database and settles the
    /// admin token. Nothing listens yet.
    pub fn open(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            )
        })?;
        let db = Db::open(&config.database_path())?;
        let admin_token = auth::admin_token(&config)?;
        Ok(Self {
            inner: Arc::new(PodInner {
                config,
                db,
                admin_token,
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn admin_token(&self) -> &str {
        &self.inner.admin_token
    }
}

/// The whole HTTP surface of the pod.
pub fn app(pod: Pod) -> Router {
    Router::new()
        .nest("/api/v1", api::router())
        .fallback_service(bundle::service(&pod.config().bundle_dir()))
        .with_state(pod)
}

/// A pod listening on a socket.
pub struct RunningPod {
    pub addr: SocketAddr,
    pub pod: Pod,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningPod {
    /// The base URL, e.g. `http://127.0.0.1:9000`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets requests in flight finish, and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.task.await.context("server task panicked")??;
        Ok(())
    }
}

/// Opens the pod and serves it on `config.listen` (port 0 picks a free port).
pub async fn start(config: Config) -> anyhow::Result<RunningPod> {
    let listen = config.listen;
    let pod = Pod::open(config)?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = app(pod.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%addr, "pod listening");
    Ok(RunningPod {
        addr,
        pod,
        shutdown,
        task,
    })
}

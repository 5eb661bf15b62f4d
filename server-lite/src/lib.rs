//! # server-lite: the Shoal pod
//!
//! One binary that serves the web app, the REST API, the WebSeed and the trackers. The router is
//! built by [`app`] from a [`Pod`] state so that tests can drive it without a socket (as in axum's
//! `examples/testing`); [`start`] binds it to a real socket for the binary and end-to-end tests.
//!
//! Modules: [`config`] (flags and environment), [`db`] (SQLite and migrations), [`api`] (JSON
//! endpoints under `/api/v1`), [`bundle`] (the built web app with SPA fallback), [`auth`] (the
//! interim admin token), [`serve`] (the accept loop).

pub mod api;
pub mod auth;
pub mod bundle;
pub mod catalogue;
pub mod config;
pub mod db;
pub mod demo;
pub mod media;
pub mod serve;
pub mod stats;
pub mod tracker;
pub mod upload;
pub mod videos;
pub mod webseed;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;

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
    catalogue: catalogue::Catalogue,
    counters: stats::Counters,
    tracker: tracker::Tracker,
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
        let pod = Self::assemble(config, db, admin_token);
        pod.load_catalogue()?;
        Ok(pod)
    }

    fn assemble(config: Config, db: Db, admin_token: String) -> Self {
        Self {
            inner: Arc::new(PodInner {
                tracker: tracker::Tracker::new(tracker::TrackerConfig::default()),
                config,
                db,
                admin_token,
                catalogue: catalogue::Catalogue::default(),
                counters: stats::Counters::default(),
            }),
        }
    }

    /// Fills the catalogue from the database and tidies the data directory (what a crash left).
    fn load_catalogue(&self) -> anyhow::Result<()> {
        // Start-up is allowed to block: nothing is served yet.
        let rows = self.db().blocking_call(|c| videos::all(c))?;
        upload::clean_data_dir(&self.config().data_dir, &rows)?;
        let media = self.config().data_dir.join(upload::MEDIA_DIR);
        for video in rows {
            self.catalogue().insert(
                video.info_hash,
                catalogue::Entry::new(
                    media.join(&video.media_path),
                    video.size,
                    video.mime_type,
                    video.file_name,
                ),
            );
        }
        Ok(())
    }

    /// The base URL of the pod as people reach it (no trailing slash).
    pub fn public_url(&self) -> &str {
        self.config()
            .public_url
            .as_deref()
            .unwrap_or("http://127.0.0.1:9000")
            .trim_end_matches('/')
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

    /// What the pod serves, by info-hash (WebSeed files; the trackers' allow-list).
    pub fn catalogue(&self) -> &catalogue::Catalogue {
        &self.inner.catalogue
    }

    pub fn counters(&self) -> &stats::Counters {
        &self.inner.counters
    }

    pub fn tracker(&self) -> &tracker::Tracker {
        &self.inner.tracker
    }
}

/// The whole HTTP surface of the pod.
pub fn app(pod: Pod) -> Router {
    Router::new()
        .nest("/api/v1", api::router())
        .nest("/tracker", tracker::router())
        .nest("/static", webseed::router(&pod))
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
pub async fn start(mut config: Config) -> anyhow::Result<RunningPod> {
    let listen = config.listen;
    let listener = serve::listen(listen).with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    // URLs in torrents and magnets need the real port, known only now (port 0 in tests).
    if config.public_url.is_none() {
        config.public_url = Some(format!("http://{addr}"));
    }
    let demo = config.demo;
    let pod = Pod::open(config)?;
    if demo {
        demo::add_if_empty(&pod).await;
    }
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = app(pod.clone());
    let stopping = pod.clone();
    let task = tokio::spawn(serve::serve(listener, router, async move {
        let _ = stopped.await;
        // Upgraded WebSockets outlive the graceful shutdown: end the tracker's tasks.
        stopping.tracker().shutdown();
    }));
    tracing::info!(%addr, "pod listening");
    Ok(RunningPod {
        addr,
        pod,
        shutdown,
        task,
    })
}

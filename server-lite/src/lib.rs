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
        .merge(tracker::router())
        .nest("/static", webseed::router(&pod))
        .fallback_service(bundle::service(&pod.config().bundle_dir()))
        .with_state(pod)
}

/// A pod listening on a socket.
pub struct RunningPod {
    pub addr: SocketAddr,
    pub pod: Pod,
    /// `true` asks every event loop to stop; dropping it does too.
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The event loops beyond the caller's runtime, each on its own thread.
    loops: Vec<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl RunningPod {
    /// The base URL, e.g. `http://127.0.0.1:9000`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets requests in flight finish, and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        // Every loop is waited for, even after one failed; the first failure is returned.
        let mut ended = vec![match self.task.await {
            Ok(served) => served.map_err(Into::into),
            Err(err) => Err(anyhow::Error::new(err).context("server task panicked")),
        }];
        for event_loop in self.loops {
            let joined = tokio::task::spawn_blocking(move || event_loop.join()).await;
            ended.push(match joined {
                Ok(Ok(served)) => served.map_err(Into::into),
                Ok(Err(_)) => Err(anyhow::anyhow!("an event loop panicked")),
                Err(err) => Err(anyhow::Error::new(err).context("cannot wait for an event loop")),
            });
        }
        ended.into_iter().collect()
    }
}

/// Opens the pod and serves it on `config.listen` (port 0 picks a free port).
///
/// The pod serves on `config.threads` event loops (one per core by default): the caller's
/// runtime, and one `current_thread` runtime per further thread. Each has its own listening
/// socket on the same port (`SO_REUSEPORT`), so a connection lives and dies on the thread
/// that accepted it. Why not one work-stealing runtime: a tracker announce is a few
/// microseconds of work, and handing tasks between workers (waking a parked one, stealing,
/// contended queues) cost as much again; measured with `bench-tracker`, one thread served
/// announces at 24 µs of CPU each where two stealing workers took 30. State shared by all
/// loops (catalogue, swarms, database) is behind locks as before; a relayed offer wakes its
/// receiver's task on whichever loop it lives. Give the caller's runtime one worker (the
/// `server-lite` binary uses a `current_thread` one) so that there is one loop per core.
pub async fn start(mut config: Config) -> anyhow::Result<RunningPod> {
    let listen = config.listen;
    // Only Linux spreads the connections of a shared port over its sockets; elsewhere one
    // socket would get them all.
    let threads = if cfg!(any(target_os = "linux", target_os = "android")) {
        config
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    } else {
        1
    };
    let shared = threads > 1;
    let listener = if shared {
        serve::listen_shared_alone(listen)
    } else {
        serve::listen(listen, false)
    }
    .with_context(|| format!("cannot listen on {listen}"))?;
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
    let (shutdown, stopping) = tokio::sync::watch::channel(false);
    let router = app(pod.clone());
    let mut loops = Vec::new();
    for n in 1..threads {
        loops.push(spawn_event_loop(
            n,
            addr,
            pod.clone(),
            router.clone(),
            stopping.clone(),
        )?);
    }
    let task = tokio::spawn(run_loop(listener, pod.clone(), router, stopping));
    tracing::info!(%addr, threads, "pod listening");
    Ok(RunningPod {
        addr,
        pod,
        shutdown,
        task,
        loops,
    })
}

/// How long a stopping loop waits for the tracker's sockets to send their close frames.
const TRACKER_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// One event loop's life: serves `listener` until `true` is sent on `stopping` (or its sender,
/// the `RunningPod`, is dropped), then ends the tracker's WebSocket tasks, which outlive the
/// graceful shutdown of HTTP (every loop asks; asking twice is harmless), and waits for their
/// close frames: the extra loops' runtimes end with their threads, and tasks left on a dropped
/// runtime never run again.
async fn run_loop(
    listener: tokio::net::TcpListener,
    pod: Pod,
    router: Router,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let tracker_pod = pod.clone();
    let one_shot_pod = pod.clone();
    let one_shot: serve::OneShot = Arc::new(move |get| tracker::http::one_shot(&one_shot_pod, get));
    let served = serve::serve(listener, router, one_shot, async move {
        let _ = stopping.wait_for(|stop| *stop).await;
        tracker_pod.tracker().shutdown();
    })
    .await;
    pod.tracker().closed(TRACKER_CLOSE_GRACE).await;
    served
}

/// One more event loop: a thread with a `current_thread` runtime serving `router` on a socket
/// of its own bound to `addr`. Returns once the socket listens, or with why it cannot.
fn spawn_event_loop(
    n: usize,
    addr: SocketAddr,
    pod: Pod,
    router: Router,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<std::thread::JoinHandle<std::io::Result<()>>> {
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(format!("shoal-loop-{n}"))
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                // The listener registers with the runtime it is created in: this one.
                let listener = match serve::listen(addr, true) {
                    Ok(listener) => {
                        let _ = bound_tx.send(Ok(()));
                        listener
                    }
                    Err(err) => {
                        let kind = err.kind();
                        let _ = bound_tx.send(Err(err));
                        return Err(kind.into());
                    }
                };
                run_loop(listener, pod, router, stopping).await
            })
        })
        .context("cannot start an event loop thread")?;
    bound_rx
        .recv()
        .context("an event loop thread ended before listening")?
        .with_context(|| format!("cannot listen on {addr} a second time (SO_REUSEPORT)"))?;
    Ok(handle)
}

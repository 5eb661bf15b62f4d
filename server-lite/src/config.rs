//! The pod's configuration: command line first, then `SHOAL_*` environment variables, then
//! defaults (see "The pod's outer contract" in the README). Everything the rest of the pod needs
//! to know about its surroundings comes through [`Config`], so tests build one by hand.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;

/// Command line of `server-lite`. Every flag has a `SHOAL_*` environment twin.
#[derive(Debug, Clone, Parser)]
#[command(name = "server-lite", version, about = "The Shoal pod")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "SHOAL_LISTEN", default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,

    /// Directory for the database, uploaded media and torrents; created if missing.
    #[arg(long, env = "SHOAL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Directory holding the built web app (Trunk's output). Defaults to `www/dist` of the
    /// checkout the binary was built from.
    #[arg(long, env = "SHOAL_BUNDLE")]
    pub bundle: Option<PathBuf>,

    /// Bearer token for writes until accounts exist. When unset, one is generated at first start
    /// and kept in `<data-dir>/admin-token`.
    #[arg(long, env = "SHOAL_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Largest upload accepted, in MiB.
    #[arg(long, env = "SHOAL_MAX_UPLOAD_MB", default_value_t = 4096)]
    pub max_upload_mb: u64,

    /// When the index is empty at start, add a demo clip (made with ffmpeg) so that a new pod
    /// has something to play. The README's run command sets it.
    #[arg(long, env = "SHOAL_DEMO")]
    pub demo: bool,

    /// Keep uploads exactly as they are (no remux or transcode with ffmpeg). Files that
    /// MediaSource cannot stream from the first pieces then play in a slower way.
    #[arg(long, env = "SHOAL_KEEP_UPLOADS_AS_IS")]
    pub keep_uploads_as_is: bool,

    /// The URL people use to reach this pod (used in torrents, magnets and printed links).
    /// Defaults to `http://<listen>`.
    #[arg(long, env = "SHOAL_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// The pod runs behind a reverse proxy on the same host (nginx, Caddy for TLS): for
    /// connections from loopback, the client's address is the last one in `X-Forwarded-For`
    /// (the one the proxy added). Without it every client would look like 127.0.0.1, and the
    /// HTTP tracker would hand out useless peer addresses. Leave off when clients reach the
    /// pod directly: the header would then be the client's own claim.
    #[arg(long, env = "SHOAL_TRUST_PROXY")]
    pub trust_proxy: bool,

    /// Event loops serving connections, each on a thread of its own with its own listening
    /// socket on the same port (the kernel spreads new connections over them). Default: one per
    /// core.
    #[arg(long, env = "SHOAL_THREADS")]
    pub threads: Option<usize>,
}

impl Config {
    /// A configuration for tests and embedding: the given data dir, an ephemeral loopback port.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            bundle: None,
            admin_token: None,
            public_url: None,
            max_upload_mb: 4096,
            demo: false,
            keep_uploads_as_is: false,
            trust_proxy: false,
            threads: None,
        }
    }

    pub fn max_upload_bytes(&self) -> u64 {
        self.max_upload_mb.saturating_mul(1024 * 1024)
    }

    /// Where the web app's files are served from.
    pub fn bundle_dir(&self) -> PathBuf {
        match &self.bundle {
            Some(dir) => dir.clone(),
            None => default_bundle_dir(),
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("shoal.sqlite")
    }
}

/// `www/dist` beside the crate this binary was built from: the README's run command builds the
/// bundle there, so `server-lite` started from anywhere in the checkout finds it.
fn default_bundle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../www/dist")
}

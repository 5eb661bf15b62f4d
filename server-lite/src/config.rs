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

    /// The URL people use to reach this pod (used in torrents, magnets and printed links).
    /// Defaults to `http://<listen>`.
    #[arg(long, env = "SHOAL_PUBLIC_URL")]
    pub public_url: Option<String>,
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
        }
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

//! A real pod for a test: server-lite's own code listening on a free loopback port, with a fresh
//! data directory (a real SQLite file) that disappears with the pod.

use std::path::PathBuf;

use server_lite::{Config, RunningPod};

pub struct TestPod {
    running: Option<RunningPod>,
    runtime: tokio::runtime::Runtime,
    pub data_dir: tempfile::TempDir,
}

impl TestPod {
    /// Starts a pod serving the built web app (`www/dist`). Panics with the command to run when
    /// the bundle was not built, since every browser test needs it.
    pub fn start() -> Self {
        let bundle = crate::workspace_root().join("www/dist");
        assert!(
            bundle.join("index.html").is_file(),
            "the web app is not built ({} is missing): run `./shoal test`, which builds it first",
            bundle.display()
        );
        Self::start_with(|config| config.bundle = Some(bundle))
    }

    /// Starts a pod after letting the test adjust its configuration.
    pub fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_data_dir(data_dir.path());
        config.admin_token = Some("test-admin-token-0123456789".into());
        adjust(&mut config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let running = runtime
            .block_on(server_lite::start(config))
            .expect("pod starts");
        Self {
            running: Some(running),
            runtime,
            data_dir,
        }
    }

    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        self.running.as_ref().expect("running").url()
    }

    pub fn admin_token(&self) -> String {
        self.running
            .as_ref()
            .expect("running")
            .pod
            .admin_token()
            .to_owned()
    }

    pub fn data_path(&self) -> PathBuf {
        self.data_dir.path().to_path_buf()
    }

    /// GET a JSON document from the pod.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        ureq::get(&format!("{}{path}", self.url()))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .into_json()
            .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
    }
}

impl Drop for TestPod {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = self.runtime.block_on(running.stop());
        }
    }
}

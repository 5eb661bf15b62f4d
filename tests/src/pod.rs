//! A real pod for a test: server-lite's own code listening on a free loopback port, with a fresh
//! data directory (a real SQLite file) that disappears with the pod.

use std::path::PathBuf;

use server_lite::{Config, RunningPod};

pub struct TestPod {
    running: Option<RunningPod>,
    runtime: tokio::runtime::Runtime,
    pub data_dir: tempfile::TempDir,
    /// The copy of the web app a pod from [`TestPod::start_with_pages`] serves.
    bundle_copy: Option<tempfile::TempDir>,
}

impl TestPod {
    /// Starts a pod serving the built web app (`www/dist`). Panics with the command to run when
    /// the bundle was not built, since every browser test needs it.
    pub fn start() -> Self {
        let bundle = built_web_app();
        Self::start_with(|config| config.bundle = Some(bundle))
    }

    /// Starts a pod serving a copy of the built web app with `pages` added (file name →
    /// contents), so that test pages are same-origin with the pod's client library, tracker
    /// and WebSeed.
    pub fn start_with_pages(pages: &[(&str, &[u8])]) -> Self {
        let copy = tempfile::tempdir().expect("temp dir");
        copy_dir(&built_web_app(), copy.path()).expect("cannot copy the web app");
        for (name, contents) in pages {
            std::fs::write(copy.path().join(name), contents).expect("cannot write a test page");
        }
        let bundle = copy.path().to_path_buf();
        let mut pod = Self::start_with(|config| config.bundle = Some(bundle));
        pod.bundle_copy = Some(copy);
        pod
    }

    /// Starts a pod after letting the test adjust its configuration.
    pub fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_data_dir(data_dir.path());
        config.admin_token = Some("test-admin-token-0123456789".into());
        adjust(&mut config);
        // One worker: the pod adds an event loop of its own per further core (`start`).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
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
            bundle_copy: None,
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

/// `www/dist`; panics with the command to run when the bundle was not built, since every
/// browser test needs it.
fn built_web_app() -> PathBuf {
    let bundle = crate::workspace_root().join("www/dist");
    assert!(
        bundle.join("index.html").is_file(),
        "the web app is not built ({} is missing): run `./shoal test`, which builds it first",
        bundle.display()
    );
    bundle
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

impl Drop for TestPod {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = self.runtime.block_on(running.stop());
        }
    }
}

/// A multipart/form-data body built by hand (what a browser's FormData sends).
pub struct Form {
    boundary: String,
    body: Vec<u8>,
}

impl Default for Form {
    fn default() -> Self {
        Self::new()
    }
}

impl Form {
    pub fn new() -> Self {
        Self {
            boundary: "----shoal-test-boundary-7d3a9".into(),
            body: Vec::new(),
        }
    }

    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n",
                self.boundary
            )
            .as_bytes(),
        );
        self
    }

    pub fn file(mut self, name: &str, file_name: &str, bytes: &[u8]) -> Self {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                self.boundary
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    pub fn finish(mut self) -> (String, Vec<u8>) {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (self.content_type(), self.body)
    }
}

impl TestPod {
    /// The pod's state, for tests that reach behind the API (e.g. the catalogue).
    pub fn pod(&self) -> &server_lite::Pod {
        &self.running.as_ref().expect("running").pod
    }

    /// POSTs a multipart form to the upload endpoint with the admin token; returns the status
    /// and the JSON answer.
    pub fn upload(&self, form: Form) -> (u16, serde_json::Value) {
        let (content_type, body) = form.finish();
        let result = ureq::post(&format!("{}/api/v1/videos/upload", self.url()))
            .set("Authorization", &format!("Bearer {}", self.admin_token()))
            .set("Content-Type", &content_type)
            .send_bytes(&body);
        match result {
            Ok(r) => (r.status(), r.into_json().unwrap_or(serde_json::Value::Null)),
            Err(ureq::Error::Status(code, r)) => {
                (code, r.into_json().unwrap_or(serde_json::Value::Null))
            }
            Err(e) => panic!("upload failed: {e}"),
        }
    }

    /// Uploads a file with a name; panics unless the pod accepts it. Returns the video's JSON.
    pub fn upload_file(&self, path: &std::path::Path, name: &str) -> serde_json::Value {
        let bytes = std::fs::read(path).expect("test media");
        let file_name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (status, answer) = self.upload(Form::new().text("name", name).file(
            "videofile",
            &file_name,
            &bytes,
        ));
        assert_eq!(status, 200, "upload of {file_name} refused: {answer}");
        let uuid = answer["video"]["uuid"].as_str().expect("uuid").to_owned();
        self.get_json(&format!("/api/v1/videos/{uuid}"))
    }
}

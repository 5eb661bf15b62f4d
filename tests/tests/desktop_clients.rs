//! Standard BitTorrent clients fetch a video from a pod given nothing but the pod's `.torrent`:
//! aria2 and libtorrent (Debian packages; libtorrent is what qBittorrent and Deluge are built on),
//! and the real WebTorrent from npm running in Node. Each has DHT, local peer discovery and port
//! mapping off, so the only sources are the torrent's trackers and its WebSeed (BEP 19
//! `url-list`); each must end with exactly the bytes the pod serves. And create-torrent (npm, what
//! WebTorrent's `client.seed()` uses) must compute the pod's info-hash for the same file: a
//! WebTorrent user seeding the file joins the pod's swarm.
//!
//! The tools come from `./shoal test`: Debian's `aria2` and `python3-libtorrent`, and
//! `npm install --ignore-scripts` in tests/js (webtorrent, create-torrent). Every test says which
//! one is missing rather than skipping.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use client_core::metainfo::Metainfo;
use serde_json::Value;
use sha1::{Digest, Sha1};
use shoal_tests::media;
use shoal_tests::pod::TestPod;
use shoal_tests::workspace_root;

/// Longest any one client may take. A few MB over loopback takes about a second; the bound only
/// turns a hang into a failure with the client's output.
const CLIENT_TIME_LIMIT: Duration = Duration::from_secs(90);

/// A pod holding one uploaded clip, and what it serves for it.
struct Served {
    pod: TestPod,
    video: Value,
    /// The WebSeed's bytes (`GET fileUrl`): the file every client must end up with.
    bytes: Vec<u8>,
    torrent: Metainfo,
    torrent_bytes: Vec<u8>,
    /// Scratch space for this test (clip, downloads); removed with the test.
    dir: tempfile::TempDir,
}

impl Served {
    /// Uploads a clip of a few MB: with create-torrent's piece length (16 KiB below 22.6 MiB)
    /// that is a couple of hundred pieces, so clients fetch many ranges, not one.
    fn start() -> Self {
        let pod = TestPod::start_with(|_| {});
        let dir = tempfile::tempdir().expect("temp dir");
        let clip = media::noisy_clip(dir.path(), 6, 5);
        let video = pod.upload_file(&clip, "Noisy test card");
        let bytes = shoal_tests::get_bytes(video["fileUrl"].as_str().expect("fileUrl"));
        assert_eq!(
            bytes.len() as u64,
            video["size"].as_u64().unwrap(),
            "{video}"
        );
        let torrent_bytes =
            shoal_tests::get_bytes(video["torrentUrl"].as_str().expect("torrentUrl"));
        let torrent = Metainfo::parse(&torrent_bytes).expect("the pod's torrent parses");
        assert!(
            torrent.info.piece_count() >= 100,
            "the clip should span many pieces, has {}",
            torrent.info.piece_count()
        );
        Self {
            pod,
            video,
            bytes,
            torrent,
            torrent_bytes,
            dir,
        }
    }

    fn info_hash(&self) -> &str {
        self.video["infoHash"].as_str().unwrap()
    }

    fn torrent_url(&self) -> &str {
        self.video["torrentUrl"].as_str().unwrap()
    }

    /// The HTTP tracker the torrent lists (the one desktop clients can use).
    fn http_tracker(&self) -> String {
        format!("{}/tracker/announce", self.pod.url())
    }

    /// A fresh, empty directory for one client's download.
    fn download_dir(&self, client: &str) -> PathBuf {
        let dir = self.dir.path().join(client);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Asserts that `path` holds exactly the served file.
    fn assert_same_file(&self, client: &str, path: &Path) {
        let got = std::fs::read(path)
            .unwrap_or_else(|e| panic!("{client} left no file at {}: {e}", path.display()));
        assert_eq!(
            got.len(),
            self.bytes.len(),
            "{client}: file size differs from the pod's"
        );
        assert_eq!(
            sha1_hex(&got),
            sha1_hex(&self.bytes),
            "{client}: file differs from the pod's"
        );
    }

    /// The WebSeed counter must have grown by at least one copy of the file: the bytes came from
    /// the pod's WebSeed (nobody else has them).
    fn assert_webseed_served(&self, client: &str, before: u64) {
        let after = webseed_bytes(&self.pod);
        assert!(
            after - before >= self.bytes.len() as u64,
            "{client}: the pod's WebSeed sent {} bytes, less than the file's {}",
            after - before,
            self.bytes.len()
        );
    }
}

#[test]
fn aria2_downloads_a_video_with_only_the_pods_torrent() {
    require_command("aria2c", "aria2");
    let served = Served::start();
    let torrent_file = served.dir.path().join("video.torrent");
    std::fs::write(&torrent_file, &served.torrent_bytes).unwrap();
    let out_dir = served.download_dir("aria2");
    let log = served.dir.path().join("aria2.log");
    // aria2 cannot speak WebSocket trackers ("ws is not supported yet") and, failing the first
    // tier, only moves to the next one on its next announce round, after a fast download has
    // finished. Leaving the torrent's ws:// tracker out makes it announce to the HTTP tracker at
    // once, which is what this test wants to see.
    let ws_trackers: Vec<&str> = served
        .torrent
        .announce
        .iter()
        .filter(|t| t.starts_with("ws"))
        .map(String::as_str)
        .collect();
    let mut aria2 = Command::new("aria2c");
    if !ws_trackers.is_empty() {
        aria2.arg(format!("--bt-exclude-tracker={}", ws_trackers.join(",")));
    }
    let before = webseed_bytes(&served.pod);
    let output = run_bounded(
        aria2
            .arg(format!("--dir={}", out_dir.display()))
            .args([
                "--enable-dht=false",
                "--enable-dht6=false",
                "--bt-enable-lpd=false",
                "--enable-peer-exchange=false",
                "--follow-torrent=mem",
                "--seed-time=0",
                "--file-allocation=none",
                "--summary-interval=0",
                "--console-log-level=warn",
                "--log-level=info",
            ])
            .arg(format!("--log={}", log.display()))
            .arg(&torrent_file),
        "aria2c",
    );
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        output.status.success(),
        "aria2c failed: {}",
        describe(&output)
    );

    served.assert_same_file("aria2", &out_dir.join(&served.torrent.info.name));
    served.assert_webseed_served("aria2", before);
    // It announced to the pod's HTTP tracker and was not refused.
    assert!(
        log.contains("GET /tracker/announce?info_hash="),
        "aria2 never announced to the pod's HTTP tracker; its log:\n{}",
        tail(&log)
    );
    assert!(
        !log.contains("Tracker returned failure reason"),
        "the pod's tracker refused aria2's announce; its log:\n{}",
        tail(&log)
    );
}

#[test]
fn libtorrent_downloads_a_video_with_only_the_pods_torrent() {
    require_python_libtorrent();
    let served = Served::start();
    let out_dir = served.download_dir("libtorrent");
    let script = workspace_root().join("tests/py/libtorrent_fetch.py");
    let before = webseed_bytes(&served.pod);
    let output = run_bounded(
        Command::new(SYSTEM_PYTHON)
            .arg(&script)
            .arg(served.torrent_url())
            .arg(&out_dir)
            .arg("60"),
        "libtorrent_fetch.py",
    );
    let report = json_line(&output, "libtorrent_fetch.py");
    assert!(
        output.status.success() && report["ok"] == true,
        "libtorrent did not finish: {report}"
    );

    assert_eq!(report["info_hash"], served.info_hash(), "{report}");
    assert_eq!(report["state"], "seeding", "{report}");
    assert_eq!(
        report["pieces"].as_u64(),
        Some(served.torrent.info.piece_count() as u64),
        "every piece should have passed libtorrent's hash check: {report}"
    );
    assert!(report["errors"].as_array().unwrap().is_empty(), "{report}");
    served.assert_same_file("libtorrent", Path::new(report["file"].as_str().unwrap()));
    served.assert_webseed_served("libtorrent", before);
    // The pod's HTTP tracker answered it (libtorrent cannot use the ws:// one and says so).
    let http_tracker = served.http_tracker();
    assert!(
        report["tracker_replies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["url"] == http_tracker.as_str()),
        "the pod's HTTP tracker never answered libtorrent: {report}"
    );
}

#[test]
fn webtorrent_in_node_downloads_from_the_webseed_via_the_trackers() {
    let js = require_node_modules();
    let served = Served::start();
    let out_dir = served.download_dir("webtorrent");
    let before = webseed_bytes(&served.pod);
    let output = run_bounded(
        Command::new("node")
            .current_dir(&js)
            .arg("webtorrent-fetch.mjs")
            .arg(served.torrent_url())
            .arg(&out_dir)
            .arg("60"),
        "webtorrent-fetch.mjs",
    );
    let report = json_line(&output, "webtorrent-fetch.mjs");
    assert!(
        output.status.success() && report["ok"] == true,
        "WebTorrent did not finish: {report}"
    );

    assert_eq!(report["infoHash"], served.info_hash(), "{report}");
    assert_eq!(
        report["length"].as_u64(),
        Some(served.bytes.len() as u64),
        "{report}"
    );
    assert_eq!(report["sha1"], sha1_hex(&served.bytes).as_str(), "{report}");
    assert_eq!(
        report["webSeeds"],
        serde_json::json!([served.video["fileUrl"]]),
        "{report}"
    );
    // Nobody else is in the swarm: the WebSeed delivered every byte.
    assert_eq!(
        report["fromWebSeed"].as_u64(),
        Some(served.bytes.len() as u64),
        "{report}"
    );
    served.assert_same_file("WebTorrent", Path::new(report["file"].as_str().unwrap()));
    served.assert_webseed_served("WebTorrent", before);
    // At least one of the pod's trackers answered, and no other tracker was asked.
    let trackers = report["trackers"].as_object().expect("trackers");
    assert!(
        !trackers.is_empty(),
        "none of the pod's trackers answered: {report}"
    );
    for url in trackers.keys() {
        assert!(
            served.torrent.announce.contains(url),
            "WebTorrent announced to {url}, which the torrent does not name: {report}"
        );
    }
}

#[test]
fn create_torrent_computes_the_pods_info_hash_for_the_same_file() {
    let js = require_node_modules();
    let served = Served::start();
    // The torrent's name is the file name in the WebSeed URL (its last segment).
    let file_url = served.video["fileUrl"].as_str().unwrap();
    let name = file_url.rsplit('/').next().unwrap();
    assert_eq!(name, served.torrent.info.name);
    let copy = served.download_dir("create-torrent").join(name);
    std::fs::write(&copy, &served.bytes).unwrap();

    let output = run_bounded(
        Command::new("node")
            .current_dir(&js)
            .arg("create-torrent-hash.mjs")
            .arg(&copy)
            .arg(name),
        "create-torrent-hash.mjs",
    );
    let report = json_line(&output, "create-torrent-hash.mjs");
    assert!(
        output.status.success(),
        "create-torrent failed: {}",
        describe(&output)
    );
    assert_eq!(
        report["pieceLength"].as_u64(),
        Some(served.torrent.info.piece_length as u64),
        "{report}"
    );
    assert_eq!(
        report["infoHash"],
        served.info_hash(),
        "create-torrent and the pod disagree on the info-hash of the same file: {report}"
    );
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Debian's interpreter: python3-libtorrent installs for it, while `python3` on PATH may be
/// another (e.g. a pyenv build) without the module.
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

fn require_command(command: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {command}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{command} is missing: run ./shoal test, which installs it (Debian package {package})"
    );
}

fn require_python_libtorrent() {
    let found = Command::new(SYSTEM_PYTHON)
        .args(["-c", "import libtorrent"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "libtorrent for {SYSTEM_PYTHON} is missing: run ./shoal test, which installs it (Debian \
         package python3-libtorrent)"
    );
}

/// tests/js with its npm dependencies installed.
fn require_node_modules() -> PathBuf {
    require_command("node", "nodejs");
    let js = workspace_root().join("tests/js");
    for package in ["webtorrent", "create-torrent"] {
        assert!(
            js.join("node_modules").join(package).is_dir(),
            "{package} is not installed in {}: run ./shoal test (or `npm install --ignore-scripts` \
             there)",
            js.display()
        );
    }
    js
}

fn sha1_hex(bytes: &[u8]) -> String {
    hex(&Sha1::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn webseed_bytes(pod: &TestPod) -> u64 {
    pod.get_json("/api/v1/server/stats")["webseedBytesServed"]
        .as_u64()
        .expect("webseedBytesServed")
}

/// Runs a client to its end, killing it after [`CLIENT_TIME_LIMIT`] (then panicking with what
/// it printed).
fn run_bounded(command: &mut Command, what: &str) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    // Drain both pipes on threads so that a chatty client cannot block on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + CLIENT_TIME_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let output = Output {
                status: std::process::ExitStatus::default(),
                stdout: out.join().unwrap(),
                stderr: err.join().unwrap(),
            };
            panic!(
                "{what} still running after {CLIENT_TIME_LIMIT:?}: {}",
                describe(&output)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// The last line of a script's stdout, as JSON.
fn json_line(output: &Output, what: &str) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'));
    line.and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{what} printed no JSON result: {}", describe(output)))
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        tail(&String::from_utf8_lossy(&output.stdout)),
        tail(&String::from_utf8_lossy(&output.stderr))
    )
}

/// The end of a long text (client logs run to thousands of lines).
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

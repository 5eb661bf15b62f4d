//! What every benchmark needs: a pod holding a clip, reference servers run as child processes
//! that die with the benchmark, `wrk` runs, and a machine free of compilers.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use shoal_tests::pod::Form;

pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| fail(&format!("{name}={v:?} is not a number"))),
        Err(_) => default,
    }
}

/// Stops the benchmark with a message (no figure is better than a wrong one). `exit` runs no
/// destructors, so the reference servers still running are stopped here.
pub fn fail(message: &str) -> ! {
    eprintln!("shoal-bench: {message}");
    let running: Vec<u32> = RUNNING.lock().map(|r| r.clone()).unwrap_or_default();
    for pid in running {
        terminate(pid);
    }
    std::process::exit(1);
}

/// Process ids of the reference servers started and not yet stopped.
static RUNNING: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// SIGTERM, not SIGKILL: nginx's master then stops its workers, where a killed master would leave
/// them running (and listening) as orphans.
fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Finds a command on PATH or in the sbin directories (nginx lives in /usr/sbin, which a
/// non-root PATH may lack); stops with the package to install when it is missing.
pub fn require(command: &str, package: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"])
        .map(|dir| Path::new(dir).join(command))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        fail(&format!(
            "{command} is missing: run ./shoal bench, which installs it (Debian package {package})"
        ))
    })
}

pub fn print_machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("shoal-bench: {cpu}, {cores} cores, loopback only");
}

/// Waits until no `rustc` runs: compiling on the same two cores skews every figure (a build
/// divides throughput by two or more). Gives up after 30 minutes. Then, since other busy
/// programs (test browsers, fuzzers) skew figures too, waits up to 2 minutes for the CPUs to be
/// mostly idle, and says so when they never are (the figures that follow are then pessimistic).
pub fn wait_for_quiet_machine() {
    let started = Instant::now();
    let mut said = false;
    loop {
        let busy = Command::new("pgrep")
            .args(["-x", "rustc"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !busy {
            if said {
                // Let the last build's linker and disk writes settle.
                std::thread::sleep(Duration::from_secs(3));
            }
            break;
        }
        if started.elapsed() > Duration::from_secs(30 * 60) {
            fail("a cargo build has been running for 30 minutes: not benchmarking beside it");
        }
        if !said {
            println!("  (waiting for a running cargo build to finish: rustc is busy)");
            said = true;
        }
        std::thread::sleep(Duration::from_secs(5));
    }
    let started = Instant::now();
    loop {
        let used = cpu_busy_fraction(Duration::from_secs(1));
        if used < 0.25 {
            return;
        }
        if started.elapsed() > Duration::from_secs(120) {
            println!(
                "  (warning: other programs keep {:.0}% of the CPUs busy; the next figures are low)",
                used * 100.0
            );
            return;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// The share of all CPUs' time spent busy over `window` (from /proc/stat; 0 where unreadable).
fn cpu_busy_fraction(window: Duration) -> f64 {
    fn sample() -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
        let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
        Some((fields.iter().take(8).sum(), idle))
    }
    let Some((total_a, idle_a)) = sample() else {
        return 0.0;
    };
    std::thread::sleep(window);
    let Some((total_b, idle_b)) = sample() else {
        return 0.0;
    };
    let total = total_b.saturating_sub(total_a).max(1);
    1.0 - idle_b.saturating_sub(idle_a) as f64 / total as f64
}

/// A child process killed when dropped, so that no reference server outlives the benchmark.
pub struct ChildGuard {
    pub child: Child,
    pub name: &'static str,
}

impl ChildGuard {
    pub fn spawn(name: &'static str, command: &mut Command) -> Self {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| fail(&format!("cannot start {name}: {e}")));
        if let Ok(mut running) = RUNNING.lock() {
            running.push(child.id());
        }
        Self { child, name }
    }

    /// Waits until `port` accepts connections, or stops with the child's state.
    pub fn wait_for_port(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                fail(&format!("{} exited at start: {status}", self.name));
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        fail(&format!("{} does not listen on port {port}", self.name));
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let pid = self.child.id();
        if let Ok(mut running) = RUNNING.lock() {
            running.retain(|p| *p != pid);
        }
        terminate(pid);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `wrk` run's totals (from the `BENCH {json}` line our Lua scripts print).
#[derive(Debug, Clone, Copy)]
pub struct WrkRun {
    pub requests: u64,
    pub seconds: f64,
    /// Responses whose status was not 2xx/3xx.
    pub bad_status: u64,
    pub connect_errors: u64,
    pub timeouts: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// CPU time the server used during the run, when the caller measured it (0 otherwise).
    pub server_cpu_seconds: f64,
}

impl WrkRun {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    /// The server's CPU time per request answered, in µs.
    pub fn server_cpu_micros(&self) -> f64 {
        self.server_cpu_seconds * 1e6 / self.requests.max(1) as f64
    }
}

/// Measures the reference and ours `BENCH_ROUNDS` times (default 2), alternating so that a
/// passing disturbance hits both alike, and keeps each one's best run.
pub fn alternate(
    mut reference: impl FnMut() -> WrkRun,
    mut ours: impl FnMut() -> WrkRun,
) -> (WrkRun, WrkRun) {
    let best = |a: WrkRun, b: WrkRun| {
        if b.per_second() > a.per_second() {
            b
        } else {
            a
        }
    };
    let (mut r, mut o) = (reference(), ours());
    for _ in 1..env_u64("BENCH_ROUNDS", 2).max(1) {
        r = best(r, reference());
        o = best(o, ours());
    }
    (r, o)
}

/// Runs `wrk` with a Lua script (written into `dir`) against `url`.
pub fn wrk(
    dir: &Path,
    script: (&str, &str),
    url: &str,
    env: &[(&str, String)],
    connections: u64,
    duration: Duration,
) -> WrkRun {
    let wrk = require("wrk", "wrk");
    let script_path = dir.join(script.0);
    std::fs::write(&script_path, script.1).expect("write wrk script");
    // Two load threads: one per core here; more would only add scheduling noise.
    let threads = connections.clamp(1, 2);
    let output = Command::new(wrk)
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--timeout=10s")
        .arg("-s")
        .arg(&script_path)
        .arg(url)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run wrk: {e}")));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH "))
        .unwrap_or_else(|| {
            fail(&format!(
                "wrk printed no result against {url}: {}\n{stdout}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ))
        });
    let v: Value = serde_json::from_str(line).expect("wrk result JSON");
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    WrkRun {
        requests: n("requests"),
        seconds: n("duration_us") as f64 / 1e6,
        bad_status: n("status"),
        connect_errors: n("connect"),
        timeouts: n("timeout"),
        p50_ms: n("p50_us") as f64 / 1e3,
        p99_ms: n("p99_us") as f64 / 1e3,
        server_cpu_seconds: 0.0,
    }
}

/// The pod under test: server-lite's own code in this process, with one event loop per core as
/// the `server-lite` binary has (release build, like `./shoal run`): a runtime of one worker
/// here, and the loops `start` adds.
pub struct BenchPod {
    pub url: String,
    pub video: Value,
    /// The stored media file the WebSeed serves (nginx serves the same one).
    pub media_path: PathBuf,
    pub size: u64,
    running: Option<server_lite::RunningPod>,
    runtime: tokio::runtime::Runtime,
    _data_dir: tempfile::TempDir,
}

impl BenchPod {
    /// Starts a pod and uploads a clip of about 47 MB through the real API (ffmpeg's test card
    /// with grain, which compresses poorly, at 32 Mbit/s for 12 s): large enough that random
    /// ranges do not keep hitting the same few pages.
    pub fn start_with_clip() -> Self {
        require("ffmpeg", "ffmpeg");
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = server_lite::Config::for_data_dir(data_dir.path());
        let token = "bench-admin-token-0123456789".to_owned();
        config.admin_token = Some(token.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let running = runtime
            .block_on(server_lite::start(config))
            .unwrap_or_else(|e| fail(&format!("the pod does not start: {e:#}")));
        let url = running.url();

        let clip_dir = tempfile::tempdir().expect("temp dir");
        let clip = clip_dir.path().join("bench-clip.mp4");
        shoal_tests::media::ffmpeg(
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=640x360:rate=25",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=660",
                "-t",
                "12",
                "-vf",
                "noise=alls=40:allf=t",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-b:v",
                "32M",
                "-maxrate",
                "32M",
                "-bufsize",
                "8M",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-shortest",
            ],
            &clip,
        );
        let bytes = std::fs::read(&clip).expect("clip");
        let (content_type, body) = Form::new()
            .text("name", "Benchmark clip")
            .file("videofile", "bench-clip.mp4", &bytes)
            .finish();
        let answer: Value = ureq::post(&format!("{url}/api/v1/videos/upload"))
            .set("Authorization", &format!("Bearer {token}"))
            .set("Content-Type", &content_type)
            .send_bytes(&body)
            .unwrap_or_else(|e| fail(&format!("upload refused: {e}")))
            .into_json()
            .expect("upload answer");
        let uuid = answer["video"]["uuid"].as_str().expect("uuid");
        let video: Value = ureq::get(&format!("{url}/api/v1/videos/{uuid}"))
            .call()
            .map_err(|e| e.to_string())
            .and_then(|r| r.into_json().map_err(|e| e.to_string()))
            .unwrap_or_else(|e| fail(&format!("video lookup: {e}")));
        let hash: client_core::InfoHash = video["infoHash"]
            .as_str()
            .and_then(|h| client_core::InfoHash::from_hex(h).ok())
            .expect("infoHash");
        let entry = running
            .pod
            .catalogue()
            .get(&hash)
            .unwrap_or_else(|| fail("the uploaded video is not in the catalogue"));
        Self {
            url,
            media_path: entry.path.clone(),
            size: entry.size,
            video,
            running: Some(running),
            runtime,
            _data_dir: data_dir,
        }
    }

    pub fn info_hash_hex(&self) -> &str {
        self.video["infoHash"].as_str().unwrap()
    }
}

impl Drop for BenchPod {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = self.runtime.block_on(running.stop());
        }
    }
}

/// GET with an optional `Range`, returning status, `Content-Range` and body.
pub fn get(url: &str, range: Option<&str>) -> (u16, Option<String>, Vec<u8>) {
    let mut request = ureq::get(url);
    if let Some(range) = range {
        request = request.set("Range", range);
    }
    let response = match request.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => fail(&format!("GET {url}: {e}")),
    };
    let status = response.status();
    let content_range = response.header("Content-Range").map(str::to_owned);
    let mut body = Vec::new();
    response
        .into_reader()
        .read_to_end(&mut body)
        .unwrap_or_else(|e| fail(&format!("GET {url}: {e}")));
    (status, content_range, body)
}

/// `n` bytes in a human unit (KiB, MiB, GiB).
pub fn size_label(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1 << 20) as f64),
        n => format!("{} KiB", n >> 10),
    }
}

//! WebSeed range throughput: the pod against nginx serving the very same file.
//!
//! nginx runs with a minimal configuration written here and its defaults otherwise (sendfile on,
//! as Debian ships it; workers = cores), so the comparison is with nginx as people deploy it in
//! front of files. Only access logging is off, since the pod keeps no access log either, and
//! `keepalive_requests` is raised so that neither server is measured reconnecting (the pod never
//! closes a busy keep-alive connection). Ranges are random and aligned, like the pieces
//! BitTorrent clients ask a WebSeed for: 16 KiB (the smallest piece create-torrent makes) and
//! 1 MiB; several connections at once, load from `wrk`.

use std::process::Command;
use std::time::Duration;

use crate::tools::{self, env_u64, fail, size_label, BenchPod, ChildGuard};
use crate::Verdict;

const RANGES: [u64; 2] = [16 << 10, 1 << 20];
const WARM_UP: Duration = Duration::from_secs(2);

pub fn run(pod: &BenchPod, seconds: Duration) -> Vec<Verdict> {
    let nginx_bin = tools::require("nginx", "nginx");
    tools::require("wrk", "wrk");
    let connections = env_u64("BENCH_CONNECTIONS", 8);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = shoal_tests::free_port();
    let media_dir = pod.media_path.parent().expect("media dir");
    let file_name = pod.media_path.file_name().unwrap().to_string_lossy();

    // Workers run as an unprivileged user when nginx starts as root, and could not read the
    // pod's private temp dir: as root, keep them root (this is a throwaway loopback server).
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let prefix = dir.path();
    let config = format!(
        r#"{user}
worker_processes auto;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    sendfile on;
    tcp_nopush on;
    access_log off;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    types {{ video/mp4 mp4; audio/mp4 m4a; }}
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {media};
    }}
}}
"#,
        user = if is_root { "user root;" } else { "" },
        prefix = prefix.display(),
        media = media_dir.display(),
    );
    let config_path = prefix.join("nginx.conf");
    std::fs::write(&config_path, config).expect("write nginx.conf");
    let mut nginx = ChildGuard::spawn(
        "nginx",
        Command::new(nginx_bin)
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(&config_path)
            // Before reading its configuration nginx opens its built-in error log path.
            .arg("-e")
            .arg(prefix.join("error.log")),
    );
    nginx.wait_for_port(port);

    let nginx_url = format!("http://127.0.0.1:{port}/{file_name}");
    let pod_url = pod.video["fileUrl"].as_str().expect("fileUrl").to_owned();
    check_same_ranges(&nginx_url, &pod_url, pod.size);

    println!();
    println!(
        "== WebSeed range throughput: random aligned ranges of a {} file, {connections} connections, {} s a run",
        size_label(pod.size),
        seconds.as_secs()
    );
    println!(
        "  {:<8} {:>12} {:>12} {:>10}   {:>17} {:>17}",
        "range", "nginx MiB/s", "pod MiB/s", "pod/nginx", "nginx p50/p99 ms", "pod p50/p99 ms"
    );
    let mut verdicts = Vec::new();
    for range in RANGES {
        let env = [
            ("BENCH_FILE_SIZE", pod.size.to_string()),
            ("BENCH_RANGE", range.to_string()),
        ];
        let script = ("ranges.lua", include_str!("ranges.lua"));
        let measure = |url: &str| {
            tools::wait_for_quiet_machine();
            tools::wrk(dir.path(), script, url, &env, connections, WARM_UP);
            let run = tools::wrk(dir.path(), script, url, &env, connections, seconds);
            if run.bad_status > 0 || run.connect_errors > 0 || run.timeouts > 0 {
                fail(&format!("errors while loading {url}: {run:?}"));
            }
            run
        };
        let (reference, ours) = tools::alternate(|| measure(&nginx_url), || measure(&pod_url));
        let mib = |r: &tools::WrkRun| r.per_second() * range as f64 / (1 << 20) as f64;
        let ratio = mib(&ours) / mib(&reference);
        println!(
            "  {:<8} {:>12.1} {:>12.1} {:>10.2}   {:>17} {:>17}",
            size_label(range),
            mib(&reference),
            mib(&ours),
            ratio,
            format!("{:.2}/{:.2}", reference.p50_ms, reference.p99_ms),
            format!("{:.2}/{:.2}", ours.p50_ms, ours.p99_ms),
        );
        verdicts.push(Verdict {
            what: format!("WebSeed {} ranges vs nginx (throughput)", size_label(range)),
            ratio,
            goal: 0.9,
        });
    }
    verdicts
}

/// Both servers must answer the same range with 206, the same `Content-Range` and the same
/// bytes; otherwise the comparison would measure different work.
fn check_same_ranges(nginx_url: &str, pod_url: &str, size: u64) {
    for range in RANGES {
        let start = (size / 2) / range * range;
        let header = format!("bytes={start}-{}", start + range - 1);
        let (a_status, a_range, a_body) = tools::get(nginx_url, Some(&header));
        let (b_status, b_range, b_body) = tools::get(pod_url, Some(&header));
        if a_status != 206 || b_status != 206 || a_range != b_range || a_body != b_body {
            fail(&format!(
                "nginx and the pod disagree on {header}: nginx {a_status} {a_range:?} {} bytes, \
                 pod {b_status} {b_range:?} {} bytes",
                a_body.len(),
                b_body.len()
            ));
        }
    }
}

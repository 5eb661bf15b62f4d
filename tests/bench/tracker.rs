//! HTTP tracker announces per second: the pod's `/tracker/announce` against opentracker (the
//! C tracker behind the largest public trackers), same load from `wrk`.
//!
//! Every announce comes from a new peer (random peer_id and port) of one swarm, asks for 50
//! compact peers and gets them: the swarm is full after the first second. Debian builds
//! opentracker with a whitelist, so the swarm's info-hash is written to one; the pod only tracks
//! the info-hashes it hosts, so the swarm is the benchmark clip's.
//!
//! Two ways of announcing:
//! - one announce per connection (`Connection: close`): what BitTorrent clients do, a new
//!   connection each interval. This is the figure that counts.
//! - keep-alive: many announces per connection, as behind a reverse proxy that pools
//!   connections. opentracker closes every connection after one answer anyway, so its figure
//!   hardly changes.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use crate::tools::{self, env_u64, fail, BenchPod, ChildGuard};
use crate::Verdict;

const WARM_UP: Duration = Duration::from_secs(2);

pub fn run(pod: &BenchPod, seconds: Duration) -> Vec<Verdict> {
    let opentracker_bin = tools::require("opentracker", "opentracker");
    tools::require("wrk", "wrk");
    let connections = env_u64("BENCH_TRACKER_CONNECTIONS", 16);
    let dir = tempfile::tempdir().expect("temp dir");
    let hash_hex = pod.info_hash_hex().to_owned();

    // opentracker chroots into its directory and drops to `nobody` when started as root: the
    // directory and whitelist must be readable by anyone, and the path is relative to it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.path().join("whitelist.txt"), format!("{hash_hex}\n")).unwrap();
    let port = shoal_tests::free_port();
    let mut opentracker = ChildGuard::spawn(
        "opentracker",
        Command::new(opentracker_bin)
            .current_dir(dir.path())
            // TCP on loopback only (no -P: no UDP socket at all).
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .arg("-d")
            .arg(dir.path())
            .args(["-u", "nobody", "-w", "whitelist.txt"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    opentracker.wait_for_port(port);

    let escaped: String = hex_bytes(&hash_hex)
        .iter()
        .map(|b| format!("%{b:02X}"))
        .collect();
    let opentracker_base = format!("http://127.0.0.1:{port}");
    // opentracker reads its whitelist on a thread of its own after it starts listening: until
    // then it refuses every hash.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while announce_problem(&opentracker_base, "/announce", &escaped).is_some()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    check_announce(&opentracker_base, "/announce", &escaped);
    check_announce(&pod.url, "/tracker/announce", &escaped);

    println!();
    println!(
        "== HTTP tracker: compact announces of new peers to one swarm, {connections} connections, {} s a run",
        seconds.as_secs()
    );
    println!(
        "  {:<26} {:>14} {:>12} {:>8}   {:>17} {:>17}   {:>17}",
        "mode",
        "opentracker/s",
        "pod/s",
        "pod/ot",
        "ot p50/p99 ms",
        "pod p50/p99 ms",
        "CPU µs/req ot/pod"
    );
    let mut verdicts = Vec::new();
    for (mode, close) in [("one announce a connection", true), ("keep-alive", false)] {
        // The pod runs in this process; its CPU is this process's (the thread running wrk only
        // waits for it).
        let measure = |base: &str, path: &str, server_pid: u32| {
            let env = [
                ("BENCH_ANNOUNCE_PATH", path.to_owned()),
                ("BENCH_INFO_HASH", escaped.clone()),
                ("BENCH_CLOSE", if close { "1" } else { "0" }.to_owned()),
            ];
            let script = ("announce.lua", include_str!("announce.lua"));
            let url = format!("{base}/");
            tools::wait_for_quiet_machine();
            tools::wrk(dir.path(), script, &url, &env, connections, WARM_UP);
            let cpu_before = shoal_tests::process_cpu_seconds(server_pid);
            let run = tools::wrk(dir.path(), script, &url, &env, connections, seconds);
            let run = tools::WrkRun {
                server_cpu_seconds: shoal_tests::process_cpu_seconds(server_pid) - cpu_before,
                ..run
            };
            // Read errors are expected: opentracker closes each connection after its answer
            // without saying so, which wrk counts as a read error and then reconnects.
            if run.bad_status > 0 || run.connect_errors > 0 || run.timeouts > 0 {
                fail(&format!("errors while loading {base}{path}: {run:?}"));
            }
            run
        };
        let (reference, ours) = tools::alternate(
            || measure(&opentracker_base, "/announce", opentracker.child.id()),
            || measure(&pod.url, "/tracker/announce", std::process::id()),
        );
        let ratio = ours.per_second() / reference.per_second();
        println!(
            "  {:<26} {:>14.0} {:>12.0} {:>8.2}   {:>17} {:>17}   {:>17}",
            mode,
            reference.per_second(),
            ours.per_second(),
            ratio,
            format!("{:.2}/{:.2}", reference.p50_ms, reference.p99_ms),
            format!("{:.2}/{:.2}", ours.p50_ms, ours.p99_ms),
            format!(
                "{:.1}/{:.1}",
                reference.server_cpu_micros(),
                ours.server_cpu_micros()
            ),
        );
        verdicts.push(Verdict {
            what: format!("HTTP announces/s vs opentracker ({mode})"),
            ratio,
            goal: 1.0,
        });
    }
    // Both still answer properly after the load.
    check_announce(&opentracker_base, "/announce", &escaped);
    check_announce(&pod.url, "/tracker/announce", &escaped);
    verdicts
}

/// One announce must come back with compact peers and no failure, or the load would measure
/// refusals.
fn check_announce(base: &str, path: &str, escaped_hash: &str) {
    if let Some(problem) = announce_problem(base, path, escaped_hash) {
        fail(&format!(
            "{base}{path} does not answer announces properly: {problem}"
        ));
    }
}

fn announce_problem(base: &str, path: &str, escaped_hash: &str) -> Option<String> {
    let url = format!(
        "{base}{path}?info_hash={escaped_hash}&peer_id=-SB0001-000000000001&port=6881\
         &uploaded=0&downloaded=0&left=100&compact=1&numwant=50"
    );
    let (status, _, body) = tools::get(&url, None);
    let text = String::from_utf8_lossy(&body);
    (status != 200 || text.contains("failure reason") || !text.contains("5:peers"))
        .then(|| format!("{status} {text:?}"))
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

//! `shoal-bench`: the pod against the standard tools it stands in for, measured in one run on
//! 127.0.0.1 only. It prints figures and ratios and never fails on speed (`./shoal bench` runs it).
//!
//! - `webseed`: random aligned byte ranges (16 KiB and 1 MiB) of the same file from the pod's
//!   WebSeed and from nginx with a minimal generated configuration, several connections at once,
//!   load from `wrk`. Goal: the pod at 90% of nginx or better.
//! - `tracker`: HTTP tracker announces per second, pod against opentracker, load from `wrk`. Goal:
//!   the pod at least as fast.
//! - `torrent`: making the torrent of a 1 GiB file: client-core's `TorrentBuilder` (1 MiB reads)
//!   against `openssl dgst -sha1` over the same bytes and against create-torrent (npm, in Node).
//!   Goal: the builder at 85% of openssl's throughput or better.
//!
//! Usage: `shoal-bench [webseed] [tracker] [torrent]` (default: all). Environment:
//! `BENCH_SECONDS` per measured run (default 10), `BENCH_CONNECTIONS` for WebSeed runs (8),
//! `BENCH_TRACKER_CONNECTIONS` (16), `BENCH_ROUNDS` alternated runs of each server, best kept
//! (2), `BENCH_TORRENT_MB` (1024), `BENCH_REPEAT` runs of each torrent maker, best kept (3).
//!
//! Two cores are shared with compilers: it waits while any `rustc` runs (up to 30 minutes, then
//! gives up) rather than print figures a build has skewed.

mod tools;
mod torrent;
mod tracker;
mod webseed;

use std::time::Duration;

use tools::{env_u64, BenchPod};

/// The outcome of one comparison, for the summary at the end.
pub struct Verdict {
    pub what: String,
    pub ratio: f64,
    pub goal: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: shoal-bench [webseed] [tracker] [torrent]   (default: all)");
        println!("env: BENCH_SECONDS BENCH_CONNECTIONS BENCH_TRACKER_CONNECTIONS BENCH_ROUNDS BENCH_TORRENT_MB BENCH_REPEAT");
        return;
    }
    let known = ["webseed", "tracker", "torrent"];
    if let Some(bad) = args.iter().find(|a| !known.contains(&a.as_str())) {
        eprintln!(
            "shoal-bench: unknown benchmark {bad:?} (known: {})",
            known.join(", ")
        );
        std::process::exit(2);
    }
    let wanted = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    let seconds = Duration::from_secs(env_u64("BENCH_SECONDS", 10));

    tools::print_machine();
    let mut verdicts = Vec::new();

    if wanted("webseed") || wanted("tracker") {
        // One pod for both: the WebSeed needs a file and the tracker a swarm the pod knows.
        let pod = BenchPod::start_with_clip();
        if wanted("webseed") {
            verdicts.extend(webseed::run(&pod, seconds));
        }
        if wanted("tracker") {
            verdicts.extend(tracker::run(&pod, seconds));
        }
    }
    if wanted("torrent") {
        verdicts.extend(torrent::run());
    }

    println!();
    println!("== summary (ratio = pod / reference; higher is better)");
    for v in &verdicts {
        let mark = if v.ratio >= v.goal {
            "meets goal"
        } else {
            "BELOW GOAL"
        };
        println!(
            "  {:<60} {:>6.2}   goal >= {:.2}   {mark}",
            v.what, v.ratio, v.goal
        );
    }
}

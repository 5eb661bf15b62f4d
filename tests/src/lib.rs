//! Harness for Shoal's end-to-end tests: a real pod on a loopback socket with a temporary data
//! directory ([`pod`]), and real headless browsers driven over W3C WebDriver ([`browser`]).
//!
//! The browsers and drivers are the ones the README's test command installs (Debian's Chromium
//! and chromedriver, Firefox ESR and geckodriver); override their paths with `SHOAL_CHROMIUM`,
//! `CHROMEDRIVER`, `SHOAL_FIREFOX` and `GECKODRIVER`.

pub mod browser;
pub mod media;
pub mod pod;

use std::path::PathBuf;

/// The checkout's root directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// Where tests leave files for people to look at (screenshots): `tests/output/`.
pub fn output_dir() -> PathBuf {
    let dir = workspace_root().join("tests/output");
    std::fs::create_dir_all(&dir).expect("cannot create tests/output");
    dir
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// CPU time process `pid` has used so far, user and system: utime and stime, fields 14 and 15
/// of `/proc/PID/stat`, counted in USER_HZ ticks, which Linux fixes at 100 a second for every
/// architecture. 0 if the process is gone. The benchmarks print a server's CPU per request
/// beside its throughput: on 2 cores shared with the load generator, throughput swings ±10%
/// from run to run with whatever else the machine does, CPU per request hardly moves.
pub fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) start with field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |field: usize| {
        fields
            .get(field - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(14) + ticks(15)) as f64 / 100.0
}

/// The body of a GET that must succeed (panics with the URL otherwise).
pub fn get_bytes(url: &str) -> Vec<u8> {
    let response = ureq::get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes)
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    bytes
}

//! Tracker benchmark: Shoal's WebSocket tracker against the reference one (bittorrent-tracker's
//! `Server`, npm), with the same client load, measured in the same run, on 127.0.0.1 only.
//!
//! Run (needs `npm install --ignore-scripts` in tests/js, which `./shoal test` does; never while
//! cargo is building, the machine has 2 cores):
//!
//!     cargo run --release -p shoal-tests --bin bench-tracker
//!
//! Environment: `BENCH_SECONDS` per case (default 10), `BENCH_CLIENTS` (default `100,1000`),
//! `BENCH_OFFERED` (see below), `BENCH_IDLE` idle connections for the memory figure (default 2000), `BENCH_POD_THREADS`
//! event loops (threads) of our pod (default 2, what the binary uses on this machine; the reference is
//! single-threaded Node, so `1` compares one core with one core).
//!
//! What it does: starts our pod in a child process (this binary with `serve`, so that its RSS is
//! the pod's alone) with the bench swarms in its catalogue, and the reference tracker with
//! `node tests/js/reference-tracker.mjs`. Memory: opens `BENCH_IDLE` connections that announce
//! once and stay idle, and divides each server's RSS growth by their number. Throughput: for each
//! client count, every client announces in a closed loop (next announce when the response
//! arrives) with 5 offers of a ~500-byte SDP, like WebTorrent, spread over 10 swarms, so each
//! announce also relays up to 5 offers to other clients; prints announces/s, p50/p99 latency,
//! each server's CPU time per announce (steadier than throughput on shared cores),
//! and the ratios. Latency: the same clients at a fixed offered load (`BENCH_OFFERED` announces/s
//! in all, default 2000, each client on its own staggered schedule; latency counted from the
//! scheduled time). In a closed loop, latency is only the client count over the throughput
//! (Little's law), so the latency goals are read at a fixed load, the same for both servers and
//! well above what real swarms send (WebTorrent announces every 2 minutes).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::StreamExt;
use serde_json::json;
use server_lite::catalogue::Entry;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SWARMS: usize = 10;
const OFFERS: usize = 5;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn swarm_hash(i: usize) -> [u8; 20] {
    Sha1::digest(format!("shoal bench swarm {i}").as_bytes()).into()
}

fn bin(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("serve") {
        return serve();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

/// Child mode: our pod with the bench swarms registered, until stdin closes.
fn serve() -> anyhow::Result<()> {
    // One worker here; the pod adds its other event loops itself, as in the binary.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let mut config = server_lite::Config::for_data_dir(dir.path());
    config.threads = Some(env_or("BENCH_POD_THREADS", 2usize).max(1));
    let pod = runtime.block_on(server_lite::start(config))?;
    for i in 0..SWARMS {
        pod.pod.catalogue().insert(
            swarm_hash(i).into(),
            Entry::new(
                dir.path().join("none"),
                1,
                "video/mp4".into(),
                "none".into(),
            ),
        );
    }
    println!("READY {}", pod.addr.port());
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    runtime.block_on(pod.stop())
}

/// A tracker server in a child process.
struct Server {
    name: &'static str,
    url: String,
    child: Child,
}

impl Server {
    fn spawn(name: &'static str, mut command: Command, path: &str) -> anyhow::Result<Self> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start the {name} tracker"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(port) = line.trim().strip_prefix("READY ") else {
            bail!("the {name} tracker did not start: {line:?}");
        };
        Ok(Self {
            name,
            url: format!("ws://127.0.0.1:{port}{path}"),
            child,
        })
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// CPU time the server has used so far.
    fn cpu_seconds(&self) -> f64 {
        shoal_tests::process_cpu_seconds(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // EOF: the child stops
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A load client's WebSocket, framed by hand so that the load generator takes as little of the
/// 2 shared cores as it can (it uses about as much CPU as the server it measures): the announce
/// is sent as one frame with an all-zero mask (valid; the server unmasks it all the same, so its
/// work is unchanged), and what arrives is only looked at, never decoded into strings. Pings go
/// unanswered: a run is far shorter than any idle timeout.
struct Socket {
    stream: TcpStream,
    received: Vec<u8>,
    /// Bytes at the front of `received` that belong to the frame last returned.
    taken: usize,
}

impl Socket {
    async fn connect(url: &str) -> anyhow::Result<Self> {
        let rest = url.strip_prefix("ws://").context("a ws:// URL")?;
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let mut stream = TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut received = Vec::with_capacity(1024);
        let head_end = loop {
            if let Some(at) = memchr::memmem::find(&received, b"\r\n\r\n") {
                break at + 4;
            }
            if stream.read_buf(&mut received).await? == 0 {
                bail!("{url} closed the connection during the handshake");
            }
        };
        if !received.starts_with(b"HTTP/1.1 101") {
            bail!(
                "{url} refused the upgrade: {}",
                String::from_utf8_lossy(&received)
            );
        }
        received.drain(..head_end);
        Ok(Self {
            stream,
            received,
            taken: 0,
        })
    }

    async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        let mut frame = Vec::with_capacity(text.len() + 14);
        frame.push(0x81);
        match text.len() {
            n @ 0..=125 => frame.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&[0; 4]);
        frame.extend_from_slice(text.as_bytes());
        Ok(self.stream.write_all(&frame).await?)
    }

    /// The payload of the next text or binary frame (valid until the next call).
    async fn next_data(&mut self) -> anyhow::Result<&[u8]> {
        self.received.drain(..self.taken);
        self.taken = 0;
        loop {
            if let Some((opcode, payload)) = frame_at_front(&self.received) {
                self.taken = payload.end;
                match opcode {
                    0x1 | 0x2 => return Ok(&self.received[payload]),
                    0x8 => bail!("the server closed the socket"),
                    _ => {
                        self.received.drain(..self.taken);
                        self.taken = 0;
                        continue;
                    }
                }
            }
            if self.stream.read_buf(&mut self.received).await? == 0 {
                bail!("socket closed");
            }
        }
    }

    async fn close(mut self) {
        let _ = self.stream.write_all(&[0x88, 0x80, 0, 0, 0, 0]).await;
    }
}

/// The opcode and payload range of the whole (unmasked, server) frame at the front of `bytes`.
fn frame_at_front(bytes: &[u8]) -> Option<(u8, std::ops::Range<usize>)> {
    let [b0, b1, ..] = *bytes else { return None };
    let (start, len) = match b1 & 0x7F {
        126 => (
            4,
            usize::from(u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?)),
        ),
        127 => (
            10,
            u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?) as usize,
        ),
        n => (2, usize::from(n)),
    };
    (bytes.len() >= start + len).then(|| (b0 & 0x0F, start..start + len))
}

struct Client {
    socket: Socket,
    /// JSON strings of the announce's fixed members, escaped once.
    info_hash: String,
    peer_id: String,
    /// ASCII, so that offer ids need no escaping.
    offer_suffix: String,
}

async fn connect(url: &str, i: usize) -> anyhow::Result<Client> {
    let socket = Socket::connect(url)
        .await
        .with_context(|| format!("connect {url}"))?;
    let mut peer_id = *b"-BN0001-000000000000";
    peer_id[8..].copy_from_slice(format!("{i:012}").as_bytes());
    Ok(Client {
        socket,
        info_hash: serde_json::to_string(&bin(&swarm_hash(i % SWARMS)))?,
        peer_id: serde_json::to_string(&bin(&peer_id))?,
        offer_suffix: format!("{i:010}"),
    })
}

async fn connect_all(url: &str, n: usize) -> anyhow::Result<Vec<Client>> {
    futures_util::stream::iter(0..n)
        .map(|i| connect(url, i))
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// A WebTorrent-like offer's SDP (~700 bytes), as a JSON string.
fn sdp_json() -> &'static str {
    static SDP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SDP.get_or_init(|| {
        let sdp = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
             a=group:BUNDLE 0\r\na=msid-semantic: WMS\r\n\
             m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
             a=candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host\r\n\
             a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\n\
             a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
             a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n";
        serde_json::to_string(sdp).expect("a string")
    })
}

/// The announce a WebTorrent leecher sends, with `offers` offers whose ids are new each round.
fn announce_json(client: &Client, round: u64, offers: usize) -> String {
    let sdp = sdp_json();
    let mut message = String::with_capacity(300 + offers * (sdp.len() + 80));
    message.push_str(r#"{"action":"announce","info_hash":"#);
    message.push_str(&client.info_hash);
    message.push_str(r#","peer_id":"#);
    message.push_str(&client.peer_id);
    message.push_str(&format!(
        r#","numwant":{offers},"uploaded":0,"downloaded":0,"left":1000"#
    ));
    if round == 0 {
        message.push_str(r#","event":"started""#);
    }
    if offers > 0 {
        message.push_str(r#","offers":["#);
        for k in 0..offers {
            if k > 0 {
                message.push(',');
            }
            message.push_str(&format!(
                r#"{{"offer":{{"type":"offer","sdp":{sdp}}},"offer_id":"{round:08x}{k:02}{}"}}"#,
                client.offer_suffix
            ));
        }
        message.push(']');
    }
    message.push('}');
    message
}

/// Sends an announce and waits for its response, skipping relayed offers. Returns the latency.
async fn announce(client: &mut Client, round: u64, offers: usize) -> anyhow::Result<Duration> {
    let start = Instant::now();
    client
        .socket
        .send_text(&announce_json(client, round, offers))
        .await?;
    loop {
        let data = client.socket.next_data().await?;
        if memchr::memmem::find(data, b"failure reason").is_some() {
            bail!("tracker failure: {}", String::from_utf8_lossy(data));
        }
        // Responses carry `interval`; relayed offers do not.
        if memchr::memmem::find(data, b"\"interval\"").is_some() {
            return Ok(start.elapsed());
        }
    }
}

/// RSS growth of `server` per connection that announced once (with `offers` offers) and stays
/// idle.
async fn idle_memory(server: &Server, n: usize, offers: usize) -> anyhow::Result<(f64, u64)> {
    let before = server.rss_kib();
    let mut clients = connect_all(&server.url, n).await?;
    for client in &mut clients {
        announce(client, 0, offers).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server.rss_kib();
    for client in clients {
        client.socket.close().await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok((
        after.saturating_sub(before) as f64 * 1024.0 / n as f64,
        after.saturating_sub(before),
    ))
}

struct Load {
    per_second: f64,
    /// The server's CPU time per announce answered.
    cpu_per_announce: Duration,
    p50: Duration,
    p99: Duration,
}

/// How clients announce during a load run.
#[derive(Clone, Copy)]
enum Pace {
    /// Each client announces again as soon as its answer arrives: the server's throughput.
    ClosedLoop,
    /// All clients together announce `per_second` times a second, each on its own fixed
    /// schedule (staggered), whatever the answers do: latency at a given load. Latency counts
    /// from the scheduled time, so a server that falls behind is charged for the wait too.
    Offered { per_second: f64 },
}

async fn load(server: &Server, n: usize, seconds: u64, pace: Pace) -> anyhow::Result<Load> {
    let clients = connect_all(&server.url, n).await?;
    let cpu_before = server.cpu_seconds();
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs(seconds);
    let period = match pace {
        Pace::ClosedLoop => None,
        Pace::Offered { per_second } => Some(Duration::from_secs_f64(n as f64 / per_second)),
    };
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            tokio::spawn(async move {
                let mut next = start + period.map_or(Duration::ZERO, |p| p * i as u32 / n as u32);
                let mut latencies = Vec::new();
                let mut round = 0;
                while next < end {
                    tokio::time::sleep_until(next.into()).await;
                    let sent = Instant::now();
                    let took = announce(&mut client, round, OFFERS).await?;
                    latencies.push(took + sent.saturating_duration_since(next));
                    round += 1;
                    next = match period {
                        Some(p) => next + p,
                        None => Instant::now(),
                    };
                }
                client.socket.close().await;
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = start.elapsed();
    let cpu = server.cpu_seconds() - cpu_before;
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    tokio::time::sleep(Duration::from_secs(1)).await; // let the server forget the clients
    Ok(Load {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        cpu_per_announce: Duration::from_secs_f64(cpu.max(0.0) / latencies.len().max(1) as f64),
        p50: at(0.50),
        p99: at(0.99),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run() -> anyhow::Result<()> {
    let seconds = env_or("BENCH_SECONDS", 10u64);
    let idle = env_or("BENCH_IDLE", 2000usize);
    let counts: Vec<usize> = std::env::var("BENCH_CLIENTS")
        .unwrap_or_else(|_| "100,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let js = shoal_tests::workspace_root().join("tests/js");
    if !js.join("node_modules/bittorrent-tracker").is_dir() {
        bail!(
            "{} has no node_modules: run ./shoal test (or npm install --ignore-scripts there)",
            js.display()
        );
    }

    // Fresh servers for every memory figure: a process whose allocator (or V8 heap) already grew
    // would hide the growth. Twice: connections that announced without offers, then with 5
    // offers (a WebTorrent announce, ~6 KB, after which read buffers may stay grown).
    let spawn_servers = || -> anyhow::Result<[Server; 2]> {
        let mut ours = Command::new(std::env::current_exe()?);
        ours.arg("serve");
        let ours = Server::spawn("shoal", ours, "/tracker/socket")?;
        let mut reference = Command::new("node");
        reference.arg(js.join("reference-tracker.mjs"));
        let reference = Server::spawn("bittorrent-tracker", reference, "/")?;
        Ok([ours, reference])
    };

    println!(
        "tracker benchmark: 127.0.0.1, {} cores, {seconds} s per case, {OFFERS} offers per \
         announce, {SWARMS} swarms, our pod on {} event loops",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        env_or("BENCH_POD_THREADS", 2usize)
    );
    let mut memory = Vec::new();
    for offers in [0, OFFERS] {
        for server in &spawn_servers()? {
            let (per_conn, total) = idle_memory(server, idle, offers)
                .await
                .with_context(|| format!("memory of {}", server.name))?;
            println!(
                "{:<20} idle memory after an announce with {offers} offers: {:>6.2} KiB per \
                 connection ({idle} connections, RSS +{:.1} MiB)",
                server.name,
                per_conn / 1024.0,
                total as f64 / 1024.0
            );
            memory.push(per_conn);
        }
    }
    let servers = spawn_servers()?;
    let offered = env_or("BENCH_OFFERED", 2000.0f64);
    let mut results = Vec::new();
    let cases = [
        ("closed loop", Pace::ClosedLoop),
        (
            "offered",
            Pace::Offered {
                per_second: offered,
            },
        ),
    ];
    for (label, pace) in cases {
        match pace {
            Pace::ClosedLoop => {
                println!("-- throughput: every client announces again as soon as it is answered")
            }
            Pace::Offered { per_second } => println!(
                "-- latency at a fixed load: {per_second:.0} announces/s in all (each with \
                 {OFFERS} offers), every client on its own schedule"
            ),
        }
        for &n in &counts {
            for server in &servers {
                let result = load(server, n, seconds, pace)
                    .await
                    .with_context(|| format!("load on {} with {n} clients", server.name))?;
                println!(
                    "{:<20} {n:>5} clients: {:>9.0} announces/s  p50 {:>7.2} ms  p99 {:>7.2} ms  \
                     CPU {:>5.1} µs per announce",
                    server.name,
                    result.per_second,
                    ms(result.p50),
                    ms(result.p99),
                    result.cpu_per_announce.as_secs_f64() * 1e6
                );
                results.push((label, server.name, n, result));
            }
            let (a, b) = (&results[results.len() - 2].3, &results[results.len() - 1].3);
            println!(
                "{:<20} {n:>5} clients: announces/s x{:.2}, p99 x{:.2}, CPU per announce x{:.2} \
                 (shoal / reference; >1 throughput, <1 latency and <1 CPU favour shoal)",
                "ratio",
                a.per_second / b.per_second,
                ms(a.p99) / ms(b.p99).max(f64::MIN_POSITIVE),
                a.cpu_per_announce.as_secs_f64()
                    / b.cpu_per_announce.as_secs_f64().max(f64::MIN_POSITIVE)
            );
        }
    }
    let summary = json!({
        "memoryPerIdleConnectionBytes": {"shoal": memory[0], "reference": memory[1]},
        "memoryPerIdleConnectionAfterOffersBytes": {"shoal": memory[2], "reference": memory[3]},
        "load": results.iter().map(|(pace, name, n, r)| json!({
            "pace": pace, "server": name, "clients": n, "announcesPerSecond": r.per_second,
            "p50Ms": ms(r.p50), "p99Ms": ms(r.p99),
            "cpuMicrosPerAnnounce": r.cpu_per_announce.as_secs_f64() * 1e6,
        })).collect::<Vec<_>>(),
    });
    println!("BENCH_JSON {summary}");
    Ok(())
}

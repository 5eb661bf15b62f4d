//! The pod's trackers over real sockets: a pod on a loopback port, WebSocket clients speaking
//! bittorrent-tracker's JSON (checked member by member, ids as Latin-1 binary strings), and raw
//! HTTP/1.1 requests with percent-escaped binary query strings.

use std::time::Duration;

use client_core::tracker::http::{percent_encode, HttpAnnounceResponse};
use client_core::{InfoHash, PeerId};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use server_lite::catalogue::Entry;
use server_lite::{Config, RunningPod};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The Leaves of Grass fixture's info-hash: bytes ≥ 0x80 and a control character (§1.2).
const INFO_HASH: &str = "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36";

fn info_hash() -> InfoHash {
    INFO_HASH.parse().expect("hex info hash")
}

/// A peer id with every awkward kind of byte: `"`, `\`, controls, 0x7f, 0x80–0xff.
fn peer_id(tag: u8) -> PeerId {
    let mut id = *b"-SH0001-\"\\\x00\x1f\x7f\x80\xd2\xff\xc3\x00\x00\x00";
    id[19] = tag;
    PeerId(id)
}

fn bin(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

async fn start_pod() -> (RunningPod, tempfile::TempDir) {
    start_pod_with(|_| {}).await
}

async fn start_pod_with(adjust: impl FnOnce(&mut Config)) -> (RunningPod, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_data_dir(dir.path());
    adjust(&mut config);
    let pod = server_lite::start(config).await.expect("pod starts");
    pod.pod.catalogue().insert(
        info_hash(),
        Entry::new(
            dir.path().join("video.mp4"),
            1000,
            "video/mp4".into(),
            "video.mp4".into(),
        ),
    );
    (pod, dir)
}

async fn connect(pod: &RunningPod) -> Socket {
    let url = format!("ws://{}/tracker/socket", pod.addr);
    let (socket, _) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .expect("WebSocket handshake within 5 s")
    .expect("WebSocket connects");
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .expect("send");
}

/// The next JSON message (pings skipped), within 5 s.
async fn recv(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a message within 5 s")
            .expect("socket open")
            .expect("no socket error");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Asserts nothing arrives for a moment.
async fn assert_quiet(socket: &mut Socket) {
    if let Ok(Some(Ok(Message::Text(text)))) =
        tokio::time::timeout(Duration::from_millis(300), socket.next()).await
    {
        panic!("unexpected message {text}");
    }
}

fn announce(peer: &PeerId, left: Value, offers: Value) -> Value {
    json!({
        "action": "announce",
        "info_hash": bin(info_hash().as_bytes()),
        "peer_id": bin(peer.as_bytes()),
        "numwant": 5,
        "uploaded": 0,
        "downloaded": 0,
        "left": left,
        "event": "started",
        "offers": offers,
    })
}

/// `from`'s answer to the offer `offer_id` that `to` sent.
fn answer(from: &PeerId, to: &PeerId, offer_id: &[u8; 20], sdp: &str) -> Value {
    json!({
        "action": "announce",
        "info_hash": bin(info_hash().as_bytes()),
        "peer_id": bin(from.as_bytes()),
        "to_peer_id": bin(to.as_bytes()),
        "answer": {"type": "answer", "sdp": sdp},
        "offer_id": bin(offer_id),
    })
}

#[tokio::test]
async fn offers_and_answers_are_relayed_between_two_peers() {
    let (pod, _dir) = start_pod().await;
    let (a, b) = (peer_id(b'A'), peer_id(b'B'));
    let mut socket_a = connect(&pod).await;
    let mut socket_b = connect(&pod).await;

    // B joins first, without offers (and with `left: null`, a magnet leecher).
    send(&mut socket_b, announce(&b, Value::Null, json!([]))).await;
    let response = recv(&mut socket_b).await;
    assert_eq!(
        response,
        json!({"action": "announce", "info_hash": bin(info_hash().as_bytes()),
               "complete": 0, "incomplete": 1, "interval": 120})
    );

    // A announces with two offers; only one other peer, so one offer is relayed.
    let offer_id: [u8; 20] = *b"\x00\x01\"\\\x7f\x80\x81\xfe\xffofferid-001";
    let offers = json!([
        {"offer": {"type": "offer", "sdp": "v=0\r\nA1"}, "offer_id": bin(&offer_id)},
        {"offer": {"type": "offer", "sdp": "v=0\r\nA2"}, "offer_id": bin(&[7; 20])},
    ]);
    send(&mut socket_a, announce(&a, json!(1000), offers)).await;
    let response = recv(&mut socket_a).await;
    assert_eq!(response["complete"], 0);
    assert_eq!(response["incomplete"], 2, "left:null is not a seeder");

    let relayed = recv(&mut socket_b).await;
    assert_eq!(
        relayed,
        json!({"action": "announce", "offer": {"type": "offer", "sdp": "v=0\r\nA1"},
               "offer_id": bin(&offer_id), "peer_id": bin(a.as_bytes()),
               "info_hash": bin(info_hash().as_bytes())})
    );

    // B answers; A gets the answer, B gets no reply.
    send(&mut socket_b, answer(&b, &a, &offer_id, "v=0\r\nB1")).await;
    let answer = recv(&mut socket_a).await;
    assert_eq!(
        answer,
        json!({"action": "announce", "answer": {"type": "answer", "sdp": "v=0\r\nB1"},
               "offer_id": bin(&offer_id), "peer_id": bin(b.as_bytes()),
               "info_hash": bin(info_hash().as_bytes())})
    );
    assert_quiet(&mut socket_b).await;
    assert_eq!(
        (
            pod.pod.tracker().swarm_count(),
            pod.pod.tracker().peer_count()
        ),
        (1, 2)
    );

    // Closing A's socket takes A out of the swarm.
    socket_a.close(None).await.expect("close");
    for _ in 0..50 {
        if pod.pod.tracker().peer_count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pod.pod.tracker().peer_count(), 1);
    pod.stop().await.expect("stops");
}

#[tokio::test]
async fn errors_carry_action_and_info_hash() {
    let (pod, _dir) = start_pod().await;
    let mut socket = connect(&pod).await;

    let unknown = [0xAB; 20];
    let mut message = announce(&peer_id(b'A'), json!(0), json!([]));
    message["info_hash"] = json!(bin(&unknown));
    send(&mut socket, message).await;
    assert_eq!(
        recv(&mut socket).await,
        json!({"action": "announce", "info_hash": bin(&unknown),
               "failure reason": "unknown info_hash"})
    );

    socket
        .send(Message::text("{this is not json"))
        .await
        .expect("send");
    let failure = recv(&mut socket).await;
    assert_eq!(failure["action"], "announce", "{failure}");
    assert!(failure["failure reason"].is_string());

    // A bad offer_id: refused with the request's action and info_hash.
    let bad = announce(
        &peer_id(b'A'),
        json!(0),
        json!([{"offer": {"type": "offer", "sdp": "x"}, "offer_id": "short"}]),
    );
    send(&mut socket, bad).await;
    let failure = recv(&mut socket).await;
    assert_eq!(failure["action"], "announce");
    assert_eq!(failure["info_hash"], json!(bin(info_hash().as_bytes())));
    assert!(failure["failure reason"]
        .as_str()
        .is_some_and(|r| r.contains("offer_id")));

    // The socket survives all of that.
    send(&mut socket, announce(&peer_id(b'A'), json!(0), json!([]))).await;
    assert_eq!(recv(&mut socket).await["complete"], 1);
    pod.stop().await.expect("stops");
}

#[tokio::test]
async fn scrape_single_list_all_and_binary_frames() {
    let (pod, _dir) = start_pod().await;
    let mut socket = connect(&pod).await;
    send(&mut socket, announce(&peer_id(b'S'), json!(0), json!([]))).await;
    recv(&mut socket).await;

    let hash = bin(info_hash().as_bytes());
    let stats = json!({"complete": 1, "incomplete": 0, "downloaded": 0});
    let flags = json!({"min_request_interval": 600});
    send(
        &mut socket,
        json!({"action": "scrape", "info_hash": hash.clone()}),
    )
    .await;
    assert_eq!(
        recv(&mut socket).await,
        json!({"action": "scrape", "files": {hash.clone(): stats.clone()}, "flags": flags})
    );

    // A list, sent as a binary frame (bittorrent-tracker's server accepts those too).
    let other = bin(&[1; 20]);
    let list = json!({"action": "scrape", "info_hash": [hash.clone(), other.clone()]});
    socket
        .send(Message::binary(list.to_string().into_bytes()))
        .await
        .expect("send");
    let response = recv(&mut socket).await;
    assert_eq!(response["files"][&hash], stats);
    assert_eq!(
        response["files"][&other],
        json!({"complete": 0, "incomplete": 0, "downloaded": 0})
    );

    send(&mut socket, json!({"action": "scrape"})).await;
    let all = recv(&mut socket).await;
    assert_eq!(all["files"], json!({hash: stats}));
    pod.stop().await.expect("stops");
}

#[tokio::test]
async fn stopping_the_pod_closes_tracker_sockets() {
    let (pod, _dir) = start_pod().await;
    let mut socket = connect(&pod).await;
    send(&mut socket, announce(&peer_id(b'A'), json!(0), json!([]))).await;
    recv(&mut socket).await;
    let tracker_pod = pod.pod.clone();
    pod.stop().await.expect("stops");
    assert_eq!(close_code(&mut socket).await, Some(1001));
    for _ in 0..50 {
        if tracker_pod.tracker().connection_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(tracker_pod.tracker().connection_count(), 0);
    assert_eq!(tracker_pod.tracker().peer_count(), 0);
}

/// A pod on four event loops (`Config::threads`): the kernel spreads connections over their
/// sockets, so over eight pairs of peers some offers and answers cross from one loop to
/// another; every loop answers HTTP; stopping ends them all and frees the port.
#[tokio::test]
async fn every_event_loop_serves_relays_and_stops() {
    let (pod, _dir) = start_pod_with(|config| config.threads = Some(4)).await;
    for pair in 0..8u8 {
        let (x, y) = (peer_id(2 * pair), peer_id(2 * pair + 1));
        let mut socket_x = connect(&pod).await;
        let mut socket_y = connect(&pod).await;
        send(&mut socket_x, announce(&x, json!(0), json!([]))).await;
        recv(&mut socket_x).await;
        let offer_id = [pair; 20];
        let offer = json!([{"offer": {"type": "offer", "sdp": format!("v=0\r\nY{pair}")},
                            "offer_id": bin(&offer_id)}]);
        send(&mut socket_y, announce(&y, json!(1000), offer)).await;
        recv(&mut socket_y).await;
        let relayed = recv(&mut socket_x).await;
        assert_eq!(
            relayed["offer"]["sdp"],
            format!("v=0\r\nY{pair}"),
            "pair {pair}"
        );
        send(&mut socket_x, answer(&x, &y, &offer_id, "v=0\r\nX")).await;
        let answer = recv(&mut socket_y).await;
        assert_eq!(answer["answer"]["sdp"], "v=0\r\nX", "pair {pair}");
        assert_eq!(answer["peer_id"], bin(x.as_bytes()), "pair {pair}");
        // Both leave, so that the next pair's offer can only go to the next pair.
        socket_x.close(None).await.expect("close");
        socket_y.close(None).await.expect("close");
        for _ in 0..100 {
            if pod.pod.tracker().peer_count() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(pod.pod.tracker().peer_count(), 0, "pair {pair} left");
    }
    let gets = (0..16).map(|_| http_get(&pod, "/api/v1/health"));
    let answers =
        tokio::time::timeout(Duration::from_secs(5), futures_util::future::join_all(gets))
            .await
            .expect("every loop answers within 5 s");
    for (status, _) in answers {
        assert_eq!(status, "HTTP/1.1 200 OK");
    }
    // A second pod cannot start on the same port (SO_REUSEPORT would let it take half of the
    // connections).
    let other_dir = tempfile::tempdir().expect("temp dir");
    let mut other = Config::for_data_dir(other_dir.path());
    other.listen = pod.addr;
    other.threads = Some(2);
    assert!(
        server_lite::start(other).await.is_err(),
        "a second pod started on {}",
        pod.addr
    );

    // Tracker sockets on every loop get their close frame when the pod stops.
    let mut sockets = Vec::new();
    for tag in 0..8 {
        let mut socket = connect(&pod).await;
        send(
            &mut socket,
            announce(&peer_id(100 + tag), json!(0), json!([])),
        )
        .await;
        recv(&mut socket).await;
        sockets.push(socket);
    }
    let addr = pod.addr;
    tokio::time::timeout(Duration::from_secs(5), pod.stop())
        .await
        .expect("every loop stops within 5 s")
        .expect("stops");
    for (n, socket) in sockets.iter_mut().enumerate() {
        assert_eq!(close_code(socket).await, Some(1001), "socket {n}");
    }
    for _ in 0..8 {
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "a loop still listens on {addr} after the stop"
        );
    }
}

/// The code of the close frame that ends `socket` (within 5 s); `None` when it ends without one.
async fn close_code(socket: &mut Socket) -> Option<u16> {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("socket closed within 5 s")
}

/// The tracker's WebSocket framing as a client sees it on the wire: the handshake, a message
/// that arrives a byte at a time, pings, and the close codes of a message too big and of a frame
/// the RFC forbids.
#[tokio::test]
async fn websocket_framing_on_the_wire() {
    let (pod, _dir) = start_pod().await;

    // A plain GET is told to upgrade.
    let (status, _) = http_get(&pod, "/tracker/socket").await;
    assert!(status.contains(" 426 "), "{status}");

    // The RFC's example key gets the RFC's accept; then an announce sent one byte per write,
    // masked as browsers do, is answered.
    let mut tcp = TcpStream::connect(pod.addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    tcp.write_all(
        b"GET /tracker/socket HTTP/1.1\r\nHost: pod\r\nUpgrade: websocket\r\n\
          Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Sec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .expect("handshake sent");
    let head = read_until(&mut tcp, b"\r\n\r\n").await;
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="));
    let request = announce(&peer_id(b'W'), json!(0), json!([])).to_string();
    for byte in masked_frame(0x1, request.as_bytes()) {
        tcp.write_all(&[byte]).await.expect("byte sent");
    }
    let (opcode, payload) = read_frame(&mut tcp).await;
    assert_eq!(opcode, 0x1);
    let response: Value = serde_json::from_slice(&payload).expect("JSON");
    assert_eq!(response["action"], "announce");
    assert!(response["interval"].is_number(), "{response}");

    // A ping is answered with a pong carrying its bytes.
    tcp.write_all(&masked_frame(0x9, b"are you there"))
        .await
        .expect("ping sent");
    assert_eq!(read_frame(&mut tcp).await, (0xA, b"are you there".to_vec()));

    // A frame without a mask is a protocol error: close 1002, then the pod hangs up.
    tcp.write_all(&[0x81, 0x02, b'h', b'i'])
        .await
        .expect("sent");
    let (opcode, payload) = read_frame(&mut tcp).await;
    assert_eq!((opcode, &payload[..2]), (0x8, &1002u16.to_be_bytes()[..]));
    assert_eq!(tcp.read(&mut [0; 16]).await.expect("read"), 0, "hung up");

    // A message over the limit is refused from its header: close 1009.
    let mut socket = connect(&pod).await;
    let big = "x".repeat(client_core::tracker::ws::MAX_MESSAGE_LEN + 1);
    let _ = socket.send(Message::text(big)).await;
    let code = loop {
        match socket.next().await {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            _ => break None,
        }
    };
    assert_eq!(code, Some(1009));
    pod.stop().await.expect("stops");
}

/// A client frame: final, masked.
fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => frame.push(0x80 | n as u8),
        n => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

async fn read_until(tcp: &mut TcpStream, end: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    while !bytes.ends_with(end) {
        let mut byte = [0];
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut byte))
            .await
            .expect("bytes within 5 s")
            .expect("read");
        assert_eq!(n, 1, "connection closed");
        bytes.push(byte[0]);
    }
    bytes
}

/// One server frame (never masked, never fragmented by the pod): (opcode, payload).
async fn read_frame(tcp: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0; 2];
    tcp.read_exact(&mut head).await.expect("frame header");
    assert_eq!(head[0] & 0xF0, 0x80, "final, no RSV bits");
    assert_eq!(head[1] & 0x80, 0, "servers do not mask");
    let len = match head[1] & 0x7F {
        126 => usize::from(tcp.read_u16().await.expect("length")),
        127 => tcp.read_u64().await.expect("length") as usize,
        n => usize::from(n),
    };
    let mut payload = vec![0; len];
    tcp.read_exact(&mut payload).await.expect("payload");
    (head[0] & 0x0F, payload)
}

/// One raw HTTP/1.1 GET; returns (status line, body).
async fn http_get(pod: &RunningPod, target: &str) -> (String, Vec<u8>) {
    http_get_with(pod, target, "").await
}

/// One raw HTTP/1.1 GET with extra header lines (each ending in CRLF).
async fn http_get_with(pod: &RunningPod, target: &str, headers: &str) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(pod.addr).await.expect("connect");
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\n{headers}Connection: close\r\n\r\n",
        pod.addr
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let (head, body) = read_to_close(&mut stream).await;
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body)
}

/// Reads a response up to the connection's close: (head, body, unchunked if it came chunked).
async fn read_to_close(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("read response");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let mut body = response[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = unchunk(&body);
    }
    (head, body)
}

fn unchunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap(), 16)
            .expect("hex size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
}

#[tokio::test]
async fn http_announce_returns_compact_http_peers_and_scrape_counts() {
    let (pod, _dir) = start_pod().await;
    let hash = percent_encode(info_hash().as_bytes());
    let query = |peer: u8, port: u16, left: u64| {
        format!(
            "/tracker/announce?info_hash={hash}&peer_id={}&port={port}&uploaded=0&downloaded=0\
             &left={left}&compact=1&event=started&numwant=80&ip=203.0.113.9",
            percent_encode(peer_id(peer).as_bytes())
        )
    };

    let (status, body) = http_get(&pod, &query(b'1', 6881, 0)).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let first = HttpAnnounceResponse::decode(&body).expect("bencoded announce response");
    assert_eq!(
        (first.complete, first.incomplete, first.interval),
        (1, 0, 600)
    );
    assert!(first.peers.is_empty());

    // A WebSocket peer in the same swarm counts, but is never handed to HTTP clients.
    let mut socket = connect(&pod).await;
    send(&mut socket, announce(&peer_id(b'W'), json!(5), json!([]))).await;
    recv(&mut socket).await;

    // X-Forwarded-For is a client's claim unless the pod is told it sits behind a proxy.
    let (_, body) = http_get_with(
        &pod,
        &query(b'2', 6882, 100),
        "X-Forwarded-For: 198.51.100.7\r\n",
    )
    .await;
    let second = HttpAnnounceResponse::decode(&body).expect("bencoded announce response");
    assert_eq!((second.complete, second.incomplete), (1, 2));
    // The socket's address, not the `ip` parameter.
    assert_eq!(second.peers, vec!["127.0.0.1:6881".parse().unwrap()]);
    assert!(body.windows(7).any(|w| w == b"5:peers"), "compact peers");

    // Unknown swarm: a bencoded failure with status 200.
    let unknown = format!(
        "/tracker/announce?info_hash={}&peer_id={}&port=1",
        percent_encode(&[0xAB; 20]),
        percent_encode(peer_id(b'3').as_bytes())
    );
    let (status, body) = http_get(&pod, &unknown).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, b"d14:failure reason17:unknown info_hashe");

    let (_, body) = http_get(&pod, &format!("/tracker/scrape?info_hash={hash}")).await;
    let scrape = client_core::tracker::http::HttpScrapeResponse::decode(&body).expect("scrape");
    let stats = scrape.files[&info_hash()];
    assert_eq!((stats.complete, stats.incomplete), (1, 2));
    pod.stop().await.expect("stops");
}

/// Behind a reverse proxy on the same host (`--trust-proxy`), peers are known by the address the
/// proxy adds last to X-Forwarded-For, not as 127.0.0.1; the addresses before it are the
/// client's own claims and are ignored.
#[tokio::test]
async fn behind_a_trusted_proxy_http_peers_get_forwarded_addresses() {
    let (pod, _dir) = start_pod_with(|c| c.trust_proxy = true).await;
    let hash = percent_encode(info_hash().as_bytes());
    let query = |peer: u8, port: u16| {
        format!(
            "/tracker/announce?info_hash={hash}&peer_id={}&port={port}&uploaded=0&downloaded=0\
             &left=100&compact=1&numwant=10",
            percent_encode(peer_id(peer).as_bytes())
        )
    };
    let forwarded = "X-Forwarded-For: 10.9.9.9, 203.0.113.5\r\n";
    http_get_with(&pod, &query(b'1', 6881), forwarded).await;
    let (_, body) = http_get_with(
        &pod,
        &query(b'2', 6882),
        "X-Forwarded-For: 198.51.100.7\r\n",
    )
    .await;
    let answer = HttpAnnounceResponse::decode(&body).expect("bencoded announce response");
    assert_eq!(answer.peers, vec!["203.0.113.5:6881".parse().unwrap()]);
    pod.stop().await.expect("stops");
}

/// Reads one HTTP response with a `content-length` from a kept-alive connection: (head, body).
async fn read_response(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let head = read_until(stream, b"\r\n\r\n").await;
    let head = String::from_utf8_lossy(&head).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.parse().ok())
        .expect("content-length");
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.expect("body");
    (head, body)
}

/// The header names of a response head, but `date` and `connection`, sorted.
fn header_names(head: &str) -> Vec<String> {
    let mut names: Vec<String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(name, _)| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty() && name != "date" && name != "connection")
        .collect();
    names.sort();
    names
}

/// Announces that close their connection (what BitTorrent clients send) are answered before
/// hyper sees them; the same announce on a kept-alive connection, or with its head split over
/// two writes, is hyper's. Both ways give the same answer, and the kept-alive connection serves
/// a second request.
#[tokio::test]
async fn closing_kept_alive_and_split_announces_get_the_same_answer() {
    let (pod, _dir) = start_pod().await;
    let hash = percent_encode(info_hash().as_bytes());
    // Peer b'1' on port 6881, b'2' on 6882 (a peer is never handed its own address).
    let announce_target = |peer: u8, left: u64| {
        let port = 6880 + u16::from(peer - b'0');
        format!(
            "/tracker/announce?info_hash={hash}&peer_id={}&port={port}&uploaded=0&downloaded=0\
             &left={left}&compact=1&numwant=10",
            percent_encode(peer_id(peer).as_bytes())
        )
    };

    // Closing: the whole head in one write, `Connection: close`.
    let mut closing = TcpStream::connect(pod.addr).await.expect("connect");
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n",
        announce_target(b'1', 0)
    );
    closing.write_all(request.as_bytes()).await.expect("write");
    let (closed_head, closed_body) = read_to_close(&mut closing).await;
    assert!(
        closed_head.starts_with("HTTP/1.1 200 OK\r\n"),
        "{closed_head}"
    );
    assert!(closed_head
        .to_ascii_lowercase()
        .contains("connection: close"));
    assert!(closed_head.to_ascii_lowercase().contains("\r\ndate: "));
    assert!(closed_head.contains(&format!("content-length: {}", closed_body.len())));
    let first = HttpAnnounceResponse::decode(&closed_body).expect("bencoded announce");
    assert!(first.peers.is_empty());

    // Kept alive: HTTP/1.1 without `Connection: close`, two requests on one connection.
    let mut kept = TcpStream::connect(pod.addr).await.expect("connect");
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: pod\r\n\r\n",
        announce_target(b'2', 100)
    );
    kept.write_all(request.as_bytes()).await.expect("write");
    let (kept_head, kept_body) = read_response(&mut kept).await;
    assert!(kept_head.starts_with("HTTP/1.1 200 OK\r\n"), "{kept_head}");
    assert_eq!(header_names(&kept_head), header_names(&closed_head));
    let second = HttpAnnounceResponse::decode(&kept_body).expect("bencoded announce");
    assert_eq!(second.peers, vec!["127.0.0.1:6881".parse().unwrap()]);
    let scrape = format!("GET /tracker/scrape?info_hash={hash} HTTP/1.1\r\nHost: pod\r\n\r\n");
    kept.write_all(scrape.as_bytes()).await.expect("write");
    let (_, kept_scrape) = read_response(&mut kept).await;

    // Split: the head of a closing scrape in two writes.
    let mut split_head = TcpStream::connect(pod.addr).await.expect("connect");
    let scrape = format!("GET /tracker/scrape?info_hash={hash} HTTP/1.1\r\nHost: pod\r\n");
    split_head
        .write_all(scrape.as_bytes())
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    split_head
        .write_all(b"Connection: close\r\n\r\n")
        .await
        .expect("write");
    let (_, split_body) = read_to_close(&mut split_head).await;
    assert_eq!(split_body, kept_scrape);
    let counts = client_core::tracker::http::HttpScrapeResponse::decode(&kept_scrape)
        .expect("scrape")
        .files[&info_hash()];
    assert_eq!((counts.complete, counts.incomplete), (1, 1));
    pod.stop().await.expect("stops");
}

/// A connection that never sends a request does not hold up a stop: the first read gives up
/// when the pod stops, as hyper gives up on an idle connection.
#[tokio::test]
async fn a_silent_connection_does_not_hold_up_a_stop() {
    let (pod, _dir) = start_pod().await;
    let _silent = TcpStream::connect(pod.addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(5), pod.stop())
        .await
        .expect("stops within 5 s")
        .expect("stops");
}

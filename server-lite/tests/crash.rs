//! A pod killed in the middle of an upload (SIGKILL: no clean-up code runs) leaves no row and,
//! after its next start, no file behind.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const TOKEN: &str = "crash-test-token-0123456789";

fn start(data: &Path, port: u16) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_server-lite"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data)
        .env("SHOAL_ADMIN_TOKEN", TOKEN)
        .env("SHOAL_LOG", "warn")
        .spawn()
        .expect("server-lite starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if get(port, "/api/v1/health").contains("\"ok\"") {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server-lite did not come up");
}

fn get(port: u16, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn tmp_files(data: &Path) -> Vec<u64> {
    std::fs::read_dir(data.join("tmp"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn killed_mid_upload_leaves_nothing_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut pod = start(dir.path(), port);

    // Announce 8 MiB, send 1 MiB of it, and keep the connection open.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let preamble =
        "--b\r\nContent-Disposition: form-data; name=\"videofile\"; filename=\"big.mp4\"\r\n\r\n";
    write!(
        s,
        "POST /api/v1/videos/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n{preamble}",
        8 << 20
    )
    .unwrap();
    s.write_all(&vec![7u8; 1 << 20]).unwrap();
    s.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !tmp_files(dir.path()).iter().any(|&len| len > 0) {
        assert!(
            Instant::now() < deadline,
            "the upload never reached the disk"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    pod.kill().unwrap(); // SIGKILL
    pod.wait().unwrap();
    drop(s);
    assert!(
        !tmp_files(dir.path()).is_empty(),
        "the partial upload should still be on disk"
    );

    let mut pod = start(dir.path(), port);
    assert!(
        tmp_files(dir.path()).is_empty(),
        "the restart should remove the partial upload"
    );
    assert!(get(port, "/api/v1/videos").contains("\"total\":0"));
    assert_eq!(
        std::fs::read_dir(dir.path().join("media")).unwrap().count(),
        0
    );
    pod.kill().unwrap();
    pod.wait().unwrap();
}

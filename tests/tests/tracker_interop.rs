//! The pod's trackers against the real `bittorrent-tracker` npm client: WebSocket announces with
//! real WebRTC offers relayed both ways until a data channel opens, a failure on a shared socket
//! that must not break it, a scrape, and HTTP announces with compact peers. The JavaScript side
//! is tests/js/tracker-client.mjs; its dependencies come from `./shoal test` (npm install in
//! tests/js).

use std::process::Command;

use serde_json::Value;
use server_lite::catalogue::Entry;
use shoal_tests::pod::TestPod;
use shoal_tests::workspace_root;

const INFO_HASH: &str = "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36";

#[test]
fn bittorrent_tracker_client_interoperates() {
    let js = workspace_root().join("tests/js");
    assert!(
        js.join("node_modules/bittorrent-tracker").is_dir(),
        "{} has no node_modules: run ./shoal test (or `npm install --ignore-scripts` in tests/js)",
        js.display()
    );
    let pod = TestPod::start_with(|_| {});
    pod.pod().catalogue().insert(
        INFO_HASH.parse().expect("hex"),
        Entry::new(
            pod.data_path().join("none.mp4"),
            1,
            "video/mp4".into(),
            "none.mp4".into(),
        ),
    );

    let output = Command::new("node")
        .arg(js.join("tracker-client.mjs"))
        .arg(pod.url())
        .arg(INFO_HASH)
        .current_dir(&js)
        .output()
        .expect("node runs (is Node installed? ./shoal test installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "node failed:\n{stdout}\n{stderr}");
    let line = stdout.lines().last().unwrap_or_default();
    let result: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\n{stderr}"));
    println!("{result:#}");

    assert_eq!(result["errors"], serde_json::json!([]), "{result:#}");
    // Counts: A (left 1000) then B (left unknown): two leechers, no seeder.
    assert_eq!(result["ws"]["updateA"]["incomplete"], 1, "{result:#}");
    assert_eq!(result["ws"]["updateA"]["interval"], 120, "{result:#}");
    assert_eq!(result["ws"]["updateB"]["complete"], 0, "{result:#}");
    assert_eq!(result["ws"]["updateB"]["incomplete"], 2, "{result:#}");
    // The relayed offer and answer carried the right peer ids (hex of the binary strings).
    let peer_hex = |tag: char| {
        let mut id = b"-SH0001-".to_vec();
        id.extend((8..20).map(|i| 0x80 + ((i * 7 + tag as usize) % 0x80) as u8));
        id.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert_eq!(result["ws"]["aPeerId"], peer_hex('B'), "{result:#}");
    assert_eq!(result["ws"]["bPeerId"], peer_hex('A'), "{result:#}");
    assert_eq!(
        result["ws"]["dataChannelMessage"], "hello over WebRTC",
        "{result:#}"
    );
    assert_eq!(
        result["unknown"]["warning"], "unknown info_hash",
        "{result:#}"
    );
    assert_eq!(
        result["ws"]["warningsA"],
        serde_json::json!([]),
        "{result:#}"
    );
    assert_eq!(result["ws"]["scrape"]["incomplete"], 2, "{result:#}");
    assert_eq!(result["ws"]["scrape"]["complete"], 0, "{result:#}");

    assert_eq!(result["http"]["update1"]["interval"], 600, "{result:#}");
    assert_eq!(result["http"]["update2"]["complete"], 1, "{result:#}");
    assert_eq!(
        result["http"]["peers2"],
        serde_json::json!(["127.0.0.1:7001"]),
        "{result:#}"
    );
    assert_eq!(
        result["http"]["warnings"],
        serde_json::json!([]),
        "{result:#}"
    );
}

//! The pod's REST API, upload pipeline and WebSeed, end to end over a real socket with a real
//! SQLite file and the real ffmpeg.

use client_core::metainfo::Metainfo;
use serde_json::Value;
use sha1::{Digest, Sha1};
use shoal_tests::media;
use shoal_tests::pod::{Form, TestPod};

fn get(url: &str) -> ureq::Response {
    match ureq::get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    }
}

fn bytes_of(r: ureq::Response) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut out).unwrap();
    out
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn top_level_boxes(mut data: &[u8]) -> Vec<String> {
    let mut boxes = Vec::new();
    while data.len() >= 8 && boxes.len() < 8 {
        let size = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
        boxes.push(String::from_utf8_lossy(&data[4..8]).into_owned());
        if size < 8 || size > data.len() {
            break;
        }
        data = &data[size..];
    }
    boxes
}

/// Ranges longer than one read stream in several reads; every byte must still be where the
/// range says, whatever the alignment, and a file that has vanished from disk gets a clear 500
/// rather than a 206 whose body breaks off.
#[test]
fn webseed_ranges_of_a_file_larger_than_one_read() {
    use server_lite::catalogue::Entry;
    let pod = TestPod::start_with(|_| {});
    let size = 1_300_001usize; // five 256 KiB reads and an odd tail
    let content: Vec<u8> = (0..size).map(|i| (i * 7 + i / 251) as u8).collect();
    let path = pod.data_path().join("large.bin");
    std::fs::write(&path, &content).unwrap();
    let hash = "0123456789abcdef0123456789abcdef01234567";
    pod.pod().catalogue().insert(
        hash.parse().unwrap(),
        Entry::new(path, size as u64, "video/mp4".into(), "large.bin".into()),
    );
    let url = format!("{}/static/webseed/{hash}/large.bin", pod.url());
    let ranged = |header: &str| {
        let r = ureq::get(&url).set("Range", header).call().unwrap();
        assert_eq!(r.status(), 206, "{header}");
        bytes_of(r)
    };
    // Twice each: the first read opens the file, later ones reuse it.
    for _ in 0..2 {
        assert!(bytes_of(get(&url)) == content, "whole file");
        assert!(ranged("bytes=1-") == content[1..], "bytes=1-");
        assert!(
            ranged("bytes=262143-786433") == content[262_143..=786_433],
            "across read boundaries"
        );
        assert!(ranged("bytes=-5") == content[size - 5..], "suffix");
    }

    let gone = "89abcdef0123456789abcdef0123456789abcdef";
    pod.pod().catalogue().insert(
        gone.parse().unwrap(),
        Entry::new(
            pod.data_path().join("missing.bin"),
            10,
            "video/mp4".into(),
            "missing.bin".into(),
        ),
    );
    let r = get(&format!("{}/static/webseed/{gone}/missing.bin", pod.url()));
    assert_eq!(r.status(), 500);
}

#[test]
fn upload_then_download_every_piece_from_the_webseed() {
    let pod = TestPod::start_with(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let clip = media::progressive_mp4(dir.path(), "Sunset clip.mp4", 3);
    let video = pod.upload_file(&clip, "Sunset over the bay");

    assert_eq!(video["name"], "Sunset over the bay");
    assert_eq!(video["mimeType"], "video/mp4");
    assert_eq!(video["isAudio"], false);
    let duration = video["duration"].as_f64().expect("duration");
    assert!((2.5..3.5).contains(&duration), "duration {duration}");
    assert!(
        video["processing"]
            .as_str()
            .unwrap()
            .contains("fragmented MP4"),
        "{video}"
    );
    assert!(video["thumbnailUrl"].as_str().is_some(), "{video}");
    assert!(video["magnetUri"]
        .as_str()
        .unwrap()
        .starts_with("magnet:?xt=urn:btih:"));

    // The .torrent: our trackers and WebSeed outside the info dict, the info-hash as announced.
    let torrent_bytes = bytes_of(get(video["torrentUrl"].as_str().unwrap()));
    let torrent = Metainfo::parse(&torrent_bytes).expect("the pod's torrent parses");
    assert_eq!(
        torrent.info_hash.to_hex(),
        video["infoHash"].as_str().unwrap()
    );
    assert_eq!(torrent.info.name, "Sunset clip.mp4");
    assert_eq!(torrent.url_list, [video["fileUrl"].as_str().unwrap()]);
    assert!(torrent
        .announce
        .iter()
        .any(|t| t.ends_with("/tracker/socket")));
    assert!(torrent
        .announce
        .iter()
        .any(|t| t.ends_with("/tracker/announce")));
    assert_eq!(torrent.info.total_length, video["size"].as_u64().unwrap());

    // Every piece, fetched as a BitTorrent client would (one Range request a piece), verifies.
    let file_url = video["fileUrl"].as_str().unwrap();
    for index in 0..torrent.info.piece_count() {
        let range = torrent.info.piece_range(index);
        let r = ureq::get(file_url)
            .set("Range", &format!("bytes={}-{}", range.start, range.end - 1))
            .call()
            .unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(
            r.header("Content-Range").unwrap(),
            format!(
                "bytes {}-{}/{}",
                range.start,
                range.end - 1,
                torrent.info.total_length
            )
        );
        assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
        let body = bytes_of(r);
        let digest: [u8; 20] = Sha1::digest(&body).into();
        assert_eq!(
            Some(&digest),
            torrent.info.piece_hash(index),
            "piece {index}"
        );
    }

    // The whole file without a range, a range past the end, and the fragmented layout.
    let whole = get(file_url);
    assert_eq!(whole.status(), 200);
    assert!(whole.header("ETag").unwrap().starts_with('"'));
    let whole = bytes_of(whole);
    assert_eq!(whole.len() as u64, torrent.info.total_length);
    // Laid out for MediaSource from the first pieces: init segment and index before fragments.
    let boxes = top_level_boxes(&whole);
    let at = |kind: &str| boxes.iter().position(|b| b == kind);
    assert_eq!(boxes[0], "ftyp", "{boxes:?}");
    assert!(
        at("moov") < at("sidx") && at("sidx") < at("moof"),
        "{boxes:?}"
    );
    let past = ureq::get(file_url)
        .set("Range", &format!("bytes={}-", whole.len()))
        .call();
    match past {
        Err(ureq::Error::Status(416, r)) => {
            assert_eq!(
                r.header("Content-Range").unwrap(),
                format!("bytes */{}", whole.len())
            )
        }
        other => panic!("expected 416, got {other:?}"),
    }

    // A browser on another origin asks first (Range and Cache-Control are not safelisted).
    let preflight = ureq::request("OPTIONS", file_url)
        .set("Origin", "http://elsewhere.example")
        .set("Access-Control-Request-Method", "GET")
        .set(
            "Access-Control-Request-Headers",
            "range,cache-control,user-agent",
        )
        .call()
        .unwrap();
    let allowed = preflight
        .header("Access-Control-Allow-Headers")
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("range")
            && allowed.contains("cache-control")
            && allowed.contains("user-agent")
    );

    // Paths that try to leave the media directory find nothing.
    let hash = video["infoHash"].as_str().unwrap();
    for bad in [
        format!("/static/webseed/{hash}/..%2F..%2Fshoal.sqlite"),
        format!("/static/webseed/{hash}/other.mp4"),
        "/static/webseed/zz/a.mp4".to_string(),
    ] {
        assert_eq!(get(&format!("{}{bad}", pod.url())).status(), 404, "{bad}");
    }

    let stats = pod.get_json("/api/v1/server/stats");
    assert_eq!(stats["videos"], 1);
    assert!(stats["webseedBytesServed"].as_u64().unwrap() >= 2 * torrent.info.total_length);
}

#[test]
fn list_search_update_delete() {
    let pod = TestPod::start_with(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let a = media::progressive_mp4(dir.path(), "a.mp4", 1);
    let b = media::mp3(dir.path(), "b.mp3", 1);
    let first = pod.upload_file(&a, "Harbour seals at dawn");
    let podcast = pod.upload_file(&b, "Morning radio show");

    // MP3 becomes AAC in fragmented MP4, playable by MediaSource in every browser.
    assert_eq!(podcast["mimeType"], "audio/mp4");
    assert_eq!(podcast["isAudio"], true);
    assert!(podcast["fileUrl"].as_str().unwrap().ends_with("b.m4a"));

    let list = pod.get_json("/api/v1/videos?count=1&sort=-createdAt");
    assert_eq!(list["total"], 2);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let names = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(&pod.get_json("/api/v1/videos?sort=name")),
        ["Harbour seals at dawn", "Morning radio show"]
    );
    assert_eq!(
        names(&pod.get_json("/api/v1/videos?mediaType=audio")),
        ["Morning radio show"]
    );

    // Prefix matching (as-you-type) and ranking.
    assert_eq!(
        names(&pod.get_json("/api/v1/search/videos?search=harb")),
        ["Harbour seals at dawn"]
    );
    assert_eq!(
        names(&pod.get_json("/api/v1/search/videos?search=RADIO%20mor")),
        ["Morning radio show"]
    );
    assert_eq!(
        pod.get_json("/api/v1/search/videos?search=zebra")["total"],
        0
    );
    assert_eq!(
        pod.get_json("/api/v1/search/videos?search=%22%29%3B")["total"],
        0
    );

    // Bad parameters get clear errors.
    let r = get(&format!("{}/api/v1/videos?count=1000", pod.url()));
    assert_eq!(r.status(), 400);
    let body: Value = r.into_json().unwrap();
    assert_eq!(body["error"]["code"], "invalid_count");

    // Update needs the token; then the search index follows the new text.
    let id = first["id"].as_i64().unwrap();
    let url = format!("{}/api/v1/videos/{id}", pod.url());
    let denied = ureq::put(&url).send_json(serde_json::json!({"name": "x"}));
    assert!(matches!(denied, Err(ureq::Error::Status(401, _))));
    let updated: Value = ureq::put(&url)
        .set("Authorization", &format!("Bearer {}", pod.admin_token()))
        .send_json(serde_json::json!({"name": "Grey seals", "tags": ["Wildlife", "sea"]}))
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(updated["name"], "Grey seals");
    assert_eq!(updated["tags"], serde_json::json!(["wildlife", "sea"]));
    assert_eq!(
        names(&pod.get_json("/api/v1/search/videos?search=wildlife")),
        ["Grey seals"]
    );
    assert_eq!(
        pod.get_json("/api/v1/search/videos?search=harbour")["total"],
        0
    );

    // A desktop client is in the video's swarm (HTTP tracker).
    let info_hash = client_core::InfoHash::from_hex(first["infoHash"].as_str().unwrap()).unwrap();
    let hash_escaped = client_core::tracker::http::percent_encode(info_hash.as_bytes());
    let announce = format!(
        "{}/tracker/announce?info_hash={hash_escaped}&peer_id=-XX0001-000000000001&port=6881\
         &uploaded=0&downloaded=0&left=10&compact=1",
        pod.url()
    );
    assert!(!bytes_of(get(&announce)).starts_with(b"d14:failure"));
    assert_eq!(pod.get_json("/api/v1/server/stats")["trackerPeers"], 1);

    // Delete removes the row, the file, the WebSeed and the swarm.
    let file_url = first["fileUrl"].as_str().unwrap().to_owned();
    ureq::delete(&url)
        .set("Authorization", &format!("Bearer {}", pod.admin_token()))
        .call()
        .unwrap();
    assert_eq!(get(&url).status(), 404);
    assert_eq!(get(&file_url).status(), 404);
    assert_eq!(files_in(&pod.data_path().join("media")).len(), 1);
    assert_eq!(pod.get_json("/api/v1/server/stats")["trackerPeers"], 0);
    assert!(bytes_of(get(&announce)).starts_with(b"d14:failure"));
}

/// Sends only the headers of an upload declaring `len` bytes (with the admin token or, `None`,
/// without one) and returns the pod's answer.
fn raw_headers_only(pod: &TestPod, token: Option<&str>, len: usize) -> String {
    use std::io::{Read, Write};
    let addr = pod.url().trim_start_matches("http://").to_owned();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "POST /api/v1/videos/upload HTTP/1.1\r\nHost: x\r\n{auth}\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {len}\r\n\r\n",
    )
    .unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn bad_uploads_leave_nothing_behind() {
    let pod = TestPod::start_with(|c| c.max_upload_mb = 1);
    let check_clean = |what: &str| {
        assert!(
            files_in(&pod.data_path().join("tmp")).is_empty(),
            "{what}: tmp not empty"
        );
        assert!(
            files_in(&pod.data_path().join("media")).is_empty(),
            "{what}: media not empty"
        );
        assert_eq!(
            pod.get_json("/api/v1/videos")["total"],
            0,
            "{what}: a row was written"
        );
    };

    let (status, answer) = pod.upload(Form::new().text("name", "x").file(
        "videofile",
        "notes.mp4",
        b"these are not video bytes at all",
    ));
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "not_media");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("/tmp") && !message.contains("upload-"),
        "leaks a path: {message}"
    );
    check_clean("not media");

    // Too big, declared up front: refused before the body is read, with a sentence that names
    // the limit (read here before sending the body, as a client using 100-continue would).
    let answer = raw_headers_only(&pod, Some(&pod.admin_token()), 2 * 1024 * 1024);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("1 MiB"), "{answer}");
    // Too big, streamed without a length: cut off once past the limit. The client may see the
    // 413 or a reset connection (the pod stops reading), but nothing may be left behind.
    let big = vec![0u8; 2 * 1024 * 1024];
    let (content_type, body) = Form::new().file("videofile", "big.mp4", &big).finish();
    let result = ureq::post(&format!("{}/api/v1/videos/upload", pod.url()))
        .set("Authorization", &format!("Bearer {}", pod.admin_token()))
        .set("Content-Type", &content_type)
        .send(std::io::Cursor::new(body));
    match result {
        Err(ureq::Error::Status(413, _)) | Err(ureq::Error::Transport(_)) => {}
        other => panic!("expected 413, got {other:?}"),
    }
    check_clean("too big");

    let (status, answer) = pod.upload(Form::new().text("name", "nothing"));
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "missing_file");

    // A body cut off in the middle of the file.
    let dir = tempfile::tempdir().unwrap();
    let clip = std::fs::read(media::progressive_mp4(dir.path(), "c.mp4", 1)).unwrap();
    let (content_type, body) = Form::new().file("videofile", "c.mp4", &clip).finish();
    let cut = &body[..body.len() / 2];
    let result = ureq::post(&format!("{}/api/v1/videos/upload", pod.url()))
        .set("Authorization", &format!("Bearer {}", pod.admin_token()))
        .set("Content-Type", &content_type)
        .send_bytes(cut);
    assert!(
        matches!(result, Err(ureq::Error::Status(400, _))),
        "{result:?}"
    );
    check_clean("truncated");

    // Without the token nothing is even read: the answer comes after the headers alone. (With a
    // whole body sent, the client may see the connection reset instead of the answer, since the
    // pod closes a connection whose body it will not read.)
    let answer = raw_headers_only(&pod, None, clip.len());
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    check_clean("unauthorised");
}

#[test]
fn the_same_file_twice_is_refused_with_a_pointer_to_the_first() {
    let pod = TestPod::start_with(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let clip = media::progressive_mp4(dir.path(), "same.mp4", 1);
    let first = pod.upload_file(&clip, "First");
    let bytes = std::fs::read(&clip).unwrap();
    let (status, answer) = pod.upload(Form::new().text("name", "Second").file(
        "videofile",
        "same.mp4",
        &bytes,
    ));
    assert_eq!(status, 409, "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains(first["uuid"].as_str().unwrap()));
}

#[test]
fn a_new_pod_with_demo_shows_a_playable_video() {
    let pod = TestPod::start_with(|c| c.demo = true);
    let list = pod.get_json("/api/v1/videos");
    assert_eq!(list["total"], 1);
    let demo = &list["data"][0];
    assert_eq!(demo["name"], "Welcome to Shoal");
    let head = ureq::head(demo["fileUrl"].as_str().unwrap())
        .call()
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.header("Content-Length").unwrap(),
        demo["size"].to_string()
    );
}

#[test]
fn unknown_api_paths_answer_json_errors() {
    let pod = TestPod::start_with(|_| {});
    let r = get(&format!("{}/api/v1/nope", pod.url()));
    assert_eq!(r.status(), 404);
    let body: Value = r.into_json().unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(
        get(&format!("{}/api/v1/videos/999", pod.url())).status(),
        404
    );
}

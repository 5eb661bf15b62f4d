//! The shared test vectors (../shared/vectors/README.md, protocol §7): every real torrent parses
//! to the expected info-hash, the outer fields are normalised like parse-torrent, and creating a
//! torrent from each content folder reproduces the fixture byte for byte.

use std::fs;
use std::path::{Path, PathBuf};

use client_core::bencode;
use client_core::magnet::Magnet;
use client_core::metainfo::{default_piece_length, Metainfo, MetainfoError, TorrentBuilder};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors")
}

fn fixture(name: &str) -> PathBuf {
    vectors().join("webtorrent-fixtures/fixtures").join(name)
}

fn load(relative: &str) -> Metainfo {
    let bytes = fs::read(vectors().join(relative)).unwrap();
    Metainfo::parse(&bytes).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

const EXPECTED: &[(&str, &str)] = &[
    (
        "webtorrent-fixtures/fixtures/leaves.torrent",
        "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36",
    ),
    (
        "webtorrent-fixtures/fixtures/leaves-metadata.torrent",
        "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36",
    ),
    (
        "webtorrent-fixtures/fixtures/alice.torrent",
        "722fe65b2aa26d14f35b4ad627d20236e481d924",
    ),
    (
        "webtorrent-fixtures/fixtures/folder.torrent",
        "b88da2caac6648e6c7d7687e3f89085f7e230e6b",
    ),
    (
        "webtorrent-fixtures/fixtures/numbers.torrent",
        "89d97c2261a21b040cf11caa661a3ba7233bb7e6",
    ),
    (
        "webtorrent-fixtures/fixtures/lots-of-numbers.torrent",
        "114ead6243792ba56297edbb9a78dfba84d4fc00",
    ),
    (
        "webtorrent-fixtures/fixtures/bunny.torrent",
        "af8f10f30bf9aefecf3686922bfa0d5bd290a395",
    ),
    (
        "webtorrent-fixtures/fixtures/sintel.torrent",
        "c334138ef5bfc2d568ea7324e0e2a3a7ec229bdd",
    ),
    (
        "parse-torrent/test/torrents/bitlove-intro.torrent",
        "4cb67059ed6bd08362da625b3ae77f6f4a075705",
    ),
    (
        "parse-torrent/test/torrents/leaves-url-list.torrent",
        "0a8c2327abfbc1ac5f9672ec5f7c8adc6d381192",
    ),
    (
        "parse-torrent/test/torrents/leaves-empty-url-list.torrent",
        "0a8c2327abfbc1ac5f9672ec5f7c8adc6d381192",
    ),
    (
        "parse-torrent/test/torrents/leaves-empty-announce-list.torrent",
        "0a8c2327abfbc1ac5f9672ec5f7c8adc6d381192",
    ),
    (
        "parse-torrent/test/torrents/leaves-duplicate-tracker.torrent",
        "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36",
    ),
];

/// Every `.torrent` under the vectors directory, so a newly added vector is covered too.
fn all_torrents() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "torrent") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&vectors(), &mut out);
    out.sort();
    out
}

#[test]
fn every_vector_parses_to_its_info_hash() {
    let torrents = all_torrents();
    assert!(torrents.len() > EXPECTED.len(), "vectors not found");
    for path in torrents {
        let relative = path.strip_prefix(vectors()).unwrap().to_str().unwrap();
        let bytes = fs::read(&path).unwrap();
        let parsed = Metainfo::parse(&bytes);
        if relative.ends_with("corrupt.torrent") {
            assert!(parsed.is_err(), "{relative} must be rejected");
            continue;
        }
        let m = parsed.unwrap_or_else(|e| panic!("{relative}: {e}"));
        let (_, hash) = EXPECTED
            .iter()
            .find(|(file, _)| *file == relative)
            .unwrap_or_else(|| panic!("{relative} has no expected info-hash in this test"));
        assert_eq!(m.info_hash.to_hex(), *hash, "{relative}");

        // raw_info is exactly the bytes inside the file.
        let span = bencode::dict_value_span(&bytes, b"info").unwrap().unwrap();
        assert_eq!(m.raw_info, &bytes[span]);
        // Every fixture is canonical bencoding, so re-encoding gives the same bytes.
        assert_eq!(
            bencode::decode(&bytes).unwrap().encode(),
            bytes,
            "{relative}"
        );

        // The piece/file geometry is self-consistent.
        let info = &m.info;
        let covered: u64 = (0..info.piece_count())
            .map(|i| u64::from(info.piece_size(i)))
            .sum();
        assert_eq!(covered, info.total_length, "{relative}");
        let files_len: u64 = info.files.iter().map(|f| f.length).sum();
        assert_eq!(files_len, info.total_length, "{relative}");
    }
}

#[test]
fn round_trip_through_to_torrent_bytes() {
    for (relative, _) in EXPECTED {
        let m = load(relative);
        let written = m.to_torrent_bytes();
        let again = Metainfo::parse(&written).unwrap_or_else(|e| panic!("{relative}: {e}"));
        assert_eq!(again, m, "{relative}");
        // What we write is canonical and has create-torrent's outer keys only.
        let outer = bencode::decode(&written).unwrap();
        assert_eq!(outer.encode(), written, "{relative}");
        assert_eq!(
            outer.get(b"encoding").and_then(|v| v.as_str()),
            Some("UTF-8")
        );
    }
}

#[test]
fn corrupt_torrent_says_the_name_is_missing() {
    let bytes = fs::read(fixture("corrupt.torrent")).unwrap();
    let err = Metainfo::parse(&bytes).unwrap_err();
    assert_eq!(err, MetainfoError::MissingField("name"));
    assert!(err.to_string().contains("`name`"), "{err}");
}

#[test]
fn trackers_are_flattened_and_deduplicated() {
    let m = load("parse-torrent/test/torrents/leaves-duplicate-tracker.torrent");
    assert_eq!(m.announce, ["http://tracker.example.com/announce"]);
    assert_eq!(m.created_by.as_deref(), Some("uTorrent/3300"));
    assert_eq!(m.creation_date, Some(1375363666));

    // `announce-list` is an empty string: fall back to `announce`.
    let m = load("parse-torrent/test/torrents/leaves-empty-announce-list.torrent");
    assert_eq!(m.announce, ["udp://tracker.publicbt.com:80/announce"]);

    // Rebuilt from ut_metadata: empty `announce-list`, an extra `infoHash` key outside info.
    let m = load("webtorrent-fixtures/fixtures/leaves-metadata.torrent");
    assert!(m.announce.is_empty());
}

#[test]
fn url_list_variants() {
    let m = load("parse-torrent/test/torrents/bitlove-intro.torrent");
    assert_eq!(
        m.url_list,
        ["http://spaceboyz.net/~astro/bitlove-show/bl001-introduction.webm"]
    );
    assert_eq!(m.info.piece_length, 1 << 20);
    assert_eq!(m.announce, ["http://t.bitlove.org/announce"]);

    let m = load("parse-torrent/test/torrents/leaves-url-list.torrent");
    assert_eq!(
        m.url_list,
        ["http://www2.hn.psu.edu/faculty/jmanis/whitman/leaves-of-grass6x9.pdf"]
    );
    let m = load("parse-torrent/test/torrents/leaves-empty-url-list.torrent");
    assert!(m.url_list.is_empty());
}

#[test]
fn fixture_shapes() {
    let leaves = load("webtorrent-fixtures/fixtures/leaves.torrent");
    assert!(leaves.info.single_file);
    assert_eq!(leaves.info.total_length, 362_017);
    assert_eq!(leaves.info.piece_count(), 23);
    assert_eq!(leaves.info.piece_size(22), (362_017 % 16384) as u32);
    assert_eq!(leaves.info.files.len(), 1);
    assert!(leaves.info.files[0].path.is_empty());

    let bunny = load("webtorrent-fixtures/fixtures/bunny.torrent");
    assert!(bunny.info.private);
    assert_eq!(bunny.url_list.len(), 1);
    assert_eq!(bunny.info.piece_length, 512 << 10);

    let sintel = load("webtorrent-fixtures/fixtures/sintel.torrent");
    assert_eq!(sintel.info.total_length, 5_490_455_272);
    assert_eq!(sintel.info.piece_length, 4 << 20);
    assert_eq!(sintel.info.piece_count(), 1310);
    assert_eq!(sintel.info.piece_offset(1309), 1309 * (4 << 20));

    let folder = load("webtorrent-fixtures/fixtures/folder.torrent");
    assert!(
        !folder.info.single_file,
        "one file in a `files` list is multi-file"
    );
    assert_eq!(folder.info.files[0].path, ["file.txt"]);

    let lots = load("webtorrent-fixtures/fixtures/lots-of-numbers.torrent");
    let paths: Vec<_> = (0..lots.info.files.len())
        .map(|i| lots.info.display_path(i).unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "lots-of-numbers/big numbers/10.txt",
            "lots-of-numbers/big numbers/11.txt",
            "lots-of-numbers/big numbers/12.txt",
            "lots-of-numbers/small numbers/1.txt",
            "lots-of-numbers/small numbers/2.txt",
            "lots-of-numbers/small numbers/3.txt",
        ]
    );
    // The single piece covers all six files, in order.
    let slices: Vec<_> = lots.info.file_slices(lots.info.piece_range(0)).collect();
    assert_eq!(
        slices,
        [
            (0, 0, 2),
            (1, 0, 2),
            (2, 0, 2),
            (3, 0, 1),
            (4, 0, 2),
            (5, 0, 3)
        ]
    );
}

#[test]
fn leaves_magnet() {
    let leaves = load("webtorrent-fixtures/fixtures/leaves.torrent");
    let magnet = Magnet::from(&leaves);
    assert_eq!(
        magnet.to_string(),
        "magnet:?xt=urn:btih:d2474e86c95b19b8bcfdb92bc12c9d44667cfa36\
         &dn=Leaves+of+Grass+by+Walt+Whitman.epub"
    );
    assert_eq!(Magnet::parse(&magnet.to_string()).unwrap(), magnet);
}

/// Content folders and the fixture each must reproduce.
const CONTENT: &[(&str, &str)] = &[
    ("alice.txt", "alice.torrent"),
    ("Leaves of Grass by Walt Whitman.epub", "leaves.torrent"),
    ("folder", "folder.torrent"),
    ("numbers", "numbers.torrent"),
    ("lots-of-numbers", "lots-of-numbers.torrent"),
];

#[test]
fn creating_reproduces_every_fixture_byte_for_byte() {
    for (content, torrent) in CONTENT {
        let expected = load(&format!("webtorrent-fixtures/fixtures/{torrent}"));
        let piece_length = expected.info.piece_length;
        // These fixtures were made without a forced piece length.
        let total = expected.info.total_length;
        assert_eq!(default_piece_length(total), piece_length, "{content}");

        for forced in [Some(piece_length), None] {
            let created = TorrentBuilder::from_path(&fixture(content), forced)
                .unwrap()
                .finish()
                .unwrap();
            assert_eq!(created.info_hash, expected.info_hash, "{content}");
            assert_eq!(created.raw_info, expected.raw_info, "{content}");
            assert_eq!(created.info, expected.info, "{content}");
        }
    }
}

#[test]
fn creating_from_a_byte_stream_matches_from_path() {
    // The browser path: layout first, then bytes in odd-sized chunks across file boundaries.
    let dir = fixture("lots-of-numbers");
    let mut layout = Vec::new();
    let mut data = Vec::new();
    for (sub, files) in [
        ("big numbers", ["10.txt", "11.txt", "12.txt"]),
        ("small numbers", ["1.txt", "2.txt", "3.txt"]),
    ] {
        for file in files {
            let bytes = fs::read(dir.join(sub).join(file)).unwrap();
            layout.push((vec![sub.to_owned(), file.to_owned()], bytes.len() as u64));
            data.extend(bytes);
        }
    }
    let mut builder = TorrentBuilder::multi_file("lots-of-numbers", layout, Some(16384)).unwrap();
    data.chunks(5).for_each(|chunk| builder.update(chunk));
    let created = builder.finish().unwrap();
    assert_eq!(
        created.info_hash.to_hex(),
        "114ead6243792ba56297edbb9a78dfba84d4fc00"
    );
}

#[test]
fn create_torrent_test_expectations() {
    // create-torrent's own tests (protocol §5.2, §7): forced piece length and explicit private.
    let cases = [
        (
            "numbers",
            32 << 10,
            false,
            "80562f38656b385ea78959010e51a2cc9db41ea0",
        ),
        (
            "lots-of-numbers",
            32 << 10,
            false,
            "427887e9c03e123f9c8458b1947090edf1c75baa",
        ),
        (
            "folder",
            256 << 10,
            true,
            "b4dfce1f956f720c928535ded617d07696a819ef",
        ),
    ];
    for (content, piece_length, private, hash) in cases {
        let created = TorrentBuilder::from_path(&fixture(content), Some(piece_length))
            .unwrap()
            .private(private)
            .finish()
            .unwrap();
        assert_eq!(created.info_hash.to_hex(), hash, "{content}");
    }

    // test/source.js: `opts.info.source` is merged into info.
    let created = TorrentBuilder::from_path(&fixture("folder"), Some(256 << 10))
        .unwrap()
        .private(true)
        .info_field("source", "SOURCE".into())
        .finish()
        .unwrap();
    assert_eq!(
        created.info_hash.to_hex(),
        "a9499b56289356a3d5b8636387deb83709b8fa42"
    );
}

#[test]
fn created_torrent_file_round_trips() {
    let created = TorrentBuilder::from_path(&fixture("numbers"), None)
        .unwrap()
        .announce(["wss://tracker.example/", "wss://tracker.example/"])
        .url_list(["https://seed.example/"])
        .created_by("WebTorrent/0300")
        .creation_date(1_700_000_000)
        .finish()
        .unwrap();
    assert_eq!(created.announce, ["wss://tracker.example/"]);
    let parsed = Metainfo::parse(&created.to_torrent_bytes()).unwrap();
    assert_eq!(parsed, created);
    assert_eq!(
        parsed.info_hash.to_hex(),
        "89d97c2261a21b040cf11caa661a3ba7233bb7e6"
    );
}

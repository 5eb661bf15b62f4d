//! Properties that must hold for every input, shared by the fuzz targets (fuzz_targets/*.rs)
//! and the stable replay test (../tests/replay_bencode.rs). A panic here is a bug: either a
//! parser panicked, or an invariant documented in the module under test does not hold.
#![allow(dead_code)] // each fuzz target uses one entry point

use client_core::bencode::{self, Limits};
use client_core::magnet::Magnet;
use client_core::metainfo::Metainfo;
use sha1::{Digest, Sha1};

/// Bencode: never panics; whatever decodes re-encodes canonically and decodes back to itself;
/// the prefix and span APIs agree with the full decoder.
pub fn bencode(data: &[u8]) {
    let full = bencode::decode(data);
    match &full {
        Ok(value) => {
            let encoded = value.encode();
            assert_eq!(bencode::decode(&encoded).as_ref(), Ok(value), "round trip");
            assert_eq!(
                bencode::decode(&encoded).map(|v| v.encode()),
                Ok(encoded.clone()),
                "a canonical encoding decodes and re-encodes to the same bytes"
            );
            // Numbers and lengths must already be canonical on input, so re-encoding can only
            // reorder keys (same length) or drop duplicates (shorter).
            assert!(encoded.len() <= data.len(), "encoding grew");
        }
        Err(e) => assert!(e.offset() <= data.len(), "error offset past the input: {e}"),
    }

    match bencode::decode_prefix(data, &Limits::default()) {
        Ok((value, used)) => {
            assert!(used > 0 && used <= data.len());
            assert_eq!(bencode::decode(&data[..used]).as_ref(), Ok(&value));
            if used == data.len() {
                assert_eq!(full.as_ref(), Ok(&value));
            } else {
                assert!(full.is_err(), "decode must reject trailing data");
            }
        }
        Err(e) => assert!(
            full.is_err(),
            "prefix failed ({e}) where full decode did not"
        ),
    }

    for key in [&b"info"[..], b"a"] {
        match bencode::dict_value_span(data, key) {
            Ok(Some(span)) => {
                assert!(span.start < span.end && span.end <= data.len());
                let inner = bencode::decode(&data[span]).expect("span holds one value");
                if let Ok(value) = &full {
                    assert_eq!(value.get(key), Some(&inner), "span disagrees with decode");
                }
            }
            Ok(None) => {
                if let Ok(value) = &full {
                    assert_eq!(value.get(key), None);
                }
            }
            Err(_) => {
                if let Ok(value) = &full {
                    assert!(value.as_dict().is_none(), "span failed on a decodable dict");
                }
            }
        }
    }

    // Tight limits must fail cleanly, never panic.
    let tight = Limits {
        max_depth: 2,
        max_items: 16,
        max_bytes_len: 8,
    };
    let _ = bencode::decode_with(data, &tight);
}

/// Metainfo: never panics; an accepted torrent satisfies the documented invariants, writes
/// itself back losslessly, and its magnet round-trips.
pub fn metainfo(data: &[u8]) {
    let Ok(torrent) = Metainfo::parse(data) else {
        return;
    };
    let sha: [u8; 20] = Sha1::digest(&torrent.raw_info).into();
    assert_eq!(
        torrent.info_hash.0, sha,
        "info-hash is the SHA-1 of raw_info"
    );

    let written = torrent.to_torrent_bytes();
    let again = Metainfo::parse(&written).expect("written torrent parses");
    assert_eq!(again, torrent, "to_torrent_bytes round trip");
    let written_value = bencode::decode(&written).expect("written torrent is bencode");
    // The info dict is kept byte for byte (its SHA-1 is the swarm's name), so the whole file
    // is canonical only when the info dict already was.
    let info_canonical = bencode::decode(&torrent.raw_info)
        .map(|v| v.encode() == torrent.raw_info)
        .unwrap_or(false);
    if info_canonical {
        assert_eq!(
            written_value.encode(),
            written,
            "outer dictionary is canonical"
        );
    }

    let bare = Metainfo::from_info_bytes(torrent.raw_info.clone()).expect("raw_info parses");
    assert_eq!(bare.info, torrent.info);
    assert_eq!(bare.info_hash, torrent.info_hash);

    let info = &torrent.info;
    assert_eq!(info.piece_count() as usize, info.pieces.len());
    let mut offset = 0u64;
    for file in &info.files {
        assert_eq!(file.offset, offset, "files are contiguous");
        offset += file.length;
        assert_eq!(file.path.is_empty(), info.single_file);
        for component in file.path.iter().chain([&info.name]) {
            assert!(!component.is_empty() && component != "." && component != "..");
            assert!(!component.contains(['/', '\\', '\0']));
        }
    }
    assert_eq!(offset, info.total_length);
    let mut covered = 0u64;
    for index in 0..info.piece_count() {
        let size = info.piece_size(index);
        assert!(size > 0 && size <= info.piece_length);
        assert_eq!(info.piece_offset(index), covered);
        covered += u64::from(size);
    }
    assert_eq!(covered, info.total_length);
    assert_eq!(info.piece_size(info.piece_count()), 0);
    // Map the first and last few pieces onto files (all of them would be quadratic).
    let count = info.piece_count();
    for index in (0..count.min(4)).chain(count.saturating_sub(4)..count) {
        let range = info.piece_range(index);
        let mut at = range.start;
        for (file, offset_in_file, len) in info.file_slices(range.clone()) {
            let entry = &info.files[file];
            assert_eq!(entry.offset + offset_in_file, at, "slices are contiguous");
            assert!(len > 0 && offset_in_file + len <= entry.length);
            at += len;
        }
        assert_eq!(at, range.end, "slices cover the piece");
    }

    let magnet = Magnet::from(&torrent);
    let parsed = Magnet::parse(&magnet.to_string()).expect("own magnet parses");
    assert_eq!(parsed, with_plus_as_space(magnet));
}

/// Magnet: never panics; what parses prints a link that parses back to the same value.
pub fn magnet(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(magnet) = Magnet::parse(&text) else {
        return;
    };
    assert!(magnet.name.as_deref() != Some(""));
    for list in [&magnet.trackers, &magnet.web_seeds, &magnet.exact_sources] {
        assert!(list.iter().all(|url| !url.is_empty()));
    }
    let printed = magnet.to_string();
    let query = printed.strip_prefix("magnet:?").expect("prefix");
    for param in query.split('&') {
        assert_eq!(
            param.matches('=').count(),
            1,
            "value leaked a raw `=`: {param}"
        );
    }
    let parsed = Magnet::parse(&printed).expect("printed magnet parses");
    assert_eq!(parsed, with_plus_as_space(magnet));
}

/// magnet-uri turns `+` in `dn` into a space even when it was escaped, so a name with a
/// literal `+` cannot survive a round trip; that is WebTorrent's behaviour, kept on purpose.
fn with_plus_as_space(mut magnet: Magnet) -> Magnet {
    magnet.name = magnet.name.map(|n| n.replace('+', " "));
    magnet
}

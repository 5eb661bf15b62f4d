//! client-core running inside a real browser (wasm-bindgen-test in headless Chromium): the same
//! validated parsing and SHA-1 piece verification the native tests check must hold in wasm.
#![cfg(target_arch = "wasm32")]

use client_core::metainfo::Metainfo;
use sha1::{Digest, Sha1};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const ALICE_TORRENT: &[u8] =
    include_bytes!("../../../shared/vectors/webtorrent-fixtures/fixtures/alice.torrent");
const ALICE_TXT: &[u8] =
    include_bytes!("../../../shared/vectors/webtorrent-fixtures/fixtures/alice.txt");

#[wasm_bindgen_test]
fn parses_a_torrent_and_verifies_every_piece_in_the_browser() {
    let torrent = Metainfo::parse(ALICE_TORRENT).expect("alice.torrent parses");
    assert_eq!(
        torrent.info_hash.to_hex(),
        "722fe65b2aa26d14f35b4ad627d20236e481d924"
    );
    let info = &torrent.info;
    assert_eq!(info.total_length, ALICE_TXT.len() as u64);
    let piece_length = info.piece_length as usize;
    for (index, expected) in info.pieces.iter().enumerate() {
        let start = index * piece_length;
        let end = (start + piece_length).min(ALICE_TXT.len());
        let digest: [u8; 20] = Sha1::digest(&ALICE_TXT[start..end]).into();
        assert_eq!(&digest, expected, "piece {index}");
    }
}

#[wasm_bindgen_test]
fn rejects_a_corrupt_torrent_in_the_browser() {
    let corrupt =
        include_bytes!("../../../shared/vectors/webtorrent-fixtures/fixtures/corrupt.torrent");
    assert!(Metainfo::parse(corrupt).is_err());
}

#[wasm_bindgen_test]
fn exports_its_version_to_javascript() {
    assert_eq!(client_core::web::version(), env!("CARGO_PKG_VERSION"));
}

//! Properties of the tracker message parsers that must hold for every input, shared by the fuzz
//! targets (fuzz_targets/tracker_json.rs, fuzz_targets/tracker_http.rs) and the stable replay
//! test (../tests/tracker_replay.rs).
#![allow(dead_code)] // each user takes what it needs

use client_core::tracker::http::{
    HttpAnnounce, HttpAnnounceResponse, HttpScrape, HttpScrapeResponse,
};
use client_core::tracker::ws::{ClientMessage, Failure, ServerMessage, MAX_MESSAGE_LEN};

/// JSON: parsing never panics; whatever parses re-serialises to JSON that parses back to the
/// same value and re-serialises identically.
pub fn tracker_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(message) = ClientMessage::parse(text) {
        let json = message.to_json();
        // Re-serialising may lengthen numbers (`1e3` → `1000`); past the limit is not a bug.
        if json.len() <= MAX_MESSAGE_LEN {
            let again = ClientMessage::parse(&json).expect("our JSON must parse");
            assert_eq!(again, message, "client message round trip: {json}");
            assert_eq!(again.to_json(), json);
        }
    }
    if let Ok(message) = ServerMessage::parse(text) {
        let json = message.to_json();
        if json.len() <= MAX_MESSAGE_LEN {
            let again = ServerMessage::parse(&json).expect("our JSON must parse");
            assert_eq!(again, message, "server message round trip: {json}");
            assert_eq!(again.to_json(), json);
        }
    }
    let _ = Failure::for_request(text, "reason");
}

/// HTTP: query and bencode parsing never panic; whatever parses round-trips.
pub fn tracker_http(data: &[u8]) {
    if let Ok(query) = std::str::from_utf8(data) {
        if let Ok(announce) = HttpAnnounce::parse_query(query) {
            assert_eq!(
                HttpAnnounce::parse_query(&announce.to_query()),
                Ok(announce)
            );
        }
        if let Ok(scrape) = HttpScrape::parse_query(query) {
            assert_eq!(HttpScrape::parse_query(&scrape.to_query()), Ok(scrape));
        }
    }
    if let Ok(mut response) = HttpAnnounceResponse::decode(data) {
        let again =
            HttpAnnounceResponse::decode(&response.encode()).expect("our response must decode");
        // Encoding groups IPv4 (`peers`) before IPv6 (`peers6`).
        response.peers.sort_by_key(|peer| peer.is_ipv6());
        assert_eq!(again, response);
    }
    if let Ok(response) = HttpScrapeResponse::decode(data) {
        assert_eq!(HttpScrapeResponse::decode(&response.encode()), Ok(response));
    }
}

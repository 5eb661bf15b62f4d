//! Tracker messages: WebSocket JSON as bittorrent-tracker speaks it, HTTP announce and scrape.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use client_core::id::IdError;
use client_core::tracker::http::{
    encode_failure, percent_decode, percent_encode, scrape_url, HttpAnnounce, HttpAnnounceResponse,
    HttpScrape, HttpScrapeResponse,
};
use client_core::tracker::ws::{
    Action, Announce, AnnounceResponse, Answer, ClientMessage, Failure, Offer, OfferId,
    RelayedAnswer, RelayedOffer, Scrape, ScrapeResponse, Sdp, ServerMessage, MAX_OFFERS,
    MAX_SDP_LEN,
};
use client_core::tracker::{AnnounceEvent, ScrapeStats, TrackerError};
use client_core::{InfoHash, PeerId};

const LEAVES_HEX: &str = "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36";
/// The leaves info-hash as a JSON string body, written the way Node (and serde_json) write it:
/// U+0080..U+00FF raw, U+0019 escaped.
const LEAVES_JSON: &str =
    "\u{d2}GN\u{86}\u{c9}[\\u0019\u{b8}\u{bc}\u{fd}\u{b9}+\u{c1},\u{9d}Df|\u{fa}6";
/// The same, as UTF-8 bytes on the wire (webtorrent-protocol.md §1.2, recorded from Node 20).
const LEAVES_WIRE: &[u8] = &[
    0xc3, 0x92, 0x47, 0x4e, 0xc2, 0x86, 0xc3, 0x89, 0x5b, 0x5c, 0x75, 0x30, 0x30, 0x31, 0x39, 0xc2,
    0xb8, 0xc2, 0xbc, 0xc3, 0xbd, 0xc2, 0xb9, 0x2b, 0xc3, 0x81, 0x2c, 0xc2, 0x9d, 0x44, 0x66, 0x7c,
    0xc3, 0xba, 0x36,
];
/// Offer id 00 01 … 13: every byte a control character.
const CONTROL_ID_JSON: &str = "\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013";
/// Offer id ec ed … ff.
const HIGH_ID_JSON: &str = "\u{ec}\u{ed}\u{ee}\u{ef}\u{f0}\u{f1}\u{f2}\u{f3}\u{f4}\u{f5}\u{f6}\u{f7}\u{f8}\u{f9}\u{fa}\u{fb}\u{fc}\u{fd}\u{fe}\u{ff}";
const SDP: &str =
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=candidate:1 1 udp 1 192.0.2.1 5000 typ host\r\n";
const SDP_JSON: &str =
    "v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\na=candidate:1 1 udp 1 192.0.2.1 5000 typ host\\r\\n";

fn leaves() -> InfoHash {
    InfoHash::from_hex(LEAVES_HEX).unwrap()
}

fn webtorrent_peer() -> PeerId {
    PeerId(*b"-WW0300-Tq3z0VhR1kYd")
}

fn shoal_peer() -> PeerId {
    PeerId(*b"-SH0100-abcdefghijkl")
}

fn control_offer_id() -> OfferId {
    OfferId(std::array::from_fn(|i| i as u8))
}

fn high_offer_id() -> OfferId {
    OfferId(std::array::from_fn(|i| 0xec + i as u8))
}

fn assert_client_round_trip(message: &ClientMessage) {
    let json = message.to_json();
    assert_eq!(&ClientMessage::parse(&json).unwrap(), message, "{json}");
}

fn assert_server_round_trip(message: &ServerMessage) {
    let json = message.to_json();
    assert_eq!(&ServerMessage::parse(&json).unwrap(), message, "{json}");
}

// ---- WebSocket: ids --------------------------------------------------------------------------

#[test]
fn leaves_info_hash_is_sent_as_node_does() {
    let response = ServerMessage::Announce(AnnounceResponse {
        info_hash: leaves(),
        complete: 1,
        incomplete: 0,
        interval: Some(120),
        min_interval: None,
        tracker_id: None,
        warning: None,
    });
    let json = response.to_json();
    let mut quoted = vec![b'"'];
    quoted.extend_from_slice(LEAVES_WIRE);
    quoted.push(b'"');
    let at = json.find("\"info_hash\":").unwrap() + "\"info_hash\":".len();
    assert_eq!(&json.as_bytes()[at..at + quoted.len()], quoted.as_slice());
    assert_server_round_trip(&response);
}

#[test]
fn every_byte_value_survives_a_round_trip() {
    for start in (0..=255u8).step_by(20) {
        let bytes: [u8; 20] = std::array::from_fn(|i| start.wrapping_add(i as u8));
        let message = ClientMessage::Scrape(Scrape::Single(InfoHash(bytes)));
        let json = message.to_json();
        assert!(
            !json.bytes().any(|b| b < 0x20),
            "control bytes must be escaped"
        );
        assert_client_round_trip(&message);
    }
}

// ---- WebSocket: client → server -------------------------------------------------------------

fn announce_with_offers() -> Announce {
    Announce {
        numwant: Some(2),
        uploaded: Some(0),
        downloaded: Some(16384),
        left: Some(345_633),
        event: Some(AnnounceEvent::Started),
        offers: vec![
            Offer {
                offer_id: control_offer_id(),
                sdp: Sdp::from_text(SDP),
            },
            Offer {
                offer_id: high_offer_id(),
                sdp: Sdp::from_text(SDP),
            },
        ],
        ..Announce::new(leaves(), webtorrent_peer())
    }
}

#[test]
fn announce_with_offers_golden() {
    let message = ClientMessage::Announce(announce_with_offers());
    let expected = format!(
        concat!(
            r#"{{"action":"announce","info_hash":"{hash}","peer_id":"-WW0300-Tq3z0VhR1kYd","#,
            r#""numwant":2,"uploaded":0,"downloaded":16384,"left":345633,"event":"started","#,
            r#""offers":[{{"offer":{{"type":"offer","sdp":"{sdp}"}},"offer_id":"{id1}"}},"#,
            r#"{{"offer":{{"type":"offer","sdp":"{sdp}"}},"offer_id":"{id2}"}}]}}"#
        ),
        hash = LEAVES_JSON,
        sdp = SDP_JSON,
        id1 = CONTROL_ID_JSON,
        id2 = HIGH_ID_JSON,
    );
    assert_eq!(message.to_json(), expected);
    assert_client_round_trip(&message);
}

#[test]
fn announce_as_the_js_client_writes_it_parses() {
    // Key order, `left: null` (magnet before metadata), extra keys from getAnnounceOpts.
    let json = format!(
        concat!(
            r#"{{"numwant":5,"uploaded":0,"downloaded":0,"left":null,"event":"started","#,
            r#""action":"announce","info_hash":"{hash}","peer_id":"-WW0300-Tq3z0VhR1kYd","#,
            r#""offers":[{{"offer":{{"type":"offer","sdp":"{sdp}"}},"offer_id":"{id}"}}],"#,
            r#""customKey":{{"nested":[1,2]}}}}"#
        ),
        hash = LEAVES_JSON,
        sdp = SDP_JSON,
        id = HIGH_ID_JSON,
    );
    let ClientMessage::Announce(announce) = ClientMessage::parse(&json).unwrap() else {
        panic!("not an announce");
    };
    assert_eq!(announce.info_hash, leaves());
    assert_eq!(announce.peer_id, webtorrent_peer());
    assert_eq!(announce.numwant, Some(5));
    assert_eq!(announce.left, None);
    assert!(
        !announce.is_complete(),
        "left:null is unknown, not a seeder"
    );
    assert_eq!(announce.event, Some(AnnounceEvent::Started));
    assert_eq!(announce.offers.len(), 1);
    assert_eq!(announce.offers[0].offer_id, high_offer_id());
    assert_eq!(announce.offers[0].sdp.to_text(), SDP);
    assert_eq!(announce.answer, None);
    // We never emit `left: null` (the reference server would count it as a seeder).
    assert!(!ClientMessage::Announce(announce).to_json().contains("left"));
}

#[test]
fn an_offer_sdp_is_relayed_as_written_and_decoded_once() {
    // Escapes serde_json would not write (`\u0061`, `\/`): the tracker must not decode and
    // re-encode the SDP, only check it and pass it on.
    let literal = r#""v=0\r\n\u0061=x\/y\r\n""#;
    let json = format!(
        r#"{{"action":"announce","info_hash":"{LEAVES_JSON}","peer_id":"-WW0300-Tq3z0VhR1kYd","offers":[{{"offer":{{"type":"offer","sdp":{literal}}},"offer_id":"{HIGH_ID_JSON}"}}]}}"#
    );
    let ClientMessage::Announce(announce) = ClientMessage::parse(&json).unwrap() else {
        panic!("not an announce");
    };
    let sdp = announce.offers[0].sdp.clone();
    assert_eq!(sdp.as_json(), literal);
    let relayed = ServerMessage::Offer(RelayedOffer {
        info_hash: leaves(),
        peer_id: webtorrent_peer(),
        offer_id: high_offer_id(),
        sdp,
    })
    .to_json();
    assert!(relayed.contains(literal), "{relayed}");
    let ServerMessage::Offer(received) = ServerMessage::parse(&relayed).unwrap() else {
        panic!("not an offer: {relayed}");
    };
    assert_eq!(received.sdp.to_text(), "v=0\r\na=x/y\r\n");
    assert_eq!(Sdp::from_text("v=0\r\n").as_json(), r#""v=0\r\n""#);
}

#[test]
fn left_zero_is_complete_and_stopped_has_no_offers() {
    let json = format!(
        r#"{{"numwant":50,"uploaded":9,"downloaded":362017,"left":0,"event":"completed","action":"announce","info_hash":"{LEAVES_JSON}","peer_id":"-WW0300-Tq3z0VhR1kYd"}}"#
    );
    let ClientMessage::Announce(announce) = ClientMessage::parse(&json).unwrap() else {
        panic!("not an announce");
    };
    assert!(announce.is_complete());
    assert!(announce.offers.is_empty());
    assert_eq!(announce.event, Some(AnnounceEvent::Completed));

    // Periodic updates have no event; "update"/"empty" mean the same.
    for event in [
        r#""#,
        r#","event":"update""#,
        r#","event":"empty""#,
        r#","event":null"#,
    ] {
        let json = format!(
            r#"{{"action":"announce","info_hash":"{LEAVES_JSON}","peer_id":"-WW0300-Tq3z0VhR1kYd"{event}}}"#
        );
        let ClientMessage::Announce(announce) = ClientMessage::parse(&json).unwrap() else {
            panic!("not an announce");
        };
        assert_eq!(announce.event, None, "{json}");
    }
}

#[test]
fn answer_golden() {
    let message = ClientMessage::Announce(Announce::answer(
        leaves(),
        shoal_peer(),
        Answer {
            to_peer_id: webtorrent_peer(),
            offer_id: high_offer_id(),
            sdp: Sdp::from_text(SDP),
        },
    ));
    let expected = format!(
        concat!(
            r#"{{"action":"announce","info_hash":"{hash}","peer_id":"-SH0100-abcdefghijkl","#,
            r#""answer":{{"type":"answer","sdp":"{sdp}"}},"to_peer_id":"-WW0300-Tq3z0VhR1kYd","#,
            r#""offer_id":"{id}"}}"#
        ),
        hash = LEAVES_JSON,
        sdp = SDP_JSON,
        id = HIGH_ID_JSON,
    );
    assert_eq!(message.to_json(), expected);
    assert_client_round_trip(&message);

    // The JS client's order, with trackerid.
    let js = format!(
        r#"{{"action":"announce","info_hash":"{LEAVES_JSON}","peer_id":"-SH0100-abcdefghijkl","to_peer_id":"-WW0300-Tq3z0VhR1kYd","answer":{{"type":"answer","sdp":"{SDP_JSON}"}},"offer_id":"{HIGH_ID_JSON}","trackerid":"t1"}}"#
    );
    let ClientMessage::Announce(parsed) = ClientMessage::parse(&js).unwrap() else {
        panic!("not an announce");
    };
    assert_eq!(parsed.trackerid.as_deref(), Some("t1"));
    assert_eq!(parsed.answer.unwrap().to_peer_id, webtorrent_peer());
}

#[test]
fn scrape_golden_single_list_and_all() {
    let single = ClientMessage::Scrape(Scrape::Single(leaves()));
    assert_eq!(
        single.to_json(),
        format!(r#"{{"action":"scrape","info_hash":"{LEAVES_JSON}"}}"#)
    );
    let list = ClientMessage::Scrape(Scrape::List(vec![leaves(), InfoHash([0x41; 20])]));
    assert_eq!(
        list.to_json(),
        format!(r#"{{"action":"scrape","info_hash":["{LEAVES_JSON}","AAAAAAAAAAAAAAAAAAAA"]}}"#)
    );
    let all = ClientMessage::Scrape(Scrape::All);
    assert_eq!(all.to_json(), r#"{"action":"scrape"}"#);
    let keepalive = ClientMessage::Scrape(Scrape::List(vec![]));
    assert_eq!(keepalive.to_json(), r#"{"action":"scrape","info_hash":[]}"#);
    for message in [single, list, all, keepalive] {
        assert_client_round_trip(&message);
    }
    assert_eq!(Scrape::Single(leaves()).info_hashes(), &[leaves()]);
}

// ---- WebSocket: server → client -------------------------------------------------------------

#[test]
fn announce_response_golden_and_js_order() {
    let message = ServerMessage::Announce(AnnounceResponse {
        info_hash: leaves(),
        complete: 3,
        incomplete: 7,
        interval: Some(120),
        min_interval: None,
        tracker_id: None,
        warning: Some("slow down".into()),
    });
    assert_eq!(
        message.to_json(),
        format!(
            r#"{{"action":"announce","info_hash":"{LEAVES_JSON}","complete":3,"incomplete":7,"interval":120,"warning message":"slow down"}}"#
        )
    );
    assert_server_round_trip(&message);

    // bittorrent-tracker's own order.
    let node = format!(
        r#"{{"complete":3,"incomplete":7,"action":"announce","interval":120,"info_hash":"{LEAVES_JSON}"}}"#
    );
    let ServerMessage::Announce(parsed) = ServerMessage::parse(&node).unwrap() else {
        panic!("not a response");
    };
    assert_eq!(
        (parsed.complete, parsed.incomplete, parsed.interval),
        (3, 7, Some(120))
    );
    assert_eq!(message.info_hash(), Some(leaves()));
}

#[test]
fn relayed_offer_and_answer_golden() {
    let offer = ServerMessage::Offer(RelayedOffer {
        info_hash: leaves(),
        peer_id: webtorrent_peer(),
        offer_id: control_offer_id(),
        sdp: Sdp::from_text(SDP),
    });
    assert_eq!(
        offer.to_json(),
        format!(
            r#"{{"action":"announce","offer":{{"type":"offer","sdp":"{SDP_JSON}"}},"offer_id":"{CONTROL_ID_JSON}","peer_id":"-WW0300-Tq3z0VhR1kYd","info_hash":"{LEAVES_JSON}"}}"#
        )
    );
    let answer = ServerMessage::Answer(RelayedAnswer {
        info_hash: leaves(),
        peer_id: shoal_peer(),
        offer_id: control_offer_id(),
        sdp: Sdp::from_text(SDP),
    });
    assert_eq!(
        answer.to_json(),
        format!(
            r#"{{"action":"announce","answer":{{"type":"answer","sdp":"{SDP_JSON}"}},"offer_id":"{CONTROL_ID_JSON}","peer_id":"-SH0100-abcdefghijkl","info_hash":"{LEAVES_JSON}"}}"#
        )
    );
    assert_server_round_trip(&offer);
    assert_server_round_trip(&answer);
}

#[test]
fn scrape_response_golden() {
    let message = ServerMessage::Scrape(ScrapeResponse {
        files: BTreeMap::from([
            (
                leaves(),
                ScrapeStats {
                    complete: 2,
                    incomplete: 5,
                    downloaded: 2,
                },
            ),
            (InfoHash([0x41; 20]), ScrapeStats::default()),
        ]),
        min_request_interval: Some(600),
    });
    assert_eq!(
        message.to_json(),
        format!(
            concat!(
                r#"{{"action":"scrape","files":{{"AAAAAAAAAAAAAAAAAAAA":{{"complete":0,"incomplete":0,"downloaded":0}},"#,
                r#""{hash}":{{"complete":2,"incomplete":5,"downloaded":2}}}},"flags":{{"min_request_interval":600}}}}"#
            ),
            hash = LEAVES_JSON
        )
    );
    assert_server_round_trip(&message);
}

#[test]
fn failure_shapes() {
    // The reference server's validation error: no action, no info_hash.
    let node = r#"{"failure reason":"invalid info_hash"}"#;
    assert_eq!(
        ServerMessage::parse(node).unwrap(),
        ServerMessage::Failure(Failure {
            action: None,
            info_hash: None,
            reason: "invalid info_hash".into()
        })
    );
    // Ours always carries both when known.
    let ours = ServerMessage::Failure(Failure {
        action: Some(Action::Announce),
        info_hash: Some(leaves()),
        reason: "unknown torrent".into(),
    });
    assert_eq!(
        ours.to_json(),
        format!(
            r#"{{"action":"announce","info_hash":"{LEAVES_JSON}","failure reason":"unknown torrent"}}"#
        )
    );
    assert_server_round_trip(&ours);
    assert_eq!(ours.info_hash(), Some(leaves()));

    // Built from a request that failed validation, the reply still names action and torrent.
    let bad = format!(
        r#"{{"action":"announce","info_hash":"{LEAVES_JSON}","peer_id":"short","offers":[]}}"#
    );
    let err = ClientMessage::parse(&bad).unwrap_err();
    assert_eq!(
        err,
        TrackerError::InvalidId {
            field: "peer_id",
            reason: IdError::BinaryLength(5)
        }
    );
    let failure = Failure::for_request(&bad, &err);
    assert_eq!(failure.action, Some(Action::Announce));
    assert_eq!(failure.info_hash, Some(leaves()));
    assert_eq!(
        failure.reason,
        "invalid peer_id: binary string must have 20 characters, got 5"
    );
    let unreadable = Failure::for_request("{not json", "invalid JSON");
    assert_eq!((unreadable.action, unreadable.info_hash), (None, None));
}

// ---- WebSocket: rejection -------------------------------------------------------------------

fn announce_json(info_hash: &str, extra: &str) -> String {
    format!(
        r#"{{"action":"announce","info_hash":"{info_hash}","peer_id":"-WW0300-Tq3z0VhR1kYd"{extra}}}"#
    )
}

#[test]
fn bad_ids_are_rejected() {
    let nineteen = &LEAVES_JSON[..LEAVES_JSON.len() - 1];
    assert!(matches!(
        ClientMessage::parse(&announce_json(nineteen, "")),
        Err(TrackerError::InvalidId {
            field: "info_hash",
            reason: IdError::BinaryLength(19)
        })
    ));
    let wide = format!("{}\u{20ac}", "a".repeat(19));
    assert!(matches!(
        ClientMessage::parse(&announce_json(&wide, "")),
        Err(TrackerError::InvalidId {
            field: "info_hash",
            reason: IdError::BinaryRange
        })
    ));
    // A hex info-hash (what naive implementations send) is 40 chars: rejected.
    assert!(ClientMessage::parse(&announce_json(LEAVES_HEX, "")).is_err());
    assert!(matches!(
        ClientMessage::parse(&announce_json(LEAVES_JSON, r#","peer_id":7"#)),
        Err(TrackerError::Invalid("peer_id"))
    ));
    let bad_offer_id =
        r#","offers":[{"offer":{"type":"offer","sdp":"x"},"offer_id":"not twenty"}]"#;
    assert!(matches!(
        ClientMessage::parse(&announce_json(LEAVES_JSON, bad_offer_id)),
        Err(TrackerError::InvalidId {
            field: "offer_id",
            ..
        })
    ));
    let answer_without_to =
        format!(r#","answer":{{"type":"answer","sdp":"x"}},"offer_id":"{HIGH_ID_JSON}""#);
    assert_eq!(
        ClientMessage::parse(&announce_json(LEAVES_JSON, &answer_without_to)),
        Err(TrackerError::Missing("to_peer_id"))
    );
    assert_eq!(
        ClientMessage::parse(r#"{"action":"announce","peer_id":"-WW0300-Tq3z0VhR1kYd"}"#),
        Err(TrackerError::Missing("info_hash"))
    );
    // Scrape lists are checked element by element.
    let scrape = format!(r#"{{"action":"scrape","info_hash":["{LEAVES_JSON}","x"]}}"#);
    assert!(ClientMessage::parse(&scrape).is_err());
    assert!(ClientMessage::parse(r#"{"action":"scrape","info_hash":[1]}"#).is_err());
    // Relays are validated too.
    let relay = format!(
        r#"{{"action":"announce","offer":{{"type":"offer","sdp":"x"}},"offer_id":"bad","peer_id":"-WW0300-Tq3z0VhR1kYd","info_hash":"{LEAVES_JSON}"}}"#
    );
    assert!(ServerMessage::parse(&relay).is_err());
    let files = r#"{"action":"scrape","files":{"short":{"complete":1}}}"#;
    assert!(matches!(
        ServerMessage::parse(files),
        Err(TrackerError::InvalidId { field: "files", .. })
    ));
}

#[test]
fn bounds_and_shapes_are_enforced() {
    let offer = format!(r#"{{"offer":{{"type":"offer","sdp":"x"}},"offer_id":"{HIGH_ID_JSON}"}}"#);
    let offers = [offer.as_str(); MAX_OFFERS + 1].join(",");
    assert_eq!(
        ClientMessage::parse(&announce_json(
            LEAVES_JSON,
            &format!(r#","offers":[{offers}]"#)
        )),
        Err(TrackerError::TooManyOffers {
            count: MAX_OFFERS + 1,
            max: MAX_OFFERS
        })
    );
    let long_sdp = "a".repeat(MAX_SDP_LEN + 1);
    let long = format!(
        r#","offers":[{{"offer":{{"type":"offer","sdp":"{long_sdp}"}},"offer_id":"{HIGH_ID_JSON}"}}]"#
    );
    assert!(matches!(
        ClientMessage::parse(&announce_json(LEAVES_JSON, &long)),
        Err(TrackerError::SdpTooLong { field: "offer", .. })
    ));
    let wrong_type = format!(
        r#","offers":[{{"offer":{{"type":"answer","sdp":"x"}},"offer_id":"{HIGH_ID_JSON}"}}]"#
    );
    assert!(matches!(
        ClientMessage::parse(&announce_json(LEAVES_JSON, &wrong_type)),
        Err(TrackerError::WrongSdpType { field: "offer", .. })
    ));
    assert!(matches!(
        ClientMessage::parse(&"x".repeat(300_000)),
        Err(TrackerError::TooLarge { .. })
    ));
    assert_eq!(ClientMessage::parse("[1]"), Err(TrackerError::NotAnObject));
    assert!(matches!(
        ClientMessage::parse("{"),
        Err(TrackerError::Json(_))
    ));
    assert_eq!(
        ClientMessage::parse(r#"{"action":"ping"}"#),
        Err(TrackerError::InvalidAction("ping".into()))
    );
    assert_eq!(
        ClientMessage::parse("{}"),
        Err(TrackerError::Missing("action"))
    );
    assert_eq!(
        ServerMessage::parse(r#"{"complete":1}"#),
        Err(TrackerError::Missing("action"))
    );
    assert_eq!(
        ClientMessage::parse(&announce_json(LEAVES_JSON, r#","event":"exploded""#)),
        Err(TrackerError::InvalidEvent("exploded".into()))
    );
    assert_eq!(
        ClientMessage::parse(&announce_json(LEAVES_JSON, r#","uploaded":-1"#)),
        Err(TrackerError::Invalid("uploaded"))
    );
    assert_eq!(
        ClientMessage::parse(&announce_json(LEAVES_JSON, r#","left":"12""#)),
        Err(TrackerError::Invalid("left"))
    );
    // JavaScript numbers may arrive as floats.
    let ClientMessage::Announce(announce) = ClientMessage::parse(&announce_json(
        LEAVES_JSON,
        r#","left":1.0e3,"numwant":5.0"#,
    ))
    .unwrap() else {
        panic!("not an announce");
    };
    assert_eq!((announce.left, announce.numwant), (Some(1000), Some(5)));
    // Error text never echoes much of the input.
    let err = ClientMessage::parse(&format!(r#"{{"action":"{}"}}"#, "z".repeat(1000))).unwrap_err();
    assert!(err.to_string().len() < 100);
}

// ---- HTTP ------------------------------------------------------------------------------------

const LEAVES_QUERY: &str = "%D2GN%86%C9%5B%19%B8%BC%FD%B9%2B%C1%2C%9DDf%7C%FA6";

#[test]
fn http_announce_query_is_built_like_real_clients() {
    let announce = HttpAnnounce {
        info_hash: leaves(),
        peer_id: webtorrent_peer(),
        port: 6881,
        uploaded: 0,
        downloaded: 0,
        left: Some(362_017),
        compact: true,
        event: Some(AnnounceEvent::Started),
        numwant: 50,
    };
    let query = announce.to_query();
    assert_eq!(
        query,
        format!("info_hash={LEAVES_QUERY}&peer_id=-WW0300-Tq3z0VhR1kYd&port=6881&uploaded=0&downloaded=0&left=362017&compact=1&event=started&numwant=50")
    );
    assert_eq!(HttpAnnounce::parse_query(&query).unwrap(), announce);
    assert_eq!(
        announce.announce_url("http://tracker.example/announce"),
        format!("http://tracker.example/announce?{query}")
    );
    assert_eq!(
        announce.announce_url("http://t.example/announce?passkey=1"),
        format!("http://t.example/announce?passkey=1&{query}")
    );
}

#[test]
fn http_announce_parses_a_libtorrent_style_query() {
    let query = "?info_hash=%d2GN%86%c9%5b%19%b8%bc%fd%b9%2b%c1%2c%9dDf%7c%fa6&peer_id=-qB4630-%21a%7eb*c(d)e%2b%20&port=51413&uploaded=1&downloaded=2&left=0&corrupt=0&key=1A2B3C4D&event=completed&numwant=200&compact=1&no_peer_id=1&supportcrypto=1&redundant=0";
    let announce = HttpAnnounce::parse_query(query).unwrap();
    assert_eq!(announce.info_hash, leaves());
    assert_eq!(&announce.peer_id.0, b"-qB4630-!a~b*c(d)e+ ");
    assert_eq!(announce.port, 51413);
    assert_eq!(
        (announce.uploaded, announce.downloaded, announce.left),
        (1, 2, Some(0))
    );
    assert_eq!(announce.event, Some(AnnounceEvent::Completed));
    assert_eq!(announce.numwant, 82, "capped");
    assert!(announce.compact);
}

#[test]
fn http_announce_defaults_and_errors() {
    let base = format!("info_hash={LEAVES_QUERY}&peer_id=-WW0300-Tq3z0VhR1kYd");
    let announce = HttpAnnounce::parse_query(&format!("{base}&port=1")).unwrap();
    assert_eq!(announce.numwant, 50);
    assert_eq!(announce.left, None, "missing left is unknown");
    assert!(!announce.compact);
    assert_eq!(announce.event, None);
    let zero = HttpAnnounce::parse_query(&format!("{base}&port=1&numwant=0&left=NaN")).unwrap();
    assert_eq!((zero.numwant, zero.left), (50, None));

    assert_eq!(
        HttpAnnounce::parse_query(&base),
        Err(TrackerError::Invalid("port"))
    );
    assert_eq!(
        HttpAnnounce::parse_query(&format!("{base}&port=0")),
        Err(TrackerError::Invalid("port"))
    );
    assert_eq!(
        HttpAnnounce::parse_query(&format!("{base}&port=70000")),
        Err(TrackerError::Invalid("port"))
    );
    assert_eq!(
        HttpAnnounce::parse_query("peer_id=-WW0300-Tq3z0VhR1kYd&port=1"),
        Err(TrackerError::Missing("info_hash"))
    );
    assert!(matches!(
        HttpAnnounce::parse_query("info_hash=%D2GN&peer_id=-WW0300-Tq3z0VhR1kYd&port=1"),
        Err(TrackerError::InvalidId {
            field: "info_hash",
            reason: IdError::ByteLength(3)
        })
    ));
    // UTF-8 percent-decoding would turn %C3%92 into one char; Latin-1 keeps two bytes.
    assert!(HttpAnnounce::parse_query(&format!(
        "info_hash=%C3%92{}&peer_id=-WW0300-Tq3z0VhR1kYd&port=1",
        "a".repeat(18)
    ))
    .is_ok());
    assert!(HttpAnnounce::parse_query(&format!("{base}&port=1&event=bogus")).is_err());
    assert!(HttpAnnounce::parse_query(&format!("{base}&{base}&port=1")).is_err());
}

#[test]
fn percent_coding() {
    assert_eq!(percent_decode("a+b%20c%zz%4"), b"a b c%zz%4");
    assert_eq!(percent_decode("%e9%E9"), [0xe9, 0xe9]);
    let all: Vec<u8> = (0..=255).collect();
    assert_eq!(percent_decode(&percent_encode(&all)), all);
    assert_eq!(percent_encode(b"a-._~ +"), "a-._~%20%2B");
}

#[test]
fn http_announce_response_round_trips() {
    let response = HttpAnnounceResponse {
        complete: 1,
        incomplete: 2,
        interval: 600,
        min_interval: Some(60),
        warning: None,
        peers: vec![
            "192.0.2.1:6881".parse().unwrap(),
            "[2001:db8::1]:51413".parse().unwrap(),
            "10.0.0.2:1".parse().unwrap(),
        ],
    };
    let bytes = response.encode();
    let expected: Vec<u8> = [
        b"d8:completei1e10:incompletei2e8:intervali600e12:min intervali60e5:peers12:".as_slice(),
        &[192, 0, 2, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 1],
        b"6:peers618:",
        &[
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xc8, 0xd5,
        ],
        b"e",
    ]
    .concat();
    assert_eq!(bytes, expected);
    let decoded = HttpAnnounceResponse::decode(&bytes).unwrap();
    // IPv4 peers come first (from `peers`), then IPv6 (from `peers6`).
    let mut expected_peers = response.peers.clone();
    expected_peers.sort_by_key(|peer| peer.is_ipv6());
    assert_eq!(decoded.peers, expected_peers);
    assert_eq!(
        (decoded.complete, decoded.incomplete, decoded.interval),
        (1, 2, 600)
    );
    assert_eq!(decoded.min_interval, Some(60));
}

#[test]
fn http_announce_response_dict_form_and_failures() {
    let dict_form = b"d8:completei0e10:incompletei1e8:intervali1800e5:peersld2:ip9:192.0.2.77:peer id20:-WW0300-Tq3z0VhR1kYd4:porti6881eed2:ip3:::14:porti80eeee";
    let decoded = HttpAnnounceResponse::decode(dict_form).unwrap();
    let expected: Vec<SocketAddr> = vec![
        "192.0.2.7:6881".parse().unwrap(),
        "[::1]:80".parse().unwrap(),
    ];
    assert_eq!(decoded.peers, expected);

    let failure = encode_failure("unregistered torrent");
    assert_eq!(failure, b"d14:failure reason20:unregistered torrente");
    assert_eq!(
        HttpAnnounceResponse::decode(&failure),
        Err(TrackerError::Failure("unregistered torrent".into()))
    );
    assert_eq!(
        HttpAnnounceResponse::decode(b"d8:intervali1e5:peers5:abcdee"),
        Err(TrackerError::Invalid("peers"))
    );
    assert_eq!(
        HttpAnnounceResponse::decode(b"d5:peers0:e"),
        Err(TrackerError::Missing("interval"))
    );
    assert!(HttpAnnounceResponse::decode(b"garbage").is_err());
}

#[test]
fn http_scrape_round_trips() {
    let scrape = HttpScrape {
        info_hashes: vec![leaves(), InfoHash([0xff; 20])],
    };
    let query = scrape.to_query();
    assert_eq!(
        query,
        format!("info_hash={LEAVES_QUERY}&info_hash={}", "%FF".repeat(20))
    );
    assert_eq!(HttpScrape::parse_query(&query).unwrap(), scrape);
    assert_eq!(HttpScrape::parse_query("").unwrap(), HttpScrape::default());
    assert!(HttpScrape::parse_query("info_hash=abc").is_err());

    let response = HttpScrapeResponse {
        files: BTreeMap::from([(
            leaves(),
            ScrapeStats {
                complete: 4,
                incomplete: 1,
                downloaded: 9,
            },
        )]),
        min_request_interval: Some(600),
    };
    let bytes = response.encode();
    let expected = [
        b"d5:filesd20:".as_slice(),
        leaves().as_bytes(),
        b"d8:completei4e10:downloadedi9e10:incompletei1eee5:flagsd20:min_request_intervali600eee",
    ]
    .concat();
    assert_eq!(bytes, expected);
    assert_eq!(HttpScrapeResponse::decode(&bytes).unwrap(), response);
}

#[test]
fn scrape_url_follows_bep_48() {
    assert_eq!(
        scrape_url("http://t.example/announce").as_deref(),
        Some("http://t.example/scrape")
    );
    assert_eq!(
        scrape_url("http://t.example/x/announce.php?passkey=a/announce").as_deref(),
        Some("http://t.example/x/scrape.php?passkey=a/announce")
    );
    assert_eq!(scrape_url("http://t.example/a"), None);
    assert_eq!(scrape_url("http://t.example/announce/x"), None);
}

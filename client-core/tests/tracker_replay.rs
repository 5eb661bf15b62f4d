//! A deterministic, stable-Rust stand-in for the `tracker_json` and `tracker_http` fuzz targets:
//! the same checks (../fuzz/checks_tracker.rs) over generated and mutated messages.

#[path = "../fuzz/checks_tracker.rs"]
mod checks;

use std::collections::BTreeMap;

use client_core::tracker::http::{
    HttpAnnounce, HttpAnnounceResponse, HttpScrape, HttpScrapeResponse,
};
use client_core::tracker::ws::{
    Action, Announce, AnnounceResponse, Answer, ClientMessage, Failure, Offer, OfferId,
    RelayedAnswer, RelayedOffer, Scrape, ScrapeResponse, Sdp, ServerMessage,
};
use client_core::tracker::{AnnounceEvent, ScrapeStats};
use client_core::{InfoHash, PeerId};

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

/// Tracker-message values on top of the shared generator.
trait TrackerValues {
    fn id(&mut self) -> [u8; 20];
    fn count(&mut self) -> u64;
    fn text(&mut self) -> String;
    fn event(&mut self) -> Option<AnnounceEvent>;
    fn maybe<T>(&mut self, make: impl FnOnce(&mut Self) -> T) -> Option<T>;
}

impl TrackerValues for Rng {
    fn id(&mut self) -> [u8; 20] {
        std::array::from_fn(|_| self.next() as u8)
    }

    fn count(&mut self) -> u64 {
        if self.chance() {
            self.below(1000) as u64
        } else {
            self.next()
        }
    }

    /// Characters that stress JSON escaping and the binary-string rules.
    fn text(&mut self) -> String {
        const CHARS: &[char] = &[
            'a',
            'Z',
            '0',
            ' ',
            '"',
            '\\',
            '/',
            '\r',
            '\n',
            '\u{0}',
            '\u{1f}',
            '\u{7f}',
            '\u{e9}',
            '\u{ff}',
            '\u{2028}',
            '\u{1f600}',
        ];
        (0..self.below(60))
            .map(|_| CHARS[self.below(CHARS.len())])
            .collect()
    }

    fn event(&mut self) -> Option<AnnounceEvent> {
        [
            None,
            Some(AnnounceEvent::Started),
            Some(AnnounceEvent::Completed),
            Some(AnnounceEvent::Stopped),
            Some(AnnounceEvent::Paused),
        ][self.below(5)]
    }

    fn maybe<T>(&mut self, make: impl FnOnce(&mut Self) -> T) -> Option<T> {
        if self.chance() {
            Some(make(self))
        } else {
            None
        }
    }
}

fn random_client(rng: &mut Rng) -> ClientMessage {
    if rng.below(4) == 0 {
        return ClientMessage::Scrape(match rng.below(3) {
            0 => Scrape::All,
            1 => Scrape::Single(InfoHash(rng.id())),
            _ => Scrape::List((0..rng.below(5)).map(|_| InfoHash(rng.id())).collect()),
        });
    }
    ClientMessage::Announce(Announce {
        info_hash: InfoHash(rng.id()),
        peer_id: PeerId(rng.id()),
        numwant: rng.maybe(|r| r.next() as u32),
        uploaded: rng.maybe(Rng::count),
        downloaded: rng.maybe(Rng::count),
        left: rng.maybe(Rng::count),
        event: rng.event(),
        offers: (0..rng.below(6))
            .map(|_| Offer {
                offer_id: OfferId(rng.id()),
                sdp: Sdp::from_text(&rng.text()),
            })
            .collect(),
        answer: rng.maybe(|r| Answer {
            to_peer_id: PeerId(r.id()),
            offer_id: OfferId(r.id()),
            sdp: Sdp::from_text(&r.text()),
        }),
        trackerid: rng.maybe(Rng::text),
    })
}

fn random_server(rng: &mut Rng) -> ServerMessage {
    match rng.below(5) {
        0 => ServerMessage::Announce(AnnounceResponse {
            info_hash: InfoHash(rng.id()),
            complete: rng.count(),
            incomplete: rng.count(),
            interval: rng.maybe(|r| r.next() as u32),
            min_interval: rng.maybe(|r| r.next() as u32),
            tracker_id: rng.maybe(Rng::text),
            warning: rng.maybe(Rng::text),
        }),
        1 => ServerMessage::Offer(RelayedOffer {
            info_hash: InfoHash(rng.id()),
            peer_id: PeerId(rng.id()),
            offer_id: OfferId(rng.id()),
            sdp: Sdp::from_text(&rng.text()),
        }),
        2 => ServerMessage::Answer(RelayedAnswer {
            info_hash: InfoHash(rng.id()),
            peer_id: PeerId(rng.id()),
            offer_id: OfferId(rng.id()),
            sdp: Sdp::from_text(&rng.text()),
        }),
        3 => ServerMessage::Scrape(ScrapeResponse {
            files: (0..rng.below(4))
                .map(|_| {
                    let stats = ScrapeStats {
                        complete: rng.count(),
                        incomplete: rng.count(),
                        downloaded: rng.count(),
                    };
                    (InfoHash(rng.id()), stats)
                })
                .collect(),
            min_request_interval: rng.maybe(|r| r.next() as u32),
        }),
        _ => ServerMessage::Failure(Failure {
            action: [None, Some(Action::Announce), Some(Action::Scrape)][rng.below(3)],
            info_hash: rng.maybe(|r| InfoHash(r.id())),
            reason: rng.text(),
        }),
    }
}

/// Edits a JSON text at the char level, so it stays UTF-8 and often stays JSON.
fn mutate(rng: &mut Rng, json: &str) -> String {
    const INSERTS: &[&str] = &[
        "\"",
        "\\",
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "null",
        "-1",
        "1e400",
        "0.5",
        "\u{100}",
        "\u{ff}",
        "\\u0000",
        "\\ud800",
        "\"action\":\"scrape\"",
        "\"answer\":{}",
        "\"offers\":[1]",
        "\"failure reason\":\"x\"",
    ];
    let mut chars: Vec<char> = json.chars().collect();
    for _ in 0..=rng.below(3) {
        let at = rng.below(chars.len() + 1);
        match rng.below(3) {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 if at < chars.len() => chars.truncate(at),
            _ => {
                let insert = INSERTS[rng.below(INSERTS.len())];
                chars.splice(at..at, insert.chars());
            }
        }
    }
    chars.into_iter().collect()
}

#[test]
fn generated_ws_messages_round_trip() {
    let mut rng = Rng(0x7eed_0001);
    for _ in 0..500 {
        let client = random_client(&mut rng);
        let json = client.to_json();
        assert_eq!(ClientMessage::parse(&json).as_ref(), Ok(&client), "{json}");
        checks::tracker_json(json.as_bytes());

        let server = random_server(&mut rng);
        let json = server.to_json();
        assert_eq!(ServerMessage::parse(&json).as_ref(), Ok(&server), "{json}");
        checks::tracker_json(json.as_bytes());
    }
}

#[test]
fn mutated_ws_messages_never_panic_and_round_trip_when_accepted() {
    let mut rng = Rng(0x7eed_0002);
    let mut accepted = 0;
    for round in 0..3000 {
        let json = if round % 2 == 0 {
            random_client(&mut rng).to_json()
        } else {
            random_server(&mut rng).to_json()
        };
        let mutated = mutate(&mut rng, &json);
        checks::tracker_json(mutated.as_bytes());
        if ClientMessage::parse(&mutated).is_ok() || ServerMessage::parse(&mutated).is_ok() {
            accepted += 1;
        }
    }
    // The mutations must leave enough valid messages for the round-trip check to mean something.
    assert!(accepted > 300, "only {accepted} mutated messages parsed");
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x7eed_0003);
    for _ in 0..2000 {
        let data: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
        checks::tracker_json(&data);
        checks::tracker_http(&data);
    }
}

#[test]
fn generated_http_messages_round_trip() {
    let mut rng = Rng(0x7eed_0004);
    for _ in 0..300 {
        let announce = HttpAnnounce {
            info_hash: InfoHash(rng.id()),
            peer_id: PeerId(rng.id()),
            port: rng.below(65535) as u16 + 1,
            uploaded: rng.count(),
            downloaded: rng.count(),
            left: rng.maybe(Rng::count),
            compact: rng.chance(),
            event: rng.event(),
            numwant: rng.below(82) as u32 + 1,
        };
        let query = announce.to_query();
        assert_eq!(HttpAnnounce::parse_query(&query).as_ref(), Ok(&announce));
        checks::tracker_http(query.as_bytes());
        checks::tracker_http(mutate(&mut rng, &query).as_bytes());

        let scrape = HttpScrape {
            info_hashes: (0..rng.below(4)).map(|_| InfoHash(rng.id())).collect(),
        };
        assert_eq!(
            HttpScrape::parse_query(&scrape.to_query()).as_ref(),
            Ok(&scrape)
        );

        let response = HttpAnnounceResponse {
            complete: rng.count() >> 1,
            incomplete: rng.count() >> 1,
            interval: rng.next() as u32,
            min_interval: rng.maybe(|r| r.next() as u32),
            warning: rng.maybe(Rng::text),
            peers: (0..rng.below(6))
                .map(|_| {
                    let ip: std::net::IpAddr = if rng.chance() {
                        std::net::Ipv4Addr::from(rng.next() as u32).into()
                    } else {
                        std::net::Ipv6Addr::from(
                            u128::from(rng.next()) << 64 | u128::from(rng.next()),
                        )
                        .into()
                    };
                    std::net::SocketAddr::new(ip, rng.next() as u16)
                })
                .collect(),
        };
        let bytes = response.encode();
        checks::tracker_http(&bytes);
        let mut bytes = bytes;
        let at = rng.below(bytes.len());
        bytes[at] ^= 1 << rng.below(8);
        checks::tracker_http(&bytes);

        let scrape_response = HttpScrapeResponse {
            files: (0..rng.below(4))
                .map(|_| {
                    (
                        InfoHash(rng.id()),
                        ScrapeStats {
                            complete: rng.count() >> 1,
                            incomplete: 1,
                            downloaded: 2,
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
            min_request_interval: rng.maybe(|r| r.next() as u32),
        };
        let bytes = scrape_response.encode();
        assert_eq!(
            HttpScrapeResponse::decode(&bytes).as_ref(),
            Ok(&scrape_response)
        );
        checks::tracker_http(&bytes);
    }
}

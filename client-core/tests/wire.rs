//! Peer wire protocol: encoding, chunk-independent decoding, limits, extension messages.

use client_core::bencode;
use client_core::wire::{
    chunk_for_datachannel, message_id, metadata_piece_count, Decoder, DontHave, ExtendedHandshake,
    ExtensionMessage, Handshake, Message, MetadataMessage, SendQueue, WireError, WireLimits,
    LOCAL_LT_DONTHAVE_ID, LOCAL_UT_METADATA_ID, MAX_REQUEST_LEN, MAX_SEND_LEN, METADATA_BLOCK_SIZE,
};
use client_core::{InfoHash, PeerId};

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

fn leaves() -> InfoHash {
    InfoHash::from_hex("d2474e86c95b19b8bcfdb92bc12c9d44667cfa36").unwrap()
}

fn peer() -> PeerId {
    PeerId(*b"-WW0300-Tq3z0VhR1kYd")
}

/// One of every message, with payloads that exercise the byte order.
fn all_messages() -> Vec<Message> {
    vec![
        Message::KeepAlive,
        Message::Choke,
        Message::Unchoke,
        Message::Interested,
        Message::NotInterested,
        Message::Have(0x0102_0304),
        Message::Bitfield(vec![0b1010_0000, 0xff, 0x80]),
        Message::Request {
            index: 7,
            begin: 16384,
            length: 16384,
        },
        Message::Piece {
            index: 7,
            begin: 32768,
            data: (0..16384u32).map(|i| (i * 31) as u8).collect(),
        },
        Message::Cancel {
            index: 1,
            begin: 2,
            length: 3,
        },
        Message::Port(6881),
        Message::Suggest(9),
        Message::HaveAll,
        Message::HaveNone,
        Message::Reject {
            index: 4,
            begin: 0,
            length: 16384,
        },
        Message::AllowedFast(11),
        ExtendedHandshake::shoal(Some(362_017), 250).to_message(),
        Message::Extended {
            id: 3,
            payload: b"d8:msg_typei0e5:piecei0ee".to_vec(),
        },
        Message::Unknown {
            id: 42,
            payload: vec![1, 2, 3],
        },
    ]
}

fn stream(handshake: &Handshake, messages: &[Message]) -> Vec<u8> {
    let mut bytes = handshake.encode().to_vec();
    for message in messages {
        message.encode_into(&mut bytes);
    }
    bytes
}

/// Feeds `chunks` and reads the handshake and every message.
fn decode_chunks<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(Handshake, Vec<Message>), WireError> {
    let mut decoder = Decoder::default();
    let mut handshake = None;
    let mut messages = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk);
        if handshake.is_none() {
            handshake = decoder.next_handshake()?;
            if let Some(h) = handshake {
                decoder.set_fast_negotiated(
                    h.fast_negotiated_with(&Handshake::shoal(h.info_hash, peer())),
                );
            }
        }
        if handshake.is_some() {
            while let Some(message) = decoder.next_message()? {
                messages.push(message);
            }
        }
    }
    assert_eq!(decoder.buffered_len(), 0, "bytes left over");
    Ok((handshake.expect("no handshake"), messages))
}

#[test]
fn shoal_handshake_has_webtorrent_reserved_bytes() {
    let handshake = Handshake::shoal(leaves(), peer());
    assert_eq!(handshake.reserved, [0, 0, 0, 0, 0, 0x10, 0, 0x04]);
    assert!(handshake.supports_extension_protocol());
    assert!(handshake.supports_fast());
    assert!(!handshake.supports_dht());
    let bytes = handshake.encode();
    assert_eq!(bytes.len(), 68);
    assert_eq!(&bytes[..20], b"\x13BitTorrent protocol");
    assert_eq!(&bytes[28..48], leaves().as_bytes());
    assert_eq!(&bytes[48..], b"-WW0300-Tq3z0VhR1kYd");
    assert_eq!(Handshake::decode(&bytes).unwrap(), handshake);

    let mut plain = Handshake::new(leaves(), peer());
    plain.set_dht(true);
    assert_eq!(plain.reserved, [0, 0, 0, 0, 0, 0, 0, 0x01]);
    assert!(!plain.fast_negotiated_with(&handshake));
    plain.set_dht(false);
    assert_eq!(plain.reserved, [0; 8]);
    assert!(Handshake::decode(&bytes[..67]).is_err());
}

#[test]
fn every_message_round_trips() {
    for message in all_messages() {
        let bytes = message.encode();
        assert_eq!(bytes.len(), message.encoded_len(), "{message:?}");
        let mut decoder = Decoder::after_handshake(WireLimits::default(), true);
        decoder.feed(&bytes);
        assert_eq!(decoder.next_message().unwrap(), Some(message.clone()));
        assert_eq!(decoder.next_message().unwrap(), None);
        if let Some(id) = message.id() {
            assert_eq!(bytes[4], id);
            let decoded = Message::decode_payload(id, &bytes[5..]).unwrap();
            assert_eq!(decoded, message);
        }
    }
}

#[test]
fn fixed_encodings_match_bep_3() {
    assert_eq!(Message::KeepAlive.encode(), [0, 0, 0, 0]);
    assert_eq!(Message::Interested.encode(), [0, 0, 0, 1, 2]);
    assert_eq!(Message::Have(258).encode(), [0, 0, 0, 5, 4, 0, 0, 1, 2]);
    assert_eq!(
        Message::Request {
            index: 1,
            begin: 16384,
            length: 16384
        }
        .encode(),
        [0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0]
    );
    assert_eq!(Message::HaveAll.encode(), [0, 0, 0, 1, 0x0e]);
    assert_eq!(Message::Port(6881).encode(), [0, 0, 0, 3, 9, 0x1a, 0xe1]);
}

#[test]
fn one_byte_at_a_time_gives_the_same_messages() {
    let handshake = Handshake::shoal(leaves(), peer());
    let messages = all_messages();
    let bytes = stream(&handshake, &messages);
    let (h, decoded) = decode_chunks(bytes.chunks(1)).unwrap();
    assert_eq!(h, handshake);
    assert_eq!(decoded, messages);
}

#[test]
fn random_splits_give_the_same_messages() {
    let handshake = Handshake::shoal(leaves(), peer());
    let messages = all_messages();
    let bytes = stream(&handshake, &messages);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..200 {
        let mut chunks = Vec::new();
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            // Mostly small cuts, sometimes big ones, sometimes empty chunks.
            let max = if rng.below(4) == 0 { 40_000 } else { 100 };
            let (chunk, tail) = rest.split_at(rng.below(max + 1).min(rest.len()));
            chunks.push(chunk);
            rest = tail;
        }
        let (h, decoded) = decode_chunks(chunks).unwrap();
        assert_eq!(h, handshake);
        assert_eq!(decoded, messages);
    }
}

#[test]
fn webtorrent_framing_decodes() {
    // bittorrent-protocol: handshake in one send, then each message's header and payload as
    // separate sends (13-byte piece header, then the 16 KiB block; 6-byte extended header).
    let block: Vec<u8> = (0..16384u32).map(|i| i as u8).collect();
    let mut piece_header = vec![0, 0, 0x40, 0x09, message_id::PIECE];
    piece_header.extend_from_slice(&5u32.to_be_bytes());
    piece_header.extend_from_slice(&16384u32.to_be_bytes());
    assert_eq!(piece_header.len(), 13);
    let ext_payload = b"d1:md11:lt_donthavei2e11:ut_metadatai1ee13:metadata_sizei362017ee";
    let mut ext_header = ((2 + ext_payload.len()) as u32).to_be_bytes().to_vec();
    ext_header.extend_from_slice(&[message_id::EXTENDED, 0]);
    let handshake = Handshake::shoal(leaves(), peer()).encode();
    let chunks: Vec<&[u8]> = vec![
        &handshake,
        &ext_header,
        ext_payload,
        &[0, 0, 0, 1, 0x0e],                         // have all
        &[0, 0, 0, 1, 1, 0, 0, 0, 5, 4, 0, 0, 0, 9], // unchoke + have(9) in one send
        &piece_header,
        &block,
    ];
    let (_, messages) = decode_chunks(chunks).unwrap();
    assert_eq!(messages.len(), 5);
    let Message::Extended { id: 0, payload } = &messages[0] else {
        panic!("expected the extended handshake, got {:?}", messages[0]);
    };
    let ext = ExtendedHandshake::decode(payload).unwrap();
    assert_eq!(ext.id_of("ut_metadata"), Some(1));
    assert_eq!(ext.id_of("lt_donthave"), Some(2));
    assert_eq!(ext.metadata_size, Some(362_017));
    assert_eq!(messages[1], Message::HaveAll);
    assert_eq!(messages[2], Message::Unchoke);
    assert_eq!(messages[3], Message::Have(9));
    assert_eq!(
        messages[4],
        Message::Piece {
            index: 5,
            begin: 16384,
            data: block
        }
    );
}

#[test]
fn garbage_handshake_is_refused_early() {
    let mut decoder = Decoder::default();
    decoder.feed(b"G");
    assert_eq!(
        decoder.next_handshake(),
        Err(WireError::BadProtocolLength(b'G'))
    );
    // Sticky.
    decoder.feed(b"ET / HTTP/1.1");
    assert!(decoder.next_handshake().is_err());

    let mut decoder = Decoder::default();
    decoder.feed(b"\x13BitTorrent protocoX");
    assert_eq!(decoder.next_handshake(), Err(WireError::BadProtocolString));

    let mut decoder = Decoder::default();
    decoder.feed(b"\x13BitTorrent");
    assert_eq!(decoder.next_handshake(), Ok(None));
    assert_eq!(decoder.next_message(), Err(WireError::HandshakeNotRead));
}

#[test]
fn oversize_frames_are_refused_from_the_header() {
    let mut decoder = Decoder::after_handshake(WireLimits::default(), true);
    decoder.feed(&[0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(
        decoder.next_message(),
        Err(WireError::FrameTooLong {
            length: u32::MAX,
            ..
        })
    ));
    assert!(decoder.next_message().is_err(), "errors are sticky");

    // A piece longer than max_message_len is refused once its id is known, before its payload.
    let mut decoder = Decoder::after_handshake(WireLimits::default(), true);
    decoder.feed(&[0, 0x01, 0, 0, message_id::PIECE]);
    assert!(matches!(
        decoder.next_message(),
        Err(WireError::MessageTooLong { name: "piece", .. })
    ));

    // The same length is fine for a bitfield (up to 1 MiB)...
    let bitfield = Message::Bitfield(vec![0xaa; 1 << 20]);
    let mut decoder = Decoder::after_handshake(WireLimits::default(), true);
    decoder.feed(&bitfield.encode());
    assert_eq!(decoder.next_message().unwrap(), Some(bitfield));
    // ...but not beyond.
    let mut decoder = Decoder::after_handshake(WireLimits::default(), true);
    decoder.feed(&((1u32 << 20) + 2).to_be_bytes());
    decoder.feed(&[message_id::BITFIELD]);
    assert!(matches!(
        decoder.next_message(),
        Err(WireError::FrameTooLong { .. } | WireError::MessageTooLong { .. })
    ));
}

#[test]
fn malformed_lengths_are_errors() {
    let cases: &[&[u8]] = &[
        &[0, 0, 0, 6, message_id::HAVE, 0, 0, 0, 0, 0],
        &[0, 0, 0, 2, message_id::CHOKE, 0],
        &[0, 0, 0, 12, message_id::REQUEST],
        &[0, 0, 0, 1, message_id::EXTENDED],
        &[0, 0, 0, 5, message_id::PIECE, 0, 0, 0, 0],
        &[0, 0, 0, 2, message_id::PORT, 0],
        &[0, 0, 0, 1, message_id::HAVE],
    ];
    for case in cases {
        let mut decoder = Decoder::after_handshake(WireLimits::default(), true);
        decoder.feed(case);
        assert!(
            matches!(decoder.next_message(), Err(WireError::BadLength { .. })),
            "{case:?}"
        );
    }
}

#[test]
fn unknown_ids_are_returned_not_fatal() {
    let mut decoder = Decoder::after_handshake(WireLimits::default(), true);
    decoder.feed(&[0, 0, 0, 3, 99, 7, 8, 0, 0, 0, 1, 2]);
    assert_eq!(
        decoder.next_message().unwrap(),
        Some(Message::Unknown {
            id: 99,
            payload: vec![7, 8]
        })
    );
    assert_eq!(decoder.next_message().unwrap(), Some(Message::Interested));
}

#[test]
fn long_requests_are_flagged_both_ways() {
    let too_long = Message::Request {
        index: 0,
        begin: 0,
        length: MAX_REQUEST_LEN + 1,
    };
    let fine = Message::Request {
        index: 0,
        begin: 0,
        length: MAX_REQUEST_LEN,
    };
    let mut queue = SendQueue::new();
    assert_eq!(
        queue.push(&too_long),
        Err(WireError::RequestTooLong {
            length: MAX_REQUEST_LEN + 1
        })
    );
    assert!(queue.is_empty());
    queue.push(&fine).unwrap();

    // Receiving: reported, the message is consumed, decoding can go on.
    let mut decoder = Decoder::after_handshake(WireLimits::default(), true);
    decoder.feed(&too_long.encode());
    decoder.feed(&Message::Unchoke.encode());
    let err = decoder.next_message().unwrap_err();
    assert_eq!(
        err,
        WireError::RequestTooLong {
            length: MAX_REQUEST_LEN + 1
        }
    );
    assert!(err.is_recoverable());
    assert_eq!(decoder.next_message().unwrap(), Some(Message::Unchoke));
}

#[test]
fn fast_messages_without_fast_are_reported() {
    let fast_only = [
        Message::Suggest(1),
        Message::HaveAll,
        Message::HaveNone,
        Message::Reject {
            index: 0,
            begin: 0,
            length: 16384,
        },
        Message::AllowedFast(2),
    ];
    let mut decoder = Decoder::after_handshake(WireLimits::default(), false);
    for message in &fast_only {
        assert!(message.is_fast_extension());
        decoder.feed(&message.encode());
        decoder.feed(&Message::Have(3).encode());
        assert_eq!(
            decoder.next_message(),
            Err(WireError::FastNotNegotiated(message.name()))
        );
        assert_eq!(decoder.next_message().unwrap(), Some(Message::Have(3)));
    }
    // Negotiation follows both handshakes.
    let ours = Handshake::shoal(leaves(), peer());
    let theirs = Handshake::new(leaves(), peer());
    assert!(!ours.fast_negotiated_with(&theirs));
    assert!(ours.fast_negotiated_with(&ours));
}

#[test]
fn buffer_is_bounded() {
    let limits = WireLimits {
        max_buffered: 1000,
        ..WireLimits::default()
    };
    let mut decoder = Decoder::after_handshake(limits, true);
    decoder.feed(&[0; 600]);
    decoder.feed(&[0; 600]);
    assert!(matches!(
        decoder.next_message(),
        Err(WireError::BufferOverflow {
            buffered: 1200,
            limit: 1000
        })
    ));

    // Draining between feeds keeps a long stream within the bound.
    let mut decoder = Decoder::after_handshake(limits, true);
    let mut count = 0;
    for _ in 0..10_000 {
        decoder.feed(&Message::Have(1).encode());
        while decoder.next_message().unwrap().is_some() {
            count += 1;
        }
    }
    assert_eq!(count, 10_000);
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = Rng(42);
    for round in 0..2000 {
        let mut decoder = if round % 2 == 0 {
            Decoder::default()
        } else {
            Decoder::after_handshake(WireLimits::default(), round % 4 == 1)
        };
        let len = rng.below(300);
        let garbage: Vec<u8> = (0..len)
            .map(|_| {
                // Bias towards small numbers so that plausible lengths and ids occur.
                if rng.below(2) == 0 {
                    rng.below(24) as u8
                } else {
                    rng.next() as u8
                }
            })
            .collect();
        let mut rest = garbage.as_slice();
        'feed: while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rng.below(rest.len() + 1));
            rest = tail;
            decoder.feed(chunk);
            if round % 2 == 0 {
                match decoder.next_handshake() {
                    Ok(None) => continue,
                    Ok(Some(_)) => {}
                    Err(_) => break 'feed,
                }
            }
            loop {
                match decoder.next_message() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(err) if err.is_recoverable() => {}
                    Err(WireError::HandshakeNotRead) => break,
                    Err(_) => break 'feed,
                }
            }
        }
    }
}

#[test]
fn send_queue_sizes_coalesces_and_preserves_the_stream() {
    let handshake = Handshake::shoal(leaves(), peer());
    let mut messages = all_messages();
    messages.push(Message::Bitfield(vec![0x55; 50_000]));
    messages.extend((0..20).map(Message::Have));
    let mut queue = SendQueue::new();
    queue.push_handshake(&handshake);
    for message in &messages {
        queue.push(message).unwrap();
    }
    let expected = stream(&handshake, &messages);
    assert_eq!(queue.queued_bytes(), expected.len());
    let mut sends = Vec::new();
    while let Some(send) = queue.pop() {
        assert!(
            !send.is_empty() && send.len() <= MAX_SEND_LEN,
            "{}",
            send.len()
        );
        sends.push(send);
    }
    assert_eq!(queue.queued_bytes(), 0);
    assert_eq!(sends.concat(), expected);
    // The 16 KiB piece message travels in one send, and the trailing haves share one.
    let piece_len = 13 + 16384;
    assert!(sends.iter().any(|send| send.len() >= piece_len));
    let haves: Vec<u8> = (0..20).flat_map(|i| Message::Have(i).encode()).collect();
    assert!(sends.last().unwrap().ends_with(&haves));
    assert!(sends.len() < messages.len());
    let (h, decoded) = decode_chunks(sends.iter().map(Vec::as_slice)).unwrap();
    assert_eq!(h, handshake);
    assert_eq!(decoded, messages);

    let bytes = vec![7u8; 3 * MAX_SEND_LEN + 5];
    let sizes: Vec<usize> = chunk_for_datachannel(&bytes).map(<[u8]>::len).collect();
    assert_eq!(sizes, [MAX_SEND_LEN, MAX_SEND_LEN, MAX_SEND_LEN, 5]);
}

#[test]
fn ut_metadata_data_message_fits_one_send() {
    let data = vec![1u8; METADATA_BLOCK_SIZE];
    let message = MetadataMessage::Data {
        piece: 610,
        total_size: 10_000_000,
        data,
    }
    .to_message(3);
    assert!(message.encoded_len() <= MAX_SEND_LEN);
}

#[test]
fn extended_handshake_round_trips() {
    let ours = ExtendedHandshake::shoal(Some(362_017), 250);
    assert_eq!(ours.id_of("ut_metadata"), Some(LOCAL_UT_METADATA_ID));
    assert_eq!(ours.id_of("lt_donthave"), Some(LOCAL_LT_DONTHAVE_ID));
    assert_eq!(ours.id_of("ut_pex"), None);
    let bytes = ours.encode();
    assert!(bytes.starts_with(
        b"d1:md11:lt_donthavei2e11:ut_metadatai1ee13:metadata_sizei362017e4:reqqi250e1:v"
    ));
    assert_eq!(ExtendedHandshake::decode(&bytes).unwrap(), ours);

    let full = ExtendedHandshake {
        p: Some(6881),
        yourip: Some(vec![127, 0, 0, 1]),
        ..ExtendedHandshake::shoal(None, 1)
    };
    assert_eq!(ExtendedHandshake::decode(&full.encode()).unwrap(), full);
}

#[test]
fn extended_handshake_decoding_is_lenient_where_bep_10_says() {
    let payload = b"d1:md6:bad_idi300e8:disabledi0e11:ut_metadatai3ee13:metadata_sizei10000001e4:reqqi-5e7:unknownli1eee";
    let ext = ExtendedHandshake::decode(payload).unwrap();
    assert_eq!(ext.m.get("bad_id"), None);
    assert_eq!(ext.m.get("disabled"), Some(&0));
    assert_eq!(ext.id_of("disabled"), None);
    assert_eq!(ext.id_of("ut_metadata"), Some(3));
    assert_eq!(
        ext.metadata_size, None,
        "above 10 000 000 is ignored, as WebTorrent does"
    );
    assert_eq!(ext.reqq, None);
    assert!(ExtendedHandshake::decode(b"i5e").is_err());
    assert!(ExtendedHandshake::decode(b"d1:mi5ee").is_err());
    assert!(ExtendedHandshake::decode(b"d1:m").is_err());
}

fn metadata_examples() -> Vec<MetadataMessage> {
    vec![
        MetadataMessage::Request { piece: 0 },
        MetadataMessage::Request {
            piece: 4_294_967_295,
        },
        MetadataMessage::Reject { piece: 12 },
        MetadataMessage::Data {
            piece: 0,
            total_size: 1,
            data: vec![b'e'],
        },
        MetadataMessage::Data {
            piece: 1,
            total_size: 20000,
            data: vec![b'e'; 20000 - 16384],
        },
        MetadataMessage::Data {
            piece: 610,
            total_size: 10_000_000,
            data: vec![b'e'; 10_000_000 - 610 * 16384],
        },
        MetadataMessage::Data {
            piece: 0,
            total_size: 362_017,
            data: b"eeee".repeat(4096),
        },
    ]
}

#[test]
fn ut_metadata_round_trips_and_matches_canonical_bencoding() {
    for message in metadata_examples() {
        let payload = message.encode();
        assert_eq!(MetadataMessage::decode(&payload).unwrap(), message);
        let (kind, total) = match &message {
            MetadataMessage::Request { .. } => (0, None),
            MetadataMessage::Data { total_size, .. } => (1, Some(*total_size)),
            MetadataMessage::Reject { .. } => (2, None),
        };
        let mut dict = vec![
            (b"msg_type".as_slice(), bencode::Value::Int(kind)),
            (
                b"piece".as_slice(),
                bencode::Value::Int(i64::from(message.piece())),
            ),
        ];
        if let Some(total) = total {
            dict.push((b"total_size".as_slice(), bencode::Value::Int(total as i64)));
        }
        let canonical = bencode::Value::dict(dict).encode();
        assert!(payload.starts_with(&canonical), "{message:?}");
    }
}

#[test]
fn ut_metadata_first_ee_is_the_dict_end() {
    // WebTorrent's reader: dict = payload[..first "ee" + 2], block = the rest.
    for message in metadata_examples() {
        let payload = message.encode();
        let first_ee = payload.windows(2).position(|w| w == b"ee").unwrap();
        let (_, dict_len) = bencode::decode_prefix(&payload, &bencode::Limits::default()).unwrap();
        assert_eq!(first_ee + 2, dict_len, "{message:?}");
    }
}

#[test]
fn ut_metadata_rejects_bad_messages() {
    let bad: &[&[u8]] = &[
        b"d8:msg_typei1e5:piecei0ee",                  // data without total_size
        b"d8:msg_typei1e5:piecei0e10:total_sizei0eeX", // total_size 0
        b"d8:msg_typei1e5:piecei0e10:total_sizei10000001eeX", // too big
        b"d8:msg_typei1e5:piecei1e10:total_sizei100ee", // piece beyond the end
        b"d8:msg_typei1e5:piecei0e10:total_sizei3eeXY", // short block
        b"d8:msg_typei3e5:piecei0ee",                  // unknown type
        b"d8:msg_typei0e5:piecei-1ee",                 // negative piece
        b"d5:piecei0ee",                               // no msg_type
        b"le",
        b"",
    ];
    for payload in bad {
        assert!(
            MetadataMessage::decode(payload).is_err(),
            "{:?}",
            String::from_utf8_lossy(payload)
        );
    }
    assert_eq!(metadata_piece_count(362_017), 23);
    assert_eq!(metadata_piece_count(16384), 1);
}

#[test]
fn dont_have_and_extension_dispatch() {
    let dont_have = DontHave { piece: 0x0a0b_0c0d };
    assert_eq!(dont_have.encode(), [0x0a, 0x0b, 0x0c, 0x0d]);
    assert_eq!(DontHave::decode(&dont_have.encode()).unwrap(), dont_have);
    assert_eq!(DontHave::decode(&[1, 2, 3]), Err(WireError::BadDontHave(3)));

    // Peers address us with our ids...
    let incoming = ExtensionMessage::decode(LOCAL_LT_DONTHAVE_ID, &[0, 0, 0, 9]).unwrap();
    assert_eq!(incoming, ExtensionMessage::DontHave(DontHave { piece: 9 }));
    let incoming =
        ExtensionMessage::decode(LOCAL_UT_METADATA_ID, b"d8:msg_typei0e5:piecei2ee").unwrap();
    assert_eq!(
        incoming,
        ExtensionMessage::Metadata(MetadataMessage::Request { piece: 2 })
    );
    assert!(matches!(
        ExtensionMessage::decode(9, b"x").unwrap(),
        ExtensionMessage::Unknown { id: 9, .. }
    ));

    // ...and we address them with theirs.
    let mut peer = ExtendedHandshake::default();
    peer.m.insert("ut_metadata".into(), 3);
    let request = ExtensionMessage::Metadata(MetadataMessage::Request { piece: 0 });
    assert!(matches!(
        request.to_message(&peer),
        Some(Message::Extended { id: 3, .. })
    ));
    assert_eq!(
        ExtensionMessage::DontHave(dont_have).to_message(&peer),
        None
    );
}

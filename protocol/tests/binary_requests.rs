//! What `parse_binary` makes of each opcode, how much it consumes or waits for, and its
//! refusals; the client encoder's frames parse back to the requests they encode.

#[path = "common/binary.rs"]
mod binary_support;

use binary_support::parse_all;
use ferrocache_protocol::binary::client::{encode_frame, encode_request, encode_verbosity};
use ferrocache_protocol::binary::{
    BinaryCommand, BinaryErrorKind, BinaryLimits, BinaryParsed, BinaryRequest, ConcatMode,
    NO_CREATE, Opcode, StoreMode, parse_binary,
};
use ferrocache_protocol::client::EncodeError;

fn frame(opcode: Opcode, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, opcode.byte(), 0xdead_beef, 42, extras, key, value);
    out
}

/// The request in `input`, which must be exactly one whole frame.
fn request(input: &[u8]) -> BinaryRequest<'_> {
    match parse_binary(input, &BinaryLimits::default()) {
        BinaryParsed::Request { request, consumed } => {
            assert_eq!(consumed, input.len());
            request
        }
        other => panic!("{input:?} -> {other:?}"),
    }
}

/// The refusal of `input`: (kind, consumed, swallow, close).
fn refusal(input: &[u8], limits: &BinaryLimits) -> (BinaryErrorKind, usize, usize, bool) {
    match parse_binary(input, limits) {
        BinaryParsed::Error {
            error,
            consumed,
            swallow,
            close,
        } => (error.kind, consumed, swallow, close),
        other => panic!("{input:?} -> {other:?}"),
    }
}

#[test]
fn header_fields_come_through() {
    let mut input = frame(Opcode::GetKQ, &[], b"key", &[]);
    input[5] = 7; // data type
    input[6..8].copy_from_slice(&0x0102u16.to_be_bytes());
    let request = request(&input);
    assert_eq!(request.opcode, Opcode::GetKQ);
    assert_eq!(
        (
            request.opaque,
            request.cas,
            request.data_type,
            request.vbucket
        ),
        (0xdead_beef, 42, 7, 0x0102)
    );
    assert!(request.quiet() && request.returns_key());
    assert_eq!(
        request.command,
        BinaryCommand::Get {
            key: b"key",
            touch: None
        }
    );
}

#[test]
fn every_opcode_decodes_its_extras() {
    let set_extras = [0, 0, 0, 5, 0, 0, 0, 60];
    let cases: Vec<(Vec<u8>, BinaryCommand<'static>)> = vec![
        (
            frame(Opcode::Gat, &[0, 0, 1, 0], b"k", &[]),
            BinaryCommand::Get {
                key: b"k",
                touch: Some(256),
            },
        ),
        (
            frame(Opcode::Touch, &[0, 0, 0, 9], b"k", &[]),
            BinaryCommand::Touch {
                key: b"k",
                exptime: 9,
            },
        ),
        (
            frame(Opcode::ReplaceQ, &set_extras, b"k", b"value"),
            BinaryCommand::Store {
                mode: StoreMode::Replace,
                key: b"k",
                flags: 5,
                exptime: 60,
                value: b"value",
            },
        ),
        (
            frame(Opcode::Prepend, &[], b"k", b"v"),
            BinaryCommand::Concat {
                mode: ConcatMode::Prepend,
                key: b"k",
                value: b"v",
            },
        ),
        (
            frame(Opcode::DeleteQ, &[], b"k", &[]),
            BinaryCommand::Delete { key: b"k" },
        ),
        (
            frame(
                Opcode::Decrement,
                &[
                    [0, 0, 0, 0, 0, 0, 0, 3],
                    [0, 0, 0, 0, 0, 0, 1, 0],
                    [0xff; 8],
                ]
                .concat()[..20],
                b"n",
                &[],
            ),
            BinaryCommand::Arith {
                incr: false,
                key: b"n",
                delta: 3,
                initial: 256,
                exptime: NO_CREATE,
            },
        ),
        (
            frame(Opcode::FlushQ, &[0, 0, 0, 30], &[], &[]),
            BinaryCommand::Flush { delay: 30 },
        ),
        (
            frame(Opcode::Flush, &[], &[], &[]),
            BinaryCommand::Flush { delay: 0 },
        ),
        (frame(Opcode::QuitQ, &[], &[], &[]), BinaryCommand::Quit),
        (
            frame(Opcode::Version, &[], &[], &[]),
            BinaryCommand::Version,
        ),
        (
            frame(Opcode::Stat, &[], b"items", &[]),
            BinaryCommand::Stat { group: b"items" },
        ),
        (
            frame(Opcode::SaslListMechs, &[], &[], &[]),
            BinaryCommand::SaslListMechs,
        ),
        (
            frame(Opcode::SaslAuth, &[], b"PLAIN", b"\0u\0p"),
            BinaryCommand::SaslAuth {
                mechanism: b"PLAIN",
                data: b"\0u\0p",
            },
        ),
        (
            frame(Opcode::SaslStep, &[], b"PLAIN", b""),
            BinaryCommand::SaslStep {
                mechanism: b"PLAIN",
                data: b"",
            },
        ),
    ];
    for (input, command) in &cases {
        assert_eq!(request(input).command, *command);
    }
    assert!(!request(&cases[5].0).command.creates_missing());
}

#[test]
fn needed_is_the_header_then_the_whole_frame() {
    let limits = BinaryLimits::default();
    let input = frame(Opcode::Set, &[0; 8], b"key", &[b'v'; 1000]);
    for cut in 0..input.len() {
        let needed = match parse_binary(&input[..cut], &limits) {
            BinaryParsed::Incomplete { needed } => needed,
            other => panic!("{cut}: {other:?}"),
        };
        assert_eq!(needed, if cut < 24 { 24 } else { input.len() }, "{cut}");
    }
    // A refusal waits for header, extras and key only, never for the refused value.
    let too_large = BinaryLimits { max_value: 10 };
    assert_eq!(
        parse_binary(&input[..30], &too_large),
        BinaryParsed::Incomplete { needed: 35 }
    );
    assert_eq!(
        refusal(&input[..35], &too_large),
        (BinaryErrorKind::TooLarge, 35, 1000, false)
    );
}

#[test]
fn refusals_are_memcacheds() {
    let limits = BinaryLimits::default();
    let mut bad_magic = frame(Opcode::Noop, &[], &[], &[]);
    bad_magic[0] = 0x81;
    assert_eq!(
        refusal(&bad_magic, &limits),
        (BinaryErrorKind::BadMagic, 24, 0, true)
    );
    let mut short_body = frame(Opcode::Get, &[], b"kkkkk", &[]);
    short_body[8..12].copy_from_slice(&3u32.to_be_bytes());
    assert_eq!(
        refusal(&short_body, &limits),
        (BinaryErrorKind::BodyTooShort, 29, 0, true)
    );
    assert_eq!(
        refusal(&frame(Opcode::Get, &[], &[b'k'; 251], &[]), &limits),
        (BinaryErrorKind::KeyTooLong, 275, 0, true)
    );
    for input in [
        frame(Opcode::Get, &[0; 4], b"k", &[]),
        frame(Opcode::Get, &[], b"", &[]),
        frame(Opcode::Set, &[0; 4], b"k", b"v"),
        frame(Opcode::Increment, &[0; 8], b"k", &[]),
        frame(Opcode::Touch, &[], b"k", &[]),
        frame(Opcode::Noop, &[], b"k", &[]),
        frame(Opcode::Flush, &[0; 8], &[], &[]),
        frame(Opcode::Stat, &[0; 4], &[], &[]),
        frame(Opcode::SaslAuth, &[], &[], b"x"),
    ] {
        let (kind, consumed, swallow, close) = refusal(&input, &limits);
        assert_eq!(kind, BinaryErrorKind::InvalidArguments, "{input:?}");
        assert!(close && swallow == 0 && consumed <= input.len());
    }
    // Unknown opcodes swallow body_len after the key: extras and key count twice.
    assert_eq!(
        refusal(&frame(Opcode::Unknown(0x50), &[], b"abc", &[]), &limits),
        (BinaryErrorKind::UnknownCommand, 27, 3, false)
    );
    let mut verbosity = Vec::new();
    encode_verbosity(&mut verbosity, 1, 9);
    assert_eq!(
        refusal(&verbosity, &limits),
        (BinaryErrorKind::UnknownCommand, 28, 4, false)
    );
    // A length memcached reads as a negative int is refused but swallows nothing.
    let mut huge = frame(Opcode::Set, &[0; 8], b"k", &[]);
    huge[8..12].copy_from_slice(&0x8000_0010u32.to_be_bytes());
    assert_eq!(
        refusal(&huge, &limits),
        (BinaryErrorKind::TooLarge, 33, 0, false)
    );
    let big_sasl = frame(Opcode::SaslAuth, &[], b"PLAIN", &[0; 100]);
    assert_eq!(
        refusal(&big_sasl, &BinaryLimits { max_value: 99 }),
        (BinaryErrorKind::UnknownCommand, 29, 100, false)
    );
}

#[test]
fn stat_touch_and_gat_leave_a_longer_body_to_the_next_frame() {
    let limits = BinaryLimits::default();
    let noop = frame(Opcode::Noop, &[], &[], &[]);
    for (opcode, extras) in [(Opcode::Stat, &[][..]), (Opcode::GatK, &[0; 4][..])] {
        let mut input = frame(opcode, extras, b"k", &[]);
        let body = u32::from_be_bytes(input[8..12].try_into().unwrap()) + 24;
        input[8..12].copy_from_slice(&body.to_be_bytes());
        input.extend_from_slice(&noop);
        let (events, ending) = parse_all(&input, &limits);
        assert_eq!(events.len(), 2, "{opcode:?}: {events:?}");
        assert_eq!(ending.unparsed, 0);
    }
}

#[test]
fn encoded_requests_parse_back() {
    let requests = [
        BinaryCommand::Get {
            key: b"\0binary key\xff",
            touch: None,
        },
        BinaryCommand::Get {
            key: b"k",
            touch: Some(100),
        },
        BinaryCommand::Touch {
            key: b"k",
            exptime: 5,
        },
        BinaryCommand::Store {
            mode: StoreMode::Add,
            key: b"k",
            flags: 3,
            exptime: 4,
            value: b"",
        },
        BinaryCommand::Concat {
            mode: ConcatMode::Append,
            key: b"k",
            value: b"tail",
        },
        BinaryCommand::Delete { key: b"k" },
        BinaryCommand::Arith {
            incr: true,
            key: b"k",
            delta: 1,
            initial: 2,
            exptime: 3,
        },
        BinaryCommand::Flush { delay: 0 },
        BinaryCommand::Flush { delay: 10 },
        BinaryCommand::Noop,
        BinaryCommand::Version,
        BinaryCommand::Quit,
        BinaryCommand::Stat { group: b"" },
        BinaryCommand::SaslListMechs,
        BinaryCommand::SaslAuth {
            mechanism: b"PLAIN",
            data: b"x",
        },
    ];
    let opcodes = [
        Opcode::GetK,
        Opcode::GatKQ,
        Opcode::Touch,
        Opcode::AddQ,
        Opcode::Append,
        Opcode::Delete,
        Opcode::IncrementQ,
        Opcode::Flush,
        Opcode::FlushQ,
        Opcode::Noop,
        Opcode::Version,
        Opcode::Quit,
        Opcode::Stat,
        Opcode::SaslListMechs,
        Opcode::SaslAuth,
    ];
    for (command, opcode) in requests.into_iter().zip(opcodes) {
        let sent = BinaryRequest {
            opcode,
            opaque: 17,
            cas: 99,
            data_type: 0,
            vbucket: 0,
            command,
        };
        let mut bytes = Vec::new();
        encode_request(&mut bytes, &sent).unwrap();
        assert_eq!(request(&bytes), sent);
    }
    let keyless = BinaryRequest {
        opcode: Opcode::Get,
        opaque: 0,
        cas: 0,
        data_type: 0,
        vbucket: 0,
        command: BinaryCommand::Delete { key: b"" },
    };
    let mut out = Vec::new();
    assert_eq!(
        encode_request(&mut out, &keyless),
        Err(EncodeError::EmptyKey)
    );
    let long = [b'k'; 251];
    let too_long = BinaryRequest {
        command: BinaryCommand::Delete { key: &long },
        ..keyless
    };
    assert_eq!(
        encode_request(&mut out, &too_long),
        Err(EncodeError::KeyTooLong(251))
    );
    assert!(out.is_empty(), "nothing written on error");
}

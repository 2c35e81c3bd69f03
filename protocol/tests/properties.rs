//! Properties of the parser over generated input: any split of a stream gives the same
//! requests as the whole stream (so `needed` never overshoots and no state hides in the
//! parser), arbitrary bytes never panic, consumed never exceeds the input, and every call
//! makes progress or asks for more than it has.

mod common;

use common::events_of;
use ferrocache_protocol::{Parsed, ParserLimits, parse_request};
use proptest::prelude::*;

fn key() -> impl Strategy<Value = String> {
    "[!-~]{1,40}"
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        Just(b"\r\n".to_vec()),
        Just(b"line\r\nline".to_vec()),
    ]
}

fn noreply() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(""), Just(" noreply")]
}

fn meta_flag() -> impl Strategy<Value = String> {
    prop_oneof![
        // `b` needs a base64 key: see the fixed `mg Zm9v b` case.
        "[cfhklqstuvI]".prop_map(String::from),
        (0u32..100_000).prop_map(|n| format!("T{n}")),
        (0u32..100).prop_map(|n| format!("N{n}")),
        (0u64..u64::MAX).prop_map(|n| format!("C{n}")),
        "[0-9a-z]{0,20}".prop_map(|o| format!("O{o}")),
    ]
}

/// Meta flags without repeats (a repeat is an error, tested elsewhere).
fn meta_flags() -> impl Strategy<Value = String> {
    proptest::collection::vec(meta_flag(), 0..6).prop_map(|flags| {
        let mut seen = Vec::new();
        let mut line = String::new();
        for flag in flags {
            let letter = flag.as_bytes()[0];
            if !seen.contains(&letter) {
                seen.push(letter);
                line.push(' ');
                line.push_str(&flag);
            }
        }
        line
    })
}

/// One valid request, as a client would send it.
fn request() -> impl Strategy<Value = Vec<u8>> {
    let eol = prop_oneof![Just("\r\n"), Just("\n")];
    prop_oneof![
        (
            "(get|gets)",
            proptest::collection::vec(key(), 1..12),
            eol.clone()
        )
            .prop_map(|(cmd, keys, eol)| format!("{cmd} {}{eol}", keys.join(" ")).into_bytes()),
        (
            "(gat|gats)",
            -10i32..1000,
            proptest::collection::vec(key(), 1..5)
        )
            .prop_map(
                |(cmd, ttl, keys)| format!("{cmd} {ttl} {}\r\n", keys.join(" ")).into_bytes()
            ),
        (
            "(set|add|replace|append|prepend)",
            key(),
            any::<u32>(),
            -5i32..100_000,
            value(),
            noreply()
        )
            .prop_map(|(cmd, key, flags, ttl, value, noreply)| {
                let mut bytes =
                    format!("{cmd} {key} {flags} {ttl} {}{noreply}\r\n", value.len()).into_bytes();
                bytes.extend_from_slice(&value);
                bytes.extend_from_slice(b"\r\n");
                bytes
            }),
        (key(), value(), any::<u64>(), noreply()).prop_map(|(key, value, cas, noreply)| {
            let mut bytes =
                format!("cas {key} 0 0 {} {cas}{noreply}\r\n", value.len()).into_bytes();
            bytes.extend_from_slice(&value);
            bytes.extend_from_slice(b"\r\n");
            bytes
        }),
        (key(), noreply())
            .prop_map(|(key, noreply)| format!("delete {key}{noreply}\r\n").into_bytes()),
        ("(incr|decr)", key(), any::<u64>(), noreply()).prop_map(|(cmd, key, delta, noreply)| {
            format!("{cmd} {key} {delta}{noreply}\r\n").into_bytes()
        }),
        (key(), -1i32..1000, noreply())
            .prop_map(|(key, ttl, noreply)| format!("touch {key} {ttl}{noreply}\r\n").into_bytes()),
        prop_oneof![
            Just("version\r\n"),
            Just("flush_all\r\n"),
            Just("flush_all 10 noreply\r\n"),
            Just("verbosity 1\r\n"),
            Just("stats\r\n"),
            Just("stats items\r\n"),
            Just("mn\r\n"),
            Just("cache_memlimit 100\r\n"),
            Just("mg Zm9v b k v\r\n"),
            Just("me Zm9v b\r\n"),
        ]
        .prop_map(|line| line.as_bytes().to_vec()),
        ("(mg|md)", key(), meta_flags())
            .prop_map(|(cmd, key, flags)| format!("{cmd} {key}{flags}\r\n").into_bytes()),
        (key(), meta_flags(), "( M[ID+-])?")
            .prop_map(|(key, flags, mode)| format!("ma {key}{flags}{mode}\r\n").into_bytes()),
        (key(), value(), meta_flags()).prop_map(|(key, value, flags)| {
            let flags = flags
                .replace(" MA", "")
                .replace(" ME", "")
                .replace(" MP", "");
            let mut bytes = format!("ms {key} {}{flags}\r\n", value.len()).into_bytes();
            bytes.extend_from_slice(&value);
            bytes.extend_from_slice(b"\r\n");
            bytes
        }),
    ]
}

/// Splits `stream` at the given cut points.
fn split<'a>(stream: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|cut| cut % (stream.len() + 1)).collect();
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for point in points {
        pieces.push(&stream[start..point]);
        start = point;
    }
    pieces.push(&stream[start..]);
    pieces
}

/// Fragments of commands, so that generated bytes reach past the tokeniser.
const FRAGMENTS: &[&[u8]] = &[
    b"get ",
    b"set k 0 0 ",
    b"ms k ",
    b"mg k ",
    b" noreply",
    b"\r\n",
    b"\n",
    b" ",
    b"5",
    b"-1",
    b"b",
    b"O",
    b"delete k 0",
    b"incr k 1",
];

/// Bytes that look like protocol often enough to reach deep paths.
fn protocolish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..8),
        proptest::sample::select(FRAGMENTS).prop_map(<[u8]>::to_vec),
    ];
    proptest::collection::vec(fragment, 0..40).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_stream_parses_the_same_however_it_is_split(
        requests in proptest::collection::vec(request(), 1..12),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let stream = requests.concat();
        let limits = ParserLimits::default();
        let (whole, rest) = events_of(&[&stream], &limits);
        prop_assert_eq!(whole.len(), requests.len());
        prop_assert!(whole.iter().all(|event| event.starts_with("Request")), "{:?}", whole);
        prop_assert_eq!(rest, Some(0));
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        prop_assert_eq!(&events_of(&bytes, &limits), &(whole.clone(), rest));
        prop_assert_eq!(&events_of(&split(&stream, &cuts), &limits), &(whole, rest));
    }

    #[test]
    fn any_bytes_parse_the_same_however_they_are_split(
        stream in protocolish_bytes(),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        // Small limits so that long lines and large values happen.
        let limits = ParserLimits { max_line: 64, max_key_list_line: 128, max_value: 32, ..ParserLimits::default() };
        let whole = events_of(&[&stream], &limits);
        prop_assert_eq!(&events_of(&split(&stream, &cuts), &limits), &whole);
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        prop_assert_eq!(&events_of(&bytes, &limits), &whole);
    }

    #[test]
    fn never_panics_and_always_progresses(
        input in prop_oneof![protocolish_bytes(), proptest::collection::vec(any::<u8>(), 0..512)],
    ) {
        for limits in [ParserLimits::default(), ParserLimits { max_line: 16, max_key_list_line: 32, max_value: 8, ..ParserLimits::default() }] {
            match parse_request(&input, &limits) {
                Parsed::Request { consumed, .. } => {
                    prop_assert!(consumed > 0 && consumed <= input.len());
                }
                Parsed::Incomplete { needed } => prop_assert!(needed > input.len()),
                Parsed::Error { consumed, close, .. } => {
                    prop_assert!(consumed <= input.len());
                    prop_assert!(consumed > 0 || close);
                }
            }
        }
    }
}

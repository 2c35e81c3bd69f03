//! Every captured exchange with memcached 1.6.18 replayed through the parser and the reply
//! encoder, fed whole and one byte at a time: the bytes must be memcached's, and the
//! connection must close exactly when memcached closed it.

mod common;

use common::{Event, drive, empty_cache_reply, events_of};
use ferrocache_protocol::ParserLimits;

include!("common/captured_1_6_18.rs");

fn replies_of(pieces: &[&[u8]], limits: &ParserLimits) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut closed = false;
    let rest = drive(pieces.iter().copied(), limits, |event: Event<'_>| {
        if !closed {
            closed = empty_cache_reply(event, &mut out);
        }
    });
    (out, closed || rest.is_none())
}

#[test]
fn replies_match_memcached_fed_whole() {
    let limits = ParserLimits::default();
    let mut failures = Vec::new();
    for &(input, expected, expected_close) in CAPTURED {
        let (got, closed) = replies_of(&[input], &limits);
        if got != expected || closed != expected_close {
            failures.push(format!(
                "{:?}\n  memcached: {:?} close={expected_close}\n  ours:      {:?} close={closed}",
                String::from_utf8_lossy(input),
                String::from_utf8_lossy(expected),
                String::from_utf8_lossy(&got)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn replies_match_memcached_fed_byte_by_byte() {
    let limits = ParserLimits::default();
    for &(input, expected, expected_close) in CAPTURED {
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let (got, closed) = replies_of(&bytes, &limits);
        assert_eq!(
            (got.as_slice(), closed),
            (expected, expected_close),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(events_of(&bytes, &limits), events_of(&[input], &limits));
    }
}

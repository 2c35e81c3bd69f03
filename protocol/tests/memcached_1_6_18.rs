//! Every input captured from memcached 1.6.18 parsed whole and one byte at a time: the same
//! requests and errors come out however the bytes are split, and the codec closes (an error
//! that closes, or `quit`) exactly where memcached closed. The replies themselves are checked
//! through the real server in the daemon's in-process harness (daemon/src/harness), which
//! replays this same table through its command layer and cache.

mod common;

use common::{Event, drive, events_of};
use ferrocache_protocol::{ParserLimits, Request};

include!("common/captured_1_6_18.rs");

/// Whether the codec ends the connection on `pieces`: an error that closes, or `quit`.
fn closes(pieces: &[&[u8]], limits: &ParserLimits) -> bool {
    let mut quit = false;
    let rest = drive(pieces.iter().copied(), limits, |event: Event<'_>| {
        quit |= matches!(event, Event::Request(Request::Quit));
    });
    quit || rest.is_none()
}

#[test]
fn every_captured_input_parses_the_same_however_it_is_split() {
    let limits = ParserLimits::default();
    for &(input, _, _) in CAPTURED {
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            events_of(&bytes, &limits),
            events_of(&[input], &limits),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn the_codec_closes_where_memcached_closed() {
    let limits = ParserLimits::default();
    for &(input, _, expected_close) in CAPTURED {
        assert_eq!(
            closes(&[input], &limits),
            expected_close,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

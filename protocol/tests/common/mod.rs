//! Test support shared by the integration tests: a connection simulator that feeds the parser
//! the way a server does (growing buffer, `needed` honoured, swallowed data blocks dropped).
//! Replies are not modelled here: the daemon's in-process harness runs the real server.

#![allow(dead_code)] // each test binary uses a different part

use ferrocache_protocol::{Parsed, ParserLimits, ProtocolError, Request, parse_request};

/// What the parser reported, in order (short-lived: size does not matter).
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Event<'a> {
    Request(Request<'a>),
    Error {
        error: ProtocolError,
        silent: bool,
        close: bool,
    },
}

/// Feeds `chunks` one after another into a connection buffer and calls `on` for every
/// request or error, as a server would. Returns the bytes left unparsed at the end (those of
/// an incomplete request), or `None` if an error closed the connection. Checks the parser's
/// promises on the way: consumed never exceeds the input, `needed` is always beyond it.
pub fn drive<'c>(
    chunks: impl IntoIterator<Item = &'c [u8]>,
    limits: &ParserLimits,
    mut on: impl FnMut(Event<'_>),
) -> Option<usize> {
    let mut buffer: Vec<u8> = Vec::new();
    let mut swallow_left = 0usize;
    let mut needed = 0usize;
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        loop {
            let dropped = swallow_left.min(buffer.len());
            buffer.drain(..dropped);
            swallow_left -= dropped;
            if buffer.len() < needed.max(1) || swallow_left > 0 {
                break;
            }
            match parse_request(&buffer, limits) {
                Parsed::Request { request, consumed } => {
                    assert!(consumed > 0 && consumed <= buffer.len());
                    on(Event::Request(request));
                    buffer.drain(..consumed);
                    needed = 0;
                }
                Parsed::Incomplete { needed: more } => {
                    assert!(more > buffer.len(), "needed {more} <= {}", buffer.len());
                    needed = more;
                    break;
                }
                Parsed::Error {
                    error,
                    consumed,
                    swallow,
                    close,
                    silent,
                    ..
                } => {
                    assert!(consumed <= buffer.len());
                    assert!(consumed > 0 || close, "an error must make progress");
                    on(Event::Error {
                        error,
                        silent,
                        close,
                    });
                    if close {
                        return None;
                    }
                    buffer.drain(..consumed);
                    swallow_left = swallow;
                    needed = 0;
                }
            }
        }
    }
    Some(buffer.len())
}

/// The events of `input` fed in the given pieces, as comparable text.
pub fn events_of(pieces: &[&[u8]], limits: &ParserLimits) -> (Vec<String>, Option<usize>) {
    let mut events = Vec::new();
    let rest = drive(pieces.iter().copied(), limits, |event| {
        events.push(format!("{event:?}"))
    });
    (events, rest)
}

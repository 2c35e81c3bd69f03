//! Test support for the binary codec: a connection simulator that feeds `parse_binary` the way
//! a server does (growing buffer, `needed` honoured, swallowed bytes dropped as they arrive,
//! close obeyed), and helpers over captured response bytes.

#![allow(dead_code)] // each test binary uses a different part

use ferrocache_protocol::binary::client::{BinaryResponse, parse_response};
use ferrocache_protocol::binary::{BinaryError, BinaryLimits, BinaryParsed, BinaryRequest};
use ferrocache_protocol::client::ParsedReply;

/// What the parser reported, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryEvent<'a> {
    Request(BinaryRequest<'a>),
    Error {
        error: BinaryError<'a>,
        swallow: usize,
        close: bool,
    },
}

/// Where the stream stood when the input ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    /// An error closed the connection.
    pub closed: bool,
    /// Bytes buffered but not yet a whole frame.
    pub unparsed: usize,
    /// Bytes a refusal still wanted to swallow.
    pub swallow_left: usize,
}

/// Feeds `chunks` one after another into a connection buffer and calls `on` for every
/// request or error, as a server would, checking the parser's promises on the way: consumed
/// never exceeds the input, `needed` is always beyond it, an error makes progress.
pub fn drive_binary<'c>(
    chunks: impl IntoIterator<Item = &'c [u8]>,
    limits: &BinaryLimits,
    mut on: impl FnMut(BinaryEvent<'_>),
) -> Ending {
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
            match ferrocache_protocol::binary::parse_binary(&buffer, limits) {
                BinaryParsed::Request { request, consumed } => {
                    assert!(consumed >= 24 && consumed <= buffer.len());
                    on(BinaryEvent::Request(request));
                    buffer.drain(..consumed);
                    needed = 0;
                }
                BinaryParsed::Incomplete { needed: more } => {
                    assert!(more > buffer.len(), "needed {more} <= {}", buffer.len());
                    needed = more;
                    break;
                }
                BinaryParsed::Error {
                    error,
                    consumed,
                    swallow,
                    close,
                } => {
                    assert!(consumed > 0 && consumed <= buffer.len());
                    on(BinaryEvent::Error {
                        error,
                        swallow,
                        close,
                    });
                    if close {
                        return Ending {
                            closed: true,
                            unparsed: 0,
                            swallow_left: 0,
                        };
                    }
                    buffer.drain(..consumed);
                    swallow_left = swallow;
                    needed = 0;
                }
            }
        }
    }
    Ending {
        closed: false,
        unparsed: buffer.len(),
        swallow_left,
    }
}

/// The events of a whole stream, borrowing from it: the same walk as [`drive_binary`] over one
/// buffer, by offsets.
pub fn parse_all<'s>(stream: &'s [u8], limits: &BinaryLimits) -> (Vec<BinaryEvent<'s>>, Ending) {
    let mut events = Vec::new();
    let mut at = 0;
    loop {
        match ferrocache_protocol::binary::parse_binary(&stream[at..], limits) {
            BinaryParsed::Request { request, consumed } => {
                events.push(BinaryEvent::Request(request));
                at += consumed;
            }
            BinaryParsed::Incomplete { .. } => {
                let ending = Ending {
                    closed: false,
                    unparsed: stream.len() - at,
                    swallow_left: 0,
                };
                return (events, ending);
            }
            BinaryParsed::Error {
                error,
                consumed,
                swallow,
                close,
            } => {
                events.push(BinaryEvent::Error {
                    error,
                    swallow,
                    close,
                });
                let ending = |swallow_left| Ending {
                    closed: close,
                    unparsed: 0,
                    swallow_left,
                };
                if close {
                    return (events, ending(0));
                }
                at += consumed;
                let available = stream.len() - at;
                if swallow > available {
                    return (events, ending(swallow - available));
                }
                at += swallow;
            }
        }
    }
}

/// The events of a stream fed in the given pieces, as comparable text.
pub fn binary_events_of(pieces: &[&[u8]], limits: &BinaryLimits) -> (Vec<String>, Ending) {
    let mut events = Vec::new();
    let ending = drive_binary(pieces.iter().copied(), limits, |event| {
        events.push(format!("{event:?}"))
    });
    (events, ending)
}

/// Every response frame in `bytes`, with its own bytes; panics on anything that is not one.
pub fn response_frames(mut bytes: &[u8]) -> Vec<(BinaryResponse<'_>, &[u8])> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        match parse_response(bytes) {
            Ok(ParsedReply::Complete { reply, consumed }) => {
                frames.push((reply, &bytes[..consumed]));
                bytes = &bytes[consumed..];
            }
            other => panic!("not a whole response frame: {other:?} in {bytes:?}"),
        }
    }
    frames
}

/// `bytes` (response frames) with every CAS field zeroed, so servers can be compared.
pub fn mask_cas(bytes: &[u8]) -> Vec<u8> {
    let mut masked = bytes.to_vec();
    let mut at = 0;
    while at + 24 <= masked.len() {
        let body = u32::from_be_bytes([
            masked[at + 8],
            masked[at + 9],
            masked[at + 10],
            masked[at + 11],
        ]);
        masked[at + 16..at + 24].fill(0);
        at += 24 + body as usize;
    }
    masked
}

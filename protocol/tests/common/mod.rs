//! Test support shared by the integration tests: a connection simulator that feeds the parser
//! the way a server does (growing buffer, `needed` honoured, swallowed data blocks dropped),
//! and an "empty cache" model server that turns parsed requests into memcached's replies.

#![allow(dead_code)] // each test binary uses a different part

use ferrocache_protocol::reply::{self, MetaItem, MetaStatus};
use ferrocache_protocol::{
    MetaCommand, MetaFlags, MetaSetMode, Parsed, ParserLimits, ProtocolError, Request, StatsGroup,
    StoreCommand, parse_request,
};

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

/// What memcached 1.6.18 with default settings and an empty cache answers to `event`
/// (stores succeed, everything else misses, `ma` with `N` creates the counter). Returns true
/// when the connection closes.
pub fn empty_cache_reply(event: Event<'_>, out: &mut Vec<u8>) -> bool {
    let request = match event {
        Event::Error {
            error,
            silent,
            close,
        } => {
            if error == ProtocolError::InvalidShutdownMode {
                // memcached checks whether shutdown is enabled (it is not by default) first.
                out.extend_from_slice(reply::SHUTDOWN_DISABLED);
            } else if !silent {
                out.extend_from_slice(error.reply());
            }
            return close;
        }
        Event::Request(request) => request,
    };
    let noreply = request.noreply();
    let mut say = |bytes: &[u8]| {
        if !noreply {
            out.extend_from_slice(bytes)
        }
    };
    match request {
        Request::Get { .. } => say(reply::END),
        Request::Store { command, .. } => say(match command {
            StoreCommand::Set | StoreCommand::Add => reply::STORED,
            StoreCommand::Cas => reply::NOT_FOUND,
            _ => reply::NOT_STORED,
        }),
        Request::Delete { .. } | Request::Arith { .. } | Request::Touch { .. } => {
            say(reply::NOT_FOUND)
        }
        Request::FlushAll { .. } | Request::Verbosity { .. } | Request::CacheMemlimit { .. } => {
            say(reply::OK)
        }
        Request::Version => reply::version(out, "1.6.18"),
        Request::Quit => return true,
        Request::Shutdown { .. } => out.extend_from_slice(reply::SHUTDOWN_DISABLED),
        Request::Stats(StatsGroup::Other(_)) => out.extend_from_slice(reply::ERROR),
        Request::Stats(StatsGroup::Reset) => out.extend_from_slice(reply::RESET),
        Request::Stats(_) => unimplemented!("stats groups are not in the empty-cache model"),
        Request::MetaGet { key, flags } => {
            let item = MetaItem {
                key: key.bytes(),
                ..MetaItem::default()
            };
            reply::meta_reply(out, MetaCommand::Get, MetaStatus::Miss, &flags, &item);
        }
        Request::MetaDelete { key, flags } => {
            let item = MetaItem {
                key: key.bytes(),
                ..MetaItem::default()
            };
            reply::meta_reply(
                out,
                MetaCommand::Delete,
                MetaStatus::NotFound,
                &flags,
                &item,
            );
        }
        Request::MetaArith { key, flags } => {
            let item = MetaItem {
                key: key.bytes(),
                ..MetaItem::default()
            };
            if flags.vivify.is_some() {
                // Auto-created: memcached sends this reply even in quiet mode.
                let loud = MetaFlags {
                    quiet: false,
                    ..flags
                };
                let initial = flags.initial.unwrap_or(0).to_string();
                let status = if flags.return_value {
                    MetaStatus::Value { len: initial.len() }
                } else {
                    MetaStatus::Done
                };
                reply::meta_reply(out, MetaCommand::Arith, status, &loud, &item);
                if flags.return_value {
                    out.extend_from_slice(initial.as_bytes());
                    reply::value_end(out);
                }
            } else {
                reply::meta_reply(out, MetaCommand::Arith, MetaStatus::NotFound, &flags, &item);
            }
        }
        Request::MetaSet { key, flags, .. } => {
            assert!(!flags.return_cas, "CAS values are not predictable");
            let item = MetaItem {
                key: key.bytes(),
                ..MetaItem::default()
            };
            let status = match flags.set_mode {
                MetaSetMode::Set | MetaSetMode::Add => MetaStatus::Done,
                _ => MetaStatus::NotStored,
            };
            reply::meta_reply(out, MetaCommand::Set, status, &flags, &item);
        }
        Request::MetaNoop => out.extend_from_slice(reply::META_NOOP),
        Request::MetaDebug { .. } => out.extend_from_slice(reply::META_MISS),
    }
    false
}

//! The text and meta protocol front: a connection's bytes in, memcached 1.6.18's replies out.
//!
//! Owns: parsing each complete request (`ferrocache_protocol::parse_request`), turning it into
//! the command layer's commands, encoding their outcomes (`ferrocache_protocol::reply`),
//! noreply and meta `q`, error replies and the bytes an error makes us discard (also across
//! reads), the `-R` budget, pausing at the output high-water mark, even in the middle of a
//! multi-get, and which latency family each request counts under. Must not touch: sockets or buffers' memory (the `connection` owns both), or what
//! a command does to the cache (the `command` layer).

use super::{OUTPUT_HIGH_WATER, ServeContext, Stop};
use crate::command::Executor;
use crate::command::admin::Refusal;
use crate::command::arith::Arith;
use crate::command::delete::Delete;
use crate::command::retrieval::Retrieve;
use crate::command::stats::{StatsOutcome, StatsRefusal};
use crate::command::store::{Store, StoreKind};
use crate::latency::Family;
use crate::shared::Shared;
use ferrocache_protocol::reply::{self, MetaItem, MetaStatus};
use ferrocache_protocol::{
    GetKind, Keys, MetaArithMode, MetaCommand, MetaFlags, Parsed, ParserLimits, ProtocolError,
    Refused, Request, StoreCommand, TooLargeStore, parse_request,
};
use ferrocache_storage::{
    ArithMode, ArithOutcome, DeleteOutcome, MetaGetOptions, MetaGetOutcome, StoreError,
    StoreOutcome,
};

/// What one request's execution asks of the loop around it.
enum Step {
    Done,
    /// Paused mid multi-get at the high-water mark: the request stays in the input.
    Paused,
    Close,
}

/// A text connection's state between reads: a few words, no heap.
#[derive(Debug)]
pub struct TextSession {
    limits: ParserLimits,
    /// Bytes of a refused data block still to be discarded as they arrive.
    swallow: usize,
    /// Keys of the multi-get at the front of the input already answered (it paused at the
    /// high-water mark and resumes after them).
    get_progress: usize,
}

impl TextSession {
    pub fn new(shared: &Shared) -> Self {
        TextSession {
            limits: ParserLimits {
                max_value: shared.settings.storage.item_size_max,
                ..ParserLimits::default()
            },
            swallow: 0,
            get_progress: 0,
        }
    }

    /// Serves the complete requests at the front of `input`, appending replies to `out`, until
    /// the input runs out, `budget` reaches 0, the output passes the high-water mark, or the
    /// connection must close. Returns the bytes of `input` consumed and why it stopped.
    pub fn serve(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        budget: &mut usize,
        context: &mut ServeContext<'_>,
    ) -> (usize, Stop) {
        let mut consumed = 0;
        context.begin();
        loop {
            if self.swallow > 0 {
                let n = self.swallow.min(input.len() - consumed);
                self.swallow -= n;
                consumed += n;
                if self.swallow > 0 {
                    return (consumed, Stop::NeedInput { total: 0 });
                }
            }
            let rest = &input[consumed..];
            if rest.is_empty() {
                return (consumed, Stop::NeedInput { total: 0 });
            }
            if *budget == 0 {
                return (consumed, Stop::Budget);
            }
            if out.len() > OUTPUT_HIGH_WATER {
                return (consumed, Stop::Backpressure);
            }
            match parse_request(rest, &self.limits) {
                Parsed::Request {
                    request,
                    consumed: used,
                } => {
                    let used = used.clamp(1, rest.len());
                    if log::log_enabled!(log::Level::Trace) {
                        let line = rest[..used].split(|&b| b == b'\n').next().unwrap_or(&[]);
                        log::trace!("<{}", String::from_utf8_lossy(line).trim_end());
                    }
                    match self.execute(&request, out, &context.executor) {
                        Step::Done => {
                            consumed += used;
                            *budget -= 1;
                            context.served += 1;
                            context.finish(family(&request));
                        }
                        Step::Paused => return (consumed, Stop::Backpressure),
                        Step::Close => {
                            context.served += 1;
                            context.finish(family(&request));
                            return (consumed + used, Stop::Close);
                        }
                    }
                }
                Parsed::Incomplete { needed } => {
                    let total = if needed > rest.len() { needed } else { 0 };
                    return (consumed, Stop::NeedInput { total });
                }
                Parsed::Error {
                    error,
                    consumed: used,
                    swallow,
                    close,
                    silent,
                    refused,
                } => {
                    refuse(error, silent, refused, out, &context.executor);
                    context.finish(Family::Other);
                    consumed += used.min(rest.len());
                    self.swallow = swallow;
                    *budget = budget.saturating_sub(1);
                    // An error that consumes nothing and swallows nothing would be met again
                    // on the same bytes forever: close instead.
                    if close || (used == 0 && swallow == 0) {
                        return (consumed, Stop::Close);
                    }
                }
            }
        }
    }

    fn execute(&mut self, request: &Request<'_>, out: &mut Vec<u8>, exec: &Executor<'_>) -> Step {
        match *request {
            Request::Get {
                kind,
                exptime,
                keys,
            } => return self.get(exec, kind, exptime, keys, out),
            Request::Store {
                command,
                key,
                flags,
                exptime,
                value,
                cas,
                noreply,
            } => {
                let mut store = Store::new(StoreKind::Text(command), key, value, flags, exptime);
                if command == StoreCommand::Cas {
                    store.compare_cas = Some(cas);
                }
                let result = exec.store(&store);
                if !noreply {
                    out.extend_from_slice(match result {
                        Ok(StoreOutcome::Stored { .. }) => reply::STORED,
                        Ok(StoreOutcome::NotStored) => reply::NOT_STORED,
                        Ok(StoreOutcome::Exists) => reply::EXISTS,
                        Ok(StoreOutcome::NotFound) => reply::NOT_FOUND,
                        Err(error) => store_error(error),
                    });
                }
            }
            Request::Delete { key, noreply } => {
                let outcome = exec.delete(&Delete::new(key));
                if !noreply {
                    out.extend_from_slice(match outcome {
                        DeleteOutcome::Deleted => reply::DELETED,
                        DeleteOutcome::NotFound | DeleteOutcome::Exists => reply::NOT_FOUND,
                    });
                }
            }
            Request::Arith {
                incr,
                key,
                delta,
                noreply,
            } => {
                let mode = if incr {
                    ArithMode::Incr
                } else {
                    ArithMode::Decr
                };
                let result = exec.arith(&Arith::new(key, mode, delta));
                if !noreply {
                    match result {
                        Ok(ArithOutcome::Updated { value, .. }) => reply::number(out, value),
                        Ok(ArithOutcome::NotFound | ArithOutcome::Exists) => {
                            out.extend_from_slice(reply::NOT_FOUND)
                        }
                        Ok(ArithOutcome::NonNumeric) => {
                            out.extend_from_slice(reply::CLIENT_ERROR_NON_NUMERIC)
                        }
                        Err(_) => out.extend_from_slice(reply::SERVER_ERROR_OUT_OF_MEMORY_ARITH),
                    }
                }
            }
            Request::Touch {
                key,
                exptime,
                noreply,
            } => {
                let touched = exec.touch(key, exptime);
                if !noreply {
                    out.extend_from_slice(if touched {
                        reply::TOUCHED
                    } else {
                        reply::NOT_FOUND
                    });
                }
            }
            Request::FlushAll { delay, noreply } => {
                let reply = match exec.flush_all(delay) {
                    Ok(()) => reply::OK,
                    Err(refusal) => refusal_reply(refusal),
                };
                if !noreply {
                    out.extend_from_slice(reply);
                }
            }
            Request::Version => reply::version(out, exec.version()),
            Request::Verbosity { level, noreply } => {
                exec.verbosity(level);
                if !noreply {
                    out.extend_from_slice(reply::OK);
                }
            }
            Request::Quit => return Step::Close,
            Request::Shutdown { .. } => {
                return match exec.shutdown() {
                    // As memcached: no reply, the connection closes, the server stops.
                    Ok(()) => Step::Close,
                    Err(refusal) => {
                        out.extend_from_slice(refusal_reply(refusal));
                        Step::Done
                    }
                };
            }
            Request::CacheMemlimit { megabytes, noreply } => {
                let reply = match exec.cache_memlimit(megabytes) {
                    Ok(()) => reply::OK,
                    Err(refusal) => refusal_reply(refusal),
                };
                if !noreply {
                    out.extend_from_slice(reply);
                }
            }
            Request::Stats(group) => write_stats(exec.stats(group), out),
            Request::MetaGet { key, flags } => meta_get(exec, key.bytes(), &flags, out),
            Request::MetaSet { key, value, flags } => {
                meta_set(exec, key.bytes(), value, &flags, out)
            }
            Request::MetaDelete { key, flags } => meta_delete(exec, key.bytes(), &flags, out),
            Request::MetaArith { key, flags } => meta_arith(exec, key.bytes(), &flags, out),
            Request::MetaNoop => out.extend_from_slice(reply::META_NOOP),
            Request::MetaDebug { key, base64 } => {
                let key = key.bytes();
                let found = exec.meta_debug(key, |item| {
                    reply::meta_debug(
                        out,
                        key,
                        base64,
                        item.ttl(),
                        item.last_access(),
                        item.cas(),
                        item.fetched(),
                        item.class_id(),
                        item.total_size(),
                    )
                });
                if !found {
                    out.extend_from_slice(reply::META_MISS);
                }
            }
        }
        Step::Done
    }

    /// `get`/`gets`/`gat`/`gats`: one key at a time, so a multi-get spans partitions without
    /// holding two locks; pauses at the high-water mark and resumes after the keys answered.
    fn get(
        &mut self,
        exec: &Executor<'_>,
        kind: GetKind,
        exptime: i64,
        keys: Keys<'_>,
        out: &mut Vec<u8>,
    ) -> Step {
        let with_cas = kind.with_cas();
        let how = match kind {
            GetKind::Gat | GetKind::Gats => Retrieve::Touch { exptime },
            GetKind::Get | GetKind::Gets => Retrieve::Get,
        };
        for (answered, key) in keys.iter().skip(self.get_progress).enumerate() {
            if answered > 0 && out.len() > OUTPUT_HIGH_WATER {
                self.get_progress += answered;
                return Step::Paused;
            }
            exec.retrieve(key, how, |item| {
                let cas = with_cas.then(|| item.cas());
                reply::value_header(out, key, item.flags(), item.value_len(), cas);
                for chunk in item.value() {
                    out.extend_from_slice(chunk);
                }
                reply::value_end(out);
            });
        }
        self.get_progress = 0;
        out.extend_from_slice(reply::END);
        Step::Done
    }
}

/// The latency family of a text or meta request.
fn family(request: &Request<'_>) -> Family {
    match request {
        Request::Get {
            kind: GetKind::Get | GetKind::Gets,
            ..
        } => Family::Get,
        Request::Get {
            kind: GetKind::Gat | GetKind::Gats,
            ..
        }
        | Request::Touch { .. } => Family::Touch,
        Request::Store { .. } => Family::Set,
        Request::Delete { .. } => Family::Delete,
        Request::Arith { .. } => Family::Arith,
        Request::MetaGet { .. }
        | Request::MetaSet { .. }
        | Request::MetaDelete { .. }
        | Request::MetaArith { .. }
        | Request::MetaNoop
        | Request::MetaDebug { .. } => Family::Meta,
        Request::FlushAll { .. }
        | Request::Version
        | Request::Verbosity { .. }
        | Request::Quit
        | Request::Shutdown { .. }
        | Request::CacheMemlimit { .. }
        | Request::Stats(_) => Family::Other,
    }
}

/// Answers a request the parser refused, doing first what memcached does for that command
/// beyond its reply.
fn refuse(
    error: ProtocolError,
    silent: bool,
    refused: Refused<'_>,
    out: &mut Vec<u8>,
    exec: &Executor<'_>,
) {
    let reply = match refused {
        Refused::TooLarge { key, store } => {
            let kind = match store {
                TooLargeStore::Text(command) => StoreKind::Text(command),
                TooLargeStore::Meta(mode) => StoreKind::Meta(mode),
            };
            exec.refuse_too_large(kind, key.bytes());
            error.reply()
        }
        Refused::FlushAll => match exec.flush_all_malformed() {
            Ok(()) => error.reply(),
            Err(refusal) => refusal_reply(refusal),
        },
        // memcached checks whether shutdown is enabled before it looks at the argument.
        Refused::Nothing
            if error == ProtocolError::InvalidShutdownMode && !exec.shutdown_enabled() =>
        {
            // Sent even where other errors are silent.
            return out.extend_from_slice(refusal_reply(Refusal::ShutdownDisabled));
        }
        Refused::Nothing => error.reply(),
    };
    if !silent {
        out.extend_from_slice(reply);
    }
}

fn refusal_reply(refusal: Refusal) -> &'static [u8] {
    match refusal {
        Refusal::FlushDisabled => reply::CLIENT_ERROR_FLUSH_DISABLED,
        Refusal::ShutdownDisabled => reply::SHUTDOWN_DISABLED,
        Refusal::MemlimitTooSmall => reply::MEMLIMIT_TOO_SMALL,
        Refusal::MemlimitNotMegabytes => reply::MEMLIMIT_NOT_BYTES,
    }
}

/// The reply to a store the engine could not do.
fn store_error(error: StoreError) -> &'static [u8] {
    match error {
        StoreError::TooLarge => reply::SERVER_ERROR_TOO_LARGE,
        StoreError::OutOfMemory => reply::SERVER_ERROR_OUT_OF_MEMORY,
    }
}

fn meta_get(exec: &Executor<'_>, key: &[u8], flags: &MetaFlags<'_>, out: &mut Vec<u8>) {
    let options = MetaGetOptions {
        bump: !flags.no_bump,
        touch: flags.ttl,
        vivify: flags.vivify,
        recache_below: flags.recache,
    };
    exec.meta_get(key, &options, |outcome| match outcome {
        MetaGetOutcome::Hit {
            item,
            hit_before,
            last_access,
            win,
            stale,
            win_sent,
        } => {
            let len = item.value_len();
            let status = if flags.return_value {
                MetaStatus::Value { len }
            } else {
                MetaStatus::Done
            };
            let meta = MetaItem {
                key,
                cas: item.cas(),
                client_flags: item.flags(),
                ttl: item.ttl(),
                size: len,
                hit_before,
                last_access,
                win,
                stale,
                win_sent,
            };
            if reply::meta_reply(out, MetaCommand::Get, status, flags, &meta) && flags.return_value
            {
                for chunk in item.value() {
                    out.extend_from_slice(chunk);
                }
                reply::value_end(out);
            }
        }
        MetaGetOutcome::Miss => {
            reply::meta_reply(
                out,
                MetaCommand::Get,
                MetaStatus::Miss,
                flags,
                &MetaItem {
                    key,
                    ..MetaItem::default()
                },
            );
        }
    });
}

fn meta_set(
    exec: &Executor<'_>,
    key: &[u8],
    value: &[u8],
    flags: &MetaFlags<'_>,
    out: &mut Vec<u8>,
) {
    let client_flags = flags.client_flags.unwrap_or(0);
    let mut store = Store::new(
        StoreKind::Meta(flags.set_mode),
        key,
        value,
        client_flags,
        flags.ttl.unwrap_or(0),
    );
    store.compare_cas = flags.compare_cas;
    store.invalidate = flags.invalidate;
    store.vivify_exptime = flags.vivify;
    let (status, cas) = match exec.store(&store) {
        Ok(StoreOutcome::Stored { cas }) => (MetaStatus::Done, cas),
        Ok(StoreOutcome::NotStored) => (MetaStatus::NotStored, 0),
        Ok(StoreOutcome::Exists) => (MetaStatus::Exists, 0),
        Ok(StoreOutcome::NotFound) => (MetaStatus::NotFound, 0),
        // Errors are never hidden by `q`.
        Err(error) => return out.extend_from_slice(store_error(error)),
    };
    reply::meta_reply(
        out,
        MetaCommand::Set,
        status,
        flags,
        &MetaItem {
            key,
            cas,
            client_flags,
            ttl: -1,
            size: value.len(),
            ..MetaItem::default()
        },
    );
}

fn meta_delete(exec: &Executor<'_>, key: &[u8], flags: &MetaFlags<'_>, out: &mut Vec<u8>) {
    let outcome = exec.delete(&Delete {
        key,
        compare_cas: flags.compare_cas,
        invalidate: flags.invalidate.then_some(flags.ttl),
        counts_in_detail: false,
    });
    let status = match outcome {
        DeleteOutcome::Deleted => MetaStatus::Done,
        DeleteOutcome::NotFound => MetaStatus::NotFound,
        DeleteOutcome::Exists => MetaStatus::Exists,
    };
    reply::meta_reply(
        out,
        MetaCommand::Delete,
        status,
        flags,
        &MetaItem {
            key,
            ..MetaItem::default()
        },
    );
}

fn meta_arith(exec: &Executor<'_>, key: &[u8], flags: &MetaFlags<'_>, out: &mut Vec<u8>) {
    let mode = match flags.arith_mode {
        MetaArithMode::Incr => ArithMode::Incr,
        MetaArithMode::Decr => ArithMode::Decr,
    };
    let result = exec.arith(&Arith {
        key,
        mode,
        delta: flags.delta.unwrap_or(1),
        compare_cas: flags.compare_cas,
        vivify: flags.vivify.map(|ttl| (flags.initial.unwrap_or(0), ttl)),
        exptime: flags.ttl,
    });
    let item = MetaItem {
        key,
        ..MetaItem::default()
    };
    match result {
        Ok(ArithOutcome::Updated {
            value,
            cas,
            ttl,
            created,
        }) => {
            let mut digits = itoa::Buffer::new();
            let digits = digits.format(value).as_bytes();
            let item = MetaItem {
                cas,
                ttl,
                size: digits.len(),
                ..item
            };
            let status = if flags.return_value {
                MetaStatus::Value { len: digits.len() }
            } else {
                MetaStatus::Done
            };
            // memcached sends the reply of a counter it created even in quiet mode.
            let flags = MetaFlags {
                quiet: flags.quiet && !created,
                ..*flags
            };
            if reply::meta_reply(out, MetaCommand::Arith, status, &flags, &item)
                && flags.return_value
            {
                out.extend_from_slice(digits);
                reply::value_end(out);
            }
        }
        Ok(ArithOutcome::NotFound) => {
            reply::meta_reply(out, MetaCommand::Arith, MetaStatus::NotFound, flags, &item);
        }
        Ok(ArithOutcome::Exists) => {
            reply::meta_reply(out, MetaCommand::Arith, MetaStatus::Exists, flags, &item);
        }
        Ok(ArithOutcome::NonNumeric) => out.extend_from_slice(reply::CLIENT_ERROR_NON_NUMERIC),
        Err(_) => out.extend_from_slice(reply::SERVER_ERROR_OUT_OF_MEMORY_ARITH),
    }
}

/// `stats [group]`: `STAT <name> <value>` lines, then `END` (or `RESET`, `OK`, a report, an
/// error).
fn write_stats(outcome: StatsOutcome, out: &mut Vec<u8>) {
    match outcome {
        StatsOutcome::Pairs(pairs) => {
            let mut value = Vec::with_capacity(64);
            for (name, stat) in &pairs {
                value.clear();
                stat.write_to(&mut value);
                reply::stat(out, name.as_bytes(), &value);
            }
            out.extend_from_slice(reply::END);
        }
        StatsOutcome::Reset => out.extend_from_slice(reply::RESET),
        StatsOutcome::Done => out.extend_from_slice(reply::OK),
        StatsOutcome::Report(report) => out.extend_from_slice(&report),
        StatsOutcome::Refused(StatsRefusal::DetailUsage) => {
            out.extend_from_slice(reply::STATS_DETAIL_USAGE)
        }
        StatsOutcome::Refused(StatsRefusal::DumpDisabled) => {
            out.extend_from_slice(reply::CLIENT_ERROR_DUMP_DISABLED)
        }
        StatsOutcome::Refused(StatsRefusal::Protocol(error)) => {
            out.extend_from_slice(error.reply())
        }
        StatsOutcome::Unknown => out.extend_from_slice(reply::ERROR),
    }
}

//! The request executor: a connection's buffered bytes in, memcached 1.6.18's replies out.
//!
//! Owns: parsing each complete request (`ferrocache_protocol::parse_request`), executing it
//! against the cache (the key's partition locked only while the storage call runs and its reply
//! is copied out), encoding the reply (`ferrocache_protocol::reply`), noreply and meta `q`,
//! error replies and the bytes an error makes us discard (also across reads), the `-R` budget,
//! and pausing at the output high-water mark, even in the middle of a multi-get. Must not touch:
//! sockets or buffers' memory (the `connection` owns both) or item semantics (the storage crate).

use crate::cache::Cache;
use crate::connection::OUTPUT_HIGH_WATER;
use crate::counters::ThreadStats;
use crate::shared::Shared;
use crate::stats;
use ferrocache_protocol::reply::{self, MetaItem, MetaStatus};
use ferrocache_protocol::{
    GetKind, KEY_MAX_LEN, Keys, MetaArithMode, MetaCommand, MetaFlags, MetaSetMode, Parsed,
    ParserLimits, ProtocolError, Request, StatsGroup, StoreCommand, parse_request,
};
use ferrocache_storage::{
    ArithMode, ArithOutcome, ArithRequest, DeleteOutcome, DeleteRequest, MetaGetOptions,
    MetaGetOutcome, StoreError, StoreMode, StoreOutcome, StoreRequest,
};
use std::sync::atomic::Ordering;

/// `stats sizes` without `-o track_sizes` (which is refused), as memcached answers it.
const SIZES_DISABLED: &[u8] = b"STAT sizes_status disabled\r\nEND\r\n";

/// memcached refuses `cache_memlimit` values above this many megabytes.
const MEMLIMIT_MAX_MB: u64 = 1_000_000_000;

/// Smallest `cache_memlimit`, in megabytes.
const MEMLIMIT_MIN_MB: u64 = 8;

/// Why [`Session::serve`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The input holds no complete request: call again once it holds at least `total` bytes
    /// (0 when unknown: any new bytes).
    NeedInput { total: usize },
    /// `-R` requests served; more may be waiting.
    Budget,
    /// The output is over the high-water mark; serve again once the client has read some.
    Backpressure,
    /// Close the connection once the output is written (`quit`, `shutdown`, a fatal error).
    Close,
}

/// What one request's execution asks of the loop around it.
enum Step {
    Done,
    /// Paused mid multi-get at the high-water mark: the request stays in the input.
    Paused,
    Close,
}

/// Per-thread context of one serving turn.
pub struct ServeContext<'a> {
    pub shared: &'a Shared,
    /// The serving worker's counters (single writer: this thread).
    pub stats: &'a ThreadStats,
    /// Requests served in this turn.
    pub served: usize,
}

impl<'a> ServeContext<'a> {
    pub fn new(shared: &'a Shared, worker: usize) -> Self {
        ServeContext {
            shared,
            stats: &shared.threads[worker],
            served: 0,
        }
    }
}

/// A connection's protocol state between reads: a few words, no heap.
#[derive(Debug)]
pub struct Session {
    limits: ParserLimits,
    /// Bytes of a refused data block still to be discarded as they arrive.
    swallow: usize,
    /// Keys of the multi-get at the front of the input already answered (it paused at the
    /// high-water mark and resumes after them).
    get_progress: usize,
}

impl Session {
    pub fn new(shared: &Shared) -> Self {
        Session {
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
                    match self.execute(&request, &rest[..used], out, context) {
                        Step::Done => {
                            consumed += used;
                            *budget -= 1;
                            context.served += 1;
                        }
                        Step::Paused => return (consumed, Stop::Backpressure),
                        Step::Close => {
                            context.served += 1;
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
                } => {
                    let settings = &context.shared.settings;
                    let flush = is_flush_all(rest);
                    if flush {
                        // memcached counts every flush_all line, refused or not.
                        context.stats.cmd_flush.incr();
                    }
                    if error == ProtocolError::InvalidShutdownMode && !settings.shutdown_enabled {
                        // memcached checks whether shutdown is enabled before its argument.
                        out.extend_from_slice(reply::SHUTDOWN_DISABLED);
                    } else if flush && !settings.flush_enabled {
                        // ... and whether flush_all is, before its delay.
                        if !silent {
                            out.extend_from_slice(reply::CLIENT_ERROR_FLUSH_DISABLED);
                        }
                    } else if !silent {
                        out.extend_from_slice(error.reply());
                    }
                    if error == ProtocolError::ValueTooLarge {
                        forget_refused_set(&context.shared.cache, &rest[..used.min(rest.len())]);
                    }
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

    fn execute(
        &mut self,
        request: &Request<'_>,
        line: &[u8],
        out: &mut Vec<u8>,
        context: &mut ServeContext<'_>,
    ) -> Step {
        let shared = context.shared;
        let cache = &shared.cache;
        match *request {
            Request::Get {
                kind,
                exptime,
                keys,
            } => return self.get(cache, kind, exptime, keys, out),
            Request::Store {
                command,
                key,
                flags,
                exptime,
                value,
                cas,
                noreply,
            } => {
                let (mode, compare_cas) = match command {
                    StoreCommand::Set => (StoreMode::Set, None),
                    StoreCommand::Add => (StoreMode::Add, None),
                    StoreCommand::Replace => (StoreMode::Replace, None),
                    StoreCommand::Append => (StoreMode::Append, None),
                    StoreCommand::Prepend => (StoreMode::Prepend, None),
                    StoreCommand::Cas => (StoreMode::Set, Some(cas)),
                };
                let (hash, mut partition) = cache.lock_key(key);
                let mut store = StoreRequest::new(hash, key, value, flags, exptime, mode);
                store.compare_cas = compare_cas;
                let result = partition.store(&store);
                if result.is_err() && command == StoreCommand::Set {
                    // As memcached: a failed set must not leave the old value readable.
                    partition.delete(&DeleteRequest::new(hash, key));
                }
                drop(partition);
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
                let (hash, mut partition) = cache.lock_key(key);
                let outcome = partition.delete(&DeleteRequest::new(hash, key));
                drop(partition);
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
                let (hash, mut partition) = cache.lock_key(key);
                let result = partition.arith(&ArithRequest::new(hash, key, mode, delta));
                drop(partition);
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
                let (hash, mut partition) = cache.lock_key(key);
                let touched = partition.touch(hash, key, exptime);
                drop(partition);
                if !noreply {
                    out.extend_from_slice(if touched {
                        reply::TOUCHED
                    } else {
                        reply::NOT_FOUND
                    });
                }
            }
            Request::FlushAll { delay, noreply } => {
                context.stats.cmd_flush.incr();
                let reply = if shared.settings.flush_enabled {
                    cache.flush_all(delay);
                    reply::OK
                } else {
                    reply::CLIENT_ERROR_FLUSH_DISABLED
                };
                if !noreply {
                    out.extend_from_slice(reply);
                }
            }
            Request::Version => reply::version(out, crate::VERSION),
            Request::Verbosity { level, noreply } => {
                let level = u8::try_from(level).unwrap_or(u8::MAX);
                shared.verbosity.store(level, Ordering::Relaxed);
                crate::logging::set_verbosity(level);
                if !noreply {
                    out.extend_from_slice(reply::OK);
                }
            }
            Request::Quit => return Step::Close,
            Request::Shutdown { .. } => {
                if !shared.settings.shutdown_enabled {
                    out.extend_from_slice(reply::SHUTDOWN_DISABLED);
                    return Step::Done;
                }
                // As memcached: no reply, the connection closes, the server stops gracefully.
                log::info!("shutdown requested by a client");
                shared.request_shutdown();
                return Step::Close;
            }
            Request::CacheMemlimit { megabytes, noreply } => {
                let reply = if megabytes < MEMLIMIT_MIN_MB {
                    reply::MEMLIMIT_TOO_SMALL
                } else if megabytes > MEMLIMIT_MAX_MB {
                    reply::MEMLIMIT_NOT_BYTES
                } else {
                    // Bounded above, so the product fits.
                    cache.pool.set_limit((megabytes as usize) << 20);
                    log::debug!("maxbytes adjusted to {megabytes}m");
                    reply::OK
                };
                if !noreply {
                    out.extend_from_slice(reply);
                }
            }
            Request::Stats(group) => write_stats(shared, group, line, out),
            Request::MetaGet { key, flags } => meta_get(cache, key.bytes(), &flags, out),
            Request::MetaSet { key, value, flags } => {
                meta_set(cache, key.bytes(), value, &flags, out)
            }
            Request::MetaDelete { key, flags } => meta_delete(cache, key.bytes(), &flags, out),
            Request::MetaArith { key, flags } => meta_arith(cache, key.bytes(), &flags, out),
            Request::MetaNoop => out.extend_from_slice(reply::META_NOOP),
            Request::MetaDebug { key, base64 } => {
                // memcached 1.6.18 counts only `me` in cmd_meta, not mg/ms/md/ma/mn.
                context.stats.cmd_meta.incr();
                let key = key.bytes();
                let (hash, mut partition) = cache.lock_key(key);
                match partition.peek(hash, key) {
                    Some(item) => reply::meta_debug(
                        out,
                        key,
                        base64,
                        item.ttl(),
                        item.last_access(),
                        item.cas(),
                        item.fetched(),
                        item.class_id(),
                        item.total_size(),
                    ),
                    None => out.extend_from_slice(reply::META_MISS),
                }
            }
        }
        Step::Done
    }

    /// `get`/`gets`/`gat`/`gats`: one lock per key, so a multi-get spans partitions without
    /// holding two locks; pauses at the high-water mark and resumes after the keys answered.
    fn get(
        &mut self,
        cache: &Cache,
        kind: GetKind,
        exptime: i64,
        keys: Keys<'_>,
        out: &mut Vec<u8>,
    ) -> Step {
        let with_cas = kind.with_cas();
        let touch = matches!(kind, GetKind::Gat | GetKind::Gats);
        for (answered, key) in keys.iter().skip(self.get_progress).enumerate() {
            if answered > 0 && out.len() > OUTPUT_HIGH_WATER {
                self.get_progress += answered;
                return Step::Paused;
            }
            let (hash, mut partition) = cache.lock_key(key);
            let item = if touch {
                partition.get_and_touch(hash, key, exptime)
            } else {
                partition.get(hash, key)
            };
            if let Some(item) = item {
                let cas = with_cas.then(|| item.cas());
                reply::value_header(out, key, item.flags(), item.value_len(), cas);
                for chunk in item.value() {
                    out.extend_from_slice(chunk);
                }
                reply::value_end(out);
            }
            drop(partition);
        }
        self.get_progress = 0;
        out.extend_from_slice(reply::END);
        Step::Done
    }
}

/// A `set` whose value the parser refused as too large must not leave the old value readable
/// either (memcached unlinks it); the parser's error does not carry the key, so it is taken
/// from the refused command line.
fn forget_refused_set(cache: &Cache, line: &[u8]) {
    let mut tokens = line.split(|&b| b == b' ' || b == b'\r' || b == b'\n');
    if tokens.next() != Some(b"set") {
        return;
    }
    if let Some(key) = tokens
        .next()
        .filter(|k| !k.is_empty() && k.len() <= KEY_MAX_LEN)
    {
        let (hash, mut partition) = cache.lock_key(key);
        partition.delete(&DeleteRequest::new(hash, key));
    }
}

/// Whether a command line is `flush_all` (for what memcached does before checking its
/// arguments).
fn is_flush_all(line: &[u8]) -> bool {
    line.strip_prefix(b"flush_all")
        .is_some_and(|rest| matches!(rest.first(), None | Some(b' ' | b'\r' | b'\n')))
}

/// The reply to a store the engine could not do.
fn store_error(error: StoreError) -> &'static [u8] {
    match error {
        StoreError::TooLarge => reply::SERVER_ERROR_TOO_LARGE,
        StoreError::OutOfMemory => reply::SERVER_ERROR_OUT_OF_MEMORY,
    }
}

fn meta_get(cache: &Cache, key: &[u8], flags: &MetaFlags<'_>, out: &mut Vec<u8>) {
    let options = MetaGetOptions {
        bump: !flags.no_bump,
        touch: flags.ttl,
        vivify: flags.vivify,
        recache_below: flags.recache,
    };
    let (hash, mut partition) = cache.lock_key(key);
    match partition.meta_get(hash, key, &options) {
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
    }
}

fn meta_set(cache: &Cache, key: &[u8], value: &[u8], flags: &MetaFlags<'_>, out: &mut Vec<u8>) {
    let mode = match flags.set_mode {
        MetaSetMode::Set => StoreMode::Set,
        MetaSetMode::Add => StoreMode::Add,
        MetaSetMode::Append => StoreMode::Append,
        MetaSetMode::Prepend => StoreMode::Prepend,
        MetaSetMode::Replace => StoreMode::Replace,
    };
    let client_flags = flags.client_flags.unwrap_or(0);
    let (hash, mut partition) = cache.lock_key(key);
    let mut store = StoreRequest::new(hash, key, value, client_flags, flags.ttl.unwrap_or(0), mode);
    store.compare_cas = flags.compare_cas;
    store.new_cas = flags.new_cas;
    store.invalidate = flags.invalidate;
    store.vivify_exptime = flags.vivify;
    let result = partition.store(&store);
    if result.is_err() {
        // As memcached: whatever the mode, a failed ms leaves no stale value behind.
        partition.delete(&DeleteRequest::new(hash, key));
    }
    drop(partition);
    let (status, cas) = match result {
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

fn meta_delete(cache: &Cache, key: &[u8], flags: &MetaFlags<'_>, out: &mut Vec<u8>) {
    let (hash, mut partition) = cache.lock_key(key);
    let outcome = partition.delete(&DeleteRequest {
        hash,
        key,
        compare_cas: flags.compare_cas,
        invalidate: flags.invalidate.then_some(flags.ttl),
        new_cas: flags.new_cas,
    });
    drop(partition);
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

fn meta_arith(cache: &Cache, key: &[u8], flags: &MetaFlags<'_>, out: &mut Vec<u8>) {
    let mode = match flags.arith_mode {
        MetaArithMode::Incr => ArithMode::Incr,
        MetaArithMode::Decr => ArithMode::Decr,
    };
    let (hash, mut partition) = cache.lock_key(key);
    let result = partition.arith(&ArithRequest {
        hash,
        key,
        mode,
        delta: flags.delta.unwrap_or(1),
        compare_cas: flags.compare_cas,
        new_cas: flags.new_cas,
        vivify: flags.vivify.map(|ttl| (flags.initial.unwrap_or(0), ttl)),
        exptime: flags.ttl,
    });
    drop(partition);
    let item = MetaItem {
        key,
        ..MetaItem::default()
    };
    match result {
        Ok(ArithOutcome::Updated { value, cas, ttl }) => {
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
            if reply::meta_reply(out, MetaCommand::Arith, status, flags, &item)
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

/// `stats [group]`: `STAT <name> <value>` lines, then `END` (or `RESET`, or `ERROR`).
fn write_stats(shared: &Shared, group: StatsGroup<'_>, line: &[u8], out: &mut Vec<u8>) {
    let lines = match group {
        StatsGroup::General => stats::general(shared),
        StatsGroup::Settings => stats::settings(shared),
        StatsGroup::Items => stats::items(shared),
        StatsGroup::Slabs => stats::slabs(shared),
        StatsGroup::Conns => stats::conns(shared),
        StatsGroup::Sizes => return out.extend_from_slice(SIZES_DISABLED),
        StatsGroup::Reset => {
            shared.reset_stats();
            return out.extend_from_slice(reply::RESET);
        }
        // memcached answers these two even with nothing to report.
        StatsGroup::Other(b"detail") => {
            // `stats detail on|off|dump`: per-prefix stats are not kept, so there is never
            // anything to dump; the group token is all the codec hands over, so the argument
            // is read from the line.
            let argument = line
                .split(|&b| b == b' ' || b == b'\r' || b == b'\n')
                .filter(|token| !token.is_empty())
                .nth(2);
            return out.extend_from_slice(match argument {
                Some(b"on" | b"off") => reply::OK,
                Some(b"dump") => reply::END,
                _ => reply::STATS_DETAIL_USAGE,
            });
        }
        StatsGroup::Other(b"cachedump") => return out.extend_from_slice(reply::END),
        StatsGroup::Other(_) => return out.extend_from_slice(reply::ERROR),
    };
    let mut value = Vec::with_capacity(64);
    for (name, stat) in &lines {
        value.clear();
        stat.write_to(&mut value);
        reply::stat(out, name.as_bytes(), &value);
    }
    out.extend_from_slice(reply::END);
}

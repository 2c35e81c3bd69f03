//! The text and meta protocol front: a connection's bytes in, memcached 1.6.18's replies out.
//!
//! Owns: parsing each complete request (`ferrocache_protocol::parse_request`), turning it into
//! the command layer's commands, encoding their outcomes (`ferrocache_protocol::reply`),
//! noreply and meta `q`, error replies and the bytes an error makes us discard (also across
//! reads), the `-R` budget, pausing at the output high-water mark, even in the middle of a
//! multi-get, and which latency family each request counts under. Must not touch: sockets or buffers' memory (the `connection` owns both), or what
//! a command does to the cache (the `command` layer).

use super::ascii_login::{AsciiLogin, LoginStep};
use super::{HOLD_MIN, HeldValues, OUTPUT_HIGH_WATER, ServeContext, Stop};
use crate::command::Executor;
use crate::command::admin::Refusal;
use crate::command::arith::Arith;
use crate::command::cluster::ConfigOutcome;
use crate::command::crawler::DumpCursor;
use crate::command::delete::Delete;
use crate::command::retrieval::Retrieve;
use crate::command::stats::{StatsOutcome, StatsRefusal};
use crate::command::store::{Store, StoreKind};
use crate::latency::Family;
use crate::logging;
use crate::shared::Shared;
use crate::watch::{WatchRefusal, Watcher};
use ferrocache_protocol::reply::{self, MetaItem, MetaStatus};
use ferrocache_protocol::{
    GetKind, Keys, LruCrawlerCommand, MetaArithMode, MetaCommand, MetaFlags, Parsed, ParserLimits,
    ProtocolError, Refused, Request, SlabsCommand, StoreCommand, TooLargeStore, parse_request,
};
use ferrocache_storage::{
    ArithMode, ArithOutcome, ClassSet, DeleteOutcome, ItemRef, MetaGetOptions, MetaGetOutcome,
    StoreError, StoreOutcome,
};
use std::sync::Arc;

/// What one request's execution asks of the loop around it.
enum Step {
    Done,
    /// Paused mid multi-get at the high-water mark: the request stays in the input.
    Paused,
    Close,
    /// The connection is now this log watcher.
    Watch(Arc<Watcher>),
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
    /// On a `-Y` server, until the connection has logged in: the login exchange.
    login: Option<AsciiLogin>,
    /// The `lru_crawler metadump` at the front of the input, paused at the high-water mark:
    /// where it stands and the classes it lists (checked when it began).
    dump: Option<(DumpCursor, ClassSet)>,
}

impl TextSession {
    pub fn new(shared: &Shared) -> Self {
        TextSession {
            limits: ParserLimits {
                max_value: shared.settings.storage.item_size_max,
                config_commands: shared.cluster.is_some(),
                ..ParserLimits::default()
            },
            swallow: 0,
            get_progress: 0,
            login: shared.auth.as_ref().map(|_| AsciiLogin::default()),
            dump: None,
        }
    }

    /// Whether a refused data block is being discarded.
    pub fn swallowing(&self) -> bool {
        self.swallow > 0
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
        // `-vv`: the connection's descriptor names its lines; None (one load) when off.
        let trace = logging::protocol_trace().then_some(context.executor.fd);
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
            if out.len() + context.held.bytes > OUTPUT_HIGH_WATER {
                return (consumed, Stop::Backpressure);
            }
            if let Some(login) = &mut self.login {
                match login.step(rest, out, &context.executor) {
                    LoginStep::Took {
                        consumed: used,
                        replied,
                    } => {
                        consumed += used;
                        if replied {
                            *budget -= 1;
                            context.served += 1;
                        }
                    }
                    LoginStep::LoggedIn { consumed: used } => {
                        consumed += used;
                        *budget -= 1;
                        context.served += 1;
                        self.login = None;
                    }
                    LoginStep::NeedInput { total } => {
                        let total = if total > rest.len() { total } else { 0 };
                        return (consumed, Stop::NeedInput { total });
                    }
                    LoginStep::Close => return (consumed, Stop::Close),
                }
                continue;
            }
            match parse_request(rest, &self.limits) {
                Parsed::Request {
                    request,
                    consumed: used,
                } => {
                    let used = used.clamp(1, rest.len());
                    let start = out.len();
                    // A multi-get resumed after a pause was logged when it began.
                    if let Some(fd) = trace
                        && self.get_progress == 0
                        && self.dump.is_none()
                    {
                        logging::trace_request(fd, first_line(&rest[..used]));
                    }
                    let step = self.execute(&request, out, context, trace);
                    if let Some(fd) = trace {
                        trace_reply_of(fd, &request, &out[start..]);
                    }
                    // memcached writes its queue after a retrieval, `mn` and `quit`; it makes
                    // no response object at all for a `noreply` command.
                    let flush = matches!(
                        request,
                        Request::Get { .. } | Request::MetaNoop | Request::Quit
                    );
                    if !(request.noreply() && out.len() == start) {
                        context.mark_response(out.len(), flush);
                    }
                    match step {
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
                        Step::Watch(watcher) => {
                            context.served += 1;
                            context.watcher = Some(watcher);
                            return (consumed + used, Stop::Watch);
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
                    if let Some(fd) = trace {
                        logging::trace_request(fd, first_line(rest));
                    }
                    // A line memcached closes on without a word is logged without a reply.
                    let reply_trace = trace.filter(|_| !(close && silent));
                    let start = out.len();
                    refuse(error, silent, refused, out, &context.executor, reply_trace);
                    if out.len() > start {
                        context.mark_response(out.len(), false);
                    }
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

    fn execute(
        &mut self,
        request: &Request<'_>,
        out: &mut Vec<u8>,
        context: &mut ServeContext<'_>,
        trace: Option<i32>,
    ) -> Step {
        let exec = &context.executor;
        match *request {
            Request::Get {
                kind,
                exptime,
                keys,
            } => return self.get(context, kind, exptime, keys, out, trace),
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
                let line = match exec.store(&store) {
                    Ok(StoreOutcome::Stored { .. }) => reply::STORED,
                    Ok(StoreOutcome::NotStored) => reply::NOT_STORED,
                    Ok(StoreOutcome::Exists) => reply::EXISTS,
                    Ok(StoreOutcome::NotFound) => reply::NOT_FOUND,
                    Err(error) => store_error(error),
                };
                answer(out, noreply, line, trace);
            }
            Request::Delete { key, noreply } => {
                let line = match exec.delete(&Delete::new(key)) {
                    DeleteOutcome::Deleted => reply::DELETED,
                    DeleteOutcome::NotFound | DeleteOutcome::Exists => reply::NOT_FOUND,
                };
                answer(out, noreply, line, trace);
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
                let line = match exec.arith(&Arith::new(key, mode, delta)) {
                    Ok(ArithOutcome::Updated { value, .. }) => {
                        if !noreply {
                            reply::number(out, value);
                        }
                        if let Some(fd) = trace {
                            let mut digits = itoa::Buffer::new();
                            trace_answer(fd, noreply, digits.format(value).as_bytes());
                        }
                        return Step::Done;
                    }
                    Ok(ArithOutcome::NotFound | ArithOutcome::Exists) => reply::NOT_FOUND,
                    Ok(ArithOutcome::NonNumeric) => reply::CLIENT_ERROR_NON_NUMERIC,
                    Err(_) => reply::SERVER_ERROR_OUT_OF_MEMORY_ARITH,
                };
                answer(out, noreply, line, trace);
            }
            Request::Touch {
                key,
                exptime,
                noreply,
            } => {
                let line = if exec.touch(key, exptime) {
                    reply::TOUCHED
                } else {
                    reply::NOT_FOUND
                };
                answer(out, noreply, line, trace);
            }
            Request::FlushAll { delay, noreply } => {
                let line = match exec.flush_all(delay) {
                    Ok(()) => reply::OK,
                    Err(refusal) => refusal_reply(refusal),
                };
                answer(out, noreply, line, trace);
            }
            Request::Version => reply::version(out, exec.version()),
            Request::Verbosity { level, noreply } => {
                exec.verbosity(level);
                answer(out, noreply, reply::OK, trace);
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
                let line = match exec.cache_memlimit(megabytes) {
                    Ok(()) => reply::OK,
                    Err(refusal) => refusal_reply(refusal),
                };
                answer(out, noreply, line, trace);
            }
            Request::Stats(group) => write_stats(exec.stats(group), out),
            Request::LruCrawler(command) => return self.lru_crawler(exec, command, out),
            Request::Slabs(SlabsCommand::Reassign { src, dst }) => {
                let line = match exec.slabs_reassign(src, dst) {
                    Ok(()) => reply::OK,
                    Err(refusal) => refusal.reply(),
                };
                answer(out, false, line, trace);
            }
            Request::Slabs(SlabsCommand::Automove { level, noreply }) => {
                exec.slabs_automove(level);
                answer(out, noreply, reply::OK, trace);
            }
            Request::Slabs(SlabsCommand::Ratio { ratio, noreply }) => {
                exec.slabs_automove_ratio(ratio.get());
                answer(out, noreply, reply::OK, trace);
            }
            Request::Watch(streams) => {
                // memcached hands the connection to its logger: replies still owed to this
                // client from the same batch would be lost, so it refuses.
                if !out.is_empty() {
                    out.extend_from_slice(reply::WATCH_AFTER_PIPELINE);
                    return Step::Done;
                }
                match exec.watch(streams) {
                    Ok(watcher) => {
                        out.extend_from_slice(reply::OK);
                        return Step::Watch(watcher);
                    }
                    Err(WatchRefusal::Disabled) => {
                        out.extend_from_slice(reply::CLIENT_ERROR_WATCH_DISABLED)
                    }
                    Err(WatchRefusal::TooMany) => out.extend_from_slice(reply::WATCHER_TOO_MANY),
                }
            }
            Request::ConfigGet { key } => {
                if let ConfigOutcome::Value { flags, payload } = exec.config_get(key) {
                    reply::config_value(out, key, flags, &payload);
                }
                out.extend_from_slice(reply::END);
            }
            Request::ConfigSet {
                key,
                flags,
                value,
                noreply,
            } => {
                let line = match exec.config_set(key, flags, value) {
                    ConfigOutcome::Stored => reply::STORED,
                    ConfigOutcome::Malformed => reply::NOT_STORED,
                    _ => reply::CLIENT_ERROR_CONFIG_SET_DISABLED,
                };
                answer(out, noreply, line, trace);
            }
            Request::ConfigDelete { key, noreply } => {
                let line = match exec.config_delete(key) {
                    ConfigOutcome::NotDeletable => reply::CLIENT_ERROR_CONFIG_DELETE,
                    _ => reply::NOT_FOUND,
                };
                answer(out, noreply, line, trace);
            }
            Request::RefreshCerts { noreply } => match exec.refresh_certs() {
                Ok(()) if noreply => {}
                Ok(()) => out.extend_from_slice(reply::OK),
                // memcached writes the error even under noreply.
                Err(text) => out.extend_from_slice(text.as_bytes()),
            },
            Request::MetaGet { key, flags } => {
                meta_get(exec, key.bytes(), &flags, out, &mut context.held)
            }
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

    /// `lru_crawler ...`. A metadump is written slice by slice and pauses at the high-water
    /// mark like a multi-get (the request stays in the input and resumes from `self.dump`),
    /// so a dump of any size needs no more than about the high-water mark of memory.
    fn lru_crawler(
        &mut self,
        exec: &Executor<'_>,
        command: LruCrawlerCommand,
        out: &mut Vec<u8>,
    ) -> Step {
        let done = match command {
            LruCrawlerCommand::Metadump(target) => {
                let (mut cursor, classes) = match self.dump.take() {
                    Some(paused) => paused,
                    None => match exec.metadump_classes(target) {
                        Ok(classes) => (DumpCursor::default(), classes),
                        Err(refusal) => {
                            out.extend_from_slice(refusal.reply());
                            return Step::Done;
                        }
                    },
                };
                loop {
                    let finished = exec.metadump_slice(&mut cursor, classes, |item| {
                        reply::metadump_item(
                            out,
                            item.key(),
                            item.expires_at_unix(),
                            item.last_access_unix(),
                            item.cas(),
                            item.fetched(),
                            item.class_id(),
                            item.total_size(),
                        )
                    });
                    if finished {
                        out.extend_from_slice(reply::END);
                        return Step::Done;
                    }
                    if out.len() > OUTPUT_HIGH_WATER {
                        self.dump = Some((cursor, classes));
                        return Step::Paused;
                    }
                }
            }
            LruCrawlerCommand::Crawl(target) => exec.crawl(target),
            LruCrawlerCommand::Enable => exec.crawler_enable(),
            LruCrawlerCommand::Disable => {
                exec.crawler_disable();
                Ok(())
            }
            LruCrawlerCommand::Sleep(micros) => exec.crawler_sleep(micros),
            LruCrawlerCommand::Tocrawl(items) => {
                exec.crawler_tocrawl(items);
                Ok(())
            }
        };
        out.extend_from_slice(match done {
            Ok(()) => reply::OK,
            Err(refusal) => refusal.reply(),
        });
        Step::Done
    }

    /// `get`/`gets`/`gat`/`gats`: one key at a time, so a multi-get spans partitions without
    /// holding two locks; pauses at the high-water mark and resumes after the keys answered.
    fn get(
        &mut self,
        context: &mut ServeContext<'_>,
        kind: GetKind,
        exptime: i64,
        keys: Keys<'_>,
        out: &mut Vec<u8>,
        trace: Option<i32>,
    ) -> Step {
        let exec = context.executor;
        let mut marks = context.marks.as_mut();
        let with_cas = kind.with_cas();
        let how = match kind {
            GetKind::Gat | GetKind::Gats => Retrieve::Touch { exptime },
            GetKind::Get | GetKind::Gets => Retrieve::Get,
        };
        let held = &mut context.held;
        let mut keys = keys.iter().skip(self.get_progress).enumerate().peekable();
        while let Some((answered, key)) = keys.next() {
            if answered > 0 && out.len() + held.bytes > OUTPUT_HIGH_WATER {
                self.get_progress += answered;
                return Step::Paused;
            }
            if let Some((flags, payload)) = exec.legacy_cluster_get(key) {
                if let Some(fd) = trace {
                    logging::trace_sending_key(fd, key);
                }
                reply::value(out, key, flags, with_cas.then_some(0), &payload);
            } else {
                exec.retrieve(key, how, |item| {
                    if let Some(fd) = trace {
                        logging::trace_sending_key(fd, key);
                    }
                    let cas = with_cas.then(|| item.cas());
                    reply::value_header(out, key, item.flags(), item.value_len(), cas);
                    write_value(out, held, item);
                    reply::value_end(out);
                });
            }
            // memcached makes one response object per key; `END` joins the last key's.
            if let Some(marks) = marks.as_deref_mut()
                && keys.peek().is_some()
            {
                marks.ends.push(out.len());
            }
        }
        self.get_progress = 0;
        out.extend_from_slice(reply::END);
        if let Some(fd) = trace {
            logging::trace_reply(fd, reply::END);
        }
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
        | Request::Stats(_)
        | Request::Watch(_)
        | Request::LruCrawler(_)
        | Request::Slabs(_)
        | Request::ConfigGet { .. }
        | Request::ConfigSet { .. }
        | Request::ConfigDelete { .. }
        | Request::RefreshCerts { .. } => Family::Other,
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
    trace: Option<i32>,
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
            return answer(out, false, refusal_reply(Refusal::ShutdownDisabled), trace);
        }
        Refused::Nothing => error.reply(),
    };
    answer(out, silent, reply, trace);
}

/// A one-line reply, held back under `noreply`; `-vv` logs it either way, as memcached does.
fn answer(out: &mut Vec<u8>, noreply: bool, line: &[u8], trace: Option<i32>) {
    if !noreply {
        out.extend_from_slice(line);
    }
    if let Some(fd) = trace {
        trace_answer(fd, noreply, line);
    }
}

fn trace_answer(fd: i32, noreply: bool, line: &[u8]) {
    if noreply {
        logging::trace_noreply(fd, line);
    } else {
        logging::trace_reply(fd, line);
    }
}

/// The request's command line (a store's data block follows it).
fn first_line(request: &[u8]) -> &[u8] {
    request
        .iter()
        .position(|&b| b == b'\n')
        .map_or(request, |end| &request[..=end])
}

/// `-vv` lines for the replies [`answer`] and `get` do not log as they make them: memcached
/// logs the one-line replies of `version`, `mn`, `shutdown`, the non-listing `stats` answers
/// and meta errors, and no other meta or stats reply.
fn trace_reply_of(fd: i32, request: &Request<'_>, reply: &[u8]) {
    let one_line = reply.ends_with(b"\r\n") && line_count(reply) == 1;
    let logged = match request {
        Request::Version | Request::Shutdown { .. } | Request::MetaNoop | Request::Watch(_) => {
            one_line
        }
        Request::Stats(_) => one_line && !reply.starts_with(b"STAT ") && reply != reply::END,
        // memcached logs the one-line answers; a metadump's lines come from its crawler.
        Request::LruCrawler(_) => one_line && !reply.starts_with(b"key=") && reply != reply::END,
        Request::MetaGet { .. }
        | Request::MetaSet { .. }
        | Request::MetaDelete { .. }
        | Request::MetaArith { .. }
        | Request::MetaDebug { .. } => {
            reply.starts_with(b"CLIENT_ERROR") || reply.starts_with(b"SERVER_ERROR")
        }
        _ => false,
    };
    if logged {
        logging::trace_reply(fd, reply);
    }
}

fn line_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
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

/// Writes a hit's value: held in its chunks for the connection to write from there when it
/// can ([`HeldValues`]) and the value is large, else copied.
fn write_value(out: &mut Vec<u8>, held: &mut HeldValues, item: &ItemRef<'_>) {
    if held.enabled
        && item.value_len() >= HOLD_MIN
        && let Some((head_part, pinned)) = item.pin_value()
    {
        out.extend_from_slice(head_part);
        held.hold(out.len(), pinned);
        return;
    }
    for chunk in item.value() {
        out.extend_from_slice(chunk);
    }
}

fn meta_get(
    exec: &Executor<'_>,
    key: &[u8],
    flags: &MetaFlags<'_>,
    out: &mut Vec<u8>,
    held: &mut HeldValues,
) {
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
                write_value(out, held, &item);
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

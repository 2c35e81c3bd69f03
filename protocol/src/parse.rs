//! The server-side parser: bytes from a client in, one request (or `Incomplete`, or an error
//! with memcached's reply) out, borrowing keys and values from the input.
//!
//! Owns: tokenising command lines, numbers as memcached reads them, key checks, data blocks,
//! how much input a request or an error consumes, and when an error closes the connection.
//! Must not touch: I/O, storage, reply formatting.

// A `Failure` carries the refused command's key inline, like every key here (a base64 key is
// decoded into the request, never onto the heap). It is no larger than the `Parsed` of the `Ok`
// side, so boxing it would only add the allocation this crate avoids.
#![allow(clippy::result_large_err)]

use memchr::memchr;

use crate::error::ProtocolError;
use crate::line::{
    DataBlock, Failure, MAX_SPLIT_TOKENS, Parsed, ParserLimits, Refused, Tokens, TooLargeStore,
    data_block,
};
use crate::meta::MetaCommand;
use crate::meta_parse;
use crate::number::{safe_strtod, safe_strtol, safe_strtoul, safe_strtoull};
use crate::request::{
    AutomoveRatio, CrawlTarget, DetailAction, GetKind, KEY_MAX_LEN, Key, Keys, LruCrawlerCommand,
    Request, SlabsCommand, StatsGroup, StoreCommand, WatchStreams,
};

/// Parses the first request in `input`.
///
/// Never panics, whatever the bytes. `consumed` never exceeds `input.len()`; when nothing can
/// be decided yet the answer is `Incomplete` with `needed > input.len()`.
pub fn parse_request<'a>(input: &'a [u8], limits: &ParserLimits) -> Parsed<'a> {
    let (line, line_consumed) = match frame_line(input, limits) {
        Framing::Line { line, consumed } => (line, consumed),
        Framing::Incomplete { needed } => return Parsed::Incomplete { needed },
        Framing::TooLong => {
            // memcached closes the connection without a reply.
            return Parsed::Error {
                error: ProtocolError::LineTooLong,
                consumed: input.len(),
                swallow: 0,
                close: true,
                silent: true,
                refused: Refused::Nothing,
            };
        }
    };
    if let Some(parsed) = single_key_get(line, line_consumed) {
        return parsed;
    }
    parse_line(input, line, line_consumed, limits)
}

/// `get <key>` and `gets <key>` with one key and single spaces, the bulk of a cache's traffic,
/// answered without splitting tokens: the general path's request for the same line, at a
/// fraction of its instructions (`bench/callgrind.sh`, text W1/W2). Anything else (more keys,
/// extra spaces, a key over 250 bytes) is `None` and takes the general path.
fn single_key_get(line: &[u8], line_consumed: usize) -> Option<Parsed<'_>> {
    let (kind, key) = if let Some(key) = line.strip_prefix(b"get ") {
        (GetKind::Get, key)
    } else {
        (GetKind::Gets, line.strip_prefix(b"gets ")?)
    };
    let single = !key.is_empty()
        && key.len() <= KEY_MAX_LEN
        && key[0] != b' '
        && memchr(b' ', key).is_none();
    single.then(|| Parsed::Request {
        request: Request::Get {
            kind,
            exptime: 0,
            keys: Keys::new(key),
        },
        consumed: line_consumed,
    })
}

/// The general path: split the line into tokens and parse the command they name.
fn parse_line<'a>(
    input: &'a [u8],
    line: &'a [u8],
    line_consumed: usize,
    limits: &ParserLimits,
) -> Parsed<'a> {
    // Retrievals need only their first tokens (their keys are the rest of the line, checked
    // in one pass): splitting a 100-key line into tokens first would read it twice.
    let limit = match first_token(line) {
        b"get" | b"gets" | b"gat" | b"gats" | b"bget" => 3,
        _ => MAX_SPLIT_TOKENS,
    };
    let tokens = Tokens::split(line, limit);
    let command = Command {
        input,
        line_consumed,
        tokens: &tokens,
        limits,
    };
    match command.parse() {
        Ok(parsed) => parsed,
        Err(failure) => failure.into_parsed(line_consumed),
    }
}

/// Where the first command line ends.
enum Framing<'a> {
    /// The line without its `\n` (and `\r`), cut at a NUL as memcached's `strlen` cuts it;
    /// `consumed` counts the line and its newline.
    Line {
        line: &'a [u8],
        consumed: usize,
    },
    Incomplete {
        needed: usize,
    },
    /// Over the limit without a newline: memcached closes.
    TooLong,
}

fn frame_line<'a>(input: &'a [u8], limits: &ParserLimits) -> Framing<'a> {
    if input.is_empty() {
        return Framing::Incomplete { needed: 1 };
    }
    // A line may hold `max_line` bytes before its `\n`: memcached gives up once it holds more
    // than 2048 bytes without one, so the decision depends only on the bytes, not on how they
    // were split into reads.
    let short_window = input.len().min(limits.max_line.saturating_add(1));
    let newline = match memchr(b'\n', &input[..short_window]) {
        Some(at) => Some(at),
        None if input.len() <= limits.max_line => None,
        None => match key_list_line(input) {
            KeyList::No => return Framing::TooLong,
            KeyList::Undecided => None,
            KeyList::Yes => {
                let cap = limits.max_key_list_line.max(limits.max_line);
                let long_window = input.len().min(cap.saturating_add(1));
                match memchr(b'\n', &input[short_window..long_window]) {
                    Some(at) => Some(short_window + at),
                    None if input.len() <= cap => None,
                    None => return Framing::TooLong,
                }
            }
        },
    };
    let Some(newline) = newline else {
        return Framing::Incomplete {
            needed: input.len() + 1,
        };
    };
    let mut line = &input[..newline];
    // memcached strips the `\r` only from a line longer than one byte; a one-byte line is an
    // `ERROR` either way.
    if line.len() > 1 && line[line.len() - 1] == b'\r' {
        line = &line[..line.len() - 1];
    }
    if let Some(nul) = memchr(0, line) {
        line = &line[..nul];
    }
    Framing::Line {
        line,
        consumed: newline + 1,
    }
}

/// Whether a long line is a key list, memcached's exemption: up to 100 leading spaces, then
/// `get ` or `gets ` (and here `gat `, `gats ` too).
#[derive(PartialEq, Eq)]
enum KeyList {
    Yes,
    No,
    /// Only spaces or a prefix of `gets ` so far: the next bytes decide. (Deciding now would
    /// make the verdict depend on where a read happened to end.)
    Undecided,
}

fn key_list_line(input: &[u8]) -> KeyList {
    const PREFIXES: [&[u8]; 4] = [b"get ", b"gets ", b"gat ", b"gats "];
    let spaces = input.iter().take_while(|&&b| b == b' ').count();
    if spaces > 100 {
        return KeyList::No;
    }
    let rest = &input[spaces..];
    if PREFIXES.iter().any(|prefix| rest.starts_with(prefix)) {
        KeyList::Yes
    } else if PREFIXES.iter().any(|prefix| prefix.starts_with(rest)) {
        KeyList::Undecided
    } else {
        KeyList::No
    }
}

/// The command name: the first space-separated token.
fn first_token(line: &[u8]) -> &[u8] {
    let start = line.iter().take_while(|&&b| b == b' ').count();
    let rest = &line[start..];
    memchr(b' ', rest).map_or(rest, |end| &rest[..end])
}

/// One command line being turned into a request.
struct Command<'i, 't> {
    input: &'i [u8],
    line_consumed: usize,
    tokens: &'t Tokens<'i>,
    limits: &'t ParserLimits,
}

/// Whether some space-separated token of `line` is longer than `max`: the gaps between spaces,
/// found with memchr rather than byte by byte (a multi-get line can hold thousands of keys).
fn has_token_longer_than(line: &[u8], max: usize) -> bool {
    let mut token_start = 0;
    for space in memchr::memchr_iter(b' ', line) {
        if space - token_start > max {
            return true;
        }
        token_start = space + 1;
    }
    line.len() - token_start > max
}

/// The classes argument of `lru_crawler crawl|metadump`, read as crawler.c's
/// `lru_crawler_crawl` reads it: `all`, `hash`, or ids 1..=63 split on commas (empty pieces
/// skipped, as `strtok_r` skips them).
fn crawl_target(argument: &[u8]) -> CrawlTarget {
    match argument {
        b"all" => CrawlTarget::All,
        b"hash" => CrawlTarget::Hash,
        list => {
            let mut classes = 0u64;
            for piece in list.split(|&b| b == b',').filter(|p| !p.is_empty()) {
                match safe_strtoul(piece) {
                    Some(id @ 1..=63) => classes |= 1 << id,
                    _ => return CrawlTarget::BadClass,
                }
            }
            CrawlTarget::Classes(classes)
        }
    }
}

/// proto_text.c's `WANT_TOKENS`-style checks answer `ERROR`.
fn want(condition: bool) -> Result<(), Failure<'static>> {
    if condition {
        Ok(())
    } else {
        Err(Failure::new(ProtocolError::UnknownCommand))
    }
}

impl<'i> Command<'i, '_> {
    fn parse(&self) -> Result<Parsed<'i>, Failure<'i>> {
        let tokens = self.tokens;
        let name = tokens.get(0);
        let ntokens = tokens.ntokens();
        // No command is shorter than two bytes; an empty line has no token at all.
        want(ntokens >= 2 && name.len() >= 2)?;
        if name[0] == b'm' && name.len() == 2 {
            let command = match name[1] {
                b'g' => MetaCommand::Get,
                b's' => MetaCommand::Set,
                b'd' => MetaCommand::Delete,
                b'a' => MetaCommand::Arith,
                b'n' => return Ok(self.done(Request::MetaNoop)),
                b'e' => return self.meta_debug(),
                _ => return Err(ProtocolError::UnknownCommand.into()),
            };
            return meta_parse::parse(command, tokens, self.input, self.line_consumed, self.limits);
        }
        match name {
            b"get" | b"bget" => self.get(GetKind::Get),
            b"gets" => self.get(GetKind::Gets),
            b"gat" => self.get(GetKind::Gat),
            b"gats" => self.get(GetKind::Gats),
            b"set" => self.store(StoreCommand::Set),
            b"add" => self.store(StoreCommand::Add),
            b"replace" => self.store(StoreCommand::Replace),
            b"append" => self.store(StoreCommand::Append),
            b"prepend" => self.store(StoreCommand::Prepend),
            b"cas" => self.store(StoreCommand::Cas),
            b"delete" => self.delete(),
            b"incr" => self.arith(true),
            b"decr" => self.arith(false),
            b"touch" => self.touch(),
            b"flush_all" => self.flush_all(),
            b"version" => Ok(self.done(Request::Version)),
            b"quit" => Ok(self.done(Request::Quit)),
            b"verbosity" => self.verbosity(),
            b"shutdown" => self.shutdown(),
            b"cache_memlimit" => self.cache_memlimit(),
            b"stats" => Ok(self.done(Request::Stats(self.stats_group()))),
            b"watch" => self.watch(),
            b"lru_crawler" => self.lru_crawler(),
            b"slabs" => self.slabs(),
            b"config" if self.limits.config_commands => self.config(),
            // Any arguments are accepted, as memcached's; only a last `noreply` counts.
            b"refresh_certs" => Ok(self.done(Request::RefreshCerts {
                noreply: self.noreply(),
            })),
            _ => Ok(self.unknown()),
        }
    }

    /// A command memcached does not know: `ERROR`, except that a line memcached's dispatch on
    /// the first letter does not claim, whose last token starts with `HTTP/` (a browser or an
    /// HTTP health check that reached the cache port), closes the connection without a reply.
    fn unknown(&self) -> Parsed<'i> {
        let name = self.tokens.get(0);
        let claimed = matches!(name[0], b'g' | b's' | b'a' | b'c' | b'i' | b'd' | b't')
            || (name[0] == b'm' && name.len() == 2);
        let http = !claimed && self.tokens.last().starts_with(b"HTTP/");
        Parsed::Error {
            error: if http {
                ProtocolError::HttpRequest
            } else {
                ProtocolError::UnknownCommand
            },
            consumed: self.line_consumed,
            swallow: 0,
            close: http,
            silent: http,
            refused: Refused::Nothing,
        }
    }

    /// A request made of its command line alone.
    fn done(&self, request: Request<'i>) -> Parsed<'i> {
        Parsed::Request {
            request,
            consumed: self.line_consumed,
        }
    }

    /// memcached's `set_noreply_maybe`: the last token is `noreply`.
    fn noreply(&self) -> bool {
        self.tokens.last() == b"noreply"
    }

    /// The key (token 1) of a single-key text command; over 250 bytes is `CLIENT_ERROR bad
    /// command line format`, which memcached suppresses under `noreply`.
    fn key(&self, noreply: bool) -> Result<&'i [u8], Failure<'i>> {
        let key = self.tokens.get(1);
        if key.len() > KEY_MAX_LEN {
            return Err(Failure::new(ProtocolError::BadCommandLine).silent_if(noreply));
        }
        Ok(key)
    }

    /// `get|gets|bget <key>+`, `gat|gats <exptime> <key>+`.
    fn get(&self, kind: GetKind) -> Result<Parsed<'i>, Failure<'i>> {
        want(self.tokens.ntokens() >= 3)?;
        let touches = matches!(kind, GetKind::Gat | GetKind::Gats);
        let (exptime, first_key) = if touches {
            let exptime = safe_strtol(self.tokens.get(1)).ok_or(ProtocolError::InvalidExptime)?;
            (i64::from(exptime), 2)
        } else {
            (0, 1)
        };
        // `gat <exptime>` without a key is valid for memcached: it answers `END`.
        let key_list = self.tokens.rest_from(first_key);
        if has_token_longer_than(key_list, KEY_MAX_LEN) {
            return Err(ProtocolError::BadCommandLine.into());
        }
        let keys = Keys::new(key_list);
        Ok(self.done(Request::Get {
            kind,
            exptime,
            keys,
        }))
    }

    /// `set|add|replace|append|prepend <key> <flags> <exptime> <bytes> [noreply]` and
    /// `cas <key> <flags> <exptime> <bytes> <cas> [noreply]`, as `process_update_command`.
    fn store(&self, command: StoreCommand) -> Result<Parsed<'i>, Failure<'i>> {
        let tokens = self.tokens;
        let is_cas = command == StoreCommand::Cas;
        let ntokens = tokens.ntokens();
        // One more token than the fixed ones is allowed; if it is not `noreply` it is ignored.
        if is_cas {
            want(ntokens == 7 || ntokens == 8)?;
        } else {
            want(ntokens == 6 || ntokens == 7)?;
        }
        let noreply = self.noreply();
        let bad_line = || Failure::new(ProtocolError::BadCommandLine).silent_if(noreply);
        let key = self.key(noreply)?;
        let (Some(flags), Some(exptime), Some(len)) = (
            safe_strtoul(tokens.get(2)),
            safe_strtol(tokens.get(3)),
            safe_strtol(tokens.get(4)),
        ) else {
            return Err(bad_line());
        };
        let cas = if is_cas {
            safe_strtoull(tokens.get(5)).ok_or_else(bad_line)?
        } else {
            0
        };
        let len = self.data_length(len, noreply)?;
        let refused = Refused::TooLarge {
            key: Key::Borrowed(key),
            store: TooLargeStore::Text(command),
        };
        self.with_data_block(len, noreply, refused, |value| Request::Store {
            command,
            key,
            flags,
            exptime: i64::from(exptime),
            value,
            cas,
            noreply,
        })
    }

    /// A storage line's byte count, as memcached checks it: negative, or too large to add the
    /// `\r\n` to, is `CLIENT_ERROR bad command line format`.
    fn data_length(&self, len: i32, noreply: bool) -> Result<usize, Failure<'i>> {
        match usize::try_from(len) {
            Ok(len) if len <= i32::MAX as usize - 2 => Ok(len),
            _ => Err(Failure::new(ProtocolError::BadCommandLine).silent_if(noreply)),
        }
    }

    /// The request `make` builds from the `len`-byte data block after the line: refused as too
    /// large (and swallowed) over the item size limit, incomplete until it has all arrived, a
    /// bad chunk when it does not end in `\r\n`.
    fn with_data_block(
        &self,
        len: usize,
        noreply: bool,
        too_large: Refused<'i>,
        make: impl FnOnce(&'i [u8]) -> Request<'i>,
    ) -> Result<Parsed<'i>, Failure<'i>> {
        if len > self.limits.max_value {
            return Err(Failure {
                error: ProtocolError::ValueTooLarge,
                swallow: len + 2,
                silent: noreply,
                refused: too_large,
            });
        }
        Ok(match data_block(self.input, self.line_consumed, len) {
            DataBlock::Complete { value, consumed } => Parsed::Request {
                request: make(value),
                consumed,
            },
            DataBlock::Incomplete { needed } => Parsed::Incomplete { needed },
            DataBlock::BadChunk { consumed } => Parsed::Error {
                error: ProtocolError::BadDataChunk,
                consumed,
                swallow: 0,
                close: false,
                silent: noreply,
                refused: Refused::Nothing,
            },
        })
    }

    /// `delete <key> [0] [noreply]`, with `process_delete_command`'s exact rules.
    fn delete(&self) -> Result<Parsed<'i>, Failure<'i>> {
        let tokens = self.tokens;
        let ntokens = tokens.ntokens();
        want((3..=5).contains(&ntokens))?;
        let mut noreply = false;
        if ntokens > 3 {
            let hold_is_zero = tokens.get(2) == b"0";
            noreply = self.noreply();
            let valid = (ntokens == 4 && (hold_is_zero || noreply))
                || (ntokens == 5 && hold_is_zero && noreply);
            if !valid {
                return Err(Failure::new(ProtocolError::BadDeleteUsage).silent_if(noreply));
            }
        }
        let key = self.key(noreply)?;
        Ok(self.done(Request::Delete { key, noreply }))
    }

    /// `incr|decr <key> <delta> [noreply]`.
    fn arith(&self, incr: bool) -> Result<Parsed<'i>, Failure<'i>> {
        let ntokens = self.tokens.ntokens();
        want(ntokens == 4 || ntokens == 5)?;
        let noreply = self.noreply();
        let key = self.key(noreply)?;
        let delta = safe_strtoull(self.tokens.get(2))
            .ok_or_else(|| Failure::new(ProtocolError::InvalidDelta).silent_if(noreply))?;
        Ok(self.done(Request::Arith {
            incr,
            key,
            delta,
            noreply,
        }))
    }

    /// `touch <key> <exptime> [noreply]`.
    fn touch(&self) -> Result<Parsed<'i>, Failure<'i>> {
        let ntokens = self.tokens.ntokens();
        want(ntokens == 4 || ntokens == 5)?;
        let noreply = self.noreply();
        let key = self.key(noreply)?;
        let exptime = safe_strtol(self.tokens.get(2))
            .ok_or_else(|| Failure::new(ProtocolError::InvalidExptime).silent_if(noreply))?;
        Ok(self.done(Request::Touch {
            key,
            exptime: i64::from(exptime),
            noreply,
        }))
    }

    /// `flush_all [delay] [noreply]`: a token after the delay that is not `noreply` is ignored.
    fn flush_all(&self) -> Result<Parsed<'i>, Failure<'i>> {
        let ntokens = self.tokens.ntokens();
        want((2..=4).contains(&ntokens))?;
        let noreply = self.noreply();
        let delay = if ntokens != if noreply { 3 } else { 2 } {
            safe_strtol(self.tokens.get(1)).ok_or_else(|| {
                Failure::new(ProtocolError::InvalidExptime)
                    .silent_if(noreply)
                    .refusing(Refused::FlushAll)
            })?
        } else {
            0
        };
        Ok(self.done(Request::FlushAll {
            delay: i64::from(delay),
            noreply,
        }))
    }

    /// `verbosity <level> [noreply]`; `verbosity noreply` is a silent error, as on 1.6.18.
    fn verbosity(&self) -> Result<Parsed<'i>, Failure<'i>> {
        let ntokens = self.tokens.ntokens();
        want(ntokens == 3 || ntokens == 4)?;
        let noreply = self.noreply();
        let level = safe_strtoul(self.tokens.get(1))
            .ok_or_else(|| Failure::new(ProtocolError::BadCommandLine).silent_if(noreply))?;
        Ok(self.done(Request::Verbosity { level, noreply }))
    }

    /// `shutdown [graceful]`.
    fn shutdown(&self) -> Result<Parsed<'i>, Failure<'i>> {
        match (self.tokens.ntokens(), self.tokens.get(1)) {
            (2, _) => Ok(self.done(Request::Shutdown { graceful: false })),
            (3, b"graceful") => Ok(self.done(Request::Shutdown { graceful: true })),
            _ => Err(ProtocolError::InvalidShutdownMode.into()),
        }
    }

    /// `cache_memlimit <megabytes> [noreply]`: a bad number answers `ERROR`, as on 1.6.18.
    fn cache_memlimit(&self) -> Result<Parsed<'i>, Failure<'i>> {
        let ntokens = self.tokens.ntokens();
        want(ntokens == 3 || ntokens == 4)?;
        let noreply = self.noreply();
        let megabytes = safe_strtoul(self.tokens.get(1))
            .ok_or_else(|| Failure::new(ProtocolError::UnknownCommand).silent_if(noreply))?;
        Ok(self.done(Request::CacheMemlimit {
            megabytes: u64::from(megabytes),
            noreply,
        }))
    }

    /// `stats [group ...]`: the group is the first token after `stats`; later ones are left to
    /// the server (`stats detail on`), which answers `ERROR` to groups it does not know
    /// (`stats noreply` included).
    fn stats_group(&self) -> StatsGroup<'i> {
        if self.tokens.ntokens() == 2 {
            return StatsGroup::General;
        }
        match self.tokens.get(1) {
            b"settings" => StatsGroup::Settings,
            b"items" => StatsGroup::Items,
            b"slabs" => StatsGroup::Slabs,
            b"sizes" => StatsGroup::Sizes,
            b"conns" => StatsGroup::Conns,
            b"latency" => StatsGroup::Latency,
            b"reset" => StatsGroup::Reset,
            b"sizes_enable" => StatsGroup::SizesEnable,
            b"sizes_disable" => StatsGroup::SizesDisable,
            b"detail" => StatsGroup::Detail(match self.tokens.get(2) {
                b"on" => Some(DetailAction::On),
                b"off" => Some(DetailAction::Off),
                b"dump" => Some(DetailAction::Dump),
                _ => None,
            }),
            b"cachedump" => StatsGroup::Cachedump(self.cachedump_arguments()),
            other => StatsGroup::Other(other),
        }
    }

    /// `stats cachedump <class> <limit>`, checked in memcached's order.
    fn cachedump_arguments(&self) -> Result<(u32, u32), ProtocolError> {
        if self.tokens.ntokens() < 5 {
            return Err(ProtocolError::BadCommandLineShort);
        }
        let (Some(class), Some(limit)) = (
            safe_strtoul(self.tokens.get(2)),
            safe_strtoul(self.tokens.get(3)),
        ) else {
            return Err(ProtocolError::BadCommandLine);
        };
        // memcached's MAX_NUMBER_OF_SLAB_CLASSES.
        if class >= 64 {
            return Err(ProtocolError::IllegalSlabId);
        }
        Ok((class, limit))
    }

    /// ElastiCache's `config get <key>`, `config set <key> <flags> <bytes> [noreply]` (and its
    /// data block), `config delete <key> [noreply]`, checked as memcached checks its storage
    /// commands.
    fn config(&self) -> Result<Parsed<'i>, Failure<'i>> {
        let tokens = self.tokens;
        let ntokens = tokens.ntokens();
        want(ntokens >= 4)?;
        let noreply = self.noreply();
        let key = tokens.get(2);
        if key.len() > KEY_MAX_LEN {
            return Err(Failure::new(ProtocolError::BadCommandLine).silent_if(noreply));
        }
        match tokens.get(1) {
            b"get" => {
                want(ntokens == 4)?;
                Ok(self.done(Request::ConfigGet { key }))
            }
            b"delete" => {
                want(ntokens == 4 || ntokens == 5)?;
                Ok(self.done(Request::ConfigDelete { key, noreply }))
            }
            b"set" => {
                want(ntokens == 6 || ntokens == 7)?;
                let bad_line = || Failure::new(ProtocolError::BadCommandLine).silent_if(noreply);
                let (Some(flags), Some(len)) =
                    (safe_strtoul(tokens.get(3)), safe_strtol(tokens.get(4)))
                else {
                    return Err(bad_line());
                };
                let len = self.data_length(len, noreply)?;
                self.with_data_block(len, noreply, Refused::Nothing, |value| Request::ConfigSet {
                    key,
                    flags,
                    value,
                    noreply,
                })
            }
            _ => Err(ProtocolError::UnknownCommand.into()),
        }
    }

    /// `watch [stream ...]` (`fetchers` when none is named). An unknown stream, `noreply`
    /// included, is `ERROR`, which memcached suppresses when the last token is `noreply`.
    fn watch(&self) -> Result<Parsed<'i>, Failure<'i>> {
        let ntokens = self.tokens.ntokens();
        if ntokens <= 2 {
            return Ok(self.done(Request::Watch(WatchStreams::FETCHERS)));
        }
        let mut streams = WatchStreams::default();
        for index in 1..ntokens - 1 {
            match WatchStreams::named(self.tokens.get(index)) {
                Some(stream) => streams = streams | stream,
                None => {
                    return Err(
                        Failure::new(ProtocolError::UnknownCommand).silent_if(self.noreply())
                    );
                }
            }
        }
        Ok(self.done(Request::Watch(streams)))
    }

    /// `lru_crawler crawl|metadump|tocrawl|sleep <argument>` or `lru_crawler enable|disable`,
    /// as proto_text.c's `process_lru_crawler_command` tells them apart: any other shape,
    /// `noreply` included, is `ERROR`.
    fn lru_crawler(&self) -> Result<Parsed<'i>, Failure<'i>> {
        let tokens = self.tokens;
        let command = match (tokens.ntokens(), tokens.get(1)) {
            (4, b"crawl") => LruCrawlerCommand::Crawl(crawl_target(tokens.get(2))),
            (4, b"metadump") => LruCrawlerCommand::Metadump(crawl_target(tokens.get(2))),
            (4, b"tocrawl") => LruCrawlerCommand::Tocrawl(
                safe_strtoul(tokens.get(2)).ok_or(ProtocolError::BadCommandLine)?,
            ),
            (4, b"sleep") => LruCrawlerCommand::Sleep(
                safe_strtoul(tokens.get(2)).ok_or(ProtocolError::BadCommandLine)?,
            ),
            (3, b"enable") => LruCrawlerCommand::Enable,
            (3, b"disable") => LruCrawlerCommand::Disable,
            _ => return Err(ProtocolError::UnknownCommand.into()),
        };
        Ok(self.done(Request::LruCrawler(command)))
    }

    /// `slabs reassign <src> <dst>` (exactly, no `noreply`) or `slabs automove <level>|ratio
    /// <r> [noreply]`, as proto_text.c's `process_slabs_command` and
    /// `process_slabs_automove_command` read them: ids and the level that are not numbers are
    /// `CLIENT_ERROR bad command line format`, a level above 2 or a ratio that is not one
    /// `ERROR`; automove's errors are silent under `noreply`. Any other shape is `ERROR`.
    fn slabs(&self) -> Result<Parsed<'i>, Failure<'i>> {
        let tokens = self.tokens;
        let ntokens = tokens.ntokens();
        let command = match tokens.get(1) {
            b"reassign" if ntokens == 5 => {
                let (Some(src), Some(dst)) =
                    (safe_strtol(tokens.get(2)), safe_strtol(tokens.get(3)))
                else {
                    return Err(ProtocolError::BadCommandLine.into());
                };
                SlabsCommand::Reassign { src, dst }
            }
            b"automove" if ntokens >= 4 => {
                let noreply = self.noreply();
                let unknown = || Failure::new(ProtocolError::UnknownCommand).silent_if(noreply);
                if tokens.get(2) == b"ratio" {
                    let ratio = (ntokens >= 5)
                        .then(|| safe_strtod(tokens.get(3)))
                        .flatten()
                        .ok_or_else(unknown)?;
                    SlabsCommand::Ratio {
                        ratio: AutomoveRatio::new(ratio),
                        noreply,
                    }
                } else {
                    let level = safe_strtoul(tokens.get(2)).ok_or_else(|| {
                        Failure::new(ProtocolError::BadCommandLine).silent_if(noreply)
                    })?;
                    match level {
                        0..=2 => SlabsCommand::Automove {
                            level: level as u8,
                            noreply,
                        },
                        _ => return Err(unknown()),
                    }
                }
            }
            _ => return Err(ProtocolError::UnknownCommand.into()),
        };
        Ok(self.done(Request::Slabs(command)))
    }

    /// `me <key> [b]`: only a `b` right after the key counts; anything else is ignored.
    fn meta_debug(&self) -> Result<Parsed<'i>, Failure<'i>> {
        let tokens = self.tokens;
        let raw_key = tokens.get(1);
        if tokens.ntokens() < 3 || raw_key.len() > KEY_MAX_LEN {
            return Err(ProtocolError::BadCommandLine.into());
        }
        let base64 = tokens.ntokens() >= 4 && tokens.get(2) == b"b";
        let key = if base64 {
            meta_parse::decode_key(raw_key).ok_or(ProtocolError::BadCommandLine)?
        } else {
            crate::request::Key::Borrowed(raw_key)
        };
        Ok(self.done(Request::MetaDebug { key, base64 }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The fast path must give exactly the general path's answer for every line it takes.
    fn agrees(line: &[u8]) {
        let limits = ParserLimits::default();
        let mut input = line.to_vec();
        input.extend_from_slice(b"\r\n");
        let consumed = input.len();
        if let Some(fast) = single_key_get(line, consumed) {
            assert_eq!(
                fast,
                parse_line(&input, line, consumed, &limits),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn single_key_gets_take_the_fast_path_only_when_it_agrees() {
        let long_key = [b'k'; KEY_MAX_LEN];
        let too_long_key = [b'k'; KEY_MAX_LEN + 1];
        for (line, fast) in [
            (&b"get a"[..], true),
            (b"gets key:1", true),
            (&[b"get ", &long_key[..]].concat(), true),
            (&[b"get ", &too_long_key[..]].concat(), false),
            (b"get a b", false),
            (b"get  a", false),
            (b"get a ", false),
            (b"get ", false),
            (b"get", false),
            (b"gat 10 a", false),
            (b"getx a", false),
        ] {
            assert_eq!(single_key_get(line, line.len() + 2).is_some(), fast);
            agrees(line);
        }
    }

    proptest! {
        #[test]
        fn the_fast_path_agrees_with_the_general_one(
            name in prop::sample::select(vec!["get", "gets", "gat", "get ", "gets  "]),
            rest in "[ a-z:\\x00-\\x02]{0,12}",
        ) {
            agrees(format!("{name} {rest}").as_bytes());
        }
    }
}

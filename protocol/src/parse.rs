//! The server-side parser: bytes from a client in, one request (or `Incomplete`, or an error
//! with memcached's reply) out, borrowing keys and values from the input.
//!
//! Owns: tokenising command lines, numbers as memcached reads them, key checks, data blocks,
//! how much input a request or an error consumes, and when an error closes the connection.
//! Must not touch: I/O, storage, reply formatting.

use memchr::memchr;

use crate::error::ProtocolError;
use crate::meta::MetaCommand;
use crate::meta_parse;
use crate::number::{safe_strtol, safe_strtoul, safe_strtoull};
use crate::request::{GetKind, KEY_MAX_LEN, Keys, Request, StatsGroup, StoreCommand};

/// Limits the parser enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParserLimits {
    /// A command line longer than this (bytes before its `\n`) closes the connection
    /// silently (memcached: 2048), except `get`/`gets`/`gat`/`gats` key lists. (memcached
    /// 1.6.18 exempts only `get ` and `gets `, after up to 100 leading spaces; `gat`/`gats`
    /// are exempt here too so that clients may touch as many keys as they get.)
    pub max_line: usize,
    /// Cap on a retrieval command's line (many keys); longer closes the connection.
    pub max_key_list_line: usize,
    /// Data blocks longer than this are refused with `SERVER_ERROR object too large for
    /// cache` and swallowed without being buffered (the server's item size limit).
    pub max_value: usize,
}

impl Default for ParserLimits {
    fn default() -> Self {
        ParserLimits {
            max_line: 2048,
            max_key_list_line: 1 << 20,
            max_value: 1 << 20,
        }
    }
}

/// What parsing the front of a buffer gave.
// A request is a few hundred bytes (a base64 key is decoded inline, meta flags are parsed into
// fields): boxing it would cost the heap allocation per request that this crate avoids.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A complete request that took the first `consumed` bytes (line and data block).
    Request {
        request: Request<'a>,
        consumed: usize,
    },
    /// Not enough bytes yet: normal, not an error. Call again once the buffer holds at least
    /// `needed` bytes in all (for a data block on its way, its full length, so a large value is
    /// not rescanned on every read).
    Incomplete { needed: usize },
    /// Bad input. Reply with `error.reply()` unless `silent`, drop the first `consumed`
    /// bytes, then drop `swallow` more bytes as they arrive (a refused data block; may exceed
    /// what is buffered now), and close the connection after the reply if `close`.
    Error {
        error: ProtocolError,
        consumed: usize,
        swallow: usize,
        close: bool,
        /// memcached sends nothing for this error (a `noreply` command whose error it
        /// suppresses, as 1.6.18 does for some).
        silent: bool,
    },
}

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
            };
        }
    };
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

/// memcached's `MAX_TOKENS` is 24 including its terminal token: it splits at most 23 tokens
/// and leaves the rest of the line unsplit (only `get` looks at it).
const MAX_SPLIT_TOKENS: usize = 23;

/// A command line split on spaces (only spaces: a tab is part of a token), without allocating.
pub(crate) struct Tokens<'a> {
    line: &'a [u8],
    /// `(start, end)` of each token in `line`.
    spans: [(usize, usize); MAX_SPLIT_TOKENS],
    count: usize,
}

impl<'a> Tokens<'a> {
    /// Splits at most `limit` (<= 23) tokens. Only a full split (`limit` 23) gives memcached's
    /// `ntokens`; a shorter one serves the retrievals, which only ask for at least one key.
    fn split(line: &'a [u8], limit: usize) -> Self {
        let mut tokens = Tokens {
            line,
            spans: [(0, 0); MAX_SPLIT_TOKENS],
            count: 0,
        };
        let mut at = 0;
        while tokens.count < limit.min(MAX_SPLIT_TOKENS) {
            while line.get(at) == Some(&b' ') {
                at += 1;
            }
            if at >= line.len() {
                break;
            }
            let end = memchr(b' ', &line[at..]).map_or(line.len(), |len| at + len);
            tokens.spans[tokens.count] = (at, end);
            tokens.count += 1;
            at = end;
        }
        tokens
    }

    /// memcached's `ntokens`: the tokens split plus its terminal token. Compared with the
    /// same numbers as in proto_text.c so the checks read alike.
    pub(crate) fn ntokens(&self) -> usize {
        self.count + 1
    }

    /// Token `index`, or an empty slice past the last one (memcached's terminal token).
    pub(crate) fn get(&self, index: usize) -> &'a [u8] {
        if index < self.count {
            let (start, end) = self.spans[index];
            &self.line[start..end]
        } else {
            &[]
        }
    }

    /// The line from token `index` to its end (empty past the last token).
    pub(crate) fn rest_from(&self, index: usize) -> &'a [u8] {
        if index < self.count {
            &self.line[self.spans[index].0..]
        } else {
            &[]
        }
    }

    /// The last token split (memcached's `tokens[ntokens - 2]`, where it looks for
    /// `noreply`).
    fn last(&self) -> &'a [u8] {
        self.get(self.count.wrapping_sub(1))
    }
}

/// An error found on a command line, before it becomes a [`Parsed::Error`].
pub(crate) struct Failure {
    pub(crate) error: ProtocolError,
    /// Data-block bytes to drop after the line.
    pub(crate) swallow: usize,
    /// The command said `noreply` and memcached suppresses this error.
    pub(crate) silent: bool,
}

impl Failure {
    pub(crate) fn new(error: ProtocolError) -> Self {
        Failure {
            error,
            swallow: 0,
            silent: false,
        }
    }

    fn silent_if(mut self, noreply: bool) -> Self {
        self.silent = noreply;
        self
    }

    fn into_parsed<'a>(self, consumed: usize) -> Parsed<'a> {
        Parsed::Error {
            error: self.error,
            consumed,
            swallow: self.swallow,
            close: false,
            silent: self.silent,
        }
    }
}

impl From<ProtocolError> for Failure {
    fn from(error: ProtocolError) -> Self {
        Failure::new(error)
    }
}

/// A data block after a command line: complete, still arriving, or not ended by `\r\n`.
pub(crate) enum DataBlock<'a> {
    Complete {
        value: &'a [u8],
        consumed: usize,
    },
    Incomplete {
        needed: usize,
    },
    /// memcached read `len + 2` bytes whose last two are not `\r\n`: it answers `CLIENT_ERROR
    /// bad data chunk` and parses what follows them as commands.
    BadChunk {
        consumed: usize,
    },
}

/// The data block of `len` bytes (plus `\r\n`) starting at `start`.
pub(crate) fn data_block(input: &[u8], start: usize, len: usize) -> DataBlock<'_> {
    let total = start.saturating_add(len).saturating_add(2);
    if input.len() < total {
        return DataBlock::Incomplete { needed: total };
    }
    if &input[total - 2..total] != b"\r\n" {
        return DataBlock::BadChunk { consumed: total };
    }
    DataBlock::Complete {
        value: &input[start..start + len],
        consumed: total,
    }
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

/// proto_text.c's `WANT_TOKENS`-style checks answer `ERROR`.
fn want(condition: bool) -> Result<(), Failure> {
    if condition {
        Ok(())
    } else {
        Err(Failure::new(ProtocolError::UnknownCommand))
    }
}

impl<'i> Command<'i, '_> {
    fn parse(&self) -> Result<Parsed<'i>, Failure> {
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
            _ => Err(ProtocolError::UnknownCommand.into()),
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
    fn key(&self, noreply: bool) -> Result<&'i [u8], Failure> {
        let key = self.tokens.get(1);
        if key.len() > KEY_MAX_LEN {
            return Err(Failure::new(ProtocolError::BadCommandLine).silent_if(noreply));
        }
        Ok(key)
    }

    /// `get|gets|bget <key>+`, `gat|gats <exptime> <key>+`.
    fn get(&self, kind: GetKind) -> Result<Parsed<'i>, Failure> {
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
    fn store(&self, command: StoreCommand) -> Result<Parsed<'i>, Failure> {
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
        let len = match usize::try_from(len) {
            Ok(len) if len <= i32::MAX as usize - 2 => len,
            _ => return Err(bad_line()),
        };
        if len > self.limits.max_value {
            return Err(Failure {
                error: ProtocolError::ValueTooLarge,
                swallow: len + 2,
                silent: noreply,
            });
        }
        match data_block(self.input, self.line_consumed, len) {
            DataBlock::Complete { value, consumed } => Ok(Parsed::Request {
                request: Request::Store {
                    command,
                    key,
                    flags,
                    exptime: i64::from(exptime),
                    value,
                    cas,
                    noreply,
                },
                consumed,
            }),
            DataBlock::Incomplete { needed } => Ok(Parsed::Incomplete { needed }),
            DataBlock::BadChunk { consumed } => Ok(Parsed::Error {
                error: ProtocolError::BadDataChunk,
                consumed,
                swallow: 0,
                close: false,
                silent: noreply,
            }),
        }
    }

    /// `delete <key> [0] [noreply]`, with `process_delete_command`'s exact rules.
    fn delete(&self) -> Result<Parsed<'i>, Failure> {
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
    fn arith(&self, incr: bool) -> Result<Parsed<'i>, Failure> {
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
    fn touch(&self) -> Result<Parsed<'i>, Failure> {
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
    fn flush_all(&self) -> Result<Parsed<'i>, Failure> {
        let ntokens = self.tokens.ntokens();
        want((2..=4).contains(&ntokens))?;
        let noreply = self.noreply();
        let delay = if ntokens != if noreply { 3 } else { 2 } {
            safe_strtol(self.tokens.get(1))
                .ok_or_else(|| Failure::new(ProtocolError::InvalidExptime).silent_if(noreply))?
        } else {
            0
        };
        Ok(self.done(Request::FlushAll {
            delay: i64::from(delay),
            noreply,
        }))
    }

    /// `verbosity <level> [noreply]`; `verbosity noreply` is a silent error, as on 1.6.18.
    fn verbosity(&self) -> Result<Parsed<'i>, Failure> {
        let ntokens = self.tokens.ntokens();
        want(ntokens == 3 || ntokens == 4)?;
        let noreply = self.noreply();
        let level = safe_strtoul(self.tokens.get(1))
            .ok_or_else(|| Failure::new(ProtocolError::BadCommandLine).silent_if(noreply))?;
        Ok(self.done(Request::Verbosity { level, noreply }))
    }

    /// `shutdown [graceful]`.
    fn shutdown(&self) -> Result<Parsed<'i>, Failure> {
        match (self.tokens.ntokens(), self.tokens.get(1)) {
            (2, _) => Ok(self.done(Request::Shutdown { graceful: false })),
            (3, b"graceful") => Ok(self.done(Request::Shutdown { graceful: true })),
            _ => Err(ProtocolError::InvalidShutdownMode.into()),
        }
    }

    /// `cache_memlimit <megabytes> [noreply]`: a bad number answers `ERROR`, as on 1.6.18.
    fn cache_memlimit(&self) -> Result<Parsed<'i>, Failure> {
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
            b"reset" => StatsGroup::Reset,
            other => StatsGroup::Other(other),
        }
    }

    /// `me <key> [b]`: only a `b` right after the key counts; anything else is ignored.
    fn meta_debug(&self) -> Result<Parsed<'i>, Failure> {
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

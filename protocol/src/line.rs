//! The pieces both text parsers share: what parsing gives ([`Parsed`]), the limits it
//! enforces, a command line split into tokens, the error a line turns into before it becomes a
//! [`Parsed::Error`], and the data block after a storage line.
//!
//! Owns: those types and their rules (memcached's `tokenize_command` and data-chunk checks).
//! Must not touch: what any command means (`parse` for the classic text commands, `meta_parse`
//! for the meta ones); both use this module and neither uses the other's internals.

use memchr::memchr;

use crate::error::ProtocolError;
use crate::meta::MetaSetMode;
use crate::request::{Key, Request, StoreCommand};

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
    /// Parse ElastiCache's `config get|set|delete` (a server that serves a cluster's node
    /// list). Off, `config` is an unknown command, as on memcached, so a `config set`'s data
    /// block is read as commands just as memcached reads it.
    pub config_commands: bool,
}

impl Default for ParserLimits {
    fn default() -> Self {
        ParserLimits {
            max_line: 2048,
            max_key_list_line: 1 << 20,
            max_value: 1 << 20,
            config_commands: false,
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
        /// The refused command, where memcached does more than answer (the server acts on
        /// it; the parser only says what it was).
        refused: Refused<'a>,
    },
}

/// What a refused command was, for the errors after which memcached does more than reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Refused<'a> {
    /// Nothing beyond the reply.
    #[default]
    Nothing,
    /// A storage command whose value is over the item size limit. memcached counts
    /// `store_too_large` and, for some commands, drops the key's old item so that no stale
    /// value stays readable (which ones is the server's rule).
    TooLarge { key: Key<'a>, store: TooLargeStore },
    /// `flush_all` with a bad delay: memcached still counts it in `cmd_flush`, and a server
    /// that has flush_all disabled says so before it looks at the delay.
    FlushAll,
}

/// The storage command of a [`Refused::TooLarge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooLargeStore {
    /// A classic text storage command.
    Text(StoreCommand),
    /// `ms`, in the mode it asked for.
    Meta(MetaSetMode),
}

/// memcached's `MAX_TOKENS` is 24 including its terminal token: it splits at most 23 tokens
/// and leaves the rest of the line unsplit (only `get` looks at it).
pub(crate) const MAX_SPLIT_TOKENS: usize = 23;

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
    pub(crate) fn split(line: &'a [u8], limit: usize) -> Self {
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
    pub(crate) fn last(&self) -> &'a [u8] {
        self.get(self.count.wrapping_sub(1))
    }
}

/// An error found on a command line, before it becomes a [`Parsed::Error`].
pub(crate) struct Failure<'a> {
    pub(crate) error: ProtocolError,
    /// Data-block bytes to drop after the line.
    pub(crate) swallow: usize,
    /// The command said `noreply` and memcached suppresses this error.
    pub(crate) silent: bool,
    pub(crate) refused: Refused<'a>,
}

impl<'a> Failure<'a> {
    pub(crate) fn new(error: ProtocolError) -> Self {
        Failure {
            error,
            swallow: 0,
            silent: false,
            refused: Refused::Nothing,
        }
    }

    pub(crate) fn silent_if(mut self, noreply: bool) -> Self {
        self.silent = noreply;
        self
    }

    pub(crate) fn refusing(mut self, refused: Refused<'a>) -> Self {
        self.refused = refused;
        self
    }

    pub(crate) fn into_parsed(self, consumed: usize) -> Parsed<'a> {
        Parsed::Error {
            error: self.error,
            consumed,
            swallow: self.swallow,
            close: false,
            silent: self.silent,
            refused: self.refused,
        }
    }
}

impl From<ProtocolError> for Failure<'_> {
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

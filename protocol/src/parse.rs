//! The server-side parser: bytes from a client in, one request (or `Incomplete`, or an error
//! with memcached's reply) out, borrowing keys and values from the input.
//!
//! Owns: tokenising command lines, numbers as memcached reads them, key checks, data blocks,
//! how much input a request or an error consumes, and when an error closes the connection.
//! Must not touch: I/O, storage, reply formatting.

use crate::error::ProtocolError;
use crate::request::Request;

/// Limits the parser enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParserLimits {
    /// A command line without a newline longer than this closes the connection (memcached:
    /// 2048), except `get`/`gets`/`gat`/`gats` key lists.
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
pub fn parse_request<'a>(input: &'a [u8], limits: &ParserLimits) -> Parsed<'a> {
    let _ = (input, limits, ProtocolError::UnknownCommand);
    todo!("protocol parser")
}

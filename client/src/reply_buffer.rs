//! The read side every connection shares, blocking or async: a buffer of bytes read from the
//! server and the protocol crate's incremental parser run over its front.
//!
//! Owns: buffer growth and compaction, turning error lines into [`ClientError::Server`], telling
//! the caller how many bytes the next reply still needs. Must not touch: sockets (the caller
//! reads into [`ReplyBuffer::spare`] with whatever I/O it has), what a reply means to a command.

use crate::error::{ClientError, ServerErrorKind};
use ferrocache_protocol::client::{
    ConfigReply, ParsedReply, Reply, ReplyError, parse_config_reply, parse_reply,
};

/// Read buffer growth step; replies larger than this grow the buffer to their size.
const READ_CHUNK: usize = 16 * 1024;

/// The most a reply may need buffered: memcached's largest item (1 GiB) and its lines.
const MAX_REPLY_BYTES: usize = (1 << 30) + 64 * 1024;

/// What one parse of the buffered bytes gave.
pub(crate) enum Parsed<T> {
    /// A whole reply unit was there and `handle` turned it into this (or an error line did).
    Reply(Result<T, ClientError>),
    /// Read more: at least this many unparsed bytes are needed.
    Needs(usize),
}

#[derive(Debug)]
pub(crate) struct ReplyBuffer {
    input: Vec<u8>,
    /// Unparsed bytes are `input[start..end]`.
    start: usize,
    end: usize,
}

impl ReplyBuffer {
    pub(crate) fn new() -> Self {
        ReplyBuffer {
            input: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
        }
    }

    /// Parses the reply unit at the front. Error lines (`ERROR`, `CLIENT_ERROR`,
    /// `SERVER_ERROR`) become [`ClientError::Server`] without reaching `handle`; bytes that are
    /// no reply at all are a [`ClientError::Protocol`].
    pub(crate) fn parse<T>(
        &mut self,
        server: &str,
        handle: impl FnOnce(Reply<'_>) -> Result<T, ClientError>,
    ) -> Result<Parsed<T>, ClientError> {
        match parse_reply(&self.input[self.start..self.end]) {
            Ok(ParsedReply::Complete { reply, consumed }) => {
                let result = match reply {
                    Reply::Error(text) => Err(server_error(server, ServerErrorKind::Error, text)),
                    Reply::ClientError(text) => {
                        Err(server_error(server, ServerErrorKind::ClientError, text))
                    }
                    Reply::ServerError(text) => {
                        Err(server_error(server, ServerErrorKind::ServerError, text))
                    }
                    reply => handle(reply),
                };
                self.start += consumed;
                Ok(Parsed::Reply(result))
            }
            Ok(ParsedReply::Incomplete { needed }) => Ok(Parsed::Needs(needed)),
            Err(source) => Err(ClientError::Protocol {
                server: server.to_owned(),
                source,
            }),
        }
    }

    /// Parses the answer to `config get` at the front: the `CONFIG` block's data (copied out),
    /// or the error line a server without a config sends as [`ClientError::Server`].
    pub(crate) fn parse_config(&mut self, server: &str) -> Result<Parsed<Vec<u8>>, ClientError> {
        let parsed = parse_config_reply(&self.input[self.start..self.end]).map_err(|source| {
            ClientError::Protocol {
                server: server.to_owned(),
                source,
            }
        })?;
        match parsed {
            ParsedReply::Complete { reply, consumed } => {
                let result = match reply {
                    ConfigReply::Config { data, .. } => Ok(data.to_vec()),
                    ConfigReply::Other(Reply::Error(text)) => {
                        Err(server_error(server, ServerErrorKind::Error, text))
                    }
                    ConfigReply::Other(Reply::ClientError(text)) => {
                        Err(server_error(server, ServerErrorKind::ClientError, text))
                    }
                    ConfigReply::Other(Reply::ServerError(text)) => {
                        Err(server_error(server, ServerErrorKind::ServerError, text))
                    }
                    ConfigReply::Other(other) => Err(ClientError::UnexpectedReply {
                        server: server.to_owned(),
                        command: "config get",
                        reply: format!("{other:?}"),
                    }),
                };
                self.start += consumed;
                Ok(Parsed::Reply(result))
            }
            ParsedReply::Incomplete { needed } => Ok(Parsed::Needs(needed)),
        }
    }

    /// Makes room for `needed` unparsed bytes: moves them to the front and grows the buffer if
    /// the reply is bigger than it. A reply that claims more than memcached's largest item
    /// (1 GiB, `-I 1024m`) is malformed: its length comes off the network, and growing the
    /// buffer to it would abort the process.
    pub(crate) fn make_room(&mut self, needed: usize, server: &str) -> Result<(), ClientError> {
        if needed > MAX_REPLY_BYTES {
            return Err(ClientError::Protocol {
                server: server.to_owned(),
                source: ReplyError::Malformed("a reply longer than memcached's largest item"),
            });
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.start + needed > self.input.len() {
            self.input.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if needed > self.input.len() {
                self.input.resize(needed.max(self.input.len() * 2), 0);
            }
        }
        if self.end == self.input.len() {
            self.input.resize(self.input.len() + READ_CHUNK, 0);
        }
        Ok(())
    }

    /// Whether fewer than `needed` unparsed bytes are buffered.
    pub(crate) fn lacks(&self, needed: usize) -> bool {
        self.end - self.start < needed
    }

    /// Free space to read into (call [`ReplyBuffer::make_room`] first), then
    /// [`ReplyBuffer::filled`] with the count read.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        &mut self.input[self.end..]
    }

    pub(crate) fn filled(&mut self, read: usize) {
        self.end += read;
    }

    /// Nothing unparsed is buffered.
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Gives back memory a large reply grew the buffer to.
    pub(crate) fn shrink(&mut self) {
        if self.input.len() > 4 * READ_CHUNK && self.start == self.end {
            self.input = vec![0; READ_CHUNK];
            self.start = 0;
            self.end = 0;
        }
    }
}

fn server_error(server: &str, kind: ServerErrorKind, text: &[u8]) -> ClientError {
    ClientError::Server {
        server: server.to_owned(),
        kind,
        message: String::from_utf8_lossy(text).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_claiming_more_than_the_largest_item_is_refused_not_allocated() {
        let mut buffer = ReplyBuffer::new();
        // `CONFIG cluster 0 9223372036854775808` asks for this much.
        let error = buffer.make_room(1 << 63, "node").unwrap_err();
        assert!(matches!(error, ClientError::Protocol { .. }), "{error}");
        buffer
            .make_room(1024, "node")
            .expect("an ordinary reply fits");
    }
}

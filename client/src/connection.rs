//! One blocking TCP connection to one server: a write buffer requests are encoded into, a read
//! buffer replies are parsed from, and the timeouts.
//!
//! Owns: socket setup (connect timeout, read/write timeouts, `TCP_NODELAY`), buffering, turning
//! I/O failures into [`ClientError`]s. Must not touch: which server a key goes to (the ring),
//! what a reply means for a command (the client).

use crate::error::{ClientError, ServerErrorKind};
use ferrocache_protocol::client::{ParsedReply, Reply, parse_reply};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Timeouts for one connection; `None` waits forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Option<Duration>,
    pub read: Option<Duration>,
    pub write: Option<Duration>,
}

impl Default for Timeouts {
    /// One second each: a cache that takes longer is better treated as down.
    fn default() -> Self {
        let second = Some(Duration::from_secs(1));
        Timeouts {
            connect: second,
            read: second,
            write: second,
        }
    }
}

/// Read buffer growth step; replies larger than this grow the buffer to their size.
const READ_CHUNK: usize = 16 * 1024;

/// A connection and its buffers.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    /// `host:port`, for errors.
    server: String,
    /// Requests encoded and not yet sent.
    pub(crate) out: Vec<u8>,
    input: Vec<u8>,
    /// Unparsed bytes are `input[start..end]`.
    start: usize,
    end: usize,
    /// Replies may still be on their way for requests already sent: not reusable.
    out_of_step: bool,
}

impl Connection {
    /// Connects to `server` (`host:port`), trying each address it resolves to.
    pub fn connect(server: &str, timeouts: &Timeouts) -> Result<Self, ClientError> {
        let addresses = server
            .to_socket_addrs()
            .map_err(|_| ClientError::Unresolvable {
                server: server.to_owned(),
            })?;
        let mut last_error = None;
        for address in addresses {
            let attempt = match timeouts.connect {
                Some(timeout) => TcpStream::connect_timeout(&address, timeout),
                None => TcpStream::connect(address),
            };
            match attempt {
                Ok(stream) => return Self::from_stream(stream, server, timeouts),
                Err(error) => last_error = Some(error),
            }
        }
        Err(match last_error {
            Some(error) => ClientError::from_io(server, "connecting to", error),
            None => ClientError::Unresolvable {
                server: server.to_owned(),
            },
        })
    }

    fn from_stream(
        stream: TcpStream,
        server: &str,
        timeouts: &Timeouts,
    ) -> Result<Self, ClientError> {
        let setup = |error| ClientError::from_io(server, "connecting to", error);
        stream.set_read_timeout(timeouts.read).map_err(setup)?;
        stream.set_write_timeout(timeouts.write).map_err(setup)?;
        // Requests are small and answered at once: Nagle would add 40 ms to each.
        stream.set_nodelay(true).map_err(setup)?;
        Ok(Connection {
            stream,
            server: server.to_owned(),
            out: Vec::with_capacity(1024),
            input: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            out_of_step: false,
        })
    }

    /// The server this connection talks to.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The write buffer: encode requests into it (several, to pipeline them), then
    /// [`Connection::flush`].
    pub fn write_buffer(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Sends everything encoded into the write buffer.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        let result = self.stream.write_all(&self.out);
        self.out.clear();
        result.map_err(|error| ClientError::from_io(&self.server, "writing to", error))
    }

    /// Reads the next reply unit and hands it to `handle`, which turns it into something that
    /// outlives the buffer. Error lines (`ERROR`, `CLIENT_ERROR`, `SERVER_ERROR`) become
    /// [`ClientError::Server`] without reaching `handle`.
    pub fn read_reply<T>(
        &mut self,
        mut handle: impl FnMut(Reply<'_>) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        loop {
            match parse_reply(&self.input[self.start..self.end]) {
                Ok(ParsedReply::Complete { reply, consumed }) => {
                    let result = match reply {
                        Reply::Error(text) => Err(self.server_error(ServerErrorKind::Error, text)),
                        Reply::ClientError(text) => {
                            Err(self.server_error(ServerErrorKind::ClientError, text))
                        }
                        Reply::ServerError(text) => {
                            Err(self.server_error(ServerErrorKind::ServerError, text))
                        }
                        reply => handle(reply),
                    };
                    self.start += consumed;
                    return result;
                }
                Ok(ParsedReply::Incomplete { needed }) => self.fill(needed)?,
                Err(source) => {
                    return Err(ClientError::Protocol {
                        server: self.server.clone(),
                        source,
                    });
                }
            }
        }
    }

    fn server_error(&self, kind: ServerErrorKind, text: &[u8]) -> ClientError {
        ClientError::Server {
            server: self.server.clone(),
            kind,
            message: String::from_utf8_lossy(text).into_owned(),
        }
    }

    /// Reads until at least `needed` unparsed bytes are buffered.
    fn fill(&mut self, needed: usize) -> Result<(), ClientError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.start + needed > self.input.len() {
            // Move the unparsed bytes to the front, then grow if the reply is bigger still.
            self.input.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if needed > self.input.len() {
                self.input.resize(needed.max(self.input.len() * 2), 0);
            }
        }
        while self.end - self.start < needed {
            if self.end == self.input.len() {
                self.input.resize(self.input.len() + READ_CHUNK, 0);
            }
            match self.stream.read(&mut self.input[self.end..]) {
                Ok(0) => {
                    return Err(ClientError::ConnectionClosed {
                        server: self.server.clone(),
                    });
                }
                Ok(n) => self.end += n,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => {
                    return Err(ClientError::from_io(&self.server, "reading from", error));
                }
            }
        }
        Ok(())
    }

    /// Marks the connection as unusable for further requests: a caller stopped reading before
    /// every request sent was answered.
    pub fn mark_out_of_step(&mut self) {
        self.out_of_step = true;
    }

    /// Whether the next reply read would answer the next request sent: nothing unread is
    /// buffered and no caller gave up half way.
    pub(crate) fn in_step(&self) -> bool {
        self.start == self.end && !self.out_of_step
    }

    /// Gives back memory a large reply grew the read buffer to.
    pub(crate) fn shrink(&mut self) {
        if self.input.len() > 4 * READ_CHUNK && self.start == self.end {
            self.input = vec![0; READ_CHUNK];
            self.start = 0;
            self.end = 0;
        }
    }
}

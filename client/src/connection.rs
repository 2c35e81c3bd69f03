//! One blocking TCP connection to one server: a write buffer requests are encoded into, a read
//! buffer replies are parsed from, and the timeouts.
//!
//! Owns: socket setup (connect timeout, read/write timeouts, `TCP_NODELAY`), buffering, turning
//! I/O failures into [`ClientError`]s. Must not touch: which server a key goes to (the ring),
//! what a reply means for a command (the client).

use crate::error::ClientError;
use crate::reply_buffer::{Parsed, ReplyBuffer};
use ferrocache_protocol::client::Reply;
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

/// A connection and its buffers.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    /// `host:port`, for errors.
    server: String,
    /// Requests encoded and not yet sent.
    pub(crate) out: Vec<u8>,
    input: ReplyBuffer,
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
            input: ReplyBuffer::new(),
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
            match self.input.parse(&self.server, &mut handle)? {
                Parsed::Reply(result) => return result,
                Parsed::Needs(needed) => self.fill(needed)?,
            }
        }
    }

    /// Reads the answer to a `config get` sent on this connection: the `CONFIG` block's data.
    pub fn read_config(&mut self) -> Result<Vec<u8>, ClientError> {
        loop {
            match self.input.parse_config(&self.server)? {
                Parsed::Reply(result) => return result,
                Parsed::Needs(needed) => self.fill(needed)?,
            }
        }
    }

    /// Reads until at least `needed` unparsed bytes are buffered.
    fn fill(&mut self, needed: usize) -> Result<(), ClientError> {
        while self.input.lacks(needed) {
            self.input.make_room(needed, &self.server)?;
            match self.stream.read(self.input.spare()) {
                Ok(0) => {
                    return Err(ClientError::ConnectionClosed {
                        server: self.server.clone(),
                    });
                }
                Ok(n) => self.input.filled(n),
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
        self.input.is_empty() && !self.out_of_step
    }

    /// Gives back memory a large reply grew the read buffer to.
    pub(crate) fn shrink(&mut self) {
        self.input.shrink();
    }
}

//! One connection's TLS: a rustls `ServerConnection` driven over the connection's non-blocking
//! socket by the connection's own reads and writes.
//!
//! Owns: moving records between the socket and rustls, the handshake's messages and alerts,
//! telling the connection when the socket is drained (mio is edge-triggered) and whether the
//! handshake finished. Must not touch: the plaintext buffers (the connection lends them).
//!
//! Every failure is this connection's alone: a bad record, plaintext on a TLS port or a cut
//! handshake comes back as an error, rustls queues the alert, and the connection closes.

use crate::listener::Stream;
use rustls::{ServerConfig, ServerConnection};
use std::io::{self, Read, Write};
use std::sync::Arc;

/// What one read gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Plaintext bytes put in the buffer; 0 when the peer has closed.
    pub bytes: usize,
    /// The socket returned less than was asked and rustls holds no more plaintext: the next
    /// readable edge says when more arrives.
    pub drained: bool,
}

/// A connection's TLS state.
pub struct TlsSession {
    conn: ServerConnection,
    /// Plaintext rustls has decrypted and the connection has not taken yet.
    plaintext_pending: usize,
    /// The last socket read returned less than it asked for.
    socket_drained: bool,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
            .field("plaintext_pending", &self.plaintext_pending)
            .finish()
    }
}

/// The socket as rustls reads it, remembering whether the read was short.
struct SocketReader<'a> {
    stream: &'a mut Stream,
    short: bool,
}

impl Read for SocketReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}

impl TlsSession {
    pub fn new(config: Arc<ServerConfig>, wbuf_size: usize) -> Result<TlsSession, rustls::Error> {
        let mut conn = ServerConnection::new(config)?;
        // Encrypted replies waiting for the socket: at most one `ssl_wbuf_size` batch, so the
        // connection's own output buffer stays the measure of back-pressure.
        conn.set_buffer_limit(Some(wbuf_size));
        Ok(TlsSession {
            conn,
            plaintext_pending: 0,
            socket_drained: false,
        })
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Encrypted bytes are waiting for the socket.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Decrypted bytes into `room`, reading records from the socket only when rustls has no
    /// plaintext; handshake messages are answered on the way. `WouldBlock` when the socket has
    /// nothing more.
    pub fn read(&mut self, stream: &mut Stream, room: &mut [u8]) -> io::Result<Received> {
        loop {
            if self.plaintext_pending > 0 {
                let n = self.conn.reader().read(room)?;
                self.plaintext_pending -= n.min(self.plaintext_pending);
                return Ok(Received {
                    bytes: n,
                    drained: self.socket_drained && self.plaintext_pending == 0,
                });
            }
            let mut reader = SocketReader {
                stream,
                short: false,
            };
            let got = match self.conn.read_tls(&mut reader) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.socket_drained = true;
                    return Err(e);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.socket_drained = reader.short;
            if got == 0 {
                return Ok(Received {
                    bytes: 0,
                    drained: true,
                });
            }
            let state = match self.conn.process_new_packets() {
                Ok(state) => state,
                Err(error) => {
                    // The alert rustls queued tells the peer why; best effort.
                    let _ = self.flush(stream);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, error));
                }
            };
            self.plaintext_pending = state.plaintext_bytes_to_read();
            // Handshake replies, tickets, alerts: out now, or on the next writable edge.
            self.flush(stream)?;
            if state.peer_has_closed() && self.plaintext_pending == 0 {
                return Ok(Received {
                    bytes: 0,
                    drained: true,
                });
            }
            // No plaintext yet (a partial record, or handshake messages): read again, even
            // after a short read, since only the socket can tell a close already pending
            // (a hangup's edge has come once) from nothing more to read.
        }
    }

    /// Encrypts from `plaintext` and writes records while the socket takes them. Returns the
    /// plaintext bytes taken: sent, or encrypted and waiting (at most one `ssl_wbuf_size`).
    pub fn write(&mut self, stream: &mut Stream, plaintext: &[u8]) -> io::Result<usize> {
        let mut taken = 0;
        loop {
            if !self.flush(stream)? || taken == plaintext.len() {
                return Ok(taken);
            }
            let n = self.conn.writer().write(&plaintext[taken..])?;
            if n == 0 {
                return Ok(taken);
            }
            taken += n;
        }
    }

    /// Writes the queued records; false if the socket would block first.
    pub fn flush(&mut self, stream: &mut Stream) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// As the connection closes: a close_notify after a finished handshake (memcached's
    /// SSL_shutdown), and whatever alert is queued. Best effort, never blocks.
    pub fn close(&mut self, stream: &mut Stream) {
        if !self.conn.is_handshaking() {
            self.conn.send_close_notify();
        }
        let _ = self.flush(stream);
    }
}

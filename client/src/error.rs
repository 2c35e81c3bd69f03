//! The errors a caller of the client sees, one variant per thing they may want to handle
//! differently: the server said no, the network timed out or refused, the stream went wrong.
//!
//! Owns: the error enum, the mapping of I/O errors onto it, and which errors count as a server
//! failing. Must not touch: retries or server ejection (the `topology` module decides).

use ferrocache_protocol::client::{EncodeError, ReplyError};
use std::io;
use thiserror::Error;

/// Which error line the server sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerErrorKind {
    /// `ERROR`: the server does not know the command.
    Error,
    /// `CLIENT_ERROR`: the server blames the request.
    ClientError,
    /// `SERVER_ERROR`: the server could not do it (out of memory, value too large ...).
    ServerError,
}

impl std::fmt::Display for ServerErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServerErrorKind::Error => "ERROR",
            ServerErrorKind::ClientError => "CLIENT_ERROR",
            ServerErrorKind::ServerError => "SERVER_ERROR",
        })
    }
}

/// Everything that can go wrong talking to memcached servers.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The server answered with an error line; `message` is its text.
    #[error("{server} answered {kind} {message}")]
    Server {
        server: String,
        kind: ServerErrorKind,
        message: String,
    },
    /// Connecting, reading or writing took longer than its timeout.
    #[error("timed out {during} {server}")]
    Timeout {
        server: String,
        /// `connecting to`, `reading from` or `writing to`.
        during: &'static str,
    },
    #[error("connection to {server} refused")]
    ConnectionRefused { server: String },
    /// The server closed the connection in the middle of a reply (or before one).
    #[error("{server} closed the connection")]
    ConnectionClosed { server: String },
    #[error("I/O error with {server}: {source}")]
    Io {
        server: String,
        #[source]
        source: io::Error,
    },
    /// Bytes from the server that are not a memcached reply: the connection is dropped.
    #[error("protocol error from {server}: {source}")]
    Protocol {
        server: String,
        #[source]
        source: ReplyError,
    },
    /// A well-formed reply that does not answer the command sent (`STORED` to a `get` ...).
    #[error("unexpected reply from {server} to {command}: {reply}")]
    UnexpectedReply {
        server: String,
        command: &'static str,
        reply: String,
    },
    /// The request cannot be written (a key with a space, longer than 250 bytes ...).
    #[error("invalid request: {0}")]
    InvalidRequest(#[from] EncodeError),
    #[error("bad server list: {0}")]
    Ring(#[from] crate::ketama::RingError),
    /// A server name that does not resolve to any address.
    #[error("cannot resolve {server}")]
    Unresolvable { server: String },
    /// Every server is out of the ring after failing (`FailurePolicy`); they come back after
    /// their retry interval.
    #[error("every server is out of service after failing")]
    NoLiveServers,
    /// The config endpoint's answer to `config get cluster` is unusable (`ERROR` from a server
    /// without a cluster config is a [`ClientError::Server`]).
    #[error("auto discovery from {endpoint}: {reason}")]
    Discovery { endpoint: String, reason: String },
}

impl ClientError {
    /// Maps an I/O error onto the variants callers match on.
    pub(crate) fn from_io(server: &str, during: &'static str, error: io::Error) -> Self {
        let server = server.to_owned();
        match error.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                ClientError::Timeout { server, during }
            }
            io::ErrorKind::ConnectionRefused => ClientError::ConnectionRefused { server },
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe => ClientError::ConnectionClosed { server },
            _ => ClientError::Io {
                server,
                source: error,
            },
        }
    }

    /// Whether this error says the server (or the way to it) failed: refused, timed out,
    /// reset, unresolvable. These count towards taking a server out of the ring; an answer
    /// the server gave (even an error line) does not.
    pub(crate) fn is_server_failure(&self) -> bool {
        matches!(
            self,
            ClientError::Timeout { .. }
                | ClientError::ConnectionRefused { .. }
                | ClientError::ConnectionClosed { .. }
                | ClientError::Io { .. }
                | ClientError::Unresolvable { .. }
        )
    }

    /// Whether the connection that produced this error can still be used: only when the
    /// server answered with a complete error line, or the request was refused before sending.
    pub(crate) fn keeps_connection(&self) -> bool {
        matches!(
            self,
            ClientError::Server { .. } | ClientError::InvalidRequest(_)
        )
    }
}

//! Errors in a client's input, each with memcached's exact reply line.
//!
//! Owns: the error enum and its reply bytes. Must not touch: how much input an error consumes
//! (the parser says, in [`crate::Parsed::Error`]).

use thiserror::Error;

/// Something wrong with a request. `Display` is the reply line without `\r\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// Unknown command, empty line, wrong number of tokens: `ERROR`.
    #[error("ERROR")]
    UnknownCommand,
    /// `CLIENT_ERROR bad command line format`.
    #[error("CLIENT_ERROR bad command line format")]
    BadCommandLine,
    /// `delete <key> <non-zero>`.
    #[error("CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]")]
    BadDeleteUsage,
    /// The data block is not followed by `\r\n`.
    #[error("CLIENT_ERROR bad data chunk")]
    BadDataChunk,
    /// `CLIENT_ERROR invalid exptime argument`.
    #[error("CLIENT_ERROR invalid exptime argument")]
    InvalidExptime,
    /// `CLIENT_ERROR invalid numeric delta argument`.
    #[error("CLIENT_ERROR invalid numeric delta argument")]
    InvalidDelta,
    /// Meta: unknown, duplicate or malformed flag.
    #[error("CLIENT_ERROR invalid flag")]
    InvalidFlag,
    /// Meta: opaque longer than 32 bytes.
    #[error("CLIENT_ERROR opaque token too long")]
    OpaqueTooLong,
    /// Meta: a key that is not valid base64 with `b`.
    #[error("CLIENT_ERROR error decoding key")]
    BadBase64Key,
    /// A line over the length limit without a newline (the connection is closed).
    #[error("CLIENT_ERROR line too long")]
    LineTooLong,
    /// A value larger than the server's item size limit: its data block is swallowed.
    #[error("SERVER_ERROR object too large for cache")]
    ValueTooLarge,
}

impl ProtocolError {
    /// The reply line, `\r\n` included.
    pub fn reply(&self) -> &'static [u8] {
        match self {
            ProtocolError::UnknownCommand => b"ERROR\r\n",
            ProtocolError::BadCommandLine => b"CLIENT_ERROR bad command line format\r\n",
            ProtocolError::BadDeleteUsage => {
                b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
            }
            ProtocolError::BadDataChunk => b"CLIENT_ERROR bad data chunk\r\n",
            ProtocolError::InvalidExptime => b"CLIENT_ERROR invalid exptime argument\r\n",
            ProtocolError::InvalidDelta => b"CLIENT_ERROR invalid numeric delta argument\r\n",
            ProtocolError::InvalidFlag => b"CLIENT_ERROR invalid flag\r\n",
            ProtocolError::OpaqueTooLong => b"CLIENT_ERROR opaque token too long\r\n",
            ProtocolError::BadBase64Key => b"CLIENT_ERROR error decoding key\r\n",
            ProtocolError::LineTooLong => b"CLIENT_ERROR line too long\r\n",
            ProtocolError::ValueTooLarge => b"SERVER_ERROR object too large for cache\r\n",
        }
    }
}

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
    /// A line over the length limit without a newline (the connection is closed). memcached
    /// 1.6.18 closes without a word, so the parser marks it `silent`; the text is for logs.
    #[error("CLIENT_ERROR line too long")]
    LineTooLong,
    /// A value larger than the server's item size limit: its data block is swallowed.
    #[error("SERVER_ERROR object too large for cache")]
    ValueTooLarge,
    /// Meta `mg`: a flag letter given twice (or a non-ASCII flag byte).
    #[error("CLIENT_ERROR duplicate flag")]
    DuplicateFlag,
    /// Meta `md`/`ma`: memcached 1.6.18 answers any flag error of theirs with this one text.
    #[error("CLIENT_ERROR invalid or duplicate flag")]
    InvalidOrDuplicateFlag,
    /// Meta: a number after `N`, `T`, `R`, `C` (or `E`) that does not parse.
    #[error("CLIENT_ERROR bad token in command line format")]
    BadFlagToken,
    /// Meta: a `D<delta>` that is not a u64.
    #[error("CLIENT_ERROR invalid numeric delta value")]
    InvalidDeltaValue,
    /// Meta: a `J<initial>` that is not a u64.
    #[error("CLIENT_ERROR invalid numeric initial value")]
    InvalidInitialValue,
    /// Meta: an `M` flag that is not exactly one mode character.
    #[error("CLIENT_ERROR incorrect length for M token")]
    BadModeLength,
    /// `ms` with a mode other than E, A, P, R, S.
    #[error("CLIENT_ERROR invalid mode for ms M token")]
    InvalidSetMode,
    /// `ma` with a mode other than I, +, D, -.
    #[error("CLIENT_ERROR invalid mode for ma M token")]
    InvalidArithMode,
    /// `mg` with 20 or more tokens on its line.
    #[error("CLIENT_ERROR options flags are too long")]
    GetFlagsTooLong,
    /// `ms`/`md`/`ma` with 20 or more tokens on their line (memcached words it differently
    /// from `mg`).
    #[error("CLIENT_ERROR options flags too long")]
    FlagsTooLong,
    /// `shutdown <mode>` with a mode other than `graceful`. memcached checks whether shutdown
    /// is enabled first and answers [`crate::reply::SHUTDOWN_DISABLED`] when it is not: a
    /// server without shutdown should send that instead of this.
    #[error("CLIENT_ERROR invalid shutdown mode")]
    InvalidShutdownMode,
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
            ProtocolError::DuplicateFlag => b"CLIENT_ERROR duplicate flag\r\n",
            ProtocolError::InvalidOrDuplicateFlag => b"CLIENT_ERROR invalid or duplicate flag\r\n",
            ProtocolError::BadFlagToken => b"CLIENT_ERROR bad token in command line format\r\n",
            ProtocolError::InvalidDeltaValue => b"CLIENT_ERROR invalid numeric delta value\r\n",
            ProtocolError::InvalidInitialValue => b"CLIENT_ERROR invalid numeric initial value\r\n",
            ProtocolError::BadModeLength => b"CLIENT_ERROR incorrect length for M token\r\n",
            ProtocolError::InvalidSetMode => b"CLIENT_ERROR invalid mode for ms M token\r\n",
            ProtocolError::InvalidArithMode => b"CLIENT_ERROR invalid mode for ma M token\r\n",
            ProtocolError::GetFlagsTooLong => b"CLIENT_ERROR options flags are too long\r\n",
            ProtocolError::FlagsTooLong => b"CLIENT_ERROR options flags too long\r\n",
            ProtocolError::InvalidShutdownMode => b"CLIENT_ERROR invalid shutdown mode\r\n",
        }
    }
}

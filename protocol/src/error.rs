//! Errors in a client's input, each with memcached's exact reply line.
//!
//! Owns: the error enum and its reply bytes. Must not touch: how much input an error consumes
//! (the parser says, in [`crate::Parsed::Error`]).

/// Something wrong with a request. `Display` is the reply line without `\r\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// Unknown command, empty line, wrong number of tokens: `ERROR`.
    UnknownCommand,
    /// `CLIENT_ERROR bad command line format`.
    BadCommandLine,
    /// `delete <key> <non-zero>`.
    BadDeleteUsage,
    /// The data block is not followed by `\r\n`.
    BadDataChunk,
    /// `CLIENT_ERROR invalid exptime argument`.
    InvalidExptime,
    /// `CLIENT_ERROR invalid numeric delta argument`.
    InvalidDelta,
    /// Meta: unknown, duplicate or malformed flag.
    InvalidFlag,
    /// Meta: opaque longer than 32 bytes.
    OpaqueTooLong,
    /// Meta: a key that is not valid base64 with `b`.
    BadBase64Key,
    /// A line over the length limit without a newline (the connection is closed). memcached
    /// 1.6.18 closes without a word, so the parser marks it `silent`; the text is for logs.
    LineTooLong,
    /// A value larger than the server's item size limit: its data block is swallowed.
    ValueTooLarge,
    /// Meta `mg`: a flag letter given twice (or a non-ASCII flag byte).
    DuplicateFlag,
    /// Meta `md`/`ma`: memcached 1.6.18 answers any flag error of theirs with this one text.
    InvalidOrDuplicateFlag,
    /// Meta: a number after `N`, `T`, `R`, `C` (or `E`) that does not parse.
    BadFlagToken,
    /// Meta: a `D<delta>` that is not a u64.
    InvalidDeltaValue,
    /// Meta: a `J<initial>` that is not a u64.
    InvalidInitialValue,
    /// Meta: an `M` flag that is not exactly one mode character.
    BadModeLength,
    /// `ms` with a mode other than E, A, P, R, S.
    InvalidSetMode,
    /// `ma` with a mode other than I, +, D, -.
    InvalidArithMode,
    /// `mg` with 20 or more tokens on its line.
    GetFlagsTooLong,
    /// `ms`/`md`/`ma` with 20 or more tokens on their line (memcached words it differently
    /// from `mg`).
    FlagsTooLong,
    /// `shutdown <mode>` with a mode other than `graceful`. memcached checks whether shutdown
    /// is enabled first and answers [`crate::reply::SHUTDOWN_DISABLED`] when it is not: a
    /// server without shutdown should send that instead of this.
    InvalidShutdownMode,
    /// `CLIENT_ERROR bad command line` (memcached's `stats cachedump` with too few
    /// arguments, and other places that leave out the word "format").
    BadCommandLineShort,
    /// `stats cachedump` of a class id memcached cannot have.
    IllegalSlabId,
    /// A line that looks like an HTTP request: memcached closes the connection without a
    /// reply (the parser marks it `silent`); the text is for logs.
    HttpRequest,
}

impl ProtocolError {
    /// The reply line, `\r\n` included.
    pub fn reply(&self) -> &'static [u8] {
        self.line().as_bytes()
    }

    /// memcached's text for each error, written once for both `reply` and `Display`.
    fn line(&self) -> &'static str {
        match self {
            ProtocolError::UnknownCommand => "ERROR\r\n",
            ProtocolError::BadCommandLine => "CLIENT_ERROR bad command line format\r\n",
            ProtocolError::BadDeleteUsage => {
                "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
            }
            ProtocolError::BadDataChunk => "CLIENT_ERROR bad data chunk\r\n",
            ProtocolError::InvalidExptime => "CLIENT_ERROR invalid exptime argument\r\n",
            ProtocolError::InvalidDelta => "CLIENT_ERROR invalid numeric delta argument\r\n",
            ProtocolError::InvalidFlag => "CLIENT_ERROR invalid flag\r\n",
            ProtocolError::OpaqueTooLong => "CLIENT_ERROR opaque token too long\r\n",
            ProtocolError::BadBase64Key => "CLIENT_ERROR error decoding key\r\n",
            ProtocolError::LineTooLong => "CLIENT_ERROR line too long\r\n",
            ProtocolError::ValueTooLarge => "SERVER_ERROR object too large for cache\r\n",
            ProtocolError::DuplicateFlag => "CLIENT_ERROR duplicate flag\r\n",
            ProtocolError::InvalidOrDuplicateFlag => "CLIENT_ERROR invalid or duplicate flag\r\n",
            ProtocolError::BadFlagToken => "CLIENT_ERROR bad token in command line format\r\n",
            ProtocolError::InvalidDeltaValue => "CLIENT_ERROR invalid numeric delta value\r\n",
            ProtocolError::InvalidInitialValue => "CLIENT_ERROR invalid numeric initial value\r\n",
            ProtocolError::BadModeLength => "CLIENT_ERROR incorrect length for M token\r\n",
            ProtocolError::InvalidSetMode => "CLIENT_ERROR invalid mode for ms M token\r\n",
            ProtocolError::InvalidArithMode => "CLIENT_ERROR invalid mode for ma M token\r\n",
            ProtocolError::GetFlagsTooLong => "CLIENT_ERROR options flags are too long\r\n",
            ProtocolError::FlagsTooLong => "CLIENT_ERROR options flags too long\r\n",
            ProtocolError::InvalidShutdownMode => "CLIENT_ERROR invalid shutdown mode\r\n",
            ProtocolError::BadCommandLineShort => "CLIENT_ERROR bad command line\r\n",
            ProtocolError::IllegalSlabId => "CLIENT_ERROR Illegal slab id\r\n",
            ProtocolError::HttpRequest => "CLIENT_ERROR this is not an HTTP server\r\n",
        }
    }
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let line = self.line();
        f.write_str(line.strip_suffix("\r\n").unwrap_or(line))
    }
}

impl std::error::Error for ProtocolError {}

#[cfg(test)]
mod tests {
    use super::ProtocolError::*;

    #[test]
    fn display_is_the_reply_line_without_its_newline() {
        for error in [
            UnknownCommand,
            BadCommandLine,
            BadDeleteUsage,
            BadDataChunk,
            InvalidExptime,
            InvalidDelta,
            InvalidFlag,
            OpaqueTooLong,
            LineTooLong,
            ValueTooLarge,
            DuplicateFlag,
            InvalidOrDuplicateFlag,
            BadFlagToken,
            InvalidDeltaValue,
            InvalidInitialValue,
            BadModeLength,
            InvalidSetMode,
            InvalidArithMode,
            GetFlagsTooLong,
            FlagsTooLong,
            InvalidShutdownMode,
            BadCommandLineShort,
            IllegalSlabId,
            HttpRequest,
        ] {
            let reply = error.reply();
            assert!(reply.ends_with(b"\r\n"), "{error:?}");
            assert_eq!(error.to_string().as_bytes(), &reply[..reply.len() - 2]);
        }
    }
}

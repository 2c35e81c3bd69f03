//! memcached 1.6's ASCII authentication exchange (`-Y`), as `try_read_command_asciiauth` in
//! proto_text.c reads it: before a connection has logged in, every line is either a `set`
//! whose data block is `<user> <password>`, or refused.
//!
//! Owns: the exact acceptance rules (the line is split on spaces only; it needs at least five
//! tokens, the first `set`, the fifth a number by `safe_strtoul`; the key, flags and exptime
//! are ignored; the block is that number of bytes plus `\r\n`, the number taken modulo 2^32 as
//! memcached's `uint32_t` does; the block's first two space-separated tokens are the user and
//! the password; a NUL ends a line or a block, as memcached's C strings), and the replies.
//! Must not touch: who may log in (the daemon's `auth` module checks the credentials).

use crate::number::safe_strtoul;
use memchr::memchr;

/// No newline after this many bytes: memcached closes the connection.
pub const MAX_LINE_WITHOUT_NEWLINE: usize = 2048;

/// memcached waits for the block in its 16 KiB read buffer; a block that cannot fit fills the
/// buffer and memcached closes the connection once this much is waiting.
pub const MAX_PENDING: usize = 16 << 10;

pub const UNAUTHENTICATED: &[u8] = b"CLIENT_ERROR unauthenticated\r\n";
pub const AUTHENTICATION_FAILURE: &[u8] = b"CLIENT_ERROR authentication failure\r\n";
pub const BAD_TOKEN_FORMAT: &[u8] = b"CLIENT_ERROR bad authentication token format\r\n";
pub const BAD_TERMINATION: &[u8] = b"CLIENT_ERROR bad command line termination\r\n";

/// What the front of an unauthenticated connection's input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginLine {
    /// No complete line yet.
    Incomplete,
    /// No newline in more than [`MAX_LINE_WITHOUT_NEWLINE`] bytes: close.
    TooLong,
    /// Not a login `set`: answer [`UNAUTHENTICATED`] and drop the line.
    Refused { consumed: usize },
    /// A login `set`: `block` bytes (value and `\r\n`) follow the `consumed` bytes of the line.
    Set { consumed: usize, block: u32 },
}

/// A login's data block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginBlock<'a> {
    /// Not all of it yet.
    Incomplete,
    /// Not ending in `\r\n`: answer [`BAD_TERMINATION`].
    BadTermination { consumed: usize },
    /// Fewer than two tokens: answer [`BAD_TOKEN_FORMAT`].
    BadFormat { consumed: usize },
    /// The credentials to check.
    Credentials {
        consumed: usize,
        user: &'a [u8],
        password: &'a [u8],
    },
}

/// Bytes up to the first NUL, as C string functions see them.
fn c_string(bytes: &[u8]) -> &[u8] {
    memchr(0, bytes).map_or(bytes, |nul| &bytes[..nul])
}

/// The tokens memcached's `tokenize_command` finds: runs of bytes between spaces.
fn tokens(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|&b| b == b' ').filter(|t| !t.is_empty())
}

/// Reads the line at the front of `input` (of a connection not yet logged in).
pub fn parse_login_line(input: &[u8]) -> LoginLine {
    // "impossible for the auth command to be this short"
    if input.len() < 2 {
        return LoginLine::Incomplete;
    }
    let Some(newline) = memchr(b'\n', input) else {
        return if input.len() > MAX_LINE_WITHOUT_NEWLINE {
            LoginLine::TooLong
        } else {
            LoginLine::Incomplete
        };
    };
    let consumed = newline + 1;
    // The `\r` stays in the last token, where `safe_strtoul` takes it for trailing space.
    let mut words = tokens(c_string(&input[..newline]));
    let (first, fifth) = (words.next(), words.nth(3));
    match (first, fifth.and_then(safe_strtoul)) {
        (Some(b"set"), Some(size)) => LoginLine::Set {
            consumed,
            block: size.wrapping_add(2),
        },
        _ => LoginLine::Refused { consumed },
    }
}

/// Reads the `block` bytes a login `set` announced, at the front of `input`.
pub fn parse_login_block(input: &[u8], block: u32) -> LoginBlock<'_> {
    let block = block as usize;
    if input.len() < block {
        return LoginBlock::Incomplete;
    }
    let consumed = block;
    // A block shorter than its `\r\n` (a size of 2^32 - 1 or - 2, wrapped) cannot end in one.
    if block < 2 || &input[block - 2..block] != b"\r\n" {
        return LoginBlock::BadTermination { consumed };
    }
    let mut words = tokens(c_string(&input[..block - 2]));
    match (words.next(), words.next()) {
        (Some(user), Some(password)) => LoginBlock::Credentials {
            consumed,
            user,
            password,
        },
        _ => LoginBlock::BadFormat { consumed },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_line_announces_the_block() {
        assert_eq!(
            parse_login_line(b"set a 0 0 12\r\nalice secret\r\n"),
            LoginLine::Set {
                consumed: 14,
                block: 14
            }
        );
        // Key, flags and exptime are not looked at; a sign and extra tokens are accepted.
        assert_eq!(
            parse_login_line(b"set  a  b c +5 noreply\r\n"),
            LoginLine::Set {
                consumed: 24,
                block: 7
            }
        );
        // memcached's uint32_t: 4294967308 is 12.
        assert_eq!(
            parse_login_line(b"set a 0 0 4294967308\r\n"),
            LoginLine::Set {
                consumed: 22,
                block: 14
            }
        );
        assert_eq!(
            parse_login_line(b"set a 0 0 4294967295\r\n"),
            LoginLine::Set {
                consumed: 22,
                block: 1
            }
        );
    }

    #[test]
    fn anything_else_is_refused_line_by_line() {
        for line in [
            &b"get foo\r\n"[..],
            b"set a 0 0\r\n",
            b"SET a 0 0 12\r\n",
            b"set a 0 0 -1\r\n",
            b"set a 0 0 12abc\r\n",
            b"set\tk 0 0 12\r\n",
            b"set\0 a 0 0 12\r\n",
            b"\r\n",
            b"a\n",
            b"quit\r\n",
        ] {
            assert_eq!(
                parse_login_line(line),
                LoginLine::Refused {
                    consumed: line.len()
                },
                "{line:?}"
            );
        }
        assert_eq!(parse_login_line(b"\n"), LoginLine::Incomplete);
        assert_eq!(parse_login_line(b"set a 0 0 1"), LoginLine::Incomplete);
        assert_eq!(parse_login_line(&[b'x'; 2048]), LoginLine::Incomplete);
        assert_eq!(parse_login_line(&[b'x'; 2049]), LoginLine::TooLong);
    }

    #[test]
    fn the_block_holds_user_and_password() {
        assert_eq!(
            parse_login_block(b"alice secret\r\nget a\r\n", 14),
            LoginBlock::Credentials {
                consumed: 14,
                user: b"alice",
                password: b"secret"
            }
        );
        assert_eq!(
            parse_login_block(b" alice  secret extra\r\n", 22),
            LoginBlock::Credentials {
                consumed: 22,
                user: b"alice",
                password: b"secret"
            }
        );
        assert_eq!(parse_login_block(b"alice sec", 14), LoginBlock::Incomplete);
        assert_eq!(
            parse_login_block(b"alice\tsecret\r\n", 14),
            LoginBlock::BadFormat { consumed: 14 }
        );
        assert_eq!(
            parse_login_block(b"\r\n", 2),
            LoginBlock::BadFormat { consumed: 2 }
        );
        assert_eq!(
            parse_login_block(b"bob hunter2\r\n\r", 14),
            LoginBlock::BadTermination { consumed: 14 }
        );
        assert_eq!(
            parse_login_block(b"ab", 1),
            LoginBlock::BadTermination { consumed: 1 }
        );
        assert_eq!(
            parse_login_block(b"", 0),
            LoginBlock::BadTermination { consumed: 0 }
        );
    }
}

//! The text front's gate on a `-Y` server: until a connection has logged in, its input is
//! memcached 1.6's ASCII login exchange and nothing else.
//!
//! Owns: stepping through the exchange (`ferrocache_protocol::ascii_auth` parses it) and the
//! replies, which are memcached's: `STORED` and the connection is served from then on,
//! `CLIENT_ERROR authentication failure`, `CLIENT_ERROR unauthenticated` for any other line,
//! and the connection stays open after each; only a line without a newline in 2 KiB, or a
//! block that cannot fit memcached's 16 KiB read buffer, closes it. Must not touch: who may log
//! in (the command layer's `authenticate`).
//!
//! One difference: memcached answers only the last of several refused lines that arrive in one
//! read (its pre-login path reuses one reply object); every line is answered here.

use crate::command::Executor;
use ferrocache_protocol::ascii_auth::{
    self, AUTHENTICATION_FAILURE, BAD_TERMINATION, BAD_TOKEN_FORMAT, LoginBlock, LoginLine,
    MAX_PENDING, UNAUTHENTICATED,
};
use ferrocache_protocol::reply;

/// What one step of the exchange did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginStep {
    /// Took `consumed` bytes; `replied` if it wrote a reply (a request's worth of budget).
    Took { consumed: usize, replied: bool },
    /// Logged in after `consumed` bytes: serve the rest as requests.
    LoggedIn { consumed: usize },
    /// Call again once the input holds `total` bytes (0: any more).
    NeedInput { total: usize },
    /// Close the connection.
    Close,
}

/// A connection's place in the exchange: a few bytes, no heap.
#[derive(Debug, Default)]
pub struct AsciiLogin {
    /// Bytes of the data block the last login `set` announced, while it is awaited.
    block: Option<u32>,
}

impl AsciiLogin {
    pub fn step(&mut self, input: &[u8], out: &mut Vec<u8>, exec: &Executor<'_>) -> LoginStep {
        let Some(block) = self.block else {
            return match ascii_auth::parse_login_line(input) {
                LoginLine::Incomplete => LoginStep::NeedInput { total: 0 },
                LoginLine::TooLong => LoginStep::Close,
                LoginLine::Refused { consumed } => {
                    out.extend_from_slice(UNAUTHENTICATED);
                    LoginStep::Took {
                        consumed,
                        replied: true,
                    }
                }
                LoginLine::Set { consumed, block } => {
                    self.block = Some(block);
                    LoginStep::Took {
                        consumed,
                        replied: false,
                    }
                }
            };
        };
        // A block larger than memcached's read buffer never completes there: it closes the
        // connection once the buffer is full, whatever else arrives.
        if block as usize > MAX_PENDING {
            return if input.len() >= MAX_PENDING {
                LoginStep::Close
            } else {
                LoginStep::NeedInput { total: MAX_PENDING }
            };
        }
        let (consumed, reply, logged_in) = match ascii_auth::parse_login_block(input, block) {
            LoginBlock::Incomplete => {
                return LoginStep::NeedInput {
                    total: block as usize,
                };
            }
            LoginBlock::BadTermination { consumed } => (consumed, BAD_TERMINATION, false),
            LoginBlock::BadFormat { consumed } => (consumed, BAD_TOKEN_FORMAT, false),
            LoginBlock::Credentials {
                consumed,
                user,
                password,
            } => {
                if exec.authenticate(user, password) {
                    (consumed, reply::STORED, true)
                } else {
                    (consumed, AUTHENTICATION_FAILURE, false)
                }
            }
        };
        self.block = None;
        out.extend_from_slice(reply);
        if logged_in {
            LoginStep::LoggedIn { consumed }
        } else {
            LoginStep::Took {
                consumed,
                replied: true,
            }
        }
    }
}

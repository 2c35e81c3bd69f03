//! ferrocache-protocol: memcached's text and meta protocols as a pure codec.
//!
//! Owns: turning a client's bytes into [`Request`]s ([`parse_request`]), server replies into
//! bytes ([`reply`]), and the client side of both (encoding requests, parsing replies in
//! [`client`]), with memcached 1.6.18's exact bytes. Must not touch: sockets, threads, clocks or
//! storage: the daemon, the client crate and the load generator drive it.
//!
//! Keys and values borrow from the input buffer: a request costs no heap allocation.

mod base64;
pub mod client;
mod error;
pub mod meta;
mod meta_parse;
mod number;
mod parse;
pub mod reply;
mod request;

pub use error::ProtocolError;
pub use meta::{MetaArithMode, MetaCommand, MetaFlags, MetaSetMode};
pub use parse::{Parsed, ParserLimits, parse_request};
pub use request::{GetKind, KEY_MAX_LEN, Key, Keys, Request, StatsGroup, StoreCommand};

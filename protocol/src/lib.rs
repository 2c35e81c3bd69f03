//! ferrocache-protocol: memcached's text, meta and binary protocols and its UDP framing as a
//! pure codec.
//!
//! Owns: turning a client's bytes into [`Request`]s ([`parse_request`]), server replies into
//! bytes ([`reply`]), and the client side of both (encoding requests, parsing replies in
//! [`client`]), with memcached 1.6.18's exact bytes; the same for the binary protocol
//! ([`binary`]) and UDP datagrams ([`udp`]). Must not touch: sockets, threads, clocks or
//! storage: the daemon, the client crate and the load generator drive it.
//!
//! Keys and values borrow from the input buffer: a request costs no heap allocation.
//!
//! Where this codec knowingly differs from memcached 1.6.18:
//! - A command line is judged by its length alone (over `max_line` bytes before its `\n`
//!   closes), so the verdict does not depend on how the bytes were split into reads; memcached
//!   only closes when a read leaves more than 2048 bytes without a newline, so it may accept a
//!   longer line that arrives in one piece.
//! - `gat`/`gats` key lists may be long like `get`/`gets` ones (memcached closes on them).
//! - An opaque over 32 bytes is refused before the command runs (memcached notices while
//!   writing the reply, after an `ma` or a touching `mg` has taken effect).
//! - Commands this codec does not model (`slabs`, `lru`, `lru_crawler`, `extstore`,
//!   `misbehave`, `debugtime`) answer `ERROR`.
//! - `shutdown <bad mode>` is [`ProtocolError::InvalidShutdownMode`]; a server with shutdown
//!   disabled should answer [`reply::SHUTDOWN_DISABLED`] to it, as memcached does.

#![forbid(unsafe_code)]

pub mod ascii_auth;
mod base64;
pub mod binary;
pub mod client;
mod error;
mod line;
pub mod meta;
mod meta_parse;
pub mod number;
mod parse;
pub mod reply;
mod request;
pub mod udp;

pub use error::ProtocolError;
pub use line::{Parsed, ParserLimits, Refused, TooLargeStore};
pub use meta::{MetaArithMode, MetaCommand, MetaFlags, MetaSetMode};
pub use parse::parse_request;
pub use request::{
    AutomoveRatio, CrawlTarget, DetailAction, GetKind, KEY_MAX_LEN, Key, Keys, LruCrawlerCommand,
    Request, SlabsCommand, StatsGroup, StoreCommand, WatchStreams,
};

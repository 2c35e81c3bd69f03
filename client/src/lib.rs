//! ferrocache-client: a blocking memcached client that spreads keys over many servers with
//! libmemcached-compatible weighted ketama.
//!
//! Owns: routing keys to servers ([`ketama`]), connections with timeouts and a small pool per
//! server, the typed errors callers see. Must not touch: the protocol's bytes (encoded and
//! parsed by `ferrocache_protocol::client`), the server.

pub mod ketama;

pub use ketama::{KetamaRing, RingError, ServerSpec};

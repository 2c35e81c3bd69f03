//! The three patterns a cache exists for, on the meta protocol: lazy loading with leases
//! (`get_or_load`), write-through (`write_through`, `invalidate`), and, in `crate::session`,
//! a session store.
//!
//! Owns: the decisions (pure, in [`lease`] and [`write_through`]) and the thin drivers that run
//! them on the blocking client (`blocking`) and the async one (`nonblocking`, feature
//! `async`). Must not touch: bytes on the wire, routing, connections.

mod blocking;
pub mod lease;
#[cfg(feature = "async")]
mod nonblocking;
pub mod write_through;

use ferrocache_protocol::client::EncodeError;
pub use lease::{LeaseOptions, LoadOutcome};
use thiserror::Error;
pub use write_through::WriteOutcome;

/// A value `get_or_load` returned and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub value: Vec<u8>,
    pub outcome: LoadOutcome,
}

/// Why `get_or_load` returned no value. Cache failures are not among them: an unreachable
/// cache makes the loader run ([`LoadOutcome::CacheUnavailable`]).
#[derive(Debug, Error)]
pub enum LoadError<E> {
    /// The loader failed; its lease was given back, so the next caller loads again.
    #[error("loader failed")]
    Loader(#[source] E),
    /// The key cannot be sent (empty, too long, a space or control byte).
    #[error("invalid key: {0}")]
    InvalidKey(#[from] EncodeError),
}

/// Why `write_through` failed: the database write did. The key was deleted from the cache all
/// the same, in case the write went through before the error.
#[derive(Debug, Error)]
pub enum WriteError<E> {
    #[error("database write failed")]
    Database(#[source] E),
    #[error("invalid key: {0}")]
    InvalidKey(#[from] EncodeError),
}

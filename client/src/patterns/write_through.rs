//! Write-through and invalidation as requests and outcomes: the database is written first, then
//! the cache; when the cache cannot take the new value, the key is deleted, so a reader never
//! finds the old one.
//!
//! Owns: which meta requests each step sends and what their replies mean. Must not touch:
//! sockets, the database (the caller's closure), the drivers.

use crate::error::ClientError;
use crate::meta::{MetaRequest, MetaResponse};
use ferrocache_protocol::MetaCommand;

/// What `write_through` did to the cache after the database write succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The cache holds the new value.
    Cached,
    /// The cache refused the value (too large, out of memory ...) or failed; the key was
    /// deleted instead.
    Invalidated,
    /// Neither the store nor the delete reached the cache. A server that cannot be reached
    /// usually lost its memory too (a restart); if it is only cut off, the old value lives
    /// until its TTL: keep TTLs short where that matters.
    CacheUnreachable,
}

/// `ms <key> T<ttl>`: a plain set, which also bumps the CAS so that a lease holder's older
/// load (`ms ... C<old cas>`) is refused.
pub fn set_request(key: &[u8], value: &[u8], ttl: u32) -> MetaRequest {
    MetaRequest::set(key, value, format!("T{ttl}"))
}

/// `md <key>`: the fallback when the set fails, and after a failed database write.
pub fn delete_request(key: &[u8]) -> MetaRequest {
    MetaRequest::new(MetaCommand::Delete, key, Vec::new())
}

/// `md <key> I T<stale ttl>`: marks the item stale instead of deleting it, so that one reader
/// (`W`) reloads it while the others are served the stale value (`X`) for up to `stale_ttl`
/// seconds, instead of all of them missing at once.
pub fn invalidate_request(key: &[u8], stale_ttl: u32) -> MetaRequest {
    MetaRequest::new(MetaCommand::Delete, key, format!("I T{stale_ttl}"))
}

/// Whether the set took: `HD`.
pub fn stored(result: &Result<MetaResponse, ClientError>) -> bool {
    matches!(result, Ok(response) if response.is_success())
}

/// The outcome once the fallback delete answered (or failed): `NF` is as good as deleted.
pub fn after_delete(result: &Result<MetaResponse, ClientError>) -> WriteOutcome {
    match result {
        Ok(_) => WriteOutcome::Invalidated,
        Err(_) => WriteOutcome::CacheUnreachable,
    }
}

/// Whether `md <key> I` found the item (`HD`) rather than nothing (`NF`).
pub fn invalidated(response: &MetaResponse) -> bool {
    response.is_success()
}

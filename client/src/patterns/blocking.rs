//! The patterns on the blocking [`Client`]: each call runs the pure decisions of
//! [`super::lease`] and [`super::write_through`] with blocking I/O and `thread::sleep`.
//!
//! Owns: nothing but the sequencing of requests. Must not touch: what replies mean (the pure
//! modules), bytes.

use super::lease::{self, Decision, LeaseFlow, LeaseOptions, LeaseReply, LoadOutcome};
use super::write_through::{self, WriteOutcome};
use super::{LoadError, Loaded, WriteError};
use crate::client::Client;
use crate::error::ClientError;
use ferrocache_protocol::client::check_key;
use std::time::Instant;

impl Client {
    /// Lazy loading with stampede protection and the default [`LeaseOptions`]: the cached
    /// value, or the loader's, stored for `ttl` seconds by whichever caller won the lease while
    /// the others wait for it. An unreachable cache makes the loader run
    /// ([`LoadOutcome::CacheUnavailable`]); a loader error gives the lease back.
    pub fn get_or_load<E>(
        &self,
        key: &[u8],
        ttl: u32,
        loader: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<Loaded, LoadError<E>> {
        self.get_or_load_with(key, ttl, &LeaseOptions::default(), loader)
    }

    /// [`Client::get_or_load`] with explicit lease options.
    pub fn get_or_load_with<E>(
        &self,
        key: &[u8],
        ttl: u32,
        options: &LeaseOptions,
        loader: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<Loaded, LoadError<E>> {
        check_key(key)?;
        let read = lease::read_request(key, options);
        let mut flow = LeaseFlow::new(*options, Instant::now());
        loop {
            let Ok(response) = self.meta(&read) else {
                return lease::uncached(loader(), LoadOutcome::CacheUnavailable);
            };
            match flow.on_reply(LeaseReply::from_response(&response), Instant::now()) {
                Decision::Serve(outcome) => {
                    return Ok(Loaded {
                        value: response.value,
                        outcome,
                    });
                }
                Decision::Wait(pause) => std::thread::sleep(pause),
                Decision::LoadUncached(outcome) => return lease::uncached(loader(), outcome),
                Decision::Load(won) => {
                    let (follow_up, answer) =
                        lease::after_load(key, ttl, &won, response.value, loader());
                    if let Some(request) = follow_up {
                        // A store refused because something newer was written, or a release
                        // that fails, changes nothing for this caller.
                        let _ = self.meta(&request);
                    }
                    return answer;
                }
            }
        }
    }

    /// Write-through: `db_write` first, then the cache holds `value` for `ttl` seconds. When
    /// the cache cannot take it, or the database write fails (it may have gone through before
    /// the error), the key is deleted so that no reader finds the old value.
    pub fn write_through<E>(
        &self,
        key: &[u8],
        value: &[u8],
        ttl: u32,
        db_write: impl FnOnce() -> Result<(), E>,
    ) -> Result<WriteOutcome, WriteError<E>> {
        check_key(key)?;
        if let Err(error) = db_write() {
            let _ = self.meta(&write_through::delete_request(key));
            return Err(WriteError::Database(error));
        }
        if write_through::stored(&self.meta(&write_through::set_request(key, value, ttl))) {
            return Ok(WriteOutcome::Cached);
        }
        Ok(write_through::after_delete(
            &self.meta(&write_through::delete_request(key)),
        ))
    }

    /// Marks `key` stale (`md <key> I T<stale_ttl>`): the next `get_or_load` reloads it while
    /// the others are served the stale value. True when the key existed.
    pub fn invalidate(&self, key: &[u8], stale_ttl: u32) -> Result<bool, ClientError> {
        let response = self.meta(&write_through::invalidate_request(key, stale_ttl))?;
        Ok(write_through::invalidated(&response))
    }
}

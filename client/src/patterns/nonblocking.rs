//! The patterns on the [`AsyncClient`]: the same pure decisions as the blocking drivers
//! ([`super::lease`], [`super::write_through`]), run with async I/O and `tokio::time::sleep`.
//!
//! Owns: nothing but the sequencing of requests. Must not touch: what replies mean, bytes.

use super::lease::{self, Decision, LeaseFlow, LeaseOptions, LeaseReply, LoadOutcome};
use super::write_through::{self, WriteOutcome};
use super::{LoadError, Loaded, WriteError};
use crate::async_client::AsyncClient;
use crate::error::ClientError;
use ferrocache_protocol::client::check_key;
use std::time::Instant;

impl AsyncClient {
    /// Lazy loading with stampede protection and the default [`LeaseOptions`]; see
    /// [`crate::Client::get_or_load`].
    pub async fn get_or_load<E, F>(
        &self,
        key: &[u8],
        ttl: u32,
        loader: impl FnOnce() -> F,
    ) -> Result<Loaded, LoadError<E>>
    where
        F: Future<Output = Result<Vec<u8>, E>>,
    {
        self.get_or_load_with(key, ttl, &LeaseOptions::default(), loader)
            .await
    }

    /// [`AsyncClient::get_or_load`] with explicit lease options.
    pub async fn get_or_load_with<E, F>(
        &self,
        key: &[u8],
        ttl: u32,
        options: &LeaseOptions,
        loader: impl FnOnce() -> F,
    ) -> Result<Loaded, LoadError<E>>
    where
        F: Future<Output = Result<Vec<u8>, E>>,
    {
        check_key(key)?;
        let read = lease::read_request(key, options);
        let mut flow = LeaseFlow::new(*options, Instant::now());
        loop {
            let Ok(response) = self.meta(&read).await else {
                return lease::uncached(loader().await, LoadOutcome::CacheUnavailable);
            };
            match flow.on_reply(LeaseReply::from_response(&response), Instant::now()) {
                Decision::Serve(outcome) => {
                    return Ok(Loaded {
                        value: response.value,
                        outcome,
                    });
                }
                Decision::Wait(pause) => tokio::time::sleep(pause).await,
                Decision::LoadUncached(outcome) => {
                    return lease::uncached(loader().await, outcome);
                }
                Decision::Load(won) => {
                    let (follow_up, answer) =
                        lease::after_load(key, ttl, &won, response.value, loader().await);
                    if let Some(request) = follow_up {
                        // A refused store (something newer was written) or a failed release
                        // changes nothing for this caller.
                        let _ = self.meta(&request).await;
                    }
                    return answer;
                }
            }
        }
    }

    /// Write-through; see [`crate::Client::write_through`].
    pub async fn write_through<E, F>(
        &self,
        key: &[u8],
        value: &[u8],
        ttl: u32,
        db_write: impl FnOnce() -> F,
    ) -> Result<WriteOutcome, WriteError<E>>
    where
        F: Future<Output = Result<(), E>>,
    {
        check_key(key)?;
        if let Err(error) = db_write().await {
            let _ = self.meta(&write_through::delete_request(key)).await;
            return Err(WriteError::Database(error));
        }
        let set = self
            .meta(&write_through::set_request(key, value, ttl))
            .await;
        if write_through::stored(&set) {
            return Ok(WriteOutcome::Cached);
        }
        let delete = self.meta(&write_through::delete_request(key)).await;
        Ok(write_through::after_delete(&delete))
    }

    /// Marks `key` stale; see [`crate::Client::invalidate`].
    pub async fn invalidate(&self, key: &[u8], stale_ttl: u32) -> Result<bool, ClientError> {
        let response = self
            .meta(&write_through::invalidate_request(key, stale_ttl))
            .await?;
        Ok(write_through::invalidated(&response))
    }
}

//! `watch`, and the events the other handlers report to watchers: `item_get` (fetchers),
//! `item_store` (mutations), `conn_new`/`conn_close` (connevents), in memcached 1.6.18's
//! `logger.c` formats.
//!
//! Owns: memcached's refusals of `watch` (`-W`, the watcher limit, a pipelined watch) and the
//! fields of each event line. Must not touch: the registry and buffers (`crate::watch`) or the
//! connection a watcher is written to (its worker's).

use super::Executor;
use crate::watch::{WatchRefusal, Watcher, push_field, push_uriencoded};
use ferrocache_protocol::WatchStreams;
use ferrocache_storage::{Partition, StoreError, StoreOutcome};
use std::sync::Arc;

/// Why a connection closed, as `conn_close` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    Error,
    Normal,
    IdleTimeout,
    Shutdown,
}

impl CloseReason {
    fn name(self) -> &'static [u8] {
        match self {
            CloseReason::Error => b"error",
            CloseReason::Normal => b"normal",
            CloseReason::IdleTimeout => b"idle_timeout",
            CloseReason::Shutdown => b"shutdown",
        }
    }
}

/// What a store did, as `item_store`'s `status=` names it.
pub fn store_status(result: &Result<StoreOutcome, StoreError>) -> &'static [u8] {
    match result {
        Ok(StoreOutcome::Stored { .. }) => b"stored",
        Ok(StoreOutcome::NotStored) => b"not_stored",
        Ok(StoreOutcome::Exists) => b"exists",
        Ok(StoreOutcome::NotFound) => b"not_found",
        Err(StoreError::TooLarge) => b"too_large",
        Err(StoreError::OutOfMemory) => b"no_memory",
    }
}

impl Executor<'_> {
    /// `watch`: makes this connection a watcher of `streams`, woken through its worker.
    pub fn watch(&self, streams: WatchStreams) -> Result<Arc<Watcher>, WatchRefusal> {
        if !self.shared.settings.watch_enabled {
            return Err(WatchRefusal::Disabled);
        }
        let waker = self
            .shared
            .worker_wakers
            .get()
            .and_then(|wakers| wakers.get(self.worker))
            .cloned();
        self.shared.watchers.add(streams, waker)
    }

    /// What a watcher of fetchers would see a lookup of `key` find: `None` when nobody
    /// watches (then it costs one atomic load), else the live item's class and value size,
    /// read without counting an access. Handlers whose engine call hides whether the key was
    /// there (store, delete, touch, arith) call it before that call, under the same lock, as
    /// memcached logs the lookup its command starts with.
    #[inline]
    pub(super) fn peek_for_watchers(
        &self,
        partition: &mut Partition,
        hash: u64,
        key: &[u8],
    ) -> Option<Option<(u8, usize)>> {
        self.shared
            .watchers
            .wants(WatchStreams::FETCHERS)
            .then(|| Self::item_shape(partition, hash, key))
    }

    /// The class and value size of `key`'s live item, for a watcher of mutations: `None`
    /// when nobody watches them.
    #[inline]
    pub(super) fn stored_shape_for_watchers(
        &self,
        partition: &mut Partition,
        hash: u64,
        key: &[u8],
    ) -> Option<u8> {
        self.shared
            .watchers
            .wants(WatchStreams::MUTATIONS)
            .then(|| Self::item_shape(partition, hash, key).map_or(0, |(class, _)| class))
    }

    fn item_shape(partition: &mut Partition, hash: u64, key: &[u8]) -> Option<(u8, usize)> {
        partition
            .peek(hash, key)
            .map(|item| (item.class_id(), item.value_len()))
    }

    /// A lookup of `key`: `found` is the item's class and value size.
    #[inline]
    pub(super) fn log_get(&self, key: &[u8], found: Option<(u8, usize)>) {
        let watchers = &self.shared.watchers;
        if !watchers.wants(WatchStreams::FETCHERS) {
            return;
        }
        watchers.emit(WatchStreams::FETCHERS, |line| {
            line.extend_from_slice(b"type=item_get key=");
            push_uriencoded(line, key);
            line.extend_from_slice(if found.is_some() {
                b" status=found"
            } else {
                b" status=not_found"
            });
            let (class, size) = found.unwrap_or((0, 0));
            push_field(line, b"clsid", class);
            push_field(line, b"cfd", self.fd);
            push_field(line, b"size", size);
        });
    }

    /// A store of `key` by `command` (`set`, `add`, ..., `cas`) with the client's `exptime`,
    /// leaving an item of slab class `class` (0 for none).
    #[inline]
    pub(super) fn log_store(
        &self,
        key: &[u8],
        command: &[u8],
        status: &[u8],
        exptime: i64,
        class: u8,
        size: usize,
    ) {
        let watchers = &self.shared.watchers;
        if !watchers.wants(WatchStreams::MUTATIONS) {
            return;
        }
        watchers.emit(WatchStreams::MUTATIONS, |line| {
            line.extend_from_slice(b"type=item_store key=");
            push_uriencoded(line, key);
            line.extend_from_slice(b" status=");
            line.extend_from_slice(status);
            line.extend_from_slice(b" cmd=");
            line.extend_from_slice(command);
            // memcached prints the item's exptime as an unsigned number.
            push_field(line, b"ttl", exptime.clamp(0, i64::from(u32::MAX)));
            push_field(line, b"clsid", class);
            push_field(line, b"cfd", self.fd);
            push_field(line, b"size", size);
        });
    }

    /// A connection from `peer` (as `stats conns` prints it: `tcp:ip:port` or `unix:path`).
    pub fn log_connection_new(&self, peer: &str) {
        self.log_connection(peer, None);
    }

    /// A connection from `peer` closed.
    pub fn log_connection_close(&self, peer: &str, reason: CloseReason) {
        self.log_connection(peer, Some(reason));
    }

    fn log_connection(&self, peer: &str, closed: Option<CloseReason>) {
        let watchers = &self.shared.watchers;
        if !watchers.wants(WatchStreams::CONNEVENTS) {
            return;
        }
        let (transport, address, port) = split_peer(peer);
        watchers.emit(WatchStreams::CONNEVENTS, |line| {
            line.extend_from_slice(if closed.is_some() {
                b"type=conn_close rip="
            } else {
                b"type=conn_new rip="
            });
            line.extend_from_slice(address.as_bytes());
            push_field(line, b"rport", port);
            line.extend_from_slice(b" transport=");
            line.extend_from_slice(transport);
            if let Some(reason) = closed {
                line.extend_from_slice(b" reason=");
                line.extend_from_slice(reason.name());
            }
            push_field(line, b"cfd", self.fd);
        });
    }
}

/// `tcp:127.0.0.1:5000` -> (`tcp`, `127.0.0.1`, 5000); `tcp:[::1]:5000` -> (`tcp`, `::1`,
/// 5000); `unix:/path` -> (`local`, `/path`, 0), as memcached's `_logger_util_addr_endpoint`.
fn split_peer(peer: &str) -> (&'static [u8], &str, u16) {
    if let Some(address) = peer.strip_prefix("tcp:")
        && let Some((host, port)) = address.rsplit_once(':')
    {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        return (b"tcp", host, port.parse().unwrap_or(0));
    }
    (b"local", peer.strip_prefix("unix:").unwrap_or(peer), 0)
}

#[cfg(test)]
mod tests {
    use super::split_peer;

    #[test]
    fn peers_split_as_memcached_prints_them() {
        assert_eq!(
            split_peer("tcp:127.0.0.1:5000"),
            (&b"tcp"[..], "127.0.0.1", 5000)
        );
        assert_eq!(split_peer("tcp:[::1]:11"), (&b"tcp"[..], "::1", 11));
        assert_eq!(split_peer("unix:/tmp/s"), (&b"local"[..], "/tmp/s", 0));
    }
}

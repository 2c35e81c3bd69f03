//! One partition of the keyspace: its hash index, slab classes, CLOCK hands and counters.
//!
//! Owns: every item whose key hashes to this partition, the pages it holds from the shared
//! [`PagePool`], and the semantics of each operation (memcached's). Must not touch: other
//! partitions, locks (the daemon wraps a partition in a `parking_lot::Mutex`; every method
//! takes `&mut self`), or the wire format.

use crate::clock::Clock;
use crate::config::StorageConfig;
use crate::error::StoreError;
use crate::pool::PagePool;
use crate::stats::{ClassStats, PartitionStats};
use std::sync::Arc;

/// How a store treats an existing (or missing) item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// Store unconditionally.
    Set,
    /// Store only if the key holds no live item.
    Add,
    /// Store only if the key holds a live item.
    Replace,
    /// Add the data after the existing value; keep flags and expiry.
    Append,
    /// Add the data before the existing value; keep flags and expiry.
    Prepend,
}

/// A storage request: text `set/add/replace/append/prepend/cas` and meta `ms`.
#[derive(Debug, Clone, Copy)]
pub struct StoreRequest<'a> {
    pub hash: u64,
    pub key: &'a [u8],
    pub value: &'a [u8],
    /// Client flags (ignored by append and prepend).
    pub flags: u32,
    /// Client exptime (ignored by append and prepend).
    pub exptime: i64,
    pub mode: StoreMode,
    /// Store only if the item's CAS equals this (text `cas`, meta `C`).
    pub compare_cas: Option<u64>,
    /// Give the stored item this CAS instead of a fresh one (meta `E`).
    pub new_cas: Option<u64>,
    /// Meta `I`: if `compare_cas` is older than the item's CAS, store anyway but mark the item
    /// stale.
    pub invalidate: bool,
    /// Meta `N` in append/prepend mode: on a miss, create the item with this exptime.
    pub vivify_exptime: Option<i64>,
}

impl<'a> StoreRequest<'a> {
    /// A plain request of `mode`, with no meta options.
    pub fn new(
        hash: u64,
        key: &'a [u8],
        value: &'a [u8],
        flags: u32,
        exptime: i64,
        mode: StoreMode,
    ) -> Self {
        StoreRequest {
            hash,
            key,
            value,
            flags,
            exptime,
            mode,
            compare_cas: None,
            new_cas: None,
            invalidate: false,
            vivify_exptime: None,
        }
    }
}

/// What a store did (`STORED`, `NOT_STORED`, `EXISTS`, `NOT_FOUND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    Stored { cas: u64 },
    NotStored,
    Exists,
    NotFound,
}

/// A delete: text `delete` and meta `md`.
#[derive(Debug, Clone, Copy)]
pub struct DeleteRequest<'a> {
    pub hash: u64,
    pub key: &'a [u8],
    /// Delete only if the item's CAS equals this (meta `C`).
    pub compare_cas: Option<u64>,
    /// Meta `I`: instead of removing the item, mark it stale; with `Some(exptime)` from meta
    /// `T`, also give it that exptime.
    pub invalidate: Option<Option<i64>>,
    /// Give an invalidated item this CAS (meta `E`).
    pub new_cas: Option<u64>,
}

impl<'a> DeleteRequest<'a> {
    /// A plain delete.
    pub fn new(hash: u64, key: &'a [u8]) -> Self {
        DeleteRequest {
            hash,
            key,
            compare_cas: None,
            invalidate: None,
            new_cas: None,
        }
    }
}

/// What a delete did (`DELETED`/`HD`, `NOT_FOUND`/`NF`, `EXISTS`/`EX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    NotFound,
    Exists,
}

/// Increment or decrement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithMode {
    /// Add, wrapping at 2^64.
    Incr,
    /// Subtract, stopping at 0.
    Decr,
}

/// Text `incr`/`decr` and meta `ma`.
#[derive(Debug, Clone, Copy)]
pub struct ArithRequest<'a> {
    pub hash: u64,
    pub key: &'a [u8],
    pub mode: ArithMode,
    pub delta: u64,
    /// Only if the item's CAS equals this (meta `C`).
    pub compare_cas: Option<u64>,
    /// Give the item this CAS (meta `E`).
    pub new_cas: Option<u64>,
    /// Meta `N` (with `J`): on a miss, create the item holding `initial` with this exptime.
    pub vivify: Option<(u64, i64)>,
    /// Meta `T`: also set this exptime.
    pub exptime: Option<i64>,
}

impl<'a> ArithRequest<'a> {
    /// A plain `incr`/`decr`.
    pub fn new(hash: u64, key: &'a [u8], mode: ArithMode, delta: u64) -> Self {
        ArithRequest {
            hash,
            key,
            mode,
            delta,
            compare_cas: None,
            new_cas: None,
            vivify: None,
            exptime: None,
        }
    }
}

/// What an increment or decrement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOutcome {
    /// The item now holds `value`.
    Updated {
        value: u64,
        cas: u64,
        /// Seconds left to live, -1 for never (meta `t`).
        ttl: i64,
    },
    NotFound,
    /// `compare_cas` did not match.
    Exists,
    /// The stored value is not a decimal u64 (`CLIENT_ERROR cannot increment or decrement
    /// non-numeric value`).
    NonNumeric,
}

/// Options of a meta get (`mg`) that change what the read does.
#[derive(Debug, Clone, Copy)]
pub struct MetaGetOptions {
    /// Count this read as an access (false with `u`).
    pub bump: bool,
    /// `T`: set this exptime on a hit.
    pub touch: Option<i64>,
    /// `N`: on a miss, create an empty item with this exptime and make this client the winner.
    pub vivify: Option<i64>,
    /// `R`: if the item's remaining TTL is below this many seconds, make this client the winner
    /// (once).
    pub recache_below: Option<i64>,
}

impl Default for MetaGetOptions {
    fn default() -> Self {
        MetaGetOptions {
            bump: true,
            touch: None,
            vivify: None,
            recache_below: None,
        }
    }
}

/// What a meta get found.
#[derive(Debug)]
pub enum MetaGetOutcome<'a> {
    Hit {
        item: ItemRef<'a>,
        /// The item had been fetched before this read (`h`).
        hit_before: bool,
        /// Seconds since the item was last accessed, before this read (`l`).
        last_access: u32,
        /// This client won the right to recache (`W`).
        win: bool,
        /// The item is stale (`X`).
        stale: bool,
        /// A win was already handed to another client (`Z`).
        win_sent: bool,
    },
    Miss,
}

/// A live item, borrowed from its partition while the caller holds the partition's lock.
#[derive(Debug, Clone, Copy)]
pub struct ItemRef<'a> {
    _partition: &'a Partition,
}

impl<'a> ItemRef<'a> {
    /// The key.
    pub fn key(&self) -> &'a [u8] {
        todo!()
    }

    /// Client flags.
    pub fn flags(&self) -> u32 {
        todo!()
    }

    /// CAS unique (0 when CAS is disabled).
    pub fn cas(&self) -> u64 {
        todo!()
    }

    /// Length of the value in bytes.
    pub fn value_len(&self) -> usize {
        todo!()
    }

    /// The value, as one slice per chunk it is stored in (one for all but chained items).
    pub fn value(&self) -> ValueChunks<'a> {
        todo!()
    }

    /// Seconds left to live, -1 for never.
    pub fn ttl(&self) -> i64 {
        todo!()
    }

    /// Seconds since the last access.
    pub fn last_access(&self) -> u32 {
        todo!()
    }

    /// Whether the item has been fetched since it was stored.
    pub fn fetched(&self) -> bool {
        todo!()
    }

    /// The slab class id of the item's first chunk (meta `me` `cls=`).
    pub fn class_id(&self) -> u8 {
        todo!()
    }

    /// Bytes the item takes: header, key and value (meta `me` `size=`).
    pub fn total_size(&self) -> usize {
        todo!()
    }
}

/// The chunks of a value, in order.
#[derive(Debug, Clone)]
pub struct ValueChunks<'a> {
    _partition: &'a Partition,
}

impl<'a> Iterator for ValueChunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        todo!()
    }
}

/// One partition of the cache.
#[derive(Debug)]
pub struct Partition {
    _config: Arc<StorageConfig>,
    _pool: Arc<PagePool>,
    _clock: Arc<Clock>,
}

impl Partition {
    /// An empty partition drawing pages from `pool`. `config` must have passed
    /// [`StorageConfig::validate`].
    pub fn new(config: Arc<StorageConfig>, pool: Arc<PagePool>, clock: Arc<Clock>) -> Self {
        Partition {
            _config: config,
            _pool: pool,
            _clock: clock,
        }
    }

    /// `get`/`gets`: the live item, counted as a hit and marked accessed; `None` counts a miss
    /// (an expired or flushed item found here is reclaimed).
    pub fn get(&mut self, _hash: u64, _key: &[u8]) -> Option<ItemRef<'_>> {
        todo!()
    }

    /// `gat`/`gats`: [`Partition::get`] that also sets a new exptime on a hit.
    pub fn get_and_touch(&mut self, _hash: u64, _key: &[u8], _exptime: i64) -> Option<ItemRef<'_>> {
        todo!()
    }

    /// `mg`.
    pub fn meta_get(
        &mut self,
        _hash: u64,
        _key: &[u8],
        _options: &MetaGetOptions,
    ) -> MetaGetOutcome<'_> {
        todo!()
    }

    /// The live item without counting or marking an access (meta `me`).
    pub fn peek(&mut self, _hash: u64, _key: &[u8]) -> Option<ItemRef<'_>> {
        todo!()
    }

    /// `set`/`add`/`replace`/`append`/`prepend`/`cas`/`ms`.
    pub fn store(&mut self, _request: &StoreRequest<'_>) -> Result<StoreOutcome, StoreError> {
        todo!()
    }

    /// `delete`/`md`.
    pub fn delete(&mut self, _request: &DeleteRequest<'_>) -> DeleteOutcome {
        todo!()
    }

    /// `incr`/`decr`/`ma`.
    pub fn arith(&mut self, _request: &ArithRequest<'_>) -> Result<ArithOutcome, StoreError> {
        todo!()
    }

    /// `touch`: sets a new exptime; false if there is no live item.
    pub fn touch(&mut self, _hash: u64, _key: &[u8], _exptime: i64) -> bool {
        todo!()
    }

    /// `flush_all [delay]`: every item stored before the moment `exptime` names (now, for 0 or
    /// a negative value) stops being returned from that moment.
    pub fn flush_all(&mut self, _exptime: i64) {
        todo!()
    }

    /// Background work in a slice of about `budget` chunks: reclaims expired and flushed items,
    /// carries out a due delayed flush, and moves pages between slab classes where one class's
    /// evictions are much hotter than another's. Returns the chunks examined; the owner calls it
    /// when its event loop is idle and about once a second.
    pub fn maintain(&mut self, _budget: usize) -> usize {
        todo!()
    }

    /// Item counters of this partition.
    pub fn stats(&self) -> PartitionStats {
        todo!()
    }

    /// Counters of each slab class that has ever held a page, by class id (1-based, as
    /// memcached numbers them).
    pub fn class_stats(&self) -> Vec<(u8, ClassStats)> {
        todo!()
    }

    /// `stats reset`: zeroes the counters (not the gauges: items, bytes, pages).
    pub fn reset_stats(&mut self) {
        todo!()
    }

    /// Live and not-yet-reclaimed items.
    pub fn len(&self) -> usize {
        todo!()
    }

    /// Whether the partition holds no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

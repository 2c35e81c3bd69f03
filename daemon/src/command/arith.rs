//! Counters: `incr`, `decr`, meta `ma`, binary increment and decrement.
//!
//! Owns: turning each protocol's arithmetic command into one engine request. Must not touch:
//! the arithmetic itself (wrapping incr, decr stopping at 0, the stored length: the storage
//! crate's).

use super::Executor;
use ferrocache_storage::{ArithMode, ArithOutcome, ArithRequest, StoreError};

/// One increment or decrement, whatever protocol it came in.
#[derive(Debug, Clone, Copy)]
pub struct Arith<'a> {
    pub key: &'a [u8],
    pub mode: ArithMode,
    pub delta: u64,
    /// Only if the item's CAS equals this (meta `C`, a binary header's CAS).
    pub compare_cas: Option<u64>,
    /// On a miss, create the counter holding `initial` with this exptime (meta `N` with `J`,
    /// binary's initial value unless its expiration is 0xffffffff).
    pub vivify: Option<(u64, i64)>,
    /// Also set this exptime (meta `T`).
    pub exptime: Option<i64>,
}

impl<'a> Arith<'a> {
    /// A plain text `incr`/`decr`.
    pub fn new(key: &'a [u8], mode: ArithMode, delta: u64) -> Self {
        Arith {
            key,
            mode,
            delta,
            compare_cas: None,
            vivify: None,
            exptime: None,
        }
    }
}

impl Executor<'_> {
    pub fn arith(&self, arith: &Arith<'_>) -> Result<ArithOutcome, StoreError> {
        let (hash, mut partition) = self.shared.cache.lock_key(arith.key);
        let watched = self.peek_for_watchers(&mut partition, hash, arith.key);
        let result = partition.arith(&ArithRequest {
            hash,
            key: arith.key,
            mode: arith.mode,
            delta: arith.delta,
            compare_cas: arith.compare_cas,
            new_cas: None,
            vivify: arith.vivify,
            exptime: arith.exptime,
        });
        drop(partition);
        if let Some(found) = watched {
            self.log_get(arith.key, found);
        }
        result
    }
}

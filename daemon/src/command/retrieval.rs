//! Retrieval: `get`, `gets`, `gat`, `gats`, `bget`, and the binary get family, one key at a
//! time (a multi-get is the front's loop over its keys, so it can pause between them).
//!
//! Owns: looking a key up (and touching it for gat), the per-prefix get figures. Must not
//! touch: how a hit is written (the front's `on_hit`) or multi-get pacing.

use super::Executor;
use ferrocache_storage::ItemRef;

/// What a retrieval does besides reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retrieve {
    Get,
    /// Get and touch: a hit gets this exptime.
    Touch {
        exptime: i64,
    },
}

impl Executor<'_> {
    /// Looks `key` up, counting the hit or miss. On a hit, `on_hit` sees the item while its
    /// partition is locked: copy what the reply needs and nothing else. Returns whether it hit.
    pub fn retrieve(&self, key: &[u8], how: Retrieve, on_hit: impl FnOnce(&ItemRef<'_>)) -> bool {
        let (hash, mut partition) = self.shared.cache.lock_key(key);
        let item = match how {
            Retrieve::Get => partition.get(hash, key),
            Retrieve::Touch { exptime } => partition.get_and_touch(hash, key, exptime),
        };
        let found = item.map(|item| {
            on_hit(&item);
            (item.class_id(), item.value_len())
        });
        drop(partition);
        self.shared.detail.record_get(key, found.is_some());
        self.log_get(key, found);
        found.is_some()
    }
}

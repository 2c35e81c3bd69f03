//! What only the meta protocol asks of the cache: `mg` (a read that may touch, vivify, lease
//! or skip the access bump) and `me` (an item's debug line). `ms`, `md` and `ma` are stores,
//! deletes and counters with options, handled by those families.
//!
//! Owns: turning `mg`/`me` into engine requests, and counting `me` in `cmd_meta`. Must not
//! touch: reply flags (the front encodes them from the outcome).

use super::Executor;
use ferrocache_storage::{ItemRef, MetaGetOptions, MetaGetOutcome};

impl Executor<'_> {
    /// `mg`: `on_outcome` sees the hit (with the item, its partition locked) or the miss.
    pub fn meta_get<R>(
        &self,
        key: &[u8],
        options: &MetaGetOptions,
        on_outcome: impl FnOnce(MetaGetOutcome<'_>) -> R,
    ) -> R {
        let (hash, mut partition) = self.shared.cache.lock_key(key);
        let outcome = partition.meta_get(hash, key, options);
        let found = match &outcome {
            MetaGetOutcome::Hit { item, .. } => Some((item.class_id(), item.value_len())),
            MetaGetOutcome::Miss => None,
        };
        let result = on_outcome(outcome);
        drop(partition);
        self.log_get(key, found);
        result
    }

    /// `me`: the live item without counting an access; `on_hit` sees it while locked.
    /// Returns whether there was one.
    pub fn meta_debug(&self, key: &[u8], on_hit: impl FnOnce(&ItemRef<'_>)) -> bool {
        // memcached 1.6.18 counts only `me` in cmd_meta, not mg/ms/md/ma/mn.
        self.stats.cmd_meta.incr();
        let (hash, mut partition) = self.shared.cache.lock_key(key);
        match partition.peek(hash, key) {
            Some(item) => {
                on_hit(&item);
                true
            }
            None => false,
        }
    }
}

//! Deletion and touching: `delete`, meta `md`, binary delete; `touch`, binary touch.
//!
//! Owns: turning each protocol's delete or touch into one engine request, and the per-prefix
//! delete figures. Must not touch: what a delete or an invalidation does to the item (the
//! storage crate's).

use super::Executor;
use ferrocache_storage::{DeleteOutcome, DeleteRequest};

/// One delete, whatever protocol it came in.
#[derive(Debug, Clone, Copy)]
pub struct Delete<'a> {
    pub key: &'a [u8],
    /// Delete only if the item's CAS equals this (meta `C`, a binary header's CAS).
    pub compare_cas: Option<u64>,
    /// Meta `I`: mark the item stale instead of removing it; with `Some(exptime)` (meta `T`)
    /// also give it that exptime.
    pub invalidate: Option<Option<i64>>,
    /// Classic text and binary deletes count in `stats detail`; meta ones do not.
    pub counts_in_detail: bool,
}

impl<'a> Delete<'a> {
    /// A plain text or binary delete.
    pub fn new(key: &'a [u8]) -> Self {
        Delete {
            key,
            compare_cas: None,
            invalidate: None,
            counts_in_detail: true,
        }
    }
}

impl Executor<'_> {
    pub fn delete(&self, delete: &Delete<'_>) -> DeleteOutcome {
        if delete.counts_in_detail {
            self.shared.detail.record_delete(delete.key);
        }
        let (hash, mut partition) = self.shared.cache.lock_key(delete.key);
        let watched = self.peek_for_watchers(&mut partition, hash, delete.key);
        let outcome = partition.delete(&DeleteRequest {
            hash,
            key: delete.key,
            compare_cas: delete.compare_cas,
            invalidate: delete.invalidate,
            new_cas: None,
        });
        drop(partition);
        if let Some(found) = watched {
            self.log_get(delete.key, found);
        }
        outcome
    }

    /// [`Executor::touch`] that also shows the touched item to `on_hit` (binary touch answers
    /// with its flags and CAS), while its partition is locked.
    pub fn touch_item(
        &self,
        key: &[u8],
        exptime: i64,
        on_hit: impl FnOnce(&ferrocache_storage::ItemRef<'_>),
    ) -> bool {
        let (hash, mut partition) = self.shared.cache.lock_key(key);
        let watched = self.peek_for_watchers(&mut partition, hash, key);
        let touched = partition.touch(hash, key, exptime);
        if touched && let Some(item) = partition.peek(hash, key) {
            on_hit(&item);
        }
        drop(partition);
        if let Some(found) = watched {
            self.log_get(key, found);
        }
        touched
    }

    /// Gives the key's item a new exptime; false if there is no live item.
    pub fn touch(&self, key: &[u8], exptime: i64) -> bool {
        let (hash, mut partition) = self.shared.cache.lock_key(key);
        let watched = self.peek_for_watchers(&mut partition, hash, key);
        let touched = partition.touch(hash, key, exptime);
        drop(partition);
        if let Some(found) = watched {
            self.log_get(key, found);
        }
        touched
    }
}

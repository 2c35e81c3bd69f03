//! Walking a partition's items in bounded slices, for the operator commands that list or sweep
//! every item (`lru_crawler metadump`, `lru_crawler crawl`, `stats cachedump`).
//!
//! Owns: the cursor over the partition's chunks and the rule that a slice examines at most a
//! budget of chunks, so the caller can release the partition's lock between slices however
//! large the cache is. Must not touch: formatting (the caller's visitor) or locking.
//!
//! The cursor is a page slot and a chunk offset, not a pointer: pages may be reassigned,
//! emptied or added between slices, and the walk then sees what is there when it gets there.
//! Like memcached's crawler it gives no snapshot: an item stored or moved meanwhile may be
//! listed or not, but the walk always ends (page slots are bounded by the memory limit).

use super::{ItemRef, Partition};
use crate::item;

/// Slab classes, as a bit set over memcached's ids 1..=63 (bit `id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassSet(u64);

impl ClassSet {
    /// Every class.
    pub const ALL: ClassSet = ClassSet(u64::MAX);
    /// No class.
    pub const NONE: ClassSet = ClassSet(0);

    /// The set with class `id` (1-based, as memcached numbers classes) added; ids above 63
    /// are ignored (no such class).
    #[must_use]
    pub fn with(self, id: u32) -> ClassSet {
        if id < 64 {
            ClassSet(self.0 | 1 << id)
        } else {
            self
        }
    }

    /// Whether class `id` is in the set.
    pub fn contains(self, id: u8) -> bool {
        id < 64 && self.0 & (1 << id) != 0
    }

    /// Whether the set names no class.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Where a walk over one partition stands: the next chunk to examine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalkCursor {
    page: usize,
    chunk: usize,
}

impl Partition {
    /// One slice of a walk over this partition's items: examines at most `budget` chunks from
    /// `cursor`, and for the items whose class is in `classes` reclaims the expired and
    /// flushed ones (as the background crawler does: they could not be listed anyway) and
    /// calls `visit` with the live ones. Returns where to continue, or `None` once every page has been
    /// walked. A walk starts from `WalkCursor::default()`.
    pub fn walk_items(
        &mut self,
        cursor: WalkCursor,
        budget: usize,
        classes: ClassSet,
        mut visit: impl FnMut(&ItemRef<'_>),
    ) -> Option<WalkCursor> {
        let WalkCursor {
            mut page,
            mut chunk,
        } = cursor;
        let now = self.clock.now();
        let mut examined = 0;
        // Empty slots count too, so that a sparse page table is also walked in bounded steps.
        while examined < budget.max(1) {
            if page >= self.slabs.page_slots() {
                return None;
            }
            if !self.slabs.has_page(page) {
                page += 1;
                chunk = 0;
                examined += 1;
                continue;
            }
            let handles = self
                .slabs
                .page_handles(page as u32)
                .skip(chunk)
                .take(budget.max(1) - examined);
            let mut took = 0;
            for handle in handles {
                took += 1;
                let slot = self.slabs.chunk(handle);
                if !item::is_head(slot) {
                    continue;
                }
                // Only the classes asked for: `lru_crawler crawl <class>` sweeps those alone.
                let class_id = (self.slabs.class_of(handle) + 1) as u8;
                if !classes.contains(class_id) {
                    continue;
                }
                let header = self.read_header(handle);
                if let Some(death) = self.death(&header, now) {
                    self.counters.crawler_reclaimed += 1;
                    self.class_counters(handle).crawler_reclaimed += 1;
                    self.free_dead(handle, &header, death);
                    continue;
                }
                visit(&self.item_ref(handle, header));
            }
            if took == 0 {
                page += 1;
                chunk = 0;
                examined += 1;
            } else {
                chunk += took;
                examined += took;
            }
        }
        Some(WalkCursor { page, chunk })
    }
}

impl ItemRef<'_> {
    /// The Unix time at which the item expires, `None` for never (`lru_crawler metadump`'s
    /// `exp=`, `stats cachedump`'s seconds).
    pub fn expires_at_unix(&self) -> Option<i64> {
        (self.header.expiry != 0).then(|| self.partition.clock.unix_of(self.header.expiry))
    }

    /// The Unix time of the last access (`lru_crawler metadump`'s `la=`).
    pub fn last_access_unix(&self) -> i64 {
        self.partition.clock.unix_of(self.header.time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Clock, PagePool, StorageConfig, StoreMode, StoreRequest};
    use std::sync::Arc;

    fn partition() -> (Partition, Arc<Clock>) {
        let config = Arc::new(StorageConfig::default());
        let pool = Arc::new(PagePool::new(config.memory_limit, config.page_size));
        let clock = Arc::new(Clock::starting_at_unix(1_700_000_000));
        (Partition::new(config, pool, clock.clone()), clock)
    }

    fn set(partition: &mut Partition, key: &[u8], value: &[u8], exptime: i64) {
        partition
            .store(&StoreRequest::new(
                0,
                key,
                value,
                0,
                exptime,
                StoreMode::Set,
            ))
            .expect("stored");
    }

    /// Walks the whole partition in slices of `budget` chunks, collecting keys.
    fn walk(partition: &mut Partition, budget: usize, classes: ClassSet) -> (Vec<Vec<u8>>, usize) {
        let mut keys = Vec::new();
        let mut cursor = Some(WalkCursor::default());
        let mut slices = 0;
        while let Some(at) = cursor {
            slices += 1;
            cursor =
                partition.walk_items(at, budget, classes, |item| keys.push(item.key().to_vec()));
        }
        keys.sort();
        (keys, slices)
    }

    #[test]
    fn a_walk_in_small_slices_lists_every_live_item_once() {
        let (mut partition, _clock) = partition();
        let mut expected = Vec::new();
        for n in 0..5000 {
            let key = format!("key{n:05}").into_bytes();
            // Two sizes, so two classes and pages of different chunk counts.
            let value = if n % 2 == 0 {
                vec![b'x'; 10]
            } else {
                vec![b'y'; 900]
            };
            set(&mut partition, &key, &value, 0);
            expected.push(key);
        }
        expected.sort();
        let (keys, slices) = walk(&mut partition, 64, ClassSet::ALL);
        assert_eq!(keys, expected);
        assert!(slices > 5000 / 64, "bounded slices: {slices}");
    }

    #[test]
    fn a_walk_skips_and_reclaims_dead_items_and_filters_classes() {
        let (mut partition, clock) = partition();
        set(&mut partition, b"small", b"v", 0);
        set(&mut partition, b"large", &[b'z'; 5000], 0);
        set(&mut partition, b"short", b"v", 10);
        clock.advance(11);
        let (keys, _) = walk(&mut partition, 7, ClassSet::ALL);
        assert_eq!(keys, vec![b"large".to_vec(), b"small".to_vec()]);
        assert_eq!(partition.stats().crawler_reclaimed, 1);
        assert_eq!(partition.len(), 2);
        let mut small_class = 0;
        let _ = partition.walk_items(WalkCursor::default(), 1 << 20, ClassSet::ALL, |item| {
            if item.key() == b"small" {
                small_class = item.class_id();
            }
        });
        let (keys, _) = walk(
            &mut partition,
            1000,
            ClassSet::NONE.with(u32::from(small_class)),
        );
        assert_eq!(keys, vec![b"small".to_vec()]);
    }

    #[test]
    fn items_report_absolute_times() {
        let (mut partition, clock) = partition();
        set(&mut partition, b"forever", b"v", 0);
        set(&mut partition, b"minute", b"v", 60);
        clock.advance(5);
        let mut seen = Vec::new();
        let _ = partition.walk_items(WalkCursor::default(), 1 << 20, ClassSet::ALL, |item| {
            seen.push((
                item.key().to_vec(),
                item.expires_at_unix(),
                item.last_access_unix(),
            ))
        });
        seen.sort();
        assert_eq!(
            seen,
            vec![
                (b"forever".to_vec(), None, 1_700_000_000),
                (b"minute".to_vec(), Some(1_700_000_060), 1_700_000_000),
            ]
        );
    }
}

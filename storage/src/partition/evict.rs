//! Eviction: which item of a slab class leaves when the class needs a chunk.
//!
//! Owns: S3-FIFO over CLOCK per class (the small FIFO of items on probation, the main CLOCK
//! hand and its frequency decrements), the reclaim of dead items the hand passes, the eviction
//! counters, and the age of a class's eviction candidates that page moves compare. Must not
//! touch: pages (`pages.rs` decides when to evict for a page move), or the index beyond
//! `unlink`.

use super::Partition;
use crate::item::{self, Header};

/// Chunks the allocator's CLOCK hand looks at for an expired item when evictions are off.
const RECLAIM_SCAN_WITHOUT_EVICTIONS: usize = 256;

impl Partition {
    /// Frees a chunk of `class` by eviction, S3-FIFO style: while more than a tenth of the
    /// class is on probation, the small FIFO's oldest item goes (or, if it was read while on
    /// probation, moves to the main CLOCK and the next one is tried); otherwise the main CLOCK
    /// hand lowers frequencies until it finds an item at 0. One-hit wonders thus leave after
    /// a short stay while items read more than once compete in the CLOCK. Dead items found on
    /// the way are reclaimed. Without evictions only dead items are freed.
    pub(super) fn evict_in_class(&mut self, class: usize) -> bool {
        let total = self.slabs.classes[class].total_chunks();
        if total == 0 {
            return false;
        }
        if !self.config.evictions {
            return self.reclaim_near_hand(class, total);
        }
        let small_share = (total / 10).max(1);
        if self.slabs.classes[class].probation_items >= small_share
            && self.evict_from_probation(class)
        {
            return true;
        }
        self.evict_with_hand(class, total) || self.evict_from_probation(class)
    }

    /// Pops the small FIFO until an item is freed; items read while on probation are promoted
    /// to the main CLOCK (with frequency 1, one pass of grace) instead.
    fn evict_from_probation(&mut self, class: usize) -> bool {
        let now = self.clock.now();
        while let Some(queued) = self.slabs.classes[class].probation.pop_front() {
            if !self.slabs.is_queued_item(queued, self.cas_enabled) {
                continue; // stale: the item already left
            }
            let handle = queued.handle;
            let chunk = self.slabs.chunk(handle);
            let header = Header::read(chunk, self.cas_enabled);
            if let Some(death) = self.death(&header, now) {
                self.reclaim(handle, &header, death);
                return true;
            }
            if item::freq(header.bits) > 0 {
                let chunk = self.slabs.chunk_mut(handle);
                item::set_probation(chunk, false);
                item::set_freq(chunk, 1);
                self.slabs.classes[class].probation_items -= 1;
                self.counters.small_fifo_promotions += 1;
                continue;
            }
            self.evict(handle, &header, now);
            self.counters.small_fifo_evictions += 1;
            return true;
        }
        false
    }

    /// The main CLOCK: skips items on probation, lowers frequencies, evicts the first item
    /// found at frequency 0 (or dead).
    fn evict_with_hand(&mut self, class: usize, total: usize) -> bool {
        let now = self.clock.now();
        for _ in 0..(usize::from(item::FREQ_MAX) + 1) * total + 1 {
            let Some((handle, header)) = self.advance_hand(class, total) else {
                continue;
            };
            if let Some(death) = self.death(&header, now) {
                self.reclaim(handle, &header, death);
                return true;
            }
            if header.probation {
                continue;
            }
            let freq = item::freq(header.bits);
            if freq > 0 {
                let chunk = self.slabs.chunk_mut(handle);
                item::set_freq(chunk, freq - 1);
                continue;
            }
            self.evict(handle, &header, now);
            return true;
        }
        false
    }

    /// Without evictions: looks a bounded way past the hand for a dead item to reclaim.
    fn reclaim_near_hand(&mut self, class: usize, total: usize) -> bool {
        let now = self.clock.now();
        for _ in 0..total.min(RECLAIM_SCAN_WITHOUT_EVICTIONS) {
            let Some((handle, header)) = self.advance_hand(class, total) else {
                continue;
            };
            if let Some(death) = self.death(&header, now) {
                self.reclaim(handle, &header, death);
                return true;
            }
        }
        false
    }

    /// Moves the class's CLOCK hand one chunk on (over `total` chunks) and returns the item
    /// head it passed, if the chunk was one.
    fn advance_hand(&mut self, class: usize, total: usize) -> Option<(u32, Header)> {
        let slab = &mut self.slabs.classes[class];
        let pos = slab.hand % total;
        slab.hand = (pos + 1) % total;
        let handle = self.slabs.handle_at(class, pos);
        let chunk = self.slabs.chunk(handle);
        item::is_head(chunk).then(|| (handle, Header::read(chunk, self.cas_enabled)))
    }

    /// Evicts a live item, counting it. An item whose frequency is not 0 was read since the
    /// hand last passed: memcached's `evicted_active`. (The hand and the small FIFO only take
    /// items at 0; emptying a page for another class takes every item on it.)
    pub(super) fn evict(&mut self, handle: u32, header: &Header, now: u32) {
        let age = now.saturating_sub(header.time);
        let unfetched = header.bits & item::FETCHED == 0;
        let active = item::freq(header.bits) > 0;
        self.counters.evictions += 1;
        if unfetched {
            self.counters.evicted_unfetched += 1;
        }
        if active {
            self.counters.evicted_active += 1;
        }
        let class = self.slabs.class_of(handle);
        let slab = &mut self.slabs.classes[class];
        slab.counters.evicted += 1;
        slab.counters.evicted_time = u64::from(age);
        slab.last_evicted_age = age;
        if header.expiry != 0 {
            slab.counters.evicted_nonzero += 1;
        }
        if unfetched {
            slab.counters.evicted_unfetched += 1;
        }
        if active {
            slab.counters.evicted_active += 1;
        }
        self.unlink(handle);
    }

    /// Seconds since the last access of the item at (or soon after) the class's hand: an
    /// estimate of how cold the class's eviction candidates are.
    pub(super) fn class_age(&self, class: usize, now: u32) -> u32 {
        let slab = &self.slabs.classes[class];
        let total = slab.total_chunks();
        for step in 0..total.min(64) {
            let handle = self.slabs.handle_at(class, (slab.hand + step) % total);
            let chunk = self.slabs.chunk(handle);
            if item::is_head(chunk) {
                return now.saturating_sub(item::last_access(chunk));
            }
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fill_until_full, partition, set};
    use super::*;
    use crate::partition::DeleteRequest;
    use crate::slab::Queued;

    #[test]
    fn probation_queue_stays_bounded_without_evictions() {
        let (mut partition, _, _) = partition(64 << 20);
        for i in 0..50_000 {
            let key = format!("k{i}");
            set(&mut partition, key.as_bytes(), b"v");
            partition.delete(&DeleteRequest::new(0, key.as_bytes()));
        }
        for class in &partition.slabs.classes {
            assert!(class.probation.len() <= 2 * class.probation_items + 65);
        }
    }

    #[test]
    fn every_item_on_probation_is_in_the_small_fifo() {
        // Deletes leave stale queue entries, so some stores set off a compaction.
        let (mut partition, _, _) = partition(64 << 20);
        for i in 0..10_000 {
            let key = format!("k{i}");
            set(&mut partition, key.as_bytes(), b"v");
            if i % 8 != 0 {
                partition.delete(&DeleteRequest::new(0, key.as_bytes()));
            }
        }
        for i in (0..10_000).step_by(8) {
            let item = partition.peek(0, format!("k{i}").as_bytes()).expect("kept");
            let (handle, on_probation) = (item.handle, item.header.probation);
            let class = partition.slabs.class_of(handle);
            assert!(on_probation);
            assert!(
                partition.slabs.classes[class].probation.contains(&Queued {
                    handle,
                    tag: item::queue_tag(partition.slabs.chunk(handle), true)
                }),
                "k{i} is on probation but not in the small FIFO: it can never be evicted"
            );
        }
    }

    #[test]
    fn a_reused_chunk_does_not_inherit_the_queue_place_of_its_last_item() {
        // k5 is deleted early (its small-FIFO entry stays behind) and its chunk goes to a new
        // key; evicting the ten oldest items must not take the new key from k5's old place.
        let (mut partition, pool, _) = partition(1 << 20);
        fill_until_full(&mut partition, &pool, &[b'v'; 100]);
        partition.delete(&DeleteRequest::new(0, b"k5"));
        set(&mut partition, b"fresh", &[b'v'; 100]);
        for n in 0..10 {
            set(&mut partition, format!("new{n}").as_bytes(), &[b'v'; 100]);
        }
        assert!(
            partition.peek(0, b"fresh").is_some(),
            "the new key was evicted early"
        );
        for old in [0, 1, 2, 3, 4, 6, 7, 8, 9, 10] {
            assert!(
                partition.peek(0, format!("k{old}").as_bytes()).is_none(),
                "k{old} kept"
            );
        }
        assert_eq!(partition.stats().evictions, 10);
    }

    #[test]
    fn read_items_are_promoted_and_one_hit_wonders_leave_first() {
        let (mut partition, _, _) = partition(2 << 20);
        let value = [b'v'; 100];
        for i in 0..2_000 {
            set(&mut partition, format!("hot{i}").as_bytes(), &value);
            assert!(partition.get(0, format!("hot{i}").as_bytes()).is_some());
        }
        for i in 0..200_000 {
            set(&mut partition, format!("cold{i}").as_bytes(), &value);
        }
        let kept = (0..2_000)
            .filter(|i| partition.peek(0, format!("hot{i}").as_bytes()).is_some())
            .count();
        assert!(
            kept > 1_900,
            "items read once survive a flood of new keys: {kept}"
        );
        let promoted = (0..2_000)
            .filter_map(|i| {
                partition
                    .peek(0, format!("hot{i}").as_bytes())
                    .map(|it| it.header)
            })
            .filter(|header| !header.probation)
            .count();
        assert_eq!(promoted, kept, "they were promoted to the main CLOCK");
        let stats = partition.stats();
        assert_eq!(stats.small_fifo_promotions, promoted as u64);
        // Never read, the flood leaves from the small queue; the hot keys are not touched.
        assert!(stats.evictions > 180_000);
        assert_eq!(stats.small_fifo_evictions, stats.evictions);
    }
}

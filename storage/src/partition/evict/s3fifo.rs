//! S3-FIFO over CLOCK, the engine's policy (Yang et al., "FIFO queues are all you need for
//! cache eviction", SOSP 2023), per slab class.
//!
//! A new key starts on probation in the class's small FIFO (a queue of 4-byte handles with a
//! tag, [`SMALL_SHARE_PERCENT`] of the class); when memory is needed and the FIFO holds more
//! than that share, its oldest item is evicted unless it was read meanwhile, in which case it
//! joins the main CLOCK with frequency 1 (one pass of grace). Otherwise the class's CLOCK hand
//! walks the chunks ([`super::clock::sweep_hand`]), skipping items on probation. A replaced
//! key has proven popular and goes straight to the main CLOCK with its old item's frequency.
//! One-hit wonders (cache-aside misses on a long tail) thus stay only briefly.
//!
//! A key evicted from the small FIFO leaves a fingerprint in the class's ghost table, which
//! holds about as many as the main CLOCK holds items; a key set again while its fingerprint is
//! there (a cache-aside miss on a key that was here recently) skips probation and goes to the
//! main CLOCK at frequency 0: its first stay proved it is asked for again, only not within
//! the small FIFO's short window. This is the paper's ghost queue, as a direct-mapped table of
//! 4-byte fingerprints rather than a FIFO of keys: 4 bytes per main item, no allocation per
//! eviction, and on W5 within 0.001 of an exact FIFO of hashes.
//!
//! Owns: the small FIFO's entries and count (kept in the slab class, which drops the entries
//! of a page it gives up), the PROBATION mark in item headers, and the ghost tables. Must not
//! touch: the hand's sweep itself (`clock.rs`), or items other than through their header
//! marks.

use super::clock::{near_hand, sweep_hand};
use super::{Policy, Sweep, Victim};
use crate::item::{self, Header};
use crate::slab::{Queued, Slabs};

/// The small FIFO's share of a class's chunks. The paper's 10% left W5 at 0.645; with the
/// ghost table giving a second chance, a shorter probation keeps more room for proven keys
/// (`examples/lazy_loading.rs` with an exact FIFO of hashes as the ghost: W5 0.652 at 10%,
/// 0.655 at 5%, 0.656 at 2%; the scan trace 0.648, 0.651, 0.653). 5%, not 2%: the gain below
/// 5% is within noise, and a small class needs a queue of more than a handful of items to
/// give a new key time to be read.
const SMALL_SHARE_PERCENT: usize = 5;

/// The small FIFO's share of a class of `total` chunks.
fn small_share(total: usize) -> usize {
    (total * SMALL_SHARE_PERCENT / 100).max(1)
}

/// S3-FIFO; its state is the slab classes' small FIFOs, the items' marks, and a ghost table
/// per class.
pub(in crate::partition) struct S3Fifo {
    ghosts: Vec<Ghost>,
}

impl S3Fifo {
    pub(in crate::partition) fn new(classes: usize) -> S3Fifo {
        S3Fifo {
            ghosts: (0..classes).map(|_| Ghost::default()).collect(),
        }
    }
}

/// Fingerprints of keys recently evicted from a class's small FIFO, in a direct-mapped table
/// (a newer key's fingerprint overwrites an older one in its slot, so the table forgets at
/// random rather than oldest first). It grows, empty, to the next power of two above the
/// main CLOCK's item count when that passes its size.
#[derive(Default)]
struct Ghost {
    /// 0 is an empty slot; fingerprints have their low bit set.
    slots: Vec<u32>,
}

impl Ghost {
    /// Where `hash` goes and what it leaves there. The key hash's bits 32..56 choose the
    /// partition, so both come from a product that mixes every bit.
    #[inline]
    fn slot_and_print(&self, hash: u64) -> (usize, u32) {
        let mixed = hash.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let bits = self.slots.len().trailing_zeros();
        ((mixed >> (64 - bits)) as usize, mixed as u32 | 1)
    }

    /// Remembers `hash`, in a table of at least `main_items` slots.
    fn insert(&mut self, hash: u64, main_items: usize) {
        if self.slots.is_empty() || self.slots.len() < main_items {
            self.slots = vec![0; main_items.next_power_of_two().max(64)];
        }
        let (slot, print) = self.slot_and_print(hash);
        self.slots[slot] = print;
    }

    /// Whether `hash` is remembered; forgets it if so.
    #[inline]
    fn take(&mut self, hash: u64) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let (slot, print) = self.slot_and_print(hash);
        let found = self.slots[slot] == print;
        if found {
            self.slots[slot] = 0;
        }
        found
    }
}

impl Policy for S3Fifo {
    #[inline]
    fn linked(
        &mut self,
        slabs: &mut Slabs,
        handle: u32,
        header: &mut Header,
        replaced: Option<u8>,
        hash: u64,
        cas_enabled: bool,
    ) {
        match replaced {
            Some(old_bits) => {
                header.bits = item::with_freq(header.bits, item::freq(old_bits));
                header.probation = false;
            }
            None if self.ghosts[slabs.class_of(handle)].take(hash) => {
                header.bits = item::with_freq(header.bits, 0);
                header.probation = false;
            }
            None => {
                header.bits = item::with_freq(header.bits, 0);
                header.probation = true;
            }
        }
        let chunk = slabs.chunk_mut(handle);
        item::set_bits(chunk, header.bits);
        item::set_probation(chunk, header.probation);
        if header.probation {
            // Only now that the chunk says so: compaction keeps just the entries whose chunk
            // is on probation, and an item missing from the queue could never be evicted.
            let tag = item::queue_tag(slabs.chunk(handle), cas_enabled);
            let class = slabs.class_of(handle);
            let slab = &mut slabs.classes[class];
            slab.probation.push_back(Queued { handle, tag });
            slab.probation_items += 1;
            slabs.compact_probation(class, cas_enabled);
        }
    }

    #[inline]
    fn unlinked(&mut self, slabs: &mut Slabs, handle: u32, header: &Header) {
        if header.probation {
            let class = slabs.class_of(handle);
            slabs.classes[class].probation_items -= 1;
        }
    }

    fn moved(
        &mut self,
        slabs: &mut Slabs,
        class: usize,
        _from: u32,
        to: u32,
        header: &Header,
        cas_enabled: bool,
    ) {
        // The entry naming the old chunk goes stale (skipped, or dropped with its page).
        if header.probation {
            let tag = item::queue_tag(slabs.chunk(to), cas_enabled);
            slabs.classes[class]
                .probation
                .push_back(Queued { handle: to, tag });
            slabs.compact_probation(class, cas_enabled);
        }
    }

    fn rewritten(
        &mut self,
        slabs: &mut Slabs,
        handle: u32,
        header: &Header,
        old_tag: u32,
        cas_enabled: bool,
    ) {
        let tag = item::queue_tag(slabs.chunk(handle), cas_enabled);
        if header.probation && tag != old_tag {
            // A new CAS makes the item's entry look stale: queue it again, as just written.
            let class = slabs.class_of(handle);
            slabs.classes[class]
                .probation
                .push_back(Queued { handle, tag });
            slabs.compact_probation(class, cas_enabled);
        }
    }

    fn evicted(&mut self, slabs: &Slabs, class: usize, header: &Header, hash: u64) {
        if header.probation {
            let slab = &slabs.classes[class];
            self.ghosts[class].insert(hash, slab.items - slab.probation_items);
        }
    }

    #[inline]
    fn victim(&mut self, sweep: &mut Sweep<'_>, class: usize, total: usize) -> Option<Victim> {
        // Every item on probation (a class of few items among chains' last chunks): the
        // hand would pass over them all, four times round.
        let slab = &sweep.slabs.classes[class];
        let all_on_probation = slab.probation_items >= slab.items;
        if (slab.probation_items >= small_share(total) || all_on_probation)
            && let Some(victim) = from_probation(sweep, class)
        {
            return Some(victim);
        }
        sweep_hand(sweep, class, total).or_else(|| from_probation(sweep, class))
    }

    fn candidate(&self, slabs: &Slabs, class: usize) -> Option<u32> {
        near_hand(slabs, class)
    }
}

/// Pops the small FIFO until it finds an item to give up; items read while on probation are
/// promoted to the main CLOCK (with frequency 1, one pass of grace) instead.
fn from_probation(sweep: &mut Sweep<'_>, class: usize) -> Option<Victim> {
    while let Some(queued) = sweep.slabs.classes[class].probation.pop_front() {
        if !sweep.slabs.is_queued_item(queued, sweep.cas_enabled) {
            continue; // stale: the item already left
        }
        let handle = queued.handle;
        let header = Header::read(sweep.slabs.chunk(handle), sweep.cas_enabled);
        let death = sweep.death(&header);
        if death.is_none() {
            if item::freq(header.bits) > 0 {
                let chunk = sweep.slabs.chunk_mut(handle);
                item::set_probation(chunk, false);
                item::set_freq(chunk, 1);
                sweep.slabs.classes[class].probation_items -= 1;
                sweep.counters.small_fifo_promotions += 1;
                continue;
            }
            sweep.counters.small_fifo_evictions += 1;
        }
        return Some(Victim {
            handle,
            header,
            death,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::tests::{fill_until_full, partition, set};
    use crate::partition::{DeleteRequest, Partition, StoreMode, StoreRequest};
    use crate::slab::Queued;
    use crate::{Clock, KeyHasher, PagePool, StorageConfig};
    use std::sync::Arc;

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
    fn the_ghost_remembers_a_key_until_it_comes_back() {
        let mut ghost = Ghost::default();
        assert!(!ghost.take(42), "an empty ghost knows nothing");
        for hash in 0..32u64 {
            ghost.insert(hash.wrapping_mul(0x0123_4567_89ab_cdef), 0);
        }
        assert_eq!(ghost.slots.len(), 64, "the smallest table");
        let kept = (0..32u64)
            .filter(|&hash| ghost.take(hash.wrapping_mul(0x0123_4567_89ab_cdef)))
            .count();
        // Direct-mapped: a later key may take an earlier one's slot, rarely.
        assert!(kept >= 24, "{kept} of 32 remembered");
        assert!(!ghost.take(0), "taken once, forgotten");
        assert!(!ghost.take(7), "never inserted");
        ghost.insert(1, 1000);
        assert_eq!(ghost.slots.len(), 1024, "grows with the main CLOCK");
        assert!(ghost.take(1));
    }

    #[test]
    fn a_key_set_again_soon_after_its_eviction_skips_probation() {
        // A fixed hasher: which ghost slots the keys take is the same in every run.
        let config = Arc::new(StorageConfig {
            memory_limit: 1 << 20,
            ..StorageConfig::default()
        });
        let pool = Arc::new(PagePool::new(config.memory_limit, config.page_size));
        let clock = Arc::new(Clock::starting_at_unix(1_700_000_000));
        let hasher = KeyHasher::with_seed(1, 1);
        let mut partition = Partition::with_key_hasher(config, pool.clone(), clock, hasher.clone());
        let set = |partition: &mut Partition, key: &[u8]| {
            let request =
                StoreRequest::new(hasher.hash(key), key, &[b'v'; 100], 0, 0, StoreMode::Set);
            partition.store(&request).expect("stored");
        };
        let mut written = 0;
        while !pool.is_exhausted() || partition.slabs.classes.iter().any(|c| c.free_chunks() > 0) {
            set(&mut partition, format!("k{written}").as_bytes());
            written += 1;
        }
        set(&mut partition, b"new");
        let peek = |partition: &mut Partition, key: &[u8]| {
            partition
                .peek(hasher.hash(key), key)
                .map(|item| (item.header.probation, item::freq(item.header.bits)))
        };
        assert_eq!(
            peek(&mut partition, b"k0"),
            None,
            "evicted from the small FIFO"
        );
        set(&mut partition, b"k0");
        assert_eq!(
            peek(&mut partition, b"k0"),
            Some((false, 0)),
            "back soon: straight to the main CLOCK, at frequency 0"
        );
        // A key as long as the others' (`k1000` to `k8191`): of their slab class.
        set(&mut partition, b"kseen");
        assert_eq!(
            peek(&mut partition, b"kseen"),
            Some((true, 0)),
            "a new key starts on probation"
        );
        let stats = partition.stats();
        assert_eq!(stats.evictions, 3);
        assert_eq!(stats.small_fifo_evictions, 3);
    }

    #[test]
    fn read_items_are_promoted_and_one_hit_wonders_leave_first() {
        let (mut partition, _, _) = partition(2 << 20);
        let value = [b'v'; 100];
        // Keys of one length (`hot000000`, `old000000`): items of one slab class.
        for i in 0..2_000 {
            set(&mut partition, format!("hot{i:06}").as_bytes(), &value);
            assert!(partition.get(0, format!("hot{i:06}").as_bytes()).is_some());
        }
        for i in 0..200_000 {
            set(&mut partition, format!("old{i:06}").as_bytes(), &value);
        }
        let kept = (0..2_000)
            .filter(|i| partition.peek(0, format!("hot{i:06}").as_bytes()).is_some())
            .count();
        assert!(
            kept > 1_900,
            "items read once survive a flood of new keys: {kept}"
        );
        let promoted = (0..2_000)
            .filter_map(|i| {
                partition
                    .peek(0, format!("hot{i:06}").as_bytes())
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

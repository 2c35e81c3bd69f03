//! `slabs reassign` and `slabs automove`: the operator moving slab pages between classes, and
//! switching the background moves on and off.
//!
//! Owns: memcached's refusals and their order (proto_text.c's `process_slabs_command`,
//! slabs.c's `do_slabs_reassign`), which partition gives the page, and the automove setting
//! `stats settings` reports. Must not touch: how a page is emptied (storage's).
//!
//! Class ids are memcached's: 1-based, as `stats slabs` reports them, 0 the global page pool
//! (the pool's spare pages). Pages are counted over every partition, one lock at a time; the
//! page moves in the partition holding the most pages of the source class. memcached moves the
//! page on its rebalancer thread after answering `OK` (and answers `BUSY` meanwhile); here the
//! move is done before the answer, so there is never a `BUSY`.

use super::Executor;
use ferrocache_protocol::reply;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

/// `slabs automove`'s run-time settings, for `stats settings`; the switch the partitions read
/// is the page pool's.
#[derive(Debug)]
pub struct SlabsState {
    level: AtomicU8,
    ratio: AtomicU64,
}

impl Default for SlabsState {
    /// memcached's defaults: automove 1, ratio 0.8.
    fn default() -> Self {
        SlabsState {
            level: AtomicU8::new(1),
            ratio: AtomicU64::new(0.8f64.to_bits()),
        }
    }
}

impl SlabsState {
    /// `slab_automove` as `stats settings` reports it.
    pub fn level(&self) -> u8 {
        self.level.load(Ordering::Relaxed)
    }

    /// `slab_automove_ratio` as `stats settings` reports it.
    pub fn ratio(&self) -> f64 {
        f64::from_bits(self.ratio.load(Ordering::Relaxed))
    }
}

/// Why `slabs reassign` moved nothing, in memcached's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReassignRefusal {
    Same,
    BadClass,
    NoSpare,
}

impl ReassignRefusal {
    /// memcached's reply line.
    pub fn reply(self) -> &'static [u8] {
        match self {
            ReassignRefusal::Same => reply::REASSIGN_SAME,
            ReassignRefusal::BadClass => reply::REASSIGN_BADCLASS,
            ReassignRefusal::NoSpare => reply::REASSIGN_NOSPARE,
        }
    }
}

/// The storage class index of a wire id: `None` for the pool (0).
fn class_index(id: i32) -> Option<usize> {
    (id > 0).then(|| id as usize - 1)
}

impl Executor<'_> {
    /// Pages class `id` (1-based) holds over every partition, or the pool's spare pages for 0.
    fn class_pages(&self, id: i32) -> usize {
        let cache = &self.shared.cache;
        match class_index(id) {
            None => cache.pool.spare_pages(),
            Some(class) => (0..cache.partition_count())
                .map(|p| cache.partition(p).lock().class_pages(class))
                .sum(),
        }
    }

    /// `slabs reassign <src> <dst>`: one page of `src` goes to `dst`, checked in memcached's
    /// order (same ids, `-1` resolved to a class with a page to spare, ids in range, the
    /// source's page count).
    pub fn slabs_reassign(&self, src: i32, dst: i32) -> Result<(), ReassignRefusal> {
        if src == dst {
            return Err(ReassignRefusal::Same);
        }
        let cache = &self.shared.cache;
        let largest = cache.partition(0).lock().class_count() as i32;
        // slabs_reassign_pick_any: the first class other than dst with more than one page.
        let src = if src == -1 {
            (1..=largest)
                .find(|&id| id != dst && self.class_pages(id) > 1)
                .unwrap_or(-1)
        } else {
            src
        };
        if !(0..=largest).contains(&src) || !(0..=largest).contains(&dst) {
            return Err(ReassignRefusal::BadClass);
        }
        if self.class_pages(src) < 2 {
            return Err(ReassignRefusal::NoSpare);
        }
        let (from, to) = (class_index(src), class_index(dst));
        let mut order: Vec<(usize, usize)> = (0..cache.partition_count())
            .map(|p| {
                let partition = cache.partition(p).lock();
                let held = match from {
                    Some(class) => partition.class_pages(class),
                    None => usize::MAX - partition.pages(),
                };
                (held, p)
            })
            .collect();
        // The partition holding most of src's pages (from the pool: the one holding fewest
        // pages); if it cannot give one (evictions off, every page in use), the next.
        order.sort_unstable_by(|a, b| b.cmp(a));
        for (held, p) in order {
            if held == 0 {
                break;
            }
            if cache.partition(p).lock().reassign_page(from, to) {
                break;
            }
        }
        // memcached answers OK before its rebalancer tries, whatever comes of it.
        Ok(())
    }

    /// `slabs automove <level>`: 0 stops the partitions' background page moves, 1 and 2 let
    /// them run (ferrocached has one automove algorithm; 2 is recorded as given).
    pub fn slabs_automove(&self, level: u8) {
        self.shared.slabs.level.store(level, Ordering::Relaxed);
        self.shared.cache.pool.set_automove(level != 0);
    }

    /// `slabs automove ratio <r>`: recorded for `stats settings`.
    pub fn slabs_automove_ratio(&self, ratio: f64) {
        self.shared
            .slabs
            .ratio
            .store(ratio.to_bits(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_ids_are_one_based_and_zero_is_the_pool() {
        assert_eq!(class_index(0), None);
        assert_eq!(class_index(1), Some(0));
        assert_eq!(class_index(42), Some(41));
    }
}

//! The one pool of slab pages, capped by the memory limit and shared by every partition.
//!
//! Owns: the page budget (an atomic count against the limit), spare pages waiting for reuse,
//! and the signals that let memory flow between partitions: how many partitions share the pool
//! (their fair share of pages) and how many are starving (need a page while the pool is spent).
//! Must not touch: what is inside a page; partitions cut pages into chunks and give whole pages
//! back when they empty one, or when a starving partition asks and they hold more than their
//! share.
//!
//! A page's memory comes from the heap, or, for a restartable cache (`-e`, or the daemon's
//! memfd under systemd), from a slot of one mapped region that outlives the process
//! ([`PageMemory`]); a region pool never allocates and never frees: its spare pages are the
//! region's free slots, so that every page keeps its place for the next start.

pub(crate) use crate::page::PageMemory;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Slab pages for all partitions, at most `limit` of them out at once.
#[derive(Debug)]
pub struct PagePool {
    page_size: usize,
    limit_pages: AtomicUsize,
    in_use: AtomicUsize,
    /// Pages given back, kept to be handed out again without a new allocation; in a region
    /// pool, every free slot of the region.
    spare: Mutex<Vec<PageMemory>>,
    /// Slots of the region this pool hands out (0: pages come from the heap).
    region_pages: usize,
    /// Partitions drawing from this pool.
    partitions: AtomicUsize,
    /// Partitions that needed a page and found none.
    wanted: AtomicUsize,
    /// Whether partitions move pages between their classes on their own (memcached's
    /// `slab_automove`; `slabs automove 0` clears it).
    automove: AtomicBool,
}

impl PagePool {
    /// A pool of `memory_limit / page_size` pages (at least one).
    pub fn new(memory_limit: usize, page_size: usize) -> Self {
        PagePool {
            page_size,
            limit_pages: AtomicUsize::new((memory_limit / page_size).max(1)),
            in_use: AtomicUsize::new(0),
            spare: Mutex::new(Vec::new()),
            region_pages: 0,
            partitions: AtomicUsize::new(0),
            wanted: AtomicUsize::new(0),
            automove: AtomicBool::new(true),
        }
    }

    /// A pool over the slots of a mapped region: `free` are the slots no partition holds,
    /// `held` how many slots partitions already hold (a restart hands them their pages). The
    /// limit is the region's size: a region cannot grow.
    pub(crate) fn over_region(
        memory_limit: usize,
        page_size: usize,
        free: Vec<PageMemory>,
        held: usize,
    ) -> Self {
        let slots = free.len() + held;
        let pool = PagePool::new(memory_limit.min(slots * page_size), page_size);
        pool.in_use.store(held, Ordering::Release);
        *pool.spare.lock() = free;
        PagePool {
            region_pages: slots,
            ..pool
        }
    }

    /// Every spare page, taken out of the pool (a failed warm start takes its region's slots
    /// back this way).
    pub(crate) fn drain_spare(&self) -> Vec<PageMemory> {
        std::mem::take(&mut *self.spare.lock())
    }

    /// Whether pages live in a mapped region that outlives the process.
    pub fn is_region(&self) -> bool {
        self.region_pages > 0
    }

    /// Bytes per page.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// A page, if the budget allows one more. Its contents are unspecified.
    pub(crate) fn try_take(&self) -> Option<PageMemory> {
        self.in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < self.limit_pages.load(Ordering::Acquire)).then_some(used + 1)
            })
            .ok()?;
        let reused = self.spare.lock().pop();
        if self.is_region() {
            // The limit never exceeds the region, so a slot is free whenever the budget is.
            return reused.or_else(|| {
                self.in_use.fetch_sub(1, Ordering::AcqRel);
                None
            });
        }
        // A zeroed allocation comes from calloc/mmap, so a page costs RSS only once written.
        Some(reused.unwrap_or_else(|| PageMemory::heap(self.page_size)))
    }

    /// Returns a page to the pool.
    pub(crate) fn give_back(&self, page: PageMemory) {
        debug_assert_eq!(page.len(), self.page_size);
        let used = self.in_use.fetch_sub(1, Ordering::AcqRel) - 1;
        let mut spare = self.spare.lock();
        // Keep no more spares than could be handed out again under the current limit; a
        // region's slot is always kept, or the region would lose it for good.
        if page.slot().is_some() || used + spare.len() < self.limit_pages.load(Ordering::Acquire) {
            spare.push(page);
        }
    }

    /// Changes the memory limit (`cache_memlimit`). Lowering it takes effect as partitions
    /// evict: pages already out stay out until given back.
    pub fn set_limit(&self, memory_limit: usize) {
        let mut pages = (memory_limit / self.page_size).max(1);
        if self.is_region() {
            pages = pages.min(self.region_pages);
        }
        self.limit_pages.store(pages, Ordering::Release);
        if self.is_region() {
            return;
        }
        let excess = {
            let mut spare = self.spare.lock();
            let room = self.limit_pages().saturating_sub(self.pages_in_use());
            let keep = spare.len().min(room);
            spare.split_off(keep)
        };
        drop(excess);
    }

    /// Pages the limit allows.
    pub fn limit_pages(&self) -> usize {
        self.limit_pages.load(Ordering::Acquire)
    }

    /// The limit in bytes (`stats` `limit_maxbytes`).
    pub fn limit_bytes(&self) -> usize {
        self.limit_pages() * self.page_size
    }

    /// Pages given back and kept for reuse (memcached's `slab_global_page_pool`).
    pub fn spare_pages(&self) -> usize {
        self.spare.lock().len()
    }

    /// Pages handed out to partitions now.
    pub fn pages_in_use(&self) -> usize {
        self.in_use.load(Ordering::Acquire)
    }

    /// Whether every page the limit allows is handed out.
    pub fn is_exhausted(&self) -> bool {
        self.pages_in_use() >= self.limit_pages()
    }

    /// Pages that could be handed out now.
    pub fn free_pages(&self) -> usize {
        self.limit_pages().saturating_sub(self.pages_in_use())
    }

    /// Counts a partition drawing from the pool (its fair share shrinks).
    pub fn register_partition(&self) {
        self.partitions.fetch_add(1, Ordering::AcqRel);
    }

    /// Undoes [`PagePool::register_partition`].
    pub fn unregister_partition(&self) {
        let _ = self
            .partitions
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Pages each registered partition may hold before it must give pages to starving ones.
    pub fn fair_share(&self) -> usize {
        (self.limit_pages() / self.partitions.load(Ordering::Acquire).max(1)).max(1)
    }

    /// A partition needs a page and found the pool spent.
    pub fn want_page(&self) {
        self.wanted.fetch_add(1, Ordering::AcqRel);
    }

    /// A starving partition got its page (or went away).
    pub fn page_wanted_no_more(&self) {
        let _ = self
            .wanted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Whether the partitions' maintenance moves pages between classes by itself.
    pub fn automove(&self) -> bool {
        self.automove.load(Ordering::Relaxed)
    }

    /// Turns the background page moves on or off (`slabs automove`).
    pub fn set_automove(&self, on: bool) {
        self.automove.store(on, Ordering::Relaxed);
    }

    /// Partitions starving for a page.
    pub fn pages_wanted(&self) -> usize {
        self.wanted.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_hands_out_more_than_the_limit() {
        let pool = PagePool::new(3 * 4096, 4096);
        let pages: Vec<_> = std::iter::from_fn(|| pool.try_take()).take(10).collect();
        assert_eq!(pages.len(), 3);
        assert!(pool.is_exhausted());
        for page in pages {
            pool.give_back(page);
        }
        assert_eq!(pool.pages_in_use(), 0);
        assert!(pool.try_take().is_some());
    }

    #[test]
    fn lowering_the_limit_stops_new_pages() {
        let pool = PagePool::new(4 * 4096, 4096);
        let first = pool.try_take().unwrap();
        let second = pool.try_take().unwrap();
        pool.set_limit(2 * 4096);
        assert!(pool.try_take().is_none());
        pool.give_back(first);
        assert!(pool.try_take().is_some());
        pool.give_back(second);
        assert_eq!(pool.limit_bytes(), 2 * 4096);
    }

    #[test]
    fn a_region_pool_hands_out_its_slots_only_and_keeps_every_one() {
        let region: &'static mut [u8] = Box::leak(vec![0u8; 4 * 4096].into_boxed_slice());
        let free = region
            .chunks_exact_mut(4096)
            .enumerate()
            .map(|(slot, data)| PageMemory::region(slot as u32, data))
            .collect();
        let pool = PagePool::over_region(64 * 4096, 4096, free, 0);
        assert_eq!(pool.limit_pages(), 4, "a region cannot grow");
        pool.set_limit(64 * 4096);
        assert_eq!(pool.limit_pages(), 4);
        let pages: Vec<_> = std::iter::from_fn(|| pool.try_take()).take(10).collect();
        assert_eq!(pages.len(), 4);
        pool.set_limit(4096);
        for page in pages {
            assert!(page.slot().is_some());
            pool.give_back(page);
        }
        assert_eq!(
            pool.spare_pages(),
            4,
            "slots are kept under a lowered limit"
        );
        assert_eq!(pool.drain_spare().len(), 4);
    }
}

//! Memory: where a class's free chunks come from and where its pages go.
//!
//! Owns: the allocator's order of resort for a chunk (a free one, a pool page, an eviction, a
//! page taken from another class), emptying a page by rescuing its live items to other pages
//! of the class (memcached's slab_reassign), moving a chunk and relinking its item, and the
//! background page moves of `maintain`: empty pages back to the pool, pages for starving
//! partitions or a lowered limit, and slab_automove between classes. Must not touch: which
//! item is a class's next victim (`evict.rs`) or how items are written.

use super::Partition;
use super::evict::Policy;
use crate::error::StoreError;
use crate::item::{self, Header, NO_HANDLE};

/// Victims of its own class a page move may evict to make room for one rescued item.
const RESCUE_EVICTIONS: usize = 8;

impl Partition {
    /// A free chunk of `class`: a free one, a new page from the pool, a chunk freed by the
    /// class's CLOCK hand, or a page taken from another class. Fails only when none of these
    /// works (evictions off, or the partition has no page to give).
    pub(super) fn alloc_chunk(&mut self, class: usize) -> Result<u32, StoreError> {
        loop {
            if let Some(handle) = self.slabs.take_free_chunk(class) {
                return Ok(handle);
            }
            if self.take_pool_page(class) || self.evict_in_class(class) || self.steal_page(class) {
                continue;
            }
            self.slabs.classes[class].counters.outofmemory += 1;
            if !self.starving && self.pool.is_exhausted() {
                self.starving = true;
                self.pool.want_page();
            }
            return Err(StoreError::OutOfMemory);
        }
    }

    fn take_pool_page(&mut self, class: usize) -> bool {
        if !self.slabs.can_add_page() {
            return false;
        }
        // Leave the last free pages to partitions that are starving.
        let wanted = self.pool.pages_wanted();
        if wanted > 0 && !self.starving && self.pool.free_pages() <= wanted {
            return false;
        }
        let Some(page) = self.pool.try_take() else {
            return false;
        };
        self.slabs.add_page(class, page);
        if self.starving {
            self.starving = false;
            self.pool.page_wanted_no_more();
        }
        true
    }

    /// Empties one page of another class and gives it to `class` (the class has no page or
    /// nothing its hand can free). Prefers the class holding the most pages.
    fn steal_page(&mut self, class: usize) -> bool {
        let Some(donor) = (0..self.slabs.classes.len())
            .filter(|&other| other != class && !self.slabs.classes[other].pages.is_empty())
            .max_by_key(|&other| self.slabs.classes[other].pages.len())
        else {
            return false;
        };
        let Some(page) = self.empty_a_page(donor) else {
            return false;
        };
        let data = self.slabs.remove_page(page);
        self.slabs.add_page(class, data);
        self.counters.slabs_moved += 1;
        true
    }

    /// Empties one page of `class` for another use and returns its id: the class's page with
    /// the fewest chunks in use. Each live single-chunk item on it moves to a free chunk of the
    /// class elsewhere, made if need be by evicting the class's own next victims (memcached's
    /// slab_reassign "rescue"), so a page move costs the class its coldest items, not whichever
    /// items the page held: chunks are reused as items come and go, so every page holds items
    /// of every age, and evicting a page whole threw out items written a moment ago. A chained
    /// item's chunks move one by one, its links following. Items no room can be made for are
    /// evicted. Without evictions only an already empty page is given.
    pub(super) fn empty_a_page(&mut self, class: usize) -> Option<u32> {
        let page = *self.slabs.classes[class]
            .pages
            .iter()
            .min_by_key(|&&page| self.slabs.page_used(page))?;
        if self.slabs.page_used(page) == 0 {
            return Some(page);
        }
        if !self.config.evictions {
            return None;
        }
        let now = self.clock.now();
        for handle in self.slabs.page_handles(page) {
            let chunk = self.slabs.chunk(handle);
            let head = if item::is_head(chunk) {
                handle
            } else if item::is_continuation(chunk) {
                item::continuation_head(chunk)
            } else {
                continue;
            };
            if !self.slabs.is_valid(head) || !item::is_head(self.slabs.chunk(head)) {
                // A chunk reserved by a chain being written: cannot empty this page.
                return None;
            }
            let header = Header::read(self.slabs.chunk(head), self.cas_enabled);
            if let Some(death) = self.death(&header, now) {
                self.reclaim(head, &header, death);
                continue;
            }
            if self.rescue(class, page, handle, head) {
                continue;
            }
            if item::is_head(self.slabs.chunk(head)) {
                // Read again: making room for a rescue may have lowered its frequency.
                let header = Header::read(self.slabs.chunk(head), self.cas_enabled);
                self.evict(head, &header, now);
            }
        }
        (self.slabs.page_used(page) == 0).then_some(page)
    }

    /// Moves chunk `handle` of `class` (the head of item `head`, or one of its continuations)
    /// off `page` into a free chunk of the class on another page, evicting up to
    /// [`RESCUE_EVICTIONS`] of the class's victims (or the head's class's) to free one. False
    /// when no room was made, or the item itself was the victim.
    fn rescue(&mut self, class: usize, page: u32, handle: u32, head: u32) -> bool {
        for _ in 0..RESCUE_EVICTIONS {
            if let Some(target) = self.slabs.take_free_chunk_off_page(class, page) {
                self.move_chunk(class, handle, head, target);
                self.counters.slab_rescues += 1;
                return true;
            }
            // A class holding only chains' last chunks has nothing of its own to evict: the
            // head's class evicts instead, whose victims' last chunks are freed here.
            let freed = self.evict_in_class(class)
                || (handle != head && self.evict_in_class(self.slabs.class_of(head)));
            if !freed || !self.chunk_in_use(handle, head) {
                return false;
            }
        }
        false
    }

    /// Whether chunk `handle` still holds item `head` (its head, or a continuation of it).
    fn chunk_in_use(&self, handle: u32, head: u32) -> bool {
        let chunk = self.slabs.chunk(handle);
        if handle == head {
            item::is_head(chunk)
        } else {
            item::is_continuation(chunk) && item::continuation_head(chunk) == head
        }
    }

    /// Moves one chunk of item `head` to the free chunk `to` of its class, and relinks: a head
    /// is found by the index and named by each continuation; a continuation is named by the
    /// chunk before it. The small FIFO follows a head (the stale entry is skipped, or dropped
    /// with its page).
    fn move_chunk(&mut self, class: usize, from: u32, head: u32, to: u32) {
        self.slabs.copy_chunk(from, to);
        if from == head {
            let key = item::key_of(self.slabs.chunk(to), self.cas_enabled);
            let index_hash = self.index_hasher.hash_stored(key);
            if let Some(slot) = self.index.find_mut(index_hash, |other| other == from) {
                *slot = to;
            }
            let header = Header::read(self.slabs.chunk(to), self.cas_enabled);
            let mut next = if header.is_chained() {
                header.next
            } else {
                NO_HANDLE
            };
            while self.slabs.is_valid(next) {
                let chunk = self.slabs.chunk_mut(next);
                let following = item::continuation_next(chunk);
                item::write_continuation(chunk, to, following);
                next = following;
            }
            self.slabs.release_chunk(from);
            self.eviction
                .moved(&mut self.slabs, class, from, to, &header, self.cas_enabled);
            return;
        }
        let mut header = Header::read(self.slabs.chunk(head), self.cas_enabled);
        if header.next == from {
            header.next = to;
            header.write(self.slabs.chunk_mut(head), self.cas_enabled);
        } else {
            let mut at = header.next;
            while self.slabs.is_valid(at) {
                let following = item::continuation_next(self.slabs.chunk(at));
                if following == from {
                    item::write_continuation(self.slabs.chunk_mut(at), head, to);
                    break;
                }
                at = following;
            }
        }
        self.slabs.release_chunk(from);
    }

    /// Gives empty pages back to the pool, keeping about one page of free chunks per class.
    pub(super) fn release_empty_pages(&mut self) {
        for class in 0..self.slabs.classes.len() {
            loop {
                let slab = &self.slabs.classes[class];
                if slab.free_chunks() < 2 * slab.chunks_per_page {
                    break;
                }
                let Some(&page) = slab
                    .pages
                    .iter()
                    .find(|&&page| self.slabs.page_used(page) == 0)
                else {
                    break;
                };
                let data = self.slabs.remove_page(page);
                self.pool.give_back(data);
            }
        }
    }

    /// Gives a page back when the pool is over its limit (lowered with `cache_memlimit`) or a
    /// starving partition waits while this one holds more than its fair share.
    pub(super) fn give_pages_to_pool(&mut self) {
        let over_limit = self.pool.pages_in_use() > self.pool.limit_pages();
        let others_starve = self.pool.pages_wanted() > 0
            && !self.starving
            && self.slabs.page_count() > self.pool.fair_share();
        if !(over_limit || others_starve) || self.slabs.page_count() == 0 {
            return;
        }
        let Some(donor) = (0..self.slabs.classes.len())
            .filter(|&class| !self.slabs.classes[class].pages.is_empty())
            .max_by_key(|&class| self.slabs.classes[class].pages.len())
        else {
            return;
        };
        if let Some(page) = self.empty_a_page(donor) {
            let data = self.slabs.remove_page(page);
            self.pool.give_back(data);
        }
    }

    /// memcached's slab_automove, for CLOCK. Evictions are counted per class since the last
    /// decision; once a class has evicted a quarter page's worth (enough demand to pay for a
    /// page) and half of its own chunks (it has turned over, so its demand is not noise), the
    /// class that evicted most takes one page from the class whose eviction candidates are
    /// oldest, if that class evicted at most a quarter as much and its candidates are at least
    /// twice as old as the items the needy class is evicting. Then a new window starts.
    /// Windows are measured in evictions, not seconds, so how often the owner calls `maintain`
    /// does not matter. With small pages a quarter page alone was a few evictions, and pages
    /// moved on noise: a steady write-once fill of mixed sizes lost up to 3% of its newest keys
    /// and 7% of its items to needless moves (storage/README.md).
    pub(super) fn rebalance(&mut self) {
        let now = self.clock.now();
        let recent = |slab: &crate::slab::SlabClass| {
            slab.counters
                .evicted
                .saturating_sub(slab.evicted_checkpoint)
        };
        let mut needy: Option<(usize, u64)> = None;
        for (class, slab) in self.slabs.classes.iter().enumerate() {
            let evicted = recent(slab);
            let threshold = (slab.chunks_per_page as u64 / 4)
                .max(slab.total_chunks() as u64 / 2)
                .max(1);
            if evicted >= threshold && needy.is_none_or(|(_, most)| evicted > most) {
                needy = Some((class, evicted));
            }
        }
        let Some((needy, needy_evicted)) = needy else {
            return;
        };
        let needy_age = self.slabs.classes[needy].last_evicted_age;
        let donor = (0..self.slabs.classes.len())
            .filter(|&class| {
                let slab = &self.slabs.classes[class];
                class != needy && !slab.pages.is_empty() && recent(slab) * 4 <= needy_evicted
            })
            .map(|class| (class, self.class_age(class, now)))
            .filter(|&(_, age)| age >= needy_age.saturating_mul(2))
            .max_by_key(|&(_, age)| age);
        for slab in &mut self.slabs.classes {
            slab.evicted_checkpoint = slab.counters.evicted;
        }
        let Some((donor, _)) = donor else {
            return;
        };
        if let Some(page) = self.empty_a_page(donor) {
            let data = self.slabs.remove_page(page);
            self.slabs.add_page(needy, data);
            self.counters.slabs_moved += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fill_until_full, partition, set, two_and_a_half_pages};
    use crate::partition::DeleteRequest;

    #[test]
    fn a_page_moved_to_another_class_costs_its_class_the_coldest_items() {
        // Two pages of one class, filled in key order; every other item of the newer page is
        // deleted, so that page (the emptiest) is the one given to a value of another class.
        // Its live items move to chunks the class frees by its own eviction order (the oldest
        // items, on the first page): the items written last are all still there.
        let (mut partition, pool, _) = partition(2 << 20);
        let written = fill_until_full(&mut partition, &pool, &[b'r'; 100]);
        let class = partition.slabs.class_for(19 + 7 + 100).unwrap();
        let per_page = partition.slabs.classes[class].chunks_per_page;
        assert_eq!(written, 2 * per_page);
        for odd in (per_page..written).filter(|n| n % 2 == 1) {
            let key = format!("k{odd}");
            partition.delete(&DeleteRequest::new(0, key.as_bytes()));
        }
        set(&mut partition, b"big", &[b'b'; 5000]);
        assert!(partition.peek(0, b"big").is_some());
        let stats = partition.stats();
        assert_eq!(stats.slabs_moved, 1);
        assert_eq!(stats.slab_rescues as usize, per_page / 2);
        assert_eq!(stats.evictions as usize, per_page / 2);
        for newer in (per_page..written).filter(|n| n % 2 == 0) {
            let key = format!("k{newer}");
            assert!(
                partition.peek(0, key.as_bytes()).is_some(),
                "{key} was evicted"
            );
        }
        assert!(
            partition.peek(0, b"k0").is_none(),
            "the oldest item went first"
        );
        assert_eq!(stats.curr_items as usize, partition.len());
        assert_eq!(partition.len(), per_page + 1);
    }

    #[test]
    fn automove_follows_ages_on_a_moving_clock() {
        let (mut partition, _, clock) = partition(8 << 20);
        let small = [b's'; 100];
        for i in 0..60_000 {
            set(&mut partition, format!("small{i}").as_bytes(), &small);
        }
        let small_class = partition.slabs.class_for(19 + 10 + 100).unwrap();
        let small_pages = partition.slabs.classes[small_class].pages.len();
        // An hour later only large values are written and read, and time keeps moving.
        clock.advance(3600);
        let big = [b'b'; 5000];
        for round in 0..40 {
            for i in 0..400 {
                let key = format!("big{i}");
                if partition.get(0, key.as_bytes()).is_none() {
                    set(&mut partition, key.as_bytes(), &big);
                }
            }
            if round % 2 == 0 {
                clock.advance(1);
            }
            partition.maintain(500);
        }
        assert!(partition.slabs.classes[small_class].pages.len() < small_pages);
        let big_hits = (0..400)
            .filter(|i| partition.peek(0, format!("big{i}").as_bytes()).is_some())
            .count();
        assert!(
            big_hits > 380,
            "the large class got the memory it needs: {big_hits}"
        );
        assert!(partition.stats().slabs_moved > 0);
    }

    #[test]
    fn automove_off_leaves_the_classes_as_they_are() {
        let (mut partition, pool, clock) = partition(8 << 20);
        pool.set_automove(false);
        let small = [b's'; 100];
        for i in 0..60_000 {
            set(&mut partition, format!("small{i}").as_bytes(), &small);
        }
        clock.advance(3600);
        let big = [b'b'; 5000];
        for i in 0..400 {
            set(&mut partition, format!("big{i}").as_bytes(), &big);
        }
        // The large class had no page: the allocator took one, and only that one.
        let moved = partition.stats().slabs_moved;
        for round in 0..40 {
            for i in 0..400 {
                let key = format!("big{i}");
                if partition.get(0, key.as_bytes()).is_none() {
                    set(&mut partition, key.as_bytes(), &big);
                }
            }
            if round % 2 == 0 {
                clock.advance(1);
            }
            partition.maintain(500);
        }
        assert_eq!(partition.stats().slabs_moved, moved);
    }

    #[test]
    fn reassign_moves_one_page_rescuing_or_evicting_its_items() {
        let (mut partition, pool, _) = partition(8 << 20);
        let (small, count) = two_and_a_half_pages(&mut partition);
        assert_eq!(partition.class_pages(small), 3);
        let big = partition.class_count() - 2;
        assert_eq!(partition.class_pages(big), 0);
        assert!(partition.reassign_page(Some(small), Some(big)));
        assert_eq!(partition.class_pages(small), 2);
        assert_eq!(partition.class_pages(big), 1);
        let stats = partition.stats();
        assert_eq!(stats.slabs_moved, 1);
        assert!(stats.slab_rescues > 0);
        assert_eq!(partition.len() as u64 + stats.evictions, count as u64);
        let alive = (0..count)
            .filter(|i| partition.peek(0, format!("k{i}").as_bytes()).is_some())
            .count();
        assert_eq!(alive, partition.len());
        // To the pool and back.
        let in_use = pool.pages_in_use();
        assert!(partition.reassign_page(Some(big), None));
        assert_eq!(partition.class_pages(big), 0);
        assert_eq!(pool.pages_in_use(), in_use - 1);
        assert_eq!(pool.spare_pages(), 1);
        assert!(partition.reassign_page(None, Some(small)));
        assert_eq!(partition.class_pages(small), 3);
        assert_eq!(pool.spare_pages(), 0);
        assert_eq!(partition.stats().slabs_moved, 3);
        // Nothing to give: no move, nothing counted.
        assert!(!partition.reassign_page(Some(big), Some(small)));
        assert!(!partition.reassign_page(Some(small), Some(small)));
        assert_eq!(partition.stats().slabs_moved, 3);
    }

    #[test]
    fn a_lowered_limit_is_honoured_by_maintain() {
        let (mut partition, pool, _) = partition(8 << 20);
        for i in 0..60_000 {
            set(&mut partition, format!("k{i}").as_bytes(), &[b'v'; 100]);
        }
        assert_eq!(pool.pages_in_use(), 8);
        pool.set_limit(4 << 20);
        for _ in 0..10 {
            partition.maintain(100);
        }
        assert_eq!(pool.pages_in_use(), 4);
        assert_eq!(partition.pages(), 4);
        set(&mut partition, b"after", b"v");
        assert!(partition.get(0, b"after").is_some());
    }
}

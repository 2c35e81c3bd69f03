//! Memory: where a class's free chunks come from and where its pages go.
//!
//! Owns: the allocator's order of resort for a chunk (a free one, a pool page, an eviction, a
//! page taken from another class), emptying a page by rescuing its live items to other pages
//! of the class (memcached's slab_reassign), moving a chunk and relinking its item, and the
//! background page moves of `maintain`: empty pages back to the pool, pages for starving
//! partitions or a lowered limit, and the page mover between classes (evictions per byte,
//! see [`Partition::rebalance`], and the pages a class takes on credit from idle classes as
//! it fills them, see `grant_page_credit`). Must not touch: which
//! item is a class's next victim (`evict.rs`) or how items are written.

use super::Partition;
use super::evict::Policy;
use crate::error::StoreError;
use crate::item::{self, Header, NO_HANDLE};
use crate::slab::DEMAND_SCALE;

/// Victims of its own class a page move may evict to make room for one rescued item.
const RESCUE_EVICTIONS: usize = 8;

/// The page mover decides once the partition's evictions have freed this share of the memory
/// it holds (`1 / WINDOW_SHARE`).
const WINDOW_SHARE: u64 = 4;

/// A donor written in the last [`WRITTEN_WINDOWS`] windows keeps pages enough for this many
/// of its items (of their average size), so that a value written to it does not evict one
/// written a moment before; a class written no more keeps one page.
const KEEP_ITEMS: u64 = 8;

/// At most this share (`1 / KEPT_SHARE`) of the partition's pages is kept for one class's
/// [`KEEP_ITEMS`].
const KEPT_SHARE: usize = 16;

/// Windows without a store after which a class no longer keeps room for [`KEEP_ITEMS`].
const WRITTEN_WINDOWS: u8 = 8;

/// Averaged demand (in [`DEMAND_SCALE`]ths of an eviction or item of growth per window) a
/// class needs to be given a page: 3/4 of one a window, which a class written once a window
/// reaches by its second window (two in one window, as before the average, reach it at once).
const MIN_DEMAND: u64 = 3;

/// A class whose demand in a window is at least this many is weighed by that window alone;
/// fewer are averaged with the windows before, halving each time (a count this small varies
/// from window to window by about itself, while a larger one, on a partition of many items,
/// should move pages as soon as it shifts).
const AVERAGED_BELOW: u64 = 16;

/// Under S3-FIFO, an eviction off the main CLOCK adds this many evictions, less one, to its
/// class's demand, on top of the evictions and growth every class counts. An item reaches the
/// main CLOCK when its key came back: read while on probation, set again soon after it was
/// evicted (a ghost hit: in cache-aside, the set after a miss), or overwritten; one evicted
/// off the small FIFO was never asked for again. Counted alike, evictions gave memory to
/// classes in proportion to how fast they are written, not to how often what they hold is
/// read again: where the popular keys and the rarely read ones sit in different classes
/// (`key:99999` and `key:100000` with 996-byte values, a class boundary between them at 16
/// KiB pages), the class of rarely read keys took the memory, undoing what the small FIFO
/// does within one class, and W5's hit ratio at 16 partitions was 0.599 against 0.659 at 2
/// (`lazy_loading` with `KEYS=bench VALUE=996`); with this weight, 0.654 (storage/README.md).
/// A fill of new keys evicts nothing off the main CLOCK, so this changes no such fill.
/// (Counting only items read since written, not ghost hits or overwrites: 0.644.) Under CLOCK
/// and LRU nothing is on probation and no eviction counts here.
const PROVEN_WEIGHT: u64 = 64;

/// The weighted main-queue evictions are a moving average over this many windows. A class
/// evicts few of them per window, each one worth [`PROVEN_WEIGHT`]: averaged by halving, as
/// the other demand is, the mixed-size trace lost 0.03 of its hit ratio to that noise at 16
/// partitions (0.588 to 0.557 with a weight of 16); over 16 windows it loses none. A window in
/// which the class neither evicted nor grew halves it instead, so that a class no longer
/// asked for stops taking pages within a few windows, as its other demand does.
const PROVEN_WINDOWS: u64 = 16;

/// Pages the mover may move per window.
const MOVES_PER_WINDOW: usize = 8;

/// Demand (evictions and growth) a class needs in a window to be given page credit
/// (`grant_page_credit`): less says little in a small partition, where a window is a few
/// large items.
const FOLLOW_DEMAND_MIN: u64 = 64;

/// A page moves only if the taker, with it, still evicts more per byte than the donor without
/// it, by this ratio (5/4), so that pages do not swing between two nearly balanced classes.
const HYSTERESIS: (u64, u64) = (5, 4);

impl Partition {
    /// A free chunk of `class`: a free one, a new page from the pool, a chunk freed by the
    /// class's CLOCK hand, or a page taken from another class. Fails only when none of these
    /// works (evictions off, or the partition has no page to give).
    pub(super) fn alloc_chunk(&mut self, class: usize) -> Result<u32, StoreError> {
        self.free_released_chunks();
        loop {
            if let Some(handle) = self.slabs.take_free_chunk(class) {
                return Ok(handle);
            }
            if let Some(handle) = self.borrow_chunk(class) {
                return Ok(handle);
            }
            if self.take_pool_page(class) {
                continue;
            }
            if class >= self.slabs.largest_class()
                && let Some(handle) = self.take_lent_largest_chunk(class)
            {
                return Ok(handle);
            }
            if self.take_page_on_credit(class)
                || self.evict_in_class(class)
                || self.steal_page(class)
            {
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

    /// For a ladder class that holds no page: a free chunk of a class up to a quarter larger.
    /// A class's first page costs a whole page, which a class of few items (values of some
    /// tens of bytes, where values of 1..5000 bytes are written) never fills: at `-m 64
    /// -t 32`, 2 MiB partitions of 16 KiB pages, sixteen classes under 400 bytes held a page
    /// each and 3-30 items in it, an eighth of the memory unused. Neighbouring classes now
    /// share such pages, and a class takes a page of its own once none near it has room:
    /// 1..5000 bytes there filled 85% of `-m` with items instead of 83%, and held 2% more.
    /// Up to twice the size shared more (87%) but held 8-11% fewer items of 100..1000 bytes
    /// and of 1..5000 at `-m 1024`: items written while the memory fills stay long in chunks
    /// twice their size.
    fn borrow_chunk(&mut self, class: usize) -> Option<u32> {
        if !self.slabs.classes[class].pages.is_empty() || class >= self.slabs.largest_class() {
            return None;
        }
        let limit = self.slabs.classes[class].chunk_size * 5 / 4;
        let lender = self.larger_class_with_free_chunk(class, limit)?;
        self.slabs.take_free_chunk(lender)
    }

    /// The smallest ladder class from `class` up, with chunks of at most `limit` bytes, that
    /// has a free chunk.
    pub(super) fn larger_class_with_free_chunk(&self, class: usize, limit: usize) -> Option<usize> {
        (class..=self.slabs.largest_class())
            .take_while(|&other| self.slabs.classes[other].chunk_size <= limit)
            .find(|&other| self.slabs.classes[other].free_chunks() > 0)
    }

    /// For `class`, the ladder's largest class or a chain band, out of chunks: a free chunk of
    /// another class of that size (they share one chunk size). With `-M` nothing is evicted and no
    /// page moves, so any of them lends (else the free chunks of one band stay out of reach of the
    /// others). With evictions, only bands of longer chains lend, before `class` evicts its own. A
    /// band evicts a whole chain to store one and keeps what is left over for its next, so every
    /// band of every partition held about half a chain's chunks free: at `-m 64 -t 32` with values
    /// of 1..100,000 bytes, 8.6% of `-m`. A shorter chain now uses a longer band's leftover, and
    /// the longer band evicts for its own next chain (its demand shows): 1,563-1,637 items and
    /// 85.5-86.6% of `-m` in item bytes became 1,669-1,740 and 87.8-89.6% there (seeds 1-5),
    /// `-t 16` +5-6% items, `-m 1024` +5-6% at `-t` 1 and 8 and -2% at `-t 32`, `-t 4` -3% to +3%.
    /// Taking any band's leftover, also a shorter one's, reached 90% of `-m`, but longer chains
    /// crowded out shorter ones: 8% fewer items, 98.5% of the newest kept. A chain's last chunk of
    /// the largest size is the ladder's largest class's, and takes any band's leftover: held to
    /// bands longer than its own chain's, a partition of few large values lost one of its newest
    /// six in 2,880 checks (`a_partition_of_few_large_values_keeps_its_newest`), and `-t` 4 and 8
    /// held 1-2% fewer items of 1..100,000 bytes (a read-only review's find, measured and not
    /// kept). An item whose head sits in a lender's page counts as the lender's (its items,
    /// evictions and ghost): the borrower's demand shows only once the leftovers are gone.
    fn take_lent_largest_chunk(&mut self, class: usize) -> Option<u32> {
        let first = if self.config.evictions {
            class + 1
        } else {
            self.slabs.largest_class()
        };
        (first..self.slabs.classes.len()).find_map(|lender| self.slabs.take_free_chunk(lender))
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

    /// A page for `class` from a class that was idle in the page mover's last window, if the
    /// mover gave `class` credit for it: rather than evicting one of its own items, which were
    /// written in the last window, where the idle class was not written at all (its items
    /// are older, or read: its page goes through the rescue, which keeps its hottest items
    /// and evicts its coldest). The pages move one by one as the class fills them, so memory
    /// follows a change of value sizes without emptying pages ahead of need.
    fn take_page_on_credit(&mut self, class: usize) -> bool {
        if self.slabs.classes[class].page_credit == 0 || !self.pool.automove() {
            return false;
        }
        let slabs = &self.slabs;
        let donor = (0..slabs.classes.len())
            .filter(|&other| other != class && slabs.classes[other].idle)
            .filter(|&other| self.can_donate(other))
            .max_by_key(|&other| slabs.classes[other].pages.len());
        if !donor.is_some_and(|donor| self.move_page(donor, class)) {
            self.slabs.classes[class].page_credit = 0;
            return false;
        }
        self.slabs.classes[class].page_credit -= 1;
        true
    }

    /// Whether a class may give a page to the page mover: it keeps one, or room for
    /// [`KEEP_ITEMS`] of its items while it is written, and a class holding mostly chains'
    /// last chunks gives none (they live as long as their heads, whose class counts the
    /// evictions).
    fn can_donate(&self, class: usize) -> bool {
        let slab = &self.slabs.classes[class];
        let mostly_tails = self.slabs.tail_chunks(class) > slab.items;
        // Written lately: room for KEEP_ITEMS items, however few it holds now (a class short
        // of pages holds few). Written no more: one page, so that memory follows the values
        // to their new size (kept room there held a third of -m 64 -t 32 in 100 KB values
        // after the writes had moved to 100 B).
        let kept_items = if slab.idle_windows < WRITTEN_WINDOWS {
            KEEP_ITEMS
        } else {
            0
        };
        let kept_pages = (kept_items * slab.average_item().unwrap_or(0))
            .div_ceil(self.pool.page_size() as u64)
            .min((self.slabs.page_count() / KEPT_SHARE) as u64)
            .max(1);
        slab.pages.len() as u64 > kept_pages && !mostly_tails
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
        self.move_page(donor, class)
    }

    /// Empties a page of `donor` ([`Partition::empty_a_page`]) and gives it to `taker`; false
    /// when no page of the donor could be emptied.
    fn move_page(&mut self, donor: usize, taker: usize) -> bool {
        let Some(page) = self.empty_a_page(donor) else {
            return false;
        };
        let data = self.slabs.remove_page(page);
        self.slabs.add_page(taker, data);
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
        // What emptying the page evicts does not make the classes it evicts from look busy to
        // `grant_page_credit`: a class that gives pages (to another class, or to the pool for
        // another partition) and is not written is idle. `evict` counts those evictions apart
        // while this is set. (The mover's own weighing still counts them: taken out of it, a
        // partition of few large items at `-t 32` lost more of its newest keys.)
        self.emptying_page = true;
        let emptied = self.empty_a_page_evicting(class);
        self.emptying_page = false;
        emptied
    }

    fn empty_a_page_evicting(&mut self, class: usize) -> Option<u32> {
        // A page holding a chunk reserved by a chain being written, or one a reader has
        // pinned, cannot be emptied; it is passed over before anything on it is moved or
        // evicted.
        self.free_released_chunks();
        let pinned = self.pinned_pages();
        let page = self.slabs.classes[class]
            .pages
            .iter()
            .copied()
            .filter(|&page| {
                pinned.binary_search(&page).is_err() && !self.holds_reserved_chunk(page)
            })
            .min_by_key(|&page| self.slabs.page_used(page))?;
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

    /// Whether a chunk of `page` is reserved for a chained item still being written (a
    /// continuation whose head is not an item head yet).
    fn holds_reserved_chunk(&self, page: u32) -> bool {
        self.slabs.page_handles(page).any(|handle| {
            let chunk = self.slabs.chunk(handle);
            if !item::is_continuation(chunk) {
                return false;
            }
            let head = item::continuation_head(chunk);
            !self.slabs.is_valid(head) || !item::is_head(self.slabs.chunk(head))
        })
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

    /// The background page mover (memcached's slab_automove, with another aim). memcached moves
    /// pages so that every class keeps its items about as long (its eviction ages even out);
    /// this mover moves them so that every class evicts about as many items per byte of memory
    /// it holds. A page moves from the class evicting fewest items per byte to the one evicting
    /// most, as long as the taker still evicts more per byte after the move (by
    /// [`HYSTERESIS`]).
    ///
    /// Why per byte: a byte given to a class of small items keeps more items than a byte given
    /// to a class of large ones, and with nothing else known an item is as likely to be asked
    /// for again as any other, so a page saves the most misses where evictions per byte are
    /// highest (Greedy-Dual-Size's rule, applied per class). Under S3-FIFO more is known: an
    /// item evicted off the main CLOCK is one whose key came back, so its eviction counts
    /// [`PROVEN_WEIGHT`] times. At the balance a class keeps its items for a time inversely
    /// proportional to their size: for mixed value sizes the cache holds more items, and hits
    /// more often, than with even ages (storage/README.md: a mixed-size cache-aside trace hits
    /// 0.591 against 0.578, and a write-once fill of 1..5000 bytes keeps 1.14x memcached's
    /// items where even ages kept 0.95x). A class that is read
    /// and not written evicts nothing and gives its pages first.
    ///
    /// A class's demand in a window is what it evicted plus what it grew by (a class filling a
    /// page it was just given evicts nothing yet, and must not look idle). A window opens at a
    /// decision (the first one at the first eviction: growth before memory ran out is not
    /// demand) and closes when the partition's evictions have freed a [`WINDOW_SHARE`] of its memory,
    /// counted in bytes (counted in items, a window closed too soon when small items crowded a
    /// partition whose demand had moved to large ones; smaller windows also measured worse),
    /// so how often the owner calls `maintain` does not matter. Up to [`MOVES_PER_WINDOW`]
    /// pages move per window, each weighed again against the window's demand. A class's
    /// demand is averaged over its recent windows when small ([`AVERAGED_BELOW`]), under
    /// S3-FIFO its evictions off the main CLOCK weigh more, averaged over more windows
    /// ([`PROVEN_WEIGHT`]), and it needs [`MIN_DEMAND`] of its unweighted demand to take a
    /// page (less is noise: one main-queue eviction, weighed, would pass it for a dozen
    /// windows). A class's memory, for the weighing, is its pages less the chains' last chunks
    /// they hold: its own items cannot evict those.
    /// A donor keeps a page, or room for [`KEEP_ITEMS`] of its items while it is written, and a
    /// class holding mostly chains' last chunks is no donor: those chunks live as long as
    /// their chains' heads, whose class counts the evictions, and take pages on demand.
    pub(super) fn rebalance(&mut self) {
        let recent = |slab: &crate::slab::SlabClass| {
            slab.counters
                .evicted
                .saturating_sub(slab.evicted_checkpoint)
        };
        // A class still filling free chunks (a page it was just given) evicts nothing yet:
        // its demand is what it evicted plus what it grew by.
        let demand = |slab: &crate::slab::SlabClass| {
            recent(slab) + slab.items.saturating_sub(slab.items_checkpoint) as u64
        };
        // A small demand is averaged over the recent windows, not read from the last one
        // alone: a window is a quarter of the partition's memory, and a class of large items
        // is written a couple of times in one, so its demand read 0 in one window and 2 in
        // the next, and its pages went out in one decision and came back in the next; while
        // it held one page, each new item evicted the one written before it (at -t 32 and
        // 1..100,000 B values, up to 4% of the newest keys were lost that way).
        let demand: Vec<u64> = self
            .slabs
            .classes
            .iter_mut()
            .map(|slab| {
                let window = demand(slab);
                // A count that falls below the bound decays from its height, halving (capping
                // it at the bound first lost more of the newest keys at -t 2).
                slab.demand_average = if window >= AVERAGED_BELOW {
                    window * DEMAND_SCALE
                } else {
                    (slab.demand_average + window * DEMAND_SCALE) / 2
                };
                // Reads are steadier than writes: the main queue's share moves slowly. But a
                // class that neither evicted nor grew is asked for no more: its share halves.
                let proven = (PROVEN_WEIGHT - 1) * slab.proven_evictions;
                slab.proven_average = if window == 0 {
                    slab.proven_average / 2
                } else {
                    (slab.proven_average * (PROVEN_WINDOWS - 1) + proven * DEMAND_SCALE)
                        / PROVEN_WINDOWS
                };
                slab.demand_average + slab.proven_average
            })
            .collect();
        self.move_pages_by_demand(&demand);
        // The next window starts after the moves, so that the donors' rescue evictions are
        // not their demand (a class filling the pages it was just given grows in it).
        self.start_mover_window();
    }

    /// Starts the page mover's window: each class's demand counts from here. The first one
    /// opens at the first eviction (from `evict`), so that a class's growth while the memory
    /// was not yet full (a fill, or the items a warm restart brought back) is not demand.
    pub(super) fn start_mover_window(&mut self) {
        for slab in &mut self.slabs.classes {
            slab.evicted_checkpoint = slab.counters.evicted;
            slab.items_checkpoint = slab.items;
            slab.emptying_evictions = 0;
            slab.proven_evictions = 0;
        }
        self.evicted_window_bytes = 0;
        self.mover_window_open = true;
    }

    /// Whether the page mover's window is closed: automove is on and the items evicted since
    /// its last decision filled a [`WINDOW_SHARE`] of the partition's memory.
    /// (With automove off the window is dropped in `maintain`, so that switching it on
    /// starts a fresh one.)
    pub(super) fn rebalance_due(&self) -> bool {
        let held = (self.slabs.page_count() * self.pool.page_size()) as u64;
        self.evicted_window_bytes >= (held / WINDOW_SHARE).max(1) && self.pool.automove()
    }

    /// Credit for the next window: a class whose demand (less what emptying pages evicted
    /// from it) was at least [`FOLLOW_DEMAND_MIN`]
    /// may take as many pages as its demand filled (its evictions and growth, in bytes of its
    /// average item) from classes that had no demand at all, each when it would otherwise
    /// evict (`take_page_on_credit`). Every one of those evictions could have been an idle
    /// class's instead, and no more: when the values written change size, the new size's class
    /// gets the memory as fast as it fills it, where the decisions' [`MOVES_PER_WINDOW`]
    /// pages left it evicting its newest items while the old size's kept theirs.
    fn grant_page_credit(&mut self) {
        let page = self.pool.page_size() as u64;
        for slab in self.slabs.classes.iter_mut() {
            // The window's demand without what emptying pages did to the class: an eviction
            // that emptied a page is neither its own eviction nor a lost item of its growth.
            let emptying = slab.emptying_evictions;
            let evicted = slab
                .counters
                .evicted
                .saturating_sub(slab.evicted_checkpoint);
            let own_evictions = evicted.saturating_sub(emptying);
            let growth =
                (slab.items as u64 + emptying).saturating_sub(slab.items_checkpoint as u64);
            let demand = own_evictions + growth;
            slab.idle = demand == 0 && !slab.pages.is_empty();
            slab.idle_windows = if demand == 0 {
                slab.idle_windows.saturating_add(1)
            } else {
                0
            };
            slab.page_credit = if demand >= FOLLOW_DEMAND_MIN {
                let item = slab.average_item().unwrap_or(slab.chunk_size as u64);
                (demand * item).div_ceil(page)
            } else {
                0
            };
        }
    }

    /// Up to [`MOVES_PER_WINDOW`] moves by `rebalance`'s rule, given each class's demand in
    /// the window.
    fn move_pages_by_demand(&mut self, demand: &[u64]) {
        let page = self.pool.page_size() as u64;
        // A class's demand and the memory its own items can use: (evictions, bytes). A
        // ladder class's chunks beyond its items hold chains' last chunks, which its hand
        // cannot evict: weighed by all its pages, a class crowded by them looked to have
        // room while each item it stored evicted the one stored before.
        let load = |slabs: &crate::slab::Slabs, class: usize| {
            let slab = &slabs.classes[class];
            let tails = slabs.tail_chunks(class) as u64;
            let own = (slab.pages.len() as u64 * page)
                .saturating_sub(tails * slab.chunk_size as u64)
                .max(slab.chunk_size as u64);
            (demand[class], own)
        };
        // Evictions per byte compared without division: a.0/a.1 against b.0/b.1.
        let per_byte = |a: (u64, u64), b: (u64, u64)| {
            (u128::from(a.0) * u128::from(b.1)).cmp(&(u128::from(b.0) * u128::from(a.1)))
        };
        self.grant_page_credit();
        for _ in 0..MOVES_PER_WINDOW {
            let slabs = &self.slabs;
            let classes = 0..slabs.classes.len();
            let Some(needy) = classes
                .clone()
                .filter(|&class| {
                    slabs.classes[class].demand_average >= MIN_DEMAND
                        && !slabs.classes[class].pages.is_empty()
                })
                .max_by(|&a, &b| per_byte(load(slabs, a), load(slabs, b)))
            else {
                return;
            };
            let Some(donor) = classes
                .filter(|&class| class != needy)
                .filter(|&class| self.can_donate(class))
                .min_by(|&a, &b| per_byte(load(slabs, a), load(slabs, b)))
            else {
                return;
            };
            // After the move the needy class must still evict more per byte than the donor.
            let (needy_demand, needy_bytes) = load(slabs, needy);
            let (donor_demand, donor_bytes) = load(slabs, donor);
            let needy_after = (needy_demand * HYSTERESIS.1, needy_bytes + page);
            let donor_after = (
                donor_demand * HYSTERESIS.0,
                donor_bytes.saturating_sub(page),
            );
            if per_byte(needy_after, donor_after).is_le() {
                return;
            }
            if !self.move_page(donor, needy) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fill_until_full, partition, set, two_and_a_half_pages};
    use crate::item::{self, Header, NO_HANDLE};
    use crate::partition::{DeleteRequest, Partition, StoreMode, StoreRequest};
    use crate::{Clock, PagePool, StorageConfig};
    use std::sync::Arc;

    #[test]
    fn a_page_moved_to_another_class_costs_its_class_the_coldest_items() {
        // Two pages of one class, filled in key order; every other item of the newer page is
        // deleted, so that page (the emptiest) is the one given to a value of another class.
        // Its live items move to chunks the class frees by its own eviction order (the oldest
        // items, on the first page): the items written last are all still there.
        let (mut partition, pool, _) = partition(2 << 20);
        let written = fill_until_full(&mut partition, &pool, &[b'r'; 100]);
        let class = partition.slabs.class_for(14 + 7 + 100).unwrap();
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

    /// A partition of `memory_limit` cut as the daemon cuts one partition's share.
    fn cut_for_one(memory_limit: usize) -> Partition {
        cut_for_one_with(memory_limit, true)
    }

    fn cut_for_one_with(memory_limit: usize, evictions: bool) -> Partition {
        let config = Arc::new(
            StorageConfig {
                memory_limit,
                evictions,
                ..StorageConfig::default()
            }
            .for_partitions(1),
        );
        let pool = Arc::new(PagePool::new(config.memory_limit, config.page_size));
        Partition::new(config, pool, Arc::new(Clock::new()))
    }

    fn try_set(partition: &mut Partition, key: &[u8], value: &[u8]) -> bool {
        partition
            .store(&StoreRequest::new(0, key, value, 0, 0, StoreMode::Set))
            .is_ok()
    }

    fn value_of(partition: &mut Partition, key: &[u8]) -> Vec<u8> {
        let item = partition.get(0, key).expect("stored");
        item.value().flat_map(|part| part.iter().copied()).collect()
    }

    /// The class of the chunk holding `key`'s item head.
    fn class_holding(partition: &mut Partition, key: &[u8]) -> usize {
        let handle = partition.peek(0, key).expect("stored").handle;
        partition.slabs.class_of(handle)
    }

    #[test]
    fn a_class_without_a_page_borrows_a_near_larger_classs_free_chunk() {
        let mut partition = cut_for_one(8 << 20);
        let item = |value: usize| 14 + 1 + value;
        let class_of_size =
            |partition: &Partition, size: usize| partition.slabs.class_for(size).expect("a class");
        // 146 bytes: the 147-byte class takes a page.
        set(&mut partition, b"a", &[b'a'; 131]);
        let lender = class_of_size(&partition, item(131));
        assert_eq!(partition.slabs.classes[lender].chunk_size, 147);
        assert_eq!(partition.class_pages(lender), 1);
        // 125 bytes: the 128-byte class has no page, and 147 is within a quarter above.
        set(&mut partition, b"b", &[b'b'; 110]);
        let borrower = class_of_size(&partition, item(110));
        assert_eq!(partition.slabs.classes[borrower].chunk_size, 128);
        assert_eq!(class_holding(&mut partition, b"b"), lender);
        assert_eq!(partition.class_pages(borrower), 0);
        assert_eq!(value_of(&mut partition, b"b"), vec![b'b'; 110]);
        // 100 bytes: the 112-byte class has no page, and no class up to 125 bytes has room.
        set(&mut partition, b"c", &[b'c'; 85]);
        let own = class_of_size(&partition, item(85));
        assert_eq!(partition.slabs.classes[own].chunk_size, 112);
        assert_eq!(class_holding(&mut partition, b"c"), own);
        assert_eq!(partition.class_pages(own), 1);
        // A class with a page of its own uses it, though a larger class has room.
        set(&mut partition, b"d", &[b'd'; 84]);
        assert_eq!(class_holding(&mut partition, b"d"), own);
        // The borrowed chunk is the lender's in `stats slabs`: its items and bytes.
        let stats = partition.class_stats();
        let lent = stats
            .iter()
            .find(|(id, _)| usize::from(*id) == lender + 1)
            .expect("the lender's stats");
        assert_eq!(lent.1.used_chunks, 2);
        assert_eq!(lent.1.mem_requested, (item(131) + item(110)) as u64);
    }

    /// Stores a chain whose last chunk (1,200 bytes) finds no room in a class up to twice its
    /// size but a free chunk in a larger one, with the pool spent if `spent`; returns the
    /// ladder's pages below the largest chunk and the chunks used in that larger class.
    fn last_chunk_far_from_room(evictions: bool, spent: bool) -> (usize, usize) {
        // 4 KiB chunks (32 KiB pages): values over about 4 KB are a head and a last chunk.
        let mut partition = cut_for_one_with(8 << 20, evictions);
        let largest = partition.slabs.largest_class();
        assert_eq!(partition.slabs.classes[largest].chunk_size, 4096);
        // A chain with a last chunk of about 3.8 KB gives the two-chunk band a page.
        assert!(try_set(&mut partition, b"first", &[b'f'; 7900]));
        assert!(try_set(&mut partition, b"room", &[b'r'; 3000]));
        let roomy = class_holding(&mut partition, b"room");
        let tail = partition.slabs.class_for(1200).unwrap();
        assert!(
            2 * partition.slabs.classes[tail].chunk_size
                < partition.slabs.classes[roomy].chunk_size
        );
        if spent {
            let page = partition.pool.page_size();
            partition
                .pool
                .set_limit(partition.pool.pages_in_use() * page);
        }
        assert!(try_set(&mut partition, b"chained", &[b'c'; 5252]));
        assert_eq!(value_of(&mut partition, b"chained"), vec![b'c'; 5252]);
        assert_eq!(partition.stats().evictions, 0);
        let pages = (0..largest).map(|class| partition.class_pages(class)).sum();
        let slab = &partition.slabs.classes[roomy];
        (pages, slab.total_chunks() - slab.free_chunks())
    }

    #[test]
    fn a_chains_last_chunk_takes_any_larger_free_chunk_once_the_pool_is_spent() {
        assert_eq!(last_chunk_far_from_room(true, true), (1, 2));
        // Pool pages left: a page of its own class.
        assert_eq!(last_chunk_far_from_room(true, false), (2, 1));
        // With -M, as before: a page of its own class while the pool has one.
        assert_eq!(last_chunk_far_from_room(false, false), (2, 1));
    }

    /// A 1 MiB partition written with `value` under `prefix0`, `prefix1`, ... until the first
    /// eviction, then every other key deleted: its band holds free chunks among live ones.
    fn full_then_every_other_deleted(prefix: &str, value: &[u8]) -> Partition {
        let mut partition = cut_for_one(1 << 20);
        let mut stored = 0;
        while partition.stats().evictions == 0 {
            set(
                &mut partition,
                format!("{prefix}{stored}").as_bytes(),
                value,
            );
            stored += 1;
        }
        for even in (0..stored).step_by(2) {
            partition.delete(&DeleteRequest::new(0, format!("{prefix}{even}").as_bytes()));
        }
        partition
    }

    #[test]
    fn a_shorter_chain_takes_a_longer_bands_free_chunks_before_evicting() {
        // 1 MiB of 20 KB values (5-chunk chains), then every other one deleted: their band
        // holds free chunks. 10 KB values (3-chunk chains, a shorter band) fit there without
        // evicting.
        let mut partition = full_then_every_other_deleted("w", &[b'w'; 20_000]);
        let evictions = partition.stats().evictions;
        let ten = [b't'; 10_000];
        for i in 0..10 {
            set(&mut partition, format!("t{i}").as_bytes(), &ten);
        }
        assert_eq!(
            partition.stats().evictions,
            evictions,
            "a 10 KB value evicted"
        );
        let twenty_band = class_holding(&mut partition, b"w1");
        assert_eq!(class_holding(&mut partition, b"t0"), twenty_band);
        assert_eq!(value_of(&mut partition, b"t9"), ten.to_vec());
    }

    #[test]
    fn a_longer_chain_never_takes_a_shorter_bands_free_chunks() {
        // The other way round: with 10 KB values' band holding free chunks, a 20 KB value
        // makes its own room (taking its band's leftovers would let longer chains crowd out
        // shorter ones: 8% fewer items at -t 32 of 1..100,000-byte values).
        let mut partition = full_then_every_other_deleted("t", &[b't'; 10_000]);
        let ten_band = class_holding(&mut partition, b"t1");
        set(&mut partition, b"w", &[b'w'; 20_000]);
        // No chunk of the chain but its last, which is the ladder's largest class's and takes
        // any band's leftover (`take_lent_largest_chunk`).
        let head = partition.peek(0, b"w").expect("stored").handle;
        let mut chunks = vec![head];
        let mut next = Header::read(partition.slabs.chunk(head), partition.cas_enabled).next;
        while next != NO_HANDLE {
            chunks.push(next);
            next = item::continuation_next(partition.slabs.chunk(next));
        }
        assert_eq!(chunks.len(), 5);
        for &chunk in &chunks[..4] {
            assert_ne!(partition.slabs.class_of(chunk), ten_band);
        }
    }

    #[test]
    fn without_evictions_chains_of_one_length_use_the_room_of_another() {
        // -M: 10 KB values fill 1 MiB, half are deleted; 20 KB values (another chain band)
        // must fit in the freed chunks, as they did when every chain shared one class.
        let mut partition = cut_for_one_with(1 << 20, false);
        let ten = [b't'; 10_000];
        let mut stored = 0;
        while try_set(&mut partition, format!("t{stored}").as_bytes(), &ten) {
            stored += 1;
        }
        assert!(stored > 50, "{stored} values of 10 KB");
        for odd in (1..stored).step_by(2) {
            partition.delete(&DeleteRequest::new(0, format!("t{odd}").as_bytes()));
        }
        let twenty = [b'w'; 20_000];
        let fitted = (0..20)
            .filter(|i| try_set(&mut partition, format!("w{i}").as_bytes(), &twenty))
            .count();
        assert_eq!(fitted, 20);
    }

    #[test]
    fn a_fill_before_memory_ran_out_is_no_demand() {
        // 100-byte values fill part of 8 MiB; then only 3,000-byte values are written. The
        // first window opens at the first eviction: the small class's earlier growth must not
        // count as demand and pull pages away from the class that evicts.
        let mut partition = cut_for_one(8 << 20);
        for i in 0..30_000 {
            set(&mut partition, format!("s{i}").as_bytes(), &[b's'; 100]);
        }
        let small = partition.slabs.class_for(14 + 6 + 100).unwrap();
        let small_pages = partition.slabs.classes[small].pages.len();
        let big = [b'b'; 3000];
        for i in 0..6_000 {
            set(&mut partition, format!("b{i}").as_bytes(), &big);
        }
        assert!(partition.stats().evictions > 0);
        assert!(
            partition.slabs.classes[small].pages.len() <= small_pages,
            "the idle small class took pages: {} -> {}",
            small_pages,
            partition.slabs.classes[small].pages.len()
        );
    }

    #[test]
    fn a_page_holding_a_reserved_chunk_is_passed_over() {
        // 1,900-byte values (eight to a 16 KiB page) until the memory is full, then two of
        // the newest deleted: their page is the emptiest. A 5,966-byte value reserves its last
        // chunk there first; the page taken for its head must be another one.
        let mut partition = cut_for_one(1 << 20);
        let value = [b'v'; 1900];
        let mut written = 0;
        while partition.stats().evictions == 0 {
            set(&mut partition, format!("k{written}").as_bytes(), &value);
            written += 1;
        }
        for back in [2, 3] {
            let key = format!("k{}", written - back);
            partition.delete(&DeleteRequest::new(0, key.as_bytes()));
        }
        for attempt in 0..5 {
            let key = format!("chained{attempt}");
            assert!(
                try_set(&mut partition, key.as_bytes(), &[b'c'; 5966]),
                "{key}"
            );
        }
    }

    /// A one-partition cache of 8 MiB after twice its memory in 100-byte values (the old size
    /// of a change of value sizes), and its memory.
    fn written_twice_over_in_100_byte_values() -> (Partition, usize) {
        let memory = 8 << 20;
        let mut partition = cut_for_one(memory);
        let mut written = 0;
        while written < 2 * memory {
            set(
                &mut partition,
                format!("s{written}").as_bytes(),
                &[b's'; 100],
            );
            written += 100;
        }
        (partition, memory)
    }

    /// Writes values of 1..100,000 random bytes (seeded) into a partition cut as one of
    /// `memory` bytes until `fill` times the memory is written, calling `check(partition, n)`
    /// after the store of key `k{n}`. Returns the partition and the keys written.
    fn fill_up_to_100_kb(
        memory: usize,
        seed: u64,
        fill: usize,
        mut check: impl FnMut(&mut Partition, usize),
    ) -> (Partition, usize) {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let mut partition = cut_for_one(memory);
        let mut random = StdRng::seed_from_u64(seed);
        let value = vec![b'v'; 100_000];
        let (mut written, mut keys) = (0, 0);
        while written < fill * memory {
            let size = random.random_range(1..=100_000);
            set(
                &mut partition,
                format!("k{keys}").as_bytes(),
                &value[..size],
            );
            check(&mut partition, keys);
            written += size;
            keys += 1;
        }
        (partition, keys)
    }

    /// How many of these keys are gone.
    fn lost(partition: &mut Partition, keys: std::ops::Range<usize>) -> usize {
        keys.filter(|k| partition.peek(0, format!("k{k}").as_bytes()).is_none())
            .count()
    }

    #[test]
    fn a_partition_of_few_large_values_keeps_its_newest() {
        // A partition as one of 32 shares 64 MiB: 128 pages of 16 KiB, about 90 values of
        // 1..100,000 bytes. A mover window is a few of them, so a chain band saw no eviction
        // in one window and two in the next: weighed window by window, and needing two in one
        // to take a page, a band gave its pages away down to one and got none back, and each
        // value written to it evicted the one written just before. Checked every tenth store
        // over thirty memories' worth, seeds 1-4: 18 of 2,880 checks of the newest six failed
        // before; none now.
        let (mut lost_total, mut checked) = (0, 0);
        for seed in 1..=4 {
            fill_up_to_100_kb(2 << 20, seed, 30, |partition, n| {
                if n > 60 && n % 10 == 0 {
                    checked += 6;
                    lost_total += lost(partition, n - 5..n + 1);
                }
            });
        }
        assert!(checked > 2_000);
        assert_eq!(lost_total, 0, "of {checked} checks of the newest six");
    }

    #[test]
    fn ladder_classes_crowded_by_last_chunks_keep_their_newest() {
        // A partition as one of 2 shares 64 MiB: 256 pages of 128 KiB. The ladder's classes
        // near the largest chunk (16 KiB) also hold chains' last chunks, which their own items
        // cannot evict: weighed by all of their pages, those classes looked to have room while
        // each item they stored evicted the one stored before. Three memories written, then
        // the newest 5% of the keys, seeds 1-16: 4 of 1,596 were gone before; none now.
        let (mut lost_total, mut checked) = (0, 0);
        for seed in 1..=16 {
            let (mut partition, keys) = fill_up_to_100_kb(32 << 20, seed, 3, |_, _| {});
            let newest = keys / 20;
            checked += newest;
            lost_total += lost(&mut partition, keys - newest..keys);
        }
        assert!(checked > 1_500);
        assert_eq!(lost_total, 0, "of the newest {checked}");
    }

    #[test]
    fn a_class_no_longer_written_gives_its_pages_to_the_new_size_as_it_fills_them() {
        // Two memories' worth of 100-byte values, then one of 1,000-byte ones. The old class is
        // written no more, so the new one takes its pages on credit as it would evict, not only
        // the 8 a window of the mover's weighing: with those alone it kept 841 of the newest
        // 2,796 here.
        let (mut partition, memory) = written_twice_over_in_100_byte_values();
        let big_class = partition.slabs.class_for(14 + 5 + 1000).unwrap();
        let mut big = 0;
        while big * 1000 < memory {
            set(&mut partition, format!("b{big}").as_bytes(), &[b'b'; 1000]);
            big += 1;
        }
        let newest = big - big / 3;
        let kept = (newest..big)
            .filter(|n| partition.peek(0, format!("b{n}").as_bytes()).is_some())
            .count();
        assert_eq!(kept, big - newest, "the newest third of the large values");
        let pages =
            |partition: &Partition, class: usize| partition.slabs.classes[class].pages.len();
        assert!(
            pages(&partition, big_class) * 2 > partition.slabs.page_count(),
            "{} of {} pages",
            pages(&partition, big_class),
            partition.slabs.page_count()
        );
    }

    #[test]
    fn no_page_moves_on_credit_once_automove_is_off() {
        // `slabs automove 0` stops the moves at once, also those the last decision granted.
        let (mut partition, _) = written_twice_over_in_100_byte_values();
        let credit_and_donor = |partition: &Partition| {
            let classes = &partition.slabs.classes;
            classes.iter().any(|slab| slab.page_credit > 0) && classes.iter().any(|slab| slab.idle)
        };
        let mut big = 0;
        while !credit_and_donor(&partition) {
            set(&mut partition, format!("b{big}").as_bytes(), &[b'b'; 1000]);
            big += 1;
        }
        partition.pool.set_automove(false);
        let moved = partition.stats().slabs_moved;
        for more in 0..1000 {
            set(&mut partition, format!("c{more}").as_bytes(), &[b'c'; 1000]);
        }
        assert_eq!(partition.stats().slabs_moved, moved);
        partition.maintain(64);
        assert!(
            partition
                .slabs
                .classes
                .iter()
                .all(|slab| slab.page_credit == 0)
        );
    }

    #[test]
    fn pages_go_where_evictions_per_byte_are_highest() {
        // As many 100-byte values as 4,000-byte ones, written once, three times the memory,
        // and no `maintain`: the stores that close each window move the pages. With even
        // ages each size would keep as many items as the other; evicting as many items per
        // byte in both classes keeps the small ones about forty times longer (here: nearly
        // all of them, 5,809 of 6,138, and 1,456 large ones).
        let mut partition = cut_for_one(8 << 20);
        let (small, big) = ([b's'; 100], [b'b'; 4000]);
        let mut pairs = 0;
        while pairs * (small.len() + big.len()) < 3 * (8 << 20) {
            set(&mut partition, format!("s{pairs}").as_bytes(), &small);
            set(&mut partition, format!("b{pairs}").as_bytes(), &big);
            pairs += 1;
        }
        let held = |partition: &mut Partition, prefix: &str, from: usize| {
            (from..pairs)
                .filter(|i| {
                    partition
                        .peek(0, format!("{prefix}{i}").as_bytes())
                        .is_some()
                })
                .count()
        };
        let small_held = held(&mut partition, "s", 0);
        let big_held = held(&mut partition, "b", 0);
        assert!(partition.stats().slabs_moved > 0);
        assert!(
            small_held >= 3 * big_held,
            "{small_held} small and {big_held} large values held"
        );
        let newest = pairs - pairs / 20;
        assert_eq!(held(&mut partition, "s", newest), pairs - newest);
        assert_eq!(
            held(&mut partition, "b", newest),
            pairs - newest,
            "the newest large values stay"
        );
        let stats = partition.stats();
        assert_eq!(stats.curr_items as usize, small_held + big_held);
    }

    #[test]
    fn pages_go_to_the_class_whose_items_are_read_again() {
        use rand::{Rng, SeedableRng};
        // Cache-aside over 3,000 popular keys of 700-byte values (792-byte chunks, over half
        // the memory) while 1,000-byte values (1,024-byte chunks) are written once each, never
        // read, as fast as the popular keys are read. Weighing every eviction alike gave the
        // written-once class memory in proportion to its writes: the popular keys hit 0.57 of
        // the time. Weighing evictions off S3-FIFO's main queue (items read again) more: 0.97.
        let mut partition = cut_for_one(4 << 20);
        let (popular, once) = ([b'p'; 700], [b'o'; 1000]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (mut hits, mut reads) = (0, 0);
        for step in 0..60_000 {
            let key = format!("p{}", rng.random_range(0..3_000));
            let hit = partition.get(0, key.as_bytes()).is_some();
            if !hit {
                set(&mut partition, key.as_bytes(), &popular);
            }
            if step >= 40_000 {
                reads += 1;
                hits += usize::from(hit);
            }
            set(&mut partition, format!("o{step}").as_bytes(), &once);
        }
        let ratio = hits as f64 / reads as f64;
        assert!(ratio >= 0.95, "the popular keys hit {ratio:.3} of the time");
        // The pages went to the popular keys' class (147 against 109; 85 against 171 with
        // every eviction weighed alike).
        let pages = |partition: &mut Partition, key: &[u8]| {
            let class = class_holding(partition, key);
            partition.slabs.classes[class].pages.len()
        };
        let popular = (0..3_000)
            .map(|i| format!("p{i}"))
            .find(|key| partition.peek(0, key.as_bytes()).is_some())
            .expect("a popular key held");
        let popular_pages = pages(&mut partition, popular.as_bytes());
        let once_pages = pages(&mut partition, b"o59999");
        assert!(
            popular_pages > once_pages,
            "{popular_pages} pages for the popular keys, {once_pages} for the others"
        );
    }

    #[test]
    fn pages_follow_the_popular_keys_to_their_new_size() {
        use rand::{Rng, SeedableRng};
        // As above, then the popular keys change: 1,500 others, of 1,500-byte values, while the
        // 700-byte ones are never asked for again. The old class's weighted demand must fade,
        // or it keeps the pages the new class needs: 0.975 of the new keys' reads hit (0.980
        // without the halving of an idle class's weighted demand: the old class still evicts
        // its main queue for a while, and its average fades that way too).
        let mut partition = cut_for_one(4 << 20);
        let once = [b'o'; 1000];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut run = |partition: &mut Partition, prefix: &str, keys: usize, value: &[u8]| {
            let (steps, mut hits) = (60_000, 0);
            for step in 0..steps {
                let key = format!("{prefix}{}", rng.random_range(0..keys));
                if partition.get(0, key.as_bytes()).is_some() {
                    hits += usize::from(step >= steps / 2);
                } else {
                    set(partition, key.as_bytes(), value);
                }
                set(partition, format!("o{prefix}{step}").as_bytes(), &once);
            }
            hits as f64 / (steps - steps / 2) as f64
        };
        let before = run(&mut partition, "p", 3_000, &[b'p'; 700]);
        let after = run(&mut partition, "q", 1_500, &[b'q'; 1500]);
        assert!(
            before >= 0.95,
            "the first popular keys hit {before:.3} of the time"
        );
        assert!(
            after >= 0.95,
            "the new popular keys hit {after:.3} of the time"
        );
    }

    #[test]
    fn chained_items_live_in_the_chain_class_of_their_length() {
        let mut partition = cut_for_one(8 << 20);
        let largest = partition.slabs.largest_class();
        let chunk = partition.slabs.classes[largest].chunk_size;
        // A head, one full middle chunk and a short last chunk: three chunks.
        let value = vec![b'c'; 2 * chunk + 100];
        set(&mut partition, b"three", &value);
        let (head, _) = partition.lookup(0, b"three").unwrap();
        let band = partition.slabs.chain_class(3);
        assert_eq!(partition.slabs.class_of(head), band);
        assert_eq!(partition.slabs.classes[band].used_chunks, 2);
        assert_eq!(partition.slabs.classes[band].items, 1);
        let read: Vec<u8> = partition
            .get(0, b"three")
            .unwrap()
            .value()
            .flat_map(|part| part.iter().copied())
            .collect();
        assert_eq!(read, value);
        // A longer item is another band: its memory is weighed apart.
        set(&mut partition, b"ten", &vec![b't'; 9 * chunk]);
        let (head, _) = partition.lookup(0, b"ten").unwrap();
        assert_eq!(
            partition.slabs.class_of(head),
            partition.slabs.chain_class(10)
        );
        assert_ne!(partition.slabs.chain_class(10), band);
    }

    #[test]
    fn automove_follows_demand_when_it_moves_to_large_values() {
        let (mut partition, _, clock) = partition(8 << 20);
        let small = [b's'; 100];
        for i in 0..60_000 {
            set(&mut partition, format!("small{i}").as_bytes(), &small);
        }
        let small_class = partition.slabs.class_for(14 + 10 + 100).unwrap();
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

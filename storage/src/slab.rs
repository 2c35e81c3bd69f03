//! A partition's slab memory: the pages it holds, their division into chunks per slab class,
//! free chunks, and 32-bit chunk handles.
//!
//! Owns: page bookkeeping (which class a page serves, how many of its chunks are in use), the
//! free chunks of each class (a list of recycled handles plus the never-used tail of the newest
//! page), each class's CLOCK hand position, and the mapping handle <-> (page, chunk). Must not
//! touch: item semantics, the index, or the pool (the partition takes and returns pages and
//! decides what to evict; this module only cuts and accounts).
//!
//! A handle is `page_id << chunk_bits | chunk_index`, where `chunk_bits` is enough for the
//! smallest class's chunks per page; page ids are local to the partition and reused.
//!
//! The classes are the ladder of chunk sizes (memcached's slab classes, for items of one chunk)
//! followed by [`CHAIN_CLASSES`] chain classes, whose chunks are as large as the ladder's largest:
//! a chained item's head and middle chunks live in the chain class of its chunk count's power of
//! two (2, 3-4, 5-8, ... chunks), or in a free chunk a longer band lends. memcached keeps every
//! chained item's chunks in its largest class, where items of 20 KB and of 1 MB are one queue and
//! one share of memory; apart, the page mover can give each band what its evictions per byte ask
//! for, as it does for the ladder's classes (storage/README.md measures it).

use crate::item::{self, NO_HANDLE};
use crate::page::PinnedSpan;
use crate::pool::PageMemory;
use crate::stats::ClassStats;
use std::collections::{HashSet, VecDeque};

/// An entry of a class's small FIFO: an item head's handle and the tag of the item it was
/// queued for ([`item::queue_tag`]). An item that leaves other than through the queue (deleted,
/// replaced, moved, evicted with its page) leaves its entry behind; once its chunk holds a newer
/// item, the tag tells the entry is stale, where the handle alone sent the newer item out from
/// the older one's place in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Queued {
    pub handle: u32,
    pub tag: u32,
}

/// Chain classes after the ladder: bands of 2, 3-4, 5-8, ... chunks, the last one open-ended.
pub const CHAIN_CLASSES: usize = 10;

/// [`SlabClass::demand_average`] and [`SlabClass::proven_average`] count in these fractions of
/// an eviction, so that averaging them window by window keeps a class's last few evictions.
pub(crate) const DEMAND_SCALE: u64 = 4;

/// The chunk counts of chain band `band` (0-based): the fewest, and the most (`None` for the
/// last, open-ended band). `Slabs::chain_class` is its inverse.
pub fn chain_band_chunks(band: usize) -> (usize, Option<usize>) {
    let fewest = (1usize << band) + 1;
    let most = (band + 1 < CHAIN_CLASSES).then(|| 1usize << (band + 1));
    (fewest, most)
}

/// One page held by the partition.
struct Page {
    data: PageMemory,
    class: u8,
    chunk_size: u32,
    /// Chunks of this page that hold (part of) an item or are reserved for one.
    used: u32,
}

/// One slab class of a partition.
#[derive(Debug)]
pub(crate) struct SlabClass {
    pub chunk_size: usize,
    pub chunks_per_page: usize,
    /// Ids of the pages cut for this class; the CLOCK hand walks them in this order.
    pub pages: Vec<u32>,
    /// Recycled free chunks.
    free: Vec<u32>,
    /// The page being cut for the first time, and its next unused chunk.
    fresh: Option<(u32, u32)>,
    /// CLOCK hand: position over `pages.len() * chunks_per_page` chunks.
    pub hand: usize,
    /// The small FIFO: handles of items on probation, oldest first. Entries go stale when an
    /// item leaves early (deleted, replaced); the item's PROBATION bit is the truth.
    pub probation: VecDeque<Queued>,
    /// Items on probation now.
    pub probation_items: usize,
    pub used_chunks: usize,
    /// Items whose head chunk is in this class.
    pub items: usize,
    /// Bytes those items asked for.
    pub mem_requested: u64,
    /// Counters (the gauge fields of [`ClassStats`] are filled in when reported).
    pub counters: ClassStats,
    /// `counters.evicted` when the rebalancer last looked.
    pub evicted_checkpoint: u64,
    /// `items` when the rebalancer last looked.
    pub items_checkpoint: usize,
    /// The page mover's demand for the class (evictions plus growth per window) averaged over
    /// its recent windows, in [`DEMAND_SCALE`]ths.
    pub demand_average: u64,
    /// Whether the class ever held a page (it is reported from then on).
    pub ever_had_pages: bool,
    /// Pages the class may still take, when it would evict, from a class that had no demand
    /// in the page mover's last window (set at each of the mover's decisions).
    pub page_credit: u64,
    /// The class had no demand in the page mover's last window (it can give pages on credit).
    pub idle: bool,
    /// The page mover's windows in a row in which the class stored nothing (no eviction of
    /// its own, no growth): a donor written more lately keeps room for some of its items.
    pub idle_windows: u8,
    /// Evictions in the mover's window made to empty a page (not demand for page credit).
    pub emptying_evictions: u64,
    /// Evictions in the mover's window off S3-FIFO's main CLOCK (items whose key came back:
    /// read on probation, a ghost hit, or overwritten), page emptying excluded; 0 under the
    /// policies without probation.
    pub proven_evictions: u64,
    /// Those evictions, weighed by the page mover and averaged over its recent windows, in
    /// [`DEMAND_SCALE`]ths (0 under policies without probation).
    pub proven_average: u64,
}

impl SlabClass {
    /// Bytes its items asked for, on average (None while it holds none).
    pub fn average_item(&self) -> Option<u64> {
        (self.items > 0).then(|| self.mem_requested / self.items as u64)
    }

    /// Free chunks: recycled ones plus the uncut tail of the fresh page.
    pub fn free_chunks(&self) -> usize {
        self.free.len() + self.fresh_chunks()
    }

    /// Chunks of the fresh page not cut yet (`free_chunks_end`).
    pub fn fresh_chunks(&self) -> usize {
        self.fresh
            .map_or(0, |(_, next)| self.chunks_per_page - next as usize)
    }

    pub fn total_chunks(&self) -> usize {
        self.pages.len() * self.chunks_per_page
    }
}

/// The pages and slab classes of one partition.
pub(crate) struct Slabs {
    pub classes: Vec<SlabClass>,
    /// Classes of the ladder (those before the chain classes).
    ladder: usize,
    /// Page slots by id; an empty slot's id is in `spare_ids`.
    pages: Vec<Option<Page>>,
    spare_ids: Vec<u32>,
    chunk_bits: u32,
    max_pages: usize,
}

impl std::fmt::Debug for Slabs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slabs")
            .field("classes", &self.classes.len())
            .field("pages", &self.page_count())
            .finish()
    }
}

impl Slabs {
    pub fn new(class_sizes: &[usize], page_size: usize) -> Self {
        let smallest = class_sizes.first().copied().unwrap_or(page_size).max(1);
        let max_chunks = (page_size / smallest).max(1);
        let chunk_bits = (usize::BITS - (max_chunks - 1).leading_zeros()).max(1);
        // The all-ones handle is NO_HANDLE, so the last page id is never used.
        let max_pages = (1usize << (32 - chunk_bits).min(31)) - 1;
        let largest = class_sizes.last().copied().unwrap_or(page_size);
        let chain_sizes = std::iter::repeat_n(largest, CHAIN_CLASSES);
        let classes = class_sizes
            .iter()
            .copied()
            .chain(chain_sizes)
            .map(|chunk_size| SlabClass {
                chunk_size,
                chunks_per_page: (page_size / chunk_size).max(1),
                pages: Vec::new(),
                free: Vec::new(),
                fresh: None,
                hand: 0,
                probation: VecDeque::new(),
                probation_items: 0,
                used_chunks: 0,
                items: 0,
                mem_requested: 0,
                counters: ClassStats::default(),
                evicted_checkpoint: 0,
                items_checkpoint: 0,
                demand_average: 0,
                proven_evictions: 0,
                proven_average: 0,
                ever_had_pages: false,
                page_credit: 0,
                idle: false,
                idle_windows: 0,
                emptying_evictions: 0,
            })
            .collect();
        Slabs {
            classes,
            ladder: class_sizes.len(),
            pages: Vec::new(),
            spare_ids: Vec::new(),
            chunk_bits,
            max_pages,
        }
    }

    /// The smallest class of the ladder whose chunks hold `size` bytes.
    pub fn class_for(&self, size: usize) -> Option<usize> {
        let at = self.classes[..self.ladder].partition_point(|class| class.chunk_size < size);
        (at < self.ladder).then_some(at)
    }

    /// Index of the ladder's largest class (the largest single-chunk items).
    pub fn largest_class(&self) -> usize {
        self.ladder - 1
    }

    /// The chain class of an item of `chunks` chunks (a chain has at least 2; fewer is the
    /// first band).
    pub fn chain_class(&self, chunks: usize) -> usize {
        let band = (usize::BITS - chunks.saturating_sub(1).leading_zeros()).saturating_sub(1);
        self.ladder + (band as usize).min(CHAIN_CLASSES - 1)
    }

    /// Whether `class` is a chain class (holds chained items' heads and middle chunks).
    pub fn is_chain_class(&self, class: usize) -> bool {
        class >= self.ladder
    }

    /// Chunks of a ladder class that hold chains' last chunks (its chunks in use beyond its
    /// own items, one chunk each); 0 for a chain class, whose items span several chunks.
    pub fn tail_chunks(&self, class: usize) -> usize {
        if self.is_chain_class(class) {
            return 0;
        }
        let slab = &self.classes[class];
        slab.used_chunks.saturating_sub(slab.items)
    }

    pub fn page_count(&self) -> usize {
        self.pages.len() - self.spare_ids.len()
    }

    /// Whether another page can be addressed by the handles.
    pub fn can_add_page(&self) -> bool {
        self.page_count() < self.max_pages
    }

    #[inline]
    fn split(&self, handle: u32) -> (usize, usize) {
        (
            (handle >> self.chunk_bits) as usize,
            (handle & ((1 << self.chunk_bits) - 1)) as usize,
        )
    }

    #[inline]
    fn handle(&self, page: usize, chunk: usize) -> u32 {
        ((page as u32) << self.chunk_bits) | chunk as u32
    }

    #[inline]
    fn page(&self, page: usize) -> &Page {
        self.pages[page]
            .as_ref()
            .expect("a live handle names a page the partition holds")
    }

    #[inline]
    fn page_mut(&mut self, page: usize) -> &mut Page {
        self.pages[page]
            .as_mut()
            .expect("a live handle names a page the partition holds")
    }

    /// The bytes of a chunk.
    #[inline]
    pub fn chunk(&self, handle: u32) -> &[u8] {
        let (page, chunk) = self.split(handle);
        let page = self.page(page);
        let size = page.chunk_size as usize;
        page.data.bytes(chunk * size..(chunk + 1) * size)
    }

    /// The bytes of a chunk to write: a view of this chunk only, never of its whole page
    /// (another thread may be reading a pinned chunk of the page).
    #[inline]
    pub fn chunk_mut(&mut self, handle: u32) -> &mut [u8] {
        let (page, chunk) = self.split(handle);
        let page = self.page_mut(page);
        let size = page.chunk_size as usize;
        page.data.bytes_mut(chunk * size..(chunk + 1) * size)
    }

    /// `range` of a chunk, to be read after the partition lock is released; pin.rs keeps the
    /// chunk from being written or freed while the span lives.
    pub(crate) fn chunk_span(&self, handle: u32, range: std::ops::Range<usize>) -> PinnedSpan {
        let (page, chunk) = self.split(handle);
        let page = self.page(page);
        let at = chunk * page.chunk_size as usize;
        debug_assert!(range.end <= page.chunk_size as usize);
        page.data.span(at + range.start..at + range.end)
    }

    /// The id of the page a chunk is on.
    #[inline]
    pub fn page_of(&self, handle: u32) -> u32 {
        self.split(handle).0 as u32
    }

    /// The class a chunk belongs to.
    #[inline]
    pub fn class_of(&self, handle: u32) -> usize {
        usize::from(self.page(self.split(handle).0).class)
    }

    /// A free chunk of `class` that is not on page `avoid` (the page being emptied), now
    /// counted as used; `None` when every free chunk of the class is on that page.
    pub fn take_free_chunk_off_page(&mut self, class: usize, avoid: u32) -> Option<u32> {
        let bits = self.chunk_bits;
        let slab = &mut self.classes[class];
        let handle = match slab
            .free
            .iter()
            .rposition(|&handle| handle >> bits != avoid)
        {
            Some(at) => slab.free.swap_remove(at),
            None => {
                let (page, next) = slab.fresh.filter(|&(page, _)| page != avoid)?;
                let cut = slab.chunks_per_page as u32;
                slab.fresh = (next + 1 < cut).then_some((page, next + 1));
                self.handle(page as usize, next as usize)
            }
        };
        self.classes[class].used_chunks += 1;
        let page = self.split(handle).0;
        self.page_mut(page).used += 1;
        Some(handle)
    }

    /// Copies chunk `from` whole into chunk `to` of the same class.
    pub fn copy_chunk(&mut self, from: u32, to: u32) {
        let ((from_page, from_chunk), (to_page, to_chunk)) = (self.split(from), self.split(to));
        let size = self.page(from_page).chunk_size as usize;
        debug_assert_eq!(size, self.page(to_page).chunk_size as usize);
        let (from_at, to_at) = (from_chunk * size, to_chunk * size);
        if from_page == to_page {
            self.page_mut(from_page)
                .data
                .copy_within(from_at..from_at + size, to_at);
            return;
        }
        // Two distinct pages: take the source out of its slot for the copy, then put it back.
        let source = self.pages[from_page].take().expect("a held page");
        self.page_mut(to_page)
            .data
            .bytes_mut(to_at..to_at + size)
            .copy_from_slice(source.data.bytes(from_at..from_at + size));
        self.pages[from_page] = Some(source);
    }

    /// A free chunk of `class`, now counted as used; the caller writes its header.
    pub fn take_free_chunk(&mut self, class: usize) -> Option<u32> {
        let handle = match self.classes[class].free.pop() {
            Some(handle) => handle,
            None => {
                let (page, next) = self.classes[class].fresh?;
                let cut = self.classes[class].chunks_per_page as u32;
                self.classes[class].fresh = (next + 1 < cut).then_some((page, next + 1));
                self.handle(page as usize, next as usize)
            }
        };
        self.classes[class].used_chunks += 1;
        let page = self.split(handle).0;
        self.page_mut(page).used += 1;
        Some(handle)
    }

    /// Gives a chunk back to its class's free chunks.
    pub fn release_chunk(&mut self, handle: u32) {
        item::mark_free(self.chunk_mut(handle));
        let (page, _) = self.split(handle);
        let page = self.page_mut(page);
        page.used -= 1;
        let class = usize::from(page.class);
        self.classes[class].used_chunks -= 1;
        self.classes[class].free.push(handle);
    }

    /// Adds a page to `class`; its chunks are cut as they are needed.
    pub fn add_page(&mut self, class: usize, mut data: PageMemory) {
        let chunk_size = self.classes[class].chunk_size;
        let chunks = self.classes[class].chunks_per_page;
        // Pages are reused: every chunk must read as free before the CLOCK hand passes it.
        for chunk in 0..chunks {
            item::mark_free(data.bytes_mut(chunk * chunk_size..(chunk + 1) * chunk_size));
        }
        let page = Page {
            data,
            class: class as u8,
            chunk_size: chunk_size as u32,
            used: 0,
        };
        let id = match self.spare_ids.pop() {
            Some(id) => {
                self.pages[id as usize] = Some(page);
                id
            }
            None => {
                self.pages.push(Some(page));
                (self.pages.len() - 1) as u32
            }
        };
        let class = &mut self.classes[class];
        class.pages.push(id);
        class.ever_had_pages = true;
        if let Some((old_fresh, next)) = class.fresh.take() {
            // Not expected (a page is only added when nothing is free), but keep the tail.
            for chunk in next as usize..class.chunks_per_page {
                class
                    .free
                    .push(((old_fresh) << self.chunk_bits) | chunk as u32);
            }
        }
        class.fresh = Some((id, 0));
    }

    /// Removes an empty page (no chunk in use) from its class and returns its memory.
    pub fn remove_page(&mut self, id: u32) -> PageMemory {
        let page = self.pages[id as usize]
            .take()
            .expect("only held pages are removed");
        debug_assert_eq!(page.used, 0, "only empty pages are removed");
        let chunk_bits = self.chunk_bits;
        let class = &mut self.classes[usize::from(page.class)];
        class.free.retain(|&handle| handle >> chunk_bits != id);
        // The page may next serve another class: no stale entry may point into it.
        class
            .probation
            .retain(|queued| queued.handle >> chunk_bits != id);
        if class.fresh.is_some_and(|(fresh, _)| fresh == id) {
            class.fresh = None;
        }
        if let Some(at) = class.pages.iter().position(|&page| page == id) {
            class.pages.remove(at);
            let total = class.total_chunks();
            if at * class.chunks_per_page < class.hand {
                class.hand = class.hand.saturating_sub(class.chunks_per_page);
            }
            if class.hand >= total {
                class.hand = 0;
            }
        }
        self.spare_ids.push(id);
        page.data
    }

    /// Chunks in use in a page.
    pub fn page_used(&self, id: u32) -> u32 {
        self.page(id as usize).used
    }

    /// The handle at position `pos` of a class's CLOCK order.
    #[inline]
    pub fn handle_at(&self, class: usize, pos: usize) -> u32 {
        let class = &self.classes[class];
        let page = class.pages[pos / class.chunks_per_page];
        self.handle(page as usize, pos % class.chunks_per_page)
    }

    /// Whether a small-FIFO entry still names the item it was queued for, on probation.
    pub fn is_queued_item(&self, queued: Queued, cas_enabled: bool) -> bool {
        let chunk = self.chunk(queued.handle);
        item::is_head(chunk)
            && item::is_on_probation(chunk)
            && item::queue_tag(chunk, cas_enabled) == queued.tag
    }

    /// Drops stale small-FIFO entries (and duplicates) once they outnumber the items on
    /// probation, so the queue stays bounded without evictions.
    pub fn compact_probation(&mut self, class: usize, cas_enabled: bool) {
        let slab = &self.classes[class];
        if slab.probation.len() <= 2 * slab.probation_items + 64 {
            return;
        }
        let mut queue = std::mem::take(&mut self.classes[class].probation);
        let mut seen = HashSet::with_capacity(self.classes[class].probation_items);
        queue.retain(|&queued| self.is_queued_item(queued, cas_enabled) && seen.insert(queued));
        self.classes[class].probation = queue;
    }

    /// Handles of every chunk of a page.
    pub fn page_handles(&self, id: u32) -> impl DoubleEndedIterator<Item = u32> + use<> {
        let chunks = self.classes[usize::from(self.page(id as usize).class)].chunks_per_page;
        let base = id << self.chunk_bits;
        (0..chunks as u32).map(move |chunk| base | chunk)
    }

    /// Page id slots (some empty), for the crawler's cursor.
    pub fn page_slots(&self) -> usize {
        self.pages.len()
    }

    /// Whether a page slot holds a page.
    pub fn has_page(&self, id: usize) -> bool {
        self.pages.get(id).is_some_and(Option::is_some)
    }

    /// Every page held, for giving them all back.
    pub fn drain_pages(&mut self) -> Vec<PageMemory> {
        for class in &mut self.classes {
            class.pages.clear();
            class.free.clear();
            class.fresh = None;
            class.hand = 0;
            class.used_chunks = 0;
            class.probation.clear();
            class.probation_items = 0;
        }
        self.spare_ids.clear();
        self.pages
            .drain(..)
            .flatten()
            .map(|page| page.data)
            .collect()
    }

    pub fn is_valid(&self, handle: u32) -> bool {
        handle != NO_HANDLE && self.has_page(self.split(handle).0)
    }

    // ----- restart ----------------------------------------------------------------------

    /// Every page held, as (local id, class, region slot), for the restart header; `None`
    /// if a page lives on the heap (it cannot outlive the process).
    pub fn region_pages(&self) -> Option<Vec<(u32, u8, u32)>> {
        self.pages
            .iter()
            .enumerate()
            .filter_map(|(id, page)| page.as_ref().map(|page| (id, page)))
            .map(|(id, page)| Some((id as u32, page.class, page.data.slot()?)))
            .collect()
    }

    /// The bytes of a held page.
    pub fn page_bytes(&self, id: u32) -> &[u8] {
        &self.page(id as usize).data
    }

    /// One more than the largest handle a held page's chunk can have (the size of a bitmap
    /// over handles).
    pub fn handle_space(&self) -> usize {
        self.pages.len() << self.chunk_bits
    }

    /// Whether a handle names a chunk of a held page (a handle read back from memory at a
    /// restart is checked with it before it is followed).
    pub fn is_chunk(&self, handle: u32) -> bool {
        if handle == NO_HANDLE {
            return false;
        }
        let (page, chunk) = self.split(handle);
        self.pages
            .get(page)
            .and_then(Option::as_ref)
            .is_some_and(|page| chunk < self.classes[usize::from(page.class)].chunks_per_page)
    }

    /// Takes back a page this partition held before a restart, at its old id, with its chunks
    /// as they are. Returns `false` (and gives the page back) if the id or class cannot be
    /// this partition's or the id is taken. Call [`Slabs::settle_adopted`] once every page is
    /// in.
    pub fn adopt_page(
        &mut self,
        id: u32,
        class: usize,
        data: PageMemory,
    ) -> Result<(), PageMemory> {
        let at = id as usize;
        if class >= self.classes.len() || at >= self.max_pages || self.has_page(at) {
            return Err(data);
        }
        if self.pages.len() <= at {
            self.pages.resize_with(at + 1, || None);
        }
        self.pages[at] = Some(Page {
            data,
            class: class as u8,
            chunk_size: self.classes[class].chunk_size as u32,
            used: 0,
        });
        let class = &mut self.classes[class];
        class.pages.push(id);
        class.ever_had_pages = true;
        Ok(())
    }

    /// Finishes a restart: every chunk of the adopted pages for which `live` is false is
    /// marked free and becomes a free chunk of its class; the others are counted used.
    pub fn settle_adopted(&mut self, live: impl Fn(u32) -> bool) {
        self.spare_ids = (0..self.pages.len() as u32)
            .filter(|&id| !self.has_page(id as usize))
            .collect();
        for id in 0..self.pages.len() {
            if !self.has_page(id) {
                continue;
            }
            let class = usize::from(self.page(id).class);
            let mut used = 0;
            for handle in self.page_handles(id as u32).rev() {
                if live(handle) {
                    used += 1;
                } else {
                    item::mark_free(self.chunk_mut(handle));
                    self.classes[class].free.push(handle);
                }
            }
            self.page_mut(id).used = used;
            self.classes[class].used_chunks += used as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_bands_and_chain_classes_agree() {
        let slabs = Slabs::new(&[64, 128], 1024);
        for band in 0..CHAIN_CLASSES {
            let (fewest, most) = chain_band_chunks(band);
            assert_eq!(slabs.chain_class(fewest), 2 + band);
            assert_eq!(slabs.chain_class(most.unwrap_or(1 << 20)), 2 + band);
        }
    }

    #[test]
    fn chained_items_are_banded_by_their_chunk_count() {
        let slabs = Slabs::new(&[64, 128, 256, 1024], 4096);
        assert_eq!(slabs.classes.len(), 4 + CHAIN_CLASSES);
        assert_eq!(slabs.largest_class(), 3);
        assert_eq!(slabs.class_for(1024), Some(3));
        assert_eq!(
            slabs.class_for(1025),
            None,
            "no single chunk is a chain class"
        );
        let ladder = 4;
        assert_eq!(slabs.chain_class(2), ladder);
        assert_eq!(slabs.chain_class(3), ladder + 1);
        assert_eq!(slabs.chain_class(4), ladder + 1);
        assert_eq!(slabs.chain_class(5), ladder + 2);
        assert_eq!(slabs.chain_class(8), ladder + 2);
        assert_eq!(slabs.chain_class(9), ladder + 3);
        assert_eq!(slabs.chain_class(1 << 20), ladder + CHAIN_CLASSES - 1);
        for class in ladder..slabs.classes.len() {
            assert!(slabs.is_chain_class(class));
            assert_eq!(slabs.classes[class].chunk_size, 1024);
        }
        assert!(!slabs.is_chain_class(3));
    }
}

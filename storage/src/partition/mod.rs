//! One partition of the keyspace: its hash index, slab classes, CLOCK hands and counters.
//!
//! Owns: every item whose key hashes to this partition, the pages it holds from the shared
//! [`PagePool`], and the semantics of each operation (memcached's). Must not touch: other
//! partitions, locks (the daemon wraps a partition in a `parking_lot::Mutex`; every method
//! takes `&mut self`), or the wire format.
//!
//! # Design
//! - Index: a [`HandleTable`] of item handles (64-byte buckets of 12 tags and 12 handles, one
//!   cache miss per probe; 5.3 bytes a slot); lookups compare the key in place in the item's
//!   chunk, so keys are stored once.
//! - Eviction: S3-FIFO over CLOCK, per slab class. Reads raise the item's 2-bit frequency in
//!   its header (no list move, no global lock). A new key starts on probation in the class's
//!   small FIFO (a queue of 4-byte handles, a twentieth of the class); when memory is needed
//!   and the FIFO holds more than that, its oldest item is evicted unless it was read
//!   meanwhile, in which case it joins the main CLOCK. Otherwise the class's CLOCK hand walks
//!   the chunks, lowering frequencies, and evicts the first item at 0. Dead items found on the
//!   way are reclaimed first. One-hit wonders (cache-aside misses on a long tail) thus stay
//!   only briefly; a key evicted from the small FIFO and set again soon (its fingerprint still
//!   in the class's ghost table) goes straight to the main CLOCK. CLOCK and LRU can be chosen instead ([`StorageConfig::eviction`]) to
//!   compare them in one build: `examples/lazy_loading.rs` measures their hit ratios (W5 and
//!   a scan-heavy trace; storage/README.md has the figures).
//! - Memory: a class with no free chunk first takes a page from the shared pool, then a page
//!   of a class that was idle in the page mover's last window if the mover gave it credit,
//!   then runs its hand, then empties a page of the class with the most pages. `maintain`
//!   gives empty pages back and gives a page to a starving partition when over its fair
//!   share; the page mover (memcached's slab_automove, run by the store that closes its
//!   window and by `maintain`) moves pages from the class that evicts fewest items per byte to
//!   the one that evicts most, and grants the credit (`partition/pages.rs`).
//! - Expiry and `flush_all`: checked on every lookup against the item's expiry and last-access
//!   time; dead items are reclaimed when found, by the allocating hand, or by the crawler in
//!   `maintain`.
//!
//! # Where things are
//! This file holds the request types, the [`Partition`] and its public operations; each
//! concern the operations share has its own file: `index.rs` (lookup, link, unlink, liveness),
//! `write.rs` (writing items and headers, CAS), `evict.rs` (S3-FIFO/CLOCK), `pages.rs`
//! (allocation, page moves, automove), `crawl.rs` (the expiry crawler), `walk.rs` (operator
//! walks over every item).

use crate::KEY_MAX_LEN;
use crate::clock::Clock;
use crate::config::StorageConfig;
use crate::error::StoreError;
use crate::hasher::KeyHasher;
use crate::item::{self, Header, NO_HANDLE};
use crate::pin::{PinBoard, PinnedValue};
use crate::pool::PagePool;
use crate::slab::Slabs;
use crate::stats::{ClassStats, PartitionStats};
use crate::table::HandleTable;
use ferrocache_protocol::number::safe_strtoull;
use std::sync::Arc;

mod crawl;
mod evict;
mod index;
mod pages;
mod restore;
mod walk;
mod write;

use evict::{Eviction, Policy};
use index::{FlushState, IndexHasher, PendingFlush};
pub use restore::RestoreError;
pub(crate) use restore::{HeldPage, PartitionState};
pub use walk::{ClassSet, WalkCursor};

/// How a store treats an existing (or missing) item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// Store unconditionally.
    Set,
    /// Store only if the key holds no live item.
    Add,
    /// Store only if the key holds a live item.
    Replace,
    /// Add the data after the existing value; keep flags and expiry.
    Append,
    /// Add the data before the existing value; keep flags and expiry.
    Prepend,
}

/// A storage request: text `set/add/replace/append/prepend/cas` and meta `ms`.
#[derive(Debug, Clone, Copy)]
pub struct StoreRequest<'a> {
    pub hash: u64,
    pub key: &'a [u8],
    pub value: &'a [u8],
    /// Client flags (ignored by append and prepend).
    pub flags: u32,
    /// Client exptime (ignored by append and prepend).
    pub exptime: i64,
    pub mode: StoreMode,
    /// Store only if the item's CAS equals this (text `cas`, meta `C`).
    pub compare_cas: Option<u64>,
    /// Give the stored item this CAS instead of a fresh one (meta `E`).
    pub new_cas: Option<u64>,
    /// Meta `I`: if `compare_cas` is older than the item's CAS, store anyway but mark the item
    /// stale.
    pub invalidate: bool,
    /// Meta `N` in append/prepend mode: on a miss, create the item with this exptime.
    pub vivify_exptime: Option<i64>,
    /// If the store fails (too large, out of memory), unlink the key's old item, so that a
    /// reader never gets the value the client meant to replace. memcached does it for a text or
    /// binary `set` ("Unacceptable for SET", proto_text.c, proto_bin.c; a binary set with a CAS
    /// too) and for every meta `ms` (process_mset_command), but not for a text `cas`, `add`,
    /// `replace`, `append` or `prepend`, which keep the old item. [`StoreRequest::new`] sets it
    /// for mode `Set` (memcached's `set`); whoever knows the protocol command says otherwise.
    pub drop_old_on_failure: bool,
}

impl<'a> StoreRequest<'a> {
    /// A plain request of `mode`, with no meta options.
    pub fn new(
        hash: u64,
        key: &'a [u8],
        value: &'a [u8],
        flags: u32,
        exptime: i64,
        mode: StoreMode,
    ) -> Self {
        StoreRequest {
            hash,
            key,
            value,
            flags,
            exptime,
            mode,
            compare_cas: None,
            new_cas: None,
            invalidate: false,
            vivify_exptime: None,
            drop_old_on_failure: mode == StoreMode::Set,
        }
    }
}

/// What a store did (`STORED`, `NOT_STORED`, `EXISTS`, `NOT_FOUND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    Stored { cas: u64 },
    NotStored,
    Exists,
    NotFound,
}

/// A delete: text `delete` and meta `md`.
#[derive(Debug, Clone, Copy)]
pub struct DeleteRequest<'a> {
    pub hash: u64,
    pub key: &'a [u8],
    /// Delete only if the item's CAS equals this (meta `C`).
    pub compare_cas: Option<u64>,
    /// Meta `I`: instead of removing the item, mark it stale; with `Some(exptime)` from meta
    /// `T`, also give it that exptime.
    pub invalidate: Option<Option<i64>>,
    /// Give an invalidated item this CAS (meta `E`).
    pub new_cas: Option<u64>,
}

impl<'a> DeleteRequest<'a> {
    /// A plain delete.
    pub fn new(hash: u64, key: &'a [u8]) -> Self {
        DeleteRequest {
            hash,
            key,
            compare_cas: None,
            invalidate: None,
            new_cas: None,
        }
    }
}

/// What a delete did (`DELETED`/`HD`, `NOT_FOUND`/`NF`, `EXISTS`/`EX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    NotFound,
    Exists,
}

/// Increment or decrement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithMode {
    /// Add, wrapping at 2^64.
    Incr,
    /// Subtract, stopping at 0.
    Decr,
}

/// Text `incr`/`decr` and meta `ma`.
#[derive(Debug, Clone, Copy)]
pub struct ArithRequest<'a> {
    pub hash: u64,
    pub key: &'a [u8],
    pub mode: ArithMode,
    pub delta: u64,
    /// Only if the item's CAS equals this (meta `C`).
    pub compare_cas: Option<u64>,
    /// Give the item this CAS (meta `E`).
    pub new_cas: Option<u64>,
    /// Meta `N` (with `J`): on a miss, create the item holding `initial` with this exptime.
    pub vivify: Option<(u64, i64)>,
    /// Meta `T`: also set this exptime.
    pub exptime: Option<i64>,
}

impl<'a> ArithRequest<'a> {
    /// A plain `incr`/`decr`.
    pub fn new(hash: u64, key: &'a [u8], mode: ArithMode, delta: u64) -> Self {
        ArithRequest {
            hash,
            key,
            mode,
            delta,
            compare_cas: None,
            new_cas: None,
            vivify: None,
            exptime: None,
        }
    }
}

/// What an increment or decrement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOutcome {
    /// The item now holds `value`.
    Updated {
        value: u64,
        cas: u64,
        /// Seconds left to live, -1 for never (meta `t`).
        ttl: i64,
        /// The counter did not exist and was created holding the initial value (meta `N`).
        created: bool,
    },
    NotFound,
    /// `compare_cas` did not match.
    Exists,
    /// The stored value is not a decimal u64 (`CLIENT_ERROR cannot increment or decrement
    /// non-numeric value`).
    NonNumeric,
}

/// Options of a meta get (`mg`) that change what the read does.
#[derive(Debug, Clone, Copy)]
pub struct MetaGetOptions {
    /// Count this read as an access (false with `u`).
    pub bump: bool,
    /// `T`: set this exptime on a hit.
    pub touch: Option<i64>,
    /// `N`: on a miss, create an empty item with this exptime and make this client the winner.
    pub vivify: Option<i64>,
    /// `R`: if the item's remaining TTL is below this many seconds, make this client the winner
    /// (once).
    pub recache_below: Option<i64>,
}

impl Default for MetaGetOptions {
    fn default() -> Self {
        MetaGetOptions {
            bump: true,
            touch: None,
            vivify: None,
            recache_below: None,
        }
    }
}

/// What a meta get found.
#[derive(Debug)]
pub enum MetaGetOutcome<'a> {
    Hit {
        item: ItemRef<'a>,
        /// The item had been fetched before this read (`h`).
        hit_before: bool,
        /// Seconds since the item was last accessed, before this read (`l`).
        last_access: u32,
        /// This client won the right to recache (`W`).
        win: bool,
        /// The item is stale (`X`).
        stale: bool,
        /// A win was already handed to another client (`Z`).
        win_sent: bool,
    },
    Miss,
}

/// A live item, borrowed from its partition while the caller holds the partition's lock.
#[derive(Clone, Copy)]
pub struct ItemRef<'a> {
    partition: &'a Partition,
    handle: u32,
    header: Header,
}

impl std::fmt::Debug for ItemRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemRef")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("flags", &self.flags())
            .field("cas", &self.cas())
            .field("value_len", &self.value_len())
            .finish()
    }
}

impl<'a> ItemRef<'a> {
    /// The key.
    pub fn key(&self) -> &'a [u8] {
        item::key_of(
            self.partition.slabs.chunk(self.handle),
            self.partition.cas_enabled,
        )
    }

    /// Client flags.
    pub fn flags(&self) -> u32 {
        self.header.flags
    }

    /// CAS unique (0 when CAS is disabled).
    pub fn cas(&self) -> u64 {
        self.header.cas
    }

    /// Length of the value in bytes.
    pub fn value_len(&self) -> usize {
        self.header.value_len as usize
    }

    /// The value, as one slice per chunk it is stored in (one for all but chained items).
    pub fn value(&self) -> ValueChunks<'a> {
        let partition = self.partition;
        let chunk = partition.slabs.chunk(self.handle);
        let start = self.header.value_start(partition.cas_enabled);
        let total = self.value_len();
        let first_len = total.min(chunk.len() - start);
        ValueChunks {
            partition,
            first: Some(&chunk[start..start + first_len]),
            next: self.header.next,
            remaining: total - first_len,
        }
    }

    /// The value for writing after the partition lock is released: the part held in the head
    /// chunk (copy it now: the head's header changes on every read) and the rest pinned in its
    /// continuation chunks, which stay as they are until the [`PinnedValue`] is dropped, even
    /// if the item is deleted, replaced or evicted meanwhile. `None` for a value held in one
    /// chunk (copying it is cheaper than pinning it), and when the partition's pinned values
    /// are at their budget (`PIN_BUDGET_SHARE`): copy the value then.
    pub fn pin_value(&self) -> Option<(&'a [u8], PinnedValue)> {
        if !self.header.is_chained() {
            return None;
        }
        let partition = self.partition;
        let mut parts = self.value();
        let head_part = parts.first.take().unwrap_or_default();
        let (mut chunks, mut spans, mut len) = (Vec::new(), Vec::new(), 0);
        while let Some((handle, part)) = parts.next_continuation() {
            let data = item::CONTINUATION_HEADER..item::CONTINUATION_HEADER + part;
            spans.push(partition.slabs.chunk_span(handle, data));
            chunks.push(handle);
            len += part;
        }
        debug_assert_eq!(
            head_part.len() + len,
            self.value_len(),
            "a chain holds its value"
        );
        let pinned = partition
            .pins
            .pin(self.handle, chunks, spans, len, partition.pin_budget())?;
        Some((head_part, pinned))
    }

    /// Seconds left to live, -1 for never.
    pub fn ttl(&self) -> i64 {
        self.partition.clock.ttl_of(self.header.expiry)
    }

    /// Seconds since the last access.
    pub fn last_access(&self) -> u32 {
        self.partition.clock.now().saturating_sub(self.header.time)
    }

    /// Whether the item has been fetched since it was stored.
    pub fn fetched(&self) -> bool {
        self.header.bits & item::FETCHED != 0
    }

    /// The slab class id of the item's first chunk (meta `me` `cls=`).
    pub fn class_id(&self) -> u8 {
        (self.partition.slabs.class_of(self.handle) + 1) as u8
    }

    /// Bytes the item takes: header, key and value (meta `me` `size=`).
    pub fn total_size(&self) -> usize {
        self.header.item_size(self.partition.cas_enabled)
    }
}

/// Pinned values of a partition take at most this share (1/8) of its fair share of the
/// memory: an item unlinked while pinned keeps its memory and a page holding a pinned chunk
/// cannot move, so readers that never read could otherwise hold the cache's memory. W7's four
/// readers of 256 KiB values pin about 1 MiB.
pub const PIN_BUDGET_SHARE: usize = 8;

/// The chunks of a value, in order.
#[derive(Clone)]
pub struct ValueChunks<'a> {
    partition: &'a Partition,
    first: Option<&'a [u8]>,
    next: u32,
    remaining: usize,
}

impl std::fmt::Debug for ValueChunks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueChunks")
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl ValueChunks<'_> {
    /// The next continuation chunk (after the head chunk's part) and how many bytes of the
    /// value it holds.
    fn next_continuation(&mut self) -> Option<(u32, usize)> {
        if self.remaining == 0 || self.next == NO_HANDLE {
            return None;
        }
        let handle = self.next;
        let chunk = self.partition.slabs.chunk(handle);
        let len = self.remaining.min(item::continuation_data(chunk).len());
        self.remaining -= len;
        self.next = item::continuation_next(chunk);
        Some((handle, len))
    }
}

impl<'a> Iterator for ValueChunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        let (handle, len) = self.next_continuation()?;
        Some(&item::continuation_data(self.partition.slabs.chunk(handle))[..len])
    }
}

/// One partition of the cache.
pub struct Partition {
    config: Arc<StorageConfig>,
    pool: Arc<PagePool>,
    clock: Arc<Clock>,
    cas_enabled: bool,
    /// Item head handles, found by comparing keys in place in their chunks; one per item, so
    /// its length is the item count.
    index: HandleTable,
    index_hasher: IndexHasher,
    slabs: Slabs,
    /// The CAS the next store gets. CAS uniques are unique per server, not only per partition:
    /// partition `id` of `count` hands out `id + 1`, `id + 1 + count`, ... (its own stripe, see
    /// [`Partition::with_cas_stripe`]), so no lock or shared counter is needed for them.
    next_cas: u64,
    /// The first CAS of this partition's stripe (`id + 1`), where the counter starts again if it
    /// ever wraps.
    first_cas: u64,
    /// The stripe's step: the number of partitions sharing the CAS space.
    cas_step: u64,
    flush: FlushState,
    /// Counters; gauges are filled in by [`Partition::stats`].
    counters: PartitionStats,
    bytes: u64,
    /// Bytes of the items evicted since the page mover last decided (its window).
    evicted_window_bytes: u64,
    /// The page mover's window is counting (from the first eviction, and while automove is
    /// on).
    mover_window_open: bool,
    /// A page is being emptied: its evictions are counted apart (`emptying_evictions`).
    emptying_page: bool,
    /// Crawler position: page slot and chunk.
    crawl_page: usize,
    crawl_chunk: usize,
    /// This partition told the pool it needs a page.
    starving: bool,
    /// Which item a class gives up when it needs a chunk ([`StorageConfig::eviction`]).
    eviction: Eviction,
    /// Chained items whose continuation chunks readers are writing to sockets without the
    /// lock ([`ItemRef::pin_value`]).
    pins: Arc<PinBoard>,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("items", &self.index.len())
            .field("bytes", &self.bytes)
            .field("slabs", &self.slabs)
            .finish()
    }
}

impl Partition {
    /// An empty partition drawing pages from `pool`. `config` must have passed
    /// [`StorageConfig::validate`].
    ///
    /// Its index hashes keys itself; [`Partition::with_key_hasher`] saves that hash.
    pub fn new(config: Arc<StorageConfig>, pool: Arc<PagePool>, clock: Arc<Clock>) -> Self {
        Self::build(
            config,
            pool,
            clock,
            IndexHasher::Own(ahash::RandomState::new()),
        )
    }

    /// An empty partition whose index uses the hash every operation is given, which must come
    /// from `hasher` (the same one the caller routes keys with).
    pub fn with_key_hasher(
        config: Arc<StorageConfig>,
        pool: Arc<PagePool>,
        clock: Arc<Clock>,
        hasher: KeyHasher,
    ) -> Self {
        Self::build(config, pool, clock, IndexHasher::Caller(hasher))
    }

    /// This partition as partition `id` of `count` that serve one server: its CAS uniques are
    /// `id + 1 + k * count`, so the partitions never hand out the same CAS (memcached's are
    /// unique per server) while each keeps its own counter. Call it before the first store. A
    /// partition built without it uses the whole CAS space (`id` 0 of 1).
    ///
    /// The counter still rises by about one per store across the server; an item's header
    /// keeps the low 40 bits of its CAS (see `item.rs`).
    ///
    /// # Panics
    /// If `count` is 0 or `id` is not below it.
    #[must_use]
    pub fn with_cas_stripe(mut self, id: usize, count: usize) -> Self {
        assert!(id < count, "partition {id} of {count}");
        debug_assert!(
            self.index.is_empty(),
            "the CAS stripe is set before any store"
        );
        self.first_cas = id as u64 + 1;
        self.cas_step = count as u64;
        self.next_cas = self.first_cas;
        self
    }

    fn build(
        config: Arc<StorageConfig>,
        pool: Arc<PagePool>,
        clock: Arc<Clock>,
        index_hasher: IndexHasher,
    ) -> Self {
        pool.register_partition();
        let slabs = Slabs::new(&config.slab_class_sizes(), pool.page_size());
        let eviction = Eviction::new(config.eviction, slabs.classes.len());
        Partition {
            cas_enabled: config.cas,
            index: HandleTable::with_capacity(config.index_capacity),
            index_hasher,
            slabs,
            next_cas: 1,
            first_cas: 1,
            cas_step: 1,
            flush: FlushState::default(),
            counters: PartitionStats::default(),
            bytes: 0,
            evicted_window_bytes: 0,
            mover_window_open: false,
            emptying_page: false,
            crawl_page: 0,
            crawl_chunk: 0,
            starving: false,
            eviction,
            pins: Arc::default(),
            config,
            pool,
            clock,
        }
    }

    /// Bytes of values this partition may have pinned at once ([`PIN_BUDGET_SHARE`]).
    fn pin_budget(&self) -> usize {
        self.pool.fair_share() * self.pool.page_size() / PIN_BUDGET_SHARE
    }

    // ----- operations ---------------------------------------------------------------------

    /// `get`/`gets`: the live item, counted as a hit and marked accessed; `None` counts a miss
    /// (an expired or flushed item found here is reclaimed).
    pub fn get(&mut self, hash: u64, key: &[u8]) -> Option<ItemRef<'_>> {
        self.counters.cmd_get += 1;
        let Some((handle, mut header)) = self.lookup_counting_misses(hash, key) else {
            self.counters.get_misses += 1;
            return None;
        };
        self.counters.get_hits += 1;
        self.class_counters(handle).get_hits += 1;
        self.bump(handle, &mut header);
        Some(self.item_ref(handle, header))
    }

    /// `gat`/`gats`: [`Partition::get`] that also sets a new exptime on a hit.
    pub fn get_and_touch(&mut self, hash: u64, key: &[u8], exptime: i64) -> Option<ItemRef<'_>> {
        self.counters.cmd_get += 1;
        self.counters.cmd_touch += 1;
        let Some((handle, mut header)) =
            self.lookup_counting_misses(hash, key)
                .and_then(|(handle, mut header)| {
                    self.set_expiry(hash, handle, &mut header, exptime)
                        .map(|handle| (handle, header))
                })
        else {
            self.counters.get_misses += 1;
            self.counters.touch_misses += 1;
            return None;
        };
        self.counters.get_hits += 1;
        self.counters.touch_hits += 1;
        let class = self.class_counters(handle);
        class.get_hits += 1;
        class.touch_hits += 1;
        self.bump(handle, &mut header);
        Some(self.item_ref(handle, header))
    }

    /// `mg`.
    pub fn meta_get(
        &mut self,
        hash: u64,
        key: &[u8],
        options: &MetaGetOptions,
    ) -> MetaGetOutcome<'_> {
        // memcached counts an `mg` with `T` as a touch, any other as a get.
        if options.touch.is_some() {
            self.counters.cmd_touch += 1;
        } else {
            self.counters.cmd_get += 1;
        }
        let mut created = false;
        let found = match self.lookup_counting_misses(hash, key) {
            Some(found) => Some(found),
            None => match options.vivify {
                Some(exptime) => {
                    created = true;
                    self.vivify(hash, key, &[], exptime)
                }
                None => None,
            },
        };
        let found = match (found, options.touch) {
            (Some((handle, mut header)), Some(exptime)) => self
                .set_expiry(hash, handle, &mut header, exptime)
                .map(|handle| (handle, header)),
            (found, _) => found,
        };
        let Some((handle, mut header)) = found else {
            if options.touch.is_some() {
                self.counters.touch_misses += 1;
            } else {
                self.counters.get_misses += 1;
            }
            return MetaGetOutcome::Miss;
        };
        if options.touch.is_some() {
            self.counters.touch_hits += 1;
            self.class_counters(handle).touch_hits += 1;
        } else {
            self.counters.get_hits += 1;
            self.class_counters(handle).get_hits += 1;
        }
        let now = self.clock.now();
        let hit_before = header.bits & item::FETCHED != 0;
        let last_access = now.saturating_sub(header.time);
        let win_sent = header.win_sent;
        let stale = header.bits & item::STALE != 0;
        let mut win = created;
        if let Some(below) = options.recache_below {
            // memcached: the item expires before `R` seconds from now and no token went out.
            if !win_sent && !created && header.expiry != 0 {
                win |= header.expiry < self.clock.expiry_of(below);
            }
        }
        if stale && !win_sent {
            win = true;
        }
        if win {
            header.win_sent = true;
        }
        if options.bump {
            self.bump(handle, &mut header);
        } else {
            self.write_header_fields(handle, &header);
        }
        MetaGetOutcome::Hit {
            item: self.item_ref(handle, header),
            hit_before,
            last_access,
            win,
            stale,
            win_sent,
        }
    }

    /// The live item without counting or marking an access (meta `me`).
    pub fn peek(&mut self, hash: u64, key: &[u8]) -> Option<ItemRef<'_>> {
        let (handle, header) = self.lookup(hash, key).ok()?;
        Some(self.item_ref(handle, header))
    }

    /// `set`/`add`/`replace`/`append`/`prepend`/`cas`/`ms`.
    ///
    /// A store whose evictions closed the page mover's window lets it decide at once (and
    /// this store's caller waits for those few page moves): at the owner's maintenance ticks a
    /// fast fill of mixed sizes was over before memory had followed it. Empty pages go back
    /// to the pool then too: evicted chains empty pages of their bands, and where maintenance
    /// came seldom (a partition of a busy worker that owns 16) they stayed there, 2-4% of
    /// `-m 64 -t 32` filled with values of 1..100,000 bytes.
    pub fn store(&mut self, request: &StoreRequest<'_>) -> Result<StoreOutcome, StoreError> {
        let outcome = self.store_item(request);
        if self.rebalance_due() {
            self.release_empty_pages();
            self.rebalance();
        }
        outcome
    }

    fn store_item(&mut self, request: &StoreRequest<'_>) -> Result<StoreOutcome, StoreError> {
        self.counters.cmd_set += 1;
        if !valid_key(request.key) {
            return Ok(StoreOutcome::NotStored);
        }
        let old = self.lookup(request.hash, request.key).ok();
        let compare = request.compare_cas;
        // Text `cas`, and `ms` with `C` in set or replace mode: the CAS decides.
        // memcached's mset: "REPLACE + CAS works the same as CAS".
        let cas_mode =
            compare.is_some() && matches!(request.mode, StoreMode::Set | StoreMode::Replace);

        let Some((old_handle, old_header)) = old else {
            if cas_mode {
                self.counters.cas_misses += 1;
                return Ok(StoreOutcome::NotFound);
            }
            let exptime = match request.mode {
                StoreMode::Set | StoreMode::Add => request.exptime,
                StoreMode::Replace => return Ok(StoreOutcome::NotStored),
                StoreMode::Append | StoreMode::Prepend => match request.vivify_exptime {
                    Some(exptime) => exptime,
                    None => return Ok(StoreOutcome::NotStored),
                },
            };
            let header = self.new_header(
                request.key,
                request.flags,
                self.clock.expiry_of(exptime),
                request.new_cas,
            );
            return self
                .write_and_link(request.hash, request.key, header, &[request.value])
                .map(|(_, header)| StoreOutcome::Stored { cas: header.cas });
        };

        // memcached: a zero CAS to compare against means "no CAS given".
        let cas_matches = match compare {
            None | Some(0) => None,
            Some(cas) => Some(cas == old_header.cas),
        };
        let stale_store = request.invalidate
            && compare.is_some_and(|cas| cas != 0 && cas < old_header.cas)
            && cas_mode;
        let mut header;
        let mut copied_value = Vec::new();
        let parts: [&[u8]; 2];
        match request.mode {
            StoreMode::Add => {
                // Like memcached, a failed add counts as a use of the existing item.
                self.count_access(old_handle);
                return Ok(StoreOutcome::NotStored);
            }
            StoreMode::Set | StoreMode::Replace => {
                let cas_checked = cas_mode;
                if cas_checked && !stale_store && cas_matches != Some(true) {
                    self.counters.cas_badval += 1;
                    self.class_counters(old_handle).cas_badval += 1;
                    return Ok(StoreOutcome::Exists);
                }
                if cas_checked {
                    self.counters.cas_hits += 1;
                    self.class_counters(old_handle).cas_hits += 1;
                }
                header = self.new_header(
                    request.key,
                    request.flags,
                    self.clock.expiry_of(request.exptime),
                    request.new_cas,
                );
                if stale_store {
                    // memcached keeps the TTL and the stale and token-sent marks.
                    header.expiry = old_header.expiry;
                    header.bits |= item::STALE;
                    header.win_sent = old_header.win_sent;
                }
                parts = [request.value, &[]];
            }
            StoreMode::Append | StoreMode::Prepend => {
                if cas_matches == Some(false) {
                    return Ok(StoreOutcome::Exists);
                }
                header = self.new_header(
                    request.key,
                    old_header.flags,
                    old_header.expiry,
                    request.new_cas,
                );
                // The old value is copied out: making room for the new item may evict it.
                copied_value = self.copy_value(old_handle, &old_header);
                parts = if request.mode == StoreMode::Append {
                    [&copied_value, request.value]
                } else {
                    [request.value, &copied_value]
                };
            }
        }
        let result = self.write_and_link(request.hash, request.key, header, &parts);
        drop(copied_value);
        match result {
            Ok((_, stored)) => Ok(StoreOutcome::Stored { cas: stored.cas }),
            Err(error) => {
                self.after_failed_store(request);
                Err(error)
            }
        }
    }

    /// What a failed store leaves of the key's old item: unlinked if the request says
    /// [`StoreRequest::drop_old_on_failure`], kept otherwise. The unlink counts no delete (no
    /// `delete_hits`, no `delete_misses`), as memcached unlinks the item directly.
    /// [`Partition::store`] does this itself; call it for a store refused before it reached the
    /// engine (a value the codec refused as too large for the item size limit).
    pub fn after_failed_store(&mut self, request: &StoreRequest<'_>) {
        if request.drop_old_on_failure
            && let Ok((handle, _)) = self.lookup(request.hash, request.key)
        {
            self.unlink_found(handle, request.hash, request.key);
        }
    }

    /// `delete`/`md`.
    pub fn delete(&mut self, request: &DeleteRequest<'_>) -> DeleteOutcome {
        let Ok((handle, mut header)) = self.lookup(request.hash, request.key) else {
            self.counters.delete_misses += 1;
            return DeleteOutcome::NotFound;
        };
        if request.compare_cas.is_some_and(|cas| cas != header.cas) {
            self.counters.delete_misses += 1;
            return DeleteOutcome::Exists;
        }
        match request.invalidate {
            Some(exptime) => {
                let mut handle = handle;
                if let Some(exptime) = exptime {
                    // Room in place when the chunk has it; failing that, the rewrite below
                    // tries again and drops the item if it cannot (it is invalidated anyway).
                    if let Some(moved) = self.set_expiry(request.hash, handle, &mut header, exptime)
                    {
                        handle = moved;
                    }
                }
                // Stale, and the next reader may win the recache again.
                header.bits |= item::STALE;
                header.win_sent = false;
                self.assign_cas(&mut header, request.new_cas);
                self.rewrite_header(request.hash, handle, header);
            }
            None => {
                self.counters.delete_hits += 1;
                self.class_counters(handle).delete_hits += 1;
                self.unlink_found(handle, request.hash, request.key);
            }
        }
        DeleteOutcome::Deleted
    }

    /// `incr`/`decr`/`ma`.
    pub fn arith(&mut self, request: &ArithRequest<'_>) -> Result<ArithOutcome, StoreError> {
        let incr = request.mode == ArithMode::Incr;
        if !valid_key(request.key) {
            return Ok(ArithOutcome::NotFound);
        }
        let Ok((handle, old_header)) = self.lookup(request.hash, request.key) else {
            if let Some((initial, exptime)) = request.vivify {
                let mut digits = itoa::Buffer::new();
                let digits = digits.format(initial);
                let exptime = request.exptime.unwrap_or(exptime);
                let header = self.new_header(
                    request.key,
                    0,
                    self.clock.expiry_of(exptime),
                    request.new_cas,
                );
                let (_, header) =
                    self.write_and_link(request.hash, request.key, header, &[digits.as_bytes()])?;
                return Ok(ArithOutcome::Updated {
                    value: initial,
                    cas: header.cas,
                    ttl: self.clock.ttl_of(header.expiry),
                    created: true,
                });
            }
            if incr {
                self.counters.incr_misses += 1;
            } else {
                self.counters.decr_misses += 1;
            }
            return Ok(ArithOutcome::NotFound);
        };
        if old_header.is_chained() || old_header.value_len == 0 {
            return Ok(ArithOutcome::NonNumeric);
        }
        if let Some(cas) = request.compare_cas
            && cas != 0
            && cas != old_header.cas
        {
            return Ok(ArithOutcome::Exists);
        }
        let old_len = old_header.value_len as usize;
        // memcached's do_add_delta reads the stored value with the same safe_strtoull as a
        // request's numbers.
        let Some(current) = safe_strtoull(self.value_slice(handle, &old_header)) else {
            return Ok(ArithOutcome::NonNumeric);
        };
        let value = if incr {
            current.wrapping_add(request.delta)
        } else {
            current.saturating_sub(request.delta)
        };
        if incr {
            self.counters.incr_hits += 1;
            self.class_counters(handle).incr_hits += 1;
        } else {
            self.counters.decr_hits += 1;
            self.class_counters(handle).decr_hits += 1;
        }
        // On the stack: an incr must not allocate.
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(value);
        let mut header = old_header;
        let mut handle = handle;
        if let Some(exptime) = request.exptime {
            handle = self
                .set_expiry(request.hash, handle, &mut header, exptime)
                .ok_or(StoreError::OutOfMemory)?;
        }
        // Where the value is now: a fresh CAS may be kept in another width, which moves the
        // value only when the header is written (`rewrite_header`).
        let start = header.value_start(self.cas_enabled);
        self.assign_cas(&mut header, request.new_cas);
        let header = if digits.len() <= old_len {
            // In place, padded with spaces to the old length (memcached keeps the length).
            let chunk = self.slabs.chunk_mut(handle);
            let value_bytes = &mut chunk[start..start + old_len];
            value_bytes[..digits.len()].copy_from_slice(digits.as_bytes());
            value_bytes[digits.len()..].fill(b' ');
            header.bits = item::with_freq(header.bits, item::freq(header.bits) + 1);
            header.time = self.access_time();
            self.eviction.accessed(&self.slabs, handle);
            self.rewrite_header(request.hash, handle, header)
                .map_or(header, |(_, stored)| stored)
        } else {
            let fresh = self.header_with_cas(
                request.key,
                header.flags,
                header.expiry,
                header.cas,
                header.cas_given(),
            );
            self.write_and_link(request.hash, request.key, fresh, &[digits.as_bytes()])?
                .1
        };
        Ok(ArithOutcome::Updated {
            value,
            cas: header.cas,
            ttl: self.clock.ttl_of(header.expiry),
            created: false,
        })
    }

    /// `touch`: sets a new exptime; false if there is no live item.
    pub fn touch(&mut self, hash: u64, key: &[u8], exptime: i64) -> bool {
        self.counters.cmd_touch += 1;
        let Some((handle, mut header)) = self.lookup_counting_misses(hash, key) else {
            self.counters.touch_misses += 1;
            return false;
        };
        let Some(handle) = self.set_expiry(hash, handle, &mut header, exptime) else {
            self.counters.touch_misses += 1;
            return false;
        };
        self.counters.touch_hits += 1;
        self.class_counters(handle).touch_hits += 1;
        self.bump(handle, &mut header);
        true
    }

    /// `flush_all [delay]`: every item stored before the moment `exptime` names (now, for 0 or
    /// a negative value) stops being returned from that moment.
    pub fn flush_all(&mut self, exptime: i64) {
        let now = self.clock.now();
        // A delayed flush whose moment has come is done; a new flush cannot undo it.
        self.settle_flush(now);
        let moment = if exptime <= 0 {
            now
        } else {
            self.clock.expiry_of(exptime).max(now)
        };
        // Above every time recorded so far, and every time recorded until the moment.
        let stamp = moment.max(self.access_time().saturating_add(1));
        if moment <= now {
            self.flush.stamp = stamp;
            self.flush.pending = None;
        } else {
            // As in memcached, the latest flush_all replaces a pending one.
            self.flush.pending = Some(PendingFlush {
                from: moment,
                stamp,
            });
        }
    }

    /// Background work in a slice of about `budget` chunks: reclaims expired and flushed items,
    /// carries out a due delayed flush, and moves pages between slab classes where one class's
    /// evictions are much hotter than another's. Returns the chunks examined; the owner calls it
    /// when its event loop is idle and about once a second.
    pub fn maintain(&mut self, budget: usize) -> usize {
        self.free_released_chunks();
        let now = self.clock.now();
        self.settle_flush(now);
        let examined = self.crawl(budget);
        self.release_empty_pages();
        self.give_pages_to_pool();
        // `slabs automove 0` stops the background moves; `slabs reassign` still moves pages.
        if self.rebalance_due() {
            self.rebalance();
        } else if !self.pool.automove() {
            // Switched on again, the mover starts afresh at the next eviction; until then no
            // page moves on its credit either.
            self.mover_window_open = false;
            for slab in &mut self.slabs.classes {
                slab.page_credit = 0;
                slab.demand_average = 0;
                slab.proven_average = 0;
            }
        }
        examined
    }

    /// Makes a delayed flush whose moment has come permanent.
    fn settle_flush(&mut self, now: u32) {
        if self
            .flush
            .pending
            .is_some_and(|pending| now >= pending.from)
        {
            self.flush.stamp = self.flush.effective_stamp(now);
            self.flush.pending = None;
        }
    }

    /// Item counters of this partition.
    pub fn stats(&self) -> PartitionStats {
        let mut stats = self.counters.clone();
        stats.curr_items = self.index.len() as u64;
        stats.bytes = self.bytes;
        stats.total_pages = self.slabs.page_count() as u64;
        stats.hash_bytes = self.index.allocation_size() as u64;
        stats.hash_capacity = self.index.capacity() as u64;
        stats
    }

    /// Counters of each slab class that has ever held a page, by class id (1-based, as
    /// memcached numbers them).
    pub fn class_stats(&self) -> Vec<(u8, ClassStats)> {
        let now = self.clock.now();
        (0..self.slabs.classes.len())
            .filter(|&class| self.slabs.classes[class].ever_had_pages)
            .map(|class| {
                let slab = &self.slabs.classes[class];
                let mut stats = slab.counters.clone();
                stats.chunk_size = slab.chunk_size as u64;
                stats.chunks_per_page = slab.chunks_per_page as u64;
                stats.total_pages = slab.pages.len() as u64;
                stats.total_chunks = slab.total_chunks() as u64;
                stats.used_chunks = slab.used_chunks as u64;
                stats.free_chunks = slab.free_chunks() as u64;
                stats.free_chunks_end = slab.fresh_chunks() as u64;
                stats.mem_requested = slab.mem_requested;
                stats.items = slab.items as u64;
                stats.age = u64::from(self.class_age(class, now));
                ((class + 1) as u8, stats)
            })
            .collect()
    }

    /// `stats reset`: zeroes the counters (not the gauges: items, bytes, pages).
    pub fn reset_stats(&mut self) {
        self.counters = PartitionStats::default();
        for class in &mut self.slabs.classes {
            class.counters = ClassStats::default();
            class.evicted_checkpoint = 0;
            class.emptying_evictions = 0;
            class.proven_evictions = 0;
        }
    }

    /// Live and not-yet-reclaimed items.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the partition holds no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slab pages this partition holds now.
    pub fn pages(&self) -> usize {
        self.slabs.page_count()
    }

    /// Slab classes (the same number in every partition of a pool); class ids on the wire are
    /// these indexes plus one.
    pub fn class_count(&self) -> usize {
        self.slabs.classes.len()
    }

    /// Pages class `class` (an index below [`Partition::class_count`]) holds here now.
    pub fn class_pages(&self, class: usize) -> usize {
        self.slabs
            .classes
            .get(class)
            .map_or(0, |slab| slab.pages.len())
    }

    /// `slabs reassign`: moves one page from class `src` to class `dst` (indexes below
    /// [`Partition::class_count`]), `None` meaning the pool (memcached's global page pool,
    /// class 0). A class's page is emptied as the background moves empty one, its live items
    /// rescued to other pages of the class or evicted; a page for `dst` from the pool is
    /// taken only if the pool has one to give. Counts `slabs_moved`. False when nothing
    /// moved: `src` holds no page, none could be emptied (evictions off and every page in
    /// use), the pool has no page, or this partition can address no more pages.
    pub fn reassign_page(&mut self, src: Option<usize>, dst: Option<usize>) -> bool {
        let classes = self.slabs.classes.len();
        if src == dst || src.is_some_and(|c| c >= classes) || dst.is_some_and(|c| c >= classes) {
            return false;
        }
        let data = match src {
            Some(class) => {
                let Some(page) = self.empty_a_page(class) else {
                    return false;
                };
                self.slabs.remove_page(page)
            }
            None => {
                if !self.slabs.can_add_page() {
                    return false;
                }
                let Some(data) = self.pool.try_take() else {
                    return false;
                };
                data
            }
        };
        match dst {
            Some(class) => self.slabs.add_page(class, data),
            None => self.pool.give_back(data),
        }
        self.counters.slabs_moved += 1;
        true
    }

    // ----- helpers every part uses -----------------------------------------------------------

    fn item_ref(&self, handle: u32, header: Header) -> ItemRef<'_> {
        ItemRef {
            partition: self,
            handle,
            header,
        }
    }

    fn class_counters(&mut self, handle: u32) -> &mut ClassStats {
        let class = self.slabs.class_of(handle);
        &mut self.slabs.classes[class].counters
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        let pinned = self.pins.has_readers();
        for page in self.slabs.drain_pages() {
            if pinned {
                // A reader on another thread may still be reading a pinned chunk of it: the
                // memory must outlive it, so it is leaked rather than reused or freed.
                std::mem::forget(page);
            } else {
                self.pool.give_back(page);
            }
        }
        if self.starving {
            self.pool.page_wanted_no_more();
        }
        self.pool.unregister_partition();
    }
}

fn valid_key(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= KEY_MAX_LEN
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EvictionPolicy;

    pub(super) fn partition(memory_limit: usize) -> (Partition, Arc<PagePool>, Arc<Clock>) {
        partition_with(memory_limit, EvictionPolicy::default())
    }

    pub(super) fn partition_with(
        memory_limit: usize,
        eviction: EvictionPolicy,
    ) -> (Partition, Arc<PagePool>, Arc<Clock>) {
        let config = Arc::new(StorageConfig {
            memory_limit,
            eviction,
            ..StorageConfig::default()
        });
        let pool = Arc::new(PagePool::new(config.memory_limit, config.page_size));
        let clock = Arc::new(Clock::starting_at_unix(1_700_000_000));
        let partition = Partition::new(config, pool.clone(), clock.clone());
        (partition, pool, clock)
    }

    pub(super) fn set(partition: &mut Partition, key: &[u8], value: &[u8]) {
        partition
            .store(&StoreRequest::new(0, key, value, 0, 0, StoreMode::Set))
            .expect("stored");
    }

    /// Sets `k0`, `k1`, ... with 100-byte values over two and a half pages of their class (a
    /// page given up is then the half-full one, and the full pages have no room, so some of
    /// its items are rescued only by evicting others); returns the class and the key count.
    pub(super) fn two_and_a_half_pages(partition: &mut Partition) -> (usize, usize) {
        // 127-byte values: with keys of 2 to 6 bytes (`k0` to `k99999`) and the 14-byte
        // header, every item is 143 to 147 bytes, one class with the default ladder and
        // memcached's factor.
        let value = [b'v'; 127];
        let small = partition.slabs.class_for(14 + 2 + value.len()).unwrap();
        assert_eq!(partition.slabs.class_for(14 + 6 + value.len()), Some(small));
        let per_page = partition.slabs.classes[small].chunks_per_page;
        let count = per_page * 5 / 2;
        assert!(count < 100_000);
        for i in 0..count {
            set(partition, format!("k{i}").as_bytes(), &value);
        }
        (small, count)
    }

    /// Sets `k0`, `k1`, ... with `value` until the pool is spent and no chunk is free; returns
    /// how many keys were written (none evicted yet).
    pub(super) fn fill_until_full(
        partition: &mut Partition,
        pool: &PagePool,
        value: &[u8],
    ) -> usize {
        let mut written = 0;
        while !pool.is_exhausted() || partition.slabs.classes.iter().any(|c| c.free_chunks() > 0) {
            set(partition, format!("k{written}").as_bytes(), value);
            written += 1;
        }
        written
    }

    /// A value of `len` bytes, different at every offset and for every `seed`.
    fn patterned(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|at| (at as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    fn used_chunks(partition: &Partition) -> usize {
        partition.slabs.classes.iter().map(|c| c.used_chunks).sum()
    }

    /// Pins `key`'s value: the head chunk's part and the pin.
    fn pin(partition: &mut Partition, key: &[u8]) -> (Vec<u8>, PinnedValue) {
        let item = partition.get(0, key).expect("a hit");
        let (head, pinned) = item.pin_value().expect("a chained value");
        (head.to_vec(), pinned)
    }

    fn joined(head: &[u8], pinned: &PinnedValue) -> Vec<u8> {
        let mut value = head.to_vec();
        pinned
            .chunks()
            .for_each(|chunk| value.extend_from_slice(chunk));
        assert_eq!(value.len(), head.len() + pinned.len());
        value
    }

    #[test]
    fn a_value_in_one_chunk_is_not_pinned() {
        let (mut partition, _, _) = partition(8 << 20);
        set(&mut partition, b"small", &patterned(1000, 1));
        assert!(partition.get(0, b"small").unwrap().pin_value().is_none());
    }

    #[test]
    fn a_pinned_value_stays_whole_while_its_item_is_replaced_and_memory_is_reused() {
        let (mut partition, _, _) = partition(8 << 20);
        let value = patterned(700 << 10, 1);
        set(&mut partition, b"big", &value);
        let (head, pinned) = pin(&mut partition, b"big");
        assert!(!pinned.is_empty());
        assert_eq!(joined(&head, &pinned), value);
        let before = used_chunks(&partition);
        // Replaced, deleted, then memory churned by values of the same size over many times
        // the limit, with the page mover and the background work running.
        set(&mut partition, b"big", &patterned(700 << 10, 2));
        partition.delete(&DeleteRequest::new(0, b"big"));
        for round in 0..40u8 {
            let key = format!("other{round}");
            set(&mut partition, key.as_bytes(), &patterned(700 << 10, round));
            set(
                &mut partition,
                format!("small{round}").as_bytes(),
                &[round; 3000],
            );
            partition.maintain(1 << 20);
        }
        assert_eq!(
            joined(&head, &pinned),
            value,
            "the pinned chunks were never reused"
        );
        let held = used_chunks(&partition);
        drop(pinned);
        // Freed at the next allocation or background slice.
        partition.maintain(0);
        assert!(used_chunks(&partition) < held);
        assert!(before > 0);
        assert!(partition.get(0, b"big").is_none());
    }

    #[test]
    fn an_items_pins_are_shared_and_its_chunks_freed_when_the_last_reader_leaves() {
        let (mut partition, _, _) = partition(8 << 20);
        let value = patterned(900 << 10, 3);
        set(&mut partition, b"big", &value);
        let empty = {
            let (_, pinned) = pin(&mut partition, b"big");
            drop(pinned);
            used_chunks(&partition)
        };
        let (head, first) = pin(&mut partition, b"big");
        let (_, second) = pin(&mut partition, b"big");
        partition.delete(&DeleteRequest::new(0, b"big"));
        let continuations = used_chunks(&partition);
        assert!(
            continuations > 0 && continuations < empty,
            "the head chunk is freed at once"
        );
        drop(first);
        partition.maintain(0);
        assert_eq!(
            used_chunks(&partition),
            continuations,
            "one reader is still reading"
        );
        assert_eq!(joined(&head, &second), value);
        drop(second);
        partition.maintain(0);
        assert_eq!(used_chunks(&partition), 0);
    }

    #[test]
    fn pinned_values_stay_within_their_budget_so_readers_cannot_hold_the_memory() {
        let (mut partition, _, _) = partition(8 << 20);
        let budget = partition.pin_budget();
        assert_eq!(budget, 1 << 20, "an eighth of the partition's share");
        // Readers that never read, each of another large value, each deleted after: only
        // what fits the budget is pinned, the rest is copied.
        let mut pinned = Vec::new();
        let mut copied = 0;
        for at in 0..12u8 {
            let key = format!("big{at}");
            set(&mut partition, key.as_bytes(), &patterned(1000 << 10, at));
            match partition.get(0, key.as_bytes()).unwrap().pin_value() {
                Some((_, pin)) => pinned.push(pin),
                None => copied += 1,
            }
            partition.delete(&DeleteRequest::new(0, key.as_bytes()));
        }
        // Only continuation chunks are pinned: about 500 KiB of each value (its first half
        // page is in its head chunk, freed at the delete).
        let held: usize = pinned.iter().map(PinnedValue::len).sum();
        assert!(held <= budget && held + pinned[0].len() > budget);
        assert_eq!((pinned.len(), copied), (2, 10));
        // The memory the pins do not hold is all for the stores.
        for round in 0..40u8 {
            let value = patterned(700 << 10, round);
            partition
                .store(&StoreRequest::new(0, b"next", &value, 0, 0, StoreMode::Set))
                .expect("stored beside the pinned values");
        }
        // Once the readers leave, their chunks are freed at the next store and the budget is
        // free again; and a value already pinned is pinned again past the budget: its memory is
        // held anyway.
        drop(pinned);
        set(&mut partition, b"shared", &patterned(1000 << 10, 1));
        let (_, first) = pin(&mut partition, b"shared");
        set(&mut partition, b"other", &patterned(1000 << 10, 2));
        let _other = pin(&mut partition, b"other");
        set(&mut partition, b"third", &patterned(1000 << 10, 3));
        assert!(partition.get(0, b"third").unwrap().pin_value().is_none());
        let (_, again) = pin(&mut partition, b"shared");
        assert_eq!(first.len(), again.len());
    }

    #[test]
    fn a_page_holding_a_pinned_chunk_is_not_given_up() {
        let (mut partition, _, _) = partition(8 << 20);
        let value = patterned(700 << 10, 4);
        set(&mut partition, b"big", &value);
        let handle = partition.lookup(0, b"big").unwrap().0;
        let class = partition.slabs.class_of(handle);
        let (head, pinned) = pin(&mut partition, b"big");
        let pages = partition.class_pages(class);
        for _ in 0..pages {
            partition.reassign_page(Some(class), None);
        }
        assert_eq!(joined(&head, &pinned), value);
        assert!(
            partition.get(0, b"big").is_some(),
            "its head page could not be emptied"
        );
        drop(pinned);
        let chain_pages: usize = (0..partition.class_count())
            .map(|class| partition.class_pages(class))
            .sum();
        for class in 0..partition.class_count() {
            while partition.reassign_page(Some(class), None) {}
        }
        assert!(
            partition.pages() < chain_pages,
            "unpinned, its pages can go"
        );
    }

    #[test]
    fn pinned_values_read_on_other_threads_stay_whole_while_the_partition_churns() {
        let (partition, _, _) = partition(8 << 20);
        let partition = Arc::new(parking_lot::Mutex::new(partition));
        let values: Vec<Vec<u8>> = (0..4).map(|seed| patterned(600 << 10, seed)).collect();
        for (at, value) in values.iter().enumerate() {
            set(&mut partition.lock(), format!("big{at}").as_bytes(), value);
        }
        let readers: Vec<_> = (0..2)
            .map(|reader| {
                let (partition, values) = (Arc::clone(&partition), values.clone());
                std::thread::spawn(move || {
                    let mut checked = 0;
                    for round in 0..300 {
                        let at = (round + reader) % values.len();
                        let key = format!("big{at}");
                        // None too when the other reader's pin has the budget.
                        let pinned = partition.lock().get(0, key.as_bytes()).and_then(|item| {
                            let (head, pinned) = item.pin_value()?;
                            Some((head.to_vec(), pinned))
                        });
                        // Read with the lock released, as a socket write would.
                        if let Some((head, pinned)) = pinned {
                            assert_eq!(joined(&head, &pinned), values[at]);
                            checked += 1;
                        }
                    }
                    checked
                })
            })
            .collect();
        for round in 0..300 {
            let mut partition = partition.lock();
            let at = round % values.len();
            // The same bytes again, or another key's, so a torn read would show.
            set(&mut partition, format!("big{at}").as_bytes(), &values[at]);
            set(
                &mut partition,
                format!("churn{}", round % 9).as_bytes(),
                &values[(at + 1) % 4],
            );
            partition.maintain(1 << 16);
        }
        let checked: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert!(checked > 0);
    }

    #[test]
    fn a_partition_dropped_while_a_value_is_pinned_leaves_the_value_readable() {
        let (mut partition, pool, _) = partition(8 << 20);
        let value = patterned(700 << 10, 5);
        set(&mut partition, b"big", &value);
        let (head, pinned) = pin(&mut partition, b"big");
        drop(partition);
        // Its pages are leaked, not given back: the pages the pool hands out now, written
        // over, are others.
        let mut taken = Vec::new();
        while let Some(mut page) = pool.try_take() {
            let len = page.len();
            page.bytes_mut(0..len).fill(0xee);
            taken.push(page);
        }
        assert!(!taken.is_empty());
        assert_eq!(joined(&head, &pinned), value);
    }

    #[test]
    fn partitions_of_one_server_never_hand_out_the_same_cas() {
        let config = Arc::new(StorageConfig::default());
        let pool = Arc::new(PagePool::new(config.memory_limit, config.page_size));
        let clock = Arc::new(Clock::starting_at_unix(1_700_000_000));
        let count = 3;
        let mut partitions: Vec<Partition> = (0..count)
            .map(|id| {
                Partition::new(config.clone(), pool.clone(), clock.clone())
                    .with_cas_stripe(id, count)
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        for round in 0..1000 {
            for (id, partition) in partitions.iter_mut().enumerate() {
                let key = format!("key{round}");
                // Stores of different kinds all draw from the partition's stripe.
                let cas = match partition.store(&StoreRequest::new(
                    0,
                    key.as_bytes(),
                    b"1",
                    0,
                    0,
                    StoreMode::Set,
                )) {
                    Ok(StoreOutcome::Stored { cas }) => cas,
                    other => panic!("store: {other:?}"),
                };
                assert!(cas > 0);
                assert_eq!(
                    (cas - 1) % count as u64,
                    id as u64,
                    "partition {id}'s stripe"
                );
                assert!(seen.insert(cas), "CAS {cas} handed out twice");
                let incr = ArithRequest::new(0, key.as_bytes(), ArithMode::Incr, 1);
                match partition.arith(&incr) {
                    Ok(ArithOutcome::Updated { cas, .. }) => {
                        assert!(seen.insert(cas), "CAS {cas} handed out twice");
                    }
                    other => panic!("incr: {other:?}"),
                }
            }
        }
        // A client-supplied CAS (meta `E`) is kept as given.
        let mut request = StoreRequest::new(0, b"e", b"v", 0, 0, StoreMode::Set);
        request.new_cas = Some(7);
        assert_eq!(
            partitions[0].store(&request),
            Ok(StoreOutcome::Stored { cas: 7 })
        );
    }

    /// Random sets (some with a CAS given), `cas` stores right and wrong, incrs (in place and
    /// growing) and deletes on a few keys while the partition's counter (stripe 2 of 2) crosses
    /// 2^40: every item reads back with the CAS it was stored with, and a `cas` succeeds
    /// exactly when its value is the one last read.
    #[test]
    fn cas_values_agree_with_a_model_across_the_40_bit_boundary() {
        let (partition, _pool, _clock) = partition(8 << 20);
        let mut partition = partition.with_cas_stripe(1, 2);
        partition.next_cas = (1 << 40) - 2 * 3_000 + 2;
        let mut model: std::collections::HashMap<usize, (Vec<u8>, u64)> = Default::default();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |below: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % below
        };
        let keys: Vec<String> = (0..8).map(|i| format!("key{i}")).collect();
        for step in 0..12_000 {
            let k = next(8) as usize;
            let key = keys[k].as_bytes();
            match next(5) {
                0 | 1 => {
                    let value = format!("{}", next(1000)).into_bytes();
                    let mut request = StoreRequest::new(0, key, &value, 0, 0, StoreMode::Set);
                    if next(8) == 0 {
                        request.new_cas = Some(next(u64::MAX));
                    }
                    match partition.store(&request) {
                        Ok(StoreOutcome::Stored { cas }) => {
                            if let Some(given) = request.new_cas {
                                assert_eq!(cas, given);
                            }
                            model.insert(k, (value, cas));
                        }
                        other => panic!("step {step}: set {other:?}"),
                    }
                }
                2 => {
                    let right = next(2) == 0;
                    let compare = model
                        .get(&k)
                        .map_or(1, |(_, cas)| if right { *cas } else { cas ^ 1 });
                    let mut request = StoreRequest::new(0, key, b"7", 0, 0, StoreMode::Set);
                    request.compare_cas = Some(compare);
                    let outcome = partition.store(&request);
                    match (model.get(&k), right, outcome) {
                        (Some(_), true, Ok(StoreOutcome::Stored { cas })) => {
                            model.insert(k, (b"7".to_vec(), cas));
                        }
                        (Some(_), false, Ok(StoreOutcome::Exists))
                        | (None, _, Ok(StoreOutcome::NotFound)) => {}
                        (old, right, other) => {
                            panic!("step {step}: cas {other:?} on {old:?}, right {right}")
                        }
                    }
                }
                3 => {
                    let delta = if next(2) == 0 { 1 } else { 1 << 40 };
                    let outcome =
                        partition.arith(&ArithRequest::new(0, key, ArithMode::Incr, delta));
                    match (model.get(&k), outcome) {
                        (
                            Some((value, _)),
                            Ok(ArithOutcome::Updated {
                                value: now, cas, ..
                            }),
                        ) => {
                            let before: u64 = std::str::from_utf8(value)
                                .unwrap()
                                .trim_end()
                                .parse()
                                .unwrap();
                            assert_eq!(now, before.wrapping_add(delta));
                            let stored = partition.peek(0, key).unwrap();
                            let stored_value: Vec<u8> = stored.value().flatten().copied().collect();
                            model.insert(k, (stored_value, cas));
                        }
                        (None, Ok(ArithOutcome::NotFound)) => {}
                        (old, other) => panic!("step {step}: incr {other:?} on {old:?}"),
                    }
                }
                _ => {
                    let outcome = partition.delete(&DeleteRequest::new(0, key));
                    let expected = if model.remove(&k).is_some() {
                        DeleteOutcome::Deleted
                    } else {
                        DeleteOutcome::NotFound
                    };
                    assert_eq!(outcome, expected, "step {step}");
                }
            }
            for (i, key) in keys.iter().enumerate() {
                let found = partition.peek(0, key.as_bytes()).map(|item| {
                    let value: Vec<u8> = item.value().flatten().copied().collect();
                    (value, item.cas())
                });
                assert_eq!(found.as_ref(), model.get(&i), "step {step}: {key}");
            }
        }
        assert!(partition.next_cas > (1 << 40) + 2 * 3_000, "crossed 2^40");
    }

    /// The header keeps the low 40 bits of a CAS the partition handed out: items read back
    /// whole across the counter's 2^40 boundaries, a client's CAS is kept whole beside them,
    /// and an item untouched for 2^40 values reads as newer, so a `cas` with what was read
    /// before fails rather than succeeding.
    #[test]
    fn a_cas_kept_in_5_bytes_reads_whole_across_the_counters_rounds() {
        let (mut partition, _pool, _clock) = partition(8 << 20);
        let partition = &mut partition;
        let round = 1u64 << 40;
        let cas_of = |partition: &mut Partition, key: &[u8]| partition.peek(0, key).unwrap().cas();
        let stored_cas = |outcome| match outcome {
            Ok(StoreOutcome::Stored { cas }) => cas,
            other => panic!("store: {other:?}"),
        };
        partition.next_cas = 3 * round - 2;
        let mut handed_out = Vec::new();
        for i in 0..4 {
            let key = format!("k{i}");
            let outcome = partition.store(&StoreRequest::new(
                0,
                key.as_bytes(),
                b"v",
                0,
                0,
                StoreMode::Set,
            ));
            handed_out.push(stored_cas(outcome));
        }
        assert_eq!(
            handed_out,
            [3 * round - 2, 3 * round - 1, 3 * round, 3 * round + 1]
        );
        let mut given = StoreRequest::new(0, b"given", b"v", 0, 0, StoreMode::Set);
        given.new_cas = Some(5);
        assert_eq!(stored_cas(partition.store(&given)), 5);
        for (i, &cas) in handed_out.iter().enumerate() {
            assert_eq!(cas_of(partition, format!("k{i}").as_bytes()), cas);
        }
        // Still exact 2^40 - 1 values after the oldest.
        partition.next_cas = 4 * round - 2;
        assert_eq!(cas_of(partition, b"k0"), 3 * round - 2);
        assert_eq!(cas_of(partition, b"k3"), 3 * round + 1);
        assert_eq!(cas_of(partition, b"given"), 5);
        let mut compare = StoreRequest::new(0, b"k3", b"w", 0, 0, StoreMode::Set);
        compare.compare_cas = Some(3 * round + 1);
        let fresh = stored_cas(partition.store(&compare));
        assert_eq!(fresh, 4 * round - 2);
        assert_eq!(cas_of(partition, b"k3"), fresh);
        // 2^40 values after k0's: it reads as newer, so its old CAS no longer matches.
        partition.next_cas = 4 * round;
        assert_eq!(cas_of(partition, b"k0"), 4 * round - 2);
        let mut stale = StoreRequest::new(0, b"k0", b"w", 0, 0, StoreMode::Set);
        stale.compare_cas = Some(3 * round - 2);
        assert_eq!(partition.store(&stale), Ok(StoreOutcome::Exists));
        assert_eq!(cas_of(partition, b"given"), 5);
    }
}

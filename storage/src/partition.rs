//! One partition of the keyspace: its hash index, slab classes, CLOCK hands and counters.
//!
//! Owns: every item whose key hashes to this partition, the pages it holds from the shared
//! [`PagePool`], and the semantics of each operation (memcached's). Must not touch: other
//! partitions, locks (the daemon wraps a partition in a `parking_lot::Mutex`; every method
//! takes `&mut self`), or the wire format.
//!
//! # Design
//! - Index: hashbrown's `HashTable<u32>` of item handles (about 5 bytes a slot); lookups
//!   compare the key in place in the item's chunk, so keys are stored once.
//! - Eviction: S3-FIFO over CLOCK, per slab class. Reads raise the item's 2-bit frequency in
//!   its header (no list move, no global lock). A new key starts on probation in the class's
//!   small FIFO (a queue of 4-byte handles, about a tenth of the class); when memory is
//!   needed and the FIFO holds more than that tenth, its oldest item is evicted unless it was
//!   read meanwhile, in which case it joins the main CLOCK. Otherwise the class's CLOCK hand
//!   walks the chunks, lowering frequencies, and evicts the first item at 0. Dead items found
//!   on the way are reclaimed first. One-hit wonders (cache-aside misses on a long tail) thus
//!   stay only briefly: in-process W5 (zipf 0.9) hits 0.645 against 0.588 for plain CLOCK and
//!   0.577 for LRU at the same size.
//! - Memory: a class with no free chunk first takes a page from the shared pool, then runs its
//!   hand, then empties a page of the class with the most pages. `maintain` gives empty pages
//!   back, gives a page to a starving partition when over its fair share, and moves a page from
//!   a cold class to one that evicts young items (memcached's slab_automove).
//! - Expiry and `flush_all`: checked on every lookup against the item's expiry and last-access
//!   time; dead items are reclaimed when found, by the allocating hand, or by the crawler in
//!   `maintain`.

use crate::KEY_MAX_LEN;
use crate::clock::Clock;
use crate::config::StorageConfig;
use crate::error::StoreError;
use crate::hasher::KeyHasher;
use crate::item::{self, CONTINUATION_HEADER, Header, NO_HANDLE};
use crate::pool::PagePool;
use crate::slab::Queued;
use crate::slab::Slabs;
use crate::stats::{ClassStats, PartitionStats};
use hashbrown::HashTable;
use std::sync::Arc;

mod walk;
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
        let start = self.header.len(partition.cas_enabled) + usize::from(self.header.key_len);
        let total = self.value_len();
        let first_len = total.min(chunk.len() - start);
        ValueChunks {
            partition,
            first: Some(&chunk[start..start + first_len]),
            next: self.header.next,
            remaining: total - first_len,
        }
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
        item_size(&self.header, self.partition.cas_enabled)
    }
}

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

impl<'a> Iterator for ValueChunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        if self.remaining == 0 || self.next == NO_HANDLE {
            return None;
        }
        let chunk = self.partition.slabs.chunk(self.next);
        let len = self.remaining.min(chunk.len() - CONTINUATION_HEADER);
        self.remaining -= len;
        self.next = item::continuation_next(chunk);
        Some(&chunk[CONTINUATION_HEADER..CONTINUATION_HEADER + len])
    }
}

/// Bytes an item asks for: header, key and value.
fn item_size(header: &Header, cas_enabled: bool) -> usize {
    header.len(cas_enabled) + usize::from(header.key_len) + header.value_len as usize
}

/// How the index hashes keys. The caller's hash is only usable inside the index if the
/// partition can recompute it when the table grows, which needs the caller's [`KeyHasher`].
enum IndexHasher {
    /// The partition hashes keys itself (one extra hash per operation).
    Own(ahash::RandomState),
    /// The index uses the hash the caller passes, recomputed with the same hasher on growth.
    Caller(KeyHasher),
}

impl IndexHasher {
    #[inline]
    fn hash_stored(&self, key: &[u8]) -> u64 {
        match self {
            IndexHasher::Own(state) => state.hash_one(key),
            IndexHasher::Caller(hasher) => hasher.hash(key),
        }
    }
}

/// Why an item found in the index is not live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Death {
    Expired,
    Flushed,
}

/// `flush_all` state, compared against each item's last-access time (memcached's
/// `oldest_live`): an item whose `time` is below an effective stamp is dead.
///
/// Times are whole seconds, yet a flush must separate items stored before it from items
/// stored after it in the same second. So a flush's stamp is one more than the latest time
/// any item can carry, and accesses after it record at least the stamp: item times may run a
/// second or two ahead of the clock after several flushes in one second, which is harmless.
#[derive(Debug, Default, Clone, Copy)]
struct FlushState {
    /// Items whose time is below this are dead (0: no flush yet).
    stamp: u32,
    /// A delayed flush: from second `from` on, items whose time is below `stamp` are dead.
    pending: Option<PendingFlush>,
}

#[derive(Debug, Clone, Copy)]
struct PendingFlush {
    from: u32,
    stamp: u32,
}

impl FlushState {
    /// The stamp in force at `now`.
    #[inline]
    fn effective_stamp(&self, now: u32) -> u32 {
        match self.pending {
            Some(pending) if now >= pending.from => self.stamp.max(pending.stamp),
            _ => self.stamp,
        }
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
    index: HashTable<u32>,
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
    /// Crawler position: page slot and chunk.
    crawl_page: usize,
    crawl_chunk: usize,
    /// This partition told the pool it needs a page.
    starving: bool,
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

/// Chunks the allocator's CLOCK hand looks at for an expired item when evictions are off.
const RECLAIM_SCAN_WITHOUT_EVICTIONS: usize = 256;

/// Victims of its own class a page move may evict to make room for one rescued item.
const RESCUE_EVICTIONS: usize = 8;

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
    /// The counter still rises by about one per store across the server, so CAS values stay
    /// in the header's 6-byte form for 2^48 stores.
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
        Partition {
            cas_enabled: config.cas,
            index: HashTable::with_capacity(config.index_capacity),
            index_hasher,
            slabs,
            next_cas: 1,
            first_cas: 1,
            cas_step: 1,
            flush: FlushState::default(),
            counters: PartitionStats::default(),
            bytes: 0,
            crawl_page: 0,
            crawl_chunk: 0,
            starving: false,
            config,
            pool,
            clock,
        }
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
        let Some((handle, mut header)) = self.lookup_counting_misses(hash, key) else {
            self.counters.get_misses += 1;
            self.counters.touch_misses += 1;
            return None;
        };
        self.counters.get_hits += 1;
        self.counters.touch_hits += 1;
        let class = self.class_counters(handle);
        class.get_hits += 1;
        class.touch_hits += 1;
        header.expiry = self.clock.expiry_of(exptime);
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
        if let Some(exptime) = options.touch {
            header.expiry = self.clock.expiry_of(exptime);
        }
        let win_sent = header.bits & item::WIN_SENT != 0;
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
            header.bits |= item::WIN_SENT;
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
    pub fn store(&mut self, request: &StoreRequest<'_>) -> Result<StoreOutcome, StoreError> {
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
                    header.bits |= item::STALE | (old_header.bits & item::WIN_SENT);
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
                if let Some(exptime) = exptime {
                    header.expiry = self.clock.expiry_of(exptime);
                }
                // Stale, and the next reader may win the recache again.
                header.bits = (header.bits | item::STALE) & !item::WIN_SENT;
                header.cas = self.fresh_cas(request.new_cas);
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
        let Some(current) = parse_counter(self.value_slice(handle, &old_header)) else {
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
        if let Some(exptime) = request.exptime {
            header.expiry = self.clock.expiry_of(exptime);
        }
        header.cas = self.fresh_cas(request.new_cas);
        let header = if digits.len() <= old_len {
            // In place, padded with spaces to the old length (memcached keeps the length).
            let start = header.len(self.cas_enabled) + usize::from(header.key_len);
            let chunk = self.slabs.chunk_mut(handle);
            let value_bytes = &mut chunk[start..start + old_len];
            value_bytes[..digits.len()].copy_from_slice(digits.as_bytes());
            value_bytes[digits.len()..].fill(b' ');
            header.bits = item::with_freq(header.bits, item::freq(header.bits) + 1);
            header.time = self.access_time();
            self.rewrite_header(request.hash, handle, header)
        } else {
            let fresh = self.new_header(request.key, header.flags, header.expiry, Some(header.cas));
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
        self.counters.touch_hits += 1;
        self.class_counters(handle).touch_hits += 1;
        header.expiry = self.clock.expiry_of(exptime);
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
        let now = self.clock.now();
        self.settle_flush(now);
        let examined = self.crawl(budget);
        self.release_empty_pages();
        self.give_pages_to_pool();
        // `slabs automove 0` stops the background moves; `slabs reassign` still moves pages.
        if self.pool.automove() {
            self.rebalance();
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

    // ----- index and liveness ---------------------------------------------------------------

    #[inline]
    fn index_hash(&self, hash: u64, key: &[u8]) -> u64 {
        match &self.index_hasher {
            IndexHasher::Own(state) => state.hash_one(key),
            IndexHasher::Caller(hasher) => {
                debug_assert_eq!(hash, hasher.hash(key), "hash from another KeyHasher");
                hash
            }
        }
    }

    /// The key's item if it is live; a dead one is reclaimed and reported.
    fn lookup(&mut self, hash: u64, key: &[u8]) -> Result<(u32, Header), Option<Death>> {
        if !valid_key(key) {
            return Err(None);
        }
        let index_hash = self.index_hash(hash, key);
        let (slabs, cas_enabled) = (&self.slabs, self.cas_enabled);
        let handle = *self
            .index
            .find(index_hash, |&handle| {
                item::key_of(slabs.chunk(handle), cas_enabled) == key
            })
            .ok_or(None)?;
        let header = Header::read(self.slabs.chunk(handle), self.cas_enabled);
        match self.death(&header, self.clock.now()) {
            None => Ok((handle, header)),
            Some(death) => {
                self.reclaim(handle, &header, death);
                Err(Some(death))
            }
        }
    }

    /// [`Partition::lookup`] for reads, counting `get_expired` / `get_flushed`.
    fn lookup_counting_misses(&mut self, hash: u64, key: &[u8]) -> Option<(u32, Header)> {
        match self.lookup(hash, key) {
            Ok(found) => Some(found),
            Err(Some(Death::Expired)) => {
                self.counters.get_expired += 1;
                None
            }
            Err(Some(Death::Flushed)) => {
                self.counters.get_flushed += 1;
                None
            }
            Err(None) => None,
        }
    }

    #[inline]
    fn death(&self, header: &Header, now: u32) -> Option<Death> {
        if header.expiry != 0 && header.expiry <= now {
            return Some(Death::Expired);
        }
        (header.time < self.flush.effective_stamp(now)).then_some(Death::Flushed)
    }

    /// The time to record for an access now: at least the stamp of the flush in force, so
    /// that the item is not mistaken for one stored before that flush.
    #[inline]
    fn access_time(&self) -> u32 {
        let now = self.clock.now();
        now.max(self.flush.effective_stamp(now))
    }

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

    /// Marks an access: frequency, fetched bit, last-access time.
    fn bump(&mut self, handle: u32, header: &mut Header) {
        header.bits = item::with_freq(header.bits, item::freq(header.bits) + 1) | item::FETCHED;
        header.time = self.access_time();
        self.write_header_fields(handle, header);
    }

    /// Writes bits, expiry and time in place (fields whose size never changes).
    fn write_header_fields(&mut self, handle: u32, header: &Header) {
        let chunk = self.slabs.chunk_mut(handle);
        chunk[0] = header.bits;
        item::write_u32(chunk, 5, header.expiry);
        item::write_u32(chunk, 9, header.time);
    }

    /// Raises an item's access frequency (an access that is not a read).
    fn count_access(&mut self, handle: u32) {
        let chunk = self.slabs.chunk_mut(handle);
        chunk[0] = item::with_freq(chunk[0], item::freq(chunk[0]) + 1);
    }

    /// Writes a changed header; when its size changed (a CAS that needs 8 bytes now), the item
    /// is rewritten into a new chunk. Returns the header stored (the old one's if the rewrite
    /// found no memory, in which case the item is dropped).
    fn rewrite_header(&mut self, hash: u64, handle: u32, mut header: Header) -> Header {
        let old_bits = self.slabs.chunk(handle)[0];
        header.fix_layout_bits();
        let in_place = if header.is_chained() {
            (old_bits & item::WIDE_CAS) == (header.bits & item::WIDE_CAS)
        } else {
            item::header_len(old_bits, self.cas_enabled) == header.len(self.cas_enabled)
        };
        if in_place {
            let old_tag = item::queue_tag(self.slabs.chunk(handle), self.cas_enabled);
            header.write(self.slabs.chunk_mut(handle), self.cas_enabled);
            let tag = item::queue_tag(self.slabs.chunk(handle), self.cas_enabled);
            if header.probation && tag != old_tag {
                // A new CAS makes the item's entry look stale: queue it again, as just written.
                let class = self.slabs.class_of(handle);
                let queued = Queued { handle, tag };
                self.slabs.classes[class].probation.push_back(queued);
                self.slabs.compact_probation(class, self.cas_enabled);
            }
            return header;
        }
        let old = Header::read(self.slabs.chunk(handle), self.cas_enabled);
        let key = item::key_of(self.slabs.chunk(handle), self.cas_enabled).to_vec();
        let value = self.copy_value(handle, &old);
        header.bits &= !item::CHAINED;
        header.next = NO_HANDLE;
        match self.write_and_link(hash, &key, header, &[&value]) {
            Ok((_, stored)) => stored,
            Err(_) => {
                if let Ok((handle, _)) = self.lookup(hash, &key) {
                    self.unlink_found(handle, hash, &key);
                }
                old
            }
        }
    }

    fn fresh_cas(&mut self, requested: Option<u64>) -> u64 {
        if !self.cas_enabled {
            return 0;
        }
        match requested {
            Some(cas) => cas,
            None => {
                let cas = self.next_cas;
                // Never 0 (memcached's "no CAS"), and always in this partition's stripe.
                self.next_cas = cas.checked_add(self.cas_step).unwrap_or(self.first_cas);
                cas
            }
        }
    }

    fn new_header(&mut self, key: &[u8], flags: u32, expiry: u32, cas: Option<u64>) -> Header {
        let cas = self.fresh_cas(cas);
        Header::new(key.len() as u8, 0, flags, expiry, self.access_time(), cas)
    }

    /// The value of an unchained item.
    fn value_slice(&self, handle: u32, header: &Header) -> &[u8] {
        let start = header.len(self.cas_enabled) + usize::from(header.key_len);
        &self.slabs.chunk(handle)[start..start + header.value_len as usize]
    }

    fn copy_value(&self, handle: u32, header: &Header) -> Vec<u8> {
        let mut value = Vec::with_capacity(header.value_len as usize);
        for part in self.item_ref(handle, *header).value() {
            value.extend_from_slice(part);
        }
        value
    }

    /// A new empty-or-given item made on a miss (meta `N`).
    fn vivify(
        &mut self,
        hash: u64,
        key: &[u8],
        value: &[u8],
        exptime: i64,
    ) -> Option<(u32, Header)> {
        if !valid_key(key) {
            return None;
        }
        let header = self.new_header(key, 0, self.clock.expiry_of(exptime), None);
        self.write_and_link(hash, key, header, &[value]).ok()
    }

    // ----- writing items --------------------------------------------------------------------

    /// Writes a new item (value = `parts` concatenated) and links it in place of any item
    /// with the same key.
    fn write_and_link(
        &mut self,
        hash: u64,
        key: &[u8],
        header: Header,
        parts: &[&[u8]],
    ) -> Result<(u32, Header), StoreError> {
        let (handle, mut header) = match self.write_item(header, key, parts) {
            Ok(written) => written,
            Err(error) => {
                match error {
                    StoreError::TooLarge => self.counters.store_too_large += 1,
                    StoreError::OutOfMemory => self.counters.store_no_memory += 1,
                }
                return Err(error);
            }
        };
        self.link(hash, key, handle, &mut header);
        Ok((handle, header))
    }

    /// Allocates chunks and writes header, key and value; the item is not in the index yet.
    fn write_item(
        &mut self,
        mut header: Header,
        key: &[u8],
        parts: &[&[u8]],
    ) -> Result<(u32, Header), StoreError> {
        if !valid_key(key) {
            // A key the index cannot hold (its length byte would lie); callers check first.
            return Err(StoreError::TooLarge);
        }
        let value_len: usize = parts.iter().map(|part| part.len()).sum();
        header.key_len = key.len() as u8;
        header.value_len = u32::try_from(value_len).map_err(|_| StoreError::TooLarge)?;
        header.bits &= !item::CHAINED;
        header.next = NO_HANDLE;
        header.fix_layout_bits();
        let cas_enabled = self.cas_enabled;
        let needed = header.len(cas_enabled) + key.len() + value_len;
        if needed > self.config.item_size_max {
            return Err(StoreError::TooLarge);
        }
        let largest = self.slabs.largest_class();
        let largest_chunk = self.slabs.classes[largest].chunk_size;
        if needed <= largest_chunk && value_len <= item::UNCHAINED_VALUE_MAX {
            let class = self.slabs.class_for(needed).unwrap_or(largest);
            let handle = self.alloc_chunk(class)?;
            let chunk = self.slabs.chunk_mut(handle);
            header.write(chunk, cas_enabled);
            let mut at = header.len(cas_enabled);
            chunk[at..at + key.len()].copy_from_slice(key);
            at += key.len();
            for part in parts {
                chunk[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
            return Ok((handle, header));
        }

        // Chained: a head chunk and continuations in the largest class, and the last
        // continuation in the smallest class its bytes fit (as memcached chains), so a chained
        // item wastes no more than a single-chunk item does.
        header.bits |= item::CHAINED;
        let head_len = header.len(cas_enabled) + key.len();
        let continuation_room = largest_chunk.saturating_sub(CONTINUATION_HEADER);
        if head_len > largest_chunk || continuation_room == 0 {
            return Err(StoreError::TooLarge);
        }
        let head_room = largest_chunk - head_len;
        let after_head = value_len.saturating_sub(head_room);
        let continuations = after_head.div_ceil(continuation_room);
        let tail_class = match after_head % continuation_room {
            0 => largest,
            tail => self
                .slabs
                .class_for(tail + CONTINUATION_HEADER)
                .unwrap_or(largest),
        };
        // Reserve every chunk first (marked as continuations, so the CLOCK hand skips them),
        // so that a failure part-way leaves nothing half written. The tail comes first: taking
        // a page for its class may empty a page of the largest class, which must not hold a
        // chunk reserved for this item yet.
        let mut classes = vec![largest; continuations + 1];
        if continuations > 0 {
            classes[continuations] = tail_class;
            classes.rotate_right(1);
        }
        let mut chunks: Vec<u32> = Vec::with_capacity(continuations + 1);
        for class in classes {
            match self.alloc_chunk(class) {
                Ok(handle) => {
                    item::write_continuation(self.slabs.chunk_mut(handle), NO_HANDLE, NO_HANDLE);
                    chunks.push(handle);
                }
                Err(error) => {
                    for handle in chunks {
                        self.slabs.release_chunk(handle);
                    }
                    return Err(error);
                }
            }
        }
        if continuations > 0 {
            chunks.rotate_left(1);
        }
        let head = chunks[0];
        header.next = chunks.get(1).copied().unwrap_or(NO_HANDLE);
        let mut writer = ChainWriter {
            parts,
            part: 0,
            offset: 0,
        };
        let chunk = self.slabs.chunk_mut(head);
        header.write(chunk, cas_enabled);
        chunk[head_len - key.len()..head_len].copy_from_slice(key);
        writer.fill(&mut chunk[head_len..]);
        for at in 1..chunks.len() {
            let next = chunks.get(at + 1).copied().unwrap_or(NO_HANDLE);
            let chunk = self.slabs.chunk_mut(chunks[at]);
            item::write_continuation(chunk, head, next);
            writer.fill(&mut chunk[CONTINUATION_HEADER..]);
        }
        Ok((head, header))
    }

    /// Puts a written item in the index, replacing (and freeing) the key's previous item.
    ///
    /// A new key starts on probation in its class's small FIFO; a replacement has proven its
    /// key popular and goes straight to the main CLOCK with the old item's frequency.
    fn link(&mut self, hash: u64, key: &[u8], handle: u32, header: &mut Header) {
        let index_hash = self.index_hash(hash, key);
        let (slabs, cas_enabled) = (&self.slabs, self.cas_enabled);
        let replaced = match self.index.find_mut(index_hash, |&other| {
            item::key_of(slabs.chunk(other), cas_enabled) == key
        }) {
            Some(slot) => Some(std::mem::replace(slot, handle)),
            None => {
                let hasher = &self.index_hasher;
                self.index.insert_unique(index_hash, handle, |&other| {
                    hasher.hash_stored(item::key_of(slabs.chunk(other), cas_enabled))
                });
                None
            }
        };
        let class = self.slabs.class_of(handle);
        match replaced {
            Some(old) => {
                let old_freq = item::freq(self.slabs.chunk(old)[0]);
                self.forget(old);
                header.bits = item::with_freq(header.bits, old_freq);
                header.probation = false;
            }
            None => {
                header.bits = item::with_freq(header.bits, 0);
                header.probation = true;
            }
        }
        let chunk = self.slabs.chunk_mut(handle);
        chunk[0] = header.bits;
        item::set_probation(chunk, header.probation);
        if header.probation {
            // Only now that the chunk says so: compaction keeps just the entries whose chunk
            // is on probation, and an item missing from the queue could never be evicted.
            let tag = item::queue_tag(self.slabs.chunk(handle), self.cas_enabled);
            let slab = &mut self.slabs.classes[class];
            slab.probation.push_back(Queued { handle, tag });
            slab.probation_items += 1;
            self.slabs.compact_probation(class, self.cas_enabled);
        }
        let size = item_size(header, cas_enabled) as u64;
        self.bytes += size;
        self.counters.total_items += 1;
        let class = &mut self.slabs.classes[class];
        class.items += 1;
        class.mem_requested += size;
        class.counters.cmd_set += 1;
    }

    /// Removes an item from the index and frees it, hashing its stored key to find its slot
    /// (eviction and reclaim know only the handle).
    fn unlink(&mut self, handle: u32) {
        let key = item::key_of(self.slabs.chunk(handle), self.cas_enabled);
        let index_hash = self.index_hasher.hash_stored(key);
        self.unlink_at(handle, index_hash);
    }

    /// [`Partition::unlink`] for an item the caller just looked up by `hash` and `key`: the
    /// request's hash already names the slot, so the key is not hashed again.
    fn unlink_found(&mut self, handle: u32, hash: u64, key: &[u8]) {
        let index_hash = self.index_hash(hash, key);
        self.unlink_at(handle, index_hash);
    }

    fn unlink_at(&mut self, handle: u32, index_hash: u64) {
        if let Ok(entry) = self.index.find_entry(index_hash, |&other| other == handle) {
            entry.remove();
        }
        self.forget(handle);
    }

    /// Frees an item that is no longer in the index and takes it off the gauges.
    fn forget(&mut self, handle: u32) {
        let header = Header::read(self.slabs.chunk(handle), self.cas_enabled);
        let size = item_size(&header, self.cas_enabled) as u64;
        self.bytes -= size;
        let class = self.slabs.class_of(handle);
        let class = &mut self.slabs.classes[class];
        class.items -= 1;
        class.mem_requested -= size;
        if header.probation {
            class.probation_items -= 1;
        }
        let mut next = header.next;
        self.slabs.release_chunk(handle);
        while header.is_chained() && self.slabs.is_valid(next) {
            let following = item::continuation_next(self.slabs.chunk(next));
            self.slabs.release_chunk(next);
            next = following;
        }
    }

    /// Frees a dead item found by a lookup or the allocator's hand.
    fn reclaim(&mut self, handle: u32, header: &Header, death: Death) {
        self.counters.reclaimed += 1;
        self.class_counters(handle).reclaimed += 1;
        self.free_dead(handle, header, death);
    }

    /// Frees a dead item; the caller has counted who found it (`reclaimed` or
    /// `crawler_reclaimed`).
    fn free_dead(&mut self, handle: u32, header: &Header, death: Death) {
        if death == Death::Expired && header.bits & item::FETCHED == 0 {
            self.counters.expired_unfetched += 1;
            self.class_counters(handle).expired_unfetched += 1;
        }
        self.unlink(handle);
    }

    // ----- memory ---------------------------------------------------------------------------

    /// A free chunk of `class`: a free one, a new page from the pool, a chunk freed by the
    /// class's CLOCK hand, or a page taken from another class. Fails only when none of these
    /// works (evictions off, or the partition has no page to give).
    fn alloc_chunk(&mut self, class: usize) -> Result<u32, StoreError> {
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

    /// Frees a chunk of `class` by eviction, S3-FIFO style: while more than a tenth of the
    /// class is on probation, the small FIFO's oldest item goes (or, if it was read while on
    /// probation, moves to the main CLOCK and the next one is tried); otherwise the main CLOCK
    /// hand lowers frequencies until it finds an item at 0. One-hit wonders thus leave after
    /// a short stay while items read more than once compete in the CLOCK. Dead items found on
    /// the way are reclaimed. Without evictions only dead items are freed.
    fn evict_in_class(&mut self, class: usize) -> bool {
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
                chunk[0] = item::with_freq(chunk[0], 1);
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
                chunk[0] = item::with_freq(chunk[0], freq - 1);
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
    fn evict(&mut self, handle: u32, header: &Header, now: u32) {
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
    fn empty_a_page(&mut self, class: usize) -> Option<u32> {
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
            if let Some(slot) = self.index.find_mut(index_hash, |&other| other == from) {
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
            if header.probation {
                let tag = item::queue_tag(self.slabs.chunk(to), self.cas_enabled);
                let queued = Queued { handle: to, tag };
                self.slabs.classes[class].probation.push_back(queued);
                self.slabs.compact_probation(class, self.cas_enabled);
            }
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

    /// Seconds since the last access of the item at (or soon after) the class's hand: an
    /// estimate of how cold the class's eviction candidates are.
    fn class_age(&self, class: usize, now: u32) -> u32 {
        let slab = &self.slabs.classes[class];
        let total = slab.total_chunks();
        for step in 0..total.min(64) {
            let handle = self.slabs.handle_at(class, (slab.hand + step) % total);
            let chunk = self.slabs.chunk(handle);
            if item::is_head(chunk) {
                return now.saturating_sub(item::read_u32(chunk, 9));
            }
        }
        0
    }

    /// The crawler: examines up to `budget` chunks from where it stopped, reclaiming dead items.
    fn crawl(&mut self, budget: usize) -> usize {
        if self.slabs.page_count() == 0 {
            return 0;
        }
        let now = self.clock.now();
        let mut examined = 0;
        let mut empty_slots = 0;
        while examined < budget && empty_slots <= self.slabs.page_slots() {
            if self.crawl_page >= self.slabs.page_slots() {
                self.crawl_page = 0;
                self.crawl_chunk = 0;
            }
            if !self.slabs.has_page(self.crawl_page) {
                self.crawl_page += 1;
                self.crawl_chunk = 0;
                empty_slots += 1;
                continue;
            }
            // The handles are computed, not borrowed: reclaiming while walking them is fine.
            let mut handles = self
                .slabs
                .page_handles(self.crawl_page as u32)
                .skip(self.crawl_chunk)
                .take(budget - examined)
                .peekable();
            if handles.peek().is_none() {
                self.crawl_page += 1;
                self.crawl_chunk = 0;
                continue;
            }
            for handle in handles {
                examined += 1;
                self.crawl_chunk += 1;
                let chunk = self.slabs.chunk(handle);
                if !item::is_head(chunk) {
                    continue;
                }
                self.counters.crawler_items_checked += 1;
                let header = Header::read(chunk, self.cas_enabled);
                if let Some(death) = self.death(&header, now) {
                    self.counters.crawler_reclaimed += 1;
                    self.class_counters(handle).crawler_reclaimed += 1;
                    self.free_dead(handle, &header, death);
                }
            }
        }
        examined
    }

    /// Gives empty pages back to the pool, keeping about one page of free chunks per class.
    fn release_empty_pages(&mut self) {
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
    fn give_pages_to_pool(&mut self) {
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
    fn rebalance(&mut self) {
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

impl Drop for Partition {
    fn drop(&mut self) {
        for page in self.slabs.drain_pages() {
            self.pool.give_back(page);
        }
        if self.starving {
            self.pool.page_wanted_no_more();
        }
        self.pool.unregister_partition();
    }
}

/// Copies a value given in parts into consecutive chunks.
struct ChainWriter<'p> {
    parts: &'p [&'p [u8]],
    part: usize,
    offset: usize,
}

impl ChainWriter<'_> {
    /// Fills `room` with the next bytes (or as many as are left).
    fn fill(&mut self, room: &mut [u8]) {
        let mut at = 0;
        while at < room.len() && self.part < self.parts.len() {
            let part = self.parts[self.part];
            let take = (part.len() - self.offset).min(room.len() - at);
            room[at..at + take].copy_from_slice(&part[self.offset..self.offset + take]);
            at += take;
            self.offset += take;
            if self.offset == part.len() {
                self.part += 1;
                self.offset = 0;
            }
        }
    }
}

fn valid_key(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= KEY_MAX_LEN
}

/// Reads a counter the way memcached's `safe_strtoull` does on a value followed by `\r\n`:
/// leading whitespace, an optional sign, decimal digits; what follows must be whitespace or the
/// end; overflow and negative numbers are refused.
fn parse_counter(value: &[u8]) -> Option<u64> {
    let is_space = |byte: u8| matches!(byte, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
    let mut at = value.iter().take_while(|&&byte| is_space(byte)).count();
    let negative = match value.get(at) {
        Some(b'-') => {
            at += 1;
            true
        }
        Some(b'+') => {
            at += 1;
            false
        }
        _ => false,
    };
    let digits_start = at;
    let mut number: u64 = 0;
    while let Some(&byte) = value.get(at).filter(|byte| byte.is_ascii_digit()) {
        number = number
            .checked_mul(10)?
            .checked_add(u64::from(byte - b'0'))?;
        at += 1;
    }
    if at == digits_start {
        // strtoull parsed nothing: its end pointer is the value's start.
        return match value.first() {
            Some(&byte) if is_space(byte) => Some(0),
            _ => None,
        };
    }
    if value.get(at).is_some_and(|&byte| !is_space(byte)) {
        return None;
    }
    if negative && number != 0 {
        // strtoull negates; memcached then refuses anything that reads as a negative i64.
        let negated = number.wrapping_neg();
        if (negated as i64) < 0 {
            return None;
        }
        return Some(negated);
    }
    Some(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(memory_limit: usize) -> (Partition, Arc<PagePool>, Arc<Clock>) {
        let config = Arc::new(StorageConfig {
            memory_limit,
            ..StorageConfig::default()
        });
        let pool = Arc::new(PagePool::new(config.memory_limit, config.page_size));
        let clock = Arc::new(Clock::starting_at_unix(1_700_000_000));
        let partition = Partition::new(config, pool.clone(), clock.clone());
        (partition, pool, clock)
    }

    fn set(partition: &mut Partition, key: &[u8], value: &[u8]) {
        partition
            .store(&StoreRequest::new(0, key, value, 0, 0, StoreMode::Set))
            .expect("stored");
    }

    /// Sets `k0`, `k1`, ... with `value` until the pool is spent and no chunk is free; returns
    /// how many keys were written (none evicted yet).
    fn fill_until_full(partition: &mut Partition, pool: &PagePool, value: &[u8]) -> usize {
        let mut written = 0;
        while !pool.is_exhausted() || partition.slabs.classes.iter().any(|c| c.free_chunks() > 0) {
            set(partition, format!("k{written}").as_bytes(), value);
            written += 1;
        }
        written
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
        // The values stay small enough for the header's 6-byte CAS.
        assert!(seen.iter().all(|&cas| cas < 1 << 48));
        // A client-supplied CAS (meta `E`) is kept as given.
        let mut request = StoreRequest::new(0, b"e", b"v", 0, 0, StoreMode::Set);
        request.new_cas = Some(7);
        assert_eq!(
            partitions[0].store(&request),
            Ok(StoreOutcome::Stored { cas: 7 })
        );
    }

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
        let value = [b'v'; 100];
        let small = partition.slabs.class_for(19 + 10 + 100).unwrap();
        let per_page = partition.slabs.classes[small].chunks_per_page;
        // Two and a half pages of items: the page given up is the half-full one, and the
        // full pages have no room, so some of its items are rescued only by evicting others.
        let count = per_page * 5 / 2;
        for i in 0..count {
            set(&mut partition, format!("k{i}").as_bytes(), &value);
        }
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

    #[test]
    fn counters_parse_like_strtoull() {
        assert_eq!(parse_counter(b"42"), Some(42));
        assert_eq!(parse_counter(b" \t42 "), Some(42));
        assert_eq!(parse_counter(b"   "), Some(0));
        assert_eq!(parse_counter(b"-0"), Some(0));
        assert_eq!(parse_counter(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_counter(b"18446744073709551616"), None);
        assert_eq!(parse_counter(b"4x"), None);
        assert_eq!(parse_counter(b"x"), None);
        assert_eq!(parse_counter(b"-1"), None);
    }
}

//! The partition's hash index and the liveness of what it finds.
//!
//! Owns: finding an item by key ([`Partition::lookup`]), putting a written item in the index
//! in place of the key's old one ([`Partition::link`]), taking one out and freeing its chunks
//! ([`Partition::unlink`] and friends), the item gauges those change (items, bytes,
//! `mem_requested`), and the rule that decides whether an item found is still live (expiry
//! and `flush_all`). Must not touch: how items are laid out or written (`write.rs`,
//! `item.rs`), which item to evict (`evict.rs`), or pages.

use super::evict::Policy;
use super::{Partition, valid_key};
use crate::hasher::KeyHasher;
use crate::item::{self, Header};

/// How the index hashes keys. The caller's hash is only usable inside the index if the
/// partition can recompute it when the table grows, which needs the caller's [`KeyHasher`].
pub(super) enum IndexHasher {
    /// The partition hashes keys itself (one extra hash per operation).
    Own(ahash::RandomState),
    /// The index uses the hash the caller passes, recomputed with the same hasher on growth.
    Caller(KeyHasher),
}

impl IndexHasher {
    #[inline]
    pub(super) fn hash_stored(&self, key: &[u8]) -> u64 {
        match self {
            IndexHasher::Own(state) => state.hash_one(key),
            IndexHasher::Caller(hasher) => hasher.hash(key),
        }
    }
}

/// Why an item found in the index is not live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Death {
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
pub(super) struct FlushState {
    /// Items whose time is below this are dead (0: no flush yet).
    pub(super) stamp: u32,
    /// A delayed flush: from second `from` on, items whose time is below `stamp` are dead.
    pub(super) pending: Option<PendingFlush>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct PendingFlush {
    pub(super) from: u32,
    pub(super) stamp: u32,
}

impl FlushState {
    /// The stamp in force at `now`.
    #[inline]
    pub(super) fn effective_stamp(&self, now: u32) -> u32 {
        match self.pending {
            Some(pending) if now >= pending.from => self.stamp.max(pending.stamp),
            _ => self.stamp,
        }
    }
}

/// Why an item is dead at `now` under `flush`, if it is.
#[inline]
pub(super) fn death_at(header: &Header, now: u32, flush: &FlushState) -> Option<Death> {
    if header.expiry != 0 && header.expiry <= now {
        return Some(Death::Expired);
    }
    (header.time < flush.effective_stamp(now)).then_some(Death::Flushed)
}

impl Partition {
    #[inline]
    pub(super) fn index_hash(&self, hash: u64, key: &[u8]) -> u64 {
        match &self.index_hasher {
            IndexHasher::Own(state) => state.hash_one(key),
            IndexHasher::Caller(hasher) => {
                debug_assert_eq!(hash, hasher.hash(key), "hash from another KeyHasher");
                hash
            }
        }
    }

    /// The key's item if it is live; a dead one is reclaimed and reported.
    pub(super) fn lookup(&mut self, hash: u64, key: &[u8]) -> Result<(u32, Header), Option<Death>> {
        if !valid_key(key) {
            return Err(None);
        }
        let index_hash = self.index_hash(hash, key);
        let (slabs, cas_enabled) = (&self.slabs, self.cas_enabled);
        let handle = self
            .index
            .find(index_hash, |handle| {
                item::key_of(slabs.chunk(handle), cas_enabled) == key
            })
            .ok_or(None)?;
        let header = self.read_header(handle);
        match self.death(&header, self.clock.now()) {
            None => Ok((handle, header)),
            Some(death) => {
                self.reclaim(handle, &header, death);
                Err(Some(death))
            }
        }
    }

    /// [`Partition::lookup`] for reads, counting `get_expired` / `get_flushed`.
    pub(super) fn lookup_counting_misses(
        &mut self,
        hash: u64,
        key: &[u8],
    ) -> Option<(u32, Header)> {
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
    pub(super) fn death(&self, header: &Header, now: u32) -> Option<Death> {
        death_at(header, now, &self.flush)
    }

    /// The time to record for an access now: at least the stamp of the flush in force, so
    /// that the item is not mistaken for one stored before that flush.
    #[inline]
    pub(super) fn access_time(&self) -> u32 {
        let now = self.clock.now();
        now.max(self.flush.effective_stamp(now))
    }

    /// Puts a written item in the index, replacing (and freeing) the key's previous item, and
    /// tells the eviction policy (which treats a new key and a replaced one differently).
    pub(super) fn link(&mut self, hash: u64, key: &[u8], handle: u32, header: &mut Header) {
        let class = self.link_uncounted(hash, key, handle, header);
        self.counters.total_items += 1;
        self.slabs.classes[class].counters.cmd_set += 1;
    }

    /// [`Partition::link`] for an item rewritten into another chunk because its header grew:
    /// the same item, so no store is counted. Returns the item's class.
    pub(super) fn link_uncounted(
        &mut self,
        hash: u64,
        key: &[u8],
        handle: u32,
        header: &mut Header,
    ) -> usize {
        let index_hash = self.index_hash(hash, key);
        let (slabs, cas_enabled) = (&self.slabs, self.cas_enabled);
        let replaced = match self.index.find_mut(index_hash, |other| {
            item::key_of(slabs.chunk(other), cas_enabled) == key
        }) {
            Some(slot) => Some(std::mem::replace(slot, handle)),
            None => {
                self.index_new(index_hash, handle);
                None
            }
        };
        let replaced_bits = replaced.map(|old| {
            let bits = item::bits(self.slabs.chunk(old));
            self.forget(old);
            bits
        });
        self.account_linked(handle, header, replaced_bits, index_hash)
    }

    /// Adds a handle whose key the index does not hold yet.
    pub(super) fn index_new(&mut self, index_hash: u64, handle: u32) {
        let (slabs, cas_enabled, hasher) = (&self.slabs, self.cas_enabled, &self.index_hasher);
        self.index.insert_unique(index_hash, handle, |other| {
            hasher.hash_stored(item::key_of(slabs.chunk(other), cas_enabled))
        });
    }

    /// What an item just put in the index changes beyond it: the eviction policy's marks and
    /// the gauges (`bytes`, the class's items and requested bytes). `replaced` holds the `bits`
    /// of the key's previous item. Returns the item's class.
    pub(super) fn account_linked(
        &mut self,
        handle: u32,
        header: &mut Header,
        replaced: Option<u8>,
        index_hash: u64,
    ) -> usize {
        let cas_enabled = self.cas_enabled;
        self.eviction.linked(
            &mut self.slabs,
            handle,
            header,
            replaced,
            index_hash,
            cas_enabled,
        );
        let class = self.slabs.class_of(handle);
        let size = header.item_size(cas_enabled) as u64;
        self.bytes += size;
        let slab = &mut self.slabs.classes[class];
        slab.items += 1;
        slab.mem_requested += size;
        class
    }

    /// Removes an item from the index and frees it, hashing its stored key to find its slot
    /// (eviction and reclaim know only the handle).
    /// Returns the key's index hash.
    pub(super) fn unlink(&mut self, handle: u32) -> u64 {
        let key = item::key_of(self.slabs.chunk(handle), self.cas_enabled);
        let index_hash = self.index_hasher.hash_stored(key);
        self.unlink_at(handle, index_hash);
        index_hash
    }

    /// [`Partition::unlink`] for an item the caller just looked up by `hash` and `key`: the
    /// request's hash already names the slot, so the key is not hashed again.
    pub(super) fn unlink_found(&mut self, handle: u32, hash: u64, key: &[u8]) {
        let index_hash = self.index_hash(hash, key);
        self.unlink_at(handle, index_hash);
    }

    fn unlink_at(&mut self, handle: u32, index_hash: u64) {
        self.index.remove(index_hash, |other| other == handle);
        self.forget(handle);
    }

    /// Frees an item that is no longer in the index and takes it off the gauges.
    fn forget(&mut self, handle: u32) {
        let header = Header::read(self.slabs.chunk(handle), self.cas_enabled);
        let size = header.item_size(self.cas_enabled) as u64;
        self.bytes -= size;
        self.eviction.unlinked(&mut self.slabs, handle, &header);
        let class = self.slabs.class_of(handle);
        let class = &mut self.slabs.classes[class];
        class.items -= 1;
        class.mem_requested -= size;
        let mut next = header.next;
        self.slabs.release_chunk(handle);
        if header.is_chained() && self.pins.unlinked(handle) {
            // A reader is writing its continuation chunks to a socket: they are freed when
            // the last one leaves (`free_released_chunks`).
            return;
        }
        while header.is_chained() && self.slabs.is_valid(next) {
            let following = item::continuation_next(self.slabs.chunk(next));
            self.slabs.release_chunk(next);
            next = following;
        }
    }

    /// Frees the continuation chunks of unlinked items whose last reader has left.
    pub(super) fn free_released_chunks(&mut self) {
        for chunk in self.pins.take_released() {
            self.slabs.release_chunk(chunk);
        }
    }

    /// The pages holding a chunk a reader has pinned (or one not yet freed after its pin),
    /// sorted: their chunks cannot be moved or freed, so they cannot be emptied.
    pub(super) fn pinned_pages(&self) -> Vec<u32> {
        let slabs = &self.slabs;
        self.pins.pinned_pages(|chunk| slabs.page_of(chunk))
    }

    /// Frees a dead item found by a lookup or the allocator's hand.
    pub(super) fn reclaim(&mut self, handle: u32, header: &Header, death: Death) {
        self.counters.reclaimed += 1;
        self.class_counters(handle).reclaimed += 1;
        self.free_dead(handle, header, death);
    }

    /// Frees a dead item; the caller has counted who found it (`reclaimed` or
    /// `crawler_reclaimed`).
    pub(super) fn free_dead(&mut self, handle: u32, header: &Header, death: Death) {
        if death == Death::Expired && header.bits & item::FETCHED == 0 {
            self.counters.expired_unfetched += 1;
            self.class_counters(handle).expired_unfetched += 1;
        }
        self.unlink(handle);
    }
}

//! A partition rebuilt from the pages a previous process left in a mapped region (a warm
//! restart), and the state of a partition that such a restart needs besides its pages.
//!
//! Owns: reading every chunk of the adopted pages back, checking each item head and chain
//! before anything can be served from it, and rebuilding the index, the free chunks and the
//! gauges. Must not touch: the region's header or its byte layout (`restart.rs` owns them), or
//! other partitions. An item that does not check out fails the whole restore: a page that lies
//! about one item may lie about others, so the caller starts cold instead of guessing.

use super::{FlushState, IndexHasher, Partition, PendingFlush, valid_key};
use crate::clock::Clock;
use crate::config::StorageConfig;
use crate::hasher::KeyHasher;
use crate::item::{self, CONTINUATION_HEADER, Header, NO_HANDLE};
use crate::pool::{PageMemory, PagePool};
use std::sync::Arc;

/// One bit per chunk handle: the chunks that live items occupy.
struct ChunkSet(Vec<u64>);

impl ChunkSet {
    fn new(handles: usize) -> Self {
        ChunkSet(vec![0; handles.div_ceil(64)])
    }

    fn insert(&mut self, handle: u32) {
        self.0[handle as usize / 64] |= 1 << (handle % 64);
    }

    fn contains(&self, handle: u32) -> bool {
        self.0
            .get(handle as usize / 64)
            .is_some_and(|word| word & (1 << (handle % 64)) != 0)
    }
}
use thiserror::Error;

/// What a partition keeps across a restart besides its pages and items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct PartitionState {
    /// The CAS its next store gets (CAS uniques must not be handed out twice).
    pub next_cas: u64,
    /// `flush_all`'s stamp: items last touched before it are dead.
    pub flush_stamp: u32,
    /// A delayed `flush_all`: (from, stamp).
    pub pending_flush: Option<(u32, u32)>,
}

/// A page a partition held, as the restart header lists it.
#[derive(Debug)]
pub(crate) struct HeldPage {
    pub id: u32,
    pub class: u8,
    pub memory: PageMemory,
}

/// Why a partition's pages cannot be served again.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RestoreError {
    #[error("page {id} of partition {partition} is listed twice or out of range")]
    BadPage { partition: usize, id: u32 },
    #[error(
        "chunk {handle:#x} of partition {partition} holds an item whose header does not add up"
    )]
    BadItem { partition: usize, handle: u32 },
    #[error("the chain of the item at {handle:#x} of partition {partition} is broken")]
    BadChain { partition: usize, handle: u32 },
    #[error("an item of partition {partition} has a key that routes to another partition")]
    Misrouted { partition: usize },
    #[error("partition {partition} holds the same key twice")]
    DuplicateKey { partition: usize },
}

impl Partition {
    /// The state to keep for a restart.
    pub(crate) fn restart_state(&self) -> PartitionState {
        PartitionState {
            next_cas: self.next_cas,
            flush_stamp: self.flush.stamp,
            pending_flush: self
                .flush
                .pending
                .map(|pending| (pending.from, pending.stamp)),
        }
    }

    /// The pages this partition holds, as (local id, class, region slot); `None` if any is
    /// on the heap.
    pub(crate) fn region_pages(&self) -> Option<Vec<(u32, u8, u32)>> {
        self.slabs.region_pages()
    }

    /// The bytes of one of its pages (the restart header keeps a checksum of each).
    pub(crate) fn page_bytes(&self, id: u32) -> &[u8] {
        self.slabs.page_bytes(id)
    }

    /// Partition `id` of `count` (as [`Partition::with_cas_stripe`]), rebuilt from the pages
    /// it held before a restart. Items that expired or were flushed meanwhile are not taken
    /// back; their chunks are free. Returns the partition and how many items it holds.
    ///
    /// On an error every page has been given back to `pool`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn restored(
        config: Arc<StorageConfig>,
        pool: Arc<PagePool>,
        clock: Arc<Clock>,
        hasher: KeyHasher,
        (id, count): (usize, usize),
        state: PartitionState,
        pages: Vec<HeldPage>,
    ) -> Result<(Partition, usize), RestoreError> {
        let mut partition =
            Partition::with_key_hasher(config, pool, clock, hasher).with_cas_stripe(id, count);
        // A counter from another stripe would hand out another partition's CAS uniques.
        if state.next_cas % partition.cas_step == partition.first_cas % partition.cas_step {
            partition.next_cas = state.next_cas.max(partition.first_cas);
        }
        partition.flush = FlushState {
            stamp: state.flush_stamp,
            pending: state
                .pending_flush
                .map(|(from, stamp)| PendingFlush { from, stamp }),
        };
        let mut bad_page = None;
        for page in pages {
            if let Err(memory) =
                partition
                    .slabs
                    .adopt_page(page.id, usize::from(page.class), page.memory)
            {
                partition.pool.give_back(memory);
                bad_page.get_or_insert(page.id);
            }
        }
        if let Some(page) = bad_page {
            return Err(RestoreError::BadPage {
                partition: id,
                id: page,
            });
        }
        // `partition` gives its pages back when dropped on an error.
        let live = partition.relink(id)?;
        partition
            .slabs
            .settle_adopted(|handle| live.contains(handle));
        let items = partition.index.len();
        Ok((partition, items))
    }

    /// Walks every chunk of the adopted pages and indexes the live items (telling the
    /// eviction policy of each, as of a new key); returns the chunks they occupy.
    fn relink(&mut self, id: usize) -> Result<ChunkSet, RestoreError> {
        let now = self.clock.now();
        let mut live = ChunkSet::new(self.slabs.handle_space());
        let heads: Vec<u32> = (0..self.slabs.page_slots() as u32)
            .filter(|&page| self.slabs.has_page(page as usize))
            .flat_map(|page| self.slabs.page_handles(page))
            .filter(|&handle| item::is_head(self.slabs.chunk(handle)))
            .collect();
        // Room for every head at once: growing the index re-hashes every key read so far.
        let hasher = &self.index_hasher;
        let (slabs, cas_enabled) = (&self.slabs, self.cas_enabled);
        self.index.reserve(heads.len(), |other| {
            hasher.hash_stored(item::key_of(slabs.chunk(other), cas_enabled))
        });
        let largest_chunk = self.slabs.classes[self.slabs.largest_class()].chunk_size;
        for head in heads {
            let chunk = self.slabs.chunk(head);
            let mut header = Header::read(chunk, cas_enabled);
            let bad_item = RestoreError::BadItem {
                partition: id,
                handle: head,
            };
            let key_end = header.len(cas_enabled) + usize::from(header.key_len);
            // A chained item's head is a chunk of the largest size: in its chain class, or in
            // another of them (the chain classes and the ladder's largest class lend each
            // other free chunks: any of them with `-M`, longer bands' otherwise).
            let fits = if header.is_chained() {
                key_end <= chunk.len() && chunk.len() == largest_chunk
            } else {
                key_end + header.value_len as usize <= chunk.len()
            };
            if !fits
                || !valid_key(item::key_of(chunk, cas_enabled))
                || header.item_size(cas_enabled) > self.config.item_size_max
            {
                return Err(bad_item);
            }
            let chain = self.checked_chain(id, head, &header, chunk.len() - key_end)?;
            if self.death(&header, now).is_some() {
                // Dead while the server was down (or before): its chunks become free.
                continue;
            }
            let key = item::key_of(self.slabs.chunk(head), cas_enabled);
            let hash = self.index_hasher.hash_stored(key);
            if let IndexHasher::Caller(hasher) = &self.index_hasher
                && hasher.partition_of(hash) != id
            {
                return Err(RestoreError::Misrouted { partition: id });
            }
            let slabs = &self.slabs;
            if self
                .index
                .find(hash, |other| {
                    item::key_of(slabs.chunk(other), cas_enabled) == key
                })
                .is_some()
            {
                return Err(RestoreError::DuplicateKey { partition: id });
            }
            self.index_new(hash, head);
            live.insert(head);
            for handle in chain {
                live.insert(handle);
            }
            // A restored item is no new `cmd_set`: only the policy and the gauges learn of it.
            self.account_linked(head, &mut header, None, hash);
        }
        Ok(live)
    }

    /// The continuation chunks of a chained item, checked: each names this head, none is
    /// another item's, the chain ends, and its chunks hold exactly the value.
    fn checked_chain(
        &self,
        id: usize,
        head: u32,
        header: &Header,
        head_room: usize,
    ) -> Result<Vec<u32>, RestoreError> {
        let mut chain = Vec::new();
        if !header.is_chained() {
            return Ok(chain);
        }
        let broken = RestoreError::BadChain {
            partition: id,
            handle: head,
        };
        let mut room = head_room;
        let mut next = header.next;
        // Every chunk taken adds room, and room reaching the value's length ends the walk, so a
        // chain that loops back on itself is found without remembering the chunks seen.
        while next != NO_HANDLE {
            // Room enough already: a further chunk would be one no writer adds.
            if room >= header.value_len as usize || !self.slabs.is_chunk(next) {
                return Err(broken);
            }
            let chunk = self.slabs.chunk(next);
            if !item::is_continuation(chunk)
                || item::continuation_head(chunk) != head
                || chunk.len() <= CONTINUATION_HEADER
            {
                return Err(broken);
            }
            room += chunk.len() - CONTINUATION_HEADER;
            chain.push(next);
            next = item::continuation_next(chunk);
        }
        if room < header.value_len as usize {
            return Err(broken);
        }
        Ok(chain)
    }
}

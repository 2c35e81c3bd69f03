//! Eviction: which item of a slab class leaves when the class needs a chunk, behind one narrow
//! interface ([`Policy`]) so that policies can be compared in one build.
//!
//! Owns: the interface between the partition and a policy, the choice of policy
//! ([`EvictionPolicy`] in the config), carrying out a policy's choice (reclaim a dead item or
//! evict a live one, with memcached's eviction counters), the reclaim of dead items near the
//! hand when evictions are off, and the age of a class's eviction candidates that page moves
//! compare. Each policy has its own file: `s3fifo.rs` (the engine's), `clock.rs`, `lru.rs`.
//! Must not touch: pages (`pages.rs` decides when to evict for a page move), or the index
//! beyond `unlink`.
//!
//! A policy sees the partition only through its hooks: an item linked (new key or
//! replacement), accessed, moved to another chunk, rewritten in place, unlinked; and "which
//! item of this class goes next?". Per-item marks live in the item's header (the 2-bit
//! frequency every policy keeps up to date, the probation bit S3-FIFO uses); per-class state
//! lives in the slab class (CLOCK hand, small FIFO) or in the policy (LRU's lists).

mod clock;
mod lru;
mod s3fifo;

use super::Partition;
use super::index::{Death, FlushState, death_at};
use crate::config::EvictionPolicy;
use crate::item::{self, Header};
use crate::slab::Slabs;
use crate::stats::PartitionStats;
use clock::Clock;
use lru::Lru;
use s3fifo::S3Fifo;

/// Chunks the allocator's CLOCK hand looks at for an expired item when evictions are off:
/// past a whole chain (a chain class holds heads and middle chunks alike).
const RECLAIM_SCAN_WITHOUT_EVICTIONS: usize = HEAD_SCAN;

/// Chunks a hand looks at for an item head: twice the longest chain
/// ([`crate::config::CHAIN_CHUNKS_MAX`] chunks and a few for their headers).
pub(super) const HEAD_SCAN: usize = 2 * crate::config::CHAIN_CHUNKS_MAX;

/// What a policy sees of the partition while it looks for a victim.
pub(super) struct Sweep<'a> {
    pub slabs: &'a mut Slabs,
    pub counters: &'a mut PartitionStats,
    pub cas_enabled: bool,
    pub now: u32,
    pub flush: FlushState,
}

impl Sweep<'_> {
    /// Why the item is dead, if it is.
    #[inline]
    pub fn death(&self, header: &Header) -> Option<Death> {
        death_at(header, self.now, &self.flush)
    }

    /// Moves the class's CLOCK hand one chunk on (over `total` chunks) and returns the item
    /// head it passed, if the chunk was one.
    #[inline]
    pub fn advance_hand(&mut self, class: usize, total: usize) -> Option<(u32, Header)> {
        let slab = &mut self.slabs.classes[class];
        let pos = slab.hand % total;
        slab.hand = (pos + 1) % total;
        let handle = self.slabs.handle_at(class, pos);
        let chunk = self.slabs.chunk(handle);
        item::is_head(chunk).then(|| (handle, Header::read(chunk, self.cas_enabled)))
    }
}

/// The item a policy gives up: evicted if live, reclaimed if dead.
pub(super) struct Victim {
    pub handle: u32,
    pub header: Header,
    pub death: Option<Death>,
}

impl Victim {
    fn new(sweep: &Sweep<'_>, handle: u32, header: Header) -> Victim {
        Victim {
            handle,
            header,
            death: sweep.death(&header),
        }
    }
}

/// The interface between a partition and its eviction policy. The partition calls the hooks
/// after it has changed the item; the policy updates its own state and may change the item's
/// header marks (frequency, probation), and never frees or moves an item itself.
pub(super) trait Policy {
    /// Item `handle` (of the class its chunk is in) has just been put in the index: `header` is
    /// what its chunk says, to be completed with the policy's marks, which the hook also
    /// writes to the chunk. `replaced` holds the `bits` of the key's previous item, if the key
    /// had one; `hash` is the key's index hash.
    fn linked(
        &mut self,
        slabs: &mut Slabs,
        handle: u32,
        header: &mut Header,
        replaced: Option<u8>,
        hash: u64,
        cas_enabled: bool,
    );

    /// Item `handle` was read or touched; its header's frequency is already raised.
    #[inline]
    fn accessed(&mut self, _slabs: &Slabs, _handle: u32) {}

    /// Item `handle` is leaving (deleted, replaced, expired or evicted); its chunks are freed
    /// right after.
    fn unlinked(&mut self, slabs: &mut Slabs, handle: u32, header: &Header);

    /// Item `header`'s head moved from chunk `from` to chunk `to` of class `class` (a page
    /// being emptied).
    fn moved(
        &mut self,
        slabs: &mut Slabs,
        class: usize,
        from: u32,
        to: u32,
        header: &Header,
        cas_enabled: bool,
    );

    /// Item `handle`'s header was rewritten in place (a new CAS); `old_tag` is the
    /// [`item::queue_tag`] it had before.
    #[inline]
    fn rewritten(
        &mut self,
        _slabs: &mut Slabs,
        _handle: u32,
        _header: &Header,
        _old_tag: u32,
        _cas_enabled: bool,
    ) {
    }

    /// The policy's victim in class `class`, whose `header` was as given and whose key has
    /// index hash `hash`, has been evicted (not a dead item reclaimed).
    #[inline]
    fn evicted(&mut self, _slabs: &Slabs, _class: usize, _header: &Header, _hash: u64) {}

    /// The item class `class` (holding `total` chunks, evictions on) gives up next, or `None`
    /// if it has none.
    fn victim(&mut self, sweep: &mut Sweep<'_>, class: usize, total: usize) -> Option<Victim>;

    /// An item among the class's next eviction candidates, whose last access says how cold
    /// the class is (automove, `stats items` age).
    fn candidate(&self, slabs: &Slabs, class: usize) -> Option<u32>;
}

/// The policy a partition runs, chosen by [`EvictionPolicy`]; a match rather than a trait
/// object, so that S3-FIFO's hooks inline into the hot path as they did before there was a
/// choice.
pub(super) enum Eviction {
    S3Fifo(S3Fifo),
    Clock(Clock),
    Lru(Lru),
}

macro_rules! each_policy {
    ($self:expr, $policy:ident => $call:expr) => {
        match $self {
            Eviction::S3Fifo($policy) => $call,
            Eviction::Clock($policy) => $call,
            Eviction::Lru($policy) => $call,
        }
    };
}

impl Eviction {
    pub(super) fn new(policy: EvictionPolicy, classes: usize) -> Eviction {
        match policy {
            EvictionPolicy::S3Fifo => Eviction::S3Fifo(S3Fifo::new(classes)),
            EvictionPolicy::Clock => Eviction::Clock(Clock),
            EvictionPolicy::Lru => Eviction::Lru(Lru::new(classes)),
        }
    }

    /// Whether new items wait on probation (S3-FIFO's small FIFO) until read, so that an
    /// eviction off the main queue says more about a class's memory than one off probation.
    pub(super) fn screens_new_items(&self) -> bool {
        matches!(self, Eviction::S3Fifo(_))
    }
}

impl Policy for Eviction {
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
        each_policy!(self, p => p.linked(slabs, handle, header, replaced, hash, cas_enabled))
    }

    #[inline]
    fn accessed(&mut self, slabs: &Slabs, handle: u32) {
        each_policy!(self, p => p.accessed(slabs, handle))
    }

    #[inline]
    fn unlinked(&mut self, slabs: &mut Slabs, handle: u32, header: &Header) {
        each_policy!(self, p => p.unlinked(slabs, handle, header))
    }

    #[inline]
    fn moved(
        &mut self,
        slabs: &mut Slabs,
        class: usize,
        from: u32,
        to: u32,
        header: &Header,
        cas_enabled: bool,
    ) {
        each_policy!(self, p => p.moved(slabs, class, from, to, header, cas_enabled))
    }

    #[inline]
    fn rewritten(
        &mut self,
        slabs: &mut Slabs,
        handle: u32,
        header: &Header,
        old_tag: u32,
        cas_enabled: bool,
    ) {
        each_policy!(self, p => p.rewritten(slabs, handle, header, old_tag, cas_enabled))
    }

    #[inline]
    fn evicted(&mut self, slabs: &Slabs, class: usize, header: &Header, hash: u64) {
        each_policy!(self, p => p.evicted(slabs, class, header, hash))
    }

    #[inline]
    fn victim(&mut self, sweep: &mut Sweep<'_>, class: usize, total: usize) -> Option<Victim> {
        each_policy!(self, p => p.victim(sweep, class, total))
    }

    fn candidate(&self, slabs: &Slabs, class: usize) -> Option<u32> {
        each_policy!(self, p => p.candidate(slabs, class))
    }
}

impl Partition {
    /// Frees a chunk of `class` by evicting the item the policy names, or reclaiming it if it
    /// is dead. Without evictions only dead items are freed.
    pub(super) fn evict_in_class(&mut self, class: usize) -> bool {
        let total = self.slabs.classes[class].total_chunks();
        // A class holding chains' last chunks and no item of its own has nothing to evict:
        // its chunks come free with their chains. Without this the hand went round all of
        // them four times per store (100 KB values at -m 256 -t 1, 4 KiB chunks: minutes).
        if total == 0 || self.slabs.classes[class].items == 0 {
            return false;
        }
        if !self.config.evictions {
            return self.reclaim_near_hand(class, total);
        }
        let now = self.clock.now();
        let mut sweep = Sweep {
            slabs: &mut self.slabs,
            counters: &mut self.counters,
            cas_enabled: self.cas_enabled,
            now,
            flush: self.flush,
        };
        let Some(victim) = self.eviction.victim(&mut sweep, class, total) else {
            return false;
        };
        match victim.death {
            Some(death) => self.reclaim(victim.handle, &victim.header, death),
            None => {
                let hash = self.evict(victim.handle, &victim.header, now);
                self.eviction
                    .evicted(&self.slabs, class, &victim.header, hash);
            }
        }
        true
    }

    /// Without evictions: looks a bounded way past the hand for a dead item to reclaim.
    fn reclaim_near_hand(&mut self, class: usize, total: usize) -> bool {
        let mut sweep = Sweep {
            slabs: &mut self.slabs,
            counters: &mut self.counters,
            cas_enabled: self.cas_enabled,
            now: self.clock.now(),
            flush: self.flush,
        };
        let dead = (0..total.min(RECLAIM_SCAN_WITHOUT_EVICTIONS)).find_map(|_| {
            let (handle, header) = sweep.advance_hand(class, total)?;
            sweep.death(&header).map(|death| (handle, header, death))
        });
        let Some((handle, header, death)) = dead else {
            return false;
        };
        self.reclaim(handle, &header, death);
        true
    }

    /// Evicts a live item, counting it. An item whose frequency is not 0 was read since the
    /// hand last passed: memcached's `evicted_active`. (The hand and the small FIFO only take
    /// items at 0; emptying a page for another class takes every item on it.)
    ///
    /// Returns the key's index hash.
    pub(super) fn evict(&mut self, handle: u32, header: &Header, now: u32) -> u64 {
        let age = now.saturating_sub(header.time);
        if !self.mover_window_open {
            self.start_mover_window();
        }
        self.evicted_window_bytes += header.item_size(self.cas_enabled) as u64;
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
        if self.emptying_page {
            slab.emptying_evictions += 1;
        } else if !header.probation && self.eviction.screens_new_items() {
            slab.proven_evictions += 1;
        }
        slab.counters.evicted_time = u64::from(age);
        if header.expiry != 0 {
            slab.counters.evicted_nonzero += 1;
        }
        if unfetched {
            slab.counters.evicted_unfetched += 1;
        }
        if active {
            slab.counters.evicted_active += 1;
        }
        self.unlink(handle)
    }

    /// Seconds since the last access of one of the class's next eviction candidates: an
    /// estimate of how cold the class is.
    pub(super) fn class_age(&self, class: usize, now: u32) -> u32 {
        self.eviction
            .candidate(&self.slabs, class)
            .map_or(0, |handle| {
                now.saturating_sub(item::last_access(self.slabs.chunk(handle)))
            })
    }
}

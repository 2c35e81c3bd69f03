//! A restartable cache: the engine's memory as one region that outlives the process (a file on
//! tmpfs, or a memfd kept by systemd), and the header a clean shutdown writes at its front so
//! that the next process serves the same items without copying them.
//!
//! Owns: the region's layout (header block, then one slot per page), the header's byte format
//! and checksums, the decision warm or cold (and why), and handing the partitions their old
//! pages. Must not touch: how the region is mapped (the daemon maps it and hands over a
//! `&'static mut [u8]`; this crate stays free of `unsafe`), or what is inside a page (each
//! partition checks its own items, in `partition/restore.rs`).
//!
//! # Crash safety
//! The header carries a clean-shutdown mark that [`MemoryImage::open`] clears before anything
//! is served: a process that dies without [`ImageHeader::save`] (a crash, `kill -9`) leaves no
//! mark, and the next start is cold. A warm start also needs the same format version and memory
//! layout settings, a header checksum that matches, and a checksum per page that matches; then
//! every item head and chain is checked as the indexes are rebuilt. Anything that does not
//! check out makes the whole start cold: no torn item is ever served.
//!
//! # Header block (little-endian; rounded up to whole pages)
//! ```text
//! 0    magic          b"FERROMEM"
//! 8    version        u32 (FORMAT_VERSION)
//! 12   clean          u32, CLEAN_MARK once a shutdown wrote the rest, else 0
//! 16   covered        u64, bytes from 32 that the checksum covers
//! 24   checksum       u64 over [32, 32 + covered)
//! 32   settings       memory limit, page size, -n, -f (f64 bits), slab_chunk_max, -I, CAS on,
//!                     partitions, page slots, evictions on (off with -M): 10 x u64
//! 112  epoch_unix     i64, the clock's Unix time of internal second 0
//! 120  saved_now      u32, the internal second of the shutdown; u32 padding
//! 128  seeds          4 x u64, the key hasher's
//! 160  probe          u64, the hash of PROBE_KEY under those seeds (a changed hash function
//!                     would route keys to partitions that do not hold them)
//! 168  partitions     per partition: next CAS u64, flush stamp u32, pending flush from u32,
//!                     pending stamp u32, pending set u32 (24 bytes)
//! ...  slots          per page slot: owner partition u32 (FREE_SLOT if none), page id u32,
//!                     class u32, padding u32, page checksum u64 (24 bytes)
//! ```

use crate::bytes::{read_u32, read_u64, write_u32, write_u64};
use crate::clock::Clock;
use crate::config::StorageConfig;
use crate::hasher::KeyHasher;
use crate::partition::{HeldPage, Partition, PartitionState};
use crate::pool::{PageMemory, PagePool};
use std::sync::Arc;
use thiserror::Error;

const MAGIC: &[u8; 8] = b"FERROMEM";
/// Bumped whenever the header or the item layout in a chunk changes.
const FORMAT_VERSION: u32 = 4;
const CLEAN_MARK: u32 = 0x434c_454e;
const FREE_SLOT: u32 = u32::MAX;
const PROBE_KEY: &[u8] = b"ferrocache restart probe";

const AT_VERSION: usize = 8;
const AT_CLEAN: usize = 12;
const AT_COVERED: usize = 16;
const AT_CHECKSUM: usize = 24;
const AT_SETTINGS: usize = 32;
const SETTINGS_FIELDS: usize = 10;
const AT_EPOCH: usize = 112;
const AT_SAVED_NOW: usize = 120;
const AT_SEEDS: usize = 128;
const AT_PROBE: usize = 160;
const AT_PARTITIONS: usize = 168;
const PARTITION_ENTRY: usize = 24;
const SLOT_ENTRY: usize = 24;

/// Names of the settings fields, for the log line of a cold start.
const SETTINGS_NAMES: [&str; SETTINGS_FIELDS] = [
    "memory limit (-m)",
    "page size",
    "minimum chunk size (-n)",
    "growth factor (-f)",
    "slab_chunk_max",
    "item size limit (-I)",
    "CAS (-C)",
    "partitions (-t)",
    "page slots",
    "evictions (-M)",
];

/// Why a start is cold.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ColdReason {
    /// The memory holds no header: a first start, or a new file.
    #[error("the memory holds no saved cache (first start)")]
    NoImage,
    /// The format changed between versions.
    #[error("the saved cache has format version {found}, this build reads {FORMAT_VERSION}")]
    Version { found: u32 },
    /// The last process did not shut down cleanly (crash, `kill -9`).
    #[error("the last process did not shut down cleanly (crash or kill)")]
    NotClean,
    /// The header's checksum does not match.
    #[error("the saved header's checksum does not match")]
    HeaderChecksum,
    /// A setting that changes the memory layout differs.
    #[error("{setting} changed ({saved} -> {now})")]
    Settings {
        setting: &'static str,
        saved: u64,
        now: u64,
    },
    /// The key hash function changed (another build of the hash library).
    #[error("the key hash function changed")]
    HashChanged,
    /// The saved clock cannot be continued (the wall clock is before its epoch, or too far).
    #[error("the saved clock cannot be continued at this time")]
    Clock,
    /// A page's contents changed after the shutdown.
    #[error("page slot {slot}'s checksum does not match")]
    PageChecksum { slot: usize },
    /// The header lists a page that cannot be.
    #[error("the saved page table is inconsistent")]
    PageTable,
    /// A partition's items do not check out.
    #[error("{0}")]
    Items(#[from] crate::partition::RestoreError),
}

impl ColdReason {
    /// A short name, one word, for `stats` (`restart_cold_reason`).
    pub fn code(&self) -> &'static str {
        match self {
            ColdReason::NoImage => "no_image",
            ColdReason::Version { .. } => "version",
            ColdReason::NotClean => "not_clean",
            ColdReason::HeaderChecksum => "header_checksum",
            ColdReason::Settings { .. } => "settings",
            ColdReason::HashChanged => "hash_changed",
            ColdReason::Clock => "clock",
            ColdReason::PageChecksum { .. } => "page_checksum",
            ColdReason::PageTable => "page_table",
            ColdReason::Items(_) => "bad_item",
        }
    }
}

/// A region that cannot hold the cache.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the memory region has {got} bytes, the cache needs {needed}")]
pub struct RegionTooSmall {
    pub got: usize,
    pub needed: usize,
}

/// How the cache started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartReport {
    /// Items served again from the previous process's memory (0 on a cold start).
    pub items_recovered: u64,
    /// Why the start was cold; `None` for a warm one.
    pub cold: Option<ColdReason>,
}

impl StartReport {
    pub fn is_warm(&self) -> bool {
        self.cold.is_none()
    }
}

/// The engine a [`MemoryImage`] starts: its pool, hasher and partitions (partition `i` of
/// `n` hands out CAS uniques of stripe `i`, as [`Partition::with_cas_stripe`]).
#[derive(Debug)]
pub struct Engine {
    pub pool: Arc<PagePool>,
    pub hasher: KeyHasher,
    pub partitions: Vec<Partition>,
    pub report: StartReport,
}

/// Where the header and the page slots sit in a region for given settings.
#[derive(Debug, Clone, Copy)]
struct Layout {
    partitions: usize,
    slots: usize,
    page_size: usize,
    /// Bytes of header block, whole pages.
    header_len: usize,
}

impl Layout {
    fn new(config: &StorageConfig, partitions: usize) -> Self {
        let slots = (config.memory_limit / config.page_size).max(1);
        let used = AT_PARTITIONS + partitions * PARTITION_ENTRY + slots * SLOT_ENTRY;
        Layout {
            partitions,
            slots,
            page_size: config.page_size,
            header_len: used.div_ceil(config.page_size) * config.page_size,
        }
    }

    fn region_len(&self) -> usize {
        self.header_len + self.slots * self.page_size
    }

    fn covered(&self) -> usize {
        AT_PARTITIONS + self.partitions * PARTITION_ENTRY + self.slots * SLOT_ENTRY - AT_SETTINGS
    }

    fn slot_entry(&self, slot: usize) -> usize {
        AT_PARTITIONS + self.partitions * PARTITION_ENTRY + slot * SLOT_ENTRY
    }
}

/// The settings that fix the memory layout, as the header stores them.
fn settings_of(config: &StorageConfig, layout: &Layout) -> [u64; SETTINGS_FIELDS] {
    [
        config.memory_limit as u64,
        config.page_size as u64,
        config.chunk_size_min as u64,
        config.growth_factor.to_bits(),
        config.slab_chunk_max as u64,
        config.item_size_max as u64,
        u64::from(config.cas),
        layout.partitions as u64,
        layout.slots as u64,
        // Under -M every item carries an expiry field (a touch must never need memory), so
        // items saved without -M are not served with it.
        u64::from(config.evictions),
    ]
}

/// The bytes a region must have for these settings (`config` as the engine runs it, after
/// [`StorageConfig::for_partitions`]).
pub fn region_len(config: &StorageConfig, partitions: usize) -> usize {
    Layout::new(config, partitions).region_len()
}

/// A mapped region, read: what a previous process left in it, and whether it can be served.
#[derive(Debug)]
pub struct MemoryImage {
    header: &'static mut [u8],
    slots: Vec<&'static mut [u8]>,
    layout: Layout,
    config: StorageConfig,
    /// The saved header's facts when they allow a warm start so far.
    verdict: Result<Saved, ColdReason>,
}

#[derive(Debug, Clone, Copy)]
struct Saved {
    epoch_unix: i64,
    saved_now: u32,
    seeds: [u64; 4],
}

/// A region cut into its header block and its page slots (in slot order).
#[derive(Debug)]
pub struct Region {
    header: &'static mut [u8],
    slots: Vec<&'static mut [u8]>,
}

impl Region {
    /// Cuts `region` for these settings (`config` as the engine runs it, after
    /// [`StorageConfig::for_partitions`]).
    pub fn split(
        region: &'static mut [u8],
        config: &StorageConfig,
        partitions: usize,
    ) -> Result<Region, RegionTooSmall> {
        let layout = Layout::new(config, partitions);
        if region.len() < layout.region_len() {
            return Err(RegionTooSmall {
                got: region.len(),
                needed: layout.region_len(),
            });
        }
        let (header, pages) = region.split_at_mut(layout.header_len);
        let slots = pages
            .chunks_exact_mut(layout.page_size)
            .take(layout.slots)
            .collect();
        Ok(Region { header, slots })
    }

    /// The header block's bytes (tests corrupt them).
    pub fn header_mut(&mut self) -> &mut [u8] {
        self.header
    }

    /// A page slot's bytes (tests corrupt them).
    pub fn slot_mut(&mut self, slot: usize) -> Option<&mut [u8]> {
        self.slots.get_mut(slot).map(|slot| &mut **slot)
    }
}

impl MemoryImage {
    /// Reads the header of `region` and clears its clean-shutdown mark, so that if this
    /// process dies without [`ImageHeader::save`] the next start is cold. `config` is the
    /// engine's (after [`StorageConfig::for_partitions`]).
    pub fn open(
        region: &'static mut [u8],
        config: &StorageConfig,
        partitions: usize,
    ) -> Result<MemoryImage, RegionTooSmall> {
        Ok(Self::reopen(
            Region::split(region, config, partitions)?,
            config,
            partitions,
        ))
    }

    /// [`MemoryImage::open`] of a region already cut, as [`Engine::into_region`] gives it
    /// back: it must have been cut for the same settings, or the start is cold.
    pub fn reopen(region: Region, config: &StorageConfig, partitions: usize) -> MemoryImage {
        let layout = Layout::new(config, partitions);
        let Region { header, slots } = region;
        let verdict = read_header(header, &layout, config).and_then(|saved| {
            // Settings that match cut the region the same way; this guards against a caller
            // that cut it for others.
            if header.len() == layout.header_len && slots.len() == layout.slots {
                Ok(saved)
            } else {
                Err(ColdReason::PageTable)
            }
        });
        header[AT_CLEAN..AT_CLEAN + 4].fill(0);
        MemoryImage {
            header,
            slots,
            layout,
            config: config.clone(),
            verdict,
        }
    }

    /// The clock to run: the saved one's scale resumed when the start may be warm (so that
    /// saved expiries keep their meaning), else a fresh one. A clock that cannot be resumed
    /// makes the start cold.
    pub fn clock(&mut self) -> Clock {
        self.clock_at(None)
    }

    /// [`MemoryImage::clock`] at a given Unix time (tests).
    pub fn clock_at(&mut self, unix_now: Option<i64>) -> Clock {
        if let Ok(saved) = self.verdict {
            let resumed = match unix_now {
                Some(unix) => Clock::resuming(saved.epoch_unix, saved.saved_now, unix),
                None => Clock::resuming_now(saved.epoch_unix, saved.saved_now),
            };
            match resumed {
                Some(clock) => return clock,
                None => self.verdict = Err(ColdReason::Clock),
            }
        }
        match unix_now {
            Some(unix) => Clock::starting_at_unix(unix),
            None => Clock::new(),
        }
    }

    /// Builds the engine: warm from the saved pages if everything checks out, else cold over
    /// the same region (the report says why). `clock` must come from [`MemoryImage::clock`].
    pub fn start(mut self, config: Arc<StorageConfig>, clock: Arc<Clock>) -> (Engine, ImageHeader) {
        let partitions = self.layout.partitions;
        let engine = match self.verdict.clone() {
            Ok(saved) => match self.warm(&config, &clock, saved) {
                Ok(engine) => Ok(engine),
                Err((reason, pool)) => {
                    // Every page went back to the pool on the way out: take the slots back.
                    self.slots = pool_slots(pool, self.layout.slots);
                    Err(reason)
                }
            },
            Err(reason) => Err(reason),
        };
        let engine = engine.unwrap_or_else(|reason| {
            let free = std::mem::take(&mut self.slots)
                .into_iter()
                .enumerate()
                .map(|(slot, data)| PageMemory::region(slot as u32, data))
                .rev()
                .collect();
            let pool = Arc::new(PagePool::over_region(
                config.memory_limit,
                config.page_size,
                free,
                0,
            ));
            let hasher = KeyHasher::new(partitions);
            let partitions = (0..partitions)
                .map(|id| {
                    Partition::with_key_hasher(
                        Arc::clone(&config),
                        Arc::clone(&pool),
                        Arc::clone(&clock),
                        hasher.clone(),
                    )
                    .with_cas_stripe(id, partitions)
                })
                .collect();
            Engine {
                pool,
                hasher,
                partitions,
                report: StartReport {
                    items_recovered: 0,
                    cold: Some(reason),
                },
            }
        });
        let header = ImageHeader {
            header: self.header,
            layout: self.layout,
            config: self.config,
        };
        (engine, header)
    }

    /// The warm start: checks every page, hands each partition its pages and lets it rebuild.
    /// On failure, returns the pool that every page went back to.
    fn warm(
        &mut self,
        config: &Arc<StorageConfig>,
        clock: &Arc<Clock>,
        saved: Saved,
    ) -> Result<Engine, (ColdReason, Arc<PagePool>)> {
        let layout = self.layout;
        let mut owned: Vec<Vec<HeldPage>> = (0..layout.partitions).map(|_| Vec::new()).collect();
        let mut free = Vec::new();
        let mut failure = None;
        for (slot, data) in std::mem::take(&mut self.slots).into_iter().enumerate() {
            let at = layout.slot_entry(slot);
            let owner = read_u32(self.header, at);
            let memory = PageMemory::region(slot as u32, data);
            if owner == FREE_SLOT {
                free.push(memory);
                continue;
            }
            let (id, class) = (read_u32(self.header, at + 4), read_u32(self.header, at + 8));
            if failure.is_none() {
                if checksum(&memory) != read_u64(self.header, at + 16) {
                    failure = Some(ColdReason::PageChecksum { slot });
                } else if owner as usize >= layout.partitions || class > u32::from(u8::MAX) {
                    failure = Some(ColdReason::PageTable);
                }
            }
            match owned.get_mut(owner as usize) {
                Some(pages) => pages.push(HeldPage {
                    id,
                    class: class as u8,
                    memory,
                }),
                None => free.push(memory),
            }
        }
        let held = owned.iter().map(Vec::len).sum();
        let pool = Arc::new(PagePool::over_region(
            config.memory_limit,
            config.page_size,
            free,
            held,
        ));
        if let Some(reason) = failure {
            for memory in owned.into_iter().flatten() {
                pool.give_back(memory.memory);
            }
            return Err((reason, pool));
        }
        let hasher = KeyHasher::with_seeds(saved.seeds, layout.partitions);
        let mut partitions = Vec::with_capacity(layout.partitions);
        let mut items = 0;
        let mut owned = owned.into_iter();
        for id in 0..layout.partitions {
            let pages = owned.next().unwrap_or_default();
            let state = read_partition_state(self.header, id);
            let restored = Partition::restored(
                Arc::clone(config),
                Arc::clone(&pool),
                Arc::clone(clock),
                hasher.clone(),
                (id, layout.partitions),
                state,
                pages,
            );
            match restored {
                Ok((partition, count)) => {
                    items += count as u64;
                    partitions.push(partition);
                }
                Err(error) => {
                    drop(partitions);
                    for memory in owned.flatten() {
                        pool.give_back(memory.memory);
                    }
                    return Err((error.into(), pool));
                }
            }
        }
        Ok(Engine {
            pool,
            hasher,
            partitions,
            report: StartReport {
                items_recovered: items,
                cold: None,
            },
        })
    }
}

impl Engine {
    /// Stops this engine and gives its region back whole (its pages keep their bytes), so
    /// that it can be opened again in the same process, as a restart would.
    pub fn into_region(self, header: ImageHeader) -> Region {
        let Engine {
            pool, partitions, ..
        } = self;
        drop(partitions);
        Region {
            slots: pool_slots(pool, header.layout.slots),
            header: header.header,
        }
    }
}

/// The slots back out of a pool every page was given back to, by slot number.
fn pool_slots(pool: Arc<PagePool>, slots: usize) -> Vec<&'static mut [u8]> {
    let mut by_slot: Vec<Option<&'static mut [u8]>> = (0..slots).map(|_| None).collect();
    for memory in pool.drain_spare() {
        if let Some((slot, data)) = memory.into_region() {
            by_slot[slot as usize] = Some(data);
        }
    }
    by_slot.into_iter().flatten().collect()
}

/// Checks a header against the settings; the saved facts if a warm start is possible so far.
fn read_header(
    header: &[u8],
    layout: &Layout,
    config: &StorageConfig,
) -> Result<Saved, ColdReason> {
    if header.len() < AT_PARTITIONS || &header[..8] != MAGIC {
        return Err(ColdReason::NoImage);
    }
    let version = read_u32(header, AT_VERSION);
    if version != FORMAT_VERSION {
        return Err(ColdReason::Version { found: version });
    }
    if read_u32(header, AT_CLEAN) != CLEAN_MARK {
        return Err(ColdReason::NotClean);
    }
    let covered = read_u64(header, AT_COVERED) as usize;
    if AT_SETTINGS + covered > header.len()
        || checksum(&header[AT_SETTINGS..AT_SETTINGS + covered]) != read_u64(header, AT_CHECKSUM)
    {
        return Err(ColdReason::HeaderChecksum);
    }
    let wanted = settings_of(config, layout);
    for (field, name) in SETTINGS_NAMES.iter().enumerate() {
        let saved = read_u64(header, AT_SETTINGS + 8 * field);
        if saved != wanted[field] {
            return Err(ColdReason::Settings {
                setting: name,
                saved,
                now: wanted[field],
            });
        }
    }
    if covered != layout.covered() {
        return Err(ColdReason::PageTable);
    }
    let seeds = std::array::from_fn(|lane| read_u64(header, AT_SEEDS + 8 * lane));
    if KeyHasher::with_seeds(seeds, 1).hash(PROBE_KEY) != read_u64(header, AT_PROBE) {
        return Err(ColdReason::HashChanged);
    }
    Ok(Saved {
        epoch_unix: read_u64(header, AT_EPOCH) as i64,
        saved_now: read_u32(header, AT_SAVED_NOW),
        seeds,
    })
}

fn read_partition_state(header: &[u8], id: usize) -> PartitionState {
    let at = AT_PARTITIONS + id * PARTITION_ENTRY;
    PartitionState {
        next_cas: read_u64(header, at),
        flush_stamp: read_u32(header, at + 8),
        pending_flush: (read_u32(header, at + 20) != 0)
            .then(|| (read_u32(header, at + 12), read_u32(header, at + 16))),
    }
}

/// Why a header could not be written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SaveError {
    #[error("{given} partitions given, the memory was laid out for {expected}")]
    Partitions { given: usize, expected: usize },
    #[error("a page lives outside the memory region")]
    HeapPage,
}

/// The region's header block, kept by the daemon until shutdown.
#[derive(Debug)]
pub struct ImageHeader {
    header: &'static mut [u8],
    layout: Layout,
    config: StorageConfig,
}

impl ImageHeader {
    /// Writes what the next process needs to serve these partitions' items again, and then
    /// the clean-shutdown mark. Nothing may change the partitions afterwards (the caller holds
    /// their locks and stops serving); pages are not copied, only listed and checksummed.
    pub fn save(
        &mut self,
        clock: &Clock,
        hasher: &KeyHasher,
        partitions: &[&Partition],
    ) -> Result<(), SaveError> {
        let layout = self.layout;
        if partitions.len() != layout.partitions {
            return Err(SaveError::Partitions {
                given: partitions.len(),
                expected: layout.partitions,
            });
        }
        let header = &mut *self.header;
        header[AT_CLEAN..AT_CLEAN + 4].fill(0);
        header[..8].copy_from_slice(MAGIC);
        write_u32(header, AT_VERSION, FORMAT_VERSION);
        for (field, value) in settings_of(&self.config, &layout).into_iter().enumerate() {
            write_u64(header, AT_SETTINGS + 8 * field, value);
        }
        write_u64(header, AT_EPOCH, clock.epoch_unix() as u64);
        write_u32(header, AT_SAVED_NOW, clock.now());
        write_u32(header, AT_SAVED_NOW + 4, 0);
        for (lane, seed) in hasher.seeds().into_iter().enumerate() {
            write_u64(header, AT_SEEDS + 8 * lane, seed);
        }
        write_u64(
            header,
            AT_PROBE,
            KeyHasher::with_seeds(hasher.seeds(), 1).hash(PROBE_KEY),
        );
        for slot in 0..layout.slots {
            let at = layout.slot_entry(slot);
            header[at..at + SLOT_ENTRY].fill(0);
            write_u32(header, at, FREE_SLOT);
        }
        for (id, partition) in partitions.iter().enumerate() {
            let state = partition.restart_state();
            let at = AT_PARTITIONS + id * PARTITION_ENTRY;
            write_u64(header, at, state.next_cas);
            write_u32(header, at + 8, state.flush_stamp);
            let (from, stamp) = state.pending_flush.unwrap_or((0, 0));
            write_u32(header, at + 12, from);
            write_u32(header, at + 16, stamp);
            write_u32(header, at + 20, u32::from(state.pending_flush.is_some()));
            let pages = partition.region_pages().ok_or(SaveError::HeapPage)?;
            for (page, class, slot) in pages {
                let at = layout.slot_entry(slot as usize);
                write_u32(header, at, id as u32);
                write_u32(header, at + 4, page);
                write_u32(header, at + 8, u32::from(class));
                write_u64(header, at + 16, checksum(partition.page_bytes(page)));
            }
        }
        let covered = layout.covered();
        write_u64(header, AT_COVERED, covered as u64);
        let sum = checksum(&header[AT_SETTINGS..AT_SETTINGS + covered]);
        write_u64(header, AT_CHECKSUM, sum);
        write_u32(header, AT_CLEAN, CLEAN_MARK);
        Ok(())
    }
}

/// A 64-bit checksum of `bytes`, defined here (not by a hash library) so that it stays the
/// same across builds: four independent lanes of multiply-xorshift over 8-byte words, so it
/// runs at memory speed. It catches torn or overwritten memory; it is not cryptographic.
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut lanes = [K, K ^ 1, K ^ 2, K ^ 3];
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
            *lane = (*lane ^ word).wrapping_mul(K);
            *lane ^= *lane >> 29;
        }
    }
    let mut sum = bytes.len() as u64;
    for (at, &byte) in blocks.remainder().iter().enumerate() {
        sum ^= u64::from(byte) << (8 * (at % 8));
        sum = sum.rotate_left(7).wrapping_mul(K);
    }
    for lane in lanes {
        sum = (sum ^ lane).wrapping_mul(K);
        sum ^= sum >> 31;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item;
    use crate::{StoreMode, StoreRequest};

    const PARTITIONS: usize = 2;
    const UNIX: i64 = 1_700_000_000;

    fn settings(memory_mib: usize) -> StorageConfig {
        StorageConfig {
            memory_limit: memory_mib << 20,
            ..StorageConfig::default()
        }
        .for_partitions(PARTITIONS)
    }

    fn fresh_region(config: &StorageConfig) -> Region {
        let bytes = Box::leak(vec![0u8; region_len(config, PARTITIONS)].into_boxed_slice());
        Region::split(bytes, config, PARTITIONS).unwrap()
    }

    /// An item as read: value, flags, CAS, TTL.
    type Seen = (Vec<u8>, u32, u64, i64);

    struct Running {
        engine: Engine,
        header: ImageHeader,
        clock: Arc<Clock>,
    }

    fn start(region: Region, config: &StorageConfig, unix: i64) -> Running {
        let mut image = MemoryImage::reopen(region, config, PARTITIONS);
        let clock = Arc::new(image.clock_at(Some(unix)));
        let (engine, header) = image.start(Arc::new(config.clone()), Arc::clone(&clock));
        Running {
            engine,
            header,
            clock,
        }
    }

    impl Running {
        /// The key's hash and the partition it routes to.
        fn route(&mut self, key: &[u8]) -> (u64, &mut Partition) {
            let hash = self.engine.hasher.hash(key);
            let partition = &mut self.engine.partitions[self.engine.hasher.partition_of(hash)];
            (hash, partition)
        }

        fn set(&mut self, key: &[u8], value: &[u8], flags: u32, exptime: i64) {
            assert!(self.try_set(key, value, flags, exptime), "stored");
        }

        fn try_set(&mut self, key: &[u8], value: &[u8], flags: u32, exptime: i64) -> bool {
            let (hash, partition) = self.route(key);
            let request = StoreRequest::new(hash, key, value, flags, exptime, StoreMode::Set);
            partition.store(&request).is_ok()
        }

        fn delete(&mut self, key: &[u8]) {
            let (hash, partition) = self.route(key);
            partition.delete(&crate::DeleteRequest::new(hash, key));
        }

        /// Value, flags, CAS and TTL of a live item.
        fn get(&mut self, key: &[u8]) -> Option<Seen> {
            let (hash, partition) = self.route(key);
            let item = partition.peek(hash, key)?;
            Some((
                item.value().flatten().copied().collect(),
                item.flags(),
                item.cas(),
                item.ttl(),
            ))
        }

        fn items(&self) -> usize {
            self.engine.partitions.iter().map(Partition::len).sum()
        }

        /// A clean shutdown: the header is written, the region comes back.
        fn shut_down(mut self) -> Region {
            let partitions: Vec<&Partition> = self.engine.partitions.iter().collect();
            self.header
                .save(&self.clock, &self.engine.hasher, &partitions)
                .unwrap();
            self.engine.into_region(self.header)
        }

        /// A clean shutdown and a start `unix` seconds (wall clock) later, which must be warm.
        fn restart_warm(self, config: &StorageConfig, unix: i64) -> Running {
            let running = start(self.shut_down(), config, unix);
            assert!(
                running.engine.report.is_warm(),
                "{:?}",
                running.engine.report
            );
            running
        }

        /// A crash: the region as the process left it, no header written.
        fn crash(self) -> Region {
            self.engine.into_region(self.header)
        }
    }

    fn key(i: usize) -> Vec<u8> {
        format!("key:{i}").into_bytes()
    }

    /// Values of mixed sizes: most small, some over a chunk (chained), some large.
    fn value(i: usize) -> Vec<u8> {
        let len = match i % 10 {
            0 => 9_000 + i % 300,
            1..=3 => 300 + i % 700,
            _ => 10 + i % 90,
        };
        (0..len).map(|at| (i * 31 + at * 7) as u8).collect()
    }

    /// Fills `n` items: a third never expire, a third live 100 s, a sixth 10 s, a sixth were
    /// already expired when stored. Returns the items expected to live at least 30 s.
    fn fill(running: &mut Running, n: usize) -> Vec<(Vec<u8>, Seen)> {
        let mut kept = Vec::new();
        for i in 0..n {
            let exptime = match i % 6 {
                0 | 1 => 0,
                2 | 3 => 100,
                4 => 10,
                _ => -1,
            };
            running.set(
                &key(i),
                &value(i),
                (i as u32).wrapping_mul(2_654_435_761),
                exptime,
            );
            if exptime == 0 || exptime == 100 {
                let item = running.get(&key(i)).expect("just stored");
                kept.push((key(i), item));
            }
        }
        kept
    }

    #[test]
    fn a_clean_shutdown_brings_every_live_item_back_byte_for_byte() {
        let config = settings(4);
        let mut running = start(fresh_region(&config), &config, UNIX);
        assert_eq!(running.engine.report.cold, Some(ColdReason::NoImage));
        let kept = fill(&mut running, 1_200);
        assert!(running.items() > kept.len(), "the 10 s items live too");

        // Down for 30 s: the 10 s items expire meanwhile; the others lose 30 s of TTL.
        let mut running = running.restart_warm(&config, UNIX + 30);
        assert_eq!(running.engine.report.items_recovered, kept.len() as u64);
        assert_eq!(running.items(), kept.len());
        for (key, (value, flags, cas, ttl)) in &kept {
            let back = running.get(key).expect("recovered");
            let ttl = if *ttl < 0 { -1 } else { ttl - 30 };
            assert_eq!(back, (value.clone(), *flags, *cas, ttl), "{key:?}");
        }
        for i in (0..1_200).filter(|i| i % 6 >= 4) {
            assert_eq!(running.get(&key(i)), None, "expired while down or before");
        }

        // The engine goes on: new CAS uniques, stores that evict, a second restart.
        // (Each partition counts its own stripe of CAS uniques: compare within one.)
        let hasher = running.engine.hasher.clone();
        let partition_of = |key: &[u8]| hasher.partition_of(hasher.hash(key));
        let highest_cas = kept
            .iter()
            .filter(|(key, _)| partition_of(key) == partition_of(b"after"))
            .map(|(_, item)| item.2)
            .max()
            .unwrap();
        running.set(b"after", b"restart", 0, 0);
        assert!(running.get(b"after").unwrap().2 > highest_cas);
        for i in 0..3_000 {
            running.set(&key(100_000 + i), &value(i), 0, 0);
        }
        let count = running.items();
        let running = running.restart_warm(&config, UNIX + 40);
        assert_eq!(running.items(), count);
    }

    #[test]
    fn without_evictions_chains_in_another_bands_chunks_come_back() {
        // -M: chained values of one length fill the memory, every other one is deleted, and
        // values of another length (another chain band) are stored in the freed chunks, so a
        // chain's head lives in a class that is not its own band's. A restart must take
        // those items back as they are, not call them bad and start cold.
        let config = StorageConfig {
            evictions: false,
            ..settings(4)
        };
        let mut running = start(fresh_region(&config), &config, UNIX);
        // Free chunks in the ladder's largest class, which shares the chain classes' chunk
        // size: single-chunk values stored and deleted.
        let four = vec![b'f'; 4_000];
        for i in 0..64 {
            running.set(format!("f{i}").as_bytes(), &four, 0, 0);
        }
        for i in 0..64 {
            running.delete(format!("f{i}").as_bytes());
        }
        let ten = vec![b't'; 10_000];
        let mut stored = 0;
        while running.try_set(&key(stored), &ten, 0, 0) {
            stored += 1;
        }
        for odd in (1..stored).step_by(2) {
            running.delete(&key(odd));
        }
        let twenty = vec![b'w'; 20_000];
        let fitted: Vec<Vec<u8>> = (0..stored / 4)
            .map(|i| format!("w{i}").into_bytes())
            .filter(|key| running.try_set(key, &twenty, 0, 0))
            .collect();
        assert!(fitted.len() > 10, "{} values of 20 KB fitted", fitted.len());
        let count = running.items();

        let mut running = running.restart_warm(&config, UNIX + 10);
        assert_eq!(running.items(), count);
        for key in &fitted {
            assert_eq!(running.get(key).expect("recovered").0, twenty);
        }
    }

    #[test]
    fn every_eviction_policy_takes_the_items_back_and_evicts_afterwards() {
        for eviction in [
            crate::EvictionPolicy::S3Fifo,
            crate::EvictionPolicy::Clock,
            crate::EvictionPolicy::Lru,
        ] {
            let config = StorageConfig {
                eviction,
                ..settings(4)
            };
            let mut running = start(fresh_region(&config), &config, UNIX);
            let kept = fill(&mut running, 600);
            let mut running = running.restart_warm(&config, UNIX);
            assert_eq!(running.get(&kept[5].0), Some(kept[5].1.clone()));
            // Far more than fits: the restored items are in the policy's order and go too.
            for i in 0..20_000 {
                running.set(&key(200_000 + i), &value(i), 0, 0);
            }
            let evicted: u64 = running
                .engine
                .partitions
                .iter()
                .map(|p| p.stats().evictions)
                .sum();
            assert!(evicted > 0, "{eviction:?}");
            assert!(
                kept.iter().any(|(key, _)| running.get(key).is_none()),
                "{eviction:?}: restored items are evictable"
            );
        }
    }

    #[test]
    fn a_start_after_a_crash_is_cold_and_serves_nothing_old() {
        let config = settings(4);
        let mut running = start(fresh_region(&config), &config, UNIX);
        fill(&mut running, 300);
        // Warm once: the start clears the mark, so dying now leaves none.
        let mut running = running.restart_warm(&config, UNIX);
        running.set(b"during", b"the crash", 0, 0);
        let region = running.crash();
        let mut running = start(region, &config, UNIX);
        assert_eq!(running.engine.report.cold, Some(ColdReason::NotClean));
        assert_eq!(running.engine.report.items_recovered, 0);
        assert_eq!(running.items(), 0);
        assert_eq!(running.get(&key(0)), None);
        assert_eq!(running.get(b"during"), None);
        // The cold engine uses the whole region again.
        let kept = fill(&mut running, 300);
        assert_eq!(running.get(&kept[0].0), Some(kept[0].1.clone()));
    }

    #[test]
    fn settings_that_change_the_layout_make_the_start_cold() {
        let config = settings(4);
        let mut running = start(fresh_region(&config), &config, UNIX);
        fill(&mut running, 100);
        let region = running.shut_down();
        let other_chunks = StorageConfig {
            chunk_size_min: 64,
            ..config.clone()
        };
        let running = start(region, &other_chunks, UNIX);
        assert_eq!(
            running.engine.report.cold.as_ref().unwrap().code(),
            "settings"
        );
        assert_eq!(
            running.engine.report.cold.unwrap().to_string(),
            "minimum chunk size (-n) changed (48 -> 64)"
        );

        let mut running = start(fresh_region(&config), &config, UNIX);
        fill(&mut running, 100);
        let region = running.shut_down();
        let running = start(region, &settings(8), UNIX);
        assert!(matches!(
            running.engine.report.cold,
            Some(ColdReason::Settings {
                setting: "memory limit (-m)",
                ..
            })
        ));

        // Items stored with evictions on may lack the expiry field every item has under -M.
        let mut running = start(fresh_region(&config), &config, UNIX);
        fill(&mut running, 100);
        let region = running.shut_down();
        let no_evictions = StorageConfig {
            evictions: false,
            ..config.clone()
        };
        let running = start(region, &no_evictions, UNIX);
        assert_eq!(
            running.engine.report.cold.unwrap().to_string(),
            "evictions (-M) changed (1 -> 0)"
        );
    }

    #[test]
    fn an_image_of_another_format_version_starts_cold_and_says_so() {
        // Version 1 kept every chained item in the ladder's largest class; this build's chain
        // classes would misread it, so the version alone makes the start cold.
        let config = settings(4);
        let mut running = start(fresh_region(&config), &config, UNIX);
        fill(&mut running, 100);
        let mut region = running.shut_down();
        write_u32(region.header_mut(), AT_VERSION, FORMAT_VERSION - 1);
        let running = start(region, &config, UNIX);
        let cold = running.engine.report.cold.clone().unwrap();
        assert_eq!(
            cold,
            ColdReason::Version {
                found: FORMAT_VERSION - 1
            }
        );
        assert_eq!(cold.code(), "version");
        assert_eq!(running.items(), 0);
    }

    /// The first slot a partition holds, and the byte offset of its entry in the header.
    fn held_slot(region: &mut Region) -> (usize, usize) {
        let layout = Layout::new(&settings(4), PARTITIONS);
        (0..layout.slots)
            .map(|slot| (slot, layout.slot_entry(slot)))
            .find(|&(_, at)| read_u32(region.header_mut(), at) != FREE_SLOT)
            .unwrap()
    }

    #[test]
    fn corrupted_memory_makes_the_start_cold() {
        let config = settings(4);
        let filled = |config: &StorageConfig| {
            let mut running = start(fresh_region(config), config, UNIX);
            fill(&mut running, 500);
            running.shut_down()
        };

        let mut region = filled(&config);
        region.header_mut()[AT_SEEDS] ^= 1;
        let running = start(region, &config, UNIX);
        assert_eq!(running.engine.report.cold, Some(ColdReason::HeaderChecksum));

        let mut region = filled(&config);
        let (slot, _) = held_slot(&mut region);
        region.slot_mut(slot).unwrap()[100] ^= 0x40;
        let running = start(region, &config, UNIX);
        assert_eq!(
            running.engine.report.cold,
            Some(ColdReason::PageChecksum { slot })
        );

        // Memory whose checksums were rewritten to match but whose item lies about its key:
        // the partition's own checks refuse it.
        let mut region = filled(&config);
        let layout = Layout::new(&config, PARTITIONS);
        let (slot, at) = (0..layout.slots)
            .map(|slot| (slot, layout.slot_entry(slot)))
            .find(|&(slot, at)| {
                read_u32(region.header_mut(), at) != FREE_SLOT
                    && item::is_head(region.slot_mut(slot).unwrap())
            })
            .unwrap();
        let page = region.slot_mut(slot).unwrap();
        // The first chunk's item now claims a key longer than any.
        page[1] = 255;
        let sum = checksum(page);
        write_u64(region.header_mut(), at + 16, sum);
        let covered = read_u64(region.header_mut(), AT_COVERED) as usize;
        let sum = checksum(&region.header_mut()[AT_SETTINGS..AT_SETTINGS + covered]);
        write_u64(region.header_mut(), AT_CHECKSUM, sum);
        let mut running = start(region, &config, UNIX);
        assert_eq!(
            running.engine.report.cold.as_ref().unwrap().code(),
            "bad_item"
        );
        assert_eq!(running.items(), 0);
        running.set(b"fresh", b"start", 0, 0);
        assert_eq!(running.get(b"fresh").unwrap().0, b"start");
    }

    #[test]
    fn the_checksum_sees_every_byte_and_the_length() {
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let sum = checksum(&bytes);
        for at in [0, 31, 32, 500, 999] {
            let mut changed = bytes.clone();
            changed[at] ^= 1;
            assert_ne!(checksum(&changed), sum, "byte {at}");
        }
        assert_ne!(checksum(&bytes[..999]), sum);
        assert_ne!(checksum(&[0; 64]), checksum(&[0; 32]));
    }
}

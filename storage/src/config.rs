//! The engine's settings: memory limit, page and chunk sizes, item size limit, eviction and CAS.
//!
//! Owns: the values and their validation, and the slab class sizes they imply. Must not touch:
//! command-line parsing (the daemon maps memcached's flags onto this struct).

use crate::error::ConfigError;

/// Settings of the engine, with memcached's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// Bytes of slab pages all partitions together may hold (`-m`, in MiB there).
    pub memory_limit: usize,
    /// Bytes per slab page (1 MiB).
    pub page_size: usize,
    /// Smallest chunk, header included (`-n`, default 48).
    pub chunk_size_min: usize,
    /// Each slab class's chunk is this much larger than the previous one (`-f`, default
    /// [`DEFAULT_GROWTH_FACTOR`]).
    pub growth_factor: f64,
    /// Largest chunk of a slab class; larger items are chained over several chunks
    /// (`-o slab_chunk_max`, default half a page).
    pub slab_chunk_max: usize,
    /// Largest item, header and key included (`-I`, default 1 MiB, at most 1 GiB).
    pub item_size_max: usize,
    /// Evict cold items when memory runs out; `false` (`-M`) makes such stores fail instead.
    pub evictions: bool,
    /// Keep a CAS unique per item; `false` (`-C`) saves its bytes and reports CAS 0.
    pub cas: bool,
    /// Index slots each partition starts with (`-o hashpower`, spread over partitions).
    pub index_capacity: usize,
    /// Which item a slab class gives up when it needs a chunk.
    pub eviction: EvictionPolicy,
}

/// Eviction policies, per slab class. S3-FIFO is the engine's; CLOCK and LRU are there to be
/// compared with it in one build (`examples/policies.rs`; figures in storage/README.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EvictionPolicy {
    /// A small FIFO of new keys in front of a CLOCK with 2-bit frequencies: a key read while
    /// on probation joins the CLOCK, a key never read leaves after a short stay.
    #[default]
    S3Fifo,
    /// One CLOCK with 2-bit frequencies over every item, new keys at frequency 0.
    Clock,
    /// Least recently used, an exact list per class (memcached before its segmented LRU).
    Lru,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            memory_limit: 64 << 20,
            page_size: 1 << 20,
            chunk_size_min: 48,
            growth_factor: DEFAULT_GROWTH_FACTOR,
            slab_chunk_max: 1 << 19,
            item_size_max: 1 << 20,
            evictions: true,
            cas: true,
            index_capacity: 1 << 16,
            eviction: EvictionPolicy::S3Fifo,
        }
    }
}

/// Memory above this cannot be addressed by the 32-bit item handles of the index.
const MEMORY_LIMIT_MAX: usize = 128 << 30;

impl StorageConfig {
    /// Checks that the settings can work together; the message says which one is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.growth_factor.is_nan() || self.growth_factor <= 1.0 {
            return Err(ConfigError::GrowthFactor(self.growth_factor));
        }
        if self.chunk_size_min < 16 {
            return Err(ConfigError::ChunkSizeMin {
                min: 16,
                got: self.chunk_size_min,
            });
        }
        if !(1024..=1 << 30).contains(&self.item_size_max) {
            return Err(ConfigError::ItemSizeMax(self.item_size_max));
        }
        if self.item_size_max > self.memory_limit / 2 {
            return Err(ConfigError::ItemSizeOverHalfMemory {
                item: self.item_size_max,
                memory: self.memory_limit,
            });
        }
        if self.slab_chunk_max < self.chunk_size_min || self.slab_chunk_max > self.page_size {
            return Err(ConfigError::SlabChunkMax {
                chunk: self.slab_chunk_max,
                page: self.page_size,
            });
        }
        if self.memory_limit > MEMORY_LIMIT_MAX {
            return Err(ConfigError::MemoryLimitTooLarge(self.memory_limit));
        }
        Ok(())
    }

    /// These settings for an engine of `partitions` partitions: the page, the unit in which
    /// memory moves between partitions and slab classes, becomes the largest power of two
    /// from [`PAGE_SIZE_MIN`] to 1 MiB that gives each partition about
    /// [`PAGES_PER_PARTITION`] pages, and the largest chunk is capped at
    /// [`LARGEST_CHUNK_CAP`] (or a quarter page, if pages are smaller than 16 KiB; or more for
    /// a `-I` above 1 MiB, see [`CHAIN_CHUNKS_MAX`]), larger items being chained.
    ///
    /// Every partition holds whole pages of each slab class it stores, so with 1 MiB pages
    /// `partitions x classes` pages had to exist before memory could follow the items: 64 MiB
    /// shared by 8 partitions held 0.4% of its size in items for values of 1..5000 bytes.
    /// Fewer pages per partition than this strands memory in half-used pages of rare classes;
    /// smaller pages than needed cost more page moves. Measured with `examples/capacity.rs`
    /// (storage/README.md has the table). memcached's own page size (`slab_page_size`, which
    /// `-I` and `slab_chunk_max` are checked against) is unchanged: this is how the engine
    /// cuts the memory, not a setting a client sees.
    ///
    /// The largest chunk is capped because an item rounded up to a class wastes a share of
    /// its whole size, and a chained one only of its last chunk: with the cap at an eighth of
    /// a page (32 KiB chunks in the 256 KiB pages of `-m 64 -t 1`), values of 1..5000 bytes
    /// filled 84% of `-m` with items and of 1..100,000 bytes 88% (90% at `-m 1024`, 128 KiB
    /// chunks); with 4 KiB chunks 87-89% and 91-97%, and as many items or more. Below 4 KiB
    /// chunks hold fewer items (values of 2 to 4 KiB chained: 3-6% fewer items of 1..5000
    /// bytes with 16 KiB pages). A chain costs 10 bytes a chunk and a copy per chunk on reads.
    pub fn for_partitions(mut self, partitions: usize) -> Self {
        let per_partition = self.memory_limit / (partitions.max(1) * PAGES_PER_PARTITION);
        let page = if per_partition < PAGE_SIZE_MIN {
            PAGE_SIZE_MIN
        } else {
            1 << (usize::BITS - 1 - per_partition.leading_zeros())
        };
        self.page_size = page.min(self.page_size);
        // A smaller `slab_chunk_max` asked for with `-o` stays as asked. A large `-I` raises
        // the cap (up to an eighth of a page) so that no item is a chain of much more than
        // CHAIN_CHUNKS_MAX chunks: moving a page walks each chain it holds a chunk of, and
        // the hands look a bounded way for an item's head.
        let for_largest_item = (self.item_size_max / CHAIN_CHUNKS_MAX).min(self.page_size / 8);
        let cap = LARGEST_CHUNK_CAP
            .min(self.page_size / 4)
            .max(for_largest_item);
        self.slab_chunk_max = self.slab_chunk_max.min(cap).max(LARGEST_CHUNK_MIN);
        self
    }

    /// Chunk sizes of the slab classes, smallest first (class id = position + 1).
    ///
    /// Class `i` is `chunk_size_min * growth_factor^i` rounded up to a whole byte, computed
    /// from the unrounded power rather than from the previous rounded size, so that rounding
    /// never compounds (48, 56, 64, 74, 84, 97, 112, 128, 147, ... with the defaults).
    /// memcached rounds to 8 bytes to align its item structs; nothing here reads a chunk's
    /// fields aligned, and W4's items of 147 bytes or less (14-byte header, 33-byte key,
    /// 100-byte value) fill a 147-byte class where a 152-byte one wasted 3%. The ladder stops at a sixteenth of a page
    /// ([`TOP_CLASS_DIVISOR`]); above it the classes are the page cut in 16, 15, ... parts, so
    /// that items of one large size leave nothing at a page's end (with 256 KiB pages and
    /// chunks up to a page, a 20 KB item took a 24 KiB chunk, ten to a page; a twelfth of the
    /// page instead). The ladder stops below the largest chunk, which is `slab_chunk_max`
    /// itself (but at least [`LARGEST_CHUNK_MIN`] so that a maximal key and header always fit,
    /// and at most a page). At most [`MAX_SLAB_CLASSES`] classes, so that with the chain
    /// classes a class id fits a byte.
    pub fn slab_class_sizes(&self) -> Vec<usize> {
        let largest = self
            .slab_chunk_max
            .max(LARGEST_CHUNK_MIN)
            .min(self.page_size.max(1));
        let factor = if self.growth_factor.is_finite() && self.growth_factor > 1.0 {
            self.growth_factor
        } else {
            DEFAULT_GROWTH_FACTOR
        };
        let page = self.page_size.max(1);
        let divided_from = page / TOP_CLASS_DIVISOR;
        let mut sizes: Vec<usize> = Vec::new();
        let mut power = self.chunk_size_min.max(16) as f64;
        while sizes.len() < MAX_SLAB_CLASSES - 1 {
            let size = power.ceil() as usize;
            if size >= largest || size > divided_from {
                break;
            }
            if sizes
                .last()
                .is_none_or(|&last| size >= last + CLASS_STEP_MIN)
            {
                sizes.push(size);
            }
            power *= factor;
        }
        for parts in (2..=TOP_CLASS_DIVISOR).rev() {
            let size = page / parts;
            if sizes.len() >= MAX_SLAB_CLASSES - 1 || size >= largest {
                break;
            }
            if sizes.last().is_none_or(|&last| size > last) {
                sizes.push(size);
            }
        }
        sizes.push(largest);
        sizes
    }
}

/// Least difference between two classes of the geometric ladder: with sizes rounded to whole
/// bytes, a factor just above 1 (`-f 1.01`) would spend the [`MAX_SLAB_CLASSES`] on 1-byte
/// steps and end the ladder near 400 bytes; 8 is what memcached's 8-byte rounding gives.
pub const CLASS_STEP_MIN: usize = 8;

/// Above a page divided by this, the ladder's classes are the page divided by a whole number.
pub const TOP_CLASS_DIVISOR: usize = 16;

/// Smallest page [`StorageConfig::for_partitions`] chooses.
pub const PAGE_SIZE_MIN: usize = 16 << 10;

/// Pages each partition should have for memory to follow its items across slab classes.
pub const PAGES_PER_PARTITION: usize = 256;

/// `-f`'s default: finer than memcached's 1.25, since pages move between classes here and a
/// class costs a page only while it holds items. An item wastes what its chunk has beyond it,
/// up to the factor less one: with 4 KiB chunks (see [`StorageConfig::for_partitions`]),
/// 1.15 filled 88-93% of `-m 64` with items at `-t 1`, `-t 2` and `-m 1024` for every mixed
/// fill of `examples/capacity.rs`, against 84-90% at 1.25, and 1-5% more items (100 B values
/// +19%: a 128-byte chunk fits them). At `-t 32` of `-m 64`, 2 MiB partitions of 16 KiB
/// pages, more classes of few small items keep a mostly empty page each: 1..5000 bytes held
/// 3% fewer items there, and as many once such classes share pages (`borrow_chunk`).
pub const DEFAULT_GROWTH_FACTOR: f64 = 1.15;

/// Most classes of the slab ladder (a partition adds the chain classes after them; the
/// total still fits a byte).
pub const MAX_SLAB_CLASSES: usize = 200;

/// The largest chunk is at most this (or a quarter page, if that is smaller), unless `-I`
/// needs larger chunks (see [`CHAIN_CHUNKS_MAX`]).
pub const LARGEST_CHUNK_CAP: usize = 4096;

/// The largest chunk is raised for a large `-I` so that the largest item is a chain of about
/// this many chunks (256 chunks of 4 KiB for memcached's default 1 MiB).
pub const CHAIN_CHUNKS_MAX: usize = 256;

/// Smallest size of the largest chunk: a chained item's head must hold its header and a
/// 250-byte key.
pub const LARGEST_CHUNK_MIN: usize = 512;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ladder_rounds_each_power_not_the_previous_size() {
        let sizes = StorageConfig::default().slab_class_sizes();
        // 48 * 1.15^i rounded up: 48, 55.2, 63.5, 73.002, 84.0, 96.5, 111.03, 127.7, 146.8.
        assert_eq!(&sizes[..9], &[48, 56, 64, 74, 84, 97, 112, 128, 147]);
        assert_eq!(*sizes.last().unwrap(), 1 << 19);
        assert!(sizes.windows(2).all(|pair| pair[0] < pair[1]));
        let memcached = StorageConfig {
            growth_factor: 1.25,
            ..StorageConfig::default()
        };
        // memcached's factor (rounded to 8 bytes this ladder was 48, 64, 80, 96, 120, 152, ...).
        assert_eq!(
            &memcached.slab_class_sizes()[..8],
            &[48, 60, 75, 94, 118, 147, 184, 229]
        );
    }

    #[test]
    fn a_factor_just_above_one_still_climbs_the_ladder() {
        for (factor, reaches) in [(1.01, 2_000), (1.015, 4_000)] {
            let sizes = StorageConfig {
                growth_factor: factor,
                ..StorageConfig::default()
            }
            .slab_class_sizes();
            let geometric: Vec<usize> = sizes
                .iter()
                .copied()
                .take_while(|&size| size < (1 << 20) / TOP_CLASS_DIVISOR)
                .collect();
            assert!(
                geometric
                    .windows(2)
                    .all(|pair| pair[1] >= pair[0] + CLASS_STEP_MIN),
                "-f {factor}: {geometric:?}"
            );
            let top = geometric.last().copied().unwrap_or_default();
            assert!(top >= reaches, "-f {factor} ends at {top}");
        }
    }

    #[test]
    fn the_top_of_the_ladder_cuts_pages_evenly() {
        let config = StorageConfig {
            memory_limit: 64 << 20,
            ..StorageConfig::default()
        }
        .for_partitions(8);
        let page = config.page_size;
        assert_eq!(page, 32 << 10);
        let sizes = config.slab_class_sizes();
        let top: Vec<usize> = sizes
            .iter()
            .copied()
            .filter(|&size| size > page / TOP_CLASS_DIVISOR)
            .collect();
        // Fifteen to eight parts of the page, the last being the largest chunk.
        assert!(top.contains(&(page / 12)));
        assert_eq!(top.len(), 8);
        assert_eq!(*top.last().unwrap(), LARGEST_CHUNK_CAP);
        for size in top {
            let parts = page / size;
            assert!(page - parts * size < parts, "{size} wastes the page's end");
        }
        // Below, the geometric ladder is unchanged.
        assert_eq!(&sizes[..9], &[48, 56, 64, 74, 84, 97, 112, 128, 147]);
        assert!(sizes.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(sizes.len() < MAX_SLAB_CLASSES);
    }

    #[test]
    fn pages_shrink_with_partitions_so_each_has_enough() {
        let config = |mib: usize, partitions| {
            StorageConfig {
                memory_limit: mib << 20,
                ..StorageConfig::default()
            }
            .for_partitions(partitions)
        };
        assert_eq!(config(1024, 2).page_size, 1 << 20);
        assert_eq!(config(64, 2).page_size, 128 << 10);
        assert_eq!(config(64, 8).page_size, 32 << 10);
        assert_eq!(config(64, 32).page_size, PAGE_SIZE_MIN);
        assert_eq!(config(64, 32).slab_chunk_max, PAGE_SIZE_MIN / 4);
        assert_eq!(config(1024, 2).slab_chunk_max, LARGEST_CHUNK_CAP);
        assert_eq!(config(64, 8).slab_chunk_max, 4 << 10);
        assert_eq!(config(64, 16).slab_chunk_max, 4 << 10);
        let asked_small = StorageConfig {
            memory_limit: 64 << 20,
            slab_chunk_max: 2048,
            ..StorageConfig::default()
        }
        .for_partitions(8);
        assert_eq!(asked_small.slab_chunk_max, 2048);
        let with_items = |mib: usize, item_size_max: usize, partitions| {
            StorageConfig {
                memory_limit: mib << 20,
                item_size_max,
                ..StorageConfig::default()
            }
            .for_partitions(partitions)
        };
        // -I 128m: chunks of 128 KiB (an eighth of a 1 MiB page), chains of 1,024 of them.
        let large_items = with_items(4096, 128 << 20, 4);
        assert_eq!(large_items.page_size, 1 << 20);
        assert_eq!(large_items.slab_chunk_max, 128 << 10);
        // -I 2m: 8 KiB chunks, chains of 256.
        assert_eq!(with_items(1024, 2 << 20, 2).slab_chunk_max, 8 << 10);
        for (mib, partitions) in [(64, 1), (64, 3), (64, 256), (8, 16), (100_000, 7)] {
            let c = config(mib, partitions);
            assert!(c.page_size.is_power_of_two(), "{mib} MiB, {partitions}");
            assert!((PAGE_SIZE_MIN..=1 << 20).contains(&c.page_size));
            assert!(c.validate().is_ok(), "{mib} MiB, {partitions}");
        }
    }

    #[test]
    fn tiny_factor_is_capped() {
        let config = StorageConfig {
            growth_factor: 1.0001,
            ..StorageConfig::default()
        };
        let sizes = config.slab_class_sizes();
        assert!(sizes.len() <= MAX_SLAB_CLASSES);
        assert_eq!(*sizes.last().unwrap(), 1 << 19);
    }
}

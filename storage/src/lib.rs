//! ferrocache-storage: the cache engine that `ferrocached` runs on.
//!
//! Owns: items (key, value, client flags, expiry, CAS, last access) packed inline in slab chunks;
//! the slab allocator (pages of 16 KiB to 1 MiB, sized to the partition count, cut into size
//! classes and chain classes, moved between classes by evictions per byte); the one page pool
//! capped by the memory
//! limit and shared by every partition; per-partition hash indexes; S3-FIFO eviction (CLOCK and
//! LRU selectable, to compare them); expiry and `flush_all`; the counters behind memcached's
//! `stats`, `stats items` and `stats slabs`.
//!
//! Must not touch: sockets, threads, wall-clock sleeps, the wire protocol. The daemon drives it:
//! it ticks the [`Clock`], wraps each [`Partition`] in a `parking_lot::Mutex`, routes a key to its
//! partition with [`KeyHasher`], and calls [`Partition::maintain`] in idle slices.
//!
//! # Contract, in short
//! - Every operation takes the key's 64-bit hash from [`KeyHasher::hash`] (computed once by the
//!   caller, used both to pick the partition and inside its index) and the key bytes.
//! - Exptimes are passed as the client sent them (`i64`): 0 never expires, 1..=2,592,000 is
//!   relative seconds, larger is an absolute Unix time, negative is already expired.
//! - Reads return an [`ItemRef`] that borrows the partition: the caller copies what it needs into
//!   its reply buffer while it holds the partition lock, then drops both. A large (chained) value
//!   may instead be pinned ([`ItemRef::pin_value`]): its continuation chunks are then read after
//!   the lock is released, and stay as they are until the [`PinnedValue`] is dropped.
//!
//! `unsafe` is denied except in `page.rs`, which holds page memory as a raw pointer so that
//! pinned chunks can be read outside the lock while the owner writes other chunks of the page.

#![deny(unsafe_code)]

mod bytes;
mod clock;
mod config;
mod error;
mod hasher;
mod item;
mod page;
mod partition;
mod pin;
mod pool;
mod restart;
mod slab;
mod stats;
mod table;

pub use clock::{Clock, MAX_RELATIVE_EXPTIME};
pub use config::{
    CHAIN_CHUNKS_MAX, DEFAULT_GROWTH_FACTOR, EvictionPolicy, LARGEST_CHUNK_CAP, LARGEST_CHUNK_MIN,
    MAX_SLAB_CLASSES, PAGE_SIZE_MIN, PAGES_PER_PARTITION, StorageConfig, TOP_CLASS_DIVISOR,
};
pub use error::{ConfigError, StoreError};
pub use hasher::KeyHasher;
pub use partition::{
    ArithMode, ArithOutcome, ArithRequest, ClassSet, DeleteOutcome, DeleteRequest, ItemRef,
    MetaGetOptions, MetaGetOutcome, Partition, RestoreError, StoreMode, StoreOutcome, StoreRequest,
    ValueChunks, WalkCursor,
};
pub use pin::PinnedValue;
pub use pool::PagePool;
pub use restart::{
    ColdReason, Engine, ImageHeader, MemoryImage, Region, RegionTooSmall, SaveError, StartReport,
    region_len,
};
pub use slab::{CHAIN_CLASSES, chain_band_chunks};
pub use stats::{ClassStats, PartitionStats};

/// Largest key, in bytes, that the engine stores (memcached's `KEY_MAX_LENGTH`).
pub const KEY_MAX_LEN: usize = 250;

//! Errors of the engine: configuration that cannot work, and stores that cannot be done.
//!
//! Owns: the error enums and their messages. Must not touch: protocol reply text (the daemon maps
//! [`StoreError`] to memcached's `SERVER_ERROR ...` lines).

use thiserror::Error;

/// A [`crate::StorageConfig`] that cannot work.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConfigError {
    #[error("chunk growth factor must be greater than 1 (got {0})")]
    GrowthFactor(f64),
    #[error("minimum chunk size must be at least {min} bytes (got {got})")]
    ChunkSizeMin { min: usize, got: usize },
    #[error("item size limit must be between 1024 bytes and 1 GiB (got {0})")]
    ItemSizeMax(usize),
    #[error("item size limit ({item}) cannot be higher than 1/2 of the memory limit ({memory})")]
    ItemSizeOverHalfMemory { item: usize, memory: usize },
    #[error(
        "slab_chunk_max ({chunk}) must be between the minimum chunk size and the page size ({page})"
    )]
    SlabChunkMax { chunk: usize, page: usize },
    #[error("memory limit of {0} bytes is too large for the item index (at most 128 GiB)")]
    MemoryLimitTooLarge(usize),
    #[error("there must be at least one partition")]
    NoPartitions,
}

/// Why a store did not happen. `NOT_STORED`, `EXISTS` and `NOT_FOUND` are outcomes, not errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum StoreError {
    /// The item (header, key and value) exceeds the item size limit (`-I`).
    #[error("object too large for cache")]
    TooLarge,
    /// No memory could be found: evictions are disabled (`-M`) or nothing could be evicted.
    #[error("out of memory storing object")]
    OutOfMemory,
}

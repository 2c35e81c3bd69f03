//! The cache as the daemon sees it: the storage partitions (one per worker thread,
//! `cli::PARTITIONS_PER_THREAD`), each behind its own `parking_lot::Mutex`, and the
//! key-to-partition routing.
//!
//! Owns: building the partitions over one shared page pool and clock (or taking them back from
//! a restartable memory region), locating a key's partition, and operations that span every
//! partition (flush, sums of counters, saving for a restart). Must not touch: item semantics
//! (the storage crate's) or sockets.

use crate::restart::{MemorySource, StartInfo};
use ferrocache_storage::{
    ClassStats, Clock, Engine, ImageHeader, KeyHasher, MemoryImage, PagePool, Partition,
    PartitionStats, SaveError, StorageConfig,
};
use parking_lot::{Mutex, MutexGuard};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Keeps each partition's lock on its own cache lines, so threads taking different partitions
/// do not slow each other.
#[derive(Debug)]
#[repr(align(128))]
struct Padded<T>(T);

#[derive(Debug)]
pub struct Cache {
    pub clock: Arc<Clock>,
    pub pool: Arc<PagePool>,
    pub config: Arc<StorageConfig>,
    hasher: KeyHasher,
    partitions: Box<[Padded<Mutex<Partition>>]>,
    /// How the memory was found: warm, cold and why.
    pub start: StartInfo,
    /// The region's header, written at a clean shutdown; `None` on the heap.
    restart: Option<Mutex<ImageHeader>>,
}

impl Cache {
    /// `partitions` partitions over one pool of `config.memory_limit` bytes.
    pub fn new(config: StorageConfig, partitions: usize, clock: Arc<Clock>) -> Self {
        let config = Arc::new(config.for_partitions(partitions));
        let pool = Arc::new(PagePool::new(config.memory_limit, config.page_size));
        let hasher = KeyHasher::new(partitions);
        let count = partitions;
        let partitions = (0..count)
            .map(|id| {
                // The partitions' indexes use the routing hash, so a key is hashed once per
                // request, not once to route and again to look up. Each hands out CAS uniques
                // from its own stripe, so they are unique across the server.
                Padded(Mutex::new(
                    Partition::with_key_hasher(
                        Arc::clone(&config),
                        Arc::clone(&pool),
                        Arc::clone(&clock),
                        hasher.clone(),
                    )
                    .with_cas_stripe(id, count),
                ))
            })
            .collect();
        Cache {
            clock,
            pool,
            config,
            hasher,
            partitions,
            start: StartInfo {
                source: MemorySource::Heap,
                report: None,
            },
            restart: None,
        }
    }

    /// `partitions` partitions in a restartable memory region: its saved items when the image
    /// allows a warm start, else empty. `clock` must come from the image
    /// ([`MemoryImage::clock`]).
    pub fn over_image(
        config: StorageConfig,
        partitions: usize,
        clock: Arc<Clock>,
        image: MemoryImage,
        source: MemorySource,
    ) -> Self {
        let config = Arc::new(config.for_partitions(partitions));
        let (engine, header) = image.start(Arc::clone(&config), Arc::clone(&clock));
        let Engine {
            pool,
            hasher,
            partitions,
            report,
        } = engine;
        Cache {
            clock,
            pool,
            config,
            hasher,
            partitions: partitions
                .into_iter()
                .map(|partition| Padded(Mutex::new(partition)))
                .collect(),
            start: StartInfo {
                source,
                report: Some(report),
            },
            restart: Some(Mutex::new(header)),
        }
    }

    /// At a clean shutdown, once nothing serves any more: writes what the next process needs
    /// to serve these items again. Returns the items saved; `None` when the memory is the
    /// heap's. Every partition stays locked while the header is written.
    pub fn save_for_restart(&self) -> Option<Result<usize, SaveError>> {
        let mut header = self.restart.as_ref()?.lock();
        let guards: Vec<_> = self.partitions.iter().map(|p| p.0.lock()).collect();
        let partitions: Vec<&Partition> = guards.iter().map(|guard| &**guard).collect();
        let items = partitions.iter().map(|p| p.len()).sum();
        Some(
            header
                .save(&self.clock, &self.hasher, &partitions)
                .map(|()| items),
        )
    }

    /// The key's hash and its partition, locked.
    #[inline]
    pub fn lock_key(&self, key: &[u8]) -> (u64, MutexGuard<'_, Partition>) {
        let hash = self.hasher.hash(key);
        let index = self.hasher.partition_of(hash);
        (hash, self.partitions[index].0.lock())
    }

    /// Partition `index`, for the worker that runs its maintenance.
    pub fn partition(&self, index: usize) -> &Mutex<Partition> {
        &self.partitions[index].0
    }

    /// `flush_all`: every partition.
    pub fn flush_all(&self, exptime: i64) {
        for partition in self.partitions.iter() {
            partition.0.lock().flush_all(exptime);
        }
    }

    /// Item counters summed over partitions.
    pub fn stats(&self) -> PartitionStats {
        let mut total = PartitionStats::default();
        for partition in self.partitions.iter() {
            total.add(&partition.0.lock().stats());
        }
        total
    }

    /// Per-class counters summed over partitions, by class id.
    pub fn class_stats(&self) -> BTreeMap<u8, ClassStats> {
        let mut classes: BTreeMap<u8, ClassStats> = BTreeMap::new();
        for partition in self.partitions.iter() {
            for (id, stats) in partition.0.lock().class_stats() {
                classes.entry(id).or_default().merge(&stats);
            }
        }
        classes
    }

    /// How many partitions there are (walks visit them by index).
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// `stats reset` of item counters.
    pub fn reset_stats(&self) {
        for partition in self.partitions.iter() {
            partition.0.lock().reset_stats();
        }
    }
}

//! Helpers shared by the integration tests: a partition (or several) on a hand-set clock.

#![allow(dead_code)]

use ferrocache_storage::{
    Clock, KeyHasher, PagePool, Partition, StorageConfig, StoreError, StoreMode, StoreOutcome,
    StoreRequest,
};
use std::sync::Arc;

/// Unix time the test clocks start at.
pub const START_UNIX: i64 = 1_700_000_000;

pub struct Harness {
    pub config: Arc<StorageConfig>,
    pub pool: Arc<PagePool>,
    pub clock: Arc<Clock>,
    pub hasher: KeyHasher,
    pub partitions: Vec<Partition>,
}

impl Harness {
    pub fn new(config: StorageConfig, partitions: usize) -> Self {
        config.validate().expect("valid test config");
        let config = Arc::new(config);
        let pool = Arc::new(PagePool::new(config.memory_limit, config.page_size));
        let clock = Arc::new(Clock::starting_at_unix(START_UNIX));
        let hasher = KeyHasher::with_seed(42, partitions);
        // Even partitions hash keys themselves, odd ones use the router's hash: both index
        // modes run under every test.
        let partitions = (0..partitions)
            .map(|at| {
                if at % 2 == 0 {
                    Partition::new(config.clone(), pool.clone(), clock.clone())
                } else {
                    Partition::with_key_hasher(
                        config.clone(),
                        pool.clone(),
                        clock.clone(),
                        hasher.clone(),
                    )
                }
            })
            .collect();
        Harness {
            config,
            pool,
            clock,
            hasher,
            partitions,
        }
    }

    pub fn one() -> Self {
        Self::new(small_config(), 1)
    }

    /// The partition owning `key`, and the key's hash.
    pub fn route(&mut self, key: &[u8]) -> (&mut Partition, u64) {
        let hash = self.hasher.hash(key);
        let at = self.hasher.partition_of(hash);
        (&mut self.partitions[at], hash)
    }

    pub fn store(
        &mut self,
        mode: StoreMode,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: i64,
    ) -> Result<StoreOutcome, StoreError> {
        let (partition, hash) = self.route(key);
        partition.store(&StoreRequest::new(hash, key, value, flags, exptime, mode))
    }

    pub fn set(&mut self, key: &[u8], value: &[u8]) -> u64 {
        match self.store(StoreMode::Set, key, value, 0, 0) {
            Ok(StoreOutcome::Stored { cas }) => cas,
            other => panic!("set failed: {other:?}"),
        }
    }

    /// The value (concatenated) and flags of a `get`.
    pub fn get(&mut self, key: &[u8]) -> Option<(Vec<u8>, u32)> {
        let (partition, hash) = self.route(key);
        partition
            .get(hash, key)
            .map(|item| (item.value().flatten().copied().collect(), item.flags()))
    }

    pub fn value(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.get(key).map(|(value, _)| value)
    }

    pub fn maintain(&mut self, budget: usize) {
        for partition in &mut self.partitions {
            partition.maintain(budget);
        }
    }

    pub fn pages_held(&self) -> usize {
        self.partitions.iter().map(Partition::pages).sum()
    }
}

/// 8 MiB, 1 MiB pages, otherwise memcached's defaults.
pub fn small_config() -> StorageConfig {
    StorageConfig {
        memory_limit: 8 << 20,
        ..StorageConfig::default()
    }
}

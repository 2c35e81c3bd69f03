//! Mixed-size capacity in process: keys written once with values of mixed sizes into 64 MiB
//! shared by 1 to 32 partitions, as the daemon cuts it (`StorageConfig::for_partitions`).
//! Memory must follow the items whatever the partition count: with a page per partition and
//! slab class needed before memory was used, 8 partitions held 2,164 items (0.4% of the limit
//! in payload) where 1 held 28,990. `examples/capacity.rs` prints the same figures.

use ferrocache_storage::{
    Clock, KeyHasher, PagePool, Partition, StorageConfig, StoreMode, StoreRequest,
};
use std::sync::Arc;

struct Fill {
    items: u64,
    payload_share: f64,
    newest_kept_share: f64,
}

/// Writes three times the limit in values of `lo..=hi` bytes, routed by key hash with a
/// maintenance slice every 256 stores, as the daemon's loops run them.
fn fill(partition_count: usize, lo: usize, hi: usize) -> Fill {
    let config = Arc::new(
        StorageConfig {
            memory_limit: 64 << 20,
            ..StorageConfig::default()
        }
        .for_partitions(partition_count),
    );
    let pool = Arc::new(PagePool::new(config.memory_limit, config.page_size));
    let clock = Arc::new(Clock::new());
    let hasher = KeyHasher::with_seed(7, partition_count);
    let mut partitions: Vec<Partition> = (0..partition_count)
        .map(|_| Partition::new(config.clone(), pool.clone(), clock.clone()))
        .collect();
    let value = vec![b'v'; hi];
    let mut random = 0x9e37_79b9_7f4a_7c15_u64;
    let (mut written, mut keys) = (0usize, 0u64);
    while written < 3 * config.memory_limit {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let size = lo + (random % (hi - lo + 1) as u64) as usize;
        let key = format!("k:{keys}");
        let hash = hasher.hash(key.as_bytes());
        let partition = &mut partitions[hasher.partition_of(hash)];
        let request = StoreRequest::new(hash, key.as_bytes(), &value[..size], 0, 0, StoreMode::Set);
        partition
            .store(&request)
            .expect("a set with evictions on is stored");
        keys += 1;
        written += size;
        if keys % 256 == 0 {
            partition.maintain(64);
        }
    }
    let newest = keys / 20;
    let kept = (keys - newest..keys)
        .filter(|n| {
            let key = format!("k:{n}");
            let hash = hasher.hash(key.as_bytes());
            partitions[hasher.partition_of(hash)]
                .peek(hash, key.as_bytes())
                .is_some()
        })
        .count();
    let bytes: u64 = partitions.iter().map(|p| p.stats().bytes).sum();
    Fill {
        items: partitions.iter().map(|p| p.stats().curr_items).sum(),
        payload_share: bytes as f64 / config.memory_limit as f64,
        newest_kept_share: kept as f64 / newest as f64,
    }
}

#[test]
fn mixed_sizes_fill_memory_at_every_partition_count() {
    let one = fill(1, 1, 5000);
    for partitions in [1, 2, 4, 8, 16, 32] {
        let this = fill(partitions, 1, 5000);
        let context = format!(
            "{partitions} partitions: {} items, {:.1}% payload, {:.2}% of the newest kept",
            this.items,
            this.payload_share * 100.0,
            this.newest_kept_share * 100.0
        );
        assert!(this.items * 10 >= one.items * 8, "{context}");
        assert!(this.payload_share >= 0.70, "{context}");
        assert!(this.newest_kept_share >= 0.99, "{context}");
    }
}

#[test]
fn narrower_and_wider_size_ranges_fill_memory_too() {
    for (lo, hi) in [(100, 1000), (200, 400), (1, 100_000)] {
        for partitions in [2, 8, 32] {
            let this = fill(partitions, lo, hi);
            let context = format!(
                "{lo}..{hi}, {partitions} partitions: {} items, {:.1}% payload, {:.2}% kept",
                this.items,
                this.payload_share * 100.0,
                this.newest_kept_share * 100.0
            );
            assert!(this.payload_share >= 0.60, "{context}");
            assert!(this.newest_kept_share >= 0.95, "{context}");
        }
    }
}

#[test]
fn chained_values_keep_the_newest_at_any_partition_count() {
    // 4 KiB values chain (a head and a small last chunk) once the largest chunk is a quarter
    // of a 16 KiB page; pages emptied for the small class must not take the newest items.
    for partitions in [1, 16] {
        let this = fill(partitions, 4096, 4096);
        let context = format!(
            "{partitions} partitions: {} items, {:.1}% payload, {:.2}% kept",
            this.items,
            this.payload_share * 100.0,
            this.newest_kept_share * 100.0
        );
        assert!(this.payload_share >= 0.85, "{context}");
        assert!(this.newest_kept_share >= 0.99, "{context}");
    }
}

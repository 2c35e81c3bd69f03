//! W5 lazy-loading, simulated in process: 1,000,000 keys drawn with a zipf(0.9) popularity,
//! 1,000-byte values, a 64 MiB cache of two partitions (or as many as asked); every miss is
//! followed by a set (cache-aside). Prints the hit ratio of the second half after a warm-up of
//! equal length.
//!
//! `cargo run --release -p ferrocache-storage --example lazy_loading [lookups_per_phase]
//! [partitions]`

use ferrocache_storage::{
    Clock, KeyHasher, PagePool, Partition, StorageConfig, StoreMode, StoreRequest,
};
use rand::{Rng, SeedableRng};
use std::sync::Arc;

const KEYS: usize = 1_000_000;
const EXPONENT: f64 = 0.9;

fn main() {
    let per_phase: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let partition_count: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2);
    // Cumulative popularity of ranks 1..=KEYS.
    let mut cdf = Vec::with_capacity(KEYS);
    let mut total = 0.0;
    for rank in 1..=KEYS {
        total += 1.0 / (rank as f64).powf(EXPONENT);
        cdf.push(total);
    }
    let config = Arc::new(
        StorageConfig {
            memory_limit: 64 << 20,
            ..StorageConfig::default()
        }
        .for_partitions(partition_count),
    );
    let pool = Arc::new(PagePool::new(config.memory_limit, config.page_size));
    let clock = Arc::new(Clock::new());
    let hasher = KeyHasher::with_seed(3, partition_count);
    let mut partitions: Vec<Partition> = (0..partition_count)
        .map(|_| Partition::new(config.clone(), pool.clone(), clock.clone()))
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let value = vec![b'v'; 1000];
    let mut hits = 0u64;
    let mut lookups = 0u64;
    for step in 0..2 * per_phase {
        let target = rng.random::<f64>() * total;
        let rank = cdf.partition_point(|&c| c < target);
        let key = format!("memtier-{rank}");
        let hash = hasher.hash(key.as_bytes());
        let partition = &mut partitions[hasher.partition_of(hash)];
        let hit = partition.get(hash, key.as_bytes()).is_some();
        if !hit {
            let _ = partition.store(&StoreRequest::new(
                hash,
                key.as_bytes(),
                &value,
                0,
                0,
                StoreMode::Set,
            ));
        }
        if step >= per_phase {
            lookups += 1;
            hits += u64::from(hit);
        }
        if step % 1000 == 0 {
            for partition in &mut partitions {
                partition.maintain(1000);
            }
        }
    }
    let items: u64 = partitions.iter().map(|p| p.stats().curr_items).sum();
    println!(
        "hit ratio {:.3} ({hits}/{lookups}), items held {items} (memcached: 0.599, 56,640)",
        hits as f64 / lookups as f64
    );
}

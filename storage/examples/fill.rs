//! W4 memory-fill: stores keys `key:0000000000000000000000:<n>` with 100-byte values into a
//! 64 MiB cache (two partitions sharing one pool, CAS on, flags 0) until the first eviction,
//! then prints the items held and the bytes of slab page per item.
//!
//! `cargo run --release -p ferrocache-storage --example fill [memory_mib] [partitions]`

use ferrocache_storage::{
    Clock, KeyHasher, PagePool, Partition, StorageConfig, StoreMode, StoreRequest,
};
use std::sync::Arc;

fn main() {
    let mut args = std::env::args().skip(1);
    let memory_mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let partition_count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let config = Arc::new(
        StorageConfig {
            memory_limit: memory_mib << 20,
            ..StorageConfig::default()
        }
        .for_partitions(partition_count),
    );
    if let Err(error) = config.validate() {
        eprintln!("bad config: {error}");
        std::process::exit(2);
    }
    let pool = Arc::new(PagePool::new(config.memory_limit, config.page_size));
    let clock = Arc::new(Clock::new());
    let hasher = KeyHasher::with_seed(7, partition_count);
    let mut partitions: Vec<Partition> = (0..partition_count)
        .map(|_| Partition::new(config.clone(), pool.clone(), clock.clone()))
        .collect();
    let value = [b'v'; 100];
    let mut stored = 0u64;
    let mut key_bytes = 0u64;
    loop {
        let key = format!("key:0000000000000000000000:{stored}");
        let hash = hasher.hash(key.as_bytes());
        let partition = &mut partitions[hasher.partition_of(hash)];
        let request = StoreRequest::new(hash, key.as_bytes(), &value, 0, 0, StoreMode::Set);
        if let Err(error) = partition.store(&request) {
            eprintln!("store failed after {stored} items: {error}");
            break;
        }
        stored += 1;
        key_bytes += key.len() as u64;
        if partition.stats().evictions > 0 {
            break;
        }
    }
    let items: u64 = partitions.iter().map(|p| p.stats().curr_items).sum();
    let bytes: u64 = partitions.iter().map(|p| p.stats().bytes).sum();
    let hash_bytes: u64 = partitions.iter().map(|p| p.stats().hash_bytes).sum();
    let limit = pool.limit_bytes() as f64;
    println!("memory limit      {memory_mib} MiB, {partition_count} partitions");
    println!("items held        {items} (stored {stored} before the first eviction)");
    println!("page bytes/item   {:.1}", limit / items as f64);
    let mean_key = key_bytes as f64 / stored as f64;
    println!(
        "item bytes/item   {:.1} (header + key + value; mean key {mean_key:.1}, header {:.1})",
        bytes as f64 / items as f64,
        bytes as f64 / items as f64 - value.len() as f64 - mean_key
    );
    println!(
        "index bytes/item  {:.1} (outside the limit, like memcached's hash table)",
        hash_bytes as f64 / items as f64
    );
    println!("vs memcached      {:.2}x of 346k", items as f64 / 346_000.0);
}

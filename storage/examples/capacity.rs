//! Mixed-size capacity: how many items the engine holds when keys of mixed value sizes are
//! written once into `-m` shared by `-t` partitions, and how many of the newest keys survive.
//!
//! `cargo run --release -p ferrocache-storage --example capacity -- [memory_mib] [partitions]
//! [sizes] [fill_factor]`, where `sizes` is `lo..hi` (uniform random value sizes) or a fixed
//! size, or `A>B` (fixed A for the first two thirds of the fill, then fixed B), and the fill
//! writes `fill_factor` times the memory limit in values (default 3). The partitions are
//! driven as the daemon drives them: one store at a time, routed by key hash, with a
//! `maintain` slice every 64 stores of a partition. Prints one line of figures.
//! `PAGE_KIB=N` cuts pages of N KiB, `CHUNK_MAX=N` sets the largest chunk (`-o
//! slab_chunk_max`, bytes), `FACTOR=F` sets the growth factor (`-f`), `MAINTAIN_EVERY=N`
//! maintains a partition every N of its stores (64), and `CLASSES=1` prints the first
//! partition's slab classes, to compare choices. `SEED=N` changes the key
//! hash seed and the value sizes drawn: the daemon seeds its hash at random at each start,
//! so one seed is one of many runs (the newest keys kept differ from seed to seed).

use ferrocache_storage::{
    Clock, KeyHasher, PagePool, Partition, StorageConfig, StoreMode, StoreRequest,
};
use std::sync::Arc;

fn main() {
    let mut args = std::env::args().skip(1);
    let memory_mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let partition_count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let sizes = args.next().unwrap_or_else(|| "1..5000".to_string());
    let fill_factor: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3.0);
    // `A>B`: fixed size A for the first two thirds of the fill, then B (the values an
    // application stores change size, and memory must follow to the new size's class).
    let (sizes_first, shifted) = match sizes.split_once('>') {
        Some((first, then)) => (first.to_string(), then.parse::<usize>().ok()),
        None => (sizes.clone(), None),
    };
    let (lo, hi) = match sizes_first.split_once("..") {
        Some((lo, hi)) => (lo.parse().unwrap(), hi.parse().unwrap()),
        None => {
            let size: usize = sizes_first.parse().unwrap();
            (size, size)
        }
    };
    let mut config = StorageConfig {
        memory_limit: memory_mib << 20,
        ..StorageConfig::default()
    }
    .for_partitions(partition_count);
    if let Some(page) = std::env::var("PAGE_KIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        config.page_size = page << 10;
        config.slab_chunk_max = ferrocache_storage::LARGEST_CHUNK_CAP.min(config.page_size / 4);
    }
    if let Some(factor) = std::env::var("FACTOR")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
    {
        config.growth_factor = factor;
    }
    if let Some(chunk_max) = std::env::var("CHUNK_MAX")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        config.slab_chunk_max = chunk_max;
    }
    let config = Arc::new(config);
    config.validate().expect("a valid configuration");
    let pool = Arc::new(PagePool::new(config.memory_limit, config.page_size));
    let clock = Arc::new(Clock::new());
    let seed: u64 = std::env::var("SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let maintain_every: u64 = std::env::var("MAINTAIN_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&every| every > 0)
        .unwrap_or(64);
    let hasher = KeyHasher::with_seed(seed, partition_count);
    let mut partitions: Vec<Partition> = (0..partition_count)
        .map(|_| Partition::new(config.clone(), pool.clone(), clock.clone()))
        .collect();
    let mut random = 0x9e37_79b9_7f4a_7c15_u64 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
    let value = vec![b'v'; hi.max(shifted.unwrap_or(0))];
    let budget = (config.memory_limit as f64 * fill_factor) as u64;
    let (mut written, mut keys, mut failed) = (0u64, 0u64, 0u64);
    let mut stores = vec![0u64; partition_count];
    while written < budget {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let mut size = lo + (random % (hi - lo + 1) as u64) as usize;
        if let Some(then) = shifted.filter(|_| written * 3 >= budget * 2) {
            size = then;
        }
        let key = format!("k:{keys}");
        let hash = hasher.hash(key.as_bytes());
        let partition = &mut partitions[hasher.partition_of(hash)];
        let request = StoreRequest::new(hash, key.as_bytes(), &value[..size], 0, 0, StoreMode::Set);
        if partition.store(&request).is_err() {
            failed += 1;
        }
        keys += 1;
        written += size as u64;
        // Each partition's worker maintains it on a timer; here, every 64 of its stores (or
        // `MAINTAIN_EVERY`: a busy worker owning many partitions comes to each seldom).
        let index = hasher.partition_of(hash);
        stores[index] += 1;
        if stores[index].is_multiple_of(maintain_every) {
            partitions[index].maintain(64);
        }
    }
    let newest = (keys / 20).max(1);
    let kept = (keys - newest..keys)
        .filter(|n| {
            let key = format!("k:{n}");
            let hash = hasher.hash(key.as_bytes());
            partitions[hasher.partition_of(hash)]
                .peek(hash, key.as_bytes())
                .is_some()
        })
        .count();
    let items: u64 = partitions.iter().map(|p| p.stats().curr_items).sum();
    let bytes: u64 = partitions.iter().map(|p| p.stats().bytes).sum();
    let moved: u64 = partitions.iter().map(|p| p.stats().slabs_moved).sum();
    if std::env::var("CLASSES").is_ok() {
        for (id, class) in partitions[0].class_stats() {
            eprintln!(
                "class {id}: chunk {} pages {} items {} chunks used {} evicted {}",
                class.chunk_size, class.total_pages, class.items, class.used_chunks, class.evicted
            );
        }
    }
    println!(
        "-m {memory_mib} -t {partition_count} sizes {sizes}: items {items} bytes {:.1}% of -m, \
         newest 5% kept {:.2}%, failed stores {failed}, pages {}/{} of {} KiB, {moved} moved",
        bytes as f64 * 100.0 / config.memory_limit as f64,
        kept as f64 * 100.0 / newest as f64,
        pool.pages_in_use(),
        pool.limit_pages(),
        config.page_size >> 10,
    );
}

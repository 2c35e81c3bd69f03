//! Capacity in process: keys written once with values of mixed and of fixed sizes into 64 MiB
//! shared by 1 to 32 partitions, as the daemon cuts it (`StorageConfig::for_partitions`), held
//! against the items memcached 1.6.18 keeps after the same fill. Memory must follow the items
//! whatever the partition count: with a page per partition and slab class needed before
//! memory was used, 8 partitions held 2,164 items (0.4% of the limit in payload) where 1 held
//! 28,990. `examples/capacity.rs` prints the same figures.

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
/// maintenance slice every 256 stores (the page mover also runs from the stores themselves).
/// With `then`, the last third of the fill writes values of that size instead.
fn fill(partition_count: usize, lo: usize, hi: usize, then: Option<usize>) -> Fill {
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
    let value = vec![b'v'; hi.max(then.unwrap_or(0))];
    let mut random = 0x9e37_79b9_7f4a_7c15_u64;
    let (mut written, mut keys) = (0usize, 0u64);
    while written < 3 * config.memory_limit {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let mut size = lo + (random % (hi - lo + 1) as u64) as usize;
        if let Some(then) = then.filter(|_| written >= 2 * config.memory_limit) {
            size = then;
        }
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

/// Items memcached 1.6.18 holds after the same fill (`-m 64`, keys `k:0`, `k:1`, ... written
/// once, the same generator; its count does not depend on `-t`), measured side by side by
/// `daemon/tests/capacity.rs`, which runs memcached itself.
const MEMCACHED_1_6_18: [((usize, usize), u64); 8] = [
    ((1, 5000), 28_113),
    ((100, 1000), 101_025),
    ((200, 400), 164_265),
    ((1, 100_000), 1_354),
    ((100, 100), 349_504),
    ((4096, 4096), 14_720),
    ((20_000, 20_000), 3_072),
    ((100_000, 100_000), 640),
];

fn memcached_items(lo: usize, hi: usize) -> u64 {
    MEMCACHED_1_6_18
        .iter()
        .find(|(sizes, _)| *sizes == (lo, hi))
        .map(|&(_, items)| items)
        .expect("a fill memcached was measured with")
}

/// Fills and checks: at least `min_ratio` times memcached's items, `min_payload` of the limit
/// in item bytes, and 99% of the newest 5% of keys still there.
fn check(partitions: usize, (lo, hi): (usize, usize), min_ratio: f64, min_payload: f64) {
    let this = fill(partitions, lo, hi, None);
    let ratio = this.items as f64 / memcached_items(lo, hi) as f64;
    let context = format!(
        "{lo}..{hi}, {partitions} partitions: {} items ({ratio:.3}x memcached's), \
         {:.1}% payload, {:.2}% of the newest kept",
        this.items,
        this.payload_share * 100.0,
        this.newest_kept_share * 100.0
    );
    eprintln!("{context}");
    assert!(ratio >= min_ratio, "{context}");
    assert!(this.payload_share >= min_payload, "{context}");
    assert!(this.newest_kept_share >= 0.99, "{context}");
}

#[test]
fn mixed_sizes_hold_more_items_than_memcached_at_every_partition_count() {
    // The page mover keeps small items longer than large ones (evictions per byte even out),
    // so a mixed fill holds 1.15-1.19x memcached's items (1..5000, 200..400) and 1.33-1.35x
    // (100..1000); 1.1x is the goal at every partition count, and 85% of the memory in item
    // bytes (1..5000 at 32 partitions: 85.0%, the classes of few small items sharing pages).
    for partitions in [1, 2, 4, 8, 16, 32] {
        check(partitions, (1, 5000), 1.1, 0.85);
        check(partitions, (100, 1000), 1.2, 0.85);
        check(partitions, (200, 400), 1.1, 0.85);
    }
}

#[test]
fn values_up_to_100_kb_hold_more_items_than_memcached() {
    // Chained items are weighed by length (chain classes), last chunks fill pages that exist
    // before taking new ones, and a class's room for its own items is its pages less the
    // last chunks they hold: 1.21-1.28x memcached's items, 87.8-92.4% of the memory (32
    // partitions: 83.2% while empty pages went back to the pool only at maintenance).
    for partitions in [1, 2, 8, 16, 32] {
        check(partitions, (1, 100_000), 1.1, 0.85);
    }
}

#[test]
fn fixed_sizes_hold_at_least_memcacheds_items() {
    for partitions in [1, 2, 8, 32] {
        // `k:0` to `k:2013265` with 100 B values: 122-128-byte items in 128-byte chunks.
        check(partitions, (100, 100), 1.4, 0.95);
        check(partitions, (20_000, 20_000), 1.0, 0.90);
        check(partitions, (100_000, 100_000), 1.0, 0.95);
    }
    // 4 KiB values: seven to a 32 KiB page in one chunk each held 0.97x memcached's items at
    // 8 partitions; as a 4 KiB head and a small last chunk they hold 1.10x.
    for partitions in [1, 2, 8, 16, 32] {
        check(partitions, (4096, 4096), 1.0, 0.90);
    }
}

#[test]
fn memory_follows_the_values_when_their_size_changes() {
    // Two thirds of the fill in one class, the last third in a larger one: the newer class
    // needs most of the memory, and the pages of the class no longer written must come to it
    // as fast as it evicts. With 8 pages moved per window, 16-64% of the newest keys were
    // evicted while the old values stayed.
    for partitions in [1, 2, 8, 32] {
        for ((lo, hi), then) in [((100, 100), 140), ((200, 400), 1000), ((4096, 4096), 100)] {
            let this = fill(partitions, lo, hi, Some(then));
            assert!(
                this.newest_kept_share >= 0.99,
                "{lo}..{hi} then {then}, {partitions} partitions: {:.2}% of the newest kept",
                this.newest_kept_share * 100.0
            );
        }
    }
}

#[test]
fn large_values_written_no_more_give_their_memory_to_small_ones() {
    // 100 KB values, then a memory's worth of 100 B ones: the large values' classes must let
    // their pages go. A donor written lately keeps room for a few of its items; when that
    // room outlived the writes, 100 KB values held a third of a partition at 32 partitions
    // (259,908 items; 359,967-410,932 otherwise, 0.74x-1.18x memcached's 349,504 of a fill of
    // 100 B values alone).
    for partitions in [1, 2, 8, 32] {
        let this = fill(partitions, 100_000, 100_000, Some(100));
        let ratio = this.items as f64 / memcached_items(100, 100) as f64;
        assert!(
            ratio >= 0.9 && this.newest_kept_share >= 0.99,
            "100 KB then 100 B, {partitions} partitions: {} items ({ratio:.2}x memcached's \
             100 B fill), {:.2}% of the newest kept",
            this.items,
            this.newest_kept_share * 100.0
        );
    }
}

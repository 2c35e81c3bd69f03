//! One partition, no lock: get hit, get miss, and set of a 100-byte value, over 100,000 keys
//! (about 15 MB of items, so most operations wait on two or three cache misses: the index
//! slot, the item's chunk), plus a hit on 1,000 cache-resident keys.

use criterion::{Criterion, criterion_group, criterion_main};
use ferrocache_storage::{
    Clock, KeyHasher, PagePool, Partition, StorageConfig, StoreMode, StoreRequest,
};
use std::hint::black_box;
use std::sync::Arc;

const KEYS: usize = 100_000;

/// A prefilled partition; `caller_hash` builds it with [`Partition::with_key_hasher`].
fn prefilled(caller_hash: bool) -> (Partition, KeyHasher, Vec<(Vec<u8>, u64)>) {
    let config = Arc::new(StorageConfig {
        memory_limit: 256 << 20,
        ..StorageConfig::default()
    });
    let pool = Arc::new(PagePool::new(config.memory_limit, config.page_size));
    let hasher = KeyHasher::with_seed(1, 1);
    let clock = Arc::new(Clock::new());
    let mut partition = if caller_hash {
        Partition::with_key_hasher(config, pool, clock, hasher.clone())
    } else {
        Partition::new(config, pool, clock)
    };
    let keys: Vec<(Vec<u8>, u64)> = (0..KEYS)
        .map(|i| {
            let key = format!("key:0000000000000000000000:{i}").into_bytes();
            let hash = hasher.hash(&key);
            (key, hash)
        })
        .collect();
    let value = [b'v'; 100];
    for (key, hash) in &keys {
        partition
            .store(&StoreRequest::new(*hash, key, &value, 0, 0, StoreMode::Set))
            .expect("prefill");
    }
    (partition, hasher, keys)
}

fn benches(c: &mut Criterion) {
    let (mut partition, hasher, keys) = prefilled(false);
    let mut at = 0usize;
    c.bench_function("get_hit", |b| {
        b.iter(|| {
            at = (at + 7919) % KEYS;
            let (key, hash) = &keys[at];
            let item = partition.get(*hash, key).expect("hit");
            black_box(item.value().next());
        })
    });
    // The same with 1,000 keys (150 KB, cache-resident): the CPU cost without memory stalls.
    c.bench_function("get_hit_cached", |b| {
        b.iter(|| {
            at = (at + 7919) % 1000;
            let (key, hash) = &keys[at];
            let item = partition.get(*hash, key).expect("hit");
            black_box(item.value().next());
        })
    });
    let misses: Vec<(Vec<u8>, u64)> = (0..KEYS)
        .map(|i| {
            let key = format!("missing:0000000000000000000:{i}").into_bytes();
            let hash = hasher.hash(&key);
            (key, hash)
        })
        .collect();
    c.bench_function("get_miss", |b| {
        b.iter(|| {
            at = (at + 7919) % KEYS;
            let (key, hash) = &misses[at];
            black_box(partition.get(*hash, key).is_none());
        })
    });
    let (mut with_hasher, _, _) = prefilled(true);
    c.bench_function("get_hit_with_key_hasher", |b| {
        b.iter(|| {
            at = (at + 7919) % KEYS;
            let (key, hash) = &keys[at];
            let item = with_hasher.get(*hash, key).expect("hit");
            black_box(item.value().next());
        })
    });
    drop(with_hasher);
    let value = [b'w'; 100];
    c.bench_function("set_100_bytes", |b| {
        b.iter(|| {
            at = (at + 7919) % KEYS;
            let (key, hash) = &keys[at];
            black_box(
                partition
                    .store(&StoreRequest::new(*hash, key, &value, 0, 0, StoreMode::Set))
                    .expect("set"),
            );
        })
    });
}

criterion_group! {
    name = partition_benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = benches
}
criterion_main!(partition_benches);

//! Hit ratio of each eviction policy, in process, on two cache-aside traces (every miss is
//! followed by a set of the key):
//!
//! - **W5** (`../shared/BENCHMARKS.md`): 1,000,000 keys drawn with a zipf(0.9) popularity,
//!   1,000-byte values, a 64 MiB cache of two partitions (or as many as asked), multi-gets of
//!   100 keys whose misses are then set.
//! - **scan**: the same, but every third multi-get reads the next 100 keys of a sequential scan
//!   over 5,000,000 other keys (a batch job walking a table), which never repeat within the
//!   run. The hit ratio is the zipf lookups' own: what the scan costs the popular keys.
//! - **mixed**: W5's keys and popularity with values of 1..5,000 bytes (uniform, fixed per
//!   key), where memory must be shared between slab classes: what the page mover's choice
//!   costs or wins.
//!
//! Each run warms the cache with as many lookups as it then measures. Prints one table row per
//! trace and policy (storage/README.md keeps the figures).
//!
//! `cargo run --release -p ferrocache-storage --example lazy_loading [lookups_per_phase]
//! [partitions] [policy: s3fifo|clock|lru|all] [trace: w5|scan|mixed|all]`
//!
//! Keys are `memtier-<id>` (memtier's); `KEYS=bench` names them as `ferrocache-bench` and
//! `bench/compare.sh` do, `key:<id>`, whose lengths (5 to 10 bytes) differ with popularity:
//! where a slab class boundary falls between `key:99999` and `key:100000`, the popular keys
//! and the rest sit in different classes (storage/README.md, the page mover). `VALUE=N` sets
//! the W5 and scan traces' value size (1,000 bytes); `KEYS=bench VALUE=996` at 16 partitions
//! puts that boundary there.

use ferrocache_storage::{
    Clock, EvictionPolicy, KeyHasher, PagePool, Partition, StorageConfig, StoreMode, StoreRequest,
};
use rand::{Rng, SeedableRng};
use std::sync::Arc;

const KEYS: usize = 1_000_000;
const EXPONENT: f64 = 0.9;
const BATCH: usize = 100;
/// Keys of the scan, more than the run reads, so none repeats.
const SCAN_KEYS: u64 = 5_000_000;

#[derive(Clone, Copy, PartialEq)]
enum Trace {
    W5,
    Scan,
    Mixed,
}

/// The value size of key `id` in the mixed trace: 1..=5000 bytes, the same every time.
fn mixed_size(id: usize) -> usize {
    let mut x = id as u64 ^ 0x9e37_79b9_7f4a_7c15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    1 + (x % 5000) as usize
}

struct Outcome {
    hits: u64,
    lookups: u64,
    items: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let per_phase: usize = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let partition_count: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2);
    let policies: Vec<(&str, EvictionPolicy)> = [
        ("s3fifo", EvictionPolicy::S3Fifo),
        ("clock", EvictionPolicy::Clock),
        ("lru", EvictionPolicy::Lru),
    ]
    .into_iter()
    .filter(|(name, _)| args.get(3).is_none_or(|p| p == "all" || p == name))
    .collect();
    let traces: Vec<(&str, Trace)> = [
        ("W5", Trace::W5),
        ("scan", Trace::Scan),
        ("mixed", Trace::Mixed),
    ]
    .into_iter()
    .filter(|(name, _)| {
        args.get(4)
            .is_none_or(|t| t == "all" || t.eq_ignore_ascii_case(name))
    })
    .collect();
    if policies.is_empty() || traces.is_empty() {
        eprintln!(
            "usage: lazy_loading [lookups_per_phase] [partitions] [s3fifo|clock|lru|all] [w5|scan|mixed|all]"
        );
        std::process::exit(2);
    }
    // Cumulative popularity of ranks 1..=KEYS.
    let mut cdf = Vec::with_capacity(KEYS);
    let mut total = 0.0;
    for rank in 1..=KEYS {
        total += 1.0 / (rank as f64).powf(EXPONENT);
        cdf.push(total);
    }
    println!("| trace | policy | hit ratio | items held |\n|---|---|---|---|");
    for &(trace_name, trace) in &traces {
        for &(policy_name, policy) in &policies {
            let outcome = run(&cdf, per_phase, partition_count, policy, trace);
            println!(
                "| {trace_name} | {policy_name} | {:.3} ({}/{}) | {} |",
                outcome.hits as f64 / outcome.lookups as f64,
                outcome.hits,
                outcome.lookups,
                outcome.items
            );
        }
    }
}

fn run(
    cdf: &[f64],
    per_phase: usize,
    partition_count: usize,
    policy: EvictionPolicy,
    trace: Trace,
) -> Outcome {
    let total = cdf[cdf.len() - 1];
    let config = Arc::new(
        StorageConfig {
            memory_limit: 64 << 20,
            eviction: policy,
            ..StorageConfig::default()
        }
        .for_partitions(partition_count),
    );
    let pool = Arc::new(PagePool::new(config.memory_limit, config.page_size));
    let clock = Arc::new(Clock::new());
    let hasher = KeyHasher::with_seed(3, partition_count);
    let mut partitions: Vec<Partition> = (0..partition_count)
        .map(|_| {
            Partition::with_key_hasher(config.clone(), pool.clone(), clock.clone(), hasher.clone())
        })
        .collect();
    // The same keys for every policy.
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let bench_keys = std::env::var("KEYS").is_ok_and(|keys| keys == "bench");
    let value = vec![b'v'; 5000];
    let value_size: usize = std::env::var("VALUE")
        .ok()
        .and_then(|size| size.parse().ok())
        .unwrap_or(1000)
        .min(value.len());
    let mut outcome = Outcome {
        hits: 0,
        lookups: 0,
        items: 0,
    };
    let mut batch: Vec<(String, u64, usize)> = Vec::with_capacity(BATCH);
    let mut misses: Vec<usize> = Vec::with_capacity(BATCH);
    let mut scanned = 0u64;
    let mut lookups = 0usize;
    for round in 0.. {
        if lookups >= 2 * per_phase {
            break;
        }
        let scan = trace == Trace::Scan && round % 3 == 2;
        batch.clear();
        for _ in 0..BATCH {
            let (key, size) = if scan {
                scanned = (scanned + 1) % SCAN_KEYS;
                (format!("scan-{scanned}"), value_size)
            } else {
                let target = rng.random::<f64>() * total;
                let id = cdf.partition_point(|&c| c < target);
                let size = if trace == Trace::Mixed {
                    mixed_size(id)
                } else {
                    value_size
                };
                let key = if bench_keys {
                    format!("key:{id}")
                } else {
                    format!("memtier-{id}")
                };
                (key, size)
            };
            let hash = hasher.hash(key.as_bytes());
            batch.push((key, hash, size));
        }
        misses.clear();
        for (at, (key, hash, _)) in batch.iter().enumerate() {
            let partition = &mut partitions[hasher.partition_of(*hash)];
            let hit = partition.get(*hash, key.as_bytes()).is_some();
            if !hit {
                misses.push(at);
            }
            if !scan {
                if lookups >= per_phase {
                    outcome.lookups += 1;
                    outcome.hits += u64::from(hit);
                }
                lookups += 1;
            }
        }
        for &at in &misses {
            let (key, hash, size) = &batch[at];
            let partition = &mut partitions[hasher.partition_of(*hash)];
            let _ = partition.store(&StoreRequest::new(
                *hash,
                key.as_bytes(),
                &value[..*size],
                0,
                0,
                StoreMode::Set,
            ));
        }
        if round % 10 == 0 {
            for partition in &mut partitions {
                partition.maintain(1000);
            }
        }
    }
    outcome.items = partitions.iter().map(|p| p.stats().curr_items).sum();
    outcome
}

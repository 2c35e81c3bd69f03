//! Random operation sequences against a plain reference model (a HashMap with expiry).
//!
//! With plenty of memory the engine must agree with the model exactly. With little memory
//! items may vanish (evicted), but whatever the engine returns for a key must be exactly the
//! latest value written to it, never an older or another key's value. After every step the
//! pages in use stay within the pool's limit, across two partitions sharing it.

mod common;

use common::Harness;
use ferrocache_storage::{
    ArithMode, ArithOutcome, ArithRequest, DeleteOutcome, DeleteRequest, EvictionPolicy, ItemRef,
    StorageConfig, StoreError, StoreMode, StoreOutcome, StoreRequest,
};
use proptest::prelude::*;
use std::collections::HashMap;

const KEYS: usize = 12;

#[derive(Debug, Clone)]
enum Op {
    Store {
        key: usize,
        mode: StoreMode,
        len: usize,
        flags: u32,
        ttl: i64,
    },
    Cas {
        key: usize,
        len: usize,
        right: bool,
    },
    SetNumber {
        key: usize,
        number: u64,
    },
    Arith {
        key: usize,
        incr: bool,
        delta: u64,
    },
    Delete {
        key: usize,
    },
    Touch {
        key: usize,
        ttl: i64,
    },
    /// `get`, or `gat` with a new exptime.
    Get {
        key: usize,
        touch: Option<i64>,
    },
    Advance {
        secs: u32,
    },
    Flush {
        delay: i64,
    },
    Maintain {
        budget: usize,
    },
}

fn ttl() -> impl Strategy<Value = i64> {
    prop_oneof![4 => Just(0i64), 1 => Just(-1i64), 2 => 1i64..8, 1 => Just(100i64)]
}

fn len() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 0usize..200, 2 => 200usize..5000, 1 => 100_000usize..700_000]
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS;
    let mode = prop_oneof![
        4 => Just(StoreMode::Set),
        1 => Just(StoreMode::Add),
        1 => Just(StoreMode::Replace),
        1 => Just(StoreMode::Append),
        1 => Just(StoreMode::Prepend),
    ];
    prop_oneof![
        8 => (key.clone(), mode, len(), prop_oneof![Just(0u32), any::<u32>()], ttl())
            .prop_map(|(key, mode, len, flags, ttl)| Op::Store { key, mode, len, flags, ttl }),
        2 => (key.clone(), len(), any::<bool>())
            .prop_map(|(key, len, right)| Op::Cas { key, len, right }),
        2 => (key.clone(), prop_oneof![0u64..1000, Just(u64::MAX - 1)])
            .prop_map(|(key, number)| Op::SetNumber { key, number }),
        2 => (key.clone(), any::<bool>(), prop_oneof![0u64..2000, Just(u64::MAX)])
            .prop_map(|(key, incr, delta)| Op::Arith { key, incr, delta }),
        2 => key.clone().prop_map(|key| Op::Delete { key }),
        1 => (key.clone(), ttl()).prop_map(|(key, ttl)| Op::Touch { key, ttl }),
        1 => (key.clone(), ttl()).prop_map(|(key, ttl)| Op::Get { key, touch: Some(ttl) }),
        8 => key.prop_map(|key| Op::Get { key, touch: None }),
        2 => (1u32..4).prop_map(|secs| Op::Advance { secs }),
        1 => prop_oneof![Just(0i64), 1i64..5].prop_map(|delay| Op::Flush { delay }),
        1 => (1usize..5000).prop_map(|budget| Op::Maintain { budget }),
    ]
}

#[derive(Debug, Clone)]
struct ModelItem {
    value: Vec<u8>,
    flags: u32,
    expiry: u32,
    cas: u64,
}

struct Model {
    items: HashMap<usize, ModelItem>,
    pending_flush: Option<u32>,
    writes: u64,
}

fn key_name(key: usize) -> Vec<u8> {
    format!("key:{key}").into_bytes()
}

/// A value no other write produces: it names its key and write number.
fn unique_value(key: usize, write: u64, len: usize) -> Vec<u8> {
    let mut value = format!("<{key}:{write}>").into_bytes();
    value.resize(len.max(value.len()), b'a' + (write % 26) as u8);
    value
}

/// Model values never start with whitespace, so memcached's strtoull rule reduces to: leading
/// digits, then the end or a space (decr pads with spaces; an append may follow them).
fn model_counter(value: &[u8]) -> Option<u64> {
    let digits = value
        .iter()
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    if digits == 0 || value.get(digits).is_some_and(|&byte| byte != b' ') {
        return None;
    }
    std::str::from_utf8(&value[..digits]).ok()?.parse().ok()
}

/// Runs `ops`; `exact` demands full agreement (no evictions expected).
fn run(config: StorageConfig, ops: &[Op], exact: bool) -> Result<(), TestCaseError> {
    let cas_enabled = config.cas;
    let chunk_max = config.slab_chunk_max.max(512);
    let mut h = Harness::new(config, 2);
    let mut model = Model {
        items: HashMap::new(),
        pending_flush: None,
        writes: 0,
    };
    for op in ops {
        let now = h.clock.now();
        model
            .items
            .retain(|_, item| item.expiry == 0 || item.expiry > now);
        // Before the operation: the engine holds the model's latest value or (only under
        // memory pressure) nothing.
        let key = match op {
            Op::Store { key, .. }
            | Op::Cas { key, .. }
            | Op::SetNumber { key, .. }
            | Op::Arith { key, .. }
            | Op::Delete { key }
            | Op::Touch { key, .. }
            | Op::Get { key, .. } => Some(*key),
            _ => None,
        };
        if let Some(key) = key {
            let name = key_name(key);
            let (partition, hash) = h.route(&name);
            let held = partition.peek(hash, &name).map(|item| {
                (
                    item.value().flatten().copied().collect::<Vec<u8>>(),
                    item.flags(),
                    item.cas(),
                )
            });
            match (held, model.items.get(&key)) {
                (Some((value, flags, cas)), Some(expected)) => {
                    prop_assert!(value == expected.value, "key {key}: stale or foreign value");
                    prop_assert_eq!(flags, expected.flags);
                    prop_assert_eq!(cas, expected.cas);
                }
                (Some(_), None) => prop_assert!(false, "key {key}: a value the model lost"),
                (None, Some(_)) => {
                    prop_assert!(!exact, "key {key}: lost without memory pressure");
                    model.items.remove(&key);
                }
                (None, None) => {}
            }
        }
        apply(&mut h, &mut model, op, exact, cas_enabled, chunk_max)?;
        let in_use = h.pool.pages_in_use();
        prop_assert!(in_use <= h.pool.limit_pages(), "pages over the limit");
        prop_assert_eq!(in_use, h.pages_held());
        for partition in &h.partitions {
            // The gauges follow every item's size, also when a touch grows its header.
            let requested: u64 = partition
                .class_stats()
                .iter()
                .map(|(_, class)| class.mem_requested)
                .sum();
            prop_assert_eq!(partition.stats().bytes, requested);
        }
    }
    Ok(())
}

fn apply(
    h: &mut Harness,
    model: &mut Model,
    op: &Op,
    exact: bool,
    cas_enabled: bool,
    chunk_max: usize,
) -> Result<(), TestCaseError> {
    match *op {
        Op::Store {
            key,
            mode,
            len,
            flags,
            ttl,
        } => {
            model.writes += 1;
            let data = unique_value(key, model.writes, len);
            let name = key_name(key);
            let result = h.store(mode, &name, &data, flags, ttl);
            let expiry = h.clock.expiry_of(ttl);
            let old = model.items.get(&key).cloned();
            let expected = match (mode, &old) {
                (StoreMode::Set, _) | (StoreMode::Add, None) | (StoreMode::Replace, Some(_)) => {
                    Some(ModelItem {
                        value: data.clone(),
                        flags,
                        expiry,
                        cas: 0,
                    })
                }
                (StoreMode::Append, Some(old)) => Some(ModelItem {
                    value: [&old.value[..], &data[..]].concat(),
                    ..old.clone()
                }),
                (StoreMode::Prepend, Some(old)) => Some(ModelItem {
                    value: [&data[..], &old.value[..]].concat(),
                    ..old.clone()
                }),
                _ => None,
            };
            match (result, expected) {
                (Ok(StoreOutcome::Stored { cas }), Some(mut item)) => {
                    item.cas = cas;
                    if item.expiry == 1 {
                        model.items.remove(&key);
                    } else {
                        model.items.insert(key, item);
                    }
                }
                (Ok(StoreOutcome::NotStored), None) => {}
                (Err(StoreError::TooLarge), Some(item)) if item.value.len() > 1_000_000 => {
                    // A failed set drops the old value; append/prepend leave it.
                    if mode == StoreMode::Set {
                        model.items.remove(&key);
                    }
                }
                (Err(StoreError::OutOfMemory), _) if !exact => {
                    if mode == StoreMode::Set {
                        model.items.remove(&key);
                    }
                    resync(h, model, key)?;
                }
                (result, expected) => prop_assert!(
                    false,
                    "store {mode:?}: {result:?} vs model value of {:?} bytes",
                    expected.map(|item| item.value.len())
                ),
            }
        }
        Op::Cas { key, len, right } => {
            // Without CAS every item's CAS is 0, and memcached's cas never matches 0.
            let right = right && cas_enabled;
            model.writes += 1;
            let data = unique_value(key, model.writes, len);
            let name = key_name(key);
            let old = model.items.get(&key).cloned();
            let compare = match (&old, right) {
                (Some(old), true) => old.cas,
                (Some(old), false) => old.cas.wrapping_add(1000),
                (None, _) => 12345,
            };
            let (partition, hash) = h.route(&name);
            let mut request = StoreRequest::new(hash, &name, &data, 3, 0, StoreMode::Set);
            request.compare_cas = Some(compare);
            let result = partition.store(&request);
            match (result, old, right) {
                (Ok(StoreOutcome::NotFound), None, _) => {}
                (Ok(StoreOutcome::Exists), Some(_), false) => {}
                (Ok(StoreOutcome::Stored { cas }), Some(_), true) => {
                    model.items.insert(
                        key,
                        ModelItem {
                            value: data,
                            flags: 3,
                            expiry: 0,
                            cas,
                        },
                    );
                }
                (Err(StoreError::OutOfMemory), _, _) if !exact => {
                    model.items.remove(&key);
                    resync(h, model, key)?;
                }
                (result, old, right) => prop_assert!(
                    false,
                    "cas: {result:?} vs model cas {:?} right={right}",
                    old.map(|item| item.cas)
                ),
            }
        }
        Op::SetNumber { key, number } => {
            let name = key_name(key);
            let data = number.to_string().into_bytes();
            match h.store(StoreMode::Set, &name, &data, 0, 0) {
                Ok(StoreOutcome::Stored { cas }) => {
                    model.items.insert(
                        key,
                        ModelItem {
                            value: data,
                            flags: 0,
                            expiry: 0,
                            cas,
                        },
                    );
                }
                Err(StoreError::OutOfMemory) if !exact => {
                    model.items.remove(&key);
                }
                other => prop_assert!(false, "set number: {other:?}"),
            }
        }
        Op::Arith { key, incr, delta } => {
            let name = key_name(key);
            let mode = if incr {
                ArithMode::Incr
            } else {
                ArithMode::Decr
            };
            let (partition, hash) = h.route(&name);
            let result = partition.arith(&ArithRequest::new(hash, &name, mode, delta));
            let old = model.items.get(&key).cloned();
            match (result, old) {
                (Ok(ArithOutcome::NotFound), None) => {}
                (Ok(ArithOutcome::NonNumeric), Some(old)) => {
                    // Like memcached, a value chained over several chunks is never a number.
                    let maybe_chained = old.value.len() + 300 > chunk_max;
                    prop_assert!(model_counter(&old.value).is_none() || maybe_chained);
                }
                (Ok(ArithOutcome::Updated { value, cas, .. }), Some(old)) => {
                    let current = model_counter(&old.value);
                    prop_assert!(current.is_some(), "arith on a non-number");
                    let current = current.unwrap_or_default();
                    let expected = if incr {
                        current.wrapping_add(delta)
                    } else {
                        current.saturating_sub(delta)
                    };
                    prop_assert_eq!(value, expected);
                    let mut digits = expected.to_string().into_bytes();
                    if digits.len() <= old.value.len() {
                        digits.resize(old.value.len(), b' ');
                    }
                    model.items.insert(
                        key,
                        ModelItem {
                            value: digits,
                            cas,
                            ..old
                        },
                    );
                }
                (Err(StoreError::OutOfMemory), _) if !exact => resync(h, model, key)?,
                (result, old) => prop_assert!(
                    false,
                    "arith: {result:?} vs model value of {:?} bytes",
                    old.map(|item| item.value.len())
                ),
            }
        }
        Op::Delete { key } => {
            let name = key_name(key);
            let (partition, hash) = h.route(&name);
            let outcome = partition.delete(&DeleteRequest::new(hash, &name));
            let expected = if model.items.remove(&key).is_some() {
                DeleteOutcome::Deleted
            } else {
                DeleteOutcome::NotFound
            };
            prop_assert_eq!(outcome, expected);
        }
        Op::Touch { key, ttl } => {
            let name = key_name(key);
            let (partition, hash) = h.route(&name);
            let touched = partition.touch(hash, &name, ttl);
            prop_assert_eq!(touched, model.items.contains_key(&key));
            touch_model(model, key, h.clock.expiry_of(ttl));
        }
        Op::Get { key, touch } => {
            let name = key_name(key);
            let (partition, hash) = h.route(&name);
            let read = |item: ItemRef<'_>| {
                (
                    item.value().flatten().copied().collect::<Vec<u8>>(),
                    item.cas(),
                )
            };
            let got = match touch {
                // An item stored without an exptime has no expiry field: this makes room for one.
                Some(ttl) => partition.get_and_touch(hash, &name, ttl).map(read),
                None => partition.get(hash, &name).map(read),
            };
            match (got, model.items.get(&key)) {
                (Some((value, cas)), Some(expected)) => {
                    prop_assert!(value == expected.value, "get: wrong value");
                    prop_assert_eq!(cas, expected.cas);
                }
                (None, None) => {}
                (got, expected) => prop_assert!(
                    false,
                    "get: {:?} vs model {:?}",
                    got.map(|g| g.1),
                    expected.map(|e| e.cas)
                ),
            }
            if let Some(ttl) = touch {
                touch_model(model, key, h.clock.expiry_of(ttl));
            }
        }
        Op::Advance { secs } => {
            let before = h.clock.now();
            h.clock.advance(secs);
            let after = h.clock.now();
            if model
                .pending_flush
                .is_some_and(|moment| before < moment && moment <= after)
            {
                model.items.clear();
                model.pending_flush = None;
            }
        }
        Op::Flush { delay } => {
            for partition in &mut h.partitions {
                partition.flush_all(delay);
            }
            if delay <= 0 {
                model.items.clear();
                model.pending_flush = None;
            } else {
                model.pending_flush = Some(h.clock.expiry_of(delay));
            }
        }
        Op::Maintain { budget } => h.maintain(budget),
    }
    Ok(())
}

/// After a failed store under memory pressure: the engine holds the model's value or nothing.
fn resync(h: &mut Harness, model: &mut Model, key: usize) -> Result<(), TestCaseError> {
    let name = key_name(key);
    let (partition, hash) = h.route(&name);
    let held = partition
        .peek(hash, &name)
        .map(|item| item.value().flatten().copied().collect::<Vec<u8>>());
    match (held, model.items.get(&key)) {
        (Some(value), Some(expected)) => prop_assert!(value == expected.value),
        (Some(_), None) => prop_assert!(false, "key {key} holds a value the model dropped"),
        (None, _) => {
            model.items.remove(&key);
        }
    }
    Ok(())
}

proptest! {
    // PROPTEST_CASES raises the count for a longer soak.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    #[test]
    fn agrees_with_the_model_when_memory_is_plenty(ops in prop::collection::vec(op(), 1..250)) {
        let config = StorageConfig {
            memory_limit: 64 << 20,
            ..StorageConfig::default()
        };
        run(config, &ops, true)?;
    }

    #[test]
    fn never_stale_under_memory_pressure(ops in prop::collection::vec(op(), 1..250)) {
        let config = StorageConfig {
            memory_limit: 2 << 20,
            ..StorageConfig::default()
        };
        run(config, &ops, false)?;
    }

    #[test]
    fn never_stale_with_small_pages_and_no_cas(ops in prop::collection::vec(op(), 1..250)) {
        let config = StorageConfig {
            memory_limit: 2 << 20,
            page_size: 64 << 10,
            slab_chunk_max: 16 << 10,
            item_size_max: 1 << 20,
            cas: false,
            ..StorageConfig::default()
        };
        run(config, &ops, false)?;
    }

    #[test]
    fn clock_and_lru_are_never_stale_under_memory_pressure(
        ops in prop::collection::vec(op(), 1..250),
    ) {
        // Small pages: evictions and page moves, so every hook of the policy runs.
        for eviction in [EvictionPolicy::Clock, EvictionPolicy::Lru] {
            let config = StorageConfig {
                memory_limit: 2 << 20,
                page_size: 64 << 10,
                slab_chunk_max: 16 << 10,
                eviction,
                ..StorageConfig::default()
            };
            run(config, &ops, false)?;
        }
    }
}

/// A touch in the model: the key's item, if any, expires at `expiry` (1: already expired).
fn touch_model(model: &mut Model, key: usize, expiry: u32) {
    if let Some(item) = model.items.get_mut(&key) {
        item.expiry = expiry;
        if expiry == 1 {
            model.items.remove(&key);
        }
    }
}

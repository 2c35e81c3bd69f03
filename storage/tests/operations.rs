//! Every operation's memcached semantics, on a hand-set clock.

mod common;

use common::{Harness, START_UNIX, small_config};
use ferrocache_storage::{
    ArithMode, ArithOutcome, ArithRequest, DeleteOutcome, DeleteRequest, MetaGetOptions,
    MetaGetOutcome, StorageConfig, StoreError, StoreMode, StoreOutcome, StoreRequest,
};

fn arith(h: &mut Harness, key: &[u8], mode: ArithMode, delta: u64) -> ArithOutcome {
    let (partition, hash) = h.route(key);
    partition
        .arith(&ArithRequest::new(hash, key, mode, delta))
        .expect("arith")
}

fn updated(outcome: ArithOutcome) -> u64 {
    match outcome {
        ArithOutcome::Updated { value, .. } => value,
        other => panic!("not updated: {other:?}"),
    }
}

fn meta_get(h: &mut Harness, key: &[u8], options: MetaGetOptions) -> Option<(bool, bool, bool)> {
    let (partition, hash) = h.route(key);
    match partition.meta_get(hash, key, &options) {
        MetaGetOutcome::Hit {
            win,
            stale,
            win_sent,
            ..
        } => Some((win, stale, win_sent)),
        MetaGetOutcome::Miss => None,
    }
}

#[test]
fn set_get_round_trip_with_flags_and_cas() {
    let mut h = Harness::one();
    let first = h.set(b"k", b"hello");
    assert_eq!(h.get(b"k"), Some((b"hello".to_vec(), 0)));
    h.store(StoreMode::Set, b"k", b"world", 0xdead_beef, 0)
        .unwrap();
    assert_eq!(h.get(b"k"), Some((b"world".to_vec(), 0xdead_beef)));
    let (partition, hash) = h.route(b"k");
    let item = partition.get(hash, b"k").unwrap();
    assert!(item.cas() > first, "every store gets a new CAS");
    assert_eq!(item.key(), b"k");
    assert_eq!(item.value_len(), 5);
    assert_eq!(item.ttl(), -1);
    assert_eq!(item.value().count(), 1, "small values are one chunk");
    assert_eq!(h.get(b"missing"), None);
    let stats = h.partitions[0].stats();
    assert_eq!(stats.cmd_get, 4);
    assert_eq!(stats.get_hits, 3);
    assert_eq!(stats.get_misses, 1);
    assert_eq!(stats.cmd_set, 2);
    assert_eq!(stats.curr_items, 1);
    assert_eq!(stats.total_items, 2);
}

#[test]
fn empty_value_and_invalid_keys_do_not_panic() {
    let mut h = Harness::one();
    h.set(b"empty", b"");
    assert_eq!(h.value(b"empty"), Some(Vec::new()));
    let long = vec![b'x'; 251];
    assert_eq!(
        h.store(StoreMode::Set, &long, b"v", 0, 0),
        Ok(StoreOutcome::NotStored)
    );
    assert_eq!(h.get(&long), None);
    assert_eq!(h.get(b""), None);
    let max = vec![b'y'; 250];
    h.set(&max, b"v");
    assert_eq!(h.value(&max), Some(b"v".to_vec()));
    // Vivifying paths refuse bad keys too.
    let huge = vec![b'z'; 300];
    for key in [&huge[..], b""] {
        let (partition, hash) = h.route(key);
        let mut request = ArithRequest::new(hash, key, ArithMode::Incr, 1);
        request.vivify = Some((1, 0));
        assert_eq!(partition.arith(&request), Ok(ArithOutcome::NotFound));
        let options = MetaGetOptions {
            vivify: Some(0),
            ..MetaGetOptions::default()
        };
        assert!(matches!(
            partition.meta_get(hash, key, &options),
            MetaGetOutcome::Miss
        ));
        let mut request = StoreRequest::new(hash, key, b"v", 0, 0, StoreMode::Append);
        request.vivify_exptime = Some(0);
        assert_eq!(partition.store(&request), Ok(StoreOutcome::NotStored));
        assert!(!partition.touch(hash, key, 0));
        assert_eq!(
            partition.delete(&DeleteRequest::new(hash, key)),
            DeleteOutcome::NotFound
        );
    }
    assert_eq!(h.partitions[0].len(), 2);
}

#[test]
fn add_and_replace() {
    let mut h = Harness::one();
    assert_eq!(
        h.store(StoreMode::Replace, b"k", b"1", 0, 0),
        Ok(StoreOutcome::NotStored)
    );
    assert!(matches!(
        h.store(StoreMode::Add, b"k", b"1", 0, 0),
        Ok(StoreOutcome::Stored { .. })
    ));
    assert_eq!(
        h.store(StoreMode::Add, b"k", b"2", 0, 0),
        Ok(StoreOutcome::NotStored)
    );
    assert!(matches!(
        h.store(StoreMode::Replace, b"k", b"3", 0, 0),
        Ok(StoreOutcome::Stored { .. })
    ));
    assert_eq!(h.value(b"k"), Some(b"3".to_vec()));
    // An expired item does not block add.
    h.store(StoreMode::Set, b"e", b"old", 0, 1).unwrap();
    h.clock.advance(2);
    assert!(matches!(
        h.store(StoreMode::Add, b"e", b"new", 0, 0),
        Ok(StoreOutcome::Stored { .. })
    ));
    assert_eq!(h.value(b"e"), Some(b"new".to_vec()));
}

#[test]
fn append_and_prepend_keep_flags_and_expiry() {
    let mut h = Harness::one();
    assert_eq!(
        h.store(StoreMode::Append, b"k", b"x", 0, 0),
        Ok(StoreOutcome::NotStored)
    );
    h.store(StoreMode::Set, b"k", b"mid", 7, 100).unwrap();
    h.store(StoreMode::Append, b"k", b"-end", 99, 0).unwrap();
    h.store(StoreMode::Prepend, b"k", b"start-", 98, 0).unwrap();
    assert_eq!(h.get(b"k"), Some((b"start-mid-end".to_vec(), 7)));
    let (partition, hash) = h.route(b"k");
    assert_eq!(partition.peek(hash, b"k").unwrap().ttl(), 100);
    h.clock.advance(100);
    assert_eq!(h.get(b"k"), None, "the original expiry still applies");
}

#[test]
fn append_vivifies_with_meta_n() {
    let mut h = Harness::one();
    let (partition, hash) = h.route(b"k");
    let mut request = StoreRequest::new(hash, b"k", b"abc", 3, 0, StoreMode::Append);
    request.vivify_exptime = Some(50);
    assert!(matches!(
        partition.store(&request),
        Ok(StoreOutcome::Stored { .. })
    ));
    let item = partition.peek(hash, b"k").unwrap();
    assert_eq!(item.ttl(), 50);
    assert_eq!(item.value().next(), Some(&b"abc"[..]));
}

#[test]
fn cas_stored_exists_not_found() {
    let mut h = Harness::one();
    let (partition, hash) = h.route(b"k");
    let mut request = StoreRequest::new(hash, b"k", b"v", 0, 0, StoreMode::Set);
    request.compare_cas = Some(1);
    assert_eq!(partition.store(&request), Ok(StoreOutcome::NotFound));
    let cas = h.set(b"k", b"v1");
    let (partition, hash) = h.route(b"k");
    let mut request = StoreRequest::new(hash, b"k", b"v2", 0, 0, StoreMode::Set);
    request.compare_cas = Some(cas + 100);
    assert_eq!(partition.store(&request), Ok(StoreOutcome::Exists));
    request.compare_cas = Some(0);
    assert_eq!(
        partition.store(&request),
        Ok(StoreOutcome::Exists),
        "cas 0 never matches"
    );
    request.compare_cas = Some(cas);
    let Ok(StoreOutcome::Stored { cas: new_cas }) = partition.store(&request) else {
        panic!("cas with the right value stores");
    };
    assert_ne!(new_cas, cas);
    assert_eq!(partition.store(&request), Ok(StoreOutcome::Exists));
    let stats = partition.stats();
    assert_eq!(
        (stats.cas_misses, stats.cas_hits, stats.cas_badval),
        (1, 1, 3)
    );
}

#[test]
fn replace_with_cas_works_like_cas() {
    let mut h = Harness::one();
    let (partition, hash) = h.route(b"k");
    let mut request = StoreRequest::new(hash, b"k", b"v", 0, 0, StoreMode::Replace);
    request.compare_cas = Some(1);
    assert_eq!(partition.store(&request), Ok(StoreOutcome::NotFound));
    let cas = h.set(b"k", b"v1");
    let (partition, hash) = h.route(b"k");
    let mut request = StoreRequest::new(hash, b"k", b"v2", 0, 0, StoreMode::Replace);
    request.compare_cas = Some(cas + 1);
    assert_eq!(partition.store(&request), Ok(StoreOutcome::Exists));
    request.compare_cas = Some(cas);
    assert!(matches!(
        partition.store(&request),
        Ok(StoreOutcome::Stored { .. })
    ));
    // Append with a CAS only checks it.
    let current = partition.peek(hash, b"k").unwrap().cas();
    let mut request = StoreRequest::new(hash, b"k", b"+", 0, 0, StoreMode::Append);
    request.compare_cas = Some(current + 1);
    assert_eq!(partition.store(&request), Ok(StoreOutcome::Exists));
    request.compare_cas = Some(current);
    assert!(matches!(
        partition.store(&request),
        Ok(StoreOutcome::Stored { .. })
    ));
    assert_eq!(h.value(b"k"), Some(b"v2+".to_vec()));
}

#[test]
fn new_cas_is_kept_even_when_wide() {
    let mut h = Harness::one();
    for wanted in [5u64, 1 << 48, u64::MAX] {
        let (partition, hash) = h.route(b"k");
        let mut request = StoreRequest::new(hash, b"k", b"value", 0, 0, StoreMode::Set);
        request.new_cas = Some(wanted);
        assert_eq!(
            partition.store(&request),
            Ok(StoreOutcome::Stored { cas: wanted })
        );
        assert_eq!(partition.peek(hash, b"k").unwrap().cas(), wanted);
    }
    // md I with a wide CAS on a narrow item rewrites the item.
    h.set(b"n", b"narrow");
    let (partition, hash) = h.route(b"n");
    let mut delete = DeleteRequest::new(hash, b"n");
    delete.invalidate = Some(None);
    delete.new_cas = Some(u64::MAX - 1);
    assert_eq!(partition.delete(&delete), DeleteOutcome::Deleted);
    let item = partition.peek(hash, b"n").unwrap();
    assert_eq!(item.cas(), u64::MAX - 1);
    assert_eq!(item.value().next(), Some(&b"narrow"[..]));
}

/// An incr that changes how the CAS is kept (a client's CAS kept whole in 8 bytes, one the
/// partition hands out in 5) moves the value in the header's wake: the digits land in the
/// value, not over the key or past the item.
#[test]
fn incr_in_place_that_changes_the_cas_width_keeps_key_and_value() {
    let mut h = Harness::one();
    // Given CAS on the item, handed-out CAS from the incr; then the other way round.
    for (stored_cas, incr_cas) in [(Some(1u64 << 50), None), (None, Some(77u64))] {
        let (partition, hash) = h.route(b"counter");
        let mut request = StoreRequest::new(hash, b"counter", b"100", 0, 0, StoreMode::Set);
        request.new_cas = stored_cas;
        partition.store(&request).unwrap();
        let mut incr = ArithRequest::new(hash, b"counter", ArithMode::Incr, 5);
        incr.new_cas = incr_cas;
        let Ok(ArithOutcome::Updated { value, cas, .. }) = partition.arith(&incr) else {
            panic!("incr");
        };
        assert_eq!(value, 105);
        if let Some(given) = incr_cas {
            assert_eq!(cas, given);
        }
        let item = partition.peek(hash, b"counter").unwrap();
        assert_eq!(item.key(), b"counter");
        assert_eq!(item.cas(), cas);
        assert_eq!(item.value().flatten().copied().collect::<Vec<u8>>(), b"105");
    }
}

#[test]
fn delete_plain_and_with_cas() {
    let mut h = Harness::one();
    let cas = h.set(b"k", b"v");
    let (partition, hash) = h.route(b"k");
    let mut request = DeleteRequest::new(hash, b"k");
    request.compare_cas = Some(cas + 1);
    assert_eq!(partition.delete(&request), DeleteOutcome::Exists);
    request.compare_cas = Some(cas);
    assert_eq!(partition.delete(&request), DeleteOutcome::Deleted);
    assert_eq!(partition.delete(&request), DeleteOutcome::NotFound);
    assert!(partition.is_empty());
    let stats = partition.stats();
    assert_eq!((stats.delete_hits, stats.delete_misses), (1, 2));
    assert_eq!(stats.bytes, 0);
}

#[test]
fn incr_decr_semantics() {
    let mut h = Harness::one();
    assert_eq!(
        arith(&mut h, b"n", ArithMode::Incr, 1),
        ArithOutcome::NotFound
    );
    h.set(b"n", b"100");
    assert_eq!(updated(arith(&mut h, b"n", ArithMode::Decr, 1)), 99);
    assert_eq!(
        h.value(b"n"),
        Some(b"99 ".to_vec()),
        "decr pads to the length"
    );
    assert_eq!(updated(arith(&mut h, b"n", ArithMode::Incr, 901)), 1000);
    assert_eq!(
        h.value(b"n"),
        Some(b"1000".to_vec()),
        "a longer number is a new item"
    );
    assert_eq!(updated(arith(&mut h, b"n", ArithMode::Decr, 5000)), 0);
    assert_eq!(h.value(b"n"), Some(b"0   ".to_vec()), "decr floors at 0");
    h.set(b"max", u64::MAX.to_string().as_bytes());
    assert_eq!(updated(arith(&mut h, b"max", ArithMode::Incr, 2)), 1);
    assert_eq!(h.value(b"max"), Some(b"1                   ".to_vec()));
    for bad in [
        &b"abc"[..],
        b"12abc",
        b"-5",
        b"",
        b"   ",
        b"99999999999999999999999",
    ] {
        h.set(b"bad", bad);
        assert_eq!(
            arith(&mut h, b"bad", ArithMode::Incr, 1),
            ArithOutcome::NonNumeric,
            "{bad:?}"
        );
    }
    for (good, expect) in [
        (&b"  12"[..], 13),
        (b"12 ", 13),
        (b"+7", 8),
        (b"007", 8),
        (b"12 junk", 13),
    ] {
        h.set(b"good", good);
        assert_eq!(updated(arith(&mut h, b"good", ArithMode::Incr, 1)), expect);
    }
    let stats = h.partitions[0].stats();
    assert!(stats.incr_hits >= 6 && stats.decr_hits == 2 && stats.incr_misses == 1);
}

#[test]
fn meta_arith_cas_vivify_and_ttl() {
    let mut h = Harness::one();
    let (partition, hash) = h.route(b"c");
    let mut request = ArithRequest::new(hash, b"c", ArithMode::Incr, 5);
    request.vivify = Some((10, 60));
    let ArithOutcome::Updated {
        value,
        cas,
        ttl,
        created,
    } = partition.arith(&request).unwrap()
    else {
        panic!("vivified");
    };
    assert_eq!((value, ttl, created), (10, 60, true));
    request.compare_cas = Some(cas + 1);
    assert_eq!(partition.arith(&request).unwrap(), ArithOutcome::Exists);
    request.compare_cas = Some(cas);
    request.exptime = Some(0);
    request.new_cas = Some(777);
    assert_eq!(
        partition.arith(&request).unwrap(),
        ArithOutcome::Updated {
            value: 15,
            cas: 777,
            ttl: -1,
            created: false,
        }
    );
}

#[test]
fn expiry_kinds() {
    let mut h = Harness::one();
    h.store(StoreMode::Set, b"never", b"v", 0, 0).unwrap();
    h.store(StoreMode::Set, b"rel", b"v", 0, 10).unwrap();
    h.store(StoreMode::Set, b"abs", b"v", 0, START_UNIX + 20)
        .unwrap();
    h.store(StoreMode::Set, b"past", b"v", 0, START_UNIX - 20)
        .unwrap();
    h.store(StoreMode::Set, b"neg", b"v", 0, -1).unwrap();
    h.store(StoreMode::Set, b"30days+1", b"v", 0, 2_592_001)
        .unwrap();
    assert!(h.get(b"past").is_none() && h.get(b"neg").is_none() && h.get(b"30days+1").is_none());
    h.clock.advance(9);
    assert!(h.get(b"rel").is_some());
    h.clock.advance(1);
    assert!(h.get(b"rel").is_none(), "expired at exactly its second");
    assert!(h.get(b"abs").is_some());
    h.clock.advance(10);
    assert!(h.get(b"abs").is_none());
    assert!(h.get(b"never").is_some());
    let stats = h.partitions[0].stats();
    assert_eq!(stats.get_expired, 5);
    assert_eq!(stats.curr_items, 1);
    assert_eq!(stats.reclaimed, 5);
    assert_eq!(stats.expired_unfetched, 3, "rel and abs were fetched");
}

#[test]
fn touch_and_get_and_touch() {
    let mut h = Harness::one();
    h.store(StoreMode::Set, b"k", b"v", 0, 5).unwrap();
    let (partition, hash) = h.route(b"k");
    assert!(partition.touch(hash, b"k", 100));
    assert!(!partition.touch(hash, b"nope", 100));
    h.clock.advance(50);
    let (partition, hash) = h.route(b"k");
    let item = partition.get_and_touch(hash, b"k", 10).unwrap();
    assert_eq!(item.ttl(), 10);
    h.clock.advance(10);
    assert!(h.get(b"k").is_none());
    let stats = h.partitions[0].stats();
    assert_eq!(
        (stats.touch_hits, stats.touch_misses, stats.cmd_touch),
        (2, 1, 3)
    );
}

/// An item stored without an exptime has no expiry field; a touch, `gat` or meta `T` gives it
/// one, in its chunk when there are 4 bytes to spare (a 100-byte value in a 128-byte chunk),
/// else by rewriting it into a larger chunk (a 109-byte value with flags fills one). Either way it keeps
/// its value, flags and CAS, the gauges follow its new size, and no store is counted.
#[test]
fn an_exptime_given_to_an_item_stored_without_one_keeps_it_whole() {
    for value_len in [100, 109] {
        for how in ["touch", "gat", "mg T"] {
            let mut h = Harness::one();
            let value = vec![b'v'; value_len];
            h.store(StoreMode::Set, b"k", &value, 7, 0).unwrap();
            h.set(b"other", &value);
            let (partition, hash) = h.route(b"k");
            let (cas, class) = partition
                .peek(hash, b"k")
                .map(|item| (item.cas(), item.class_id()))
                .unwrap();
            let before = partition.stats();
            // 14 bytes of header, 4 of flags, the key: 128 bytes with a 109-byte value.
            let flagged = 14 + 4 + 1 + value_len;
            assert_eq!(before.bytes, (flagged + 14 + 5 + value_len) as u64);
            match how {
                "touch" => assert!(partition.touch(hash, b"k", 100)),
                "gat" => assert_eq!(partition.get_and_touch(hash, b"k", 100).unwrap().ttl(), 100),
                _ => {
                    let options = MetaGetOptions {
                        touch: Some(100),
                        ..MetaGetOptions::default()
                    };
                    let MetaGetOutcome::Hit { item, .. } = partition.meta_get(hash, b"k", &options)
                    else {
                        panic!("hit");
                    };
                    assert_eq!(item.ttl(), 100);
                }
            }
            let item = partition.peek(hash, b"k").unwrap();
            let size = flagged + 4;
            assert_eq!(
                (item.total_size(), item.ttl()),
                (size, 100),
                "{how} {value_len}"
            );
            assert_eq!((item.cas(), item.flags()), (cas, 7));
            let moved = value_len == 109;
            assert_eq!(
                item.class_id() != class,
                moved,
                "rewritten only without room"
            );
            let after = partition.stats();
            assert_eq!(after.bytes, before.bytes + 4);
            assert_eq!(after.total_items, before.total_items, "not a store");
            assert_eq!(after.curr_items, 2);
            let requested: u64 = partition
                .class_stats()
                .iter()
                .map(|c| c.1.mem_requested)
                .sum();
            assert_eq!(requested, after.bytes);
            // A touch back to 0 keeps the field (no second move).
            assert!(partition.touch(hash, b"k", 0));
            let item = partition.peek(hash, b"k").unwrap();
            assert_eq!((item.total_size(), item.ttl()), (size, -1));
            assert_eq!(h.value(b"k"), Some(value.clone()), "{how} {value_len}");
            assert_eq!(h.value(b"other"), Some(value.clone()));
            h.clock.advance(200);
            assert_eq!(h.value(b"k"), Some(value), "exptime 0 again: never expires");
            let (partition, hash) = h.route(b"k");
            assert!(partition.touch(hash, b"k", 10));
            h.clock.advance(11);
            assert!(h.get(b"k").is_none(), "{how} {value_len}: expired");
            let (partition, _) = h.route(b"k");
            assert_eq!(partition.stats().bytes, (14 + 5 + value_len) as u64);
        }
    }
}

/// The size limit counts the expiry field that an item stored without an exptime lacks, so a
/// touch never takes an item over `-I` (with the largest chunk `-I` itself, a full-size item
/// would have had no larger chunk to move to). Under `-M` every item carries the field: a
/// touch there must never need memory.
#[test]
fn an_item_at_the_size_limit_can_be_touched_and_no_eviction_items_carry_an_expiry() {
    let config = StorageConfig {
        item_size_max: 1024,
        slab_chunk_max: 1024,
        ..small_config()
    };
    let mut h = Harness::new(config, 1);
    assert_eq!(
        h.store(StoreMode::Set, b"k", &[b'v'; 1006], 0, 0),
        Err(StoreError::TooLarge)
    );
    h.set(b"k", &[b'v'; 1005]);
    let (partition, hash) = h.route(b"k");
    assert_eq!(partition.peek(hash, b"k").unwrap().total_size(), 1020);
    assert!(partition.touch(hash, b"k", 100));
    let item = partition.peek(hash, b"k").unwrap();
    assert_eq!((item.total_size(), item.ttl()), (1024, 100));

    let mut h = Harness::new(
        StorageConfig {
            evictions: false,
            ..small_config()
        },
        1,
    );
    h.set(b"k", b"v");
    let (partition, hash) = h.route(b"k");
    assert_eq!(partition.peek(hash, b"k").unwrap().total_size(), 14 + 4 + 2);
}

#[test]
fn flush_all_now_and_later() {
    let mut h = Harness::one();
    h.set(b"before", b"v");
    let (partition, _) = h.route(b"before");
    partition.flush_all(0);
    h.set(b"after", b"v");
    assert!(h.get(b"before").is_none(), "flushed");
    assert!(
        h.get(b"after").is_some(),
        "stored after the flush, same second"
    );
    h.clock.advance(1);
    assert!(h.get(b"after").is_some());
    assert_eq!(h.partitions[0].stats().get_flushed, 1);

    // Delayed: items stored before the moment die at the moment; items after live.
    h.set(b"old", b"v");
    h.partitions[0].flush_all(10);
    h.clock.advance(5);
    h.set(b"during", b"v");
    assert!(h.get(b"old").is_some(), "not yet");
    h.clock.advance(5);
    h.set(b"at", b"v");
    assert!(h.get(b"old").is_none());
    assert!(h.get(b"during").is_none(), "stored before the flush moment");
    assert!(h.get(b"after").is_none());
    assert!(h.get(b"at").is_some(), "stored at the flush moment");
    h.maintain(1000);
    assert!(h.get(b"at").is_some());
    assert_eq!(h.partitions[0].len(), 1);
}

#[test]
fn flush_with_absolute_time_and_replaced_pending_flush() {
    let mut h = Harness::one();
    h.set(b"a", b"v");
    h.partitions[0].flush_all(START_UNIX + 5);
    h.clock.advance(4);
    assert!(h.get(b"a").is_some());
    h.partitions[0].flush_all(100);
    h.clock.advance(1);
    assert!(
        h.get(b"a").is_some(),
        "the later flush_all replaced the pending one"
    );
    h.partitions[0].flush_all(-1);
    assert!(h.get(b"a").is_none());
}

#[test]
fn crawler_reclaims_expired_and_flushed() {
    let mut h = Harness::one();
    for i in 0..500 {
        h.store(StoreMode::Set, format!("k{i}").as_bytes(), b"v", 0, 10)
            .unwrap();
    }
    h.clock.advance(10);
    let mut examined = 0;
    for _ in 0..100 {
        examined += h.partitions[0].maintain(64);
    }
    assert!(examined > 0);
    let stats = h.partitions[0].stats();
    assert_eq!(stats.curr_items, 0);
    assert_eq!(stats.crawler_reclaimed, 500);
    assert!(stats.crawler_items_checked >= 500);
}

#[test]
fn meta_stale_and_win_tokens() {
    let mut h = Harness::one();
    h.set(b"k", b"v");
    let (partition, hash) = h.route(b"k");
    let mut delete = DeleteRequest::new(hash, b"k");
    delete.invalidate = Some(Some(30));
    assert_eq!(partition.delete(&delete), DeleteOutcome::Deleted);
    assert_eq!(partition.peek(hash, b"k").unwrap().ttl(), 30);
    let options = MetaGetOptions::default();
    assert_eq!(meta_get(&mut h, b"k", options), Some((true, true, false)));
    assert_eq!(meta_get(&mut h, b"k", options), Some((false, true, true)));
    // A new invalidation lets the next reader win again.
    let (partition, _) = h.route(b"k");
    partition.delete(&delete);
    assert_eq!(meta_get(&mut h, b"k", options), Some((true, true, false)));
}

#[test]
fn meta_recache_threshold() {
    let mut h = Harness::one();
    h.store(StoreMode::Set, b"k", b"v", 0, 100).unwrap();
    let mut options = MetaGetOptions {
        recache_below: Some(30),
        ..MetaGetOptions::default()
    };
    assert_eq!(meta_get(&mut h, b"k", options), Some((false, false, false)));
    h.clock.advance(80);
    assert_eq!(meta_get(&mut h, b"k", options), Some((true, false, false)));
    assert_eq!(meta_get(&mut h, b"k", options), Some((false, false, true)));
    options.recache_below = None;
    h.set(b"forever", b"v");
    options.recache_below = Some(1000);
    assert_eq!(
        meta_get(&mut h, b"forever", options),
        Some((false, false, false)),
        "no TTL, no recache"
    );
}

#[test]
fn meta_vivify_on_miss() {
    let mut h = Harness::one();
    let options = MetaGetOptions {
        vivify: Some(30),
        ..MetaGetOptions::default()
    };
    let (partition, hash) = h.route(b"k");
    match partition.meta_get(hash, b"k", &options) {
        MetaGetOutcome::Hit {
            item,
            win,
            win_sent,
            ..
        } => {
            assert!(win && !win_sent);
            assert_eq!(item.value_len(), 0);
            assert_eq!(item.ttl(), 30);
        }
        MetaGetOutcome::Miss => panic!("vivified"),
    }
    assert_eq!(meta_get(&mut h, b"k", options), Some((false, false, true)));
    assert_eq!(
        meta_get(&mut h, b"nope", MetaGetOptions::default()),
        None,
        "no vivify, miss"
    );
}

#[test]
fn meta_hit_before_last_access_and_no_bump() {
    let mut h = Harness::one();
    h.set(b"k", b"v");
    h.clock.advance(7);
    let no_bump = MetaGetOptions {
        bump: false,
        ..MetaGetOptions::default()
    };
    let (partition, hash) = h.route(b"k");
    let MetaGetOutcome::Hit {
        hit_before,
        last_access,
        ..
    } = partition.meta_get(hash, b"k", &no_bump)
    else {
        panic!("hit");
    };
    assert!(!hit_before);
    assert_eq!(last_access, 7);
    assert!(
        !partition.peek(hash, b"k").unwrap().fetched(),
        "u does not bump"
    );
    let MetaGetOutcome::Hit { hit_before, .. } =
        partition.meta_get(hash, b"k", &MetaGetOptions::default())
    else {
        panic!("hit");
    };
    assert!(!hit_before);
    let MetaGetOutcome::Hit {
        hit_before,
        last_access,
        ..
    } = partition.meta_get(hash, b"k", &MetaGetOptions::default())
    else {
        panic!("hit");
    };
    assert!(hit_before);
    assert_eq!(last_access, 0);
    let item = partition.peek(hash, b"k").unwrap();
    assert!(item.fetched());
    assert_eq!(item.last_access(), 0);
}

#[test]
fn meta_touch_counts_as_touch() {
    let mut h = Harness::one();
    h.set(b"k", b"v");
    let options = MetaGetOptions {
        touch: Some(40),
        ..MetaGetOptions::default()
    };
    let (partition, hash) = h.route(b"k");
    let MetaGetOutcome::Hit { item, .. } = partition.meta_get(hash, b"k", &options) else {
        panic!("hit");
    };
    assert_eq!(item.ttl(), 40);
    assert_eq!(partition.stats().touch_hits, 1);
}

#[test]
fn meta_set_invalidate_marks_stale() {
    let mut h = Harness::one();
    let cas = h.set(b"k", b"new");
    h.set(b"k", b"newer");
    let (partition, hash) = h.route(b"k");
    let current = partition.peek(hash, b"k").unwrap().cas();
    assert!(cas < current);
    let mut request = StoreRequest::new(hash, b"k", b"late", 0, 0, StoreMode::Set);
    request.compare_cas = Some(cas);
    request.invalidate = true;
    assert!(matches!(
        partition.store(&request),
        Ok(StoreOutcome::Stored { .. })
    ));
    assert_eq!(
        meta_get(&mut h, b"k", MetaGetOptions::default()),
        Some((true, true, false))
    );
    assert_eq!(h.value(b"k"), Some(b"late".to_vec()));
    // A newer CAS than the item's is a plain mismatch.
    let (partition, hash) = h.route(b"k");
    let mut request = StoreRequest::new(hash, b"k", b"x", 0, 0, StoreMode::Set);
    request.compare_cas = Some(u64::MAX);
    request.invalidate = true;
    assert_eq!(partition.store(&request), Ok(StoreOutcome::Exists));
}

#[test]
fn large_values_are_chained_and_round_trip() {
    let mut h = Harness::new(
        StorageConfig {
            memory_limit: 16 << 20,
            ..StorageConfig::default()
        },
        1,
    );
    for len in [600_000usize, 524_288, 1_048_000, 2_000_000 / 2] {
        let value: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        h.store(StoreMode::Set, b"big", &value, 5, 0).unwrap();
        let (partition, hash) = h.route(b"big");
        let item = partition.get(hash, b"big").unwrap();
        assert_eq!(item.value_len(), len);
        assert!(item.value().count() > 1, "chained over several chunks");
        assert!(item.total_size() <= 1 << 20);
        let read: Vec<u8> = item.value().flatten().copied().collect();
        assert_eq!(read, value);
        assert_eq!(item.flags(), 5);
    }
    h.store(StoreMode::Append, b"big", b"tail", 0, 0).unwrap();
    assert!(h.value(b"big").unwrap().ends_with(b"tail"));
    assert_eq!(
        arith(&mut h, b"big", ArithMode::Incr, 1),
        ArithOutcome::NonNumeric
    );
    let (partition, hash) = h.route(b"big");
    assert_eq!(
        partition.delete(&DeleteRequest::new(hash, b"big")),
        DeleteOutcome::Deleted
    );
    let used: u64 = partition
        .class_stats()
        .iter()
        .map(|(_, c)| c.used_chunks)
        .sum();
    assert_eq!(used, 0, "every chunk of the chain was freed");
}

#[test]
fn too_large_follows_memcached() {
    let mut h = Harness::new(
        StorageConfig {
            memory_limit: 16 << 20,
            ..StorageConfig::default()
        },
        1,
    );
    assert_eq!(
        h.store(StoreMode::Set, b"k", &vec![0u8; 1 << 20], 0, 0),
        Err(StoreError::TooLarge)
    );
    assert!(
        h.store(StoreMode::Set, b"k", &vec![0u8; 1_048_000], 0, 0)
            .is_ok()
    );
    // A failed set drops the old value rather than leave it served.
    assert_eq!(
        h.store(StoreMode::Set, b"k", &vec![0u8; 2 << 20], 0, 0),
        Err(StoreError::TooLarge)
    );
    assert!(h.get(b"k").is_none());
    assert_eq!(h.partitions[0].stats().store_too_large, 2);
}

#[test]
fn out_of_memory_without_evictions() {
    let mut h = Harness::new(
        StorageConfig {
            memory_limit: 4 << 20,
            evictions: false,
            ..StorageConfig::default()
        },
        1,
    );
    let value = vec![b'v'; 1000];
    let mut stored = 0;
    let mut failed = false;
    for i in 0..10_000 {
        match h.store(StoreMode::Set, format!("key{i}").as_bytes(), &value, 0, 0) {
            Ok(_) => stored += 1,
            Err(error) => {
                assert_eq!(error, StoreError::OutOfMemory);
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "memory ran out");
    assert!(stored > 3000, "4 MiB of 1 KiB items");
    assert_eq!(h.value(b"key0"), Some(value.clone()), "nothing was evicted");
    assert_eq!(h.partitions[0].stats().evictions, 0);
    assert!(h.pool.pages_in_use() <= 4);
    // Expired items still make room.
    h.store(StoreMode::Set, b"key0", &value, 0, -1).ok();
    h.store(StoreMode::Set, b"key1", &value, 0, -1).ok();
    assert!(h.store(StoreMode::Set, b"fresh", &value, 0, 0).is_ok());
}

#[test]
fn cas_disabled_reports_zero() {
    let mut h = Harness::new(
        StorageConfig {
            cas: false,
            ..small_config()
        },
        1,
    );
    assert_eq!(h.set(b"k", b"v"), 0);
    let (partition, hash) = h.route(b"k");
    let item = partition.get(hash, b"k").unwrap();
    assert_eq!(item.cas(), 0);
    assert_eq!(item.total_size(), 9 + 1 + 1);
    let mut request = StoreRequest::new(hash, b"k", b"w", 0, 0, StoreMode::Set);
    request.compare_cas = Some(0);
    assert_eq!(partition.store(&request), Ok(StoreOutcome::Exists));
}

#[test]
fn w4_item_fits_the_147_byte_class() {
    let mut h = Harness::one();
    let key = b"key:0000000000000000000000:123456";
    assert_eq!(key.len(), 33);
    h.set(key, &[b'x'; 100]);
    let (partition, hash) = h.route(key);
    let item = partition.peek(hash, key).unwrap();
    assert_eq!(
        item.total_size(),
        147,
        "14 bytes of header without an exptime"
    );
    assert_eq!(item.class_id(), 9);
    let classes = partition.class_stats();
    assert_eq!(classes.len(), 1);
    let (id, class) = &classes[0];
    assert_eq!(*id, 9);
    assert_eq!(class.chunk_size, 147);
    assert_eq!(class.chunks_per_page, (1 << 20) / 147);
    assert_eq!(class.used_chunks, 1);
    assert_eq!(class.items, 1);
    assert_eq!(class.mem_requested, 147);
    assert_eq!(class.total_pages, 1);
    assert_eq!(class.free_chunks, class.total_chunks - 1);
}

#[test]
fn eviction_keeps_recent_items_and_the_page_bound() {
    let mut h = Harness::new(small_config(), 2);
    let value = vec![b'v'; 100];
    for i in 0..200_000 {
        let key = format!("key:{i}");
        h.store(StoreMode::Set, key.as_bytes(), &value, 0, 0)
            .unwrap();
        assert!(h.pool.pages_in_use() <= h.pool.limit_pages());
        if i % 1000 == 0 {
            h.maintain(100);
        }
    }
    let evictions: u64 = h.partitions.iter().map(|p| p.stats().evictions).sum();
    assert!(evictions > 100_000);
    let recent_hits = (199_000..200_000)
        .filter(|i| h.get(format!("key:{i}").as_bytes()).is_some())
        .count();
    assert!(recent_hits > 950, "recent items are kept: {recent_hits}");
    assert!(h.pages_held() <= 8);
}

#[test]
fn hot_items_survive_a_scan() {
    let mut h = Harness::new(small_config(), 1);
    let value = vec![b'v'; 100];
    for i in 0..1000 {
        h.store(StoreMode::Set, format!("hot:{i}").as_bytes(), &value, 0, 0)
            .unwrap();
    }
    for round in 0..100_000 {
        h.store(
            StoreMode::Set,
            format!("scan:{round}").as_bytes(),
            &value,
            0,
            0,
        )
        .unwrap();
        let hot = format!("hot:{}", round % 1000);
        h.get(hot.as_bytes());
    }
    let hot_hits = (0..1000)
        .filter(|i| h.get(format!("hot:{i}").as_bytes()).is_some())
        .count();
    assert!(
        hot_hits > 900,
        "CLOCK gives read items a second chance: {hot_hits}"
    );
}

#[test]
fn size_shift_moves_memory_to_the_new_class() {
    let mut h = Harness::new(small_config(), 2);
    let small = vec![b's'; 100];
    // Keys of one length: the small values fill one class, whose last page it keeps.
    for i in 0..100_000 {
        h.store(
            StoreMode::Set,
            format!("small:{i:06}").as_bytes(),
            &small,
            0,
            0,
        )
        .unwrap();
    }
    assert!(h.pool.is_exhausted());
    // Now only 10 KiB values: about 4 MiB of them, half the memory.
    let big = vec![b'b'; 10 * 1024];
    let keys = 400;
    let mut failures = 0;
    for round in 0..20 {
        for i in 0..keys {
            if h.store(StoreMode::Set, format!("big:{i}").as_bytes(), &big, 0, 0)
                .is_err()
            {
                failures += 1;
            }
            if i % 50 == 0 {
                h.maintain(1000);
            }
        }
        let _ = round;
    }
    assert_eq!(failures, 0, "the new class always finds memory");
    let hits = (0..keys)
        .filter(|i| h.value(format!("big:{i}").as_bytes()).as_deref() == Some(&big[..]))
        .count();
    assert!(
        hits * 100 >= keys * 95,
        "the new working set fits: {hits}/{keys}"
    );
    let moved: u64 = h.partitions.iter().map(|p| p.stats().slabs_moved).sum();
    assert!(moved > 0);
    assert!(h.pool.pages_in_use() <= h.pool.limit_pages());
}

#[test]
fn pages_flow_to_a_starving_partition() {
    let mut h = Harness::new(small_config(), 2);
    let value = vec![b'v'; 100];
    // Fill the whole pool from partition 0 only.
    let mut i = 0;
    while h.partitions[0].pages() < 8 {
        let key = format!("a:{i}");
        let hash = h.hasher.hash(key.as_bytes());
        if h.hasher.partition_of(hash) == 0 {
            h.partitions[0]
                .store(&StoreRequest::new(
                    hash,
                    key.as_bytes(),
                    &value,
                    0,
                    0,
                    StoreMode::Set,
                ))
                .unwrap();
        }
        i += 1;
    }
    assert!(h.pool.is_exhausted());
    let key = (0..)
        .map(|i| format!("b:{i}"))
        .find(|key| h.hasher.partition_of(h.hasher.hash(key.as_bytes())) == 1)
        .unwrap();
    assert_eq!(
        h.store(StoreMode::Set, key.as_bytes(), &value, 0, 0),
        Err(StoreError::OutOfMemory),
        "partition 1 holds nothing and the pool is spent"
    );
    h.maintain(10);
    assert!(
        h.store(StoreMode::Set, key.as_bytes(), &value, 0, 0)
            .is_ok()
    );
    assert!(h.partitions[1].pages() >= 1);
    assert!(h.pool.pages_in_use() <= h.pool.limit_pages());
}

#[test]
fn empty_pages_go_back_to_the_pool() {
    let mut h = Harness::one();
    let value = vec![b'v'; 100];
    for i in 0..30_000 {
        h.store(StoreMode::Set, format!("k{i}").as_bytes(), &value, 0, 0)
            .unwrap();
    }
    let before = h.partitions[0].pages();
    assert!(before >= 4);
    for i in 0..30_000 {
        let key = format!("k{i}");
        let (partition, hash) = h.route(key.as_bytes());
        partition.delete(&DeleteRequest::new(hash, key.as_bytes()));
    }
    h.maintain(10);
    assert!(h.partitions[0].pages() <= 1, "kept at most one page");
    assert_eq!(h.pool.pages_in_use(), h.partitions[0].pages());
}

#[test]
fn reset_stats_keeps_gauges() {
    let mut h = Harness::one();
    h.set(b"k", b"v");
    h.get(b"k");
    h.partitions[0].reset_stats();
    let stats = h.partitions[0].stats();
    assert_eq!(stats.get_hits, 0);
    assert_eq!(stats.curr_items, 1);
    assert!(stats.bytes > 0 && stats.total_pages == 1 && stats.hash_capacity > 0);
}

#[test]
fn dropping_a_partition_returns_its_pages() {
    let mut h = Harness::new(small_config(), 2);
    for i in 0..1000 {
        h.set(format!("k{i}").as_bytes(), b"v");
    }
    assert!(h.pool.pages_in_use() > 0);
    h.partitions.clear();
    assert_eq!(h.pool.pages_in_use(), 0);
}

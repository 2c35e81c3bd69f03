//! `lru_crawler` and `stats cachedump` through the real session and command layer, on the
//! harness's moved clock: metadump's fields (absolute times, fetch, class, size), its URI
//! encoding of keys, memcached's refusals, `crawl` reclaiming, cachedump's lines, and a dump
//! of 100,000 items streamed past the output high-water mark.

use super::{Harness, START_UNIX};

/// The metadump's item lines, sorted (ferrocached walks memory, memcached its LRUs), after
/// checking that the dump ends with `END\r\n` and every line with a bare `\n`.
fn metadump(conn: &mut super::Conn<'_>, target: &str) -> Vec<String> {
    let reply = conn.call(&format!("lru_crawler metadump {target}\r\n"));
    let body = reply
        .strip_suffix("END\r\n")
        .unwrap_or_else(|| panic!("no END: {reply:?}"));
    assert!(!body.contains('\r'), "item lines end with a bare \\n");
    let mut lines: Vec<String> = body.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// A field of `me <key>`'s answer (`cls=`, `size=`, `cas=`).
fn field_of(conn: &mut super::Conn<'_>, key: &str, name: &str) -> String {
    let me = conn.call(&format!("me {key}\r\n"));
    me.split_whitespace()
        .find_map(|f| f.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in {me}"))
        .to_string()
}

/// `cls=` and `size=` as `me` reports them for `key` (the size is ferrocached's item size,
/// smaller than memcached's, whose header is larger).
fn class_and_size(conn: &mut super::Conn<'_>, key: &str) -> (String, String) {
    (field_of(conn, key, "cls="), field_of(conn, key, "size="))
}

fn cas_of(conn: &mut super::Conn<'_>, key: &str) -> String {
    let reply = conn.call(&format!("gets {key}\r\n"));
    reply.split_whitespace().nth(4).expect("a cas").to_string()
}

#[test]
fn metadump_lists_live_items_with_memcached_fields() {
    let harness = Harness::new(&[]);
    let mut conn = harness.connect();
    assert_eq!(conn.call("set a 0 0 1\r\nx\r\n"), "STORED\r\n");
    assert_eq!(conn.call("set b 5 100 3\r\nxyz\r\n"), "STORED\r\n");
    assert_eq!(conn.call("set gone 0 3 1\r\nx\r\n"), "STORED\r\n");
    harness.advance(7);
    // Read at START + 7: fetch=yes and a later la; b is never read.
    let cas_a = cas_of(&mut conn, "a");
    // `me` neither bumps nor marks a fetch.
    let cas_b = field_of(&mut conn, "b", "cas=");
    let (cls_a, size_a) = class_and_size(&mut conn, "a");
    let (cls_b, size_b) = class_and_size(&mut conn, "b");
    assert_eq!(
        metadump(&mut conn, "all"),
        vec![
            format!(
                "key=a exp=-1 la={} cas={cas_a} fetch=yes cls={cls_a} size={size_a}",
                START_UNIX + 7
            ),
            format!(
                "key=b exp={} la={START_UNIX} cas={cas_b} fetch=no cls={cls_b} size={size_b}",
                START_UNIX + 100
            ),
        ]
    );
    // The expired item is not listed (and the walk reclaimed it).
    assert_eq!(harness.stat("", "curr_items"), "2");
    // `hash` and a class list name the same items; another class none.
    assert_eq!(metadump(&mut conn, "hash").len(), 2);
    assert_eq!(metadump(&mut conn, &format!("{cls_a},{cls_b}")).len(), 2);
    let other = if cls_a == "63" { "62" } else { "63" };
    assert!(metadump(&mut conn, other).is_empty());
}

#[test]
fn metadump_uri_encodes_keys() {
    let harness = Harness::new(&[]);
    let mut conn = harness.connect();
    // Key bytes `a b\0~%` through meta's base64 keys, which may hold any byte.
    assert_eq!(conn.call("ms YSBiAH4l 1 b\r\nx\r\n"), "HD\r\n");
    assert_eq!(conn.call("set k.-_~/:+ 0 0 1\r\nx\r\n"), "STORED\r\n");
    let keys: Vec<String> = metadump(&mut conn, "all")
        .iter()
        .map(|line| line.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(keys, vec!["key=a%20b%00~%25", "key=k.-_~%2F%3A%2B"]);
}

#[test]
fn lru_crawler_refusals_and_switches_as_memcached() {
    let harness = Harness::new(&[]);
    let mut conn = harness.connect();
    for (request, reply) in [
        ("lru_crawler\r\n", "ERROR\r\n"),
        ("lru_crawler metadump\r\n", "ERROR\r\n"),
        ("lru_crawler metadump all extra\r\n", "ERROR\r\n"),
        (
            "lru_crawler metadump 0\r\n",
            "BADCLASS invalid class id\r\n",
        ),
        (
            "lru_crawler metadump 64\r\n",
            "BADCLASS invalid class id\r\n",
        ),
        (
            "lru_crawler metadump 1,x\r\n",
            "BADCLASS invalid class id\r\n",
        ),
        ("lru_crawler metadump 63\r\n", "END\r\n"),
        ("lru_crawler crawl all\r\n", "OK\r\n"),
        ("lru_crawler crawl 1,2\r\n", "OK\r\n"),
        ("lru_crawler crawl 0\r\n", "BADCLASS invalid class id\r\n"),
        (
            "lru_crawler crawl hash\r\n",
            "ERROR an unknown error happened\r\n",
        ),
        (
            "lru_crawler crawl ,\r\n",
            "NOTSTARTED no items to crawl\r\n",
        ),
        (
            "lru_crawler tocrawl x\r\n",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        ("lru_crawler tocrawl 5\r\n", "OK\r\n"),
        (
            "lru_crawler sleep 2000000\r\n",
            "CLIENT_ERROR sleep must be one second or less\r\n",
        ),
        ("lru_crawler sleep 50\r\n", "OK\r\n"),
        ("lru_crawler foo\r\n", "ERROR\r\n"),
        ("lru_crawler crawl all noreply\r\n", "ERROR\r\n"),
        (
            "lru_crawler enable\r\n",
            "ERROR failed to start lru crawler thread\r\n",
        ),
        ("lru_crawler disable\r\n", "OK\r\n"),
        ("lru_crawler disable\r\n", "OK\r\n"),
        (
            "lru_crawler metadump all\r\n",
            "CLIENT_ERROR lru crawler disabled\r\n",
        ),
        (
            "lru_crawler crawl all\r\n",
            "CLIENT_ERROR lru crawler disabled\r\n",
        ),
    ] {
        assert_eq!(conn.call(request), reply, "{request:?}");
    }
    assert_eq!(harness.stat(" settings", "lru_crawler"), "no");
    assert_eq!(harness.stat(" settings", "lru_crawler_sleep"), "50");
    assert_eq!(harness.stat(" settings", "lru_crawler_tocrawl"), "5");
    assert_eq!(conn.call("lru_crawler enable\r\n"), "OK\r\n");
    assert_eq!(conn.call("lru_crawler metadump all\r\n"), "END\r\n");
    assert_eq!(harness.stat(" settings", "lru_crawler"), "yes");

    // -o no_lru_crawler starts it off; `enable` turns it on.
    let off = Harness::new(&["-o", "no_lru_crawler"]);
    let mut conn = off.connect();
    assert_eq!(
        conn.call("lru_crawler metadump 0\r\n"),
        "CLIENT_ERROR lru crawler disabled\r\n"
    );
    assert_eq!(conn.call("lru_crawler enable\r\n"), "OK\r\n");
    assert_eq!(conn.call("lru_crawler metadump all\r\n"), "END\r\n");

    // -X: no dumps; the crawler check comes first, crawl is still allowed.
    let no_dump = Harness::new(&["-X"]);
    let mut conn = no_dump.connect();
    assert_eq!(
        conn.call("lru_crawler metadump 0\r\n"),
        "ERROR metadump not allowed\r\n"
    );
    assert_eq!(conn.call("lru_crawler crawl all\r\n"), "OK\r\n");
    assert_eq!(
        conn.call("stats cachedump 1 0\r\n"),
        "CLIENT_ERROR stats cachedump not allowed\r\n"
    );
    assert_eq!(conn.call("lru_crawler disable\r\n"), "OK\r\n");
    assert_eq!(
        conn.call("lru_crawler metadump all\r\n"),
        "CLIENT_ERROR lru crawler disabled\r\n"
    );
}

#[test]
fn crawl_reclaims_expired_items_of_the_classes_named() {
    let harness = Harness::new(&[]);
    let mut conn = harness.connect();
    for n in 0..50 {
        conn.call(&format!("set short{n} 0 10 1\r\nx\r\n"));
        conn.call(&format!("set long{n} 0 0 1\r\nx\r\n"));
    }
    harness.advance(11);
    assert_eq!(harness.stat("", "curr_items"), "100");
    let (cls, _) = class_and_size(&mut conn, "long0");
    let other = if cls == "63" { "62" } else { "63" };
    assert_eq!(
        conn.call(&format!("lru_crawler crawl {other}\r\n")),
        "OK\r\n"
    );
    assert_eq!(harness.stat("", "curr_items"), "100");
    assert_eq!(conn.call(&format!("lru_crawler crawl {cls}\r\n")), "OK\r\n");
    assert_eq!(harness.stat("", "curr_items"), "50");
    assert_eq!(harness.stat("", "crawler_reclaimed"), "50");
}

#[test]
fn stats_cachedump_lists_a_class() {
    let harness = Harness::new(&[]);
    let mut conn = harness.connect();
    conn.call("set a 0 0 1\r\nx\r\n");
    conn.call("set b 0 100 3\r\nxyz\r\n");
    conn.call("set big 0 0 2000\r\n");
    conn.call(&format!("{}\r\n", "v".repeat(2000)));
    let (cls, _) = class_and_size(&mut conn, "a");
    let reply = conn.call(&format!("stats cachedump {cls} 0\r\n"));
    let mut lines: Vec<&str> = reply.split_inclusive("\r\n").collect();
    assert_eq!(lines.pop(), Some("END\r\n"));
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "ITEM a [1 b; 0 s]\r\n".to_string(),
            format!("ITEM b [3 b; {} s]\r\n", START_UNIX + 100)
        ]
    );
    let one = conn.call(&format!("stats cachedump {cls} 1\r\n"));
    assert_eq!(one.matches("ITEM ").count(), 1);
    assert!(one.ends_with(" s]\r\nEND\r\n"));
    assert_eq!(conn.call("stats cachedump 0 0\r\n"), "END\r\n");
    assert_eq!(
        conn.call("stats cachedump 64 0\r\n"),
        "CLIENT_ERROR Illegal slab id\r\n"
    );
    assert_eq!(
        conn.call("stats cachedump 1\r\n"),
        "CLIENT_ERROR bad command line\r\n"
    );
}

#[test]
fn cachedump_stops_before_two_megabytes() {
    let harness = Harness::new(&[]);
    let mut conn = harness.connect();
    let mut batch = String::new();
    for n in 0..50_000 {
        batch.push_str(&format!(
            "set key-with-a-long-name-{n:08} 0 0 1 noreply\r\nx\r\n"
        ));
    }
    assert_eq!(conn.call(&batch), "");
    let (cls, _) = class_and_size(&mut conn, "key-with-a-long-name-00000000");
    let reply = conn.send(format!("stats cachedump {cls} 0\r\n").as_bytes());
    assert!(reply.ends_with(b"END\r\n"));
    assert!(reply.len() < 2 * 1024 * 1024, "{}", reply.len());
    // Every line fits 50 bytes: it stopped within a line of the cap, short of all 50,000.
    assert!(reply.len() > 2 * 1024 * 1024 - 60);
}

#[test]
fn a_metadump_of_100_000_items_streams_every_item_once() {
    let harness = Harness::new(&[]);
    let mut conn = harness.connect();
    let mut batch = String::new();
    for n in 0..100_000 {
        batch.push_str(&format!("set k{n} 0 0 1 noreply\r\nx\r\n"));
    }
    assert_eq!(conn.call(&batch), "");
    // Followed by another request: it is answered after the dump, in order.
    let reply = conn.send(b"lru_crawler metadump all\r\nmn\r\n");
    assert!(reply.len() > super::super::session::OUTPUT_HIGH_WATER);
    assert!(reply.ends_with(b"END\r\nMN\r\n"));
    let text = String::from_utf8(reply).expect("text");
    let mut keys: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("key="))
        .map(|rest| rest.split(' ').next().unwrap())
        .collect();
    assert_eq!(keys.len(), 100_000);
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 100_000, "no key listed twice");
}

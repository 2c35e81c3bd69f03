//! `slabs reassign` and `slabs automove` through the real session and command layer: every
//! reply memcached 1.6.18 gives, a page really moving (and `stats` seeing it), and automove's
//! switch reaching the partitions and `stats settings`.

use super::Harness;

fn pages(harness: &Harness, class: &str) -> u64 {
    harness
        .stat(" slabs", &format!("{class}:total_pages"))
        .parse()
        .unwrap()
}

#[test]
fn reassign_refuses_as_memcached_does() {
    let harness = Harness::new(&["-m", "64"]);
    let mut conn = harness.connect();
    assert_eq!(conn.call("set a 0 0 1\r\nx\r\n"), "STORED\r\n");
    for (line, reply) in [
        ("slabs reassign 1 1", "SAME src and dst class are identical"),
        (
            "slabs reassign -1 -1",
            "SAME src and dst class are identical",
        ),
        (
            "slabs reassign 1 2",
            "NOSPARE source class has no spare pages",
        ),
        (
            "slabs reassign 0 1",
            "NOSPARE source class has no spare pages",
        ),
        (
            "slabs reassign 1 100",
            "BADCLASS invalid src or dst class id",
        ),
        (
            "slabs reassign 1 -2",
            "BADCLASS invalid src or dst class id",
        ),
        (
            "slabs reassign -1 1",
            "BADCLASS invalid src or dst class id",
        ),
        (
            "slabs reassign 1 99999999999",
            "BADCLASS invalid src or dst class id",
        ),
        ("slabs reassign x 1", "CLIENT_ERROR bad command line format"),
        ("slabs reassign 1 2 noreply", "ERROR"),
        ("slabs reassign", "ERROR"),
        ("slabs", "ERROR"),
        ("slabs foo 1 2", "ERROR"),
    ] {
        assert_eq!(
            conn.call(&format!("{line}\r\n")),
            format!("{reply}\r\n"),
            "{line}"
        );
    }
    assert_eq!(harness.stat("", "slabs_moved"), "0");
}

#[test]
fn reassign_moves_one_page_of_the_fullest_partition() {
    let harness = Harness::new(&["-m", "64"]);
    let mut conn = harness.connect();
    let value = "v".repeat(3000);
    for i in 0..2000 {
        assert_eq!(
            conn.call(&format!("set k{i} 0 0 3000\r\n{value}\r\n")),
            "STORED\r\n"
        );
    }
    let me = conn.call("me k0\r\n");
    let class = me
        .split_whitespace()
        .find_map(|f| f.strip_prefix("cls="))
        .unwrap()
        .to_string();
    let before = pages(&harness, &class);
    assert!(before >= 2, "{before} pages");
    assert_eq!(
        conn.call(&format!("slabs reassign {class} 1\r\n")),
        "OK\r\n"
    );
    assert_eq!(pages(&harness, &class), before - 1);
    assert_eq!(pages(&harness, "1"), 1);
    assert_eq!(harness.stat("", "slabs_moved"), "1");
    // -1: any class with a page to spare (only `class` has one).
    assert_eq!(conn.call("slabs reassign -1 2\r\n"), "OK\r\n");
    assert_eq!(pages(&harness, &class), before - 2);
    // Two pages to the global pool, then one back from it.
    assert_eq!(
        conn.call(&format!("slabs reassign {class} 0\r\n")),
        "OK\r\n"
    );
    assert_eq!(
        conn.call(&format!("slabs reassign {class} 0\r\n")),
        "OK\r\n"
    );
    assert_eq!(harness.shared.cache.pool.spare_pages(), 2);
    assert_eq!(conn.call("slabs reassign 0 3\r\n"), "OK\r\n");
    assert_eq!(harness.shared.cache.pool.spare_pages(), 1);
    assert_eq!(pages(&harness, "3"), 1);
    assert_eq!(harness.stat("", "slabs_moved"), "5");
    // Items on the pages given up were rescued or evicted; the rest are intact.
    let items: u64 = harness.stat("", "curr_items").parse().unwrap();
    let evicted: u64 = harness.stat("", "evictions").parse().unwrap();
    assert_eq!(items + evicted, 2000);
}

#[test]
fn automove_switches_the_partitions_and_shows_in_stats_settings() {
    let harness = Harness::new(&["-m", "64"]);
    let mut conn = harness.connect();
    assert_eq!(harness.stat(" settings", "slab_automove"), "1");
    assert!(harness.shared.cache.pool.automove());
    assert_eq!(conn.call("slabs automove 0\r\n"), "OK\r\n");
    assert!(!harness.shared.cache.pool.automove());
    assert_eq!(harness.stat(" settings", "slab_automove"), "0");
    assert_eq!(conn.call("slabs automove 2 noreply\r\n"), "");
    assert!(harness.shared.cache.pool.automove());
    assert_eq!(harness.stat(" settings", "slab_automove"), "2");
    assert_eq!(conn.call("slabs automove ratio 0.5\r\n"), "OK\r\n");
    assert_eq!(harness.stat(" settings", "slab_automove_ratio"), "0.50");
    for (line, reply) in [
        ("slabs automove 3", "ERROR\r\n"),
        ("slabs automove 3 noreply", ""),
        (
            "slabs automove x",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        (
            "slabs automove -1",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        ("slabs automove ratio", "ERROR\r\n"),
        ("slabs automove ratio x", "ERROR\r\n"),
        ("slabs automove ratio 1e999", "ERROR\r\n"),
        ("slabs automove", "ERROR\r\n"),
    ] {
        assert_eq!(conn.call(&format!("{line}\r\n")), reply, "{line}");
    }
    assert_eq!(harness.stat(" settings", "slab_automove"), "2");
}

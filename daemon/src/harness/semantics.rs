//! memcached's semantics through the real session and command layer, on a clock the test
//! moves: expiry, the differences found by comparing with memcached 1.6.18, and what only the
//! command layer knows (refusals, counters, per-prefix stats).

use super::Harness;

#[test]
fn items_expire_when_the_clock_says_so() {
    let harness = Harness::new(&[]);
    let mut conn = harness.connect();
    assert_eq!(conn.call("set k 0 10 1\r\nx\r\n"), "STORED\r\n");
    assert_eq!(conn.call("mg k t v\r\n"), "VA 1 t10\r\nx\r\n");
    harness.advance(9);
    assert_eq!(conn.call("get k\r\n"), "VALUE k 0 1\r\nx\r\nEND\r\n");
    harness.advance(1);
    assert_eq!(conn.call("get k\r\n"), "END\r\n");
    // An absolute exptime, and touch moving it.
    let absolute = super::START_UNIX + 10 + 100;
    conn.call(&format!("set a 0 {absolute} 1\r\ny\r\n"));
    assert_eq!(conn.call("mg a t\r\n"), "HD t100\r\n");
    assert_eq!(conn.call("touch a 5\r\n"), "TOUCHED\r\n");
    harness.advance(5);
    assert_eq!(conn.call("mg a\r\n"), "EN\r\n");
    // One second of life: there for the rest of this second, gone at the next.
    assert_eq!(conn.call("set short 0 1 1\r\nx\r\n"), "STORED\r\n");
    assert_eq!(
        conn.call("get short\r\n"),
        "VALUE short 0 1\r\nx\r\nEND\r\n"
    );
    harness.advance(1);
    assert_eq!(conn.call("get short\r\n"), "END\r\n");
}

#[test]
fn delayed_flush_all_takes_effect_on_time() {
    let harness = Harness::new(&[]);
    let mut conn = harness.connect();
    conn.call("set k 0 0 1\r\nx\r\n");
    assert_eq!(conn.call("flush_all 5\r\n"), "OK\r\n");
    harness.advance(4);
    assert_eq!(conn.call("get k\r\n"), "VALUE k 0 1\r\nx\r\nEND\r\n");
    harness.advance(1);
    assert_eq!(conn.call("get k\r\n"), "END\r\n");
    assert_eq!(harness.stat("", "cmd_flush"), "1");
}

#[test]
fn md_with_x_is_refused_and_keeps_the_item() {
    let harness = Harness::new(&[]);
    let mut conn = harness.connect();
    conn.call("set k 0 0 1\r\nx\r\n");
    assert_eq!(
        conn.call("md k x\r\n"),
        "CLIENT_ERROR invalid or duplicate flag\r\n"
    );
    assert_eq!(conn.call("get k\r\n"), "VALUE k 0 1\r\nx\r\nEND\r\n");
}

#[test]
fn a_counter_created_by_ma_is_answered_even_in_quiet_mode() {
    let harness = Harness::new(&[]);
    let mut conn = harness.connect();
    assert_eq!(conn.call("ma n1 N0 J5 q\r\nmn\r\n"), "HD\r\nMN\r\n");
    assert_eq!(
        conn.call("ma n2 N0 J5 q v\r\nmn\r\n"),
        "VA 1\r\n5\r\nMN\r\n"
    );
    // Once it exists, q hides the success again.
    assert_eq!(conn.call("ma n1 N0 J5 q\r\nmn\r\n"), "MN\r\n");
    assert_eq!(conn.call("get n1\r\n"), "VALUE n1 0 1\r\n6\r\nEND\r\n");
}

#[test]
fn a_refused_flush_all_is_counted_and_minus_f_is_checked_first() {
    let harness = Harness::new(&["-F"]);
    let mut conn = harness.connect();
    assert_eq!(
        conn.call("flush_all abc\r\n"),
        "CLIENT_ERROR flush_all not allowed\r\n"
    );
    assert_eq!(
        conn.call("flush_all\r\n"),
        "CLIENT_ERROR flush_all not allowed\r\n"
    );
    assert_eq!(harness.stat("", "cmd_flush"), "2");
    let open = Harness::new(&[]);
    assert_eq!(
        open.connect().call("flush_all abc\r\n"),
        "CLIENT_ERROR invalid exptime argument\r\n"
    );
    assert_eq!(open.stat("", "cmd_flush"), "1");
}

#[test]
fn a_value_too_large_for_set_drops_the_old_item_but_not_for_add() {
    let harness = Harness::new(&["-I", "1k", "-o", "slab_chunk_max=1024", "-m", "8"]);
    let mut conn = harness.connect();
    conn.call("set s 0 0 1\r\nx\r\nset a 0 0 1\r\ny\r\n");
    let big = "v".repeat(2000);
    assert_eq!(
        conn.call(&format!("set s 0 0 2000\r\n{big}\r\n")),
        "SERVER_ERROR object too large for cache\r\n"
    );
    assert_eq!(
        conn.call(&format!("add a 0 0 2000\r\n{big}\r\n")),
        "SERVER_ERROR object too large for cache\r\n"
    );
    assert_eq!(conn.call("get s a\r\n"), "VALUE a 0 1\r\ny\r\nEND\r\n");
    assert_eq!(harness.stat("", "delete_hits"), "0");
    assert_eq!(harness.stat("", "delete_misses"), "0");
}

#[test]
fn stats_detail_counts_classic_commands_by_prefix() {
    let harness = Harness::new(&[]);
    let mut conn = harness.connect();
    assert_eq!(
        conn.call("stats detail\r\n"),
        "CLIENT_ERROR usage: stats detail on|off|dump\r\n"
    );
    assert_eq!(conn.call("stats detail on\r\n"), "OK\r\n");
    conn.call("set user:1 0 0 1\r\nx\r\nget user:1 user:2\r\ndelete user:1\r\nmg user:3 v\r\n");
    conn.call("set plain 0 0 1\r\nx\r\n");
    assert_eq!(
        conn.call("stats detail dump\r\n"),
        "PREFIX user get 2 hit 1 set 1 del 1\r\nEND\r\n"
    );
    assert!(
        conn.call("stats settings\r\n")
            .contains("STAT detail_enabled yes\r\n")
    );
    assert_eq!(conn.call("stats detail off\r\n"), "OK\r\n");
    conn.call("get user:1\r\n");
    assert_eq!(
        conn.call("stats detail dump\r\n"),
        "PREFIX user get 2 hit 1 set 1 del 1\r\nEND\r\n"
    );
    conn.call("stats reset\r\n");
    assert_eq!(conn.call("stats detail dump\r\n"), "END\r\n");
    let delimited = Harness::new(&["-D", "/"]);
    let mut conn = delimited.connect();
    conn.call("set a/b 0 0 1\r\nx\r\n");
    assert_eq!(
        conn.call("stats detail dump\r\n"),
        "PREFIX a get 0 hit 0 set 1 del 0\r\nEND\r\n"
    );
}

#[test]
fn http_requests_close_the_connection_silently() {
    let harness = Harness::new(&[]);
    for line in [
        "GET / HTTP/1.1\r\n",
        "POST /x HTTP/1.0\r\n",
        "HEAD / HTTP/1.1\r\n",
    ] {
        let mut conn = harness.connect();
        assert_eq!(conn.call(line), "");
        assert!(conn.is_closed(), "{line}");
    }
    // memcached's dispatch claims lines by their first letter: these are ERRORs.
    let mut conn = harness.connect();
    assert_eq!(conn.call("gex HTTP/1.1\r\n"), "ERROR\r\n");
    assert_eq!(conn.call("xyz 1 2\r\n"), "ERROR\r\n");
    assert!(!conn.is_closed());
}

#[test]
fn version_is_plain_for_parsers() {
    let harness = Harness::new(&[]);
    assert_eq!(harness.connect().call("version\r\n"), "VERSION 1.6.18\r\n");
}

#[test]
fn watchers_see_fetches_and_stores_in_memcacheds_format() {
    let harness = Harness::new(&[]);
    let mut watcher = harness.connect();
    assert_eq!(watcher.call("watch fetchers mutations\r\n"), "OK\r\n");
    // Commands on a watcher are not served.
    assert_eq!(watcher.call("version\r\n"), "");
    let mut client = harness.connect();
    client.call("set user:1 0 60 3\r\nabc\r\nget user:1 nope\r\n");
    let lines = watcher.watched();
    let lines: Vec<&str> = lines.lines().collect();
    let fields: Vec<String> = lines
        .iter()
        .map(|line| {
            assert!(line.starts_with("ts="), "{line}");
            // Slab classes are the engine's: masked.
            let fields = line.split_once(" gid=").unwrap().1;
            fields
                .split(' ')
                .map(|f| {
                    if f.starts_with("clsid=") {
                        "clsid=_"
                    } else {
                        f
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    // As memcached: a store looks the key up first.
    assert_eq!(
        fields,
        [
            "0 type=item_get key=user%3A1 status=not_found clsid=_ cfd=-1 size=0",
            "1 type=item_store key=user%3A1 status=stored cmd=set ttl=60 clsid=_ cfd=-1 size=3",
            "2 type=item_get key=user%3A1 status=found clsid=_ cfd=-1 size=3",
            "3 type=item_get key=nope status=not_found clsid=_ cfd=-1 size=0",
        ]
    );
    assert!(harness.stat("", "log_watchers").starts_with('1'));
}

#[test]
fn watch_refusals_are_memcacheds() {
    let harness = Harness::new(&["-W"]);
    assert_eq!(
        harness.connect().call("watch\r\n"),
        "CLIENT_ERROR watch commands not allowed\r\n"
    );
    let harness = Harness::new(&[]);
    let mut conn = harness.connect();
    assert_eq!(conn.call("watch bogus\r\n"), "ERROR\r\n");
    assert_eq!(conn.call("watch fetchers noreply\r\n"), "");
    assert_eq!(
        conn.call("version\r\nwatch\r\n"),
        "VERSION 1.6.18\r\nERROR cannot pipeline other commands before watch\r\n"
    );
    let mut watchers: Vec<_> = (0..20).map(|_| harness.connect()).collect();
    for watcher in &mut watchers {
        assert_eq!(watcher.call("watch\r\n"), "OK\r\n");
    }
    assert_eq!(
        harness.connect().call("watch\r\n"),
        "WATCHER_TOO_MANY log watcher limit reached\r\n"
    );
}

/// A cluster file for a harness, in a directory of its own.
fn cluster_file(name: &str, nodes: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrocache-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cluster");
    std::fs::write(&path, nodes).unwrap();
    path
}

#[test]
fn config_get_cluster_answers_as_an_elasticache_node() {
    let path = cluster_file(
        "config-get",
        "# three nodes\nnode-b.example|10.0.0.2|11211\nnode-a.example|10.0.0.1|11211\n\
         node-c.example:11211\n",
    );
    let harness = Harness::new(&["--cluster-config", path.to_str().unwrap()]);
    let mut conn = harness.connect();
    let payload = "1\nnode-a.example|10.0.0.1|11211 node-b.example|10.0.0.2|11211 \
                   node-c.example||11211\n";
    let expected = format!("CONFIG cluster 0 {}\r\n{payload}\r\nEND\r\n", payload.len());
    assert_eq!(
        payload.len(),
        84,
        "N counts the version line and the node line"
    );
    // The forms real clients send: Java and pymemcache, libmemcached's trailing space,
    // django-elasticache's bare newline.
    for request in [
        "config get cluster\r\n",
        "config get cluster \r\n",
        "config get cluster\n",
    ] {
        assert_eq!(conn.call(request), expected, "{request:?}");
    }
    // Engines before 1.4.14: the same block as an item.
    assert_eq!(
        conn.call("get AmazonElastiCache:cluster\r\n"),
        format!(
            "VALUE AmazonElastiCache:cluster 0 {}\r\n{payload}\r\nEND\r\n",
            payload.len()
        )
    );
    assert_eq!(conn.call("config get other\r\n"), "END\r\n");
    assert_eq!(
        conn.call("config set cluster 0 2\r\nab\r\n"),
        "CLIENT_ERROR config set not allowed on this node\r\n"
    );
    assert_eq!(harness.stat("", "cmd_config_get"), "4");
    assert_eq!(harness.stat("", "curr_config"), "1");
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn config_set_cluster_only_where_the_operator_allows_it() {
    let path = cluster_file("config-set", "a:1\n");
    let harness = Harness::new(&[
        "--cluster-config",
        path.to_str().unwrap(),
        "--cluster-config-writable",
    ]);
    let mut conn = harness.connect();
    let pushed = "5\nx.example|10.1.1.1|11211 y.example|10.1.1.2|11211\n";
    assert_eq!(
        conn.call(&format!(
            "config set cluster 0 {}\r\n{pushed}\r\n",
            pushed.len()
        )),
        "STORED\r\n"
    );
    assert_eq!(
        conn.call("config get cluster\r\n"),
        format!("CONFIG cluster 0 {}\r\n{pushed}\r\nEND\r\n", pushed.len())
    );
    assert_eq!(
        conn.call("config set cluster 0 3\r\nbad\r\n"),
        "NOT_STORED\r\n"
    );
    assert_eq!(harness.stat("", "cmd_config_set"), "2");
    assert_eq!(harness.stat("", "curr_config"), "5");
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn without_a_cluster_config_config_is_unknown_as_on_memcached() {
    let harness = Harness::new(&[]);
    let mut conn = harness.connect();
    assert_eq!(conn.call("config get cluster\r\n"), "ERROR\r\n");
    // The data block of a config set is read as a command, as memcached reads it.
    assert_eq!(
        conn.call("config set cluster 0 2\r\nab\r\n"),
        "ERROR\r\nERROR\r\n"
    );
    assert_eq!(conn.call("get AmazonElastiCache:cluster\r\n"), "END\r\n");
    assert_eq!(harness.stat("", "curr_config"), "0");
}

#[test]
fn cas_uniques_are_unique_across_partitions_under_concurrent_writers() {
    let harness = Harness::new(&["-t", "4"]);
    assert!(
        harness.shared.settings.partitions > 1,
        "keys spread over partitions"
    );
    let (writers, keys) = (4, 250);
    std::thread::scope(|scope| {
        for writer in 0..writers {
            let harness = &harness;
            scope.spawn(move || {
                let mut conn = harness.connect();
                for round in 0..3 {
                    for i in 0..keys {
                        let value = format!("{writer}.{round}");
                        let line = format!("set w{writer}k{i} 0 0 {}\r\n{value}\r\n", value.len());
                        assert_eq!(conn.call(&line), "STORED\r\n");
                    }
                }
            });
        }
    });
    let mut conn = harness.connect();
    let mut seen = std::collections::HashMap::new();
    for writer in 0..writers {
        let names: Vec<String> = (0..keys).map(|i| format!("w{writer}k{i}")).collect();
        let reply = conn.call(&format!("gets {}\r\n", names.join(" ")));
        let headers: Vec<&str> = reply.lines().filter(|l| l.starts_with("VALUE ")).collect();
        assert_eq!(headers.len(), keys);
        for header in headers {
            let fields: Vec<&str> = header.split(' ').collect();
            let cas: u64 = fields[4].parse().expect("a CAS");
            assert!(cas > 0);
            if let Some(other) = seen.insert(cas, fields[1].to_string()) {
                panic!("{} and {other} both carry CAS {cas}", fields[1]);
            }
        }
    }
}

/// Fills a `-M` server with 100 KB values under new keys until every partition refuses them.
fn fill_until_out_of_memory(conn: &mut super::Conn<'_>, big: &str) {
    let (mut refused_in_a_row, mut i) = (0, 0);
    while refused_in_a_row < 100 {
        let reply = conn.call(&format!("set fill{i} 0 0 {}\r\n{big}\r\n", big.len()));
        i += 1;
        if reply == "STORED\r\n" {
            refused_in_a_row = 0;
        } else {
            assert_eq!(reply, "SERVER_ERROR out of memory storing object\r\n");
            refused_in_a_row += 1;
        }
        assert!(i < 10_000, "8 MB runs out");
    }
}

#[test]
fn without_evictions_a_cas_that_finds_no_memory_keeps_the_old_item() {
    // memcached 1.6.18 with -m 8 -M: the failed cas answers SERVER_ERROR and the old value is
    // still served (only a failed set drops it).
    let harness = Harness::new(&["-m", "8", "-M"]);
    let mut conn = harness.connect();
    conn.call("set keep 0 0 5\r\nhello\r\n");
    let reply = conn.call("gets keep\r\n");
    let cas: u64 = reply.split_whitespace().nth(4).unwrap().parse().unwrap();
    let big = "v".repeat(100_000);
    fill_until_out_of_memory(&mut conn, &big);
    assert_eq!(
        conn.call(&format!("cas keep 0 0 {} {cas}\r\n{big}\r\n", big.len())),
        "SERVER_ERROR out of memory storing object\r\n"
    );
    assert_eq!(
        conn.call("get keep\r\n"),
        "VALUE keep 0 5\r\nhello\r\nEND\r\n"
    );
    assert_eq!(conn.call("gets keep\r\n"), reply);
}

#[test]
fn without_evictions_failed_stores_count_no_deletes() {
    // memcached 1.6.18 with -m 8 -M: a failed set or ms drops the key's old item (a failed ms
    // in every mode) without counting delete_hits or delete_misses.
    let harness = Harness::new(&["-m", "8", "-M"]);
    let mut conn = harness.connect();
    conn.call("set old 0 0 5\r\nhello\r\n");
    conn.call("ms appended 5\r\nhello\r\n");
    let big = "v".repeat(100_000);
    fill_until_out_of_memory(&mut conn, &big);
    let out_of_memory = "SERVER_ERROR out of memory storing object\r\n";
    assert_eq!(
        conn.call(&format!("set old 0 0 {}\r\n{big}\r\n", big.len())),
        out_of_memory
    );
    assert_eq!(
        conn.call(&format!("set missing 0 0 {}\r\n{big}\r\n", big.len())),
        out_of_memory
    );
    assert_eq!(
        conn.call(&format!("ms appended {} MA\r\n{big}\r\n", big.len())),
        out_of_memory
    );
    assert_eq!(conn.call("get old missing appended\r\n"), "END\r\n");
    assert_eq!(harness.stat("", "delete_hits"), "0");
    assert_eq!(harness.stat("", "delete_misses"), "0");
}

//! Every text and meta command end to end, against the real `ferrocached` binary over TCP:
//! storage, retrieval (multi-get across partitions), delete, incr/decr, touch, flush_all,
//! version, verbosity, quit, shutdown, cache_memlimit, stats and its groups, the meta commands,
//! a telnet-style session with bare `\n`, the error replies for bad input, pipelining 10,000
//! requests in one write, and the item size limit.

mod support;

use support::{Client, Server};

/// Sends `request`, then `mn`, and returns everything before `MN` as text.
fn ask(client: &mut Client, request: &str) -> String {
    String::from_utf8_lossy(&client.call_script(request.as_bytes())).into_owned()
}

/// The value of `STAT <name>` in a `stats` reply.
fn stat(client: &mut Client, group: &str, name: &str) -> String {
    let reply = client.call(format!("stats{group}\r\n").as_bytes(), b"END\r\n");
    let prefix = format!("STAT {name} ");
    reply
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in stats{group}:\n{reply}"))
        .to_string()
}

/// The CAS unique in a `VALUE <key> <flags> <bytes> <cas>` line.
fn cas_of(reply: &str) -> u64 {
    reply
        .lines()
        .next()
        .and_then(|line| line.split(' ').nth(4))
        .and_then(|cas| cas.parse().ok())
        .unwrap_or_else(|| panic!("no CAS in {reply:?}"))
}

#[test]
fn storage_commands_and_retrieval() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    assert_eq!(ask(&mut c, "set a 5 0 3\r\nabc\r\n"), "STORED\r\n");
    assert_eq!(ask(&mut c, "get a\r\n"), "VALUE a 5 3\r\nabc\r\nEND\r\n");
    assert_eq!(ask(&mut c, "add a 0 0 1\r\nx\r\n"), "NOT_STORED\r\n");
    assert_eq!(ask(&mut c, "add b 7 0 1\r\nx\r\n"), "STORED\r\n");
    assert_eq!(ask(&mut c, "replace nope 0 0 1\r\nx\r\n"), "NOT_STORED\r\n");
    assert_eq!(ask(&mut c, "replace b 8 0 2\r\nyz\r\n"), "STORED\r\n");
    assert_eq!(ask(&mut c, "append a 99 0 2\r\nde\r\n"), "STORED\r\n");
    assert_eq!(ask(&mut c, "prepend a 99 0 2\r\n01\r\n"), "STORED\r\n");
    assert_eq!(ask(&mut c, "append nope 0 0 1\r\nx\r\n"), "NOT_STORED\r\n");
    assert_eq!(ask(&mut c, "prepend nope 0 0 1\r\nx\r\n"), "NOT_STORED\r\n");
    // append/prepend keep the flags they found.
    assert_eq!(
        ask(&mut c, "get a b missing\r\n"),
        "VALUE a 5 7\r\n01abcde\r\nVALUE b 8 2\r\nyz\r\nEND\r\n"
    );
    assert_eq!(ask(&mut c, "get missing\r\n"), "END\r\n");
    // noreply: nothing comes back, the effect happens.
    assert_eq!(ask(&mut c, "set q 1 0 1 noreply\r\nq\r\n"), "");
    assert_eq!(ask(&mut c, "add q 1 0 1 noreply\r\nx\r\n"), "");
    assert_eq!(ask(&mut c, "get q\r\n"), "VALUE q 1 1\r\nq\r\nEND\r\n");
    // An empty value and client flags at the top of 32 bits.
    assert_eq!(ask(&mut c, "set e 4294967295 0 0\r\n\r\n"), "STORED\r\n");
    assert_eq!(
        ask(&mut c, "get e\r\n"),
        "VALUE e 4294967295 0\r\n\r\nEND\r\n"
    );
    // Binary-safe values.
    assert_eq!(ask(&mut c, "set bin 0 0 4\r\n\r\n\0\n\r\n"), "STORED\r\n");
    assert_eq!(
        ask(&mut c, "get bin\r\n"),
        "VALUE bin 0 4\r\n\r\n\0\n\r\nEND\r\n"
    );
}

#[test]
fn cas_and_gets() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    assert_eq!(ask(&mut c, "set k 3 0 2\r\nv1\r\n"), "STORED\r\n");
    let first = ask(&mut c, "gets k\r\n");
    let cas = cas_of(&first);
    assert_eq!(first, format!("VALUE k 3 2 {cas}\r\nv1\r\nEND\r\n"));
    assert_eq!(
        ask(&mut c, &format!("cas k 4 0 2 {cas}\r\nv2\r\n")),
        "STORED\r\n"
    );
    assert_eq!(
        ask(&mut c, &format!("cas k 4 0 2 {cas}\r\nv3\r\n")),
        "EXISTS\r\n"
    );
    assert_eq!(
        ask(&mut c, &format!("cas nope 0 0 1 {cas}\r\nx\r\n")),
        "NOT_FOUND\r\n"
    );
    let second = ask(&mut c, "gets k\r\n");
    assert_ne!(cas_of(&second), cas, "a store gives a new CAS unique");
    assert!(second.contains("\r\nv2\r\n"), "{second}");
    let cas = cas_of(&second);
    assert_eq!(
        ask(&mut c, &format!("cas k 0 0 2 {cas} noreply\r\nv4\r\n")),
        ""
    );
    assert_eq!(ask(&mut c, "get k\r\n"), "VALUE k 0 2\r\nv4\r\nEND\r\n");
    let hits = stat(&mut c, "", "cas_hits");
    assert_eq!(hits, "2");
    assert_eq!(stat(&mut c, "", "cas_badval"), "1");
    assert_eq!(stat(&mut c, "", "cas_misses"), "1");
}

#[test]
fn cas_disabled_reports_zero() {
    let server = Server::start(&["-t", "1", "-C"]);
    let mut c = server.connect();
    assert_eq!(ask(&mut c, "set k 0 0 1\r\nx\r\n"), "STORED\r\n");
    assert_eq!(ask(&mut c, "gets k\r\n"), "VALUE k 0 1 0\r\nx\r\nEND\r\n");
}

#[test]
fn delete_incr_decr_touch() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    assert_eq!(ask(&mut c, "set n 0 0 3\r\n100\r\n"), "STORED\r\n");
    assert_eq!(ask(&mut c, "incr n 5\r\n"), "105\r\n");
    assert_eq!(ask(&mut c, "decr n 6\r\n"), "99\r\n");
    // The number got shorter: the value keeps its length, padded with a space.
    assert_eq!(ask(&mut c, "get n\r\n"), "VALUE n 0 3\r\n99 \r\nEND\r\n");
    assert_eq!(ask(&mut c, "decr n 1000\r\n"), "0\r\n");
    assert_eq!(
        ask(&mut c, "set w 0 0 20\r\n18446744073709551615\r\n"),
        "STORED\r\n"
    );
    assert_eq!(ask(&mut c, "incr w 2\r\n"), "1\r\n");
    assert_eq!(ask(&mut c, "incr nope 1\r\n"), "NOT_FOUND\r\n");
    assert_eq!(ask(&mut c, "decr nope 1\r\n"), "NOT_FOUND\r\n");
    assert_eq!(ask(&mut c, "incr n 1 noreply\r\n"), "");
    assert_eq!(ask(&mut c, "incr n 0\r\n"), "1\r\n");
    assert_eq!(ask(&mut c, "set s 0 0 3\r\nabc\r\n"), "STORED\r\n");
    assert_eq!(
        ask(&mut c, "incr s 1\r\n"),
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    );
    assert_eq!(
        ask(&mut c, "incr n abc\r\n"),
        "CLIENT_ERROR invalid numeric delta argument\r\n"
    );
    assert_eq!(
        ask(&mut c, "incr n -1\r\n"),
        "CLIENT_ERROR invalid numeric delta argument\r\n"
    );
    assert_eq!(ask(&mut c, "touch n 100\r\n"), "TOUCHED\r\n");
    assert_eq!(ask(&mut c, "touch nope 100\r\n"), "NOT_FOUND\r\n");
    assert_eq!(ask(&mut c, "touch n 100 noreply\r\n"), "");
    assert_eq!(ask(&mut c, "delete n\r\n"), "DELETED\r\n");
    assert_eq!(ask(&mut c, "delete n\r\n"), "NOT_FOUND\r\n");
    assert_eq!(ask(&mut c, "delete s 0\r\n"), "DELETED\r\n");
    assert_eq!(
        ask(&mut c, "delete s 5\r\n"),
        "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
    );
    assert_eq!(ask(&mut c, "delete w noreply\r\n"), "");
    assert_eq!(ask(&mut c, "get n s w\r\n"), "END\r\n");
    assert_eq!(stat(&mut c, "", "delete_hits"), "3");
    assert_eq!(stat(&mut c, "", "incr_hits"), "4");
    assert_eq!(stat(&mut c, "", "decr_misses"), "1");
    assert_eq!(stat(&mut c, "", "touch_hits"), "2");
    assert_eq!(stat(&mut c, "", "touch_misses"), "1");
}

#[test]
fn expiry_gat_and_gats() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    // Negative: expired at once. Beyond 30 days: an absolute time, here long past.
    assert_eq!(ask(&mut c, "set gone 0 -1 1\r\nx\r\n"), "STORED\r\n");
    assert_eq!(ask(&mut c, "set past 0 2592001 1\r\nx\r\n"), "STORED\r\n");
    assert_eq!(ask(&mut c, "get gone past\r\n"), "END\r\n");
    assert_eq!(ask(&mut c, "set t 2 0 2\r\nhi\r\n"), "STORED\r\n");
    assert_eq!(ask(&mut c, "gat 100 t\r\n"), "VALUE t 2 2\r\nhi\r\nEND\r\n");
    let gats = ask(&mut c, "gats 100 t nope\r\n");
    let cas = cas_of(&gats);
    assert_eq!(gats, format!("VALUE t 2 2 {cas}\r\nhi\r\nEND\r\n"));
    assert!(ask(&mut c, "mg t t\r\n").starts_with("HD t"));
    // gat with a negative exptime expires the item after returning it.
    assert_eq!(ask(&mut c, "gat -1 t\r\n"), "VALUE t 2 2\r\nhi\r\nEND\r\n");
    assert_eq!(ask(&mut c, "get t\r\n"), "END\r\n");
    // Counted per key touched, as memcached does (gats touched two keys).
    assert_eq!(stat(&mut c, "", "cmd_touch"), "4");
    // Expiry by the passing of time runs on a moved clock, in the harness
    // (harness::semantics::items_expire_when_the_clock_says_so), not on a sleep here.
}

#[test]
fn flush_all_and_its_switch() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    assert_eq!(
        ask(&mut c, "set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\n"),
        "STORED\r\nSTORED\r\n"
    );
    assert_eq!(ask(&mut c, "flush_all\r\n"), "OK\r\n");
    assert_eq!(ask(&mut c, "get a b\r\n"), "END\r\n");
    assert_eq!(ask(&mut c, "set a 0 0 1\r\n1\r\n"), "STORED\r\n");
    assert_eq!(ask(&mut c, "flush_all noreply\r\n"), "");
    assert_eq!(ask(&mut c, "get a\r\n"), "END\r\n");
    assert_eq!(ask(&mut c, "flush_all -1\r\n"), "OK\r\n");
    assert_eq!(
        ask(&mut c, "flush_all abc\r\n"),
        "CLIENT_ERROR invalid exptime argument\r\n"
    );
    // A delayed flush leaves items readable until it is due.
    assert_eq!(ask(&mut c, "set d 0 0 1\r\n1\r\n"), "STORED\r\n");
    assert_eq!(ask(&mut c, "flush_all 100\r\n"), "OK\r\n");
    assert_eq!(ask(&mut c, "get d\r\n"), "VALUE d 0 1\r\n1\r\nEND\r\n");
    // memcached counts every flush_all line, the one with a bad delay too.
    assert_eq!(stat(&mut c, "", "cmd_flush"), "5");

    let locked = Server::start(&["-t", "1", "-F"]);
    let mut c = locked.connect();
    assert_eq!(ask(&mut c, "set a 0 0 1\r\n1\r\n"), "STORED\r\n");
    assert_eq!(
        ask(&mut c, "flush_all\r\n"),
        "CLIENT_ERROR flush_all not allowed\r\n"
    );
    // Refused before its delay is read, as memcached does.
    assert_eq!(
        ask(&mut c, "flush_all abc\r\n"),
        "CLIENT_ERROR flush_all not allowed\r\n"
    );
    assert_eq!(ask(&mut c, "flush_all noreply\r\n"), "");
    assert_eq!(ask(&mut c, "get a\r\n"), "VALUE a 0 1\r\n1\r\nEND\r\n");
    assert_eq!(
        stat(&mut c, "", "cmd_flush"),
        "3",
        "refused flushes are counted too"
    );
    assert_eq!(stat(&mut c, " settings", "flush_enabled"), "no");
}

#[test]
fn version_verbosity_memlimit_quit() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    let version = ask(&mut c, "version\r\n");
    // Plain X.Y.Z, as version parsers expect; who we are is in `stats`.
    assert_eq!(version, "VERSION 1.6.18\r\n");
    assert!(ask(&mut c, "stats\r\n").contains("STAT ferrocache_version "));
    assert_eq!(ask(&mut c, "version extra tokens\r\n"), version);
    assert_eq!(ask(&mut c, "verbosity 1\r\n"), "OK\r\n");
    assert_eq!(ask(&mut c, "verbosity 0 noreply\r\n"), "");
    assert_eq!(ask(&mut c, "verbosity noreply\r\n"), "");
    assert_eq!(ask(&mut c, "verbosity\r\n"), "ERROR\r\n");
    assert_eq!(
        ask(&mut c, "cache_memlimit 7\r\n"),
        "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"
    );
    assert_eq!(ask(&mut c, "cache_memlimit 100\r\n"), "OK\r\n");
    assert_eq!(
        stat(&mut c, "", "limit_maxbytes"),
        (100u64 << 20).to_string()
    );
    assert_eq!(
        stat(&mut c, " settings", "maxbytes"),
        (100u64 << 20).to_string()
    );
    assert_eq!(ask(&mut c, "cache_memlimit 64 noreply\r\n"), "");
    assert_eq!(
        stat(&mut c, "", "limit_maxbytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        ask(&mut c, "shutdown\r\n"),
        "ERROR: shutdown not enabled\r\n"
    );
    c.send(b"get a\r\nquit\r\nget b\r\n");
    assert_eq!(
        c.read_to_close(),
        b"END\r\n",
        "quit closes after earlier replies"
    );
}

#[test]
fn shutdown_command_with_dash_a_stops_the_server() {
    let server = Server::start(&["-t", "2", "-A"]);
    let mut c = server.connect();
    assert_eq!(ask(&mut c, "set a 0 0 1\r\n1\r\n"), "STORED\r\n");
    c.send(b"shutdown\r\n");
    assert_eq!(c.read_to_close(), b"", "shutdown closes without a reply");
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}");
}

#[test]
fn stats_and_its_groups() {
    let server = Server::start(&["-t", "2", "-c", "100"]);
    let mut c = server.connect();
    assert_eq!(
        ask(&mut c, "set a 0 0 5\r\nhello\r\nget a b\r\n"),
        "STORED\r\nVALUE a 0 5\r\nhello\r\nEND\r\n"
    );
    let general = c.call(b"stats\r\n", b"END\r\n");
    for name in [
        "pid",
        "uptime",
        "time",
        "version",
        "pointer_size",
        "rusage_user",
        "rusage_system",
        "max_connections",
        "curr_connections",
        "total_connections",
        "rejected_connections",
        "connection_structures",
        "cmd_get",
        "cmd_set",
        "cmd_flush",
        "cmd_touch",
        "cmd_meta",
        "get_hits",
        "get_misses",
        "get_expired",
        "get_flushed",
        "delete_misses",
        "delete_hits",
        "incr_misses",
        "incr_hits",
        "decr_misses",
        "decr_hits",
        "cas_misses",
        "cas_hits",
        "cas_badval",
        "touch_hits",
        "touch_misses",
        "store_too_large",
        "store_no_memory",
        "auth_cmds",
        "auth_errors",
        "bytes_read",
        "bytes_written",
        "limit_maxbytes",
        "accepting_conns",
        "listen_disabled_num",
        "threads",
        "conn_yields",
        "hash_power_level",
        "hash_bytes",
        "bytes",
        "curr_items",
        "total_items",
        "expired_unfetched",
        "evicted_unfetched",
        "evicted_active",
        "evictions",
        "reclaimed",
    ] {
        assert!(
            general.contains(&format!("\r\nSTAT {name} "))
                || general.starts_with(&format!("STAT {name} ")),
            "stats lacks {name}:\n{general}"
        );
    }
    assert!(
        general
            .lines()
            .all(|l| l.starts_with("STAT ") || l == "END"),
        "{general}"
    );
    assert_eq!(stat(&mut c, "", "pid"), server.pid().to_string());
    assert_eq!(stat(&mut c, "", "max_connections"), "100");
    assert_eq!(stat(&mut c, "", "threads"), "2");
    assert_eq!(stat(&mut c, "", "curr_items"), "1");
    assert_eq!(stat(&mut c, "", "cmd_get"), "2");
    assert_eq!(stat(&mut c, "", "get_hits"), "1");
    assert_eq!(stat(&mut c, "", "get_misses"), "1");
    assert_eq!(stat(&mut c, "", "cmd_set"), "1");
    assert_eq!(stat(&mut c, "", "curr_connections"), "1");
    assert!(stat(&mut c, "", "bytes_read").parse::<u64>().unwrap() > 20);
    assert_eq!(stat(&mut c, " settings", "maxconns"), "100");
    assert_eq!(stat(&mut c, " settings", "num_threads"), "2");
    assert_eq!(stat(&mut c, " settings", "item_size_max"), "1048576");
    let items = c.call(b"stats items\r\n", b"END\r\n");
    assert!(items.contains(":number 1\r\n"), "{items}");
    let slabs = c.call(b"stats slabs\r\n", b"END\r\n");
    assert!(
        slabs.contains(":chunk_size ") && slabs.contains("STAT active_slabs "),
        "{slabs}"
    );
    assert!(slabs.contains("STAT total_malloced "), "{slabs}");
    assert_eq!(
        ask(&mut c, "stats sizes\r\n"),
        "STAT sizes_status disabled\r\nEND\r\n"
    );
    let conns = c.call(b"stats conns\r\n", b"END\r\n");
    assert!(conns.contains(":state conn_listening"), "{conns}");
    assert!(conns.contains(":addr tcp:127.0.0.1:"), "{conns}");
    assert_eq!(ask(&mut c, "stats reset\r\n"), "RESET\r\n");
    assert_eq!(stat(&mut c, "", "cmd_get"), "0");
    assert_eq!(
        stat(&mut c, "", "curr_items"),
        "1",
        "gauges survive a reset"
    );
    assert_eq!(ask(&mut c, "stats bogus\r\n"), "ERROR\r\n");
    assert_eq!(ask(&mut c, "stats noreply\r\n"), "ERROR\r\n");
}

#[test]
fn meta_commands() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    assert_eq!(ask(&mut c, "ms mk 2 F5 T0\r\nhi\r\n"), "HD\r\n");
    assert_eq!(
        ask(&mut c, "mg mk v f t s k\r\n"),
        "VA 2 f5 t-1 s2 kmk\r\nhi\r\n"
    );
    assert_eq!(ask(&mut c, "mg mk\r\n"), "HD\r\n");
    assert_eq!(ask(&mut c, "mg mk O123 k v\r\n"), "VA 2 O123 kmk\r\nhi\r\n");
    assert_eq!(ask(&mut c, "mg nope v\r\n"), "EN\r\n");
    assert_eq!(ask(&mut c, "mg nope v q\r\n"), "");
    // CAS from mg, used by ms C: a stale one gets EX.
    let header = ask(&mut c, "mg mk c\r\n");
    let cas: u64 = header
        .trim_end()
        .strip_prefix("HD c")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(ask(&mut c, &format!("ms mk 3 C{cas}\r\nnew\r\n")), "HD\r\n");
    assert_eq!(ask(&mut c, &format!("ms mk 3 C{cas}\r\nold\r\n")), "EX\r\n");
    assert_eq!(ask(&mut c, "ms mk 1 q\r\nz\r\n"), "", "q hides HD");
    // Modes: E add, R replace, A append, P prepend.
    assert_eq!(ask(&mut c, "ms mk 1 ME\r\nx\r\n"), "NS\r\n");
    assert_eq!(ask(&mut c, "ms fresh 1 MR\r\nx\r\n"), "NS\r\n");
    assert_eq!(ask(&mut c, "ms mk 1 MA\r\n>\r\n"), "HD\r\n");
    assert_eq!(ask(&mut c, "ms mk 1 MP\r\n<\r\n"), "HD\r\n");
    assert_eq!(ask(&mut c, "mg mk v\r\n"), "VA 3\r\n<z>\r\n");
    // Base64 keys: stored decoded, echoed encoded.
    assert_eq!(ask(&mut c, "ms Zm9v 1 b\r\n1\r\n"), "HD\r\n");
    assert_eq!(ask(&mut c, "get foo\r\n"), "VALUE foo 0 1\r\n1\r\nEND\r\n");
    assert_eq!(ask(&mut c, "mg Zm9v b k v\r\n"), "VA 1 kZm9v b\r\n1\r\n");
    // Arithmetic.
    assert_eq!(ask(&mut c, "ma cnt\r\n"), "NF\r\n");
    assert_eq!(ask(&mut c, "ma cnt N0 J10 v\r\n"), "VA 2\r\n10\r\n");
    assert_eq!(ask(&mut c, "ma cnt D5 v\r\n"), "VA 2\r\n15\r\n");
    assert_eq!(ask(&mut c, "ma cnt MD D20 v\r\n"), "VA 1\r\n0\r\n");
    assert_eq!(ask(&mut c, "ma cnt q\r\n"), "");
    // The counter was "15"; a number that gets shorter keeps the length, padded with spaces.
    assert_eq!(ask(&mut c, "get cnt\r\n"), "VALUE cnt 0 2\r\n1 \r\nEND\r\n");
    assert_eq!(
        ask(&mut c, "ma mk\r\n"),
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    );
    // Delete, quiet and not.
    assert_eq!(ask(&mut c, "md cnt\r\n"), "HD\r\n");
    assert_eq!(ask(&mut c, "md cnt\r\n"), "NF\r\n");
    // As memcached 1.6.18 does: q hides md's HD, not its NF.
    assert_eq!(ask(&mut c, "md cnt q\r\n"), "NF\r\n");
    assert_eq!(ask(&mut c, "md foo q\r\n"), "");
    assert_eq!(ask(&mut c, "md mk O7 k\r\n"), "HD O7 kmk\r\n");
    // Invalidation: the next mg sees the item stale and wins the recache; the one after not.
    assert_eq!(ask(&mut c, "ms inv 1\r\nv\r\n"), "HD\r\n");
    assert_eq!(ask(&mut c, "md inv I T30\r\n"), "HD\r\n");
    assert_eq!(ask(&mut c, "mg inv v\r\n"), "VA 1 X W\r\nv\r\n");
    assert_eq!(ask(&mut c, "mg inv v\r\n"), "VA 1 Z X\r\nv\r\n");
    // Debug and no-op.
    assert_eq!(ask(&mut c, "ms dbg 3\r\nabc\r\n"), "HD\r\n");
    let me = ask(&mut c, "me dbg\r\n");
    assert!(me.starts_with("ME dbg exp=-1 la="), "{me}");
    assert!(
        me.contains(" fetch=no cls=") && me.contains(" size="),
        "{me}"
    );
    assert_eq!(ask(&mut c, "me nope\r\n"), "EN\r\n");
    assert_eq!(c.call(b"mn\r\n", b"MN\r\n"), "MN\r\n");
    assert_eq!(
        stat(&mut c, "", "cmd_meta"),
        "2",
        "memcached 1.6.18 counts me only"
    );
}

#[test]
fn a_telnet_session_with_bare_newlines() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    assert_eq!(c.call(b"set t 0 0 5\nhello\r\n", b"\r\n"), "STORED\r\n");
    assert_eq!(
        c.call(b"get t\n", b"END\r\n"),
        "VALUE t 0 5\r\nhello\r\nEND\r\n"
    );
    assert_eq!(c.call(b"incr nope 1\n", b"\r\n"), "NOT_FOUND\r\n");
    assert_eq!(c.call(b"bogus\n", b"\r\n"), "ERROR\r\n");
    assert_eq!(c.call(b"\n", b"\r\n"), "ERROR\r\n");
    // Typed a byte at a time, as telnet in character mode sends it.
    for byte in b"delete t\n" {
        c.send(&[*byte]);
    }
    assert_eq!(c.line(), "DELETED");
    c.send(b"quit\n");
    assert_eq!(c.read_to_close(), b"");
}

#[test]
fn bad_input_gets_memcacheds_error_replies() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    let long_key = "k".repeat(251);
    let cases: Vec<(String, &str)> = vec![
        ("get\tk\r\n".into(), "ERROR\r\n"),
        ("GET k\r\n".into(), "ERROR\r\n"),
        ("\r\n".into(), "ERROR\r\n"),
        ("get\r\n".into(), "ERROR\r\n"),
        (
            format!("get {long_key}\r\n"),
            "CLIENT_ERROR bad command line format\r\n",
        ),
        (
            format!("set {long_key} 0 0 1\r\nx\r\n"),
            "CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            "set k abc 0 1\r\nx\r\n".into(),
            "CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            "set k 0 abc 1\r\nx\r\n".into(),
            "CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            "set k 0 0 -1\r\n".into(),
            "CLIENT_ERROR bad command line format\r\n",
        ),
        ("set k 0 0 1 junk\r\nx\r\n".into(), "STORED\r\n"),
        (
            "set k 0 0 1 noreply x\r\nx\r\n".into(),
            "ERROR\r\nERROR\r\n",
        ),
        (
            "set k 0 0 1\r\nxyz\r\n".into(),
            "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
        (
            "incr k x\r\n".into(),
            "CLIENT_ERROR invalid numeric delta argument\r\n",
        ),
        (
            "touch k abc\r\n".into(),
            "CLIENT_ERROR invalid exptime argument\r\n",
        ),
        ("mg k zz\r\n".into(), "CLIENT_ERROR invalid flag\r\n"),
    ];
    for (request, expected) in cases {
        assert_eq!(ask(&mut c, &request), expected, "for {request:?}");
    }
    // Control characters and UTF-8 in keys are stored, as memcached does.
    assert_eq!(ask(&mut c, "set k\u{1}é 0 0 1\r\nx\r\n"), "STORED\r\n");
    assert_eq!(
        ask(&mut c, "get k\u{1}é\r\n"),
        "VALUE k\u{1}é 0 1\r\nx\r\nEND\r\n"
    );
    // The connection survived all of it.
    assert_eq!(ask(&mut c, "get k\r\n"), "VALUE k 0 1\r\nx\r\nEND\r\n");
}

#[test]
fn item_size_limit() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    let fits = "a".repeat(1_048_000);
    assert_eq!(
        ask(&mut c, &format!("set big 0 0 {}\r\n{fits}\r\n", fits.len())),
        "STORED\r\n"
    );
    let reply = c.call(b"get big\r\n", b"END\r\n");
    assert_eq!(
        reply.len(),
        "VALUE big 0 1048000\r\n".len() + fits.len() + 2 + 5
    );
    let over = "b".repeat(1_048_576);
    assert_eq!(
        ask(&mut c, &format!("set big 0 0 {}\r\n{over}\r\n", over.len())),
        "SERVER_ERROR object too large for cache\r\n"
    );
    // A failed set leaves no stale value behind, as in memcached.
    assert_eq!(ask(&mut c, "get big\r\n"), "END\r\n");
    let far_over = "c".repeat(3 << 20);
    assert_eq!(
        ask(
            &mut c,
            &format!("set big 0 0 {}\r\n{far_over}\r\n", far_over.len())
        ),
        "SERVER_ERROR object too large for cache\r\n"
    );
    assert_eq!(
        ask(
            &mut c,
            &format!("set big 0 0 {} noreply\r\n{far_over}\r\n", far_over.len())
        ),
        ""
    );
    assert_eq!(stat(&mut c, "", "curr_items"), "0");
    let mut small = Server::start(&["-t", "1", "-I", "2k", "-o", "slab_chunk_max=2048"]);
    let mut c = small.connect();
    assert_eq!(
        ask(
            &mut c,
            &format!("set k 0 0 3000\r\n{}\r\n", "x".repeat(3000))
        ),
        "SERVER_ERROR object too large for cache\r\n"
    );
    assert_eq!(
        ask(
            &mut c,
            &format!("set k 0 0 1000\r\n{}\r\n", "x".repeat(1000))
        ),
        "STORED\r\n"
    );
    assert!(small.is_alive());
}

//! The server around the protocol, against the real `ferrocached` binary: pipelining, multi-get
//! across partitions, the connection limit, back-pressure on a client that never reads,
//! SIGTERM, the UNIX socket, `-o idle_timeout`, and bad command lines.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Client, IO_TIMEOUT, Server, signal};

fn stat(client: &mut Client, name: &str) -> u64 {
    let reply = client.call(b"stats\r\n", b"END\r\n");
    let prefix = format!("STAT {name} ");
    reply
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in stats:\n{reply}"))
}

/// Polls `condition` until it holds (no fixed sleeps: the deadline only bounds a failure).
fn eventually(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ten_thousand_pipelined_requests_in_one_write() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    for i in 0..5_000 {
        batch.extend_from_slice(
            format!(
                "set key:{i} {i} 0 {}\r\nvalue-{i}\r\n",
                format!("value-{i}").len()
            )
            .as_bytes(),
        );
        expected.extend_from_slice(b"STORED\r\n");
    }
    for i in 0..5_000 {
        let value = format!("value-{i}");
        batch.extend_from_slice(format!("get key:{i}\r\n").as_bytes());
        expected.extend_from_slice(
            format!("VALUE key:{i} {i} {}\r\n{value}\r\nEND\r\n", value.len()).as_bytes(),
        );
    }
    // A writer thread, so that a server answering while we still write cannot deadlock us.
    let mut writer = c.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&batch).unwrap());
    let reply = c.read_exact(expected.len());
    sender.join().unwrap();
    assert!(reply == expected, "replies differ from the expected 10,000");
    assert_eq!(stat(&mut c, "cmd_get"), 5_000);
    assert_eq!(stat(&mut c, "curr_items"), 5_000);
}

#[test]
fn multi_get_spans_partitions() {
    let server = Server::start(&["-t", "4"]);
    let mut c = server.connect();
    let mut request = String::from("get");
    let mut expected = String::new();
    for i in 0..400 {
        c.call(
            format!("set mk{i} {i} 0 {}\r\n{i}\r\n", i.to_string().len()).as_bytes(),
            b"\r\n",
        );
        request.push_str(&format!(" mk{i} missing{i}"));
        expected.push_str(&format!(
            "VALUE mk{i} {i} {}\r\n{i}\r\n",
            i.to_string().len()
        ));
    }
    request.push_str("\r\n");
    expected.push_str("END\r\n");
    assert_eq!(c.call(request.as_bytes(), b"END\r\n"), expected);
    assert_eq!(stat(&mut c, "get_hits"), 400);
    assert_eq!(stat(&mut c, "get_misses"), 400);
    // Four partitions each hold part of the keys (as stats items sums them, all 400).
    assert_eq!(stat(&mut c, "curr_items"), 400);
    // A multi-get whose replies pass the output high-water mark pauses and resumes in order.
    let value = "v".repeat(100_000);
    let mut big = String::from("get");
    for i in 0..40 {
        c.call(
            format!("set big{i} 0 0 {}\r\n{value}\r\n", value.len()).as_bytes(),
            b"\r\n",
        );
        big.push_str(&format!(" big{i}"));
    }
    big.push_str("\r\n");
    let reply = c.call(big.as_bytes(), b"END\r\n");
    let keys: Vec<&str> = reply
        .lines()
        .filter_map(|line| line.strip_prefix("VALUE "))
        .map(|line| line.split(' ').next().unwrap())
        .collect();
    let want: Vec<String> = (0..40).map(|i| format!("big{i}")).collect();
    assert_eq!(keys, want);
}

#[test]
fn connections_over_the_limit_are_refused() {
    let server = Server::start(&["-t", "2", "-c", "3"]);
    let mut held: Vec<Client> = (0..3).map(|_| server.connect()).collect();
    for client in &mut held {
        assert!(client.call(b"version\r\n", b"\r\n").starts_with("VERSION "));
    }
    let mut refused = server.connect();
    let mut reply = Vec::new();
    let _ = refused.stream.read_to_end(&mut reply);
    assert_eq!(reply, b"ERROR Too many open connections\r\n");
    assert_eq!(stat(&mut held[0], "rejected_connections"), 1);
    assert_eq!(stat(&mut held[0], "curr_connections"), 3);
    // A slot freed is a slot for the next client.
    drop(held.pop());
    eventually(Duration::from_secs(5), "curr_connections to drop", || {
        stat(&mut held[0], "curr_connections") == 2
    });
    let mut again = server.connect();
    assert!(again.call(b"version\r\n", b"\r\n").starts_with("VERSION "));
}

#[test]
fn a_client_that_never_reads_cannot_grow_the_server() {
    let server = Server::start(&["-t", "2", "-m", "64"]);
    let mut c = server.connect();
    let value = "x".repeat(512 * 1024);
    assert_eq!(
        c.call(
            format!("set big 0 0 {}\r\n{value}\r\n", value.len()).as_bytes(),
            b"\r\n"
        ),
        "STORED\r\n"
    );
    let before = server.rss_kib();
    // Up to 2,000,000 gets of 512 KiB (a terabyte of replies); the client never reads any.
    // Socket buffers absorb some megabytes of requests, then the server must stop reading.
    let mut hog = TcpStream::connect(server.addr).unwrap();
    hog.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let gets = b"get big\r\n".repeat(10_000);
    let mut sent = 0usize;
    for _ in 0..200 {
        match hog.write_all(&gets) {
            Ok(()) => sent += 10_000,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("writing gets: {e}"),
        }
    }
    assert!(
        sent < 2_000_000,
        "the server kept reading although nobody read its replies"
    );
    let after = server.rss_kib();
    assert!(
        after < before + 48 * 1024,
        "RSS grew from {before} KiB to {after} KiB with {sent} gets unanswered"
    );
    // Everyone else is still served.
    let mut other = server.connect();
    assert_eq!(other.call(b"get nope\r\n", b"END\r\n"), "END\r\n");
    assert!(other.call(b"get big\r\n", b"END\r\n").len() > value.len());
}

#[test]
fn sigterm_delivers_replies_in_flight_and_exits_zero() {
    let server = Server::start(&["-t", "2", "-R", "5"]);
    let mut c = server.connect();
    let value = "y".repeat(1000);
    c.call(
        format!("set k 0 0 {}\r\n{value}\r\n", value.len()).as_bytes(),
        b"\r\n",
    );
    let one = format!("VALUE k 0 {}\r\n{value}\r\nEND\r\n", value.len());
    // 200 gets: still forty -R turns, and their replies (200 KB) fit the socket buffers, so
    // the drain's grace (700 ms) never depends on how soon this thread is scheduled to read.
    let gets = "get k\r\n".repeat(200);
    c.send(gets.as_bytes());
    // The server is answering: now stop it; what it has received is still answered.
    let first = c.read_exact(one.len());
    assert_eq!(first, one.as_bytes());
    signal(server.pid(), "TERM");
    let rest = c.read_to_close();
    assert_eq!(
        rest.len(),
        one.len() * 199,
        "every get sent before SIGTERM is answered"
    );
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn sigterm_and_sigint_exit_zero_quickly() {
    for name in ["TERM", "INT"] {
        let server = Server::start(&["-t", "2"]);
        let mut idle = server.connect();
        assert!(idle.call(b"version\r\n", b"\r\n").starts_with("VERSION"));
        let started = Instant::now();
        signal(server.pid(), name);
        let status = server.wait_exit();
        assert_eq!(status.code(), Some(0), "SIG{name}: {status:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "SIG{name} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn unix_socket_works_like_tcp() {
    let path = std::env::temp_dir().join(format!("ferrocached-test-{}.sock", std::process::id()));
    let path_text = path.to_str().unwrap().to_string();
    let server = Server::start_exact(&["-s", &path_text, "-a", "600", "-t", "2"], &[]);
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let mut stream = UnixStream::connect(&path).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
        .write_all(b"set u 1 0 3\r\nabc\r\nget u\r\nmn\r\n")
        .unwrap();
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    while !reply.ends_with(b"MN\r\n") {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&reply));
        reply.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(reply, b"STORED\r\nVALUE u 1 3\r\nabc\r\nEND\r\nMN\r\n");
    let status = server.terminate();
    assert!(status.success());
    assert!(!path.exists(), "the socket file is removed at exit");
}

#[test]
fn idle_connections_are_closed_after_idle_timeout() {
    let server = Server::start(&["-t", "2", "-o", "idle_timeout=1"]);
    let mut idle = server.connect();
    assert!(idle.call(b"version\r\n", b"\r\n").starts_with("VERSION"));
    let started = Instant::now();
    assert!(
        idle.is_closed_by_server(Duration::from_secs(5)),
        "idle connection kept open"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed too early"
    );
    let mut fresh = server.connect();
    assert_eq!(stat(&mut fresh, "idle_kicks"), 1);
    let settings = fresh.call(b"stats settings\r\n", b"END\r\n");
    assert!(settings.contains("STAT idle_timeout 1\r\n"), "{settings}");
}

#[test]
fn bad_command_lines_exit_64_with_one_line() {
    for args in [
        &["-p", "99999"][..],
        &["-m", "abc"],
        &["-t", "0"],
        &["-c", "x"],
        &["-I", "2x"],
        &["-o", "no_such_option"],
        &["-o", "ext_path=/tmp/x:1G"],
        &["--no-such-flag"],
        &["-I", "1m", "-m", "1"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_ferrocached"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ferrocached");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error:"), "{args:?}: {stderr}");
    }
    let env_bad = Command::new(env!("CARGO_BIN_EXE_ferrocached"))
        .env("FERROCACHED_MEMORY_LIMIT", "lots")
        .output()
        .unwrap();
    assert_eq!(env_bad.status.code(), Some(64));
    let version = Command::new(env!("CARGO_BIN_EXE_ferrocached"))
        .arg("-V")
        .output()
        .unwrap();
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).contains("memcached 1.6.18 protocol"));
    let help = Command::new(env!("CARGO_BIN_EXE_ferrocached"))
        .arg("-h")
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--memory-limit"));
}

#[test]
fn settings_come_from_the_environment() {
    let server = Server::start_exact(
        &["-p", "0", "-l", "127.0.0.1"],
        &[
            ("FERROCACHED_CONN_LIMIT", "77"),
            ("FERROCACHED_THREADS", "3"),
        ],
    );
    let mut c = server.connect();
    assert_eq!(stat(&mut c, "max_connections"), 77);
    assert_eq!(stat(&mut c, "threads"), 3);
}

#[test]
fn start_up_line_names_addresses_threads_and_memory() {
    let server = Server::start(&["-t", "3", "-m", "32"]);
    let stderr = server.stderr();
    let line = stderr.lines().find(|l| l.contains("listening on")).unwrap();
    assert!(line.contains("tcp:127.0.0.1:"), "{line}");
    assert!(
        line.contains("3 threads") && line.contains("32 MiB"),
        "{line}"
    );
    assert!(server.terminate().success());
}

#[test]
fn a_pipelining_client_cannot_starve_another() {
    // One worker, so both clients share its loop; -R 20 lets each have a turn in between.
    let server = Server::start(&["-t", "1", "-R", "20"]);
    let mut setup = server.connect();
    setup.call(b"set k 0 0 10\r\n0123456789\r\n", b"\r\n");
    let one = b"VALUE k 0 10\r\n0123456789\r\nEND\r\n";
    let requests = 200_000;
    let mut hog = server.connect();
    let mut writer = hog.stream.try_clone().unwrap();
    let sender =
        std::thread::spawn(move || writer.write_all(&b"get k\r\n".repeat(requests)).unwrap());
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let first = hog.read_exact(one.len());
        started_tx.send(()).unwrap();
        let rest = hog.read_exact(one.len() * (requests - 1));
        (first, rest.len())
    });
    started_rx
        .recv_timeout(IO_TIMEOUT)
        .expect("the hog is served");
    let mut polite = server.connect();
    assert_eq!(
        polite.call(b"get k\r\n", b"END\r\n").as_bytes(),
        one,
        "the polite client is answered"
    );
    assert!(
        !reader.is_finished(),
        "the polite client waited until all {requests} pipelined requests were served"
    );
    sender.join().unwrap();
    let (first, rest) = reader.join().unwrap();
    assert_eq!(
        (first.as_slice(), rest),
        (&one[..], one.len() * (requests - 1))
    );
    assert!(stat(&mut polite, "conn_yields") > 0);
}

/// A value of `len` bytes that differs from every other of this test's values at every
/// 64 KiB: a piece written twice, or skipped, or out of order, shows.
fn patterned_value(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b'a' + ((i / 1000 + usize::from(seed) * 7) % 26) as u8)
        .collect()
}

fn value_reply(key: &str, value: &[u8]) -> Vec<u8> {
    let mut reply = format!("VALUE {key} 0 {}\r\n", value.len()).into_bytes();
    reply.extend_from_slice(value);
    reply.extend_from_slice(b"\r\n");
    reply
}

/// Replies larger than what one connection writes per turn go out in several turns: each
/// arrives whole and in order, between and after small replies of the same pipeline, also when
/// the client reads slowly (the socket fills and a writable edge resumes the rest).
#[test]
fn large_replies_arrive_whole_and_in_order_among_small_ones() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    let values: Vec<(String, Vec<u8>)> = [(1, 200_000), (2, 700_000), (3, 65_537), (4, 1_000_000)]
        .into_iter()
        .map(|(seed, len)| (format!("big{seed}"), patterned_value(seed, len)))
        .collect();
    for (key, value) in &values {
        let mut set = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
        set.extend_from_slice(value);
        set.extend_from_slice(b"\r\n");
        assert_eq!(c.call(&set, b"\r\n"), "STORED\r\n");
    }
    assert_eq!(c.call(b"set small 0 0 2\r\nhi\r\n", b"\r\n"), "STORED\r\n");
    let small = value_reply("small", b"hi");
    let mut requests = Vec::new();
    let mut expected = Vec::new();
    for round in 0..3 {
        for (key, value) in &values {
            requests.extend_from_slice(format!("get {key}\r\nget small\r\n").as_bytes());
            expected.extend_from_slice(&value_reply(key, value));
            expected.extend_from_slice(b"END\r\n");
            expected.extend_from_slice(&small);
            expected.extend_from_slice(b"END\r\n");
        }
        // A multi-get of all of them, large and small mixed.
        requests.extend_from_slice(b"get big4 small big1 big2\r\n");
        for key in ["big4", "small", "big1", "big2"] {
            let value = match key {
                "small" => &b"hi"[..],
                _ => &values.iter().find(|(k, _)| k == key).unwrap().1[..],
            };
            expected.extend_from_slice(&value_reply(key, value));
        }
        expected.extend_from_slice(b"END\r\n");
        requests.extend_from_slice(format!("mg small v k O{round}\r\n").as_bytes());
        expected.extend_from_slice(format!("VA 2 ksmall O{round}\r\nhi\r\n").as_bytes());
        // A large value through the meta protocol, written from its chunks too.
        let big2 = &values[1].1;
        requests.extend_from_slice(format!("mg big2 v O{round}\r\n").as_bytes());
        expected.extend_from_slice(format!("VA {} O{round}\r\n", big2.len()).as_bytes());
        expected.extend_from_slice(big2);
        expected.extend_from_slice(b"\r\n");
    }
    let mut writer = c.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&requests).unwrap());
    // Slowly at first: the server's socket fills and it must resume on the writable edge.
    let mut received = Vec::with_capacity(expected.len());
    let mut chunk = [0u8; 4096];
    while received.len() < 256 * 1024 {
        let n = c.stream.read(&mut chunk).unwrap();
        assert!(n > 0, "server closed after {} bytes", received.len());
        received.extend_from_slice(&chunk[..n]);
        std::thread::sleep(Duration::from_micros(200));
    }
    received.extend_from_slice(&c.read_exact(expected.len() - received.len()));
    sender.join().unwrap();
    assert_eq!(received.len(), expected.len());
    let first_difference = received.iter().zip(&expected).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "replies differ from the expected");
    // Nothing more came, and the connection is still in step.
    assert_eq!(
        c.call(b"get small\r\n", b"END\r\n").as_bytes(),
        [&small[..], b"END\r\n"].concat()
    );
}

/// A large reply followed by `quit`, and large replies in flight at SIGTERM, are written whole
/// before the connection closes, although each takes several turns.
#[test]
fn large_replies_are_written_whole_before_a_close() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    let value = patterned_value(9, 900_000);
    let mut set = format!("set big 0 0 {}\r\n", value.len()).into_bytes();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    assert_eq!(c.call(&set, b"\r\n"), "STORED\r\n");
    let one = [value_reply("big", &value), b"END\r\n".to_vec()].concat();

    let mut quitting = server.connect();
    quitting.send(b"get big\r\nget big\r\nquit\r\n");
    let all = quitting.read_to_close();
    assert!(
        all == [&one[..], &one[..]].concat(),
        "got {} bytes",
        all.len()
    );

    c.send(&b"get big\r\n".repeat(3));
    // The server is answering (the first bytes are here): now stop it.
    let first = c.read_exact(1000);
    assert_eq!(first, one[..1000]);
    signal(server.pid(), "TERM");
    let rest = c.read_to_close();
    assert!(
        [&first[..], &rest[..]].concat() == one.repeat(3),
        "got {} of {} bytes",
        first.len() + rest.len(),
        one.len() * 3
    );
    assert_eq!(server.wait_exit().code(), Some(0));
}

/// Sum of `used_chunks` over every slab class in a `stats slabs` reply.
fn used_chunks(stats_slabs: &str) -> u64 {
    stats_slabs
        .lines()
        .filter_map(|line| line.strip_prefix("STAT "))
        .filter_map(|stat| stat.split_once(' '))
        .filter(|(name, _)| name.ends_with(":used_chunks"))
        .map(|(_, value)| value.parse::<u64>().unwrap())
        .sum()
}

/// `ferrocached -t 1 -m 16` on a UNIX socket only, whose file goes with it.
struct UnixServer {
    server: Option<Server>,
    path: std::path::PathBuf,
}

impl UnixServer {
    fn start(name: &str) -> UnixServer {
        let path =
            std::env::temp_dir().join(format!("ferrocached-{name}-{}.sock", std::process::id()));
        let path_text = path.to_str().unwrap().to_string();
        let server = Server::start_exact(&["-s", &path_text, "-t", "1", "-m", "16"], &[]);
        UnixServer {
            server: Some(server),
            path,
        }
    }

    fn connect(&self) -> UnixStream {
        let stream = UnixStream::connect(&self.path).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream
    }
}

impl Drop for UnixServer {
    fn drop(&mut self) {
        drop(self.server.take());
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Large values are written from their slab chunks, pinned while a client reads them: a
/// reader that takes its time gets each value as it was when its `get` was served, whole,
/// while another client deletes it, stores it anew and writes many times the memory limit
/// over; once read (or once a reader goes away without reading) the chunks are freed.
///
/// Over a UNIX socket, whose buffers do not grow as TCP's do: while the reader does not read,
/// the server holds the replies it has begun, and serves no more of the gets, for certain.
#[test]
fn a_large_value_read_slowly_stays_whole_while_its_memory_is_rewritten() {
    let server = UnixServer::start("held");
    let connect = || server.connect();
    let read_exact = |stream: &mut UnixStream, len: usize| {
        let mut bytes = vec![0; len];
        stream
            .read_exact(&mut bytes)
            .expect("bytes from the server");
        bytes
    };
    let mut setter = connect();
    let mut call = |request: &[u8], reply: &[u8]| {
        setter.write_all(request).unwrap();
        assert_eq!(read_exact(&mut setter, reply.len()), reply);
    };
    let store_request = |key: &str, value: &[u8]| {
        let mut set = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
        set.extend_from_slice(value);
        set.extend_from_slice(b"\r\n");
        set
    };
    let original = patterned_value(1, 900_000);
    let renewed = patterned_value(99, 900_000);
    call(&store_request("big", &original), b"STORED\r\n");
    let reply_of = |value: &[u8]| [value_reply("big", value), b"END\r\n".to_vec()].concat();
    let (old_reply, new_reply) = (reply_of(&original), reply_of(&renewed));

    const GETS: usize = 16;
    let mut reader = connect();
    reader.write_all(&b"get big\r\n".repeat(GETS)).unwrap();
    let mut leaver = connect();
    leaver.write_all(&b"get big\r\n".repeat(GETS)).unwrap();
    let first = read_exact(&mut reader, 1000);
    assert_eq!(first, old_reply[..1000]);
    assert_eq!(read_exact(&mut leaver, 1000), old_reply[..1000]);
    drop(leaver);

    call(b"delete big\r\n", b"DELETED\r\n");
    for round in 0..40 {
        let value = patterned_value(round + 2, 900_000);
        call(
            &store_request(&format!("churn{}", round % 7), &value),
            b"STORED\r\n",
        );
    }
    call(&store_request("big", &renewed), b"STORED\r\n");

    // Each reply is the value as it was when served: the old one for the gets served before
    // the rewrite, the new one after (none while the key was gone); never a mix.
    let mut received = first;
    received.extend_from_slice(&read_exact(&mut reader, old_reply.len() - received.len()));
    let mut old_replies = 0;
    while received == old_reply && old_replies < GETS {
        old_replies += 1;
        received = read_exact(&mut reader, old_reply.len());
    }
    assert!(
        (1..GETS).contains(&old_replies),
        "{old_replies} replies of the old value"
    );
    assert_eq!(
        received,
        new_reply,
        "reply {} is neither value",
        old_replies + 1
    );
    for _ in old_replies + 1..GETS {
        assert_eq!(read_exact(&mut reader, new_reply.len()), new_reply);
    }
    eprintln!("{old_replies} of {GETS} replies were of the value before the rewrite");

    // Every chunk comes back once nothing is stored and nobody reads.
    call(b"flush_all\r\n", b"OK\r\n");
    eventually(Duration::from_secs(10), "every chunk freed", || {
        setter.write_all(b"stats slabs\r\n").unwrap();
        let mut reply = Vec::new();
        while !reply.ends_with(b"END\r\n") {
            let mut chunk = [0u8; 4096];
            let n = setter.read(&mut chunk).unwrap();
            reply.extend_from_slice(&chunk[..n]);
        }
        used_chunks(&String::from_utf8(reply).unwrap()) == 0
    });
}

/// Clients that ask for large values and never read them cannot hold the cache's memory:
/// past a budget (an eighth of a partition's share) values are copied, not pinned, so the
/// deleted values such readers wait for do not keep stores from finding memory.
#[test]
fn readers_that_never_read_cannot_hold_the_memory() {
    let server = UnixServer::start("budget");
    let connect = || server.connect();
    let mut setter = connect();
    let mut call = |request: &[u8]| {
        setter.write_all(request).unwrap();
        let mut reply = Vec::new();
        while !reply.ends_with(b"\r\n") {
            let mut byte = [0u8; 1];
            setter.read_exact(&mut byte).unwrap();
            reply.push(byte[0]);
        }
        String::from_utf8(reply).unwrap()
    };
    let set = |key: &str, seed: u8| {
        let value = patterned_value(seed, 900_000);
        let mut request = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
        request.extend_from_slice(&value);
        request.extend_from_slice(b"\r\n");
        request
    };
    let mut waiting = Vec::new();
    for round in 0..18u8 {
        let key = format!("pin{round}");
        assert_eq!(call(&set(&key, round)), "STORED\r\n");
        let mut reader = connect();
        reader
            .write_all(&format!("get {key}\r\n").repeat(8).into_bytes())
            .unwrap();
        let mut first = [0u8; 100];
        reader.read_exact(&mut first).unwrap();
        waiting.push(reader);
        assert_eq!(call(format!("delete {key}\r\n").as_bytes()), "DELETED\r\n");
    }
    for round in 0..30u8 {
        let reply = call(&set(&format!("after{}", round % 12), round));
        assert_eq!(
            reply, "STORED\r\n",
            "store {round} beside 18 readers that never read"
        );
    }
    drop(waiting);
}

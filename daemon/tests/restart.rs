//! Warm restarts with `-e`, against the real binary: a cache filled with a million items of
//! mixed sizes, flags and TTLs comes back byte for byte after SIGTERM (and after SIGUSR1 or
//! `shutdown`); a `kill -9` or a changed `-m` makes the next start cold, and `stats` says so.

mod support;

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use support::{Server, signal};

/// A memory file in /dev/shm (tmpfs, as memcached's `-e` wants), removed when dropped.
struct MemoryFile(PathBuf);

impl MemoryFile {
    fn new(name: &str) -> MemoryFile {
        let path = PathBuf::from(format!(
            "/dev/shm/ferrocache-test-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        MemoryFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }
}

impl Drop for MemoryFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn start(file: &MemoryFile, memory_mib: &str) -> Server {
    Server::start(&[
        "-t",
        "2",
        "-U",
        "0",
        "-m",
        memory_mib,
        "-A",
        "-e",
        file.path(),
    ])
}

/// A plain connection for bulk traffic: buffered both ways.
struct Connection {
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
}

impl Connection {
    fn open(server: &Server) -> Connection {
        let stream = TcpStream::connect(server.addr).expect("connect");
        stream
            .set_read_timeout(Some(support::IO_TIMEOUT))
            .expect("timeout");
        Connection {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: BufWriter::with_capacity(1 << 16, stream),
        }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("a reply line");
        assert!(line.ends_with("\r\n"), "cut reply {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    fn ask(&mut self, request: &str) -> String {
        self.writer.write_all(request.as_bytes()).expect("send");
        self.writer.flush().expect("send");
        self.line()
    }

    /// `stats` or `stats settings` as name -> value.
    fn stats(&mut self, group: &str) -> std::collections::HashMap<String, String> {
        self.writer
            .write_all(format!("stats {group}\r\n").as_bytes())
            .expect("send");
        self.writer.flush().expect("send");
        let mut stats = std::collections::HashMap::new();
        loop {
            let line = self.line();
            if line == "END" {
                return stats;
            }
            let mut fields = line.splitn(3, ' ');
            assert_eq!(fields.next(), Some("STAT"), "{line}");
            let name = fields.next().expect("a name").to_string();
            stats.insert(name, fields.next().unwrap_or_default().to_string());
        }
    }

    /// `gets` of many keys: key -> (flags, value, CAS).
    fn gets(&mut self, keys: &[String]) -> Vec<(String, u32, Vec<u8>, u64)> {
        self.writer
            .write_all(format!("gets {}\r\n", keys.join(" ")).as_bytes())
            .expect("send");
        self.writer.flush().expect("send");
        let mut found = Vec::new();
        loop {
            let line = self.line();
            if line == "END" {
                return found;
            }
            let fields: Vec<&str> = line.split(' ').collect();
            assert!(fields.len() == 5 && fields[0] == "VALUE", "{line}");
            let len: usize = fields[3].parse().expect("a length");
            let mut value = vec![0; len + 2];
            self.reader.read_exact(&mut value).expect("the value");
            assert_eq!(&value[len..], b"\r\n");
            value.truncate(len);
            found.push((
                fields[1].to_string(),
                fields[2].parse().expect("flags"),
                value,
                fields[4].parse().expect("a CAS"),
            ));
        }
    }
}

fn key(i: usize) -> String {
    format!("restart:{i}")
}

/// Mixed sizes: most values small, one in ten a few hundred bytes to a KB, one in a hundred
/// a few KB, one in twenty thousand 300 KB (chained over several chunks).
fn value(i: usize) -> Vec<u8> {
    let len = if i % 20_000 == 7 {
        300_000 + i % 1000
    } else if i.is_multiple_of(100) {
        2_000 + i % 3_000
    } else if i.is_multiple_of(10) {
        200 + i % 1_000
    } else {
        10 + i % 100
    };
    (0..len)
        .map(|at| b'a' + ((i + at * 7) % 26) as u8)
        .collect()
}

fn flags(i: usize) -> u32 {
    (i as u32).wrapping_mul(2_654_435_761)
}

/// One in seven items was already expired when stored (a negative exptime), one in seven
/// lives an hour, one in seven until an absolute time two hours away; the rest never expire.
fn exptime(i: usize, unix_now: i64) -> i64 {
    match i % 7 {
        0 => -1,
        1 => 3_600,
        2 => unix_now + 7_200,
        _ => 0,
    }
}

fn is_live(i: usize) -> bool {
    !i.is_multiple_of(7)
}

/// Sets items `0..count` with noreply, pipelined, and waits for them all (`mn`).
fn fill(connection: &mut Connection, count: usize, unix_now: i64) {
    for i in 0..count {
        let value = value(i);
        write!(
            connection.writer,
            "set {} {} {} {} noreply\r\n",
            key(i),
            flags(i),
            exptime(i, unix_now),
            value.len()
        )
        .expect("send");
        connection.writer.write_all(&value).expect("send");
        connection.writer.write_all(b"\r\n").expect("send");
    }
    assert_eq!(connection.ask("mn\r\n"), "MN");
}

/// Every item `0..count`, read back in batches: key -> (flags, value, CAS).
fn read_all(
    connection: &mut Connection,
    count: usize,
) -> std::collections::HashMap<String, (u32, Vec<u8>, u64)> {
    let mut all = std::collections::HashMap::with_capacity(count);
    let keys: Vec<String> = (0..count).map(key).collect();
    for batch in keys.chunks(100) {
        for (key, flags, value, cas) in connection.gets(batch) {
            all.insert(key, (flags, value, cas));
        }
    }
    all
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

const ITEMS: usize = 1_000_000;

#[test]
fn a_million_items_come_back_after_sigterm_byte_for_byte() {
    let file = MemoryFile::new("million");
    let server = start(&file, "512");
    let mut connection = Connection::open(&server);
    let filled_at = unix_now();
    let fill_started = std::time::Instant::now();
    fill(&mut connection, ITEMS, filled_at);
    let stats = connection.stats("");
    let live = (0..ITEMS).filter(|&i| is_live(i)).count();
    assert_eq!(
        stats["evictions"], "0",
        "the fill must fit, or items would be missing"
    );
    assert_eq!(stats["restart_cold"], "1", "a new memory file starts cold");
    let before = read_all(&mut connection, ITEMS);
    assert_eq!(before.len(), live);
    // Time-to-live as meta get reports it, for a sample of the hour-long items.
    let ttl_sample: Vec<usize> = (0..ITEMS).filter(|i| i % 7 == 1).step_by(1_000).collect();
    for &i in &ttl_sample {
        let reply = connection.ask(&format!("mg {} t\r\n", key(i)));
        let ttl: i64 = reply.trim_start_matches("HD t").parse().expect(&reply);
        // An hour less the time the fill and the reading back took (slow on a busy machine).
        let least = 3_600 - fill_started.elapsed().as_secs() as i64 - 1;
        assert!((least..=3_600).contains(&ttl), "{reply}");
    }
    let filled_in = fill_started.elapsed();
    drop(connection);

    let stopped_at = std::time::Instant::now();
    assert!(server.terminate().success());
    let server = start(&file, "512");
    let restarted_in = stopped_at.elapsed();
    let mut connection = Connection::open(&server);
    let stats = connection.stats("");
    assert_eq!(stats["restart_warm"], "1", "{}", server.stderr());
    assert_eq!(stats["restart_items_recovered"], live.to_string());
    assert_eq!(stats["curr_items"], live.to_string());
    assert_eq!(connection.stats("")["restart_cold_reason"], "none");
    let after = read_all(&mut connection, ITEMS);
    assert_eq!(after.len(), live, "every live item, and no expired one");
    for (key, item) in &before {
        assert!(
            after.get(key) == Some(item),
            "{key} changed across the restart"
        );
    }
    let down_for = unix_now() - filled_at;
    for &i in &ttl_sample {
        let reply = connection.ask(&format!("mg {} t\r\n", key(i)));
        let ttl: i64 = reply.trim_start_matches("HD t").parse().expect(&reply);
        assert!(
            (3_600 - down_for - 1..=3_600).contains(&ttl) && ttl < 3_600,
            "{reply} after {down_for} s"
        );
    }
    // New stores go on with fresh CAS uniques.
    assert_eq!(connection.ask("set fresh 0 0 1\r\nx\r\n"), "STORED");
    let fresh_cas = connection.gets(&["fresh".to_string()])[0].3;
    assert!(before.values().all(|item| item.2 != fresh_cas));
    eprintln!(
        "{ITEMS} items: filled and read back in {filled_in:?}; stop and warm start in {restarted_in:?}"
    );
}

#[test]
fn kill_9_or_a_changed_memory_limit_starts_cold_and_says_why() {
    let file = MemoryFile::new("cold");
    let server = start(&file, "64");
    let mut connection = Connection::open(&server);
    fill(&mut connection, 5_000, unix_now());
    drop(connection);
    assert!(server.terminate().success());

    // Warm, then killed: nothing it held may be served by the next process.
    let server = start(&file, "64");
    let mut connection = Connection::open(&server);
    assert_eq!(connection.stats("")["restart_warm"], "1");
    assert_eq!(connection.ask("set during 0 0 4\r\nkill\r\n"), "STORED");
    signal(server.pid(), "KILL");
    drop(connection);
    drop(server);
    let server = start(&file, "64");
    let mut connection = Connection::open(&server);
    let stats = connection.stats("");
    assert_eq!(stats["restart_cold"], "1");
    assert_eq!(stats["restart_items_recovered"], "0");
    assert_eq!(stats["curr_items"], "0");
    assert_eq!(connection.stats("")["restart_cold_reason"], "not_clean");
    assert!(
        server.stderr().contains("did not shut down cleanly"),
        "{}",
        server.stderr()
    );
    assert!(connection.gets(&[key(1), "during".to_string()]).is_empty());
    fill(&mut connection, 1_000, unix_now());
    drop(connection);
    assert!(server.terminate().success());

    // Saved cleanly, but started with another -m: the layout differs, so cold.
    let server = start(&file, "128");
    let mut connection = Connection::open(&server);
    assert_eq!(connection.stats("")["restart_cold"], "1");
    assert_eq!(connection.stats("")["restart_cold_reason"], "settings");
    assert!(
        server.stderr().contains("memory limit (-m) changed"),
        "{}",
        server.stderr()
    );
    assert!(connection.gets(&[key(1)]).is_empty());
}

#[test]
fn sigusr1_and_shutdown_save_the_cache_too() {
    let file = MemoryFile::new("graceful");
    let server = start(&file, "64");
    let mut connection = Connection::open(&server);
    fill(&mut connection, 2_000, unix_now());
    let before = read_all(&mut connection, 2_000);
    drop(connection);
    signal(server.pid(), "USR1");
    assert!(server.wait_exit().success());

    let server = start(&file, "64");
    let mut connection = Connection::open(&server);
    assert_eq!(read_all(&mut connection, 2_000), before);
    // As memcached, the server closes the connection without a reply.
    connection
        .writer
        .write_all(b"shutdown graceful\r\n")
        .expect("send");
    connection.writer.flush().expect("send");
    drop(connection);
    assert!(server.wait_exit().success());

    let server = start(&file, "64");
    let mut connection = Connection::open(&server);
    assert_eq!(connection.stats("")["restart_warm"], "1");
    assert_eq!(read_all(&mut connection, 2_000), before);
}

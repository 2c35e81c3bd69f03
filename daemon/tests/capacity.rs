//! Mixed-size capacity, side by side with memcached 1.6.18: the same stream of keys written
//! once (three times `-m` of values, sizes drawn from one seeded generator) into ferrocached
//! and memcached with the same `-t` and `-m`, then `curr_items`, `bytes` and how many of the
//! newest 5% of keys each still has. Memory must follow the items at every thread count, as
//! memcached's does (ferrocached held 2% of memcached's items at `-t 8` when each partition
//! needed a 1 MiB page per slab class).
//!
//! The page mover keeps small items longer than large ones (storage/README.md), so mixed fills
//! hold more items than memcached's (1.15-1.19x at 1..5000 bytes, 1.33-1.35x at 100..1000);
//! each check asks for a little less than measured, and never less than memcached's count.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use support::{Reference, Server};

#[derive(Debug)]
struct Held {
    items: u64,
    bytes: u64,
    newest_kept: f64,
}

/// Value sizes of one fill: uniform in `lo..=hi`.
#[derive(Clone, Copy)]
struct Sizes {
    lo: usize,
    hi: usize,
}

/// Writes keys `k:0`, `k:1`, ... with `noreply` sets until `3 * memory` bytes of values went
/// out, then counts what the server holds.
fn fill(addr: SocketAddr, memory: usize, sizes: Sizes) -> Held {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    // Replies (errors only, under noreply) are drained by a thread until the closing VERSION.
    let mut reader = stream.try_clone().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = reader.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(8).any(|w| w == b"VERSION ") {
                break;
            }
            let keep = seen.len().saturating_sub(8);
            seen.drain(..keep);
        }
        let _ = done_tx.send(());
    });
    let value = vec![b'v'; sizes.hi];
    let mut random = 0x9e37_79b9_7f4a_7c15_u64;
    let (mut written, mut keys) = (0usize, 0u64);
    let mut batch = Vec::with_capacity(1 << 20);
    while written < 3 * memory {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let size = sizes.lo + (random % (sizes.hi - sizes.lo + 1) as u64) as usize;
        write!(batch, "set k:{keys} 0 0 {size} noreply\r\n").unwrap();
        batch.extend_from_slice(&value[..size]);
        batch.extend_from_slice(b"\r\n");
        keys += 1;
        written += size;
        if batch.len() >= 1 << 20 {
            stream.write_all(&batch).unwrap();
            batch.clear();
        }
    }
    batch.extend_from_slice(b"version\r\n");
    stream.write_all(&batch).unwrap();
    done_rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the fill was answered");

    let mut client = TcpStream::connect(addr).unwrap();
    let stats = request(&mut client, b"stats\r\n", b"END\r\n");
    let stat = |name: &str| -> u64 {
        stats
            .lines()
            .find_map(|line| line.strip_prefix(&format!("STAT {name} ")))
            .unwrap_or_else(|| panic!("no {name} in stats"))
            .trim()
            .parse()
            .unwrap()
    };
    let newest = keys / 20;
    let mut kept = 0;
    let mut first = keys - newest;
    while first < keys {
        let last = (first + 500).min(keys);
        let mut probe = Vec::new();
        for n in first..last {
            write!(probe, "mg k:{n}\r\n").unwrap();
        }
        probe.extend_from_slice(b"mn\r\n");
        let replies = request(&mut client, &probe, b"MN\r\n");
        kept += replies.lines().filter(|line| *line == "HD").count();
        first = last;
    }
    Held {
        items: stat("curr_items"),
        bytes: stat("bytes"),
        newest_kept: kept as f64 / newest as f64,
    }
}

fn request(stream: &mut TcpStream, bytes: &[u8], terminator: &[u8]) -> String {
    stream.write_all(bytes).unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 16 << 10];
    while !reply.ends_with(terminator) {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed while waiting for {terminator:?}");
        reply.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&reply).into_owned()
}

/// Fills both servers with `-t threads -m mib` and returns (ferrocached, memcached).
fn side_by_side(threads: usize, mib: usize, sizes: Sizes) -> (Held, Held) {
    let (t, m) = (threads.to_string(), mib.to_string());
    let ours = {
        let server = Server::start(&["-t", &t, "-m", &m]);
        fill(server.addr, mib << 20, sizes)
    };
    let theirs = {
        let reference = Reference::start(&["-t", &t, "-m", &m]);
        fill(reference.addr, mib << 20, sizes)
    };
    (ours, theirs)
}

fn check(threads: usize, mib: usize, sizes: Sizes, min_ratio: f64) {
    let (ours, theirs) = side_by_side(threads, mib, sizes);
    if let Err(failure) = judge(threads, mib, sizes, min_ratio, &ours, &theirs) {
        panic!("{failure}");
    }
}

/// ferrocached's figures against memcached's for the same fill: Err describes a miss.
fn judge(
    threads: usize,
    mib: usize,
    sizes: Sizes,
    min_ratio: f64,
    ours: &Held,
    theirs: &Held,
) -> Result<(), String> {
    let ratio = ours.items as f64 / theirs.items as f64;
    let payload = ours.bytes as f64 / (mib << 20) as f64;
    let context = format!(
        "-t {threads} -m {mib}, values {}..{}: ferrocached {ours:?} ({:.1}% payload), memcached \
         {theirs:?}: {ratio:.2}x the items",
        sizes.lo,
        sizes.hi,
        payload * 100.0
    );
    eprintln!("{context}");
    // Item bytes at least 85% of -m (memcached's own `bytes` is 70% of -m for 1..100,000 B).
    // The least is 1..5000 B at -t 32 of -m 64, 2 MiB partitions of 16 KiB pages where a class
    // of few items still holds a page: 85.2-85.7% over three daemon runs (it draws its hash
    // seed at random), so 84% there. 1..100,000 B there (about 50 values a partition) was
    // 84.4-85.4% while each chain band kept half a chain's chunks free; since shorter chains
    // take longer bands' leftovers, 87.2-88.1% over five runs and 88.5% in the test. 86.4-100%
    // elsewhere.
    let small_partitions = threads >= 32 && mib == 64 && sizes.lo == 1 && sizes.hi == 5000;
    let min_payload = if small_partitions { 0.84 } else { 0.85 };
    if ratio >= min_ratio && payload >= min_payload && ours.newest_kept >= 0.99 {
        Ok(())
    } else {
        Err(context)
    }
}

#[test]
fn uniform_1_to_5000_bytes_at_every_thread_count() {
    for threads in [1, 2, 4, 8, 16, 32] {
        let (lo, hi, min_ratio) = FILLS[0];
        check(threads, 64, Sizes { lo, hi }, min_ratio);
    }
}

/// Each fill's value sizes and the least ratio to memcached's items it must hold.
const FILLS: [(usize, usize, f64); 8] = [
    (1, 5000, 1.1),
    (100, 1000, 1.25),
    (200, 400, 1.1),
    (1, 100_000, 1.1),
    (100, 100, 1.4),
    (20_000, 20_000, 1.0),
    (100_000, 100_000, 1.0),
    (4096, 4096, 1.0),
];

#[test]
fn other_value_sizes_at_every_thread_count() {
    for threads in [1, 2, 4, 8, 16, 32] {
        // 1..100,000 bytes: 1.19-1.28x memcached's items at every thread count; 100 B values
        // with keys `k:0` to `k:2013265` are 118-124-byte items (no exptime, no expiry
        // field), one class of 128-byte chunks: 1.50x.
        for (lo, hi, min_ratio) in FILLS.into_iter().skip(1) {
            check(threads, 64, Sizes { lo, hi }, min_ratio);
        }
    }
}

#[test]
fn a_gibibyte_at_one_eight_and_thirty_two_threads() {
    for threads in [1, 8, 32] {
        check(threads, 1024, Sizes { lo: 1, hi: 5000 }, 1.2);
        check(threads, 1024, Sizes { lo: 1, hi: 100_000 }, 1.2);
    }
}

/// The whole grid at -m 1024: every fill at every thread count. Too long for CI (each fill
/// writes 3 GiB; about half an hour on 2 cores), which runs the two mixed fills at -t 1, 8
/// and 32 above: `cargo test --release -p ferrocached --test capacity -- --ignored
/// --nocapture` (`FILL=100..100` runs one fill). memcached holds the same items at every -t
/// (28,113 for 1..5000 at -m 64 from -t 1 to 32), so it fills once per size, at -t 4.
#[test]
#[ignore]
fn every_fill_at_a_gibibyte_and_every_thread_count() {
    let mib = 1024;
    let only = std::env::var("FILL").ok();
    let mut failures = Vec::new();
    for (lo, hi, min_ratio) in FILLS {
        if only
            .as_ref()
            .is_some_and(|only| *only != format!("{lo}..{hi}"))
        {
            continue;
        }
        let sizes = Sizes { lo, hi };
        let theirs = {
            let reference = Reference::start(&["-t", "4", "-m", "1024"]);
            fill(reference.addr, mib << 20, sizes)
        };
        for threads in [1, 2, 4, 8, 16, 32] {
            let t = threads.to_string();
            let ours = {
                let server = Server::start(&["-t", &t, "-m", "1024"]);
                fill(server.addr, mib << 20, sizes)
            };
            if let Err(failure) = judge(threads, mib, sizes, min_ratio, &ours, &theirs) {
                failures.push(failure);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

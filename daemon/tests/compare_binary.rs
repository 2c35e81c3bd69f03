//! Side by side with memcached 1.6.18, over the binary protocol: every exchange of
//! `protocol/tests/common/captured_binary_1_6_18.rs` (every opcode, quiet pipelines, CAS, and
//! malformed headers: bad magic, bodies over the limit, keys over 250 bytes, extras wrong for
//! the opcode) is sent to a live memcached and to ferrocached started with the same settings,
//! and the responses must be the same bytes, CAS fields (uniques differ between servers)
//! aside. memcached must be installed: the test fails loudly without it.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use support::{Client, Reference, Server};

include!("../../protocol/tests/common/captured_binary_1_6_18.rs");

/// `bytes` with every response frame's CAS zeroed.
fn masked(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut at = 0;
    while at + 24 <= out.len() {
        let body = u32::from_be_bytes([out[at + 8], out[at + 9], out[at + 10], out[at + 11]]);
        out[at + 16..at + 24].fill(0);
        at += 24 + body as usize;
    }
    out
}

/// Reads what the server sends for one step: until `expected` bytes have come and then a short
/// quiet spell (so extra bytes are noticed), or until it closes. When memcached closed after
/// this step (`closes`), the close is waited for up to the deadline rather than the quiet
/// spell, so a busy machine's late FIN is not read as an open connection; a reset is a close.
fn read_response(stream: &mut TcpStream, expected: usize, closes: bool) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let quiet = if got.len() >= expected && !closes {
            Duration::from_millis(30)
        } else {
            Duration::from_millis(500)
        };
        stream.set_read_timeout(Some(quiet)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, true),
            Err(_) if Instant::now() > deadline => return (got, false),
            Err(_) if got.len() >= expected && !closes => return (got, false),
            Err(_) => {}
        }
    }
}

/// Runs `exchange` against the server at `addr`: the responses of each step and whether the
/// server closed after it.
fn run(addr: SocketAddr, exchange: &BinaryExchange) -> Vec<(Vec<u8>, bool)> {
    let mut admin = Client::connect(addr);
    admin.call(b"flush_all\r\n", b"OK\r\n");
    if !exchange.setup.is_empty() {
        admin.call_script(exchange.setup);
    }
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut previous: Vec<u8> = Vec::new();
    let mut results = Vec::new();
    for step in exchange.steps {
        let mut bytes = step.request_bytes();
        if step.cas_from_previous && previous.len() >= 24 {
            bytes[16..24].copy_from_slice(&previous[16..24]);
        }
        if stream.write_all(&bytes).is_err() {
            results.push((Vec::new(), true));
            break;
        }
        let (response, closed) = read_response(&mut stream, step.response.len(), step.closed);
        previous = response.clone();
        results.push((response, closed));
        if closed {
            break;
        }
    }
    results
}

#[test]
fn binary_responses_are_memcacheds() {
    let ours = Server::start(&["-t", "2"]);
    let reference = Reference::start(&[]);
    let mut failures = Vec::new();
    for exchange in BINARY_EXCHANGES
        .iter()
        .filter(|exchange| exchange.compare == Compare::Exact)
    {
        let theirs = run(reference.addr, exchange);
        let mine = run(ours.addr, exchange);
        let mask = |steps: &[(Vec<u8>, bool)]| -> Vec<(Vec<u8>, bool)> {
            steps
                .iter()
                .map(|(bytes, closed)| (masked(bytes), *closed))
                .collect()
        };
        if mask(&theirs) != mask(&mine) {
            failures.push(format!(
                "{}:\n  memcached: {:02x?}\n  ours:      {:02x?}",
                exchange.name,
                mask(&theirs),
                mask(&mine)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A UDP port nothing uses right now.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .expect("bind an ephemeral UDP port")
        .port()
}

/// Sends each datagram of `exchange` from a fresh socket and collects the datagrams that come
/// back after each (until a short quiet spell).
fn udp_run(tcp: SocketAddr, udp_port: u16, exchange: &UdpExchange) -> Vec<Vec<Vec<u8>>> {
    let mut admin = Client::connect(tcp);
    admin.call(b"flush_all\r\n", b"OK\r\n");
    if !exchange.setup.is_empty() {
        admin.call_script(exchange.setup);
    }
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(("127.0.0.1", udp_port)).unwrap();
    let mut all = Vec::new();
    let mut buffer = [0u8; 65536];
    for (datagram, expected) in exchange.datagrams.iter().zip(exchange.replies.iter()) {
        socket.send(datagram).unwrap();
        let mut replies = Vec::new();
        loop {
            let quiet = if replies.len() >= expected.len() {
                30
            } else {
                500
            };
            socket
                .set_read_timeout(Some(Duration::from_millis(quiet)))
                .unwrap();
            match socket.recv(&mut buffer) {
                Ok(n) => replies.push(mask_udp(&buffer[..n])),
                Err(_) => break,
            }
        }
        all.push(replies);
    }
    all
}

fn mask_udp(datagram: &[u8]) -> Vec<u8> {
    let mut out = datagram.to_vec();
    if out.len() >= 8 + 24 && out[8] == 0x81 && out[5] != 0 {
        out[8 + 16..8 + 24].fill(0);
    }
    out
}

#[test]
fn udp_replies_are_memcacheds() {
    let ours_udp = free_udp_port();
    let ours = Server::start(&["-t", "2", "-U", &ours_udp.to_string()]);
    let theirs_udp = free_udp_port();
    let reference = Reference::start_with_udp(theirs_udp);
    let mut failures = Vec::new();
    for exchange in UDP_EXCHANGES {
        let theirs = udp_run(reference.addr, theirs_udp, exchange);
        let mine = udp_run(ours.addr, ours_udp, exchange);
        if theirs != mine {
            failures.push(format!(
                "{}:\n  memcached: {:02x?}\n  ours:      {:02x?}",
                exchange.name, theirs, mine
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // UDP traffic is counted like any other.
    let stats = Client::connect(ours.addr).call(b"stats\r\n", b"END\r\n");
    let read: u64 = stats
        .lines()
        .find_map(|line| line.strip_prefix("STAT bytes_read "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    let sent: usize = UDP_EXCHANGES
        .iter()
        .flat_map(|e| e.datagrams.iter())
        .map(|d| d.len())
        .sum();
    assert!(
        read >= sent as u64,
        "bytes_read {read} < {sent} sent over UDP"
    );
}

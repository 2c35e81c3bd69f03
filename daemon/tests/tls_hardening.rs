//! Bad input on a TLS port: plaintext, 200 garbage and truncated records, a ClientHello cut at
//! every byte, garbage after a finished handshake. Each closes its own connection and nothing
//! else: a client beside them is served throughout, and descriptors and memory come back.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::Server;
use support::tls::{Pki, TlsClient, client_config};

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Sends `bytes`, then reads until the server closes (or the client gives up after 5 s).
fn send_and_expect_close(addr: SocketAddr, bytes: &[u8], half_close: bool) -> bool {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.write_all(bytes);
    if half_close {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let mut sink = [0u8; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

/// A ClientHello as rustls sends it.
fn client_hello(ca: &std::path::Path) -> Vec<u8> {
    let mut conn = rustls::ClientConnection::new(
        client_config(ca, None),
        rustls::pki_types::ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello
}

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn witness_round(witness: &mut TlsClient, round: usize) {
    let value = format!("v{round}");
    let set = format!("set w 0 0 {}\r\n{value}\r\n", value.len());
    assert_eq!(witness.call(set.as_bytes(), b"\r\n").unwrap(), "STORED\r\n");
    let got = witness.call(b"get w\r\n", b"END\r\n").unwrap();
    assert_eq!(
        got,
        format!("VALUE w 0 {}\r\n{value}\r\nEND\r\n", value.len())
    );
}

#[test]
fn bad_tls_input_closes_only_its_own_connection() {
    let pki = Pki::new("hardening");
    let args = pki.server_args("");
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend(["-t", "2"]);
    let mut server = Server::start(&args);
    let addr = server.addr;
    let config = client_config(&pki.ca, None);
    let mut witness = TlsClient::connect(addr, Arc::clone(&config)).unwrap();
    witness_round(&mut witness, 0);
    let descriptors = open_descriptors(server.pid());
    let rss_before = server.rss_kib();

    // Plaintext on the TLS port.
    for request in [&b"get foo\r\n"[..], b"stats\r\n", b"GET / HTTP/1.1\r\n\r\n"] {
        assert!(
            send_and_expect_close(addr, request, false),
            "{request:?} left open"
        );
    }
    witness_round(&mut witness, 1);

    // 200 garbage and truncated records: real record headers, lying lengths, random bodies.
    let mut rng = Lcg(12);
    for round in 0..200 {
        let content_type = [0x14u8, 0x15, 0x16, 0x17, 0x00, 0xff][(rng.next() % 6) as usize];
        let declared = (rng.next() % 20_000) as usize;
        let sent = if round % 2 == 0 {
            declared.min(4096)
        } else {
            (rng.next() as usize) % (declared + 1)
        };
        let mut record = vec![content_type, 0x03, (rng.next() % 5) as u8];
        record.extend_from_slice(&(declared as u16).to_be_bytes());
        record.extend((0..sent).map(|_| rng.next() as u8));
        assert!(
            send_and_expect_close(addr, &record, true),
            "record {round} left open"
        );
        if round % 50 == 0 {
            witness_round(&mut witness, 2 + round);
        }
    }

    // A real ClientHello cut at every byte, then the peer goes away.
    let hello = client_hello(&pki.ca);
    for cut in 0..hello.len() {
        assert!(
            send_and_expect_close(addr, &hello[..cut], true),
            "hello cut at {cut}"
        );
    }
    witness_round(&mut witness, 300);

    // Garbage after a finished handshake.
    for round in 0..20 {
        let client = TlsClient::connect(addr, Arc::clone(&config)).unwrap();
        let mut socket = client.tls.sock.try_clone().unwrap();
        let junk: Vec<u8> = (0..(100 + round * 50)).map(|_| rng.next() as u8).collect();
        let _ = socket.write_all(&[0x17, 0x03, 0x03, 0x00, 0x40]);
        let _ = socket.write_all(&junk);
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut sink = [0u8; 1024];
        let closed = loop {
            match socket.read(&mut sink) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) => break e.kind() == std::io::ErrorKind::ConnectionReset,
            }
        };
        assert!(
            closed,
            "garbage after the handshake left the connection open"
        );
    }
    witness_round(&mut witness, 400);

    assert!(
        server.is_alive(),
        "the daemon died; stderr:\n{}",
        server.stderr()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_descriptors(server.pid()) > descriptors {
        assert!(
            Instant::now() < deadline,
            "descriptors leaked: {} before, {} after",
            descriptors,
            open_descriptors(server.pid())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let grown = server.rss_kib().saturating_sub(rss_before);
    assert!(grown < 8 * 1024, "RSS grew by {grown} KiB");
    let stats = witness.call(b"stats\r\n", b"END\r\n").unwrap();
    let errors: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("STAT ssl_handshake_errors "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert!(errors >= 200, "ssl_handshake_errors {errors}\n{stats}");
    assert!(stats.contains("STAT curr_connections 1\r\n"), "{stats}");
}

#[test]
fn a_stalled_handshake_is_closed_and_others_are_served_meanwhile() {
    let pki = Pki::new("stalled");
    let server = Server::start(
        &pki.server_args("")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let hello = client_hello(&pki.ca);
    let mut stalled = TcpStream::connect(server.addr).unwrap();
    stalled.write_all(&hello[..hello.len() / 2]).unwrap();
    let mut witness = TlsClient::connect(server.addr, client_config(&pki.ca, None)).unwrap();
    witness_round(&mut witness, 0);
    stalled
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    let mut sink = [0u8; 64];
    assert!(matches!(stalled.read(&mut sink), Ok(0) | Err(_)));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "closed after {:?}",
        started.elapsed()
    );
    witness_round(&mut witness, 1);
}

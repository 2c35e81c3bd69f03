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
/// quiet spell (so extra bytes are noticed), or until it closes.
fn read_response(stream: &mut TcpStream, expected: usize) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let quiet = if got.len() >= expected {
            Duration::from_millis(30)
        } else {
            Duration::from_millis(500)
        };
        stream.set_read_timeout(Some(quiet)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(_) if got.len() >= expected || Instant::now() > deadline => return (got, false),
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
        let (response, closed) = read_response(&mut stream, step.response.len());
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

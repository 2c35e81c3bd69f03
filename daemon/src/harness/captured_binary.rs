//! Every binary-protocol exchange captured from memcached 1.6.18
//! (`protocol/tests/common/captured_binary_1_6_18.rs`) replayed through the real session,
//! command layer and cache: the response frames must be memcached's byte for byte (CAS fields
//! masked: uniques differ between servers), the connection must close where memcached's did,
//! and stat replies must be well-framed pair lists.

use super::Harness;

include!("../../../protocol/tests/common/captured_binary_1_6_18.rs");

/// `bytes` with every response frame's CAS (bytes 16..24 of its header) zeroed.
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

/// The response frames of `bytes`: (opcode, key) of each.
fn frames(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at + 24 <= bytes.len() {
        let key_len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        let extras = usize::from(bytes[at + 4]);
        let body =
            u32::from_be_bytes([bytes[at + 8], bytes[at + 9], bytes[at + 10], bytes[at + 11]]);
        let key_start = at + 24 + extras;
        frames.push((
            bytes[at + 1],
            bytes[key_start..key_start + key_len].to_vec(),
        ));
        at += 24 + body as usize;
    }
    frames
}

#[test]
fn binary_exchanges_match_memcached_fed_whole() {
    replay(|conn, bytes| conn.send(bytes));
}

#[test]
fn binary_exchanges_match_memcached_fed_byte_by_byte() {
    replay(|conn, bytes| conn.send_bytewise(bytes));
}

fn replay(feed: impl Fn(&mut super::Conn<'_>, &[u8]) -> Vec<u8>) {
    let mut failures = Vec::new();
    for exchange in BINARY_EXCHANGES {
        let harness = Harness::new(&[]);
        if !exchange.setup.is_empty() {
            harness.connect().send(exchange.setup);
        }
        let mut conn = harness.connect();
        let mut previous_first_frame: Vec<u8> = Vec::new();
        for (index, step) in exchange.steps.iter().enumerate() {
            let mut bytes = step.request_bytes();
            if step.cas_from_previous && previous_first_frame.len() >= 24 {
                bytes[16..24].copy_from_slice(&previous_first_frame[16..24]);
            }
            let got = feed(&mut conn, &bytes);
            let same = match exchange.compare {
                Compare::Exact | Compare::Version => masked(&got) == masked(step.response),
                // Stat values (and which stats there are) are the server's own: the frames
                // must be stat pairs ending in the empty one, as memcached's are.
                Compare::StatNames => {
                    let ours = frames(&got);
                    let theirs = frames(step.response);
                    ours.last() == theirs.last()
                        && ours.iter().all(|(opcode, _)| *opcode == 0x10)
                        && (ours.len() > 1) == (theirs.len() > 1)
                }
            };
            if !same || conn.is_closed() != step.closed {
                failures.push(format!(
                    "{} (step {index}):\n  memcached: {:02x?} closed={}\n  ours:      {:02x?} closed={}",
                    exchange.name,
                    masked(step.response),
                    step.closed,
                    masked(&got),
                    conn.is_closed()
                ));
            }
            previous_first_frame = got;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} exchanges differ:\n{}",
        failures.len(),
        BINARY_EXCHANGES.len(),
        failures.join("\n")
    );
}

/// Every UDP exchange captured from memcached 1.6.18 (text and binary requests, replies that
/// span several datagrams, bad frames) answered by the real UDP path: the same datagrams back,
/// header included.
#[test]
fn udp_exchanges_match_memcached() {
    let mut failures = Vec::new();
    let mut output = Vec::new();
    let mut replies = ferrocache_protocol::udp::Datagrams::new();
    for exchange in UDP_EXCHANGES {
        let harness = Harness::new(&[]);
        if !exchange.setup.is_empty() {
            harness.connect().send(exchange.setup);
        }
        for (index, (datagram, expected)) in exchange
            .datagrams
            .iter()
            .zip(exchange.replies.iter())
            .enumerate()
        {
            crate::udp::answer_datagram(
                &harness.shared,
                0,
                -1,
                datagram,
                &mut output,
                &mut replies,
            );
            let got: Vec<Vec<u8>> = replies.ready().map(masked_udp).collect();
            let expected: Vec<Vec<u8>> = expected.iter().map(|d| masked_udp(d)).collect();
            if got != expected {
                failures.push(format!(
                    "{} (datagram {index}):\n  memcached: {:02x?}\n  ours:      {:02x?}",
                    exchange.name, expected, got
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} exchanges differ:\n{}",
        failures.len(),
        UDP_EXCHANGES.len(),
        failures.join("\n")
    );
}

/// A reply datagram with the CAS of a binary response frame it starts masked (a datagram that
/// continues a frame carries no header of its own).
fn masked_udp(datagram: &[u8]) -> Vec<u8> {
    let mut out = datagram.to_vec();
    if out.len() >= 8 + 24 && out[8] == 0x81 && out[5] != 0 {
        out[8 + 16..8 + 24].fill(0);
    }
    out
}

/// Garbage and mutated datagrams: each is answered or dropped, never a panic, and the server
/// answers a good one afterwards.
#[test]
fn udp_survives_garbage_datagrams() {
    let harness = Harness::new(&[]);
    let mut output = Vec::new();
    let mut replies = ferrocache_protocol::udp::Datagrams::new();
    let seeds: Vec<&[u8]> = UDP_EXCHANGES
        .iter()
        .flat_map(|e| e.datagrams.iter().copied())
        .collect();
    // A fixed xorshift: the same datagrams every run.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..5_000 {
        let mut datagram = seeds[round % seeds.len()].to_vec();
        for _ in 0..(next() % 6) {
            let len = datagram.len().max(1);
            let at = (next() as usize) % len;
            match next() % 3 {
                0 if !datagram.is_empty() => datagram[at] = next() as u8,
                1 => datagram.insert(at.min(datagram.len()), next() as u8),
                _ => datagram.truncate(at),
            }
        }
        crate::udp::answer_datagram(&harness.shared, 0, -1, &datagram, &mut output, &mut replies);
    }
    crate::udp::answer_datagram(
        &harness.shared,
        0,
        -1,
        b"\x00\x01\x00\x00\x00\x01\x00\x00version\r\n",
        &mut output,
        &mut replies,
    );
    let answered: Vec<&[u8]> = replies.ready().collect();
    assert_eq!(
        answered,
        [&b"\x00\x01\x00\x00\x00\x01\x00\x00VERSION 1.6.18\r\n"[..]]
    );
}

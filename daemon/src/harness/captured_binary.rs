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

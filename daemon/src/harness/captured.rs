//! Every exchange captured from memcached 1.6.18 (each input on a fresh connection to a freshly
//! flushed server) replayed through the real session, command layer and cache, fed whole and
//! one byte at a time: the bytes must be memcached's, and the connection must close exactly
//! when memcached closed it.

use super::Harness;

include!("../../../protocol/tests/common/captured_1_6_18.rs");

fn replay(feed: impl Fn(&mut super::Conn<'_>, &[u8]) -> Vec<u8>) {
    let mut failures = Vec::new();
    for &(input, expected, expected_close) in CAPTURED {
        let harness = Harness::new(&[]);
        let mut conn = harness.connect();
        let got = feed(&mut conn, input);
        let closed = conn.is_closed();
        if got != expected || closed != expected_close {
            failures.push(format!(
                "{:?}\n  memcached: {:?} close={expected_close}\n  ours:      {:?} close={closed}",
                String::from_utf8_lossy(input),
                String::from_utf8_lossy(expected),
                String::from_utf8_lossy(&got)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn replies_match_memcached_fed_whole() {
    replay(|conn, input| conn.send(input));
}

#[test]
fn replies_match_memcached_fed_byte_by_byte() {
    replay(|conn, input| conn.send_bytewise(input));
}

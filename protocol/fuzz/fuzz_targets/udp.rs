//! Fuzz target for UDP framing: any datagram is accepted or dropped without a panic, and any
//! sequence of response objects and flushes frames into datagrams of at most 1400 bytes whose
//! payloads are exactly the responses' bytes.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run udp -- -max_total_time=120` in protocol/.

#![no_main]

use ferrocache_protocol::udp::{self, Datagrams, ReplyFramer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((header, payload)) = udp::parse_request_datagram(data) {
        assert_eq!(header.total, 1);
        assert_eq!(payload.len(), data.len() - udp::HEADER_LEN);
    }
    // The input as response objects: each byte below 0x10 ends one (and flushes when odd).
    let mut framer = ReplyFramer::new(0x1234);
    let mut out = Datagrams::new();
    let mut expected = Vec::new();
    for piece in data.split_inclusive(|&b| b < 0x10) {
        let (response, end) = match piece.split_last() {
            Some((&end, response)) if end < 0x10 => (response, Some(end)),
            _ => (piece, None),
        };
        // Large objects too: repeat the piece so that it spans datagrams.
        let response = response.repeat(if end == Some(0) { 100 } else { 1 });
        framer.response(&response, &mut out);
        expected.extend_from_slice(&response);
        if end.is_some_and(|end| end % 2 == 1) {
            framer.flush(&mut out);
        }
    }
    framer.flush(&mut out);
    let mut payload = Vec::new();
    for datagram in out.ready() {
        assert!(datagram.len() <= udp::MAX_DATAGRAM && datagram.len() >= udp::HEADER_LEN);
        payload.extend_from_slice(&datagram[udp::HEADER_LEN..]);
    }
    assert_eq!(payload, expected);
});

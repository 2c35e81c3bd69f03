//! Fuzz target for the server parser: whatever the bytes, `parse_request` must not panic,
//! must never consume more than it was given, must make progress or ask for more than it
//! holds, and must give the same events whether the stream arrives whole or in two pieces.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run parse -- -max_total_time=300` in protocol/.

#![no_main]

use ferrocache_protocol::ParserLimits;
use libfuzzer_sys::fuzz_target;

// The integration tests' connection simulator: the fuzzer holds the parser to the same
// promises (and the same feeding loop) as the proptests, from one copy of it.
#[path = "../../tests/common/mod.rs"]
mod common;

use common::events_of;

fuzz_target!(|data: &[u8]| {
    let Some((&split_seed, stream)) = data.split_first() else {
        return;
    };
    let limits = [
        ParserLimits::default(),
        // Small limits reach long-line and too-large paths with short inputs.
        ParserLimits {
            max_line: 48,
            max_key_list_line: 96,
            max_value: 16,
            ..ParserLimits::default()
        },
    ];
    for limits in &limits {
        let whole = events_of(&[stream], limits);
        let cut = usize::from(split_seed) % (stream.len() + 1);
        let (front, back) = stream.split_at(cut);
        assert_eq!(events_of(&[front, back], limits), whole);
    }
});

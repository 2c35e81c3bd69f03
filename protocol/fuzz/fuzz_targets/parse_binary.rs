//! Fuzz target for the binary server parser: whatever the bytes, `parse_binary` must not
//! panic, must never consume more than it was given, must make progress or ask for more than
//! it holds, and must give the same events whether the stream arrives whole, in two pieces or
//! one byte at a time.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run parse_binary -- -max_total_time=600` in protocol/.

#![no_main]

use ferrocache_protocol::binary::BinaryLimits;
use libfuzzer_sys::fuzz_target;

// The integration tests' binary connection simulator, so the fuzzer holds the parser to the
// same promises as the proptests.
#[path = "../../tests/common/binary.rs"]
mod binary_support;

use binary_support::{binary_events_of, parse_all};

fuzz_target!(|data: &[u8]| {
    let Some((&split_seed, stream)) = data.split_first() else {
        return;
    };
    // The default limit, and a small one that reaches the refused-value paths.
    for limits in [BinaryLimits::default(), BinaryLimits { max_value: 8 }] {
        let (events, ending) = parse_all(stream, &limits);
        let whole = (
            events.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>(),
            ending,
        );
        let cut = usize::from(split_seed) % (stream.len() + 1);
        let (front, back) = stream.split_at(cut);
        assert_eq!(binary_events_of(&[front, back], &limits), whole);
        if stream.len() <= 256 {
            let bytes: Vec<&[u8]> = stream.chunks(1).collect();
            assert_eq!(binary_events_of(&bytes, &limits), whole);
        }
    }
});

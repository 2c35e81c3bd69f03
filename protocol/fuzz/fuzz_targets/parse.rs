//! Fuzz target for the server parser: whatever the bytes, `parse_request` must not panic,
//! must never consume more than it was given, must make progress or ask for more than it
//! holds, and must give the same events whether the stream arrives whole or in two pieces.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run parse -- -max_total_time=300` in protocol/.

#![no_main]

use ferrocache_protocol::{Parsed, ParserLimits, parse_request};
use libfuzzer_sys::fuzz_target;

/// Feeds `pieces` into a growing buffer as a server would (honouring `needed` and `swallow`)
/// and returns what the parser reported, as text.
fn events(pieces: &[&[u8]], limits: &ParserLimits) -> Vec<String> {
    let mut events = Vec::new();
    let mut buffer: Vec<u8> = Vec::new();
    let mut swallow_left = 0usize;
    let mut needed = 0usize;
    for piece in pieces {
        buffer.extend_from_slice(piece);
        loop {
            let dropped = swallow_left.min(buffer.len());
            buffer.drain(..dropped);
            swallow_left -= dropped;
            if swallow_left > 0 || buffer.len() < needed.max(1) {
                break;
            }
            match parse_request(&buffer, limits) {
                Parsed::Request { request, consumed } => {
                    assert!(consumed > 0 && consumed <= buffer.len());
                    events.push(format!("{request:?}"));
                    buffer.drain(..consumed);
                    needed = 0;
                }
                Parsed::Incomplete { needed: more } => {
                    assert!(more > buffer.len(), "needed {more} of {}", buffer.len());
                    needed = more;
                    break;
                }
                Parsed::Error {
                    error,
                    consumed,
                    swallow,
                    close,
                    silent,
                } => {
                    assert!(consumed <= buffer.len());
                    assert!(consumed > 0 || close, "an error made no progress");
                    events.push(format!("{error:?} silent={silent} close={close}"));
                    if close {
                        return events;
                    }
                    buffer.drain(..consumed);
                    swallow_left = swallow;
                    needed = 0;
                }
            }
        }
    }
    events
}

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
        },
    ];
    for limits in &limits {
        let whole = events(&[stream], limits);
        let cut = usize::from(split_seed) % (stream.len() + 1);
        let (front, back) = stream.split_at(cut);
        assert_eq!(events(&[front, back], limits), whole);
    }
});

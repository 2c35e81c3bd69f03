//! Fuzz target for the ASCII login parser (`-Y`): whatever the bytes, neither step panics,
//! consumes more than it was given, or finds credentials outside the block.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run ascii_auth -- -max_total_time=300` in protocol/.

#![no_main]

use ferrocache_protocol::ascii_auth::{LoginBlock, LoginLine, parse_login_block, parse_login_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    // Walk the input as a connection would, line then block, until it asks for more.
    for _ in 0..64 {
        match parse_login_line(input) {
            LoginLine::Incomplete | LoginLine::TooLong => return,
            LoginLine::Refused { consumed } => {
                assert!(consumed > 0 && consumed <= input.len());
                input = &input[consumed..];
            }
            LoginLine::Set { consumed, block } => {
                assert!(consumed > 0 && consumed <= input.len());
                input = &input[consumed..];
                let consumed = match parse_login_block(input, block) {
                    LoginBlock::Incomplete => return,
                    LoginBlock::BadTermination { consumed }
                    | LoginBlock::BadFormat { consumed } => consumed,
                    LoginBlock::Credentials {
                        consumed,
                        user,
                        password,
                    } => {
                        assert!(!user.is_empty() && !password.is_empty());
                        assert!(user.len() + password.len() < consumed);
                        consumed
                    }
                };
                assert!(consumed <= input.len() && consumed == block as usize);
                input = &input[consumed..];
            }
        }
    }
});

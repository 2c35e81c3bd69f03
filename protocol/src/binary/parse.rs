//! The server-side binary parser: bytes from a client in, one request (or `Incomplete`, or a
//! refusal with memcached 1.6.18's answer) out, borrowing key and value from the input.
//!
//! Owns: header decoding, memcached's per-opcode validation in `dispatch_bin_command`'s order,
//! how many bytes a frame or a refusal consumes and swallows, and when a refusal closes. Must
//! not touch: I/O, storage, response bytes (`response`).

use super::header::{HEADER_LEN, Opcode, REQUEST_MAGIC};
use super::request::{
    BinaryCommand, BinaryError, BinaryErrorKind, BinaryRequest, ConcatMode, StoreMode,
};
use crate::request::KEY_MAX_LEN;

/// Limits the binary parser enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinaryLimits {
    /// Values longer than this are refused with "Too large." and swallowed without being
    /// buffered (the server's item size limit, as for the text parser). memcached 1.6.18
    /// refuses a value when value + key + 59 bytes of item overhead exceed `-I`, so with `-I
    /// 1m` its largest value under a 1-byte key is 1,048,516 bytes.
    pub max_value: usize,
}

impl Default for BinaryLimits {
    fn default() -> Self {
        BinaryLimits { max_value: 1 << 20 }
    }
}

/// What parsing the front of a buffer gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryParsed<'a> {
    /// A complete request that took the first `consumed` bytes.
    Request {
        request: BinaryRequest<'a>,
        consumed: usize,
    },
    /// Not enough bytes yet: call again once the buffer holds at least `needed` bytes (24 for
    /// a header; once the header is in, the whole frame, so a large value is not rescanned).
    Incomplete { needed: usize },
    /// A refused frame. Write `error.write_response` (it writes nothing for a bad magic),
    /// drop the first `consumed` bytes, then drop `swallow` more as they arrive (may exceed
    /// what is buffered now), and close after the response if `close`.
    Error {
        error: BinaryError<'a>,
        consumed: usize,
        swallow: usize,
        close: bool,
    },
}

/// The header fields the parser reads, in host order.
struct Header {
    magic: u8,
    opcode: Opcode,
    key_len: usize,
    extras_len: usize,
    data_type: u8,
    vbucket: u16,
    body_len: u32,
    opaque: u32,
    cas: u64,
}

impl Header {
    fn read(bytes: &[u8; HEADER_LEN]) -> Header {
        let u16_at = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        let u32_at = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        Header {
            magic: bytes[0],
            opcode: Opcode::from_byte(bytes[1]),
            key_len: usize::from(u16_at(2)),
            extras_len: usize::from(bytes[4]),
            data_type: bytes[5],
            vbucket: u16_at(6),
            body_len: u32_at(8),
            opaque: u32_at(12),
            cas: u64::from(u32_at(16)) << 32 | u64::from(u32_at(20)),
        }
    }

    /// Header, extras and key: what memcached waits for before it answers anything.
    fn head_len(&self) -> usize {
        HEADER_LEN + self.extras_len + self.key_len
    }
}

/// memcached passes swallow counts as a C `int`, and `write_bin_error` swallows only a
/// positive one: a body length of 2 GiB or more wraps negative and nothing is swallowed.
fn c_int_swallow(bytes: u32) -> usize {
    if (bytes as i32) > 0 {
        bytes as usize
    } else {
        0
    }
}

/// How a valid frame's bytes after its key are taken.
enum Body {
    /// Nothing after the key: a body longer than extras and key leaves its rest to be parsed
    /// as the next frame, as memcached does for stat, touch and gat.
    None,
    /// A value of this many bytes.
    Value(usize),
}

/// The command family of a valid frame, which says how to decode its extras.
#[derive(Clone, Copy)]
enum Family {
    Get,
    Gat,
    Touch,
    Store(StoreMode),
    Concat(ConcatMode),
    Delete,
    Arith { incr: bool },
    Quit,
    Flush,
    Noop,
    Version,
    Stat,
    SaslListMechs,
    SaslAuth,
    SaslStep,
}

type Verdict = Result<(Family, Body), (BinaryErrorKind, usize)>;

/// `dispatch_bin_command`'s checks, in its order, on the header alone.
fn validate(header: &Header, limits: &BinaryLimits) -> Verdict {
    let key = header.key_len;
    let extras = header.extras_len;
    let body = header.body_len as usize;
    if key > body || key + extras > body {
        return Err((BinaryErrorKind::BodyTooShort, 0));
    }
    if key > KEY_MAX_LEN {
        return Err((BinaryErrorKind::KeyTooLong, 0));
    }
    let check = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err((BinaryErrorKind::InvalidArguments, 0))
        }
    };
    let bare = |ok: bool, family: Family| check(ok).map(|()| (family, Body::None));
    // A value's length: memcached computes it as an `int`, and a negative or oversized one is
    // refused (swallowed when positive).
    let after_key = header.body_len - (key + extras) as u32;
    let with_value = |ok: bool, family: Family, refusal: BinaryErrorKind| {
        check(ok)?;
        if (after_key as i32) < 0 || after_key as usize > limits.max_value {
            Err((refusal, c_int_swallow(after_key)))
        } else {
            Ok((family, Body::Value(after_key as usize)))
        }
    };
    let empty = extras == 0 && key == 0 && body == 0;
    match header.opcode.loud() {
        Opcode::Version => bare(empty, Family::Version),
        Opcode::Noop => bare(empty, Family::Noop),
        Opcode::Quit => bare(empty, Family::Quit),
        Opcode::SaslListMechs => bare(empty, Family::SaslListMechs),
        Opcode::Flush => bare(
            key == 0 && body == extras && (extras == 0 || extras == 4),
            Family::Flush,
        ),
        loud @ (Opcode::Set | Opcode::Add | Opcode::Replace) => {
            let mode = match loud {
                Opcode::Set => StoreMode::Set,
                Opcode::Add => StoreMode::Add,
                _ => StoreMode::Replace,
            };
            with_value(
                extras == 8 && key != 0,
                Family::Store(mode),
                BinaryErrorKind::TooLarge,
            )
        }
        loud @ (Opcode::Append | Opcode::Prepend) => {
            let mode = if loud == Opcode::Append {
                ConcatMode::Append
            } else {
                ConcatMode::Prepend
            };
            with_value(
                key > 0 && extras == 0,
                Family::Concat(mode),
                BinaryErrorKind::TooLarge,
            )
        }
        Opcode::Get | Opcode::GetK => bare(extras == 0 && body == key && key > 0, Family::Get),
        Opcode::Delete => bare(key > 0 && extras == 0 && body == key, Family::Delete),
        loud @ (Opcode::Increment | Opcode::Decrement) => bare(
            key > 0 && extras == 20 && body == key + extras,
            Family::Arith {
                incr: loud == Opcode::Increment,
            },
        ),
        Opcode::Stat => bare(extras == 0, Family::Stat),
        // Without SASL memcached answers "Unknown command" and swallows the data; a request
        // within the limit is handed over whole, so that the server decides.
        Opcode::SaslAuth => with_value(
            extras == 0 && key != 0,
            Family::SaslAuth,
            BinaryErrorKind::UnknownCommand,
        ),
        Opcode::SaslStep => with_value(
            extras == 0 && key != 0,
            Family::SaslStep,
            BinaryErrorKind::UnknownCommand,
        ),
        Opcode::Touch => bare(extras == 4 && key != 0, Family::Touch),
        Opcode::Gat | Opcode::GatK => bare(extras == 4 && key != 0, Family::Gat),
        // memcached swallows `body_len` bytes after the key here: more than the body holds
        // when there are extras or a key, so it eats the start of the next frame.
        _ => Err((
            BinaryErrorKind::UnknownCommand,
            c_int_swallow(header.body_len),
        )),
    }
}

fn u32_of(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn u64_of(bytes: &[u8]) -> u64 {
    u64::from(u32_of(bytes)) << 32 | u64::from(u32_of(&bytes[4..]))
}

/// The command of a validated frame (`validate` checked the extras' length).
fn command<'a>(family: Family, extras: &[u8], key: &'a [u8], value: &'a [u8]) -> BinaryCommand<'a> {
    match family {
        Family::Get => BinaryCommand::Get { key, touch: None },
        Family::Gat => BinaryCommand::Get {
            key,
            touch: Some(u32_of(extras)),
        },
        Family::Touch => BinaryCommand::Touch {
            key,
            exptime: u32_of(extras),
        },
        Family::Store(mode) => BinaryCommand::Store {
            mode,
            key,
            flags: u32_of(extras),
            exptime: u32_of(&extras[4..]),
            value,
        },
        Family::Concat(mode) => BinaryCommand::Concat { mode, key, value },
        Family::Delete => BinaryCommand::Delete { key },
        Family::Arith { incr } => BinaryCommand::Arith {
            incr,
            key,
            delta: u64_of(extras),
            initial: u64_of(&extras[8..]),
            exptime: u32_of(&extras[16..]),
        },
        Family::Quit => BinaryCommand::Quit,
        Family::Flush => BinaryCommand::Flush {
            delay: if extras.len() == 4 { u32_of(extras) } else { 0 },
        },
        Family::Noop => BinaryCommand::Noop,
        Family::Version => BinaryCommand::Version,
        Family::Stat => BinaryCommand::Stat { group: key },
        Family::SaslListMechs => BinaryCommand::SaslListMechs,
        Family::SaslAuth => BinaryCommand::SaslAuth {
            mechanism: key,
            data: value,
        },
        Family::SaslStep => BinaryCommand::SaslStep {
            mechanism: key,
            data: value,
        },
    }
}

/// Parses the first binary request in `input`.
///
/// Never panics, whatever the bytes; allocates nothing. `consumed` never exceeds
/// `input.len()`; when nothing can be decided yet the answer is `Incomplete` with
/// `needed > input.len()`. Like memcached, a refusal waits for the header, extras and key to
/// arrive (a bad magic, for the header only) and never for a refused value.
pub fn parse_binary<'a>(input: &'a [u8], limits: &BinaryLimits) -> BinaryParsed<'a> {
    let Some(header_bytes) = input.first_chunk::<HEADER_LEN>() else {
        return BinaryParsed::Incomplete { needed: HEADER_LEN };
    };
    let header = Header::read(header_bytes);
    if header.magic != REQUEST_MAGIC {
        return BinaryParsed::Error {
            error: BinaryError {
                kind: BinaryErrorKind::BadMagic,
                opcode: header.opcode,
                opaque: header.opaque,
                key: &[],
            },
            consumed: HEADER_LEN,
            swallow: 0,
            close: true,
        };
    }
    let head = header.head_len();
    let verdict = validate(&header, limits);
    let total = match verdict {
        Ok((_, Body::Value(len))) => head + len,
        Ok((_, Body::None)) | Err(_) => head,
    };
    if input.len() < total {
        return BinaryParsed::Incomplete { needed: total };
    }
    let extras = &input[HEADER_LEN..HEADER_LEN + header.extras_len];
    let key = &input[HEADER_LEN + header.extras_len..head];
    match verdict {
        Err((kind, swallow)) => BinaryParsed::Error {
            error: BinaryError {
                kind,
                opcode: header.opcode,
                opaque: header.opaque,
                key,
            },
            consumed: head,
            swallow,
            close: kind.closes(),
        },
        Ok((family, _)) => BinaryParsed::Request {
            request: BinaryRequest {
                opcode: header.opcode,
                opaque: header.opaque,
                cas: header.cas,
                data_type: header.data_type,
                vbucket: header.vbucket,
                command: command(family, extras, key, &input[head..total]),
            },
            consumed: total,
        },
    }
}

/// What a server with SASL on (`-S`) does with the front of a connection's input before the
/// client has authenticated: memcached's `authenticated()` check in `dispatch_bin_command`,
/// which comes after its body-length check and before every other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthGate {
    /// Not refused for want of authentication: [`parse_binary`] decides (an allowed opcode,
    /// or a frame it refuses first: a bad magic, a body shorter than extras and key).
    Pass,
    /// Not decidable until `needed` bytes are buffered (memcached answers once the header,
    /// extras and key are in, never waiting for a value).
    Incomplete { needed: usize },
    /// Answer `AuthError` ("Auth failure.") echoing this opcode and opaque, then close.
    Refuse { opcode: Opcode, opaque: u32 },
}

/// [`AuthGate`] for `input` on a connection not yet authenticated. Version and the three SASL
/// opcodes pass, as in memcached; every other opcode, quiet and unknown ones too, is refused.
pub fn auth_gate(input: &[u8]) -> AuthGate {
    let Some(header_bytes) = input.first_chunk::<HEADER_LEN>() else {
        return AuthGate::Pass;
    };
    let header = Header::read(header_bytes);
    let allowed = matches!(
        header.opcode,
        Opcode::Version | Opcode::SaslListMechs | Opcode::SaslAuth | Opcode::SaslStep
    );
    let body_too_short = header.key_len + header.extras_len > header.body_len as usize;
    if header.magic != REQUEST_MAGIC || allowed || body_too_short {
        return AuthGate::Pass;
    }
    let head = header.head_len();
    if input.len() < head {
        return AuthGate::Incomplete { needed: head };
    }
    AuthGate::Refuse {
        opcode: header.opcode,
        opaque: header.opaque,
    }
}

#[cfg(test)]
mod auth_gate_tests {
    use super::*;

    fn frame(opcode: u8, extras: usize, key: usize, body: u32) -> Vec<u8> {
        let mut bytes = vec![REQUEST_MAGIC, opcode];
        bytes.extend_from_slice(&(key as u16).to_be_bytes());
        bytes.extend_from_slice(&[extras as u8, 0, 0, 0]);
        bytes.extend_from_slice(&body.to_be_bytes());
        bytes.extend_from_slice(&7u32.to_be_bytes());
        bytes.extend_from_slice(&[0; 8]);
        bytes
    }

    #[test]
    fn version_and_sasl_pass_before_auth() {
        for opcode in [0x0b, 0x20, 0x21, 0x22] {
            assert_eq!(auth_gate(&frame(opcode, 0, 5, 10)), AuthGate::Pass);
        }
    }

    #[test]
    fn other_commands_are_refused_once_their_key_is_in() {
        let mut set = frame(0x01, 8, 3, 1_000_000);
        assert_eq!(auth_gate(&set), AuthGate::Incomplete { needed: 35 });
        set.extend_from_slice(&[0; 11]);
        assert_eq!(
            auth_gate(&set),
            AuthGate::Refuse {
                opcode: Opcode::Set,
                opaque: 7
            }
        );
        assert_eq!(
            auth_gate(&frame(0xee, 0, 0, 0)),
            AuthGate::Refuse {
                opcode: Opcode::Unknown(0xee),
                opaque: 7
            }
        );
    }

    #[test]
    fn earlier_refusals_are_the_parsers() {
        assert_eq!(auth_gate(b"get foo\r\n"), AuthGate::Pass);
        assert_eq!(auth_gate(&[b'g'; 24]), AuthGate::Pass);
        assert_eq!(auth_gate(&frame(0x00, 0, 5, 2)), AuthGate::Pass);
    }
}

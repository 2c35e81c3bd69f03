//! The client side of the binary protocol: requests encoded into a caller-owned buffer, and
//! responses parsed incrementally, for `ferrocache-bench` and the tests.
//!
//! Owns: request bytes as a client sends them and the response frame as a client reads it.
//! Must not touch: sockets, routing, timeouts.
//!
//! Encoding appends to a `Vec<u8>` the caller reuses; parsing borrows from the buffer; neither
//! allocates. Binary keys may hold any byte: only their length is checked.

use super::header::{HEADER_LEN, Opcode, REQUEST_MAGIC, RESPONSE_MAGIC, Status};
use super::request::{BinaryCommand, BinaryRequest};
use crate::client::{EncodeError, ParsedReply};
use crate::request::KEY_MAX_LEN;
use thiserror::Error;

/// Largest response body the parser waits for: memcached's largest item (`-I` is at most
/// 1 GiB) with its key and extras. A larger length means the stream is out of step.
pub const MAX_RESPONSE_BODY: usize = (1 << 30) + 512;

/// Writes one request frame with any fields, well-formed or not (tests build malformed
/// frames with it). The body length is the sum of the three parts.
pub fn encode_frame(
    out: &mut Vec<u8>,
    opcode: u8,
    opaque: u32,
    cas: u64,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) {
    let body_len = (extras.len() + key.len() + value.len()) as u32;
    out.reserve(HEADER_LEN + body_len as usize);
    out.push(REQUEST_MAGIC);
    out.push(opcode);
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.push(extras.len() as u8);
    out.extend_from_slice(&[0, 0, 0]); // data type, vbucket
    out.extend_from_slice(&body_len.to_be_bytes());
    out.extend_from_slice(&opaque.to_be_bytes());
    out.extend_from_slice(&cas.to_be_bytes());
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

fn check_key(key: &[u8], required: bool) -> Result<(), EncodeError> {
    if required && key.is_empty() {
        return Err(EncodeError::EmptyKey);
    }
    if key.len() > KEY_MAX_LEN {
        return Err(EncodeError::KeyTooLong(key.len()));
    }
    Ok(())
}

/// Encodes `request` as a client sends it: the inverse of [`super::parse_binary`] for the
/// requests memcached accepts. A key-bearing command needs a key of 1..=250 bytes.
pub fn encode_request(out: &mut Vec<u8>, request: &BinaryRequest<'_>) -> Result<(), EncodeError> {
    let mut extras = [0u8; 20];
    let (extras_len, key, value, key_required): (usize, &[u8], &[u8], bool) = match request.command
    {
        BinaryCommand::Get { key, touch } => match touch {
            Some(exptime) => {
                extras[..4].copy_from_slice(&exptime.to_be_bytes());
                (4, key, &[], true)
            }
            None => (0, key, &[], true),
        },
        BinaryCommand::Touch { key, exptime } => {
            extras[..4].copy_from_slice(&exptime.to_be_bytes());
            (4, key, &[], true)
        }
        BinaryCommand::Store {
            key,
            flags,
            exptime,
            value,
            ..
        } => {
            extras[..4].copy_from_slice(&flags.to_be_bytes());
            extras[4..8].copy_from_slice(&exptime.to_be_bytes());
            (8, key, value, true)
        }
        BinaryCommand::Concat { key, value, .. } => (0, key, value, true),
        BinaryCommand::Delete { key } => (0, key, &[], true),
        BinaryCommand::Arith {
            key,
            delta,
            initial,
            exptime,
            ..
        } => {
            extras[..8].copy_from_slice(&delta.to_be_bytes());
            extras[8..16].copy_from_slice(&initial.to_be_bytes());
            extras[16..20].copy_from_slice(&exptime.to_be_bytes());
            (20, key, &[], true)
        }
        BinaryCommand::Flush { delay } => {
            if delay == 0 {
                (0, &[], &[], false)
            } else {
                extras[..4].copy_from_slice(&delay.to_be_bytes());
                (4, &[], &[], false)
            }
        }
        BinaryCommand::Quit
        | BinaryCommand::Noop
        | BinaryCommand::Version
        | BinaryCommand::SaslListMechs => (0, &[], &[], false),
        BinaryCommand::Stat { group } => (0, group, &[], false),
        BinaryCommand::SaslAuth { mechanism, data }
        | BinaryCommand::SaslStep { mechanism, data } => (0, mechanism, data, true),
    };
    check_key(key, key_required)?;
    encode_frame(
        out,
        request.opcode.byte(),
        request.opaque,
        request.cas,
        &extras[..extras_len],
        key,
        value,
    );
    Ok(())
}

/// `VERBOSITY <level>`: encodable for tests of servers that implement it (memcached 1.6.18
/// answers "Unknown command").
pub fn encode_verbosity(out: &mut Vec<u8>, level: u32, opaque: u32) {
    encode_frame(
        out,
        Opcode::Verbosity.byte(),
        opaque,
        0,
        &level.to_be_bytes(),
        &[],
        &[],
    );
}

/// A response frame that cannot be: the stream is out of step and should be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ResponseError {
    #[error("response magic 0x{0:02x} instead of 0x81")]
    BadMagic(u8),
    #[error("response key and extras longer than its body")]
    BadLengths,
    #[error("response body of {0} bytes is longer than any item")]
    BodyTooLong(usize),
}

/// One response frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinaryResponse<'a> {
    /// As the server echoed it.
    pub opcode: Opcode,
    /// The raw status field ([`BinaryResponse::status`] names memcached's).
    pub status_code: u16,
    pub opaque: u32,
    pub cas: u64,
    pub data_type: u8,
    pub extras: &'a [u8],
    pub key: &'a [u8],
    pub value: &'a [u8],
}

impl BinaryResponse<'_> {
    pub fn status(&self) -> Option<Status> {
        Status::from_code(self.status_code)
    }

    pub fn is_success(&self) -> bool {
        self.status_code == Status::Success.code()
    }

    /// The client flags of a get/gat/touch hit (4-byte extras).
    pub fn flags(&self) -> Option<u32> {
        let bytes: [u8; 4] = self.extras.try_into().ok()?;
        Some(u32::from_be_bytes(bytes))
    }

    /// The new value of an incr/decr success (8-byte value).
    pub fn counter(&self) -> Option<u64> {
        let bytes: [u8; 8] = self.value.try_into().ok()?;
        Some(u64::from_be_bytes(bytes))
    }

    /// Whether this is the empty pair that ends a stat response.
    pub fn is_stat_end(&self) -> bool {
        self.opcode == Opcode::Stat && self.key.is_empty() && self.value.is_empty()
    }
}

/// Reads the first response frame in `buf`.
pub fn parse_response(buf: &[u8]) -> Result<ParsedReply<BinaryResponse<'_>>, ResponseError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(ParsedReply::Incomplete { needed: HEADER_LEN });
    };
    if header[0] != RESPONSE_MAGIC {
        return Err(ResponseError::BadMagic(header[0]));
    }
    let key_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let extras_len = usize::from(header[4]);
    let body_len = u32::from_be_bytes([header[8], header[9], header[10], header[11]]) as usize;
    if key_len + extras_len > body_len {
        return Err(ResponseError::BadLengths);
    }
    if body_len > MAX_RESPONSE_BODY {
        return Err(ResponseError::BodyTooLong(body_len));
    }
    let total = HEADER_LEN + body_len;
    if buf.len() < total {
        return Ok(ParsedReply::Incomplete { needed: total });
    }
    let key_start = HEADER_LEN + extras_len;
    let value_start = key_start + key_len;
    let mut opaque = [0u8; 4];
    opaque.copy_from_slice(&header[12..16]);
    let mut cas = [0u8; 8];
    cas.copy_from_slice(&header[16..24]);
    Ok(ParsedReply::Complete {
        reply: BinaryResponse {
            opcode: Opcode::from_byte(header[1]),
            status_code: u16::from_be_bytes([header[6], header[7]]),
            opaque: u32::from_be_bytes(opaque),
            cas: u64::from_be_bytes(cas),
            data_type: header[5],
            extras: &buf[HEADER_LEN..key_start],
            key: &buf[key_start..value_start],
            value: &buf[value_start..total],
        },
        consumed: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::response::{self, Echo};

    #[test]
    fn responses_parse_back_from_the_encoder() {
        let echo = Echo {
            opcode: Opcode::GetK,
            opaque: 77,
        };
        let mut out = Vec::new();
        response::hit(&mut out, echo, 5, 9, Some(b"key"), b"value");
        response::counter(&mut out, echo, 6, 42);
        let ParsedReply::Complete { reply, consumed } = parse_response(&out).unwrap() else {
            panic!("incomplete");
        };
        assert_eq!(
            (reply.opcode, reply.opaque, reply.cas, reply.flags()),
            (Opcode::GetK, 77, 5, Some(9))
        );
        assert_eq!(
            (reply.key, reply.value),
            (b"key".as_slice(), b"value".as_slice())
        );
        let ParsedReply::Complete { reply, .. } = parse_response(&out[consumed..]).unwrap() else {
            panic!("incomplete");
        };
        assert_eq!(reply.counter(), Some(42));
        for cut in 0..consumed {
            assert!(matches!(
                parse_response(&out[..cut]),
                Ok(ParsedReply::Incomplete { needed }) if needed > cut
            ));
        }
        assert_eq!(
            parse_response(&[0x80; 24]),
            Err(ResponseError::BadMagic(0x80))
        );
    }
}

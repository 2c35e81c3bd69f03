//! The server-side binary encoder: responses written straight into a caller-owned buffer, laid
//! out as memcached 1.6.18 lays them out (`add_bin_header`, `write_bin_error`,
//! `process_bin_get_or_touch`, `append_bin_stats`).
//!
//! Owns: response bytes. Must not touch: what a response says (the executor decides), I/O.
//!
//! Every response echoes the request's opcode (quiet and `K` variants as sent) and opaque,
//! except stat pairs, whose opcode is always `Stat`. The data type is always 0 (raw bytes).

use super::header::{HEADER_LEN, Opcode, RESPONSE_MAGIC, Status};

/// The fields a response echoes from its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo {
    pub opcode: Opcode,
    pub opaque: u32,
}

/// ENOMEM texts memcached sends in place of [`Status::OutOfMemory`]'s generic one (its text
/// protocol's `SERVER_ERROR` lines without the prefix).
pub const OUT_OF_MEMORY_STORING: &[u8] = b"Out of memory allocating item";
/// incr/decr could not store the new value.
pub const OUT_OF_MEMORY_INCREMENTING: &[u8] = b"Out of memory incrementing value";
/// incr/decr could not create the missing counter.
pub const OUT_OF_MEMORY_CREATING: &[u8] = b"Out of memory allocating new item";
/// The answer to a successful SASL authentication.
pub const SASL_AUTHENTICATED: &[u8] = b"Authenticated";

/// A response header. `value_len` is the length of everything after the extras and key, so a
/// value written in several chunks afterwards is announced whole. Lengths beyond the
/// header's fields (key over 64 KiB, body over 4 GiB) are the caller's bug and are truncated.
#[allow(clippy::too_many_arguments)]
pub fn header(
    out: &mut Vec<u8>,
    echo: Echo,
    status: Status,
    extras_len: usize,
    key_len: usize,
    value_len: usize,
    cas: u64,
) {
    debug_assert!(extras_len <= usize::from(u8::MAX) && key_len <= usize::from(u16::MAX));
    let body_len = (extras_len + key_len + value_len) as u32;
    out.reserve(HEADER_LEN);
    out.push(RESPONSE_MAGIC);
    out.push(echo.opcode.byte());
    out.extend_from_slice(&(key_len as u16).to_be_bytes());
    out.push(extras_len as u8);
    out.push(0); // data type: raw bytes
    out.extend_from_slice(&status.code().to_be_bytes());
    out.extend_from_slice(&body_len.to_be_bytes());
    out.extend_from_slice(&echo.opaque.to_be_bytes());
    out.extend_from_slice(&cas.to_be_bytes());
}

/// An error with memcached's text for `status` (CAS 0, as memcached sends on every error).
pub fn error(out: &mut Vec<u8>, echo: Echo, status: Status) {
    error_with_message(out, echo, status, status.message());
}

/// An error with a specific text (the ENOMEM variants above).
pub fn error_with_message(out: &mut Vec<u8>, echo: Echo, status: Status, message: &[u8]) {
    header(out, echo, status, 0, 0, message.len(), 0);
    out.extend_from_slice(message);
}

/// A success without a body: set/add/replace/append/prepend (with the item's new CAS),
/// delete, flush, noop, quit (CAS 0).
pub fn success(out: &mut Vec<u8>, echo: Echo, cas: u64) {
    header(out, echo, Status::Success, 0, 0, 0, cas);
}

/// The head of a get/gat hit: header (CAS of the item), the client flags as extras, and for
/// the `K` variants the key; the caller appends `value_len` bytes of value.
pub fn hit_header(
    out: &mut Vec<u8>,
    echo: Echo,
    cas: u64,
    flags: u32,
    key: Option<&[u8]>,
    value_len: usize,
) {
    let key = key.unwrap_or_default();
    header(out, echo, Status::Success, 4, key.len(), value_len, cas);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(key);
}

/// A whole get/gat hit; `key` for the `K` variants (see [`Opcode::returns_key`]).
pub fn hit(out: &mut Vec<u8>, echo: Echo, cas: u64, flags: u32, key: Option<&[u8]>, value: &[u8]) {
    hit_header(out, echo, cas, flags, key, value.len());
    out.extend_from_slice(value);
}

/// A get/gat miss: "Not found", or for the `K` variants the key itself as the body (memcached
/// sends no text then).
pub fn miss(out: &mut Vec<u8>, echo: Echo, key: Option<&[u8]>) {
    match key {
        Some(key) if !key.is_empty() => {
            header(out, echo, Status::KeyNotFound, 0, key.len(), 0, 0);
            out.extend_from_slice(key);
        }
        _ => error(out, echo, Status::KeyNotFound),
    }
}

/// A touch hit: the flags as extras, no key, no value.
pub fn touched(out: &mut Vec<u8>, echo: Echo, cas: u64, flags: u32) {
    hit_header(out, echo, cas, flags, None, 0);
}

/// incr/decr success: the new value as an 8-byte body, with the item's CAS.
pub fn counter(out: &mut Vec<u8>, echo: Echo, cas: u64, value: u64) {
    header(out, echo, Status::Success, 0, 0, 8, cas);
    out.extend_from_slice(&value.to_be_bytes());
}

/// `VERSION`'s answer: the version text as the value.
pub fn version(out: &mut Vec<u8>, echo: Echo, version: &str) {
    header(out, echo, Status::Success, 0, 0, version.len(), 0);
    out.extend_from_slice(version.as_bytes());
}

/// One statistic: opcode `Stat`, the name as key, the value as value.
pub fn stat(out: &mut Vec<u8>, opaque: u32, name: &[u8], value: &[u8]) {
    let echo = Echo {
        opcode: Opcode::Stat,
        opaque,
    };
    header(out, echo, Status::Success, 0, name.len(), value.len(), 0);
    out.extend_from_slice(name);
    out.extend_from_slice(value);
}

/// One numeric statistic.
pub fn stat_u64(out: &mut Vec<u8>, opaque: u32, name: &[u8], value: u64) {
    stat(
        out,
        opaque,
        name,
        itoa::Buffer::new().format(value).as_bytes(),
    );
}

/// The empty pair that ends a stat response.
pub fn stat_end(out: &mut Vec<u8>, opaque: u32) {
    stat(out, opaque, b"", b"");
}

/// `SASL_LIST_MECHS`'s answer: the mechanism names separated by spaces.
pub fn sasl_mechanisms<'m>(
    out: &mut Vec<u8>,
    echo: Echo,
    mechanisms: impl IntoIterator<Item = &'m str> + Clone,
) {
    let names = mechanisms.clone().into_iter();
    let len = names.fold(0usize, |len, name| len + usize::from(len > 0) + name.len());
    header(out, echo, Status::Success, 0, 0, len, 0);
    for (index, name) in mechanisms.into_iter().enumerate() {
        if index > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(name.as_bytes());
    }
}

/// SASL: authentication needs another step; `challenge` for the client.
pub fn sasl_continue(out: &mut Vec<u8>, echo: Echo, challenge: &[u8]) {
    header(out, echo, Status::AuthContinue, 0, 0, challenge.len(), 0);
    out.extend_from_slice(challenge);
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECHO: Echo = Echo {
        opcode: Opcode::GetK,
        opaque: 0x0102_0304,
    };

    #[test]
    fn header_layout() {
        let mut out = Vec::new();
        header(
            &mut out,
            ECHO,
            Status::KeyExists,
            4,
            3,
            10,
            0x1122_3344_5566_7788,
        );
        assert_eq!(
            out,
            [
                0x81, 0x0c, 0, 3, 4, 0, 0, 2, 0, 0, 0, 17, 1, 2, 3, 4, 0x11, 0x22, 0x33, 0x44,
                0x55, 0x66, 0x77, 0x88
            ]
        );
    }

    #[test]
    fn hits_misses_and_lists() {
        let mut out = Vec::new();
        hit(&mut out, ECHO, 9, 5, Some(b"k"), b"abc");
        assert_eq!(&out[24..], b"\0\0\0\x05kabc");
        assert_eq!(out[11], 8);
        out.clear();
        miss(&mut out, ECHO, Some(b"key"));
        assert_eq!((&out[24..], out[3], out[7]), (b"key".as_slice(), 3, 1));
        out.clear();
        miss(&mut out, ECHO, None);
        assert_eq!(&out[24..], b"Not found");
        out.clear();
        sasl_mechanisms(&mut out, ECHO, ["PLAIN", "CRAM-MD5"]);
        assert_eq!(&out[24..], b"PLAIN CRAM-MD5");
        assert_eq!(out[11] as usize, out.len() - 24);
    }
}

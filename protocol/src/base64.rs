//! Base64 exactly as memcached 1.6.18's base64.c does it, for meta keys sent with `b`.
//!
//! Owns: the lenient decoder (bytes outside the alphabet are skipped, the count of alphabet
//! bytes must be a multiple of four, decoding stops after the first padded block) and the
//! padded encoder used to echo such keys. Must not touch: where keys come from or go.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Value of a base64 byte, `None` for a byte the decoder skips. `=` counts as a zero digit
/// (it is then stripped by the padding rule), as in memcached's table.
fn digit(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        b'=' => Some(0),
        _ => None,
    }
}

/// Decodes `src` into `out`; returns the decoded length, or `None` where memcached's
/// `base64_decode` returns 0 (which it treats as failure, so an empty result fails too).
pub(crate) fn decode(src: &[u8], out: &mut [u8]) -> Option<usize> {
    let count = src.iter().filter(|&&b| digit(b).is_some()).count();
    if count == 0 || count % 4 != 0 || count / 4 * 3 > out.len() {
        return None;
    }
    let mut written = 0;
    let mut block = [0u8; 4];
    let mut in_block = 0;
    let mut pad = 0;
    for &byte in src {
        let Some(value) = digit(byte) else { continue };
        if byte == b'=' {
            pad += 1;
        }
        block[in_block] = value;
        in_block += 1;
        if in_block == 4 {
            out[written] = (block[0] << 2) | (block[1] >> 4);
            out[written + 1] = (block[1] << 4) | (block[2] >> 2);
            out[written + 2] = (block[2] << 6) | block[3];
            written += 3;
            in_block = 0;
            if pad > 0 {
                match pad {
                    1 => written -= 1,
                    2 => written -= 2,
                    _ => return None, // invalid padding
                }
                break;
            }
        }
    }
    (written > 0).then_some(written)
}

/// Appends the padded base64 of `src` to `out`.
pub(crate) fn encode(src: &[u8], out: &mut Vec<u8>) {
    out.reserve(src.len().div_ceil(3) * 4);
    let mut chunks = src.chunks_exact(3);
    for chunk in &mut chunks {
        out.extend_from_slice(&[
            ALPHABET[usize::from(chunk[0] >> 2)],
            ALPHABET[usize::from(((chunk[0] & 0x03) << 4) | (chunk[1] >> 4))],
            ALPHABET[usize::from(((chunk[1] & 0x0f) << 2) | (chunk[2] >> 6))],
            ALPHABET[usize::from(chunk[2] & 0x3f)],
        ]);
    }
    match *chunks.remainder() {
        [a] => out.extend_from_slice(&[
            ALPHABET[usize::from(a >> 2)],
            ALPHABET[usize::from((a & 0x03) << 4)],
            b'=',
            b'=',
        ]),
        [a, b] => out.extend_from_slice(&[
            ALPHABET[usize::from(a >> 2)],
            ALPHABET[usize::from(((a & 0x03) << 4) | (b >> 4))],
            ALPHABET[usize::from((b & 0x0f) << 2)],
            b'=',
        ]),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(src: &[u8]) -> Option<Vec<u8>> {
        let mut out = [0u8; 256];
        decode(src, &mut out).map(|len| out[..len].to_vec())
    }

    #[test]
    fn decodes_as_memcached_does() {
        assert_eq!(decoded(b"Zm9v").as_deref(), Some(&b"foo"[..]));
        assert_eq!(decoded(b"Zm8=").as_deref(), Some(&b"fo"[..]));
        assert_eq!(decoded(b"Zm9vYg==").as_deref(), Some(&b"foob"[..]));
        // Bytes outside the alphabet are skipped: 1.6.18 finds key "foo" for `Zm9v*`.
        assert_eq!(decoded(b"Zm9v*").as_deref(), Some(&b"foo"[..]));
        assert_eq!(decoded(b"Zm8"), None);
        assert_eq!(decoded(b"Z"), None);
        assert_eq!(decoded(b"===="), None);
        assert_eq!(decoded(b"A==="), None);
        assert_eq!(decoded(b"!!"), None);
    }

    #[test]
    fn encodes_with_padding() {
        for (raw, text) in [
            (&b"foo"[..], &b"Zm9v"[..]),
            (b"fo", b"Zm8="),
            (b"f", b"Zg=="),
        ] {
            let mut out = Vec::new();
            encode(raw, &mut out);
            assert_eq!(out, text);
            assert_eq!(decoded(text).as_deref(), Some(raw));
        }
    }
}

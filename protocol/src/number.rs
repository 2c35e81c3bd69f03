//! Decimal numbers, the one parser of the workspace: strict digits ([`parse_u64`], what a
//! client reads in a server's reply or a key index), and numbers as memcached 1.6.18 reads them
//! (util.c's `safe_strtoul`/`safe_strtol`/`safe_strtoull` on top of C's `strtoul`/`strtol` on a
//! 64-bit Linux build), for request tokens and for the value an `incr` finds stored.
//!
//! Owns: the exact acceptance rules (leading C whitespace and a `+`/`-` sign accepted, trailing
//! junk rejected unless it starts with C whitespace, no digits or 64-bit overflow rejected, then
//! the silent truncation to 32 bits that memcached's `*out = l` performs). Must not touch:
//! tokenising or which error a command reports.
//!
//! The truncation is deliberate: `set k 4294967296 0 1` stores flags 0 on the real server, and
//! `set k 0 0 4294967297` reads one byte. Matching it keeps a client that relies on it working.

/// `isspace` in the C locale.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `digits`, one or more ASCII decimal digits and nothing else, as a `u64`; `None` for anything
/// else (no sign, no spaces) or a value above `u64::MAX`.
#[inline]
pub fn parse_u64(digits: &[u8]) -> Option<u64> {
    match leading_digits(digits) {
        (len, value) if len == digits.len() && len > 0 => value,
        _ => None,
    }
}

/// The run of ASCII digits at the start of `bytes`, in one pass: its length, and its value
/// (`None` when it does not fit in 64 bits). The only digit loop of the workspace.
#[inline]
fn leading_digits(bytes: &[u8]) -> (usize, Option<u64>) {
    let mut value = Some(0u64);
    let mut len = 0;
    while let Some(&digit @ b'0'..=b'9') = bytes.get(len) {
        value = value
            .and_then(|v| v.checked_mul(10))
            .and_then(|v| v.checked_add(u64::from(digit - b'0')));
        len += 1;
    }
    (len, value)
}

/// What C's `strtoull`/`strtoll` saw at the front of a token.
struct Scanned {
    negative: bool,
    /// The digits' value, `None` when it does not fit in 64 bits (`ERANGE`).
    magnitude: Option<u64>,
}

/// Scans `[space]* [+|-] digit+` and requires what follows the digits to be the end of the
/// token or a C space (util.c's `xisspace(*endptr) || *endptr == '\0'`).
#[inline]
fn scan(token: &[u8]) -> Option<Scanned> {
    let mut at = token.iter().take_while(|&&b| is_c_space(b)).count();
    let mut negative = false;
    if let Some(&sign @ (b'+' | b'-')) = token.get(at) {
        negative = sign == b'-';
        at += 1;
    }
    let (len, magnitude) = leading_digits(&token[at..]);
    if len == 0 {
        // No digits: strtoul leaves endptr at the start, which util.c refuses (`str == endptr`),
        // even when what follows is whitespace: a value of spaces is not a number.
        return None;
    }
    at += len;
    match token.get(at) {
        None => Some(Scanned {
            negative,
            magnitude,
        }),
        Some(&next) if is_c_space(next) => Some(Scanned {
            negative,
            magnitude,
        }),
        Some(_) => None,
    }
}

/// `safe_strtoull`: a u64. `-0` and `-<n>` that wraps to a value below 2^63 are accepted, as
/// strtoull negates modulo 2^64 and util.c only rejects a `-` when the result looks negative.
///
/// A value an `incr` finds stored reads the same way (memcached's `do_add_delta` calls it on
/// the item's data, which `\r\n` follows: the end of the value here).
#[inline]
pub fn safe_strtoull(token: &[u8]) -> Option<u64> {
    let scanned = scan(token)?;
    let magnitude = scanned.magnitude?;
    let value = if scanned.negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    };
    if scanned.negative && (value as i64) < 0 {
        return None;
    }
    Some(value)
}

/// `safe_strtoul` into memcached's `uint32_t`: 64-bit `strtoul`, then truncated.
#[inline]
pub(crate) fn safe_strtoul(token: &[u8]) -> Option<u32> {
    safe_strtoull(token).map(|value| value as u32)
}

/// `safe_strtod`: a double, the whole token (an overflow, which strtod reports with
/// `ERANGE`, is refused; `inf` and `nan` written out are accepted, as strtod accepts them).
pub(crate) fn safe_strtod(token: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(token).ok()?;
    let value: f64 = text.parse().ok()?;
    if value.is_infinite() && !text.to_ascii_lowercase().contains("inf") {
        return None;
    }
    Some(value)
}

/// `safe_strtol` into memcached's `int32_t`: 64-bit `strtol` (overflow rejected), then
/// truncated, so `2147483648` reads as `-2147483648`.
#[inline]
pub(crate) fn safe_strtol(token: &[u8]) -> Option<i32> {
    let scanned = scan(token)?;
    let magnitude = scanned.magnitude?;
    let value: i64 = if scanned.negative {
        if magnitude > 1u64 << 63 {
            return None;
        }
        (magnitude as i64).wrapping_neg()
    } else {
        i64::try_from(magnitude).ok()?
    };
    Some(value as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_rules_match_memcached() {
        assert_eq!(safe_strtoull(b"0"), Some(0));
        assert_eq!(safe_strtoull(b"+1"), Some(1));
        assert_eq!(safe_strtoull(b"-0"), Some(0));
        assert_eq!(safe_strtoull(b"-1"), None);
        // strtoull negates modulo 2^64: `incr n -18446744073709551615` adds 1 on 1.6.18.
        assert_eq!(safe_strtoull(b"-18446744073709551615"), Some(1));
        assert_eq!(safe_strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(safe_strtoull(b"18446744073709551616"), None);
        assert_eq!(safe_strtoull(b"\t7"), Some(7));
        assert_eq!(safe_strtoull(b"7\tjunk"), Some(7));
        assert_eq!(safe_strtoull(b"7x"), None);
        assert_eq!(safe_strtoull(b""), None);
        assert_eq!(safe_strtoull(b"+"), None);
        // memcached 1.6.18: `incr` on a stored "   " is non-numeric.
        assert_eq!(safe_strtoull(b"   "), None);
        assert_eq!(safe_strtoull(b" \t42 "), Some(42));
        assert_eq!(safe_strtoul(b"4294967296"), Some(0));
        assert_eq!(safe_strtoul(b"4294967295"), Some(u32::MAX));
    }

    #[test]
    fn strict_digits_take_nothing_else() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"007"), Some(7));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        for refused in [&b""[..], b"+1", b"-1", b" 1", b"1 ", b"1x"] {
            assert_eq!(parse_u64(refused), None, "{refused:?}");
        }
    }

    #[test]
    fn signed_rules_match_memcached() {
        assert_eq!(safe_strtol(b"-1"), Some(-1));
        assert_eq!(safe_strtol(b"2147483648"), Some(i32::MIN));
        assert_eq!(safe_strtol(b"4294967297"), Some(1));
        assert_eq!(safe_strtol(b"9223372036854775807"), Some(-1));
        assert_eq!(safe_strtol(b"9223372036854775808"), None);
        assert_eq!(safe_strtol(b"-9223372036854775808"), Some(0));
        assert_eq!(safe_strtol(b"-9223372036854775809"), None);
        assert_eq!(safe_strtol(b"abc"), None);
    }
}

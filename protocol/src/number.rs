//! Numbers as memcached 1.6.18 reads them: util.c's `safe_strtoul`/`safe_strtol`/
//! `safe_strtoull` on top of C's `strtoul`/`strtol` on a 64-bit Linux build.
//!
//! Owns: the exact acceptance rules (leading C whitespace and a `+`/`-` sign accepted, trailing
//! junk rejected unless it starts with C whitespace, 64-bit overflow rejected, then the silent
//! truncation to 32 bits that memcached's `*out = l` performs). Must not touch: tokenising or
//! which error a command reports.
//!
//! The truncation is deliberate: `set k 4294967296 0 1` stores flags 0 on the real server, and
//! `set k 0 0 4294967297` reads one byte. Matching it keeps a client that relies on it working.

/// `isspace` in the C locale.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What C's `strtoull`/`strtoll` saw at the front of a token.
struct Scanned {
    negative: bool,
    /// The digits' value, `None` when it does not fit in 64 bits (`ERANGE`).
    magnitude: Option<u64>,
}

/// Scans `[space]* [+|-] digit+` and requires what follows the digits to be the end of the
/// token or a C space (util.c's `xisspace(*endptr) || *endptr == '\0'`).
fn scan(token: &[u8]) -> Option<Scanned> {
    let mut at = token.iter().take_while(|&&b| is_c_space(b)).count();
    let mut negative = false;
    if let Some(&sign @ (b'+' | b'-')) = token.get(at) {
        negative = sign == b'-';
        at += 1;
    }
    let digits_start = at;
    let mut magnitude = Some(0u64);
    while let Some(&digit @ b'0'..=b'9') = token.get(at) {
        magnitude = magnitude
            .and_then(|m| m.checked_mul(10))
            .and_then(|m| m.checked_add(u64::from(digit - b'0')));
        at += 1;
    }
    if at == digits_start {
        return None; // no digits: strtoul leaves endptr at the start
    }
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
pub(crate) fn safe_strtoull(token: &[u8]) -> Option<u64> {
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
        assert_eq!(safe_strtoul(b"4294967296"), Some(0));
        assert_eq!(safe_strtoul(b"4294967295"), Some(u32::MAX));
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

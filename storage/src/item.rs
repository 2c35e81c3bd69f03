//! The byte layout of an item inside a slab chunk, and of the chunks that continue a chained
//! item.
//!
//! Owns: encoding and decoding item headers, and the chunk states (free, item head, chain
//! continuation). Must not touch: where chunks live (that is `slab.rs`), the index, or any
//! policy (expiry, eviction); everything here is a pure function of a chunk's bytes.
//!
//! # Head chunk (19 bytes of header for the common case: CAS on, flags 0)
//! ```text
//! 0       bits        FREQ_LOW FETCHED STALE WIN_SENT HAS_FLAGS CHAINED WIDE_CAS FREQ_HIGH
//! 1       key_len     1..=250 (0 marks a chunk that is not an item head)
//! 2..5    value_len   u23, bytes of value in this chunk (0 for a chained item, see below);
//!                     the top bit is PROBATION (the item is in its class's small queue)
//! 5..9    expiry      u32, Clock seconds (0 never, 1 expired)
//! 9..13   time        u32, Clock second of the last access (store, bump, touch)
//! [13..]  cas         6 bytes, or 8 with WIDE_CAS (a CAS >= 2^48, only reachable via meta E);
//!                     absent when CAS is disabled
//! [..]    flags       u32, only with HAS_FLAGS (client flags 0 cost nothing)
//! [..]    chain       u32 total value length + u32 handle of the first continuation chunk,
//!                     only with CHAINED
//! key, then value (the first part of it, for a chained item)
//! ```
//! A full-precision `time` costs 4 bytes but gives exact `l`/`la=`, `stats items` ages and
//! memcached's own `flush_all` rule (items last touched before the flush moment are dead)
//! without a store timestamp or a flush generation byte. The 6-byte CAS pays for it.
//!
//! # Continuation chunk
//! `[CONTINUATION, 0, head handle u32, next handle u32, data...]`; the head handle lets a page
//! being emptied find and free the whole item a continuation belongs to.
//!
//! # Free chunk
//! Bytes 0 and 1 are zero.

use crate::bytes::{read_u32, write_u32};

/// Low bit of the item's 2-bit access frequency (0..=3): reads raise it, the CLOCK hand lowers
/// it and evicts an item it finds at 0.
pub(crate) const FREQ_LOW: u8 = 0x01;
/// High bit of the access frequency; in a head chunk the CONTINUATION bit is free for it.
pub(crate) const FREQ_HIGH: u8 = 0x80;
/// The item has been read since it was stored (`h`, `fetch=`, `*_unfetched` counters).
pub(crate) const FETCHED: u8 = 0x02;
/// Marked stale by meta invalidation (`X`).
pub(crate) const STALE: u8 = 0x04;
/// A recache win token has been handed out (`Z`).
pub(crate) const WIN_SENT: u8 = 0x08;
/// Non-zero client flags follow the CAS.
pub(crate) const HAS_FLAGS: u8 = 0x10;
/// The value continues in other chunks.
pub(crate) const CHAINED: u8 = 0x20;
/// The CAS takes 8 bytes instead of 6.
pub(crate) const WIDE_CAS: u8 = 0x40;
/// The chunk continues a chained item (it is not a head; only meaningful with key_len 0).
pub(crate) const CONTINUATION: u8 = 0x80;

// Offsets of a head chunk's fixed fields (see the layout above). Only this module reads or
// writes a chunk's bytes by offset; the rest of the crate goes through the functions below.
/// The `bits` byte.
const BITS: usize = 0;
/// The key length byte (0: not an item head).
const KEY_LEN: usize = 1;
/// The 3-byte in-chunk value length.
const VALUE_LEN: usize = 2;
/// The byte of `value_len` whose top bit is PROBATION.
const PROBATION_BYTE: usize = 4;
/// The expiry, u32.
const EXPIRY: usize = 5;
/// The last-access time, u32.
const TIME: usize = 9;
/// Where the variable part (CAS, flags, chain) starts.
const FIXED: usize = 13;

// Offsets of a continuation chunk's fields.
/// The head handle, u32.
const CONTINUATION_HEAD: usize = 2;
/// The next continuation's handle, u32.
const CONTINUATION_NEXT: usize = 6;

/// In byte [`PROBATION_BYTE`] (top of value_len): the item is on probation, in its class's
/// small FIFO.
const PROBATION: u8 = 0x80;

/// Most frequency the 2 bits count.
pub(crate) const FREQ_MAX: u8 = 3;

/// The access frequency recorded in `bits`.
#[inline]
pub(crate) fn freq(bits: u8) -> u8 {
    (bits & FREQ_LOW) | ((bits & FREQ_HIGH) >> 6)
}

/// `bits` with the access frequency set to `freq` (at most [`FREQ_MAX`]).
#[inline]
pub(crate) fn with_freq(bits: u8, freq: u8) -> u8 {
    let freq = freq.min(FREQ_MAX);
    (bits & !(FREQ_LOW | FREQ_HIGH)) | (freq & 1) | ((freq & 2) << 6)
}

/// Whether an item head is on probation.
#[inline]
pub(crate) fn is_on_probation(chunk: &[u8]) -> bool {
    chunk[PROBATION_BYTE] & PROBATION != 0
}

/// Puts an item head on probation or takes it off.
#[inline]
pub(crate) fn set_probation(chunk: &mut [u8], on: bool) {
    if on {
        chunk[PROBATION_BYTE] |= PROBATION;
    } else {
        chunk[PROBATION_BYTE] &= !PROBATION;
    }
}

/// The `bits` byte of an item head.
#[inline]
pub(crate) fn bits(chunk: &[u8]) -> u8 {
    chunk[BITS]
}

/// Overwrites the `bits` byte of an item head; the caller keeps the layout bits (HAS_FLAGS,
/// CHAINED, WIDE_CAS) as they are, since they say how the rest of the header reads.
#[inline]
pub(crate) fn set_bits(chunk: &mut [u8], bits: u8) {
    chunk[BITS] = bits;
}

/// The access frequency of an item head.
#[inline]
pub(crate) fn freq_of(chunk: &[u8]) -> u8 {
    freq(chunk[BITS])
}

/// Sets the access frequency of an item head (at most [`FREQ_MAX`]).
#[inline]
pub(crate) fn set_freq(chunk: &mut [u8], freq: u8) {
    chunk[BITS] = with_freq(chunk[BITS], freq);
}

/// The last-access time of an item head.
#[inline]
pub(crate) fn last_access(chunk: &[u8]) -> u32 {
    read_u32(chunk, TIME)
}

/// Handle meaning "no chunk".
pub(crate) const NO_HANDLE: u32 = u32::MAX;

/// Bytes of a continuation chunk's header.
pub(crate) const CONTINUATION_HEADER: usize = 10;

const NARROW_CAS_MAX: u64 = (1 << 48) - 1;

/// Largest value length an unchained item records (23 bits; the 24th is PROBATION).
pub(crate) const UNCHAINED_VALUE_MAX: usize = (1 << 23) - 1;

/// An item's header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub bits: u8,
    pub key_len: u8,
    /// The whole value's length (also for chained items).
    pub value_len: u32,
    pub expiry: u32,
    pub time: u32,
    pub cas: u64,
    pub flags: u32,
    /// First continuation chunk of a chained item, else [`NO_HANDLE`].
    pub next: u32,
    /// In the class's small FIFO (not yet proven by a second access).
    pub probation: bool,
}

impl Header {
    /// A header for a new item; the layout bits (flags, wide CAS, chained) follow from the
    /// values given.
    pub fn new(key_len: u8, value_len: u32, flags: u32, expiry: u32, time: u32, cas: u64) -> Self {
        let mut header = Header {
            bits: 0,
            key_len,
            value_len,
            expiry,
            time,
            cas,
            flags,
            next: NO_HANDLE,
            probation: false,
        };
        header.fix_layout_bits();
        header
    }

    /// Sets HAS_FLAGS and WIDE_CAS from the values (CHAINED is decided by the allocator).
    pub fn fix_layout_bits(&mut self) {
        self.bits &= !(HAS_FLAGS | WIDE_CAS);
        if self.flags != 0 {
            self.bits |= HAS_FLAGS;
        }
        if self.cas > NARROW_CAS_MAX {
            self.bits |= WIDE_CAS;
        }
    }

    /// Bytes of header this item's bits call for.
    #[inline]
    pub fn len(&self, cas_enabled: bool) -> usize {
        header_len(self.bits, cas_enabled)
    }

    pub fn is_chained(&self) -> bool {
        self.bits & CHAINED != 0
    }

    /// Where the value starts in the head chunk: after the header and the key.
    #[inline]
    pub fn value_start(&self, cas_enabled: bool) -> usize {
        self.len(cas_enabled) + usize::from(self.key_len)
    }

    /// Bytes the item asks for: header, key and the whole value.
    #[inline]
    pub fn item_size(&self, cas_enabled: bool) -> usize {
        self.value_start(cas_enabled) + self.value_len as usize
    }

    /// Decodes the header of an item head chunk.
    pub fn read(chunk: &[u8], cas_enabled: bool) -> Header {
        let bits = chunk[BITS];
        let mut at = FIXED;
        let cas = if !cas_enabled {
            0
        } else if bits & WIDE_CAS != 0 {
            at += 8;
            u64::from_le_bytes(chunk[FIXED..FIXED + 8].try_into().unwrap_or_default())
        } else {
            at += 6;
            let mut wide = [0u8; 8];
            wide[..6].copy_from_slice(&chunk[FIXED..FIXED + 6]);
            u64::from_le_bytes(wide)
        };
        let flags = if bits & HAS_FLAGS != 0 {
            at += 4;
            read_u32(chunk, at - 4)
        } else {
            0
        };
        let (value_len, next) = if bits & CHAINED != 0 {
            (read_u32(chunk, at), read_u32(chunk, at + 4))
        } else {
            (
                read_u24(chunk, VALUE_LEN) & UNCHAINED_VALUE_MAX as u32,
                NO_HANDLE,
            )
        };
        Header {
            bits,
            key_len: chunk[KEY_LEN],
            value_len,
            expiry: read_u32(chunk, EXPIRY),
            time: read_u32(chunk, TIME),
            cas,
            flags,
            next,
            probation: is_on_probation(chunk),
        }
    }

    /// Encodes the header at the start of `chunk`.
    pub fn write(&self, chunk: &mut [u8], cas_enabled: bool) {
        chunk[BITS] = self.bits;
        chunk[KEY_LEN] = self.key_len;
        let in_chunk = if self.is_chained() { 0 } else { self.value_len };
        chunk[VALUE_LEN..VALUE_LEN + 3].copy_from_slice(&in_chunk.to_le_bytes()[..3]);
        set_probation(chunk, self.probation);
        write_u32(chunk, EXPIRY, self.expiry);
        write_u32(chunk, TIME, self.time);
        let mut at = FIXED;
        if cas_enabled {
            let width = if self.bits & WIDE_CAS != 0 { 8 } else { 6 };
            chunk[at..at + width].copy_from_slice(&self.cas.to_le_bytes()[..width]);
            at += width;
        }
        if self.bits & HAS_FLAGS != 0 {
            write_u32(chunk, at, self.flags);
            at += 4;
        }
        if self.is_chained() {
            write_u32(chunk, at, self.value_len);
            write_u32(chunk, at + 4, self.next);
        }
    }

    /// Writes the fields an access changes (bits, expiry, time) in place; their size never
    /// changes, so the rest of the header stays valid.
    pub fn write_access(&self, chunk: &mut [u8]) {
        chunk[BITS] = self.bits;
        write_u32(chunk, EXPIRY, self.expiry);
        write_u32(chunk, TIME, self.time);
    }
}

/// Header bytes for an item with these bits.
#[inline]
pub(crate) fn header_len(bits: u8, cas_enabled: bool) -> usize {
    let mut len = FIXED;
    if cas_enabled {
        len += if bits & WIDE_CAS != 0 { 8 } else { 6 };
    }
    if bits & HAS_FLAGS != 0 {
        len += 4;
    }
    if bits & CHAINED != 0 {
        len += 8;
    }
    len
}

/// Whether a chunk starts an item.
#[inline]
pub(crate) fn is_head(chunk: &[u8]) -> bool {
    chunk[KEY_LEN] != 0
}

/// Whether a chunk continues a chained item (or is reserved for one being written).
#[inline]
pub(crate) fn is_continuation(chunk: &[u8]) -> bool {
    chunk[KEY_LEN] == 0 && chunk[BITS] & CONTINUATION != 0
}

/// The key stored in an item head chunk.
#[inline]
pub(crate) fn key_of(chunk: &[u8], cas_enabled: bool) -> &[u8] {
    let start = header_len(chunk[BITS], cas_enabled);
    &chunk[start..start + usize::from(chunk[KEY_LEN])]
}

/// Marks a chunk free.
#[inline]
pub(crate) fn mark_free(chunk: &mut [u8]) {
    chunk[BITS] = 0;
    chunk[KEY_LEN] = 0;
}

/// The tag of the item in a head chunk that the small FIFO's entries carry: the low 32 bits of
/// its CAS (every item's differs), or 0 without CAS (`-C`), where entries cannot tell the
/// items a chunk held apart.
#[inline]
pub(crate) fn queue_tag(chunk: &[u8], cas_enabled: bool) -> u32 {
    if cas_enabled {
        read_u32(chunk, FIXED)
    } else {
        0
    }
}

/// Writes a continuation chunk's header.
pub(crate) fn write_continuation(chunk: &mut [u8], head: u32, next: u32) {
    chunk[BITS] = CONTINUATION;
    chunk[KEY_LEN] = 0;
    write_u32(chunk, CONTINUATION_HEAD, head);
    write_u32(chunk, CONTINUATION_NEXT, next);
}

/// The head handle a continuation chunk belongs to ([`NO_HANDLE`] while it is reserved).
pub(crate) fn continuation_head(chunk: &[u8]) -> u32 {
    read_u32(chunk, CONTINUATION_HEAD)
}

/// The next continuation after this one.
pub(crate) fn continuation_next(chunk: &[u8]) -> u32 {
    read_u32(chunk, CONTINUATION_NEXT)
}

/// The value bytes a continuation chunk has room for.
pub(crate) fn continuation_data(chunk: &[u8]) -> &[u8] {
    &chunk[CONTINUATION_HEADER..]
}

/// [`continuation_data`], to write.
pub(crate) fn continuation_data_mut(chunk: &mut [u8]) -> &mut [u8] {
    &mut chunk[CONTINUATION_HEADER..]
}

#[inline]
fn read_u24(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], 0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_item_header_is_19_bytes() {
        let header = Header::new(33, 100, 0, 0, 5, 12345);
        assert_eq!(header.len(true), 19);
        assert_eq!(header.len(false), 13);
        assert_eq!(Header::new(33, 100, 7, 0, 5, 1 << 50).len(true), 25);
    }

    #[test]
    fn headers_round_trip() {
        for cas_enabled in [true, false] {
            for (flags, cas) in [(0, 1), (0xdead_beef, 1 << 48), (1, u64::MAX)] {
                let mut header = Header::new(250, 70_000, flags, 99, 1234, cas);
                header.probation = true;
                header.bits = with_freq(header.bits, 3);
                let mut chunk = vec![0u8; 64];
                header.write(&mut chunk, cas_enabled);
                if !cas_enabled {
                    header.cas = 0;
                }
                assert_eq!(Header::read(&chunk, cas_enabled), header);
                header.bits |= CHAINED;
                header.value_len = 1 << 30;
                header.next = 77;
                header.write(&mut chunk, cas_enabled);
                assert_eq!(Header::read(&chunk, cas_enabled), header);
                assert!(is_head(&chunk));
            }
        }
    }

    #[test]
    fn frequency_uses_two_bits() {
        for freq_value in 0..=FREQ_MAX {
            let bits = with_freq(HAS_FLAGS | STALE, freq_value);
            assert_eq!(freq(bits), freq_value);
            assert_eq!(bits & (HAS_FLAGS | STALE), HAS_FLAGS | STALE);
        }
        assert_eq!(freq(with_freq(0, 9)), FREQ_MAX);
    }

    #[test]
    fn chunk_states() {
        let mut chunk = vec![0u8; 32];
        assert!(!is_head(&chunk) && !is_continuation(&chunk));
        write_continuation(&mut chunk, 5, NO_HANDLE);
        assert!(is_continuation(&chunk) && !is_head(&chunk));
        assert_eq!(continuation_head(&chunk), 5);
        assert_eq!(continuation_next(&chunk), NO_HANDLE);
        mark_free(&mut chunk);
        assert!(!is_continuation(&chunk));
    }
}

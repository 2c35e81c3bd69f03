//! The byte layout of an item inside a slab chunk, and of the chunks that continue a chained
//! item.
//!
//! Owns: encoding and decoding item headers, and the chunk states (free, item head, chain
//! continuation). Must not touch: where chunks live (that is `slab.rs`), the index, or any
//! policy (expiry, eviction); everything here is a pure function of a chunk's bytes.
//!
//! # Head chunk (14 bytes of header for the common case: CAS on, flags 0, no exptime)
//! ```text
//! 0       bits        FREQ_LOW FETCHED STALE HAS_EXPIRY HAS_FLAGS CHAINED WIDE_CAS FREQ_HIGH
//! 1       key_len     1..=250 (0 marks a chunk that is not an item head)
//! 2..5    value_len   u22, bytes of value in this chunk (0 for a chained item, see below);
//!                     the top bit is PROBATION (the item is in its class's small queue), the
//!                     next WIN_SENT (a recache win token has been handed out, meta `Z`)
//! 5..9    time        u32, Clock second of the last access (store, bump, touch)
//! [9..]   cas         5 bytes: the low 40 bits of a CAS the partition handed out; or 8 with
//!                     WIDE_CAS, a CAS given with the store (`new_cas`, meta E's, which the
//!                     daemon refuses as memcached 1.6.18 does), kept whole; absent when CAS
//!                     is disabled
//! [..]    expiry      u32, Clock seconds (1 expired), only with HAS_EXPIRY: an item stored
//!                     with exptime 0 never expires and spends nothing on it
//! [..]    flags       u32, only with HAS_FLAGS (client flags 0 cost nothing)
//! [..]    chain       u32 total value length + u32 handle of the first continuation chunk,
//!                     only with CHAINED
//! key, then value (the first part of it, for a chained item)
//! ```
//! A full-precision `time` costs 4 bytes but gives exact `l`/`la=`, `stats items` ages and
//! memcached's own `flush_all` rule (items last touched before the flush moment are dead)
//! without a store timestamp or a flush generation byte. The 5-byte CAS pays for it.
//!
//! # The 5-byte CAS
//! A partition hands out CAS values from a counter that only grows, so an item's CAS is the
//! largest value not above the counter that ends in the 40 stored bits ([`widen_cas`]). That
//! is exact until 2^40 more values have been handed out (2^40 / `-t` stores of the item's
//! partition: 6 days at 1M stores a second into one partition of `-t 2`); after that the item
//! reads as a newer CAS, so a `cas` with the value read before fails with EXISTS and the
//! client reads the item again. It never reads as an older one, so a `cas` never succeeds
//! against an item that changed since the client read it. One byte less than the 6 it was:
//! W4's items (33-byte keys, 100-byte values, 148 bytes with 6) fit the 147-byte class.
//!
//! The expiry is optional because items without one are common (W4's, a cache in front of a
//! database that invalidates on write) and 4 bytes is what stands between a 100-byte value
//! under a 10-byte key and the 128-byte class: 129-byte items took 152-byte chunks, 84.9% of
//! `-m 1024` in item bytes. Giving an item without the field an exptime (`touch`, `gat`, meta
//! `T`) makes room for it: the key and value move 4 bytes along in the chunk when it has the
//! slack, else the item is rewritten into a larger chunk. Chained items and every item under
//! `-M` (where a rewrite could find no memory) always carry the field.
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
/// The header holds an expiry (else the item never expires).
pub(crate) const HAS_EXPIRY: u8 = 0x08;
/// Non-zero client flags follow the CAS.
pub(crate) const HAS_FLAGS: u8 = 0x10;
/// The value continues in other chunks.
pub(crate) const CHAINED: u8 = 0x20;
/// The CAS was given with the store (`new_cas`) and is kept whole in 8 bytes; one the
/// partition handed out keeps its low 40 bits in 5 ([`widen_cas`]).
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
/// The byte of `value_len` whose top bits are PROBATION and WIN_SENT.
const PROBATION_BYTE: usize = 4;
/// The last-access time, u32.
const TIME: usize = 5;
/// Where the variable part (CAS, expiry, flags, chain) starts.
const FIXED: usize = 9;

// Offsets of a continuation chunk's fields.
/// The head handle, u32.
const CONTINUATION_HEAD: usize = 2;
/// The next continuation's handle, u32.
const CONTINUATION_NEXT: usize = 6;

/// In byte [`PROBATION_BYTE`] (top of value_len): the item is on probation, in its class's
/// small FIFO.
const PROBATION: u8 = 0x80;
/// In byte [`PROBATION_BYTE`]: a recache win token has been handed out (meta `Z`). Kept out of
/// `bits`, which has no bit to spare for it beside [`HAS_EXPIRY`].
const WIN_SENT: u8 = 0x40;

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

/// Bytes of a CAS the partition handed out.
const NARROW_CAS_BYTES: usize = 5;

/// The bits of a CAS that a [`NARROW_CAS_BYTES`] field keeps.
const NARROW_CAS_MASK: u64 = (1 << (8 * NARROW_CAS_BYTES)) - 1;

/// The whole CAS of an item whose header kept the low bits `stored` of it, when the newest CAS
/// its partition has handed out is `latest`: the largest value not above `latest` with those
/// low bits (see the module docs). A wide CAS is kept whole and is not widened.
#[inline]
pub(crate) fn widen_cas(stored: u64, latest: u64) -> u64 {
    let candidate = (latest & !NARROW_CAS_MASK) | (stored & NARROW_CAS_MASK);
    if candidate <= latest {
        candidate
    } else {
        // From the previous round of the low bits (never below them: nothing was handed out
        // before the counter started).
        candidate
            .checked_sub(NARROW_CAS_MASK + 1)
            .unwrap_or(stored & NARROW_CAS_MASK)
    }
}

/// Largest value length an unchained item records (22 bits; the top two are PROBATION and
/// WIN_SENT).
pub(crate) const UNCHAINED_VALUE_MAX: usize = (1 << 22) - 1;

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
    /// A recache win token has been handed out (meta `Z`).
    pub win_sent: bool,
}

impl Header {
    /// A header for a new item, its CAS one the partition handed out ([`Header::set_cas`] for
    /// a given one); the layout bits (flags, expiry) follow from the
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
            win_sent: false,
        };
        header.fix_layout_bits();
        header
    }

    /// Sets HAS_FLAGS from the flags, and HAS_EXPIRY for an expiry; an item that has the
    /// expiry field keeps it when its expiry goes back to 0 (a touch to 0 then costs no move).
    /// CHAINED is decided by the allocator, WIDE_CAS by [`Header::set_cas`].
    pub fn fix_layout_bits(&mut self) {
        self.bits &= !HAS_FLAGS;
        if self.expiry != 0 {
            self.bits |= HAS_EXPIRY;
        }
        if self.flags != 0 {
            self.bits |= HAS_FLAGS;
        }
    }

    /// Gives the item a CAS: one its partition handed out (`given` false: the header keeps its
    /// low bits, see [`widen_cas`]), or one given with the store (`new_cas`), kept whole.
    pub fn set_cas(&mut self, cas: u64, given: bool) {
        self.cas = cas;
        if given {
            self.bits |= WIDE_CAS;
        } else {
            self.bits &= !WIDE_CAS;
        }
    }

    /// Whether the CAS is one a client gave (kept whole).
    pub fn cas_given(&self) -> bool {
        self.bits & WIDE_CAS != 0
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

    /// Decodes the header of an item head chunk. A CAS the partition handed out comes back as
    /// the low bits the header keeps; [`widen_cas`] makes it whole again.
    pub fn read(chunk: &[u8], cas_enabled: bool) -> Header {
        let bits = chunk[BITS];
        let mut at = FIXED;
        let cas = if !cas_enabled {
            0
        } else if bits & WIDE_CAS != 0 {
            at += 8;
            u64::from_le_bytes(chunk[FIXED..FIXED + 8].try_into().unwrap_or_default())
        } else {
            at += NARROW_CAS_BYTES;
            let mut wide = [0u8; 8];
            wide[..NARROW_CAS_BYTES].copy_from_slice(&chunk[FIXED..FIXED + NARROW_CAS_BYTES]);
            u64::from_le_bytes(wide)
        };
        let expiry = if bits & HAS_EXPIRY != 0 {
            at += 4;
            read_u32(chunk, at - 4)
        } else {
            0
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
            expiry,
            time: read_u32(chunk, TIME),
            cas,
            flags,
            next,
            probation: is_on_probation(chunk),
            win_sent: chunk[PROBATION_BYTE] & WIN_SENT != 0,
        }
    }

    /// Encodes the header at the start of `chunk`.
    pub fn write(&self, chunk: &mut [u8], cas_enabled: bool) {
        chunk[BITS] = self.bits;
        chunk[KEY_LEN] = self.key_len;
        let in_chunk = if self.is_chained() { 0 } else { self.value_len };
        chunk[VALUE_LEN..VALUE_LEN + 3].copy_from_slice(&in_chunk.to_le_bytes()[..3]);
        set_probation(chunk, self.probation);
        set_win_sent(chunk, self.win_sent);
        write_u32(chunk, TIME, self.time);
        let mut at = FIXED;
        if cas_enabled {
            let width = if self.bits & WIDE_CAS != 0 {
                8
            } else {
                NARROW_CAS_BYTES
            };
            chunk[at..at + width].copy_from_slice(&self.cas.to_le_bytes()[..width]);
            at += width;
        }
        if self.bits & HAS_EXPIRY != 0 {
            write_u32(chunk, at, self.expiry);
            at += 4;
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

    /// Writes the fields an access changes (bits, win token, expiry, time) in place. The
    /// caller has made room for an expiry first ([`Header::has_expiry_room`]), so the layout
    /// and the rest of the header stay as they are.
    pub fn write_access(&self, chunk: &mut [u8], cas_enabled: bool) {
        debug_assert_eq!(
            header_len(chunk[BITS], cas_enabled),
            self.len(cas_enabled),
            "an access never changes the header's layout"
        );
        chunk[BITS] = self.bits;
        set_win_sent(chunk, self.win_sent);
        write_u32(chunk, TIME, self.time);
        if self.bits & HAS_EXPIRY != 0 {
            write_u32(chunk, expiry_at(cas_enabled, self.bits), self.expiry);
        }
    }

    /// Whether the header can hold its expiry: it has the field, or the expiry is 0.
    #[inline]
    pub fn has_expiry_room(&self) -> bool {
        self.expiry == 0 || self.bits & HAS_EXPIRY != 0
    }
}

/// Where the expiry field sits in a header with these bits (after the CAS).
#[inline]
fn expiry_at(cas_enabled: bool, bits: u8) -> usize {
    match (cas_enabled, bits & WIDE_CAS != 0) {
        (false, _) => FIXED,
        (true, false) => FIXED + NARROW_CAS_BYTES,
        (true, true) => FIXED + 8,
    }
}

/// Header bytes for an item with these bits.
#[inline]
pub(crate) fn header_len(bits: u8, cas_enabled: bool) -> usize {
    let mut len = expiry_at(cas_enabled, bits);
    if bits & HAS_EXPIRY != 0 {
        len += 4;
    }
    if bits & HAS_FLAGS != 0 {
        len += 4;
    }
    if bits & CHAINED != 0 {
        len += 8;
    }
    len
}

/// Gives an unchained item head the expiry field it lacks, in place: the key and value move
/// 4 bytes along. The caller checked that the chunk has that much room after the item.
pub(crate) fn insert_expiry_field(chunk: &mut [u8], cas_enabled: bool, item_size: usize) {
    let bits = chunk[BITS];
    debug_assert!(bits & (HAS_EXPIRY | CHAINED) == 0 && item_size + 4 <= chunk.len());
    let at = header_len(bits, cas_enabled);
    // The flags, if any, follow the expiry: they move along with the key and value.
    let from = expiry_at(cas_enabled, bits);
    chunk.copy_within(from..item_size, from + 4);
    write_u32(chunk, from, 0);
    chunk[BITS] = bits | HAS_EXPIRY;
    debug_assert_eq!(header_len(chunk[BITS], cas_enabled), at + 4);
}

/// Records on an item head whether a recache win token went out.
#[inline]
fn set_win_sent(chunk: &mut [u8], sent: bool) {
    if sent {
        chunk[PROBATION_BYTE] |= WIN_SENT;
    } else {
        chunk[PROBATION_BYTE] &= !WIN_SENT;
    }
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
    fn common_item_header_is_14_bytes_and_an_expiry_adds_4() {
        let header = Header::new(33, 100, 0, 0, 5, 12345);
        assert_eq!(header.len(true), 14);
        assert_eq!(header.len(false), 9);
        assert_eq!(Header::new(33, 100, 0, 77, 5, 12345).len(true), 18);
        let mut given = Header::new(33, 100, 7, 77, 5, 1 << 50);
        given.set_cas(1 << 50, true);
        assert_eq!(given.len(true), 25);
    }

    #[test]
    fn a_narrow_cas_widens_to_the_newest_value_with_its_low_bits() {
        let round = NARROW_CAS_MASK + 1;
        // Handed out since the counter last passed a multiple of 2^40: exact.
        assert_eq!(widen_cas(7, 9), 7);
        assert_eq!(widen_cas(9, 9), 9);
        assert_eq!(widen_cas(3 * round + 5, 3 * round + 5), 3 * round + 5);
        // Handed out in the previous round of the low bits, less than 2^40 values ago.
        assert_eq!(
            widen_cas((round - 2) & NARROW_CAS_MASK, round + 3),
            round - 2
        );
        let old = 2 * round + 100;
        assert_eq!(widen_cas(old & NARROW_CAS_MASK, old + round - 1), old);
        // 2^40 values later the item reads as newer, never as older.
        assert_eq!(widen_cas(old & NARROW_CAS_MASK, old + round), old + round);
        // Low bits above a counter that has not reached them yet (a test's stored value).
        assert_eq!(widen_cas(50, 10), 50);
    }

    #[test]
    fn an_expiry_field_made_in_place_keeps_cas_flags_key_and_value() {
        for cas_enabled in [true, false] {
            for (flags, cas) in [(0, 9), (0xdead_beef, 1 << 50)] {
                let mut header = Header::new(3, 5, flags, 0, 1234, cas);
                header.set_cas(cas, cas > NARROW_CAS_MASK);
                header.win_sent = true;
                let mut chunk = vec![0u8; 64];
                header.write(&mut chunk, cas_enabled);
                let at = header.len(cas_enabled);
                chunk[at..at + 8].copy_from_slice(b"keyvalue");
                let size = header.item_size(cas_enabled);
                insert_expiry_field(&mut chunk, cas_enabled, size);
                let mut grown = Header::read(&chunk, cas_enabled);
                assert_eq!(grown.bits & HAS_EXPIRY, HAS_EXPIRY);
                assert_eq!(grown.expiry, 0);
                assert_eq!(grown.item_size(cas_enabled), size + 4);
                assert_eq!(key_of(&chunk, cas_enabled), b"key");
                let start = grown.value_start(cas_enabled);
                assert_eq!(&chunk[start..start + 5], b"value");
                assert_eq!(
                    (grown.flags, grown.time, grown.win_sent),
                    (flags, 1234, true)
                );
                if cas_enabled {
                    assert_eq!(grown.cas, cas);
                }
                grown.expiry = 4321;
                assert!(grown.has_expiry_room());
                grown.write_access(&mut chunk, cas_enabled);
                assert_eq!(Header::read(&chunk, cas_enabled).expiry, 4321);
                assert_eq!(key_of(&chunk, cas_enabled), b"key");
            }
        }
    }

    #[test]
    fn headers_round_trip() {
        for cas_enabled in [true, false] {
            for (flags, cas) in [(0, 1), (0xdead_beef, 1 << 48), (1, u64::MAX)] {
                let expiry = if flags == 0 { 0 } else { 99 };
                let mut header = Header::new(250, 70_000, flags, expiry, 1234, cas);
                header.set_cas(cas, cas > NARROW_CAS_MASK);
                header.probation = true;
                header.win_sent = flags != 0;
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

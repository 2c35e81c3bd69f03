//! The index's hash table: item handles found by key hash, one cache line per probe.
//!
//! Owns: where a handle sits for a given hash, growing, and removal without tombstones. Must
//! not touch: keys or items. The table stores only 32-bit handles and an 8-bit tag of each
//! hash; the caller decides whether a candidate handle is the key it wants (by reading the
//! item's key) and supplies the hash of a stored handle when the table grows.
//!
//! Why not hashbrown's `HashTable<u32>`: hashbrown keeps its control bytes and its slots in
//! two places, so a lookup in a table larger than the cache misses twice before it reaches
//! the item (and once more there). `perf annotate` of W3 put a quarter of the daemon's index
//! lookup time on the slot load and half on the item's first byte (bench/README.md). Here a
//! bucket is one 64-byte line holding 12 tags and the 12 handles they belong to, so a lookup
//! misses once in the table, then once in the item.
//!
//! Probing is linear over buckets. Each bucket counts the entries that had to pass it because
//! it was full (folly's F14 "outbound overflow" count): a lookup stops at the first bucket
//! whose count is zero, and removal decrements the counts along the way, so no tombstones build
//! up under churn. A count that reaches 255 stays there (the bucket is then always passed,
//! which is only slower).

/// Slots per bucket: 12 tags, an overflow count and padding take 16 bytes, 12 handles 48.
const SLOTS: usize = 12;
/// Grow beyond this share of the slots in use (tenths).
const MAX_LOAD_TENTHS: usize = 8;
/// An empty slot's tag.
const EMPTY: u8 = 0;
/// Position of the overflow count in a bucket's 16 bytes of metadata.
const OVERFLOW: usize = SLOTS;
const OVERFLOW_STUCK: u8 = u8::MAX;

const LOW7: u128 = u128::from_le_bytes([0x7f; 16]);
const ONES: u128 = u128::from_le_bytes([0x01; 16]);
/// The high bit of each of the first `SLOTS` bytes.
const SLOT_HIGH_BITS: u128 = {
    let mut bytes = [0u8; 16];
    let mut i = 0;
    while i < SLOTS {
        bytes[i] = 0x80;
        i += 1;
    }
    u128::from_le_bytes(bytes)
};

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    /// Tags of the 12 slots (`EMPTY` for a free one), then the overflow count, then padding.
    meta: [u8; 16],
    handles: [u32; SLOTS],
}

const EMPTY_BUCKET: Bucket = Bucket {
    meta: [0; 16],
    handles: [0; SLOTS],
};

impl Bucket {
    /// Slots whose tag is `tag`, as the high bit of each matching byte: an exact zero-byte
    /// test of the metadata XOR the tag (no false positives from carries, unlike the cheaper
    /// `haszero` trick). SSE2 would do it in three instructions, but its intrinsics need
    /// `unsafe` here, and this crate has none.
    #[inline]
    fn matching(&self, tag: u8) -> SlotBits {
        let tags = u128::from_le_bytes(self.meta) ^ ONES.wrapping_mul(u128::from(tag));
        SlotBits(!(((tags & LOW7).wrapping_add(LOW7)) | tags | LOW7) & SLOT_HIGH_BITS)
    }

    #[inline]
    fn free_slot(&self) -> Option<usize> {
        self.matching(EMPTY).next()
    }

    #[inline]
    fn overflow(&self) -> u8 {
        self.meta[OVERFLOW]
    }
}

/// Iterator over slot positions from a byte mask of high bits.
struct SlotBits(u128);

impl Iterator for SlotBits {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let slot = self.0.trailing_zeros() as usize / 8;
        self.0 &= self.0 - 1;
        Some(slot)
    }
}

/// A hash table of item handles.
pub(crate) struct HandleTable {
    buckets: Vec<Bucket>,
    len: usize,
}

impl std::fmt::Debug for HandleTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandleTable")
            .field("len", &self.len)
            .field("buckets", &self.buckets.len())
            .finish()
    }
}

#[inline]
fn tag_of(hash: u64) -> u8 {
    ((hash >> 56) as u8).max(1)
}

impl HandleTable {
    /// A table that holds `capacity` handles before it grows.
    pub fn with_capacity(capacity: usize) -> Self {
        HandleTable {
            buckets: vec![EMPTY_BUCKET; Self::buckets_for(capacity)],
            len: 0,
        }
    }

    fn buckets_for(capacity: usize) -> usize {
        let per_bucket = SLOTS * MAX_LOAD_TENTHS;
        (capacity.saturating_mul(10).div_ceil(per_bucket))
            .max(1)
            .next_power_of_two()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Handles the table holds before it grows.
    pub fn capacity(&self) -> usize {
        self.buckets.len() * SLOTS * MAX_LOAD_TENTHS / 10
    }

    /// Bytes allocated for the table.
    pub fn allocation_size(&self) -> usize {
        self.buckets.len() * std::mem::size_of::<Bucket>()
    }

    #[inline]
    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    /// Bucket and slot of the handle with this hash that `eq` accepts.
    #[inline]
    fn position(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<(usize, usize)> {
        let tag = tag_of(hash);
        let mask = self.mask();
        let mut index = hash as usize & mask;
        for _ in 0..self.buckets.len() {
            let bucket = &self.buckets[index];
            for slot in bucket.matching(tag) {
                if eq(bucket.handles[slot]) {
                    return Some((index, slot));
                }
            }
            if bucket.overflow() == 0 {
                return None;
            }
            index = (index + 1) & mask;
        }
        None
    }

    /// The handle with this hash that `eq` accepts.
    #[inline]
    pub fn find(&self, hash: u64, eq: impl FnMut(u32) -> bool) -> Option<u32> {
        self.position(hash, eq)
            .map(|(bucket, slot)| self.buckets[bucket].handles[slot])
    }

    /// The handle with this hash that `eq` accepts, to be replaced in place.
    #[inline]
    pub fn find_mut(&mut self, hash: u64, eq: impl FnMut(u32) -> bool) -> Option<&mut u32> {
        let (bucket, slot) = self.position(hash, eq)?;
        Some(&mut self.buckets[bucket].handles[slot])
    }

    /// Adds a handle the caller knows is not in the table yet. `rehash` gives a stored
    /// handle's hash, needed when the table grows.
    pub fn insert_unique(&mut self, hash: u64, handle: u32, rehash: impl Fn(u32) -> u64) {
        self.reserve(1, rehash);
        self.place(hash, handle);
        self.len += 1;
    }

    fn place(&mut self, hash: u64, handle: u32) {
        let mask = self.mask();
        let mut index = hash as usize & mask;
        loop {
            let bucket = &mut self.buckets[index];
            if let Some(slot) = bucket.free_slot() {
                bucket.meta[slot] = tag_of(hash);
                bucket.handles[slot] = handle;
                return;
            }
            if bucket.meta[OVERFLOW] != OVERFLOW_STUCK {
                bucket.meta[OVERFLOW] += 1;
            }
            // The load limit keeps free slots, so the probe ends.
            index = (index + 1) & mask;
        }
    }

    /// Removes and returns the handle with this hash that `eq` accepts.
    pub fn remove(&mut self, hash: u64, eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let (found, slot) = self.position(hash, eq)?;
        let mask = self.mask();
        let mut index = hash as usize & mask;
        while index != found {
            let overflow = &mut self.buckets[index].meta[OVERFLOW];
            if *overflow != OVERFLOW_STUCK {
                *overflow -= 1;
            }
            index = (index + 1) & mask;
        }
        let bucket = &mut self.buckets[found];
        bucket.meta[slot] = EMPTY;
        self.len -= 1;
        Some(bucket.handles[slot])
    }

    /// Room for `additional` more handles without growing.
    pub fn reserve(&mut self, additional: usize, rehash: impl Fn(u32) -> u64) {
        let wanted = self.len.saturating_add(additional);
        if wanted <= self.capacity() {
            return;
        }
        let buckets = Self::buckets_for(wanted.max(self.capacity() * 2));
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY_BUCKET; buckets]);
        for bucket in &old {
            for slot in 0..SLOTS {
                if bucket.meta[slot] != EMPTY {
                    let handle = bucket.handles[slot];
                    self.place(rehash(handle), handle);
                }
            }
        }
    }

    /// Every handle, in table order.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.buckets.iter().flat_map(|bucket| {
            (0..SLOTS)
                .filter(|&slot| bucket.meta[slot] != EMPTY)
                .map(|slot| bucket.handles[slot])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// Handles stand for items whose "key" is the handle itself; the hash is a fixed function
    /// of it, chosen by the test (a bad one forces long probes and collisions).
    fn hash_with(spread: u32) -> impl Fn(u32) -> u64 {
        move |handle: u32| {
            let h = u64::from(handle % spread).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            h ^ (h >> 29)
        }
    }

    #[test]
    fn a_bucket_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
        assert_eq!(std::mem::align_of::<Bucket>(), 64);
    }

    #[test]
    fn tags_match_exactly() {
        let mut bucket = EMPTY_BUCKET;
        bucket.meta[..SLOTS].copy_from_slice(&[1, 2, 0x80, 0x81, 0xff, 0x7f, 2, 0, 0, 3, 0xfe, 2]);
        bucket.meta[OVERFLOW] = 2; // metadata past the slots never matches
        assert_eq!(bucket.matching(2).collect::<Vec<_>>(), vec![1, 6, 11]);
        assert_eq!(bucket.matching(0x80).collect::<Vec<_>>(), vec![2]);
        assert_eq!(bucket.matching(0xff).collect::<Vec<_>>(), vec![4]);
        assert_eq!(bucket.free_slot(), Some(7));
        assert_eq!(bucket.matching(0x7e).count(), 0);
    }

    #[test]
    fn finds_what_it_holds_through_growth_and_removal() {
        let hash = hash_with(u32::MAX);
        let mut table = HandleTable::with_capacity(4);
        for handle in 0..10_000u32 {
            table.insert_unique(hash(handle), handle, &hash);
        }
        assert_eq!(table.len(), 10_000);
        for handle in (0..10_000u32).step_by(2) {
            assert_eq!(table.remove(hash(handle), |h| h == handle), Some(handle));
        }
        for handle in 0..10_000u32 {
            let found = table.find(hash(handle), |h| h == handle);
            assert_eq!(found.is_some(), handle % 2 == 1, "{handle}");
        }
        assert_eq!(table.iter().count(), 5_000);
        assert!(table.allocation_size() >= table.capacity() * 5);
    }

    #[test]
    fn a_full_neighbourhood_still_ends_lookups() {
        // 64 distinct handles that all hash alike fill several buckets in a row.
        let hash = hash_with(1);
        let mut table = HandleTable::with_capacity(1_000);
        for handle in 0..64u32 {
            table.insert_unique(hash(handle), handle, &hash);
        }
        for handle in 0..64u32 {
            assert_eq!(table.find(hash(handle), |h| h == handle), Some(handle));
        }
        assert_eq!(table.find(hash(99), |h| h == 99), None);
        for handle in 0..64u32 {
            assert_eq!(table.remove(hash(handle), |h| h == handle), Some(handle));
        }
        // Every overflow count went back to zero: nothing is passed any more.
        assert!(table.buckets.iter().all(|b| b.overflow() == 0));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32),
        Remove(u32),
        Replace(u32, u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..300u32).prop_map(Op::Insert),
            (0..300u32).prop_map(Op::Remove),
            (0..300u32, 1000..1300u32).prop_map(|(a, b)| Op::Replace(a, b)),
        ]
    }

    proptest! {
        /// Against a HashMap from "key" to handle, with hashes that collide often (keys are
        /// hashed modulo `spread`): every key finds its current handle, and only it.
        #[test]
        fn behaves_like_a_map(ops in prop::collection::vec(op(), 1..400), spread in 1..64u32) {
            let key_hash = hash_with(spread);
            // A handle encodes its key in its low 16 bits.
            let hash_of_handle = |handle: u32| key_hash(handle & 0xffff);
            let mut table = HandleTable::with_capacity(1);
            let mut model: HashMap<u32, u32> = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(key) => {
                        if let std::collections::hash_map::Entry::Vacant(entry) = model.entry(key) {
                            entry.insert(key);
                            table.insert_unique(key_hash(key), key, hash_of_handle);
                        }
                    }
                    Op::Remove(key) => {
                        let removed = table.remove(key_hash(key), |h| h & 0xffff == key);
                        prop_assert_eq!(removed, model.remove(&key));
                    }
                    Op::Replace(key, generation) => {
                        let new = key | (generation << 16);
                        let slot = table.find_mut(key_hash(key), |h| h & 0xffff == key);
                        prop_assert_eq!(slot.is_some(), model.contains_key(&key));
                        if let Some(slot) = slot {
                            *slot = new;
                            model.insert(key, new);
                        }
                    }
                }
                prop_assert_eq!(table.len(), model.len());
            }
            for key in 0..300u32 {
                prop_assert_eq!(
                    table.find(key_hash(key), |h| h & 0xffff == key),
                    model.get(&key).copied()
                );
            }
            let mut held: Vec<u32> = table.iter().collect();
            let mut expected: Vec<u32> = model.values().copied().collect();
            held.sort_unstable();
            expected.sort_unstable();
            prop_assert_eq!(held, expected);
        }
    }
}

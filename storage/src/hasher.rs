//! Key hashing and the key-to-partition mapping.
//!
//! Owns: the one 64-bit hash of a key that both picks its partition and is used inside that
//! partition's index, and its seeds (a warm restart keeps them, so that every key still routes
//! to the partition that holds it). Must not touch: the index itself.

use std::hash::{BuildHasher, Hasher};

/// Hashes keys with ahash under seeds fixed for the life of the process.
#[derive(Clone, Debug)]
pub struct KeyHasher {
    state: ahash::RandomState,
    seeds: [u64; 4],
    partitions: u64,
}

impl KeyHasher {
    /// A hasher with random seeds (so that clients cannot aim collisions at one bucket) that
    /// routes keys over `partitions` partitions.
    pub fn new(partitions: usize) -> Self {
        // std's RandomState is keyed from the OS's random source once per process and then
        // per instance: four fresh instances give four unpredictable seeds, which (unlike
        // ahash's own random state) can be read back and kept for a restart.
        let seeds = std::array::from_fn(|lane| {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_usize(lane);
            hasher.finish()
        });
        Self::with_seeds(seeds, partitions)
    }

    /// A hasher with fixed seeds, for reproducible tests and benchmarks.
    pub fn with_seed(seed: u64, partitions: usize) -> Self {
        Self::with_seeds([seed, seed ^ 0x9e37_79b9_7f4a_7c15, 7, 11], partitions)
    }

    /// The hasher whose [`KeyHasher::seeds`] these are (a warm restart's).
    pub fn with_seeds(seeds: [u64; 4], partitions: usize) -> Self {
        KeyHasher {
            state: ahash::RandomState::with_seeds(seeds[0], seeds[1], seeds[2], seeds[3]),
            seeds,
            partitions: partitions.max(1) as u64,
        }
    }

    /// The seeds, to be kept for a restart.
    pub fn seeds(&self) -> [u64; 4] {
        self.seeds
    }

    /// The key's hash.
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.state.hash_one(key)
    }

    /// The partition that owns a key with this hash.
    ///
    /// Uses bits 32..56, scaled by a multiplication rather than a division. The index table
    /// (`table.rs`) picks buckets from the low bits and its 8-bit tag from the top byte; taking
    /// the partition from either would leave every partition's index with fewer useful bits.
    #[inline]
    pub fn partition_of(&self, hash: u64) -> usize {
        ((((hash >> 32) & 0x00ff_ffff) * self.partitions) >> 24) as usize
    }

    /// How many partitions keys are routed over.
    pub fn partitions(&self) -> usize {
        self.partitions as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_spread_over_all_partitions() {
        let hasher = KeyHasher::with_seed(1, 4);
        let mut counts = [0usize; 4];
        for i in 0..40_000 {
            let key = format!("key:{i}");
            counts[hasher.partition_of(hasher.hash(key.as_bytes()))] += 1;
        }
        for count in counts {
            assert!((9_000..11_000).contains(&count), "uneven spread {counts:?}");
        }
    }

    #[test]
    fn same_key_same_hash() {
        let hasher = KeyHasher::new(2);
        assert_eq!(hasher.hash(b"abc"), hasher.hash(b"abc"));
        assert_ne!(hasher.hash(b"abc"), hasher.hash(b"abd"));
        assert!(hasher.partition_of(u64::MAX) < 2);
        assert_ne!(
            KeyHasher::new(2).seeds(),
            hasher.seeds(),
            "seeds are drawn anew"
        );
        let again = KeyHasher::with_seeds(hasher.seeds(), 2);
        assert_eq!(again.hash(b"abc"), hasher.hash(b"abc"), "seeds say it all");
    }
}

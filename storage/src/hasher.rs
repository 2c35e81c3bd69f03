//! Key hashing and the key-to-partition mapping.
//!
//! Owns: the one 64-bit hash of a key that both picks its partition and is used inside that
//! partition's index. Must not touch: the index itself.

/// Hashes keys with ahash under seeds fixed for the life of the process.
#[derive(Clone, Debug)]
pub struct KeyHasher {
    state: ahash::RandomState,
    partitions: u64,
}

impl KeyHasher {
    /// A hasher with random seeds (so that clients cannot aim collisions at one bucket) that
    /// routes keys over `partitions` partitions.
    pub fn new(partitions: usize) -> Self {
        Self::with_state(ahash::RandomState::new(), partitions)
    }

    /// A hasher with fixed seeds, for reproducible tests and benchmarks.
    pub fn with_seed(seed: u64, partitions: usize) -> Self {
        Self::with_state(
            ahash::RandomState::with_seeds(seed, seed ^ 0x9e37_79b9_7f4a_7c15, 7, 11),
            partitions,
        )
    }

    fn with_state(state: ahash::RandomState, partitions: usize) -> Self {
        KeyHasher {
            state,
            partitions: partitions.max(1) as u64,
        }
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
    }
}

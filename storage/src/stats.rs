//! Counters a partition keeps for memcached's `stats`, `stats items` and `stats slabs`.
//!
//! Owns: the counter structs and how partitions' counters add up. Must not touch: formatting
//! (the daemon writes `STAT` lines) or connection counters (the daemon keeps those).

/// Sums counters field by field (partitions are summed into the server's totals).
macro_rules! summable {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident: u64,)* }) => {
        $(#[$meta])*
        pub struct $name { $($(#[$fmeta])* pub $field: u64,)* }

        impl $name {
            /// Adds every counter of `other` to this one.
            pub fn add(&mut self, other: &Self) {
                $(self.$field += other.$field;)*
            }
        }
    };
}

summable! {
    /// One partition's item-level counters; the meaning of each is memcached's.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct PartitionStats {
        pub curr_items: u64,
        pub total_items: u64,
        /// Bytes of items stored: header, key and value.
        pub bytes: u64,
        /// Retrieval commands' keys looked up (hits + misses + expired + flushed).
        pub cmd_get: u64,
        pub cmd_set: u64,
        pub cmd_touch: u64,
        pub get_hits: u64,
        pub get_misses: u64,
        pub get_expired: u64,
        pub get_flushed: u64,
        pub delete_hits: u64,
        pub delete_misses: u64,
        pub incr_hits: u64,
        pub incr_misses: u64,
        pub decr_hits: u64,
        pub decr_misses: u64,
        pub cas_hits: u64,
        pub cas_misses: u64,
        pub cas_badval: u64,
        pub touch_hits: u64,
        pub touch_misses: u64,
        pub store_too_large: u64,
        pub store_no_memory: u64,
        pub evictions: u64,
        pub reclaimed: u64,
        pub expired_unfetched: u64,
        pub evicted_unfetched: u64,
        pub evicted_active: u64,
        pub slabs_moved: u64,
        /// Live items moved to another chunk of their class so that a page could change class.
        pub slab_rescues: u64,
        /// Items the S3-FIFO small queue evicted (never read while on probation).
        pub small_fifo_evictions: u64,
        /// Items read while on probation, moved from the small queue to the main CLOCK.
        pub small_fifo_promotions: u64,
        pub crawler_reclaimed: u64,
        pub crawler_items_checked: u64,
        /// Slab pages this partition holds.
        pub total_pages: u64,
        /// Bytes of the hash index.
        pub hash_bytes: u64,
        /// Slots in the hash index.
        pub hash_capacity: u64,
    }
}

summable! {
    /// One slab class's counters in one partition; summed over partitions by class id.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct ClassStats {
        pub chunk_size: u64,
        pub chunks_per_page: u64,
        pub total_pages: u64,
        pub total_chunks: u64,
        pub used_chunks: u64,
        pub free_chunks: u64,
        pub free_chunks_end: u64,
        /// Bytes the items in this class asked for (header, key, value).
        pub mem_requested: u64,
        pub get_hits: u64,
        pub cmd_set: u64,
        pub delete_hits: u64,
        pub incr_hits: u64,
        pub decr_hits: u64,
        pub cas_hits: u64,
        pub cas_badval: u64,
        pub touch_hits: u64,
        /// Items whose first chunk is in this class (`stats items` `number`).
        pub items: u64,
        /// Seconds since the coldest item was last accessed (`stats items` `age`).
        pub age: u64,
        pub evicted: u64,
        pub evicted_nonzero: u64,
        /// Seconds since last access of the most recently evicted item.
        pub evicted_time: u64,
        pub outofmemory: u64,
        pub reclaimed: u64,
        pub expired_unfetched: u64,
        pub evicted_unfetched: u64,
        pub evicted_active: u64,
        pub crawler_reclaimed: u64,
    }
}

impl ClassStats {
    /// Adds another partition's counters for the same class. Sizes are the same in every
    /// partition and ages are the oldest, not a sum.
    pub fn merge(&mut self, other: &Self) {
        let (chunk_size, chunks_per_page) = (self.chunk_size, self.chunks_per_page);
        let age = self.age.max(other.age);
        let evicted_time = if other.evicted > 0 {
            other.evicted_time
        } else {
            self.evicted_time
        };
        self.add(other);
        self.chunk_size = chunk_size.max(other.chunk_size);
        self.chunks_per_page = chunks_per_page.max(other.chunks_per_page);
        self.age = age;
        self.evicted_time = evicted_time;
    }
}

//! Exact LRU per slab class: a doubly linked list of item heads, the most recently used first;
//! a read, touch or store moves the item to the front, eviction takes the back. It is here to
//! be compared with S3-FIFO and CLOCK in one build, not to be fast: the links live in a hash
//! map beside the slabs, where memcached keeps them in the item header (16 bytes an item).
//!
//! Owns: the lists. Must not touch: item headers (LRU keeps no mark in them) or the hand.

use super::{Policy, Sweep, Victim};
use crate::item::{Header, NO_HANDLE};
use crate::slab::Slabs;
use std::collections::HashMap;

/// An item's neighbours in its class's list.
#[derive(Debug, Clone, Copy)]
struct Link {
    /// Toward the front (more recently used).
    newer: u32,
    /// Toward the back.
    older: u32,
}

/// A class's list ends.
#[derive(Debug, Clone, Copy)]
struct Ends {
    newest: u32,
    oldest: u32,
}

/// The LRU policy's state: the links of every linked item and each class's list ends.
pub(in crate::partition) struct Lru {
    links: HashMap<u32, Link>,
    ends: Vec<Ends>,
}

impl Lru {
    pub(in crate::partition) fn new(classes: usize) -> Lru {
        Lru {
            links: HashMap::new(),
            ends: vec![
                Ends {
                    newest: NO_HANDLE,
                    oldest: NO_HANDLE,
                };
                classes
            ],
        }
    }

    fn push_newest(&mut self, class: usize, handle: u32) {
        let ends = &mut self.ends[class];
        let link = Link {
            newer: NO_HANDLE,
            older: ends.newest,
        };
        match self.links.get_mut(&ends.newest) {
            Some(previous) => previous.newer = handle,
            None => ends.oldest = handle,
        }
        ends.newest = handle;
        self.links.insert(handle, link);
    }

    /// Takes `handle` out of its class's list, joining its neighbours.
    fn remove(&mut self, class: usize, handle: u32) -> Option<Link> {
        let link = self.links.remove(&handle)?;
        self.point_neighbours(class, link, link.older, link.newer);
        Some(link)
    }

    /// Makes the item newer than `link`'s place point at `older` as its older neighbour, and
    /// the item older than it point at `newer` (the class's ends where there is no item).
    fn point_neighbours(&mut self, class: usize, link: Link, older: u32, newer: u32) {
        match self.links.get_mut(&link.newer) {
            Some(neighbour) => neighbour.older = older,
            None => self.ends[class].newest = older,
        }
        match self.links.get_mut(&link.older) {
            Some(neighbour) => neighbour.newer = newer,
            None => self.ends[class].oldest = newer,
        }
    }
}

impl Policy for Lru {
    fn linked(
        &mut self,
        slabs: &mut Slabs,
        handle: u32,
        header: &mut Header,
        _replaced: Option<u8>,
        _hash: u64,
        _cas_enabled: bool,
    ) {
        // The frequency stays as written (0), only for memcached's `evicted_active`.
        header.probation = false;
        self.push_newest(slabs.class_of(handle), handle);
    }

    fn accessed(&mut self, slabs: &Slabs, handle: u32) {
        let class = slabs.class_of(handle);
        if self.ends[class].newest != handle && self.remove(class, handle).is_some() {
            self.push_newest(class, handle);
        }
    }

    fn unlinked(&mut self, slabs: &mut Slabs, handle: u32, _header: &Header) {
        self.remove(slabs.class_of(handle), handle);
    }

    fn moved(
        &mut self,
        _slabs: &mut Slabs,
        class: usize,
        from: u32,
        to: u32,
        _header: &Header,
        _cas_enabled: bool,
    ) {
        if let Some(link) = self.links.remove(&from) {
            self.point_neighbours(class, link, to, to);
            self.links.insert(to, link);
        }
    }

    fn victim(&mut self, sweep: &mut Sweep<'_>, class: usize, _total: usize) -> Option<Victim> {
        let handle = self.ends[class].oldest;
        if handle == NO_HANDLE {
            return None;
        }
        let header = Header::read(sweep.slabs.chunk(handle), sweep.cas_enabled);
        Some(Victim::new(sweep, handle, header))
    }

    fn candidate(&self, _slabs: &Slabs, class: usize) -> Option<u32> {
        let oldest = self.ends[class].oldest;
        (oldest != NO_HANDLE).then_some(oldest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EvictionPolicy;
    use crate::partition::tests::{fill_until_full, partition_with, set, two_and_a_half_pages};
    use crate::partition::{Eviction, Partition};

    fn lru(partition: &Partition) -> &Lru {
        match &partition.eviction {
            Eviction::Lru(lru) => lru,
            _ => panic!("not LRU"),
        }
    }

    #[test]
    fn the_least_recently_used_item_leaves_first() {
        let (mut partition, pool, _) = partition_with(1 << 20, EvictionPolicy::Lru);
        let written = fill_until_full(&mut partition, &pool, &[b'v'; 100]);
        assert!(partition.get(0, b"k0").is_some());
        assert!(partition.touch(0, b"k2", 0));
        for n in 0..3 {
            set(&mut partition, format!("new{n}").as_bytes(), &[b'v'; 100]);
        }
        for (key, kept) in [("k0", true), ("k1", false), ("k2", true), ("k3", false)] {
            let found = partition.peek(0, key.as_bytes()).is_some();
            assert_eq!(found, kept, "{key}");
        }
        assert!(partition.peek(0, b"k4").is_none(), "the third eviction");
        assert!(partition.peek(0, b"k5").is_some());
        assert_eq!(partition.stats().evictions, 3);
        assert_eq!(lru(&partition).links.len(), written);
    }

    #[test]
    fn items_moved_off_a_page_keep_their_place() {
        let (mut partition, _, _) = partition_with(8 << 20, EvictionPolicy::Lru);
        let (small, count) = two_and_a_half_pages(&mut partition);
        let per_page = partition.slabs.classes[small].chunks_per_page;
        // Read the newest half page, then give a page away: its items are rescued by evicting
        // the least recently used ones.
        for i in count - per_page / 2..count {
            assert!(partition.get(0, format!("k{i}").as_bytes()).is_some());
        }
        let big = partition.class_count() - 2;
        assert!(partition.reassign_page(Some(small), Some(big)));
        assert!(partition.stats().slab_rescues > 0);
        assert_eq!(lru(&partition).links.len(), partition.len());
        for i in count - per_page / 2..count {
            let key = format!("k{i}");
            assert!(partition.peek(0, key.as_bytes()).is_some(), "{key}");
        }
        // The list still ends where it should: evicting walks it from the oldest on.
        let oldest = lru(&partition).ends[small].oldest;
        let first_kept = (0..count)
            .find(|i| partition.peek(0, format!("k{i}").as_bytes()).is_some())
            .expect("some kept");
        let item = partition
            .peek(0, format!("k{first_kept}").as_bytes())
            .expect("kept");
        assert_eq!(item.handle, oldest);
    }
}

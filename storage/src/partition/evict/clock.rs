//! CLOCK with 2-bit frequencies, over every item of a class: the hand walks the class's chunks,
//! lowers the frequency of each item it passes and evicts the first it finds at 0. Reads raise
//! the frequency in the item's header (no list move). New keys start at 0; a replaced key keeps
//! its old item's frequency.
//!
//! Owns: the hand's sweep, which S3-FIFO's main queue shares ([`sweep_hand`]), and the CLOCK
//! policy. Must not touch: the small FIFO (`s3fifo.rs`) or anything but the header marks of
//! the items the hand passes.

use super::{Policy, Sweep, Victim};
use crate::item::{self, Header};
use crate::slab::Slabs;

/// The plain CLOCK policy; its state is the class's hand and the items' frequencies.
pub(in crate::partition) struct Clock;

impl Policy for Clock {
    fn linked(
        &mut self,
        slabs: &mut Slabs,
        handle: u32,
        header: &mut Header,
        replaced: Option<u8>,
        _hash: u64,
        _cas_enabled: bool,
    ) {
        header.bits = item::with_freq(header.bits, replaced.map_or(0, item::freq));
        header.probation = false;
        let chunk = slabs.chunk_mut(handle);
        item::set_bits(chunk, header.bits);
        item::set_probation(chunk, false);
    }

    fn unlinked(&mut self, _slabs: &mut Slabs, _handle: u32, _header: &Header) {}

    fn moved(
        &mut self,
        _slabs: &mut Slabs,
        _class: usize,
        _from: u32,
        _to: u32,
        _header: &Header,
        _cas_enabled: bool,
    ) {
    }

    fn victim(&mut self, sweep: &mut Sweep<'_>, class: usize, total: usize) -> Option<Victim> {
        sweep_hand(sweep, class, total)
    }

    fn candidate(&self, slabs: &Slabs, class: usize) -> Option<u32> {
        near_hand(slabs, class)
    }
}

/// The CLOCK sweep: skips items on probation (S3-FIFO's small queue owns them), lowers
/// frequencies, and gives up the first item found at frequency 0, or dead. Every item is at
/// 0 after `FREQ_MAX + 1` turns, so the sweep ends.
pub(super) fn sweep_hand(sweep: &mut Sweep<'_>, class: usize, total: usize) -> Option<Victim> {
    for _ in 0..(usize::from(item::FREQ_MAX) + 1) * total + 1 {
        let Some((handle, header)) = sweep.advance_hand(class, total) else {
            continue;
        };
        let death = sweep.death(&header);
        if death.is_none() {
            if header.probation {
                continue;
            }
            let freq = item::freq(header.bits);
            if freq > 0 {
                item::set_freq(sweep.slabs.chunk_mut(handle), freq - 1);
                continue;
            }
        }
        return Some(Victim {
            handle,
            header,
            death,
        });
    }
    None
}

/// The first item head at or soon after the class's hand.
pub(super) fn near_hand(slabs: &Slabs, class: usize) -> Option<u32> {
    let slab = &slabs.classes[class];
    let total = slab.total_chunks();
    (0..total.min(super::HEAD_SCAN))
        .map(|step| slabs.handle_at(class, (slab.hand + step) % total))
        .find(|&handle| item::is_head(slabs.chunk(handle)))
}

#[cfg(test)]
mod tests {
    use crate::config::EvictionPolicy;
    use crate::partition::tests::{fill_until_full, partition_with, set};

    #[test]
    fn the_hand_spares_an_item_read_since_it_last_passed() {
        let (mut partition, pool, _) = partition_with(1 << 20, EvictionPolicy::Clock);
        fill_until_full(&mut partition, &pool, &[b'v'; 100]);
        assert!(partition.get(0, b"k0").is_some());
        set(&mut partition, b"new", &[b'v'; 100]);
        assert!(partition.peek(0, b"k0").is_some(), "read: one more turn");
        assert!(partition.peek(0, b"k1").is_none(), "never read: evicted");
        let new = partition.peek(0, b"new").expect("stored");
        assert!(!new.header.probation, "CLOCK has no small FIFO");
        let stats = partition.stats();
        assert_eq!(stats.evictions, 1);
        assert_eq!(stats.small_fifo_evictions, 0);
    }
}

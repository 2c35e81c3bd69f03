//! Writing items: headers, CAS uniques, access marks, and new items into fresh chunks.
//!
//! Owns: turning a header, key and value parts into an item in one chunk or a chain of
//! chunks ([`Partition::write_item`], [`ChainWriter`]), then linking it
//! ([`Partition::write_and_link`]); the CAS counter of this partition's stripe; rewriting a
//! header in place or, when its size changed, into a new chunk; making room for an expiry;
//! marking an access (frequency, fetched bit, time). Must not touch: which chunk is free or
//! how one is made free (`pages.rs`, `evict.rs`), or the index beyond calling `link`,
//! `link_uncounted` and `unlink`.

use super::evict::Policy;
use super::{Partition, valid_key};
use crate::error::StoreError;
use crate::item::{self, CONTINUATION_HEADER, Header, NO_HANDLE};

/// Copies a value given in parts into consecutive chunks.
struct ChainWriter<'p> {
    parts: &'p [&'p [u8]],
    part: usize,
    offset: usize,
}

impl ChainWriter<'_> {
    /// Fills `room` with the next bytes (or as many as are left).
    fn fill(&mut self, room: &mut [u8]) {
        let mut at = 0;
        while at < room.len() && self.part < self.parts.len() {
            let part = self.parts[self.part];
            let take = (part.len() - self.offset).min(room.len() - at);
            room[at..at + take].copy_from_slice(&part[self.offset..self.offset + take]);
            at += take;
            self.offset += take;
            if self.offset == part.len() {
                self.part += 1;
                self.offset = 0;
            }
        }
    }
}

impl Partition {
    /// Marks an access: frequency, fetched bit, last-access time.
    pub(super) fn bump(&mut self, handle: u32, header: &mut Header) {
        header.bits = item::with_freq(header.bits, item::freq(header.bits) + 1) | item::FETCHED;
        header.time = self.access_time();
        self.write_header_fields(handle, header);
        self.eviction.accessed(&self.slabs, handle);
    }

    /// Writes bits, win token, expiry and time in place (the caller made room for an expiry
    /// with [`Partition::set_expiry`]).
    pub(super) fn write_header_fields(&mut self, handle: u32, header: &Header) {
        header.write_access(self.slabs.chunk_mut(handle), self.cas_enabled);
    }

    /// Raises an item's access frequency (an access that is not a read).
    pub(super) fn count_access(&mut self, handle: u32) {
        let chunk = self.slabs.chunk_mut(handle);
        item::set_freq(chunk, item::freq_of(chunk) + 1);
        self.eviction.accessed(&self.slabs, handle);
    }

    /// Gives an item the expiry of `exptime` (`touch`, `gat`, meta `T`, `ma`/`md` with `T`), to be
    /// written with its other access fields. An item stored without an expiry has no field for one:
    /// its key and value move 4 bytes along when its chunk has the room, else it is rewritten into
    /// a larger chunk (the size limit counted the field, so it fits). Returns the item's handle,
    /// which a rewrite changes, or `None` if the rewrite found no memory (only possible when
    /// nothing can be evicted); the item is then left as it was.
    pub(super) fn set_expiry(
        &mut self,
        hash: u64,
        handle: u32,
        header: &mut Header,
        exptime: i64,
    ) -> Option<u32> {
        header.expiry = self.clock.expiry_of(exptime);
        if header.has_expiry_room() {
            return Some(handle);
        }
        let cas_enabled = self.cas_enabled;
        let size = header.item_size(cas_enabled);
        let chunk = self.slabs.chunk_mut(handle);
        if !header.is_chained() && size + 4 <= chunk.len() {
            item::insert_expiry_field(chunk, cas_enabled, size);
            header.bits |= item::HAS_EXPIRY;
            self.bytes += 4;
            let class = self.slabs.class_of(handle);
            self.slabs.classes[class].mem_requested += 4;
            return Some(handle);
        }
        let key = item::key_of(self.slabs.chunk(handle), cas_enabled).to_vec();
        let (handle, stored) = self.write_again(hash, handle, &key, *header).ok()?;
        *header = stored;
        Some(handle)
    }

    /// Writes a changed header; when its size changed (an expiry where there was none, a CAS
    /// given with the store, kept whole in 8 bytes), the item is rewritten into a new chunk.
    /// Returns the item's handle and header, or `None` if the rewrite found no memory (the
    /// item is dropped then).
    pub(super) fn rewrite_header(
        &mut self,
        hash: u64,
        handle: u32,
        mut header: Header,
    ) -> Option<(u32, Header)> {
        let old_bits = item::bits(self.slabs.chunk(handle));
        header.fix_layout_bits();
        if item::header_len(old_bits, self.cas_enabled) == header.len(self.cas_enabled) {
            let old_tag = item::queue_tag(self.slabs.chunk(handle), self.cas_enabled);
            header.write(self.slabs.chunk_mut(handle), self.cas_enabled);
            self.eviction
                .rewritten(&mut self.slabs, handle, &header, old_tag, self.cas_enabled);
            return Some((handle, header));
        }
        let key = item::key_of(self.slabs.chunk(handle), self.cas_enabled).to_vec();
        match self.write_again(hash, handle, &key, header) {
            Ok(written) => Some(written),
            Err(_) => {
                if let Ok((handle, _)) = self.lookup(hash, &key) {
                    self.unlink_found(handle, hash, &key);
                }
                None
            }
        }
    }

    /// Writes the item at `handle` (whose key is `key`) again into a new chunk, with `header`
    /// (a larger one), and links it in its place: the same item, so no store is counted. The
    /// value is copied out first: making room may evict or move the item.
    fn write_again(
        &mut self,
        hash: u64,
        handle: u32,
        key: &[u8],
        mut header: Header,
    ) -> Result<(u32, Header), StoreError> {
        let old = Header::read(self.slabs.chunk(handle), self.cas_enabled);
        let value = self.copy_value(handle, &old);
        header.bits &= !item::CHAINED;
        header.next = NO_HANDLE;
        let (handle, mut stored) = self.write_counting_errors(header, key, &[&value])?;
        self.link_uncounted(hash, key, handle, &mut stored);
        Ok((handle, stored))
    }

    /// A CAS for an item being written: the one given with the store (`new_cas`), or the
    /// partition's next; and whether it was given (kept whole, see [`Header::set_cas`]).
    pub(super) fn fresh_cas(&mut self, requested: Option<u64>) -> (u64, bool) {
        if !self.cas_enabled {
            return (0, false);
        }
        match requested {
            Some(cas) => (cas, true),
            None => {
                let cas = self.next_cas;
                // Never 0 (memcached's "no CAS"), and always in this partition's stripe.
                self.next_cas = cas.checked_add(self.cas_step).unwrap_or(self.first_cas);
                (cas, false)
            }
        }
    }

    /// Gives `header` a fresh CAS ([`Partition::fresh_cas`]).
    pub(super) fn assign_cas(&mut self, header: &mut Header, requested: Option<u64>) {
        let (cas, given) = self.fresh_cas(requested);
        header.set_cas(cas, given);
    }

    /// The header of an item head with its whole CAS (the header keeps the low bits of a CAS
    /// this partition handed out; [`item::widen_cas`]).
    pub(super) fn read_header(&self, handle: u32) -> Header {
        let mut header = Header::read(self.slabs.chunk(handle), self.cas_enabled);
        if self.cas_enabled && !header.cas_given() {
            header.cas = item::widen_cas(header.cas, self.next_cas.saturating_sub(1));
        }
        header
    }

    /// A header for a new item with a fresh CAS.
    pub(super) fn new_header(
        &mut self,
        key: &[u8],
        flags: u32,
        expiry: u32,
        cas: Option<u64>,
    ) -> Header {
        let (cas, given) = self.fresh_cas(cas);
        self.header_with_cas(key, flags, expiry, cas, given)
    }

    /// A header for a new item with this CAS (`given`: from a client, [`Header::set_cas`]).
    pub(super) fn header_with_cas(
        &self,
        key: &[u8],
        flags: u32,
        expiry: u32,
        cas: u64,
        given: bool,
    ) -> Header {
        let mut header = Header::new(key.len() as u8, 0, flags, expiry, self.access_time(), cas);
        header.set_cas(cas, given);
        if !self.config.evictions {
            // With `-M` a touch must never need a rewrite, which could find no memory.
            header.bits |= item::HAS_EXPIRY;
        }
        header
    }

    /// The value of an unchained item.
    pub(super) fn value_slice(&self, handle: u32, header: &Header) -> &[u8] {
        let start = header.value_start(self.cas_enabled);
        &self.slabs.chunk(handle)[start..start + header.value_len as usize]
    }

    pub(super) fn copy_value(&self, handle: u32, header: &Header) -> Vec<u8> {
        let mut value = Vec::with_capacity(header.value_len as usize);
        for part in self.item_ref(handle, *header).value() {
            value.extend_from_slice(part);
        }
        value
    }

    /// A new empty-or-given item made on a miss (meta `N`).
    pub(super) fn vivify(
        &mut self,
        hash: u64,
        key: &[u8],
        value: &[u8],
        exptime: i64,
    ) -> Option<(u32, Header)> {
        if !valid_key(key) {
            return None;
        }
        let header = self.new_header(key, 0, self.clock.expiry_of(exptime), None);
        self.write_and_link(hash, key, header, &[value]).ok()
    }

    /// Writes a new item (value = `parts` concatenated) and links it in place of any item
    /// with the same key.
    pub(super) fn write_and_link(
        &mut self,
        hash: u64,
        key: &[u8],
        header: Header,
        parts: &[&[u8]],
    ) -> Result<(u32, Header), StoreError> {
        let (handle, mut header) = self.write_counting_errors(header, key, parts)?;
        self.link(hash, key, handle, &mut header);
        Ok((handle, header))
    }

    /// [`Partition::write_item`], counting a failure in the store counters.
    fn write_counting_errors(
        &mut self,
        header: Header,
        key: &[u8],
        parts: &[&[u8]],
    ) -> Result<(u32, Header), StoreError> {
        self.write_item(header, key, parts)
            .inspect_err(|error| match error {
                StoreError::TooLarge => self.counters.store_too_large += 1,
                StoreError::OutOfMemory => self.counters.store_no_memory += 1,
            })
    }

    /// The class of a chain's last chunk of `size` bytes: the smallest class it fits, or, if
    /// that class has no free chunk, the smallest ladder class up to twice as large that has
    /// one, or, once the pool has no page left (and evictions are on), any larger ladder
    /// class that has one. Last chunks come in every size up to the largest chunk, and few
    /// chained items a partition (64 MiB over 32 threads holds about 40 values of 100 KB
    /// each) spread them over twenty classes of one page each, most of it unused: a fifth of
    /// the memory stood idle. While the pool has pages, never beyond twice the size: beyond
    /// it then, 88.3% of `-m 64 -t 32` in item bytes for 1..100,000-byte values (85.9%
    /// within it), but a partition of few large values lost 2 of its newest six in 2,880
    /// checks (`a_partition_of_few_large_values_keeps_its_newest`). With `-M`, never beyond
    /// it: free chunks of the largest size are what chain heads fall back on.
    fn tail_class(&self, size: usize, chain_class: usize) -> usize {
        let Some(fits) = self.slabs.class_for(size) else {
            return chain_class;
        };
        // The search goes up from the smallest class, so widening it finds the same class
        // whenever one near has room.
        let limit = if self.config.evictions && self.pool.is_exhausted() {
            usize::MAX
        } else {
            2 * self.slabs.classes[fits].chunk_size
        };
        self.larger_class_with_free_chunk(fits, limit)
            .unwrap_or(fits)
    }

    /// Allocates chunks and writes header, key and value; the item is not in the index yet.
    fn write_item(
        &mut self,
        mut header: Header,
        key: &[u8],
        parts: &[&[u8]],
    ) -> Result<(u32, Header), StoreError> {
        if !valid_key(key) {
            // A key the index cannot hold (its length byte would lie); callers check first.
            return Err(StoreError::TooLarge);
        }
        let value_len: usize = parts.iter().map(|part| part.len()).sum();
        header.key_len = key.len() as u8;
        header.value_len = u32::try_from(value_len).map_err(|_| StoreError::TooLarge)?;
        header.bits &= !item::CHAINED;
        header.next = NO_HANDLE;
        header.fix_layout_bits();
        let cas_enabled = self.cas_enabled;
        let needed = header.len(cas_enabled) + key.len() + value_len;
        // The limit counts an expiry field the item does not carry yet, so that giving it an
        // exptime later (`set_expiry`) never takes it over.
        let expiry_room = if header.bits & item::HAS_EXPIRY == 0 {
            4
        } else {
            0
        };
        if needed + expiry_room > self.config.item_size_max {
            return Err(StoreError::TooLarge);
        }
        let largest = self.slabs.largest_class();
        let largest_chunk = self.slabs.classes[largest].chunk_size;
        if needed <= largest_chunk && value_len <= item::UNCHAINED_VALUE_MAX {
            let class = self.slabs.class_for(needed).unwrap_or(largest);
            let handle = self.alloc_chunk(class)?;
            let chunk = self.slabs.chunk_mut(handle);
            header.write(chunk, cas_enabled);
            let mut at = header.len(cas_enabled);
            chunk[at..at + key.len()].copy_from_slice(key);
            at += key.len();
            for part in parts {
                chunk[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
            return Ok((handle, header));
        }

        // Chained: a head chunk and continuations of the largest chunk size, in the chain class
        // of the item's chunk count (or a free chunk of a longer band's, `alloc_chunk`), and the
        // last continuation in a ladder class its bytes fit
        // (`tail_class`; memcached takes the smallest), so a chained item wastes little more
        // than a single-chunk item.
        // A chain always carries its expiry field: 4 bytes of kilobytes, and a touch never
        // has to copy a whole chain to make room for one.
        header.bits |= item::CHAINED | item::HAS_EXPIRY;
        let head_len = header.len(cas_enabled) + key.len();
        let continuation_room = largest_chunk.saturating_sub(CONTINUATION_HEADER);
        if head_len > largest_chunk || continuation_room == 0 {
            return Err(StoreError::TooLarge);
        }
        let head_room = largest_chunk - head_len;
        let after_head = value_len.saturating_sub(head_room);
        let continuations = after_head.div_ceil(continuation_room);
        let chain_class = self.slabs.chain_class(continuations + 1);
        let tail_class = match after_head % continuation_room {
            0 => chain_class,
            tail => self.tail_class(tail + CONTINUATION_HEADER, chain_class),
        };
        // Reserve every chunk first (marked as continuations, so the CLOCK hand skips them),
        // so that a failure part-way leaves nothing half written. The tail comes first: taking
        // a page for its class may empty a page of the chain class, which must not hold a
        // chunk reserved for this item yet.
        let mut classes = vec![chain_class; continuations + 1];
        if continuations > 0 {
            classes[continuations] = tail_class;
            classes.rotate_right(1);
        }
        let mut chunks: Vec<u32> = Vec::with_capacity(continuations + 1);
        for class in classes {
            match self.alloc_chunk(class) {
                Ok(handle) => {
                    item::write_continuation(self.slabs.chunk_mut(handle), NO_HANDLE, NO_HANDLE);
                    chunks.push(handle);
                }
                Err(error) => {
                    for handle in chunks {
                        self.slabs.release_chunk(handle);
                    }
                    return Err(error);
                }
            }
        }
        if continuations > 0 {
            chunks.rotate_left(1);
        }
        let head = chunks[0];
        header.next = chunks.get(1).copied().unwrap_or(NO_HANDLE);
        let mut writer = ChainWriter {
            parts,
            part: 0,
            offset: 0,
        };
        let chunk = self.slabs.chunk_mut(head);
        header.write(chunk, cas_enabled);
        chunk[head_len - key.len()..head_len].copy_from_slice(key);
        writer.fill(&mut chunk[head_len..]);
        for at in 1..chunks.len() {
            let next = chunks.get(at + 1).copied().unwrap_or(NO_HANDLE);
            let chunk = self.slabs.chunk_mut(chunks[at]);
            item::write_continuation(chunk, head, next);
            writer.fill(item::continuation_data_mut(chunk));
        }
        Ok((head, header))
    }
}

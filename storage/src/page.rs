//! The bytes of one slab page, and spans of them that may be read outside the partition lock.
//!
//! Owns: a page's memory (a heap allocation, or a slot of a mapped region that outlives the
//! process), the views of it that the slab allocator takes one chunk at a time, and
//! [`PinnedSpan`]: a pointer and a length into a page that a pinned value's reader dereferences
//! after the partition lock is released. Must not touch: what the bytes mean (items, chunks,
//! classes), or which chunks are pinned (that is `pin.rs`).
//!
//! This is the crate's only module with `unsafe`. It exists so that a large value can be
//! written to a socket straight from its chunks (`writev` of the reply head and the chunks),
//! instead of being copied into the reply buffer under the lock: in the W7 profile that copy
//! was 12-14% of the server's samples. The memory is held as a raw pointer rather than a
//! `Box<[u8]>` so that the owner, writing one chunk, takes a `&mut` of that chunk only, never
//! of the whole page while another thread reads a pinned chunk of it.

#![allow(unsafe_code)]

use std::ops::{Deref, Range};
use std::ptr::NonNull;

/// The bytes of one slab page.
#[derive(Debug)]
pub(crate) struct PageMemory {
    start: NonNull<u8>,
    len: usize,
    /// The slot of the mapped region the page lives in; `None`: a heap allocation this value
    /// owns and frees.
    slot: Option<u32>,
}

// SAFETY: a PageMemory owns its bytes as a Box<[u8]> (or a &'static mut [u8]) does, and hands
// out references only through &self / &mut self, so moving it or sharing a & to it between
// threads is as safe as for those.
unsafe impl Send for PageMemory {}
// SAFETY: as above; &PageMemory gives out shared views only.
unsafe impl Sync for PageMemory {}

impl PageMemory {
    /// A zeroed page of `size` bytes on the heap (calloc/mmap: it costs RSS once written).
    pub(crate) fn heap(size: usize) -> Self {
        let raw: *mut [u8] = Box::into_raw(vec![0u8; size].into_boxed_slice());
        PageMemory {
            start: NonNull::new(raw.cast::<u8>()).expect("a Box is never null"),
            len: size,
            slot: None,
        }
    }

    /// Slot `slot` of the mapped region, whose bytes stay where they are across a restart.
    pub(crate) fn region(slot: u32, data: &'static mut [u8]) -> Self {
        PageMemory {
            start: NonNull::from(&mut *data).cast::<u8>(),
            len: data.len(),
            slot: Some(slot),
        }
    }

    /// The region slot this page lives in, if it lives in a region.
    pub(crate) fn slot(&self) -> Option<u32> {
        self.slot
    }

    /// A region page's slot and bytes back (`None` for a heap page, which is freed).
    pub(crate) fn into_region(self) -> Option<(u32, &'static mut [u8])> {
        let page = std::mem::ManuallyDrop::new(self);
        let slot = page.slot?;
        // SAFETY: a region page was made from a &'static mut of exactly these bytes, which the
        // ManuallyDrop'd page no longer uses: the unique reference is handed back.
        let data = unsafe { std::slice::from_raw_parts_mut(page.start.as_ptr(), page.len) };
        Some((slot, data))
    }

    /// The bytes of `range`, which lies inside the page.
    #[inline]
    pub(crate) fn bytes(&self, range: Range<usize>) -> &[u8] {
        assert!(range.start <= range.end && range.end <= self.len);
        // SAFETY: in bounds (checked above) of memory this page owns. No &mut overlaps it
        // while the & lives: &mut views are only made through &mut self, and a pinned span's
        // reader only reads.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr().add(range.start), range.len()) }
    }

    /// The bytes of `range` to write. Only `range` is borrowed, so a pinned span elsewhere
    /// on the page, read by another thread, is not aliased.
    #[inline]
    pub(crate) fn bytes_mut(&mut self, range: Range<usize>) -> &mut [u8] {
        assert!(range.start <= range.end && range.end <= self.len);
        // SAFETY: in bounds (checked above); &mut self excludes every other view made through
        // this page, and the partition never writes a chunk a reader has pinned (pin.rs).
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr().add(range.start), range.len()) }
    }

    /// Copies `from` to `at` within the page (ranges of one chunk size, not overlapping).
    pub(crate) fn copy_within(&mut self, from: Range<usize>, at: usize) {
        assert!(from.start <= from.end && from.end <= self.len && at + from.len() <= self.len);
        // SAFETY: both ranges are in bounds (checked above); ptr::copy allows overlap; only
        // the destination is written, and it is not pinned (it is a free chunk).
        unsafe {
            std::ptr::copy(
                self.start.as_ptr().add(from.start),
                self.start.as_ptr().add(at),
                from.len(),
            );
        }
    }

    /// A span of `range` for reading after the lock is released. The caller (pin.rs) keeps
    /// the span's bytes from being written or freed until the span is dropped.
    pub(crate) fn span(&self, range: Range<usize>) -> PinnedSpan {
        assert!(range.start <= range.end && range.end <= self.len);
        PinnedSpan {
            // In bounds (checked above): wrapping_add is plain pointer arithmetic here.
            start: self.start.as_ptr().wrapping_add(range.start).cast_const(),
            len: range.len(),
        }
    }
}

impl Drop for PageMemory {
    fn drop(&mut self) {
        if self.slot.is_none() {
            let raw = std::ptr::slice_from_raw_parts_mut(self.start.as_ptr(), self.len);
            // SAFETY: a heap page was made by Box::into_raw of a boxed slice of exactly this
            // length, and is freed once, here.
            drop(unsafe { Box::from_raw(raw) });
        }
    }
}

// A whole-page view, for reading (a restart saving or settling pages). There is no whole-page
// &mut: writes borrow the chunk they write ([`PageMemory::bytes_mut`]).
impl Deref for PageMemory {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        self.bytes(0..self.len)
    }
}

/// Bytes of a page that a pinned value's reader reads without the partition lock.
#[derive(Debug)]
pub(crate) struct PinnedSpan {
    start: *const u8,
    len: usize,
}

// SAFETY: a PinnedSpan is a read-only view of bytes that nobody writes while it lives (see
// `bytes`); reading them from any thread is safe.
unsafe impl Send for PinnedSpan {}
// SAFETY: as above.
unsafe impl Sync for PinnedSpan {}

impl PinnedSpan {
    /// The bytes.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: spans are made only by `PageMemory::span`, in bounds of a page, and only
        // for chunks of an item pinned in pin.rs. While the pin holding this span lives, its
        // chunks are neither written (the page mover passes over pages holding them, and an
        // item unlinked meanwhile keeps them until the pin's release) nor freed: a page
        // holding one is never given back, and a partition dropped while pins live leaks its
        // pages rather than free them. The span is dropped with its pin.
        unsafe { std::slice::from_raw_parts(self.start, self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_views_read_and_write_their_own_bytes_only() {
        let mut page = PageMemory::heap(64);
        page.bytes_mut(8..16).copy_from_slice(b"abcdefgh");
        assert_eq!(page.bytes(8..16), b"abcdefgh");
        assert_eq!(page.bytes(0..8), [0u8; 8]);
        page.copy_within(8..16, 32);
        assert_eq!(
            &page[32..40],
            b"abcdefgh",
            "the whole-page view reads the same bytes"
        );
        let span = page.span(8..12);
        assert_eq!(span.bytes(), b"abcd");
        page.bytes_mut(16..24).fill(7);
        assert_eq!(
            span.bytes(),
            b"abcd",
            "writes elsewhere leave a span's bytes alone"
        );
    }

    #[test]
    fn a_region_page_gives_its_slot_and_bytes_back() {
        let region: &'static mut [u8] = Box::leak(vec![0u8; 32].into_boxed_slice());
        let mut page = PageMemory::region(3, region);
        page.bytes_mut(0..2).copy_from_slice(b"hi");
        assert_eq!(page.slot(), Some(3));
        let (slot, data) = page.into_region().expect("a region page");
        assert_eq!((slot, &data[..2]), (3, &b"hi"[..]));
        assert!(PageMemory::heap(16).into_region().is_none());
    }

    #[test]
    #[should_panic]
    fn a_view_past_the_page_panics() {
        let page = PageMemory::heap(16);
        let _ = page.bytes(8..17);
    }
}

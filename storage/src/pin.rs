//! Values pinned so that their chunks can be read after the partition lock is released.
//!
//! Owns: which items are pinned and by how many readers, the chunks of pinned items that were
//! unlinked meanwhile (they stay allocated until their last reader leaves), and
//! [`PinnedValue`], the reader's handle. Must not touch: page memory (`page.rs` makes the
//! spans) or the index; the partition asks this board before it frees, moves or writes a
//! chained item's chunks.
//!
//! Why: a large value is written to the socket straight from its chunks, with no lock held
//! across the syscall and no copy into the reply buffer. Only a chained item's continuation
//! chunks are pinned: nothing writes them after the item is written, while its head chunk's
//! header changes on every read (the reader copies the head chunk's part of the value).
//!
//! A reader drops its [`PinnedValue`] on any thread without the partition lock: the board has
//! its own small lock, and chunks left over by an unlinked item are freed by the partition the
//! next time it allocates or does its background work.
//!
//! Pinned memory is bounded: an item unlinked while pinned keeps its memory, and a page holding
//! a pinned chunk cannot be moved, so clients that ask for large values and never read them
//! could otherwise hold the cache's memory (every large store failing). Past a budget the
//! partition sets, a value is not pinned and the reader copies it, as before pinning existed.

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::item::NO_HANDLE;
use crate::page::PinnedSpan;

/// The pins of one partition.
#[derive(Debug, Default)]
pub(crate) struct PinBoard {
    table: Mutex<PinTable>,
    /// Items pinned now. Pins are made under the partition lock, so a partition that reads 0
    /// here knows none exists and skips the board's lock.
    pinned: AtomicUsize,
    /// Chunks waiting in [`PinTable::released`].
    released: AtomicUsize,
}

#[derive(Debug, Default)]
struct PinTable {
    items: Vec<PinnedItem>,
    /// Continuation chunks of unlinked items whose last reader has left: the partition frees
    /// them.
    released: Vec<u32>,
    /// Value bytes of the pinned items and of the released chunks not yet freed.
    bytes: usize,
    /// Of `bytes`, those of the released chunks.
    released_bytes: usize,
    next_id: u64,
}

#[derive(Debug)]
struct PinnedItem {
    id: u64,
    /// The item's head chunk; [`NO_HANDLE`] once the item is unlinked (the head chunk is freed
    /// then, and may hold another item).
    head: u32,
    /// The continuation chunks the readers read.
    chunks: Vec<u32>,
    /// The value bytes in them.
    bytes: usize,
    readers: u32,
}

impl PinBoard {
    /// Pins the continuation chunks `chunks` of the item at `head`, whose value parts are
    /// `spans` (`len` bytes in all). `None` if the item is not pinned yet and pinning it would
    /// take the board past `budget` bytes. The partition lock is held.
    pub(crate) fn pin(
        self: &Arc<Self>,
        head: u32,
        chunks: Vec<u32>,
        spans: Vec<PinnedSpan>,
        len: usize,
        budget: usize,
    ) -> Option<PinnedValue> {
        let mut table = self.table.lock();
        let table = &mut *table;
        let id = match table.items.iter_mut().find(|item| item.head == head) {
            Some(item) => {
                item.readers += 1;
                item.id
            }
            None if table.bytes + len > budget => return None,
            None => {
                let id = table.next_id;
                table.next_id += 1;
                table.items.push(PinnedItem {
                    id,
                    head,
                    chunks,
                    bytes: len,
                    readers: 1,
                });
                table.bytes += len;
                id
            }
        };
        self.pinned.store(table.items.len(), Ordering::Release);
        Some(PinnedValue {
            board: Arc::clone(self),
            id,
            spans,
            len,
        })
    }

    fn unpin(&self, id: u64) {
        let mut table = self.table.lock();
        let Some(at) = table.items.iter().position(|item| item.id == id) else {
            return;
        };
        table.items[at].readers -= 1;
        if table.items[at].readers > 0 {
            return;
        }
        let item = table.items.swap_remove(at);
        if item.head == NO_HANDLE {
            table.released.extend(item.chunks);
            table.released_bytes += item.bytes;
            self.released.store(table.released.len(), Ordering::Release);
        } else {
            table.bytes -= item.bytes;
        }
        self.pinned.store(table.items.len(), Ordering::Release);
    }

    /// The item at `head` is unlinked. True if it is pinned: its continuation chunks then stay
    /// allocated until its last reader leaves (see [`PinBoard::take_released`]); the caller
    /// frees only the head chunk.
    pub(crate) fn unlinked(&self, head: u32) -> bool {
        if self.pinned.load(Ordering::Acquire) == 0 {
            return false;
        }
        let mut table = self.table.lock();
        match table.items.iter_mut().find(|item| item.head == head) {
            Some(item) => {
                item.head = NO_HANDLE;
                true
            }
            None => false,
        }
    }

    /// Chunks of unlinked items that no reader holds any more, for the partition to free.
    pub(crate) fn take_released(&self) -> Vec<u32> {
        if self.released.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let mut table = self.table.lock();
        self.released.store(0, Ordering::Release);
        table.bytes -= table.released_bytes;
        table.released_bytes = 0;
        std::mem::take(&mut table.released)
    }

    /// The pages (`page_of` a chunk) holding a pinned item's head or continuation, or a
    /// released chunk not yet freed, sorted: such a page cannot be emptied. Empty, without
    /// taking the lock, when nothing is pinned.
    pub(crate) fn pinned_pages(&self, page_of: impl Fn(u32) -> u32) -> Vec<u32> {
        if self.pinned.load(Ordering::Acquire) == 0 && self.released.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let table = self.table.lock();
        let heads = table.items.iter().map(|item| item.head);
        let chunks = table
            .items
            .iter()
            .flat_map(|item| item.chunks.iter().copied());
        let mut pages: Vec<u32> = heads
            .filter(|&head| head != NO_HANDLE)
            .chain(chunks)
            .chain(table.released.iter().copied())
            .map(page_of)
            .collect();
        pages.sort_unstable();
        pages.dedup();
        pages
    }

    /// Whether a reader holds a pin now.
    pub(crate) fn has_readers(&self) -> bool {
        self.pinned.load(Ordering::Acquire) > 0
    }
}

/// The part of a value held in its continuation chunks, readable without the partition lock
/// while this lives. Dropping it (on any thread) releases the pin.
pub struct PinnedValue {
    board: Arc<PinBoard>,
    id: u64,
    spans: Vec<PinnedSpan>,
    len: usize,
}

impl PinnedValue {
    /// Bytes in all.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes, one slice per chunk, in order.
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.spans.iter().map(PinnedSpan::bytes)
    }
}

impl std::fmt::Debug for PinnedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedValue")
            .field("id", &self.id)
            .field("len", &self.len)
            .field("chunks", &self.spans.len())
            .finish()
    }
}

impl Drop for PinnedValue {
    fn drop(&mut self) {
        self.board.unpin(self.id);
    }
}

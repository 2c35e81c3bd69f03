//! An input buffer that reads land in without being zeroed first.
//!
//! Owns: a byte window `[start, end)` of received, unserved bytes over storage that stays
//! initialised, so a read into its spare room costs no memset (only growth does). Must not
//! touch: sockets or protocol; callers read into [`InputBuffer::spare`] and mark what arrived.

/// Received bytes not yet served.
#[derive(Debug, Default)]
pub struct InputBuffer {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl InputBuffer {
    /// An empty buffer owning no memory.
    pub const fn new() -> Self {
        InputBuffer {
            data: Vec::new(),
            start: 0,
            end: 0,
        }
    }

    /// An empty buffer with `capacity` bytes of room.
    pub fn with_capacity(capacity: usize) -> Self {
        InputBuffer {
            data: vec![0; capacity],
            start: 0,
            end: 0,
        }
    }

    /// The unserved bytes.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Bytes of memory held.
    pub fn capacity(&self) -> usize {
        self.data.len()
    }

    /// Room for at least `min` more bytes after the unserved ones: served bytes are dropped
    /// from the front first, and the storage grows only if that is not enough.
    pub fn spare(&mut self, min: usize) -> &mut [u8] {
        if self.data.len() - self.end < min {
            if self.start > 0 {
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.data.len() - self.end < min {
                let wanted = (self.end + min).max(self.data.len() * 2);
                self.data.resize(wanted, 0);
            }
        }
        &mut self.data[self.end..]
    }

    /// Marks `n` bytes of the spare room as received.
    #[inline]
    pub fn filled(&mut self, n: usize) {
        debug_assert!(self.end + n <= self.data.len());
        self.end = (self.end + n).min(self.data.len());
    }

    /// Marks `n` unserved bytes as served.
    #[inline]
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Appends bytes (a small leftover carried over from another buffer).
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        let room = self.spare(bytes.len());
        room[..bytes.len()].copy_from_slice(bytes);
        self.filled(bytes.len());
    }

    /// Forgets every byte, keeping the memory.
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_in_pieces_come_out_in_order() {
        let mut buffer = InputBuffer::new();
        for piece in [&b"get "[..], b"key", b"\r\n"] {
            buffer.spare(piece.len())[..piece.len()].copy_from_slice(piece);
            buffer.filled(piece.len());
        }
        assert_eq!(buffer.bytes(), b"get key\r\n");
        buffer.consume(4);
        assert_eq!(buffer.bytes(), b"key\r\n");
        buffer.consume(5);
        assert!(buffer.is_empty());
    }

    #[test]
    fn served_bytes_make_room_before_growth() {
        let mut buffer = InputBuffer::with_capacity(8);
        buffer.extend_from_slice(b"abcdefgh");
        buffer.consume(6);
        let room = buffer.spare(6).len();
        assert_eq!(buffer.capacity(), 8, "compacted instead of growing");
        assert!(room >= 6);
        buffer.extend_from_slice(b"123456");
        assert_eq!(buffer.bytes(), b"gh123456");
    }

    #[test]
    fn grows_for_a_large_block() {
        let mut buffer = InputBuffer::with_capacity(16);
        buffer.extend_from_slice(b"set k 0 0 100000\r\n");
        let room = buffer.spare(100_002).len();
        assert!(room >= 100_002);
        assert_eq!(buffer.bytes(), b"set k 0 0 100000\r\n");
    }
}

//! Log watchers (`watch [fetchers|mutations|evictions|connevents|...]`): connections that stop
//! sending commands and instead receive a line for each event of the streams they asked for,
//! in memcached's format (`ts=<sec>.<usec> gid=<n> type=item_get key=... status=...`).
//!
//! Owns: the registry of watchers (at most [`WATCHER_LIMIT`], as memcached), the event line
//! format, each watcher's bounded buffer and its `skipped=<n>` accounting, and waking the
//! worker that owns a watcher's connection. Must not touch: sockets (the owning worker writes
//! a watcher's buffer to its connection) or what an event means (callers describe it).
//!
//! When nobody watches, an event costs one relaxed atomic load ([`Watchers::wants`]). When
//! somebody does, the event is formatted once and copied into each interested watcher's buffer
//! under that buffer's lock; a full buffer drops the line and counts it, so a slow watcher
//! never slows the event loops, as memcached's per-watcher buffer does.

use ferrocache_protocol::WatchStreams;
use mio::Waker;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Most watchers at once (memcached's `WATCHER_LIMIT`).
pub const WATCHER_LIMIT: usize = 20;

/// Bytes a watcher's buffer holds before lines are skipped, unless `-o watcher_logbuf_size`
/// says otherwise (memcached's `LOGGER_WATCHER_BUF_SIZE`).
pub const WATCHER_BUFFER: usize = 256 << 10;

/// One watching connection's side of the registry.
#[derive(Debug)]
pub struct Watcher {
    streams: WatchStreams,
    buffer: Mutex<WatchBuffer>,
    /// Bytes the buffer may hold.
    limit: usize,
    /// Wakes the worker owning the connection when lines arrive in an empty buffer.
    waker: Option<Arc<Waker>>,
    /// The connection is gone: no more lines.
    closed: AtomicBool,
}

#[derive(Debug, Default)]
struct WatchBuffer {
    lines: Vec<u8>,
    skipped: u64,
}

impl Watcher {
    /// Moves the lines waiting for this watcher into `out`.
    pub fn drain_into(&self, out: &mut Vec<u8>) {
        let mut buffer = self.buffer.lock();
        out.extend_from_slice(&buffer.lines);
        buffer.lines.clear();
    }

    /// Offers a formatted line; false when it was skipped for lack of room.
    fn offer(&self, line: &[u8]) -> bool {
        let mut buffer = self.buffer.lock();
        let note = if buffer.skipped > 0 { 32 } else { 0 };
        if buffer.lines.len() + line.len() + note > self.limit {
            buffer.skipped += 1;
            return false;
        }
        let was_empty = buffer.lines.is_empty();
        if buffer.skipped > 0 {
            // memcached tells the watcher how many lines it missed before the next one.
            let skipped = std::mem::take(&mut buffer.skipped);
            buffer.lines.extend_from_slice(b"skipped=");
            buffer
                .lines
                .extend_from_slice(itoa::Buffer::new().format(skipped).as_bytes());
            buffer.lines.push(b'\n');
        }
        buffer.lines.extend_from_slice(line);
        drop(buffer);
        if was_empty && let Some(waker) = &self.waker {
            let _ = waker.wake();
        }
        true
    }
}

/// Why a connection could not become a watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchRefusal {
    /// `-W`.
    Disabled,
    /// [`WATCHER_LIMIT`] watchers already.
    TooMany,
}

/// Every watcher of the server.
#[derive(Debug)]
pub struct Watchers {
    /// Bytes each watcher's buffer holds (`-o watcher_logbuf_size`).
    buffer_limit: usize,
    /// The streams some live watcher wants (the union of their streams).
    wanted: AtomicU16,
    /// Global id of the next event.
    next_gid: AtomicU64,
    watchers: Mutex<Vec<Arc<Watcher>>>,
    /// Lines written into watchers' buffers (`log_watcher_sent`).
    pub sent: AtomicU64,
    /// Lines a full buffer dropped (`log_watcher_skipped`).
    pub skipped: AtomicU64,
}

impl Default for Watchers {
    fn default() -> Self {
        Watchers::with_buffer(WATCHER_BUFFER)
    }
}

impl Watchers {
    /// No watchers yet; each will buffer up to `buffer_limit` bytes of lines.
    pub fn with_buffer(buffer_limit: usize) -> Self {
        Watchers {
            buffer_limit,
            wanted: AtomicU16::new(0),
            next_gid: AtomicU64::new(0),
            watchers: Mutex::new(Vec::new()),
            sent: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        }
    }

    /// Bytes each watcher's buffer holds.
    pub fn buffer_limit(&self) -> usize {
        self.buffer_limit
    }

    /// Whether some watcher wants `stream`: callers test this before building an event.
    #[inline]
    pub fn wants(&self, stream: WatchStreams) -> bool {
        self.wanted.load(Ordering::Relaxed) & stream.bits() != 0
    }

    /// Registers a watcher of `streams`, woken through `waker`.
    pub fn add(
        &self,
        streams: WatchStreams,
        waker: Option<Arc<Waker>>,
    ) -> Result<Arc<Watcher>, WatchRefusal> {
        let mut watchers = self.watchers.lock();
        watchers.retain(|watcher| !watcher.closed.load(Ordering::Relaxed));
        if watchers.len() >= WATCHER_LIMIT {
            return Err(WatchRefusal::TooMany);
        }
        let watcher = Arc::new(Watcher {
            streams,
            buffer: Mutex::new(WatchBuffer::default()),
            limit: self.buffer_limit,
            waker,
            closed: AtomicBool::new(false),
        });
        watchers.push(Arc::clone(&watcher));
        self.recompute(&watchers);
        Ok(watcher)
    }

    /// The watcher's connection closed.
    pub fn remove(&self, watcher: &Arc<Watcher>) {
        watcher.closed.store(true, Ordering::Relaxed);
        let mut watchers = self.watchers.lock();
        watchers.retain(|other| !Arc::ptr_eq(other, watcher));
        self.recompute(&watchers);
    }

    /// Live watchers (`log_watchers`).
    pub fn count(&self) -> usize {
        self.watchers.lock().len()
    }

    fn recompute(&self, watchers: &[Arc<Watcher>]) {
        let wanted = watchers
            .iter()
            .fold(0, |bits, watcher| bits | watcher.streams.bits());
        self.wanted.store(wanted, Ordering::Relaxed);
    }

    /// Sends an event of `stream` to every watcher that wants it: `describe` writes what
    /// follows `ts=... gid=... ` (no newline). Call only after [`Watchers::wants`] said yes.
    pub fn emit(&self, stream: WatchStreams, describe: impl FnOnce(&mut Vec<u8>)) {
        let gid = self.next_gid.fetch_add(1, Ordering::Relaxed);
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut line = Vec::with_capacity(160);
        line.extend_from_slice(b"ts=");
        line.extend_from_slice(itoa::Buffer::new().format(since_epoch.as_secs()).as_bytes());
        line.push(b'.');
        // memcached prints the microseconds with %d: no zero padding.
        line.extend_from_slice(
            itoa::Buffer::new()
                .format(since_epoch.subsec_micros())
                .as_bytes(),
        );
        line.extend_from_slice(b" gid=");
        line.extend_from_slice(itoa::Buffer::new().format(gid).as_bytes());
        line.push(b' ');
        describe(&mut line);
        line.push(b'\n');
        let watchers = self.watchers.lock();
        for watcher in watchers.iter() {
            if !watcher.streams.intersects(stream) || watcher.closed.load(Ordering::Relaxed) {
                continue;
            }
            if watcher.offer(&line) {
                self.sent.fetch_add(1, Ordering::Relaxed);
            } else {
                self.skipped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Appends `key` percent-encoded as memcached's `uriencode` does: letters, digits and `-._~`
/// as they are, every other byte as `%XX`.
pub fn push_uriencoded(out: &mut Vec<u8>, key: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in key {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte);
        } else {
            out.extend_from_slice(&[
                b'%',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]);
        }
    }
}

/// Appends ` name=value` for a number.
pub fn push_field(out: &mut Vec<u8>, name: &[u8], value: impl itoa::Integer) {
    out.push(b' ');
    out.extend_from_slice(name);
    out.push(b'=');
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained(watcher: &Watcher) -> String {
        let mut out = Vec::new();
        watcher.drain_into(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn events_reach_only_the_watchers_of_their_stream() {
        let watchers = Watchers::default();
        assert!(!watchers.wants(WatchStreams::FETCHERS));
        let fetchers = watchers.add(WatchStreams::FETCHERS, None).unwrap();
        let both = watchers
            .add(WatchStreams::FETCHERS | WatchStreams::MUTATIONS, None)
            .unwrap();
        assert!(watchers.wants(WatchStreams::MUTATIONS));
        watchers.emit(WatchStreams::MUTATIONS, |line| {
            line.extend_from_slice(b"type=item_store")
        });
        watchers.emit(WatchStreams::FETCHERS, |line| {
            line.extend_from_slice(b"type=item_get")
        });
        let only_get = drained(&fetchers);
        assert!(only_get.starts_with("ts="), "{only_get}");
        assert!(only_get.ends_with(" gid=1 type=item_get\n"), "{only_get}");
        let two = drained(&both);
        assert_eq!(two.lines().count(), 2, "{two}");
        assert!(two.contains(" gid=0 type=item_store\n"));
        watchers.remove(&both);
        assert!(!watchers.wants(WatchStreams::MUTATIONS));
        assert_eq!(watchers.count(), 1);
    }

    #[test]
    fn a_full_buffer_skips_lines_and_says_how_many() {
        let watchers = Watchers::default();
        let watcher = watchers.add(WatchStreams::FETCHERS, None).unwrap();
        let long = vec![b'x'; 1000];
        for _ in 0..300 {
            watchers.emit(WatchStreams::FETCHERS, |line| line.extend_from_slice(&long));
        }
        let skipped = watchers.skipped.load(Ordering::Relaxed);
        assert!(skipped > 0);
        let first = drained(&watcher);
        assert!(first.len() <= WATCHER_BUFFER);
        watchers.emit(WatchStreams::FETCHERS, |line| {
            line.extend_from_slice(b"next")
        });
        let after = drained(&watcher);
        assert!(
            after.starts_with(&format!("skipped={skipped}\nts=")),
            "{after}"
        );
    }

    #[test]
    fn no_more_than_the_limit() {
        let watchers = Watchers::default();
        let kept: Vec<_> = (0..WATCHER_LIMIT)
            .map(|_| watchers.add(WatchStreams::FETCHERS, None).unwrap())
            .collect();
        assert_eq!(
            watchers.add(WatchStreams::FETCHERS, None).unwrap_err(),
            WatchRefusal::TooMany
        );
        watchers.remove(&kept[0]);
        assert!(watchers.add(WatchStreams::FETCHERS, None).is_ok());
    }

    #[test]
    fn keys_are_uriencoded_like_memcached() {
        let mut out = Vec::new();
        push_uriencoded(&mut out, b"a-b.c_d~e f:g%\x01");
        assert_eq!(out, b"a-b.c_d~e%20f%3Ag%25%01");
    }
}

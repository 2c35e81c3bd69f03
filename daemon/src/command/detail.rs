//! Per-prefix statistics (`stats detail on|off|dump`, `-D <delimiter>`): gets, hits, sets and
//! deletes counted by the part of each key before the delimiter, as memcached's
//! `stats_prefix.c` keeps them.
//!
//! Owns: the switch, the delimiter, the table of prefixes and its dump. Must not touch: which
//! commands count (the handlers call in: classic text and binary get/set/delete, as memcached;
//! meta commands do not count).
//!
//! Off by default; when off a request pays one relaxed atomic load. When on, every counted
//! request takes one lock shared by all threads, as memcached's `STATS_LOCK` does: the feature
//! is for finding which key families an application uses, not for a loaded production path.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    gets: u64,
    hits: u64,
    sets: u64,
    deletes: u64,
}

#[derive(Debug)]
pub struct PrefixStats {
    enabled: AtomicBool,
    delimiter: u8,
    table: Mutex<BTreeMap<Box<[u8]>, Counts>>,
}

impl PrefixStats {
    /// Counting starts switched on when the delimiter was given on the command line (`-D`).
    pub fn new(delimiter: u8, enabled: bool) -> Self {
        PrefixStats {
            enabled: AtomicBool::new(enabled),
            delimiter,
            table: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn record_get(&self, key: &[u8], hit: bool) {
        self.record(key, |counts| {
            counts.gets += 1;
            counts.hits += u64::from(hit);
        });
    }

    pub fn record_set(&self, key: &[u8]) {
        self.record(key, |counts| counts.sets += 1);
    }

    pub fn record_delete(&self, key: &[u8]) {
        self.record(key, |counts| counts.deletes += 1);
    }

    #[inline]
    fn record(&self, key: &[u8], count: impl FnOnce(&mut Counts)) {
        if !self.is_enabled() {
            return;
        }
        // memcached stops at a NUL too, and counts nothing for a key without the delimiter.
        let key = key.split(|&b| b == 0).next().unwrap_or(key);
        let Some(end) = key.iter().position(|&b| b == self.delimiter) else {
            return;
        };
        let prefix = &key[..end];
        let mut table = self.table.lock();
        match table.get_mut(prefix) {
            Some(counts) => count(counts),
            None => {
                let mut counts = Counts::default();
                count(&mut counts);
                table.insert(prefix.into(), counts);
            }
        }
    }

    /// `stats detail dump`: one `PREFIX` line per prefix (in byte order), then `END`. The
    /// figures stay when counting is switched off, as in memcached.
    pub fn dump(&self, out: &mut Vec<u8>) {
        let table = self.table.lock();
        for (prefix, counts) in table.iter() {
            out.extend_from_slice(b"PREFIX ");
            out.extend_from_slice(prefix);
            for (name, value) in [
                (&b" get "[..], counts.gets),
                (b" hit ", counts.hits),
                (b" set ", counts.sets),
                (b" del ", counts.deletes),
            ] {
                out.extend_from_slice(name);
                out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"END\r\n");
    }

    /// `stats reset` forgets every prefix.
    pub fn clear(&self) {
        self.table.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(stats: &PrefixStats) -> String {
        let mut out = Vec::new();
        stats.dump(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn counts_by_the_part_before_the_delimiter_only_while_on() {
        let stats = PrefixStats::new(b':', false);
        stats.record_get(b"user:1", true);
        assert_eq!(dump(&stats), "END\r\n");
        stats.set_enabled(true);
        stats.record_get(b"user:1", true);
        stats.record_get(b"user:2", false);
        stats.record_set(b"user:3");
        stats.record_delete(b"session:9");
        stats.record_set(b"plain");
        stats.set_enabled(false);
        stats.record_set(b"user:4");
        assert_eq!(
            dump(&stats),
            "PREFIX session get 0 hit 0 set 0 del 1\r\n\
             PREFIX user get 2 hit 1 set 1 del 0\r\nEND\r\n"
        );
        stats.clear();
        assert_eq!(dump(&stats), "END\r\n");
    }

    #[test]
    fn the_delimiter_is_configurable() {
        let stats = PrefixStats::new(b'/', true);
        stats.record_set(b"a/b:c");
        stats.record_set(b"a:b");
        assert_eq!(dump(&stats), "PREFIX a get 0 hit 0 set 1 del 0\r\nEND\r\n");
    }
}

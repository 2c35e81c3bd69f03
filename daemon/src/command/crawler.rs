//! The LRU crawler's operator commands: `lru_crawler metadump|crawl|enable|disable|sleep|
//! tocrawl`, and `stats cachedump` (the other way memcached lists items).
//!
//! Owns: whether the crawler is on (`-o no_lru_crawler`, `lru_crawler enable|disable`; the
//! workers' background reclaim follows it), memcached's refusals and their order, and walking
//! every partition for a listing or a sweep. Must not touch: the bytes of a metadump line (the
//! front writes each item it is handed) or how a partition walks its chunks (storage's).
//!
//! No walk holds a lock for long: each partition is walked in slices of [`SLICE_CHUNKS`]
//! chunks, its lock taken and released per slice, so a dump of a large cache delays other
//! clients of a partition by one slice at a time, never by the whole dump. A metadump is also
//! resumable ([`DumpCursor`]), so the text front can stream it at its output high-water mark
//! instead of building the whole listing in memory.

use super::Executor;
use ferrocache_protocol::CrawlTarget;
use ferrocache_protocol::reply;
use ferrocache_storage::{ClassSet, ItemRef, WalkCursor};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Chunks examined per lock of a partition during a walk: tens of microseconds of work.
pub const SLICE_CHUNKS: usize = 1024;

/// items.c's `item_cachedump` stops before its reply passes 2 MB.
const CACHEDUMP_MAX_BYTES: usize = 2 * 1024 * 1024;

/// The largest `lru_crawler sleep`, in microseconds (one second).
const SLEEP_MAX_MICROS: u32 = 1_000_000;

/// The crawler's run-time settings, shared by every connection and worker.
#[derive(Debug)]
pub struct CrawlerState {
    enabled: AtomicBool,
    sleep: AtomicU32,
    tocrawl: AtomicU32,
}

impl CrawlerState {
    /// memcached's defaults (sleep 100 µs, no per-run cap), on or off as the flags say.
    pub fn new(enabled: bool) -> Self {
        CrawlerState {
            enabled: AtomicBool::new(enabled),
            sleep: AtomicU32::new(100),
            tocrawl: AtomicU32::new(0),
        }
    }

    /// Whether the crawler runs: background reclaim, `crawl` and `metadump` need it.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// `lru_crawler_sleep` as `stats settings` reports it (microseconds).
    pub fn sleep(&self) -> u32 {
        self.sleep.load(Ordering::Relaxed)
    }

    /// `lru_crawler_tocrawl` as `stats settings` reports it.
    pub fn tocrawl(&self) -> u32 {
        self.tocrawl.load(Ordering::Relaxed)
    }
}

/// Why an `lru_crawler` command was refused, in memcached's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrawlerRefusal {
    /// The crawler is off (`CLIENT_ERROR lru crawler disabled`).
    Disabled,
    /// `-X` (`ERROR metadump not allowed`).
    DumpDisabled,
    /// `BADCLASS invalid class id`.
    BadClass,
    /// The class list named no class (`NOTSTARTED no items to crawl`).
    NotStarted,
    /// `crawl hash`: memcached walks the hash table only to dump (`ERROR an unknown error
    /// happened`).
    Unsupported,
    /// `enable` while it runs (`ERROR failed to start lru crawler thread`).
    AlreadyRunning,
    /// `sleep` above one second.
    SleepTooLong,
}

impl CrawlerRefusal {
    /// memcached's reply line.
    pub fn reply(self) -> &'static [u8] {
        match self {
            CrawlerRefusal::Disabled => reply::CLIENT_ERROR_CRAWLER_DISABLED,
            CrawlerRefusal::DumpDisabled => reply::METADUMP_DISABLED,
            CrawlerRefusal::BadClass => reply::CRAWLER_BADCLASS,
            CrawlerRefusal::NotStarted => reply::CRAWLER_NOTSTARTED,
            CrawlerRefusal::Unsupported => reply::CRAWLER_UNKNOWN_ERROR,
            CrawlerRefusal::AlreadyRunning => reply::CRAWLER_START_FAILED,
            CrawlerRefusal::SleepTooLong => reply::CLIENT_ERROR_CRAWLER_SLEEP,
        }
    }
}

/// Where a metadump stands across partitions, kept by the connection between writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DumpCursor {
    partition: usize,
    walk: WalkCursor,
}

/// The classes a crawl target names; `hash` (every item) only where `hash_allowed`.
fn classes_of(target: CrawlTarget, hash_allowed: bool) -> Result<ClassSet, CrawlerRefusal> {
    match target {
        CrawlTarget::All => Ok(ClassSet::ALL),
        CrawlTarget::Hash if hash_allowed => Ok(ClassSet::ALL),
        CrawlTarget::Hash => Err(CrawlerRefusal::Unsupported),
        CrawlTarget::BadClass => Err(CrawlerRefusal::BadClass),
        CrawlTarget::Classes(0) => Err(CrawlerRefusal::NotStarted),
        CrawlTarget::Classes(bits) => Ok((1..64)
            .filter(|id| bits & (1 << id) != 0)
            .fold(ClassSet::NONE, ClassSet::with)),
    }
}

impl Executor<'_> {
    /// `lru_crawler metadump <target>`: the classes to dump, or memcached's refusal, checked
    /// in its order (crawler off, then `-X`, then the argument).
    pub fn metadump_classes(&self, target: CrawlTarget) -> Result<ClassSet, CrawlerRefusal> {
        if !self.shared.crawler.enabled() {
            return Err(CrawlerRefusal::Disabled);
        }
        if !self.shared.settings.dump_enabled {
            return Err(CrawlerRefusal::DumpDisabled);
        }
        classes_of(target, true)
    }

    /// One slice of a metadump: hands `visit` the live items of `classes` in the next
    /// [`SLICE_CHUNKS`] chunks from `cursor`, under one partition's lock. Returns true once
    /// every partition has been walked.
    pub fn metadump_slice(
        &self,
        cursor: &mut DumpCursor,
        classes: ClassSet,
        mut visit: impl FnMut(&ItemRef<'_>),
    ) -> bool {
        let cache = &self.shared.cache;
        if cursor.partition < cache.partition_count() {
            let next = cache.partition(cursor.partition).lock().walk_items(
                cursor.walk,
                SLICE_CHUNKS,
                classes,
                &mut visit,
            );
            match next {
                Some(walk) => cursor.walk = walk,
                None => {
                    cursor.partition += 1;
                    cursor.walk = WalkCursor::default();
                }
            }
        }
        cursor.partition >= cache.partition_count()
    }

    /// `lru_crawler crawl <target>`: reclaims the expired and flushed items of those classes
    /// now. memcached schedules this on its crawler thread and answers `OK` at once; here the
    /// sweep runs before the answer, slice by slice, so it is done when the client hears `OK`.
    pub fn crawl(&self, target: CrawlTarget) -> Result<(), CrawlerRefusal> {
        if !self.shared.crawler.enabled() {
            return Err(CrawlerRefusal::Disabled);
        }
        let classes = classes_of(target, false)?;
        let mut cursor = DumpCursor::default();
        while !self.metadump_slice(&mut cursor, classes, |_| {}) {}
        Ok(())
    }

    /// `lru_crawler enable`: memcached refuses while the crawler already runs.
    pub fn crawler_enable(&self) -> Result<(), CrawlerRefusal> {
        if self.shared.crawler.enabled.swap(true, Ordering::Relaxed) {
            return Err(CrawlerRefusal::AlreadyRunning);
        }
        Ok(())
    }

    /// `lru_crawler disable`: stops background reclaim (and `crawl`/`metadump`); disabling a
    /// stopped crawler is fine, as in memcached.
    pub fn crawler_disable(&self) {
        self.shared.crawler.enabled.store(false, Ordering::Relaxed);
    }

    /// `lru_crawler sleep <µs>`: recorded for `stats settings`; the workers pace their
    /// reclaim by their own budget, not by a sleep.
    pub fn crawler_sleep(&self, micros: u32) -> Result<(), CrawlerRefusal> {
        if micros > SLEEP_MAX_MICROS {
            return Err(CrawlerRefusal::SleepTooLong);
        }
        self.shared.crawler.sleep.store(micros, Ordering::Relaxed);
        Ok(())
    }

    /// `lru_crawler tocrawl <n>`: recorded for `stats settings`.
    pub fn crawler_tocrawl(&self, items: u32) {
        self.shared.crawler.tocrawl.store(items, Ordering::Relaxed);
    }

    /// `stats cachedump <class> <limit>`: `ITEM <key> [<bytes> b; <exptime> s]` lines for up
    /// to `limit` live items of the class (0: no limit), then `END`, never over memcached's
    /// 2 MB. memcached lists one segment of the class's LRU (COLD); ferrocached has one
    /// eviction order per class and lists the class's items in memory order.
    pub fn cachedump(&self, class: u32, limit: u32) -> Vec<u8> {
        let mut report = Vec::new();
        let Ok(class) = u8::try_from(class) else {
            report.extend_from_slice(reply::END);
            return report;
        };
        let classes = ClassSet::NONE.with(u32::from(class));
        let mut line = Vec::with_capacity(300);
        let mut shown = 0u32;
        let mut full = false;
        let mut cursor = DumpCursor::default();
        while !full && (limit == 0 || shown < limit) {
            let done = self.metadump_slice(&mut cursor, classes, |item| {
                if full || (limit != 0 && shown >= limit) {
                    return;
                }
                line.clear();
                reply::cachedump_item(
                    &mut line,
                    item.key(),
                    item.value_len(),
                    item.expires_at_unix(),
                );
                // As memcached: stop before a line that would leave no room for `END\r\n\0`.
                if report.len() + line.len() + 6 > CACHEDUMP_MAX_BYTES {
                    full = true;
                    return;
                }
                report.extend_from_slice(&line);
                shown += 1;
            });
            if done {
                break;
            }
        }
        report.extend_from_slice(reply::END);
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_classes_or_are_refused_as_memcached_refuses_them() {
        assert_eq!(classes_of(CrawlTarget::All, false), Ok(ClassSet::ALL));
        assert_eq!(classes_of(CrawlTarget::Hash, true), Ok(ClassSet::ALL));
        assert_eq!(
            classes_of(CrawlTarget::Hash, false),
            Err(CrawlerRefusal::Unsupported)
        );
        assert_eq!(
            classes_of(CrawlTarget::Classes(0), true),
            Err(CrawlerRefusal::NotStarted)
        );
        let set = classes_of(CrawlTarget::Classes(1 << 3 | 1 << 63), true).unwrap();
        assert!(set.contains(3) && set.contains(63) && !set.contains(4));
    }
}

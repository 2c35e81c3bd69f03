//! Server-level counters: connections (kept by the acceptor) and per-thread request and byte
//! counts (kept by each worker), with `stats reset` done by remembering a baseline.
//!
//! Owns: the counters memcached reports that are about connections and threads rather than
//! items (items are counted inside each storage partition). Must not touch: formatting.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// A counter with one writer (the thread that owns it) and any number of readers. The writer
/// adds with a plain load and store, so counting costs no locked instruction on the hot path.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`; only the owning thread may call it.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    #[inline]
    pub fn incr(&self) {
        self.add(1);
    }

    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

macro_rules! thread_counters {
    ($($(#[$meta:meta])* $name:ident,)*) => {
        /// Counters one worker thread keeps; aligned to keep threads off each other's lines.
        #[derive(Debug, Default)]
        #[repr(align(128))]
        pub struct ThreadStats {
            $($(#[$meta])* pub $name: Counter,)*
        }

        /// A snapshot of [`ThreadStats`], summed over threads.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct ThreadTotals {
            $(pub $name: u64,)*
        }

        impl ThreadTotals {
            pub fn add(&mut self, stats: &ThreadStats) {
                $(self.$name += stats.$name.get();)*
            }

            /// `self - baseline`, for counters reported since the last `stats reset`.
            pub fn since(&self, baseline: &ThreadTotals) -> ThreadTotals {
                ThreadTotals { $($name: self.$name.wrapping_sub(baseline.$name),)* }
            }
        }
    };
}

thread_counters! {
    bytes_read,
    bytes_written,
    /// `flush_all` commands.
    cmd_flush,
    /// Meta commands (mg, ms, md, ma, mn, me).
    cmd_meta,
    /// `config get cluster` (and its pre-1.4.14 form, `get AmazonElastiCache:cluster`).
    cmd_config_get,
    /// `config set cluster`.
    cmd_config_set,
    /// Times a connection gave way to others after `-R` requests.
    conn_yields,
    /// Connections closed for idling longer than `idle_timeout`.
    idle_kicks,
    /// Background maintenance slices run on the worker's partitions.
    maintenance_slices,
    /// Credential checks (ASCII logins), and those that failed.
    auth_cmds,
    auth_errors,
}

/// Counters about connections, kept by the acceptor and the workers.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    pub curr_connections: AtomicUsize,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    /// Most connections open at once (memcached's `connection_structures`).
    pub connection_structures: AtomicUsize,
    /// Times accepting stopped because the process ran out of file descriptors.
    pub listen_disabled_num: AtomicU64,
    /// Microseconds accepting was stopped for (memcached's `time_in_listen_disabled_us`).
    pub listen_disabled_us: AtomicU64,
    pub accepting: AtomicBool,
}

impl ConnectionStats {
    /// Counts a connection taken in; false if the limit is reached (then it is rejected).
    pub fn admit(&self, limit: usize) -> bool {
        self.total_connections.fetch_add(1, Ordering::Relaxed);
        let admitted =
            self.curr_connections
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < limit).then_some(n + 1)
                });
        match admitted {
            Ok(previous) => {
                self.connection_structures
                    .fetch_max(previous + 1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                self.rejected_connections.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Counts a connection closed.
    pub fn closed(&self) {
        self.curr_connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Values as they were at the last `stats reset`; reports subtract them.
#[derive(Debug, Default)]
pub struct Baseline {
    inner: Mutex<BaselineValues>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct BaselineValues {
    pub threads: ThreadTotals,
    pub total_connections: u64,
    pub rejected_connections: u64,
    pub listen_disabled_num: u64,
    pub listen_disabled_us: u64,
}

impl Baseline {
    pub fn get(&self) -> BaselineValues {
        *self.inner.lock()
    }

    pub fn set(&self, values: BaselineValues) {
        *self.inner.lock() = values;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_over_the_limit_are_rejected_and_counted() {
        let stats = ConnectionStats::default();
        assert!(stats.admit(2));
        assert!(stats.admit(2));
        assert!(!stats.admit(2));
        stats.closed();
        assert!(stats.admit(2));
        assert_eq!(stats.total_connections.load(Ordering::Relaxed), 4);
        assert_eq!(stats.rejected_connections.load(Ordering::Relaxed), 1);
        assert_eq!(stats.connection_structures.load(Ordering::Relaxed), 2);
        assert_eq!(stats.curr_connections.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn totals_since_a_baseline() {
        let stats = ThreadStats::default();
        stats.bytes_read.add(10);
        let mut before = ThreadTotals::default();
        before.add(&stats);
        stats.bytes_read.add(5);
        stats.cmd_flush.incr();
        let mut after = ThreadTotals::default();
        after.add(&stats);
        let since = after.since(&before);
        assert_eq!((since.bytes_read, since.cmd_flush), (5, 1));
    }
}

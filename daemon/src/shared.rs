//! State every thread of the daemon reads: settings, the cache, counters, the registry of open
//! connections for `stats conns`, and the flags that coordinate shutdown.
//!
//! Owns: the one `Arc` the acceptor and workers share. Must not touch: per-connection buffers
//! (each worker owns its connections).

use crate::auth::AsciiAuth;
use crate::auth::sasl::SaslAuth;
use crate::cache::Cache;
use crate::cli::Settings;
use crate::cluster::Cluster;
use crate::command::crawler::CrawlerState;
use crate::command::detail::PrefixStats;
use crate::command::slabs::SlabsState;
use crate::counters::{Baseline, BaselineValues, ConnectionStats, ThreadStats, ThreadTotals};
use crate::latency::Latency;
use crate::tls::ServerTls;
use crate::watch::Watchers;
use mio::Waker;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

/// What `stats conns` shows of a connection; the owning worker updates it.
#[derive(Debug)]
pub struct ConnInfo {
    pub fd: i32,
    pub peer: String,
    /// Clock second of the last request.
    pub last_cmd: AtomicU32,
    pub state: AtomicU8,
}

/// `ConnInfo::state` values, named as memcached's connection states: an idle connection is
/// `conn_new_cmd`, the one being served `conn_parse_cmd`, one waiting for the rest of a data
/// block `conn_nread`, one discarding a refused block `conn_swallow`, one with replies unsent
/// `conn_mwrite`, a log watcher `conn_watch`. None is kept for `conn_closing`: a closing
/// connection shows `conn_mwrite` while its last replies go out, and leaves the registry when
/// it closes.
pub mod conn_state {
    pub const NEW_CMD: u8 = 0;
    pub const NREAD: u8 = 1;
    pub const WRITE: u8 = 2;
    pub const PARSE_CMD: u8 = 3;
    pub const SWALLOW: u8 = 4;
    pub const WATCH: u8 = 5;

    pub fn name(state: u8) -> &'static str {
        match state {
            NREAD => "conn_nread",
            WRITE => "conn_mwrite",
            PARSE_CMD => "conn_parse_cmd",
            SWALLOW => "conn_swallow",
            WATCH => "conn_watch",
            _ => "conn_new_cmd",
        }
    }
}

/// The connections one worker holds, by its connection key.
#[derive(Debug, Default)]
pub struct ConnRegistry {
    conns: Mutex<HashMap<usize, Arc<ConnInfo>>>,
}

impl ConnRegistry {
    pub fn insert(&self, key: usize, info: Arc<ConnInfo>) {
        self.conns.lock().insert(key, info);
    }

    pub fn remove(&self, key: usize) {
        self.conns.lock().remove(&key);
    }

    pub fn snapshot(&self) -> Vec<Arc<ConnInfo>> {
        self.conns.lock().values().cloned().collect()
    }

    /// Connections the worker holds now.
    pub fn open_connections(&self) -> usize {
        self.conns.lock().len()
    }
}

/// A listening socket as `stats conns` shows it.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    pub fd: i32,
    pub name: String,
}

#[derive(Debug)]
pub struct Shared {
    pub settings: Settings,
    pub cache: Cache,
    pub connections: ConnectionStats,
    pub threads: Box<[ThreadStats]>,
    /// Each worker's latency histograms, by command family.
    pub latency: Latency,
    pub baseline: Baseline,
    pub registries: Box<[ConnRegistry]>,
    pub listeners: Vec<ListenerInfo>,
    /// Clock second at which each worker last went round its loop (the watchdog reads it).
    pub heartbeats: Box<[AtomicU32]>,
    pub verbosity: AtomicU8,
    /// `stats detail`: per-prefix figures.
    pub detail: PrefixStats,
    /// `watch`: the log watchers.
    pub watchers: Watchers,
    /// The LRU crawler's run-time switch and settings (`lru_crawler ...`).
    pub crawler: CrawlerState,
    /// `slabs automove`'s level and ratio, as `stats settings` reports them.
    pub slabs: SlabsState,
    /// The cluster's node list this node serves (`--cluster-config`), if any.
    pub cluster: Option<Cluster>,
    /// Each worker's waker, by worker id (set once the workers exist), so that an event on
    /// one thread can wake the worker writing to a watcher.
    pub worker_wakers: OnceLock<Box<[Arc<Waker>]>>,
    /// Set once shutdown begins; workers finish what is in flight and exit.
    pub stopping: AtomicBool,
    /// Set by the `shutdown` command; the acceptor starts the shutdown.
    pub shutdown_requested: AtomicBool,
    /// Wakes the acceptor (for `shutdown`).
    pub acceptor_waker: Arc<Waker>,
    /// `-Z`: the TLS config and counters.
    pub tls: Option<ServerTls>,
    /// `-Y`: the credentials logins are checked against.
    pub auth: Option<AsciiAuth>,
    /// `-S`: the SASL password database binary logins are checked against.
    pub sasl: Option<SaslAuth>,
}

impl Shared {
    pub fn new(
        settings: Settings,
        cache: Cache,
        cluster: Option<Cluster>,
        listeners: Vec<ListenerInfo>,
        acceptor_waker: Arc<Waker>,
    ) -> Self {
        let threads = settings.threads;
        let latency = Latency::new(threads, settings.latency_histograms);
        Shared {
            verbosity: AtomicU8::new(settings.verbosity),
            detail: PrefixStats::new(settings.prefix_delimiter, settings.detail_enabled),
            watchers: Watchers::with_buffer(settings.watcher_buffer),
            crawler: CrawlerState::new(settings.background_reclaim),
            slabs: SlabsState::default(),
            cluster,
            worker_wakers: OnceLock::new(),
            settings,
            cache,
            connections: ConnectionStats::default(),
            threads: (0..threads).map(|_| ThreadStats::default()).collect(),
            latency,
            baseline: Baseline::default(),
            registries: (0..threads).map(|_| ConnRegistry::default()).collect(),
            listeners,
            heartbeats: (0..threads).map(|_| AtomicU32::new(0)).collect(),
            stopping: AtomicBool::new(false),
            shutdown_requested: AtomicBool::new(false),
            acceptor_waker,
            tls: None,
            auth: None,
            sasl: None,
        }
    }

    /// The TLS and authentication state, loaded at start-up before the threads start.
    pub fn with_security(mut self, tls: Option<ServerTls>, auth: Option<AsciiAuth>) -> Self {
        self.tls = tls;
        self.auth = auth;
        self
    }

    /// `-S`: the SASL password database, checked readable at start-up.
    pub fn with_sasl(mut self, sasl: Option<SaslAuth>) -> Self {
        self.sasl = sasl;
        self
    }

    /// SIGHUP: certificates and the auth file are read again; what fails keeps what is in
    /// use, and the log says why.
    pub fn reload(&self) {
        if let Some(tls) = &self.tls {
            match tls.refresh(self.cache.clock.now()) {
                Ok(()) => log::info!("SIGHUP: TLS certificates reloaded"),
                Err(error) => log::error!("SIGHUP: keeping the TLS certificates in use: {error}"),
            }
        }
        if let Some(auth) = &self.auth {
            match auth.reload() {
                Ok(count) => log::info!("SIGHUP: auth file reloaded ({count} entries)"),
                Err(error) => log::error!("SIGHUP: keeping the auth entries in use: {error}"),
            }
        }
        if let Some(cluster) = &self.cluster {
            match cluster.reload() {
                Ok(_) => log::info!("SIGHUP: cluster config re-read"),
                Err(error) => log::warn!("{error}; keeping the node list in force"),
            }
        }
    }

    /// Thread counters summed, since the last `stats reset`.
    pub fn thread_totals(&self) -> ThreadTotals {
        let mut totals = ThreadTotals::default();
        for stats in self.threads.iter() {
            totals.add(stats);
        }
        totals.since(&self.baseline.get().threads)
    }

    /// `stats reset`: counters start again from zero (gauges such as items do not).
    pub fn reset_stats(&self) {
        let mut totals = ThreadTotals::default();
        for stats in self.threads.iter() {
            totals.add(stats);
        }
        self.baseline.set(BaselineValues {
            threads: totals,
            total_connections: self.connections.total_connections.load(Ordering::Relaxed),
            rejected_connections: self
                .connections
                .rejected_connections
                .load(Ordering::Relaxed),
            listen_disabled_num: self.connections.listen_disabled_num.load(Ordering::Relaxed),
            listen_disabled_us: self.connections.listen_disabled_us.load(Ordering::Relaxed),
        });
        self.cache.reset_stats();
        self.latency.reset();
        self.detail.clear();
        if let Some(tls) = &self.tls {
            tls.stats.reset();
        }
    }

    /// Asks the acceptor to shut the server down (the `shutdown` command).
    pub fn request_shutdown(&self) {
        self.shutdown_requested.store(true, Ordering::Release);
        let _ = self.acceptor_waker.wake();
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }
}

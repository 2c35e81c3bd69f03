//! Statistics: what `stats` and each of its groups answer, with memcached's names and
//! meanings, gathered from the cache, the counters and the settings; `stats reset`, `stats
//! detail`, `stats sizes`, `stats cachedump`, and ferrocached's own `stats latency`.
//!
//! Owns: the list of names and where each value comes from, and memcached's refusals of the
//! groups. Must not touch: the wire format (each front writes the pairs as its protocol
//! does) or any counter's upkeep.

use super::Executor;
use crate::latency::Family;
use crate::shared::{Shared, conn_state};
use ferrocache_protocol::{DetailAction, ProtocolError, StatsGroup};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// What a `stats` request answers.
#[derive(Debug)]
pub enum StatsOutcome {
    /// Name-value pairs, then the protocol's terminator.
    Pairs(Stats),
    /// `stats reset` is done (`RESET`).
    Reset,
    /// `stats detail on|off` is done (`OK`).
    Done,
    /// A report in memcached's own text form, terminator included (`stats detail dump`,
    /// `stats cachedump`).
    Report(Vec<u8>),
    /// Refused with this error.
    Refused(StatsRefusal),
    /// A group memcached does not have (`ERROR`).
    Unknown,
}

/// Why a `stats` group was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsRefusal {
    /// `stats detail` without on, off or dump.
    DetailUsage,
    /// `-X`: dumping is disabled.
    DumpDisabled,
    /// The arguments did not parse.
    Protocol(ProtocolError),
}

impl Executor<'_> {
    pub fn stats(&self, group: StatsGroup<'_>) -> StatsOutcome {
        let shared = self.shared;
        StatsOutcome::Pairs(match group {
            StatsGroup::General => general(shared),
            StatsGroup::Settings => settings(shared),
            StatsGroup::Items => items(shared),
            StatsGroup::Slabs => slabs(shared),
            StatsGroup::Conns => conns(shared),
            StatsGroup::Latency => latency(shared),
            // Item size histograms are not kept (memcached's default too).
            StatsGroup::Sizes | StatsGroup::SizesEnable | StatsGroup::SizesDisable => {
                vec![("sizes_status".to_string(), Value::Static("disabled"))]
            }
            StatsGroup::Reset => {
                shared.reset_stats();
                return StatsOutcome::Reset;
            }
            StatsGroup::Detail(action) => {
                let detail = &shared.detail;
                return match action {
                    Some(DetailAction::On) => {
                        detail.set_enabled(true);
                        StatsOutcome::Done
                    }
                    Some(DetailAction::Off) => {
                        detail.set_enabled(false);
                        StatsOutcome::Done
                    }
                    Some(DetailAction::Dump) => {
                        let mut report = Vec::new();
                        detail.dump(&mut report);
                        StatsOutcome::Report(report)
                    }
                    None => StatsOutcome::Refused(StatsRefusal::DetailUsage),
                };
            }
            StatsGroup::Cachedump(arguments) => {
                if !shared.settings.dump_enabled {
                    return StatsOutcome::Refused(StatsRefusal::DumpDisabled);
                }
                return match arguments {
                    Ok((class, limit)) => StatsOutcome::Report(self.cachedump(class, limit)),
                    Err(error) => StatsOutcome::Refused(StatsRefusal::Protocol(error)),
                };
            }
            StatsGroup::Other(_) => return StatsOutcome::Unknown,
        })
    }
}

/// A stat's value as it is printed.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(u64),
    Signed(i64),
    Text(String),
    Static(&'static str),
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Number(n)
    }
}

impl From<usize> for Value {
    fn from(n: usize) -> Self {
        Value::Number(n as u64)
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::Number(u64::from(n))
    }
}

impl From<u16> for Value {
    fn from(n: u16) -> Self {
        Value::Number(u64::from(n))
    }
}

impl From<&'static str> for Value {
    fn from(text: &'static str) -> Self {
        Value::Static(text)
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(text)
    }
}

impl From<bool> for Value {
    fn from(flag: bool) -> Self {
        Value::Number(u64::from(flag))
    }
}

impl Value {
    /// The bytes after the name on the `STAT` line.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Value::Number(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
            Value::Signed(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
            Value::Text(text) => out.extend_from_slice(text.as_bytes()),
            Value::Static(text) => out.extend_from_slice(text.as_bytes()),
        }
    }
}

pub type Stats = Vec<(String, Value)>;

fn push(stats: &mut Stats, name: &str, value: impl Into<Value>) {
    stats.push((name.to_string(), value.into()));
}

/// `seconds.microseconds`, as memcached prints rusage.
fn seconds(time: (i64, i64)) -> String {
    format!("{}.{:06}", time.0, time.1)
}

/// Keys memcached reports about machinery ferrocached does not have, with the value memcached
/// reports when that machinery has nothing to count (the README's list of differences says
/// why each one is zero here).
fn zeros(stats: &mut Stats, names: &[&str]) {
    for name in names {
        push(stats, name, 0u64);
    }
}

/// Descriptors the process holds besides client connections (memcached's `reserved_fds`):
/// listeners, event loops, wakers, the signal pipe, stdio.
fn reserved_descriptors(connections: usize) -> u64 {
    // The directory handle read_dir opens is one of the entries it lists.
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count().saturating_sub(1));
    open.saturating_sub(connections) as u64
}

/// `stats`: the general statistics, in memcached 1.6.18's order, with `ferrocache_version`
/// added after `version`.
pub fn general(shared: &Shared) -> Stats {
    let clock = &shared.cache.clock;
    let items = shared.cache.stats();
    let threads = shared.thread_totals();
    let baseline = shared.baseline.get();
    let connections = &shared.connections;
    let settings = &shared.settings;
    let (user, system) = crate::os::cpu_times();
    let pool = &shared.cache.pool;
    let hash_capacity = items.hash_capacity.max(1);
    let curr_connections = connections.curr_connections.load(Ordering::Relaxed);
    let mut stats = Stats::with_capacity(96);
    push(&mut stats, "pid", std::process::id());
    push(&mut stats, "uptime", clock.uptime());
    push(&mut stats, "time", Value::Signed(clock.unix_now()));
    push(&mut stats, "version", crate::VERSION);
    push(&mut stats, "ferrocache_version", env!("CARGO_PKG_VERSION"));
    // How this process found the cache (memcached 1.6 has no such stats; README "Restart and
    // upgrade"): warm from a saved memory, or cold and why.
    let restart = &shared.cache.start.report;
    let warm = restart.as_ref().is_some_and(|report| report.is_warm());
    push(&mut stats, "restart_warm", u64::from(warm));
    push(&mut stats, "restart_cold", u64::from(!warm));
    push(
        &mut stats,
        "restart_items_recovered",
        restart.as_ref().map_or(0, |report| report.items_recovered),
    );
    push(
        &mut stats,
        "restart_cold_reason",
        shared.cache.start.cold_code(),
    );
    // The event loops are mio's; there is no libevent to name.
    push(&mut stats, "libevent", "none");
    push(&mut stats, "pointer_size", (usize::BITS) as u64);
    push(&mut stats, "rusage_user", seconds(user));
    push(&mut stats, "rusage_system", seconds(system));
    push(&mut stats, "max_connections", settings.conn_limit);
    push(&mut stats, "curr_connections", curr_connections);
    push(
        &mut stats,
        "total_connections",
        connections.total_connections.load(Ordering::Relaxed) - baseline.total_connections,
    );
    push(
        &mut stats,
        "rejected_connections",
        connections.rejected_connections.load(Ordering::Relaxed) - baseline.rejected_connections,
    );
    push(
        &mut stats,
        "connection_structures",
        connections.connection_structures.load(Ordering::Relaxed),
    );
    // Replies are written straight into each connection's buffer: no response objects.
    zeros(
        &mut stats,
        &[
            "response_obj_oom",
            "response_obj_count",
            "response_obj_bytes",
        ],
    );
    // Each worker reads into one scratch buffer; a connection keeps input only while a
    // request is partly received, and those are not counted.
    push(&mut stats, "read_buf_count", settings.threads);
    push(
        &mut stats,
        "read_buf_bytes",
        settings.threads * crate::connection::SCRATCH,
    );
    zeros(&mut stats, &["read_buf_bytes_free", "read_buf_oom"]);
    push(
        &mut stats,
        "reserved_fds",
        reserved_descriptors(curr_connections),
    );
    push(&mut stats, "cmd_get", items.cmd_get);
    push(&mut stats, "cmd_set", items.cmd_set);
    push(&mut stats, "cmd_flush", threads.cmd_flush);
    push(&mut stats, "cmd_touch", items.cmd_touch);
    push(&mut stats, "cmd_meta", threads.cmd_meta);
    // ElastiCache's auto-discovery figures (CmdConfigGet, CmdConfigSet, CurrConfig).
    push(&mut stats, "cmd_config_get", threads.cmd_config_get);
    push(&mut stats, "cmd_config_set", threads.cmd_config_set);
    push(
        &mut stats,
        "curr_config",
        shared
            .cluster
            .as_ref()
            .map_or(0, |cluster| cluster.version()),
    );
    push(&mut stats, "get_hits", items.get_hits);
    push(&mut stats, "get_misses", items.get_misses);
    push(&mut stats, "get_expired", items.get_expired);
    push(&mut stats, "get_flushed", items.get_flushed);
    push(&mut stats, "delete_misses", items.delete_misses);
    push(&mut stats, "delete_hits", items.delete_hits);
    push(&mut stats, "incr_misses", items.incr_misses);
    push(&mut stats, "incr_hits", items.incr_hits);
    push(&mut stats, "decr_misses", items.decr_misses);
    push(&mut stats, "decr_hits", items.decr_hits);
    push(&mut stats, "cas_misses", items.cas_misses);
    push(&mut stats, "cas_hits", items.cas_hits);
    push(&mut stats, "cas_badval", items.cas_badval);
    push(&mut stats, "touch_hits", items.touch_hits);
    push(&mut stats, "touch_misses", items.touch_misses);
    push(&mut stats, "store_too_large", items.store_too_large);
    push(&mut stats, "store_no_memory", items.store_no_memory);
    push(&mut stats, "auth_cmds", threads.auth_cmds);
    push(&mut stats, "auth_errors", threads.auth_errors);
    // As memcached: only when connections can idle out.
    if settings.idle_timeout != 0 {
        push(&mut stats, "idle_kicks", threads.idle_kicks);
    }
    push(&mut stats, "bytes_read", threads.bytes_read);
    push(&mut stats, "bytes_written", threads.bytes_written);
    push(&mut stats, "limit_maxbytes", pool.limit_bytes());
    push(
        &mut stats,
        "accepting_conns",
        connections.accepting.load(Ordering::Relaxed),
    );
    push(
        &mut stats,
        "listen_disabled_num",
        connections.listen_disabled_num.load(Ordering::Relaxed) - baseline.listen_disabled_num,
    );
    push(
        &mut stats,
        "time_in_listen_disabled_us",
        connections.listen_disabled_us.load(Ordering::Relaxed) - baseline.listen_disabled_us,
    );
    push(&mut stats, "threads", settings.threads);
    push(&mut stats, "conn_yields", threads.conn_yields);
    // memcached's hash table has 2^power buckets; ours are one table per partition.
    push(
        &mut stats,
        "hash_power_level",
        u64::from(63 - hash_capacity.leading_zeros()),
    );
    push(&mut stats, "hash_bytes", items.hash_bytes);
    push(&mut stats, "hash_is_expanding", false);
    // A page that moves to another class has its live items moved to free chunks of their
    // class first (rescues); chained items are evicted, never rescued chunk by chunk, and
    // nothing is busy or reclaimed inline on the way.
    push(&mut stats, "slab_reassign_rescues", items.slab_rescues);
    zeros(
        &mut stats,
        &[
            "slab_reassign_chunk_rescues",
            "slab_reassign_evictions_nomem",
            "slab_reassign_inline_reclaim",
            "slab_reassign_busy_items",
            "slab_reassign_busy_deletes",
        ],
    );
    push(&mut stats, "slab_reassign_running", false);
    push(&mut stats, "slabs_moved", items.slabs_moved);
    // Each maintenance slice of a worker is both a short crawl and a maintainer pass.
    if settings.background_reclaim {
        push(&mut stats, "lru_crawler_running", false);
        push(&mut stats, "lru_crawler_starts", threads.maintenance_slices);
    }
    if settings.background_reclaim {
        push(
            &mut stats,
            "lru_maintainer_juggles",
            threads.maintenance_slices,
        );
    }
    // An allocation failure aborts the process.
    push(&mut stats, "malloc_fails", 0u64);
    // The event lines of `watch`: written straight into each watcher's buffer, so a
    // worker never drops one (log_worker_*) and every line counts as written.
    let watchers = &shared.watchers;
    let sent = watchers.sent.load(Ordering::Relaxed);
    push(&mut stats, "log_worker_dropped", 0u64);
    push(&mut stats, "log_worker_written", sent);
    push(
        &mut stats,
        "log_watcher_skipped",
        watchers.skipped.load(Ordering::Relaxed),
    );
    push(&mut stats, "log_watcher_sent", sent);
    push(&mut stats, "log_watchers", watchers.count());
    // NAPI ids are not used, and there is no proxy to fall back to round robin.
    if let Some(tls) = &shared.tls {
        let (handshake_errors, new_sessions) = tls.stats.since_reset();
        if tls.settings.session_cache {
            push(&mut stats, "ssl_new_sessions", new_sessions);
        }
        push(&mut stats, "ssl_handshake_errors", handshake_errors);
        push(
            &mut stats,
            "time_since_server_cert_refresh",
            tls.seconds_since_refresh(shared.cache.clock.now()),
        );
    }
    zeros(&mut stats, &["unexpected_napi_ids", "round_robin_fallback"]);
    push(&mut stats, "bytes", items.bytes);
    push(&mut stats, "curr_items", items.curr_items);
    push(&mut stats, "total_items", items.total_items);
    push(&mut stats, "slab_global_page_pool", pool.spare_pages());
    push(&mut stats, "expired_unfetched", items.expired_unfetched);
    push(&mut stats, "evicted_unfetched", items.evicted_unfetched);
    let maintainer = settings.background_reclaim;
    if maintainer {
        push(&mut stats, "evicted_active", items.evicted_active);
    }
    push(&mut stats, "evictions", items.evictions);
    // The eviction policy's own figures (S3-FIFO): which queue the evictions came from.
    push(
        &mut stats,
        "small_fifo_evictions",
        items.small_fifo_evictions,
    );
    push(
        &mut stats,
        "small_fifo_promotions",
        items.small_fifo_promotions,
    );
    push(&mut stats, "reclaimed", items.reclaimed);
    push(&mut stats, "crawler_reclaimed", items.crawler_reclaimed);
    push(
        &mut stats,
        "crawler_items_checked",
        items.crawler_items_checked,
    );
    // Bumps are a bit set in place: no tail is ever locked, no item moves between LRUs, no
    // bump is queued or dropped.
    push(&mut stats, "lrutail_reflocked", 0u64);
    if maintainer {
        zeros(
            &mut stats,
            &["moves_to_cold", "moves_to_warm", "moves_within_lru"],
        );
        // Every eviction and every reuse of an expired item's memory happens in the store
        // that needed the memory.
        push(
            &mut stats,
            "direct_reclaims",
            items.evictions + items.reclaimed,
        );
        push(&mut stats, "lru_bumps_dropped", 0u64);
    }
    stats
}

/// `stats settings`, in memcached 1.6.18's order. Settings of machinery ferrocached does not
/// have (segmented LRU, extstore, TLS, ...) carry memcached's defaults, the values memcached
/// reports when that machinery is not configured.
pub fn settings(shared: &Shared) -> Stats {
    let settings = &shared.settings;
    let storage = &shared.cache.config;
    let mut stats = Stats::new();
    let on_off = |flag: bool| if flag { "yes" } else { "no" };
    push(&mut stats, "maxbytes", shared.cache.pool.limit_bytes());
    push(&mut stats, "maxconns", settings.conn_limit);
    push(&mut stats, "tcpport", settings.port);
    push(&mut stats, "udpport", settings.udp_port);
    let interfaces: Vec<String> = settings.listen.iter().map(ToString::to_string).collect();
    push(&mut stats, "inter", interfaces.join(","));
    push(
        &mut stats,
        "verbosity",
        u64::from(shared.verbosity.load(Ordering::Relaxed)),
    );
    push(&mut stats, "oldest", 0u64);
    push(
        &mut stats,
        "evictions",
        if storage.evictions { "on" } else { "off" },
    );
    let unix = settings.listen.iter().find_map(|l| match l {
        crate::cli::ListenSpec::Unix { path, .. } => Some(path.display().to_string()),
        crate::cli::ListenSpec::Tcp(_) => None,
    });
    push(
        &mut stats,
        "domain_socket",
        unix.unwrap_or_else(|| "NULL".to_string()),
    );
    push(&mut stats, "umask", format!("{:o}", settings.unix_mask));
    push(
        &mut stats,
        "shutdown_command",
        on_off(settings.shutdown_enabled),
    );
    push(
        &mut stats,
        "growth_factor",
        format!("{:.2}", storage.growth_factor),
    );
    push(&mut stats, "chunk_size", storage.chunk_size_min);
    push(&mut stats, "num_threads", settings.threads);
    // As memcached: one thread per UDP socket when several interfaces are listed.
    let threads_per_udp = if settings.listen.len() > 1 {
        1
    } else {
        settings.threads
    };
    push(&mut stats, "num_threads_per_udp", threads_per_udp);
    push(
        &mut stats,
        "stat_key_prefix",
        char::from(settings.prefix_delimiter).to_string(),
    );
    push(
        &mut stats,
        "detail_enabled",
        on_off(shared.detail.is_enabled()),
    );
    push(&mut stats, "reqs_per_event", settings.reqs_per_event);
    push(&mut stats, "cas_enabled", on_off(storage.cas));
    push(&mut stats, "tcp_backlog", settings.backlog as u64);
    push(&mut stats, "binding_protocol", settings.protocol.name());
    push(
        &mut stats,
        "auth_enabled_sasl",
        if settings.sasl { "yes" } else { "no" },
    );
    push(
        &mut stats,
        "auth_enabled_ascii",
        shared.auth.as_ref().map_or_else(
            || "no".to_string(),
            |auth| auth.path().display().to_string(),
        ),
    );
    push(&mut stats, "item_size_max", storage.item_size_max);
    push(&mut stats, "maxconns_fast", "yes");
    push(
        &mut stats,
        "hashpower_init",
        u64::from(settings.hashpower_init),
    );
    push(&mut stats, "slab_reassign", "yes");
    push(&mut stats, "slab_automove", u64::from(shared.slabs.level()));
    push(
        &mut stats,
        "slab_automove_ratio",
        format!("{:.2}", shared.slabs.ratio()),
    );
    push(&mut stats, "slab_automove_window", 30u64);
    push(&mut stats, "slab_chunk_max", storage.slab_chunk_max);
    push(&mut stats, "lru_crawler", on_off(shared.crawler.enabled()));
    push(&mut stats, "lru_crawler_sleep", shared.crawler.sleep());
    push(&mut stats, "lru_crawler_tocrawl", shared.crawler.tocrawl());
    push(&mut stats, "tail_repair_time", 0u64);
    push(&mut stats, "flush_enabled", on_off(settings.flush_enabled));
    push(&mut stats, "dump_enabled", on_off(settings.dump_enabled));
    push(&mut stats, "hash_algorithm", "ahash");
    // Each worker maintains its partition in the background; there is one eviction order
    // per class, not memcached's HOT/WARM/COLD segments.
    push(
        &mut stats,
        "lru_maintainer_thread",
        on_off(settings.background_reclaim),
    );
    push(&mut stats, "lru_segmented", "no");
    push(&mut stats, "hot_lru_pct", 20u64);
    push(&mut stats, "warm_lru_pct", 40u64);
    push(&mut stats, "hot_max_factor", "0.20");
    push(&mut stats, "warm_max_factor", "2.00");
    push(&mut stats, "temp_lru", "no");
    push(&mut stats, "temporary_ttl", 61u64);
    push(&mut stats, "idle_timeout", settings.idle_timeout);
    push(
        &mut stats,
        "watcher_logbuf_size",
        shared.watchers.buffer_limit(),
    );
    push(&mut stats, "worker_logbuf_size", 64u64 << 10);
    push(&mut stats, "read_buf_mem_limit", 0u64);
    push(&mut stats, "track_sizes", "no");
    push(&mut stats, "inline_ascii_response", "no");
    // extstore is not supported: memcached's values when it is not configured.
    push(&mut stats, "ext_item_size", 512u64);
    push(&mut stats, "ext_item_age", u64::from(u32::MAX));
    push(&mut stats, "ext_low_ttl", 0u64);
    push(&mut stats, "ext_recache_rate", 2000u64);
    push(&mut stats, "ext_wbuf_size", 4u64 << 20);
    push(&mut stats, "ext_compact_under", 0u64);
    push(&mut stats, "ext_drop_under", 0u64);
    push(&mut stats, "ext_max_sleep", 1_000_000u64);
    push(&mut stats, "ext_max_frag", "0.80");
    push(&mut stats, "slab_automove_freeratio", "0.010");
    push(&mut stats, "ext_drop_unread", "no");
    tls_settings(&settings.tls, &mut stats);
    push(&mut stats, "num_napi_ids", "(null)");
    // memcached's `-e`; the memfd systemd keeps is no file a user named.
    let memory_file = match &shared.cache.start.source {
        crate::restart::MemorySource::File(path) => path.display().to_string(),
        _ => "(null)".to_string(),
    };
    push(&mut stats, "memory_file", memory_file);
    stats
}

/// `stats settings`' TLS lines, as memcached built with TLS prints them (also without `-Z`).
fn tls_settings(tls: &crate::tls::settings::TlsSettings, stats: &mut Stats) {
    let path = |path: &Option<std::path::PathBuf>, absent: &'static str| {
        path.as_ref()
            .map_or_else(|| absent.to_string(), |p| p.display().to_string())
    };
    let yes_no = |flag: bool| if flag { "yes" } else { "no" };
    push(stats, "ssl_enabled", yes_no(tls.enabled));
    // memcached prints its NULL pointers with printf's "(null)" here, "NULL" below.
    push(stats, "ssl_chain_cert", path(&tls.chain_cert, "(null)"));
    push(stats, "ssl_key", path(&tls.key, "(null)"));
    push(stats, "ssl_verify_mode", tls.verify_mode.openssl_flags());
    push(stats, "ssl_keyformat", tls.key_format.number());
    push(
        stats,
        "ssl_ciphers",
        tls.ciphers.clone().unwrap_or_else(|| "NULL".to_string()),
    );
    push(stats, "ssl_ca_cert", path(&tls.ca_cert, "NULL"));
    push(stats, "ssl_wbuf_size", tls.wbuf_size);
    push(stats, "ssl_session_cache", yes_no(tls.session_cache));
    push(stats, "ssl_kernel_tls", "no");
    push(stats, "ssl_min_version", tls.min_version.name());
}

/// `stats items`: per slab class, `items:<class>:<name>`, with the keys memcached prints when
/// its LRU maintainer runs only while the background maintenance does.
pub fn items(shared: &Shared) -> Stats {
    let maintainer = shared.settings.background_reclaim;
    let mut stats = Stats::new();
    for (id, class) in shared.cache.class_stats() {
        if class.items == 0 && class.evicted == 0 && class.outofmemory == 0 {
            continue;
        }
        let mut item = |name: &str, value: u64| {
            stats.push((format!("items:{id}:{name}"), Value::Number(value)));
        };
        item("number", class.items);
        if maintainer {
            // One eviction order per class: every item counts as COLD, none as HOT or WARM.
            item("number_hot", 0);
            item("number_warm", 0);
            item("number_cold", class.items);
            item("age_hot", 0);
            item("age_warm", 0);
        }
        item("age", class.age);
        item("mem_requested", class.mem_requested);
        item("evicted", class.evicted);
        item("evicted_nonzero", class.evicted_nonzero);
        item("evicted_time", class.evicted_time);
        item("outofmemory", class.outofmemory);
        item("tailrepairs", 0);
        item("reclaimed", class.reclaimed);
        item("expired_unfetched", class.expired_unfetched);
        item("evicted_unfetched", class.evicted_unfetched);
        if maintainer {
            item("evicted_active", class.evicted_active);
        }
        item("crawler_reclaimed", class.crawler_reclaimed);
        // The engine counts checked items per server only (`stats` crawler_items_checked).
        item("crawler_items_checked", 0);
        item("lrutail_reflocked", 0);
        if maintainer {
            item("moves_to_cold", 0);
            item("moves_to_warm", 0);
            item("moves_within_lru", 0);
            item("direct_reclaims", class.evicted + class.reclaimed);
            item("hits_to_hot", 0);
            item("hits_to_warm", 0);
            item("hits_to_cold", class.get_hits);
            item("hits_to_temp", 0);
        }
    }
    stats
}

/// `stats slabs`: per slab class `<class>:<name>`, then totals.
pub fn slabs(shared: &Shared) -> Stats {
    let mut stats = Stats::new();
    let mut active = 0u64;
    for (id, class) in shared.cache.class_stats() {
        if class.total_pages == 0 {
            continue;
        }
        active += 1;
        let mut slab = |name: &str, value: u64| {
            stats.push((format!("{id}:{name}"), Value::Number(value)));
        };
        slab("chunk_size", class.chunk_size);
        slab("chunks_per_page", class.chunks_per_page);
        slab("total_pages", class.total_pages);
        slab("total_chunks", class.total_chunks);
        slab("used_chunks", class.used_chunks);
        slab("free_chunks", class.free_chunks);
        slab("free_chunks_end", class.free_chunks_end);
        slab("get_hits", class.get_hits);
        slab("cmd_set", class.cmd_set);
        slab("delete_hits", class.delete_hits);
        slab("incr_hits", class.incr_hits);
        slab("decr_hits", class.decr_hits);
        slab("cas_hits", class.cas_hits);
        slab("cas_badval", class.cas_badval);
        slab("touch_hits", class.touch_hits);
    }
    push(&mut stats, "active_slabs", active);
    let pool = &shared.cache.pool;
    push(
        &mut stats,
        "total_malloced",
        pool.pages_in_use() * pool.page_size(),
    );
    stats
}

/// `stats conns`: each listener and connection, `<fd>:<name>`.
pub fn conns(shared: &Shared) -> Stats {
    let now = shared.cache.clock.now();
    let mut stats = Stats::new();
    let mut line = |fd: i32, name: &str, value: Value| {
        let mut key = String::new();
        let _ = write!(key, "{fd}:{name}");
        stats.push((key, value));
    };
    if !shared.is_stopping() {
        for listener in &shared.listeners {
            line(listener.fd, "addr", Value::Text(listener.name.clone()));
            line(listener.fd, "state", Value::Static("conn_listening"));
            // A listener never ran a command: memcached counts from its clock's start.
            line(
                listener.fd,
                "secs_since_last_cmd",
                Value::Number(u64::from(shared.cache.clock.uptime())),
            );
        }
    }
    let mut all: Vec<_> = shared
        .registries
        .iter()
        .flat_map(|r| r.snapshot())
        .collect();
    all.sort_by_key(|info| info.fd);
    for info in all {
        line(info.fd, "addr", Value::Text(info.peer.clone()));
        line(
            info.fd,
            "listen_addr",
            Value::Text(listen_name(shared, &info.peer)),
        );
        line(
            info.fd,
            "state",
            Value::Static(conn_state::name(info.state.load(Ordering::Relaxed))),
        );
        let idle = now.saturating_sub(info.last_cmd.load(Ordering::Relaxed));
        line(
            info.fd,
            "secs_since_last_cmd",
            Value::Number(u64::from(idle)),
        );
    }
    stats
}

/// `stats latency`: per command family, the requests and the p50, p90, p99 and p99.9 of
/// their latency in microseconds, since the last `stats reset`. With recording off, one line
/// saying so: zero counts and percentiles would read as an idle server.
pub fn latency(shared: &Shared) -> Stats {
    let mut stats = Stats::new();
    if !shared.latency.recording() {
        push(&mut stats, "latency_histograms", "off");
        return stats;
    }
    let snapshot = shared.latency.since_reset();
    for family in Family::ALL {
        let histogram = snapshot.family(family);
        let name = family.name();
        push(&mut stats, &format!("{name}_count"), histogram.count());
        for (label, quantile) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
            let micros = histogram.quantile_nanos(quantile) / 1_000.0;
            push(
                &mut stats,
                &format!("{name}_{label}_us"),
                format!("{micros:.1}"),
            );
        }
    }
    stats
}

/// The listener a connection came in on, as far as the peer's family tells (memcached prints
/// the listening address).
fn listen_name(shared: &Shared, peer: &str) -> String {
    let unix = peer.starts_with("unix:");
    shared
        .listeners
        .iter()
        .find(|l| l.name.starts_with("unix:") == unix)
        .map_or_else(String::new, |l| l.name.clone())
}

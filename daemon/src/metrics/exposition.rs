//! What a scrape of `/metrics` shows: memcached_exporter's metrics, derived as that exporter
//! derives them from `stats`, `stats settings`, `stats items` and `stats slabs`, then what only
//! ferrocached has (`ferrocache_*`), encoded by `prometheus-client` in the Prometheus text
//! format or OpenMetrics.
//!
//! Owns: the mapping from `stats` names to metric names, labels and types, and the
//! `ferrocache_*` families. Must not touch: where a figure comes from (it reads the same
//! functions the `stats` command answers with, so the two never disagree), HTTP, or any counter.
//!
//! Names, labels and types are memcached_exporter's (its collector, `pkg/exporter/exporter.go`),
//! so existing dashboards and alerts work unchanged, with one exception the formats force: the
//! exporter types a few names without `_total` as counters (`memcached_uptime_seconds`,
//! `memcached_slab_items_evicted_time_seconds`, `memcached_slab_mem_requested_bytes`,
//! `memcached_slab_items_moves_*`); OpenMetrics requires every counter sample to end in
//! `_total` and `prometheus-client` adds it, so these keep their names as gauges. A figure is
//! shown only when its `stats` key exists, as the exporter does, and `memcached_up` is 0 when a
//! value would not parse the exporter's way.

use crate::command::stats::{self, Stats, Value};
use crate::latency::{EXPOSED_BOUNDS_NS, Family};
use crate::shared::Shared;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Arc;

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// How memcached_exporter reads a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parse {
    /// A decimal number.
    Number,
    /// `seconds.microseconds` (`rusage_*`).
    Timeval,
    /// `yes` or `no`.
    YesNo,
}

/// A `stats` key that becomes a metric of its own: key, metric name (a counter's without the
/// `_total` the encoding adds), type, how the value is read, help.
type Mapped = (&'static str, &'static str, Kind, Parse, &'static str);

use Kind::{Counter, Gauge};
use Parse::{Number, Timeval, YesNo};

/// Plain `stats` (and the totals of `stats slabs` and `stats items`).
#[rustfmt::skip]
const GENERAL: &[Mapped] = &[
    ("uptime", "memcached_uptime_seconds", Gauge, Number, "Seconds since the server started."),
    ("time", "memcached_time_seconds", Gauge, Number, "The server's UNIX time."),
    ("rusage_user", "memcached_process_user_cpu_seconds", Counter, Timeval, "User CPU time used by the process."),
    ("rusage_system", "memcached_process_system_cpu_seconds", Counter, Timeval, "System CPU time used by the process."),
    ("bytes", "memcached_current_bytes", Gauge, Number, "Bytes of the items stored now."),
    ("limit_maxbytes", "memcached_limit_bytes", Gauge, Number, "Bytes the items may take (-m)."),
    ("curr_items", "memcached_current_items", Gauge, Number, "Items stored now."),
    ("total_items", "memcached_items", Counter, Number, "Items stored since the server started."),
    ("bytes_read", "memcached_read_bytes", Counter, Number, "Bytes read from clients."),
    ("bytes_written", "memcached_written_bytes", Counter, Number, "Bytes written to clients."),
    ("curr_connections", "memcached_current_connections", Gauge, Number, "Client connections open now."),
    ("total_connections", "memcached_connections", Counter, Number, "Client connections accepted since the server started."),
    ("rejected_connections", "memcached_connections_rejected", Counter, Number, "Connections refused for being over -c."),
    ("conn_yields", "memcached_connections_yielded", Counter, Number, "Times a connection gave way to others after -R requests."),
    ("listen_disabled_num", "memcached_connections_listener_disabled", Counter, Number, "Times accepting stopped for want of file descriptors."),
    ("evictions", "memcached_items_evicted", Counter, Number, "Live items evicted to make room."),
    ("reclaimed", "memcached_items_reclaimed", Counter, Number, "Items stored in the memory of an expired item."),
    ("store_too_large", "memcached_item_too_large", Counter, Number, "Stores refused for exceeding the item size limit."),
    ("store_no_memory", "memcached_item_no_memory", Counter, Number, "Stores refused for want of memory."),
    ("lru_crawler_starts", "memcached_lru_crawler_starts", Counter, Number, "LRU crawler runs started."),
    ("direct_reclaims", "memcached_direct_reclaims", Counter, Number, "Times a worker had to reclaim or evict items itself."),
    ("crawler_items_checked", "memcached_lru_crawler_items_checked", Counter, Number, "Items the background reclaimer examined."),
    ("crawler_reclaimed", "memcached_lru_crawler_reclaimed", Counter, Number, "Expired items the background reclaimer freed."),
    ("moves_to_cold", "memcached_lru_crawler_moves_to_cold", Counter, Number, "Items moved from HOT or WARM to COLD."),
    ("moves_to_warm", "memcached_lru_crawler_moves_to_warm", Counter, Number, "Items moved from COLD to WARM."),
    ("moves_within_lru", "memcached_lru_crawler_moves_within_lru", Counter, Number, "Items bumped within HOT or WARM."),
    ("total_malloced", "memcached_malloced_bytes", Gauge, Number, "Bytes of slab pages allocated."),
    ("accepting_conns", "memcached_accepting_connections", Gauge, Number, "Whether the server accepts new connections."),
    // Figures memcached_exporter leaves out, or only ferrocached has.
    ("evicted_active", "ferrocache_items_evicted_active", Counter, Number, "Evicted items that had been read since the eviction hand last passed them."),
    ("evicted_unfetched", "ferrocache_items_evicted_unfetched", Counter, Number, "Evicted items that were never read."),
    ("expired_unfetched", "ferrocache_items_expired_unfetched", Counter, Number, "Expired items that were never read."),
    ("get_expired", "ferrocache_get_expired", Counter, Number, "Reads that found the item expired."),
    ("get_flushed", "ferrocache_get_flushed", Counter, Number, "Reads that found the item flushed."),
    ("hash_bytes", "ferrocache_hash_bytes", Gauge, Number, "Bytes of the hash indexes."),
    ("slabs_moved", "ferrocache_slabs_moved", Counter, Number, "Slab pages moved to another class."),
    ("slab_reassign_rescues", "ferrocache_slab_rescues", Counter, Number, "Live items moved to another chunk so that their page could change class."),
    ("small_fifo_evictions", "ferrocache_small_fifo_evictions", Counter, Number, "Items evicted from the S3-FIFO small queue, never read while on probation."),
    ("small_fifo_promotions", "ferrocache_small_fifo_promotions", Counter, Number, "Items read while on probation, moved from the small queue to the main CLOCK."),
    ("cmd_meta", "ferrocache_meta_commands", Counter, Number, "Meta protocol commands served."),
    ("idle_kicks", "ferrocache_idle_kicks", Counter, Number, "Connections closed for idling past idle_timeout."),
    ("auth_cmds", "ferrocache_auth_commands", Counter, Number, "Authentication attempts (ASCII logins)."),
    ("auth_errors", "ferrocache_auth_errors", Counter, Number, "Authentication attempts that failed."),
    ("ssl_handshake_errors", "ferrocache_tls_handshake_errors", Counter, Number, "TLS connections that ended before their handshake finished."),
    ("ssl_new_sessions", "ferrocache_tls_new_sessions", Counter, Number, "TLS sessions created for resumption (ssl_session_cache)."),
    ("time_since_server_cert_refresh", "ferrocache_tls_seconds_since_cert_refresh", Gauge, Number, "Seconds since the certificates were last loaded."),
    ("cmd_config_get", "ferrocache_config_get_commands", Counter, Number, "config get cluster requests (ElastiCache's CmdConfigGet)."),
    ("cmd_config_set", "ferrocache_config_set_commands", Counter, Number, "config set cluster requests (CmdConfigSet)."),
    ("curr_config", "ferrocache_cluster_config_version", Gauge, Number, "Version of the cluster node list served (CurrConfig)."),
];

/// `stats settings` (the LRU crawler's only when it reports `lru_crawler yes`, as the exporter
/// reads them).
#[rustfmt::skip]
const SETTINGS: &[Mapped] = &[
    ("maxconns", "memcached_max_connections", Gauge, Number, "Client connections allowed (-c)."),
];

#[rustfmt::skip]
const LRU_CRAWLER_SETTINGS: &[Mapped] = &[
    ("lru_crawler", "memcached_lru_crawler_enabled", Gauge, YesNo, "Whether the LRU crawler is on."),
    ("lru_crawler_sleep", "memcached_lru_crawler_sleep", Gauge, Number, "Microseconds the LRU crawler sleeps between items."),
    ("lru_crawler_tocrawl", "memcached_lru_crawler_to_crawl", Gauge, Number, "Items the LRU crawler examines per class per run."),
    ("lru_maintainer_thread", "memcached_lru_crawler_maintainer_thread", Gauge, YesNo, "Whether the LRU maintainer thread runs."),
    ("hot_lru_pct", "memcached_lru_crawler_hot_percent", Gauge, Number, "Percent of a class's memory for the HOT LRU."),
    ("warm_lru_pct", "memcached_lru_crawler_warm_percent", Gauge, Number, "Percent of a class's memory for the WARM LRU."),
    ("hot_max_factor", "memcached_lru_crawler_hot_max_factor", Gauge, Number, "HOT LRU idle age as a factor of COLD's."),
    ("warm_max_factor", "memcached_lru_crawler_warm_max_factor", Gauge, Number, "WARM LRU idle age as a factor of COLD's."),
];

/// `stats items`, per slab class (`items:<class>:<key>`).
#[rustfmt::skip]
const ITEMS: &[Mapped] = &[
    ("number", "memcached_slab_current_items", Gauge, Number, "Items stored now in the slab class."),
    ("age", "memcached_slab_items_age_seconds", Gauge, Number, "Seconds since the coldest item of the class was accessed."),
    ("crawler_reclaimed", "memcached_slab_items_crawler_reclaimed", Counter, Number, "Expired items of the class the background reclaimer freed."),
    ("evicted", "memcached_slab_items_evicted", Counter, Number, "Live items of the class evicted."),
    ("evicted_nonzero", "memcached_slab_items_evicted_nonzero", Counter, Number, "Evicted items of the class that had an expiry time."),
    ("evicted_time", "memcached_slab_items_evicted_time_seconds", Gauge, Number, "Seconds since the last evicted item of the class was accessed."),
    ("evicted_unfetched", "memcached_slab_items_evicted_unfetched", Counter, Number, "Evicted items of the class never read."),
    ("expired_unfetched", "memcached_slab_items_expired_unfetched", Counter, Number, "Expired items of the class never read."),
    ("outofmemory", "memcached_slab_items_outofmemory", Counter, Number, "Stores in the class refused for want of memory."),
    ("reclaimed", "memcached_slab_items_reclaimed", Counter, Number, "Items stored in the memory of an expired item of the class."),
    ("tailrepairs", "memcached_slab_items_tailrepairs", Counter, Number, "Times the class's LRU tail needed repair."),
    ("mem_requested", "memcached_slab_mem_requested_bytes", Gauge, Number, "Bytes the items of the class take."),
    ("moves_to_cold", "memcached_slab_items_moves_to_cold", Gauge, Number, "Items of the class moved to COLD."),
    ("moves_to_warm", "memcached_slab_items_moves_to_warm", Gauge, Number, "Items of the class moved to WARM."),
    ("moves_within_lru", "memcached_slab_items_moves_within_lru", Gauge, Number, "Items of the class bumped within HOT or WARM."),
    ("number_hot", "memcached_slab_hot_items", Gauge, Number, "Items of the class in HOT."),
    ("number_warm", "memcached_slab_warm_items", Gauge, Number, "Items of the class in WARM."),
    ("number_cold", "memcached_slab_cold_items", Gauge, Number, "Items of the class in COLD."),
    ("number_temp", "memcached_slab_temporary_items", Gauge, Number, "Items of the class in TEMPORARY."),
    ("age_hot", "memcached_slab_hot_age_seconds", Gauge, Number, "Age of the oldest item of the class in HOT."),
    ("age_warm", "memcached_slab_warm_age_seconds", Gauge, Number, "Age of the oldest item of the class in WARM."),
];

/// `stats items` LRU hit counters: key and `lru` label.
const LRU_HITS: &[(&str, &str)] = &[
    ("hits_to_hot", "hot"),
    ("hits_to_warm", "warm"),
    ("hits_to_cold", "cold"),
    ("hits_to_temp", "temporary"),
];

/// `stats slabs`, per slab class (`<class>:<key>`).
#[rustfmt::skip]
const SLABS: &[Mapped] = &[
    ("chunk_size", "memcached_slab_chunk_size_bytes", Gauge, Number, "Bytes of each chunk of the class."),
    ("chunks_per_page", "memcached_slab_chunks_per_page", Gauge, Number, "Chunks in one page of the class."),
    ("total_pages", "memcached_slab_current_pages", Gauge, Number, "Pages the class holds."),
    ("total_chunks", "memcached_slab_current_chunks", Gauge, Number, "Chunks the class holds."),
    ("used_chunks", "memcached_slab_chunks_used", Gauge, Number, "Chunks of the class holding items."),
    ("free_chunks", "memcached_slab_chunks_free", Gauge, Number, "Chunks of the class free."),
    ("free_chunks_end", "memcached_slab_chunks_free_end", Gauge, Number, "Free chunks at the end of the class's last page."),
    ("mem_requested", "memcached_slab_mem_requested_bytes", Gauge, Number, "Bytes the items of the class take."),
];

/// The commands of `memcached_commands_total` counted as `<command>_hits` and `_misses`.
const COMMANDS: [&str; 6] = ["get", "delete", "incr", "decr", "cas", "touch"];

const COMMANDS_NAME: &str = "memcached_commands";
const COMMANDS_HELP: &str = "Requests by command and outcome.";
const SLAB_COMMANDS_NAME: &str = "memcached_slab_commands";
const SLAB_COMMANDS_HELP: &str = "Requests by slab class, command and outcome.";

/// A metric's labels, in the exporter's order.
type Labels = Vec<(&'static str, String)>;

/// One sample of a family.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleValue {
    Number(f64),
    /// Sum (seconds), count, and (upper bound in seconds, requests in that bucket) per bucket.
    Histogram {
        sum: f64,
        count: u64,
        buckets: Vec<(f64, u64)>,
    },
}

/// A metric family as one scrape sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricFamily {
    /// A counter's name without the `_total` its samples carry.
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<(Labels, SampleValue)>,
}

/// Families in the order they are first met, with at most one sample per label set.
#[derive(Default)]
struct Families {
    families: Vec<MetricFamily>,
    by_name: HashMap<&'static str, usize>,
}

impl Families {
    fn add(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: Labels,
        value: SampleValue,
    ) {
        let index = *self.by_name.entry(name).or_insert_with(|| {
            self.families.push(MetricFamily {
                name,
                help,
                kind,
                samples: Vec::new(),
            });
            self.families.len() - 1
        });
        let family = &mut self.families[index];
        // memcached_exporter would fail the scrape on a second series with the same labels
        // (`mem_requested` in both `stats items` and `stats slabs`, say): the first one stands.
        if !family
            .samples
            .iter()
            .any(|(existing, _)| *existing == labels)
        {
            family.samples.push((labels, value));
        }
    }
}

/// A value read the exporter's way; `None` if it would not parse.
fn parse(value: &Value, how: Parse) -> Option<f64> {
    let text = match value {
        Value::Number(n) => return (how == Number).then_some(*n as f64),
        Value::Signed(n) => return (how == Number).then_some(*n as f64),
        Value::Text(text) => text.as_str(),
        Value::Static(text) => text,
    };
    match how {
        Number => text.parse().ok(),
        Timeval => {
            let (seconds, micros) = text.split_once('.')?;
            if micros.contains('.') {
                return None;
            }
            Some(seconds.parse::<f64>().ok()? + micros.parse::<f64>().ok()? / 1e6)
        }
        YesNo => match text {
            "yes" => Some(1.0),
            "no" => Some(0.0),
            _ => None,
        },
    }
}

/// `stats` pairs by name.
type Keys<'a> = HashMap<&'a str, &'a Value>;

/// The pairs of one `stats` group by name.
fn by_name(pairs: &Stats) -> Keys<'_> {
    pairs
        .iter()
        .map(|(name, value)| (name.as_str(), value))
        .collect()
}

/// The pairs of `stats items` (`items:<class>:<key>`) or `stats slabs` (`<class>:<key>`) per
/// slab class, and the totals without a class.
struct PerClass<'a> {
    classes: Vec<(u32, Keys<'a>)>,
    totals: Vec<(&'a str, &'a Value)>,
}

fn per_class<'a>(pairs: &'a Stats, prefix: &str) -> PerClass<'a> {
    let mut grouped = PerClass {
        classes: Vec::new(),
        totals: Vec::new(),
    };
    for (name, value) in pairs {
        let Some((class, key)) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_once(':'))
            .and_then(|(class, key)| Some((class.parse::<u32>().ok()?, key)))
        else {
            if !name.contains(':') {
                grouped.totals.push((name.as_str(), value));
            }
            continue;
        };
        match grouped.classes.iter_mut().find(|(id, _)| *id == class) {
            Some((_, keys)) => {
                keys.insert(key, value);
            }
            None => grouped.classes.push((class, HashMap::from([(key, value)]))),
        }
    }
    grouped
}

/// Families being gathered, and whether every value parsed.
struct Gathering {
    out: Families,
    parsed_all: bool,
}

impl Gathering {
    /// A sample of `name` from `value` read as `how`; a value that does not parse is left out
    /// and marks the scrape as the exporter would (`memcached_up 0`).
    fn sample(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: Labels,
        value: &Value,
        how: Parse,
    ) {
        match parse(value, how) {
            Some(number) => self
                .out
                .add(name, help, kind, labels, SampleValue::Number(number)),
            None => self.parsed_all = false,
        }
    }

    /// Every key of `table` that `keys` has, with `labels`.
    fn table(&mut self, table: &[Mapped], keys: &Keys<'_>, labels: &Labels) {
        for &(key, name, kind, how, help) in table {
            if let Some(value) = keys.get(key) {
                self.sample(name, help, kind, labels.clone(), value, how);
            }
        }
    }

    /// `<key>` as a number, if present and numeric.
    fn number(&mut self, keys: &Keys<'_>, key: &str) -> Option<f64> {
        let value = keys.get(key)?;
        let number = parse(value, Number);
        self.parsed_all &= number.is_some();
        number
    }

    /// The exporter's `set` outcome: `cmd_set` less the cas commands it also counts; the
    /// exporter fails the scrape when any of them is missing.
    fn sets(&mut self, keys: &Keys<'_>, cas_keys: &[&str]) -> Option<f64> {
        let sets = self.number(keys, "cmd_set");
        let cas: Option<f64> = cas_keys.iter().map(|key| self.number(keys, key)).sum();
        match (sets, cas) {
            (Some(sets), Some(cas)) => Some((sets - cas).max(0.0)),
            _ => {
                self.parsed_all = false;
                None
            }
        }
    }
}

/// The value as `stats` prints it.
fn text(value: &Value) -> String {
    let mut bytes = Vec::new();
    value.write_to(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs
        .into_iter()
        .map(|(name, value)| (name, value.to_string()))
        .collect()
}

/// Reads what a scrape shows: the same figures `stats` answers with, at the time of the call.
/// Each partition is locked only to copy its counters, as for `stats`.
pub fn gather(shared: &Shared) -> Vec<MetricFamily> {
    let general = stats::general(shared);
    let settings = stats::settings(shared);
    let items = stats::items(shared);
    let slabs = stats::slabs(shared);
    let items = per_class(&items, "items:");
    let slabs = per_class(&slabs, "");
    // As the exporter's client merges them: one map of the keys without a class.
    let mut global = by_name(&general);
    global.extend(slabs.totals);
    global.extend(items.totals);
    let settings = by_name(&settings);
    let none = Labels::new();

    let mut gathering = Gathering {
        out: Families::default(),
        parsed_all: true,
    };
    let g = &mut gathering;
    if let Some(version) = global.get("version") {
        let labels = vec![("version", text(version))];
        g.out.add(
            "memcached_version",
            "The version of memcached the server matches.",
            Gauge,
            labels,
            SampleValue::Number(1.0),
        );
    }
    for command in COMMANDS {
        for (suffix, status) in [("hits", "hit"), ("misses", "miss")] {
            if let Some(value) = global.get(format!("{command}_{suffix}").as_str()) {
                let labels = labels([("command", command), ("status", status)]);
                g.sample(COMMANDS_NAME, COMMANDS_HELP, Counter, labels, value, Number);
            }
        }
    }
    for (key, command, status) in [
        ("cas_badval", "cas", "badval"),
        ("cmd_flush", "flush", "hit"),
    ] {
        if let Some(value) = global.get(key) {
            let labels = labels([("command", command), ("status", status)]);
            g.sample(COMMANDS_NAME, COMMANDS_HELP, Counter, labels, value, Number);
        }
    }
    if let Some(sets) = g.sets(&global, &["cas_misses", "cas_hits", "cas_badval"]) {
        let labels = labels([("command", "set"), ("status", "hit")]);
        g.out.add(
            COMMANDS_NAME,
            COMMANDS_HELP,
            Counter,
            labels,
            SampleValue::Number(sets),
        );
    }
    g.table(GENERAL, &global, &none);
    g.table(SETTINGS, &settings, &none);
    if settings.get("lru_crawler").and_then(|v| parse(v, YesNo)) == Some(1.0) {
        g.table(LRU_CRAWLER_SETTINGS, &settings, &none);
    }
    for (class, keys) in &items.classes {
        let slab = class.to_string();
        g.table(ITEMS, keys, &labels([("slab", &slab)]));
        for &(key, lru) in LRU_HITS {
            if let Some(value) = keys.get(key) {
                let labels = labels([("slab", &slab), ("lru", lru)]);
                g.sample(
                    "memcached_slab_lru_hits",
                    "Reads that hit an item of the class, by LRU.",
                    Counter,
                    labels,
                    value,
                    Number,
                );
            }
        }
    }
    for (class, keys) in &slabs.classes {
        let slab = class.to_string();
        for command in COMMANDS {
            if let Some(value) = keys.get(format!("{command}_hits").as_str()) {
                let labels = labels([("slab", &slab), ("command", command), ("status", "hit")]);
                g.sample(
                    SLAB_COMMANDS_NAME,
                    SLAB_COMMANDS_HELP,
                    Counter,
                    labels,
                    value,
                    Number,
                );
            }
        }
        if let Some(value) = keys.get("cas_badval") {
            let labels = labels([("slab", &slab), ("command", "cas"), ("status", "badval")]);
            g.sample(
                SLAB_COMMANDS_NAME,
                SLAB_COMMANDS_HELP,
                Counter,
                labels,
                value,
                Number,
            );
        }
        if let Some(sets) = g.sets(keys, &["cas_hits", "cas_badval"]) {
            let labels = labels([("slab", &slab), ("command", "set"), ("status", "hit")]);
            g.out.add(
                SLAB_COMMANDS_NAME,
                SLAB_COMMANDS_HELP,
                Counter,
                labels,
                SampleValue::Number(sets),
            );
        }
        g.table(SLABS, keys, &labels([("slab", &slab)]));
    }
    ferrocache_families(shared, &global, &mut g.out);
    let up = if g.parsed_all { 1.0 } else { 0.0 };
    g.out.add(
        "memcached_up",
        "Whether the server's statistics could be read.",
        Gauge,
        none,
        SampleValue::Number(up),
    );
    gathering.out.families
}

/// What only ferrocached has.
fn ferrocache_families(shared: &Shared, global: &Keys<'_>, out: &mut Families) {
    if let Some(version) = global.get("ferrocache_version") {
        let labels = vec![("version", text(version))];
        out.add(
            "ferrocache_version",
            "ferrocached's own version.",
            Gauge,
            labels,
            SampleValue::Number(1.0),
        );
    }
    // With recording off the histograms are left out rather than exposed empty: an empty
    // histogram reads as an idle server, an absent one as "not measured".
    let latency = shared.latency.since_start();
    let families = if shared.latency.recording() {
        &Family::ALL[..]
    } else {
        &[]
    };
    for &family in families {
        let histogram = latency.family(family);
        let exposed = histogram.exposed_buckets();
        let mut buckets: Vec<(f64, u64)> = EXPOSED_BOUNDS_NS
            .iter()
            .zip(exposed.iter())
            .map(|(&bound, &count)| (f64::from(bound) / 1e9, count))
            .collect();
        buckets.push((f64::INFINITY, exposed[EXPOSED_BOUNDS_NS.len()]));
        let value = SampleValue::Histogram {
            sum: histogram.sum_nanos as f64 / 1e9,
            count: histogram.count(),
            buckets,
        };
        out.add(
            "ferrocache_request_duration_seconds",
            "Time from when the server starts on a request until its reply is encoded, by command family.",
            Kind::Histogram,
            labels([("family", family.name())]),
            value,
        );
    }
    for (worker, thread) in shared.latency.threads().iter().enumerate() {
        let value = SampleValue::Number(thread.requests() as f64);
        out.add(
            "ferrocache_thread_requests",
            "Requests each worker thread served.",
            Counter,
            labels([("thread", &worker.to_string())]),
            value,
        );
    }
    for (worker, registry) in shared.registries.iter().enumerate() {
        let value = SampleValue::Number(registry.open_connections() as f64);
        out.add(
            "ferrocache_thread_connections",
            "Client connections each worker thread holds now.",
            Gauge,
            labels([("thread", &worker.to_string())]),
            value,
        );
    }
}

/// The collector `prometheus-client` calls on each encoding.
#[derive(Debug)]
struct StatsCollector {
    shared: Arc<Shared>,
}

impl Collector for StatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in gather(&self.shared) {
            let metric_type = match family.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
                Kind::Histogram => MetricType::Histogram,
            };
            let mut metric =
                encoder.encode_descriptor(family.name, family.help, None, metric_type)?;
            for (labels, value) in &family.samples {
                if labels.is_empty() {
                    encode_sample(&mut metric, family.kind, value)?;
                } else {
                    let mut labelled = metric.encode_family(labels)?;
                    encode_sample(&mut labelled, family.kind, value)?;
                }
            }
        }
        Ok(())
    }
}

fn encode_sample(
    encoder: &mut MetricEncoder<'_>,
    kind: Kind,
    value: &SampleValue,
) -> Result<(), std::fmt::Error> {
    match (kind, value) {
        (Kind::Counter, SampleValue::Number(n)) => {
            encoder.encode_counter::<NoLabelSet, f64, f64>(n, None)
        }
        (Kind::Gauge, SampleValue::Number(n)) => encoder.encode_gauge(n),
        (
            Kind::Histogram,
            SampleValue::Histogram {
                sum,
                count,
                buckets,
            },
        ) => encoder.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None),
        _ => Err(std::fmt::Error),
    }
}

/// The two text formats a scraper may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text exposition format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Renders scrapes; built once, shared by the metrics server.
#[derive(Debug)]
pub struct Exposition {
    registry: Registry,
}

impl Exposition {
    pub fn new(shared: Arc<Shared>) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(StatsCollector { shared }));
        Exposition { registry }
    }

    /// The body of a scrape in `format`.
    pub fn render(&self, format: Format) -> Result<String, std::fmt::Error> {
        let mut body = String::with_capacity(64 * 1024);
        match format {
            Format::Prometheus => {
                prometheus_client::encoding::prometheus_text::encode(&mut body, &self.registry)?
            }
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut body, &self.registry)?
            }
        }
        Ok(body)
    }
}

//! The command line: memcached's flags with memcached's meanings, each also readable from a
//! `FERROCACHED_*` environment variable, turned into validated [`Settings`].
//!
//! Owns: flag names, defaults, value parsing, `-o` extended options, and the one-line error with
//! exit status 64 (EX_USAGE) for anything that cannot work. Must not touch: sockets, threads or
//! the storage engine (it only describes them).

use clap::{ArgAction, Parser};
use ferrocache_storage::StorageConfig;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// Exit status for a bad command line (sysexits.h EX_USAGE).
pub const EXIT_USAGE: i32 = 64;

/// Storage partitions per event-loop thread: one, as the design says, so each partition is as
/// large as it can be. Any worker locks any partition to serve a key in it, and the worker that
/// owns a partition runs its maintenance. More partitions per thread make it rarer for two
/// workers to meet on one lock (a holder preempted by the load generator on a 2-core machine
/// stalls the other for a tick), but they split `-m` into smaller pools of slab classes: the
/// engine evicts within a partition, so with small `-m` and many value sizes a partition can
/// find a class without pages and nothing of that class to evict (at 8 per thread the
/// hardening test hit `SERVER_ERROR out of memory storing object` in 2 runs of 8). Measured on
/// W1 (`-t 2`, 50 connections, 1 in flight, three alternating rounds, 2026-11-23): p99
/// 4.27/4.56/4.25 ms with 1 per thread, 4.33/2.84/4.25 ms with 4, memcached 3.07/4.41 ms;
/// throughput 58-78k vs 70-73k vs 60-63k ops/s: within this machine's noise, so the simpler
/// and more memory-efficient layout stays.
pub const PARTITIONS_PER_THREAD: usize = 1;

/// Index slots memcached starts with (hashpower 16), spread over the partitions.
const DEFAULT_INDEX_SLOTS: usize = 1 << 16;

/// Bytes per MiB, the unit of `-m`.
const MIB: usize = 1 << 20;

#[derive(Parser, Debug)]
#[command(
    name = "ferrocached",
    version = crate::CLI_VERSION,
    about = "ferrocache: a memcached-compatible, multi-threaded, sharded cache daemon",
    disable_version_flag = true,
    disable_help_flag = true
)]
struct Cli {
    /// TCP port to listen on
    #[arg(
        short = 'p',
        long = "port",
        env = "FERROCACHED_PORT",
        default_value_t = 11211
    )]
    port: u16,

    /// UDP port to listen on (0, the default, is off; UDP is not supported)
    #[arg(
        short = 'U',
        long = "udp-port",
        env = "FERROCACHED_UDP_PORT",
        default_value_t = 0
    )]
    udp_port: u16,

    /// UNIX socket to listen on (disables TCP, as in memcached)
    #[arg(short = 's', long = "unix-socket", env = "FERROCACHED_UNIX_SOCKET")]
    unix_socket: Option<PathBuf>,

    /// Access mask for the UNIX socket, in octal
    #[arg(short = 'a', long = "unix-mask", env = "FERROCACHED_UNIX_MASK", default_value = "700",
          value_parser = parse_octal)]
    unix_mask: u32,

    /// Interfaces to listen on, comma-separated and repeatable: host, host:port, [v6]:port
    #[arg(
        short = 'l',
        long = "listen",
        env = "FERROCACHED_LISTEN",
        value_delimiter = ',',
        default_value = "127.0.0.1"
    )]
    listen: Vec<String>,

    /// Enable the ascii "shutdown" command
    #[arg(
        short = 'A',
        long = "enable-shutdown",
        env = "FERROCACHED_ENABLE_SHUTDOWN"
    )]
    enable_shutdown: bool,

    /// Item memory in megabytes
    #[arg(short = 'm', long = "memory-limit", env = "FERROCACHED_MEMORY_LIMIT",
          default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    memory_limit: u64,

    /// Return an error when memory is exhausted instead of evicting
    #[arg(
        short = 'M',
        long = "disable-evictions",
        env = "FERROCACHED_DISABLE_EVICTIONS"
    )]
    disable_evictions: bool,

    /// Maximum simultaneous connections
    #[arg(short = 'c', long = "conn-limit", env = "FERROCACHED_CONN_LIMIT", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    conn_limit: u32,

    /// Number of event-loop threads (default: the number of cores)
    #[arg(short = 't', long = "threads", env = "FERROCACHED_THREADS",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,

    /// Maximum item size (k/m suffix allowed; 1k..1024m)
    #[arg(short = 'I', long = "max-item-size", env = "FERROCACHED_MAX_ITEM_SIZE",
          default_value = "1m", value_parser = parse_size)]
    max_item_size: usize,

    /// Chunk size growth factor
    #[arg(
        short = 'f',
        long = "slab-growth-factor",
        env = "FERROCACHED_SLAB_GROWTH_FACTOR",
        default_value_t = 1.25
    )]
    slab_growth_factor: f64,

    /// Minimum chunk size in bytes (header, key and value)
    #[arg(
        short = 'n',
        long = "slab-min-size",
        env = "FERROCACHED_SLAB_MIN_SIZE",
        default_value_t = 48
    )]
    slab_min_size: usize,

    /// Disable CAS uniques (saves memory; gets reports 0)
    #[arg(short = 'C', long = "disable-cas", env = "FERROCACHED_DISABLE_CAS")]
    disable_cas: bool,

    /// Disable the flush_all command
    #[arg(
        short = 'F',
        long = "disable-flush-all",
        env = "FERROCACHED_DISABLE_FLUSH_ALL"
    )]
    disable_flush_all: bool,

    /// Disable stats cachedump and lru_crawler metadump
    #[arg(
        short = 'X',
        long = "disable-dumping",
        env = "FERROCACHED_DISABLE_DUMPING"
    )]
    disable_dumping: bool,

    /// Delimiter between key prefixes and ids for per-prefix stats; turns them on
    #[arg(short = 'D', long = "prefix-delimiter", env = "FERROCACHED_PREFIX_DELIMITER",
          value_parser = parse_delimiter)]
    prefix_delimiter: Option<u8>,

    /// Backlog queue limit of the listening sockets
    #[arg(short = 'b', long = "listen-backlog", env = "FERROCACHED_LISTEN_BACKLOG",
          default_value_t = 1024, value_parser = clap::value_parser!(i32).range(1..))]
    listen_backlog: i32,

    /// Maximum requests served per connection per turn of the event loop
    #[arg(short = 'R', long = "max-reqs-per-event", env = "FERROCACHED_MAX_REQS_PER_EVENT",
          default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    max_reqs_per_event: u32,

    /// Verbose: -v logs connections and warnings, -vv every command
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    verbose: u8,

    /// Verbosity as a number (0-2), for the environment file of the systemd unit
    #[arg(long = "verbosity", env = "FERROCACHED_VERBOSITY", hide = true)]
    verbosity: Option<u8>,

    /// Assume the identity of this user (only when run as root)
    #[arg(short = 'u', long = "user", env = "FERROCACHED_USER")]
    user: Option<String>,

    /// Run in the background (detach from the terminal)
    #[arg(short = 'd', long = "daemon", env = "FERROCACHED_DAEMON")]
    daemon: bool,

    /// Write the process id to this file
    #[arg(short = 'P', long = "pidfile", env = "FERROCACHED_PIDFILE")]
    pidfile: Option<PathBuf>,

    /// Maximize the core file limit
    #[arg(
        short = 'r',
        long = "enable-coredumps",
        env = "FERROCACHED_ENABLE_COREDUMPS"
    )]
    enable_coredumps: bool,

    /// Lock all paged memory (mlockall)
    #[arg(short = 'k', long = "lock-memory", env = "FERROCACHED_LOCK_MEMORY")]
    lock_memory: bool,

    /// Protocol: only "ascii" (text and meta) is served; "auto" is accepted as ascii
    #[arg(
        short = 'B',
        long = "protocol",
        env = "FERROCACHED_PROTOCOL",
        default_value = "ascii"
    )]
    protocol: String,

    /// Comma-separated extended options (idle_timeout=N, hashpower=N, slab_chunk_max=KB, ...)
    #[arg(
        short = 'o',
        long = "extended",
        env = "FERROCACHED_EXTENDED",
        value_delimiter = ','
    )]
    extended: Vec<String>,

    /// Serve Prometheus metrics over HTTP at ADDR:PORT (GET /metrics); a port alone listens on
    /// 127.0.0.1. Off unless given
    #[arg(long = "metrics-listen", env = "FERROCACHED_METRICS_LISTEN", value_name = "ADDR:PORT",
          value_parser = parse_metrics_listen)]
    metrics_listen: Option<SocketAddr>,

    /// Print version and exit
    #[arg(short = 'V', long = "version", action = ArgAction::Version)]
    version: Option<bool>,

    /// Print this help and exit
    #[arg(short = 'h', long = "help", action = ArgAction::Help)]
    help: Option<bool>,
}

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenSpec {
    /// `host:port` for TCP (IPv6 hosts in brackets).
    Tcp(String),
    /// A UNIX socket path, with its access mask.
    Unix { path: PathBuf, mask: u32 },
}

impl fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenSpec::Tcp(address) => write!(f, "tcp:{address}"),
            ListenSpec::Unix { path, .. } => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Everything the daemon was asked to be, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: Vec<ListenSpec>,
    pub port: u16,
    pub udp_port: u16,
    pub unix_mask: u32,
    pub threads: usize,
    /// Storage partitions: `threads * PARTITIONS_PER_THREAD`.
    pub partitions: usize,
    pub conn_limit: usize,
    pub backlog: i32,
    pub reqs_per_event: usize,
    pub verbosity: u8,
    pub user: Option<String>,
    pub daemonize: bool,
    pub pidfile: Option<PathBuf>,
    pub enable_coredumps: bool,
    pub lock_memory: bool,
    pub shutdown_enabled: bool,
    pub flush_enabled: bool,
    /// `stats cachedump` and `lru_crawler metadump` are allowed (`-X` forbids them).
    pub dump_enabled: bool,
    /// Per-prefix stats delimiter (`-D`, default `:`).
    pub prefix_delimiter: u8,
    /// Per-prefix stats start switched on (`-D` was given, as in memcached).
    pub detail_enabled: bool,
    /// Seconds a connection may stay idle before it is closed (0: never).
    pub idle_timeout: u32,
    /// Whether expired items are reclaimed in the background (`-o no_lru_crawler` turns it off).
    pub background_reclaim: bool,
    /// `-o hashpower` as given (0 when not given), for `stats settings`.
    pub hashpower_init: u8,
    /// Where the Prometheus metrics endpoint listens (`--metrics-listen`), if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    pub storage: StorageConfig,
}

/// A command line that cannot work, with the message to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliOutcome {
    /// `-h` or `-V`: print this on stdout and exit 0.
    Print(String),
    /// A bad value: print this one line on stderr and exit 64.
    Usage(String),
}

/// Parses the process's command line and environment.
pub fn parse_args<I, T>(args: I) -> Result<Settings, CliOutcome>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::try_parse_from(args).map_err(|error| match error.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
            CliOutcome::Print(error.render().to_string())
        }
        _ => CliOutcome::Usage(first_line(&error.render().to_string())),
    })?;
    settings_from(cli).map_err(CliOutcome::Usage)
}

/// clap's rendering spans several lines (usage, tips); a bad value gets one.
fn first_line(rendered: &str) -> String {
    rendered
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("error: invalid command line")
        .trim()
        .to_string()
}

fn settings_from(cli: Cli) -> Result<Settings, String> {
    if cli.udp_port != 0 {
        return Err(format!(
            "error: UDP is not supported (got -U {}); use -U 0, the default",
            cli.udp_port
        ));
    }
    match cli.protocol.as_str() {
        "ascii" | "auto" => {}
        other => {
            return Err(format!(
                "error: protocol '{other}' is not supported; ferrocached speaks ascii (text and meta)"
            ));
        }
    }
    let threads = match cli.threads {
        Some(threads) => usize::from(threads),
        None => std::thread::available_parallelism().map_or(4, |n| n.get()),
    };
    let memory_limit = usize::try_from(cli.memory_limit)
        .ok()
        .and_then(|mb| mb.checked_mul(MIB))
        .ok_or_else(|| {
            format!(
                "error: memory limit of {} MiB is too large",
                cli.memory_limit
            )
        })?;
    let mut storage = StorageConfig {
        memory_limit,
        chunk_size_min: cli.slab_min_size,
        growth_factor: cli.slab_growth_factor,
        item_size_max: cli.max_item_size,
        evictions: !cli.disable_evictions,
        cas: !cli.disable_cas,
        ..StorageConfig::default()
    };
    // memcached lowers the largest chunk to the item size limit when -I is small.
    storage.slab_chunk_max = storage.slab_chunk_max.min(cli.max_item_size);
    let partitions = threads * PARTITIONS_PER_THREAD;
    storage.index_capacity = (DEFAULT_INDEX_SLOTS / partitions).max(1 << 10);

    let mut settings = Settings {
        listen: Vec::new(),
        port: cli.port,
        udp_port: cli.udp_port,
        unix_mask: cli.unix_mask,
        threads,
        partitions,
        conn_limit: cli.conn_limit as usize,
        backlog: cli.listen_backlog,
        reqs_per_event: cli.max_reqs_per_event as usize,
        verbosity: cli.verbosity.unwrap_or(0).max(cli.verbose),
        user: cli.user,
        daemonize: cli.daemon,
        pidfile: cli.pidfile,
        enable_coredumps: cli.enable_coredumps,
        lock_memory: cli.lock_memory,
        shutdown_enabled: cli.enable_shutdown,
        flush_enabled: !cli.disable_flush_all,
        dump_enabled: !cli.disable_dumping,
        prefix_delimiter: cli.prefix_delimiter.unwrap_or(b':'),
        detail_enabled: cli.prefix_delimiter.is_some(),
        idle_timeout: 0,
        background_reclaim: true,
        hashpower_init: 0,
        metrics_listen: cli.metrics_listen,
        storage,
    };
    for option in cli.extended.iter().filter(|o| !o.is_empty()) {
        apply_extended(&mut settings, option)?;
    }
    settings.listen = match cli.unix_socket {
        Some(path) => vec![ListenSpec::Unix {
            path,
            mask: cli.unix_mask,
        }],
        None => cli
            .listen
            .iter()
            .filter(|l| !l.is_empty())
            .map(|l| tcp_listen_address(l, cli.port))
            .collect::<Result<_, _>>()?,
    };
    if settings.listen.is_empty() {
        return Err("error: nothing to listen on (-l is empty)".to_string());
    }
    settings
        .storage
        .validate()
        .map_err(|error| format!("error: {error}"))?;
    Ok(settings)
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address, completed with `-p`.
fn tcp_listen_address(spec: &str, default_port: u16) -> Result<ListenSpec, String> {
    let spec = spec.trim();
    let (host, port) = if let Some(rest) = spec.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("error: bad listen address '{spec}'"))?;
        match after.strip_prefix(':') {
            Some(port) => (host.to_string(), Some(port)),
            None if after.is_empty() => (host.to_string(), None),
            None => return Err(format!("error: bad listen address '{spec}'")),
        }
    } else if spec.matches(':').count() == 1 {
        let (host, port) = spec.split_once(':').unwrap_or((spec, ""));
        (host.to_string(), Some(port))
    } else {
        (spec.to_string(), None)
    };
    let port = match port {
        Some(port) => port
            .parse::<u16>()
            .map_err(|_| format!("error: bad port in listen address '{spec}'"))?,
        None => default_port,
    };
    if host.is_empty() {
        return Err(format!("error: bad listen address '{spec}'"));
    }
    Ok(ListenSpec::Tcp(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }))
}

/// `--metrics-listen`: `PORT`, `:PORT` (both on 127.0.0.1), `IP:PORT`, `[IPv6]:PORT` or
/// `host:PORT`.
fn parse_metrics_listen(spec: &str) -> Result<SocketAddr, String> {
    let spec = spec.trim();
    let spec = spec.strip_prefix(':').unwrap_or(spec);
    if let Ok(port) = spec.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    spec.to_socket_addrs()
        .map_err(|e| format!("'{spec}' is not ADDR:PORT: {e}"))?
        .next()
        .ok_or_else(|| format!("'{spec}' names no address"))
}

/// What becomes of each `-o` option memcached 1.6 documents.
enum Disposition {
    /// Changes a setting here.
    Honoured,
    /// Turns on what ferrocached always does; accepted so memcached command lines keep working.
    AlwaysOn(&'static str),
    /// Has no counterpart; refused by name.
    Refused(&'static str),
}

fn disposition(name: &str) -> Option<Disposition> {
    use Disposition::*;
    Some(match name {
        "idle_timeout" | "hashpower" | "slab_chunk_max" | "no_lru_crawler" => Honoured,
        "maxconns_fast" => AlwaysOn("connections over -c are always refused at once"),
        "lru_crawler" => AlwaysOn("expired items are always reclaimed in the background"),
        "lru_maintainer" => AlwaysOn("CLOCK eviction with a second chance is always on"),
        "slab_reassign" | "slab_automove" => {
            AlwaysOn("pages always move to the slab class that needs them")
        }
        "modern" => AlwaysOn("there is nothing older to fall back to"),
        "hash_algorithm" => AlwaysOn("keys are always hashed with ahash"),
        "no_maxconns_fast" => Refused("connections over -c are always refused at once"),
        "no_lru_maintainer" | "hot_lru_pct" | "warm_lru_pct" | "hot_max_factor"
        | "warm_max_factor" | "temporary_ttl" => {
            Refused("ferrocached evicts with CLOCK, not memcached's segmented LRU")
        }
        "lru_crawler_sleep" | "lru_crawler_tocrawl" => {
            Refused("the background reclaim runs in idle slices of each event loop")
        }
        "slab_automove_ratio" | "slab_automove_window" | "slab_automove_freeratio" => {
            Refused("page moves are driven by eviction ages, without tunables")
        }
        "tail_repair_time" => {
            Refused("items are copied out under the partition lock, so no refcount can leak")
        }
        "no_hashexpand" => Refused("the index always grows"),
        "read_buf_mem_limit" => Refused("connection buffers are bounded per connection"),
        "watcher_logbuf_size" | "worker_logbuf_size" => {
            Refused("the watch command is not supported")
        }
        "track_sizes" => Refused("stats sizes is not supported"),
        "no_modern" => Refused("memcached 1.4 defaults are not supported"),
        "sock_cookie_id" => Refused("socket cookies are not supported"),
        _ if name.starts_with("ext_") => Refused("extstore (external storage) is not supported"),
        _ if name.starts_with("ssl_") => Refused("TLS is not supported"),
        _ if name.starts_with("proxy") => Refused("the proxy is not supported"),
        _ => return None,
    })
}

fn apply_extended(settings: &mut Settings, option: &str) -> Result<(), String> {
    let (name, value) = match option.split_once('=') {
        Some((name, value)) => (name.trim(), Some(value.trim())),
        None => (option.trim(), None),
    };
    let number = |what: &str| -> Result<u64, String> {
        value
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("error: -o {name} needs {what}"))
    };
    match disposition(name) {
        None => Err(format!("error: Illegal suboption \"{name}\"")),
        Some(Disposition::Refused(why)) => Err(format!(
            "error: -o {name} is not supported by ferrocached: {why}"
        )),
        Some(Disposition::AlwaysOn(why)) => {
            log::info!("-o {name}: {why}");
            Ok(())
        }
        Some(Disposition::Honoured) => {
            match name {
                "idle_timeout" => {
                    settings.idle_timeout = u32::try_from(number("a number of seconds")?)
                        .map_err(|_| format!("error: -o {name} is out of range"))?;
                }
                "hashpower" => {
                    let power = number("a number from 12 to 32")?;
                    if !(12..=32).contains(&power) {
                        return Err(format!(
                            "error: -o hashpower must be between 12 and 32 (got {power})"
                        ));
                    }
                    settings.hashpower_init = power as u8;
                    // The table memcached would size as one is spread over the partitions.
                    settings.storage.index_capacity =
                        ((1usize << power) / settings.partitions).max(1 << 10);
                }
                "slab_chunk_max" => {
                    let kilobytes = number("a size in kilobytes")?;
                    let bytes = usize::try_from(kilobytes)
                        .ok()
                        .and_then(|kb| kb.checked_mul(1024))
                        .ok_or_else(|| format!("error: -o {name} is out of range"))?;
                    if bytes > settings.storage.item_size_max {
                        return Err(format!(
                            "error: slab_chunk_max (bytes: {bytes}) cannot be larger than -I (item_size_max {})",
                            settings.storage.item_size_max
                        ));
                    }
                    settings.storage.slab_chunk_max = bytes;
                }
                "no_lru_crawler" => settings.background_reclaim = false,
                _ => unreachable!("every honoured option has an arm"),
            }
            Ok(())
        }
    }
}

/// `-D :`: one byte (memcached takes the first character of the argument).
fn parse_delimiter(text: &str) -> Result<u8, String> {
    match text.as_bytes() {
        [byte] => Ok(*byte),
        _ => Err(format!("'{text}' is not a single-character delimiter")),
    }
}

/// `-a 700`: an octal mode.
fn parse_octal(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|mask| *mask <= 0o777)
        .ok_or_else(|| format!("'{text}' is not an octal mode (e.g. 700)"))
}

/// `-I 1m`, `-I 512k`, `-I 2048`: bytes, 1 KiB to 1 GiB.
fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 1 << 10),
        Some((i, 'm' | 'M')) => (&text[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&text[..i], 1 << 30),
        _ => (text, 1),
    };
    let size = digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("'{text}' is not a size (e.g. 1m, 512k, 2048)"))?;
    if !(1 << 10..=1 << 30).contains(&size) {
        return Err(format!(
            "item size must be between 1k and 1024m (got {text})"
        ));
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, CliOutcome> {
        parse_args(std::iter::once("ferrocached").chain(args.iter().copied()))
    }

    fn usage_error(args: &[&str]) -> String {
        match parse(args) {
            Err(CliOutcome::Usage(message)) => message,
            other => panic!("{args:?} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_memcacheds_but_listen_on_loopback() {
        let settings = parse(&[]).unwrap();
        assert_eq!(
            settings.listen,
            vec![ListenSpec::Tcp("127.0.0.1:11211".into())]
        );
        assert_eq!(settings.storage.memory_limit, 64 << 20);
        assert_eq!(settings.conn_limit, 1024);
        assert_eq!(settings.reqs_per_event, 20);
        assert_eq!(settings.backlog, 1024);
        assert_eq!(settings.storage.item_size_max, 1 << 20);
        assert!(settings.storage.evictions && settings.storage.cas && settings.flush_enabled);
        assert!(!settings.shutdown_enabled);
        assert!(settings.threads >= 1);
    }

    #[test]
    fn memcached_flags_map_onto_settings() {
        let settings = parse(&[
            "-p", "22122", "-m", "128", "-M", "-c", "50", "-t", "3", "-I", "2m", "-f", "1.5", "-n",
            "64", "-C", "-F", "-A", "-b", "16", "-R", "5", "-vv", "-u", "nobody",
        ])
        .unwrap();
        assert_eq!(
            settings.listen,
            vec![ListenSpec::Tcp("127.0.0.1:22122".into())]
        );
        assert_eq!(settings.storage.memory_limit, 128 << 20);
        assert!(!settings.storage.evictions);
        assert_eq!(settings.conn_limit, 50);
        assert_eq!(settings.threads, 3);
        assert_eq!(settings.storage.item_size_max, 2 << 20);
        assert_eq!(settings.storage.growth_factor, 1.5);
        assert_eq!(settings.storage.chunk_size_min, 64);
        assert!(!settings.storage.cas && !settings.flush_enabled && settings.shutdown_enabled);
        assert_eq!(
            (
                settings.backlog,
                settings.reqs_per_event,
                settings.verbosity
            ),
            (16, 5, 2)
        );
        assert_eq!(settings.user.as_deref(), Some("nobody"));
    }

    #[test]
    fn listen_addresses_are_comma_separated_and_repeatable() {
        let settings = parse(&[
            "-p",
            "1234",
            "-l",
            "127.0.0.1,::1",
            "-l",
            "[::1]:99",
            "-l",
            "0.0.0.0:7",
        ])
        .unwrap();
        assert_eq!(
            settings.listen,
            vec![
                ListenSpec::Tcp("127.0.0.1:1234".into()),
                ListenSpec::Tcp("[::1]:1234".into()),
                ListenSpec::Tcp("[::1]:99".into()),
                ListenSpec::Tcp("0.0.0.0:7".into()),
            ]
        );
    }

    #[test]
    fn unix_socket_replaces_tcp() {
        let settings = parse(&["-s", "/tmp/x.sock", "-a", "766"]).unwrap();
        assert_eq!(
            settings.listen,
            vec![ListenSpec::Unix {
                path: "/tmp/x.sock".into(),
                mask: 0o766
            }]
        );
    }

    #[test]
    fn extended_options_are_honoured_or_refused_by_name() {
        let settings = parse(&[
            "-o",
            "idle_timeout=30,hashpower=20",
            "-o",
            "slab_chunk_max=256,modern",
        ])
        .unwrap();
        assert_eq!(settings.idle_timeout, 30);
        assert_eq!(settings.hashpower_init, 20);
        assert_eq!(settings.storage.slab_chunk_max, 256 << 10);
        assert!(
            parse(&[
                "-o",
                "lru_crawler,lru_maintainer,slab_reassign,slab_automove=1"
            ])
            .is_ok()
        );
        assert!(!parse(&["-o", "no_lru_crawler"]).unwrap().background_reclaim);
        assert!(usage_error(&["-o", "ext_path=/tmp/x:1G"]).contains("extstore"));
        assert!(usage_error(&["-o", "ssl_key=x"]).contains("TLS"));
        assert!(usage_error(&["-o", "hot_lru_pct=20"]).contains("hot_lru_pct"));
        assert_eq!(
            usage_error(&["-o", "foo"]),
            "error: Illegal suboption \"foo\""
        );
        assert!(usage_error(&["-o", "idle_timeout=x"]).contains("idle_timeout"));
        assert!(usage_error(&["-o", "slab_chunk_max=2048"]).contains("cannot be larger than -I"));
    }

    #[test]
    fn bad_values_give_one_line() {
        for args in [
            &["-p", "99999"][..],
            &["-m", "abc"],
            &["-m", "0"],
            &["-t", "0"],
            &["-c", "abc"],
            &["-I", "2x"],
            &["-I", "2g"],
            &["-f", "1"],
            &["-U", "11211"],
            &["-a", "999"],
            &["-B", "binary"],
            &["--no-such-flag"],
            &["-l", "[::1"],
            &["-I", "1m", "-m", "1"],
        ] {
            let message = usage_error(args);
            assert!(!message.contains('\n'), "{args:?}: {message}");
            assert!(message.starts_with("error:"), "{args:?}: {message}");
        }
    }

    #[test]
    fn sizes_take_memcached_suffixes() {
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("512").is_err());
        assert!(parse_size("-1m").is_err());
    }

    #[test]
    fn help_and_version_are_printed_not_refused() {
        assert!(
            matches!(parse(&["-h"]), Err(CliOutcome::Print(text)) if text.contains("--memory-limit"))
        );
        assert!(matches!(parse(&["-V"]), Err(CliOutcome::Print(text)) if text.contains("1.6")));
    }

    #[test]
    fn metrics_listen_is_off_unless_given_and_a_port_alone_means_loopback() {
        assert_eq!(parse(&[]).unwrap().metrics_listen, None);
        let listen = |spec: &str| parse(&["--metrics-listen", spec]).unwrap().metrics_listen;
        assert_eq!(listen("9150"), Some("127.0.0.1:9150".parse().unwrap()));
        assert_eq!(listen(":9150"), Some("127.0.0.1:9150".parse().unwrap()));
        assert_eq!(
            listen("0.0.0.0:9150"),
            Some("0.0.0.0:9150".parse().unwrap())
        );
        assert_eq!(listen("[::1]:9150"), Some("[::1]:9150".parse().unwrap()));
        for bad in ["", "127.0.0.1", "127.0.0.1:99999", "nonsense"] {
            let message = usage_error(&["--metrics-listen", bad]);
            assert!(message.starts_with("error:"), "{bad:?}: {message}");
        }
    }
}

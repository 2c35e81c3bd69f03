//! The command line: every flag and `-o` option memcached 1.6.18 has, with memcached's
//! meanings and start-up checks, each flag also readable from a `FERROCACHED_*` environment
//! variable, turned into validated [`Settings`].
//!
//! Owns: flag names, defaults, value parsing, what becomes of each flag and `-o` option
//! (honoured, accepted because ferrocached always does it or has nothing it would tune, or
//! refused by name with the reason), memcached's start-up checks with its messages, and the
//! one-line error with exit status 64 (EX_USAGE) for anything that cannot work. Must not
//! touch: sockets, threads or the storage engine (it only describes them).

use crate::tls::settings::{TlsSettings, strip_notls};
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser, ValueEnum};
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

/// memcached's `ITEM_SIZE_MAX_LOWER_LIMIT` and `ITEM_SIZE_MAX_UPPER_LIMIT`.
const ITEM_SIZE_MIN: usize = 1024;
const ITEM_SIZE_LIMIT: usize = 1 << 30;

/// memcached warns above this many threads.
const THREADS_WARN: u16 = 64;

#[derive(Parser, Debug)]
#[command(
    name = "ferrocached",
    version = crate::CLI_VERSION,
    about = "ferrocache: a memcached-compatible, multi-threaded, sharded cache daemon",
    disable_version_flag = true,
    disable_help_flag = true
)]
struct Cli {
    /// TCP port to listen on (0: the kernel picks one, which the start-up line and
    /// MEMCACHED_PORT_FILENAME report) [default: 11211]
    #[arg(short = 'p', long = "port", env = "FERROCACHED_PORT", allow_negative_numbers = true,
          value_parser = number::<u16>)]
    port: Option<u16>,

    /// UDP port to listen on (0, the default, is off)
    #[arg(short = 'U', long = "udp-port", env = "FERROCACHED_UDP_PORT", default_value_t = 0,
          allow_negative_numbers = true, value_parser = number::<u16>)]
    udp_port: u16,

    /// UNIX socket to listen on (disables TCP, as in memcached)
    #[arg(short = 's', long = "unix-socket", env = "FERROCACHED_UNIX_SOCKET")]
    unix_socket: Option<PathBuf>,

    /// Access mask for the UNIX socket, in octal
    #[arg(short = 'a', long = "unix-mask", env = "FERROCACHED_UNIX_MASK", default_value = "700",
          value_parser = parse_octal)]
    unix_mask: u32,

    /// Interfaces to listen on, comma-separated and repeatable: host, host:port, [v6]:port
    /// (memcached's `notls:` prefix is accepted: no listener speaks TLS)
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
          default_value_t = 64, allow_negative_numbers = true, value_parser = number::<u64>)]
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
          allow_negative_numbers = true, value_parser = number::<i64>)]
    conn_limit: i64,

    /// Number of event-loop threads, at most 256 (default: the number of cores)
    #[arg(short = 't', long = "threads", env = "FERROCACHED_THREADS",
          allow_negative_numbers = true, value_parser = number::<i64>)]
    threads: Option<i64>,

    /// Maximum item size, with a k or m suffix (default: 1m, min: 1k, max: 1024m; below 512k,
    /// -o slab_chunk_max must divide it, as in memcached)
    #[arg(short = 'I', long = "max-item-size", env = "FERROCACHED_MAX_ITEM_SIZE",
          default_value = "1m", allow_hyphen_values = true, value_parser = parse_size)]
    max_item_size: usize,

    /// Chunk size growth factor
    #[arg(short = 'f', long = "slab-growth-factor", env = "FERROCACHED_SLAB_GROWTH_FACTOR",
          default_value_t = ferrocache_storage::DEFAULT_GROWTH_FACTOR, allow_negative_numbers = true,
          value_parser = number::<f64>)]
    slab_growth_factor: f64,

    /// Minimum chunk size in bytes (header, key and value)
    #[arg(short = 'n', long = "slab-min-size", env = "FERROCACHED_SLAB_MIN_SIZE",
          default_value_t = 48, allow_negative_numbers = true, value_parser = number::<usize>)]
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

    /// Disable watch commands (live logging)
    #[arg(short = 'W', long = "disable-watch", env = "FERROCACHED_DISABLE_WATCH")]
    disable_watch: bool,

    /// Delimiter between key prefixes and ids for per-prefix stats; turns them on
    #[arg(
        short = 'D',
        long = "prefix-delimiter",
        env = "FERROCACHED_PREFIX_DELIMITER"
    )]
    prefix_delimiter: Option<String>,

    /// Serve this cluster's node list to clients (ElastiCache auto discovery: `config get
    /// cluster`): one node a line, host|ip|port or host:port; re-read on SIGHUP and on change
    #[arg(long = "cluster-config", env = "FERROCACHED_CLUSTER_CONFIG")]
    cluster_config: Option<PathBuf>,

    /// Let clients replace the node list with `config set cluster` (off by default)
    #[arg(
        long = "cluster-config-writable",
        env = "FERROCACHED_CLUSTER_CONFIG_WRITABLE"
    )]
    cluster_config_writable: bool,

    /// Backlog queue limit of the listening sockets
    #[arg(short = 'b', long = "listen-backlog", env = "FERROCACHED_LISTEN_BACKLOG",
          default_value_t = 1024, allow_negative_numbers = true, value_parser = number::<u32>)]
    listen_backlog: u32,

    /// Maximum requests served per connection per turn of the event loop
    #[arg(short = 'R', long = "max-reqs-per-event", env = "FERROCACHED_MAX_REQS_PER_EVENT",
          default_value_t = 20, allow_negative_numbers = true, value_parser = number::<u32>)]
    max_reqs_per_event: u32,

    /// Verbose: -v logs connections and warnings; -vv also every request line (`<FD line`)
    /// and reply (`>FD reply`) as memcached's -vv does; -vvv logs what -vv does
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

    /// Try to use large memory pages: refused, slab pages are allocated one at a time and
    /// cannot be backed by huge pages
    #[arg(
        short = 'L',
        long = "enable-largepages",
        env = "FERROCACHED_ENABLE_LARGEPAGES"
    )]
    enable_largepages: bool,

    /// Protocol: ascii (text and meta), binary, or auto (chosen by each connection's first
    /// byte); auto by default, ascii with -Y
    #[arg(short = 'B', long = "protocol", env = "FERROCACHED_PROTOCOL")]
    protocol: Option<Protocol>,

    /// SASL authentication over the binary protocol (PLAIN; users from the file named by
    /// MEMCACHED_SASL_PWDB, user:password lines); implies -B binary, refuses ASCII and UDP
    #[arg(short = 'S', long = "enable-sasl", env = "FERROCACHED_ENABLE_SASL")]
    enable_sasl: bool,

    /// ASCII authentication: a file of up to 8 user:password lines; clients log in with
    /// `set <any key> 0 0 <n>` and the value `<user> <password>`
    #[arg(short = 'Y', long = "auth-file", env = "FERROCACHED_AUTH_FILE")]
    auth_file: Option<PathBuf>,

    /// mmap a file (on tmpfs, e.g. /dev/shm) for item memory: a clean shutdown (SIGTERM,
    /// SIGUSR1, `shutdown`) saves the cache in it and the next start with the same settings
    /// serves it again
    #[arg(short = 'e', long = "memory-file", env = "FERROCACHED_MEMORY_FILE")]
    memory_file: Option<PathBuf>,

    /// Enable TLS on the TCP listeners (needs -o ssl_chain_cert=FILE; -l notls:ADDR stays plain)
    #[arg(short = 'Z', long = "enable-ssl", env = "FERROCACHED_ENABLE_SSL")]
    enable_ssl: bool,

    /// Number of NAPI ids for thread selection: refused, connections go to the threads in turn
    #[arg(short = 'N', long = "napi-ids", env = "FERROCACHED_NAPI_IDS",
          allow_negative_numbers = true, value_parser = number::<i64>)]
    napi_ids: Option<i64>,

    /// Comma-separated extended options (the list follows)
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

    /// Do not time requests: `stats latency` and the metrics' request duration histograms are
    /// left out (for measuring what recording costs)
    #[arg(
        long = "no-latency-histograms",
        env = "FERROCACHED_NO_LATENCY_HISTOGRAMS"
    )]
    no_latency_histograms: bool,

    /// Print this help and exit
    #[arg(short = 'h', long = "help", action = ArgAction::Help)]
    help: Option<bool>,

    /// Print the license and exit
    #[arg(short = 'i', long = "license")]
    license: bool,

    /// Print version and exit
    #[arg(short = 'V', long = "version", action = ArgAction::Version)]
    version: Option<bool>,
}

/// `-B`: which protocols a connection may speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// Text and meta only.
    Ascii,
    /// Binary only.
    Binary,
    /// Each connection's first byte chooses (0x80 binary), memcached's default.
    Auto,
}

impl Protocol {
    /// The name `stats settings` (`binding_protocol`) and the `-vv` lines give it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Ascii => "ascii",
            Protocol::Binary => "binary",
            Protocol::Auto => "auto-negotiate",
        }
    }
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

/// A line to log once the logger is up (the command line is read before it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupNote {
    pub level: log::Level,
    pub text: String,
}

/// Everything the daemon was asked to be, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: Vec<ListenSpec>,
    pub port: u16,
    /// `-U`: 0 is off (memcached 1.6's default).
    pub udp_port: u16,
    pub unix_mask: u32,
    /// `-B`: the protocols connections may speak.
    pub protocol: Protocol,
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
    /// `watch` is allowed (`-W` forbids it).
    pub watch_enabled: bool,
    /// Bytes of event lines each watcher's buffer holds (`-o watcher_logbuf_size`, in KiB there).
    pub watcher_buffer: usize,
    /// The cluster node list file (`--cluster-config`), if this node serves one.
    pub cluster_config: Option<PathBuf>,
    /// `config set cluster` is allowed.
    pub cluster_config_writable: bool,
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
    /// What the command line asked that is worth a log line (accepted options, warnings).
    pub notes: Vec<StartupNote>,
    /// Where the Prometheus metrics endpoint listens (`--metrics-listen`), if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Whether requests are timed into the latency histograms (`--no-latency-histograms`).
    pub latency_histograms: bool,
    pub storage: StorageConfig,
    /// `-Z` and `-o ssl_*`.
    pub tls: TlsSettings,
    /// `-Y`: the auth file.
    pub auth_file: Option<PathBuf>,
    /// `-S`: SASL over the binary protocol.
    pub sasl: bool,
    /// `-e`: the file the cache's memory is mapped from, to restart warm.
    pub memory_file: Option<PathBuf>,
}

/// A command line that cannot work, with the message to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliOutcome {
    /// `-h`, `-V` or `-i`: print this on stdout and exit 0.
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
    let matches = Cli::command()
        .after_help(extended_help())
        .try_get_matches_from(args)
        .map_err(clap_outcome)?;
    let cli = Cli::from_arg_matches(&matches).map_err(clap_outcome)?;
    if cli.license {
        return Err(CliOutcome::Print(license()));
    }
    settings_from(cli).map_err(CliOutcome::Usage)
}

fn clap_outcome(error: clap::Error) -> CliOutcome {
    match error.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
            CliOutcome::Print(error.render().to_string())
        }
        _ => CliOutcome::Usage(first_line(&error.render().to_string())),
    }
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

/// What `-i` prints: the license of ferrocached itself (memcached prints its own and
/// libevent's; the crates ferrocached is built from carry their own licenses).
fn license() -> String {
    format!(
        "{} {}\n\n\
         Copyright (c) the ferrocache authors. All rights reserved.\n\n\
         Redistribution and use in source and binary forms, with or without modification, are\n\
         permitted provided that the following conditions are met:\n\n\
         1. Redistributions of source code must retain the above copyright notice, this list of\n   \
         conditions and the following disclaimer.\n\
         2. Redistributions in binary form must reproduce the above copyright notice, this list\n   \
         of conditions and the following disclaimer in the documentation and/or other\n   \
         materials provided with the distribution.\n\
         3. Neither the name of the copyright holder nor the names of its contributors may be\n   \
         used to endorse or promote products derived from this software without specific\n   \
         prior written permission.\n\n\
         THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS \"AS IS\" AND ANY\n\
         EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF\n\
         MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL\n\
         THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL,\n\
         SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT\n\
         OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS\n\
         INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT\n\
         LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE\n\
         OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.\n\n\
         (SPDX: {}.) The Rust crates ferrocached is built from are distributed under their own\n\
         licenses (MIT, Apache-2.0 and similar); `cargo tree` in the source lists them.\n",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_LICENSE"),
    )
}

/// Flags ferrocached has no way to do, or that other parts of the project are building.
fn refuse_unavailable(cli: &Cli) -> Result<(), String> {
    let refusal = if cli.enable_largepages {
        Some(
            "-L is not supported by ferrocached: slab pages are allocated one at a time, \
             which huge pages cannot back"
                .to_string(),
        )
    } else {
        cli.napi_ids.map(|ids| {
            format!(
                "-N {ids} is not supported by ferrocached: connections are handed to the \
                 threads in turn, not by NAPI id"
            )
        })
    };
    refusal.map_or(Ok(()), |why| Err(format!("error: {why}")))
}

/// memcached's refusals around `-S`, checked before `-Y`'s as memcached checks them: SASL is
/// binary-only, so an ASCII or negotiating protocol, or UDP, is refused.
fn check_sasl(cli: &Cli) -> Result<(), String> {
    if cli.enable_sasl {
        if cli
            .protocol
            .is_some_and(|protocol| protocol != Protocol::Binary)
        {
            return Err("error: You cannot allow the ASCII protocol while using SASL.".to_string());
        }
        if cli.udp_port != 0 {
            return Err(
                "error: Cannot enable UDP while using binary SASL authentication.".to_string(),
            );
        }
    }
    Ok(())
}

/// memcached's refusals around `-Y`, checked before the general ones so the message is its.
fn check_auth_file(cli: &Cli) -> Result<(), String> {
    if cli.auth_file.is_some() {
        if cli
            .protocol
            .is_some_and(|protocol| protocol != Protocol::Ascii)
        {
            return Err("error: You cannot allow the BINARY protocol while using ascii authentication tokens.".to_string());
        }
        if cli.udp_port != 0 {
            return Err(
                "error: Cannot use UDP with ascii authentication enabled (-U 0 to disable)"
                    .to_string(),
            );
        }
    }
    Ok(())
}

fn settings_from(cli: Cli) -> Result<Settings, String> {
    check_sasl(&cli)?;
    check_auth_file(&cli)?;
    refuse_unavailable(&cli)?;
    let mut notes = Vec::new();
    if cli.conn_limit <= 0 {
        return Err("error: Maximum connections must be greater than 0".to_string());
    }
    if cli.max_reqs_per_event == 0 {
        return Err("error: Number of requests per event must be greater than 0".to_string());
    }
    if cli.slab_growth_factor.is_nan() || cli.slab_growth_factor <= 1.0 {
        return Err("error: Factor must be greater than 1".to_string());
    }
    if cli.slab_min_size == 0 {
        return Err("error: Chunk size must be greater than 0".to_string());
    }
    // memcached takes the first character of -D's argument.
    let prefix_delimiter = match cli.prefix_delimiter.as_deref().map(str::as_bytes) {
        Some([]) => return Err("error: No delimiter specified".to_string()),
        Some([first, ..]) => Some(*first),
        None => None,
    };
    let threads = match cli.threads {
        Some(threads) if threads <= 0 => {
            return Err("error: Number of threads must be greater than 0".to_string());
        }
        Some(threads) if threads > 256 => {
            return Err(format!("error: -t {threads}: at most 256 threads"));
        }
        Some(threads) => threads as usize,
        None => std::thread::available_parallelism().map_or(4, |n| n.get()),
    };
    if threads > usize::from(THREADS_WARN) {
        notes.push(StartupNote {
            level: log::Level::Warn,
            text: "Setting a high number of worker threads is not recommended. Set this value \
                   to the number of cores in your machine or less."
                .to_string(),
        });
    }
    let memory_limit = usize::try_from(cli.memory_limit)
        .ok()
        .and_then(|mb| mb.checked_mul(MIB))
        .ok_or_else(|| {
            format!(
                "error: memory limit of {} MiB is too large",
                cli.memory_limit
            )
        })?;
    let storage = StorageConfig {
        memory_limit,
        chunk_size_min: cli.slab_min_size,
        growth_factor: cli.slab_growth_factor,
        item_size_max: cli.max_item_size,
        evictions: !cli.disable_evictions,
        cas: !cli.disable_cas,
        ..StorageConfig::default()
    };
    let partitions = threads * PARTITIONS_PER_THREAD;
    // With -U and without -p, memcached listens for TCP on the UDP port too.
    let port = cli.port.unwrap_or(if cli.udp_port != 0 {
        cli.udp_port
    } else {
        11211
    });
    let mut settings = Settings {
        listen: Vec::new(),
        port,
        udp_port: cli.udp_port,
        unix_mask: cli.unix_mask,
        // As memcached: -Y without -B means ascii (even with -S: memcached sets binary for
        // -S, then ascii for -Y, and its SASL is then never reached), -S means binary;
        // otherwise auto-negotiate.
        protocol: cli.protocol.unwrap_or(if cli.auth_file.is_some() {
            Protocol::Ascii
        } else if cli.enable_sasl {
            Protocol::Binary
        } else {
            Protocol::Auto
        }),
        sasl: cli.enable_sasl,
        threads,
        partitions,
        conn_limit: cli.conn_limit as usize,
        backlog: i32::try_from(cli.listen_backlog).unwrap_or(i32::MAX),
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
        watch_enabled: !cli.disable_watch,
        watcher_buffer: crate::watch::WATCHER_BUFFER,
        cluster_config: cli.cluster_config,
        cluster_config_writable: cli.cluster_config_writable,
        prefix_delimiter: prefix_delimiter.unwrap_or(b':'),
        detail_enabled: prefix_delimiter.is_some(),
        idle_timeout: 0,
        background_reclaim: true,
        hashpower_init: 0,
        notes,
        metrics_listen: cli.metrics_listen,
        latency_histograms: !cli.no_latency_histograms,
        storage,
        tls: TlsSettings {
            enabled: cli.enable_ssl,
            ..TlsSettings::default()
        },
        auth_file: cli.auth_file.clone(),
        memory_file: cli.memory_file.clone(),
    };
    settings.storage.index_capacity = (DEFAULT_INDEX_SLOTS / partitions).max(1 << 10);
    let mut extended = Extended::default();
    for option in cli.extended.iter().filter(|o| !o.is_empty()) {
        extended.apply(&mut settings, option)?;
    }
    check_sizes(&mut settings.storage, extended.slab_chunk_max_given)?;
    extended.check_lru_options()?;
    settings.listen = match cli.unix_socket {
        Some(path) => vec![ListenSpec::Unix {
            path,
            mask: cli.unix_mask,
        }],
        None => cli
            .listen
            .iter()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (plaintext, l) = strip_notls(l);
                let spec = tcp_listen_address(l, settings.port)?;
                if let (true, ListenSpec::Tcp(address)) = (plaintext, &spec) {
                    settings.tls.plaintext_addresses.push(address.clone());
                }
                Ok::<_, String>(spec)
            })
            .collect::<Result<_, _>>()?,
    };
    let has_tcp = settings
        .listen
        .iter()
        .any(|l| matches!(l, ListenSpec::Tcp(_)));
    settings.tls.validate(has_tcp)?;
    if settings.listen.is_empty() {
        return Err("error: nothing to listen on (-l is empty)".to_string());
    }
    settings
        .storage
        .validate()
        .map_err(|error| format!("error: {error}"))?;
    Ok(settings)
}

/// memcached's checks of `-I`, `-m` and `slab_chunk_max` after all flags are read, in its
/// order and with its words. `slab_chunk_max` is in bytes, as memcached 1.6.18 parses it
/// (its `-h` says kilobytes).
fn check_sizes(storage: &mut StorageConfig, slab_chunk_max_given: bool) -> Result<(), String> {
    let item = storage.item_size_max;
    if item < ITEM_SIZE_MIN {
        return Err("error: Item max size cannot be less than 1024 bytes.".to_string());
    }
    if item > storage.memory_limit / 2 {
        return Err("error: Cannot set item size limit higher than 1/2 of memory max.".to_string());
    }
    if item > ITEM_SIZE_LIMIT {
        return Err("error: Cannot set item size limit higher than a gigabyte.".to_string());
    }
    if item > 1 << 20 && !slab_chunk_max_given {
        storage.slab_chunk_max = storage.page_size / 2;
    }
    let chunk = storage.slab_chunk_max;
    if chunk > item {
        return Err(format!(
            "error: slab_chunk_max (bytes: {chunk}) cannot be larger than -I (item_size_max {item})"
        ));
    }
    if chunk == 0 || !item.is_multiple_of(chunk) {
        return Err(format!(
            "error: -I (item_size_max: {item}) must be evenly divisible by slab_chunk_max (bytes: {chunk})"
        ));
    }
    if !storage.page_size.is_multiple_of(chunk) {
        return Err(format!(
            "error: slab_chunk_max (bytes: {chunk}) must divide evenly into {} (slab_page_size)",
            storage.page_size
        ));
    }
    Ok(())
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address, completed with `-p`.
/// memcached's `notls:` prefix (a listener without TLS when TLS is on) is dropped: no
/// listener here speaks TLS.
fn tcp_listen_address(spec: &str, default_port: u16) -> Result<ListenSpec, String> {
    let spec = spec.trim();
    let spec = spec.strip_prefix("notls:").unwrap_or(spec);
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

/// What becomes of an `-o` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    /// Changes what the server does.
    Honoured,
    /// Asks for what ferrocached always does; accepted (and logged) so memcached command lines
    /// keep working.
    AlwaysOn(&'static str),
    /// Tunes a mechanism ferrocached does not have; the value is checked as memcached checks
    /// it, then accepted with a warning that says why it changes nothing.
    NoEffect(&'static str),
    /// Cannot be done here; refused by name with the reason.
    Refused(&'static str),
}

const SEGMENTED_LRU: &str =
    "ferrocached evicts with S3-FIFO over a CLOCK per slab class, not memcached's segmented LRU";
const CRAWLER: &str = "expired items are reclaimed in short slices of each event loop";
const AUTOMOVE: &str = "pages move between slab classes by eviction age, without tunables";
const EXTSTORE: &str = "extstore (external storage on flash) is not supported";
const PROXY: &str = "memcached's proxy mode is not supported";

/// Every `-o` option of memcached 1.6.18 (`subopts_tokens` in memcached.c, the extstore options
/// of storage.c, the TLS and proxy ones of its optional builds), in memcached's order.
const EXTENDED_OPTIONS: &[(&str, Disposition)] = {
    use Disposition::*;
    &[
        (
            "maxconns_fast",
            AlwaysOn("connections over -c are always refused at once"),
        ),
        ("hashpower", Honoured),
        (
            "no_hashexpand",
            NoEffect("the index always grows, a partition at a time"),
        ),
        (
            "slab_reassign",
            AlwaysOn("pages always move to the slab class that needs them"),
        ),
        ("slab_automove", AlwaysOn(AUTOMOVE)),
        ("slab_automove_ratio", NoEffect(AUTOMOVE)),
        ("slab_automove_window", NoEffect(AUTOMOVE)),
        (
            "tail_repair_time",
            NoEffect("items are copied out under the partition lock, so no reference can leak"),
        ),
        (
            "hash_algorithm",
            NoEffect("keys are hashed with ahash, seeded per process"),
        ),
        ("lru_crawler", Honoured),
        ("lru_crawler_sleep", NoEffect(CRAWLER)),
        ("lru_crawler_tocrawl", NoEffect(CRAWLER)),
        (
            "lru_maintainer",
            AlwaysOn("each event loop maintains its partition in the background"),
        ),
        ("hot_lru_pct", NoEffect(SEGMENTED_LRU)),
        ("warm_lru_pct", NoEffect(SEGMENTED_LRU)),
        ("hot_max_factor", NoEffect(SEGMENTED_LRU)),
        ("warm_max_factor", NoEffect(SEGMENTED_LRU)),
        ("temporary_ttl", NoEffect(SEGMENTED_LRU)),
        ("idle_timeout", Honoured),
        ("watcher_logbuf_size", Honoured),
        (
            "worker_logbuf_size",
            NoEffect("event lines go straight into each watcher's buffer, with no per-thread one"),
        ),
        (
            "slab_sizes",
            Refused("slab class sizes come from -n and -f; a list of sizes is not supported"),
        ),
        ("slab_chunk_max", Honoured),
        (
            "track_sizes",
            NoEffect("item size histograms (stats sizes) are not kept"),
        ),
        (
            "no_inline_ascii_resp",
            NoEffect("memcached 1.6 ignores it too"),
        ),
        ("modern", AlwaysOn("there is nothing older to fall back to")),
        ("no_modern", Honoured),
        ("no_chunked_items", Honoured),
        ("no_slab_reassign", NoEffect(AUTOMOVE)),
        ("no_slab_automove", NoEffect(AUTOMOVE)),
        (
            "no_maxconns_fast",
            Refused("connections over -c are always refused at once with an error"),
        ),
        (
            "inline_ascii_resp",
            NoEffect("memcached 1.6 ignores it too"),
        ),
        ("no_lru_crawler", Honoured),
        ("no_lru_maintainer", NoEffect(SEGMENTED_LRU)),
        (
            "no_drop_privileges",
            AlwaysOn("no system-call filter is installed"),
        ),
        (
            "drop_privileges",
            Refused(
                "no system-call filter is installed; the systemd unit's SystemCallFilter= does it",
            ),
        ),
        (
            "resp_obj_mem_limit",
            NoEffect("memcached 1.6 no longer uses it either"),
        ),
        (
            "read_buf_mem_limit",
            NoEffect("each connection's buffers are bounded by back-pressure instead"),
        ),
        ("ssl_chain_cert", Honoured),
        ("ssl_key", Honoured),
        ("ssl_verify_mode", Honoured),
        ("ssl_keyformat", Honoured),
        ("ssl_ciphers", Honoured),
        ("ssl_ca_cert", Honoured),
        ("ssl_wbuf_size", Honoured),
        ("ssl_session_cache", Honoured),
        (
            "ssl_kernel_tls",
            Refused(
                "rustls keeps the record layer in the process (handing keys to the kernel would need its own handling of key updates and tickets), and kernels without the \"tls\" TCP ULP cannot take it",
            ),
        ),
        ("ssl_min_version", Honoured),
        ("proxy_config", Refused(PROXY)),
        ("proxy_uring", Refused(PROXY)),
        (
            "sock_cookie_id",
            Refused("socket cookies (SO_MARK on the listeners) are not supported"),
        ),
        ("ext_page_size", Refused(EXTSTORE)),
        ("ext_wbuf_size", Refused(EXTSTORE)),
        ("ext_threads", Refused(EXTSTORE)),
        ("ext_io_depth", Refused(EXTSTORE)),
        ("ext_path", Refused(EXTSTORE)),
        ("ext_item_size", Refused(EXTSTORE)),
        ("ext_item_age", Refused(EXTSTORE)),
        ("ext_low_ttl", Refused(EXTSTORE)),
        ("ext_recache_rate", Refused(EXTSTORE)),
        ("ext_compact_under", Refused(EXTSTORE)),
        ("ext_drop_under", Refused(EXTSTORE)),
        ("ext_max_sleep", Refused(EXTSTORE)),
        ("ext_max_frag", Refused(EXTSTORE)),
        ("ext_drop_unread", Refused(EXTSTORE)),
        ("slab_automove_freeratio", NoEffect(AUTOMOVE)),
    ]
};

fn disposition(name: &str) -> Option<Disposition> {
    EXTENDED_OPTIONS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, disposition)| *disposition)
}

/// The part of `-h` after the flags: every `-o` option and what becomes of it.
fn extended_help() -> String {
    let mut help =
        String::from("Extended options (-o name[=value],...), every one memcached 1.6.18 has:\n");
    for (name, disposition) in EXTENDED_OPTIONS {
        let what = match disposition {
            Disposition::Honoured => "honoured".to_string(),
            Disposition::AlwaysOn(why) => format!("accepted: {why}"),
            Disposition::NoEffect(why) => format!("accepted, no effect: {why}"),
            Disposition::Refused(why) => format!("refused: {why}"),
        };
        help.push_str(&format!("  - {name}: {what}\n"));
    }
    help.push_str(
        "\nslab_chunk_max is in bytes, as memcached 1.6.18 parses it. Every flag can also be \
         set from FERROCACHED_<LONG_NAME> (FERROCACHED_MEMORY_LIMIT=64, ...).\n",
    );
    help
}

/// `-o` options read so far, for the checks memcached makes once all are read.
#[derive(Debug)]
struct Extended {
    slab_chunk_max_given: bool,
    hot_lru_pct: i64,
    warm_lru_pct: i64,
    temporary_ttl_given: bool,
    lru_maintainer: bool,
}

impl Default for Extended {
    fn default() -> Self {
        Extended {
            slab_chunk_max_given: false,
            hot_lru_pct: 20,
            warm_lru_pct: 40,
            temporary_ttl_given: false,
            lru_maintainer: true,
        }
    }
}

/// One `name[=value]` of `-o`.
struct Suboption<'a> {
    text: &'a str,
    name: &'a str,
    value: Option<&'a str>,
}

impl<'a> Suboption<'a> {
    fn parse(text: &'a str) -> Self {
        let text = text.trim();
        let (name, value) = match text.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim())),
            None => (text, None),
        };
        Suboption { text, name, value }
    }

    /// The value, or memcached's message for its absence.
    fn value(&self, missing: &str) -> Result<&'a str, String> {
        self.value.ok_or_else(|| format!("error: {missing}"))
    }

    fn integer(&self, missing: &str) -> Result<i64, String> {
        self.value(missing)?
            .parse()
            .map_err(|_| format!("error: could not parse argument to {}", self.name))
    }

    fn float(&self, missing: &str) -> Result<f64, String> {
        self.value(missing)?
            .parse()
            .map_err(|_| format!("error: could not parse argument to {}", self.name))
    }

    /// A 32-bit unsigned value, as memcached's `safe_strtoul` reads it.
    fn unsigned(&self, missing: &str) -> Result<u32, String> {
        self.value(missing)?
            .parse()
            .map_err(|_| format!("error: could not parse argument to {}", self.name))
    }
}

/// `Err` with memcached's message when `bad` holds.
fn reject_if(bad: bool, message: &str) -> Result<(), String> {
    if bad {
        Err(format!("error: {message}"))
    } else {
        Ok(())
    }
}

impl Extended {
    fn apply(&mut self, settings: &mut Settings, text: &str) -> Result<(), String> {
        let option = Suboption::parse(text);
        let name = option.name;
        let Some(disposition) = disposition(name) else {
            return Err(format!("error: Illegal suboption \"{}\"", option.text));
        };
        // The ssl_* options it serves are TLS's to read and check.
        if !matches!(disposition, Disposition::Refused(_))
            && settings.tls.apply_option(name, option.value)?
        {
            return Ok(());
        }
        match disposition {
            Disposition::Refused(why) => {
                return Err(format!(
                    "error: -o {name} is not supported by ferrocached: {why}"
                ));
            }
            Disposition::Honoured => self.honour(settings, &option)?,
            Disposition::AlwaysOn(why) => {
                self.validate(&option)?;
                settings.notes.push(StartupNote {
                    level: log::Level::Info,
                    text: format!("-o {name}: accepted: {why}"),
                });
            }
            Disposition::NoEffect(why) => {
                self.validate(&option)?;
                settings.notes.push(StartupNote {
                    level: log::Level::Warn,
                    text: format!("-o {}: accepted but changes nothing: {why}", option.text),
                });
            }
        }
        Ok(())
    }

    fn honour(&mut self, settings: &mut Settings, option: &Suboption<'_>) -> Result<(), String> {
        let name = option.name;
        match name {
            "idle_timeout" => {
                let seconds = option.integer("Missing numeric argument for idle_timeout")?;
                settings.idle_timeout = u32::try_from(seconds)
                    .map_err(|_| format!("error: -o idle_timeout={seconds} is out of range"))?;
            }
            "hashpower" => {
                let power = option.integer("Missing numeric argument for hashpower")?;
                reject_if(
                    power < 12,
                    &format!("Initial hashtable multiplier of {power} is too low"),
                )?;
                reject_if(
                    power > 32,
                    &format!(
                        "Initial hashtable multiplier of {power} is too high; choose a value \
                         based on \"STAT hash_power_level\" from a running instance"
                    ),
                )?;
                settings.hashpower_init = power as u8;
                // The table memcached would size as one is spread over the partitions.
                settings.storage.index_capacity =
                    ((1usize << power) / settings.partitions).max(1 << 10);
            }
            "slab_chunk_max" => {
                let bytes = option.integer("Missing slab_chunk_max argument")?;
                settings.storage.slab_chunk_max = usize::try_from(bytes)
                    .ok()
                    .filter(|bytes| i32::try_from(*bytes).is_ok())
                    .ok_or_else(|| {
                        "error: could not parse argument to slab_chunk_max".to_string()
                    })?;
                self.slab_chunk_max_given = true;
            }
            "watcher_logbuf_size" => {
                let kilobytes = option.unsigned("Missing watcher_logbuf_size argument")?;
                settings.watcher_buffer = kilobytes as usize * 1024;
            }
            "lru_crawler" => settings.background_reclaim = true,
            "no_lru_crawler" => settings.background_reclaim = false,
            "no_chunked_items" => settings.storage.slab_chunk_max = settings.storage.page_size,
            "no_modern" => {
                // memcached 1.4's defaults: no crawler and items in one chunk are what they
                // change here; its other parts (LRU, automove, hash) are logged as moot.
                if !self.slab_chunk_max_given {
                    settings.storage.slab_chunk_max = settings.storage.page_size;
                }
                settings.background_reclaim = false;
                self.lru_maintainer = false;
                settings.notes.push(StartupNote {
                    level: log::Level::Warn,
                    text: format!(
                        "-o no_modern: the background reclaim is off and items are not chunked; \
                         the rest of memcached 1.4's defaults changes nothing: {SEGMENTED_LRU}"
                    ),
                });
            }
            _ => unreachable!("every honoured option has an arm: {name}"),
        }
        Ok(())
    }

    /// memcached's checks of the options ferrocached accepts without acting on them, so that a
    /// value memcached refuses is refused here too.
    fn validate(&mut self, option: &Suboption<'_>) -> Result<(), String> {
        match option.name {
            "slab_automove" if option.value.is_some() => {
                let mode = option.integer("")?;
                reject_if(
                    !(0..=2).contains(&mode),
                    "slab_automove must be between 0 and 2",
                )?;
            }
            "slab_automove_ratio" => {
                let ratio = option.float("Missing slab_automove_ratio argument")?;
                reject_if(
                    ratio <= 0.0 || ratio > 1.0,
                    "slab_automove_ratio must be > 0 and < 1",
                )?;
            }
            "slab_automove_window" => {
                let window = option.integer("Missing slab_automove_window argument")?;
                reject_if(window < 3, "slab_automove_window must be > 2")?;
            }
            "tail_repair_time" => {
                let seconds = option.integer("Missing numeric argument for tail_repair_time")?;
                reject_if(
                    seconds < 10,
                    "Cannot set tail_repair_time to less than 10 seconds",
                )?;
            }
            "hash_algorithm" => {
                let algorithm = option.value("Missing hash_algorithm argument")?;
                reject_if(
                    !matches!(algorithm, "jenkins" | "murmur3" | "xxh3"),
                    "Unknown hash_algorithm option (jenkins, murmur3, xxh3)",
                )?;
            }
            "lru_crawler_sleep" => {
                let micros = option.integer("Missing lru_crawler_sleep value")?;
                reject_if(
                    !(0..=1_000_000).contains(&micros),
                    "LRU crawler sleep must be between 0 and 1 second",
                )?;
            }
            "lru_crawler_tocrawl" => {
                option
                    .unsigned("Missing lru_crawler_tocrawl value")
                    .map_err(|_| {
                        "error: lru_crawler_tocrawl takes a numeric 32bit value".to_string()
                    })?;
            }
            "lru_maintainer" => self.lru_maintainer = true,
            "no_lru_maintainer" => self.lru_maintainer = false,
            "hot_lru_pct" | "warm_lru_pct" => {
                let name = option.name;
                let pct = option.integer(&format!("Missing {name} argument"))?;
                reject_if(
                    !(1..80).contains(&pct),
                    &format!("{name} must be > 1 and < 80"),
                )?;
                if name == "hot_lru_pct" {
                    self.hot_lru_pct = pct;
                } else {
                    self.warm_lru_pct = pct;
                }
            }
            "hot_max_factor" | "warm_max_factor" => {
                let name = option.name;
                let factor = option.float(&format!("Missing {name} argument"))?;
                reject_if(factor <= 0.0, &format!("{name} must be > 0"))?;
            }
            "temporary_ttl" => {
                option.integer("Missing temporary_ttl argument")?;
                self.temporary_ttl_given = true;
            }
            "worker_logbuf_size" | "read_buf_mem_limit" => {
                option.unsigned(&format!("Missing {} argument", option.name))?;
            }
            "slab_automove_freeratio" => {
                option.float("Missing slab_automove_freeratio argument")?;
            }
            _ => {}
        }
        Ok(())
    }

    /// memcached's checks of the LRU options once all are read.
    fn check_lru_options(&self) -> Result<(), String> {
        reject_if(
            self.hot_lru_pct + self.warm_lru_pct > 80,
            "hot_lru_pct + warm_lru_pct cannot be more than 80% combined",
        )?;
        reject_if(
            self.temporary_ttl_given && !self.lru_maintainer,
            "temporary_ttl requires lru_maintainer to be enabled",
        )
    }
}

/// A number of the flag's type; a negative number where none is allowed is an error of its
/// own, not a flag clap does not know.
fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    let trimmed = text.trim();
    trimmed.parse::<T>().map_err(|_| {
        if trimmed.starts_with('-') && trimmed[1..].parse::<f64>().is_ok() {
            format!("'{text}' is negative; a number of 0 or more is needed")
        } else {
            format!("'{text}' is not a number")
        }
    })
}

/// `-a 700`: an octal mode.
fn parse_octal(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|mask| *mask <= 0o777)
        .ok_or_else(|| format!("'{text}' is not an octal mode (e.g. 700)"))
}

/// `-I 1m`, `-I 512k`, `-I 2048`: bytes, with memcached's k and m suffixes. The limits are
/// checked once every flag is read, as memcached does.
fn parse_size(text: &str) -> Result<usize, String> {
    let trimmed = text.trim();
    let (digits, unit) = match trimmed.char_indices().last() {
        Some((i, 'k' | 'K')) => (&trimmed[..i], 1 << 10),
        Some((i, 'm' | 'M')) => (&trimmed[..i], 1 << 20),
        _ => (trimmed, 1),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("'{text}' is not a size (bytes, or with a k or m suffix: 1m, 512k)"))
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
        assert_eq!(settings.storage.slab_chunk_max, 1 << 19);
        assert_eq!(settings.protocol, Protocol::Auto);
        assert_eq!(settings.protocol.name(), "auto-negotiate");
        assert_eq!(settings.udp_port, 0);
        assert!(settings.storage.evictions && settings.storage.cas && settings.flush_enabled);
        assert!(settings.watch_enabled && settings.dump_enabled);
        assert!(!settings.shutdown_enabled);
        assert!(settings.threads >= 1);
    }

    #[test]
    fn memcached_flags_map_onto_settings() {
        let settings = parse(&[
            "-p", "22122", "-m", "128", "-M", "-c", "50", "-t", "3", "-I", "2m", "-f", "1.5", "-n",
            "64", "-C", "-F", "-A", "-b", "16", "-R", "5", "-vv", "-u", "nobody", "-W", "-X", "-B",
            "ascii", "-U", "0",
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
        assert!(!settings.watch_enabled && !settings.dump_enabled);
        assert_eq!(settings.protocol, Protocol::Ascii);
        assert_eq!(
            (
                settings.backlog,
                settings.reqs_per_event,
                settings.verbosity
            ),
            (16, 5, 2)
        );
        assert_eq!(settings.user.as_deref(), Some("nobody"));
        assert_eq!(parse(&["-vvv"]).unwrap().verbosity, 3);
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
    fn sasl_is_binary_only_as_in_memcached() {
        let settings = parse(&["-S"]).unwrap();
        assert!(settings.sasl);
        assert_eq!(settings.protocol, Protocol::Binary);
        assert_eq!(
            parse(&["-S", "-B", "binary"]).unwrap().protocol,
            Protocol::Binary
        );
        for protocol in ["ascii", "auto"] {
            assert_eq!(
                usage_error(&["-S", "-B", protocol]),
                "error: You cannot allow the ASCII protocol while using SASL."
            );
        }
        assert_eq!(
            usage_error(&["-S", "-U", "11211"]),
            "error: Cannot enable UDP while using binary SASL authentication."
        );
        // memcached: -Y's ascii wins over -S's binary when -B is not given.
        let both = parse(&["-S", "-Y", "/dev/null"]).unwrap();
        assert_eq!(both.protocol, Protocol::Ascii);
        assert!(usage_error(&["-S", "-Y", "/dev/null", "-B", "binary"]).contains("BINARY"));
    }

    #[test]
    fn flags_other_parts_build_are_refused_by_name_until_then() {
        let memory_file = parse(&["-e", "/dev/shm/x"]).unwrap().memory_file;
        assert_eq!(memory_file, Some(PathBuf::from("/dev/shm/x")));
        assert!(usage_error(&["-L"]).contains("huge pages"));
        assert!(usage_error(&["-N", "2"]).contains("NAPI"));
    }

    #[test]
    fn udp_port_without_tcp_port_is_the_tcp_port_too() {
        // As memcached: `-U 5000` alone listens for TCP on 5000 as well.
        let cli = Cli::try_parse_from(["ferrocached", "-U", "5000"]).unwrap();
        assert_eq!(cli.port, None);
        assert_eq!(cli.udp_port, 5000);
        assert_eq!(parse(&["-U", "0"]).unwrap().port, 11211);
    }

    #[test]
    fn negative_numbers_are_number_errors() {
        for (flag, value) in [
            ("-m", "-5"),
            ("-p", "-1"),
            ("-U", "-1"),
            ("-R", "-1"),
            ("-b", "-3"),
            ("-n", "-48"),
            ("-I", "-1m"),
        ] {
            let message = usage_error(&[flag, value]);
            assert!(
                message.contains(&format!("invalid value '{value}'")),
                "{flag} {value}: {message}"
            );
            assert!(!message.contains("unexpected argument"), "{message}");
        }
        assert_eq!(
            usage_error(&["-c", "-1"]),
            "error: Maximum connections must be greater than 0"
        );
        assert_eq!(
            usage_error(&["-t", "-2"]),
            "error: Number of threads must be greater than 0"
        );
        assert_eq!(
            usage_error(&["-f", "-2"]),
            "error: Factor must be greater than 1"
        );
    }

    #[test]
    fn memcacheds_start_up_checks_with_its_words() {
        for (args, message) in [
            (
                &["-c", "0"][..],
                "Maximum connections must be greater than 0",
            ),
            (&["-t", "0"], "Number of threads must be greater than 0"),
            (
                &["-R", "0"],
                "Number of requests per event must be greater than 0",
            ),
            (&["-f", "1"], "Factor must be greater than 1"),
            (&["-n", "0"], "Chunk size must be greater than 0"),
            (&["-D", ""], "No delimiter specified"),
            (
                &["-I", "512"],
                "Item max size cannot be less than 1024 bytes.",
            ),
            (
                &["-I", "33m"],
                "Cannot set item size limit higher than 1/2 of memory max.",
            ),
            (
                &["-m", "0"],
                "Cannot set item size limit higher than 1/2 of memory max.",
            ),
            (
                &["-m", "5000", "-I", "2000m"],
                "Cannot set item size limit higher than a gigabyte.",
            ),
            (
                &["-I", "1k"],
                "slab_chunk_max (bytes: 524288) cannot be larger than -I (item_size_max 1024)",
            ),
            (
                &["-I", "1000k"],
                "-I (item_size_max: 1024000) must be evenly divisible by slab_chunk_max (bytes: 524288)",
            ),
            (
                &["-o", "slab_chunk_max=1000"],
                "-I (item_size_max: 1048576) must be evenly divisible by slab_chunk_max (bytes: 1000)",
            ),
            (
                &["-I", "4m", "-o", "slab_chunk_max=2097152"],
                "slab_chunk_max (bytes: 2097152) must divide evenly into 1048576 (slab_page_size)",
            ),
            (
                &["-o", "hot_lru_pct=50,warm_lru_pct=40"],
                "hot_lru_pct + warm_lru_pct cannot be more than 80% combined",
            ),
            (
                &["-o", "no_lru_maintainer,temporary_ttl=10"],
                "temporary_ttl requires lru_maintainer to be enabled",
            ),
            (
                &["-o", "hashpower=11"],
                "Initial hashtable multiplier of 11 is too low",
            ),
            (
                &["-o", "hashpower"],
                "Missing numeric argument for hashpower",
            ),
            (
                &["-o", "slab_automove=3"],
                "slab_automove must be between 0 and 2",
            ),
            (
                &["-o", "tail_repair_time=5"],
                "Cannot set tail_repair_time to less than 10 seconds",
            ),
            (
                &["-o", "hash_algorithm=md5"],
                "Unknown hash_algorithm option (jenkins, murmur3, xxh3)",
            ),
            (
                &["-o", "lru_crawler_sleep=2000000"],
                "LRU crawler sleep must be between 0 and 1 second",
            ),
            (
                &["-o", "lru_crawler_tocrawl=x"],
                "lru_crawler_tocrawl takes a numeric 32bit value",
            ),
            (
                &["-o", "watcher_logbuf_size=x"],
                "could not parse argument to watcher_logbuf_size",
            ),
            (
                &["-o", "slab_chunk_max=2m"],
                "could not parse argument to slab_chunk_max",
            ),
            (&["-o", "foo=1"], "Illegal suboption \"foo=1\""),
        ] {
            assert_eq!(usage_error(args), format!("error: {message}"), "{args:?}");
        }
    }

    #[test]
    fn item_sizes_memcached_accepts_work() {
        for (args, item, chunk) in [
            (&["-I", "1k", "-o", "slab_chunk_max=1024"][..], 1024, 1024),
            (&["-I", "1536k"], 1536 << 10, 512 << 10),
            (&["-I", "4m"], 4 << 20, 512 << 10),
            (
                &["-I", "2m", "-o", "slab_chunk_max=1048576"],
                2 << 20,
                1 << 20,
            ),
            (&["-o", "slab_chunk_max=16384"], 1 << 20, 16384),
            (&["-o", "no_chunked_items"], 1 << 20, 1 << 20),
            (&["-o", "no_chunked_items", "-I", "2m"], 2 << 20, 512 << 10),
        ] {
            let settings = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e:?}"));
            assert_eq!(
                (
                    settings.storage.item_size_max,
                    settings.storage.slab_chunk_max
                ),
                (item, chunk),
                "{args:?}"
            );
        }
    }

    /// A value each `-o` option that takes one accepts.
    fn sample_value(name: &str) -> Option<&'static str> {
        Some(match name {
            "hashpower" => "20",
            "slab_automove" => "1",
            "slab_automove_ratio" => "0.5",
            "slab_automove_window" => "10",
            "tail_repair_time" => "60",
            "hash_algorithm" => "murmur3",
            "lru_crawler_sleep" => "100",
            "lru_crawler_tocrawl" => "0",
            "hot_lru_pct" | "warm_lru_pct" => "20",
            "hot_max_factor" | "warm_max_factor" => "0.5",
            "temporary_ttl" => "61",
            "idle_timeout" => "30",
            "watcher_logbuf_size" | "worker_logbuf_size" => "64",
            "slab_sizes" => "96-192-384",
            "slab_chunk_max" => "524288",
            "resp_obj_mem_limit" | "read_buf_mem_limit" => "1",
            "slab_automove_freeratio" => "0.01",
            "ssl_chain_cert" | "ssl_key" | "ssl_ca_cert" => "/etc/ssl/x.pem",
            "ssl_verify_mode" => "0",
            "ssl_keyformat" => "1",
            "ssl_ciphers" => "TLS_AES_128_GCM_SHA256",
            "ssl_wbuf_size" => "16",
            "ssl_min_version" => "3",
            _ => return None,
        })
    }

    #[test]
    fn every_extended_option_is_honoured_accepted_or_refused_by_name() {
        for (name, disposition) in EXTENDED_OPTIONS {
            let option = match sample_value(name) {
                Some(value) => format!("{name}={value}"),
                None => name.to_string(),
            };
            let outcome = parse(&["-o", &option]);
            match disposition {
                Disposition::Refused(why) => {
                    let message = usage_error(&["-o", &option]);
                    assert_eq!(
                        message,
                        format!("error: -o {name} is not supported by ferrocached: {why}")
                    );
                }
                Disposition::Honoured => assert!(outcome.is_ok(), "{option}: {outcome:?}"),
                Disposition::AlwaysOn(why) | Disposition::NoEffect(why) => {
                    let settings = outcome.unwrap_or_else(|e| panic!("{option}: {e:?}"));
                    assert!(
                        settings.notes.iter().any(|note| note.text.contains(why)),
                        "{option} is accepted without a log line: {:?}",
                        settings.notes
                    );
                }
            }
        }
    }

    #[test]
    fn honoured_extended_options_change_settings() {
        let settings = parse(&[
            "-o",
            "idle_timeout=30,hashpower=20",
            "-o",
            "slab_chunk_max=262144,modern",
        ])
        .unwrap();
        assert_eq!(settings.idle_timeout, 30);
        assert_eq!(settings.hashpower_init, 20);
        assert_eq!(settings.storage.slab_chunk_max, 256 << 10);
        assert_eq!(settings.watcher_buffer, 256 << 10);
        assert_eq!(
            parse(&["-o", "watcher_logbuf_size=64"])
                .unwrap()
                .watcher_buffer,
            64 << 10
        );
        assert!(!parse(&["-o", "no_lru_crawler"]).unwrap().background_reclaim);
        assert!(
            parse(&["-o", "no_lru_crawler,lru_crawler"])
                .unwrap()
                .background_reclaim
        );
        let old = parse(&["-o", "no_modern"]).unwrap();
        assert!(!old.background_reclaim);
        assert_eq!(old.storage.slab_chunk_max, old.storage.page_size);
        assert!(usage_error(&["-o", "ext_path=/tmp/x:1G"]).contains("extstore"));
        assert!(usage_error(&["-o", "idle_timeout=x"]).contains("idle_timeout"));
        assert!(
            usage_error(&["-I", "1m", "-o", "slab_chunk_max=2097152"])
                .contains("cannot be larger than -I")
        );
    }

    #[test]
    fn bad_values_give_one_line() {
        for args in [
            &["-p", "99999"][..],
            &["-m", "abc"],
            &["-m", "0"],
            &["-t", "0"],
            &["-t", "300"],
            &["-c", "abc"],
            &["-I", "2x"],
            &["-I", "2g"],
            &["-f", "1"],
            &["-a", "999"],
            &["-B", "foo"],
            &["-D", ""],
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
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("2g").is_err());
        assert!(parse_size("-1m").is_err());
    }

    #[test]
    fn help_version_and_license_are_printed_not_refused() {
        let Err(CliOutcome::Print(help)) = parse(&["-h"]) else {
            panic!("-h prints help");
        };
        assert!(help.contains("--memory-limit"));
        for (name, _) in EXTENDED_OPTIONS {
            assert!(
                help.contains(&format!("  - {name}: ")),
                "-h lacks -o {name}"
            );
        }
        assert!(matches!(parse(&["-V"]), Err(CliOutcome::Print(text)) if text.contains("1.6")));
        assert!(
            matches!(parse(&["-i"]), Err(CliOutcome::Print(text)) if text.contains("BSD-3-Clause"))
        );
    }

    #[test]
    fn many_threads_are_warned_about() {
        let settings = parse(&["-t", "65"]).unwrap();
        assert!(
            settings
                .notes
                .iter()
                .any(|note| note.level == log::Level::Warn && note.text.contains("threads"))
        );
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

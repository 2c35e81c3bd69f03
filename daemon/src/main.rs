//! ferrocached: a memcached-compatible, multi-threaded, sharded cache daemon.
//!
//! Owns: start-up and shutdown order: command line, logging, process setup (limits, daemon,
//! privileges), binding, the storage partitions, the worker threads that own them, the metrics
//! thread (`--metrics-listen`), the acceptor on the main thread, and the exit status. Must not
//! touch: request handling (`session`, `command`), connection I/O (`connection`), item
//! semantics (the storage crate).

mod acceptor;
mod auth;
mod buffer;
mod cache;
mod cli;
mod cluster;
mod command;
mod connection;
mod counters;
#[cfg(test)]
mod harness;
mod latency;
mod listener;
mod logging;
mod metrics;
mod os;
mod restart;
mod session;
mod shared;
mod systemd;
mod tls;
mod udp;
mod watch;
mod worker;

use acceptor::Acceptor;
use cache::Cache;
use cli::{CliOutcome, EXIT_USAGE, Settings};
use ferrocache_storage::Clock;
use shared::{ListenerInfo, Shared};
use std::process::ExitCode;
use std::sync::Arc;
use worker::Worker;

/// The version `version` and `stats` report: the memcached release whose behaviour this server
/// matches, as a plain `X.Y.Z`, because clients parse it (django-elasticache's `StrictVersion`,
/// node's `memcached`, memccapable's 1.6 checks). Who the server really is goes where nothing
/// parses it: [`IDENTITY`].
pub const VERSION: &str = "1.6.18";

/// The server's own name and version, for `-V`, the start-up line and `stats`'s
/// `ferrocache_version`.
pub const IDENTITY: &str = concat!("ferrocached ", env!("CARGO_PKG_VERSION"));

/// What `-V` prints after the program name.
pub const CLI_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (memcached 1.6.18 protocol)");

/// Names the file memcached writes its ports to (`-p 0` users learn the port from it).
const PORT_FILE_VARIABLE: &str = "MEMCACHED_PORT_FILENAME";

/// Exit status when the daemon cannot start (sysexits.h EX_OSERR).
const EXIT_CANNOT_START: u8 = 71;

fn main() -> ExitCode {
    let settings = match cli::parse_args(std::env::args_os()) {
        Ok(settings) => settings,
        Err(CliOutcome::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(CliOutcome::Usage(line)) => {
            eprintln!("{line}");
            return ExitCode::from(EXIT_USAGE as u8);
        }
    };
    logging::init(settings.verbosity);
    for note in &settings.notes {
        log::log!(note.level, "{}", note.text);
    }
    // Before the clock: a cache that restarts warm goes on with its saved clock's scale.
    let mut memory = match restart::open(&settings) {
        Ok(memory) => memory,
        Err(message) => {
            log::error!("{message}");
            return ExitCode::from(EXIT_CANNOT_START);
        }
    };
    let clock = Arc::new(memory.clock());
    // Read while still root, as memcached does: keys are often readable by root alone. A node
    // list that cannot be served is a bad setting too, refused before anything starts.
    let security = match load_security(&settings, clock.now()) {
        Ok(security) => security,
        Err(line) => {
            eprintln!("{line}");
            return ExitCode::from(EXIT_USAGE as u8);
        }
    };
    let cluster = match cluster::Cluster::from_settings(&settings) {
        Ok(cluster) => cluster,
        Err(line) => {
            eprintln!("error: {line}");
            return ExitCode::from(EXIT_USAGE as u8);
        }
    };
    match run(settings, clock, memory, security, cluster) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            log::error!("{message}");
            ExitCode::from(EXIT_CANNOT_START)
        }
    }
}

/// What `-Z`, `-Y` and `-S` load before the threads start.
type Security = (
    Option<tls::ServerTls>,
    Option<auth::AsciiAuth>,
    Option<auth::sasl::SaslAuth>,
);

/// The TLS config (`-Z`), the auth file (`-Y`) and the SASL password database (`-S`); the
/// error is the one line to print.
fn load_security(settings: &Settings, now: u32) -> Result<Security, String> {
    let tls = if settings.tls.enabled {
        Some(tls::ServerTls::load(settings.tls.clone(), now).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let auth = match &settings.auth_file {
        Some(path) => Some(auth::AsciiAuth::load(path).map_err(|e| e.to_string())?),
        None => None,
    };
    let sasl = if settings.sasl {
        Some(auth::sasl::SaslAuth::from_env().map_err(|e| format!("error: {e}"))?)
    } else {
        None
    };
    Ok((tls, auth, sasl))
}

fn run(
    settings: Settings,
    clock: Arc<Clock>,
    memory: restart::Memory,
    (tls, auth, sasl): Security,
    cluster: Option<cluster::Cluster>,
) -> Result<(), String> {
    prepare_process(&settings)?;
    let inherited = listener::inherited(settings.tls.enabled)
        .map_err(|e| format!("cannot use the sockets systemd passed: {e}"))?;
    let listeners = if inherited.is_empty() {
        listener::bind_all(&settings.listen, settings.backlog, |address| {
            settings.tls.serves_tls(address)
        })
        .map_err(|e| e.to_string())?
    } else {
        log::info!(
            "socket-activated: serving the {} socket(s) systemd passed; -p, -l and -s are ignored",
            inherited.len()
        );
        inherited
    };
    let metrics_listener = match settings.metrics_listen {
        Some(address) => Some(
            std::net::TcpListener::bind(address)
                .and_then(|l| Ok((l.local_addr()?, l)))
                .map_err(|e| format!("cannot listen for metrics on {address}: {e}"))?,
        ),
        None => None,
    };
    become_user(&settings)?;
    // As memcached: the ports file is for TCP listeners, and a UNIX socket replaces them.
    let tcp = !settings
        .listen
        .iter()
        .any(|spec| matches!(spec, cli::ListenSpec::Unix { .. }));
    if let Some(path) = std::env::var_os(PORT_FILE_VARIABLE)
        && tcp
        && let Err(e) = listener::write_ports_file(
            std::path::Path::new(&path),
            &listeners,
            &udp::addresses(&settings).unwrap_or_default(),
        )
    {
        log::warn!("{e}");
    }
    if let Some(path) = &settings.pidfile {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| format!("cannot write pid file {}: {e}", path.display()))?;
    }

    let listener_info: Vec<ListenerInfo> = listeners
        .iter()
        .map(|l| ListenerInfo {
            fd: l.raw_fd(),
            name: l.describe(),
        })
        .collect();
    let addresses = listener_info
        .iter()
        .map(|l| l.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    trace_start(&settings, &listener_info);
    let started = std::time::Instant::now();
    let restart::Memory {
        source,
        image,
        file: _memory_file,
    } = memory;
    let cache = match image {
        Some(image) => Cache::over_image(
            settings.storage.clone(),
            settings.partitions,
            clock,
            image,
            source,
        ),
        None => Cache::new(settings.storage.clone(), settings.partitions, clock),
    };
    restart::log_start(&cache.start, started.elapsed());
    let (poll, acceptor_waker) = Acceptor::poll_and_waker().map_err(|e| e.to_string())?;
    let shared = Arc::new(
        Shared::new(settings, cache, cluster, listener_info, acceptor_waker)
            .with_security(tls, auth)
            .with_sasl(sasl),
    );
    if let Some((address, listener)) = metrics_listener {
        metrics::spawn(
            listener,
            metrics::exposition::Exposition::new(Arc::clone(&shared)),
        )
        .map_err(|e| format!("cannot start the metrics endpoint: {e}"))?;
        log::info!("metrics at http://{address}/metrics");
    }

    let mut handles = Vec::new();
    let mut threads = Vec::new();
    for id in 0..shared.settings.threads {
        let (worker, handle) = Worker::new(id, Arc::clone(&shared)).map_err(|e| e.to_string())?;
        let thread = std::thread::Builder::new()
            .name(format!("ferrocache-worker-{id}"))
            .spawn(move || worker.run())
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
        handles.push(handle);
        threads.push(thread);
    }
    let wakers: Box<[Arc<mio::Waker>]> = handles.iter().map(|h| Arc::clone(&h.waker)).collect();
    let _ = shared.worker_wakers.set(wakers);
    let notifier = systemd::Notifier::from_env();
    // The acceptor takes over SIGTERM and SIGINT: only then may anyone learn that we listen,
    // or a signal sent at once would find the default action and kill the process.
    let acceptor = Acceptor::new(poll, listeners, Arc::clone(&shared), handles, notifier)
        .map_err(|e| format!("cannot start accepting: {e}"))?;
    let settings = &shared.settings;
    log::info!(
        "{IDENTITY} (memcached {VERSION} protocol) listening on {addresses}; {} threads, {} MiB memory limit, {} connections max",
        settings.threads,
        settings.storage.memory_limit >> 20,
        settings.conn_limit
    );
    acceptor.ready(&addresses);
    let _handles = acceptor.run();
    for thread in threads {
        let _ = thread.join();
    }
    // Every worker is gone: nothing changes the cache any more.
    let saving = std::time::Instant::now();
    match shared.cache.save_for_restart() {
        None => {}
        Some(Ok(items)) => log::info!(
            "saved {items} items in {} for a warm restart ({} ms)",
            shared.cache.start.source,
            saving.elapsed().as_millis()
        ),
        Some(Err(e)) => log::error!("cannot save the cache for a warm restart: {e}"),
    }
    if let Some(path) = &shared.settings.pidfile {
        let _ = std::fs::remove_file(path);
    }
    log::info!("stopped");
    Ok(())
}

/// Limits, core dumps, memory locking and detaching, before any thread starts.
fn prepare_process(settings: &Settings) -> Result<(), String> {
    // Room for every client, the listeners, and the connections refused over the limit.
    let wanted = settings.conn_limit as u64 + 64;
    match os::raise_open_files_limit(wanted) {
        Ok(limit) if limit < wanted => log::warn!(
            "open files limit is {limit}, below the {wanted} that -c {} needs; raise it (LimitNOFILE=)",
            settings.conn_limit
        ),
        Ok(_) => {}
        Err(e) => log::warn!("cannot read the open files limit: {e}"),
    }
    if settings.enable_coredumps {
        os::enable_coredumps().map_err(|e| format!("cannot enable core dumps: {e}"))?;
    }
    if settings.daemonize {
        os::daemonize(settings.verbosity > 0).map_err(|e| format!("cannot daemonize: {e}"))?;
    }
    if settings.lock_memory
        && let Err(e) = os::lock_memory()
    {
        log::warn!("cannot lock memory (-k): {e}");
    }
    Ok(())
}

/// `-u`: drop root for the named user. As root without `-u`, warn and go on (memcached refuses,
/// which would break the README's start command wherever the user is root).
fn become_user(settings: &Settings) -> Result<(), String> {
    if !os::is_root() {
        return Ok(());
    }
    match &settings.user {
        Some(user) => {
            os::drop_privileges(user).map_err(|e| format!("cannot assume user {user}: {e}"))
        }
        None => {
            log::warn!("running as root; use -u <user> to drop privileges");
            Ok(())
        }
    }
}

/// The chunk counts of chain band `band`: 2, 3-4, 5-8, ..., and the last one open-ended.
fn chain_band_label(band: usize) -> String {
    match ferrocache_storage::chain_band_chunks(band) {
        (fewest, None) => format!("{fewest} or more"),
        (fewest, Some(most)) if fewest == most => fewest.to_string(),
        (fewest, Some(most)) => format!("{fewest}-{most}"),
    }
}

/// What memcached's `-vv` prints before it serves: the slab classes and each listener.
fn trace_start(settings: &Settings, listeners: &[ListenerInfo]) {
    if !logging::protocol_trace() {
        return;
    }
    // The classes as each partition cuts its pages, not memcached's 1 MiB ones.
    let storage = settings.storage.clone().for_partitions(settings.partitions);
    let page = storage.page_size;
    let ladder = storage.slab_class_sizes();
    for (index, size) in ladder.iter().enumerate() {
        logging::trace_text(&format!(
            "slab class {:3}: chunk size {size:9} perslab {:7}",
            index + 1,
            page / size
        ));
    }
    // After memcached's lines, the classes of chained items (by length band) that `stats
    // slabs` shows once they hold pages.
    if let Some(&largest) = ladder.last() {
        for band in 0..ferrocache_storage::CHAIN_CLASSES {
            logging::trace_text(&format!(
                "slab class {:3}: chunk size {largest:9} perslab {:7} (chained items of {} chunks)",
                ladder.len() + band + 1,
                page / largest,
                chain_band_label(band)
            ));
        }
    }
    for listener in listeners {
        logging::trace_event(
            listener.fd,
            &format!("server listening ({})", settings.protocol.name()),
        );
    }
}

//! Warm restarts: where the cache's memory lives when it must outlive the process, and the
//! start and shutdown steps around it.
//!
//! Owns: choosing the memory (the `-e` file; under systemd, a memfd kept in systemd's file
//! descriptor store; otherwise the heap), sizing, locking and mapping it (through `os`),
//! handing a new memfd to systemd (`FDSTORE=1`), the clock a restart resumes, the one log line
//! that says warm or cold and why, and saving the cache for the next process at a clean
//! shutdown. Must not touch: what is in the memory (the storage crate's `MemoryImage` reads
//! and writes it), signals (the acceptor decides when a shutdown is clean), or the listening
//! sockets systemd passes beside the memory (`listener` adopts those).

use crate::cli::Settings;
use ferrocache_storage::{Clock, MemoryImage, StartReport, StorageConfig};
use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;

/// The name (`FDNAME=`) of the cache's memory in systemd's file descriptor store; it comes
/// back under that name in `LISTEN_FDNAMES`.
pub const MEMORY_FD_NAME: &str = "ferrocached-memory";

/// Where the cache's memory comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemorySource {
    /// The heap: gone with the process.
    Heap,
    /// `-e PATH`.
    File(PathBuf),
    /// A memfd in systemd's file descriptor store: `true` if this process got it back from
    /// the store, `false` if it made it.
    Systemd { inherited: bool },
}

impl std::fmt::Display for MemorySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemorySource::Heap => f.write_str("the heap"),
            MemorySource::File(path) => write!(f, "{}", path.display()),
            MemorySource::Systemd { inherited: true } => {
                f.write_str("systemd's file descriptor store (the memfd it kept)")
            }
            MemorySource::Systemd { inherited: false } => {
                f.write_str("systemd's file descriptor store (a new memfd)")
            }
        }
    }
}

/// The memory, mapped and read, before the cache is built on it.
#[derive(Debug)]
pub struct Memory {
    pub source: MemorySource,
    /// The region's contents, when the memory is a region.
    pub image: Option<MemoryImage>,
    /// The open memory file: it holds the lock that keeps a second daemon off it.
    pub file: Option<File>,
}

/// How the cache's memory was found, for `stats` and the log.
#[derive(Debug, Clone)]
pub struct StartInfo {
    pub source: MemorySource,
    /// `None` when the memory does not outlive the process (nothing to restart from).
    pub report: Option<StartReport>,
}

impl StartInfo {
    /// The short reason for `stats`' `restart_cold_reason` (`none` when warm).
    pub fn cold_code(&self) -> &'static str {
        match &self.report {
            None => "no_memory_file",
            Some(report) => report.cold.as_ref().map_or("none", |cold| cold.code()),
        }
    }
}

/// The engine's settings as the cache runs them (the page size depends on the partitions).
pub fn engine_config(settings: &Settings) -> StorageConfig {
    settings.storage.clone().for_partitions(settings.partitions)
}

/// Opens, sizes, locks and maps the memory file of `-e`; without one, under systemd
/// (`NOTIFY_SOCKET` set), the memfd systemd kept for this service or a new one; else the heap.
pub fn open(settings: &Settings) -> Result<Memory, String> {
    let Some(path) = &settings.memory_file else {
        if std::env::var_os("NOTIFY_SOCKET").is_some() {
            return from_systemd(settings);
        }
        return Ok(Memory {
            source: MemorySource::Heap,
            image: None,
            file: None,
        });
    };
    // An earlier start without -e under systemd left a memfd in its store, passed again now;
    // -e does not use it, so this process does not hold it open either.
    drop(stored_memory());
    let label = format!("memory file {}", path.display());
    let cannot = |what: &str, error: std::io::Error| format!("cannot {what} {label}: {error}");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| cannot("open", e))?;
    file.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => format!("{label} is in use by another process"),
        std::fs::TryLockError::Error(e) => cannot("lock", e),
    })?;
    // A file of another size was laid out for other settings: the header says so, and the
    // start is cold. Growing or shrinking it keeps whatever header it had for that check.
    map_image(file, MemorySource::File(path.clone()), &label, settings)
}

/// The memfd named [`MEMORY_FD_NAME`] among the descriptors systemd passed, if any. A
/// LISTEN_FDNAMES that does not match LISTEN_FDS is reported by `listener`.
fn stored_memory() -> Option<File> {
    let (fd, _) = sd_notify::listen_fds_with_names()
        .ok()?
        .find(|(_, name)| name == MEMORY_FD_NAME)?;
    Some(File::from(crate::os::adopt_inherited_fd(fd)))
}

/// Sizes `file` for the settings, maps it and opens the image in it; `label` names the memory
/// in errors.
fn map_image(
    file: File,
    source: MemorySource,
    label: &str,
    settings: &Settings,
) -> Result<Memory, String> {
    let config = engine_config(settings);
    let len = ferrocache_storage::region_len(&config, settings.partitions);
    let cannot = |what: &str, error: std::io::Error| format!("cannot {what} {label}: {error}");
    file.set_len(len as u64).map_err(|e| cannot("size", e))?;
    let region = crate::os::map_shared(file.as_fd(), len).map_err(|e| cannot("map", e))?;
    let image = MemoryImage::open(region, &config, settings.partitions)
        .map_err(|e| format!("{label}: {e}"))?;
    Ok(Memory {
        source,
        image: Some(image),
        file: Some(file),
    })
}

/// The memory under systemd: the memfd named [`MEMORY_FD_NAME`] among the descriptors systemd
/// passed (its file descriptor store gives back what an earlier process stored), else a new
/// memfd, stored there at once so that it outlives this process. A systemd that keeps no
/// descriptors (no `FileDescriptorStoreMax=`) refuses it: then every start is cold, as on the
/// heap.
fn from_systemd(settings: &Settings) -> Result<Memory, String> {
    let (file, inherited) = match stored_memory() {
        Some(file) => (file, true),
        None => {
            let fd = crate::os::memfd(MEMORY_FD_NAME)
                .map_err(|e| format!("cannot create the cache's memfd: {e}"))?;
            (File::from(fd), false)
        }
    };
    let source = MemorySource::Systemd { inherited };
    let label = source.to_string();
    let memory = map_image(file, source, &label, settings)?;
    if let Some(file) = memory.file.as_ref().filter(|_| !inherited) {
        let stored = sd_notify::notify_with_fds(
            &[
                sd_notify::NotifyState::FdStore,
                sd_notify::NotifyState::FdName(MEMORY_FD_NAME),
            ],
            &[file.as_fd()],
        );
        if let Err(e) = stored {
            log::warn!("cannot hand the cache's memfd to systemd (the next start is cold): {e}");
        }
    }
    Ok(memory)
}

impl Memory {
    /// The clock to run: one that resumes the saved cache's time scale when it may start
    /// warm.
    pub fn clock(&mut self) -> Clock {
        match &mut self.image {
            Some(image) => image.clock(),
            None => Clock::new(),
        }
    }
}

/// Logs how the cache started: warm with so many items, or cold and why.
pub fn log_start(info: &StartInfo, took: std::time::Duration) {
    let Some(report) = &info.report else {
        return;
    };
    match &report.cold {
        None => log::info!(
            "warm restart from {}: {} items recovered in {} ms",
            info.source,
            report.items_recovered,
            took.as_millis()
        ),
        Some(reason) => log::info!("cold start from {}: {reason}", info.source),
    }
}

//! Server administration over the protocol: `flush_all`, `verbosity`, `cache_memlimit`,
//! `shutdown`, `version`.
//!
//! Owns: what each does to the server, memcached's refusals (`-F`, `-A`, the `cache_memlimit`
//! bounds) and the counters they keep. Must not touch: reply bytes.

use super::Executor;
use std::sync::atomic::Ordering;

/// memcached refuses `cache_memlimit` values above this many megabytes.
const MEMLIMIT_MAX_MB: u64 = 1_000_000_000;

/// Smallest `cache_memlimit`, in megabytes.
const MEMLIMIT_MIN_MB: u64 = 8;

/// Why an administrative command was not carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `-F`: flush_all is disabled.
    FlushDisabled,
    /// Without `-A`: shutdown is disabled.
    ShutdownDisabled,
    /// `cache_memlimit` below 8 MiB.
    MemlimitTooSmall,
    /// `cache_memlimit` so large it cannot be a number of megabytes.
    MemlimitNotMegabytes,
}

impl Executor<'_> {
    /// `flush_all [delay]`: every item stored before the moment `delay` names stops being
    /// returned. Counted in `cmd_flush` whether or not it is allowed.
    pub fn flush_all(&self, delay: i64) -> Result<(), Refusal> {
        self.stats.cmd_flush.incr();
        if !self.shared.settings.flush_enabled {
            return Err(Refusal::FlushDisabled);
        }
        self.shared.cache.flush_all(delay);
        Ok(())
    }

    /// A `flush_all` whose delay did not parse: memcached counts it and checks `-F` before it
    /// looks at the delay, so a server without flush_all refuses it as disabled.
    pub fn flush_all_malformed(&self) -> Result<(), Refusal> {
        self.stats.cmd_flush.incr();
        if !self.shared.settings.flush_enabled {
            return Err(Refusal::FlushDisabled);
        }
        Ok(())
    }

    /// `verbosity <level>`: the log level of the whole server.
    pub fn verbosity(&self, level: u32) {
        let level = u8::try_from(level).unwrap_or(u8::MAX);
        self.shared.verbosity.store(level, Ordering::Relaxed);
        crate::logging::set_verbosity(level);
    }

    /// `cache_memlimit <megabytes>`: the memory limit, changed at run time.
    pub fn cache_memlimit(&self, megabytes: u64) -> Result<(), Refusal> {
        if megabytes < MEMLIMIT_MIN_MB {
            return Err(Refusal::MemlimitTooSmall);
        }
        if megabytes > MEMLIMIT_MAX_MB {
            return Err(Refusal::MemlimitNotMegabytes);
        }
        // Bounded above, so the product fits.
        self.shared.cache.pool.set_limit((megabytes as usize) << 20);
        log::debug!("maxbytes adjusted to {megabytes}m");
        Ok(())
    }

    /// `shutdown [graceful]`: the server stops accepting, answers what is in flight and exits.
    pub fn shutdown(&self) -> Result<(), Refusal> {
        if !self.shared.settings.shutdown_enabled {
            return Err(Refusal::ShutdownDisabled);
        }
        log::info!("shutdown requested by a client");
        self.shared.request_shutdown();
        Ok(())
    }

    /// Whether `shutdown` is allowed (memcached checks this before a bad argument).
    pub fn shutdown_enabled(&self) -> bool {
        self.shared.settings.shutdown_enabled
    }

    /// `refresh_certs`: reads the TLS certificates and keys again for new connections. The
    /// error is memcached's text, `\r\n` included.
    pub fn refresh_certs(&self) -> Result<(), String> {
        let Some(tls) = &self.shared.tls else {
            return Err("Error TLS not enabled\r\n".to_string());
        };
        tls.refresh(self.shared.cache.clock.now())
            .map_err(|error| format!("{error}\r\n"))
    }

    /// The version clients are told.
    pub fn version(&self) -> &'static str {
        crate::VERSION
    }
}

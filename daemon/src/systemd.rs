//! systemd integration: readiness, status, stopping and watchdog notifications.
//!
//! Owns: what is said on `$NOTIFY_SOCKET` and when. Does nothing when the daemon was not started
//! by systemd (no `NOTIFY_SOCKET`). Must not touch: sockets other than the notify socket.

use crate::shared::Shared;
use sd_notify::NotifyState;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Notifier {
    enabled: bool,
    /// Half the watchdog interval systemd asked for, if it asked.
    watchdog_every: Option<Duration>,
    last_watchdog: Instant,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC` from the environment.
    pub fn from_env() -> Self {
        Notifier {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
            watchdog_every: sd_notify::watchdog_enabled().map(|interval| interval / 2),
            last_watchdog: Instant::now(),
        }
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if self.enabled
            && let Err(error) = sd_notify::notify(states)
        {
            log::warn!("cannot notify systemd: {error}");
        }
    }

    /// The daemon listens and serves.
    pub fn ready(&self, addresses: &str) {
        let status = format!("listening on {addresses}");
        self.send(&[NotifyState::Ready, NotifyState::Status(&status)]);
    }

    /// A short summary of what the cache holds, for `systemctl status`.
    pub fn status_summary(&self, shared: &Shared) {
        if !self.enabled {
            return;
        }
        let stats = shared.cache.stats();
        let status = format!(
            "{} items, {} connections, {} MiB of {} MiB in use",
            stats.curr_items,
            shared.connections.curr_connections.load(Ordering::Relaxed),
            (shared.cache.pool.pages_in_use() * shared.cache.pool.page_size()) >> 20,
            shared.cache.pool.limit_bytes() >> 20,
        );
        self.send(&[NotifyState::Status(&status)]);
    }

    /// Shutdown has begun.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
    }

    /// Pings the watchdog when due, but only while every worker's loop is turning: a stuck
    /// loop stops the pings and systemd restarts the service.
    pub fn watchdog(&mut self, shared: &Shared) {
        let Some(every) = self.watchdog_every else {
            return;
        };
        if self.last_watchdog.elapsed() < every {
            return;
        }
        let now = shared.cache.clock.now();
        let all_turning = shared
            .heartbeats
            .iter()
            .all(|beat| now.saturating_sub(beat.load(Ordering::Relaxed)) <= 2);
        if all_turning {
            self.send(&[NotifyState::Watchdog]);
            self.last_watchdog = Instant::now();
        }
    }
}

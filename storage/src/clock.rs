//! The coarse clock every expiry, access time and `flush_all` deadline is measured on.
//!
//! Owns: "now" in whole seconds since an epoch chosen so that 0 and 1 are never a live time (0
//! means "never expires", 1 means "already expired"), and the conversion of a client's exptime
//! into that scale. Must not touch: timers or threads; the daemon calls [`Clock::tick`] about once
//! a second and tests move time with [`Clock::set_now`] / [`Clock::advance`].

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Exptimes up to this many seconds (30 days) are relative; larger ones are Unix times.
pub const MAX_RELATIVE_EXPTIME: i64 = 60 * 60 * 24 * 30;

/// Internal time at which a fresh clock starts; below it lie the sentinels 0 (never) and 1
/// (expired).
const START: u32 = 2;

/// A shared, coarse, monotonic clock in seconds.
#[derive(Debug)]
pub struct Clock {
    /// Unix time of internal second 0.
    epoch_unix: i64,
    /// Internal second at which this process started: [`START`] for a fresh clock, later for
    /// one that resumes a previous process's time scale (a warm restart).
    base: u32,
    started: Instant,
    now: AtomicU32,
}

impl Clock {
    /// A clock that starts now, at the real time.
    pub fn new() -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Self::starting_at_unix(unix)
    }

    /// A clock whose current moment is the given Unix time (tests use it to pin absolute
    /// exptimes).
    pub fn starting_at_unix(unix_now: i64) -> Self {
        Clock {
            epoch_unix: unix_now.saturating_sub(i64::from(START)),
            base: START,
            started: Instant::now(),
            now: AtomicU32::new(START),
        }
    }

    /// A clock that goes on with a previous process's scale (its `epoch_unix`), so that the
    /// expiries and access times it wrote into memory keep their meaning after a restart: the
    /// time spent down passes for its items too. Time never runs back below `saved_now`, the
    /// internal second the previous process stopped at, even if the wall clock did. `None` if
    /// the Unix time `unix_now` cannot be expressed on that scale.
    pub fn resuming(epoch_unix: i64, saved_now: u32, unix_now: i64) -> Option<Self> {
        let elapsed = unix_now.checked_sub(epoch_unix)?.max(0);
        let now = u32::try_from(elapsed).ok()?.max(saved_now).max(START);
        Some(Clock {
            epoch_unix,
            base: now,
            started: Instant::now(),
            now: AtomicU32::new(now),
        })
    }

    /// A clock that resumes the previous process's scale at the real time now (see
    /// [`Clock::resuming`]).
    pub fn resuming_now(epoch_unix: i64, saved_now: u32) -> Option<Self> {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Self::resuming(epoch_unix, saved_now, unix)
    }

    /// Unix time of internal second 0 (kept across a warm restart).
    pub fn epoch_unix(&self) -> i64 {
        self.epoch_unix
    }

    /// Re-reads the monotonic clock. Time never goes backwards, even if the wall clock does.
    pub fn tick(&self) {
        let elapsed = u32::try_from(self.started.elapsed().as_secs()).unwrap_or(u32::MAX);
        self.now
            .fetch_max(self.base.saturating_add(elapsed), Ordering::Relaxed);
    }

    /// Internal seconds now (>= 2).
    #[inline]
    pub fn now(&self) -> u32 {
        self.now.load(Ordering::Relaxed)
    }

    /// Moves the clock to an internal time (tests only; the daemon uses [`Clock::tick`]).
    pub fn set_now(&self, now: u32) {
        self.now.store(now.max(self.base), Ordering::Relaxed);
    }

    /// Moves the clock forward by `secs` (tests only).
    pub fn advance(&self, secs: u32) {
        // fetch_add would wrap to below START, where `uptime` underflows.
        let _ = self
            .now
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                Some(now.saturating_add(secs))
            });
    }

    /// Seconds since the clock started in this process (`stats uptime`).
    pub fn uptime(&self) -> u32 {
        self.now() - self.base
    }

    /// The Unix time of the current internal second (`stats time`).
    pub fn unix_now(&self) -> i64 {
        self.epoch_unix.saturating_add(i64::from(self.now()))
    }

    /// The Unix time of an internal second (an expiry or an access time), for reports that
    /// print absolute times as memcached does (`lru_crawler metadump`, `stats cachedump`).
    pub fn unix_of(&self, internal: u32) -> i64 {
        self.epoch_unix.saturating_add(i64::from(internal))
    }

    /// Converts a client's exptime to an internal expiry: 0 never expires, 1 is already
    /// expired, anything else is the internal second at which the item stops being returned
    /// (an item is expired once `expiry <= now`). Same rules as memcached's `realtime()`.
    pub fn expiry_of(&self, exptime: i64) -> u32 {
        if exptime == 0 {
            0
        } else if exptime < 0 {
            1
        } else if exptime > MAX_RELATIVE_EXPTIME {
            if exptime <= self.epoch_unix {
                1
            } else {
                // Saturating: a clock pinned near Unix time 0 has a negative epoch.
                u32::try_from(exptime.saturating_sub(self.epoch_unix)).unwrap_or(u32::MAX)
            }
        } else {
            // exptime <= 30 days always fits.
            self.now().saturating_add(exptime as u32)
        }
    }

    /// Seconds until `expiry`, as meta's `t` flag reports it: -1 for never.
    pub fn ttl_of(&self, expiry: u32) -> i64 {
        if expiry == 0 {
            -1
        } else {
            i64::from(expiry) - i64::from(self.now())
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exptime_rules_match_memcached() {
        let clock = Clock::starting_at_unix(1_700_000_000);
        let now = clock.now();
        assert_eq!(clock.expiry_of(0), 0, "0 never expires");
        assert_eq!(clock.expiry_of(-1), 1, "negative is expired at once");
        assert_eq!(clock.expiry_of(10), now + 10, "relative seconds");
        assert_eq!(clock.expiry_of(MAX_RELATIVE_EXPTIME), now + 2_592_000);
        assert_eq!(
            clock.expiry_of(MAX_RELATIVE_EXPTIME + 1),
            1,
            "2,592,001 is an absolute time long past"
        );
        assert_eq!(
            clock.expiry_of(1_700_000_100),
            now + 100,
            "absolute Unix time"
        );
        assert_eq!(
            clock.expiry_of(1_700_000_000 - 2),
            1,
            "absolute time at the epoch"
        );
        assert!(clock.expiry_of(1) > now);
    }

    #[test]
    fn time_moves_only_forward() {
        let clock = Clock::starting_at_unix(1_000_000_000);
        clock.advance(5);
        assert_eq!(clock.uptime(), 5);
        clock.tick();
        assert_eq!(clock.uptime(), 5, "tick never moves a hand-set clock back");
        assert_eq!(clock.unix_now(), 1_000_000_005);
        assert_eq!(clock.ttl_of(0), -1);
        assert_eq!(clock.ttl_of(clock.now() + 7), 7);
    }

    #[test]
    fn extreme_unix_times_and_exptimes_do_not_overflow() {
        for unix in [i64::MIN, -5, 0, i64::MAX] {
            let clock = Clock::starting_at_unix(unix);
            for exptime in [i64::MIN, -1, 0, 1, MAX_RELATIVE_EXPTIME + 1, i64::MAX] {
                let _ = clock.expiry_of(exptime);
            }
            let _ = clock.unix_now();
        }
        assert_eq!(Clock::starting_at_unix(0).expiry_of(i64::MAX), u32::MAX);
    }

    #[test]
    fn a_resumed_clock_keeps_the_old_scale_and_counts_the_time_down() {
        let before = Clock::starting_at_unix(1_700_000_000);
        before.advance(100);
        let expiry = before.expiry_of(60);
        let after = Clock::resuming(before.epoch_unix(), before.now(), 1_700_000_130).unwrap();
        assert_eq!(after.uptime(), 0);
        assert_eq!(after.unix_now(), 1_700_000_130);
        assert_eq!(
            after.ttl_of(expiry),
            30,
            "30 s of the TTL passed while down"
        );
        let wall_went_back = Clock::resuming(before.epoch_unix(), before.now(), 1_600_000_000);
        assert_eq!(wall_went_back.unwrap().now(), before.now());
        assert!(
            Clock::resuming(0, 2, i64::MAX).is_none(),
            "beyond the u32 scale"
        );
    }

    #[test]
    fn advancing_past_the_end_of_time_stays_there() {
        let clock = Clock::starting_at_unix(1_000_000_000);
        clock.advance(u32::MAX);
        clock.advance(1);
        assert_eq!(clock.now(), u32::MAX);
        assert_eq!(clock.uptime(), u32::MAX - START);
    }
}

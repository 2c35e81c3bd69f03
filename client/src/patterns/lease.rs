//! The decisions of lazy loading with leases, as a small state machine with no I/O and no
//! clock of its own, so that the blocking and the async client drive the same logic and tests
//! move time by hand.
//!
//! The read is `mg <key> v c N<lease ttl> [R<refresh>]` (memcached's anti-stampede leases): on a
//! miss the server creates an empty placeholder and answers `W` (you won: load and store) to
//! exactly one client and `Z` (someone else is loading) to the others; an item marked stale by
//! `md <key> I` comes back with `X` and one `W`; `R<secs>` hands out one `W` while a hot item
//! has less than that left to live, so one client refreshes it and the others keep hitting.
//!
//! Owns: the request flags of the read, what each reply means, how long a waiter sleeps and
//! when it gives up, the store and the release that follow a win. Must not touch: sockets,
//! sleeping, the loader (the drivers in `patterns::blocking` and `patterns::nonblocking`).

use super::{LoadError, Loaded};
use crate::meta::{MetaRequest, MetaResponse};
use ferrocache_protocol::MetaCommand;
use ferrocache_protocol::reply::MetaStatus;
use std::time::{Duration, Instant};

/// How `get_or_load` uses leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseOptions {
    /// Seconds a won lease (the empty placeholder) lives: a winner that dies without storing
    /// blocks its key for at most this long.
    pub lease_ttl: u32,
    /// `R<secs>`: one client refreshes a key while it has less than this left to live.
    pub refresh_before: Option<u32>,
    /// Longest a caller waits for another client's load before loading itself (without
    /// storing).
    pub max_wait: Duration,
    /// First pause between re-reads while waiting; doubled each time up to `max_poll`.
    pub first_poll: Duration,
    pub max_poll: Duration,
}

impl Default for LeaseOptions {
    /// A 30 s lease (memcached's documentation's example), no early refresh, waits of up to
    /// 2 s polled from 2 ms to 50 ms: a database read that takes longer than 2 s is better
    /// done twice than waited on.
    fn default() -> Self {
        LeaseOptions {
            lease_ttl: 30,
            refresh_before: None,
            max_wait: Duration::from_secs(2),
            first_poll: Duration::from_millis(2),
            max_poll: Duration::from_millis(50),
        }
    }
}

/// Where the value `get_or_load` returned came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoadOutcome {
    /// In the cache.
    Hit,
    /// This caller won the lease, ran the loader and stored the value.
    Loaded,
    /// This caller won an early refresh (`R`) or the recache of a stale item, and stored the
    /// loader's fresh value.
    Refreshed,
    /// Another client is recaching a stale item: its stale value was served.
    StaleServed,
    /// Another client held the lease; this caller waited and read what it stored.
    Waited,
    /// Another client held the lease past `max_wait`: the loader ran here, nothing was stored.
    WaitTimedOut,
    /// The cache could not be reached: the loader ran, nothing was stored.
    CacheUnavailable,
}

/// What won a lease: the CAS of the item to store over, and what kind of win.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The item's CAS when the lease was won; `None` when the server gave no lease (a proxy
    /// that drops `N` answers a plain miss).
    pub cas: Option<u64>,
    pub kind: LeaseKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseKind {
    /// A miss: the item is an empty placeholder.
    Miss,
    /// A stale item (`X W`): its old value stays until the new one is stored.
    Stale,
    /// An early refresh (`W` on a live item, from `R`): the value is still good.
    Refresh,
}

/// What the driver does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The reply's value is the answer.
    Serve(LoadOutcome),
    /// This caller holds the lease: run the loader, then [`store_request`]; on a loader
    /// error, [`release_request`].
    Load(Lease),
    /// Sleep this long, then read again.
    Wait(Duration),
    /// Run the loader and store nothing.
    LoadUncached(LoadOutcome),
}

/// The read's flags: value, CAS, vivify on miss with the lease TTL, and early refresh.
pub fn read_request(key: &[u8], options: &LeaseOptions) -> MetaRequest {
    let mut flags = format!("v c N{}", options.lease_ttl);
    if let Some(refresh) = options.refresh_before {
        flags.push_str(&format!(" R{refresh}"));
    }
    MetaRequest::new(MetaCommand::Get, key, flags)
}

/// The store after a won lease: `ms <key> T<ttl> C<cas>`, so that a value written meanwhile
/// (write-through, invalidation, delete) wins over this possibly older load (the server then
/// answers `EX` or `NF`, and the load is simply not cached).
pub fn store_request(key: &[u8], value: &[u8], ttl: u32, lease: &Lease) -> MetaRequest {
    let flags = match lease.cas {
        Some(cas) => format!("T{ttl} C{cas}"),
        None => format!("T{ttl}"),
    };
    MetaRequest::set(key, value, flags)
}

/// What gives a lease back after the loader failed, so the next caller wins at once instead
/// of waiting out the lease TTL: the placeholder is deleted, a stale item is marked stale again
/// (which hands out a new `W`), both only if still at the lease's CAS. A refresh needs nothing:
/// the item is still good and the next miss after it expires wins.
pub fn release_request(key: &[u8], lease: &Lease) -> Option<MetaRequest> {
    let cas = lease.cas?;
    match lease.kind {
        LeaseKind::Miss => Some(MetaRequest::new(
            MetaCommand::Delete,
            key,
            format!("C{cas}"),
        )),
        LeaseKind::Stale => Some(MetaRequest::new(
            MetaCommand::Delete,
            key,
            format!("I C{cas}"),
        )),
        LeaseKind::Refresh => None,
    }
}

/// The parts of a lease read's reply the decision depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseReply {
    /// `VA` or `HD`: an item (maybe a placeholder) exists.
    pub found: bool,
    /// The value is non-empty. memcached's placeholder is an empty value: an empty value
    /// under `W` or `Z` is read as no value yet.
    pub has_value: bool,
    /// `W`: this client won.
    pub win: bool,
    /// `Z`: another client won already.
    pub lost: bool,
    /// `X`: the item is stale.
    pub stale: bool,
    pub cas: Option<u64>,
}

impl LeaseReply {
    pub fn from_response(response: &MetaResponse) -> Self {
        LeaseReply {
            found: matches!(response.status, MetaStatus::Value { .. } | MetaStatus::Done),
            has_value: !response.value.is_empty(),
            win: response.has(b'W'),
            lost: response.has(b'Z'),
            stale: response.has(b'X'),
            cas: response.cas(),
        }
    }
}

/// One `get_or_load` call's progress: started at a time, waiting with a growing pause.
#[derive(Debug, Clone)]
pub struct LeaseFlow {
    options: LeaseOptions,
    deadline: Instant,
    next_poll: Duration,
    waited: bool,
}

impl LeaseFlow {
    pub fn new(options: LeaseOptions, now: Instant) -> Self {
        LeaseFlow {
            options,
            deadline: now + options.max_wait,
            next_poll: options.first_poll,
            waited: false,
        }
    }

    /// What to do with the reply to a lease read that arrived at `now`.
    pub fn on_reply(&mut self, reply: LeaseReply, now: Instant) -> Decision {
        if !reply.found {
            // No item and no placeholder: the server ignored N. Load and store plainly.
            return Decision::Load(Lease {
                cas: None,
                kind: LeaseKind::Miss,
            });
        }
        if reply.win {
            let kind = if reply.stale {
                LeaseKind::Stale
            } else if reply.has_value {
                LeaseKind::Refresh
            } else {
                LeaseKind::Miss
            };
            return Decision::Load(Lease {
                cas: reply.cas,
                kind,
            });
        }
        if reply.stale {
            return Decision::Serve(LoadOutcome::StaleServed);
        }
        if reply.lost && !reply.has_value {
            return self.wait(now);
        }
        // A value, fresh (or being refreshed early by another client).
        Decision::Serve(if self.waited {
            LoadOutcome::Waited
        } else {
            LoadOutcome::Hit
        })
    }

    /// The pause before the next read, never past the deadline; past it, load here.
    fn wait(&mut self, now: Instant) -> Decision {
        let left = self.deadline.saturating_duration_since(now);
        if left.is_zero() {
            return Decision::LoadUncached(LoadOutcome::WaitTimedOut);
        }
        let pause = self.next_poll.min(left);
        self.next_poll = (self.next_poll * 2).min(self.options.max_poll);
        self.waited = true;
        Decision::Wait(pause)
    }

    /// The outcome of a won lease's successful load.
    pub fn loaded(lease: &Lease) -> LoadOutcome {
        match lease.kind {
            LeaseKind::Miss => LoadOutcome::Loaded,
            LeaseKind::Stale | LeaseKind::Refresh => LoadOutcome::Refreshed,
        }
    }
}

/// What follows a won lease's load: the request to send (the store, or the release after a
/// loader error; `None` when nothing is needed) and the caller's answer. A failed refresh
/// serves `current`, the value the lease read returned: it is still good, the refresh was
/// early.
pub fn after_load<E>(
    key: &[u8],
    ttl: u32,
    lease: &Lease,
    current: Vec<u8>,
    loaded: Result<Vec<u8>, E>,
) -> (Option<MetaRequest>, Result<Loaded, LoadError<E>>) {
    match loaded {
        Ok(value) => (
            Some(store_request(key, &value, ttl, lease)),
            Ok(Loaded {
                value,
                outcome: LeaseFlow::loaded(lease),
            }),
        ),
        Err(_) if lease.kind == LeaseKind::Refresh => (
            None,
            Ok(Loaded {
                value: current,
                outcome: LoadOutcome::Hit,
            }),
        ),
        Err(error) => (release_request(key, lease), Err(LoadError::Loader(error))),
    }
}

/// The answer of a load that stores nothing (cache down, wait bound reached).
pub fn uncached<E>(
    loaded: Result<Vec<u8>, E>,
    outcome: LoadOutcome,
) -> Result<Loaded, LoadError<E>> {
    loaded
        .map(|value| Loaded { value, outcome })
        .map_err(LoadError::Loader)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(found: bool, has_value: bool, win: bool, lost: bool, stale: bool) -> LeaseReply {
        LeaseReply {
            found,
            has_value,
            win,
            lost,
            stale,
            cas: Some(7),
        }
    }

    #[test]
    fn each_reply_kind_decides_as_memcached_means_it() {
        let now = Instant::now();
        let mut flow = LeaseFlow::new(LeaseOptions::default(), now);
        let lease = |kind| Decision::Load(Lease { cas: Some(7), kind });
        // VA 0 c7 W: a miss this client won.
        assert_eq!(
            flow.on_reply(reply(true, false, true, false, false), now),
            lease(LeaseKind::Miss)
        );
        // VA 3 c7 X W: stale, won the recache.
        assert_eq!(
            flow.on_reply(reply(true, true, true, false, true), now),
            lease(LeaseKind::Stale)
        );
        // VA 3 c7 W: an early refresh (R).
        assert_eq!(
            flow.on_reply(reply(true, true, true, false, false), now),
            lease(LeaseKind::Refresh)
        );
        // VA 3 c7 Z X: someone recaches; serve stale.
        assert_eq!(
            flow.on_reply(reply(true, true, false, true, true), now),
            Decision::Serve(LoadOutcome::StaleServed)
        );
        // VA 3 c7 Z: someone refreshes early; the value is good.
        assert_eq!(
            flow.on_reply(reply(true, true, false, true, false), now),
            Decision::Serve(LoadOutcome::Hit)
        );
        // EN: no lease support.
        assert_eq!(
            flow.on_reply(reply(false, false, false, false, false), now),
            Decision::Load(Lease {
                cas: None,
                kind: LeaseKind::Miss
            })
        );
    }

    #[test]
    fn a_waiter_backs_off_and_gives_up_at_its_deadline() {
        let options = LeaseOptions {
            max_wait: Duration::from_millis(100),
            first_poll: Duration::from_millis(10),
            max_poll: Duration::from_millis(40),
            ..LeaseOptions::default()
        };
        let mut now = Instant::now();
        let mut flow = LeaseFlow::new(options, now);
        let placeholder = reply(true, false, false, true, false);
        let mut pauses = Vec::new();
        loop {
            match flow.on_reply(placeholder, now) {
                Decision::Wait(pause) => {
                    pauses.push(pause.as_millis());
                    now += pause;
                }
                other => {
                    assert_eq!(other, Decision::LoadUncached(LoadOutcome::WaitTimedOut));
                    break;
                }
            }
        }
        assert_eq!(pauses, [10, 20, 40, 30]);
        // The value arriving after a wait is reported as waited for.
        let mut flow = LeaseFlow::new(options, now);
        assert!(matches!(flow.on_reply(placeholder, now), Decision::Wait(_)));
        assert_eq!(
            flow.on_reply(reply(true, true, false, false, false), now),
            Decision::Serve(LoadOutcome::Waited)
        );
    }

    #[test]
    fn requests_carry_the_lease_flags() {
        let options = LeaseOptions {
            refresh_before: Some(5),
            ..LeaseOptions::default()
        };
        assert_eq!(read_request(b"k", &options).flags, b"v c N30 R5");
        let lease = Lease {
            cas: Some(9),
            kind: LeaseKind::Miss,
        };
        assert_eq!(store_request(b"k", b"v", 60, &lease).flags, b"T60 C9");
        assert_eq!(release_request(b"k", &lease).unwrap().flags, b"C9");
        let stale = Lease {
            kind: LeaseKind::Stale,
            ..lease
        };
        assert_eq!(release_request(b"k", &stale).unwrap().flags, b"I C9");
        let refresh = Lease {
            kind: LeaseKind::Refresh,
            ..lease
        };
        assert_eq!(release_request(b"k", &refresh), None);
    }
}

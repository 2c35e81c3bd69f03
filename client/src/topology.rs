//! Which servers keys go to right now: the known servers with their connection pools and
//! health, and the ketama ring over the ones not taken out, as libmemcached's
//! `server_failure_limit` / `retry_timeout` / `remove_failed_servers` behave.
//!
//! Owns: the member list (replaced as a whole when discovery finds a new node list, keeping the
//! pools and health of servers that stay), counting consecutive failures, taking a server out of
//! the ring after `failure_limit` of them and putting it back after `retry_interval`, the
//! counters of those events. Must not touch: ring arithmetic (the `ketama` module), what a
//! command or reply means (the client), the config endpoint (the `discovery` module).
//!
//! Callers route on a snapshot ([`Routing`], behind an `Arc`): a change builds a new snapshot
//! and swaps it in, so a request never sees a half-changed ring and never waits on another
//! request's network I/O.

use crate::connection::Connection;
use crate::error::ClientError;
use crate::ketama::{KetamaRing, ServerSpec};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// What to do about servers that fail, after libmemcached's behaviours of the same names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePolicy {
    /// Take a server out of the ring after this many failures in a row (connect refused,
    /// timeout, reset); `MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT`.
    pub failure_limit: u32,
    /// How long it stays out before it is tried again; `MEMCACHED_BEHAVIOR_RETRY_TIMEOUT`.
    pub retry_interval: Duration,
    /// Whether failing servers are taken out at all; `MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS`.
    pub remove_failed: bool,
}

impl FailurePolicy {
    /// Never take a server out: every call to a dead server fails (what `Client::new` does
    /// unless told otherwise, as libmemcached's default).
    pub fn never() -> Self {
        FailurePolicy {
            remove_failed: false,
            ..FailurePolicy::default()
        }
    }
}

impl Default for FailurePolicy {
    /// libmemcached's defaults (`MEMCACHED_SERVER_FAILURE_LIMIT` 5,
    /// `MEMCACHED_SERVER_FAILURE_RETRY_TIMEOUT` 2 s), with removal on.
    fn default() -> Self {
        FailurePolicy {
            failure_limit: 5,
            retry_interval: Duration::from_secs(2),
            remove_failed: true,
        }
    }
}

/// Event counts since the client was made; read with [`crate::Client::counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterCounters {
    /// Calls that failed on the network (each one counts towards `failure_limit`).
    pub server_failures: u64,
    /// Servers taken out of the ring.
    pub ejections: u64,
    /// Servers put back after their retry interval.
    pub rejoins: u64,
    /// Node lists applied from the config endpoint (the first one included).
    pub config_changes: u64,
    pub nodes_added: u64,
    pub nodes_removed: u64,
    /// Polls of the config endpoint, and those that failed.
    pub polls: u64,
    pub poll_failures: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) server_failures: AtomicU64,
    pub(crate) ejections: AtomicU64,
    pub(crate) rejoins: AtomicU64,
    pub(crate) config_changes: AtomicU64,
    pub(crate) nodes_added: AtomicU64,
    pub(crate) nodes_removed: AtomicU64,
    pub(crate) polls: AtomicU64,
    pub(crate) poll_failures: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    fn snapshot(&self) -> ClusterCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ClusterCounters {
            server_failures: get(&self.server_failures),
            ejections: get(&self.ejections),
            rejoins: get(&self.rejoins),
            config_changes: get(&self.config_changes),
            nodes_added: get(&self.nodes_added),
            nodes_removed: get(&self.nodes_removed),
            polls: get(&self.polls),
            poll_failures: get(&self.poll_failures),
        }
    }
}

/// One known server: its pool of idle connections and its health.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) spec: ServerSpec,
    pub(crate) address: String,
    idle: Mutex<Vec<Connection>>,
    failures: AtomicU32,
    /// Out of the ring until then.
    ejected_until: Mutex<Option<Instant>>,
}

impl Member {
    fn new(spec: ServerSpec) -> Self {
        Member {
            address: spec.address(),
            spec,
            idle: Mutex::new(Vec::new()),
            failures: AtomicU32::new(0),
            ejected_until: Mutex::new(None),
        }
    }

    pub(crate) fn pop_idle(&self) -> Option<Connection> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    pub(crate) fn push_idle(&self, connection: Connection, max_idle: usize) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < max_idle {
            idle.push(connection);
        }
    }

    fn ejected_until(&self) -> Option<Instant> {
        *self.ejected_until.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One consistent view: every known member, and the ring over those in service.
#[derive(Debug)]
pub(crate) struct Routing {
    pub(crate) members: Vec<Arc<Member>>,
    /// `None` when every member is out.
    ring: Option<KetamaRing>,
    /// Ring index to member index.
    in_ring: Vec<usize>,
    /// The earliest time an ejected member is due back.
    next_rejoin: Option<Instant>,
}

impl Routing {
    fn build(members: Vec<Arc<Member>>) -> Result<Self, ClientError> {
        let in_ring: Vec<usize> = (0..members.len())
            .filter(|&i| members[i].ejected_until().is_none())
            .collect();
        let specs: Vec<ServerSpec> = in_ring.iter().map(|&i| members[i].spec.clone()).collect();
        let ring = if specs.is_empty() {
            None
        } else {
            Some(KetamaRing::new(&specs)?)
        };
        let next_rejoin = members.iter().filter_map(|m| m.ejected_until()).min();
        Ok(Routing {
            members,
            ring,
            in_ring,
            next_rejoin,
        })
    }

    /// Index into `members` of the server for `key`.
    pub(crate) fn member_for(&self, key: &[u8]) -> Result<usize, ClientError> {
        let ring = self.ring.as_ref().ok_or(ClientError::NoLiveServers)?;
        Ok(self.in_ring[ring.server_for(key)])
    }
}

/// The current routing and what changes it.
#[derive(Debug)]
pub(crate) struct Topology {
    current: RwLock<Arc<Routing>>,
    policy: FailurePolicy,
    pub(crate) counters: Counters,
}

impl Topology {
    pub(crate) fn new(
        servers: Vec<ServerSpec>,
        policy: FailurePolicy,
    ) -> Result<Self, ClientError> {
        // An empty list is refused up front, as `KetamaRing::new` refuses it.
        KetamaRing::new(&servers)?;
        let members = servers
            .into_iter()
            .map(|s| Arc::new(Member::new(s)))
            .collect();
        Ok(Topology {
            current: RwLock::new(Arc::new(Routing::build(members)?)),
            policy,
            counters: Counters::default(),
        })
    }

    pub(crate) fn counters(&self) -> ClusterCounters {
        self.counters.snapshot()
    }

    /// The routing to use now, putting back members whose retry interval is over.
    pub(crate) fn routing(&self) -> Arc<Routing> {
        let routing = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match routing.next_rejoin {
            Some(due) if due <= Instant::now() => self.rejoin_due(),
            _ => routing,
        }
    }

    fn rejoin_due(&self) -> Arc<Routing> {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        // Every request that saw the old routing comes here; only the first finds a member
        // due, and only then is the ring (MD5 over every point) built again.
        let mut rejoined = false;
        for member in &current.members {
            let mut until = member
                .ejected_until
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if until.is_some_and(|due| due <= now) {
                *until = None;
                // One more failure takes it out again, so a server still down costs one
                // failed call per retry interval, not `failure_limit` of them.
                member.failures.store(
                    self.policy.failure_limit.saturating_sub(1),
                    Ordering::Relaxed,
                );
                Counters::bump(&self.counters.rejoins, 1);
                log::info!("{}: retry interval over, back in the ring", member.address);
                rejoined = true;
            }
        }
        if !rejoined {
            return current.clone();
        }
        self.rebuild(&mut current, None)
    }

    /// Swaps in a routing over `members` (the current ones when `None`).
    fn rebuild(
        &self,
        current: &mut Arc<Routing>,
        members: Option<Vec<Arc<Member>>>,
    ) -> Arc<Routing> {
        let members = members.unwrap_or_else(|| current.members.clone());
        match Routing::build(members) {
            Ok(routing) => *current = Arc::new(routing),
            // Only a zero weight fails, and members come from specs that passed once.
            Err(error) => log::error!("cannot rebuild the ring: {error}"),
        }
        current.clone()
    }

    pub(crate) fn record_success(&self, member: &Member) {
        if member.failures.load(Ordering::Relaxed) != 0 {
            member.failures.store(0, Ordering::Relaxed);
        }
    }

    /// Counts `error` against `member` if it is a network failure, taking the member out of
    /// the ring at the limit.
    pub(crate) fn record_error(&self, member: &Member, error: &ClientError) {
        if !error.is_server_failure() {
            return;
        }
        Counters::bump(&self.counters.server_failures, 1);
        // Its other idle connections most likely died with it: a reset server closed them all,
        // and handing them out would turn one failure into several.
        member
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let failures = member.failures.fetch_add(1, Ordering::Relaxed) + 1;
        log::warn!("{}: failure {failures} in a row: {error}", member.address);
        if !self.policy.remove_failed || failures < self.policy.failure_limit {
            return;
        }
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        {
            let mut until = member
                .ejected_until
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if until.is_some() {
                return;
            }
            *until = Some(Instant::now() + self.policy.retry_interval);
        }
        Counters::bump(&self.counters.ejections, 1);
        log::warn!(
            "{}: {failures} failures in a row, out of the ring for {:?}",
            member.address,
            self.policy.retry_interval
        );
        self.rebuild(&mut current, None);
    }

    /// Replaces the member list with `servers`, keeping the pool and health of every server
    /// already known (same host, port and weight). Returns (added, removed).
    pub(crate) fn replace(&self, servers: Vec<ServerSpec>) -> Result<(usize, usize), ClientError> {
        KetamaRing::new(&servers)?;
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let mut added = 0;
        let members: Vec<Arc<Member>> = servers
            .into_iter()
            .map(
                |spec| match current.members.iter().find(|m| m.spec == spec) {
                    Some(kept) => kept.clone(),
                    None => {
                        added += 1;
                        log::info!("{}: joins the cluster", spec.address());
                        Arc::new(Member::new(spec))
                    }
                },
            )
            .collect();
        let removed = current
            .members
            .iter()
            .filter(|old| !members.iter().any(|m| Arc::ptr_eq(m, old)))
            .inspect(|old| log::info!("{}: leaves the cluster", old.address))
            .count();
        self.rebuild(&mut current, Some(members));
        Counters::bump(&self.counters.nodes_added, added as u64);
        Counters::bump(&self.counters.nodes_removed, removed as u64);
        Ok((added, removed))
    }
}

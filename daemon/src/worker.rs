//! A worker thread: one mio event loop that owns a set of connections and the housekeeping of
//! its storage partition (`PARTITIONS_PER_THREAD` of them, one by default).
//!
//! Owns: the connections the acceptor hands it (in a `slab::Slab`), their readiness events,
//! fair turns between them (`-R`), closing idle ones (`idle_timeout`), background maintenance
//! of its own partitions in short slices (one partition per slice), its heartbeat for the
//! systemd watchdog, and its part of a graceful shutdown. Must not touch: other workers'
//! connections; other partitions are reached only through their locks, by the requests its
//! connections make.

use crate::cli::Protocol;
use crate::command::Executor;
use crate::command::watch::CloseReason;
use crate::connection::{Connection, Scratch, Verdict};
use crate::listener::Stream;
use crate::session::{ServeContext, Session};
use crate::shared::{ConnInfo, Shared, conn_state};
use crate::udp::UdpEndpoint;
use crossbeam_channel::{Receiver, Sender};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::time::{Duration, Instant};

const WAKER: Token = Token(usize::MAX);

/// How long the loop sleeps with nothing to do: the pace of maintenance and idle checks.
const TICK: Duration = Duration::from_millis(100);

/// Chunks of its partition a worker examines per maintenance slice when busy, and when idle.
const MAINTENANCE_BUSY: usize = 64;
const MAINTENANCE_IDLE: usize = 1024;

/// How long a graceful shutdown waits for replies in flight to be written.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(700);

/// Seconds a TLS connection may take to finish its handshake: one that stalls half-way is
/// closed, so it cannot hold a descriptor for ever.
const HANDSHAKE_TIMEOUT: u32 = 10;

/// A connection handed from the acceptor to a worker.
#[derive(Debug)]
pub struct Handoff {
    pub stream: Stream,
    pub peer: String,
    /// Accepted on a TLS listener.
    pub tls: bool,
}

/// What the acceptor keeps to reach a worker.
#[derive(Debug)]
pub struct WorkerHandle {
    pub sender: Sender<Handoff>,
    pub waker: Arc<Waker>,
}

struct Slot {
    connection: Connection,
    info: Arc<ConnInfo>,
    /// In the ready queue (yielded: served again after the next poll's events).
    queued: bool,
}

pub struct Worker {
    id: usize,
    poll: Poll,
    shared: Arc<Shared>,
    receiver: Receiver<Handoff>,
    connections: Slab<Slot>,
    scratch: Scratch,
    /// Connections that yielded after `-R` requests, served again after this turn's events.
    ready: VecDeque<usize>,
    last_second: u32,
    last_maintenance: Instant,
    /// The owned partition whose maintenance slice comes next.
    next_partition: usize,
    /// Connections that became log watchers: served when the waker says lines arrived.
    watching: Vec<usize>,
    /// This worker's UDP sockets (`-U`), one per listening address.
    udp: Vec<UdpEndpoint>,
}

/// The UDP socket with index `i` is registered as `Token(UDP_TOKENS - i)`; connections' keys
/// stay far below.
const UDP_TOKENS: usize = usize::MAX - 1;

fn udp_index(token: Token) -> Option<usize> {
    let index = UDP_TOKENS.checked_sub(token.0)?;
    (index < 1024).then_some(index)
}

impl Worker {
    /// A worker and the handle the acceptor uses to pass it connections.
    pub fn new(id: usize, shared: Arc<Shared>) -> io::Result<(Worker, WorkerHandle)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut udp = Vec::new();
        for (index, address) in crate::udp::addresses(&shared.settings)?
            .into_iter()
            .enumerate()
        {
            let mut endpoint = UdpEndpoint::bind(address).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot serve UDP on {address}: {e}"))
            })?;
            poll.registry().register(
                &mut endpoint.socket,
                Token(UDP_TOKENS - index),
                Interest::READABLE,
            )?;
            udp.push(endpoint);
        }
        let (sender, receiver) = crossbeam_channel::unbounded();
        Ok((
            Worker {
                id,
                poll,
                shared,
                receiver,
                connections: Slab::new(),
                scratch: Scratch::new(),
                ready: VecDeque::new(),
                last_second: 0,
                last_maintenance: Instant::now(),
                next_partition: id,
                watching: Vec::new(),
                udp,
            },
            WorkerHandle { sender, waker },
        ))
    }

    /// Runs the event loop until shutdown.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = if self.ready.is_empty() {
                TICK
            } else {
                Duration::ZERO
            };
            if let Err(error) = self.poll.poll(&mut events, Some(timeout))
                && error.kind() != io::ErrorKind::Interrupted
            {
                log::error!("worker {}: poll failed: {error}", self.id);
                break;
            }
            let idle = events.is_empty() && self.ready.is_empty();
            for event in events.iter() {
                match event.token() {
                    WAKER => {
                        self.take_handoffs();
                        self.serve_watchers();
                    }
                    token if udp_index(token).is_some_and(|i| i < self.udp.len()) => {
                        if let Some(index) = udp_index(token) {
                            self.udp[index].serve(&self.shared, self.id);
                        }
                    }
                    Token(key) => self.on_event(
                        key,
                        event.is_readable() || event.is_read_closed() || event.is_error(),
                        event.is_read_closed() || event.is_error(),
                        event.is_writable(),
                    ),
                }
            }
            self.serve_ready();
            self.housekeeping(idle);
            if self.shared.is_stopping() {
                self.drain(&mut events);
                return;
            }
        }
    }

    fn take_handoffs(&mut self) {
        while let Ok(Handoff {
            mut stream,
            peer,
            tls,
        }) = self.receiver.try_recv()
        {
            let tls = match (tls, &self.shared.tls) {
                (true, Some(server)) => match server.accept() {
                    Ok(session) => Some(session),
                    Err(error) => {
                        log::warn!("worker {}: no TLS for {peer}: {error}", self.id);
                        self.shared.connections.closed();
                        continue;
                    }
                },
                _ => None,
            };
            let entry = self.connections.vacant_entry();
            let key = entry.key();
            // Readable and writable once, edge-triggered: no re-registration as output comes
            // and goes. A socket that already holds a request reports it at once.
            if let Err(error) = self.poll.registry().register(
                &mut stream,
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                log::warn!(
                    "worker {}: cannot watch connection from {peer}: {error}",
                    self.id
                );
                self.shared.connections.closed();
                continue;
            }
            log::debug!("worker {}: new connection {key} from {peer}", self.id);
            crate::logging::trace_event(
                stream.raw_fd(),
                new_connection_line(self.shared.settings.protocol),
            );
            let info = Arc::new(ConnInfo {
                fd: stream.raw_fd(),
                peer,
                last_cmd: AtomicU32::new(self.shared.cache.clock.now()),
                state: AtomicU8::new(conn_state::NEW_CMD),
            });
            self.shared.registries[self.id].insert(key, Arc::clone(&info));
            Executor::new(&self.shared, self.id, info.fd).log_connection_new(&info.peer);
            let session = Session::new(&self.shared);
            entry.insert(Slot {
                connection: Connection::new(stream, session, tls),
                info,
                queued: false,
            });
        }
    }

    /// `hangup`: the peer closed its side (or the socket failed) in this event, which an
    /// edge-triggered poll reports once, possibly together with the last data.
    fn on_event(&mut self, key: usize, readable: bool, hangup: bool, writable: bool) {
        let Some(slot) = self.connections.get_mut(key) else {
            return;
        };
        if readable {
            slot.connection.on_readable(hangup);
        }
        if writable && slot.connection.has_unsent_output() && !slot.queued {
            let mut context = ServeContext::new(&self.shared, self.id, slot.info.fd);
            if slot
                .connection
                .flush_pending(&mut self.scratch, &mut context)
                .is_err()
            {
                self.close(key, CloseReason::Error);
                return;
            }
            if slot.connection.finished() {
                self.close(key, CloseReason::Normal);
                return;
            }
            if slot.connection.write_paused() {
                // It wrote its share of this turn: the rest after the others.
                self.requeue(key);
                return;
            }
        }
        if !slot.queued && slot.connection.wants_service() {
            self.serve(key);
        }
    }

    fn serve(&mut self, key: usize) {
        match self.serve_turn(key) {
            Some(Verdict::Idle) | None => {}
            Some(Verdict::Yielded) => {
                self.shared.threads[self.id].conn_yields.incr();
                self.requeue(key);
            }
            // Not a `-R` yield: `conn_yields` does not count it.
            Some(Verdict::Paused) => self.requeue(key),
            Some(Verdict::Close) => self.close(key, CloseReason::Normal),
        }
    }

    /// Puts a connection in the ready queue, to be served again after this poll's events.
    fn requeue(&mut self, key: usize) {
        if let Some(slot) = self.connections.get_mut(key) {
            slot.queued = true;
            self.ready.push_back(key);
        }
    }

    /// Writes the log lines waiting for this worker's watchers.
    fn serve_watchers(&mut self) {
        for at in (0..self.watching.len()).rev() {
            let key = self.watching[at];
            if self.connections.contains(key) {
                self.serve(key);
            } else {
                self.watching.swap_remove(at);
            }
        }
    }

    /// One turn of up to `-R` requests for a connection, and its `stats conns` state.
    ///
    /// A panic while serving (a bug, never meant to happen on any input) costs that connection
    /// only, not the worker and every connection it holds: partition locks are released by
    /// unwinding, and the connection is closed.
    fn serve_turn(&mut self, key: usize) -> Option<Verdict> {
        let slot = self.connections.get_mut(key)?;
        let mut context = ServeContext::new(&self.shared, self.id, slot.info.fd);
        let was_watching = slot.connection.watcher().is_some();
        // A `stats conns` served in this turn shows this connection being served.
        slot.info
            .state
            .store(conn_state::PARSE_CMD, Ordering::Relaxed);
        let budget = self.shared.settings.reqs_per_event;
        let scratch = &mut self.scratch;
        let turn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            slot.connection.serve(scratch, budget, &mut context)
        }));
        let verdict = match turn {
            Ok(verdict) => verdict,
            Err(_) => {
                log::error!(
                    "worker {}: serving connection {key} from {} panicked; closing it",
                    self.id,
                    slot.info.peer
                );
                // The scratch buffers may hold a half-served turn: start them afresh.
                self.scratch = Scratch::new();
                return Some(Verdict::Close);
            }
        };
        if context.served > 0 {
            slot.info
                .last_cmd
                .store(self.shared.cache.clock.now(), Ordering::Relaxed);
        }
        if !was_watching && slot.connection.watcher().is_some() {
            self.watching.push(key);
        }
        let state = if slot.connection.watcher().is_some() {
            conn_state::WATCH
        } else if slot.connection.pending_output() > 0 {
            conn_state::WRITE
        } else if slot.connection.session.swallowing() {
            conn_state::SWALLOW
        } else if slot.connection.awaiting_data() {
            conn_state::NREAD
        } else {
            conn_state::NEW_CMD
        };
        slot.info.state.store(state, Ordering::Relaxed);
        Some(verdict)
    }

    /// Gives each connection that yielded its next turn, once per loop.
    fn serve_ready(&mut self) {
        for _ in 0..self.ready.len() {
            let Some(key) = self.ready.pop_front() else {
                break;
            };
            if let Some(slot) = self.connections.get_mut(key) {
                slot.queued = false;
                self.serve(key);
            }
        }
    }

    fn close(&mut self, key: usize, reason: CloseReason) {
        if self.connections.contains(key) {
            let slot = self.connections.remove(key);
            if let Some(watcher) = slot.connection.watcher() {
                self.shared.watchers.remove(watcher);
            }
            Executor::new(&self.shared, self.id, slot.info.fd)
                .log_connection_close(&slot.info.peer, reason);
            crate::logging::trace_event(slot.info.fd, "connection closed.");
            self.shared.registries[self.id].remove(key);
            if slot.connection.is_handshaking()
                && let Some(tls) = &self.shared.tls
            {
                tls.stats.handshake_errors.fetch_add(1, Ordering::Relaxed);
            }
            self.shared.connections.closed();
            log::debug!(
                "worker {}: closed connection {key} from {}",
                self.id,
                slot.info.peer
            );
            // Dropping the stream closes the socket, which also removes it from epoll.
        }
    }

    fn housekeeping(&mut self, idle: bool) {
        let now = self.shared.cache.clock.now();
        let due = self.last_maintenance.elapsed() >= TICK;
        if idle || due {
            // Never wait for the lock: a busy partition is being used, which is better.
            // The partitions this worker owns take turns: id, id + threads, id + 2 threads...
            let owned = self.next_partition;
            self.next_partition += self.shared.settings.threads;
            if self.next_partition >= self.shared.settings.partitions {
                self.next_partition = self.id;
            }
            // With the crawler off (`lru_crawler disable`, `-o no_lru_crawler`) only the crawl
            // stops: delayed flushes, pages given back and automove go on, as memcached's LRU
            // maintainer and slab mover run without its crawler.
            let crawling = self.shared.crawler.enabled();
            let budget = match (crawling, idle) {
                (false, _) => 0,
                (true, true) => MAINTENANCE_IDLE,
                (true, false) => MAINTENANCE_BUSY,
            };
            if let Some(mut partition) = self.shared.cache.partition(owned).try_lock() {
                partition.maintain(budget);
                if crawling {
                    // Reported as crawler starts and maintainer passes, as before.
                    self.shared.threads[self.id].maintenance_slices.incr();
                }
            }
            self.last_maintenance = Instant::now();
        }
        if now != self.last_second {
            self.last_second = now;
            // Once a second, not once a turn: the heartbeats of all workers share a cache line.
            self.shared.heartbeats[self.id].store(now, Ordering::Relaxed);
            self.scratch.trim();
            self.kick_idle(now);
        }
    }

    /// Closes connections that sent nothing for longer than `idle_timeout`, and TLS
    /// connections whose handshake has taken longer than [`HANDSHAKE_TIMEOUT`].
    fn kick_idle(&mut self, now: u32) {
        if self.shared.tls.is_some() {
            let stalled: Vec<usize> = self
                .connections
                .iter()
                .filter(|(_, slot)| {
                    slot.connection.is_handshaking()
                        && now.saturating_sub(slot.info.last_cmd.load(Ordering::Relaxed))
                            > HANDSHAKE_TIMEOUT
                })
                .map(|(key, _)| key)
                .collect();
            for key in stalled {
                self.close(key, CloseReason::Error);
            }
        }
        let timeout = self.shared.settings.idle_timeout;
        if timeout == 0 {
            return;
        }
        let idle: Vec<usize> = self
            .connections
            .iter()
            .filter(|(_, slot)| {
                now.saturating_sub(slot.info.last_cmd.load(Ordering::Relaxed)) > timeout
                    && slot.connection.pending_output() == 0
            })
            .map(|(key, _)| key)
            .collect();
        for key in idle {
            self.shared.threads[self.id].idle_kicks.incr();
            self.close(key, CloseReason::IdleTimeout);
        }
    }

    /// Graceful shutdown: serve what has arrived, write the replies, then close everything.
    fn drain(&mut self, events: &mut Events) {
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let keys: Vec<usize> = self.connections.iter().map(|(key, _)| key).collect();
        for key in keys {
            // Every request that has arrived is answered, -R turn after -R turn, while the
            // grace period lasts.
            loop {
                match self.serve_turn(key) {
                    Some(Verdict::Yielded | Verdict::Paused) if Instant::now() < deadline => {
                        continue;
                    }
                    Some(Verdict::Close) => self.close(key, CloseReason::Normal),
                    _ => {}
                }
                break;
            }
            if let Some(slot) = self.connections.get_mut(key) {
                slot.connection.close_after_flush();
                if slot.connection.finished() {
                    self.close(key, CloseReason::Shutdown);
                }
            }
        }
        while !self.connections.is_empty() && Instant::now() < deadline {
            // A large reply paused at its per-turn bound goes on from the ready queue: no
            // writable edge will come for it.
            let wait = if self.ready.is_empty() {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            let _ = self.poll.poll(events, Some(wait));
            for event in events.iter() {
                let Token(key) = event.token();
                if event.token() != WAKER && event.is_writable() {
                    self.on_event(key, false, false, true);
                }
            }
            self.serve_ready();
        }
        let keys: Vec<usize> = self.connections.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.close(key, CloseReason::Shutdown);
        }
    }
}

/// How memcached's `-vv` announces a connection under each `-B`.
fn new_connection_line(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Auto => "new auto-negotiating client connection",
        Protocol::Ascii => "new ascii client connection.",
        Protocol::Binary => "new binary client connection.",
    }
}

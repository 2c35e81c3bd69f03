//! The acceptor: the main thread's event loop over the listening sockets and the signals.
//!
//! Owns: accepting connections and handing them round-robin to the workers (over crossbeam
//! channels, with a mio `Waker` per worker), refusing connections over `-c` with memcached's
//! `ERROR Too many open connections`, backing off when file descriptors run out, ticking the
//! shared clock, the systemd watchdog and status, SIGHUP's reload of certificates, the auth
//! file and the cluster's node list (which is also re-read when its file changes), and starting
//! a graceful shutdown on SIGTERM, SIGINT, SIGUSR1 or the `shutdown` command. Must not touch: a
//! connection once handed over.
//!
//! Why one acceptor rather than a SO_REUSEPORT listener per worker: the kernel spreads
//! REUSEPORT connections by a hash of the addresses, so 50 client connections can land 30/20 and
//! the busier worker caps throughput; round-robin gives each worker the same number. It also
//! serves UNIX and inherited (socket-activated) listeners, which cannot be multiplied, with the
//! same code. A hand-off costs one channel send and one wake-up per connection, never per
//! request. Measured against a variant where each worker accepts on its own SO_REUSEPORT
//! listener (2026-11-23, `-t 2`, ferrocache-bench, 50 connections, two alternating rounds of
//! 4 s on the shared 2-core machine, load average ~7 from other jobs): W1 (1 in flight)
//! 47k/30k ops/s here vs 40k/43k with REUSEPORT; W2 (16 in flight) 196k/370k vs 202k/319k. No
//! difference beyond the machine's noise, so the acceptor stays, for the even spread and the
//! one code path for every kind of listener.

use crate::listener::Listener;
use crate::shared::Shared;
use crate::systemd::Notifier;
use crate::worker::{Handoff, WorkerHandle};
use mio::net::UnixStream;
use mio::{Events, Interest, Poll, Token, Waker};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const WAKER: Token = Token(usize::MAX);
const SIGNALS: Token = Token(usize::MAX - 1);
const RELOAD: Token = Token(usize::MAX - 2);

/// The clock ticks at least this often, so expiry is accurate to the second.
const TICK: Duration = Duration::from_millis(100);

/// How often the files re-read on change (the cluster's node list) are looked at.
const FILE_CHECK: Duration = Duration::from_secs(1);

/// After running out of file descriptors, accepting resumes after this pause.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

pub struct Acceptor {
    poll: Poll,
    listeners: Vec<Listener>,
    signals: UnixStream,
    /// SIGHUP: certificates and the auth file are read again.
    reload: UnixStream,
    shared: Arc<Shared>,
    workers: Vec<WorkerHandle>,
    next_worker: usize,
    notifier: Notifier,
    resume_accepting_at: Option<Instant>,
    /// When the files re-read on change were last looked at.
    last_file_check: Instant,
}

impl Acceptor {
    /// The poll and waker must be made first, so that the shared state can hold the waker.
    pub fn poll_and_waker() -> io::Result<(Poll, Arc<Waker>)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok((poll, waker))
    }

    pub fn new(
        poll: Poll,
        mut listeners: Vec<Listener>,
        shared: Arc<Shared>,
        workers: Vec<WorkerHandle>,
        notifier: Notifier,
    ) -> io::Result<Self> {
        for (index, listener) in listeners.iter_mut().enumerate() {
            poll.registry()
                .register(listener, Token(index), Interest::READABLE)?;
        }
        // SIGUSR1 is memcached's graceful stop (the one after which `-e` restarts warm).
        let signals = signal_pipe(&[
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGUSR1,
        ])?;
        let reload = signal_pipe(&[signal_hook::consts::SIGHUP])?;
        let mut acceptor = Acceptor {
            poll,
            listeners,
            signals,
            reload,
            shared,
            workers,
            next_worker: 0,
            notifier,
            resume_accepting_at: None,
            last_file_check: Instant::now(),
        };
        acceptor
            .poll
            .registry()
            .register(&mut acceptor.signals, SIGNALS, Interest::READABLE)?;
        acceptor
            .poll
            .registry()
            .register(&mut acceptor.reload, RELOAD, Interest::READABLE)?;
        acceptor
            .shared
            .connections
            .accepting
            .store(true, Ordering::Relaxed);
        Ok(acceptor)
    }

    /// Tells systemd the daemon is ready.
    pub fn ready(&self, addresses: &str) {
        self.notifier.ready(addresses);
    }

    /// Accepts until a shutdown is asked for; then stops listening and tells workers to finish.
    pub fn run(mut self) -> Vec<WorkerHandle> {
        let mut events = Events::with_capacity(64);
        let mut last_status = Instant::now();
        loop {
            if let Err(error) = self.poll.poll(&mut events, Some(TICK))
                && error.kind() != io::ErrorKind::Interrupted
            {
                log::error!("acceptor: poll failed: {error}");
                break;
            }
            self.shared.cache.clock.tick();
            let mut stop = false;
            for event in events.iter() {
                match event.token() {
                    SIGNALS => stop |= drain(&mut self.signals),
                    RELOAD => {
                        if drain(&mut self.reload) {
                            self.shared.reload();
                        }
                    }
                    WAKER => stop |= self.shared.shutdown_requested.load(Ordering::Acquire),
                    Token(index) => {
                        if self.resume_accepting_at.is_none() {
                            self.accept_from(index);
                        }
                    }
                }
            }
            if let Some(at) = self.resume_accepting_at
                && Instant::now() >= at
            {
                self.resume_accepting_at = None;
                // Accepting stopped ACCEPT_BACKOFF before `at`.
                let stopped_for = Instant::now().saturating_duration_since(at - ACCEPT_BACKOFF);
                self.shared
                    .connections
                    .listen_disabled_us
                    .fetch_add(stopped_for.as_micros() as u64, Ordering::Relaxed);
                self.shared
                    .connections
                    .accepting
                    .store(true, Ordering::Relaxed);
                for index in 0..self.listeners.len() {
                    self.accept_from(index);
                }
            }
            self.recheck_files();
            self.notifier.watchdog(&self.shared);
            if last_status.elapsed() >= Duration::from_secs(5) {
                self.notifier.status_summary(&self.shared);
                last_status = Instant::now();
            }
            if stop {
                break;
            }
        }
        log::info!("shutting down: no longer accepting; finishing replies in flight");
        self.notifier.stopping();
        self.shared
            .connections
            .accepting
            .store(false, Ordering::Relaxed);
        for listener in self.listeners.drain(..) {
            listener.remove_socket_file();
        }
        self.shared.stopping.store(true, Ordering::Release);
        for worker in &self.workers {
            let _ = worker.waker.wake();
        }
        self.workers
    }

    /// Re-reads the cluster's node list once a second if its file changed (SIGHUP re-reads it
    /// with the rest, in [`Shared::reload`]). A list that does not parse keeps the one in
    /// force, with a log line saying why.
    fn recheck_files(&mut self) {
        let Some(cluster) = &self.shared.cluster else {
            return;
        };
        if self.last_file_check.elapsed() < FILE_CHECK {
            return;
        }
        self.last_file_check = Instant::now();
        if let Err(error) = cluster.reload_if_changed() {
            log::warn!("{error}; keeping the node list in force");
        }
    }

    fn accept_from(&mut self, index: usize) {
        let mut woken = vec![false; self.workers.len()];
        loop {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    let tls = listener.is_tls();
                    if !self
                        .shared
                        .connections
                        .admit(self.shared.settings.conn_limit)
                    {
                        // Best effort: the socket is new, so the short line fits its buffer.
                        let _ = stream.write(ferrocache_protocol::reply::TOO_MANY_CONNECTIONS);
                        log::debug!("refused connection from {peer}: too many open connections");
                        continue;
                    }
                    let worker = self.next_worker;
                    self.next_worker = (self.next_worker + 1) % self.workers.len();
                    if self.workers[worker]
                        .sender
                        .send(Handoff { stream, peer, tls })
                        .is_err()
                    {
                        self.shared.connections.closed();
                        continue;
                    }
                    woken[worker] = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if is_out_of_descriptors(&e) => {
                    log::warn!("out of file descriptors: not accepting for {ACCEPT_BACKOFF:?}");
                    self.shared
                        .connections
                        .listen_disabled_num
                        .fetch_add(1, Ordering::Relaxed);
                    self.shared
                        .connections
                        .accepting
                        .store(false, Ordering::Relaxed);
                    self.resume_accepting_at = Some(Instant::now() + ACCEPT_BACKOFF);
                    break;
                }
                // The peer gave up before we accepted (ECONNABORTED and the like): next one.
                Err(e) => log::debug!("accept failed: {e}"),
            }
        }
        // One wake-up per worker per batch of connections, not per connection.
        for (worker, woken) in woken.into_iter().enumerate() {
            if woken {
                let _ = self.workers[worker].waker.wake();
            }
        }
    }
}

fn is_out_of_descriptors(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Drains a signal pipe; true if a signal came.
fn drain(pipe: &mut UnixStream) -> bool {
    let mut buffer = [0u8; 64];
    let mut any = false;
    loop {
        match pipe.read(&mut buffer) {
            Ok(0) => break,
            Ok(_) => any = true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    any
}

/// `signals`, delivered as bytes on a socket the acceptor polls.
fn signal_pipe(signals: &[i32]) -> io::Result<UnixStream> {
    let (reader, writer) = std::os::unix::net::UnixStream::pair()?;
    reader.set_nonblocking(true)?;
    writer.set_nonblocking(true)?;
    for &signal in signals {
        signal_hook::low_level::pipe::register(signal, writer.try_clone()?)?;
    }
    Ok(UnixStream::from_std(reader))
}

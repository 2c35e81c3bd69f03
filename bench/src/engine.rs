//! The load engine: each thread drives all its connections from one mio event loop, keeping
//! `pipeline` requests in flight on each, and measures every request from the moment it was
//! due to the moment its last reply byte was parsed.
//!
//! Owns: connections, request generation (get, multi-get, set, cache-aside), reply accounting,
//! warm-up and stop conditions, the fixed-rate schedule. Must not touch: output formatting
//! (`report`), the fill and idle modes.
//!
//! The generator shares two cores with the server, so it is built to be cheap: no allocation
//! per request (buffers and key lists are reused), one `write` per connection per event-loop
//! turn, reads until the socket is drained, replies parsed in place by
//! `ferrocache_protocol::client` (text) or `ferrocache_protocol::binary::client` (binary).
//!
//! Over the binary protocol a single-key get is a GET, a multi-key get is GETKQ for each key
//! then a NOOP that ends it (hits come back with their keys, misses are silent), a set is a
//! SET, and a cache-aside fill is a SETQ (answered only if it fails).
//!
//! With several targets a "connection" is one socket per target: a multi-get is split by the
//! ketama ring into one `get` per server and completes when the last part is answered.

use crate::cli::{KeyFormat, KeyPattern, Protocol, SizeRange};
use crate::keys::KeyPicker;
use crate::tls::ClientTls;
use ferrocache_client::KetamaRing;
use ferrocache_protocol::binary::client::{ResponseError, encode_frame, parse_response};
use ferrocache_protocol::binary::{Opcode, Status};
use ferrocache_protocol::client::{
    ParsedReply, Reply, ReplyError, Store, encode_store, parse_reply,
};
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot connect to {target}: {source}")]
    Connect {
        target: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("I/O error with {target}: {source}")]
    Io {
        target: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("{target} closed the connection")]
    Closed { target: SocketAddr },
    #[error("bad reply from {target}: {source}")]
    Protocol {
        target: SocketAddr,
        #[source]
        source: ReplyError,
    },
    #[error("bad binary response from {target}: {source}")]
    BinaryProtocol {
        target: SocketAddr,
        #[source]
        source: ResponseError,
    },
    #[error("reply from {target} that answers nothing sent: {reply}")]
    Unexpected { target: SocketAddr, reply: String },
    #[error("{0} requests still unanswered 10 s after the run ended")]
    Stalled(usize),
    #[error("{0}")]
    Client(#[from] ferrocache_client::ClientError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Plot(#[from] crate::plot::PlotError),
}

/// What the requests are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Workload {
    /// Sets with probability `set_share`, otherwise gets of `multiget` keys.
    Load { set_share: f64 },
    /// Multi-gets of `multiget` keys; each miss is then set with `noreply`.
    CacheAside,
}

/// When a phase ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Time(Duration),
    /// Requests over all threads.
    Requests(u64),
}

/// One run's settings, shared read-only by its threads.
#[derive(Debug, Clone)]
pub struct Plan {
    pub workload: Workload,
    pub protocol: Protocol,
    pub targets: Vec<SocketAddr>,
    /// Routes keys when there are several targets.
    pub ring: Option<KetamaRing>,
    pub threads: usize,
    /// Connections per thread.
    pub connections: usize,
    pub pipeline: usize,
    pub multiget: usize,
    /// Draw the keys of a multi-get without repeats (sorted), as an application that dedupes
    /// would; otherwise independently, so a popular key may be asked twice in one get (and
    /// counts twice, as memtier-style generators count it).
    pub distinct_keys: bool,
    pub keys: u64,
    pub key_pattern: KeyPattern,
    pub zipf_exponent: f64,
    pub key_format: KeyFormat,
    pub value_size: SizeRange,
    pub warmup: Limit,
    pub measure: Limit,
    /// Requests per second over all connections.
    pub rate: Option<f64>,
    pub seed: u64,
    /// `--tls`: the client config every socket speaks TLS with.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// `--interval`: also keep a latency histogram per interval of the measured phase (for
    /// percentiles against time).
    pub interval: Option<Duration>,
}

/// Counters and latencies of the measured phase (warm-up requests are only counted).
#[derive(Debug, Clone)]
pub struct Tally {
    /// Nanoseconds from a request's due time to its last reply.
    pub latency_ns: Histogram<u64>,
    pub requests: u64,
    pub gets: u64,
    pub sets: u64,
    /// Keys found / not found by gets.
    pub key_hits: u64,
    pub key_misses: u64,
    /// Requests answered with an error line (or NOT_STORED to a set).
    pub errors: u64,
    /// Cache-aside sets sent after misses.
    pub fill_sets: u64,
    pub warmup_requests: u64,
    /// Measured time: from the end of warm-up to the last measured reply (summed over threads
    /// for the rate: each thread's requests over its own elapsed time).
    pub elapsed: Duration,
    pub throughput: f64,
    /// With `Plan::interval`: the latencies of the requests that completed in each interval
    /// since the measured phase began (each thread counts from its own start of measuring).
    pub intervals: Vec<Histogram<u64>>,
}

/// Bounds of every latency histogram: 1 us to 60 s.
const LATENCY_BOUNDS_NS: (u64, u64) = (1_000, 60_000_000_000);

/// Significant digits of the per-interval histograms: 2 keeps each at about 20 KiB, where the
/// whole run's 3 digits take ten times that, and a percentile against time needs no more.
const INTERVAL_DIGITS: u8 = 2;

impl Tally {
    fn new() -> Self {
        Tally {
            latency_ns: Histogram::new_with_bounds(LATENCY_BOUNDS_NS.0, LATENCY_BOUNDS_NS.1, 3)
                .expect("valid histogram bounds"),
            requests: 0,
            gets: 0,
            sets: 0,
            key_hits: 0,
            key_misses: 0,
            errors: 0,
            fill_sets: 0,
            warmup_requests: 0,
            elapsed: Duration::ZERO,
            throughput: 0.0,
            intervals: Vec::new(),
        }
    }

    /// Records a measured latency that completed in interval `index` (with `--interval`).
    fn record_in_interval(&mut self, index: usize, latency_ns: u64) {
        if self.intervals.len() <= index {
            self.intervals
                .resize_with(index + 1, Self::interval_histogram);
        }
        self.intervals[index].saturating_record(latency_ns);
    }

    fn interval_histogram() -> Histogram<u64> {
        Histogram::new_with_bounds(LATENCY_BOUNDS_NS.0, LATENCY_BOUNDS_NS.1, INTERVAL_DIGITS)
            .expect("valid histogram bounds")
    }

    /// Adds another thread's tally.
    pub fn merge(&mut self, other: &Tally) {
        self.latency_ns
            .add(&other.latency_ns)
            .expect("histograms with equal bounds");
        self.requests += other.requests;
        self.gets += other.gets;
        self.sets += other.sets;
        self.key_hits += other.key_hits;
        self.key_misses += other.key_misses;
        self.errors += other.errors;
        self.fill_sets += other.fill_sets;
        self.warmup_requests += other.warmup_requests;
        self.elapsed = self.elapsed.max(other.elapsed);
        self.throughput += other.throughput;
        if other.intervals.len() > self.intervals.len() {
            self.intervals
                .resize_with(other.intervals.len(), Self::interval_histogram);
        }
        for (index, histogram) in other.intervals.iter().enumerate() {
            self.intervals[index]
                .add(histogram)
                .expect("histograms with equal bounds");
        }
    }
}

/// Progress shared with the main thread's progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    /// Requests completed, warm-up included.
    pub completed: AtomicU64,
}

/// Runs `plan` on `plan.threads` threads and merges their tallies.
pub fn run(plan: &Plan, progress: &Arc<Progress>) -> Result<Tally, BenchError> {
    if plan.targets.is_empty() || plan.threads == 0 || plan.connections == 0 || plan.pipeline == 0 {
        return Err(BenchError::Usage(
            "need at least one target, thread, connection and request in flight".into(),
        ));
    }
    let results: Vec<Result<Tally, BenchError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..plan.threads)
            .map(|index| {
                let progress = Arc::clone(progress);
                scope.spawn(move || Worker::new(plan, index)?.run(&progress))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .collect()
    });
    let mut total = Tally::new();
    for result in results {
        total.merge(&result?);
    }
    Ok(total)
}

/// This thread's share of `total` requests.
fn share(total: u64, threads: usize, index: usize) -> u64 {
    let threads = threads as u64;
    let index = index as u64;
    total / threads + u64::from(index < total % threads)
}

/// One reply-producing command sent on one socket.
#[derive(Debug)]
struct Part {
    /// Index of its request in the connection's request table.
    request: usize,
    is_get: bool,
    /// Keys asked, in order (cache-aside: to know which ones missed).
    keys: Vec<u64>,
    /// Keys of `keys` accounted for so far.
    next_key: usize,
}

/// A request in flight: one or more parts (one per server a multi-get spans).
#[derive(Debug, Clone, Copy)]
struct InFlight {
    due: Instant,
    measured: bool,
    parts_left: u32,
    is_get: bool,
    keys: u32,
    hits: u32,
    error: bool,
}

#[derive(Debug)]
struct Socket {
    stream: TcpStream,
    /// `--tls`: what is read and written goes through rustls.
    tls: Option<ClientTls>,
    target: SocketAddr,
    connected: bool,
    out: Vec<u8>,
    written: usize,
    input: Vec<u8>,
    start: usize,
    end: usize,
    parts: VecDeque<Part>,
}

impl Socket {
    /// Writes what is buffered, as far as the socket takes it.
    fn flush(&mut self) -> Result<(), BenchError> {
        if let (true, Some(tls)) = (self.connected, &mut self.tls) {
            tls.flush(&mut self.stream)
                .map_err(|source| BenchError::Io {
                    target: self.target,
                    source,
                })?;
        }
        while self.connected && self.written < self.out.len() {
            let pending = &self.out[self.written..];
            let wrote = match &mut self.tls {
                Some(tls) => tls.write(&mut self.stream, pending),
                None => self.stream.write(pending),
            };
            match wrote {
                Ok(0) => {
                    return Err(BenchError::Closed {
                        target: self.target,
                    });
                }
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(BenchError::Io {
                        target: self.target,
                        source: e,
                    });
                }
            }
        }
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
        }
        Ok(())
    }

    /// Reads everything the socket has (edge-triggered: until it would block).
    fn fill(&mut self) -> Result<(), BenchError> {
        loop {
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            } else if self.end == self.input.len() && self.start > 0 {
                self.input.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.input.len() {
                self.input.resize(self.input.len() * 2, 0);
            }
            let room = &mut self.input[self.end..];
            let got = match &mut self.tls {
                Some(tls) => tls.read(&mut self.stream, room),
                None => self.stream.read(room),
            };
            match got {
                Ok(0) => {
                    return Err(BenchError::Closed {
                        target: self.target,
                    });
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(BenchError::Io {
                        target: self.target,
                        source: e,
                    });
                }
            }
        }
    }
}

/// One logical connection: a socket per target and its requests in flight.
#[derive(Debug)]
struct Connection {
    sockets: Vec<Socket>,
    requests: Vec<InFlight>,
    free: Vec<usize>,
    in_flight: usize,
    /// Fixed-rate mode: when the next request is due.
    next_due: Instant,
}

/// State of one thread besides its connections.
struct Context<'p> {
    plan: &'p Plan,
    rng: SmallRng,
    picker: KeyPicker,
    tally: Tally,
    /// Random printable bytes; values are prefixes of it.
    values: Vec<u8>,
    /// Reused lists.
    spare_key_lists: Vec<Vec<u64>>,
    scratch_keys: Vec<u64>,
    scratch_key: Vec<u8>,
    groups: Vec<Vec<u64>>,
    completed_since_report: u64,
    /// When this thread began measuring (the origin of `Tally::intervals`).
    measure_start: Instant,
}

struct Worker<'p> {
    poll: Poll,
    connections: Vec<Connection>,
    context: Context<'p>,
    index: usize,
}

impl<'p> Worker<'p> {
    fn new(plan: &'p Plan, index: usize) -> Result<Self, BenchError> {
        let poll = Poll::new().map_err(|source| BenchError::Connect {
            target: plan.targets[0],
            source,
        })?;
        let target_count = plan.targets.len();
        let mut connections = Vec::with_capacity(plan.connections);
        for c in 0..plan.connections {
            let mut sockets = Vec::with_capacity(target_count);
            for (t, &target) in plan.targets.iter().enumerate() {
                let connect_error = |source| BenchError::Connect { target, source };
                let mut stream = TcpStream::connect(target).map_err(connect_error)?;
                stream.set_nodelay(true).map_err(connect_error)?;
                poll.registry()
                    .register(
                        &mut stream,
                        Token(c * target_count + t),
                        Interest::READABLE | Interest::WRITABLE,
                    )
                    .map_err(connect_error)?;
                let tls = match &plan.tls {
                    Some(config) => {
                        Some(ClientTls::new(Arc::clone(config), target).map_err(connect_error)?)
                    }
                    None => None,
                };
                sockets.push(Socket {
                    stream,
                    tls,
                    target,
                    connected: false,
                    out: Vec::with_capacity(16 * 1024),
                    written: 0,
                    input: vec![0; 64 * 1024],
                    start: 0,
                    end: 0,
                    parts: VecDeque::with_capacity(plan.pipeline),
                });
            }
            connections.push(Connection {
                sockets,
                requests: Vec::with_capacity(plan.pipeline),
                free: Vec::with_capacity(plan.pipeline),
                in_flight: 0,
                next_due: Instant::now(),
            });
        }
        let mut rng =
            SmallRng::seed_from_u64(plan.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ index as u64);
        let values = (0..plan.value_size.max.max(1))
            .map(|_| rng.random_range(b'a'..=b'z'))
            .collect();
        let picker = KeyPicker::new(
            plan.key_pattern,
            plan.keys,
            plan.zipf_exponent,
            index as u64,
            plan.threads as u64,
        );
        Ok(Worker {
            poll,
            connections,
            context: Context {
                plan,
                rng,
                picker,
                tally: Tally::new(),
                values,
                spare_key_lists: Vec::new(),
                scratch_keys: Vec::new(),
                scratch_key: Vec::with_capacity(256),
                groups: vec![Vec::new(); target_count],
                completed_since_report: 0,
                measure_start: Instant::now(),
            },
            index,
        })
    }

    /// Waits until every socket is connected (or one fails).
    fn connect_all(&mut self, events: &mut Events) -> Result<(), BenchError> {
        let target_count = self.context.plan.targets.len();
        let mut pending = self.connections.len() * target_count;
        let deadline = Instant::now() + Duration::from_secs(10);
        while pending > 0 {
            let now = Instant::now();
            if now > deadline {
                return Err(BenchError::Connect {
                    target: self.context.plan.targets[0],
                    source: io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
                });
            }
            self.poll
                .poll(events, Some(deadline - now))
                .map_err(|source| BenchError::Io {
                    target: self.context.plan.targets[0],
                    source,
                })?;
            for event in events.iter() {
                let socket = &mut self.connections[event.token().0 / target_count].sockets
                    [event.token().0 % target_count];
                if socket.connected || !(event.is_writable() || event.is_error()) {
                    continue;
                }
                let target = socket.target;
                if let Some(error) = socket.stream.take_error().ok().flatten() {
                    return Err(BenchError::Connect {
                        target,
                        source: error,
                    });
                }
                match socket.stream.peer_addr() {
                    Ok(_) => {
                        socket.connected = true;
                        pending -= 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                    Err(source) => return Err(BenchError::Connect { target, source }),
                }
            }
        }
        Ok(())
    }

    fn run(mut self, progress: &Progress) -> Result<Tally, BenchError> {
        let mut events = Events::with_capacity(1024);
        self.connect_all(&mut events)?;
        let plan = self.context.plan;
        let target_count = plan.targets.len();
        let started = Instant::now();
        let (warmup_quota, warmup_until) = match plan.warmup {
            Limit::Time(d) => (u64::MAX, started + d),
            Limit::Requests(n) => (share(n, plan.threads, self.index), started),
        };
        let measure_quota = match plan.measure {
            Limit::Requests(n) => share(n, plan.threads, self.index),
            Limit::Time(_) => u64::MAX,
        };
        let slots = (plan.threads * plan.connections) as f64;
        let interval = plan
            .rate
            .map(|rate| Duration::from_secs_f64(slots / rate.max(1e-9)));
        for (i, connection) in self.connections.iter_mut().enumerate() {
            // Spread the first requests of a fixed rate over one interval.
            if let Some(interval) = interval {
                connection.next_due =
                    started + interval.mul_f64(i as f64 / plan.connections as f64);
            }
        }

        let mut measuring = match plan.warmup {
            Limit::Time(d) => d.is_zero(),
            Limit::Requests(n) => warmup_quota == 0 || n == 0,
        };
        self.context.measure_start = started;
        let mut measure_deadline = match plan.measure {
            Limit::Time(d) if measuring => Some(started + d),
            _ => None,
        };
        let mut issued_warmup = 0u64;
        let mut issued_measured = 0u64;
        let mut issuing = true;
        let mut stopped_at: Option<Instant> = None;
        let mut last_measured_reply = started;

        loop {
            let now = Instant::now();
            // Phase changes.
            if !measuring {
                let time_up = matches!(plan.warmup, Limit::Time(_)) && now >= warmup_until;
                let count_up =
                    matches!(plan.warmup, Limit::Requests(_)) && issued_warmup >= warmup_quota;
                if time_up || count_up {
                    measuring = true;
                    self.context.measure_start = now;
                    if let Limit::Time(d) = plan.measure {
                        measure_deadline = Some(now + d);
                    }
                }
            }
            if issuing && measuring {
                let time_up = measure_deadline.is_some_and(|deadline| now >= deadline);
                if time_up || issued_measured >= measure_quota {
                    issuing = false;
                    stopped_at = Some(now);
                }
            }
            let in_flight: usize = self.connections.iter().map(|c| c.in_flight).sum();
            if !issuing && in_flight == 0 {
                break;
            }
            if let Some(stopped) = stopped_at
                && now.duration_since(stopped) > Duration::from_secs(10)
            {
                return Err(BenchError::Stalled(in_flight));
            }

            // Issue what each connection may send now, then write it.
            if issuing {
                for connection in &mut self.connections {
                    while connection.in_flight < plan.pipeline {
                        let quota_left = if measuring {
                            issued_measured < measure_quota
                        } else {
                            issued_warmup < warmup_quota
                        };
                        if !quota_left {
                            break;
                        }
                        let due = match interval {
                            Some(interval) => {
                                if connection.next_due > now {
                                    break;
                                }
                                let due = connection.next_due;
                                connection.next_due += interval;
                                due
                            }
                            None => now,
                        };
                        self.context.issue(connection, due, measuring);
                        if measuring {
                            issued_measured += 1;
                        } else {
                            issued_warmup += 1;
                        }
                    }
                }
            }
            for connection in &mut self.connections {
                for socket in &mut connection.sockets {
                    if !socket.out.is_empty() {
                        socket.flush()?;
                    }
                }
            }

            // Wait for replies (or the next due request, or a phase boundary).
            let mut timeout = Duration::from_millis(10);
            if interval.is_some()
                && let Some(next) = self
                    .connections
                    .iter()
                    .filter(|c| c.in_flight < plan.pipeline)
                    .map(|c| c.next_due)
                    .min()
            {
                timeout = timeout.min(next.saturating_duration_since(now));
            }
            self.poll
                .poll(&mut events, Some(timeout))
                .map_err(|source| BenchError::Io {
                    target: plan.targets[0],
                    source,
                })?;
            for event in events.iter() {
                let token = event.token().0;
                let connection = &mut self.connections[token / target_count];
                let socket = &mut connection.sockets[token % target_count];
                if event.is_writable() {
                    socket.flush()?;
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    socket.fill()?;
                    let measured_done = self
                        .context
                        .take_replies(connection, token % target_count)?;
                    if measured_done {
                        last_measured_reply = Instant::now();
                    }
                }
            }
            if self.context.completed_since_report > 0 {
                progress
                    .completed
                    .fetch_add(self.context.completed_since_report, Ordering::Relaxed);
                self.context.completed_since_report = 0;
            }
        }
        let mut tally = self.context.tally;
        tally.elapsed = last_measured_reply.saturating_duration_since(self.context.measure_start);
        if tally.elapsed > Duration::ZERO {
            tally.throughput = tally.requests as f64 / tally.elapsed.as_secs_f64();
        }
        Ok(tally)
    }
}

impl Context<'_> {
    fn value_len(&mut self) -> usize {
        let range = self.plan.value_size;
        if range.min == range.max {
            range.min
        } else {
            self.rng.random_range(range.min..=range.max)
        }
    }

    fn target_of(&mut self, key: u64) -> usize {
        match &self.plan.ring {
            None => 0,
            Some(ring) => {
                self.scratch_key.clear();
                self.plan.key_format.write(key, &mut self.scratch_key);
                ring.server_for(&self.scratch_key)
            }
        }
    }

    /// Encodes one request onto `connection`'s sockets.
    fn issue(&mut self, connection: &mut Connection, due: Instant, measured: bool) {
        let plan = self.plan;
        let is_get = match plan.workload {
            Workload::CacheAside => true,
            Workload::Load { set_share } => {
                set_share < 1.0 && (set_share <= 0.0 || self.rng.random::<f64>() >= set_share)
            }
        };
        let request = InFlight {
            due,
            measured,
            parts_left: 0,
            is_get,
            keys: 0,
            hits: 0,
            error: false,
        };
        let slot = match connection.free.pop() {
            Some(slot) => {
                connection.requests[slot] = request;
                slot
            }
            None => {
                connection.requests.push(request);
                connection.requests.len() - 1
            }
        };
        connection.in_flight += 1;
        if !is_get {
            let key = self.picker.next(&mut self.rng);
            let target = self.target_of(key);
            self.scratch_key.clear();
            plan.key_format.write(key, &mut self.scratch_key);
            let len = self.value_len();
            let socket = &mut connection.sockets[target];
            encode_set(
                plan.protocol,
                &mut socket.out,
                &self.scratch_key,
                &self.values[..len],
                false,
            );
            socket.parts.push_back(Part {
                request: slot,
                is_get: false,
                keys: Vec::new(),
                next_key: 0,
            });
            connection.requests[slot].parts_left = 1;
            return;
        }
        // Keys of the get.
        let mut keys = std::mem::take(&mut self.scratch_keys);
        if plan.distinct_keys {
            self.picker
                .distinct(plan.multiget, &mut self.rng, &mut keys);
        } else {
            keys.clear();
            for _ in 0..plan.multiget.max(1) {
                keys.push(self.picker.next(&mut self.rng));
            }
        }
        connection.requests[slot].keys = keys.len() as u32;
        let remember_keys = plan.workload == Workload::CacheAside;
        if plan.ring.is_none() {
            Self::encode_get(
                plan.protocol,
                &mut connection.sockets[0],
                &plan.key_format,
                &keys,
                &mut self.scratch_key,
            );
            let part_keys = if remember_keys {
                let mut list = self.spare_key_lists.pop().unwrap_or_default();
                list.clone_from(&keys);
                list
            } else {
                Vec::new()
            };
            connection.sockets[0].parts.push_back(Part {
                request: slot,
                is_get: true,
                keys: part_keys,
                next_key: 0,
            });
            connection.requests[slot].parts_left = 1;
        } else {
            let mut groups = std::mem::take(&mut self.groups);
            for group in &mut groups {
                group.clear();
            }
            for &key in &keys {
                let target = self.target_of(key);
                groups[target].push(key);
            }
            let mut parts = 0;
            for (target, group) in groups.iter().enumerate() {
                if group.is_empty() {
                    continue;
                }
                Self::encode_get(
                    plan.protocol,
                    &mut connection.sockets[target],
                    &plan.key_format,
                    group,
                    &mut self.scratch_key,
                );
                let part_keys = if remember_keys {
                    let mut list = self.spare_key_lists.pop().unwrap_or_default();
                    list.clone_from(group);
                    list
                } else {
                    Vec::new()
                };
                connection.sockets[target].parts.push_back(Part {
                    request: slot,
                    is_get: true,
                    keys: part_keys,
                    next_key: 0,
                });
                parts += 1;
            }
            connection.requests[slot].parts_left = parts;
            self.groups = groups;
        }
        self.scratch_keys = keys;
    }

    /// `get k1 k2 ...\r\n` with the keys written straight from their indices; over the binary
    /// protocol a GET, or GETKQ per key and a NOOP.
    fn encode_get(
        protocol: Protocol,
        socket: &mut Socket,
        format: &KeyFormat,
        keys: &[u64],
        scratch: &mut Vec<u8>,
    ) {
        match protocol {
            Protocol::Text => {
                socket.out.extend_from_slice(b"get");
                for &key in keys {
                    socket.out.push(b' ');
                    format.write(key, &mut socket.out);
                }
                socket.out.extend_from_slice(b"\r\n");
            }
            Protocol::Binary => {
                let opcode = if keys.len() == 1 {
                    Opcode::Get
                } else {
                    Opcode::GetKQ
                };
                for &key in keys {
                    scratch.clear();
                    format.write(key, scratch);
                    encode_frame(&mut socket.out, opcode.byte(), 0, 0, &[], scratch, &[]);
                }
                if keys.len() > 1 {
                    encode_frame(&mut socket.out, Opcode::Noop.byte(), 0, 0, &[], &[], &[]);
                }
            }
        }
    }

    /// Parses every complete reply buffered on socket `target` of `connection`. Returns whether
    /// a measured request completed.
    fn take_replies(
        &mut self,
        connection: &mut Connection,
        target: usize,
    ) -> Result<bool, BenchError> {
        let mut measured_done = false;
        let Connection {
            sockets,
            requests,
            free,
            in_flight,
            ..
        } = connection;
        let socket = &mut sockets[target];
        loop {
            let input = &socket.input[socket.start..socket.end];
            let (answer, consumed) = match self.plan.protocol {
                Protocol::Text => match parse_reply(input) {
                    Ok(ParsedReply::Complete { reply, consumed }) => {
                        (Answer::of_text(reply), consumed)
                    }
                    Ok(ParsedReply::Incomplete { .. }) => break,
                    Err(source) => {
                        return Err(BenchError::Protocol {
                            target: socket.target,
                            source,
                        });
                    }
                },
                Protocol::Binary => match parse_response(input) {
                    Ok(ParsedReply::Complete { reply, consumed }) => {
                        (Answer::of_binary(&reply), consumed)
                    }
                    Ok(ParsedReply::Incomplete { .. }) => break,
                    Err(source) => {
                        return Err(BenchError::BinaryProtocol {
                            target: socket.target,
                            source,
                        });
                    }
                },
            };
            if let Answer::FillFailed = answer {
                // A cache-aside SETQ failed: it answers no request.
                self.tally.errors += 1;
                socket.start += consumed;
                continue;
            }
            let Some(part) = socket.parts.front_mut() else {
                return Err(BenchError::Unexpected {
                    target: socket.target,
                    reply: format!("{answer:?}"),
                });
            };
            let request = &mut requests[part.request];
            // (the key hit, whether the part is done, whether the get ended normally)
            let (hit, part_done, get_ended) = match answer {
                Answer::Hit { key } if part.is_get => (Some(key), false, false),
                Answer::HitAndEnd if part.is_get => (Some(None), true, true),
                Answer::End if part.is_get => (None, true, true),
                Answer::Stored if !part.is_get => (None, true, false),
                Answer::Failed => {
                    request.error = true;
                    (None, true, false)
                }
                Answer::Error => {
                    request.error = true;
                    (None, false, false)
                }
                Answer::Unexpected(reply) => {
                    return Err(BenchError::Unexpected {
                        target: socket.target,
                        reply,
                    });
                }
                other => {
                    return Err(BenchError::Unexpected {
                        target: socket.target,
                        reply: format!("{other:?}"),
                    });
                }
            };
            if let Some(key) = hit {
                request.hits += 1;
                if !part.keys.is_empty() {
                    // Hits come back in request order: keys skipped on the way missed. A binary
                    // GET's hit carries no key: it is the one asked.
                    let hit = match key {
                        Some(key) => self.plan.key_format.index_of(key),
                        None => part.keys.get(part.next_key).copied(),
                    };
                    self.fill_misses(&mut socket.out, part, hit, request.measured);
                    part.next_key += 1;
                }
            }
            if get_ended {
                // Every key not yet accounted for missed.
                self.fill_misses(&mut socket.out, part, None, request.measured);
            }
            socket.start += consumed;
            if !part_done {
                continue;
            }
            let part = socket.parts.pop_front().expect("the part just answered");
            if part.keys.capacity() > 0 {
                let mut list = part.keys;
                list.clear();
                self.spare_key_lists.push(list);
            }
            let request = &mut requests[part.request];
            request.parts_left -= 1;
            if request.parts_left > 0 {
                continue;
            }
            let done = *request;
            free.push(part.request);
            *in_flight -= 1;
            self.completed_since_report += 1;
            let tally = &mut self.tally;
            if !done.measured {
                tally.warmup_requests += 1;
                continue;
            }
            measured_done = true;
            tally.requests += 1;
            let now = Instant::now();
            let latency = now.saturating_duration_since(done.due).as_nanos();
            let latency = (latency.min(u128::from(u64::MAX)) as u64).max(1_000);
            tally.latency_ns.saturating_record(latency);
            if let Some(interval) = self.plan.interval {
                let since = now.saturating_duration_since(self.measure_start);
                let index = (since.as_nanos() / interval.as_nanos().max(1)) as usize;
                tally.record_in_interval(index, latency);
            }
            if done.error {
                tally.errors += 1;
            }
            if done.is_get {
                tally.gets += 1;
                tally.key_hits += u64::from(done.hits);
                tally.key_misses += u64::from(done.keys.saturating_sub(done.hits));
            } else {
                tally.sets += 1;
            }
        }
        Ok(measured_done)
    }

    /// Cache-aside: every key of `part` not yet accounted for, up to the hit `until` (or all
    /// of them at `END`), missed; the application read the database and stores each value,
    /// without waiting.
    fn fill_misses(
        &mut self,
        out: &mut Vec<u8>,
        part: &mut Part,
        until: Option<u64>,
        measured: bool,
    ) {
        while part.next_key < part.keys.len() && Some(part.keys[part.next_key]) != until {
            self.fill_after_miss(out, part.keys[part.next_key], measured);
            part.next_key += 1;
        }
    }

    fn fill_after_miss(&mut self, out: &mut Vec<u8>, key: u64, measured: bool) {
        let sizes = self.plan.value_size;
        self.scratch_key.clear();
        self.plan.key_format.write(key, &mut self.scratch_key);
        let len = if sizes.min == sizes.max {
            sizes.min
        } else {
            self.rng.random_range(sizes.min..=sizes.max)
        };
        encode_set(
            self.plan.protocol,
            out,
            &self.scratch_key,
            &self.values[..len],
            true,
        );
        if measured {
            self.tally.fill_sets += 1;
        }
    }
}

/// A set of `key` to `value` without expiry: `set` (`noreply` when `quiet`), or a binary SET
/// (SETQ when `quiet`).
fn encode_set(protocol: Protocol, out: &mut Vec<u8>, key: &[u8], value: &[u8], quiet: bool) {
    match protocol {
        Protocol::Text => {
            let store = Store {
                noreply: quiet,
                ..Store::set(key, value)
            };
            encode_store(out, &store).expect("key formats are checked when parsed");
        }
        Protocol::Binary => {
            let opcode = if quiet { Opcode::SetQ } else { Opcode::Set };
            // Extras: flags 0, exptime 0.
            encode_frame(out, opcode.byte(), 0, 0, &[0; 8], key, value);
        }
    }
}

/// What a reply unit means for the request it answers, in either protocol.
#[derive(Debug)]
enum Answer<'a> {
    /// One key found; the part goes on (`key` is `None` for a binary GET, whose hit is the
    /// key asked).
    Hit {
        key: Option<&'a [u8]>,
    },
    /// A binary GET hit: found, and the part is done.
    HitAndEnd,
    /// The end of a get: `END`, a NOOP, a binary GET miss.
    End,
    Stored,
    /// An error or refusal that ends the part.
    Failed,
    /// An error inside a binary multi-get: the NOOP still ends it.
    Error,
    /// A binary cache-aside SETQ failed (quiet sets answer only failures).
    FillFailed,
    /// Anything else: the stream is out of step.
    Unexpected(String),
}

impl<'a> Answer<'a> {
    fn of_text(reply: Reply<'a>) -> Self {
        match reply {
            Reply::Value { key, .. } => Answer::Hit { key: Some(key) },
            Reply::End => Answer::End,
            Reply::Stored => Answer::Stored,
            Reply::NotStored | Reply::Error(_) | Reply::ClientError(_) | Reply::ServerError(_) => {
                Answer::Failed
            }
            other => Answer::Unexpected(format!("{other:?}")),
        }
    }

    fn of_binary(reply: &ferrocache_protocol::binary::client::BinaryResponse<'a>) -> Self {
        match (reply.opcode, reply.status()) {
            (Opcode::SetQ, _) => Answer::FillFailed,
            (Opcode::Get, Some(Status::Success)) => Answer::HitAndEnd,
            (Opcode::Get, Some(Status::KeyNotFound)) => Answer::End,
            (Opcode::GetKQ, Some(Status::Success)) => Answer::Hit {
                key: Some(reply.key),
            },
            (Opcode::GetKQ, _) => Answer::Error,
            (Opcode::Noop, _) => Answer::End,
            (Opcode::Set, Some(Status::Success)) => Answer::Stored,
            (Opcode::Get | Opcode::Set, _) => Answer::Failed,
            _ => Answer::Unexpected(format!("{reply:?}")),
        }
    }
}

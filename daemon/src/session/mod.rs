//! A connection's protocol: which one it speaks and that protocol's state between reads.
//!
//! Owns: choosing the protocol from a connection's first byte (0x80 is binary, anything else
//! text and meta, as memcached's `-B auto`; `-B` restricts it), the per-turn serving context,
//! the limits every front shares (the output high-water mark), and timing each request for the
//! latency histograms (every front calls [`ServeContext::begin`] and
//! [`ServeContext::finish`]). Must not touch: sockets or
//! buffer memory (the `connection` owns both), or what a command does (the `command` layer).

pub mod ascii_login;
pub mod binary;
pub mod text;

use crate::cli::Protocol;
use crate::command::Executor;
use crate::latency::{Family, ThreadLatency};
use crate::shared::Shared;
use crate::watch::Watcher;
use binary::BinarySession;
use ferrocache_protocol::binary::REQUEST_MAGIC;
use ferrocache_storage::PinnedValue;
use std::sync::Arc;
use text::TextSession;

/// Stop taking input from a connection while more than this is waiting to be written: a client
/// that sends requests and never reads cannot grow the server's memory beyond it (plus one
/// reply, and a multi-get pauses between keys at this mark too).
pub const OUTPUT_HIGH_WATER: usize = 1 << 20;

/// Why [`Session::serve`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The input holds no complete request: call again once it holds at least `total` bytes
    /// (0 when unknown: any new bytes).
    NeedInput { total: usize },
    /// `-R` requests served; more may be waiting.
    Budget,
    /// The output is over the high-water mark; serve again once the client has read some.
    Backpressure,
    /// Close the connection once the output is written (`quit`, `shutdown`, a fatal error).
    Close,
    /// The connection became a log watcher (`watch`, in [`ServeContext::watcher`]): it serves
    /// no more requests.
    Watch,
}

/// Where each response object ends in a serve call's output, and where memcached would write
/// what it has queued: memcached frames UDP replies by them (one object per command, one per
/// key of a text multi-get), so the UDP front asks for them; TCP fronts leave them off and pay
/// one branch per request.
#[derive(Debug, Default)]
pub struct ResponseMarks {
    /// End offset in the output of each response object (empty objects included).
    pub ends: Vec<usize>,
    /// Indices into `ends` after which memcached writes its queue.
    pub flushes: Vec<usize>,
    /// memcached dropped its queue unsent (a binary frame with a bad magic).
    pub discarded: bool,
}

/// A value smaller than this is copied into the output even where it could be held: below
/// it, copying costs less than pinning it and gathering its chunks for `writev`.
pub const HOLD_MIN: usize = 32 << 10;

/// Large values a front pinned rather than copied into its output, for a connection that
/// writes them straight from their slab chunks (plain TCP and Unix sockets; TLS encrypts a
/// copy anyway, and UDP frames datagrams).
#[derive(Debug, Default)]
pub struct HeldValues {
    /// The connection can write held values; fronts copy every value when it is false.
    pub enabled: bool,
    /// The values held in this serve call, in output order.
    pub values: Vec<HeldValue>,
    /// Their bytes in all (the output's size counts them).
    pub bytes: usize,
}

/// A value whose bytes follow `at` bytes of the output (of the serve call that held it).
#[derive(Debug)]
pub struct HeldValue {
    pub at: usize,
    pub value: PinnedValue,
}

impl HeldValues {
    /// Holds `value` after the output's first `at` bytes.
    pub fn hold(&mut self, at: usize, value: PinnedValue) {
        self.bytes += value.len();
        self.values.push(HeldValue { at, value });
    }
}

/// Per-thread context of one serving turn.
pub struct ServeContext<'a> {
    pub executor: Executor<'a>,
    /// Requests served in this turn.
    pub served: usize,
    /// Set when a `watch` made the connection a log watcher ([`Stop::Watch`]).
    pub watcher: Option<Arc<Watcher>>,
    /// Response object boundaries, when the transport needs them (UDP).
    pub marks: Option<ResponseMarks>,
    /// Large values held for the connection to write from their chunks.
    pub held: HeldValues,
    /// The serving worker's latency histograms.
    latency: &'a ThreadLatency,
    /// Whether requests are timed (`--no-latency-histograms` clears it): off, no clock is read.
    timed: bool,
    /// The shared request clock (raw TSC readings).
    clock: &'a quanta::Clock,
    /// When the server started on the next request (a raw clock reading): the input was
    /// handed over, or the request before it finished. `None` until a front calls
    /// [`ServeContext::begin`].
    started: Option<u64>,
}

impl<'a> ServeContext<'a> {
    /// The context of a turn of connection `fd` on worker `worker`.
    pub fn new(shared: &'a Shared, worker: usize, fd: i32) -> Self {
        ServeContext {
            executor: Executor::new(shared, worker, fd),
            served: 0,
            watcher: None,
            marks: None,
            held: HeldValues::default(),
            latency: shared.latency.thread(worker),
            timed: shared.latency.recording(),
            clock: shared.latency.clock(),
            started: None,
        }
    }

    /// A response object ends at `end`; memcached writes its queue after it if `flush`.
    #[inline]
    pub fn mark_response(&mut self, end: usize, flush: bool) {
        if let Some(marks) = &mut self.marks {
            marks.ends.push(end);
            if flush {
                marks.flushes.push(marks.ends.len() - 1);
            }
        }
    }

    /// A front calls this when it is handed input to serve: the next request starts now.
    #[inline]
    pub fn begin(&mut self) {
        if self.timed {
            self.started = Some(self.clock.raw());
        }
    }

    /// A front calls this when a request's reply is encoded (or the request was refused):
    /// records its latency under `family`; the next request starts now. One clock read, none
    /// when recording is off (then the request is only counted).
    #[inline]
    pub fn finish(&mut self, family: Family) {
        if !self.timed {
            self.latency.count_untimed();
            return;
        }
        let now = self.clock.raw();
        if let Some(started) = self.started {
            // delta_as_nanos gives 0 should a reading ever go backwards (TSCs of two cores).
            self.latency
                .record(family, self.clock.delta_as_nanos(started, now));
        }
        self.started = Some(now);
    }
}

/// A connection's protocol state between reads: a few words, no heap.
#[derive(Debug)]
pub enum Session {
    /// No byte has arrived yet (`-B auto`).
    Undecided,
    Text(TextSession),
    Binary(BinarySession),
}

impl Session {
    pub fn new(shared: &Shared) -> Self {
        match shared.settings.protocol {
            Protocol::Auto => Session::Undecided,
            Protocol::Ascii => Session::Text(TextSession::new(shared)),
            Protocol::Binary => Session::Binary(BinarySession::new(shared)),
        }
    }

    /// Whether the session is discarding a refused data block (`stats conns`: `conn_swallow`).
    pub fn swallowing(&self) -> bool {
        match self {
            Session::Undecided => false,
            Session::Text(text) => text.swallowing(),
            Session::Binary(binary) => binary.swallowing(),
        }
    }

    /// Serves the complete requests at the front of `input`, appending replies to `out`, until
    /// the input runs out, `budget` reaches 0, the output passes the high-water mark, or the
    /// connection must close. Returns the bytes of `input` consumed and why it stopped.
    pub fn serve(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        budget: &mut usize,
        context: &mut ServeContext<'_>,
    ) -> (usize, Stop) {
        if let Session::Undecided = self {
            let Some(&first) = input.first() else {
                return (0, Stop::NeedInput { total: 0 });
            };
            let shared = context.executor.shared;
            *self = if first == REQUEST_MAGIC {
                Session::Binary(BinarySession::new(shared))
            } else {
                Session::Text(TextSession::new(shared))
            };
        }
        match self {
            Session::Text(text) => text.serve(input, out, budget, context),
            Session::Binary(binary) => binary.serve(input, out, budget, context),
            Session::Undecided => (0, Stop::NeedInput { total: 0 }),
        }
    }
}

//! A connection's protocol: which one it speaks and that protocol's state between reads.
//!
//! Owns: choosing the protocol from a connection's first byte (0x80 is binary, anything else
//! text and meta, as memcached's `-B auto`; `-B` restricts it), the per-turn serving context,
//! the limits every front shares (the output high-water mark), and timing each request for the
//! latency histograms (every front calls [`ServeContext::begin`] and
//! [`ServeContext::finish`]). Must not touch: sockets or
//! buffer memory (the `connection` owns both), or what a command does (the `command` layer).

pub mod text;

use crate::command::Executor;
use crate::latency::{Family, ThreadLatency};
use crate::shared::Shared;
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
}

/// Per-thread context of one serving turn.
pub struct ServeContext<'a> {
    pub executor: Executor<'a>,
    /// Requests served in this turn.
    pub served: usize,
    /// The serving worker's latency histograms.
    latency: &'a ThreadLatency,
    /// When the server started on the next request (monotonic nanoseconds): the input was
    /// handed over, or the request before it finished. `None` until a front calls
    /// [`ServeContext::begin`].
    started: Option<u64>,
}

impl<'a> ServeContext<'a> {
    pub fn new(shared: &'a Shared, worker: usize) -> Self {
        ServeContext {
            executor: Executor::new(shared, worker),
            served: 0,
            latency: shared.latency.thread(worker),
            started: None,
        }
    }

    /// A front calls this when it is handed input to serve: the next request starts now.
    #[inline]
    pub fn begin(&mut self) {
        self.started = Some(crate::os::monotonic_nanos());
    }

    /// A front calls this when a request's reply is encoded (or the request was refused):
    /// records its latency under `family`; the next request starts now. One clock read.
    #[inline]
    pub fn finish(&mut self, family: Family) {
        let now = crate::os::monotonic_nanos();
        if let Some(started) = self.started {
            self.latency.record(family, now.saturating_sub(started));
        }
        self.started = Some(now);
    }
}

/// A connection's protocol state between reads: a few words, no heap.
#[derive(Debug)]
pub struct Session {
    text: TextSession,
}

impl Session {
    pub fn new(shared: &Shared) -> Self {
        Session {
            text: TextSession::new(shared),
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
        self.text.serve(input, out, budget, context)
    }
}

//! In-process test harness: a real [`Session`] over a real cache and command layer, with a
//! clock the test moves, fed bytes as a connection would be and returning the bytes a client
//! would read. No sockets, no threads, no sleeps: whole protocol scenarios run
//! deterministically, whole or one byte at a time.
//!
//! Owns: building a server's shared state from a command line without binding anything, and
//! driving a session the way `connection` does (buffering partial input, honouring
//! `NeedInput`, `Budget`, `Backpressure` and `Close`). Must not touch: anything the real
//! daemon runs (it is test-only).

mod captured;
mod captured_binary;
mod crawler;
mod sasl;
mod semantics;
mod slabs;

use crate::cache::Cache;
use crate::cli;
use crate::session::{ServeContext, Session, Stop};
use crate::shared::Shared;
use crate::watch::Watcher;
use ferrocache_storage::Clock;
use std::sync::Arc;

/// The Unix time the harness's clock starts at (fixed, so absolute exptimes are reproducible).
pub const START_UNIX: i64 = 1_800_000_000;

/// A server without sockets.
pub struct Harness {
    pub shared: Arc<Shared>,
    pub clock: Arc<Clock>,
    // Keeps the acceptor's waker valid (the `shutdown` command wakes it).
    _poll: mio::Poll,
}

impl Harness {
    /// A server started with `args` (memcached's flags, as on the command line).
    pub fn new(args: &[&str]) -> Harness {
        Harness::with_sasl(args, None)
    }

    /// A server started with `args` and, for `-S`, this SASL password database.
    pub fn with_sasl(args: &[&str], sasl: Option<crate::auth::sasl::SaslAuth>) -> Harness {
        let settings = cli::parse_args(std::iter::once("ferrocached").chain(args.iter().copied()))
            .unwrap_or_else(|outcome| panic!("bad harness arguments {args:?}: {outcome:?}"));
        let clock = Arc::new(Clock::starting_at_unix(START_UNIX));
        let cache = Cache::new(
            settings.storage.clone(),
            settings.partitions,
            Arc::clone(&clock),
        );
        let poll = mio::Poll::new().expect("a poll for the waker");
        let waker =
            Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).expect("a waker for tests"));
        let cluster = crate::cluster::Cluster::from_settings(&settings)
            .unwrap_or_else(|error| panic!("bad cluster config for the harness: {error}"));
        let shared =
            Arc::new(Shared::new(settings, cache, cluster, Vec::new(), waker).with_sasl(sasl));
        Harness {
            shared,
            clock,
            _poll: poll,
        }
    }

    /// A new client connection.
    pub fn connect(&self) -> Conn<'_> {
        Conn {
            harness: self,
            session: Session::new(&self.shared),
            input: Vec::new(),
            closed: false,
            watcher: None,
        }
    }

    /// The value of `STAT <name>` in the reply to `stats<group>` (`group` is "" or " settings",
    /// " slabs", ...), asked on a fresh connection.
    pub fn stat(&self, group: &str, name: &str) -> String {
        let text = self.connect().call(&format!("stats{group}\r\n"));
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("STAT {name} ")))
            .unwrap_or_else(|| panic!("no stat {name} in {text}"))
            .to_string()
    }

    /// Moves the clock `seconds` on.
    pub fn advance(&self, seconds: u32) {
        self.clock.advance(seconds);
    }
}

/// One client connection of a [`Harness`].
pub struct Conn<'h> {
    harness: &'h Harness,
    session: Session,
    input: Vec<u8>,
    closed: bool,
    /// Set once a `watch` made this connection a watcher.
    watcher: Option<Arc<Watcher>>,
}

impl Conn<'_> {
    /// Sends `bytes` and returns everything the server answers before it needs more input
    /// (or closes).
    pub fn send(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.closed || self.watcher.is_some() {
            return out;
        }
        self.input.extend_from_slice(bytes);
        let mut context = ServeContext::new(&self.harness.shared, 0, -1);
        // What the client has read: the session's buffer is emptied into it at each pause,
        // as the connection's write would empty it, so a reply over the high-water mark (a
        // large metadump) can go on.
        let mut read = Vec::new();
        loop {
            let mut budget = self.harness.shared.settings.reqs_per_event;
            let (consumed, stop) =
                self.session
                    .serve(&self.input, &mut out, &mut budget, &mut context);
            self.input.drain(..consumed);
            read.append(&mut out);
            match stop {
                Stop::NeedInput { .. } => return read,
                Stop::Budget | Stop::Backpressure => continue,
                Stop::Close => {
                    self.closed = true;
                    return read;
                }
                Stop::Watch => {
                    self.watcher = context.watcher.take();
                    return read;
                }
            }
        }
    }

    /// Sends `bytes` one at a time; returns all the replies.
    pub fn send_bytewise(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for byte in bytes {
            out.extend_from_slice(&self.send(std::slice::from_ref(byte)));
        }
        out
    }

    /// Sends `bytes` and returns the answer as text.
    pub fn call(&mut self, bytes: &str) -> String {
        String::from_utf8_lossy(&self.send(bytes.as_bytes())).into_owned()
    }

    /// The log lines that reached this watcher since the last call.
    pub fn watched(&self) -> String {
        let mut out = Vec::new();
        if let Some(watcher) = &self.watcher {
            watcher.drain_into(&mut out);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Whether the server closed this connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

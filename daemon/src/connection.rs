//! One client connection: its socket, the bytes it has sent that are not yet served, the
//! replies not yet written, and the rules for moving bytes between them.
//!
//! Owns: reading (into the worker's shared scratch buffer when the connection has nothing
//! carried over, so an idle connection holds no heap), writing all the replies of one turn
//! (however many reads it took) with one `write`, back-pressure (no reading while too much
//! output is unsent), `-R` fairness, the order of large writes, and the decision to close.
//! Must not touch: protocol or storage: the [`Session`] serves requests.
//!
//! Large writes go last: a turn whose replies come to more than [`WRITE_TURN`] bytes (a large
//! value) writes nothing in the turn its event gave it, and a writable event with more than
//! that unsent writes at most [`WRITE_TURN`] bytes; the rest goes once the connections with
//! events in the same poll have had theirs ([`Verdict::Paused`], from the worker's ready
//! queue), in one write as far as the socket takes it. So a few connections reading large values cannot make many
//! small replies wait for the time it takes to copy theirs into the socket, and a large value
//! still costs about one `write`. Large reply buffers are handed between the connections and
//! the worker's [`Scratch`] rather than freed and grown again by doubling.
//!
//! A large value (from [`crate::session::HOLD_MIN`] up, stored in a chain of chunks) is not
//! copied into the reply buffer: the session holds it pinned in its slab chunks
//! ([`HeldValue`]), and the connection writes the bytes around it and its chunks with one
//! `writev`, the partition lock long released; a value written whole is dropped, which
//! releases the pin. Not over TLS, which encrypts a copy anyway.
//!
//! On a TLS connection the same buffers hold plaintext: reads and writes go through the
//! connection's [`TlsSession`], which moves records between rustls and the socket.
//!
//! mio is edge-triggered: a readable edge is not repeated, so the connection remembers whether
//! the socket may still hold data (`may_read`) and whether its carried-over input may still hold
//! complete requests (`input_ready`), and the worker calls [`Connection::serve`] again until both
//! are spent.

use crate::buffer::InputBuffer;
use crate::listener::Stream;
use crate::session::{HeldValue, OUTPUT_HIGH_WATER, ServeContext, Session, Stop};
use crate::tls::session::{Received, TlsSession};
use crate::watch::Watcher;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

/// Bytes asked of the socket per read when the size of what is coming is unknown.
pub const READ_CHUNK: usize = 16 << 10;

/// Size of the worker's scratch buffers (`stats` `read_buf_bytes` counts the input ones).
pub const SCRATCH: usize = 64 << 10;

/// A leftover larger than this moves into the connection with the scratch buffer holding it,
/// rather than being copied out of it.
const HAND_OVER: usize = 4 << 10;

/// Bytes one connection writes at most in the turn an event gives it; more waits for the
/// worker's ready queue. 64 KiB is a few microseconds of copying into the socket, far more
/// than the replies of one `-R` turn of small values.
pub const WRITE_TURN: usize = 64 << 10;

/// Most slices one `writev` of held values is given (a 256 KiB value is about 64 chunks).
const WRITE_SLICES: usize = 128;

/// Large reply buffers the worker keeps for the next large reply, and the largest one kept:
/// without them, each reply larger than the scratch buffer grows a fresh one by doubling, which
/// copies it over and over.
const SPARE_OUTPUTS: usize = 8;
const SPARE_OUTPUT_MAX: usize = 4 << 20;

/// Why serving stopped, for the worker's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing more to do until the next readiness event.
    Idle,
    /// Served `-R` requests with more input waiting: serve again after the other connections.
    Yielded,
    /// More than [`WRITE_TURN`] bytes to write and a socket that would take more: write on
    /// after the other connections' turns (not a `-R` yield: `conn_yields` does not count it).
    Paused,
    /// The connection must be closed (peer gone, `quit`, an error that closes, an I/O error).
    Close,
}

/// Buffers a worker lends to the connection it is serving, so that idle connections own none.
#[derive(Debug)]
pub struct Scratch {
    input: InputBuffer,
    output: Vec<u8>,
    /// Empty large buffers that connections gave back once their replies were written.
    spare_outputs: Vec<Vec<u8>>,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            input: InputBuffer::with_capacity(SCRATCH),
            output: Vec::with_capacity(SCRATCH),
            spare_outputs: Vec::new(),
        }
    }

    /// Gives back memory that a huge request or reply made the scratch buffers grow to.
    pub fn trim(&mut self) {
        if self.input.capacity() > SCRATCH * 4 {
            self.input = InputBuffer::with_capacity(SCRATCH);
        }
        if self.output.capacity() > SCRATCH * 4 {
            self.output = Vec::with_capacity(SCRATCH);
        }
        self.spare_outputs = Vec::new();
    }

    /// A buffer to replace the scratch output that a connection takes: a large spare one if
    /// there is one, so the next large reply is not grown from scratch size again.
    fn replacement_output(&mut self) -> Vec<u8> {
        self.spare_outputs
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(SCRATCH))
    }

    /// Takes back a connection's written-out buffer if it is worth keeping.
    fn recycle_output(&mut self, mut buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        if capacity > SCRATCH
            && capacity <= SPARE_OUTPUT_MAX
            && self.spare_outputs.len() < SPARE_OUTPUTS
        {
            buffer.clear();
            self.spare_outputs.push(buffer);
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug)]
pub struct Connection {
    pub stream: Stream,
    pub session: Session,
    /// The TLS state of a connection accepted on a TLS listener (boxed: rustls's state is
    /// large, and plaintext connections should not carry its size).
    tls: Option<Box<TlsSession>>,
    /// Bytes received and not yet served (empty, owning nothing, while the connection idles).
    input: InputBuffer,
    /// Replies not yet written, from `output_sent` on.
    output: Vec<u8>,
    output_sent: usize,
    /// Large values written from their slab chunks, each after `at` bytes of `output`, in
    /// order; `held_sent` bytes of the first are written when `output_sent` has reached it.
    held: VecDeque<HeldValue>,
    held_sent: usize,
    /// The socket may hold unread bytes: a readable edge came and no read has drained it.
    may_read: bool,
    /// The carried-over input may hold complete requests: serving stopped for fairness or
    /// back-pressure, not for lack of bytes.
    input_ready: bool,
    /// Bytes the next request needs in all, when the session knows (a data block on its way).
    input_needed: usize,
    /// Close once the output is written (a reply that ends the connection, or shutdown).
    closing: bool,
    /// Output waits for the ready queue: the turn stopped at [`WRITE_TURN`] with the socket
    /// still taking bytes, so no writable edge will come, and the worker serves the
    /// connection again to write on.
    write_paused: bool,
    /// The peer has closed its side.
    peer_closed: bool,
    /// The poll reported the peer's close: read until EOF even after a short read, since no
    /// further edge will come for it.
    hangup_seen: bool,
    /// Set once a `watch` made this a log watcher: it is sent log lines and serves no more
    /// requests.
    watcher: Option<Arc<Watcher>>,
}

impl Connection {
    pub fn new(stream: Stream, session: Session, tls: Option<TlsSession>) -> Self {
        Connection {
            stream,
            session,
            tls: tls.map(Box::new),
            input: InputBuffer::new(),
            output: Vec::new(),
            output_sent: 0,
            held: VecDeque::new(),
            held_sent: 0,
            may_read: true,
            input_ready: false,
            input_needed: 0,
            closing: false,
            write_paused: false,
            peer_closed: false,
            hangup_seen: false,
            watcher: None,
        }
    }

    /// The log watcher this connection became, if it did.
    pub fn watcher(&self) -> Option<&Arc<Watcher>> {
        self.watcher.as_ref()
    }

    /// Records a readable event; `hangup` if it also reported the peer's close.
    pub fn on_readable(&mut self, hangup: bool) {
        self.may_read = true;
        self.hangup_seen |= hangup;
    }

    /// Bytes of replies waiting to be written.
    pub fn pending_output(&self) -> usize {
        self.output.len() - self.output_sent + self.held_unsent()
    }

    /// Bytes of held values waiting to be written.
    fn held_unsent(&self) -> usize {
        self.held.iter().map(|held| held.value.len()).sum::<usize>() - self.held_sent
    }

    /// Whether a request is partly received.
    pub fn has_partial_input(&self) -> bool {
        !self.input.is_empty() && !self.input_ready
    }

    /// Whether a data block is on its way (`stats conns` state `conn_nread`).
    pub fn awaiting_data(&self) -> bool {
        self.has_partial_input() && self.input_needed > 0
    }

    /// Stop serving new input; close once the output is written (graceful shutdown).
    pub fn close_after_flush(&mut self) {
        self.closing = true;
    }

    /// Whether anything is waiting for the socket: replies, or records TLS has encrypted.
    pub fn has_unsent_output(&self) -> bool {
        self.pending_output() > 0 || self.tls.as_ref().is_some_and(|tls| tls.wants_write())
    }

    /// A TLS connection whose handshake has not finished.
    pub fn is_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.is_handshaking())
    }

    /// Whether output waits for the ready queue (see [`Verdict::Paused`]): the connection
    /// needs a turn without waiting for an event.
    pub fn write_paused(&self) -> bool {
        self.write_paused
    }

    /// Whether nothing remains to do but close.
    pub fn finished(&self) -> bool {
        self.closing && !self.has_unsent_output()
    }

    /// Whether serving again now, without a new event, would make progress.
    pub fn wants_service(&self) -> bool {
        self.write_paused
            || (!self.closing
                && self.pending_output() <= OUTPUT_HIGH_WATER
                && (self.input_ready || (self.may_read && !self.peer_closed)))
    }

    /// Serves what is available (carried-over input first, then what the socket has) up to
    /// `budget` requests, then writes the replies with one `write`.
    pub fn serve(
        &mut self,
        scratch: &mut Scratch,
        budget: usize,
        context: &mut ServeContext<'_>,
    ) -> Verdict {
        if self.watcher.is_some() {
            return self.serve_watch(scratch, context);
        }
        if self.write_paused {
            // The connections with events have had their turns since the pause: write the
            // rest now, as far as the socket takes it, before serving anything new (replies
            // stay in order).
            if self.flush_up_to(usize::MAX, scratch, context).is_err() {
                return Verdict::Close;
            }
            if self.finished() {
                return Verdict::Close;
            }
            if self.pending_output() > 0 {
                // The socket is full: its writable edge resumes the connection.
                return Verdict::Idle;
            }
        }
        let mut budget = budget;
        // Replies go to the scratch buffer unless older replies are still unsent: order matters.
        let to_scratch = self.pending_output() == 0;
        if to_scratch {
            self.output.clear();
            self.output_sent = 0;
        } else {
            // The session measures its output against the high-water mark: only unsent bytes.
            self.compact_output();
        }
        context.held.enabled = self.tls.is_none();
        context.held.bytes = self.held_unsent();
        scratch.output.clear();
        loop {
            if self.closing || budget == 0 {
                break;
            }
            let unsent = if to_scratch {
                scratch.output.len() + self.held_unsent()
            } else {
                self.pending_output()
            };
            if unsent > OUTPUT_HIGH_WATER {
                break; // Resumed by a writable event once the client reads.
            }
            let progressed = if self.input_ready {
                let out = if to_scratch {
                    &mut scratch.output
                } else {
                    &mut self.output
                };
                let (consumed, stop) =
                    self.session
                        .serve(self.input.bytes(), out, &mut budget, context);
                self.input.consume(consumed);
                self.adopt_held(context);
                self.apply(stop, context)
            } else if self.may_read && !self.peer_closed {
                match self.read_and_serve(scratch, to_scratch, &mut budget, context) {
                    Ok(progressed) => progressed,
                    Err(_) => return Verdict::Close,
                }
            } else {
                false
            };
            if !progressed {
                break;
            }
        }
        if to_scratch {
            if self.take_scratch_output(scratch, context).is_err() {
                return Verdict::Close;
            }
        } else if self.flush_pending(scratch, context).is_err() {
            return Verdict::Close;
        }
        if self.peer_closed && !self.input_ready {
            // Nothing more will come; what was asked for is still owed (a client that shuts
            // down its sending side and then reads, as `nc -N` does).
            self.closing = true;
        }
        if self.finished() {
            return Verdict::Close;
        }
        self.release_idle_buffers();
        if self.write_paused {
            return Verdict::Paused;
        }
        // Input left to serve (the -R budget ran out, or the output passed the high-water
        // mark and the socket has since taken it all, so no writable edge will come): serve
        // again after the other connections' turns rather than wait for an event.
        let more = self.input_ready || (self.may_read && !self.peer_closed);
        if more && !self.closing && self.pending_output() <= OUTPUT_HIGH_WATER {
            Verdict::Yielded
        } else {
            Verdict::Idle
        }
    }

    /// Records why serving stopped; true if serving may go on at once.
    fn apply(&mut self, stop: Stop, context: &mut ServeContext<'_>) -> bool {
        match stop {
            Stop::NeedInput { total } => {
                self.input_ready = false;
                self.input_needed = total;
                true
            }
            Stop::Budget | Stop::Backpressure => {
                self.input_ready = true;
                false
            }
            Stop::Close => {
                self.closing = true;
                self.input_ready = false;
                false
            }
            Stop::Watch => {
                // Whatever the client sent after `watch` is never served, as in memcached.
                self.watcher = context.watcher.take();
                self.input_ready = false;
                self.input = InputBuffer::new();
                false
            }
        }
    }

    /// A watcher's turn: what its client sends is read and dropped (only to notice that it
    /// went away); waiting log lines are written, unless too much output is unsent already,
    /// in which case they wait in the watcher's buffer, which skips lines when full.
    fn serve_watch(&mut self, scratch: &mut Scratch, context: &mut ServeContext<'_>) -> Verdict {
        while self.may_read && !self.peer_closed {
            scratch.input.clear();
            let room = scratch.input.spare(READ_CHUNK);
            match self.stream.read(room) {
                Ok(0) => self.peer_closed = true,
                Ok(n) => context.executor.stats.bytes_read.add(n as u64),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.may_read = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Verdict::Close,
            }
        }
        scratch.input.clear();
        if self.peer_closed {
            return Verdict::Close;
        }
        if self.watcher.is_some() && self.pending_output() <= OUTPUT_HIGH_WATER {
            self.compact_output();
            if let Some(watcher) = &self.watcher {
                watcher.drain_into(&mut self.output);
            }
        }
        // All the socket takes: a watcher is never queued to write on, and its lines are
        // bounded by the watcher's own buffer.
        if self.flush_up_to(usize::MAX, scratch, context).is_err() {
            return Verdict::Close;
        }
        Verdict::Idle
    }

    /// One read, then serving the requests it completed. Ok(false): nothing more to read now.
    fn read_and_serve(
        &mut self,
        scratch: &mut Scratch,
        to_scratch: bool,
        budget: &mut usize,
        context: &mut ServeContext<'_>,
    ) -> io::Result<bool> {
        // A partial request reads straight behind itself, with room for all of a data block
        // whose size is known, so a large value is copied once; otherwise the scratch buffer.
        let carried = !self.input.is_empty();
        let buffer = if carried {
            &mut self.input
        } else {
            scratch.input.clear();
            &mut scratch.input
        };
        let want = self
            .input_needed
            .saturating_sub(buffer.len())
            .max(READ_CHUNK);
        let room = buffer.spare(want);
        let read = match self.tls.as_deref_mut() {
            Some(tls) => tls.read(&mut self.stream, room),
            None => {
                let asked = room.len();
                self.stream.read(room).map(|n| Received {
                    bytes: n,
                    drained: n < asked,
                })
            }
        };
        let received = match read {
            Ok(Received { bytes: 0, .. }) => {
                self.peer_closed = true;
                self.may_read = false;
                return Ok(false);
            }
            Ok(received) => received,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.may_read = false;
                return Ok(false);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
            Err(e) => return Err(e),
        };
        let Received { bytes: n, drained } = received;
        buffer.filled(n);
        context.executor.stats.bytes_read.add(n as u64);
        // A short read drained the socket and the next edge says when more arrives: skipping
        // the read that would only return WouldBlock saves a syscall per request. Not after a
        // hangup: its edge has come already, and only a read returning 0 shows the close.
        if drained && !self.hangup_seen {
            self.may_read = false;
        }
        let out = if to_scratch {
            &mut scratch.output
        } else {
            &mut self.output
        };
        let buffer = if carried {
            &mut self.input
        } else {
            &mut scratch.input
        };
        let (consumed, stop) = self.session.serve(buffer.bytes(), out, budget, context);
        buffer.consume(consumed);
        if stop == Stop::Watch {
            buffer.clear();
        }
        self.adopt_held(context);
        if !carried && !scratch.input.is_empty() {
            if scratch.input.len() > HAND_OVER {
                self.input =
                    std::mem::replace(&mut scratch.input, InputBuffer::with_capacity(SCRATCH));
            } else {
                self.input.extend_from_slice(scratch.input.bytes());
                scratch.input.clear();
            }
        }
        Ok(self.apply(stop, context))
    }

    /// Writes the replies made in the scratch buffer; keeps whatever the socket refused.
    fn take_scratch_output(
        &mut self,
        scratch: &mut Scratch,
        context: &mut ServeContext<'_>,
    ) -> io::Result<()> {
        if scratch.output.is_empty() && self.held.is_empty() {
            return Ok(());
        }
        if !self.held.is_empty() {
            // The replies around the held values (headers and small replies: few bytes) are
            // copied into the connection's buffer, empty since replies went to scratch, at the
            // offsets the values were held at.
            self.output.extend_from_slice(&scratch.output);
            scratch.output.clear();
            self.output_sent = 0;
            self.held_sent = 0;
            if self.pending_output() > WRITE_TURN {
                self.write_paused = true;
                return Ok(());
            }
            return self.flush_up_to(usize::MAX, scratch, context);
        }
        // Replies of more than WRITE_TURN bytes (a large value) wait until the connections
        // with events in this poll have had their turns, then go out in one write.
        let (written, paused) = if scratch.output.len() > WRITE_TURN {
            (0, true)
        } else {
            let written = write_some(&mut self.stream, self.tls.as_deref_mut(), &scratch.output)?;
            (written, false)
        };
        self.write_paused = paused;
        context.executor.stats.bytes_written.add(written as u64);
        if written < scratch.output.len() {
            if scratch.output.len() - written > HAND_OVER {
                let replacement = scratch.replacement_output();
                self.output = std::mem::replace(&mut scratch.output, replacement);
                self.output_sent = written;
            } else {
                self.output.extend_from_slice(&scratch.output[written..]);
                self.output_sent = 0;
            }
        }
        scratch.output.clear();
        Ok(())
    }

    /// Writes as much of the unsent output as the socket takes, up to [`WRITE_TURN`] bytes
    /// (also on a writable event).
    pub fn flush_pending(
        &mut self,
        scratch: &mut Scratch,
        context: &mut ServeContext<'_>,
    ) -> io::Result<()> {
        self.flush_up_to(WRITE_TURN, scratch, context)
    }

    /// Writes as much of the unsent output as the socket takes, up to `limit` bytes.
    fn flush_up_to(
        &mut self,
        limit: usize,
        scratch: &mut Scratch,
        context: &mut ServeContext<'_>,
    ) -> io::Result<()> {
        self.write_paused = false;
        if self.pending_output() == 0 {
            if let Some(tls) = self.tls.as_deref_mut() {
                tls.flush(&mut self.stream)?;
            }
            return Ok(());
        }
        let (written, paused) = self.write_output(limit)?;
        self.write_paused = paused;
        context.executor.stats.bytes_written.add(written as u64);
        if self.pending_output() == 0 {
            // Give it back now: when a writable event finishes the output, no serving turn may
            // follow to release it, and an idle connection would keep a reply-sized buffer.
            scratch.recycle_output(std::mem::take(&mut self.output));
            self.output_sent = 0;
        }
        Ok(())
    }

    /// Takes the values the session held in its last serve call: they follow the output's
    /// first `at` bytes, the output being the connection's own buffer, or the scratch buffer
    /// that moves into it at the end of the turn (the connection's is empty then).
    fn adopt_held(&mut self, context: &mut ServeContext<'_>) {
        if context.held.values.is_empty() {
            return;
        }
        self.held.extend(context.held.values.drain(..));
        context.held.bytes = self.held_unsent();
    }

    /// Drops the written part of the output, so that only unsent bytes remain.
    fn compact_output(&mut self) {
        if self.output_sent == 0 {
            return;
        }
        self.output.drain(..self.output_sent);
        for held in &mut self.held {
            held.at -= self.output_sent;
        }
        self.output_sent = 0;
    }

    /// Writes at most `limit` bytes of the unsent output, held values straight from their
    /// chunks with `writev`. Returns what was written, and whether it stopped at the limit with
    /// more to write and the socket still taking bytes.
    fn write_output(&mut self, limit: usize) -> io::Result<(usize, bool)> {
        if self.held.is_empty() {
            let (written, paused) = write_turn(
                &mut self.stream,
                self.tls.as_deref_mut(),
                &self.output[self.output_sent..],
                limit,
            )?;
            self.output_sent += written;
            return Ok((written, paused));
        }
        let pending = self.pending_output();
        let offered = pending.min(limit);
        let mut written = 0;
        while written < offered {
            let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
            let count = gather_output(
                &self.output,
                self.output_sent,
                &self.held,
                self.held_sent,
                offered - written,
                &mut slices,
            );
            match self.stream.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.advance_output(n);
                    written += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok((written, written == offered && offered < pending))
    }

    /// Moves the write position `n` bytes on; a held value written whole is dropped, which
    /// releases its pin.
    fn advance_output(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.held.front() else {
                self.output_sent += n;
                return;
            };
            if self.output_sent < front.at {
                let raw = (front.at - self.output_sent).min(n);
                self.output_sent += raw;
                n -= raw;
                continue;
            }
            let left = front.value.len() - self.held_sent;
            if n < left {
                self.held_sent += n;
                return;
            }
            n -= left;
            self.held_sent = 0;
            self.held.pop_front();
        }
    }

    /// Idle connections keep no heap: drop drained buffers.
    fn release_idle_buffers(&mut self) {
        if self.pending_output() == 0 && self.output.capacity() > 0 {
            self.output = Vec::new();
            self.output_sent = 0;
        }
        if self.input.is_empty() && self.input.capacity() > 0 {
            self.input = InputBuffer::new();
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(tls) = self.tls.as_deref_mut() {
            tls.close(&mut self.stream);
        }
    }
}

/// Writes at most `limit` of `bytes`. Returns what was written, and whether it stopped at the
/// limit with more to write and the socket still taking bytes (so no writable edge will say
/// when to go on).
fn write_turn(
    stream: &mut Stream,
    tls: Option<&mut TlsSession>,
    bytes: &[u8],
    limit: usize,
) -> io::Result<(usize, bool)> {
    let offered = bytes.len().min(limit);
    let written = write_some(stream, tls, &bytes[..offered])?;
    Ok((written, written == offered && offered < bytes.len()))
}

/// Fills `slices` with up to `budget` bytes of unsent output from the write position
/// (`sent` bytes of `output`, `held_sent` of the first held value when `sent` has reached it):
/// output bytes and held values' chunks in order. Returns how many slices it filled.
fn gather_output<'a>(
    output: &'a [u8],
    sent: usize,
    held: &'a VecDeque<HeldValue>,
    held_sent: usize,
    mut budget: usize,
    slices: &mut [IoSlice<'a>],
) -> usize {
    let mut count = 0;
    let mut push = |bytes: &'a [u8], budget: &mut usize| -> bool {
        if count == slices.len() || *budget == 0 {
            return false;
        }
        let bytes = &bytes[..bytes.len().min(*budget)];
        if !bytes.is_empty() {
            slices[count] = IoSlice::new(bytes);
            count += 1;
            *budget -= bytes.len();
        }
        true
    };
    let mut raw = sent;
    for (index, value) in held.iter().enumerate() {
        if raw < value.at {
            if !push(&output[raw..value.at], &mut budget) {
                return count;
            }
            raw = value.at;
        }
        let mut skip = if index == 0 { held_sent } else { 0 };
        for chunk in value.value.chunks() {
            if skip >= chunk.len() {
                skip -= chunk.len();
                continue;
            }
            if !push(&chunk[skip..], &mut budget) {
                return count;
            }
            skip = 0;
        }
    }
    push(&output[raw..], &mut budget);
    count
}

/// Writes what the socket takes now, retrying on EINTR; WouldBlock ends it early. Through
/// TLS, the count is of plaintext taken (sent, or encrypted and waiting in the session).
fn write_some(
    stream: &mut Stream,
    tls: Option<&mut TlsSession>,
    bytes: &[u8],
) -> io::Result<usize> {
    if let Some(tls) = tls {
        return tls.write(stream, bytes);
    }
    let mut written = 0;
    while written < bytes.len() {
        match stream.write(&bytes[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_reply_buffers_are_kept_for_the_next_large_reply_within_bounds() {
        let mut scratch = Scratch::new();
        // Scratch-sized and huge buffers are not kept: the one is cheap to make, the other
        // would hold too much memory between large replies.
        scratch.recycle_output(Vec::with_capacity(SCRATCH));
        scratch.recycle_output(Vec::with_capacity(SPARE_OUTPUT_MAX + 1));
        assert!(scratch.spare_outputs.is_empty());
        for _ in 0..SPARE_OUTPUTS + 3 {
            let mut written = Vec::with_capacity(512 << 10);
            written.extend_from_slice(b"VALUE big 0 3\r\nabc\r\nEND\r\n");
            scratch.recycle_output(written);
        }
        assert_eq!(scratch.spare_outputs.len(), SPARE_OUTPUTS);
        let replacement = scratch.replacement_output();
        assert!(replacement.is_empty(), "a kept buffer comes back empty");
        assert!(replacement.capacity() >= 512 << 10);
        // Once a second the worker trims: the spares go, and replacements are fresh again.
        scratch.trim();
        assert_eq!(scratch.replacement_output().capacity(), SCRATCH);
    }
}

//! memcached's binary protocol as a pure codec, with memcached 1.6.18's exact bytes.
//!
//! Owns: parsing request frames ([`parse_binary`]), writing responses ([`response`]), the
//! client side of both ([`client`]), opcodes and statuses ([`Opcode`], [`Status`]). Must not
//! touch: sockets, storage, clocks: the executor drives it.
//!
//! A server loop on a binary connection:
//!
//! ```
//! use ferrocache_protocol::binary::{self, BinaryCommand, BinaryLimits, BinaryParsed, response};
//!
//! let mut input = Vec::new();
//! binary::client::encode_frame(&mut input, 0x0a, 7, 0, &[], &[], &[]); // noop
//! let (mut out, mut swallow) = (Vec::new(), 0usize);
//! let limits = BinaryLimits::default();
//! loop {
//!     // (drop `swallow` bytes as they arrive before parsing again)
//!     match binary::parse_binary(&input, &limits) {
//!         BinaryParsed::Request { request, consumed } => {
//!             match request.command {
//!                 BinaryCommand::Noop => response::success(&mut out, request.echo(), 0),
//!                 _ => { /* execute; answer unless !request.opcode.response_sent(status) */ }
//!             }
//!             input.drain(..consumed);
//!         }
//!         BinaryParsed::Incomplete { needed: _ } => break, // read until `needed` bytes
//!         BinaryParsed::Error { error, consumed, swallow: more, close } => {
//!             error.write_response(&mut out);
//!             input.drain(..consumed);
//!             swallow = more;
//!             if close { break; /* write `out`, then close */ }
//!         }
//!     }
//! }
//! assert_eq!(out[1], 0x0a);
//! ```
//!
//! What the codec decides (from the frame alone, as `dispatch_bin_command` does): bad magic
//! closes silently; key + extras longer than the body is "Unknown command" and closes; a key
//! over 250 bytes, or extras/key/body lengths wrong for the opcode, is "Invalid arguments" and
//! closes; an unknown opcode (verbosity included: memcached 1.6.18 no longer serves it) is
//! "Unknown command" and swallows `body_len` bytes after the key (memcached's over-count, which
//! eats the start of the next frame); a value over the limit is "Too large." and is swallowed.
//! stat, touch and gat consume only header, extras and key: memcached parses any longer body's
//! rest as the next frame. memcached sends nothing while it swallows: every response queued
//! before a refusal with a swallow, and the refusal's own, goes out only once the swallowed
//! bytes have arrived (a client that waits for the answer before sending the rest waits for
//! ever); a server that wants the same bytes at the same moments holds its output until
//! `swallow` reaches 0.
//!
//! Where this codec knowingly differs from memcached 1.6.18: a value is judged against
//! [`BinaryLimits::max_value`] alone, where memcached adds the key and 59 bytes of item overhead
//! (set the limit from the storage's real one); and a refusal waits for its header, extras and
//! key like memcached's, but a valid frame is handed over only once whole, where memcached
//! starts reading a value into an item as its first bytes arrive (the bytes on the wire are the
//! same either way).
//!
//! What the executor must apply (memcached 1.6.18, `proto_bin.c`):
//! - **Protocol choice**: with `-B auto` the first byte of a connection picks binary (0x80) or
//!   text; after that every frame must be binary.
//! - **Echo**: every response carries the request's opcode as sent (quiet and `K` variants
//!   included) and its opaque ([`BinaryRequest::echo`]); stat pairs carry opcode `Stat`.
//! - **Quiet commands** ([`Opcode::response_sent`]): a quiet command's success is not sent;
//!   quiet get/gat hits are sent and their misses are not; every error is sent (deleteq and
//!   incrq misses, addq on an existing key, setq too large, ...). Nothing is held back: a
//!   suppressed response is simply not written, and the others keep request order. memcached
//!   writes what it has when its input runs dry and at once after a noop, so a noop's response
//!   comes after every response to the commands before it; a server that writes after
//!   draining its input behaves the same. quitq closes without a response.
//! - **CAS in the header**: hits (get, gat, touch) carry the item's CAS; a successful store
//!   (set, add, replace, append, prepend) and incr/decr carry the new item's CAS; errors,
//!   delete, flush, noop, version, quit and stat carry 0.
//! - **Retrieval**: hits carry the client flags as 4-byte extras ([`response::hit`]), the key
//!   for `K` variants, then the value; a `K` miss carries the key as its body and no text
//!   ([`response::miss`]); a touch hit carries the flags only ([`response::touched`]).
//! - **Stores**: a non-zero request CAS turns set, add or replace into a CAS store (mismatch:
//!   `KeyExists`, missing: `KeyNotFound`); append/prepend with a non-zero CAS that differs is
//!   `KeyExists`. Not stored: add answers `KeyExists`, replace `KeyNotFound`, append/prepend
//!   `NotStored`. A set (or setq) refused as too large or for memory unlinks the stored item
//!   first ([`BinaryError::key`]); out of memory is `OutOfMemory` with
//!   [`response::OUT_OF_MEMORY_STORING`]. memcached's "too large" counts the item header and
//!   key too: set [`BinaryLimits::max_value`] from the storage's real limit.
//! - **incr/decr**: a hit answers the new value ([`response::counter`]); incr wraps at 2^64,
//!   decr stops at 0; a non-zero request CAS must match (`KeyExists`); a non-numeric value is
//!   `NonNumeric`. A miss with exptime [`NO_CREATE`] is `KeyNotFound`; otherwise the counter
//!   is created (as an add) holding `initial` in decimal, flags 0, with that exptime, and the
//!   answer is `initial` with the new CAS; a failed add is `NotStored`.
//! - **delete**: a non-zero request CAS must match (`KeyExists`); a miss is `KeyNotFound`.
//! - **flush**: delay 0 flushes now, otherwise as an exptime; with flush disabled (`-F`) the
//!   answer is `AuthError` ("Auth failure.").
//! - **quit**: success response, then close.
//! - **stat**: [`StatGroup::of`] the key; each pair with [`response::stat`], then
//!   [`response::stat_end`] (reset and detail on/off send the end alone); an unknown group is
//!   `KeyNotFound`. `conns` is not a binary group.
//! - **SASL**: without authentication support all three SASL opcodes answer `UnknownCommand`
//!   (the parser has consumed their data, as memcached swallows it). With SASL enabled,
//!   memcached answers any other command but version before authentication with `AuthError`
//!   and closes: [`auth_gate`] says which, before [`parse_binary`] is asked.

pub mod client;
mod header;
mod parse;
mod request;
pub mod response;

pub use header::{HEADER_LEN, NO_CREATE, Opcode, REQUEST_MAGIC, RESPONSE_MAGIC, Status};
pub use parse::{AuthGate, BinaryLimits, BinaryParsed, auth_gate, parse_binary};
pub use request::{
    BinaryCommand, BinaryError, BinaryErrorKind, BinaryRequest, ConcatMode, StatGroup, StoreMode,
};

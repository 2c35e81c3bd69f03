//! The command layer: memcached's semantics, written once for every protocol.
//!
//! Owns: what each command does to the cache and to the server's counters, and which requests
//! a server refuses (`-F`, `-A`, `-X`, `cache_memlimit` bounds, ...): one handler module per
//! family ([`retrieval`], [`store`], [`arith`], [`delete`] (with touch), [`meta`] (what only
//! the meta protocol asks), [`admin`], [`auth`], [`cluster`] (auto discovery), [`crawler`] (`lru_crawler`, `stats cachedump`), [`slabs`] (`slabs reassign|automove`), [`stats`],
//! [`watch`] (log watchers and the events the other handlers report to them)). Each handler
//! takes a protocol-neutral
//! command and returns a protocol-neutral outcome; the protocol fronts in `session` parse
//! bytes into those commands and encode the outcomes with the codecs of
//! `ferrocache_protocol`. Must not touch: bytes of a request or a reply, sockets, buffers, or
//! item semantics (the storage crate's).
//!
//! A key's partition is locked for the storage call alone (and, for a hit, while the front
//! copies the value into its reply buffer through the `on_hit` callback); no handler holds two
//! locks or a lock across a syscall.

pub mod admin;
pub mod arith;
pub mod auth;
pub mod cluster;
pub mod crawler;
pub mod delete;
pub mod detail;
pub mod meta;
pub mod retrieval;
pub mod slabs;
pub mod stats;
pub mod store;
pub mod watch;

use crate::counters::ThreadStats;
use crate::shared::Shared;

/// The executor serving one connection's turn on a worker thread: the shared server state,
/// that thread's counters, and who the connection is (for watchers' event lines). Cheap to
/// make; every handler is a method of it.
#[derive(Clone, Copy)]
pub struct Executor<'a> {
    pub shared: &'a Shared,
    /// The serving worker's counters (single writer: this thread).
    pub stats: &'a ThreadStats,
    /// The serving worker.
    pub worker: usize,
    /// The connection's descriptor (`cfd=` in watch lines).
    pub fd: i32,
}

impl<'a> Executor<'a> {
    pub fn new(shared: &'a Shared, worker: usize, fd: i32) -> Self {
        Executor {
            shared,
            stats: &shared.threads[worker],
            worker,
            fd,
        }
    }
}

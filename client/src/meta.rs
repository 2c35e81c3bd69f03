//! Meta-protocol requests and replies as the client's callers hold them: an owned request
//! (command, key, flag tokens, value) and an owned reply with its status, return flags and
//! value, read the same way by the blocking and the async client.
//!
//! Owns: the owned shapes and the flag lookups on them. Must not touch: the bytes (the
//! protocol crate encodes requests and parses replies), sockets.

use ferrocache_protocol::MetaCommand;
use ferrocache_protocol::client::{MetaReplyFlags, Reply};
use ferrocache_protocol::reply::MetaStatus;

/// One meta request: `mg|ms|md|ma <key> <flags>` (`ms` with `value` as its data). `flags` are
/// the space-separated tokens as memcached reads them (`v c f N30`); never `q`, which would
/// leave the client waiting for a reply the server does not send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaRequest {
    pub command: MetaCommand,
    pub key: Vec<u8>,
    pub flags: Vec<u8>,
    pub value: Vec<u8>,
}

impl MetaRequest {
    /// A request without a value.
    pub fn new(command: MetaCommand, key: &[u8], flags: impl Into<Vec<u8>>) -> Self {
        MetaRequest {
            command,
            key: key.to_vec(),
            flags: flags.into(),
            value: Vec::new(),
        }
    }

    /// An `ms` of `value`.
    pub fn set(key: &[u8], value: &[u8], flags: impl Into<Vec<u8>>) -> Self {
        MetaRequest {
            command: MetaCommand::Set,
            key: key.to_vec(),
            flags: flags.into(),
            value: value.to_vec(),
        }
    }
}

/// A meta reply, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaResponse {
    pub status: MetaStatus,
    /// The return flag tokens, space-separated (`c12 t30 W`).
    pub flags: Vec<u8>,
    /// The data of `VA`; empty otherwise.
    pub value: Vec<u8>,
}

impl MetaResponse {
    /// The meta reply in `reply`, or `None` for any other kind of reply.
    pub fn from_reply(reply: Reply<'_>) -> Option<Self> {
        match reply {
            Reply::Meta(meta) => Some(MetaResponse {
                status: meta.status,
                flags: meta.flags.tokens.to_vec(),
                value: meta.value.to_vec(),
            }),
            _ => None,
        }
    }

    fn view(&self) -> MetaReplyFlags<'_> {
        MetaReplyFlags {
            tokens: &self.flags,
        }
    }

    /// The value of return flag `letter`, if the reply carries it.
    pub fn flag(&self, letter: u8) -> Option<&[u8]> {
        self.view().get(letter)
    }

    /// Whether the reply carries flag `letter` (`W`, `X`, `Z` have no value).
    pub fn has(&self, letter: u8) -> bool {
        self.view().has(letter)
    }

    pub fn cas(&self) -> Option<u64> {
        self.view().cas()
    }

    /// `VA` or `HD`: the item exists (mg), or the command did what it was asked.
    pub fn is_success(&self) -> bool {
        matches!(self.status, MetaStatus::Value { .. } | MetaStatus::Done)
    }
}

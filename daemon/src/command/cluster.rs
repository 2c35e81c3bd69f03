//! ElastiCache's auto discovery on this node: `config get cluster`, its pre-1.4.14 form
//! `get AmazonElastiCache:cluster`, `config set cluster` (where the operator allows it) and
//! `config delete`.
//!
//! Owns: what each answers and the `cmd_config_get` / `cmd_config_set` counters. Must not
//! touch: the node list itself (`crate::cluster`) or reply framing.

use super::Executor;
use crate::cluster::ConfigSetRefusal;
use std::sync::Arc;

/// The key ElastiCache engines before 1.4.14 answered the node list under, as a plain item.
pub const LEGACY_CLUSTER_KEY: &[u8] = b"AmazonElastiCache:cluster";

/// What a `config` command answers.
#[derive(Debug)]
pub enum ConfigOutcome {
    /// The node list: its client flags and payload.
    Value {
        flags: u32,
        payload: Arc<[u8]>,
    },
    /// No such configuration key (`END`).
    Missing,
    Stored,
    /// `config set` with a payload that is not a node list.
    Malformed,
    /// `config set` is not allowed on this node.
    NotAllowed,
    /// `config delete`: the node list is the file's, not the client's.
    NotDeletable,
}

impl Executor<'_> {
    /// `config get <key>`.
    pub fn config_get(&self, key: &[u8]) -> ConfigOutcome {
        match &self.shared.cluster {
            Some(cluster) if key == b"cluster" => {
                self.stats.cmd_config_get.incr();
                let (flags, payload) = cluster.get();
                ConfigOutcome::Value { flags, payload }
            }
            _ => ConfigOutcome::Missing,
        }
    }

    /// `get AmazonElastiCache:cluster` on a node that serves a node list: the list, as an
    /// item; `None` for any other key, or on a node without a list (a plain miss or hit).
    pub fn legacy_cluster_get(&self, key: &[u8]) -> Option<(u32, Arc<[u8]>)> {
        if key != LEGACY_CLUSTER_KEY {
            return None;
        }
        let cluster = self.shared.cluster.as_ref()?;
        self.stats.cmd_config_get.incr();
        Some(cluster.get())
    }

    /// `config set <key> <flags> <bytes>`.
    pub fn config_set(&self, key: &[u8], flags: u32, value: &[u8]) -> ConfigOutcome {
        let Some(cluster) = self.shared.cluster.as_ref().filter(|_| key == b"cluster") else {
            return ConfigOutcome::NotAllowed;
        };
        self.stats.cmd_config_set.incr();
        match cluster.set(flags, value) {
            Ok(()) => ConfigOutcome::Stored,
            Err(ConfigSetRefusal::NotAllowed) => ConfigOutcome::NotAllowed,
            Err(ConfigSetRefusal::Malformed(why)) => {
                log::warn!("config set cluster refused: {why}");
                ConfigOutcome::Malformed
            }
        }
    }

    /// `config delete <key>`.
    pub fn config_delete(&self, key: &[u8]) -> ConfigOutcome {
        match &self.shared.cluster {
            Some(_) if key == b"cluster" => ConfigOutcome::NotDeletable,
            _ => ConfigOutcome::Missing,
        }
    }
}

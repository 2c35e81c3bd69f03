//! The client callers use: commands over the text protocol, each key sent to the server the
//! ketama ring names, through a small pool of connections per server.
//!
//! Owns: what each command's reply means (hit or miss, stored or not), splitting a multi-get
//! by server and merging the results, connection reuse. Must not touch: bytes on the wire (the
//! protocol crate's encoder and parser), ring placement (the `ketama` module), which servers are
//! in service (the `topology` module, fed by every call's outcome and by `discovery`).

use crate::connection::{Connection, Timeouts};
use crate::discovery::{DiscoveryOptions, Poller};
use crate::error::ClientError;
use crate::ketama::ServerSpec;
use crate::meta::{MetaRequest, MetaResponse};
use crate::replies;
use crate::topology::{ClusterCounters, FailurePolicy, Member, Topology};
use ferrocache_protocol::client::{
    Reply, Store, check_key, encode_arith, encode_delete, encode_flush_all, encode_get,
    encode_meta, encode_stats, encode_store, encode_touch, encode_version,
};
use ferrocache_protocol::{GetKind, StatsGroup, StoreCommand};
use std::collections::HashMap;
use std::sync::Arc;

/// Connection settings for every server of a [`Client`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConfig {
    pub timeouts: Timeouts,
    /// Idle connections kept per server; more are opened when threads need them at once, and
    /// closed when returned to a full pool.
    pub max_idle_per_server: usize,
    /// Keys per `get` line of a multi-get (a server handles any number, but long lines cost
    /// proxies such as twemproxy a buffer copy).
    pub keys_per_get: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeouts: Timeouts::default(),
            max_idle_per_server: 4,
            keys_per_get: 100,
        }
    }
}

/// A stored value as a retrieval returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub value: Vec<u8>,
    pub flags: u32,
    /// The CAS unique (`gets`, `gats` only).
    pub cas: Option<u64>,
}

/// Expiry and client flags for a storage command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreOptions {
    pub flags: u32,
    /// memcached's exptime: 0 never, up to 30 days relative seconds, else a Unix time.
    pub exptime: i64,
    /// Ask for no reply: the call returns [`StoreOutcome::NotAsked`] without waiting. As with
    /// every memcached client, an error memcached sends even for `noreply` (a value over the
    /// server's item size limit) then surfaces as the reply to this connection's next command.
    pub noreply: bool,
}

/// What a storage command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    Stored,
    /// `add` of an existing key, `replace`/`append`/`prepend` of a missing one.
    NotStored,
    /// `cas`: the item changed since the unique was read.
    Exists,
    /// `cas`: the item is gone.
    NotFound,
    /// Sent with `noreply`.
    NotAsked,
}

/// A memcached client over one or more servers. `Sync`: threads share one client and each
/// call borrows a pooled connection for its duration.
#[derive(Debug)]
pub struct Client {
    topology: Arc<Topology>,
    config: ClientConfig,
    /// The config endpoint's poller, for a client made by [`Client::discover`]; stopped when
    /// the client is dropped.
    poller: Option<Poller>,
}

impl Client {
    /// A client for `servers`, routed by weighted ketama. Connects lazily. A failing server is
    /// never taken out of the ring (see [`Client::with_failure_policy`]).
    pub fn new(servers: Vec<ServerSpec>, config: ClientConfig) -> Result<Self, ClientError> {
        Client::with_failure_policy(servers, config, FailurePolicy::never())
    }

    /// A client for `servers` that takes failing servers out of the ring as `policy` says.
    pub fn with_failure_policy(
        servers: Vec<ServerSpec>,
        config: ClientConfig,
        policy: FailurePolicy,
    ) -> Result<Self, ClientError> {
        Ok(Client {
            topology: Arc::new(Topology::new(servers, policy)?),
            config,
            poller: None,
        })
    }

    /// A client for the nodes an ElastiCache-style config endpoint (`host:port`) lists with
    /// `config get cluster`, which keeps polling it (every `options.poll_interval`) and
    /// follows the list: servers that stay keep their connections, only the keys of servers
    /// added or removed move. Fails if the first `config get cluster` does.
    pub fn discover(config_endpoint: &str, options: DiscoveryOptions) -> Result<Self, ClientError> {
        let (servers, poller_state) = crate::discovery::first_config(config_endpoint, &options)?;
        let topology = Arc::new(Topology::new(servers, options.failure)?);
        let poller = Poller::start(poller_state, Arc::clone(&topology), options)?;
        Ok(Client {
            topology,
            config: options.client,
            poller: Some(poller),
        })
    }

    /// A client for one `host:port` with default settings.
    pub fn single(address: &str) -> Result<Self, ClientError> {
        Client::new(vec![address.parse()?], ClientConfig::default())
    }

    /// The servers known now (in service or not), in list order.
    pub fn servers(&self) -> Vec<ServerSpec> {
        let routing = self.topology.routing();
        routing.members.iter().map(|m| m.spec.clone()).collect()
    }

    /// Index (into [`Client::servers`]) of the server that holds `key` now: with a server out
    /// of the ring, its keys' next server. 0 when every server is out.
    pub fn server_index(&self, key: &[u8]) -> usize {
        self.topology.routing().member_for(key).unwrap_or(0)
    }

    /// The version of the node list in force (0 for a client not made by `discover`).
    pub fn config_version(&self) -> u64 {
        self.poller.as_ref().map_or(0, Poller::version)
    }

    /// Failures, ejections, rejoins and discovery events so far.
    pub fn counters(&self) -> ClusterCounters {
        self.topology.counters()
    }

    /// The member that holds `key` now.
    fn member_for(&self, key: &[u8]) -> Result<Arc<Member>, ClientError> {
        let routing = self.topology.routing();
        let index = routing.member_for(key)?;
        Ok(Arc::clone(&routing.members[index]))
    }

    /// Every member known now, for the commands sent to all servers.
    fn members(&self) -> Vec<Arc<Member>> {
        self.topology.routing().members.clone()
    }

    /// A pooled connection to `member`, or a new one (a failed connect counts against it).
    fn checkout(&self, member: &Member) -> Result<Connection, ClientError> {
        match member.pop_idle() {
            Some(connection) => Ok(connection),
            None => Connection::connect(&member.address, &self.config.timeouts)
                .inspect_err(|error| self.topology.record_error(member, error)),
        }
    }

    /// Returns a connection whose every request has been answered to its pool (or closes it
    /// when the pool is full).
    fn checkin(&self, member: &Member, mut connection: Connection) {
        if !connection.in_step() {
            return;
        }
        connection.out.clear();
        connection.shrink();
        member.push_idle(connection, self.config.max_idle_per_server);
    }

    /// Runs `work` on a pooled connection to `member`, returning the connection to the pool
    /// unless the work left it unusable, and telling the topology how the server did.
    fn with_connection<T>(
        &self,
        member: &Member,
        work: impl FnOnce(&mut Connection) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let mut connection = self.checkout(member)?;
        let result = work(&mut connection);
        let reusable = match &result {
            Ok(_) => {
                self.topology.record_success(member);
                true
            }
            Err(error) => {
                self.topology.record_error(member, error);
                error.keeps_connection()
            }
        };
        if reusable {
            self.checkin(member, connection);
        }
        result
    }

    /// [`Client::with_connection`] on the server that holds `key`.
    fn with_key<T>(
        &self,
        key: &[u8],
        work: impl FnOnce(&mut Connection) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let member = self.member_for(key)?;
        self.with_connection(&member, work)
    }

    fn unexpected(
        connection: &Connection,
        command: &'static str,
        reply: impl Into<String>,
    ) -> ClientError {
        ClientError::UnexpectedReply {
            server: connection.server().to_owned(),
            command,
            reply: reply.into(),
        }
    }

    /// Reads a `VALUE ... END` reply into `found`.
    fn read_values(
        connection: &mut Connection,
        command: &'static str,
        found: &mut HashMap<Vec<u8>, Item>,
    ) -> Result<(), ClientError> {
        loop {
            // Ok(true) at END, Ok(false) after a value, Err(text) for a reply that has no
            // place in a retrieval.
            let step = connection.read_reply(|reply| Ok(replies::retrieval_step(reply, found)))?;
            match step {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(reply) => return Err(Self::unexpected(connection, command, reply)),
            }
        }
    }

    fn retrieve_one(
        &self,
        kind: GetKind,
        exptime: i64,
        key: &[u8],
    ) -> Result<Option<Item>, ClientError> {
        let command = match kind {
            GetKind::Get => "get",
            GetKind::Gets => "gets",
            GetKind::Gat => "gat",
            GetKind::Gats => "gats",
        };
        self.with_key(key, |connection| {
            encode_get(&mut connection.out, kind, exptime, [key])?;
            connection.flush()?;
            let mut found = HashMap::with_capacity(1);
            Self::read_values(connection, command, &mut found)?;
            Ok(found.remove(key))
        })
    }

    /// `get`: the item, or `None` on a miss.
    pub fn get(&self, key: &[u8]) -> Result<Option<Item>, ClientError> {
        self.retrieve_one(GetKind::Get, 0, key)
    }

    /// `gets`: the item with its CAS unique.
    pub fn gets(&self, key: &[u8]) -> Result<Option<Item>, ClientError> {
        self.retrieve_one(GetKind::Gets, 0, key)
    }

    /// `gat`: get and set a new exptime.
    pub fn gat(&self, exptime: i64, key: &[u8]) -> Result<Option<Item>, ClientError> {
        self.retrieve_one(GetKind::Gat, exptime, key)
    }

    /// `gats`: get and touch, with the CAS unique.
    pub fn gats(&self, exptime: i64, key: &[u8]) -> Result<Option<Item>, ClientError> {
        self.retrieve_one(GetKind::Gats, exptime, key)
    }

    /// Multi-get: splits `keys` by server, sends each server its `get` lines in one write, and
    /// merges the hits. Misses are absent from the map.
    pub fn get_multi<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
    ) -> Result<HashMap<Vec<u8>, Item>, ClientError> {
        self.retrieve_multi(GetKind::Get, keys)
    }

    /// Multi-get with CAS uniques.
    pub fn gets_multi<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
    ) -> Result<HashMap<Vec<u8>, Item>, ClientError> {
        self.retrieve_multi(GetKind::Gets, keys)
    }

    fn retrieve_multi<K: AsRef<[u8]>>(
        &self,
        kind: GetKind,
        keys: &[K],
    ) -> Result<HashMap<Vec<u8>, Item>, ClientError> {
        // One routing for the whole call, so a ring change half way cannot split it oddly.
        let routing = self.topology.routing();
        let mut by_server: Vec<Vec<&[u8]>> = vec![Vec::new(); routing.members.len()];
        for key in keys {
            let key = key.as_ref();
            // Refuse a bad key before anything is sent anywhere.
            check_key(key)?;
            by_server[routing.member_for(key)?].push(key);
        }
        let mut found = HashMap::with_capacity(keys.len());
        // Every server gets its lines before any reply is read, so the servers work at the
        // same time and the call takes the slowest one's time, not the sum.
        let mut sent: Vec<(&Member, Connection, usize)> = Vec::new();
        // The server each step is talking to, for counting a failure against it.
        let mut current: Option<&Member> = None;
        let exchange = (|| -> Result<(), ClientError> {
            for (index, server_keys) in by_server.iter().enumerate() {
                if server_keys.is_empty() {
                    continue;
                }
                let member = &*routing.members[index];
                // A failed connect is counted by `checkout` itself; only what follows it is
                // counted below, so that one failure counts once, against its own server.
                current = None;
                let mut connection = self.checkout(member)?;
                current = Some(member);
                let lines = server_keys.chunks(self.config.keys_per_get.max(1));
                let line_count = lines.len();
                for chunk in lines {
                    encode_get(&mut connection.out, kind, 0, chunk.iter().copied())?;
                }
                connection.flush()?;
                sent.push((member, connection, line_count));
            }
            current = None;
            for (member, connection, line_count) in &mut sent {
                current = Some(*member);
                for _ in 0..*line_count {
                    Self::read_values(connection, "get", &mut found)?;
                }
            }
            Ok(())
        })();
        // On failure every connection of this call is dropped: some may still have replies
        // on their way.
        if let Err(error) = exchange {
            if let Some(member) = current {
                self.topology.record_error(member, &error);
            }
            return Err(error);
        }
        for (member, connection, _) in sent {
            self.topology.record_success(member);
            self.checkin(member, connection);
        }
        Ok(found)
    }

    /// Any storage command; `cas` is used by `cas` only.
    pub fn store(
        &self,
        command: StoreCommand,
        key: &[u8],
        value: &[u8],
        cas: u64,
        options: StoreOptions,
    ) -> Result<StoreOutcome, ClientError> {
        self.with_key(key, |connection| {
            let store = Store {
                command,
                key,
                flags: options.flags,
                exptime: options.exptime,
                value,
                cas,
                noreply: options.noreply,
            };
            encode_store(&mut connection.out, &store)?;
            connection.flush()?;
            if options.noreply {
                return Ok(StoreOutcome::NotAsked);
            }
            let outcome = connection.read_reply(|reply| Ok(replies::store_outcome(&reply)))?;
            outcome
                .ok_or_else(|| Self::unexpected(connection, "storage command", "non-storage reply"))
        })
    }

    /// `set`.
    pub fn set(&self, key: &[u8], value: &[u8], exptime: i64) -> Result<(), ClientError> {
        let options = StoreOptions {
            exptime,
            ..StoreOptions::default()
        };
        self.store(StoreCommand::Set, key, value, 0, options)
            .map(|_| ())
    }

    /// `add`: true when stored, false when the key already existed.
    pub fn add(&self, key: &[u8], value: &[u8], exptime: i64) -> Result<bool, ClientError> {
        self.stored(StoreCommand::Add, key, value, exptime)
    }

    /// `replace`: true when stored, false when the key did not exist.
    pub fn replace(&self, key: &[u8], value: &[u8], exptime: i64) -> Result<bool, ClientError> {
        self.stored(StoreCommand::Replace, key, value, exptime)
    }

    /// `append`: true when stored, false when the key did not exist.
    pub fn append(&self, key: &[u8], value: &[u8]) -> Result<bool, ClientError> {
        self.stored(StoreCommand::Append, key, value, 0)
    }

    /// `prepend`: true when stored, false when the key did not exist.
    pub fn prepend(&self, key: &[u8], value: &[u8]) -> Result<bool, ClientError> {
        self.stored(StoreCommand::Prepend, key, value, 0)
    }

    fn stored(
        &self,
        command: StoreCommand,
        key: &[u8],
        value: &[u8],
        exptime: i64,
    ) -> Result<bool, ClientError> {
        let options = StoreOptions {
            exptime,
            ..StoreOptions::default()
        };
        let outcome = self.store(command, key, value, 0, options)?;
        Ok(outcome == StoreOutcome::Stored)
    }

    /// `cas`: stores only if the item's unique is still `cas`.
    pub fn cas(
        &self,
        key: &[u8],
        value: &[u8],
        exptime: i64,
        cas: u64,
    ) -> Result<StoreOutcome, ClientError> {
        let options = StoreOptions {
            exptime,
            ..StoreOptions::default()
        };
        self.store(StoreCommand::Cas, key, value, cas, options)
    }

    /// `delete`: true when the key existed.
    pub fn delete(&self, key: &[u8]) -> Result<bool, ClientError> {
        self.with_key(key, |connection| {
            encode_delete(&mut connection.out, key, false)?;
            connection.flush()?;
            let deleted = connection.read_reply(|reply| Ok(replies::deleted(&reply)))?;
            deleted.ok_or_else(|| Self::unexpected(connection, "delete", "non-delete reply"))
        })
    }

    fn arith(&self, incr: bool, key: &[u8], delta: u64) -> Result<Option<u64>, ClientError> {
        self.with_key(key, |connection| {
            encode_arith(&mut connection.out, incr, key, delta, false)?;
            connection.flush()?;
            let value = connection.read_reply(|reply| {
                Ok(match reply {
                    Reply::Number(n) => Some(Some(n)),
                    Reply::NotFound => Some(None),
                    _ => None,
                })
            })?;
            value.ok_or_else(|| Self::unexpected(connection, "incr/decr", "non-number reply"))
        })
    }

    /// `incr`: the new value, or `None` when the key does not exist.
    pub fn incr(&self, key: &[u8], delta: u64) -> Result<Option<u64>, ClientError> {
        self.arith(true, key, delta)
    }

    /// `decr`: the new value (never below 0), or `None` when the key does not exist.
    pub fn decr(&self, key: &[u8], delta: u64) -> Result<Option<u64>, ClientError> {
        self.arith(false, key, delta)
    }

    /// `touch`: true when the key existed.
    pub fn touch(&self, key: &[u8], exptime: i64) -> Result<bool, ClientError> {
        self.with_key(key, |connection| {
            encode_touch(&mut connection.out, key, exptime, false)?;
            connection.flush()?;
            let touched = connection.read_reply(|reply| Ok(replies::touched(&reply)))?;
            touched.ok_or_else(|| Self::unexpected(connection, "touch", "non-touch reply"))
        })
    }

    /// One meta command (`mg`, `ms`, `md`, `ma`) to the server that holds its key.
    pub fn meta(&self, request: &MetaRequest) -> Result<MetaResponse, ClientError> {
        self.with_key(&request.key, |connection| {
            encode_meta(
                &mut connection.out,
                request.command,
                &request.key,
                false,
                &request.flags,
                &request.value,
            )?;
            connection.flush()?;
            let response = connection.read_reply(|reply| Ok(MetaResponse::from_reply(reply)))?;
            response.ok_or_else(|| Self::unexpected(connection, "meta command", "non-meta reply"))
        })
    }

    /// `flush_all` on every server.
    pub fn flush_all(&self) -> Result<(), ClientError> {
        for member in self.members() {
            self.with_connection(&member, |connection| {
                encode_flush_all(&mut connection.out, 0, false);
                connection.flush()?;
                let ok = connection.read_reply(|reply| Ok(matches!(reply, Reply::Ok)))?;
                if ok {
                    Ok(())
                } else {
                    Err(Self::unexpected(connection, "flush_all", "not OK"))
                }
            })?;
        }
        Ok(())
    }

    /// `stats [group]` of every server: name to value, in server order.
    pub fn stats(
        &self,
        group: StatsGroup<'_>,
    ) -> Result<Vec<HashMap<String, String>>, ClientError> {
        (0..self.members().len())
            .map(|index| self.server_stats(index, group))
            .collect()
    }

    /// `stats [group]` of server `index`.
    pub fn server_stats(
        &self,
        index: usize,
        group: StatsGroup<'_>,
    ) -> Result<HashMap<String, String>, ClientError> {
        let member = self.members().get(index).cloned().ok_or_else(|| {
            ClientError::Ring(crate::ketama::RingError::BadServer(format!(
                "index {index}"
            )))
        })?;
        self.with_connection(&member, |connection| {
            encode_stats(&mut connection.out, group)?;
            connection.flush()?;
            let mut stats = HashMap::new();
            loop {
                let done = connection.read_reply(|reply| match reply {
                    Reply::Stat { name, value } => {
                        stats.insert(
                            String::from_utf8_lossy(name).into_owned(),
                            String::from_utf8_lossy(value).into_owned(),
                        );
                        Ok(Some(false))
                    }
                    Reply::End | Reply::Reset => Ok(Some(true)),
                    _ => Ok(None),
                })?;
                match done {
                    Some(true) => return Ok(stats),
                    Some(false) => {}
                    None => return Err(Self::unexpected(connection, "stats", "non-STAT line")),
                }
            }
        })
    }

    /// `version` of every server, in server order.
    pub fn version(&self) -> Result<Vec<String>, ClientError> {
        self.members()
            .iter()
            .map(|member| {
                self.with_connection(member, |connection| {
                    encode_version(&mut connection.out);
                    connection.flush()?;
                    let version = connection.read_reply(|reply| {
                        Ok(match reply {
                            Reply::Version(text) => {
                                Some(String::from_utf8_lossy(text).into_owned())
                            }
                            _ => None,
                        })
                    })?;
                    version.ok_or_else(|| Self::unexpected(connection, "version", "not VERSION"))
                })
            })
            .collect()
    }
}

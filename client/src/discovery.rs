//! ElastiCache-style auto discovery: the node list read from a config endpoint with
//! `config get cluster`, then polled for a new version in a background thread, as the AWS
//! cluster clients do (every 60 s by default).
//!
//! Owns: the config endpoint's connection, the poll loop and its thread, turning a node list
//! into ring servers (`host|ip|port`: the address when given, else the host name). Must not
//! touch: the reply's bytes (`ferrocache_protocol::client::parse_config_reply` and
//! `parse_cluster_config`), which members keep their pools (the `topology` module).

use crate::client::ClientConfig;
use crate::connection::{Connection, Timeouts};
use crate::error::ClientError;
use crate::ketama::ServerSpec;
use crate::topology::{Counters, FailurePolicy, Topology};
use ferrocache_protocol::client::{ClusterConfig, encode_config_get, parse_cluster_config};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Settings of [`crate::Client::discover`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscoveryOptions {
    /// How often the config endpoint is asked for a new version (AWS's clients: 60 s).
    pub poll_interval: Duration,
    /// Connection settings for the nodes and for the config endpoint.
    pub client: ClientConfig,
    /// What happens to a node that keeps failing.
    pub failure: FailurePolicy,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        DiscoveryOptions {
            poll_interval: Duration::from_secs(60),
            client: ClientConfig::default(),
            failure: FailurePolicy::default(),
        }
    }
}

/// The config endpoint and the version in force.
#[derive(Debug)]
pub(crate) struct Endpoint {
    address: String,
    timeouts: Timeouts,
    /// Kept between polls; dropped after any failure.
    connection: Option<Connection>,
    version: u64,
}

impl Endpoint {
    /// Asks for the node list once.
    fn fetch(&mut self) -> Result<ClusterConfig, ClientError> {
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => Connection::connect(&self.address, &self.timeouts)?,
        };
        encode_config_get(connection.write_buffer(), b"cluster")?;
        connection.flush()?;
        let data = connection.read_config()?;
        self.connection = Some(connection);
        parse_cluster_config(&data).map_err(|error| self.discovery_error(error.to_string()))
    }

    fn discovery_error(&self, reason: String) -> ClientError {
        ClientError::Discovery {
            endpoint: self.address.clone(),
            reason,
        }
    }

    /// The ring servers of a node list; an empty list is refused (it is never a cluster, and
    /// usually a config file caught half written).
    fn servers(&self, config: &ClusterConfig) -> Result<Vec<ServerSpec>, ClientError> {
        if config.nodes.is_empty() {
            return Err(self.discovery_error(format!("version {} lists no nodes", config.version)));
        }
        Ok(config
            .nodes
            .iter()
            .map(|node| ServerSpec::new(node.connect_host(), node.port))
            .collect())
    }
}

/// The first node list, for building the client.
pub(crate) fn first_config(
    address: &str,
    options: &DiscoveryOptions,
) -> Result<(Vec<ServerSpec>, Endpoint), ClientError> {
    let mut endpoint = Endpoint {
        address: address.to_owned(),
        timeouts: options.client.timeouts,
        connection: None,
        version: 0,
    };
    let config = endpoint.fetch()?;
    let servers = endpoint.servers(&config)?;
    endpoint.version = config.version;
    log::info!(
        "{address}: cluster config version {} with {} nodes",
        config.version,
        servers.len()
    );
    Ok((servers, endpoint))
}

/// The polling thread; dropping it stops the thread (at once between polls, else after the
/// poll under way, which its timeouts bound).
#[derive(Debug)]
pub(crate) struct Poller {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    version: Arc<AtomicU64>,
}

impl Poller {
    pub(crate) fn start(
        mut endpoint: Endpoint,
        topology: Arc<Topology>,
        options: DiscoveryOptions,
    ) -> Result<Self, ClientError> {
        Counters::bump(&topology.counters.config_changes, 1);
        let version = Arc::new(AtomicU64::new(endpoint.version));
        let shown = Arc::clone(&version);
        let (stop, stopped) = mpsc::channel::<()>();
        let address = endpoint.address.clone();
        let thread = std::thread::Builder::new()
            .name("ferrocache-discovery".to_owned())
            .spawn(move || {
                // A message or a dropped sender both mean stop.
                while let Err(RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(options.poll_interval)
                {
                    poll_once(&mut endpoint, &topology);
                    shown.store(endpoint.version, Ordering::Relaxed);
                }
            })
            .map_err(|source| ClientError::Io {
                server: address,
                source,
            })?;
        Ok(Poller {
            stop: Some(stop),
            thread: Some(thread),
            version,
        })
    }

    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One poll: applies a new version's node list, keeps the old list on any failure.
fn poll_once(endpoint: &mut Endpoint, topology: &Topology) {
    Counters::bump(&topology.counters.polls, 1);
    let applied = endpoint.fetch().and_then(|config| {
        // Any other version, not only a higher one: a config endpoint that restarted counts
        // from 1 again, and its list is still the one in force.
        if config.version == endpoint.version {
            return Ok(());
        }
        let servers = endpoint.servers(&config)?;
        let (added, removed) = topology.replace(servers)?;
        log::info!(
            "{}: cluster config version {} -> {}: {added} nodes added, {removed} removed",
            endpoint.address,
            endpoint.version,
            config.version
        );
        endpoint.version = config.version;
        Counters::bump(&topology.counters.config_changes, 1);
        Ok(())
    });
    if let Err(error) = applied {
        endpoint.connection = None;
        Counters::bump(&topology.counters.poll_failures, 1);
        log::warn!(
            "{}: poll failed, keeping the node list: {error}",
            endpoint.address
        );
    }
}

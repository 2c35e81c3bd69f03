//! ferrocache-client: a memcached client, blocking ([`Client`]) or async on tokio (`AsyncClient`,
//! feature `async`), that spreads keys over many servers with libmemcached-compatible weighted
//! ketama, and the patterns a cache is for: lazy loading with leases (`get_or_load`),
//! write-through (`write_through`, `invalidate`) and a session store ([`SessionStore`]).
//!
//! Owns: routing keys to servers ([`ketama`]), connections with timeouts and a small pool per
//! server ([`connection`], [`Client`]), meta requests and replies ([`meta`]), the patterns'
//! decisions and drivers ([`patterns`], [`session`]), the typed errors callers see
//! ([`ClientError`]), auto discovery from a config endpoint ([`Client::discover`]) and taking
//! failing servers out of the ring ([`FailurePolicy`]). Must not touch: the protocol's bytes (encoded and parsed by
//! `ferrocache_protocol::client`), the server.
//!
//! ```no_run
//! use ferrocache_client::{Client, ClientConfig, ServerSpec};
//! let servers = vec!["10.0.0.1:11211".parse()?, "10.0.0.2:11211:2".parse::<ServerSpec>()?];
//! let client = Client::new(servers, ClientConfig::default())?;
//! client.set(b"greeting", b"hello", 0)?;
//! assert_eq!(client.get(b"greeting")?.map(|item| item.value), Some(b"hello".to_vec()));
//! # Ok::<(), ferrocache_client::ClientError>(())
//! ```

#![forbid(unsafe_code)]

#[cfg(feature = "async")]
mod async_client;
mod client;
pub mod connection;
mod discovery;
mod error;
pub mod ketama;
pub mod meta;
pub mod patterns;
mod replies;
mod reply_buffer;
pub mod session;
mod topology;

#[cfg(feature = "async")]
pub use async_client::AsyncClient;
pub use client::{Client, ClientConfig, Item, StoreOptions, StoreOutcome};
pub use connection::{Connection, Timeouts};
pub use discovery::DiscoveryOptions;
pub use error::{ClientError, ServerErrorKind};
pub use ketama::{KetamaRing, RingError, ServerSpec};
pub use meta::{MetaRequest, MetaResponse};
pub use patterns::{LeaseOptions, LoadError, LoadOutcome, Loaded, WriteError, WriteOutcome};
pub use session::{SessionError, SessionId, SessionStore};
pub use topology::{ClusterCounters, FailurePolicy};

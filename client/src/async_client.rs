//! The async client on tokio (feature `async`), for web applications: the same ketama ring, the
//! same codec (`ferrocache_protocol::client`), the same reply buffer and reply meanings as the
//! blocking [`crate::Client`], over `tokio::net::TcpStream` with timeouts from
//! `tokio::time`.
//!
//! Owns: async connections and their pool, the async command calls. Must not touch: bytes on
//! the wire, what a reply means (`replies`, `meta`), ring placement.
//!
//! A call that is dropped half way (a cancelled request handler) drops its connection with it,
//! so no pooled connection ever has a reply in flight.

use crate::client::{ClientConfig, Item};
use crate::connection::Timeouts;
use crate::error::ClientError;
use crate::ketama::{KetamaRing, ServerSpec};
use crate::meta::{MetaRequest, MetaResponse};
use crate::replies;
use crate::reply_buffer::{Parsed, ReplyBuffer};
use ferrocache_protocol::GetKind;
use ferrocache_protocol::client::{
    Reply, Store, encode_delete, encode_flush_all, encode_get, encode_meta, encode_store,
    encode_touch, encode_version,
};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One async connection and its buffers.
#[derive(Debug)]
struct AsyncConnection {
    stream: TcpStream,
    server: String,
    out: Vec<u8>,
    input: ReplyBuffer,
}

/// Runs `io` under `limit` (none: no limit), mapping a timeout and I/O errors onto
/// [`ClientError`].
async fn limited<T>(
    limit: Option<Duration>,
    server: &str,
    during: &'static str,
    io: impl Future<Output = io::Result<T>>,
) -> Result<T, ClientError> {
    let result = match limit {
        Some(limit) => match tokio::time::timeout(limit, io).await {
            Ok(result) => result,
            Err(_) => {
                return Err(ClientError::Timeout {
                    server: server.to_owned(),
                    during,
                });
            }
        },
        None => io.await,
    };
    result.map_err(|error| ClientError::from_io(server, during, error))
}

impl AsyncConnection {
    async fn connect(server: &str, timeouts: &Timeouts) -> Result<Self, ClientError> {
        let stream = limited(
            timeouts.connect,
            server,
            "connecting to",
            TcpStream::connect(server),
        )
        .await?;
        // Requests are small and answered at once: Nagle would add 40 ms to each.
        stream
            .set_nodelay(true)
            .map_err(|error| ClientError::from_io(server, "connecting to", error))?;
        Ok(AsyncConnection {
            stream,
            server: server.to_owned(),
            out: Vec::with_capacity(1024),
            input: ReplyBuffer::new(),
        })
    }

    async fn flush(&mut self, timeouts: &Timeouts) -> Result<(), ClientError> {
        let result = limited(
            timeouts.write,
            &self.server,
            "writing to",
            self.stream.write_all(&self.out),
        )
        .await;
        self.out.clear();
        result
    }

    /// The next reply unit, handed to `handle`; error lines become [`ClientError::Server`].
    async fn read_reply<T>(
        &mut self,
        timeouts: &Timeouts,
        mut handle: impl FnMut(Reply<'_>) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        loop {
            match self.input.parse(&self.server, &mut handle)? {
                Parsed::Reply(result) => return result,
                Parsed::Needs(needed) => {
                    while self.input.lacks(needed) {
                        self.input.make_room(needed, &self.server)?;
                        let read = limited(
                            timeouts.read,
                            &self.server,
                            "reading from",
                            self.stream.read(self.input.spare()),
                        )
                        .await?;
                        if read == 0 {
                            return Err(ClientError::ConnectionClosed {
                                server: self.server.clone(),
                            });
                        }
                        self.input.filled(read);
                    }
                }
            }
        }
    }

    fn unexpected(&self, command: &'static str, reply: impl Into<String>) -> ClientError {
        ClientError::UnexpectedReply {
            server: self.server.clone(),
            command,
            reply: reply.into(),
        }
    }
}

#[derive(Debug)]
struct AsyncPool {
    address: String,
    idle: Mutex<Vec<AsyncConnection>>,
}

#[derive(Debug)]
struct Shared {
    servers: Vec<ServerSpec>,
    ring: KetamaRing,
    pools: Vec<AsyncPool>,
    config: ClientConfig,
}

/// An async memcached client over one or more servers. Cheap to clone: clones share the ring
/// and the connection pools.
#[derive(Debug, Clone)]
pub struct AsyncClient {
    shared: Arc<Shared>,
}

impl AsyncClient {
    /// A client for `servers`, routed by weighted ketama. Connects lazily.
    pub fn new(servers: Vec<ServerSpec>, config: ClientConfig) -> Result<Self, ClientError> {
        let ring = KetamaRing::new(&servers)?;
        let pools = servers
            .iter()
            .map(|server| AsyncPool {
                address: server.address(),
                idle: Mutex::new(Vec::new()),
            })
            .collect();
        Ok(AsyncClient {
            shared: Arc::new(Shared {
                servers,
                ring,
                pools,
                config,
            }),
        })
    }

    /// A client for one `host:port` with default settings.
    pub fn single(address: &str) -> Result<Self, ClientError> {
        AsyncClient::new(vec![address.parse()?], ClientConfig::default())
    }

    pub fn servers(&self) -> &[ServerSpec] {
        &self.shared.servers
    }

    /// Index (into [`AsyncClient::servers`]) of the server that holds `key`.
    pub fn server_index(&self, key: &[u8]) -> usize {
        self.shared.ring.server_for(key)
    }

    /// Runs `work` on a pooled (or new) connection to server `index`; the connection goes back
    /// to the pool when the work succeeded or the server answered with an error line.
    async fn with_connection<T>(
        &self,
        index: usize,
        work: impl AsyncFnOnce(&mut AsyncConnection, &Timeouts) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let pool = &self.shared.pools[index];
        let timeouts = self.shared.config.timeouts;
        let pooled = pool.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => AsyncConnection::connect(&pool.address, &timeouts).await?,
        };
        let result = work(&mut connection, &timeouts).await;
        let reusable = match &result {
            Ok(_) => true,
            Err(error) => error.keeps_connection(),
        };
        if reusable && connection.input.is_empty() {
            connection.out.clear();
            connection.input.shrink();
            let mut idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < self.shared.config.max_idle_per_server {
                idle.push(connection);
            }
        }
        result
    }

    async fn retrieve_one(
        &self,
        kind: GetKind,
        exptime: i64,
        key: &[u8],
    ) -> Result<Option<Item>, ClientError> {
        self.with_connection(self.server_index(key), async |connection, timeouts| {
            encode_get(&mut connection.out, kind, exptime, [key])?;
            connection.flush(timeouts).await?;
            let mut found = HashMap::with_capacity(1);
            loop {
                let step = connection
                    .read_reply(timeouts, |reply| {
                        Ok(replies::retrieval_step(reply, &mut found))
                    })
                    .await?;
                match step {
                    Ok(true) => return Ok(found.remove(key)),
                    Ok(false) => {}
                    Err(reply) => return Err(connection.unexpected("get", reply)),
                }
            }
        })
        .await
    }

    /// `get`: the item, or `None` on a miss.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Item>, ClientError> {
        self.retrieve_one(GetKind::Get, 0, key).await
    }

    /// `gat`: get and set a new exptime.
    pub async fn gat(&self, exptime: i64, key: &[u8]) -> Result<Option<Item>, ClientError> {
        self.retrieve_one(GetKind::Gat, exptime, key).await
    }

    /// `set` with flags 0.
    pub async fn set(&self, key: &[u8], value: &[u8], exptime: i64) -> Result<(), ClientError> {
        self.with_connection(self.server_index(key), async |connection, timeouts| {
            let store = Store {
                exptime,
                ..Store::set(key, value)
            };
            encode_store(&mut connection.out, &store)?;
            connection.flush(timeouts).await?;
            let outcome = connection
                .read_reply(timeouts, |reply| Ok(replies::store_outcome(&reply)))
                .await?;
            match outcome {
                Some(_) => Ok(()),
                None => Err(connection.unexpected("set", "non-storage reply")),
            }
        })
        .await
    }

    /// `delete`: true when the key existed.
    pub async fn delete(&self, key: &[u8]) -> Result<bool, ClientError> {
        self.with_connection(self.server_index(key), async |connection, timeouts| {
            encode_delete(&mut connection.out, key, false)?;
            connection.flush(timeouts).await?;
            let deleted = connection
                .read_reply(timeouts, |reply| Ok(replies::deleted(&reply)))
                .await?;
            deleted.ok_or_else(|| connection.unexpected("delete", "non-delete reply"))
        })
        .await
    }

    /// `touch`: true when the key existed.
    pub async fn touch(&self, key: &[u8], exptime: i64) -> Result<bool, ClientError> {
        self.with_connection(self.server_index(key), async |connection, timeouts| {
            encode_touch(&mut connection.out, key, exptime, false)?;
            connection.flush(timeouts).await?;
            let touched = connection
                .read_reply(timeouts, |reply| Ok(replies::touched(&reply)))
                .await?;
            touched.ok_or_else(|| connection.unexpected("touch", "non-touch reply"))
        })
        .await
    }

    /// One meta command (`mg`, `ms`, `md`, `ma`) to the server that holds its key.
    pub async fn meta(&self, request: &MetaRequest) -> Result<MetaResponse, ClientError> {
        self.with_connection(
            self.server_index(&request.key),
            async |connection, timeouts| {
                encode_meta(
                    &mut connection.out,
                    request.command,
                    &request.key,
                    false,
                    &request.flags,
                    &request.value,
                )?;
                connection.flush(timeouts).await?;
                let response = connection
                    .read_reply(timeouts, |reply| Ok(MetaResponse::from_reply(reply)))
                    .await?;
                response.ok_or_else(|| connection.unexpected("meta command", "non-meta reply"))
            },
        )
        .await
    }

    /// `flush_all` on every server.
    pub async fn flush_all(&self) -> Result<(), ClientError> {
        for index in 0..self.shared.servers.len() {
            self.with_connection(index, async |connection, timeouts| {
                encode_flush_all(&mut connection.out, 0, false);
                connection.flush(timeouts).await?;
                let ok = connection
                    .read_reply(timeouts, |reply| Ok(matches!(reply, Reply::Ok)))
                    .await?;
                if ok {
                    Ok(())
                } else {
                    Err(connection.unexpected("flush_all", "not OK"))
                }
            })
            .await?;
        }
        Ok(())
    }

    /// `version` of every server, in server order.
    pub async fn version(&self) -> Result<Vec<String>, ClientError> {
        let mut versions = Vec::with_capacity(self.shared.servers.len());
        for index in 0..self.shared.servers.len() {
            let version = self
                .with_connection(index, async |connection, timeouts| {
                    encode_version(&mut connection.out);
                    connection.flush(timeouts).await?;
                    let version = connection
                        .read_reply(timeouts, |reply| {
                            Ok(match reply {
                                Reply::Version(text) => {
                                    Some(String::from_utf8_lossy(text).into_owned())
                                }
                                _ => None,
                            })
                        })
                        .await?;
                    version.ok_or_else(|| connection.unexpected("version", "not VERSION"))
                })
                .await?;
            versions.push(version);
        }
        Ok(versions)
    }
}

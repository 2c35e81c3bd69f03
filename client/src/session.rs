//! A session store for stateless web servers: any instance can load the session another
//! created, each read slides the expiry forward (`mg <key> v T<ttl>`, as `gat` does), and an
//! idle session ends by itself when its TTL runs out.
//!
//! Owns: session ids (128 bits from the OS's random source, 32 lowercase hex digits), their
//! keys, the meta requests of create/load/save/destroy and what their replies mean, on the
//! blocking client (`SessionStore<Arc<Client>>`) and the async one (`SessionStore<AsyncClient>`).
//! Must not touch: what is in a session (bytes to this module), cookies (the web framework's).

#[cfg(feature = "async")]
use crate::async_client::AsyncClient;
use crate::client::Client;
use crate::error::ClientError;
use crate::meta::{MetaRequest, MetaResponse};
use ferrocache_protocol::MetaCommand;
use ferrocache_protocol::reply::MetaStatus;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use thiserror::Error;

/// What can go wrong with a session.
#[derive(Debug, Error)]
pub enum SessionError {
    /// A session id that is not 32 lowercase hex digits (a forged or mangled cookie); it is
    /// never sent to the cache.
    #[error("malformed session id")]
    InvalidId,
    /// `save` of a session that expired or was destroyed.
    #[error("session not found (expired or destroyed)")]
    NotFound,
    /// The OS random source failed.
    #[error("no random bytes for a session id: {0}")]
    Random(getrandom::Error),
    /// 128-bit ids collided with existing sessions several times in a row: the random
    /// source is broken.
    #[error("session ids keep colliding")]
    IdCollision,
    #[error("cache: {0}")]
    Cache(#[from] ClientError),
    /// A reply that does not answer the request (a misbehaving proxy or server).
    #[error("unexpected reply to session {0}")]
    Unexpected(&'static str),
}

/// A session id: 128 random bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId([u8; 16]);

impl SessionId {
    /// A new id from the OS's random source (getrandom(2)).
    pub fn generate() -> Result<Self, SessionError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(SessionError::Random)?;
        Ok(SessionId(bytes))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

/// Shown as `SessionId(..)`: an id is a credential and stays out of logs.
impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(..)")
    }
}

impl FromStr for SessionId {
    type Err = SessionError;

    /// Exactly 32 lowercase hex digits, as [`SessionId`]'s `Display` writes them.
    fn from_str(text: &str) -> Result<Self, SessionError> {
        let digits = text.as_bytes();
        if digits.len() != 32 {
            return Err(SessionError::InvalidId);
        }
        let nibble = |digit: u8| match digit {
            b'0'..=b'9' => Ok(digit - b'0'),
            b'a'..=b'f' => Ok(digit - b'a' + 10),
            _ => Err(SessionError::InvalidId),
        };
        let mut bytes = [0u8; 16];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
        }
        Ok(SessionId(bytes))
    }
}

/// Sessions under `key_prefix` with a sliding `ttl` (seconds), on client `C`: `Arc<Client>`
/// (blocking) or `AsyncClient`.
#[derive(Debug, Clone)]
pub struct SessionStore<C> {
    client: C,
    key_prefix: String,
    ttl: u32,
}

/// How many fresh ids `create` tries when one is taken.
const CREATE_ATTEMPTS: usize = 3;

impl<C> SessionStore<C> {
    pub fn new(client: C, key_prefix: impl Into<String>, ttl: u32) -> Self {
        SessionStore {
            client,
            key_prefix: key_prefix.into(),
            ttl,
        }
    }

    /// Seconds an idle session lives.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    fn key(&self, id: &SessionId) -> Vec<u8> {
        format!("{}{id}", self.key_prefix).into_bytes()
    }

    /// `ms <key> T<ttl> ME`: add, so an id already in use is never overwritten.
    fn create_request(&self, id: &SessionId, data: &[u8]) -> MetaRequest {
        MetaRequest::set(&self.key(id), data, format!("T{} ME", self.ttl))
    }

    /// `mg <key> v T<ttl>`: read and push the expiry forward.
    fn load_request(&self, id: &SessionId) -> MetaRequest {
        MetaRequest::new(MetaCommand::Get, &self.key(id), format!("v T{}", self.ttl))
    }

    /// `ms <key> T<ttl> MR`: replace, so a destroyed or expired session is not brought back.
    fn save_request(&self, id: &SessionId, data: &[u8]) -> MetaRequest {
        MetaRequest::set(&self.key(id), data, format!("T{} MR", self.ttl))
    }

    fn destroy_request(&self, id: &SessionId) -> MetaRequest {
        MetaRequest::new(MetaCommand::Delete, &self.key(id), Vec::new())
    }
}

/// Whether an add took (`HD`) or found the id taken (`NS`).
fn created(response: &MetaResponse) -> Result<bool, SessionError> {
    match response.status {
        MetaStatus::Done => Ok(true),
        MetaStatus::NotStored => Ok(false),
        _ => Err(SessionError::Unexpected("create")),
    }
}

fn loaded(response: MetaResponse) -> Result<Option<Vec<u8>>, SessionError> {
    match response.status {
        MetaStatus::Value { .. } => Ok(Some(response.value)),
        MetaStatus::Miss => Ok(None),
        _ => Err(SessionError::Unexpected("load")),
    }
}

fn saved(response: &MetaResponse) -> Result<(), SessionError> {
    match response.status {
        MetaStatus::Done => Ok(()),
        MetaStatus::NotStored => Err(SessionError::NotFound),
        _ => Err(SessionError::Unexpected("save")),
    }
}

fn destroyed(response: &MetaResponse) -> Result<bool, SessionError> {
    match response.status {
        MetaStatus::Done => Ok(true),
        MetaStatus::NotFound => Ok(false),
        _ => Err(SessionError::Unexpected("destroy")),
    }
}

impl SessionStore<Arc<Client>> {
    /// A new session holding `data`.
    pub fn create(&self, data: &[u8]) -> Result<SessionId, SessionError> {
        for _ in 0..CREATE_ATTEMPTS {
            let id = SessionId::generate()?;
            if created(&self.client.meta(&self.create_request(&id, data))?)? {
                return Ok(id);
            }
        }
        Err(SessionError::IdCollision)
    }

    /// The session's data, its expiry pushed `ttl` seconds on; `None` once it has expired or
    /// been destroyed.
    pub fn load(&self, id: &SessionId) -> Result<Option<Vec<u8>>, SessionError> {
        loaded(self.client.meta(&self.load_request(id))?)
    }

    /// Replaces the session's data; [`SessionError::NotFound`] when it is gone.
    pub fn save(&self, id: &SessionId, data: &[u8]) -> Result<(), SessionError> {
        saved(&self.client.meta(&self.save_request(id, data))?)
    }

    /// Ends the session; true when it still existed.
    pub fn destroy(&self, id: &SessionId) -> Result<bool, SessionError> {
        destroyed(&self.client.meta(&self.destroy_request(id))?)
    }
}

#[cfg(feature = "async")]
impl SessionStore<AsyncClient> {
    /// A new session holding `data`.
    pub async fn create(&self, data: &[u8]) -> Result<SessionId, SessionError> {
        for _ in 0..CREATE_ATTEMPTS {
            let id = SessionId::generate()?;
            if created(&self.client.meta(&self.create_request(&id, data)).await?)? {
                return Ok(id);
            }
        }
        Err(SessionError::IdCollision)
    }

    /// The session's data, its expiry pushed `ttl` seconds on; `None` once it is gone.
    pub async fn load(&self, id: &SessionId) -> Result<Option<Vec<u8>>, SessionError> {
        loaded(self.client.meta(&self.load_request(id)).await?)
    }

    /// Replaces the session's data; [`SessionError::NotFound`] when it is gone.
    pub async fn save(&self, id: &SessionId, data: &[u8]) -> Result<(), SessionError> {
        saved(&self.client.meta(&self.save_request(id, data)).await?)
    }

    /// Ends the session; true when it still existed.
    pub async fn destroy(&self, id: &SessionId) -> Result<bool, SessionError> {
        destroyed(&self.client.meta(&self.destroy_request(id)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_text_and_differ() {
        let id = SessionId::generate().unwrap();
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text.parse::<SessionId>().unwrap(), id);
        assert_ne!(SessionId::generate().unwrap(), id);
        assert_eq!(format!("{id:?}"), "SessionId(..)");
    }

    #[test]
    fn forged_ids_are_refused_before_any_request() {
        for bad in [
            "",
            "abc",
            "0123456789abcdef0123456789abcdeF",
            "0123456789abcdef0123456789abcde g",
            "0123456789abcdef0123456789abcd\r\n",
            "0123456789abcdef0123456789abcdef0",
        ] {
            assert!(matches!(
                bad.parse::<SessionId>(),
                Err(SessionError::InvalidId)
            ));
        }
    }

    #[test]
    fn requests_slide_the_expiry_and_never_resurrect() {
        let store = SessionStore::new((), "s:", 1800);
        let id: SessionId = "000102030405060708090a0b0c0d0e0f".parse().unwrap();
        assert_eq!(store.key(&id), b"s:000102030405060708090a0b0c0d0e0f");
        assert_eq!(store.create_request(&id, b"x").flags, b"T1800 ME");
        assert_eq!(store.load_request(&id).flags, b"v T1800");
        assert_eq!(store.save_request(&id, b"x").flags, b"T1800 MR");
    }
}

//! TLS in transit, with rustls: memcached's `-Z` and `-o ssl_*`, `refresh_certs` and SIGHUP, and
//! the `ssl_*` statistics.
//!
//! Owns: the server's current rustls config (swapped whole by a refresh: a connection keeps the
//! config, and so the certificate, it was accepted with), the session cache, the TLS counters,
//! and each connection's TLS state ([`session::TlsSession`]). Must not touch: sockets beyond
//! the reads and writes a connection asks of its session, requests and replies.
//!
//! Where TLS sits: between a connection's plaintext buffers and its socket, inside the same
//! mio event loop (rustls is sans-I/O: no thread, no blocking call). A read asks rustls for
//! plaintext straight into the connection's input buffer (the worker's scratch buffer when
//! the connection has nothing carried over), reading records from the socket only when it has
//! none; replies are encrypted from the connection's output buffer, `ssl_wbuf_size` bytes at a
//! time, and the records go out with one `writev`. The copies left are the ones TLS needs:
//! decrypted plaintext into the request buffer, plaintext into the record being encrypted.
//! rustls 0.23 allocates one buffer per record it receives or sends (both of its APIs; the
//! unbuffered one too, see its `ReadTraffic::next_record` and `write_fragments`), so a TLS
//! connection costs an allocation per record, not per request: pipelined requests share
//! records. An idle TLS connection keeps rustls's state and a 4 KiB record buffer (about
//! 8 KiB in all, measured; memcached's OpenSSL connections take about 15 KiB).
//!
//! Why ring as rustls's crypto provider: it builds with just a C compiler (aws-lc-rs needs cmake
//! and several minutes of CI's two cores), has AES-GCM and ChaCha20-Poly1305 with the CPU's
//! instructions, and ECDSA/RSA signing for the handshake, which is all memcached's TLS offers.
//! What aws-lc-rs would add (post-quantum key exchange, FIPS) memcached 1.6.18 does not have.

pub mod config;
pub mod session;
pub mod settings;

use parking_lot::Mutex;
use rustls::ServerConfig;
use rustls::server::{ServerSessionMemoryCache, StoresServerSessions};
use session::TlsSession;
use settings::TlsSettings;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Sessions the resumption cache holds: OpenSSL's default (SSL_SESSION_CACHE_MAX_SIZE_DEFAULT),
/// which memcached's `ssl_session_cache` uses.
const SESSION_CACHE_SIZE: usize = 20 * 1024;

/// TLS counters memcached reports in `stats` (reset by `stats reset`, as memcached's).
#[derive(Debug, Default)]
pub struct TlsStats {
    /// Connections that ended before their handshake completed (a TLS error, plaintext or
    /// garbage on a TLS port, a peer that went away or stalled mid-handshake).
    pub handshake_errors: AtomicU64,
    /// Sessions put in the resumption cache.
    pub new_sessions: AtomicU64,
    baseline: Mutex<(u64, u64)>,
}

impl TlsStats {
    /// `(handshake errors, new sessions)` since the last `stats reset`.
    pub fn since_reset(&self) -> (u64, u64) {
        let base = *self.baseline.lock();
        (
            self.handshake_errors
                .load(Ordering::Relaxed)
                .wrapping_sub(base.0),
            self.new_sessions
                .load(Ordering::Relaxed)
                .wrapping_sub(base.1),
        )
    }

    pub fn reset(&self) {
        *self.baseline.lock() = (
            self.handshake_errors.load(Ordering::Relaxed),
            self.new_sessions.load(Ordering::Relaxed),
        );
    }
}

/// The resumption cache, counting what it stores (memcached's `ssl_new_sessions`).
#[derive(Debug)]
struct CountingSessionCache {
    inner: Arc<ServerSessionMemoryCache>,
    stats: Arc<TlsStats>,
}

impl StoresServerSessions for CountingSessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let stored = self.inner.put(key, value);
        if stored {
            self.stats.new_sessions.fetch_add(1, Ordering::Relaxed);
        }
        stored
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner.get(key)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner.take(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// The server's TLS: the settings, the config new connections get, and the counters.
#[derive(Debug)]
pub struct ServerTls {
    pub settings: TlsSettings,
    current: Mutex<Arc<ServerConfig>>,
    /// Kept across refreshes, as memcached's SSL_CTX keeps its cache.
    sessions: Option<Arc<dyn StoresServerSessions>>,
    pub stats: Arc<TlsStats>,
    /// Clock second of the last successful load (`time_since_server_cert_refresh`).
    last_refresh: AtomicU32,
}

impl ServerTls {
    /// Reads the files at start-up; the error is memcached's one line.
    pub fn load(settings: TlsSettings, now: u32) -> Result<ServerTls, config::LoadError> {
        let stats = Arc::new(TlsStats::default());
        let sessions: Option<Arc<dyn StoresServerSessions>> = settings.session_cache.then(|| {
            Arc::new(CountingSessionCache {
                inner: ServerSessionMemoryCache::new(SESSION_CACHE_SIZE),
                stats: Arc::clone(&stats),
            }) as Arc<dyn StoresServerSessions>
        });
        let config = config::build(&settings, &sessions)?;
        Ok(ServerTls {
            settings,
            current: Mutex::new(config),
            sessions,
            stats,
            last_refresh: AtomicU32::new(now),
        })
    }

    /// `refresh_certs` and SIGHUP: reads the files again. On failure the config in use stays
    /// and the error says why.
    pub fn refresh(&self, now: u32) -> Result<(), config::LoadError> {
        let config = config::build(&self.settings, &self.sessions)?;
        *self.current.lock() = config;
        self.last_refresh.store(now, Ordering::Relaxed);
        Ok(())
    }

    /// TLS state for a connection just accepted, with the config current now.
    pub fn accept(&self) -> Result<TlsSession, rustls::Error> {
        let config = Arc::clone(&self.current.lock());
        TlsSession::new(config, self.settings.wbuf_size)
    }

    pub fn seconds_since_refresh(&self, now: u32) -> u32 {
        now.saturating_sub(self.last_refresh.load(Ordering::Relaxed))
    }
}

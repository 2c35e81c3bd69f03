//! `--tls CA_FILE`: the engine's sockets speak TLS (rustls with ring, the server verified
//! against that CA as its IP address), for W8 against `ferrocached -Z` and `memcached -Z`.
//!
//! Owns: moving plaintext through rustls over a non-blocking socket with the same contract
//! as the socket's own `read`/`write` (`WouldBlock` when nothing can move, 0 when the peer
//! closed), driving the handshake on the way. Must not touch: requests or replies.

use mio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// A client config that trusts the certificates in `ca` (PEM).
pub fn client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certs =
        CertificateDer::pem_file_iter(ca).map_err(|e| format!("--tls {}: {e}", ca.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("--tls {}: {e}", ca.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("--tls {}: {e}", ca.display()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// One socket's TLS client state.
#[derive(Debug)]
pub struct ClientTls {
    conn: rustls::ClientConnection,
}

impl ClientTls {
    pub fn new(config: Arc<rustls::ClientConfig>, target: SocketAddr) -> io::Result<ClientTls> {
        let name = ServerName::IpAddress(target.ip().into());
        let conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
        Ok(ClientTls { conn })
    }

    /// Takes all of `bytes` (held until the handshake is done) and writes what it can.
    pub fn write(&mut self, stream: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
        let n = self.conn.writer().write(bytes)?;
        self.flush(stream)?;
        Ok(n)
    }

    /// Writes queued records until the socket would block.
    pub fn flush(&mut self, stream: &mut TcpStream) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Plaintext into `buf`, reading records from the socket as needed.
    pub fn read(&mut self, stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.conn.read_tls(stream)? == 0 {
                return Ok(0);
            }
            self.conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            // Handshake messages, and requests held until the handshake finished.
            self.flush(stream)?;
        }
    }
}

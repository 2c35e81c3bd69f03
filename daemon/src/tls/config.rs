//! Reading the certificate chain, the key and the client CA into a rustls `ServerConfig`,
//! with memcached's error texts (`load_server_certificates` in memcached's tls.c) when a file
//! does not do.
//!
//! Owns: file formats (PEM chains, PEM or DER keys), the checks memcached makes (the key
//! matches the certificate), and every rustls knob the `-o ssl_*` options turn. Must not
//! touch: connections (each takes the config current when it is accepted).

use super::settings::{KeyFormat, MinVersion, TlsSettings, VerifyMode};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{NoServerSessionStorage, StoresServerSessions, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use std::path::Path;
use std::sync::Arc;

/// Why the files did not make a config; `Display` is memcached's text (without its `\r\n`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("Error loading the certificate chain: {path} : {reason}")]
    Chain { path: String, reason: String },
    #[error("Error loading the key: {path} : {reason}")]
    Key { path: String, reason: String },
    #[error("Error validating the certificate: {reason}")]
    Mismatch { reason: String },
    #[error("Error loading the CA certificate: {path} : {reason}")]
    Ca { path: String, reason: String },
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    let fail = |reason: String| LoadError::Chain {
        path: shown(path),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(pem_reason(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(pem_reason(&e)))?;
    if chain.is_empty() {
        return Err(fail("no PEM certificate in the file".to_string()));
    }
    Ok(chain)
}

fn read_key(path: &Path, format: KeyFormat) -> Result<PrivateKeyDer<'static>, LoadError> {
    let fail = |reason: String| LoadError::Key {
        path: shown(path),
        reason,
    };
    match format {
        KeyFormat::Pem => PrivateKeyDer::from_pem_file(path).map_err(|e| fail(pem_reason(&e))),
        KeyFormat::Der => {
            let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
            PrivateKeyDer::try_from(bytes).map_err(|e| fail(e.to_string()))
        }
    }
}

fn read_ca(path: &Path) -> Result<RootCertStore, LoadError> {
    let fail = |reason: String| LoadError::Ca {
        path: shown(path),
        reason,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| fail(pem_reason(&e)))? {
        let cert = cert.map_err(|e| fail(pem_reason(&e)))?;
        roots.add(cert).map_err(|e| fail(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(fail("no PEM certificate in the file".to_string()));
    }
    Ok(roots)
}

/// The I/O error itself for a file that cannot be read, which is what a user needs to see.
fn pem_reason(error: &rustls::pki_types::pem::Error) -> String {
    match error {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => {
            "no PEM item of that kind in the file".into()
        }
        other => other.to_string(),
    }
}

/// The crypto provider: ring, with the suites `ssl_ciphers` named (all of ring's otherwise).
pub fn provider(settings: &TlsSettings) -> CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    if !settings.cipher_suites.is_empty() {
        provider.cipher_suites = settings.cipher_suites.clone();
    }
    provider
}

/// Reads the files `settings` names and builds the config new connections get.
pub fn build(
    settings: &TlsSettings,
    sessions: &Option<Arc<dyn StoresServerSessions>>,
) -> Result<Arc<ServerConfig>, LoadError> {
    let chain_path = settings
        .chain_cert
        .as_deref()
        .ok_or_else(|| LoadError::Chain {
            path: "(null)".into(),
            reason: "no ssl_chain_cert given".into(),
        })?;
    let chain = read_chain(chain_path)?;
    // memcached: the key "if not part of the ssl_chain_cert".
    let key = read_key(
        settings.key.as_deref().unwrap_or(chain_path),
        settings.key_format,
    )?;
    let provider = Arc::new(provider(settings));
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => LoadError::Mismatch {
            reason: "the private key does not match the certificate".into(),
        },
        other => LoadError::Key {
            path: shown(settings.key.as_deref().unwrap_or(chain_path)),
            reason: other.to_string(),
        },
    })?;
    let versions: &[&'static rustls::SupportedProtocolVersion] = match settings.min_version {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| LoadError::Mismatch {
            reason: format!("no cipher suite of ssl_ciphers fits ssl_min_version: {e}"),
        })?;
    let builder = match (settings.verify_mode, &settings.ca_cert) {
        (VerifyMode::None, _) | (_, None) => builder.with_no_client_auth(),
        (mode, Some(ca_path)) => {
            let roots = Arc::new(read_ca(ca_path)?);
            let verifier =
                WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider));
            let verifier = if mode == VerifyMode::Request {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| LoadError::Ca {
                path: shown(ca_path),
                reason: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config =
        builder.with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    match sessions {
        Some(store) => {
            config.session_storage = Arc::clone(store);
            // As OpenSSL, which memcached's cache counts: two tickets per TLS 1.3 handshake.
            config.send_tls13_tickets = 2;
        }
        None => {
            config.session_storage = Arc::new(NoServerSessionStorage {});
            config.send_tls13_tickets = 0;
        }
    }
    Ok(Arc::new(config))
}

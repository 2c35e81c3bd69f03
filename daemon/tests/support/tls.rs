//! TLS test support: a throw-away CA with server and client certificates made by `openssl` at
//! test time under the test's target directory (no key is ever committed), and a blocking
//! rustls client that verifies the server against that CA.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// Runs openssl, failing loudly if it is missing or refuses.
pub fn openssl(args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is needed for the TLS tests: apt-get install openssl (scripts/install-test-deps.sh)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA and certificates it signed, in a fresh directory.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("pki-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = |file: &str| dir.join(file).to_string_lossy().into_owned();
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &path("ca.key"),
            "-out",
            &path("ca.pem"),
            "-days",
            "2",
            "-subj",
            "/CN=ferrocache test CA",
        ]);
        let pki = Pki {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            dir: dir.clone(),
        };
        pki.issue("server", "localhost", "serverAuth");
        pki.issue("client", "test client", "clientAuth");
        pki.readable_by_all();
        pki
    }

    /// memcached, started as root with `-u nobody`, re-reads the files at `refresh_certs` as
    /// nobody. Test keys only.
    pub fn readable_by_all(&self) {
        use std::os::unix::fs::PermissionsExt;
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let path = entry.unwrap().path();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }

    /// A certificate `<stem>.pem` and key `<stem>.key` for `cn`, signed by the CA.
    pub fn issue(&self, stem: &str, cn: &str, usage: &str) -> (PathBuf, PathBuf) {
        let path = |file: String| self.dir.join(file).to_string_lossy().into_owned();
        let ext = path(format!("{stem}.ext"));
        std::fs::write(
            &ext,
            format!("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage={usage}\n"),
        )
        .unwrap();
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &path(format!("{stem}.key")),
            "-out",
            &path(format!("{stem}.csr")),
            "-subj",
            &format!("/CN={cn}"),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &path(format!("{stem}.csr")),
            "-CA",
            &path("ca.pem".into()),
            "-CAkey",
            &path("ca.key".into()),
            "-CAcreateserial",
            "-out",
            &path(format!("{stem}.pem")),
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
        (
            self.dir.join(format!("{stem}.pem")),
            self.dir.join(format!("{stem}.key")),
        )
    }

    /// The `-Z -o ...` arguments serving this PKI's server certificate, plus `extra` options.
    pub fn server_args(&self, extra: &str) -> Vec<String> {
        let mut options = format!(
            "ssl_chain_cert={},ssl_key={}",
            self.cert.display(),
            self.key.display()
        );
        if !extra.is_empty() {
            options.push(',');
            options.push_str(extra);
        }
        vec!["-Z".into(), "-o".into(), options]
    }
}

/// The DER of the first certificate in a PEM file.
pub fn der_of(pem: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(pem)
        .expect("a PEM certificate")
        .to_vec()
}

pub fn client_config(ca: &Path, identity: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    Arc::new(match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    })
}

/// A blocking TLS client that verifies the server as 127.0.0.1 against the test CA.
pub struct TlsClient {
    pub tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    buffer: Vec<u8>,
}

impl TlsClient {
    pub fn connect(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<TlsClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(super::IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let name = ServerName::IpAddress(addr.ip().into());
        let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(conn, stream);
        // Finish the handshake now, so a refusal shows here.
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok(TlsClient {
            tls,
            buffer: Vec::new(),
        })
    }

    /// The DER of the certificate the server presented.
    pub fn server_cert(&self) -> Vec<u8> {
        self.tls
            .conn
            .peer_certificates()
            .expect("a server certificate")[0]
            .to_vec()
    }

    pub fn resumed(&self) -> bool {
        self.tls.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
    }

    pub fn version(&self) -> Option<rustls::ProtocolVersion> {
        self.tls.conn.protocol_version()
    }

    /// Sends `request` and reads until the reply ends with `terminator`.
    pub fn call(&mut self, request: &[u8], terminator: &[u8]) -> std::io::Result<String> {
        self.tls.write_all(request)?;
        self.tls.flush()?;
        let mut chunk = [0u8; 16384];
        while !self.buffer.ends_with(terminator) {
            let n = self.tls.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
        Ok(String::from_utf8_lossy(&std::mem::take(&mut self.buffer)).into_owned())
    }
}

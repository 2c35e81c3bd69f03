//! TLS with real clients against the real binary: pymemcache with an `ssl.SSLContext` that
//! verifies a CA made for the test, `openssl s_client` for the protocol versions, rustls for
//! client certificates, resumption and `refresh_certs`; start-up errors; the `ssl_*` stats.
//! Bad input on a TLS port is in `tls_hardening.rs`.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::tls::{Pki, TlsClient, client_config, der_of};
use support::{Client, Server, free_port, signal};

fn start_tls(pki: &Pki, extra: &str) -> Server {
    let args = pki.server_args(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&args)
}

fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

#[test]
fn pymemcache_verifies_the_ca_and_gets_what_it_set() {
    let pki = Pki::new("pymemcache");
    let server = start_tls(&pki, "");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/pymemcache_tls.py");
    let output = Command::new(python())
        .arg(&script)
        .args(["localhost", &server.addr.port().to_string()])
        .arg(&pki.ca)
        .output()
        .expect("python3 with pymemcache (scripts/install-test-deps.sh)");
    assert!(
        output.status.success()
            && String::from_utf8_lossy(&output.stdout).contains("tls session passed"),
        "{}\n{}\nserver:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        server.stderr()
    );
}

/// `openssl s_client` with one protocol version; returns (handshake done, what it printed).
fn s_client(server: &Server, ca: &Path, version: &str) -> (bool, String) {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &server.addr.to_string(),
            version,
            "-CAfile",
        ])
        .arg(ca)
        .args(["-verify_return_error", "-ign_eof"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl (scripts/install-test-deps.sh)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(b"version\r\nquit\r\n");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "s_client {version} hung");
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (text.contains("VERSION 1.6.18"), text)
}

#[test]
fn tls_1_3_and_1_2_handshake_and_1_1_is_refused() {
    let pki = Pki::new("versions");
    let server = start_tls(&pki, "");
    let (ok, text) = s_client(&server, &pki.ca, "-tls1_3");
    assert!(ok && text.contains("TLSv1.3"), "{text}");
    let (ok, text) = s_client(&server, &pki.ca, "-tls1_2");
    assert!(ok && text.contains("TLSv1.2"), "{text}");
    let (ok, text) = s_client(&server, &pki.ca, "-tls1_1");
    assert!(!ok, "TLS 1.1 was served:\n{text}");
    // ssl_min_version=3 (memcached's TLS 1.3) refuses TLS 1.2.
    let strict = start_tls(&pki, "ssl_min_version=3");
    assert!(!s_client(&strict, &pki.ca, "-tls1_2").0);
    assert!(s_client(&strict, &pki.ca, "-tls1_3").0);
    // Still up, and counting the refused handshakes.
    let mut client = TlsClient::connect(server.addr, client_config(&pki.ca, None)).unwrap();
    let stats = client.call(b"stats\r\n", b"END\r\n").unwrap();
    assert!(
        !stats.contains("STAT ssl_handshake_errors 0\r\n"),
        "{stats}"
    );
}

#[test]
fn verify_mode_2_refuses_a_client_without_a_certificate() {
    let pki = Pki::new("mtls");
    let ca = pki.ca.display().to_string();
    let server = start_tls(&pki, &format!("ssl_ca_cert={ca},ssl_verify_mode=2"));
    let refused = TlsClient::connect(server.addr, client_config(&pki.ca, None))
        .and_then(|mut c| c.call(b"version\r\n", b"\r\n"));
    assert!(refused.is_err(), "served without a client certificate");
    let identity = Some((pki.client_cert.as_path(), pki.client_key.as_path()));
    let mut client = TlsClient::connect(server.addr, client_config(&pki.ca, identity)).unwrap();
    assert_eq!(
        client.call(b"version\r\n", b"\r\n").unwrap(),
        "VERSION 1.6.18\r\n"
    );
    // A certificate from another CA is refused too.
    let other = Pki::new("mtls-other");
    let stranger = Some((other.client_cert.as_path(), other.client_key.as_path()));
    let refused = TlsClient::connect(server.addr, client_config(&pki.ca, stranger))
        .and_then(|mut c| c.call(b"version\r\n", b"\r\n"));
    assert!(refused.is_err(), "served a certificate the CA did not sign");

    // Mode 1 asks for one but serves a client without.
    let lenient = start_tls(&pki, &format!("ssl_ca_cert={ca},ssl_verify_mode=1"));
    let mut anonymous = TlsClient::connect(lenient.addr, client_config(&pki.ca, None)).unwrap();
    assert_eq!(
        anonymous.call(b"version\r\n", b"\r\n").unwrap(),
        "VERSION 1.6.18\r\n"
    );
}

#[test]
fn refresh_certs_serves_new_connections_the_new_certificate() {
    let pki = Pki::new("refresh");
    let server = start_tls(&pki, "");
    let config = client_config(&pki.ca, None);
    let mut old = TlsClient::connect(server.addr, config.clone()).unwrap();
    let first = der_of(&pki.cert);
    assert_eq!(old.server_cert(), first);

    // New files at the same paths.
    let (cert, key) = pki.issue("second", "localhost", "serverAuth");
    std::fs::copy(&cert, &pki.cert).unwrap();
    std::fs::copy(&key, &pki.key).unwrap();
    assert_eq!(old.call(b"refresh_certs\r\n", b"\r\n").unwrap(), "OK\r\n");
    let new = TlsClient::connect(server.addr, config.clone()).unwrap();
    assert_eq!(new.server_cert(), der_of(&cert));
    // The old connection keeps working, on its old session.
    assert_eq!(
        old.call(b"set k 0 0 1\r\nx\r\n", b"\r\n").unwrap(),
        "STORED\r\n"
    );
    assert_eq!(old.server_cert(), first);

    // A bad file at refresh keeps the certificate in use and says why, as memcached.
    std::fs::write(&pki.cert, b"not a certificate").unwrap();
    let reply = old.call(b"refresh_certs noreply\r\n", b"\r\n").unwrap();
    assert_eq!(
        reply,
        format!(
            "Error loading the certificate chain: {} : no PEM certificate in the file\r\n",
            pki.cert.display()
        )
    );
    let still = TlsClient::connect(server.addr, config.clone()).unwrap();
    assert_eq!(still.server_cert(), der_of(&cert));

    // SIGHUP reads them again too.
    let (third, third_key) = pki.issue("third", "localhost", "serverAuth");
    std::fs::copy(&third, &pki.cert).unwrap();
    std::fs::copy(&third_key, &pki.key).unwrap();
    signal(server.pid(), "HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let client = TlsClient::connect(server.addr, config.clone()).unwrap();
        if client.server_cert() == der_of(&third) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the certificate"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = old.call(b"stats\r\n", b"END\r\n").unwrap();
    assert!(
        stats.contains("STAT time_since_server_cert_refresh "),
        "{stats}"
    );
}

#[test]
fn refresh_certs_without_tls_is_memcacheds_error() {
    let server = Server::start(&[]);
    let mut client = server.connect();
    assert_eq!(
        client.call(b"refresh_certs\r\n", b"\r\n"),
        "Error TLS not enabled\r\n"
    );
}

#[test]
fn sessions_resume_with_the_session_cache() {
    let pki = Pki::new("resume");
    let server = start_tls(&pki, "ssl_session_cache");
    let config = client_config(&pki.ca, None);
    let mut first = TlsClient::connect(server.addr, config.clone()).unwrap();
    // TLS 1.3 tickets arrive after the handshake: a round trip receives them.
    first.call(b"version\r\n", b"\r\n").unwrap();
    let mut second = TlsClient::connect(server.addr, config.clone()).unwrap();
    assert!(second.resumed(), "the second connection did not resume");
    let stats = second.call(b"stats\r\n", b"END\r\n").unwrap();
    assert!(stats.contains("STAT ssl_new_sessions "), "{stats}");
    assert!(!stats.contains("STAT ssl_new_sessions 0\r\n"), "{stats}");

    // Without the cache nothing resumes, and the stat is not shown (as memcached).
    let plain = start_tls(&pki, "");
    let config = client_config(&pki.ca, None);
    let mut first = TlsClient::connect(plain.addr, config.clone()).unwrap();
    first.call(b"version\r\n", b"\r\n").unwrap();
    let mut second = TlsClient::connect(plain.addr, config).unwrap();
    assert!(!second.resumed());
    let stats = second.call(b"stats\r\n", b"END\r\n").unwrap();
    assert!(!stats.contains("ssl_new_sessions"), "{stats}");
}

#[test]
fn a_notls_listener_serves_plaintext_beside_tls() {
    let pki = Pki::new("notls");
    let port = free_port();
    let notls = format!("notls:127.0.0.1:{port}");
    let mut args = pki.server_args("");
    args.extend(["-l".to_string(), notls]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&args);
    let mut tls = TlsClient::connect(server.addr, client_config(&pki.ca, None)).unwrap();
    assert_eq!(
        tls.call(b"set k 0 0 2\r\nhi\r\n", b"\r\n").unwrap(),
        "STORED\r\n"
    );
    let mut plain = Client::connect(format!("127.0.0.1:{port}").parse().unwrap());
    assert_eq!(
        plain.call(b"get k\r\n", b"END\r\n"),
        "VALUE k 0 2\r\nhi\r\nEND\r\n"
    );
    let settings = plain.call(b"stats settings\r\n", b"END\r\n");
    for line in [
        "STAT ssl_enabled yes\r\n",
        &format!("STAT ssl_chain_cert {}\r\n", pki.cert.display()),
        "STAT ssl_verify_mode 0\r\n",
        "STAT ssl_keyformat 1\r\n",
        "STAT ssl_ciphers NULL\r\n",
        "STAT ssl_ca_cert NULL\r\n",
        "STAT ssl_wbuf_size 16384\r\n",
        "STAT ssl_session_cache no\r\n",
        "STAT ssl_kernel_tls no\r\n",
        "STAT ssl_min_version tlsv1.2\r\n",
    ] {
        assert!(settings.contains(line), "{line:?} missing from\n{settings}");
    }
}

#[test]
fn a_bad_certificate_at_start_up_is_one_line_and_exit_64() {
    let pki = Pki::new("startup");
    let missing = pki.dir.join("missing.pem");
    let key_only = pki.key.display().to_string();
    for (options, expected) in [
        (
            format!("ssl_chain_cert={},ssl_key={key_only}", missing.display()),
            format!(
                "Error loading the certificate chain: {} : ",
                missing.display()
            ),
        ),
        (
            format!(
                "ssl_chain_cert={},ssl_key={}",
                pki.cert.display(),
                missing.display()
            ),
            format!("Error loading the key: {} : ", missing.display()),
        ),
        (
            format!(
                "ssl_chain_cert={},ssl_key={}",
                pki.cert.display(),
                pki.client_key.display()
            ),
            "Error validating the certificate: ".to_string(),
        ),
        (
            format!(
                "ssl_chain_cert={},ssl_key={key_only},ssl_ca_cert={},ssl_verify_mode=2",
                pki.cert.display(),
                missing.display()
            ),
            format!("Error loading the CA certificate: {} : ", missing.display()),
        ),
        ("ssl_key=x".to_string(), "ssl_chain_cert".to_string()),
        (
            format!("ssl_chain_cert={},ssl_min_version=1", pki.cert.display()),
            "TLS 1.0 and 1.1".to_string(),
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_ferrocached"))
            .args(["-p", "0", "-Z", "-o", &options])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{options}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{options}: {stderr}");
        assert!(stderr.contains(&expected), "{options}: {stderr}");
    }
}

/// The bytes memcached 1.6.18 `-Z` answers on the same files: `refresh_certs` and its errors,
/// the `stats settings` TLS lines, and TLS 1.1 refused.
#[test]
fn side_by_side_with_memcached_z() {
    let pki = Pki::new("compare");
    let ca = pki.ca.display().to_string();
    let extra = format!("ssl_ca_cert={ca},ssl_verify_mode=1,ssl_session_cache,ssl_wbuf_size=32");
    let ours = start_tls(&pki, &extra);
    let args = pki.server_args(&extra);
    let reference = support::Reference::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let config = client_config(&pki.ca, None);
    let mut mine = TlsClient::connect(ours.addr, config.clone()).unwrap();
    let mut theirs = TlsClient::connect(reference.addr, config.clone()).unwrap();
    for request in [
        &b"refresh_certs\r\n"[..],
        b"refresh_certs noreply\r\nversion\r\n",
    ] {
        assert_eq!(
            mine.call(request, b"\r\n").unwrap(),
            theirs.call(request, b"\r\n").unwrap(),
            "{request:?}"
        );
    }
    let tls_lines = |stats: String| -> Vec<String> {
        stats
            .lines()
            .filter(|l| l.starts_with("STAT ssl_"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        tls_lines(mine.call(b"stats settings\r\n", b"END\r\n").unwrap()),
        tls_lines(theirs.call(b"stats settings\r\n", b"END\r\n").unwrap())
    );
    let general = |client: &mut TlsClient| -> Vec<String> {
        client
            .call(b"stats\r\n", b"END\r\n")
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("STAT "))
            .filter(|l| l.starts_with("ssl_") || l.starts_with("time_since_server_cert"))
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(general(&mut mine), general(&mut theirs));

    // A broken chain file: the same message up to OpenSSL's own reason.
    std::fs::write(&pki.cert, b"garbage").unwrap();
    let prefix = format!(
        "Error loading the certificate chain: {} : ",
        pki.cert.display()
    );
    let a = mine.call(b"refresh_certs\r\n", b"\r\n").unwrap();
    let b = theirs.call(b"refresh_certs\r\n", b"\r\n").unwrap();
    assert!(
        a.starts_with(&prefix) && b.starts_with(&prefix),
        "{a:?} / {b:?}"
    );
    // Both keep serving new connections with the certificate they had.
    assert!(TlsClient::connect(ours.addr, config.clone()).is_ok());
    assert!(TlsClient::connect(reference.addr, config).is_ok());

    // Without -Z both refuse refresh_certs alike, noreply or not.
    let plain = Server::start(&[]);
    let plain_reference = support::Reference::start(&[]);
    for request in [&b"refresh_certs\r\n"[..], b"refresh_certs noreply\r\n"] {
        assert_eq!(
            plain.connect().call(request, b"\r\n"),
            plain_reference.connect().call(request, b"\r\n")
        );
    }
}

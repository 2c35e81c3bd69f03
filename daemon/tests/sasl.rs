//! SASL over the binary protocol (`-S`) side by side with memcached 1.6.18 `-S`: Debian's
//! memcached is built without MEMCACHED_SASL_PWDB support, so it gets Cyrus SASL configured
//! here (a sasldb written by `saslpasswd2`, PLAIN only) and ferrocached the same user in its
//! `MEMCACHED_SASL_PWDB` file; every exchange, one request at a time, must come back as the
//! same bytes with the connection closed where memcached closes it. Then a real client
//! (pylibmc, binary with username/password), the counters, and start-up refusals. memcached
//! and saslpasswd2 (Debian sasl2-bin, scripts/install-test-deps.sh) must be installed: the
//! test fails loudly without them.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{Server, free_port, is_root, run};

/// A request frame with opaque 0x11223344.
fn frame(opcode: u8, key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = (key.len() + value.len()) as u32;
    let mut bytes = vec![0x80, opcode];
    bytes.extend_from_slice(&(key.len() as u16).to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    bytes.extend_from_slice(&body.to_be_bytes());
    bytes.extend_from_slice(&0x1122_3344u32.to_be_bytes());
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(key);
    bytes.extend_from_slice(value);
    bytes
}

/// A set of `key` with extras (flags, exptime 0).
fn set(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut bytes = frame(0x01, key, value);
    bytes[4] = 8;
    let body = (8 + key.len() + value.len()) as u32;
    bytes[8..12].copy_from_slice(&body.to_be_bytes());
    let mut with_extras = bytes[..24].to_vec();
    with_extras.extend_from_slice(&[0; 8]);
    with_extras.extend_from_slice(&bytes[24..]);
    with_extras
}

/// Sends each step and collects what comes back within 150 ms; stops at a close.
fn session(addr: SocketAddr, steps: &[Vec<u8>]) -> Vec<(Vec<u8>, bool)> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(150)))
        .unwrap();
    let mut replies = Vec::new();
    for step in steps {
        if stream.write_all(step).is_err() {
            replies.push((Vec::new(), true));
            break;
        }
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        let closed = loop {
            match stream.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        replies.push((got, closed));
        if closed {
            break;
        }
    }
    replies
}

fn scripts() -> Vec<Vec<Vec<u8>>> {
    let ok = || frame(0x21, b"PLAIN", b"\0alice\0secret");
    vec![
        vec![frame(0x20, b"", b"")],
        vec![frame(0x20, b"", b"x")],
        vec![ok(), frame(0x00, b"k", b""), frame(0x0a, b"", b"")],
        vec![frame(0x21, b"plain", b"\0alice\0secret")],
        vec![
            frame(0x21, b"PLAIN", b"\0alice\0wrong"),
            frame(0x00, b"k", b""),
        ],
        vec![frame(0x21, b"PLAIN", b"\0nobody\0secret")],
        vec![frame(0x21, b"PLAIN", b"alice\0alice\0secret")],
        vec![frame(0x21, b"PLAIN", b"bob\0alice\0secret")],
        vec![frame(0x21, b"PLAIN", b"\0 alice \0secret")],
        vec![frame(0x21, b"PLAIN", b"alicesecret")],
        vec![frame(0x21, b"PLAIN", b"\0alicesecret")],
        vec![frame(0x21, b"PLAIN", b"\0alice\0secret\0")],
        vec![frame(0x21, b"PLAIN", b"\0\0secret")],
        vec![frame(0x21, b"CRAM-MD5", b"x")],
        vec![frame(0x21, &[b'X'; 33], b"x")],
        // Refused before auth: a set (answered before its value), a noop after version.
        vec![set(b"k", b"v")],
        vec![set(b"k", &[b'v'; 5000])[..40].to_vec()],
        vec![frame(0x0b, b"", b""), frame(0x0a, b"", b"")],
        vec![frame(0xee, b"", b"")],
        vec![frame(0x22, b"PLAIN", b"\0alice\0secret")],
        vec![
            frame(0x21, b"PLAIN", b""),
            frame(0x22, b"PLAIN", b"\0alice\0secret"),
            frame(0x22, b"PLAIN", b"\0alice\0secret"),
        ],
        vec![
            frame(0x21, b"PLAIN", b""),
            frame(0x22, b"PLAIN", b"\0alice\0bad"),
            frame(0x22, b"PLAIN", b"\0alice\0secret"),
            frame(0x0a, b"", b""),
        ],
        vec![frame(0x21, b"PLAIN", b""), frame(0x22, b"PLAIN", b"")],
        vec![
            ok(),
            frame(0x22, b"PLAIN", b"\0alice\0secret"),
            frame(0x0a, b"", b""),
        ],
        vec![ok(), frame(0x20, b"", b""), frame(0x0a, b"", b"")],
        vec![
            ok(),
            frame(0x21, b"PLAIN", b"\0alice\0x"),
            frame(0x0a, b"", b""),
        ],
        // The text protocol: a short line waits for a header; a long one is a bad magic.
        vec![b"version\r\n".to_vec()],
        vec![b"get a_key_long_enough_for_a_header\r\n".to_vec()],
    ]
}

/// memcached -S with Cyrus SASL: PLAIN only, alice/secret in a sasldb.
struct CyrusMemcached {
    child: Child,
    addr: SocketAddr,
}

impl CyrusMemcached {
    fn start(dir: &Path) -> CyrusMemcached {
        let db = dir.join("sasldb2");
        let _ = std::fs::remove_file(&db);
        let mut saslpasswd = Command::new("saslpasswd2")
            .args(["-p", "-c", "-a", "memcached", "-f"])
            .arg(&db)
            .arg("alice")
            .stdin(Stdio::piped())
            .spawn()
            .expect("saslpasswd2 is needed for this test: apt-get install sasl2-bin (scripts/install-test-deps.sh)");
        saslpasswd
            .stdin
            .take()
            .unwrap()
            .write_all(b"secret")
            .unwrap();
        assert!(saslpasswd.wait().unwrap().success(), "saslpasswd2 failed");
        readable(&db);
        let conf = dir.join("memcached.conf");
        std::fs::write(
            &conf,
            format!(
                "mech_list: plain\npwcheck_method: auxprop\nauxprop_plugin: sasldb\n\
                 sasldb_path: {}\n",
                db.display()
            ),
        )
        .unwrap();
        readable(&conf);
        let port = free_port();
        let mut command = Command::new("memcached");
        command
            .args(["-S", "-U", "0", "-l", "127.0.0.1", "-p", &port.to_string()])
            .env("SASL_CONF_PATH", dir)
            .env_remove("MEMCACHED_SASL_PWDB")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if is_root() {
            command.args(["-u", "nobody"]);
        }
        let child = command
            .spawn()
            .expect("memcached 1.6.18 is needed for this test (scripts/install-test-deps.sh)");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "memcached -S did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        CyrusMemcached { child, addr }
    }
}

impl Drop for CyrusMemcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// memcached runs as nobody when the tests run as root.
fn readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn test_dir(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sasl-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn ours(dir: &Path) -> Server {
    let pwdb = dir.join("pwdb");
    std::fs::write(&pwdb, "alice:secret\n").unwrap();
    let port = "0";
    Server::start_exact(
        &["-S", "-p", port, "-l", "127.0.0.1"],
        &[("MEMCACHED_SASL_PWDB", pwdb.to_str().unwrap())],
    )
}

#[test]
fn the_sasl_exchange_matches_memcached_byte_for_byte() {
    let dir = test_dir("compare");
    let reference = CyrusMemcached::start(&dir);
    let server = ours(&dir);
    let show = |replies: &[(Vec<u8>, bool)]| {
        replies
            .iter()
            .map(|(bytes, closed)| format!("{bytes:?}{}", if *closed { " CLOSED" } else { "" }))
            .collect::<Vec<_>>()
    };
    for (number, script) in scripts().iter().enumerate() {
        let mine = session(server.addr, script);
        let theirs = session(reference.addr, script);
        assert_eq!(show(&mine), show(&theirs), "script {number}");
    }
}

#[test]
fn pylibmc_logs_in_and_a_wrong_password_is_refused() {
    let dir = test_dir("pylibmc");
    let server = ours(&dir);
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/pylibmc_sasl_session.py");
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let output = run(
        Command::new(python)
            .arg(&script)
            .args(["127.0.0.1", &server.addr.port().to_string()]),
        Duration::from_secs(60),
        "python3 with pylibmc (Debian python3-pylibmc)",
    );
    assert!(
        output.status.success()
            && String::from_utf8_lossy(&output.stdout).contains("pylibmc sasl session passed"),
        "pylibmc sasl session failed ({}):\n{}\n{}\nserver stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        server.stderr()
    );
    // The counters saw pylibmc's logins: at least one success and the refused one.
    let replies = session(
        server.addr,
        &[
            frame(0x21, b"PLAIN", b"\0alice\0secret"),
            frame(0x10, b"", b""),
        ],
    );
    let stats = String::from_utf8_lossy(&replies[1].0).into_owned();
    let stat = |name: &str| -> u64 {
        let at = stats
            .find(name)
            .unwrap_or_else(|| panic!("{name} in {stats:?}"))
            + name.len();
        stats[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    };
    assert!(
        stat("auth_cmds") >= 3 && stat("auth_errors") >= 1,
        "{stats:?}"
    );
    let settings = session(
        server.addr,
        &[
            frame(0x21, b"PLAIN", b"\0alice\0secret"),
            frame(0x10, b"settings", b""),
        ],
    );
    assert!(
        settings[1]
            .0
            .windows(20)
            .any(|w| w == b"auth_enabled_saslyes"),
        "{:?}",
        String::from_utf8_lossy(&settings[1].0)
    );
}

#[test]
fn start_up_refusals_are_one_line_and_exit_64() {
    let dir = test_dir("refusals");
    let missing = dir.join("no-such-pwdb");
    let cases: [(&[&str], Option<&Path>, &str); 4] = [
        (&["-S"], None, "MEMCACHED_SASL_PWDB"),
        (&["-S"], Some(&missing), "no-such-pwdb"),
        (
            &["-S", "-B", "ascii"],
            None,
            "You cannot allow the ASCII protocol while using SASL.",
        ),
        (
            &["-S", "-U", "11211"],
            None,
            "Cannot enable UDP while using binary SASL authentication.",
        ),
    ];
    for (args, pwdb, expected) in cases {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferrocached"));
        command.args(args).args(["-p", "0", "-l", "127.0.0.1"]);
        command.env_remove("MEMCACHED_SASL_PWDB");
        if let Some(path) = pwdb {
            command.env("MEMCACHED_SASL_PWDB", path);
        }
        let output = run(&mut command, Duration::from_secs(20), "ferrocached");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

//! ASCII authentication (`-Y`) side by side with memcached 1.6.18 `-Y` on the same auth file:
//! every step of the login exchange, one reply at a time, must come back as the same bytes,
//! with the connection left open or closed as memcached leaves it. Then what only ferrocached
//! is asked here: the counters, SIGHUP's reload, `nc` as a user would type it, start-up
//! refusals. memcached must be installed: the test fails loudly without it.

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Client, Reference, Server, signal};

fn auth_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("auth-{name}-{}.txt", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    // memcached runs as nobody when the tests run as root.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

/// Sends each step and waits for its reply (memcached answers only the last of several
/// refused lines that arrive together, so steps go one at a time); a step whose reply is
/// not complete within `quiet` has none. Returns the replies and whether the server closed.
fn session(client: &mut Client, steps: &[&[u8]]) -> Vec<(Vec<u8>, bool)> {
    let mut replies = Vec::new();
    for step in steps {
        client.send(step);
        let mut got = Vec::new();
        client
            .stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut chunk = [0u8; 4096];
        let closed = loop {
            use std::io::Read;
            match client.stream.read(&mut chunk) {
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
    let s = |steps: &[&str]| {
        steps
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect::<Vec<_>>()
    };
    let mut all = vec![
        s(&["get foo\r\n", "get foo\r\n", "quit\r\n", "mn\r\n"]),
        s(&[
            "set a 0 0 12\r\nalice secret\r\n",
            "set k 0 0 1\r\nx\r\n",
            "get k\r\n",
        ]),
        s(&[
            "set a 0 0 11\r\nalice wrong\r\n",
            "get k\r\n",
            "set a 0 0 12\r\nalice secret\r\n",
            "version\r\n",
        ]),
        s(&["set a 0 0 12\r\n", "alice secret\r\n", "version\r\n"]),
        s(&["set a 0 0 12\r\nalice secretXX", "\r\n", "version\r\n"]),
        s(&["set a 0 0 12 noreply\r\nalice secret\r\n", "version\r\n"]),
        s(&[
            "set a 0 0 abc\r\n",
            "set a 0 0 -1\r\n",
            "set a 0 0\r\n",
            "SET a 0 0 12\r\n",
            "set a 0 0 12abc\r\n",
        ]),
        s(&["set a 0 0 4294967308\r\nalice secret\r\n", "version\r\n"]),
        s(&["set a 0 0 4294967295\r\n", "ab", "version\r\n"]),
        // The `\n` left over would join the next step as two lines, which memcached answers as one.
        s(&["set a 0 0 12\r\nbob hunter2\r\n\r\n"]),
        s(&[
            "set a 0 0 2\r\nab\r\n",
            "set a 0 0 0\r\n\r\n",
            "set a 0 0 12\r\nalice\tsecret\r\n",
        ]),
        s(&["set a 0 0 14\r\n alice  secret\r\n", "version\r\n"]),
        s(&["set  a  b c +18\r\nalice secret extra\r\n", "version\r\n"]),
        s(&[
            "set a 0 0 12\r\nalice secret\r\n",
            "set a 0 0 12\r\nalice wrongg\r\n",
            "quit\r\n",
        ]),
        s(&["a\n", "\r\n"]),
        s(&["\n"]),
        s(&["set a 0 0 11\r\nbob hunter2\r\n", "stats detail on\r\n"]),
    ];
    all.push(vec![vec![b'x'; 2048], b"x".to_vec()]);
    all.push(vec![vec![b'x'; 2049]]);
    all.push(vec![
        b"set a 0 0 20000\r\n".to_vec(),
        vec![b'y'; 10_000],
        vec![b'y'; 10_002],
        b"version\r\n".to_vec(),
    ]);
    all
}

#[test]
fn the_login_exchange_matches_memcached_byte_for_byte() {
    let path = auth_file("compare", "alice:secret\nbob:hunter2\n");
    let path_arg = path.display().to_string();
    let ours = Server::start(&["-Y", &path_arg]);
    let reference = Reference::start(&["-Y", &path_arg]);
    for (number, script) in scripts().iter().enumerate() {
        let steps: Vec<&[u8]> = script.iter().map(Vec::as_slice).collect();
        let mine = session(&mut ours.connect(), &steps);
        let theirs = session(&mut reference.connect(), &steps);
        let show = |r: &[(Vec<u8>, bool)]| {
            r.iter()
                .map(|(b, c)| {
                    format!(
                        "{:?}{}",
                        String::from_utf8_lossy(b),
                        if *c { " CLOSED" } else { "" }
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            show(&mine),
            show(&theirs),
            "script {number}: {:?}",
            String::from_utf8_lossy(&script.concat()[..script.concat().len().min(80)])
        );
    }
    // What memcached says about itself with -Y.
    let settings = ours.connect().call(
        b"set a 0 0 12\r\nalice secret\r\nstats settings\r\n",
        b"END\r\n",
    );
    assert!(
        settings.contains(&format!("STAT auth_enabled_ascii {path_arg}\r\n")),
        "{settings}"
    );
}

#[test]
fn logins_are_counted_and_the_file_reloads_on_sighup() {
    let path = auth_file("reload", "alice:secret\n");
    let server = Server::start(&["-Y", &path.display().to_string()]);
    let mut failed = server.connect();
    assert_eq!(
        failed.call(b"set x 0 0 9\r\nalice bad\r\n", b"\r\n"),
        "CLIENT_ERROR authentication failure\r\n"
    );
    let mut alice = server.connect();
    assert_eq!(
        alice.call(b"set x 0 0 12\r\nalice secret\r\n", b"\r\n"),
        "STORED\r\n"
    );
    let stats = alice.call(b"stats\r\n", b"END\r\n");
    assert!(
        stats.contains("STAT auth_cmds 2\r\n") && stats.contains("STAT auth_errors 1\r\n"),
        "{stats}"
    );

    // A new file: bob may log in, alice no longer; alice's open connection stays logged in.
    std::fs::write(&path, "bob:hunter2\n").unwrap();
    signal(server.pid(), "HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = server
            .connect()
            .call(b"set x 0 0 11\r\nbob hunter2\r\n", b"\r\n");
        if reply == "STORED\r\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the auth file"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        server
            .connect()
            .call(b"set x 0 0 12\r\nalice secret\r\n", b"\r\n"),
        "CLIENT_ERROR authentication failure\r\n"
    );
    assert_eq!(alice.call(b"version\r\n", b"\r\n"), "VERSION 1.6.18\r\n");

    // A malformed file at reload keeps the entries in use.
    std::fs::write(&path, "bob:hunter2\n\nnocolon\n").unwrap();
    signal(server.pid(), "HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.stderr().contains("keeping the auth entries in use") {
        assert!(Instant::now() < deadline, "{}", server.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        server
            .connect()
            .call(b"set x 0 0 11\r\nbob hunter2\r\n", b"\r\n"),
        "STORED\r\n"
    );
}

#[test]
fn nc_logs_in_as_a_user_would() {
    let path = auth_file("nc", "alice:secret\n");
    let server = Server::start(&["-Y", &path.display().to_string()]);
    let mut nc = Command::new("nc")
        .args(["-N", "127.0.0.1", &server.addr.port().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("nc (netcat-openbsd, scripts/install-test-deps.sh)");
    nc.stdin
        .take()
        .unwrap()
        .write_all(b"get k\r\nset login 0 0 12\r\nalice secret\r\nset k 0 0 2\r\nhi\r\nget k\r\n")
        .unwrap();
    let output = nc.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "CLIENT_ERROR unauthenticated\r\nSTORED\r\nSTORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n"
    );
}

#[test]
fn start_up_refusals_are_memcacheds() {
    let good = auth_file("startup", "alice:secret\n");
    let malformed = auth_file("malformed", "alice:secret\n\n");
    let missing = good.with_extension("missing");
    for (args, expected) in [
        (
            vec!["-Y".to_string(), malformed.display().to_string()],
            format!(
                "Authfile [{}] has a malformed entry. Should be 'user:password'",
                malformed.display()
            ),
        ),
        (
            vec!["-Y".to_string(), missing.display().to_string()],
            format!(
                "Could not open authfile [{}] for reading, error ",
                missing.display()
            ),
        ),
        (
            vec![
                "-Y".to_string(),
                good.display().to_string(),
                "-B".into(),
                "binary".into(),
            ],
            "You cannot allow the BINARY protocol while using ascii authentication tokens."
                .to_string(),
        ),
        (
            vec![
                "-Y".to_string(),
                good.display().to_string(),
                "-U".into(),
                "11211".into(),
            ],
            "Cannot use UDP with ascii authentication enabled (-U 0 to disable)".to_string(),
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_ferrocached"))
            .args(["-p", "0"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&expected) && stderr.trim_end().lines().count() == 1,
            "{args:?}: {stderr}"
        );
    }
}

//! Real clients against the real binary: libmemcached's conformance tool `memccapable` must pass
//! all of its ASCII tests, and the pymemcache library must get through a whole session. Both
//! tools are installed by `scripts/install-test-deps.sh`; a missing one fails the test loudly,
//! it is never skipped.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::Server;

/// Runs a command with a deadline, so a hung tool fails the test instead of stalling the suite.
fn run(command: &mut Command, within: Duration, what: &str) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {what}: {e}; run scripts/install-test-deps.sh to install it")
        });
    let deadline = Instant::now() + within;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("collect output");
            panic!(
                "{what} did not finish within {within:?}:\n{}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect output")
}

#[test]
fn memccapable_passes_every_ascii_test() {
    let server = Server::start(&["-t", "2"]);
    let port = server.addr.port().to_string();
    let output = run(
        Command::new("memccapable").args(["-h", "127.0.0.1", "-p", &port, "-a"]),
        Duration::from_secs(120),
        "memccapable (Debian libmemcached-tools)",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let passed = stdout.lines().filter(|l| l.ends_with("[pass]")).count();
    assert!(
        output.status.success() && stdout.contains("All tests passed") && passed == 27,
        "memccapable: {} ({passed} of 27 passed)\n{stdout}\n{stderr}\nserver stderr:\n{}",
        output.status,
        server.stderr()
    );
}

#[test]
fn pymemcache_session() {
    let server = Server::start(&["-t", "2"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/pymemcache_session.py");
    // Debian's python3-pymemcache lives in the system interpreter's path; a pyenv or venv
    // `python3` earlier on PATH may not see it.
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
        "python3 with pymemcache (Debian python3-pymemcache)",
    );
    assert!(
        output.status.success(),
        "pymemcache session failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("pymemcache session passed"));
}

//! Real clients against the real binary: libmemcached's conformance tool `memccapable` must pass
//! all of its ASCII and binary tests, and the pymemcache library must get through a whole session. Both
//! tools are installed by `scripts/install-test-deps.sh`; a missing one fails the test loudly,
//! it is never skipped.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{Server, run};

#[test]
fn memccapable_passes_every_ascii_and_binary_test() {
    let server = Server::start(&["-t", "2"]);
    let port = server.addr.port().to_string();
    let output = run(
        Command::new("memccapable").args(["-h", "127.0.0.1", "-p", &port]),
        Duration::from_secs(120),
        "memccapable (Debian libmemcached-tools)",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let passed = stdout.lines().filter(|l| l.ends_with("[pass]")).count();
    assert!(
        output.status.success() && stdout.contains("All tests passed") && passed == 54,
        "memccapable: {} ({passed} of 54 passed)\n{stdout}\n{stderr}\nserver stderr:\n{}",
        output.status,
        server.stderr()
    );
}

/// Runs `tests/clients/<script>` with the system Python against a fresh server and demands
/// that it prints `<library> session passed`.
fn python_session(script: &str, library: &str, package: &str, server_args: &[&str]) {
    let server = Server::start(server_args);
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    // Debian's python3-* packages live in the system interpreter's path; a pyenv or venv
    // `python3` earlier on PATH may not see them.
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
        &format!("python3 with {library} (Debian {package})"),
    );
    assert!(
        output.status.success(),
        "{library} session failed ({}):\n{}\n{}\nserver stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        server.stderr()
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains(&format!("{library} session passed")));
}

#[test]
fn pymemcache_session() {
    python_session(
        "pymemcache_session.py",
        "pymemcache",
        "python3-pymemcache",
        &["-t", "2"],
    );
}

#[test]
fn pylibmc_binary_session() {
    // -B binary: a client that fell back to the text protocol would be refused.
    python_session(
        "pylibmc_binary_session.py",
        "pylibmc binary",
        "python3-pylibmc",
        &["-t", "2", "-B", "binary"],
    );
}

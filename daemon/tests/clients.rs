//! Real clients against the real binary: libmemcached's conformance tool `memccapable` must pass
//! all of its ASCII tests, and the pymemcache library must get through a whole session. Both
//! tools are installed by `scripts/install-test-deps.sh`; a missing one fails the test loudly,
//! it is never skipped.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{Server, run};

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

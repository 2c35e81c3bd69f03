//! Helpers the client's integration tests share: server processes on ephemeral ports, started
//! and awaited by polling connects (never fixed sleeps), stopped by PID.

#![allow(dead_code)] // each test file uses a different part

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A port free right now on 127.0.0.1 (the kernel's pick; another process could take it
/// before the server binds, which only makes a test fail, never pass wrongly).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// A server process, killed by PID when dropped.
pub struct ServerProcess {
    pub name: String,
    pub port: u16,
    child: Child,
}

impl ServerProcess {
    /// Starts `program args` and waits until `127.0.0.1:port` accepts connections.
    pub fn start(program: &Path, args: &[String], port: u16) -> ServerProcess {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file(program, port))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let mut process = ServerProcess {
            name: program.display().to_string(),
            port,
            child,
        };
        process.wait_ready();
        process
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                panic!("{} exited before listening: {status}\n{log}", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "{} did not listen on port {} within 20 s",
                self.name,
                self.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Where the process's stderr went.
    pub fn log_path(&self) -> PathBuf {
        log_path(Path::new(&self.name), self.port)
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sends `signal` (`HUP`, `KILL` ...) with kill(1), by PID.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {}", self.child.id());
    }

    /// Waits for the process to exit (after a signal that ends it).
    pub fn reap(&mut self) {
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_path(program: &Path, port: u16) -> PathBuf {
    let name = program
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("server");
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{port}.log"))
}

/// stderr of a test server goes to a file under the target's tmp dir, not the test's output.
fn log_file(program: &Path, port: u16) -> Stdio {
    match std::fs::File::create(log_path(program, port)) {
        Ok(file) => Stdio::from(file),
        Err(_) => Stdio::null(),
    }
}

/// memcached (Debian's 1.6.18) on an ephemeral port.
pub fn start_memcached() -> ServerProcess {
    let port = free_port();
    let args = [
        "-u",
        "nobody",
        "-U",
        "0",
        "-l",
        "127.0.0.1",
        "-t",
        "1",
        "-m",
        "64",
        "-p",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([port.to_string()])
    .collect::<Vec<_>>();
    let program = which("memcached")
        .expect("memcached not found on PATH: install it with scripts/install-test-deps.sh");
    ServerProcess::start(&program, &args, port)
}

/// The `ferrocached` binary of this workspace, built with `cargo build -p ferrocached` in the
/// same profile as this test when it is missing or older than it. Integration tests of another
/// package get no `CARGO_BIN_EXE_` for it, so it is located beside the test executable:
/// `target/<profile>/deps/<test>` has the daemon at `target/<profile>/ferrocached`. The env var
/// `FERROCACHED` overrides it.
pub fn ferrocached_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(build_ferrocached).clone()
}

fn build_ferrocached() -> PathBuf {
    if let Some(path) = std::env::var_os("FERROCACHED") {
        return PathBuf::from(path);
    }
    let test_exe = std::env::current_exe().expect("test executable path");
    let profile_dir = test_exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let binary = profile_dir.join("ferrocached");
    let profile = profile_dir
        .file_name()
        .and_then(|p| p.to_str())
        .expect("profile directory name");
    // Always ask cargo: it rebuilds only if the daemon's sources changed, and a stale binary
    // would test old code. (cargo test has released the target directory's lock by the time
    // tests run, so this nested build does not wait on it.)
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut build = Command::new(cargo);
    build
        .args(["build", "-p", "ferrocached", "--bin", "ferrocached"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match profile {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        other => {
            build.args(["--profile", other]);
        }
    }
    let status = build.status().expect("run cargo build -p ferrocached");
    assert!(status.success(), "cargo build -p ferrocached failed");
    assert!(
        binary.exists(),
        "{} missing after the build",
        binary.display()
    );
    binary
}

/// ferrocached on an ephemeral port.
pub fn start_ferrocached() -> ServerProcess {
    start_ferrocached_on(free_port(), &[])
}

/// ferrocached on `port` (a restart on the same port, say) with `extra` arguments.
pub fn start_ferrocached_on(port: u16, extra: &[String]) -> ServerProcess {
    let args = ["-l", "127.0.0.1", "-t", "1", "-m", "64", "-p"]
        .iter()
        .map(|s| s.to_string())
        .chain([port.to_string()])
        .chain(extra.iter().cloned())
        .collect::<Vec<_>>();
    ServerProcess::start(&ferrocached_binary(), &args, port)
}

/// The first `program` on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

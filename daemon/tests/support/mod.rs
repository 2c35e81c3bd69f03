//! Test support: start the real `ferrocached` (and, for side-by-side tests, memcached 1.6.18)
//! on ephemeral loopback ports, talk to it over TCP as clients do, and stop it by PID.
//!
//! Readiness is observed, never slept for: ferrocached prints its start-up line with the port
//! the kernel chose (`-p 0`); memcached writes its ports file. A server still running when its
//! handle drops is killed.

#![allow(dead_code)] // Each test binary uses a different part of this module.

pub mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running ferrocached.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts ferrocached on 127.0.0.1 with a kernel-chosen port and `args`.
    pub fn start(args: &[&str]) -> Server {
        let mut all = vec!["-p", "0", "-l", "127.0.0.1"];
        all.extend_from_slice(args);
        Self::start_exact(&all, &[])
    }

    /// Starts ferrocached with exactly `args` and extra environment variables.
    pub fn start_exact(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferrocached"));
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("cannot start ferrocached");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let reader = BufReader::new(child.stderr.take().expect("stderr is piped"));
        let lines = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut port_sent = false;
            for line in reader.lines().map_while(Result::ok) {
                // Kept before the port is reported, so `stderr()` already shows the line.
                let listening = (!port_sent && line.contains("listening on "))
                    .then(|| listening_address(&line));
                lines.lock().unwrap().push(line);
                if let Some(addr) = listening {
                    let _ = port_tx.send(addr);
                    port_sent = true;
                }
            }
        });
        // A server listening only on a UNIX socket has no TCP address: 0.0.0.0:0 stands in.
        let addr = match port_rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "ferrocached did not report listening (exit {status:?}); stderr:\n{}",
                    stderr.lock().unwrap().join("\n")
                );
            }
        };
        Server {
            child: Some(child),
            addr,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// A connected client with timeouts.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// What the daemon has printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        signal(child.id(), "TERM");
        wait_with_timeout(&mut child, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("ferrocached ignored SIGTERM; stderr:\n{}", self.stderr()))
    }

    /// Waits for the process to exit by itself (after `shutdown`).
    pub fn wait_exit(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        wait_with_timeout(&mut child, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("ferrocached did not exit; stderr:\n{}", self.stderr()))
    }

    /// Resident memory of the process in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// Whether the process is still running.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The address in ferrocached's start-up line ("listening on tcp:127.0.0.1:PORT").
fn listening_address(line: &str) -> Option<SocketAddr> {
    let rest = line.split("listening on tcp:").nth(1)?;
    let end = rest.find([',', ';', ' ']).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill(1) is available");
    assert!(status.success(), "kill -{name} {pid} failed");
}

pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs a command with a deadline, so a hung tool fails the test instead of stalling the suite.
pub fn run(command: &mut Command, within: Duration, what: &str) -> Output {
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

pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process exists");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// memcached 1.6.18, the reference, for side-by-side tests. Fails loudly if it is missing.
pub struct Reference {
    child: Option<Child>,
    pub addr: SocketAddr,
}

impl Reference {
    pub fn start(args: &[&str]) -> Reference {
        Self::start_on(args, 0)
    }

    /// memcached also serving UDP on `udp_port`.
    pub fn start_with_udp(udp_port: u16) -> Reference {
        Self::start_on(&[], udp_port)
    }

    /// Tests run in parallel, so two can draw the same free port: a connect alone could reach
    /// the other test's server. So readiness is memcached's own word, the ports file it writes
    /// once it listens (`MEMCACHED_PORT_FILENAME`), and a memcached that lost its port to
    /// another process (it exits) is started again on another.
    fn start_on(args: &[&str], udp_port: u16) -> Reference {
        for _ in 0..5 {
            if let Some(reference) = Self::try_start_on(args, udp_port) {
                return reference;
            }
        }
        panic!("memcached could not bind a free port in 5 tries");
    }

    fn try_start_on(args: &[&str], udp_port: u16) -> Option<Reference> {
        let port = free_port();
        let ports_file = std::env::temp_dir().join(format!(
            "ferrocache-reference-{}-{port}",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&ports_file);
        let mut command = Command::new("memcached");
        command
            .args([
                "-p",
                &port.to_string(),
                "-U",
                &udp_port.to_string(),
                "-l",
                "127.0.0.1",
            ])
            .args(args)
            .env("MEMCACHED_PORT_FILENAME", &ports_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if is_root() {
            command.args(["-u", "nobody"]);
        }
        let mut child = command
            .spawn()
            .expect("memcached 1.6.18 is needed for this test: apt-get install memcached (scripts/install-test-deps.sh)");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + START_TIMEOUT;
        while !ports_file.exists() {
            if child.try_wait().expect("memcached's status").is_some() {
                return None; // the port was taken between our probe and its bind
            }
            assert!(
                Instant::now() < deadline,
                "memcached did not start listening on {addr}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = std::fs::remove_file(&ports_file);
        Some(Reference {
            child: Some(child),
            addr,
        })
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether the tests run as root (memcached then needs `-u nobody`).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|ids| ids.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

/// A port nothing listens on right now (for memcached, which cannot report a kernel-chosen one).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

/// A raw text-protocol client.
pub struct Client {
    pub stream: TcpStream,
    buffer: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buffer: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to server");
    }

    /// This end's port (the `rport` servers report for this client).
    pub fn local_port(&self) -> u16 {
        self.stream.local_addr().expect("a connected socket").port()
    }

    /// Reads one line ending in a bare `\n` (as `watch` writes its events), without it.
    pub fn text_line(&mut self) -> String {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let rest = self.buffer.split_off(end + 1);
                let line = std::mem::replace(&mut self.buffer, rest);
                return String::from_utf8_lossy(&line[..end]).into_owned();
            }
            let n = self.stream.read(&mut chunk).expect("read a line");
            assert!(n > 0, "server closed mid-line");
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads until the bytes received end with `terminator` (e.g. `b"END\r\n"`).
    pub fn read_until(&mut self, terminator: &[u8]) -> Vec<u8> {
        let mut chunk = [0u8; 65536];
        while !self.buffer.ends_with(terminator) {
            let n = self.stream.read(&mut chunk).unwrap_or_else(|e| {
                panic!(
                    "reading until {:?}: {e}; got {:?}",
                    String::from_utf8_lossy(terminator),
                    String::from_utf8_lossy(&self.buffer)
                )
            });
            assert!(
                n > 0,
                "server closed before {:?}; got {:?}",
                String::from_utf8_lossy(terminator),
                String::from_utf8_lossy(&self.buffer)
            );
            self.buffer.extend_from_slice(&chunk[..n]);
        }
        std::mem::take(&mut self.buffer)
    }

    /// Reads exactly `n` bytes.
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut chunk = [0u8; 65536];
        while self.buffer.len() < n {
            let got = self.stream.read(&mut chunk).expect("read from server");
            assert!(
                got > 0,
                "server closed after {} of {n} bytes",
                self.buffer.len()
            );
            self.buffer.extend_from_slice(&chunk[..got]);
        }
        let rest = self.buffer.split_off(n);
        std::mem::replace(&mut self.buffer, rest)
    }

    /// Reads one `\r\n`-terminated line.
    pub fn line(&mut self) -> String {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let rest = self.buffer.split_off(end + 2);
                let line = std::mem::replace(&mut self.buffer, rest);
                return String::from_utf8_lossy(&line[..end]).into_owned();
            }
            let n = self.stream.read(&mut chunk).expect("read a line");
            assert!(
                n > 0,
                "server closed mid-line: {:?}",
                String::from_utf8_lossy(&self.buffer)
            );
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends `request` and returns the reply up to and including `terminator`.
    pub fn call(&mut self, request: &[u8], terminator: &[u8]) -> String {
        self.send(request);
        String::from_utf8_lossy(&self.read_until(terminator)).into_owned()
    }

    /// Sends `request` followed by `mn` and returns everything before the `MN` that answers
    /// it: the whole reply to a script whose end cannot be recognised otherwise (errors,
    /// noreply), without waiting on a timer.
    pub fn call_script(&mut self, request: &[u8]) -> Vec<u8> {
        self.send(request);
        self.send(b"mn\r\n");
        let mut reply = self.read_until(b"MN\r\n");
        reply.truncate(reply.len() - 4);
        reply
    }

    /// Reads until the server closes the connection; returns what it sent.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        let _ = self.stream.read_to_end(&mut rest);
        let mut all = std::mem::take(&mut self.buffer);
        all.extend_from_slice(&rest);
        all
    }

    /// Whether the server has closed the connection (reads EOF within the timeout).
    pub fn is_closed_by_server(&mut self, within: Duration) -> bool {
        self.stream.set_read_timeout(Some(within)).unwrap();
        let mut byte = [0u8; 1];
        let closed = loop {
            match self.stream.read(&mut byte) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) => break e.kind() == std::io::ErrorKind::ConnectionReset,
            }
        };
        self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        closed
    }
}

//! The systemd integration, tested with systemd's own tools: the units verify and are hardened
//! (exposure <= 2.0), socket activation serves the socket `systemd-socket-activate` passes,
//! the notify protocol says READY=1, STOPPING=1 and WATCHDOG=1, the cache's memory goes to the
//! file descriptor store (FDSTORE=1) and comes back warm after a restart (driven by
//! `support/fake_systemd.py`, which speaks systemd's side of both protocols), and
//! `systemd/install.sh` stages a tree under DESTDIR/PREFIX.
//!
//! The tools come from Debian's `systemd` package, which `scripts/install-test-deps.sh`
//! installs; a missing tool fails the test loudly.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{IO_TIMEOUT, Server, free_port, signal, wait_with_timeout};

const UNITS: [&str; 3] = [
    "ferrocached.service",
    "ferrocached@.service",
    "ferrocached.socket",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("daemon/ sits in the workspace")
        .to_path_buf()
}

/// A fresh directory for one test's files.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

fn tool(name: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "{name} is needed for this test: apt-get install systemd (scripts/install-test-deps.sh)"
    );
    Command::new(name)
}

/// The units with ExecStart pointing at the binary under test, as systemd-analyze checks that
/// the command exists.
fn units_for_this_build(dir: &Path) -> Vec<PathBuf> {
    UNITS
        .iter()
        .map(|unit| {
            let text = std::fs::read_to_string(repo_root().join("systemd").join(unit))
                .unwrap_or_else(|e| panic!("systemd/{unit}: {e}"));
            let path = dir.join(unit);
            std::fs::write(
                &path,
                text.replace(
                    "/usr/local/bin/ferrocached",
                    env!("CARGO_BIN_EXE_ferrocached"),
                ),
            )
            .unwrap();
            path
        })
        .collect()
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let dir = scratch_dir("verify");
    let units = units_for_this_build(&dir);
    let output = tool("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .expect("run systemd-analyze");
    let complaints = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify: {complaints}"
    );
}

#[test]
fn services_are_hardened_to_an_exposure_of_two_or_less() {
    let dir = scratch_dir("security");
    let units = units_for_this_build(&dir);
    for unit in units
        .iter()
        .filter(|u| u.extension().is_some_and(|e| e == "service"))
    {
        let output = tool("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(unit)
            .output()
            .expect("run systemd-analyze security");
        let report = String::from_utf8_lossy(&output.stdout);
        let exposure: f64 = report
            .lines()
            .find_map(|line| line.split("Overall exposure level for").nth(1))
            .and_then(|rest| rest.split(':').nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|number| number.parse().ok())
            .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
        assert!(exposure <= 2.0, "{}: exposure {exposure}", unit.display());
    }
}

/// Reads from `stream` until the bytes end with `terminator`.
fn read_until(stream: &mut TcpStream, terminator: &[u8]) -> Vec<u8> {
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    while !reply.ends_with(terminator) {
        let n = stream.read(&mut chunk).expect("read a reply");
        assert!(n > 0, "closed; got {:?}", String::from_utf8_lossy(&reply));
        reply.extend_from_slice(&chunk[..n]);
    }
    reply
}

#[test]
fn socket_activation_serves_the_inherited_socket() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    // systemd-socket-activate binds, waits for the first connection, then execs the daemon in
    // its own process with LISTEN_FDS=1: its PID is the daemon's.
    let mut activator = tool("systemd-socket-activate")
        .args([
            "-l",
            &listen,
            "--fdname=memcache",
            env!("CARGO_BIN_EXE_ferrocached"),
        ])
        // The port flag must be ignored: the inherited socket is what is served.
        .args(["-p", "1", "-t", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start systemd-socket-activate");
    let addr: SocketAddr = listen.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stream = loop {
        match TcpStream::connect(addr) {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("systemd-socket-activate never listened on {addr}: {e}"),
        }
    };
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
        .write_all(b"set activated 5 0 3\r\nyes\r\nget activated\r\n")
        .unwrap();
    let reply = read_until(&mut stream, b"END\r\n");
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "STORED\r\nVALUE activated 5 3\r\nyes\r\nEND\r\n"
    );
    // A second client is served by the same daemon on the same socket.
    let mut second = TcpStream::connect(addr).unwrap();
    second.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    second.write_all(b"get activated\r\n").unwrap();
    assert!(read_until(&mut second, b"END\r\n").starts_with(b"VALUE activated 5 3"));

    signal(activator.id(), "TERM");
    let status = wait_with_timeout(&mut activator, Duration::from_secs(5))
        .expect("the activated daemon exits on SIGTERM");
    assert!(status.success(), "exit status {status:?}");
}

/// Collects datagrams from the notify socket until `done` holds for the lines seen so far.
fn wait_for_notifications(
    socket: &UnixDatagram,
    seen: &mut Vec<String>,
    what: &str,
    done: impl Fn(&[String]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buffer = [0u8; 4096];
    while !done(seen) {
        assert!(
            Instant::now() < deadline,
            "no {what} on the notify socket; got {seen:?}"
        );
        if let Ok(n) = socket.recv(&mut buffer) {
            let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
            seen.extend(message.lines().map(str::to_string));
        }
    }
}

fn count(seen: &[String], line: &str) -> usize {
    seen.iter().filter(|seen| *seen == line).count()
}

#[test]
fn notify_socket_hears_ready_watchdog_and_stopping() {
    let dir = scratch_dir("notify");
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let server = Server::start_exact(
        &["-p", "0", "-l", "127.0.0.1", "-t", "2"],
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            // 400 ms: pings every 200 ms.
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut seen = Vec::new();
    wait_for_notifications(&socket, &mut seen, "READY=1", |s| count(s, "READY=1") == 1);
    assert!(
        seen.iter()
            .any(|m| m.starts_with("STATUS=listening on tcp:127.0.0.1:")),
        "STATUS names the address: {seen:?}"
    );
    wait_for_notifications(&socket, &mut seen, "three WATCHDOG=1", |s| {
        count(s, "WATCHDOG=1") >= 3
    });
    let status = server.terminate();
    wait_for_notifications(&socket, &mut seen, "STOPPING=1", |s| {
        count(s, "STOPPING=1") == 1
    });
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn install_script_stages_binary_units_and_settings_under_destdir() {
    let dest = scratch_dir("install");
    let status = Command::new("bash")
        .arg(repo_root().join("systemd/install.sh"))
        .env("DESTDIR", &dest)
        .env("PREFIX", "/usr")
        .env("FERROCACHED_BINARY", env!("CARGO_BIN_EXE_ferrocached"))
        .status()
        .expect("run systemd/install.sh");
    assert!(status.success());
    assert!(dest.join("usr/bin/ferrocached").is_file());
    assert!(dest.join("etc/default/ferrocached").is_file());
    for unit in UNITS {
        let text = std::fs::read_to_string(dest.join("usr/lib/systemd/system").join(unit))
            .unwrap_or_else(|e| panic!("{unit} installed: {e}"));
        if unit.ends_with(".service") {
            assert!(
                text.contains("ExecStart=/usr/bin/ferrocached "),
                "{unit}: {text}"
            );
        }
    }
}

/// `support/fake_systemd.py` running the daemon: its stdout lines (`PORT`, `STORED`, `READY`)
/// and its commands on stdin.
struct FakeSystemd {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl FakeSystemd {
    fn start(args: &[&str]) -> FakeSystemd {
        let script = repo_root().join("daemon/tests/support/fake_systemd.py");
        let mut child = tool("python3")
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_ferrocached"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run python3");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("piped");
        let collected = std::sync::Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        let stdout = child.stdout.take().expect("piped");
        FakeSystemd {
            child,
            lines: std::io::BufRead::lines(std::io::BufReader::new(stdout)),
            stderr,
        }
    }

    /// The next line the manager prints.
    fn line(&mut self) -> String {
        match self.lines.next() {
            Some(Ok(line)) => line,
            _ => panic!(
                "fake systemd stopped; its stderr:\n{}",
                self.stderr.lock().unwrap()
            ),
        }
    }

    /// Lines until one that starts with `prefix`, which is returned; the others too.
    fn until(&mut self, prefix: &str) -> (String, Vec<String>) {
        let mut before = Vec::new();
        loop {
            let line = self.line();
            if line.starts_with(prefix) {
                return (line, before);
            }
            before.push(line);
        }
    }

    fn command(&mut self, command: &str) {
        let stdin = self.child.stdin.as_mut().expect("piped");
        writeln!(stdin, "{command}").expect("send a command");
        stdin.flush().expect("send a command");
    }
}

impl Drop for FakeSystemd {
    fn drop(&mut self) {
        // Closing stdin stops the daemon (SIGTERM) and the manager.
        drop(self.child.stdin.take());
        if wait_with_timeout(&mut self.child, Duration::from_secs(20)).is_none() {
            eprintln!("fake systemd did not stop: killed");
        }
    }
}

/// One `stats` value.
fn stat(stream: &mut TcpStream, name: &str) -> String {
    stream.write_all(b"stats\r\n").unwrap();
    let reply = String::from_utf8(read_until(stream, b"END\r\n")).unwrap();
    reply
        .lines()
        .find_map(|line| line.strip_prefix(&format!("STAT {name} ")))
        .unwrap_or_else(|| panic!("no {name} in {reply}"))
        .to_string()
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

#[test]
fn the_fd_store_keeps_the_cache_warm_across_a_restart_but_not_a_kill() {
    let mut systemd = FakeSystemd::start(&["-t", "2", "-U", "0", "-m", "64"]);
    let port: u16 = systemd
        .line()
        .strip_prefix("PORT ")
        .unwrap()
        .parse()
        .unwrap();
    let (_, before_ready) = systemd.until("READY 1");
    assert!(
        before_ready.contains(&"STORED ferrocached-memory".to_string()),
        "the memfd goes to the store before READY=1: {before_ready:?}"
    );
    let mut client = connect(port);
    assert_eq!(stat(&mut client, "restart_cold_reason"), "no_image");
    let mut script = Vec::new();
    for i in 0..1_000 {
        write!(
            script,
            "set key:{i} {i} 0 {}\r\nvalue:{i}\r\n",
            6 + i.to_string().len()
        )
        .unwrap();
    }
    client.write_all(&script).unwrap();
    client.write_all(b"mn\r\n").unwrap();
    read_until(&mut client, b"MN\r\n");
    drop(client);

    // `systemctl restart`: the socket stays open, so a client that connects meanwhile waits
    // in its backlog and is served by the next process.
    systemd.command("restart");
    let mut during = connect(port);
    during.write_all(b"get key:7\r\n").unwrap();
    assert_eq!(
        read_until(&mut during, b"END\r\n"),
        b"VALUE key:7 7 7\r\nvalue:7\r\nEND\r\n"
    );
    let (_, restarted) = systemd.until("READY 2");
    assert!(
        !restarted.iter().any(|line| line.starts_with("STORED")),
        "the memfd came back from the store; no new one: {restarted:?}"
    );
    let mut client = connect(port);
    assert_eq!(stat(&mut client, "restart_warm"), "1");
    assert_eq!(stat(&mut client, "restart_items_recovered"), "1000");
    client.write_all(b"get key:0 key:999\r\n").unwrap();
    assert_eq!(
        read_until(&mut client, b"END\r\n"),
        b"VALUE key:0 0 7\r\nvalue:0\r\nVALUE key:999 999 9\r\nvalue:999\r\nEND\r\n"
    );
    drop(client);

    // A crash (Restart=on-failure starts it again with the same store): cold, and says why.
    systemd.command("kill");
    systemd.until("READY 3");
    let mut client = connect(port);
    assert_eq!(stat(&mut client, "restart_cold_reason"), "not_clean");
    assert_eq!(stat(&mut client, "curr_items"), "0");
    drop(client);
    systemd.command("stop");
    assert_eq!(systemd.until("EXITED").0, "EXITED 0");
}

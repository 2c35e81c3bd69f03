//! db-cache end to end, over a real PostgreSQL (started here in a temporary directory on a
//! free port, as `nobody`, stopped by PID) and over SQLite: the service binary in front of the
//! real ferrocached. Reads and writes work; after an update the next read returns the new row
//! (write-through); 200 concurrent requests for one cold key make exactly one database read
//! with leases (and about 200 with plain cache-aside, which the test also runs); killing
//! ferrocached mid-run turns reads into database reads, not errors.

#[path = "../../client/tests/support/mod.rs"]
mod support;

use ferrocache_examples::db_cache::Stats;
use ferrocache_examples::http_client::{self, HttpConnection, HttpReply};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{ServerProcess, free_port, start_ferrocached};

/// Polls `port` until it accepts, or panics with `log` after 30 s.
fn wait_listening(port: u16, child: &mut Child, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}) before listening:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn log_file(name: &str) -> (PathBuf, Stdio) {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let file = std::fs::File::create(&path).expect("log file");
    (path, Stdio::from(file))
}

/// PostgreSQL from Debian's packages in a fresh data directory, run as `nobody` (postgres
/// refuses root), on a free port; SIGINT (fast shutdown) by PID when dropped.
struct Postgres {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Postgres {
    fn bin_dir() -> PathBuf {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is not installed: run scripts/install-test-deps.sh")
            .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("postgres").is_file() && bin.join("initdb").is_file())
            .collect();
        found.sort();
        found
            .pop()
            .expect("no /usr/lib/postgresql/*/bin/postgres: run scripts/install-test-deps.sh")
    }

    fn as_nobody(program: PathBuf) -> Command {
        let mut command = Command::new("setpriv");
        // setpriv execs the program itself, so the PID spawned is postgres's own.
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(program)
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        command
    }

    fn start() -> Postgres {
        let bin = Self::bin_dir();
        let dir = std::env::temp_dir().join(format!(
            "ferrocache-pg-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        let data = dir.join("data");
        let (init_log, init_out) = log_file("initdb.log");
        let status = Self::as_nobody(bin.join("initdb"))
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .stdout(init_out)
            .stderr(Stdio::null())
            .status()
            .expect("run initdb through setpriv");
        assert!(
            status.success(),
            "initdb failed: {}",
            std::fs::read_to_string(init_log).unwrap_or_default()
        );
        let port = free_port();
        let (log, out) = log_file(&format!("postgres-{port}.log"));
        let mut child = Self::as_nobody(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=20"])
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("start postgres through setpriv");
        wait_listening(port, &mut child, "postgres", &log);
        // Listening is not ready: until recovery ends it answers "the database system is
        // starting up". pg_isready says when it accepts sessions.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(bin.join("pg_isready"))
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-p",
                    &port.to_string(),
                ])
                .status()
                .expect("run pg_isready")
                .success();
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "postgres not ready within 30 s:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Postgres { child, dir, port }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT is postgres's fast shutdown: it stops its backends and exits, where SIGKILL
        // would leave them behind. The PID is still ours: the child is not reaped yet.
        let stopped = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The db-cache binary serving on a free port; killed by PID when dropped.
struct Service {
    child: Child,
    address: SocketAddr,
}

impl Service {
    fn start(cache: &ServerProcess, database: &[String], mode: &str) -> Service {
        let port = free_port();
        let (log, out) = log_file(&format!("db-cache-{port}.log"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_db-cache"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--cache", &cache.address(), "--mode", mode])
            // Few rows keep seeding quick; a 100 ms read makes concurrent misses overlap.
            .args(["--rows", "1000", "--query-delay-ms", "100"])
            .args(database)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("start db-cache");
        wait_listening(port, &mut child, "db-cache", &log);
        Service {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    async fn call(&self, method: &str, path: &str, body: &str) -> HttpReply {
        http_client::request(self.address, method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    async fn stats(&self) -> Stats {
        serde_json::from_slice(&self.call("GET", "/stats", "").await.body).unwrap()
    }

    /// `count` concurrent reads of `/items/{id}`, each on its own connection; the database
    /// reads they made.
    async fn stampede(&self, id: i64, count: usize) -> u64 {
        let before = self.stats().await.db_reads;
        // Connect first, so the 200 requests go out together rather than at connect speed.
        let mut connections = Vec::with_capacity(count);
        for _ in 0..count {
            connections.push(HttpConnection::connect(self.address).await.unwrap());
        }
        let requests: Vec<_> = connections
            .into_iter()
            .map(|mut connection| {
                tokio::spawn(
                    async move { connection.request("GET", &format!("/items/{id}"), "").await },
                )
            })
            .collect();
        for request in requests {
            let reply = request.await.unwrap().unwrap();
            assert_eq!(reply.status, 200, "{}", reply.text());
            assert!(
                reply.text().contains(&format!("\"item {id}\"")),
                "{}",
                reply.text()
            );
        }
        self.stats().await.db_reads - before
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn name_of(reply: &HttpReply) -> String {
    let item: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    item["name"].as_str().unwrap().to_owned()
}

async fn scenario(label: &str, database: Vec<String>) {
    let cache = start_ferrocached();
    let service = Service::start(&cache, &database, "lease");

    // Reads, and write-through: the read after an update returns the new row, from the cache.
    let first = service.call("GET", "/items/1", "").await;
    assert_eq!((first.status, first.cache.as_str()), (200, "loaded"));
    assert_eq!(name_of(&first), "item 1");
    assert_eq!(service.call("GET", "/items/1", "").await.cache, "hit");
    let put = service.call("PUT", "/items/1", "renamed").await;
    assert_eq!(put.status, 200, "{}", put.text());
    let after = service.call("GET", "/items/1", "").await;
    assert_eq!(
        (name_of(&after), after.cache.as_str()),
        ("renamed".to_owned(), "hit")
    );
    assert_eq!(service.call("GET", "/items/999999", "").await.status, 404);

    // Stampede: 200 concurrent requests for one cold key, one database read.
    let with_leases = service.stampede(500, 200).await;
    // The same without leases (plain cache-aside), on another cold key.
    let naive = Service::start(&cache, &database, "naive");
    let without_leases = naive.stampede(600, 200).await;
    println!(
        "{label}: 200 concurrent cold reads -> {with_leases} database read(s) with leases, \
         {without_leases} with plain cache-aside"
    );
    assert_eq!(with_leases, 1);
    assert!(
        without_leases >= 150,
        "cache-aside made only {without_leases} reads"
    );

    // The cache dies mid-run: reads become database reads, not errors; writes still work.
    let before = service.stats().await.db_reads;
    drop(cache);
    let read = service.call("GET", "/items/1", "").await;
    assert_eq!(
        (read.status, read.cache.as_str()),
        (200, "cache-unavailable")
    );
    assert_eq!(name_of(&read), "renamed");
    let put = service
        .call("PUT", "/items/2", "written without a cache")
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    let read = service.call("GET", "/items/2", "").await;
    assert_eq!(name_of(&read), "written without a cache");
    assert!(service.stats().await.db_reads >= before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_cache_over_postgresql() {
    let postgres = Postgres::start();
    scenario("postgresql", vec!["--database-url".into(), postgres.url()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_cache_over_sqlite() {
    let file =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("db-cache-{}.sqlite", free_port()));
    let _ = std::fs::remove_file(&file);
    // A file both service instances open, as two app servers share one database.
    scenario(
        "sqlite",
        vec!["--sqlite".into(), file.display().to_string()],
    )
    .await;
    let _ = std::fs::remove_file(&file);
}

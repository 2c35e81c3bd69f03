//! Every mode of the bench binary, end to end against Debian's memcached 1.6.18 on ephemeral
//! ports (readiness polled, stopped by PID): the JSON reports what the server saw.

use serde_json::Value;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Memcached {
    port: u16,
    child: Child,
}

impl Memcached {
    /// memcached on a fresh ephemeral port. Tests run in parallel, so two can draw the same
    /// port: a connect alone could reach the other test's server (and be refused once that
    /// test stops it). So readiness is memcached's own word, the ports file it writes once it
    /// listens, and a memcached that lost its port to another process is started again.
    fn start(megabytes: u32) -> Memcached {
        for _ in 0..5 {
            if let Some(server) = Memcached::try_start(megabytes) {
                return server;
            }
        }
        panic!("memcached could not bind a free port in 5 tries");
    }

    fn try_start(megabytes: u32) -> Option<Memcached> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("ephemeral port")
            .port();
        let ports_file =
            std::env::temp_dir().join(format!("bench-modes-{}-{port}", std::process::id()));
        let _ = std::fs::remove_file(&ports_file);
        let child = Command::new("memcached")
            .args([
                "-u",
                "nobody",
                "-U",
                "0",
                "-l",
                "127.0.0.1",
                "-t",
                "2",
                "-c",
                "4096",
            ])
            .args(["-m", &megabytes.to_string(), "-p", &port.to_string()])
            .env("MEMCACHED_PORT_FILENAME", &ports_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("memcached not found: install it with scripts/install-test-deps.sh");
        let mut server = Memcached { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ports_file.exists() {
            if server.child.try_wait().unwrap().is_some() {
                return None; // the port was taken between our probe and its bind
            }
            assert!(Instant::now() < deadline, "memcached did not listen");
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = std::fs::remove_file(&ports_file);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "memcached did not accept");
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(server)
    }

    fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bench(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_ferrocache-bench"))
        .args(args)
        .args(["--json", "--no-progress"])
        .output()
        .expect("run ferrocache-bench");
    assert!(
        output.status.success(),
        "ferrocache-bench {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON report")
}

#[test]
fn load_after_prefill_hits_every_key() {
    let server = Memcached::start(64);
    let report = bench(&[
        "-s",
        &server.target(),
        "--prefill",
        "--keys",
        "5000",
        "-c",
        "8",
        "-P",
        "4",
        "--multiget",
        "3",
        "-n",
        "4000",
        "--warmup-requests",
        "500",
    ]);
    assert_eq!(report["requests"], 4000);
    assert_eq!(report["warmup_requests"], 500);
    assert_eq!(report["errors"], 0);
    assert_eq!(report["key_misses"], 0);
    let gets = report["gets"].as_u64().unwrap();
    assert_eq!(report["key_hits"].as_u64().unwrap(), gets * 3);
    assert_eq!(gets + report["sets"].as_u64().unwrap(), 4000);
    assert!(report["latency"]["p99_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_fixed_rate_is_kept() {
    let server = Memcached::start(64);
    let report = bench(&[
        "-s",
        &server.target(),
        "-c",
        "4",
        "-d",
        "1",
        "--rate",
        "2000",
    ]);
    let rate = report["ops_per_sec"].as_f64().unwrap();
    // Wide bounds: a shared CI machine may stall the server for a moment.
    assert!((1500.0..2500.0).contains(&rate), "asked 2000/s, got {rate}");
}

#[test]
fn cache_aside_sets_what_it_missed() {
    let server = Memcached::start(64);
    let report = bench(&[
        "-s",
        &server.target(),
        "--mode",
        "cache-aside",
        "--keys",
        "2000",
        "--key-pattern",
        "zipf",
        "--multiget",
        "20",
        "-c",
        "2",
        "--warmup-requests",
        "200",
        "-n",
        "400",
    ]);
    let misses = report["key_misses"].as_u64().unwrap();
    assert_eq!(report["fill_sets"].as_u64().unwrap(), misses);
    assert_eq!(report["key_hits"].as_u64().unwrap() + misses, 400 * 20);
    // Everything fits in 64 MiB: after a warm-up, popular keys hit.
    assert!(report["hit_ratio"].as_f64().unwrap() > 0.5, "{report}");
}

#[test]
fn fill_stops_at_the_first_evictions() {
    let server = Memcached::start(8);
    let report = bench(&[
        "-s",
        &server.target(),
        "--mode",
        "fill",
        "--key-format",
        "key:0000000000000000000000:{n}",
        "--fill-batch",
        "500",
    ]);
    let evictions = report["evictions"].as_u64().unwrap();
    assert!((1..=500).contains(&evictions), "{report}");
    let items = report["curr_items"].as_u64().unwrap();
    // 8 MiB of ~134-byte items, less memcached's per-slab-class overhead.
    assert!((20_000..70_000).contains(&items), "{report}");
}

#[test]
fn a_fill_of_given_keys_counts_the_newest_still_there() {
    // W9's shape at 8 MiB: 20,000 keys of 1..5000 bytes (about 50 MB) written once.
    let server = Memcached::start(8);
    let target = server.target();
    let report = bench(&[
        "-s",
        &target,
        "--mode",
        "fill",
        "--key-format",
        "k:{n}",
        "--value-size",
        "1-5000",
        "--fill-keys",
        "20000",
        "--newest",
        "1000",
        "--fill-batch",
        "500",
        "--seed",
        "3",
    ]);
    assert_eq!(report["sets_sent"].as_u64().unwrap(), 20_000, "{report}");
    assert!(report["evictions"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["newest_checked"].as_u64().unwrap(), 1000, "{report}");
    // memcached keeps the newest keys of a write-once fill.
    assert_eq!(report["newest_kept"].as_u64().unwrap(), 1000, "{report}");
    let items = report["curr_items"].as_u64().unwrap();
    assert!((1000..20_000).contains(&items), "{report}");
}

#[test]
fn several_targets_share_keys_by_weight() {
    let light = Memcached::start(64);
    let heavy = Memcached::start(64);
    let targets = format!("{},{}:3", light.target(), heavy.target());
    let report = bench(&[
        "-s",
        &targets,
        "--prefill",
        "--keys",
        "8000",
        "-c",
        "4",
        "-P",
        "2",
        "--multiget",
        "10",
        "-n",
        "2000",
    ]);
    assert_eq!(report["key_misses"], 0);
    let count = |server: &Memcached| {
        let client = ferrocache_client::Client::single(&server.target()).unwrap();
        let stats = client
            .stats(ferrocache_protocol::StatsGroup::General)
            .unwrap();
        stats[0]["curr_items"].parse::<f64>().unwrap()
    };
    // Where the ring puts each key depends on the servers' ports, which are random: compare
    // with the ring's own placement, exactly, and check the weight shows.
    let ring = ferrocache_client::KetamaRing::new(&[
        ferrocache_client::ServerSpec::new("127.0.0.1", light.port),
        ferrocache_client::ServerSpec::new("127.0.0.1", heavy.port).with_weight(3),
    ])
    .unwrap();
    let on_heavy = (0..8000)
        .filter(|n| ring.server_for(format!("key:{n}").as_bytes()) == 1)
        .count();
    assert_eq!(
        count(&heavy) as usize,
        on_heavy,
        "heavy holds what the ring names"
    );
    assert_eq!(count(&light) as usize, 8000 - on_heavy);
    let share = on_heavy as f64 / 8000.0;
    assert!((0.6..0.9).contains(&share), "weight 3 of 4 holds {share}");
}

#[test]
fn idle_connections_are_held_and_measured() {
    let server = Memcached::start(64);
    let pid = server.child.id().to_string();
    let report = bench(&[
        "-s",
        &server.target(),
        "--mode",
        "idle",
        "--idle-connections",
        "300",
        "--server-pid",
        &pid,
        "-d",
        "0.2",
    ]);
    assert_eq!(report["connections"], 300);
    assert!(report["kib_per_connection"].as_f64().is_some(), "{report}");
}

#[test]
fn binary_load_after_prefill_hits_every_key() {
    let server = Memcached::start(64);
    for multiget in ["1", "4"] {
        let report = bench(&[
            "-s",
            &server.target(),
            "--protocol",
            "binary",
            "--prefill",
            "--keys",
            "3000",
            "-c",
            "4",
            "-P",
            "8",
            "--multiget",
            multiget,
            "-n",
            "3000",
            "--warmup-requests",
            "300",
        ]);
        assert_eq!(report["protocol"], "binary");
        assert_eq!(report["requests"], 3000);
        assert_eq!(report["errors"], 0, "{report}");
        assert_eq!(report["key_misses"], 0, "{report}");
        let gets = report["gets"].as_u64().unwrap();
        let per_get: u64 = multiget.parse().unwrap();
        assert_eq!(report["key_hits"].as_u64().unwrap(), gets * per_get);
        assert!(
            gets > 2000 && report["sets"].as_u64().unwrap() > 100,
            "{report}"
        );
    }
    // The server saw binary traffic: the sets of the prefill and the run are all there.
    let client = ferrocache_client::Client::single(&server.target()).unwrap();
    let stats = client
        .stats(ferrocache_protocol::StatsGroup::General)
        .unwrap();
    assert_eq!(stats[0]["curr_items"], "3000");
}

#[test]
fn binary_load_counts_misses_on_an_empty_server() {
    let server = Memcached::start(64);
    let report = bench(&[
        "-s",
        &server.target(),
        "--protocol",
        "binary",
        "--ratio",
        "0:1",
        "--multiget",
        "3",
        "-c",
        "2",
        "-P",
        "4",
        "-n",
        "500",
    ]);
    assert_eq!(report["errors"], 0);
    assert_eq!(report["key_hits"], 0);
    assert_eq!(report["key_misses"], 1500);
}

#[test]
fn binary_cache_aside_sets_what_it_missed() {
    let server = Memcached::start(64);
    let report = bench(&[
        "-s",
        &server.target(),
        "--protocol",
        "binary",
        "--mode",
        "cache-aside",
        "--keys",
        "2000",
        "--key-pattern",
        "zipf",
        "--multiget",
        "20",
        "-c",
        "2",
        "--warmup-requests",
        "200",
        "-n",
        "400",
    ]);
    let misses = report["key_misses"].as_u64().unwrap();
    assert_eq!(report["errors"], 0);
    assert_eq!(report["fill_sets"].as_u64().unwrap(), misses);
    assert_eq!(report["key_hits"].as_u64().unwrap() + misses, 400 * 20);
    assert!(report["hit_ratio"].as_f64().unwrap() > 0.5, "{report}");
}

/// A scratch directory of this test process, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("bench-modes-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn intervals_and_plots_cover_the_measured_run() {
    let server = Memcached::start(64);
    let dir = TempDir::new("plots");
    let plots = dir.0.join("run");
    let report = bench(&[
        "-s",
        &server.target(),
        "--prefill",
        "--keys",
        "2000",
        "-c",
        "4",
        "-d",
        "1",
        "--interval",
        "0.25",
        "--plot",
        plots.to_str().unwrap(),
    ]);
    assert_eq!(report["interval_s"], 0.25);
    let intervals = report["intervals"].as_array().unwrap();
    // 1 s in quarters; the last replies may land just after the end.
    assert!((4..=5).contains(&intervals.len()), "{report}");
    let in_intervals: u64 = intervals
        .iter()
        .map(|i| i["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(in_intervals, report["requests"].as_u64().unwrap());
    for interval in intervals {
        let (p50, p999) = (interval["p50_ms"].as_f64(), interval["p999_ms"].as_f64());
        assert!(p50 > Some(0.0) && p50 <= p999, "{interval}");
    }
    let in_buckets: u64 = report["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(in_buckets, report["requests"].as_u64().unwrap());
    for figure in ["percentiles.svg", "histogram.svg"] {
        let svg = std::fs::read_to_string(plots.join(figure)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains(&server.target()),
            "{figure}"
        );
    }

    // Two runs' reports into one figure, as compare.sh draws each workload.
    let mut args = vec![];
    for (name, pipeline) in [("one", "1"), ("eight", "8")] {
        let json = dir.0.join(format!("{name}.json"));
        let output = Command::new(env!("CARGO_BIN_EXE_ferrocache-bench"))
            .args(["-s", &server.target(), "--keys", "2000", "-c", "2", "-P"])
            .args([
                pipeline,
                "-d",
                "0.5",
                "--interval",
                "0.1",
                "--json",
                "--no-progress",
            ])
            .output()
            .unwrap();
        assert!(output.status.success());
        std::fs::write(&json, &output.stdout).unwrap();
        args.push(format!("{name}={}", json.display()));
    }
    let figure = dir.0.join("both.svg");
    let status = Command::new(env!("CARGO_BIN_EXE_ferrocache-bench"))
        .args([
            "plot",
            "--title",
            "pipelines",
            "-o",
            figure.to_str().unwrap(),
        ])
        .args(&args)
        .status()
        .unwrap();
    assert!(status.success());
    let svg = std::fs::read_to_string(&figure).unwrap();
    for text in ["one p99", "eight p99.9", "pipelines: latency histogram"] {
        assert!(svg.contains(text), "no {text:?} in the figure");
    }

    // A report made without --interval has nothing to draw against time: refused, loudly.
    let plain = dir.0.join("plain.json");
    let report = bench(&[
        "-s",
        &server.target(),
        "--keys",
        "2000",
        "-c",
        "2",
        "-n",
        "100",
    ]);
    assert_eq!(report["intervals"].as_array().map(Vec::len), Some(0));
    std::fs::write(&plain, report.to_string()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ferrocache-bench"))
        .args(["plot", "-o", figure.to_str().unwrap()])
        .arg(format!("plain={}", plain.display()))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("--interval"), "{said}");
}

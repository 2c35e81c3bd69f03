//! What a memcached user meets first, side by side with memcached 1.6.18 in the same run: the
//! flags of `memcached -h` and the `-o` options of memcached.c, the start-up errors, the key
//! sets of `stats`, `stats settings`, `stats items` and `stats slabs` (and that
//! prometheus/memcached_exporter can parse their values), `-vv`'s request and reply lines,
//! `MEMCACHED_PORT_FILENAME` with `-d -p 0`, memcached-tool, and the version string as client
//! libraries parse it. memcached, memcached-tool (Debian's memcached package), pymemcache and
//! django-elasticache (a venv under target/) are installed by scripts/install-test-deps.sh; a
//! missing one fails the test loudly.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{Client, Reference, Server, free_port, is_root, run, signal, wait_with_timeout};

const FERROCACHED: &str = env!("CARGO_BIN_EXE_ferrocached");
const MEMCACHED_TOOL: &str = "/usr/share/memcached/scripts/memcached-tool";
const START_TIMEOUT: Duration = Duration::from_secs(20);

fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("surface-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Standard output and error of a command that must finish within `within`.
fn output_of(command: &mut Command, within: Duration, what: &str) -> (Option<i32>, String, String) {
    let output = run(command, within, what);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// What became of a ferrocached started with some command line.
#[derive(Debug)]
enum Launch {
    /// It printed its start-up line (and was stopped); what it printed before.
    Started(String),
    /// It exited by itself with this status and standard error.
    Exited(Option<i32>, String),
}

/// Starts ferrocached with `args`, waits until it either listens or exits, and stops it.
fn launch(args: &[String]) -> Launch {
    let mut child = Command::new(FERROCACHED)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ferrocached");
    let (lines_tx, lines_rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + START_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        match lines_rx.recv_timeout(Duration::from_millis(20)) {
            Ok(line) => {
                let listening = line.contains(" listening on ");
                seen.push(line);
                if listening {
                    signal(child.id(), "TERM");
                    wait_with_timeout(&mut child, Duration::from_secs(5))
                        .expect("ferrocached stops on SIGTERM");
                    return Launch::Started(seen.join("\n"));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = child.try_wait() {
                    // Whatever it printed before exiting: the reader thread sends it and then
                    // drops its sender at the end of stderr (waited for, not assumed done).
                    seen.extend(lines_rx.iter());
                    return Launch::Exited(status.code(), seen.join("\n"));
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("ferrocached {args:?} neither listened nor exited: {seen:?}");
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = wait_with_timeout(&mut child, Duration::from_secs(5))
                    .expect("ferrocached exits once its stderr closes");
                return Launch::Exited(status.code(), seen.join("\n"));
            }
        }
    }
}

/// A flag of `memcached -h`: its short name, long name, and whether it takes a value.
#[derive(Debug, Clone)]
struct Flag {
    short: String,
    long: Option<String>,
    takes_value: bool,
}

/// The flags and `-o` options `memcached -h` documents.
fn memcached_help() -> (Vec<Flag>, Vec<String>) {
    let (code, help, _) = output_of(
        Command::new("memcached").arg("-h"),
        Duration::from_secs(10),
        "memcached 1.6.18 (apt-get install memcached)",
    );
    assert_eq!(code, Some(0), "memcached -h");
    assert!(help.starts_with("memcached 1.6.18"), "{help}");
    let mut flags = Vec::new();
    let mut options = Vec::new();
    for line in help.lines() {
        if let Some(rest) = line.strip_prefix("   - ")
            && let Some((name, _)) = rest.split_once(':')
            && !name.contains(' ')
        {
            options.push(name.to_string());
            continue;
        }
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[0] != b'-' || !bytes[1].is_ascii_alphanumeric() {
            continue;
        }
        let mut tokens = line.split_whitespace();
        let first = tokens.next().unwrap().trim_end_matches(',');
        let rest: Vec<&str> = tokens.collect();
        // memcached's help spells `--napi-ids` as `--napi_ids`; getopt knows the former.
        let long = rest
            .iter()
            .find_map(|t| t.strip_prefix("--"))
            .map(|t| t.split('=').next().unwrap().replace('_', "-"));
        let takes_value = line.contains("=<") || rest.first().is_some_and(|t| t.starts_with('<'));
        flags.push(Flag {
            short: first.trim_start_matches('-').to_string(),
            long,
            takes_value,
        });
    }
    (flags, options)
}

/// memcached.c's `subopts_tokens` (1.6.18), which its `-h` lists only in part, and the extstore
/// options of storage.c.
const SUBOPTS_TOKENS: &[&str] = &[
    "maxconns_fast",
    "hashpower",
    "no_hashexpand",
    "slab_reassign",
    "slab_automove",
    "slab_automove_ratio",
    "slab_automove_window",
    "tail_repair_time",
    "hash_algorithm",
    "lru_crawler",
    "lru_crawler_sleep",
    "lru_crawler_tocrawl",
    "lru_maintainer",
    "hot_lru_pct",
    "warm_lru_pct",
    "hot_max_factor",
    "warm_max_factor",
    "temporary_ttl",
    "idle_timeout",
    "watcher_logbuf_size",
    "worker_logbuf_size",
    "slab_sizes",
    "slab_chunk_max",
    "track_sizes",
    "no_inline_ascii_resp",
    "modern",
    "no_modern",
    "no_chunked_items",
    "no_slab_reassign",
    "no_slab_automove",
    "no_maxconns_fast",
    "inline_ascii_resp",
    "no_lru_crawler",
    "no_lru_maintainer",
    "no_drop_privileges",
    "drop_privileges",
    "resp_obj_mem_limit",
    "read_buf_mem_limit",
    "ssl_chain_cert",
    "ssl_key",
    "ssl_verify_mode",
    "ssl_keyformat",
    "ssl_ciphers",
    "ssl_ca_cert",
    "ssl_wbuf_size",
    "ssl_session_cache",
    "ssl_kernel_tls",
    "ssl_min_version",
    "proxy_config",
    "proxy_uring",
    "sock_cookie_id",
    "ext_page_size",
    "ext_wbuf_size",
    "ext_threads",
    "ext_io_depth",
    "ext_path",
    "ext_item_size",
    "ext_item_age",
    "ext_low_ttl",
    "ext_recache_rate",
    "ext_compact_under",
    "ext_drop_under",
    "ext_max_sleep",
    "ext_max_frag",
    "ext_drop_unread",
    "slab_automove_freeratio",
];

/// A value memcached accepts for each `-o` option that takes one.
fn option_value(name: &str) -> Option<&'static str> {
    Some(match name {
        "hashpower" => "18",
        "slab_automove" => "1",
        "slab_automove_ratio" => "0.5",
        "slab_automove_window" => "10",
        "tail_repair_time" => "60",
        "hash_algorithm" => "murmur3",
        "lru_crawler_sleep" => "100",
        "lru_crawler_tocrawl" => "0",
        "hot_lru_pct" | "warm_lru_pct" => "20",
        "hot_max_factor" | "warm_max_factor" => "0.5",
        "temporary_ttl" => "61",
        "idle_timeout" => "30",
        "watcher_logbuf_size" | "worker_logbuf_size" => "64",
        "slab_sizes" => "96-192-384",
        "slab_chunk_max" => "524288",
        "resp_obj_mem_limit" | "read_buf_mem_limit" => "1",
        "slab_automove_freeratio" => "0.01",
        "ext_path" => "/tmp/extstore:64m",
        "sock_cookie_id" => "1",
        "proxy_config" => "/tmp/proxy.lua",
        "ssl_ciphers" => "TLS_AES_128_GCM_SHA256",
        "ssl_min_version" => "3",
        _ if name.starts_with("ssl_") || name.starts_with("ext_") => "1",
        _ => return None,
    })
}

/// What a flag of memcached's is expected to do here, and the value to give it.
fn flag_case(short: &str, dir: &Path) -> (Expect, Vec<String>) {
    let path = |name: &str| dir.join(name).display().to_string();
    let (expect, value): (Expect, Option<String>) = match short {
        "h" | "V" | "i" => (Expect::Prints, None),
        // -Z alone: TLS needs a certificate (-o ssl_chain_cert), and says so.
        "S" | "Z" | "L" => (Expect::Refused, None),
        "Y" => {
            std::fs::write(dir.join("auth"), "user:password\n").expect("write an auth file");
            (Expect::Starts, Some(path("auth")))
        }
        "e" => (Expect::Starts, Some(path("memory"))),
        "N" => (Expect::Refused, Some("1".into())),
        "p" => (Expect::Starts, Some("0".into())),
        "U" => (Expect::Starts, Some("0".into())),
        "s" => (Expect::Starts, Some(path("sock"))),
        "a" => (Expect::Starts, Some("700".into())),
        "l" => (Expect::Starts, Some("127.0.0.1".into())),
        "u" => (Expect::Starts, Some("nobody".into())),
        "m" => (Expect::Starts, Some("32".into())),
        "c" => (Expect::Starts, Some("100".into())),
        "P" => (Expect::Starts, Some(path("pid"))),
        "f" => (Expect::Starts, Some("1.5".into())),
        "n" => (Expect::Starts, Some("64".into())),
        "t" => (Expect::Starts, Some("2".into())),
        "D" => (Expect::Starts, Some(":".into())),
        "R" => (Expect::Starts, Some("10".into())),
        "b" => (Expect::Starts, Some("128".into())),
        "B" => (Expect::Starts, Some("ascii".into())),
        "I" => (Expect::Starts, Some("2m".into())),
        "o" => (Expect::Starts, Some("modern".into())),
        // -d detaches: the ports-file test runs it.
        "d" => (Expect::Detaches, None),
        _ => (Expect::Starts, None),
    };
    (expect, value.into_iter().collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Starts,
    Refused,
    Prints,
    Detaches,
}

/// The start-up line's usual flags, minus the ones a case sets itself (`case` holds their
/// letters).
fn base_args(case: &str) -> Vec<String> {
    let mut args = Vec::new();
    for (flag, value) in [("p", "0"), ("l", "127.0.0.1"), ("t", "1"), ("m", "16")] {
        if !case.contains(flag) && !(case == "s" && (flag == "p" || flag == "l")) {
            args.push(format!("-{flag}"));
            args.push(value.to_string());
        }
    }
    args
}

/// A refusal is one line that names what is refused and says why.
fn assert_refusal(args: &[String], code: Option<i32>, stderr: &str, names: &str) {
    assert_eq!(code, Some(64), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains(names),
        "{args:?} is not refused by name: {stderr}"
    );
    assert!(
        !stderr.contains("unexpected argument") && stderr.len() > names.len() + 30,
        "{args:?} is refused without a reason: {stderr}"
    );
}

#[test]
fn every_flag_and_extended_option_of_memcached_is_known() {
    let (flags, help_options) = memcached_help();
    assert!(
        flags.len() >= 38,
        "too few flags read from memcached -h: {flags:?}"
    );
    let (code, ours, _) = output_of(
        Command::new(FERROCACHED).arg("-h"),
        Duration::from_secs(10),
        "ferrocached -h",
    );
    assert_eq!(code, Some(0));
    let dir = scratch_dir("flags");
    let mut table = Vec::new();
    for flag in &flags {
        let short = flag.short.as_str();
        // -vv and -vvv are counts of -v.
        if short.chars().all(|c| c == 'v') {
            assert!(ours.contains(&format!("-{short}")), "-h lacks -{short}");
        } else {
            assert!(ours.contains(&format!("-{short}, ")), "-h lacks -{short}");
        }
        if let Some(long) = &flag.long {
            assert!(ours.contains(&format!("--{long}")), "-h lacks --{long}");
        }
        let (expect, value) = flag_case(short, &dir);
        // memcached's -h shows no value for -R and -N, which take one.
        if flag.takes_value {
            assert!(
                !value.is_empty(),
                "-{short} takes a value this test does not give"
            );
        }
        let mut args = base_args(short);
        args.push(format!("-{short}"));
        args.extend(value);
        match expect {
            Expect::Detaches => {}
            Expect::Prints => {
                let (code, stdout, _) = output_of(
                    Command::new(FERROCACHED).args(&args),
                    Duration::from_secs(10),
                    "ferrocached",
                );
                assert_eq!(code, Some(0), "{args:?}");
                assert!(stdout.len() > 10, "{args:?} printed nothing");
            }
            Expect::Starts => match launch(&args) {
                Launch::Started(_) => {}
                other => panic!("{args:?} should start: {other:?}"),
            },
            Expect::Refused => match launch(&args) {
                Launch::Exited(code, stderr) => {
                    assert_refusal(&args, code, &stderr, &format!("-{short}"))
                }
                other => panic!("{args:?} should be refused: {other:?}"),
            },
        }
        table.push(format!("-{short}: {expect:?}"));
    }

    let mut options: BTreeSet<&str> = SUBOPTS_TOKENS.iter().copied().collect();
    for name in &help_options {
        assert!(
            options.contains(name.as_str()),
            "memcached -h lists -o {name}, which this test does not know"
        );
    }
    for name in std::mem::take(&mut options) {
        let (_, disposition) = ours
            .lines()
            .find_map(|line| line.strip_prefix(&format!("  - {name}: ")).map(|d| ((), d)))
            .unwrap_or_else(|| panic!("ferrocached -h does not list -o {name}"));
        let option = match option_value(name) {
            Some(value) => format!("{name}={value}"),
            None => name.to_string(),
        };
        let mut args = base_args("o");
        args.extend(["-o".to_string(), option]);
        match (disposition.split(':').next().unwrap(), launch(&args)) {
            ("refused", Launch::Exited(code, stderr)) => {
                assert_refusal(&args, code, &stderr, &format!("-o {name}"))
            }
            ("honoured", Launch::Started(_)) => {}
            (accepted, Launch::Started(stderr)) if accepted.starts_with("accepted") => {
                assert!(
                    stderr.contains(&format!("-o {name}")),
                    "{args:?} is accepted without a word in the log: {stderr}"
                );
            }
            (said, outcome) => panic!("-o {name}: -h says {said:?}, got {outcome:?}"),
        }
        table.push(format!("-o {name}: {disposition}"));
    }
    println!("{}", table.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// memcached's first line of complaint about a command line (`Illegal suboption` goes to
/// standard output there), or None if it starts.
fn memcached_refusal(args: &[&str]) -> Option<String> {
    let port = free_port().to_string();
    let mut command = Command::new("memcached");
    command
        .args(["-p", &port, "-U", "0", "-l", "127.0.0.1"])
        .args(args);
    if is_root() {
        command.args(["-u", "nobody"]);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("memcached 1.6.18 (apt-get install memcached)");
    let status = wait_with_timeout(&mut child, Duration::from_secs(1))?;
    assert!(!status.success(), "memcached {args:?} exited 0");
    let mut text = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .find(|l| !l.starts_with("slab class"))
        .map(str::to_string)
}

#[test]
fn start_up_errors_are_memcacheds() {
    for args in [
        &["-c", "0"][..],
        &["-t", "0"],
        &["-R", "0"],
        &["-f", "1"],
        &["-n", "0"],
        &["-D", ""],
        &["-I", "512"],
        &["-I", "33m"],
        &["-m", "0"],
        &["-m", "5000", "-I", "2000m"],
        &["-I", "1k"],
        &["-I", "1000k"],
        &["-o", "slab_chunk_max=1000"],
        &["-o", "slab_chunk_max=2m"],
        &["-I", "4m", "-o", "slab_chunk_max=2097152"],
        &["-o", "hashpower=11"],
        &["-o", "hashpower=33"],
        &["-o", "hashpower"],
        &["-o", "idle_timeout"],
        &["-o", "slab_automove=3"],
        &["-o", "slab_automove_window=2"],
        &["-o", "tail_repair_time=5"],
        &["-o", "hash_algorithm=md5"],
        &["-o", "lru_crawler_sleep=2000000"],
        &["-o", "lru_crawler_tocrawl=x"],
        &["-o", "hot_lru_pct=50,warm_lru_pct=40"],
        &["-o", "no_lru_maintainer,temporary_ttl=10"],
        &["-o", "watcher_logbuf_size=x"],
        &["-o", "read_buf_mem_limit=x"],
        &["-o", "no_such_option=1"],
    ] {
        let theirs = memcached_refusal(args)
            .unwrap_or_else(|| panic!("memcached {args:?} should refuse to start"));
        let (code, _, ours) = output_of(
            Command::new(FERROCACHED).args(["-p", "0"]).args(args),
            Duration::from_secs(10),
            "ferrocached",
        );
        assert_eq!(code, Some(64), "{args:?}: {ours}");
        assert_eq!(ours.lines().count(), 1, "{args:?}: {ours}");
        assert!(
            ours.starts_with(&format!("error: {theirs}")),
            "{args:?}: memcached says {theirs:?}, ferrocached {ours:?}"
        );
    }
    // Where memcached reads garbage as 0 or wraps a negative number, a number error instead.
    for args in [
        &["-m", "-5"][..],
        &["-p", "-1"],
        &["-b", "-1"],
        &["-I", "-1m"],
    ] {
        let (code, _, ours) = output_of(
            Command::new(FERROCACHED).args(args),
            Duration::from_secs(10),
            "ferrocached",
        );
        assert_eq!(code, Some(64), "{args:?}: {ours}");
        assert!(
            ours.contains(&format!("invalid value '{}'", args[1])) && ours.lines().count() == 1,
            "{args:?}: {ours}"
        );
    }
    // What memcached starts with, ferrocached starts with too.
    for args in [
        &["-I", "1k", "-o", "slab_chunk_max=1024"][..],
        &["-I", "1536k"],
        &["-I", "4m", "-m", "64"],
        &[
            "-o",
            "slab_chunk_max=16384,no_hashexpand,hash_algorithm=xxh3",
        ],
    ] {
        assert_eq!(memcached_refusal(args), None, "memcached {args:?} starts");
        let mut full: Vec<String> = base_args("m");
        full.extend(args.iter().map(|a| a.to_string()));
        assert!(
            matches!(launch(&full), Launch::Started(_)),
            "ferrocached {args:?} should start"
        );
    }
}

/// `stats [group]` as name to value, in order.
fn stats_of(client: &mut Client, group: &str) -> Vec<(String, String)> {
    let request = if group.is_empty() {
        "stats\r\n".to_string()
    } else {
        format!("stats {group}\r\n")
    };
    let reply = client.call(request.as_bytes(), b"END\r\n");
    reply
        .lines()
        .filter_map(|line| line.strip_prefix("STAT "))
        .map(|pair| {
            let (name, value) = pair.split_once(' ').unwrap_or((pair, ""));
            (name.to_string(), value.to_string())
        })
        .collect()
}

fn names(stats: &[(String, String)]) -> BTreeSet<String> {
    stats.iter().map(|(name, _)| name.clone()).collect()
}

/// Per-class keys (`items:N:name` or `N:name`) by class, and the rest.
fn by_class(stats: &[(String, String)]) -> (BTreeMap<String, BTreeSet<String>>, BTreeSet<String>) {
    let mut classes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut totals = BTreeSet::new();
    for (name, _) in stats {
        let bare = name.strip_prefix("items:").unwrap_or(name);
        match bare.split_once(':') {
            Some((class, key)) if class.parse::<u32>().is_ok() => {
                classes
                    .entry(class.to_string())
                    .or_default()
                    .insert(key.to_string());
            }
            _ => {
                totals.insert(name.clone());
            }
        }
    }
    (classes, totals)
}

/// Keys of `stats` that ferrocached adds, each with why.
const STATS_EXTRAS: &[(&str, &str)] = &[
    (
        "ferrocache_version",
        "which server this is; `version` says 1.6.18 for client parsers",
    ),
    (
        "cmd_config_get",
        "ElastiCache auto discovery, as ElastiCache's memcached counts it",
    ),
    (
        "cmd_config_set",
        "ElastiCache auto discovery, as ElastiCache's memcached counts it",
    ),
    (
        "curr_config",
        "ElastiCache auto discovery, as ElastiCache's memcached reports it",
    ),
    (
        "small_fifo_evictions",
        "the S3-FIFO eviction policy's small queue, which memcached does not have",
    ),
    (
        "small_fifo_promotions",
        "the S3-FIFO eviction policy's small queue, which memcached does not have",
    ),
    (
        "restart_warm",
        "how the process started (README: Restart and upgrade); memcached only logs it",
    ),
    (
        "restart_cold",
        "how the process started (README: Restart and upgrade); memcached only logs it",
    ),
    (
        "restart_items_recovered",
        "how the process started (README: Restart and upgrade); memcached only logs it",
    ),
    (
        "restart_cold_reason",
        "why a start was cold, one word (README: Restart and upgrade)",
    ),
];

/// Keys of memcached's that ferrocached leaves out, each with why (none today).
const LEFT_OUT: &[(&str, &str)] = &[];

/// The same items in both servers: two slab classes, one hit.
fn fill(client: &mut Client) {
    let big = "x".repeat(3000);
    let script = format!(
        "set small 0 0 5\r\nhello\r\nset big 0 0 {}\r\n{big}\r\nget small\r\nget nope\r\n",
        big.len()
    );
    client.call_script(script.as_bytes());
}

/// prometheus/memcached_exporter reads these as float64 (strconv.ParseFloat), the rusage
/// pair as `seconds.microseconds`, and two settings as yes/no.
fn assert_exporter_can_parse(
    general: &[(String, String)],
    settings: &[(String, String)],
    items: &[(String, String)],
    slabs: &[(String, String)],
) {
    let text = [
        "version",
        "libevent",
        "ferrocache_version",
        "restart_cold_reason",
    ];
    for (name, value) in general {
        if name.starts_with("rusage_") {
            let (seconds, micros) = value.split_once('.').expect("sec.usec");
            assert!(
                seconds.parse::<u64>().is_ok() && micros.parse::<u64>().is_ok(),
                "{name} {value}"
            );
        } else if !text.contains(&name.as_str()) {
            assert!(
                value.parse::<f64>().is_ok(),
                "stats {name} {value:?} is not a number"
            );
        }
    }
    for (name, value) in items.iter().chain(slabs) {
        assert!(
            value.parse::<f64>().is_ok(),
            "{name} {value:?} is not a number"
        );
    }
    let setting = |name: &str| {
        settings
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("stats settings lacks {name}"))
    };
    for name in [
        "maxconns",
        "lru_crawler_sleep",
        "lru_crawler_tocrawl",
        "hot_lru_pct",
        "warm_lru_pct",
        "hot_max_factor",
        "warm_max_factor",
    ] {
        assert!(
            setting(name).parse::<f64>().is_ok(),
            "{name} {}",
            setting(name)
        );
    }
    for name in ["lru_crawler", "lru_maintainer_thread"] {
        assert!(
            matches!(setting(name), "yes" | "no"),
            "{name} {}",
            setting(name)
        );
    }
}

#[test]
fn stats_key_sets_are_memcacheds() {
    let reference = Reference::start(&["-t", "2", "-m", "64"]);
    let server = Server::start(&["-t", "2", "-m", "64"]);
    let mut theirs = reference.connect();
    let mut ours = server.connect();
    fill(&mut theirs);
    fill(&mut ours);
    let extras: BTreeSet<String> = STATS_EXTRAS.iter().map(|(n, _)| n.to_string()).collect();
    let left_out: BTreeSet<String> = LEFT_OUT.iter().map(|(n, _)| n.to_string()).collect();

    let (their_general, our_general) = (stats_of(&mut theirs, ""), stats_of(&mut ours, ""));
    let missing: Vec<_> = names(&their_general)
        .difference(&names(&our_general))
        .filter(|n| !left_out.contains(*n))
        .cloned()
        .collect();
    assert!(missing.is_empty(), "stats lacks {missing:?}");
    let extra: Vec<_> = names(&our_general)
        .difference(&names(&their_general))
        .filter(|n| !extras.contains(*n))
        .cloned()
        .collect();
    assert!(extra.is_empty(), "stats has unexplained keys {extra:?}");

    let (their_settings, our_settings) = (
        stats_of(&mut theirs, "settings"),
        stats_of(&mut ours, "settings"),
    );
    assert_eq!(
        names(&our_settings),
        names(&their_settings),
        "stats settings"
    );
    let setting = |stats: &[(String, String)], name: &str| {
        stats.iter().find(|(n, _)| n == name).unwrap().1.clone()
    };
    assert_eq!(setting(&our_settings, "binding_protocol"), "auto-negotiate");
    assert_eq!(
        setting(&our_settings, "binding_protocol"),
        setting(&their_settings, "binding_protocol")
    );

    for group in ["items", "slabs"] {
        let their_stats = stats_of(&mut theirs, group);
        let our_stats = stats_of(&mut ours, group);
        let (their_classes, their_totals) = by_class(&their_stats);
        let (our_classes, our_totals) = by_class(&our_stats);
        assert_eq!(our_totals, their_totals, "stats {group}'s totals");
        assert_eq!(our_classes.len(), 2, "stats {group}: {our_classes:?}");
        let their_keys = their_classes.values().next().expect("memcached's classes");
        for (class, keys) in &our_classes {
            assert_eq!(keys, their_keys, "stats {group}, class {class}");
        }
    }
    assert_exporter_can_parse(
        &our_general,
        &our_settings,
        &stats_of(&mut ours, "items"),
        &stats_of(&mut ours, "slabs"),
    );
}

/// A server started with `-vv`, its standard error read line by line.
struct Verbose {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Verbose {
    fn start(program: &str, args: &[&str]) -> Verbose {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Verbose { child, lines }
    }

    /// Lines up to and including the first that contains `end`.
    fn until(&self, end: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(50)) {
                let done = line.contains(end);
                seen.push(line);
                if done {
                    return seen;
                }
            }
        }
        panic!("no {end:?} in {seen:?}");
    }
}

impl Drop for Verbose {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// memcached's `<FD ...` and `>FD ...` lines with the descriptor replaced by `FD`.
fn protocol_lines(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|line| {
            let direction = line.chars().next()?;
            let rest = line.get(1..)?;
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            (matches!(direction, '<' | '>') && digits > 0)
                .then(|| format!("{direction}FD{}", &rest[digits..]))
        })
        .collect()
}

#[test]
fn very_verbose_logs_requests_and_replies_as_memcached_does() {
    let script = b"set n 0 0 1\r\n5\r\nincr n 2\r\ndecr n 1 noreply\r\ntouch n 10\r\n\
        gat 10 n\r\ngets n zz\r\ncas n 0 0 1 999\r\nx\r\nappend n 0 0 1 noreply\r\nx\r\n\
        mn\r\nmg n v\r\nmg n zz\r\nms m 2 T0\r\nxx\r\nmd nope q\r\nma n\r\n\
        flush_all 0 noreply\r\nverbosity 2\r\nstats reset\r\nstats detail on\r\n\
        cache_memlimit 100\r\nget a b c\r\nset toolong 0 0 2\r\nxxxx\r\ndelete nope\r\n\
        stats nosuch\r\nbogus\r\nversion\r\nquit\r\n";
    let port = free_port().to_string();
    let mut memcached_args = vec!["-p", &port, "-U", "0", "-l", "127.0.0.1", "-t", "1", "-vv"];
    if is_root() {
        memcached_args.extend(["-u", "nobody"]);
    }
    let reference = Verbose::start("memcached", &memcached_args);
    let server = Verbose::start(
        FERROCACHED,
        &["-p", "0", "-l", "127.0.0.1", "-t", "1", "-vv"],
    );
    let started = server.until(" listening on ");
    let ours_port: u16 = started
        .last()
        .and_then(|l| l.split("listening on tcp:127.0.0.1:").nth(1))
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .expect("the start-up line names the port");
    // memcached announces its listener once it listens.
    let their_start = reference.until("server listening");
    let their_address = format!("127.0.0.1:{port}").parse().unwrap();
    let mut logs = Vec::new();
    for (address, verbose, before) in [
        (their_address, &reference, their_start),
        (
            format!("127.0.0.1:{ours_port}").parse().unwrap(),
            &server,
            started,
        ),
    ] {
        let mut client = Client::connect(address);
        client.send(script);
        client.read_to_close();
        let mut lines = before;
        lines.extend(verbose.until("connection closed."));
        logs.push(protocol_lines(&lines));
    }
    assert!(
        logs[0].iter().any(|l| l == ">FD NOREPLY 6"),
        "{:?}",
        logs[0]
    );
    assert_eq!(logs[1], logs[0], "ferrocached's -vv (right: memcached's)");
}

#[test]
fn ports_file_and_log_name_the_port_of_a_daemon() {
    let dir = scratch_dir("ports");
    // memcached writes its file after it dropped root for nobody.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let ports = dir.join("ports");
    let pidfile = dir.join("pid");
    // memcached writes the same file, in this shape.
    let port = free_port();
    let mut memcached = Command::new("memcached");
    memcached
        .args(["-p", &port.to_string(), "-U", "0", "-l", "127.0.0.1"])
        .env("MEMCACHED_PORT_FILENAME", dir.join("memcached-ports"));
    if is_root() {
        memcached.args(["-u", "nobody"]);
    }
    let reference = Reaped(
        memcached
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let theirs = wait_for_file(&dir.join("memcached-ports"));
    drop(reference);
    assert_eq!(theirs, format!("TCP INET: {port}\n"));

    let mut daemon = Command::new(FERROCACHED)
        .args(["-d", "-p", "0", "-l", "127.0.0.1", "-t", "1", "-v", "-P"])
        .arg(&pidfile)
        .env("MEMCACHED_PORT_FILENAME", &ports)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command returns at once: the server detached.
    let status = wait_with_timeout(&mut daemon, Duration::from_secs(10)).expect("-d returns");
    assert!(status.success(), "{status}");
    let written = wait_for_file(&ports);
    let port: u16 = written
        .strip_prefix("TCP INET: ")
        .and_then(|rest| rest.strip_suffix('\n'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("ports file {written:?}"));
    assert!(!dir.join("ports.lck").exists());
    let pid: u32 = wait_for_file(&pidfile).trim().parse().unwrap();
    // Stopped however the test ends: nothing else would stop a detached server.
    let _detached = Stopped(pid);
    assert_ne!(pid, daemon.id(), "the server runs in a child that detached");
    let mut client = Client::connect(format!("127.0.0.1:{port}").parse().unwrap());
    assert_eq!(client.call(b"version\r\n", b"\r\n"), "VERSION 1.6.18\r\n");
    // With -v the detached server keeps standard error, and its start-up line names the port.
    let mut log = String::new();
    let mut stderr = BufReader::new(daemon.stderr.take().unwrap());
    while !log.contains(" listening on ") {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "log ended: {log}");
        log.push_str(&line);
    }
    assert!(
        log.contains(&format!("listening on tcp:127.0.0.1:{port};")),
        "{log}"
    );
    signal(pid, "TERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "the daemon ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A child killed and reaped when the guard drops, even when an assertion fails first.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process that is not our child (a detached daemon), killed when the guard drops.
struct Stopped(u32);

impl Drop for Stopped {
    fn drop(&mut self) {
        if Path::new(&format!("/proc/{}", self.0)).exists() {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}

fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.is_empty()
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn memcached_tool(address: std::net::SocketAddr, mode: &str) -> (String, String) {
    assert!(
        Path::new(MEMCACHED_TOOL).exists(),
        "{MEMCACHED_TOOL} is missing: apt-get install memcached (scripts/install-test-deps.sh)"
    );
    let (code, stdout, stderr) = output_of(
        Command::new("perl")
            .arg(MEMCACHED_TOOL)
            .arg(address.to_string())
            .arg(mode),
        Duration::from_secs(30),
        "memcached-tool (Debian's memcached package)",
    );
    assert_eq!(code, Some(0), "memcached-tool {mode}: {stderr}");
    (stdout.replace(&address.to_string(), "ADDRESS"), stderr)
}

/// The field names of memcached-tool's stats and settings tables.
fn fields(table: &str) -> BTreeSet<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn memcached_tool_reads_ferrocached_as_it_reads_memcached() {
    let reference = Reference::start(&["-t", "2"]);
    let server = Server::start(&["-t", "2"]);
    fill(&mut reference.connect());
    fill(&mut server.connect());
    let row = |line: &str| {
        let cells: Vec<&str> = line.split_whitespace().collect();
        cells.len() == 9
            && cells[0].parse::<u32>().is_ok()
            && cells[2].ends_with('s')
            && matches!(cells[5], "yes" | "no")
    };
    let (theirs, their_errors) = memcached_tool(reference.addr, "display");
    let (ours, our_errors) = memcached_tool(server.addr, "display");
    assert_eq!((their_errors.as_str(), our_errors.as_str()), ("", ""));
    assert_eq!(
        ours.lines().next(),
        theirs.lines().next(),
        "display's header"
    );
    assert!(theirs.lines().skip(1).all(row), "{theirs}");
    assert_eq!(ours.lines().skip(1).filter(|l| row(l)).count(), 2, "{ours}");
    assert!(ours.lines().skip(1).all(row), "{ours}");
    let extras: BTreeSet<String> = STATS_EXTRAS.iter().map(|(n, _)| n.to_string()).collect();
    for mode in ["stats", "settings"] {
        let (theirs, their_errors) = memcached_tool(reference.addr, mode);
        let (ours, our_errors) = memcached_tool(server.addr, mode);
        assert_eq!(
            (their_errors.as_str(), our_errors.as_str()),
            ("", ""),
            "{mode}"
        );
        fn header(table: &str) -> Vec<&str> {
            table
                .lines()
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect()
        }
        assert_eq!(header(&ours), header(&theirs), "{mode}'s header");
        let ours: BTreeSet<String> = fields(&ours).difference(&extras).cloned().collect();
        assert_eq!(ours, fields(&theirs), "memcached-tool {mode}'s fields");
    }
}

/// `memcached-tool dump` lists the items with `lru_crawler metadump all` (it reads `key=` and
/// `exp=` from each line, up to `END`), then fetches each one.
#[test]
fn memcached_tool_dumps_ferrocached_as_it_dumps_memcached() {
    let reference = Reference::start(&["-t", "2"]);
    let server = Server::start(&["-t", "2"]);
    fill(&mut reference.connect());
    fill(&mut server.connect());
    let (theirs, _) = memcached_tool(reference.addr, "dump");
    let (ours, _) = memcached_tool(server.addr, "dump");
    let sorted = |dump: &str| {
        dump.split("add ")
            .map(str::to_string)
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(sorted(&ours), sorted(&theirs));
}

/// The interpreter of the venv scripts/install-test-deps.sh makes (it sees Debian's packages).
fn test_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-test-deps.sh (it installs django-elasticache there)",
        python.display()
    );
    python
}

#[test]
fn client_libraries_parse_the_version() {
    let dir = scratch_dir("version");
    let nodes = dir.join("nodes");
    std::fs::write(&nodes, "cache1.example.internal|127.0.0.1|11211\n").unwrap();
    let server = Server::start(&["-t", "1", "--cluster-config", nodes.to_str().unwrap()]);
    let reference = Reference::start(&["-t", "1"]);
    let script = r#"
import sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)
from distutils.version import StrictVersion
from pymemcache.client.base import Client
from django_elasticache.cluster_utils import get_cluster_info
host, port = sys.argv[1], int(sys.argv[2])
version = Client((host, port)).version().decode()
StrictVersion(version)  # raises ValueError for anything but X.Y[.Z]
# Parses `version` with StrictVersion, then asks for the node list ("config get cluster" from
# 1.4.14 on); a server without one (ERROR) stands for itself.
info = get_cluster_info(host, port, ignore_cluster_errors=True)
print(version, "nodes=" + ",".join(info["nodes"]))
"#;
    let run = |address: std::net::SocketAddr| {
        let (code, stdout, stderr) = output_of(
            Command::new(test_python()).args([
                "-c",
                script,
                "127.0.0.1",
                &address.port().to_string(),
            ]),
            Duration::from_secs(30),
            "python with pymemcache and django-elasticache",
        );
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        stdout.trim().to_string()
    };
    assert_eq!(run(server.addr), "1.6.18 nodes=127.0.0.1:11211");
    // memcached serves no node list; its version parses all the same.
    assert_eq!(
        run(reference.addr),
        format!("1.6.18 nodes=127.0.0.1:{}", reference.addr.port())
    );
    let _ = std::fs::remove_dir_all(&dir);
}

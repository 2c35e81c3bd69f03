//! Auto discovery against the real binary: the node list file is re-read when it changes and on
//! SIGHUP, the version moves only when the list does, a list that does not parse keeps the one
//! in force, and one that does not parse at start-up is a one-line error with status 64.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Client, Server, signal};

/// Replaces `file` at once, as deployment tools do (write aside, then rename).
fn write_atomically(file: &std::path::Path, text: &str) {
    let aside = file.with_extension("new");
    std::fs::write(&aside, text).unwrap();
    std::fs::rename(&aside, file).unwrap();
}

fn cluster_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cluster-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The version and node line of `config get cluster`, after checking its framing.
fn config(client: &mut Client) -> (u64, String) {
    let reply = client.call(b"config get cluster\r\n", b"END\r\n");
    let (head, rest) = reply.split_once("\r\n").expect("a CONFIG line");
    let length: usize = head
        .strip_prefix("CONFIG cluster 0 ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad CONFIG line {head:?}"));
    let payload = &rest[..length];
    assert_eq!(
        &rest[length..],
        "\r\nEND\r\n",
        "N must count the payload exactly"
    );
    let (version, nodes) = payload.split_once('\n').unwrap();
    (version.parse().unwrap(), nodes.trim_end().to_string())
}

/// Asks until the version is `version` (the file is looked at once a second).
fn wait_for_version(client: &mut Client, version: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (now, nodes) = config(client);
        if now == version {
            return nodes;
        }
        assert!(
            Instant::now() < deadline,
            "version stayed {now}, expected {version}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_node_list_follows_its_file_and_sighup() {
    let dir = cluster_dir("follow");
    let file = dir.join("nodes");
    std::fs::write(
        &file,
        "a.example|10.0.0.1|11211\nb.example|10.0.0.2|11211\n",
    )
    .unwrap();
    let server = Server::start(&["--cluster-config", file.to_str().unwrap()]);
    let mut client = server.connect();
    assert_eq!(
        config(&mut client),
        (
            1,
            "a.example|10.0.0.1|11211 b.example|10.0.0.2|11211".to_string()
        )
    );
    // A third node: noticed by the file's change.
    write_atomically(
        &file,
        "a.example|10.0.0.1|11211\nb.example|10.0.0.2|11211\nc.example|10.0.0.3|11211\n",
    );
    assert!(wait_for_version(&mut client, 2).ends_with("c.example|10.0.0.3|11211"));
    // A rewrite that changes nothing but order and comments keeps the version.
    write_atomically(
        &file,
        "# same nodes\nc.example|10.0.0.3|11211\nb.example|10.0.0.2|11211\na.example|10.0.0.1|11211\n",
    );
    signal(server.pid(), "HUP");
    // A broken file keeps the list in force.
    write_atomically(&file, "a.example|not-an-ip|11211\n");
    signal(server.pid(), "HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.stderr().contains("keeping the node list in force") {
        assert!(Instant::now() < deadline, "no log line about the bad file");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(config(&mut client).0, 2);
    // Fixed, with one node removed: version 3.
    write_atomically(
        &file,
        "a.example|10.0.0.1|11211\nb.example|10.0.0.2|11211\n",
    );
    signal(server.pid(), "HUP");
    assert_eq!(
        wait_for_version(&mut client, 3),
        "a.example|10.0.0.1|11211 b.example|10.0.0.2|11211"
    );
    let stats = client.call(b"stats\r\n", b"END\r\n");
    assert!(stats.contains("STAT curr_config 3\r\n"), "{stats}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_node_list_that_does_not_parse_stops_the_start() {
    let dir = cluster_dir("bad");
    let file = dir.join("nodes");
    std::fs::write(&file, "a.example:11211\nnot a node\n").unwrap();
    for path in [file.clone(), dir.join("missing")] {
        let output = Command::new(env!("CARGO_BIN_EXE_ferrocached"))
            .args(["-p", "0", "--cluster-config", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(64));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

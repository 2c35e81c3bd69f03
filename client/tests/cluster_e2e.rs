//! Auto discovery and failure handling end to end, with real daemons: three `ferrocached`
//! nodes and a fourth as the config endpoint (`--cluster-config FILE` listing them). The client
//! discovers the three; the file gains a fourth node and the client follows within one poll,
//! about a quarter of the keys moving; a node killed with SIGKILL mid-load costs
//! `failure_limit` errors, then only its keys miss; restarted on its port, it rejoins after
//! the retry interval. The daemon binary is found as `support::ferrocached_binary` explains.

mod support;

use ferrocache_client::{Client, ClientConfig, DiscoveryOptions, FailurePolicy, Timeouts};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{ServerProcess, start_ferrocached, start_ferrocached_on};

const KEYS: usize = 10_000;
const POLL: Duration = Duration::from_millis(250);
const FAILURE_LIMIT: u32 = 2;
const RETRY: Duration = Duration::from_secs(3);

fn node_list(nodes: &[&ServerProcess]) -> String {
    let mut text = String::from("# written by cluster_e2e\n");
    for (i, node) in nodes.iter().enumerate() {
        text.push_str(&format!("node-{}|127.0.0.1|{}\n", i + 1, node.port));
    }
    text
}

/// Polls `check` until it holds or `limit` passes; the time it took.
fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    started.elapsed()
}

fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("cluster:key:{i}")).collect()
}

/// `host:port` of the server each key goes to now.
fn owners(client: &Client, keys: &[String]) -> Vec<String> {
    let servers = client.servers();
    keys.iter()
        .map(|k| servers[client.server_index(k.as_bytes())].address())
        .collect()
}

#[test]
fn discovers_grows_and_survives_a_killed_node() {
    let test_started = Instant::now();
    let mut nodes = vec![
        start_ferrocached(),
        start_ferrocached(),
        start_ferrocached(),
    ];
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("nodes.txt");
    std::fs::write(&file, node_list(&nodes.iter().collect::<Vec<_>>())).unwrap();
    let endpoint = start_ferrocached_on(
        support::free_port(),
        &["--cluster-config".into(), file.display().to_string()],
    );

    let options = DiscoveryOptions {
        poll_interval: POLL,
        client: ClientConfig {
            timeouts: Timeouts {
                connect: Some(Duration::from_millis(500)),
                read: Some(Duration::from_millis(500)),
                write: Some(Duration::from_millis(500)),
            },
            ..ClientConfig::default()
        },
        failure: FailurePolicy {
            failure_limit: FAILURE_LIMIT,
            retry_interval: RETRY,
            remove_failed: true,
        },
    };
    let client = Client::discover(&endpoint.address(), options).unwrap();
    let mut discovered: Vec<String> = client.servers().iter().map(|s| s.address()).collect();
    discovered.sort();
    let mut expected: Vec<String> = nodes.iter().map(|n| n.address()).collect();
    expected.sort();
    assert_eq!(discovered, expected);
    let first_version = client.config_version();

    // Growth: a fourth node in the file, picked up within one poll of the endpoint's reload.
    let keys = keys();
    let before = owners(&client, &keys);
    nodes.push(start_ferrocached());
    std::fs::write(&file, node_list(&nodes.iter().collect::<Vec<_>>())).unwrap();
    endpoint.signal("HUP");
    let picked_up = wait_for(Duration::from_secs(5), "fourth node discovered", || {
        client.servers().len() == 4
    });
    assert!(client.config_version() > first_version);
    let after = owners(&client, &keys);
    let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    let moved_share = moved as f64 / KEYS as f64;
    // Only keys that went to the new node moved.
    assert!(
        before
            .iter()
            .zip(&after)
            .all(|(b, a)| b == a || *a == nodes[3].address())
    );
    eprintln!(
        "fourth node picked up {picked_up:?} after SIGHUP; {moved} of {KEYS} keys moved ({moved_share:.3})"
    );
    assert!((0.15..=0.35).contains(&moved_share), "{moved_share}");
    // One poll interval plus the endpoint's reload and the ring rebuild.
    assert!(
        picked_up < POLL * 2 + Duration::from_millis(500),
        "{picked_up:?}"
    );

    // Failure: load all keys, kill node 2 with SIGKILL, read everything back.
    for key in &keys {
        client.set(key.as_bytes(), key.as_bytes(), 0).unwrap();
    }
    let owners_now = owners(&client, &keys);
    let victim = nodes[1].address();
    let victim_keys = owners_now.iter().filter(|o| **o == victim).count();
    nodes[1].signal("KILL");
    nodes[1].reap();
    let killed_at = Instant::now();
    let (mut errors, mut misses) = (0usize, 0usize);
    for (key, owner) in keys.iter().zip(&owners_now) {
        match client.get(key.as_bytes()) {
            Err(_) => errors += 1,
            Ok(None) => {
                misses += 1;
                assert_eq!(*owner, victim, "{key} missed but lived elsewhere");
            }
            Ok(Some(item)) => assert_eq!(item.value, key.as_bytes()),
        }
    }
    let counters = client.counters();
    eprintln!(
        "after SIGKILL: {errors} errors, {misses} misses of {victim_keys} keys on the dead node; {counters:?}"
    );
    assert!(errors <= FAILURE_LIMIT as usize, "{errors} errors");
    assert_eq!(counters.ejections, 1);
    assert_eq!(errors + misses, victim_keys);
    // A second pass within the retry interval: no errors at all, the same misses.
    let (mut errors2, mut misses2) = (0, 0);
    for key in &keys {
        match client.get(key.as_bytes()) {
            Err(_) => errors2 += 1,
            Ok(None) => misses2 += 1,
            Ok(Some(_)) => {}
        }
    }
    assert!(
        killed_at.elapsed() < RETRY,
        "the passes outlasted the retry interval"
    );
    assert_eq!((errors2, misses2), (0, victim_keys));

    // Rejoin: restarted on its port, it is back after the retry interval.
    let victim_port = nodes[1].port;
    nodes[1] = start_ferrocached_on(victim_port, &[]);
    let direct = Client::single(&victim).unwrap();
    let probe = keys
        .iter()
        .zip(&owners_now)
        .find(|(_, o)| **o == victim)
        .map(|(k, _)| k.clone())
        .unwrap();
    let rejoined = wait_for(RETRY + Duration::from_secs(5), "dead node rejoins", || {
        let _ = client.set(probe.as_bytes(), b"back", 0);
        direct.get(probe.as_bytes()).ok().flatten().is_some()
    });
    let since_kill = killed_at.elapsed();
    eprintln!(
        "node back {rejoined:?} after its restart, {since_kill:?} after SIGKILL; {:?}",
        client.counters()
    );
    assert!(since_kill >= RETRY);
    assert!(client.counters().rejoins >= 1);
    assert_eq!(owners(&client, &keys), owners_now);
    eprintln!("test took {:?}", test_started.elapsed());
}

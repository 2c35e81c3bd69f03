//! End to end through twemproxy: Debian's `nutcracker` with `distribution: ketama` and
//! `hash: md5` in front of three real `ferrocached` daemons. Every key set through nutcracker
//! must be found on the backend the Rust ring names, and on no other.
//!
//! Two pools exercise both ways twemproxy names a server: `host:port:weight` (identity
//! `host:port`, weights 1, 2, 3) and `host:port:weight name` (identity `name`); a third is the
//! pool shipped in `systemd/nutcracker.yml`, moved to the test's ports. Needs
//! `nutcracker` (scripts/install-test-deps.sh) and fails, rather than skips, without it. The
//! daemon binary is found as `support::ferrocached_binary` explains (`FERROCACHED` overrides).

mod support;

use ferrocache_client::{Client, ClientConfig, ServerSpec};
use std::fmt::Write as _;
use support::{ServerProcess, free_port, start_ferrocached, which};

const KEYS: usize = 3000;

/// One twemproxy pool: its listen port and the servers as the Rust ring must see them.
struct Pool {
    name: &'static str,
    port: u16,
    ring_servers: Vec<ServerSpec>,
    /// Taken from `systemd/nutcracker.yml` rather than written here.
    shipped: bool,
}

/// The pool shipped in `systemd/nutcracker.yml`, its listen address and its three servers
/// (127.0.0.1:11211-11213 there) moved to the test's ports.
fn shipped_pool(listen: u16, backends: &[ServerProcess]) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../systemd/nutcracker.yml");
    let shipped = std::fs::read_to_string(path).expect("systemd/nutcracker.yml");
    let mut pool = shipped.replace(
        "listen: 127.0.0.1:22121",
        &format!("listen: 127.0.0.1:{listen}"),
    );
    for (i, backend) in backends.iter().enumerate() {
        let port = 11211 + i;
        pool = pool.replace(
            &format!("127.0.0.1:{port}:1"),
            &format!("127.0.0.1:{}:1", backend.port),
        );
    }
    assert!(
        !pool.contains("127.0.0.1:1121") && !pool.contains(":22121"),
        "the shipped pool's addresses changed: update this test\n{pool}"
    );
    pool
}

fn write_config(pools: &[Pool], backends: &[ServerProcess], path: &std::path::Path) {
    let mut yaml = String::new();
    for pool in pools {
        if pool.shipped {
            yaml.push_str(&shipped_pool(pool.port, backends));
            continue;
        }
        writeln!(yaml, "{}:", pool.name).unwrap();
        writeln!(yaml, "  listen: 127.0.0.1:{}", pool.port).unwrap();
        yaml.push_str("  hash: md5\n  distribution: ketama\n  timeout: 2000\n");
        yaml.push_str("  auto_eject_hosts: false\n  servers:\n");
        for (spec, backend) in pool.ring_servers.iter().zip(backends) {
            let name = spec
                .name
                .as_deref()
                .map(|n| format!(" {n}"))
                .unwrap_or_default();
            writeln!(
                yaml,
                "   - 127.0.0.1:{}:{}{}",
                backend.port, spec.weight, name
            )
            .unwrap();
        }
    }
    std::fs::write(path, yaml).unwrap();
}

#[test]
fn nutcracker_places_every_key_where_the_rust_ring_says() {
    let nutcracker = which("nutcracker")
        .expect("nutcracker not found: install it with scripts/install-test-deps.sh");
    let backends = [
        start_ferrocached(),
        start_ferrocached(),
        start_ferrocached(),
    ];
    let spec =
        |i: usize, weight| ServerSpec::new("127.0.0.1", backends[i].port).with_weight(weight);
    let pools = [
        Pool {
            name: "weighted",
            port: free_port(),
            ring_servers: vec![spec(0, 1), spec(1, 2), spec(2, 3)],
            shipped: false,
        },
        Pool {
            name: "named",
            port: free_port(),
            ring_servers: vec![
                spec(0, 1).with_name("alpha"),
                spec(1, 1).with_name("beta"),
                spec(2, 1).with_name("gamma"),
            ],
            shipped: false,
        },
        Pool {
            name: "ferrocache",
            port: free_port(),
            ring_servers: vec![spec(0, 1), spec(1, 1), spec(2, 1)],
            shipped: true,
        },
    ];
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("nutcracker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("nutcracker.yml");
    write_config(&pools, &backends, &config);
    let stats_port = free_port();
    let args: Vec<String> = vec![
        "-c".into(),
        config.display().to_string(),
        "-s".into(),
        stats_port.to_string(),
        "-a".into(),
        "127.0.0.1".into(),
        "-o".into(),
        dir.join("nutcracker.log").display().to_string(),
        "-p".into(),
        dir.join("nutcracker.pid").display().to_string(),
    ];
    let proxy = ServerProcess::start(&nutcracker, &args, pools[0].port);
    let direct: Vec<Client> = backends
        .iter()
        .map(|b| Client::single(&b.address()).unwrap())
        .collect();

    for pool in &pools {
        for backend in &direct {
            backend.flush_all().unwrap();
        }
        let through_proxy = Client::single(&format!("127.0.0.1:{}", pool.port)).unwrap();
        let ring = Client::new(pool.ring_servers.clone(), ClientConfig::default()).unwrap();
        let keys: Vec<String> = (0..KEYS)
            .map(|i| match i % 3 {
                0 => format!("key:{i}"),
                1 => format!("key:0000000000000000000000:{i}"),
                _ => format!("session/{:x}", i * 7919),
            })
            .collect();
        for key in &keys {
            through_proxy
                .set(key.as_bytes(), key.as_bytes(), 0)
                .unwrap();
        }
        let mut misplaced = Vec::new();
        let mut per_backend = [0usize; 3];
        for key in &keys {
            let owner = ring.server_index(key.as_bytes());
            per_backend[owner] += 1;
            for (index, backend) in direct.iter().enumerate() {
                let present = backend.get(key.as_bytes()).unwrap().is_some();
                if present != (index == owner) {
                    misplaced.push((key.clone(), owner, index, present));
                }
            }
        }
        assert!(
            misplaced.is_empty(),
            "pool {}: {} disagreements between nutcracker and the Rust ring, first {:?}",
            pool.name,
            misplaced.len(),
            &misplaced[..misplaced.len().min(5)]
        );
        // Every backend took part, so the check covered all three.
        assert!(
            per_backend.iter().all(|&n| n > KEYS / 10),
            "{per_backend:?}"
        );
        // And nutcracker reads them back (its multi-get fans out and merges).
        let found = through_proxy.get_multi(&keys).unwrap();
        assert_eq!(found.len(), KEYS, "pool {}", pool.name);
    }
    drop(proxy);
}

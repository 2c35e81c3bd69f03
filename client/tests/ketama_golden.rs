//! Golden test of the ketama ring against libmemcached itself.
//!
//! `tests/golden/ketama_golden.c` asks libmemcached (Debian's libmemcached-dev, behaviour
//! `MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED`) for the server of 10,000 keys under six server lists
//! and weights; its output is committed as `tests/golden/ketama_golden.txt`. One test checks the
//! Rust ring against that file key by key; the other builds and runs the C program and checks
//! that libmemcached still prints the same file. The second needs `cc` and libmemcached-dev
//! (`scripts/install-test-deps.sh`) and fails, rather than skips, without them: CI has them.

use ferrocache_client::{KetamaRing, ServerSpec};
use std::path::{Path, PathBuf};
use std::process::Command;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// One `config` line of the golden file.
struct GoldenConfig {
    name: String,
    ring: KetamaRing,
}

fn read_golden(text: &str) -> (Vec<GoldenConfig>, Vec<(&str, Vec<usize>)>) {
    let mut configs = Vec::new();
    let mut keys = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut fields = line.split(' ');
        let first = fields.next().expect("a non-empty line");
        if first == "config" {
            let name = fields.next().expect("config name").to_owned();
            let servers: Vec<ServerSpec> = fields
                .map(|s| s.parse().expect("host:port:weight"))
                .collect();
            let ring = KetamaRing::new(&servers).expect("a valid server list");
            configs.push(GoldenConfig { name, ring });
        } else {
            let servers = fields.map(|i| i.parse().expect("server index")).collect();
            keys.push((first, servers));
        }
    }
    (configs, keys)
}

#[test]
fn rust_ring_places_every_golden_key_where_libmemcached_does() {
    let text = std::fs::read_to_string(golden_dir().join("ketama_golden.txt")).unwrap();
    let (configs, keys) = read_golden(&text);
    assert_eq!(configs.len(), 6);
    assert_eq!(keys.len(), 10_000);
    for (c, config) in configs.iter().enumerate() {
        let mismatches: Vec<_> = keys
            .iter()
            .filter(|(key, expected)| config.ring.server_for(key.as_bytes()) != expected[c])
            .map(|(key, _)| *key)
            .collect();
        assert!(
            mismatches.is_empty(),
            "config {}: {} of 10000 keys placed differently from libmemcached, first {:?}",
            config.name,
            mismatches.len(),
            &mismatches[..mismatches.len().min(5)]
        );
    }
}

#[test]
fn golden_file_still_comes_out_of_libmemcached() {
    let source = golden_dir().join("ketama_golden.c");
    let binary = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ketama_golden");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let build = Command::new(&compiler)
        .arg("-O2")
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .arg("-lmemcached")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the C compiler {compiler:?} ({e}); install it and libmemcached-dev \
                 (scripts/install-test-deps.sh)"
            )
        });
    assert!(
        build.status.success(),
        "building ketama_golden.c against libmemcached failed (is libmemcached-dev installed? \
         scripts/install-test-deps.sh):\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let run = Command::new(&binary).output().expect("run ketama_golden");
    assert!(
        run.status.success(),
        "ketama_golden failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let committed = std::fs::read(golden_dir().join("ketama_golden.txt")).unwrap();
    // The first line names the libmemcached version; the vectors must not depend on it.
    let without_version = |bytes: &[u8]| -> Vec<u8> {
        let start = bytes.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
        bytes[start..].to_vec()
    };
    assert!(
        without_version(&run.stdout) == without_version(&committed),
        "libmemcached now places keys differently from tests/golden/ketama_golden.txt; \
         regenerate it with ketama_golden.c and check the Rust ring against it"
    );
}

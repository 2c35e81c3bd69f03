//! The ketama consistent-hash ring, point for point as libmemcached's weighted ketama
//! (`MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED`) and twemproxy's `distribution: ketama` with
//! `hash: md5` build it, so that this client, PHP memcached, pylibmc and nutcracker agree on
//! where every key lives.
//!
//! Owns: server identities on the ring, the number of points per server, the ring and key
//! lookup. Must not touch: connections, health, ejection of dead servers (the caller rebuilds
//! the ring from the servers it considers live, as libmemcached does).
//!
//! The algorithm (`shared/reference/ketama.md`):
//! - a server's identity is `host` when its port is 11211, `host:port` otherwise (twemproxy
//!   uses the server's configured name instead when it has one);
//! - each server gets `floor(weight/W * 160/4 * n + 1e-10) * 4` points, computed in single
//!   precision as the C code does, `W` the sum of weights and `n` the server count;
//! - points come four at a time from `md5(identity + "-" + i)`, each a little-endian `u32`;
//! - a key goes to the first point at or after the first four bytes of `md5(key)` (read
//!   little-endian), wrapping round to the first point.
//!
//! `tests/ketama_golden.rs` checks this against vectors printed by libmemcached itself.

use md5::{Digest, Md5};
use std::fmt;

/// The port libmemcached and twemproxy leave out of a server's identity.
pub const DEFAULT_PORT: u16 = 11211;

/// Points per server of equal weight (libmemcached's `MEMCACHED_POINTS_PER_SERVER_KETAMA`).
const POINTS_PER_SERVER: f32 = 160.0;
/// Each md5 digest gives four points.
const POINTS_PER_HASH: u32 = 4;

/// One server as the ring sees it: where it is, how much of the key space it gets, and an
/// optional name that replaces `host:port` as its identity (twemproxy's `host:port:weight name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerSpec {
    pub host: String,
    pub port: u16,
    /// Relative share of keys; at least 1.
    pub weight: u32,
    /// twemproxy's server name: when set, it is the identity hashed onto the ring.
    pub name: Option<String>,
}

impl ServerSpec {
    /// A server of weight 1 and no name.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        ServerSpec {
            host: host.into(),
            port,
            weight: 1,
            name: None,
        }
    }

    /// The same server with another weight.
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// The same server with a twemproxy-style name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The string hashed onto the ring for this server.
    pub fn identity(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None if self.port == DEFAULT_PORT => self.host.clone(),
            None => format!("{}:{}", self.host, self.port),
        }
    }

    /// `host:port` for connecting.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl fmt::Display for ServerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.host, self.port, self.weight)
    }
}

/// Why a server list cannot make a ring, or a server string cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    #[error("a ketama ring needs at least one server")]
    NoServers,
    #[error("server {0} has weight 0; weights start at 1")]
    ZeroWeight(String),
    #[error("cannot read server {0:?}: expected host:port[:weight]")]
    BadServer(String),
}

impl std::str::FromStr for ServerSpec {
    type Err = RingError;

    /// `host:port` or `host:port:weight` (twemproxy's and the bench's `--target` format).
    fn from_str(text: &str) -> Result<Self, RingError> {
        let bad = || RingError::BadServer(text.to_owned());
        let mut parts = text.split(':');
        let host = parts.next().filter(|h| !h.is_empty()).ok_or_else(bad)?;
        let port = parts
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(bad)?;
        let weight = match parts.next() {
            Some(w) => w.parse::<u32>().map_err(|_| bad())?,
            None => 1,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(ServerSpec::new(host, port).with_weight(weight))
    }
}

/// A point on the ring: its position and the index (in the list given to
/// [`KetamaRing::new`]) of the server that owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Point {
    value: u32,
    server: u32,
}

/// The continuum: every server's points, sorted.
#[derive(Debug, Clone)]
pub struct KetamaRing {
    points: Vec<Point>,
    server_count: usize,
}

impl KetamaRing {
    /// Builds the ring for `servers`, in list order (order matters only for points of equal
    /// value, where the C code's unstable `qsort` is not reproducible anyway: such ties are a
    /// 1-in-2^32 event per pair of points).
    pub fn new(servers: &[ServerSpec]) -> Result<Self, RingError> {
        if servers.is_empty() {
            return Err(RingError::NoServers);
        }
        if let Some(zero) = servers.iter().find(|s| s.weight == 0) {
            return Err(RingError::ZeroWeight(zero.to_string()));
        }
        let total_weight: u64 = servers.iter().map(|s| u64::from(s.weight)).sum();
        let live_servers = servers.len() as f32;
        let mut points = Vec::new();
        for (index, server) in servers.iter().enumerate() {
            let server_index = u32::try_from(index).expect("fewer than 2^32 servers");
            let hashes = hashes_for(server.weight, total_weight, live_servers);
            let identity = server.identity();
            for i in 0..hashes {
                let digest = md5_of(format!("{identity}-{i}").as_bytes());
                for chunk in digest.chunks_exact(4) {
                    points.push(Point {
                        value: u32::from_le_bytes(chunk.try_into().expect("4-byte chunk")),
                        server: server_index,
                    });
                }
            }
        }
        points.sort_unstable();
        Ok(KetamaRing {
            points,
            server_count: servers.len(),
        })
    }

    /// Index of the server that owns `key`.
    pub fn server_for(&self, key: &[u8]) -> usize {
        self.server_for_hash(key_hash(key))
    }

    /// Index of the server that owns ring position `hash`.
    pub fn server_for_hash(&self, hash: u32) -> usize {
        // The first point at or after `hash`, wrapping: libmemcached's and twemproxy's binary
        // search both land there.
        let at = self.points.partition_point(|p| p.value < hash);
        let point = self.points.get(at).unwrap_or(&self.points[0]);
        point.server as usize
    }

    /// How many servers the ring was built from.
    pub fn server_count(&self) -> usize {
        self.server_count
    }

    /// How many points the ring holds (160 per server of average weight).
    pub fn point_count(&self) -> usize {
        self.points.len()
    }
}

/// md5 digests (four points each) for a server of `weight`, with the C code's arithmetic:
/// `floor((float)(pct * 160 / 4 * (float)n + 0.0000000001))`, the product in single precision
/// (so that a weight share like 1/3 rounds as it does in C), the epsilon added in double.
fn hashes_for(weight: u32, total_weight: u64, live_servers: f32) -> u32 {
    let pct = weight as f32 / total_weight as f32;
    let scaled = pct * POINTS_PER_SERVER / POINTS_PER_HASH as f32 * live_servers;
    let points = ((f64::from(scaled) + 0.0000000001).floor() as u32) * POINTS_PER_HASH;
    points / POINTS_PER_HASH
}

/// The ring position of a key: the first four bytes of its md5, little-endian (libmemcached's
/// and twemproxy's `hash_md5`).
pub fn key_hash(key: &[u8]) -> u32 {
    let digest = md5_of(key);
    u32::from_le_bytes(digest[..4].try_into().expect("md5 is 16 bytes"))
}

fn md5_of(bytes: &[u8]) -> [u8; 16] {
    Md5::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn equal_servers(n: usize) -> Vec<ServerSpec> {
        (0..n)
            .map(|i| ServerSpec::new(format!("10.1.0.{i}"), DEFAULT_PORT))
            .collect()
    }

    #[test]
    fn identity_drops_only_the_default_port() {
        assert_eq!(ServerSpec::new("a", 11211).identity(), "a");
        assert_eq!(ServerSpec::new("a", 11212).identity(), "a:11212");
        assert_eq!(
            ServerSpec::new("a", 11212).with_name("shard1").identity(),
            "shard1"
        );
    }

    #[test]
    fn equal_servers_get_160_points_each() {
        for n in 1..=12 {
            let ring = KetamaRing::new(&equal_servers(n)).unwrap();
            assert_eq!(ring.point_count(), 160 * n, "{n} servers");
        }
    }

    #[test]
    fn server_strings_parse_with_and_without_weight() {
        let spec: ServerSpec = "127.0.0.1:22122:3".parse().unwrap();
        assert_eq!(spec, ServerSpec::new("127.0.0.1", 22122).with_weight(3));
        let spec: ServerSpec = "localhost:11211".parse().unwrap();
        assert_eq!(spec.weight, 1);
        assert!("localhost".parse::<ServerSpec>().is_err());
        assert!("h:99999".parse::<ServerSpec>().is_err());
    }

    #[test]
    fn empty_lists_and_zero_weights_are_refused() {
        assert_eq!(KetamaRing::new(&[]).unwrap_err(), RingError::NoServers);
        let zero = [ServerSpec::new("a", 1).with_weight(0)];
        assert!(matches!(
            KetamaRing::new(&zero),
            Err(RingError::ZeroWeight(_))
        ));
    }

    #[test]
    fn lookup_wraps_past_the_last_point() {
        let ring = KetamaRing::new(&equal_servers(3)).unwrap();
        let first = ring.points[0].server as usize;
        assert_eq!(ring.server_for_hash(u32::MAX), first);
        assert_eq!(ring.server_for_hash(0), first);
    }

    /// Share of `keys` whose server changes between two rings, comparing by server identity.
    fn moved_share(before: &[ServerSpec], after: &[ServerSpec], keys: usize) -> f64 {
        let ring_before = KetamaRing::new(before).unwrap();
        let ring_after = KetamaRing::new(after).unwrap();
        let moved = (0..keys)
            .filter(|i| {
                let key = format!("key:{i}");
                before[ring_before.server_for(key.as_bytes())]
                    != after[ring_after.server_for(key.as_bytes())]
            })
            .count();
        moved as f64 / keys as f64
    }

    #[test]
    fn adding_or_removing_one_of_n_servers_moves_about_one_nth_of_keys() {
        for n in [3usize, 5, 8, 10] {
            let servers = equal_servers(n);
            let expected = 1.0 / n as f64;
            // Removing the middle server: only its keys move.
            let mut fewer = servers.clone();
            fewer.remove(n / 2);
            let removed = moved_share(&servers, &fewer, 20_000);
            assert!(
                (removed - expected).abs() < expected * 0.35,
                "removing 1 of {n}: {removed:.3} moved, expected about {expected:.3}"
            );
            // Adding an (n+1)th server takes about 1/(n+1) of the keys.
            let mut more = servers.clone();
            more.push(ServerSpec::new("10.1.1.99", DEFAULT_PORT));
            let added = moved_share(&servers, &more, 20_000);
            let expected_added = 1.0 / (n + 1) as f64;
            assert!(
                (added - expected_added).abs() < expected_added * 0.35,
                "adding to {n}: {added:.3} moved, expected about {expected_added:.3}"
            );
        }
    }

    #[test]
    fn weights_share_the_keys_in_proportion() {
        let servers = [
            ServerSpec::new("w1", DEFAULT_PORT).with_weight(1),
            ServerSpec::new("w3", DEFAULT_PORT).with_weight(3),
        ];
        let ring = KetamaRing::new(&servers).unwrap();
        let heavy = (0..40_000)
            .filter(|i| ring.server_for(format!("k{i}").as_bytes()) == 1)
            .count();
        let share = heavy as f64 / 40_000.0;
        assert!(
            (share - 0.75).abs() < 0.06,
            "weight-3 server got {share:.3}"
        );
    }

    proptest::proptest! {
        /// The binary search finds what a linear scan of the continuum finds: the first point
        /// at or after the hash, else the first point.
        #[test]
        fn lookup_matches_a_linear_scan(
            weights in proptest::collection::vec(1u32..20, 1..8),
            hashes in proptest::collection::vec(proptest::prelude::any::<u32>(), 50),
        ) {
            let servers: Vec<ServerSpec> = weights
                .iter()
                .enumerate()
                .map(|(i, &w)| ServerSpec::new(format!("h{i}"), 11211 + i as u16).with_weight(w))
                .collect();
            let ring = KetamaRing::new(&servers).unwrap();
            for hash in hashes {
                let expected = ring
                    .points
                    .iter()
                    .find(|p| p.value >= hash)
                    .unwrap_or(&ring.points[0])
                    .server as usize;
                proptest::prop_assert_eq!(ring.server_for_hash(hash), expected);
            }
        }
    }
}

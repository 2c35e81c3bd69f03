//! The cluster's node list that this node hands to clients, as an ElastiCache node does for
//! auto discovery (`config get cluster`): read from a file (`--cluster-config`), re-read on
//! SIGHUP and when the file changes, and pushed over the protocol (`config set cluster`) where
//! the operator allows it.
//!
//! Owns: the file format (one node a line, `host|ip|port` or `host:port`, `#` comments), the
//! list's version (up by one each time the list really changes), and the payload clients read
//! (`<version>\n<host>|<ip>|<port> ...\n`, hosts in alphabetical order as ElastiCache gives
//! them). Must not touch: other nodes (nodes never talk to each other: the list is what an
//! operator or a deployment tool wrote), or the reply framing (the protocol front's).

use ferrocache_protocol::client::encode_cluster_config as payload;
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// One node as clients are told of it: the type the clients' parser gives them, so the two
/// sides of the payload cannot drift (`ip` is empty when the list gives no address).
pub use ferrocache_protocol::client::ClusterNode as Node;

/// A node list that does not parse, with the line that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    pub line: usize,
    pub reason: String,
}

/// Parses a node list: one node a line (`host|ip|port`, `host||port`, or `host:port`,
/// `[v6]:port`), blank lines and `#` comments ignored. The nodes come back sorted by host, with
/// duplicates dropped.
pub fn parse_nodes(text: &str) -> Result<Vec<Node>, ParseError> {
    let mut nodes = Vec::new();
    for (number, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        for entry in line.split_whitespace() {
            nodes.push(parse_node(entry).map_err(|reason| ParseError {
                line: number + 1,
                reason,
            })?);
        }
    }
    if nodes.is_empty() {
        // Never a cluster; usually a file caught half written.
        return Err(ParseError {
            line: text.lines().count(),
            reason: "no nodes".to_string(),
        });
    }
    nodes.sort();
    nodes.dedup();
    Ok(nodes)
}

fn parse_node(entry: &str) -> Result<Node, String> {
    let (host, ip, port) = match entry.split('|').collect::<Vec<_>>()[..] {
        [host, ip, port] => (host, ip, port),
        [_] => {
            let (host, port) = entry
                .rsplit_once(':')
                .ok_or_else(|| format!("'{entry}' is neither host|ip|port nor host:port"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            // An address given as the host is also the node's address.
            let ip = if host.parse::<std::net::IpAddr>().is_ok() {
                host
            } else {
                ""
            };
            (host, ip, port)
        }
        _ => return Err(format!("'{entry}' is neither host|ip|port nor host:port")),
    };
    if host.is_empty() {
        return Err(format!("'{entry}' has no host"));
    }
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("'{ip}' is not an IP address"));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|&port| port != 0)
        .ok_or_else(|| format!("'{port}' is not a port"))?;
    Ok(Node {
        host: host.to_string(),
        ip: ip.to_string(),
        port,
    })
}

/// The payload of a `config set cluster`: a version line, then the nodes.
fn parse_payload(bytes: &[u8]) -> Result<(u64, Vec<Node>), String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the node list is not text".to_string())?;
    let (version, nodes) = text
        .split_once('\n')
        .ok_or_else(|| "no version line".to_string())?;
    let version = version
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("'{}' is not a version number", version.trim()))?;
    let nodes = parse_nodes(nodes).map_err(|error| error.reason)?;
    Ok((version, nodes))
}

#[derive(Debug)]
struct State {
    nodes: Vec<Node>,
    version: u64,
    /// Client flags a `config set` gave the payload (0 from the file).
    flags: u32,
    payload: Arc<[u8]>,
    /// The file's modification time and length when last read.
    read: Option<FileStamp>,
    /// A change seen once and not yet read: it is read when the next look finds the file the
    /// same, so a file being written is not read half-way.
    seen: Option<FileStamp>,
}

/// What tells that a file changed.
type FileStamp = (SystemTime, u64);

fn stamp(path: &Path) -> Option<FileStamp> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

/// This node's copy of the cluster's node list.
#[derive(Debug)]
pub struct Cluster {
    path: PathBuf,
    /// `config set cluster` is allowed.
    writable: bool,
    state: Mutex<State>,
}

impl Cluster {
    /// Reads the node list from `path` (version 1). A file that cannot be read or parsed is an
    /// error: the daemon does not start with a list it cannot serve.
    pub fn load(path: &Path, writable: bool) -> Result<Cluster, String> {
        let (nodes, read) = read_file(path)?;
        Ok(Cluster {
            path: path.to_path_buf(),
            writable,
            state: Mutex::new(State {
                payload: payload(1, &nodes).into(),
                nodes,
                version: 1,
                flags: 0,
                read,
                seen: None,
            }),
        })
    }

    /// The node list the settings name, if any (`--cluster-config`).
    pub fn from_settings(settings: &crate::cli::Settings) -> Result<Option<Cluster>, String> {
        settings
            .cluster_config
            .as_deref()
            .map(|path| Cluster::load(path, settings.cluster_config_writable))
            .transpose()
    }

    /// Re-reads the file (SIGHUP, or a change noticed by [`Cluster::reload_if_changed`]).
    /// Returns whether the list changed; a file that does not parse keeps the old list and
    /// says why.
    pub fn reload(&self) -> Result<bool, String> {
        let result = read_file(&self.path);
        let mut state = self.state.lock();
        state.seen = None;
        let (nodes, read) = result?;
        state.read = read;
        Ok(self.replace(&mut state, nodes, None, 0))
    }

    /// Called about once a second: re-reads the file once it has changed and then stayed the
    /// same for one look.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let now = stamp(&self.path);
        {
            let mut state = self.state.lock();
            if now == state.read {
                state.seen = None;
                return Ok(false);
            }
            if now != state.seen {
                state.seen = now;
                return Ok(false);
            }
        }
        self.reload()
    }

    /// `config set cluster`: the operator's list and version.
    pub fn set(&self, flags: u32, bytes: &[u8]) -> Result<(), ConfigSetRefusal> {
        if !self.writable {
            return Err(ConfigSetRefusal::NotAllowed);
        }
        let (version, nodes) = parse_payload(bytes).map_err(ConfigSetRefusal::Malformed)?;
        let mut state = self.state.lock();
        self.replace(&mut state, nodes, Some(version), flags);
        Ok(())
    }

    /// Installs `nodes`; the version goes up by one when they differ (or becomes `version`
    /// when an operator pushes one).
    fn replace(
        &self,
        state: &mut State,
        nodes: Vec<Node>,
        version: Option<u64>,
        flags: u32,
    ) -> bool {
        let changed = nodes != state.nodes;
        let version = match version {
            Some(version) => version,
            None if changed => state.version + 1,
            None => return false,
        };
        if changed || version != state.version {
            log::info!("cluster config version {version}: {} node(s)", nodes.len());
        }
        state.payload = payload(version, &nodes).into();
        state.nodes = nodes;
        state.version = version;
        state.flags = flags;
        changed
    }

    /// The client flags and payload `config get cluster` answers with.
    pub fn get(&self) -> (u32, Arc<[u8]>) {
        let state = self.state.lock();
        (state.flags, Arc::clone(&state.payload))
    }

    /// The list's version (`curr_config`).
    pub fn version(&self) -> u64 {
        self.state.lock().version
    }
}

/// Why a `config set cluster` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSetRefusal {
    /// The operator did not allow it (`--cluster-config-writable`).
    NotAllowed,
    /// The payload is not a version line and a node list.
    Malformed(String),
}

fn read_file(path: &Path) -> Result<(Vec<Node>, Option<FileStamp>), String> {
    let read = stamp(path);
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read cluster config {}: {e}", path.display()))?;
    let nodes =
        parse_nodes(&text).map_err(|e| format!("cluster config {}: {e}", path.display()))?;
    Ok((nodes, read))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_line_forms_and_comments() {
        let nodes = parse_nodes(
            "# the cluster\n\
             b.example|10.0.0.2|11211\n\
             a.example||11212   # no address\n\
             10.0.0.3:11213\n\
             \n\
             [::1]:11214 c.example:1\n",
        )
        .unwrap();
        let shown: Vec<String> = nodes
            .iter()
            .map(|n| format!("{}|{}|{}", n.host, n.ip, n.port))
            .collect();
        assert_eq!(
            shown,
            [
                "10.0.0.3|10.0.0.3|11213",
                "::1|::1|11214",
                "a.example||11212",
                "b.example|10.0.0.2|11211",
                "c.example||1"
            ]
        );
        assert_eq!(
            payload(7, &nodes[3..4]),
            b"7\nb.example|10.0.0.2|11211\n".to_vec()
        );
    }

    #[test]
    fn bad_lines_say_where() {
        let error = parse_nodes("a:1\nb|c|1\n").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(parse_nodes("a:0").is_err());
        assert!(parse_nodes("a:x").is_err());
        assert!(parse_nodes("|1.2.3.4|5").is_err());
        assert!(parse_nodes("# nothing\n").is_err(), "a cluster has nodes");
    }

    #[test]
    fn the_version_moves_only_when_the_list_does() {
        let dir = std::env::temp_dir().join(format!("cluster-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("nodes");
        std::fs::write(&path, "a:1\nb:2\n").unwrap();
        let cluster = Cluster::load(&path, true).unwrap();
        assert_eq!(cluster.version(), 1);
        std::fs::write(&path, "b:2\na:1\n# reordered\n").unwrap();
        assert!(!cluster.reload().unwrap());
        assert_eq!(cluster.version(), 1);
        std::fs::write(&path, "a:1\nb:2\nc:3\n").unwrap();
        assert!(cluster.reload().unwrap());
        assert_eq!(cluster.version(), 2);
        std::fs::write(&path, "a:1\nbroken\n").unwrap();
        assert!(cluster.reload().is_err());
        assert_eq!(&cluster.get().1[..], b"2\na||1 b||2 c||3\n");
        cluster.set(0, b"9\nx|1.2.3.4|5\n").unwrap();
        assert_eq!(
            (cluster.version(), &cluster.get().1[..]),
            (9, &b"9\nx|1.2.3.4|5\n"[..])
        );
        assert!(matches!(
            cluster.set(0, b"nine\n"),
            Err(ConfigSetRefusal::Malformed(_))
        ));
        let read_only = Cluster::load(&path.with_file_name("missing"), false);
        assert!(read_only.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Idle-connection mode (W6): open many connections that each send one request and then sit
//! idle, and report how much the server's resident memory grew per connection.
//!
//! Owns: opening, priming and holding the connections; reading the server's RSS from /proc.
//! Must not touch: the load engine.

use crate::engine::BenchError;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug, Clone, serde::Serialize)]
pub struct IdleReport {
    pub connections: usize,
    pub rss_before_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    pub kib_per_connection: Option<f64>,
}

/// Resident set size of `pid` in KiB, from /proc/PID/status.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn idle(
    target: SocketAddr,
    connections: usize,
    server_pid: Option<u32>,
    settle: Duration,
) -> Result<IdleReport, BenchError> {
    let rss_before = server_pid.and_then(rss_kib);
    let io_error = |source| BenchError::Io { target, source };
    let mut held = Vec::with_capacity(connections);
    let mut reply = [0u8; 512];
    for _ in 0..connections {
        let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(5))
            .map_err(|source| BenchError::Connect { target, source })?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(io_error)?;
        // One request, so the server has set the connection up and read from it, then idle.
        stream.write_all(b"get key:1\r\n").map_err(io_error)?;
        let mut got = 0;
        while !reply[..got].ends_with(b"END\r\n") {
            if got == reply.len() {
                return Err(BenchError::Usage(
                    "idle mode expects a short reply to `get key:1`".into(),
                ));
            }
            let n = stream.read(&mut reply[got..]).map_err(io_error)?;
            if n == 0 {
                return Err(BenchError::Closed { target });
            }
            got += n;
        }
        held.push(stream);
    }
    // Give the server time to return per-connection buffers it keeps only while busy.
    std::thread::sleep(settle);
    let rss_after = server_pid.and_then(rss_kib);
    let kib_per_connection = match (rss_before, rss_after) {
        (Some(before), Some(after)) if connections > 0 => {
            Some(after.saturating_sub(before) as f64 / connections as f64)
        }
        _ => None,
    };
    drop(held);
    Ok(IdleReport {
        connections,
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        kib_per_connection,
    })
}

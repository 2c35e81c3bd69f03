//! Memory-fill mode (W4): store sequential keys until the server starts evicting, then report
//! how many items it holds. Measures memory efficiency: items per megabyte of `-m`.
//!
//! Owns: the fill loop and its stop rule. Must not touch: the load engine.

use crate::cli::{KeyFormat, SizeRange};
use crate::engine::BenchError;
use ferrocache_client::{Client, ClientConfig, Connection, ServerSpec, Timeouts};
use ferrocache_protocol::StatsGroup;
use ferrocache_protocol::client::{Reply, Store, encode_store};
use std::time::{Duration, Instant};

/// What a fill found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FillReport {
    pub curr_items: u64,
    pub evictions: u64,
    pub sets_sent: u64,
    pub bytes: u64,
    pub limit_maxbytes: u64,
    pub seconds: f64,
}

/// Never fill more than this many keys (a server that never evicts is a bug worth a stop).
const MAX_KEYS: u64 = 200_000_000;

fn stat(stats: &std::collections::HashMap<String, String>, name: &str) -> u64 {
    stats
        .get(name)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

pub fn fill(
    target: &ServerSpec,
    format: &KeyFormat,
    sizes: SizeRange,
    batch: usize,
) -> Result<FillReport, BenchError> {
    let timeouts = Timeouts {
        read: Some(Duration::from_secs(30)),
        write: Some(Duration::from_secs(30)),
        ..Timeouts::default()
    };
    let address = target.address();
    let mut connection = Connection::connect(&address, &timeouts)?;
    let stats_client = Client::new(
        vec![target.clone()],
        ClientConfig {
            timeouts,
            ..ClientConfig::default()
        },
    )?;
    let value = vec![b'v'; sizes.max];
    let mut key = Vec::with_capacity(64);
    let started = Instant::now();
    let mut next = 0u64;
    let batch = batch.max(1);
    loop {
        for i in 0..batch {
            key.clear();
            format.write(next, &mut key);
            let len = sizes.min + (next as usize % (sizes.max - sizes.min + 1));
            // All but the batch's last set go without a reply; the last one's STORED says the
            // server has processed the whole batch.
            let store = Store {
                noreply: i + 1 < batch,
                ..Store::set(&key, &value[..len])
            };
            encode_store(connection.write_buffer(), &store)
                .map_err(|e| BenchError::Usage(format!("key format: {e}")))?;
            next += 1;
        }
        connection.flush()?;
        let stored = connection.read_reply(|reply| Ok(matches!(reply, Reply::Stored)))?;
        if !stored {
            return Err(BenchError::Usage(
                "the batch's last set was not stored".into(),
            ));
        }
        let stats = stats_client.server_stats(0, StatsGroup::General)?;
        let evictions = stat(&stats, "evictions");
        if evictions > 0 || next >= MAX_KEYS {
            return Ok(FillReport {
                curr_items: stat(&stats, "curr_items"),
                evictions,
                sets_sent: next,
                bytes: stat(&stats, "bytes"),
                limit_maxbytes: stat(&stats, "limit_maxbytes"),
                seconds: started.elapsed().as_secs_f64(),
            });
        }
    }
}

//! Memory-fill mode. W4: store sequential keys until the server starts evicting, then report
//! how many items it holds (items per megabyte of `-m`). W9 (`--fill-keys`): write a given
//! number of sequential keys once, with value sizes drawn at random from the range, then
//! report the items held and how many of the newest keys are still there (memory that
//! follows mixed sizes, and recency under pressure).
//!
//! Owns: the fill loop, its stop rule and the newest keys' check. Must not touch: the load
//! engine.

use crate::cli::{KeyFormat, SizeRange};
use crate::engine::BenchError;
use ferrocache_client::{Client, ClientConfig, Connection, ServerSpec, Timeouts};
use ferrocache_protocol::StatsGroup;
use ferrocache_protocol::client::{Reply, Store, encode_store};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
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
    /// With `--fill-keys`: of the newest `newest_checked` keys, how many are still there.
    pub newest_checked: u64,
    pub newest_kept: u64,
}

/// How long a fill goes on.
#[derive(Debug, Clone, Copy)]
pub enum FillStop {
    /// Until the first eviction (W4); value sizes cycle through the range.
    FirstEviction,
    /// After exactly `keys` keys (W9); value sizes drawn uniformly from the range with `seed`,
    /// then the newest `newest` keys are looked up.
    Keys { keys: u64, newest: u64, seed: u64 },
}

/// Keys of the newest `count` of `written` still held, asked in multi-gets of 100.
fn newest_kept(
    client: &Client,
    format: &KeyFormat,
    written: u64,
    count: u64,
) -> Result<u64, BenchError> {
    let mut kept = 0u64;
    let mut first = written.saturating_sub(count);
    while first < written {
        let last = (first + 100).min(written);
        let keys: Vec<Vec<u8>> = (first..last)
            .map(|n| {
                let mut key = Vec::with_capacity(64);
                format.write(n, &mut key);
                key
            })
            .collect();
        kept += client.get_multi(&keys)?.len() as u64;
        first = last;
    }
    Ok(kept)
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
    stop: FillStop,
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
    let span = (sizes.max - sizes.min + 1) as u64;
    // The value sizes of a `Keys` fill: seeded, so the same for every server.
    let (last_key, mut rng) = match stop {
        FillStop::FirstEviction => (MAX_KEYS, SmallRng::seed_from_u64(0)),
        FillStop::Keys { keys, seed, .. } => (keys, SmallRng::seed_from_u64(seed)),
    };
    loop {
        let in_batch = batch.min((last_key - next) as usize).max(1);
        for i in 0..in_batch {
            key.clear();
            format.write(next, &mut key);
            let len = match stop {
                FillStop::FirstEviction => sizes.min + (next % span) as usize,
                FillStop::Keys { .. } => rng.random_range(sizes.min..=sizes.max),
            };
            // All but the batch's last set go without a reply; the last one's STORED says the
            // server has processed the whole batch.
            let store = Store {
                noreply: i + 1 < in_batch,
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
        // A W4 fill asks after every batch whether the server evicts; a W9 fill only once
        // all its keys are written.
        let newest = match stop {
            FillStop::FirstEviction => 0,
            FillStop::Keys { newest, .. } if next >= last_key => newest,
            FillStop::Keys { .. } => continue,
        };
        let stats = stats_client.server_stats(0, StatsGroup::General)?;
        let evictions = stat(&stats, "evictions");
        let finished = match stop {
            FillStop::FirstEviction => evictions > 0 || next >= last_key,
            FillStop::Keys { .. } => true,
        };
        if finished {
            let seconds = started.elapsed().as_secs_f64();
            let newest_checked = newest.min(next);
            let newest_kept = if newest_checked > 0 {
                newest_kept(&stats_client, format, next, newest_checked)?
            } else {
                0
            };
            return Ok(FillReport {
                curr_items: stat(&stats, "curr_items"),
                evictions,
                sets_sent: next,
                bytes: stat(&stats, "bytes"),
                limit_maxbytes: stat(&stats, "limit_maxbytes"),
                seconds,
                newest_checked,
                newest_kept,
            });
        }
    }
}

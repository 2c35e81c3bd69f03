//! db-cache's load mode: the same zipf(0.9) sequence of item reads sent to the service without
//! a cache and with `get_or_load`, and what the cache changed: database reads, hit ratio, and
//! the p50/p99 of the HTTP requests.
//!
//! Owns: the workload (seeded, so both runs read the same ids in the same order), the
//! latency histograms, the report. Must not touch: the service's logic.

use crate::db::Database;
use crate::db_cache::{self, CacheMode, DbCache};
use crate::http_client::{HttpConnection, HttpError};
use ferrocache_client::AsyncClient;
use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Zipf};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The workload.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub rows: i64,
    pub requests: usize,
    pub connections: usize,
    /// The zipf exponent (0.9: a few hot items, a long tail).
    pub zipf: f64,
    pub seed: u64,
}

/// One run's figures.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub mode: CacheMode,
    pub requests: usize,
    pub db_reads: u64,
    pub hit_ratio: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub elapsed: Duration,
}

/// The item ids to read, in order.
pub fn ids(workload: &Workload) -> Vec<i64> {
    let zipf = Zipf::new(workload.rows as f64, workload.zipf).expect("zipf parameters");
    let mut rng = StdRng::seed_from_u64(workload.seed);
    (0..workload.requests)
        .map(|_| zipf.sample(&mut rng) as i64)
        .collect()
}

/// Sends `ids` over `connections` keep-alive connections, each taking every n-th id; returns
/// the merged latency histogram (microseconds).
pub async fn drive(
    address: SocketAddr,
    ids: Arc<Vec<i64>>,
    connections: usize,
) -> Result<Histogram<u64>, HttpError> {
    let mut workers = Vec::with_capacity(connections);
    for worker in 0..connections {
        let ids = ids.clone();
        workers.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new(3).expect("histogram");
            let mut connection = HttpConnection::connect(address).await?;
            for id in ids.iter().skip(worker).step_by(connections) {
                let started = Instant::now();
                let reply = connection
                    .request("GET", &format!("/items/{id}"), "")
                    .await?;
                assert!(
                    reply.status == 200 || reply.status == 404,
                    "{}",
                    reply.text()
                );
                histogram.saturating_record(started.elapsed().as_micros() as u64);
            }
            Ok::<_, HttpError>(histogram)
        }));
    }
    let mut merged = Histogram::<u64>::new(3).expect("histogram");
    for worker in workers {
        let histogram = worker.await.expect("load worker panicked")?;
        merged.add(histogram).expect("histograms of one shape");
    }
    Ok(merged)
}

/// Runs the workload against a fresh in-process service in `mode` over `db`.
pub async fn run(
    db: Arc<Database>,
    cache: AsyncClient,
    mode: CacheMode,
    ttl: u32,
    workload: &Workload,
) -> Result<RunReport, Box<dyn std::error::Error>> {
    cache.flush_all().await?;
    let app = DbCache::new(db.clone(), cache, mode, ttl);
    let (address, server) = crate::serve("127.0.0.1:0", db_cache::router(app.clone())).await?;
    let ids = Arc::new(ids(workload));
    let reads_before = db.reads();
    let started = Instant::now();
    let histogram = drive(address, ids, workload.connections).await?;
    let elapsed = started.elapsed();
    server.abort();
    let stats = app.stats();
    Ok(RunReport {
        mode,
        requests: workload.requests,
        db_reads: db.reads() - reads_before,
        hit_ratio: stats.hit_ratio,
        p50: Duration::from_micros(histogram.value_at_quantile(0.50)),
        p99: Duration::from_micros(histogram.value_at_quantile(0.99)),
        elapsed,
    })
}

/// The report's table.
pub fn print(workload: &Workload, reports: &[RunReport]) {
    println!(
        "zipf {} over {} rows: {} GETs on {} keep-alive connections",
        workload.zipf, workload.rows, workload.requests, workload.connections
    );
    println!(
        "{:<14} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "mode", "db reads", "hit ratio", "p50 ms", "p99 ms", "req/s"
    );
    for report in reports {
        println!(
            "{:<14} {:>10} {:>10.3} {:>10.3} {:>10.3} {:>10.0}",
            match report.mode {
                CacheMode::Off => "no cache",
                CacheMode::Lease => "get_or_load",
                CacheMode::Naive => "cache-aside",
            },
            report.db_reads,
            report.hit_ratio,
            report.p50.as_secs_f64() * 1e3,
            report.p99.as_secs_f64() * 1e3,
            report.requests as f64 / report.elapsed.as_secs_f64(),
        );
    }
    if let [without, with, ..] = reports {
        let removed = 1.0 - with.db_reads as f64 / without.db_reads.max(1) as f64;
        println!(
            "database reads removed by the cache: {} of {} ({:.1}%)",
            without.db_reads - with.db_reads.min(without.db_reads),
            without.db_reads,
            removed * 100.0
        );
    }
}

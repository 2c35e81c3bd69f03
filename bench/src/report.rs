//! What a run prints: a summary table for people, or one JSON object (`--json`) for scripts
//! such as `compare.sh`.
//!
//! Owns: the report's fields, units and layout. Must not touch: measurement.

use crate::engine::Tally;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// The latency of the requests that completed in one interval of the measured phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntervalLatency {
    /// End of the interval, in seconds since measuring began.
    pub end_s: f64,
    pub requests: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
}

/// One bucket of the latency histogram: the requests that took at most `upper_ms` and more
/// than the bucket before's bound.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bucket {
    pub upper_ms: f64,
    pub requests: u64,
}

/// Width of the histogram's first bucket, and the factor from one bucket's bound to the next:
/// logarithmic, so that the body and the tail of a latency distribution both show.
const FIRST_BUCKET_NS: u64 = 10_000;
const BUCKET_GROWTH: f64 = 1.25;

/// The report of a load or cache-aside run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub mode: &'static str,
    /// `text` or `binary`.
    pub protocol: &'static str,
    pub targets: Vec<String>,
    pub threads: usize,
    pub connections: usize,
    pub pipeline: usize,
    pub ops_per_sec: f64,
    pub requests: u64,
    pub gets: u64,
    pub sets: u64,
    pub key_hits: u64,
    pub key_misses: u64,
    pub hit_ratio: Option<f64>,
    pub errors: u64,
    pub fill_sets: u64,
    pub warmup_requests: u64,
    pub seconds: f64,
    pub latency: Latency,
    /// CPU the generator itself used during the run (warm-up included), in percent of one
    /// core: what it took from the server on a shared machine.
    pub client_cpu_percent: Option<f64>,
    /// `--interval` in seconds, and the latency of each interval (empty without it).
    pub interval_s: Option<f64>,
    pub intervals: Vec<IntervalLatency>,
    /// The measured requests by latency, in logarithmic buckets (empty ones left out).
    pub histogram: Vec<Bucket>,
}

impl LoadReport {
    pub fn new(
        mode: &'static str,
        targets: Vec<String>,
        shape: (usize, usize, usize),
        tally: &Tally,
        interval: Option<Duration>,
    ) -> Self {
        let ms = |ns: u64| ns as f64 / 1e6;
        let h = &tally.latency_ns;
        let looked_up = tally.key_hits + tally.key_misses;
        LoadReport {
            mode,
            protocol: "text",
            targets,
            threads: shape.0,
            connections: shape.1,
            pipeline: shape.2,
            ops_per_sec: tally.throughput,
            requests: tally.requests,
            gets: tally.gets,
            sets: tally.sets,
            key_hits: tally.key_hits,
            key_misses: tally.key_misses,
            hit_ratio: (looked_up > 0).then(|| tally.key_hits as f64 / looked_up as f64),
            errors: tally.errors,
            fill_sets: tally.fill_sets,
            warmup_requests: tally.warmup_requests,
            seconds: tally.elapsed.as_secs_f64(),
            latency: Latency {
                p50_ms: ms(h.value_at_quantile(0.5)),
                p90_ms: ms(h.value_at_quantile(0.9)),
                p99_ms: ms(h.value_at_quantile(0.99)),
                p999_ms: ms(h.value_at_quantile(0.999)),
                max_ms: ms(h.max()),
                mean_ms: h.mean() / 1e6,
            },
            client_cpu_percent: None,
            interval_s: interval.map(|i| i.as_secs_f64()),
            intervals: interval
                .map(|i| intervals(&tally.intervals, i))
                .unwrap_or_default(),
            histogram: buckets(h),
        }
    }

    /// A two-column table.
    pub fn table(&self) -> String {
        let mut rows = vec![
            ("mode", self.mode.to_owned()),
            ("protocol", self.protocol.to_owned()),
            ("targets", self.targets.join(", ")),
            (
                "shape",
                format!(
                    "{} thread(s) x {} connection(s) x {} in flight",
                    self.threads, self.connections, self.pipeline
                ),
            ),
            ("throughput", format!("{:.0} ops/s", self.ops_per_sec)),
            (
                "requests",
                format!(
                    "{} in {:.2} s ({} gets, {} sets; {} warm-up)",
                    self.requests, self.seconds, self.gets, self.sets, self.warmup_requests
                ),
            ),
            (
                "keys hit / missed",
                format!("{} / {}", self.key_hits, self.key_misses),
            ),
        ];
        if let Some(ratio) = self.hit_ratio {
            rows.push(("hit ratio", format!("{ratio:.4}")));
        }
        if self.fill_sets > 0 {
            rows.push(("sets after misses", self.fill_sets.to_string()));
        }
        rows.push(("errors", self.errors.to_string()));
        let l = &self.latency;
        rows.push((
            "latency ms",
            format!(
                "p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (mean {:.3})",
                l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms
            ),
        ));
        if let Some(cpu) = self.client_cpu_percent {
            rows.push(("generator CPU", format!("{cpu:.0}% of one core")));
        }
        render(&rows)
    }
}

/// Percentiles of each interval's histogram.
fn intervals(histograms: &[Histogram<u64>], interval: Duration) -> Vec<IntervalLatency> {
    let ms = |ns: u64| ns as f64 / 1e6;
    histograms
        .iter()
        .enumerate()
        .map(|(index, h)| IntervalLatency {
            end_s: (index + 1) as f64 * interval.as_secs_f64(),
            requests: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
        })
        .collect()
}

/// The non-empty logarithmic buckets of `h`.
fn buckets(h: &Histogram<u64>) -> Vec<Bucket> {
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_log(FIRST_BUCKET_NS, BUCKET_GROWTH)
        .filter(|step| step.count_since_last_iteration() > 0)
        .map(|step| Bucket {
            upper_ms: step.value_iterated_to() as f64 / 1e6,
            requests: step.count_since_last_iteration(),
        })
        .collect()
}

/// CPU seconds (user + system) this process has used, from /proc/self/stat (whose clock ticks
/// are USER_HZ, 100 per second on Linux whatever the kernel's HZ).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// `| name | value |` rows, aligned.
pub fn render(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (name, value) in rows {
        out.push_str(&format!("{name:>width$}  {value}\n"));
    }
    out
}

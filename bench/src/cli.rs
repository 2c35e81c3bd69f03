//! The command line: every knob of a run, with memtier_benchmark-like names where one exists.
//!
//! Owns: flag names, defaults, parsing of value ranges, ratios and key formats. Must not touch:
//! sockets or measurement (the engine and the modes).

use clap::{Parser, Subcommand, ValueEnum};
use ferrocache_client::ServerSpec;
use std::time::Duration;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "ferrocache-bench",
    about = "Load generator for memcached-protocol servers: pipelining, zipf keys, \
             cache-aside, memory fill, idle connections, HDR latency",
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    /// Instead of a run: draw runs' JSON reports into one SVG.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// What to run.
    #[arg(long, value_enum, default_value_t = Mode::Load)]
    pub mode: Mode,

    /// Protocol of the load and cache-aside modes: text, or binary (single-key gets as GET,
    /// multi-gets as GETKQ... NOOP, sets as SET, cache-aside fills as SETQ).
    #[arg(long, value_enum, default_value_t = Protocol::Text)]
    pub protocol: Protocol,

    /// Server(s) as `host:port[:weight]`; several are routed by libmemcached-compatible ketama.
    #[arg(short = 's', long = "target", default_value = "127.0.0.1:11211", num_args = 1.., value_delimiter = ',')]
    pub targets: Vec<ServerSpec>,

    /// Client threads, each driving its connections with one mio event loop.
    #[arg(short = 't', long, default_value_t = 1)]
    pub threads: usize,

    /// Connections per thread (per target when there are several).
    #[arg(short = 'c', long, default_value_t = 50)]
    pub connections: usize,

    /// Requests in flight per connection (pipelining).
    #[arg(short = 'P', long, default_value_t = 1)]
    pub pipeline: usize,

    /// Seconds to measure (ignored when --requests is given).
    #[arg(short = 'd', long, default_value_t = 10.0)]
    pub duration: f64,

    /// Requests to measure, over all threads, instead of a duration (a multi-get is one request).
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,

    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,

    /// Requests of warm-up before measuring (instead of --warmup seconds).
    #[arg(long)]
    pub warmup_requests: Option<u64>,

    /// set:get ratio, as memtier's --ratio (1:9 is 10% sets).
    #[arg(long, default_value = "1:9", value_parser = parse_ratio)]
    pub ratio: Ratio,

    /// Keys per get (1 = single-key get; more = multi-get).
    #[arg(long, default_value_t = 1)]
    pub multiget: usize,

    /// Draw a multi-get's keys without repeats (default: independently, repeats allowed).
    #[arg(long)]
    pub distinct_keys: bool,

    /// Number of distinct keys (key indices 0..N).
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,

    /// How keys are picked.
    #[arg(long, value_enum, default_value_t = KeyPattern::Uniform)]
    pub key_pattern: KeyPattern,

    /// Zipf exponent for --key-pattern zipf.
    #[arg(long, default_value_t = 0.9)]
    pub zipf_exponent: f64,

    /// Key template; `{n}` is replaced by the key index (W4: key:0000000000000000000000:{n}).
    #[arg(long, default_value = "key:{n}", value_parser = parse_key_format)]
    pub key_format: KeyFormat,

    /// Value size in bytes: fixed (100) or a uniform range (100-1000).
    #[arg(long, default_value = "100", value_parser = parse_size_range)]
    pub value_size: SizeRange,

    /// Set every key once before the run (pipelined, not measured).
    #[arg(long)]
    pub prefill: bool,

    /// Fixed total request rate (requests/s over all connections); latency is measured from
    /// each request's scheduled time, so a stalled server is not hidden.
    #[arg(long)]
    pub rate: Option<f64>,

    /// Idle mode: connections to open.
    #[arg(long, default_value_t = 5000)]
    pub idle_connections: usize,

    /// Idle mode: PID of the server, whose RSS is read from /proc before and after.
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Fill mode: check `stats` after this many sets.
    #[arg(long, default_value_t = 2000)]
    pub fill_batch: usize,

    /// Fill mode: write exactly this many keys once (value sizes drawn at random from
    /// --value-size with --seed) instead of stopping at the first eviction (W9).
    #[arg(long)]
    pub fill_keys: Option<u64>,

    /// Fill mode with --fill-keys: how many of the newest keys to look up afterwards.
    #[arg(long, default_value_t = 10_000)]
    pub newest: u64,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,

    /// No progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,

    /// Seed of the key and operation choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Speak TLS (load and cache-aside modes), verifying the server against this CA (PEM)
    #[arg(long, value_name = "CA_FILE")]
    pub tls: Option<std::path::PathBuf>,

    /// Load and cache-aside modes: also report p50/p99/p99.9 of every interval of this many
    /// seconds (in the JSON as `intervals`), for plots of latency against time.
    #[arg(long, value_name = "SECONDS", value_parser = parse_interval)]
    pub interval: Option<f64>,

    /// Load and cache-aside modes: write `percentiles.svg` (p50/p99/p99.9 against time, per
    /// `--interval`, 1 s unless given) and `histogram.svg` (the latency histogram) into DIR.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<std::path::PathBuf>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Draws one SVG from the JSON reports of several runs made with `--interval` (for
    /// instance one workload against each server): percentiles against time above, the
    /// latency histogram below, one colour per run.
    Plot(PlotArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct PlotArgs {
    /// The SVG to write.
    #[arg(short = 'o', long)]
    pub out: std::path::PathBuf,

    /// Heading of the figure.
    #[arg(long, default_value = "latency")]
    pub title: String,

    /// Runs as LABEL=REPORT.json (the `--json` output of a run), drawn in this order.
    #[arg(required = true, value_parser = parse_labelled_path)]
    pub runs: Vec<(String, std::path::PathBuf)>,
}

fn parse_interval(text: &str) -> Result<f64, String> {
    let seconds: f64 = text.trim().parse().map_err(|e| format!("{text:?}: {e}"))?;
    // At least a millisecond: each interval holds a histogram.
    if !(0.001..=3600.0).contains(&seconds) {
        return Err(format!("{text:?}: an interval is 0.001 to 3600 seconds"));
    }
    Ok(seconds)
}

fn parse_labelled_path(text: &str) -> Result<(String, std::path::PathBuf), String> {
    match text.split_once('=') {
        Some((label, path)) if !label.is_empty() && !path.is_empty() => {
            Ok((label.to_owned(), path.into()))
        }
        _ => Err(format!("{text:?}: expected LABEL=FILE.json")),
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// gets and sets at --ratio.
    Load,
    /// Multi-get --multiget keys; every miss is then set with noreply (W5); reports the hit
    /// ratio after warm-up.
    CacheAside,
    /// Sets sequential keys until `stats` shows evictions, then reports curr_items (W4).
    Fill,
    /// Opens --idle-connections connections that each send one request and go idle (W6).
    Idle,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Text,
    Binary,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPattern {
    Uniform,
    /// 0, 1, 2, ... wrapping at --keys (each thread its own stride).
    Sequential,
    /// Zipf over --keys with --zipf-exponent; key 0 the most popular.
    Zipf,
}

/// set:get weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio {
    pub sets: u32,
    pub gets: u32,
}

impl Ratio {
    pub fn set_share(&self) -> f64 {
        f64::from(self.sets) / f64::from(self.sets + self.gets)
    }
}

fn parse_ratio(text: &str) -> Result<Ratio, String> {
    let (sets, gets) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?}: expected SETS:GETS, e.g. 1:9"))?;
    let parse = |n: &str| n.trim().parse::<u32>().map_err(|e| format!("{n:?}: {e}"));
    let ratio = Ratio {
        sets: parse(sets)?,
        gets: parse(gets)?,
    };
    if ratio.sets + ratio.gets == 0 {
        return Err("a ratio of 0:0 sends nothing".into());
    }
    Ok(ratio)
}

/// A key template split around its `{n}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFormat {
    pub prefix: String,
    pub suffix: String,
}

impl KeyFormat {
    /// Writes key `n` into `out`.
    #[inline]
    pub fn write(&self, n: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        out.extend_from_slice(self.suffix.as_bytes());
    }

    /// The index of a key this format wrote.
    #[inline]
    pub fn index_of(&self, key: &[u8]) -> Option<u64> {
        let digits = key
            .strip_prefix(self.prefix.as_bytes())?
            .strip_suffix(self.suffix.as_bytes())?;
        ferrocache_protocol::number::parse_u64(digits)
    }
}

fn parse_key_format(text: &str) -> Result<KeyFormat, String> {
    let (prefix, suffix) = text
        .split_once("{n}")
        .ok_or_else(|| format!("{text:?}: the key format needs a {{n}}"))?;
    if suffix.contains("{n}") || text.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!("{text:?}: one {{n}}, no spaces or control bytes"));
    }
    Ok(KeyFormat {
        prefix: prefix.to_owned(),
        suffix: suffix.to_owned(),
    })
}

/// Value sizes, drawn uniformly from `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeRange {
    pub min: usize,
    pub max: usize,
}

fn parse_size_range(text: &str) -> Result<SizeRange, String> {
    let parse = |n: &str| n.trim().parse::<usize>().map_err(|e| format!("{n:?}: {e}"));
    let range = match text.split_once('-') {
        Some((min, max)) => SizeRange {
            min: parse(min)?,
            max: parse(max)?,
        },
        None => {
            let size = parse(text)?;
            SizeRange {
                min: size,
                max: size,
            }
        }
    };
    if range.min > range.max {
        return Err(format!("{text:?}: the minimum is above the maximum"));
    }
    Ok(range)
}

impl Args {
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration.max(0.0))
    }

    pub fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup.max(0.0))
    }

    /// The interval of per-interval latencies: `--interval`, or 1 s when `--plot` asks for
    /// plots without one.
    pub fn interval(&self) -> Option<Duration> {
        match (self.interval, &self.plot) {
            (Some(seconds), _) => Some(Duration::from_secs_f64(seconds)),
            (None, Some(_)) => Some(Duration::from_secs(1)),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_ranges_and_formats_parse() {
        assert_eq!(parse_ratio("1:9").unwrap().set_share(), 0.1);
        assert!(parse_ratio("0:0").is_err());
        assert_eq!(
            parse_size_range("100-1000").unwrap(),
            SizeRange {
                min: 100,
                max: 1000
            }
        );
        assert_eq!(parse_size_range("7").unwrap(), SizeRange { min: 7, max: 7 });
        let format = parse_key_format("key:0000000000000000000000:{n}").unwrap();
        let mut key = Vec::new();
        format.write(42, &mut key);
        assert_eq!(key, b"key:0000000000000000000000:42");
        assert_eq!(format.index_of(&key), Some(42));
        assert_eq!(format.index_of(b"other:42"), None);
        assert!(parse_key_format("no placeholder").is_err());
        assert!(parse_key_format("a {n}").is_err());
        assert!(parse_interval("0").is_err());
        assert_eq!(parse_interval("0.25"), Ok(0.25));
        assert_eq!(
            parse_labelled_path("memcached=a.json"),
            Ok(("memcached".to_owned(), "a.json".into()))
        );
        assert!(parse_labelled_path("a.json").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}

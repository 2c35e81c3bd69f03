//! ferrocache-bench: the load generator behind the project's side-by-side numbers with
//! memcached (`bench/compare.sh`, `shared/BENCHMARKS.md`).
//!
//! Owns: the command line, the run's phases (prefill, warm-up, measurement), the progress bar
//! and the report. Must not touch: the servers it measures (it only talks the protocol), the
//! client crate's ring (it uses it to route keys over several targets).
//!
//! Modes: `load` (gets and sets at a ratio, pipelined, optionally at a fixed rate),
//! `cache-aside` (W5), `fill` (W4), `idle` (W6); the first two over the text or the binary
//! protocol (`--protocol`). Run `ferrocache-bench --help`.
//!
//! Figures: `--plot DIR` draws a run's latency percentiles against time and its latency
//! histogram as SVG; `ferrocache-bench plot -o FILE.svg NAME=run.json ...` draws several runs'
//! JSON reports (made with `--interval`) into one figure.

#![forbid(unsafe_code)]

mod cli;
mod engine;
mod fill;
mod idle;
mod keys;
mod plot;
mod report;
mod tls;

use clap::Parser;
use cli::{Args, Command, KeyPattern, Mode, PlotArgs, Protocol};
use engine::{BenchError, Limit, Plan, Progress, Workload};
use ferrocache_client::KetamaRing;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn main() {
    let args = Args::parse();
    if let Err(error) = run(&args) {
        eprintln!("ferrocache-bench: {error}");
        std::process::exit(1);
    }
}

fn resolve(args: &Args) -> Result<Vec<SocketAddr>, BenchError> {
    args.targets
        .iter()
        .map(|target| {
            (target.host.as_str(), target.port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut addresses| addresses.next())
                .ok_or_else(|| BenchError::Usage(format!("cannot resolve {}", target.address())))
        })
        .collect()
}

/// `ferrocache-bench plot`: one SVG of several runs.
fn plot_runs(args: &PlotArgs) -> Result<(), BenchError> {
    let runs = args
        .runs
        .iter()
        .map(|(_, path)| plot::Run::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    let series: Vec<plot::Series<'_>> = args
        .runs
        .iter()
        .zip(&runs)
        .map(|((label, _), run)| plot::Series { label, run })
        .collect();
    plot::combined_svg(&args.out, &args.title, &series)?;
    Ok(())
}

fn run(args: &Args) -> Result<(), BenchError> {
    if let Some(Command::Plot(plot_args)) = &args.command {
        return plot_runs(plot_args);
    }
    if args.keys == 0 || args.value_size.max > 1 << 30 {
        return Err(BenchError::Usage(
            "--keys must be > 0 and values at most 1 GiB".into(),
        ));
    }
    let targets = resolve(args)?;
    if args.protocol == Protocol::Binary && matches!(args.mode, Mode::Fill | Mode::Idle) {
        return Err(BenchError::Usage(
            "--protocol binary applies to the load and cache-aside modes".into(),
        ));
    }
    match args.mode {
        Mode::Fill => {
            if args.targets.len() != 1 {
                return Err(BenchError::Usage("fill mode takes one target".into()));
            }
            let stop = match args.fill_keys {
                None => fill::FillStop::FirstEviction,
                Some(keys) => fill::FillStop::Keys {
                    keys,
                    newest: args.newest,
                    seed: args.seed,
                },
            };
            let report = fill::fill(
                &args.targets[0],
                &args.key_format,
                args.value_size,
                args.fill_batch,
                stop,
            )?;
            if args.json {
                println!("{}", serde_json::to_string(&report).expect("serialisable"));
            } else {
                print!(
                    "{}",
                    report::render(&[
                        ("curr_items", report.curr_items.to_string()),
                        ("evictions", report.evictions.to_string()),
                        ("sets sent", report.sets_sent.to_string()),
                        ("bytes", report.bytes.to_string()),
                        ("limit_maxbytes", report.limit_maxbytes.to_string()),
                        ("seconds", format!("{:.2}", report.seconds)),
                        (
                            "newest kept",
                            format!("{} of {}", report.newest_kept, report.newest_checked),
                        ),
                    ])
                );
            }
            Ok(())
        }
        Mode::Idle => {
            let report = idle::idle(
                targets[0],
                args.idle_connections,
                args.server_pid,
                Duration::from_secs_f64(args.duration.clamp(0.0, 600.0)),
            )?;
            if args.json {
                println!("{}", serde_json::to_string(&report).expect("serialisable"));
            } else {
                let show = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
                print!(
                    "{}",
                    report::render(&[
                        ("connections", report.connections.to_string()),
                        ("server RSS before KiB", show(report.rss_before_kib)),
                        ("server RSS after KiB", show(report.rss_after_kib)),
                        (
                            "KiB per connection",
                            report
                                .kib_per_connection
                                .map_or("- (give --server-pid)".to_owned(), |k| format!("{k:.2}")),
                        ),
                    ])
                );
            }
            Ok(())
        }
        Mode::Load | Mode::CacheAside => run_load(args, targets),
    }
}

fn run_load(args: &Args, targets: Vec<SocketAddr>) -> Result<(), BenchError> {
    let ring = if args.targets.len() > 1 {
        Some(KetamaRing::new(&args.targets).map_err(|e| BenchError::Usage(e.to_string()))?)
    } else {
        None
    };
    let workload = match args.mode {
        Mode::CacheAside => Workload::CacheAside,
        _ => Workload::Load {
            set_share: args.ratio.set_share(),
        },
    };
    let plan = Plan {
        workload,
        protocol: args.protocol,
        targets,
        ring,
        threads: args.threads,
        connections: args.connections,
        pipeline: args.pipeline,
        multiget: args.multiget.max(1),
        distinct_keys: args.distinct_keys,
        keys: args.keys,
        key_pattern: args.key_pattern,
        zipf_exponent: args.zipf_exponent,
        key_format: args.key_format.clone(),
        value_size: args.value_size,
        warmup: match args.warmup_requests {
            Some(n) => Limit::Requests(n),
            None => Limit::Time(args.warmup()),
        },
        measure: match args.requests {
            Some(n) => Limit::Requests(n),
            None => Limit::Time(args.duration()),
        },
        rate: args.rate,
        seed: args.seed,
        tls: match &args.tls {
            Some(ca) => Some(tls::client_config(ca).map_err(BenchError::Usage)?),
            None => None,
        },
        interval: args.interval(),
    };
    let show_progress = !args.no_progress && std::io::stderr().is_terminal();
    if args.prefill {
        // Every key once, sequentially, pipelined, with replies (so they are all stored).
        let prefill = Plan {
            workload: Workload::Load { set_share: 1.0 },
            key_pattern: KeyPattern::Sequential,
            connections: args.connections.clamp(1, 8),
            pipeline: 32,
            warmup: Limit::Requests(0),
            measure: Limit::Requests(args.keys),
            rate: None,
            interval: None,
            ..plan.clone()
        };
        let tally = with_progress(&prefill, "prefill", show_progress)?;
        if tally.errors > 0 {
            return Err(BenchError::Usage(format!(
                "prefill: {} sets failed",
                tally.errors
            )));
        }
    }
    let cpu_before = report::process_cpu_seconds();
    let wall = Instant::now();
    let tally = with_progress(&plan, "run", show_progress)?;
    let client_cpu = match (cpu_before, report::process_cpu_seconds()) {
        (Some(before), Some(after)) => {
            Some(100.0 * (after - before) / wall.elapsed().as_secs_f64())
        }
        _ => None,
    };
    let mode = match args.mode {
        Mode::CacheAside => "cache-aside",
        _ => "load",
    };
    let mut report = report::LoadReport::new(
        mode,
        args.targets.iter().map(|t| t.address()).collect(),
        (args.threads, args.connections, args.pipeline),
        &tally,
        plan.interval,
    );
    report.client_cpu_percent = client_cpu;
    report.protocol = match args.protocol {
        Protocol::Text => "text",
        Protocol::Binary => "binary",
    };
    if let Some(dir) = &args.plot {
        write_plots(dir, &report)?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report).expect("serialisable"));
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// `--plot DIR`: this run's percentiles against time and its histogram.
fn write_plots(dir: &std::path::Path, report: &report::LoadReport) -> Result<(), BenchError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| BenchError::Usage(format!("cannot create {}: {e}", dir.display())))?;
    let run = plot::Run {
        seconds: Some(report.seconds),
        intervals: report.intervals.clone(),
        histogram: report.histogram.clone(),
    };
    let label = report.targets.join(",");
    let series = [plot::Series {
        label: &label,
        run: &run,
    }];
    plot::percentiles_svg(&dir.join("percentiles.svg"), "latency percentiles", &series)?;
    plot::histogram_svg(&dir.join("histogram.svg"), "latency histogram", &series)?;
    Ok(())
}

/// Runs `plan`, with a progress bar on stderr when it is a terminal.
fn with_progress(plan: &Plan, label: &str, show: bool) -> Result<engine::Tally, BenchError> {
    let progress = Arc::new(Progress::default());
    if !show {
        return engine::run(plan, &progress);
    }
    let total_requests = match (plan.warmup, plan.measure) {
        (Limit::Requests(w), Limit::Requests(m)) => Some(w + m),
        (Limit::Time(w), Limit::Requests(m)) if w.is_zero() => Some(m),
        _ => None,
    };
    let (bar, seconds) = match total_requests {
        Some(total) => (ProgressBar::new(total), None),
        None => {
            let seconds = match (plan.warmup, plan.measure) {
                (Limit::Time(w), Limit::Time(m)) => (w + m).as_secs_f64(),
                (_, Limit::Time(m)) => m.as_secs_f64(),
                _ => 0.0,
            };
            (
                ProgressBar::new((seconds * 10.0).ceil() as u64),
                Some(seconds),
            )
        }
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:40}] {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_owned());
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| engine::run(plan, &progress));
        let started = Instant::now();
        let mut last = (Instant::now(), 0u64);
        while !worker.is_finished() {
            std::thread::sleep(Duration::from_millis(100));
            let done = progress.completed.load(Ordering::Relaxed);
            let now = Instant::now();
            let rate = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
            last = (now, done);
            match seconds {
                Some(_) => bar.set_position((started.elapsed().as_secs_f64() * 10.0) as u64),
                None => bar.set_position(done),
            }
            bar.set_message(format!("{done} requests, {rate:.0}/s"));
        }
        bar.finish_and_clear();
        worker.join().expect("bench driver panicked")
    })
}

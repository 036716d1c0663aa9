//! The Nexmark harness behind `rheo nexmark` and `cargo run --release --example nexmark`.
//!
//! Each query runs in its own child process (the same executable, with a hidden `--child`
//! flag), so its CPU time and peak memory are its own: process CPU time over all threads, and
//! the high-water mark of resident memory. Per query the harness runs the requested
//! parallelism, plus parallelism 1 and 2 for the wall-clock speed-up, and once per invocation
//! a generator-only child that makes the same events with no engine. Sinks fold every output
//! field into a checksum, printed, so no work can be skipped; the checksum does not depend on
//! arrival order, so it agrees across parallelism for every query whose output does not
//! (q4 emits running averages, whose intermediate values follow arrival order).
//! With `--scaling` the harness measures throughput against cores instead (`scaling.rs`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rheo_engine::metrics::process_cpu_ns;
use rheo_engine::{JobOptions, PipelineBuilder};
use rheo_operators::nexmark::{EventGenerator, NexmarkConfig, NexmarkSource, Query};
use serde::{Deserialize, Serialize};

/// Arguments of the Nexmark harness.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// `q0` … `q11`, or `all`.
    #[arg(long, default_value = "all")]
    pub query: String,
    /// Events per run.
    #[arg(long, default_value_t = 10_000_000)]
    pub events: u64,
    /// Workers per stage (sources included).
    #[arg(long, default_value_t = 1)]
    pub parallelism: usize,
    /// Records per batch on every edge.
    #[arg(long, default_value_t = 1024)]
    pub batch_size: usize,
    /// Generator seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the rows as a JSON list.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Measure how throughput scales instead: each query at each of these parallelism levels
    /// (comma-separated, e.g. `1,2,4,8,16`), every run pinned to as many cores as its level.
    #[arg(long, value_delimiter = ',')]
    pub scaling: Vec<usize>,
    /// Internal: run one measurement in this process and print it as JSON.
    #[arg(long, hide = true)]
    pub child: Option<String>,
    /// Internal: pin the measuring child to the first this many cores it may use.
    #[arg(long, hide = true)]
    pub pin: Option<usize>,
}

/// One query's measurement, as printed and written to JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// `q0` … `q11`.
    pub query: String,
    /// Events generated.
    pub events: u64,
    /// Workers per stage.
    pub parallelism: usize,
    /// Wall-clock seconds of the run.
    pub wall_s: f64,
    /// Process CPU seconds (all threads) of the run.
    pub cpu_s: f64,
    /// Events per CPU-second, generation included.
    pub events_per_cpu_s: f64,
    /// Events per CPU-second of the generator alone.
    pub generator_events_per_cpu_s: f64,
    /// Wall-clock time at parallelism 1 ÷ at parallelism 2.
    pub speedup_p2: f64,
    /// Median latency, ingestion to sink, ms.
    pub p50_ms: f64,
    /// 99th-percentile latency, ms.
    pub p99_ms: f64,
    /// Peak resident memory of the process, MiB.
    pub peak_rss_mb: f64,
    /// Order-independent checksum of every output field (hex).
    pub checksum: String,
}

/// What a child process reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Measured {
    pub(super) wall_s: f64,
    pub(super) cpu_s: f64,
    pub(super) p50_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) peak_rss_mb: f64,
    pub(super) results: u64,
    pub(super) checksum: u64,
    /// Cores the child could run on after `--pin` (0 when it was not pinned).
    #[serde(default)]
    pub(super) cores: usize,
}

pub(super) type Error = Box<dyn std::error::Error>;

/// Runs the harness (or, with `--child`, one measurement). `prefix` holds the arguments that
/// lead to the harness in this executable (`["nexmark"]` for the CLI, none for the example),
/// so child processes can be started the same way.
pub fn run(prefix: &[&str], args: Args) -> Result<(), Error> {
    if let Some(what) = &args.child {
        if let Some(cores) = args.pin {
            super::scaling::pin_to_first_cores(cores)?;
        }
        let mut measured = if what == "generator" {
            measure_generator(&args)?
        } else {
            measure_query(what.parse()?, &args)?
        };
        if args.pin.is_some() {
            measured.cores = super::scaling::allowed_cores()?.len();
        }
        println!("{}", serde_json::to_string(&measured)?);
        return Ok(());
    }
    let queries = queries(&args)?;
    if !args.scaling.is_empty() {
        return super::scaling::run(prefix, &args, &queries);
    }
    if args.parallelism == 0 {
        return Err("--parallelism: must be at least 1".into());
    }
    let mut levels = vec![args.parallelism];
    for p in [1, 2] {
        if !levels.contains(&p) {
            levels.push(p);
        }
    }
    let bar = ProgressBar::new((1 + queries.len() * levels.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} runs {msg} [{elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("generator");
    let generator = child(prefix, &args, "generator", 1, None)?;
    let generator_rate = args.events as f64 / generator.cpu_s.max(1e-9);
    bar.inc(1);
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for &query in &queries {
        let mut by_level = Vec::new();
        for &p in &levels {
            bar.set_message(format!("{query} at parallelism {p}"));
            by_level.push((p, child(prefix, &args, query.name(), p, None)?));
            bar.inc(1);
        }
        let at = |p: usize| by_level.iter().find(|(q, _)| *q == p).map(|(_, m)| m);
        let (Some(main), Some(p1), Some(p2)) = (at(args.parallelism), at(1), at(2)) else {
            return Err("internal: a parallelism level was not measured".into());
        };
        if by_level
            .iter()
            .any(|(_, m)| (m.results, m.checksum) != (main.results, main.checksum))
        {
            notes.push(format!(
                "{query}: output differs across parallelism ({})",
                by_level
                    .iter()
                    .map(|(p, m)| format!("p{p}: {} results, {:016x}", m.results, m.checksum))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        rows.push((
            Row {
                query: query.name().to_owned(),
                events: args.events,
                parallelism: args.parallelism,
                wall_s: main.wall_s,
                cpu_s: main.cpu_s,
                events_per_cpu_s: args.events as f64 / main.cpu_s.max(1e-9),
                generator_events_per_cpu_s: generator_rate,
                speedup_p2: p1.wall_s / p2.wall_s.max(1e-9),
                p50_ms: main.p50_ms,
                p99_ms: main.p99_ms,
                peak_rss_mb: main.peak_rss_mb,
                checksum: format!("{:016x}", main.checksum),
            },
            main.results,
        ));
    }
    bar.finish_and_clear();
    println!(
        "{:<5} {:>10} {:>3} {:>8} {:>8} {:>12} {:>12} {:>7} {:>9} {:>9} {:>8} {:>10}  checksum",
        "query",
        "events",
        "p",
        "wall s",
        "cpu s",
        "ev/cpu-s",
        "gen ev/cpu-s",
        "p1→p2",
        "p50 ms",
        "p99 ms",
        "rss MiB",
        "results"
    );
    for (r, results) in &rows {
        println!(
            "{:<5} {:>10} {:>3} {:>8.3} {:>8.3} {:>12.0} {:>12.0} {:>6.2}× {:>9.2} {:>9.2} {:>8.1} {:>10}  {}",
            r.query,
            r.events,
            r.parallelism,
            r.wall_s,
            r.cpu_s,
            r.events_per_cpu_s,
            r.generator_events_per_cpu_s,
            r.speedup_p2,
            r.p50_ms,
            r.p99_ms,
            r.peak_rss_mb,
            results,
            r.checksum
        );
    }
    for note in &notes {
        println!("note: {note}");
    }
    if let Some(path) = &args.json {
        let rows: Vec<&Row> = rows.iter().map(|(r, _)| r).collect();
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)
            .map_err(|e| format!("--json {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The queries `--query` names.
fn queries(args: &Args) -> Result<Vec<Query>, Error> {
    Ok(if args.query == "all" {
        Query::ALL.to_vec()
    } else {
        args.query
            .split(',')
            .map(|q| q.trim().parse())
            .collect::<Result<_, _>>()?
    })
}

/// Runs one measurement in a child process of this executable, pinned to the first `pin`
/// cores when given; `prefix` are the arguments that lead to the harness (the subcommand, for
/// the CLI).
pub(super) fn child(
    prefix: &[&str],
    args: &Args,
    what: &str,
    parallelism: usize,
    pin: Option<usize>,
) -> Result<Measured, Error> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command.args(prefix);
    if let Some(cores) = pin {
        command.args(["--pin", &cores.to_string()]);
    }
    let output = command
        .args(["--query", &args.query])
        .args(["--events", &args.events.to_string()])
        .args(["--parallelism", &parallelism.to_string()])
        .args(["--batch-size", &args.batch_size.to_string()])
        .args(["--seed", &args.seed.to_string()])
        .args(["--child", what])
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "{what} at parallelism {parallelism} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .last()
        .ok_or_else(|| format!("{what}: the child printed nothing"))?;
    Ok(serde_json::from_str(line)?)
}

fn config(args: &Args) -> NexmarkConfig {
    NexmarkConfig {
        seed: args.seed,
        ..NexmarkConfig::default()
    }
}

fn measure_generator(args: &Args) -> Result<Measured, Error> {
    let generator = EventGenerator::new(config(args))?;
    let (cpu0, t0) = (process_cpu_ns(), Instant::now());
    let mut bytes = 0usize;
    for n in 0..args.events {
        let event = std::hint::black_box(generator.event(n));
        bytes = bytes.wrapping_add(event.size_bytes());
    }
    let (wall_s, cpu_s) = (t0.elapsed().as_secs_f64(), cpu_since(cpu0));
    Ok(Measured {
        wall_s,
        cpu_s,
        p50_ms: 0.0,
        p99_ms: 0.0,
        peak_rss_mb: peak_rss_mb(),
        results: args.events,
        checksum: bytes as u64,
        cores: 0,
    })
}

fn measure_query(query: Query, args: &Args) -> Result<Measured, Error> {
    let generator = EventGenerator::new(config(args))?;
    let p = args.parallelism.max(1);
    let events = args.events;
    let builder = PipelineBuilder::new().edge_defaults(64, args.batch_size.max(1));
    let source = builder.parallel_source("nexmark", p, |i, n| {
        NexmarkSource::new(generator.clone(), events).split(i, n)
    });
    let checksum = query.attach(&source);
    let pipeline = builder.build()?;
    let mut job = pipeline.default_config();
    let names: Vec<String> = job
        .stages
        .keys()
        .filter(|s| s.as_str() != "nexmark")
        .cloned()
        .collect();
    for name in names {
        job.set_parallelism(&name, p);
    }
    let (cpu0, t0) = (process_cpu_ns(), Instant::now());
    let report = pipeline.run(JobOptions::default().config(job))?;
    let (wall_s, cpu_s) = (t0.elapsed().as_secs_f64(), cpu_since(cpu0));
    Ok(Measured {
        wall_s,
        cpu_s,
        p50_ms: report.latency.p50_ms,
        p99_ms: report.latency.p99_ms,
        peak_rss_mb: peak_rss_mb(),
        results: checksum.records(),
        checksum: checksum.value(),
        cores: 0,
    })
}

fn cpu_since(start_ns: u64) -> f64 {
    process_cpu_ns().saturating_sub(start_ns) as f64 / 1e9
}

/// The process's peak resident memory (Linux: `VmHWM`), MiB; 0 where unknown.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

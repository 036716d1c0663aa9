//! rheo side by side with timely-dataflow, a hand-written thread pipeline and a single loop,
//! on the same generated input, pinned to the same cores.
//!
//! ```text
//! cargo run --release --example peers -- [--events 10000000] [--cores 1,2] [--json OUT]
//! ```
//!
//! For each core count the process pins itself (as `taskset -c 0`, then `-c 0,1`; threads
//! started later inherit the mask), then for each workload runs every system once to check
//! its answer against the single loop's, then `--repeat` rounds of timed runs (one run of each
//! system per round, every answer checked). It reports each system's median CPU and wall time,
//! and its ratio to rheo as the median of the per-round ratios (neighbouring runs share the
//! machine's mood; runs minutes apart on a shared machine may not). CPU time is the whole
//! process's (`CLOCK_PROCESS_CPUTIME_ID`), so it counts every thread a system starts; input
//! generation happens once, before any timing.

mod systems;

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use rheo::engine::metrics::process_cpu_ns;
use serde::Serialize;
use systems::{Input, System, Workload};

// The rheo binary's allocator, for every system alike.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "rheo vs timely-dataflow vs hand-written threads vs a single loop")]
struct Args {
    /// Events per run.
    #[arg(long, default_value_t = 10_000_000)]
    events: usize,
    /// Core counts to pin to (cores 0..n each).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    cores: Vec<usize>,
    /// Timed rounds per (workload, cores), one run of every system each; medians are reported,
    /// and ratios are medians of the per-round ratios.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Workloads to run (default: all): word-count, map-filter, window-count.
    #[arg(long, value_delimiter = ',')]
    workload: Vec<String>,
    /// Systems to run besides rheo (default: all): rheo-staged, timely, threads, single-loop. rheo always
    /// runs (the ratios are to it); the single loop always computes the expected answer.
    #[arg(long, value_delimiter = ',')]
    system: Vec<String>,
    /// Writes the rows as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Seed of the generated input.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// One measured (workload, system, cores).
#[derive(Debug, Clone, Serialize)]
struct Row {
    workload: &'static str,
    system: &'static str,
    cores: usize,
    events: usize,
    wall_s: f64,
    cpu_s: f64,
    events_per_cpu_s: f64,
    events_per_wall_s: f64,
    /// This system's events per CPU-second ÷ rheo's, same workload and cores (the median of
    /// the per-round ratios).
    ratio_to_rheo: f64,
    /// This system's events per wall-second ÷ rheo's.
    wall_ratio_to_rheo: f64,
    config: String,
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peers: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let workloads = if args.workload.is_empty() {
        Workload::ALL.to_vec()
    } else {
        args.workload
            .iter()
            .map(|w| {
                Workload::parse(w).ok_or_else(|| format!("--workload: unknown workload {w:?}"))
            })
            .collect::<Result<_, _>>()?
    };
    let systems: Vec<System> = System::ALL
        .into_iter()
        .filter(|s| {
            *s == System::Rheo
                || args.system.is_empty()
                || args.system.iter().any(|n| n == s.name())
        })
        .collect();
    if let Some(unknown) = args
        .system
        .iter()
        .find(|n| System::ALL.iter().all(|s| s.name() != *n))
    {
        return Err(format!("--system: unknown system {unknown:?}").into());
    }
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(&c) = args.cores.iter().find(|&&c| c == 0 || c > available) {
        return Err(format!("--cores: {c} is not between 1 and the {available} cores here").into());
    }
    eprintln!("generating {} events (seed {})", args.events, args.seed);
    let input = Input::generate(args.events, args.seed);
    let runs = args.cores.len() * workloads.len() * systems.len() * (1 + args.repeat.max(1));
    let bar = ProgressBar::new(runs as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}").map_err(|e| e.to_string())?,
    );
    let mut rows = Vec::new();
    for &cores in &args.cores {
        pin_to_first(cores)?;
        for &workload in &workloads {
            let expected = System::SingleLoop.run(workload, &input, 1)?;
            for &system in &systems {
                bar.set_message(format!(
                    "{} {} ×{cores} (check)",
                    workload.name(),
                    system.name()
                ));
                // The check run: also warms caches and the allocator.
                check(system, workload, &input, cores, expected)?;
                bar.inc(1);
            }
            // Round-robin over the systems, so a noisy moment on a shared machine falls on all
            // of them rather than on one.
            let mut samples = vec![Vec::new(); systems.len()];
            for _ in 0..args.repeat.max(1) {
                for (i, &system) in systems.iter().enumerate() {
                    bar.set_message(format!("{} {} ×{cores}", workload.name(), system.name()));
                    let (cpu_ns0, wall0) = (process_cpu_ns(), Instant::now());
                    let answer = system.run(workload, &input, cores)?;
                    let (wall_s, cpu_s) = (
                        wall0.elapsed().as_secs_f64(),
                        process_cpu_ns().saturating_sub(cpu_ns0) as f64 / 1e9,
                    );
                    if answer != expected {
                        return Err(mismatch(system, workload, cores, answer, expected).into());
                    }
                    samples[i].push((cpu_s, wall_s));
                    bar.inc(1);
                }
            }
            // Ratios are taken round by round (runs minutes apart on a shared machine can differ
            // more than the systems do), then the median over the rounds.
            let rheo_runs = samples[0].clone();
            let n = args.events as f64;
            for (&system, runs) in systems.iter().zip(&samples) {
                let (cpu_s, wall_s) = (
                    median(runs.iter().map(|r| r.0)),
                    median(runs.iter().map(|r| r.1)),
                );
                rows.push(Row {
                    workload: workload.name(),
                    system: system.name(),
                    cores,
                    events: args.events,
                    wall_s,
                    cpu_s,
                    events_per_cpu_s: n / cpu_s,
                    events_per_wall_s: n / wall_s,
                    ratio_to_rheo: median(rheo_runs.iter().zip(runs).map(|(r, s)| r.0 / s.0)),
                    wall_ratio_to_rheo: median(rheo_runs.iter().zip(runs).map(|(r, s)| r.1 / s.1)),
                    config: system.config(workload, cores),
                });
            }
        }
    }
    bar.finish_and_clear();
    print_table(&rows);
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&rows)?;
        std::fs::write(path, json + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The median of `values` (the upper one of the middle two for an even count).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn check(
    system: System,
    workload: Workload,
    input: &Input,
    cores: usize,
    expected: systems::Answer,
) -> Result<(), Box<dyn std::error::Error>> {
    let answer = system.run(workload, input, cores)?;
    if answer == expected {
        Ok(())
    } else {
        Err(mismatch(system, workload, cores, answer, expected).into())
    }
}

fn mismatch(
    system: System,
    workload: Workload,
    cores: usize,
    got: systems::Answer,
    expected: systems::Answer,
) -> String {
    format!(
        "{} on {} at {cores} core(s): {} records, checksum {:#x}; the single loop: {} records, \
         checksum {:#x}",
        system.name(),
        workload.name(),
        got.0,
        got.1,
        expected.0,
        expected.1
    )
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<13} {:<12} {:>5} {:>10} {:>10} {:>8} {:>8}",
        "workload", "system", "cores", "M ev/cpu-s", "M ev/wall-s", "cpu ×", "wall ×"
    );
    for r in rows {
        println!(
            "{:<13} {:<12} {:>5} {:>10.1} {:>10.1} {:>8.2} {:>8.2}",
            r.workload,
            r.system,
            r.cores,
            r.events_per_cpu_s / 1e6,
            r.events_per_wall_s / 1e6,
            r.ratio_to_rheo,
            r.wall_ratio_to_rheo
        );
    }
    println!("(×: the system's events per second ÷ rheo's, same workload and cores)");
}

/// Pins this thread, and every thread it starts from now on, to cores `0..cores`.
fn pin_to_first(cores: usize) -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `set` is a plain bitmask initialised by CPU_ZERO before use, and
        // sched_setaffinity only reads it.
        let status = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_ZERO(&mut set);
            for core in 0..cores {
                libc::CPU_SET(core, &mut set);
            }
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        if status != 0 {
            return Err(format!(
                "pinning to cores 0..{cores}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cores;
    Ok(())
}

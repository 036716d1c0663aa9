//! `rheo nexmark --scaling 1,2,4,8,16`: how each query's throughput grows with cores.
//!
//! Each level runs in its own child process pinned to the first `p` cores the harness may use
//! (`sched_setaffinity`, inherited by every worker thread the child starts), with `p` source
//! workers and `p` workers per stage, so "parallelism p" and "p cores" are the same thing and
//! extra threads can't borrow cores the level doesn't have. Speed-up is wall time at the first
//! level over wall time at this one; efficiency divides it by the ratio of cores.

use indicatif::{ProgressBar, ProgressStyle};
use rheo_operators::nexmark::Query;
use serde::{Deserialize, Serialize};

use super::nexmark::{Args, Error, Measured, child};

/// One query at one level of the scaling run, as printed and written to JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScalingRow {
    /// `q0` … `q11`.
    pub query: String,
    /// Workers per stage, sources included.
    pub parallelism: usize,
    /// Cores the run's process could use, as it read its affinity after pinning.
    pub cores: usize,
    /// Events generated.
    pub events: u64,
    /// Wall-clock seconds of the run.
    pub wall_s: f64,
    /// Process CPU seconds (all threads) of the run.
    pub cpu_s: f64,
    /// Events per wall-clock second.
    pub events_per_wall_s: f64,
    /// Events per CPU-second, generation included.
    pub events_per_cpu_s: f64,
    /// Wall time at the first level ÷ wall time at this one.
    pub speedup: f64,
    /// `speedup` ÷ (cores here ÷ cores at the first level).
    pub efficiency: f64,
    /// 99th-percentile latency, ingestion to sink, ms.
    pub p99_ms: f64,
    /// Order-independent checksum of every output field (hex).
    pub checksum: String,
}

/// Runs every query at every level of `args.scaling`, prints the table and writes the JSON.
pub(super) fn run(prefix: &[&str], args: &Args, queries: &[Query]) -> Result<(), Error> {
    let levels = &args.scaling;
    if levels.contains(&0) {
        return Err("--scaling: every level must be at least 1".into());
    }
    let cores = allowed_cores()?.len();
    if let Some(too_many) = levels.iter().find(|&&p| p > cores) {
        return Err(format!(
            "--scaling: level {too_many} needs {too_many} cores, this process may use {cores}"
        )
        .into());
    }
    let bar = ProgressBar::new((queries.len() * levels.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} runs {msg} [{elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for &query in queries {
        // The first level's run, which the others are compared with.
        let mut first: Option<(usize, Measured)> = None;
        for &p in levels {
            bar.set_message(format!("{query} on {p} cores"));
            let m = child(prefix, args, query.name(), p, Some(p))?;
            bar.inc(1);
            let (p0, m0) = first.get_or_insert_with(|| (p, m.clone()));
            if (m.results, m.checksum) != (m0.results, m0.checksum) {
                notes.push(format!(
                    "{query}: output at {p} cores ({} results, {:016x}) differs from {p0} cores ({} results, {:016x})",
                    m.results, m.checksum, m0.results, m0.checksum
                ));
            }
            let speedup = m0.wall_s / m.wall_s.max(1e-9);
            let p0 = *p0;
            rows.push(ScalingRow {
                query: query.name().to_owned(),
                parallelism: p,
                cores: m.cores,
                events: args.events,
                wall_s: m.wall_s,
                cpu_s: m.cpu_s,
                events_per_wall_s: args.events as f64 / m.wall_s.max(1e-9),
                events_per_cpu_s: args.events as f64 / m.cpu_s.max(1e-9),
                speedup,
                efficiency: speedup / (p as f64 / p0 as f64),
                p99_ms: m.p99_ms,
                checksum: format!("{:016x}", m.checksum),
            });
        }
    }
    bar.finish_and_clear();
    println!(
        "{:<5} {:>3} {:>5} {:>10} {:>8} {:>8} {:>13} {:>12} {:>8} {:>6} {:>9}  checksum",
        "query",
        "p",
        "cores",
        "events",
        "wall s",
        "cpu s",
        "ev/wall-s",
        "ev/cpu-s",
        "speed-up",
        "eff",
        "p99 ms"
    );
    for r in &rows {
        println!(
            "{:<5} {:>3} {:>5} {:>10} {:>8.3} {:>8.3} {:>13.0} {:>12.0} {:>7.2}× {:>6.2} {:>9.2}  {}",
            r.query,
            r.parallelism,
            r.cores,
            r.events,
            r.wall_s,
            r.cpu_s,
            r.events_per_wall_s,
            r.events_per_cpu_s,
            r.speedup,
            r.efficiency,
            r.p99_ms,
            r.checksum
        );
    }
    for note in &notes {
        println!("note: {note}");
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)
            .map_err(|e| format!("--json {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The cores this thread may run on now (its affinity mask, which a CPU quota does not
/// shrink), in ascending order.
#[cfg(target_os = "linux")]
pub(super) fn allowed_cores() -> Result<Vec<usize>, Error> {
    // SAFETY: cpu_set_t is a plain bit array for which all-zero is the empty set; the call
    // gets a pointer to a live set of the size it is told.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(format!("affinity: {}", std::io::Error::last_os_error()).into());
        }
        Ok((0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect())
    }
}

/// The cores this thread may run on now: unknown off Linux.
#[cfg(not(target_os = "linux"))]
pub(super) fn allowed_cores() -> Result<Vec<usize>, Error> {
    Err("core affinity is only read on Linux".into())
}

/// Pins the calling thread, and so every thread it starts afterwards, to the first `n` cores
/// of those it may use now.
pub(super) fn pin_to_first_cores(n: usize) -> Result<(), Error> {
    let allowed = allowed_cores()?;
    if n == 0 || n > allowed.len() {
        return Err(format!(
            "--pin {n}: this process may use {} cores (1 to {} can be pinned)",
            allowed.len(),
            allowed.len()
        )
        .into());
    }
    set_affinity(&allowed[..n])
}

#[cfg(target_os = "linux")]
fn set_affinity(cores: &[usize]) -> Result<(), Error> {
    // SAFETY: as in `allowed_cores`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cores {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!("--pin: {}", std::io::Error::last_os_error()).into());
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn set_affinity(_: &[usize]) -> Result<(), Error> {
    Err("--pin: pinning to cores is only supported on Linux".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn a_thread_pinned_to_one_core_and_the_threads_it_starts_see_one_core() {
        // In a thread of its own, so the test harness's other threads keep their cores.
        let seen = std::thread::spawn(|| {
            let first = allowed_cores().map_err(|e| e.to_string())?[0];
            pin_to_first_cores(1).map_err(|e| e.to_string())?;
            let inner = std::thread::spawn(|| allowed_cores().map_err(|e| e.to_string()))
                .join()
                .map_err(|_| "inner thread panicked".to_owned())??;
            Ok::<_, String>((first, inner))
        })
        .join()
        .expect("pinning thread panicked");
        let (first, inner) = seen.expect("pinning failed");
        assert_eq!(inner, vec![first]);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn pinning_to_no_cores_or_more_than_there_are_is_an_error_that_says_how_many_there_are() {
        std::thread::spawn(|| {
            let cores = allowed_cores().expect("affinity").len();
            let zero = pin_to_first_cores(0).map_err(|e| e.to_string());
            let many = pin_to_first_cores(cores + 1).map_err(|e| e.to_string());
            assert!(zero.is_err_and(|e| e.contains(&format!("may use {cores} cores"))));
            assert!(many.is_err_and(|e| e.contains(&format!("--pin {}", cores + 1))));
        })
        .join()
        .expect("test thread panicked");
    }
}

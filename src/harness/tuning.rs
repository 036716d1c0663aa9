//! The per-epoch table of a tuning run, shared by `rheo tune` and `examples/autotune.rs`.

use rheo_engine::MetricsSnapshot;
use rheo_tuner::run::{EpochRecord, RunResult};

/// Prints one row per epoch: offered rate, throughput, backlog, p99, the epoch's objective,
/// parallelism and input buffer per stage, and the decision.
pub struct EpochPrinter {
    stages: Vec<String>,
}

impl EpochPrinter {
    /// A printer for `stages`; prints the header.
    pub fn new(stages: Vec<String>) -> EpochPrinter {
        let header = stages
            .iter()
            .map(|s| format!("{:>14}", format!("{s} p/buf")))
            .collect::<String>();
        println!(
            "{:>5} {:>9} {:>9} {:>8} {:>8} {:>7}{header}  decision",
            "epoch", "offered/s", "through/s", "backlog", "p99 ms", "reward"
        );
        EpochPrinter { stages }
    }

    /// Prints the row of one epoch.
    pub fn row(&self, snapshot: &MetricsSnapshot, record: &EpochRecord) {
        let per_stage: String = self
            .stages
            .iter()
            .map(|s| {
                let p = snapshot.config.parallelism(s).unwrap_or(0);
                let buf = snapshot.stage(s).map_or(0, |m| m.input_capacity / p.max(1));
                format!("{:>14}", format!("{p}/{buf}"))
            })
            .collect();
        println!(
            "{:>5} {:>9.0} {:>9.0} {:>8} {:>8.1} {:>7.3}{per_stage}  {}",
            record.epoch,
            record.offered_rate,
            record.throughput,
            record.backlog,
            record.p99_ms,
            record.score.reward,
            record.decision.reason
        );
    }
}

/// Prints runs side by side: objective, threads, reconfigurations, p99, SLO-violating epochs.
pub fn print_comparison(runs: &[&RunResult], slo_ms: f64) {
    println!(
        "{:<8} {:>9} {:>12} {:>9} {:>12} {:>14}",
        "tuner", "objective", "mean threads", "reconfigs", "mean p99 ms", "epochs > SLO"
    );
    for r in runs {
        let n = r.epochs.len().max(1) as f64;
        let threads = r.epochs.iter().map(|e| e.score.threads as f64).sum::<f64>() / n;
        let changes = r.reconfigurations();
        let p99 = r.epochs.iter().map(|e| e.p99_ms).sum::<f64>() / n;
        let over = r.epochs.iter().filter(|e| e.p99_ms > slo_ms).count();
        println!(
            "{:<8} {:>9.3} {:>12.2} {:>9} {:>12.1} {:>14}",
            r.tuner, r.objective, threads, changes, p99, over
        );
    }
}

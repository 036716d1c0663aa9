//! A per-epoch metrics table for terminals: one row per epoch with the source rates, backlog,
//! latency and, per stage, parallelism, busy share and input-queue fill.

use std::fmt::Write;

use rheo_engine::metrics::{MetricsSnapshot, StageKind};

/// Formats snapshots as rows of a fixed-width table.
pub struct EpochTable {
    stages: Vec<String>,
}

impl EpochTable {
    /// A table for the stages of `first` (sources excluded).
    pub fn new(first: &MetricsSnapshot) -> EpochTable {
        EpochTable {
            stages: first
                .stages
                .iter()
                .filter(|s| s.kind != StageKind::Source)
                .map(|s| s.name.clone())
                .collect(),
        }
    }

    /// The header line.
    pub fn header(&self) -> String {
        let mut h = format!(
            "{:>5} {:>9} {:>9} {:>8} {:>8}",
            "epoch", "offered/s", "emitted/s", "backlog", "p99 ms"
        );
        for s in &self.stages {
            let name: String = s.chars().take(14).collect();
            let _ = write!(h, " | {name:<14} {:>3} {:>5} {:>5}", "p", "busy", "queue");
        }
        h
    }

    /// One row for `snapshot`.
    pub fn row(&self, snapshot: &MetricsSnapshot) -> String {
        let offered: f64 = snapshot.sources.iter().map(|s| s.offered_rate).sum();
        let emitted: f64 = snapshot.sources.iter().map(|s| s.emitted_rate).sum();
        let mut r = format!(
            "{:>5} {:>9.0} {:>9.0} {:>8} {:>8.1}",
            snapshot.epoch,
            offered,
            emitted,
            snapshot.backlog(),
            snapshot.latency.p99_ms
        );
        for name in &self.stages {
            match snapshot.stage(name) {
                Some(s) => {
                    let _ = write!(
                        r,
                        " | {:<14} {:>3} {:>4.0}% {:>4.0}%",
                        "",
                        s.parallelism,
                        s.busy_fraction * 100.0,
                        s.input_occupancy * 100.0
                    );
                }
                None => r.push_str(" | (missing)"),
            }
        }
        r
    }
}

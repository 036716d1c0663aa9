//! Running a tuner on an environment, epoch by epoch, and the run log it writes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rheo_engine::MetricsSnapshot;
use serde::{Deserialize, Serialize};

use crate::convergence::{Convergence, EpochFacts, convergence};
use crate::env::{EnvError, Environment};
use crate::objective::{EpochScore, run_objective};
use crate::tuners::{Decision, TuneContext, Tuner};

/// One epoch of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number.
    pub epoch: u64,
    /// The objective's score of the epoch.
    pub score: EpochScore,
    /// Events offered per second.
    pub offered_rate: f64,
    /// Events emitted per second (throughput).
    pub throughput: f64,
    /// Backlog at the end of the epoch.
    pub backlog: u64,
    /// p99 latency, ms.
    pub p99_ms: f64,
    /// The tuner's decision after the epoch.
    pub decision: Decision,
    /// Whether the applied configuration differs from the tuner's own proposal (a guardrail
    /// or fallback stepped in); always false for tuners without guardrails.
    pub fallback: bool,
}

/// A finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The tuner.
    pub tuner: String,
    /// Its settings.
    pub settings: serde_json::Value,
    /// `engine` or `sim`.
    pub backend: String,
    /// Every epoch.
    pub epochs: Vec<EpochRecord>,
    /// The run objective: mean epoch reward.
    pub objective: f64,
}

impl RunResult {
    /// Epochs that began with a configuration different from the epoch before.
    pub fn reconfigurations(&self) -> usize {
        self.epochs.iter().filter(|e| e.score.changed).count()
    }

    /// Convergence after each rate change at `change_times`.
    pub fn convergence(&self, epoch_s: f64, change_times: &[f64], slo_ms: f64) -> Convergence {
        let facts: Vec<EpochFacts> = self
            .epochs
            .iter()
            .map(|e| EpochFacts {
                changed: e.score.changed,
                shortfall: e.score.shortfall,
                p99_ms: e.p99_ms,
            })
            .collect();
        convergence(&facts, epoch_s, change_times, slo_ms)
    }
}

/// Writes a run as JSON lines: a header, then one line per epoch with the snapshot and the
/// decision record.
pub struct RunLog {
    path: PathBuf,
    out: BufWriter<File>,
}

impl RunLog {
    /// Creates `path` and writes the header.
    pub fn create(path: impl AsRef<Path>, header: &serde_json::Value) -> std::io::Result<RunLog> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let mut log = RunLog {
            path,
            out: BufWriter::new(file),
        };
        let mut header = header.clone();
        if let Some(map) = header.as_object_mut() {
            map.insert("type".into(), "header".into());
        }
        log.line(&header)?;
        Ok(log)
    }

    fn line(&mut self, value: &serde_json::Value) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, value)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    /// Appends one epoch.
    pub fn epoch(
        &mut self,
        snapshot: &MetricsSnapshot,
        record: &EpochRecord,
    ) -> std::io::Result<()> {
        let value = serde_json::json!({
            "type": "epoch",
            "epoch": record.epoch,
            "snapshot": snapshot,
            "record": record,
        });
        self.line(&value)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))
    }
}

/// Whether a decision applies something other than the tuner's own proposal: a tuner with
/// guardrails records its proposal in `detail["proposal"]`, and a clamp, cooldown, rollback,
/// budget or fallback that replaced it shows as a different applied configuration.
pub fn overridden(decision: &Decision) -> bool {
    decision
        .detail
        .get("proposal")
        .and_then(|p| serde_json::from_value::<rheo_engine::JobConfig>(p.clone()).ok())
        .is_some_and(|proposal| proposal != decision.config)
}

/// Runs `tuner` on `env` until the environment ends; calls `each` after every epoch.
pub fn run(
    env: &mut dyn Environment,
    tuner: &mut dyn Tuner,
    cx: &TuneContext,
    mut log: Option<&mut RunLog>,
    mut each: impl FnMut(&MetricsSnapshot, &EpochRecord),
) -> Result<RunResult, EnvError> {
    let mut epochs = Vec::new();
    let mut previous: Option<rheo_engine::JobConfig> = None;
    while let Some(snapshot) = env.observe()? {
        let changed = previous.as_ref().is_some_and(|p| *p != snapshot.config);
        let score = cx.objective.score(&snapshot, changed);
        let decision = tuner.decide(&snapshot, cx);
        env.apply(&decision.config)?;
        let record = EpochRecord {
            epoch: snapshot.epoch,
            score,
            offered_rate: snapshot.sources.iter().map(|s| s.offered_rate).sum(),
            throughput: snapshot.sources.iter().map(|s| s.emitted_rate).sum(),
            backlog: snapshot.backlog(),
            p99_ms: snapshot.latency.p99_ms,
            fallback: overridden(&decision),
            decision,
        };
        if let Some(log) = log.as_deref_mut() {
            log.epoch(&snapshot, &record)
                .map_err(|e| EnvError::Calibration {
                    path: "run log".into(),
                    reason: e.to_string(),
                })?;
        }
        each(&snapshot, &record);
        previous = Some(snapshot.config.clone());
        epochs.push(record);
    }
    let scores: Vec<EpochScore> = epochs.iter().map(|e| e.score).collect();
    Ok(RunResult {
        tuner: tuner.name().to_owned(),
        settings: tuner.settings(),
        backend: env.backend().to_owned(),
        objective: run_objective(&scores),
        epochs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rheo_engine::JobConfig;

    fn config(p: usize) -> JobConfig {
        let mut c = JobConfig::default();
        c.set_parallelism("work", p);
        c
    }

    fn decision(applied: usize, proposal: Option<usize>) -> Decision {
        Decision {
            config: config(applied),
            reason: String::new(),
            detail: match proposal {
                Some(p) => serde_json::json!({ "proposal": config(p) }),
                None => serde_json::json!({}),
            },
        }
    }

    #[test]
    fn a_decision_is_overridden_when_it_applies_something_else_than_its_proposal() {
        // A cooldown or clamp kept 2 where the policy asked for 3.
        assert!(overridden(&decision(2, Some(3))));
        // The proposal went through.
        assert!(!overridden(&decision(3, Some(3))));
        // Tuners without guardrails record no proposal.
        assert!(!overridden(&decision(3, None)));
    }
}

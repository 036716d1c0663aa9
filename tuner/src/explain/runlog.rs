//! Reading back a run log written by `rheo tune --run-log`, and the agent's decisions in it.

use std::path::{Path, PathBuf};

use rheo_engine::{JobConfig, MetricsSnapshot};
use serde::Deserialize;

use super::{ExplainError, StageDecision};
use crate::agent::actions::{StageAction, input_capacity};
use crate::agent::features::FEATURES;
use crate::agent::policy::{BUFFER_ACTIONS, PARALLELISM_ACTIONS};
use crate::agent::trace::DecisionTrace;
use crate::run::EpochRecord;
use crate::tuners::Decision;

/// One epoch of a run: what the job did and what the tuner decided.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LoggedEpoch {
    /// The epoch's snapshot.
    pub snapshot: MetricsSnapshot,
    /// The score and the decision after it.
    pub record: EpochRecord,
}

/// A whole run log.
#[derive(Debug, Clone)]
pub struct RunLog {
    /// Where it was read from.
    pub path: PathBuf,
    /// The header (workload, tuner, settings, backend, seed, SLO).
    pub header: serde_json::Value,
    /// Every epoch.
    pub epochs: Vec<LoggedEpoch>,
}

impl RunLog {
    /// Reads `path`; a line that is not what `rheo tune --run-log` writes is an error naming
    /// the line.
    pub fn read(path: impl AsRef<Path>) -> Result<RunLog, ExplainError> {
        let path = path.as_ref().to_path_buf();
        let text = std::fs::read_to_string(&path).map_err(|source| ExplainError::Io {
            path: path.clone(),
            source,
        })?;
        let bad = |line: usize, reason: String| ExplainError::RunLog {
            path: path.clone(),
            line,
            reason,
        };
        let mut header = None;
        let mut epochs = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value =
                serde_json::from_str(line).map_err(|e| bad(i + 1, format!("not JSON: {e}")))?;
            match value["type"].as_str() {
                Some("header") => header = Some(value),
                Some("epoch") => {
                    let epoch = LoggedEpoch::deserialize(&value)
                        .map_err(|e| bad(i + 1, format!("not an epoch record: {e}")))?;
                    epochs.push(epoch);
                }
                other => return Err(bad(i + 1, format!("unknown line type {other:?}"))),
            }
        }
        let header = header.ok_or_else(|| bad(1, "no header line".into()))?;
        Ok(RunLog {
            path,
            header,
            epochs,
        })
    }

    /// The tuner that ran (`agent`, `ds2`, …).
    pub fn tuner(&self) -> &str {
        self.header["tuner"].as_str().unwrap_or("?")
    }

    /// The agent's checkpoint, as the header names it.
    pub fn checkpoint(&self) -> Option<PathBuf> {
        self.header["settings"]["checkpoint"]
            .as_str()
            .map(PathBuf::from)
    }

    /// Every stage decision the agent logged, in epoch order.
    pub fn decisions(&self) -> Result<Vec<StageDecision>, ExplainError> {
        epoch_decisions(&self.epochs, &self.path)
    }
}

/// Every stage decision the agent recorded in `epochs` (a run log's, read from `source`, or
/// kept while a run went on), in epoch order; an error names the source and the line the
/// epoch has in a run log.
pub fn epoch_decisions(
    epochs: &[LoggedEpoch],
    source: &Path,
) -> Result<Vec<StageDecision>, ExplainError> {
    let mut out = Vec::new();
    for (i, e) in epochs.iter().enumerate() {
        let d = stage_decisions(e.snapshot.epoch, &e.snapshot.config, &e.record.decision).map_err(
            |reason| ExplainError::RunLog {
                path: source.to_path_buf(),
                // The header is line 1.
                line: i + 2,
                reason,
            },
        )?;
        out.extend(d);
    }
    Ok(out)
}

fn probabilities<const N: usize>(v: &serde_json::Value) -> Option<[f32; N]> {
    let a = v.as_array()?;
    if a.len() != N {
        return None;
    }
    let mut out = [0.0; N];
    for (dst, x) in out.iter_mut().zip(a) {
        *dst = x.as_f64()? as f32;
    }
    Some(out)
}

/// The stage decisions an agent's `decision` (made on a job running `before`) records; none
/// for epochs without a policy decision (fixed configuration, other tuners). Masked moves are
/// the ones logged with probability 0.
pub fn stage_decisions(
    epoch: u64,
    before: &JobConfig,
    decision: &Decision,
) -> Result<Vec<StageDecision>, String> {
    let detail = &decision.detail;
    let (Some(choices), Some(observation)) = (
        detail["choices"].as_array(),
        detail["observation"].as_object(),
    ) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(choices.len());
    for c in choices {
        let stage = c["stage"]
            .as_str()
            .ok_or("a choice without a stage")?
            .to_owned();
        let row: Vec<f32> = observation
            .get(&stage)
            .and_then(|r| r.as_array())
            .ok_or_else(|| format!("no observation for stage `{stage}`"))?
            .iter()
            .map(|v| v.as_f64().unwrap_or(0.0) as f32)
            .collect();
        if row.len() != FEATURES {
            return Err(format!(
                "stage `{stage}`: {} features logged, this build's policy reads {FEATURES}",
                row.len()
            ));
        }
        let action = StageAction::deserialize(&c["action"])
            .map_err(|e| format!("stage `{stage}`: action: {e}"))?;
        let probs = probabilities::<PARALLELISM_ACTIONS>(&c["parallelism_probabilities"])
            .ok_or_else(|| format!("stage `{stage}`: parallelism probabilities"))?;
        let buf = probabilities::<BUFFER_ACTIONS>(&c["buffer_probabilities"])
            .ok_or_else(|| format!("stage `{stage}`: buffer probabilities"))?;
        let fallback = detail["fallback"].as_array().and_then(|f| {
            f.iter()
                .find(|x| x["stage"] == stage.as_str())
                .and_then(|x| x["reason"].as_str().map(str::to_owned))
        });
        let ds2 = detail["ds2"][&stage]["parallelism"]
            .as_u64()
            .map(|p| p as usize);
        out.push(StageDecision {
            epoch,
            from: before.parallelism(&stage).unwrap_or(1),
            to: decision.config.parallelism(&stage).unwrap_or(1),
            buffer: (
                input_capacity(before, &stage),
                input_capacity(&decision.config, &stage),
            ),
            stage,
            row,
            parallelism_allowed: probs.map(|p| p > 0.0),
            buffer_allowed: buf.map(|p| p > 0.0),
            action,
            probabilities: probs,
            buffer_probabilities: buf,
            ds2,
            fallback,
            guardrail: detail["guardrail"].as_str().map(str::to_owned),
        });
    }
    Ok(out)
}

/// The stage decisions of an agent's [`DecisionTrace`] (what a live run hands the explainer).
pub fn trace_decisions(t: &DecisionTrace) -> Vec<StageDecision> {
    t.stages
        .iter()
        .enumerate()
        .map(|(i, stage)| {
            let probabilities = t.parallelism_probabilities[i];
            let (from, to) = t.parallelism[i];
            StageDecision {
                epoch: t.epoch,
                stage: stage.clone(),
                row: t.rows.get(i).map(|r| r.to_vec()).unwrap_or_default(),
                parallelism_allowed: probabilities.map(|p| p > 0.0),
                buffer_allowed: t.buffer_probabilities[i].map(|p| p > 0.0),
                action: t.actions[i],
                probabilities,
                buffer_probabilities: t.buffer_probabilities[i],
                from,
                to,
                buffer: t.buffers[i],
                ds2: t.ds2.get(i).copied().flatten(),
                fallback: t
                    .fallbacks
                    .iter()
                    .find(|f| f.0 == i)
                    .map(|f| f.1.to_owned()),
                guardrail: t.guardrail.clone(),
            }
        })
        .take(t.actions.len())
        .collect()
}

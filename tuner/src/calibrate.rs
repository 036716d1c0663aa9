//! Calibrating the simulator from recorded engine snapshots, and measuring its error.
//!
//! [`fit`] estimates, per stage, the ratio of the measured per-worker service rate to the
//! spec's nominal one and how it scales with parallelism (a regression of
//! `log(λ per worker)` on `log p`), the engine's CPU overhead per record, the run-to-run noise,
//! and the latency scale (measured p99 against the model's). [`compare`] replays an engine run's
//! configurations and offered load in the simulator and reports how far throughput, p99 and
//! busy fractions are from what the engine measured.

use rheo_engine::MetricsSnapshot;
use rheo_engine::partition::Partition;
use serde::{Deserialize, Serialize};

use crate::env::sim::{Carry, Model, SimParams};
use crate::spec::Workload;

/// Reads the snapshots of a recorded run: a metrics log (one snapshot per line, from
/// `JobOptions::metrics_jsonl`) or a run log (`rheo tune --run-log`: a header, then epochs
/// carrying their snapshot). Lines that are neither are skipped; an unreadable file or a file
/// without snapshots is an error naming it.
pub fn load_snapshots(path: &std::path::Path) -> Result<Vec<MetricsSnapshot>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let snapshot = value.get("snapshot").cloned().unwrap_or(value);
        if let Ok(s) = serde_json::from_value::<MetricsSnapshot>(snapshot) {
            out.push(s);
        }
    }
    if out.is_empty() {
        return Err(format!(
            "{}: no metrics snapshots in the file",
            path.display()
        ));
    }
    Ok(out)
}

/// Writes snapshots as JSON lines (a metrics log), readable by [`load_snapshots`].
pub fn save_snapshots(path: &std::path::Path, snapshots: &[MetricsSnapshot]) -> Result<(), String> {
    let mut text = String::new();
    for s in snapshots {
        text.push_str(&s.to_json_line());
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Least squares `y = a + b·x`; `None` without spread in `x`.
fn line_fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx < 1e-9 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let b = sxy / sxx;
    Some((my - b * mx, b))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// Fits the simulator's constants for `workload` to engine runs (each a list of snapshots).
pub fn fit(workload: &Workload, runs: &[Vec<MetricsSnapshot>]) -> SimParams {
    let mut params = SimParams::nominal(workload);
    let snapshots: Vec<&MetricsSnapshot> = runs.iter().flatten().collect();
    // Engine overhead: CPU per record beyond the spec's CPU work.
    let overheads: Vec<f64> = snapshots
        .iter()
        .flat_map(|s| {
            workload.stages.iter().filter_map(move |spec| {
                let m = s.stage(&spec.name)?;
                (m.records_in >= 200).then(|| m.cpu_s * 1e6 / m.records_in as f64 - spec.cpu_us)
            })
        })
        .collect();
    if let Some(o) = median(overheads) {
        params.overhead_us = o.clamp(0.1, 50.0);
    }
    // Service rates and scaling, per stage.
    let mut residuals = Vec::new();
    for (i, spec) in workload.stages.iter().enumerate() {
        let mut points = Vec::new();
        for s in &snapshots {
            let Some(m) = s.stage(&spec.name) else {
                continue;
            };
            let p = m.parallelism.max(1) as f64;
            if m.records_in < 200 || m.busy_s < 0.01 || m.true_processing_rate <= 0.0 {
                continue;
            }
            // Nominal per-worker rate at the batch size this epoch actually formed.
            let input = m.observed_input_rate;
            let p_up = if i == 0 {
                1.0
            } else {
                s.stage(&workload.stages[i - 1].name)
                    .map_or(1.0, |u| u.parallelism.max(1) as f64)
            };
            let batch =
                s.edges
                    .iter()
                    .find(|e| e.to == spec.name)
                    .map_or(workload.initial.batch_size, |e| e.batch_size) as f64;
            let per_buffer = input
                / p_up
                / if spec.partition == Partition::Hash {
                    p
                } else {
                    1.0
                };
            // The batches that actually arrived, when the engine measured them; else full
            // batches under a backlog and partial ones otherwise.
            let full = s.backlog() > 0 || m.input_occupancy > 0.5;
            let b = if m.mean_input_batch >= 1.0 {
                m.mean_input_batch
            } else if full {
                batch
            } else {
                params.flush_batch(per_buffer, batch)
            };
            let nominal =
                1e6 / (spec.cpu_us + spec.wait_us + spec.batch_wait_us / b + params.overhead_us);
            let per_worker = m.true_processing_rate / p;
            points.push((p.ln(), (per_worker / nominal).ln()));
        }
        let (factor, alpha) = match line_fit(&points) {
            Some((a, slope)) => (a.exp(), (1.0 + slope).clamp(0.2, 1.0)),
            None => (
                median(points.iter().map(|p| p.1.exp()).collect()).unwrap_or(1.0),
                1.0,
            ),
        };
        params.rate_factor[i] = factor.clamp(0.05, 5.0);
        params.scaling[i] = alpha;
        for (x, y) in &points {
            residuals.push(y - (params.rate_factor[i].ln() + (alpha - 1.0) * x));
        }
    }
    if residuals.len() > 2 {
        let n = residuals.len() as f64;
        let mean = residuals.iter().sum::<f64>() / n;
        let sd = (residuals.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        params.noise = sd.clamp(0.01, 0.3);
    }
    // Latency scale: measured p99 against the model's, replaying each run.
    params.latency_floor_ms = 0.0;
    params.latency_factor = 1.0;
    let mut pairs = Vec::new();
    for run in runs {
        for (modelled, measured) in replay(workload, &params, run)
            .iter()
            .map(|r| (r.p99_ms, r.engine_p99_ms))
        {
            if measured > 0.0 {
                pairs.push((modelled, measured));
            }
        }
    }
    // Ratios rather than a least-squares line: latencies span orders of magnitude, and a few
    // transients would otherwise decide the fit.
    if let Some(factor) = median(
        pairs
            .iter()
            .filter(|p| p.0 > 0.0)
            .map(|p| p.1 / p.0)
            .collect(),
    ) {
        params.latency_factor = factor.clamp(0.2, 5.0);
    }
    let factor = params.latency_factor;
    params.latency_floor_ms = median(pairs.iter().map(|p| p.1 - factor * p.0).collect())
        .unwrap_or(0.0)
        .clamp(0.0, 20.0);
    params
}

/// One epoch of an engine run next to the simulator's replay of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayedEpoch {
    /// Simulated throughput (events/s).
    pub throughput: f64,
    /// Measured throughput.
    pub engine_throughput: f64,
    /// Simulated p99, ms.
    pub p99_ms: f64,
    /// Measured p99, ms.
    pub engine_p99_ms: f64,
    /// Simulated busy fraction per stage.
    pub busy: Vec<f64>,
    /// Measured busy fraction per stage.
    pub engine_busy: Vec<f64>,
    /// Simulated input-channel fill per stage, 0..1 (in batches, as the engine counts it).
    #[serde(default)]
    pub occupancy: Vec<f64>,
    /// Measured input-channel fill per stage.
    #[serde(default)]
    pub engine_occupancy: Vec<f64>,
}

/// Replays an engine run in the simulator: same configuration and offered load per epoch,
/// the simulator's own backlog.
pub fn replay(
    workload: &Workload,
    params: &SimParams,
    run: &[MetricsSnapshot],
) -> Vec<ReplayedEpoch> {
    let mut model = Model::new(workload, params.clone());
    let noise = vec![1.0; workload.stages.len()];
    let mut carry = Carry::default();
    let mut previous: Option<(&rheo_engine::JobConfig, f64)> = None;
    run.iter()
        .map(|s| {
            let offered = s.offered() as f64;
            let out = match previous {
                Some((config, capacity)) if *config != s.config => {
                    let change = model.reconfiguration(config, &s.config, &noise, |_| capacity);
                    model.epoch_after_change(&s.config, offered, carry, &noise, change)
                }
                _ => model.epoch(&s.config, offered, carry, &noise),
            };
            carry = out.carry();
            previous = Some((&s.config, out.capacity));
            ReplayedEpoch {
                throughput: out.emitted / workload.epoch_s,
                engine_throughput: s.emitted() as f64 / s.epoch_s.max(1e-9),
                p99_ms: out.p99_ms,
                engine_p99_ms: s.latency.p99_ms,
                busy: out.busy.clone(),
                engine_busy: workload
                    .stages
                    .iter()
                    .map(|spec| s.stage(&spec.name).map_or(0.0, |m| m.busy_fraction))
                    .collect(),
                occupancy: out.occupancy.clone(),
                engine_occupancy: workload
                    .stages
                    .iter()
                    .map(|spec| s.stage(&spec.name).map_or(0.0, |m| m.input_occupancy))
                    .collect(),
            }
        })
        .collect()
}

/// How far the simulator is from the engine on one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimError {
    /// Epochs compared.
    pub epochs: usize,
    /// Relative error of the mean throughput over the run: |sim − engine| / engine.
    pub throughput_rel: f64,
    /// Per-epoch throughput error weighted by throughput: `Σ |sim − engine| / Σ engine` over
    /// epochs (an epoch the engine spends paused for a reconfiguration counts by what it
    /// missed, rather than dividing by its near-zero throughput).
    pub throughput_epoch_rel: f64,
    /// Median per-epoch absolute relative p99 error.
    pub p99_rel_median: f64,
    /// Mean per-epoch absolute error of the objective's latency penalty
    /// (`clamp((p99 − SLO) / SLO, 0, 1)`): the part of the latency the objective sees.
    #[serde(default)]
    pub slo_abs: f64,
    /// Mean absolute busy-fraction error, over stages and epochs.
    pub busy_abs: f64,
    /// Largest per-stage mean absolute busy-fraction error.
    pub busy_abs_max_stage: f64,
    /// Mean absolute input-channel fill error, over stages and epochs (the agent reads the
    /// fill; a model that fills channels later than the engine teaches it the wrong state).
    #[serde(default)]
    pub occupancy_abs: f64,
    /// Largest per-stage mean absolute input-channel fill error.
    #[serde(default)]
    pub occupancy_abs_max_stage: f64,
}

/// The simulator's error against an engine run.
pub fn compare(workload: &Workload, params: &SimParams, run: &[MetricsSnapshot]) -> SimError {
    let epochs = replay(workload, params, run);
    let n = epochs.len().max(1) as f64;
    let sim_total: f64 = epochs.iter().map(|e| e.throughput).sum();
    let engine_total: f64 = epochs.iter().map(|e| e.engine_throughput).sum();
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-9);
    let objective = workload.objective();
    let stages = workload.stages.len();
    let per_stage_error = |sim: fn(&ReplayedEpoch) -> &[f64],
                           engine: fn(&ReplayedEpoch) -> &[f64]| {
        (0..stages)
            .map(|i| {
                epochs
                    .iter()
                    .map(|e| {
                        let (a, b) = (sim(e).get(i), engine(e).get(i));
                        (a.copied().unwrap_or(0.0) - b.copied().unwrap_or(0.0)).abs()
                    })
                    .sum::<f64>()
                    / n
            })
            .collect::<Vec<f64>>()
    };
    let per_stage = per_stage_error(|e| &e.busy, |e| &e.engine_busy);
    let occupancy = per_stage_error(|e| &e.occupancy, |e| &e.engine_occupancy);
    SimError {
        epochs: epochs.len(),
        throughput_rel: rel(sim_total, engine_total),
        throughput_epoch_rel: epochs
            .iter()
            .map(|e| (e.throughput - e.engine_throughput).abs())
            .sum::<f64>()
            / engine_total.abs().max(1e-9),
        p99_rel_median: median(
            epochs
                .iter()
                .map(|e| rel(e.p99_ms, e.engine_p99_ms))
                .collect(),
        )
        .unwrap_or(0.0),
        slo_abs: epochs
            .iter()
            .map(|e| {
                (objective.latency_penalty(e.p99_ms) - objective.latency_penalty(e.engine_p99_ms))
                    .abs()
            })
            .sum::<f64>()
            / n,
        busy_abs: per_stage.iter().sum::<f64>() / stages.max(1) as f64,
        busy_abs_max_stage: per_stage.iter().copied().fold(0.0, f64::max),
        occupancy_abs: occupancy.iter().sum::<f64>() / stages.max(1) as f64,
        occupancy_abs_max_stage: occupancy.iter().copied().fold(0.0, f64::max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_fit_recovers_a_line() {
        let (a, b) = line_fit(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]).unwrap();
        assert!((a - 1.0).abs() < 1e-9 && (b - 2.0).abs() < 1e-9);
        assert_eq!(line_fit(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }
}

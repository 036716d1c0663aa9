//! The oracle: it knows the future rate profile. For every epoch's rate it finds, in the
//! calibrated simulator, the smallest configuration that absorbs the rate within the SLO (and
//! variants with one more worker on any stage); then dynamic programming over the epochs picks
//! the schedule of those configurations with the highest expected run objective — change costs,
//! noise and the backlog each choice leaves behind included. On the engine, the schedule is replayed. It
//! is the upper reference — the physical limit of tuning.

use rheo_engine::{JobConfig, MetricsSnapshot};

use super::{Decision, TuneContext, Tuner};
use crate::action::Bounds;
use crate::env::sim::{Carry, Model, SimParams, initial_config};
use crate::spec::Workload;

/// The smallest configuration (greedily, raising the bottleneck one worker at a time) that
/// takes `rate` events/s with p99 within the SLO, if the bounds allow one; else the best found.
fn minimal_config(model: &mut Model, bounds: &Bounds, rate: f64) -> JobConfig {
    let w = model.workload().clone();
    let mut config = initial_config(&w);
    for (name, min, _) in &bounds.stages {
        config.set_parallelism(name, *min);
    }
    let offered = rate * w.epoch_s;
    let slo = w.objective.latency_slo_ms;
    let noise = vec![1.0; w.stages.len()];
    loop {
        let out = model.epoch(&config, offered, Carry::default(), &noise);
        let short = out.emitted < offered * 0.995;
        if !short && out.p99_ms <= slo {
            return config;
        }
        if bounds.threads(&config) >= bounds.max_threads {
            return config;
        }
        // Raise the bottleneck if short of capacity, else the busiest stage (latency).
        let order: Vec<usize> = if short {
            vec![out.bottleneck]
        } else {
            let mut by_busy: Vec<usize> = (0..w.stages.len()).collect();
            by_busy.sort_by(|a, b| out.busy[*b].total_cmp(&out.busy[*a]));
            by_busy
        };
        let mut raised = false;
        for i in order {
            let (name, _, max) = &bounds.stages[i];
            let p = config.parallelism(name).unwrap_or(1);
            if p < *max {
                let mut next = config.clone();
                next.set_parallelism(name, p + 1);
                let after = model.epoch(&next, offered, Carry::default(), &noise);
                if after.emitted > out.emitted * 1.0001 || after.p99_ms < out.p99_ms * 0.999 {
                    config = next;
                    raised = true;
                    break;
                }
            }
        }
        if !raised {
            return config;
        }
    }
}

/// The oracle's schedule for `workload`: the configuration of every epoch (epoch 0 runs the
/// initial configuration).
pub fn plan_oracle(workload: &Workload, params: SimParams, bounds: &Bounds) -> Vec<JobConfig> {
    let mut model = Model::new(workload, params);
    let epochs = workload.epochs();
    let e = workload.epoch_s;
    let rates: Vec<f64> = (0..epochs)
        .map(|t| {
            let (t0, t1) = (t as f64 * e, (t + 1) as f64 * e);
            (workload.source.rate.offered_at(t1) - workload.source.rate.offered_at(t0)) / e
        })
        .collect();
    let initial = initial_config(workload);
    let mut candidates = vec![initial.clone()];
    let mut add = |c: JobConfig| {
        if !candidates.contains(&c) {
            candidates.push(c);
        }
    };
    for rate in &rates {
        let minimal = minimal_config(&mut model, bounds, *rate);
        // Headroom variants: one more worker on any one stage, within bounds and budget.
        for (name, _, max) in &bounds.stages {
            let p = minimal.parallelism(name).unwrap_or(1);
            if p < *max && bounds.threads(&minimal) < bounds.max_threads {
                let mut more = minimal.clone();
                more.set_parallelism(name, p + 1);
                add(more);
            }
        }
        add(minimal);
    }
    let objective = workload.objective();
    let slo = objective.latency_slo_ms;
    // Service-rate noise draws the reward is averaged over (the runs will be noisy too).
    let sigma = model.params().noise;
    let draws: Vec<Vec<f64>> = (0..8)
        .map(|d| {
            (0..workload.stages.len())
                .map(|i| {
                    let z = ((d * 7 + i * 3) % 8) as f64 / 3.5 - 1.0;
                    (sigma * 1.5 * z).exp()
                })
                .collect()
        })
        .collect();
    // Expected reward (over the noise draws) of running candidate c in epoch t with `backlog`
    // waiting, before change costs; and the backlog it leaves.
    let step = |model: &mut Model, t: usize, c: &JobConfig, carry: Carry, changed: bool| {
        let offered = rates[t] * e;
        let threads = bounds.threads(c) as f64;
        let (mut total, mut left) = (0.0, Carry::default());
        for noise in &draws {
            let out = model.epoch(c, offered, carry, noise);
            let shortfall = if offered > 0.0 {
                (1.0 - out.emitted / offered).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let p99 = out.p99_ms + if changed { 1.0 } else { 0.0 };
            let slo_pen = ((p99 - slo) / slo).clamp(0.0, 1.0);
            total += 1.0
                - 2.0 * shortfall
                - slo_pen
                - 0.5 * threads / objective.max_threads.max(1) as f64;
            left.backlog += out.backlog;
            left.queued += out.queued;
        }
        let n = draws.len() as f64;
        left.backlog /= n;
        left.queued /= n;
        (total / n, left)
    };
    // Dynamic programming over (epoch, configuration); the backlog each state carries comes
    // from its best predecessor, so start-up and under-provisioned stretches pay for the
    // backlog they leave behind.
    let k = candidates.len();
    let (r0, b0) = step(&mut model, 0, &candidates[0], Carry::default(), false);
    let mut value = vec![f64::NEG_INFINITY; k];
    let mut backlog = vec![Carry::default(); k];
    value[0] = r0;
    backlog[0] = b0;
    let mut back: Vec<Vec<usize>> = vec![vec![0; k]];
    for t in 1..epochs {
        let mut next = vec![f64::NEG_INFINITY; k];
        let mut next_backlog = vec![Carry::default(); k];
        let mut from = vec![0; k];
        for (c, cand) in candidates.iter().enumerate() {
            for prev in 0..k {
                if value[prev] == f64::NEG_INFINITY {
                    continue;
                }
                let changed = prev != c;
                let (r, left) = step(&mut model, t, cand, backlog[prev], changed);
                let total = value[prev] + r - if changed { 0.1 } else { 0.0 };
                if total > next[c] {
                    next[c] = total;
                    next_backlog[c] = left;
                    from[c] = prev;
                }
            }
        }
        value = next;
        backlog = next_backlog;
        back.push(from);
    }
    let mut best = (0..k)
        .max_by(|a, b| value[*a].total_cmp(&value[*b]))
        .unwrap_or(0);
    let mut schedule = vec![JobConfig::default(); epochs];
    for t in (0..epochs).rev() {
        schedule[t] = candidates[best].clone();
        best = back[t][best];
    }
    schedule
}

/// Replays a planned schedule.
#[derive(Debug, Clone)]
pub struct Oracle {
    schedule: Vec<JobConfig>,
}

impl Oracle {
    /// An oracle replaying `schedule` (one configuration per epoch).
    pub fn new(schedule: Vec<JobConfig>) -> Oracle {
        Oracle { schedule }
    }
}

impl Tuner for Oracle {
    fn name(&self) -> &str {
        "oracle"
    }

    fn settings(&self) -> serde_json::Value {
        serde_json::json!({ "epochs": self.schedule.len() })
    }

    fn decide(&mut self, snapshot: &MetricsSnapshot, cx: &TuneContext) -> Decision {
        let next = (snapshot.epoch as usize + 1).min(self.schedule.len().saturating_sub(1));
        let mut config = snapshot.config.clone();
        if let Some(planned) = self.schedule.get(next) {
            for (name, _, _) in &cx.bounds.stages {
                if let Some(p) = planned.parallelism(name) {
                    config.set_parallelism(name, p);
                }
            }
        }
        Decision {
            reason: if config == snapshot.config {
                "keep".into()
            } else {
                format!("planned for epoch {next}")
            },
            config,
            detail: serde_json::Value::Null,
        }
    }
}

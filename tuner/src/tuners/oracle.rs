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
        if bounds.threads(&config) >= bounds.max_threads {
            return config;
        }
        // First capacity: the bottleneck must grow, whatever one step shows (two stages may
        // both need more before either helps).
        if out.capacity < rate * 1.02 {
            let (name, _, max) = &bounds.stages[out.bottleneck];
            let p = config.parallelism(name).unwrap_or(1);
            if p >= *max {
                return config;
            }
            config.set_parallelism(name, p + 1);
            continue;
        }
        if out.p99_ms <= slo {
            return config;
        }
        // Then latency: raise the busiest stage that helps.
        let mut by_busy: Vec<usize> = (0..w.stages.len()).collect();
        by_busy.sort_by(|a, b| out.busy[*b].total_cmp(&out.busy[*a]));
        let mut raised = false;
        for i in by_busy {
            let (name, _, max) = &bounds.stages[i];
            let p = config.parallelism(name).unwrap_or(1);
            if p < *max {
                let mut next = config.clone();
                next.set_parallelism(name, p + 1);
                let after = model.epoch(&next, offered, Carry::default(), &noise);
                if after.p99_ms < out.p99_ms * 0.999 {
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
    let step =
        |model: &mut Model, t: usize, c: &JobConfig, carry: Carry, previous: Option<&JobConfig>| {
            let offered = rates[t] * e;
            let threads = bounds.threads(c) as f64;
            let (mut total, mut left) = (0.0, Carry::default());
            for noise in &draws {
                let out = match previous {
                    Some(prev) if prev != c => {
                        let change = model.reconfiguration(prev, c, noise, |m| {
                            m.epoch(prev, 0.0, Carry::default(), noise).capacity
                        });
                        model.epoch_after_change(c, offered, carry, noise, change)
                    }
                    _ => model.epoch(c, offered, carry, noise),
                };
                let shortfall = if offered > 0.0 {
                    (1.0 - out.emitted / offered).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let slo_pen = ((out.p99_ms - slo) / slo).clamp(0.0, 1.0);
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
    // Dynamic programming over (epoch, configuration, what is left waiting). The waiting events
    // are continuous, so each configuration keeps a few labels (run value so far, events
    // waiting): those no other label beats on both counts, at most LABELS of them. Keeping only
    // the best value would let a cheap-so-far path with a growing queue crowd out the path
    // that paid early to keep the queue short.
    const LABELS: usize = 6;
    #[derive(Clone, Copy)]
    struct Label {
        value: f64,
        carry: Carry,
        /// (configuration, label) it came from.
        from: (usize, usize),
    }
    let waiting = |c: &Carry| c.backlog + c.queued;
    let k = candidates.len();
    let (r0, c0) = step(&mut model, 0, &candidates[0], Carry::default(), None);
    let mut labels: Vec<Vec<Label>> = vec![Vec::new(); k];
    labels[0].push(Label {
        value: r0,
        carry: c0,
        from: (0, 0),
    });
    let mut history: Vec<Vec<Vec<Label>>> = vec![labels.clone()];
    for t in 1..epochs {
        let mut next: Vec<Vec<Label>> = vec![Vec::new(); k];
        for (c, cand) in candidates.iter().enumerate() {
            let mut options = Vec::new();
            for (prev, prev_labels) in labels.iter().enumerate() {
                for (li, label) in prev_labels.iter().enumerate() {
                    let changed = prev != c;
                    let (r, left) = step(&mut model, t, cand, label.carry, Some(&candidates[prev]));
                    options.push(Label {
                        value: label.value + r - if changed { 0.1 } else { 0.0 },
                        carry: left,
                        from: (prev, li),
                    });
                }
            }
            options.sort_by(|a, b| b.value.total_cmp(&a.value));
            let mut kept: Vec<Label> = Vec::new();
            for o in options {
                // Sorted by value: keep a label only if it leaves less waiting than all kept.
                if kept
                    .iter()
                    .all(|k| waiting(&o.carry) < waiting(&k.carry) - 1.0)
                {
                    kept.push(o);
                    if kept.len() == LABELS {
                        break;
                    }
                }
            }
            next[c] = kept;
        }
        labels = next;
        history.push(labels.clone());
    }
    let mut best = (0usize, 0usize);
    let mut best_value = f64::NEG_INFINITY;
    for (c, ls) in labels.iter().enumerate() {
        for (li, l) in ls.iter().enumerate() {
            if l.value > best_value {
                best_value = l.value;
                best = (c, li);
            }
        }
    }
    let mut schedule = vec![JobConfig::default(); epochs];
    for t in (0..epochs).rev() {
        schedule[t] = candidates[best.0].clone();
        best = history[t][best.0].get(best.1).map_or((0, 0), |l| l.from);
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

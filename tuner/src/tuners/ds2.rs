//! DS2 (Kalavri et al., OSDI 2018): one-step parallelism from true processing rates.
//!
//! For a stage with true processing rate `λ` (records per busy second, summed over its `p`
//! workers), `π_raw = target_in / (λ / p)` workers would just absorb its target input rate,
//! and DS2 proposes `π = ceil(π_raw · (1 + factor))`. A source's target is its **offered**
//! rate (what the schedule asks for, plus backlog catch-up if configured), never what it
//! managed to emit — measured over the epoch that ended; a stage's target input is the sum of its upstream stages' target outputs;
//! a stage's target output is its true output rate × `π_raw / p`. Proposals go through the
//! shared [`clamp`](crate::action::clamp). Buffers are left as they are (DS2 has no buffer
//! model).

use std::collections::BTreeMap;

use rheo_engine::metrics::StageKind;
use rheo_engine::{JobConfig, MetricsSnapshot};
use serde::{Deserialize, Serialize};

use super::{Decision, TuneContext, Tuner};
use crate::action::clamp;

/// DS2's knobs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ds2Knobs {
    /// Epochs to wait after a change before deciding again (the new workers' rates settle).
    pub warmup_epochs: usize,
    /// Consecutive epochs that must propose the same change before it is applied.
    pub activation: usize,
    /// Over-provisioning: `π = ceil(π_raw · (1 + factor))`.
    pub factor: f64,
    /// Work off a source's backlog within this many seconds (0: ignore backlog).
    pub catch_up_s: f64,
}

impl Default for Ds2Knobs {
    fn default() -> Self {
        Ds2Knobs {
            warmup_epochs: 1,
            activation: 1,
            factor: 0.0,
            catch_up_s: 0.0,
        }
    }
}

/// The part of DS2's knobs that shapes its suggestion at one epoch (warm-up and activation only
/// decide when a suggestion is applied): what the agent's moves are offsets from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Ds2Base {
    /// Over-provisioning: `π = ceil(π_raw · (1 + factor))`.
    pub factor: f64,
    /// Work off a source's backlog within this many seconds (0: ignore backlog).
    pub catch_up_s: f64,
}

impl From<Ds2Knobs> for Ds2Base {
    fn from(k: Ds2Knobs) -> Ds2Base {
        Ds2Base {
            factor: k.factor,
            catch_up_s: k.catch_up_s,
        }
    }
}

impl Ds2Knobs {
    /// The grid DS2 is tuned over (per workload, on the simulator). The factor reaches 1.0
    /// because a step workload with a slow keyed stage is served best by a spare worker kept
    /// through the quiet phase (docs/benchmarks.md, "A wider grid for DS2").
    pub fn grid() -> Vec<Ds2Knobs> {
        let mut grid = Vec::new();
        for warmup_epochs in [0, 1, 2] {
            for activation in [1, 2] {
                for factor in [0.0, 0.1, 0.25, 0.5, 1.0] {
                    for catch_up_s in [0.0, 5.0] {
                        grid.push(Ds2Knobs {
                            warmup_epochs,
                            activation,
                            factor,
                            catch_up_s,
                        });
                    }
                }
            }
        }
        grid
    }
}

/// What DS2's model says at one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ds2Suggestion {
    /// Per tunable stage, `π_raw` (un-ceiled).
    pub raw: BTreeMap<String, f64>,
    /// Per stage, the target input rate (records/s).
    pub target_in: BTreeMap<String, f64>,
    /// The proposal after ceiling, over-provisioning and the clamp.
    pub config: JobConfig,
    /// What the clamp changed.
    pub clamped: Vec<String>,
}

impl Ds2Suggestion {
    /// The suggested parallelism of `stage`.
    pub fn parallelism(&self, stage: &str) -> Option<usize> {
        self.config.parallelism(stage)
    }
}

/// DS2's suggestion for the configuration after `snapshot`.
pub fn ds2_suggestion(
    snapshot: &MetricsSnapshot,
    cx: &TuneContext,
    factor: f64,
    catch_up_s: f64,
) -> Ds2Suggestion {
    let current = &snapshot.config;
    let tunable = |s: &str| cx.bounds.stages.iter().any(|(n, _, _)| n == s);
    let mut target_out: BTreeMap<&str, f64> = BTreeMap::new();
    let mut raw = BTreeMap::new();
    let mut target_in_map = BTreeMap::new();
    let mut proposed = current.clone();
    // Stages come in build order, which is topological.
    for stage in &snapshot.stages {
        let name = stage.name.as_str();
        if stage.kind == StageKind::Source {
            let source = snapshot.sources.iter().find(|s| s.name == stage.name);
            let offered = source.map_or(0.0, |s| s.offered_rate);
            let catch_up = match source {
                Some(s) if catch_up_s > 0.0 => s.backlog as f64 / catch_up_s,
                _ => 0.0,
            };
            target_out.insert(name, offered + catch_up);
            continue;
        }
        let target_in: f64 = snapshot
            .edges
            .iter()
            .filter(|e| e.to == stage.name)
            .map(|e| target_out.get(e.from.as_str()).copied().unwrap_or(0.0))
            .sum();
        target_in_map.insert(stage.name.clone(), target_in);
        let p = current
            .parallelism(name)
            .unwrap_or(stage.parallelism)
            .max(1) as f64;
        let lambda = stage.true_processing_rate;
        let (pi_raw, out) = if lambda > 0.0 {
            let pi_raw = target_in / (lambda / p);
            (pi_raw, stage.true_output_rate * pi_raw / p)
        } else {
            // Nothing measured (no input this epoch): keep the parallelism, pass the target on.
            let selectivity = if stage.records_in > 0 {
                stage.records_out as f64 / stage.records_in as f64
            } else {
                1.0
            };
            (p, target_in * selectivity)
        };
        target_out.insert(name, out);
        if tunable(name) {
            raw.insert(stage.name.clone(), pi_raw);
            let pi = (pi_raw * (1.0 + factor)).ceil().max(1.0) as usize;
            proposed.set_parallelism(name, pi);
        }
    }
    let clamped = clamp(current, &proposed, &cx.bounds);
    Ds2Suggestion {
        raw,
        target_in: target_in_map,
        config: clamped.config,
        clamped: clamped.notes,
    }
}

/// DS2 as a tuner, with warm-up after changes and activation over consecutive epochs.
#[derive(Debug, Clone)]
pub struct Ds2 {
    knobs: Ds2Knobs,
    warm: usize,
    streak: Option<(JobConfig, usize)>,
}

impl Ds2 {
    /// DS2 with `knobs`.
    pub fn new(knobs: Ds2Knobs) -> Ds2 {
        Ds2 {
            knobs,
            warm: 0,
            streak: None,
        }
    }

    /// The knobs.
    pub fn knobs(&self) -> Ds2Knobs {
        self.knobs
    }
}

impl Tuner for Ds2 {
    fn name(&self) -> &str {
        "ds2"
    }

    fn settings(&self) -> serde_json::Value {
        serde_json::to_value(self.knobs).unwrap_or_default()
    }

    fn decide(&mut self, snapshot: &MetricsSnapshot, cx: &TuneContext) -> Decision {
        let keep = |reason: String, detail| Decision {
            config: snapshot.config.clone(),
            reason,
            detail,
        };
        if self.warm > 0 {
            self.warm -= 1;
            return keep("warming up after a change".into(), serde_json::Value::Null);
        }
        let s = ds2_suggestion(snapshot, cx, self.knobs.factor, self.knobs.catch_up_s);
        let detail = serde_json::to_value(&s).unwrap_or_default();
        let same = cx
            .bounds
            .stages
            .iter()
            .all(|(n, _, _)| s.config.parallelism(n) == snapshot.config.parallelism(n));
        if same {
            self.streak = None;
            return keep("DS2 agrees with the current parallelism".into(), detail);
        }
        let count = match &self.streak {
            Some((c, n)) if *c == s.config => n + 1,
            _ => 1,
        };
        if count < self.knobs.activation {
            self.streak = Some((s.config.clone(), count));
            return keep(
                format!("change proposed {count}/{} times", self.knobs.activation),
                detail,
            );
        }
        self.streak = None;
        self.warm = self.knobs.warmup_epochs;
        let moves: Vec<String> = cx
            .bounds
            .stages
            .iter()
            .filter_map(|(n, _, _)| {
                let (a, b) = (snapshot.config.parallelism(n)?, s.config.parallelism(n)?);
                (a != b).then(|| format!("{n} {a}→{b}"))
            })
            .collect();
        Decision {
            config: s.config.clone(),
            reason: moves.join(", "),
            detail,
        }
    }
}

//! Guardrails and user control around the policy: bounds and pins, a thread budget that can
//! change while the job runs, a cooldown after each change, rollback when the objective falls
//! after a change, an advisory (dry-run) mode, and a switch back to a fixed configuration.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;
use rheo_engine::JobConfig;
use serde::{Deserialize, Serialize};

use crate::action::Bounds;

/// Fixed guardrail settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardConfig {
    /// Epochs after a change during which the agent does not change again.
    pub cooldown_epochs: usize,
    /// Roll a change that took capacity away back when, in the first full epoch after it, the
    /// share of offered events absorbed (as `1 − 2·shortfall`, the objective's throughput
    /// term) is this much below the epoch before the change. Latency is left out: every
    /// reconfiguration's drain raises it for a few epochs, right or wrong. A change that only
    /// added capacity is never rolled back: a shortfall after it comes from load it did not
    /// cover, at that stage or another, and going back would take capacity away and pay a
    /// second pause.
    pub rollback_drop: f64,
    /// Stages held at a fixed parallelism.
    pub pins: BTreeMap<String, usize>,
    /// Per-stage `(min, max)` parallelism tighter than the workload's.
    pub limits: BTreeMap<String, (usize, usize)>,
    /// Most microseconds a decision may take (features, forward, masks, clamp); a slower one
    /// is dropped and the configuration kept, so a stalled decision never lands late.
    pub decision_budget_us: u64,
    /// When the agent hands a stage's decision to DS2 (`None`: never).
    pub fallback: Option<Fallback>,
    /// A lowering leaves each stage's workers busy at most this share of the time at the
    /// epoch's rates (DS2's `π_raw / p`, the workers needed to just keep up over those given);
    /// a stage lowered further is lowered only that far, or held (`None`: no limit). A stage
    /// run at exactly its load keeps up on average but not through the rate's noise, so its
    /// queue grows until the latency target is missed and it has to be raised again. A
    /// lowering no further than DS2's own suggestion is never held: the limit is on lowering
    /// past the baseline.
    #[serde(default)]
    pub max_utilisation_after_lowering: Option<f64>,
    /// How much more probable than DS2's suggestion another parallelism must be for the
    /// greedy policy to take it (see [`greedy_move`](super::actions::greedy_move)): where the
    /// policy is nearly indifferent, DS2's move stands. Unlike a fallback, the move is still
    /// the policy's own (its "ds2" action, with the probability the policy gave it).
    #[serde(default = "default_ds2_tie_margin")]
    pub ds2_tie_margin: f32,
}

/// The live loop's default [`GuardConfig::ds2_tie_margin`]: training's
/// ([`DS2_TIE_MARGIN`](super::actions::DS2_TIE_MARGIN)), which a sweep of the live margin kept
/// (docs/benchmarks.md, RL agent).
pub(crate) fn default_ds2_tie_margin() -> f32 {
    super::actions::DS2_TIE_MARGIN
}

/// The DS2 fallback: a stage whose parallelism choice the policy is unsure of, or whose
/// observation lies outside what the policy was trained on, takes DS2's suggestion instead.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fallback {
    /// A stage falls back when the parallelism its chosen move leads to has less than this
    /// probability (moves with the same outcome pooled: `keep` and `ds2+1` are one choice
    /// when the stage already runs DS2's suggestion + 1).
    pub min_probability: f32,
    /// A stage falls back when its feature row lies further than this from the training
    /// statistics stored in the checkpoint (root-mean-square of standardised features, see
    /// [`FeatureStats::distance`](super::features::FeatureStats::distance)).
    pub max_distance: f64,
}

impl Default for Fallback {
    /// Thresholds measured with the shipped policy (docs/benchmarks.md, "RL agent" and
    /// "Explainable tuning"): the farthest of the training observations lies at 3.20 (3.22
    /// with the policy shipped the morning of 2026-12-04; tuner/tests/explain.rs checks that
    /// none crosses 4). The shipped policies learned from lookahead, where moves worth the same
    /// on their forks split the probability; at 0.5 such ties went to DS2 at its default knobs
    /// at the moments that matter most (a burst's first epoch), which cost the simulator's
    /// mixed-burst 0.05, while from 0.35 down nothing changed on the training workloads (0.35
    /// and 0.3 measured).
    fn default() -> Self {
        Fallback {
            min_probability: 0.35,
            max_distance: 4.0,
        }
    }
}

impl GuardConfig {
    /// The guard of an agent acting in training (lookahead's behaviour, model selection): the
    /// default guard without the DS2 fallback (what is scored or labelled is the policy's own
    /// moves) and without a decision budget (a decision dropped on a busy machine would change
    /// the run, and training would not reproduce) and without the limit on lowerings (the
    /// policy learns what a lowering into saturation costs, not to lean on the guard), acting
    /// on near-ties as training always has ([`DS2_TIE_MARGIN`](super::actions::DS2_TIE_MARGIN)).
    pub fn training() -> GuardConfig {
        GuardConfig {
            fallback: None,
            ds2_tie_margin: super::actions::DS2_TIE_MARGIN,
            decision_budget_us: u64::MAX,
            max_utilisation_after_lowering: None,
            ..GuardConfig::default()
        }
    }
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            cooldown_epochs: 1,
            rollback_drop: 0.2,
            pins: BTreeMap::new(),
            limits: BTreeMap::new(),
            decision_budget_us: 1000,
            fallback: Some(Fallback::default()),
            max_utilisation_after_lowering: Some(0.95),
            ds2_tie_margin: default_ds2_tie_margin(),
        }
    }
}

/// Controls a user can change while the job runs; cheap to clone and share with another thread.
#[derive(Debug, Clone, Default)]
pub struct Controls {
    thread_budget: Arc<AtomicUsize>,
    advisory: Arc<AtomicBool>,
    fixed: Arc<Mutex<Option<JobConfig>>>,
}

impl Controls {
    /// Sets the thread budget (0 keeps the workload's).
    pub fn set_thread_budget(&self, threads: usize) {
        self.thread_budget.store(threads, Ordering::Relaxed);
    }

    /// The thread budget set at run time, if any.
    pub fn thread_budget(&self) -> Option<usize> {
        match self.thread_budget.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        }
    }

    /// Advisory mode: the agent logs what it would do and changes nothing.
    pub fn set_advisory(&self, on: bool) {
        self.advisory.store(on, Ordering::Relaxed);
    }

    /// Whether advisory mode is on.
    pub fn advisory(&self) -> bool {
        self.advisory.load(Ordering::Relaxed)
    }

    /// Hands control back to `config` (or, with `None`, back to the agent).
    pub fn set_fixed(&self, config: Option<JobConfig>) {
        *self.fixed.lock() = config;
    }

    /// The fixed configuration control was handed back to, if any.
    pub fn fixed(&self) -> Option<JobConfig> {
        self.fixed.lock().clone()
    }
}

/// The bounds the agent acts within: the workload's, tightened by pins, limits and the
/// run-time thread budget.
pub fn effective_bounds(bounds: &Bounds, guard: &GuardConfig, controls: &Controls) -> Bounds {
    let mut b = bounds.clone();
    for (name, min, max) in &mut b.stages {
        if let Some(&p) = guard.pins.get(name) {
            (*min, *max) = (p, p);
        } else if let Some(&(lo, hi)) = guard.limits.get(name) {
            *min = (*min).max(lo);
            *max = (*max).min(hi).max(*min);
        }
    }
    if let Some(budget) = controls.thread_budget() {
        b.max_threads = budget;
    }
    b
}

/// What the guard remembers about the last change.
#[derive(Debug, Clone, Default)]
pub struct GuardState {
    /// Epochs since the agent's last change.
    pub since_change: usize,
    /// The configuration before the last change and the objective of the epoch before it,
    /// kept only when the change took capacity away (the changes rollback may undo).
    pub before_change: Option<(JobConfig, f64)>,
    /// Whether the last change was a rollback.
    pub rolled_back: bool,
}

/// The guard's verdict on a proposal.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Apply it.
    Apply,
    /// Keep the current configuration (cooldown).
    Cooldown,
    /// Go back to this configuration: the last change made things worse.
    Rollback(JobConfig),
}

impl GuardState {
    /// Checks a proposal given the epoch objective `reward` just scored.
    pub fn check(&mut self, guard: &GuardConfig, reward: f64) -> Verdict {
        self.since_change += 1;
        // The first full epoch after a change decides whether it stays.
        if self.since_change == 2
            && !self.rolled_back
            && let Some((config, before)) = self.before_change.take()
            && reward < before - guard.rollback_drop
        {
            return Verdict::Rollback(config);
        }
        if self.since_change <= guard.cooldown_epochs {
            return Verdict::Cooldown;
        }
        Verdict::Apply
    }

    /// Records that the configuration changed from `from` (whose last epoch scored `reward`)
    /// to `to`.
    pub fn changed(&mut self, from: JobConfig, to: &JobConfig, reward: f64, rollback: bool) {
        self.since_change = 0;
        self.rolled_back = rollback;
        self.before_change =
            (!rollback && takes_capacity_away(&from, to)).then_some((from, reward));
    }
}

/// Whether going from `from` to `to` lowers some stage's parallelism or some edge's buffer.
pub fn takes_capacity_away(from: &JobConfig, to: &JobConfig) -> bool {
    let fewer_workers = from.stages.iter().any(|(name, s)| {
        to.stages
            .get(name)
            .is_some_and(|t| t.parallelism < s.parallelism)
    });
    let smaller_buffer = from
        .edges
        .iter()
        .any(|(name, e)| to.edges.get(name).is_some_and(|t| t.capacity < e.capacity));
    fewer_workers || smaller_buffer
}

/// The fewest workers at or above `to` that `pi_raw` workers' worth of load keeps busy at most
/// `max_utilisation` of the time, but never more than `from`: a lowering from `from` to `to`
/// cut back so it does not saturate the stage. A lowering to no fewer workers than DS2
/// suggests (`ds2`) is left as it is: the limit is on lowering past the baseline.
pub fn lowering_within_utilisation(
    from: usize,
    to: usize,
    pi_raw: f64,
    max_utilisation: f64,
    ds2: Option<usize>,
) -> usize {
    if to >= from || !(pi_raw.is_finite() && max_utilisation > 0.0) || ds2.is_some_and(|d| to >= d)
    {
        return to;
    }
    let needed = (pi_raw / max_utilisation).ceil();
    if needed <= to as f64 {
        to
    } else {
        (needed as usize).min(from)
    }
}

#[cfg(test)]
mod tests {
    use super::{GuardConfig, lowering_within_utilisation};
    use crate::agent::actions::DS2_TIE_MARGIN;

    #[test]
    fn the_live_tie_margin_defaults_to_trainings_and_old_settings_read_back_with_it() {
        assert_eq!(GuardConfig::default().ds2_tie_margin, DS2_TIE_MARGIN);
        assert_eq!(GuardConfig::training().ds2_tie_margin, DS2_TIE_MARGIN);
        // Settings written before the margin was a setting read back with the default.
        let mut old = serde_json::to_value(GuardConfig {
            ds2_tie_margin: 0.3,
            ..GuardConfig::default()
        })
        .unwrap();
        old.as_object_mut().unwrap().remove("ds2_tie_margin");
        let read: GuardConfig = serde_json::from_value(old).unwrap();
        assert_eq!(read, GuardConfig::default());
    }

    #[test]
    fn a_lowering_stops_where_the_stage_would_be_busier_than_allowed() {
        // Two workers' worth of load on three: lowering to two would run them flat out.
        assert_eq!(lowering_within_utilisation(3, 2, 2.0, 0.95, None), 3);
        // On six, the same load allows a cut to three but not to two.
        assert_eq!(lowering_within_utilisation(6, 2, 2.0, 0.95, None), 3);
        // A lowering that leaves room is untouched, and so is every raise.
        assert_eq!(lowering_within_utilisation(4, 3, 2.0, 0.95, None), 3);
        assert_eq!(lowering_within_utilisation(2, 5, 4.9, 0.95, None), 5);
        // No estimate (a stage that saw no input), no limit.
        assert_eq!(lowering_within_utilisation(3, 1, f64::NAN, 0.95, None), 1);
    }

    #[test]
    fn a_lowering_as_far_as_ds2s_suggestion_is_never_held() {
        // 0.97 of a worker's load: one worker would be busier than 0.95, but DS2 suggests one.
        assert_eq!(lowering_within_utilisation(2, 1, 0.97, 0.95, Some(1)), 1);
        // Past DS2's suggestion the limit applies as before (cut back to two, and to three).
        assert_eq!(lowering_within_utilisation(3, 1, 1.9, 0.95, Some(2)), 2);
        assert_eq!(lowering_within_utilisation(6, 2, 2.0, 0.95, Some(3)), 3);
    }
}

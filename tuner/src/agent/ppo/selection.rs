//! Model selection on the training seeds: every so often during PPO the greedy policy runs
//! each training workload on selection seeds (the scoreboard's training seeds and, when asked
//! for more, the seeds after them; never an evaluation seed) and is scored against tuned DS2 on
//! the same runs; the best-scoring policy is kept.

use serde::{Deserialize, Serialize};

use crate::agent::features::FeatureStats;
use crate::agent::guard::{Controls, GuardConfig};
use crate::agent::policy::PolicyNet;
use crate::agent::{Agent, Policy};
use crate::env::{EnvError, SimEnv};
use crate::run::{RunResult, run};
use crate::tuners::Ds2;

use super::TrainingWorkload;

/// The `n` seeds the greedy policy is scored on for model selection: 0, 1, 2, … (the first three
/// are the scoreboard's training seeds; any `n` up to the first evaluation seed stays clear of
/// them).
fn selection_seeds(n: usize) -> Vec<u64> {
    (0..n as u64).collect()
}

/// Weight of the mean shortfall against tuned DS2 in the selection score.
const SHORTFALL_WEIGHT: f64 = 10.0;

/// How one tuner did on one workload over the selection seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SelectionRow {
    /// Mean run objective.
    pub objective: f64,
    /// Mean reconfigurations per run.
    pub reconfigurations: f64,
}

/// One candidate policy scored for selection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Iterations of PPO behind it (0: the starting policy).
    pub iteration: usize,
    /// Per training workload, in the order training was given them.
    pub rows: Vec<SelectionRow>,
    /// The selection score (higher is better).
    pub score: f64,
}

/// Tuned DS2 on each training workload over the selection `seeds`: the bar candidates are held
/// to.
fn baseline(workloads: &[TrainingWorkload], seeds: &[u64]) -> Result<Vec<SelectionRow>, EnvError> {
    workloads
        .iter()
        .map(|w| {
            over_seeds(seeds, |seed| {
                let mut env = SimEnv::new(&w.workload, w.params.clone(), seed);
                let mut ds2 = Ds2::new(w.ds2);
                run(&mut env, &mut ds2, &w.context(), None, |_, _| {})
            })
        })
        .collect()
}

/// A training run's model selection: tuned DS2's rows on the selection seeds, every candidate
/// scored against them, and the best so far ([`rank`]; an earlier candidate wins a tie).
pub(super) struct Selection {
    seeds: Vec<u64>,
    on_targets: bool,
    /// Tuned DS2's rows, per training workload.
    pub(super) baseline: Vec<SelectionRow>,
    /// Every candidate, in the order considered.
    pub(super) candidates: Vec<Candidate>,
    best: Option<((bool, f64), PolicyNet, usize)>,
}

impl Selection {
    /// Selection on seeds `0..seeds` (`on_targets`: see [`rank`]), tuned DS2 run on them.
    pub(super) fn new(
        workloads: &[TrainingWorkload],
        seeds: usize,
        on_targets: bool,
    ) -> Result<Selection, EnvError> {
        let seeds = selection_seeds(seeds);
        let baseline = baseline(workloads, &seeds)?;
        Ok(Selection {
            seeds,
            on_targets,
            baseline,
            candidates: Vec::new(),
            best: None,
        })
    }

    /// Scores `net` as candidate `iteration`, keeping it when it ranks above the best so far.
    pub(super) fn consider(
        &mut self,
        iteration: usize,
        net: PolicyNet,
        stats: &FeatureStats,
        workloads: &[TrainingWorkload],
    ) -> Result<(), EnvError> {
        let scored = candidate(
            iteration,
            &net,
            stats,
            workloads,
            &self.baseline,
            &self.seeds,
        )?;
        let key = rank(&scored, &self.baseline, self.on_targets);
        if self.best.as_ref().is_none_or(|(best, _, _)| key > *best) {
            self.best = Some((key, net, iteration));
        }
        self.candidates.push(scored);
        Ok(())
    }

    /// Whether any candidate was considered.
    pub(super) fn has_best(&self) -> bool {
        self.best.is_some()
    }

    /// Takes the kept network, with its iteration and score (`None` if no candidate was
    /// considered, or it was taken already).
    pub(super) fn take_best(&mut self) -> Option<(PolicyNet, usize, f64)> {
        self.best
            .take()
            .map(|((_, score), net, iteration)| (net, iteration, score))
    }
}

/// Scores the greedy policy `net` on every training workload against `baseline`: the mean
/// objective minus ten times the mean shortfall against tuned DS2 (so a policy that loses anywhere
/// ranks below one that does not).
fn candidate(
    iteration: usize,
    net: &PolicyNet,
    stats: &FeatureStats,
    workloads: &[TrainingWorkload],
    baseline: &[SelectionRow],
    seeds: &[u64],
) -> Result<Candidate, EnvError> {
    let policy = Policy::new(net.clone(), stats.clone());
    let rows = workloads
        .iter()
        .map(|w| {
            over_seeds(seeds, |seed| {
                // Selection scores the policy's own moves, so a checkpoint is chosen for what
                // it does and training reproduces across changes to the fallback's thresholds
                // and on a busy machine.
                let mut agent = Agent::new(
                    policy.clone(),
                    GuardConfig::training(),
                    Controls::default(),
                    "selection",
                );
                let mut env = SimEnv::new(&w.workload, w.params.clone(), seed);
                run(&mut env, &mut agent, &w.context(), None, |_, _| {})
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let n = rows.len().max(1) as f64;
    let mean = rows.iter().map(|r| r.objective).sum::<f64>() / n;
    let shortfall = rows
        .iter()
        .zip(baseline)
        .map(|(own, ds2)| (ds2.objective - own.objective).max(0.0))
        .sum::<f64>()
        / n;
    Ok(Candidate {
        iteration,
        rows,
        score: mean - SHORTFALL_WEIGHT * shortfall,
    })
}

/// Whether `candidate` meets the agent's targets against tuned DS2 (`baseline`) on the
/// selection seeds: at or above DS2's objective on every workload (within 1e-6, far below any
/// figure reported), strictly above it on the mean, and fewer reconfigurations in total.
pub fn meets_targets(candidate: &Candidate, baseline: &[SelectionRow]) -> bool {
    let n = baseline.len().max(1) as f64;
    let mean = |rows: &[SelectionRow]| rows.iter().map(|r| r.objective).sum::<f64>() / n;
    let changes = |rows: &[SelectionRow]| rows.iter().map(|r| r.reconfigurations).sum::<f64>();
    candidate
        .rows
        .iter()
        .zip(baseline)
        .all(|(own, ds2)| own.objective >= ds2.objective - 1e-6)
        && mean(&candidate.rows) > mean(baseline)
        && changes(&candidate.rows) < changes(baseline)
}

/// The key candidates are ranked by (higher is better): the selection score or, with
/// `on_targets`, first whether the candidate [`meets_targets`], then the score.
fn rank(candidate: &Candidate, baseline: &[SelectionRow], on_targets: bool) -> (bool, f64) {
    (
        on_targets && meets_targets(candidate, baseline),
        candidate.score,
    )
}

/// `one` run per seed of `seeds`, averaged.
fn over_seeds(
    seeds: &[u64],
    mut one: impl FnMut(u64) -> Result<RunResult, EnvError>,
) -> Result<SelectionRow, EnvError> {
    let mut objective = 0.0;
    let mut reconfigurations = 0.0;
    for &seed in seeds {
        let result = one(seed)?;
        objective += result.objective;
        reconfigurations += result.reconfigurations() as f64;
    }
    let n = seeds.len().max(1) as f64;
    Ok(SelectionRow {
        objective: objective / n,
        reconfigurations: reconfigurations / n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoreboard::{EVALUATION_SEEDS, TRAINING_SEEDS};

    #[test]
    fn selection_seeds_start_with_the_training_seeds_and_stop_short_of_evaluation() {
        assert_eq!(selection_seeds(TRAINING_SEEDS.len()), TRAINING_SEEDS);
        let most = selection_seeds(EVALUATION_SEEDS[0] as usize);
        assert_eq!(most.len(), 1000);
        assert!(most.iter().all(|s| !EVALUATION_SEEDS.contains(s)));
    }

    fn rows(of: &[(f64, f64)]) -> Vec<SelectionRow> {
        of.iter()
            .map(|&(objective, reconfigurations)| SelectionRow {
                objective,
                reconfigurations,
            })
            .collect()
    }

    fn candidate(score: f64, of: &[(f64, f64)]) -> Candidate {
        Candidate {
            iteration: 1,
            rows: rows(of),
            score,
        }
    }

    #[test]
    fn a_candidate_meets_the_targets_only_at_or_above_ds2_everywhere_with_fewer_changes() {
        let ds2 = rows(&[(0.80, 3.0), (0.90, 4.0)]);
        // Level on one workload, ahead on the other, one change fewer.
        assert!(meets_targets(
            &candidate(0.0, &[(0.80, 2.0), (0.91, 4.0)]),
            &ds2
        ));
        // Ahead on the mean but a hair below on one workload.
        assert!(!meets_targets(
            &candidate(0.0, &[(0.7999, 2.0), (0.95, 4.0)]),
            &ds2
        ));
        // As many changes as DS2.
        assert!(!meets_targets(
            &candidate(0.0, &[(0.85, 3.0), (0.95, 4.0)]),
            &ds2
        ));
        // DS2 itself: not above it on the mean.
        assert!(!meets_targets(
            &candidate(0.0, &[(0.80, 2.0), (0.90, 4.0)]),
            &ds2
        ));
    }

    #[test]
    fn on_targets_a_candidate_meeting_them_outranks_a_better_scoring_one() {
        let ds2 = rows(&[(0.80, 3.0)]);
        let meets = candidate(0.81, &[(0.81, 2.0)]);
        let busier = candidate(0.83, &[(0.83, 4.0)]);
        assert!(rank(&busier, &ds2, false) > rank(&meets, &ds2, false));
        assert!(rank(&meets, &ds2, true) > rank(&busier, &ds2, true));
        // Among candidates that meet them (or that do not), the score decides.
        let better = candidate(0.82, &[(0.82, 2.0)]);
        assert!(rank(&better, &ds2, true) > rank(&meets, &ds2, true));
    }
}

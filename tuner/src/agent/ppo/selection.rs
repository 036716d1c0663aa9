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
pub(super) fn selection_seeds(n: usize) -> Vec<u64> {
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
pub(super) fn baseline(
    workloads: &[TrainingWorkload],
    seeds: &[u64],
) -> Result<Vec<SelectionRow>, EnvError> {
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

/// Scores the greedy policy `net` on every training workload against `baseline`: the mean
/// objective minus ten times the mean shortfall against tuned DS2 (so a policy that loses anywhere
/// ranks below one that does not).
pub(super) fn candidate(
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
}

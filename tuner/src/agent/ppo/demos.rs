//! Demonstrations: tuned DS2's simulated runs as transitions the policy first imitates.

use rheo_engine::JobConfig;

use crate::agent::actions::{StageAction, masks};
use crate::agent::features::{FeatureStats, History, observe};
use crate::env::{EnvError, Environment, SimEnv};
use crate::tuners::{Ds2, Ds2Knobs, Tuner};

use super::*;

/// DS2's runs (tuned per workload, or with default knobs) as transitions: per stage, the residual move that
/// reproduces DS2's decision (or "keep" while DS2 waits), with Monte-Carlo returns as value
/// targets.
pub fn demonstrations(
    workloads: &[TrainingWorkload],
    stats: &FeatureStats,
    cfg: &PpoConfig,
) -> Result<Vec<Transition>, EnvError> {
    let mut out = Vec::new();
    for w in workloads {
        for seed in 0..cfg.demonstration_runs as u64 {
            let cx = w.context();
            let mut env = SimEnv::new(&w.workload, w.params.clone(), 2_000_000 + seed);
            let mut ds2 = Ds2::new(if cfg.imitate_tuned_ds2 {
                w.ds2
            } else {
                Ds2Knobs::default()
            });
            let mut history = History::default();
            let mut previous: Option<JobConfig> = None;
            let mut run: Vec<Transition> = Vec::new();
            while let Some(snapshot) = env.observe()? {
                let changed = previous.as_ref().is_some_and(|p| *p != snapshot.config);
                let score = cx.objective.score(&snapshot, changed).reward as f32;
                if let Some(last) = run.last_mut() {
                    last.reward = score;
                }
                let obs = observe(&snapshot, &cx, &history);
                let decision = ds2.decide(&snapshot, &cx);
                let mut t =
                    Transition::awaiting_labels(obs.rows.iter().map(|r| stats.normalise(r)));
                for (i, stage) in obs.stages.iter().enumerate() {
                    let (pm, bm) = masks(&obs, &snapshot.config, i);
                    let now = obs.parallelism[i];
                    let next = decision.config.parallelism(stage).unwrap_or(now);
                    let suggested = obs.ds2.parallelism(stage).unwrap_or(now);
                    // "keep" only where DS2 holds back from its own model (warm-up,
                    // activation); following the model is the residual move 0.
                    let parallelism = if next == now && suggested != now {
                        0
                    } else {
                        ((next as i64 - suggested as i64 + 2).clamp(1, 4)) as usize
                    };
                    let parallelism = if pm[parallelism] { parallelism } else { 0 };
                    t.par_masks.push(pm);
                    t.buf_masks.push(bm);
                    t.actions.push(StageAction {
                        parallelism,
                        buffer: 1,
                    });
                }
                history.update_with(&snapshot, &obs);
                previous = Some(snapshot.config.clone());
                env.apply(&decision.config)?;
                run.push(t);
            }
            run.pop();
            monte_carlo_returns(&mut run, cfg.gamma);
            out.append(&mut run);
        }
    }
    Ok(out)
}

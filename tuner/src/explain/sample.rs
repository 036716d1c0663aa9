//! Observations sampled on the simulator: the policy's decisions on a workload, greedy and
//! exploring, for distilling and checking the tree.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::runlog::stage_decisions;
use super::{ExplainError, StageDecision};
use crate::agent::guard::{Controls, GuardConfig};
use crate::agent::{Agent, Policy};
use crate::env::Environment;
use crate::env::sim::{SimEnv, SimParams, initial_config};
use crate::run::run;
use crate::scoreboard::{agent_ds2_base, context};
use crate::spec::Workload;
use crate::tuners::{TuneContext, Tuner};

/// The policy's stage decisions on `workload` in the simulator, one run per seed from the
/// workload's starting configuration (greedy) and, with `explore`, one more per seed that
/// samples its moves from a random start (states the greedy policy does not visit).
pub fn simulated_decisions(
    policy: &Policy,
    workload: &Workload,
    params: &SimParams,
    seeds: &[u64],
    explore: bool,
) -> Result<Vec<StageDecision>, ExplainError> {
    let cx = TuneContext {
        ds2_base: agent_ds2_base(policy, workload, params)?,
        ..context(workload)
    };
    let mut out = Vec::new();
    for &seed in seeds {
        for exploring in [false, true] {
            if exploring && !explore {
                continue;
            }
            let agent = Agent::new(
                policy.clone(),
                // The policy's own decisions (no fallback, no limit on lowerings), each one
                // taken however long it ran (the decision budget would make the sample depend
                // on the machine's load): the guard it acts under in training.
                GuardConfig::training(),
                Controls::default(),
                "sampled",
            );
            let mut agent = if exploring {
                agent.learning(seed)
            } else {
                agent
            };
            let mut env = SimEnv::new(workload, params.clone(), seed);
            if exploring {
                let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed);
                let mut start = initial_config(workload);
                for (name, min, max) in &cx.bounds.stages {
                    start.set_parallelism(name, rng.random_range(*min..=*max));
                }
                env = env.starting_from(start);
            }
            let mut decisions = Vec::new();
            let mut failed = None;
            run(
                &mut env as &mut dyn Environment,
                &mut agent as &mut dyn Tuner,
                &cx,
                None,
                |snapshot, record| match stage_decisions(
                    snapshot.epoch,
                    &snapshot.config,
                    &record.decision,
                ) {
                    Ok(d) => decisions.extend(d),
                    Err(e) => failed = Some(e),
                },
            )?;
            if let Some(reason) = failed {
                return Err(ExplainError::RunLog {
                    path: format!("{} (simulated, seed {seed})", workload.name).into(),
                    line: 0,
                    reason,
                });
            }
            out.extend(decisions);
        }
    }
    Ok(out)
}

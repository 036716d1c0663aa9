//! Policy improvement over tuned DS2 by lookahead on the simulator.
//!
//! At every epoch of a simulated run, each stage's moves are tried on a fork of the run (same
//! state, same noise to come) and the run is finished by tuned DS2; a stage's label is the move
//! whose forked run scores best, DS2's own move unless another beats it by a margin. A policy
//! that picked those moves everywhere would do at least as well as tuned DS2 on the simulator
//! (the policy-improvement theorem, with DS2 as the base policy); the network learns the labels
//! by imitation. With `lookahead_buffers`, halving and doubling a stage's input buffer are tried
//! the same way (DS2 never moves buffers). Later rounds collect their states under the network
//! itself (so it learns what to do where its own moves lead, not only where DS2's do) and add
//! them to the earlier ones.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use rheo_engine::{JobConfig, MetricsSnapshot};

use crate::action::clamp;
use crate::agent::actions::{StageAction, masks, move_input_buffer, outcomes};
use crate::agent::features::{FeatureStats, History, observe};
use crate::agent::guard::{Controls, GuardConfig, lowering_within_utilisation};
use crate::agent::{Agent, Policy};
use crate::env::{EnvError, Environment, SimEnv};
use crate::objective::EpochScore;
use crate::tuners::{Ds2, TuneContext, Tuner};

use super::*;
use crate::agent::policy::PARALLELISM_ACTIONS;

/// Seeds of lookahead runs start here (far from the evaluation and selection seeds, and from
/// PPO's rollouts and the demonstrations).
const SEED_BASE: u64 = 3_000_000;

/// One lookahead round: the labelled decisions, and how the behaviour did on its runs.
pub(super) struct Round {
    /// Every decision of every run, labelled.
    pub(super) labels: Vec<Transition>,
    /// The behaviour's mean run objective over the round's runs.
    pub(super) objective: f64,
}

/// Labelled decisions from `cfg.lookahead_runs` simulated runs per workload, the states visited
/// by `behaviour` (tuned DS2 when `None`); `round` keeps each round's runs apart.
pub(super) fn lookahead_round(
    workloads: &[TrainingWorkload],
    stats: &FeatureStats,
    cfg: &PpoConfig,
    behaviour: Option<&Policy>,
    round: u64,
) -> Result<Round, EnvError> {
    let jobs: Vec<(usize, u64)> = (0..workloads.len())
        .flat_map(|w| (0..cfg.lookahead_runs as u64).map(move |r| (w, r)))
        .collect();
    let runs = jobs
        .par_iter()
        .map(|&(w, r)| {
            let seed = SEED_BASE + round * 100_000 + w as u64 * 1_000 + r;
            labelled_run(&workloads[w], stats, cfg, behaviour, seed)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let objective = runs.iter().map(|r| r.1).sum::<f64>() / runs.len().max(1) as f64;
    Ok(Round {
        labels: runs.into_iter().flat_map(|r| r.0).collect(),
        objective,
    })
}

/// One simulated run of `w` under `behaviour`, every decision labelled by lookahead.
fn labelled_run(
    w: &TrainingWorkload,
    stats: &FeatureStats,
    cfg: &PpoConfig,
    behaviour: Option<&Policy>,
    seed: u64,
) -> Result<(Vec<Transition>, f64), EnvError> {
    let mut rng = SmallRng::seed_from_u64(seed ^ cfg.seed.rotate_left(17));
    let cx = w.context();
    let params = randomised(&w.params, cfg, &mut rng);
    let mut env = SimEnv::new(&w.workload, params, seed);
    if rng.random_bool(cfg.random_start.clamp(0.0, 1.0)) {
        env = env.starting_from(random_start(&w.workload, &cx.bounds, &mut rng));
    }
    // Drawn only when on, so runs without it reproduce the same labels.
    if cfg.rate_shift > 0.0 && rng.random_bool(cfg.rate_shift.min(1.0)) {
        env = env.with_rate_shift(rng.random_range(0.0..=w.workload.duration_s / 2.0));
    }
    if cfg.profile_swap > 0.0 && rng.random_bool(cfg.profile_swap.min(1.0)) {
        let duration_s = w.workload.duration_s;
        env = env.with_rate_profile(random_profile(
            &w.workload.source.rate,
            duration_s,
            &mut rng,
        ));
    }
    // DS2 as the base policy: it decides on every epoch, so its warm-up and activation state
    // is that of a DS2 that had been deciding all along (under the network, as if its own
    // moves had been made), and it finishes every forked run.
    let mut base = Ds2::new(w.ds2);
    let mut agent = behaviour.map(|policy| {
        Agent::new(
            policy.clone(),
            // The labels are for the policy's own moves.
            GuardConfig::training(),
            Controls::default(),
            "lookahead",
        )
    });
    let limit = GuardConfig::default().max_utilisation_after_lowering;
    let mut history = History::default();
    let mut previous: Option<JobConfig> = None;
    let mut run: Vec<Transition> = Vec::new();
    let mut total = 0.0;
    while let Some(snapshot) = env.observe()? {
        let changed = previous.as_ref().is_some_and(|p| *p != snapshot.config);
        let reward = cx.objective.score(&snapshot, changed).reward;
        total += reward;
        let score = reward as f32;
        if let Some(last) = run.last_mut() {
            last.reward = score;
        }
        let obs = observe(&snapshot, &cx, &history);
        let ds2 = base.decide(&snapshot, &cx).config;
        let forks = Forks {
            env: &env,
            base: &base,
            cx: &cx,
            current: &snapshot,
            hold: cfg.lookahead_hold,
            finisher: agent.as_ref().filter(|_| cfg.lookahead_policy_finish),
        };
        let q_base = forks.value(&ds2)?;
        let mut t = Transition::awaiting_labels(obs.rows.iter().map(|r| stats.normalise(r)));
        for (i, stage) in obs.stages.iter().enumerate() {
            let (pm, bm) = masks(&obs, &snapshot.config, i);
            let now = obs.parallelism[i];
            let base_p = ds2.parallelism(stage).unwrap_or(now);
            let suggested = obs.ds2.parallelism(stage).unwrap_or(now);
            // Leaving the stage where it is may also be held until the load calls for a
            // change, rather than made up for by the finisher next epoch.
            let held = if cfg.lookahead_keep_hold {
                let mut config = ds2.clone();
                config.set_parallelism(stage, now);
                Some(forks.value_held(&config)?)
            } else {
                None
            };
            // What the live loop's utilisation limit makes of moving the stage to `p`.
            let limited = |p: usize| match limit {
                Some(limit) => lowering_within_utilisation(
                    now,
                    p,
                    obs.ds2.raw.get(stage).copied().unwrap_or(f64::NAN),
                    limit,
                    obs.ds2.parallelism(stage),
                ),
                None => p,
            };
            let guarded = |p: usize| {
                if cfg.lookahead_guarded_lowerings {
                    limited(p)
                } else {
                    p
                }
            };
            // Each distinct parallelism's value on its fork; DS2's own gets the margin, so it
            // stays the label unless another beats it by that much.
            // Leaving the stage where it is gets the keep margin on top.
            // Where keeping the stage one epoch leads: the parallelism the finisher gives it
            // on that fork's next decision. A lowering to just that is only put off by it.
            let kept_then = if cfg.lookahead_held_only_postponed {
                let mut keep = ds2.clone();
                keep.set_parallelism(stage, now);
                let (_, next) = forks.value_and_next(&keep)?;
                next.and_then(|c| c.parallelism(stage))
            } else {
                None
            };
            let favour = |p: usize, value: f64| {
                let relieved = relieved_of_the_margin(cfg, p, kept_then, limited(p));
                keep_favour(cfg, p, now, value, held.filter(|_| relieved))
            };
            let mut values: Vec<(usize, f64)> = vec![(
                base_p,
                q_base + cfg.lookahead_margin + favour(base_p, q_base),
            )];
            let outcomes = outcomes(&obs, i);
            for (&p, &allowed) in outcomes.iter().zip(&pm) {
                if !allowed || values.iter().any(|&(v, _)| v == p) {
                    continue;
                }
                let mut config = ds2.clone();
                config.set_parallelism(stage, guarded(p));
                let q = forks.value(&config)?;
                values.push((p, q + favour(p, q)));
            }
            // DS2's margin stays DS2's.
            if let Some(held) = held
                && let Some(kept) = values.iter_mut().find(|v| v.0 == now)
            {
                let held = held + favour(now, held);
                let margin = if now == base_p {
                    cfg.lookahead_margin
                } else {
                    0.0
                };
                kept.1 = kept.1.max(held + margin);
            }
            let (mut best_p, mut best_q) =
                values
                    .iter()
                    .copied()
                    .fold(
                        (base_p, f64::NEG_INFINITY),
                        |b, v| if v.1 > b.1 { v } else { b },
                    );
            // Buffer moves, for the stage left where it is and at its best parallelism: a
            // parallelism's value is the better of its buffer moves (less the buffer margin).
            let mut buffer = 1;
            if cfg.lookahead_buffers {
                let candidates = if best_p == now {
                    vec![now]
                } else {
                    vec![now, best_p]
                };
                for p in candidates {
                    for b in [0, 2].into_iter().filter(|&b| bm[b]) {
                        let mut config = ds2.clone();
                        config.set_parallelism(stage, guarded(p));
                        move_input_buffer(&mut config, stage, b);
                        let fork = forks.value(&config)?;
                        let mut q = fork + favour(p, fork);
                        if cfg.lookahead_keep_hold && p == now {
                            let held = forks.value_held(&config)?;
                            q = q.max(held + favour(now, held));
                        }
                        let q = q - cfg.lookahead_buffer_margin;
                        if let Some(v) = values.iter_mut().find(|v| v.0 == p) {
                            v.1 = v.1.max(q);
                        }
                        if q > best_q {
                            (best_p, best_q, buffer) = (p, q, b);
                        }
                    }
                }
            }
            let value_of = |p: usize| values.iter().find(|v| v.0 == p).map_or(best_q, |v| v.1);
            t.stages[i].regret = std::array::from_fn(|k| {
                if pm[k] {
                    (best_q - value_of(outcomes[k])) as f32
                } else {
                    0.0
                }
            });
            let label = name_move(&outcomes, &pm, best_p, now, suggested);
            t.par_masks.push(pm);
            t.buf_masks.push(bm);
            t.actions.push(StageAction {
                parallelism: label,
                buffer,
            });
        }
        let decision = match &mut agent {
            Some(agent) => agent.decide(&snapshot, &cx).config,
            None => ds2,
        };
        history.update_with(&snapshot, &obs);
        previous = Some(snapshot.config.clone());
        env.apply(&decision)?;
        run.push(t);
    }
    let objective = total / run.len().max(1) as f64;
    run.pop();
    monte_carlo_returns(&mut run, cfg.gamma);
    Ok((run, objective))
}

/// What moving a stage from `now` to parallelism `p`, valued `value` on its fork, is credited
/// on top of that value: the keep margin for leaving it where it is or, with
/// `lookahead_keep_lowers_only`, the keep margin taken from a move that lowers it (raises then
/// compete with leaving it on value alone). With `lookahead_keep_margin_held_only`, a lowering
/// that beats `held` (the value of holding the stage where it is) by the margin keeps its
/// value: only putting it off rivals it then, and on value alone. (`held` is `None` where
/// that relief does not apply.)
fn keep_favour(cfg: &PpoConfig, p: usize, now: usize, value: f64, held: Option<f64>) -> f64 {
    use std::cmp::Ordering;
    match (cfg.lookahead_keep_lowers_only, p.cmp(&now)) {
        (false, Ordering::Equal) => cfg.lookahead_keep_margin,
        (true, Ordering::Less) => match held {
            Some(held)
                if cfg.lookahead_keep_margin_held_only
                    && value >= held + cfg.lookahead_keep_margin =>
            {
                0.0
            }
            _ => -cfg.lookahead_keep_margin,
        },
        _ => 0.0,
    }
}

/// Whether a lowering to `p` may have the held-only relief of the keep margin: with
/// `lookahead_held_only_postponed`, only when keeping the stage one epoch leads the finisher
/// to `p` itself (`kept_then`); with `lookahead_held_only_within_limit`, only when the live
/// loop's utilisation limit leaves it at `p` (`limited`).
fn relieved_of_the_margin(
    cfg: &PpoConfig,
    p: usize,
    kept_then: Option<usize>,
    limited: usize,
) -> bool {
    (!cfg.lookahead_held_only_postponed || kept_then == Some(p))
        && (!cfg.lookahead_held_only_within_limit || limited == p)
}

/// The policy's name for moving a stage (whose moves lead to `outcomes`) to parallelism `p`,
/// as DS2's demonstrations name it: "keep" only when holding back from DS2's model
/// (`suggested`); otherwise the offset from the model that gives `p`, or the allowed move that
/// lands nearest it.
fn name_move(
    outcomes: &[usize; PARALLELISM_ACTIONS],
    pm: &[bool],
    p: usize,
    now: usize,
    suggested: usize,
) -> usize {
    if p == now && suggested != now {
        return 0;
    }
    (0..pm.len())
        .filter(|&k| pm[k])
        // Ties go to a residual move over "keep".
        .min_by_key(|&k| (outcomes[k].abs_diff(p), usize::from(k == 0)))
        .unwrap_or(0)
}

/// When a fork's finish keeps the configuration instead of letting its finisher decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Never: the finisher decides every epoch.
    Never,
    /// After every epoch that keeps up and meets the SLO.
    WhileMet,
    /// Until the first epoch that falls short of the rate or the SLO, and never after.
    UntilMiss,
}

impl Hold {
    /// Whether to keep the configuration after an epoch scored `score`; `missed` remembers
    /// whether an epoch of this finish fell short before.
    fn holds(self, score: &EpochScore, missed: &mut bool) -> bool {
        *missed |= !score.meets_targets();
        match self {
            Hold::Never => false,
            Hold::WhileMet => score.meets_targets(),
            Hold::UntilMiss => !*missed,
        }
    }
}

/// Forks of a run at one epoch, each finished by the base policy (or by the network).
struct Forks<'a> {
    env: &'a SimEnv,
    base: &'a Ds2,
    cx: &'a TuneContext,
    /// The epoch the run forks at.
    current: &'a MetricsSnapshot,
    /// Also finish each fork with DS2 holding while targets are met; keep the better finish.
    hold: bool,
    /// Finish each fork with this agent (as it was before the epoch) instead of DS2.
    finisher: Option<&'a Agent>,
}

impl Forks<'_> {
    /// The sum of the rewards of the epochs to come if `proposed` is applied now and the base
    /// policy decides from then on (the better of its two finishes with `hold`).
    fn value(&self, proposed: &JobConfig) -> Result<f64, EnvError> {
        if let Some(agent) = self.finisher {
            return Ok(total_reward(&self.finish_with(
                agent,
                proposed,
                Hold::Never,
            )?));
        }
        let ds2 = total_reward(&self.finish(proposed, Hold::Never)?);
        if !self.hold {
            return Ok(ds2);
        }
        Ok(ds2.max(total_reward(&self.finish(proposed, Hold::WhileMet)?)))
    }

    /// [`Forks::value`], and the first configuration the finisher chose on the finish in which
    /// it decides every epoch (what it makes of `proposed` one epoch on).
    fn value_and_next(&self, proposed: &JobConfig) -> Result<(f64, Option<JobConfig>), EnvError> {
        let mut first = None;
        let followed = total_reward(&match self.finisher {
            Some(agent) => self.finish_with_recording(agent, proposed, Hold::Never, &mut first)?,
            None => self.finish_recording(proposed, Hold::Never, &mut first)?,
        });
        let value = if self.finisher.is_none() && self.hold {
            followed.max(total_reward(&self.finish(proposed, Hold::WhileMet)?))
        } else {
            followed
        };
        Ok((value, first))
    }

    /// The sum of the rewards of [`Forks::finish_held`].
    fn value_held(&self, proposed: &JobConfig) -> Result<f64, EnvError> {
        Ok(total_reward(&self.finish_held(proposed)?))
    }

    /// The epochs to come if `proposed` is applied now and then held while each epoch keeps
    /// up and meets the SLO; from the first epoch that does not, the finisher (the network, or
    /// tuned DS2) decides.
    fn finish_held(&self, proposed: &JobConfig) -> Result<Vec<EpochScore>, EnvError> {
        match self.finisher {
            Some(agent) => self.finish_with(agent, proposed, Hold::UntilMiss),
            None => self.finish(proposed, Hold::UntilMiss),
        }
    }

    /// One finish of the fork: tuned DS2 decides every epoch, and its decision is applied
    /// unless `hold` keeps the configuration.
    fn finish(&self, proposed: &JobConfig, hold: Hold) -> Result<Vec<EpochScore>, EnvError> {
        self.finish_recording(proposed, hold, &mut None)
    }

    /// [`Forks::finish`], `first` given the first configuration applied after `proposed`.
    fn finish_recording(
        &self,
        proposed: &JobConfig,
        hold: Hold,
        first: &mut Option<JobConfig>,
    ) -> Result<Vec<EpochScore>, EnvError> {
        let mut ds2 = self.base.clone();
        let mut missed = false;
        self.play_out(proposed, first, |snapshot, score| {
            // DS2 decides every epoch either way, so its warm-up state stays its own.
            let decision = ds2.decide(snapshot, self.cx).config;
            if hold.holds(score, &mut missed) {
                snapshot.config.clone()
            } else {
                decision
            }
        })
    }

    /// One finish of the fork by `agent`, which takes over as if it had applied `proposed`
    /// and decides every epoch that `hold` does not keep the configuration.
    fn finish_with(
        &self,
        agent: &Agent,
        proposed: &JobConfig,
        hold: Hold,
    ) -> Result<Vec<EpochScore>, EnvError> {
        self.finish_with_recording(agent, proposed, hold, &mut None)
    }

    /// [`Forks::finish_with`], `first` given the first configuration applied after `proposed`.
    fn finish_with_recording(
        &self,
        agent: &Agent,
        proposed: &JobConfig,
        hold: Hold,
        first: &mut Option<JobConfig>,
    ) -> Result<Vec<EpochScore>, EnvError> {
        let applied = clamp(&self.current.config, proposed, &self.cx.bounds).config;
        let mut agent = agent.fork_applying(self.current, self.cx, &applied);
        let mut missed = false;
        self.play_out(proposed, first, |snapshot, score| {
            if hold.holds(score, &mut missed) {
                // The hold is the agent's move, so its cooldown and history carry on.
                agent = agent.fork_applying(snapshot, self.cx, &snapshot.config);
                snapshot.config.clone()
            } else {
                agent.decide(snapshot, self.cx).config
            }
        })
    }

    /// The epochs of the fork that applies `proposed` now and then, at every epoch, what
    /// `next` makes of its snapshot and score; `first` gets `next`'s first configuration.
    fn play_out(
        &self,
        proposed: &JobConfig,
        first: &mut Option<JobConfig>,
        mut next: impl FnMut(&MetricsSnapshot, &EpochScore) -> JobConfig,
    ) -> Result<Vec<EpochScore>, EnvError> {
        let mut env = self.env.clone();
        let mut previous = self.current.config.clone();
        env.apply(&clamp(&self.current.config, proposed, &self.cx.bounds).config)?;
        let mut epochs = Vec::new();
        while let Some(snapshot) = env.observe()? {
            let changed = previous != snapshot.config;
            let score = self.cx.objective.score(&snapshot, changed);
            previous = snapshot.config.clone();
            let decision = next(&snapshot, &score);
            if first.is_none() {
                *first = Some(decision.clone());
            }
            env.apply(&decision)?;
            epochs.push(score);
        }
        Ok(epochs)
    }
}

/// The summed reward of `epochs`.
fn total_reward(epochs: &[EpochScore]) -> f64 {
    epochs.iter().map(|e| e.reward).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::actions::DS2_MOVE;
    use crate::env::SimParams;
    use crate::spec::Workload;
    use crate::tuners::Ds2Knobs;
    use rheo_engine::MetricsSnapshot;

    /// The shipped workload `name` on the nominal simulator, with DS2 deciding every epoch.
    fn training_workload(name: &str) -> TrainingWorkload {
        let workload = Workload::load(format!(
            "{}/../workloads/{name}.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        TrainingWorkload {
            params: SimParams::nominal(&workload),
            workload,
            ds2: Ds2Knobs {
                warmup_epochs: 0,
                ..Ds2Knobs::default()
            },
            ds2_base: Default::default(),
        }
    }

    fn wait_step() -> TrainingWorkload {
        training_workload("wait-step")
    }

    /// A lookahead round on `w` alone, DS2 visiting, features standardised on seed 0.
    fn ds2_round(w: &TrainingWorkload, cfg: &PpoConfig) -> Round {
        let stats = super::super::feature_stats(std::slice::from_ref(w), &[0]).unwrap();
        lookahead_round(std::slice::from_ref(w), &stats, cfg, None, 0).unwrap()
    }

    /// Walks tuned DS2's run of `w` (simulator seed `seed`), handing `at` each epoch's
    /// snapshot, the forks there and DS2's next move.
    fn along_ds2s_run(
        w: &TrainingWorkload,
        seed: u64,
        hold: bool,
        finisher: Option<&Agent>,
        mut at: impl FnMut(&MetricsSnapshot, &Forks<'_>, &JobConfig),
    ) {
        let cx = w.context();
        let mut env = SimEnv::new(&w.workload, w.params.clone(), seed);
        let mut ds2 = Ds2::new(w.ds2);
        while let Some(snapshot) = env.observe().unwrap() {
            let next = ds2.decide(&snapshot, &cx).config;
            let forks = Forks {
                env: &env,
                base: &ds2,
                cx: &cx,
                current: &snapshot,
                hold,
                finisher,
            };
            at(&snapshot, &forks, &next);
            env.apply(&next).unwrap();
        }
    }

    #[test]
    fn a_fork_that_follows_ds2_scores_what_ds2s_own_run_scores() {
        // Forks continue with the run's noise, so a fork taking DS2's move and then letting
        // DS2 decide is DS2's run itself: the values moves are compared by are exact.
        let w = wait_step();
        let cx = w.context();
        let mut previous: Option<JobConfig> = None;
        let mut rewards = Vec::new();
        let mut forked = Vec::new();
        along_ds2s_run(&w, 5, false, None, |snapshot, forks, next| {
            let changed = previous.as_ref().is_some_and(|p| *p != snapshot.config);
            rewards.push(cx.objective.score(snapshot, changed).reward);
            previous = Some(snapshot.config.clone());
            forked.push(forks.value(next).unwrap());
        });
        assert!(rewards.len() > 10);
        for (t, value) in forked.iter().enumerate() {
            let rest: f64 = rewards[t + 1..].iter().sum();
            assert!(
                (value - rest).abs() < 1e-9,
                "epoch {t}: fork {value}, run {rest}"
            );
        }
    }

    #[test]
    fn a_fork_finished_by_the_agent_that_takes_its_move_scores_what_its_own_run_scores() {
        // The agent taken over at each epoch (history, cooldown and rollback state carried
        // on) continues exactly as the agent does on its own run: a fork's value under
        // approximate policy iteration is the network's own return from there.
        let w = wait_step();
        let cx = w.context();
        // An untrained network moves often, so cooldowns hold real moves back.
        let policy = Policy::untrained();
        let mut cooldowns = 0;
        for start in 0..4 {
            let from = random_start(&w.workload, &cx.bounds, &mut SmallRng::seed_from_u64(start));
            let mut env = SimEnv::new(&w.workload, w.params.clone(), start).starting_from(from);
            // A cooldown long enough to hold back moves the policy wants to make.
            let guard = GuardConfig {
                cooldown_epochs: 3,
                ..GuardConfig::training()
            };
            let new_agent = || Agent::new(policy.clone(), guard.clone(), Controls::default(), "t");
            // Two agents in lockstep: one acts; its twin, as it was before each epoch,
            // finishes the fork there (lookahead hands over the behaviour agent before it
            // decides).
            let (mut agent, mut twin) = (new_agent(), new_agent());
            let ds2 = Ds2::new(w.ds2);
            let mut previous: Option<JobConfig> = None;
            let (mut rewards, mut forked) = (Vec::new(), Vec::new());
            while let Some(snapshot) = env.observe().unwrap() {
                let changed = previous.as_ref().is_some_and(|p| *p != snapshot.config);
                rewards.push(cx.objective.score(&snapshot, changed).reward);
                previous = Some(snapshot.config.clone());
                let decision = agent.decide(&snapshot, &cx);
                cooldowns += usize::from(decision.reason.starts_with("cooldown"));
                let forks = Forks {
                    env: &env,
                    base: &ds2,
                    cx: &cx,
                    current: &snapshot,
                    hold: false,
                    finisher: Some(&twin),
                };
                forked.push(forks.value(&decision.config).unwrap());
                assert_eq!(twin.decide(&snapshot, &cx).config, decision.config);
                env.apply(&decision.config).unwrap();
            }
            for (t, value) in forked.iter().enumerate() {
                let rest: f64 = rewards[t + 1..].iter().sum();
                assert!(
                    (value - rest).abs() < 1e-9,
                    "start {start}, epoch {t}: fork {value}, run {rest}"
                );
            }
        }
        assert!(
            cooldowns > 0,
            "a cooldown held a move back somewhere, so the hand-over carried it"
        );
    }

    #[test]
    fn a_held_finish_changes_only_after_an_epoch_that_missed_a_target() {
        let w = wait_step();
        let (mut held_changes, mut ds2_changes) = (0, 0);
        along_ds2s_run(&w, 9, true, None, |_, forks, next| {
            let held = forks.finish(next, Hold::WhileMet).unwrap();
            let followed = forks.finish(next, Hold::Never).unwrap();
            for pair in held.windows(2) {
                assert!(
                    !(pair[0].meets_targets() && pair[1].changed),
                    "a held finish moved a stage that kept up"
                );
            }
            held_changes += held.iter().skip(1).filter(|e| e.changed).count();
            ds2_changes += followed.iter().skip(1).filter(|e| e.changed).count();
            // The fork's value is the better finish.
            let value = forks.value(next).unwrap();
            assert!((value - total_reward(&held).max(total_reward(&followed))).abs() < 1e-9);
        });
        // On a step workload the two finishes differ: holding moves less often than DS2.
        assert!(
            held_changes < ds2_changes,
            "{held_changes} vs {ds2_changes}"
        );
    }

    /// Whether `epochs` change nothing after an epoch that met both targets, up to the first
    /// that missed one.
    fn held_until_a_miss(epochs: &[EpochScore]) -> bool {
        if epochs.is_empty() {
            return true;
        }
        let first_miss = epochs
            .iter()
            .position(|e| !e.meets_targets())
            .unwrap_or(epochs.len());
        epochs[..=first_miss.min(epochs.len() - 1)]
            .iter()
            .skip(1)
            .all(|e| !e.changed)
    }

    #[test]
    fn a_kept_stage_is_also_valued_held_until_an_epoch_misses_a_target() {
        let w = wait_step();
        let (mut held_changes, mut ds2_changes, mut misses) = (0, 0, 0);
        along_ds2s_run(&w, 9, false, None, |snapshot, forks, _| {
            // Keep everything: DS2 takes over only at the first epoch that falls short.
            let held = forks.finish_held(&snapshot.config).unwrap();
            let followed = forks.finish(&snapshot.config, Hold::Never).unwrap();
            assert!(
                held_until_a_miss(&held),
                "a held fork moved while it kept up"
            );
            assert_eq!(held.len(), followed.len());
            misses += usize::from(held.iter().any(|e| !e.meets_targets()));
            held_changes += held.iter().skip(1).filter(|e| e.changed).count();
            ds2_changes += followed.iter().skip(1).filter(|e| e.changed).count();
            assert!(
                (forks.value_held(&snapshot.config).unwrap() - total_reward(&held)).abs() < 1e-9
            );
        });
        // The step makes the held forks miss, and DS2 then acts: they are held, not frozen.
        assert!(misses > 0 && held_changes > 0);
        assert!(
            held_changes < ds2_changes,
            "{held_changes} vs {ds2_changes}"
        );

        // Finished by an agent (an untrained network, which moves often) the same holds.
        let agent = Agent::new(
            Policy::untrained(),
            GuardConfig::training(),
            Controls::default(),
            "t",
        );
        let mut agent_changes = 0;
        along_ds2s_run(&w, 3, false, Some(&agent), |snapshot, forks, _| {
            let held = forks.finish_held(&snapshot.config).unwrap();
            assert!(
                held_until_a_miss(&held),
                "a held fork moved while it kept up"
            );
            agent_changes += held.iter().skip(1).filter(|e| e.changed).count();
        });
        assert!(agent_changes > 0, "the agent took over somewhere");
    }

    #[test]
    fn labels_name_the_best_move_and_regrets_measure_the_others() {
        let w = wait_step();
        let cfg = PpoConfig {
            lookahead_runs: 1,
            random_start: 1.0,
            ..PpoConfig::default()
        };
        let round = ds2_round(&w, &cfg);
        assert!(!round.labels.is_empty());
        assert!(round.objective.is_finite());
        let mut moves_that_matter = 0;
        for t in &round.labels {
            for (s, action) in t.actions.iter().enumerate() {
                let regret = t.stages[s].regret;
                let mask = t.par_masks[s];
                assert!(mask[action.parallelism], "a label is always allowed");
                assert_eq!(action.buffer, 1, "lookahead leaves buffers alone");
                for k in 0..regret.len() {
                    assert!(regret[k] >= 0.0, "regrets are losses against the best");
                    if !mask[k] {
                        assert_eq!(regret[k], 0.0, "masked moves carry no regret");
                    }
                }
                // The label is the best move (DS2's own counted with the margin).
                assert!(
                    regret[action.parallelism] <= cfg.lookahead_margin as f32 + 1e-6,
                    "label {} regret {:?}",
                    action.parallelism,
                    regret
                );
                moves_that_matter += usize::from(regret.iter().any(|&r| r > 0.1));
            }
        }
        // From random starts on a step workload some choices cost something.
        assert!(moves_that_matter > 0);
    }

    #[test]
    fn buffer_moves_are_labelled_only_when_tried_and_where_a_smaller_channel_pays() {
        // batch-wait: a batched call behind a full channel of 64 batches misses the SLO on
        // one worker, where DS2 without over-provisioning leaves it; with a smaller channel
        // the same worker meets it.
        let w = training_workload("batch-wait");
        let run = |buffers: bool| {
            let cfg = PpoConfig {
                lookahead_runs: 2,
                random_start: 0.0,
                lookahead_buffers: buffers,
                ..PpoConfig::default()
            };
            ds2_round(&w, &cfg)
        };
        let buffers = |r: &Round| -> Vec<usize> {
            r.labels
                .iter()
                .flat_map(|t| t.actions.iter().map(|a| a.buffer))
                .collect()
        };
        assert!(buffers(&run(false)).iter().all(|&b| b == 1));
        let tried = run(true);
        let labels = buffers(&tried);
        assert!(labels.contains(&0), "a halving is labelled: {labels:?}");
        assert!(!labels.contains(&2), "doubling a channel never pays here");
        for t in &tried.labels {
            for (s, a) in t.actions.iter().enumerate() {
                assert!(t.buf_masks[s][a.buffer], "a label is always allowed");
            }
        }
    }

    #[test]
    fn a_keep_margin_past_any_gain_labels_every_stage_to_stay_where_it_is() {
        let w = wait_step();
        let run = |keep_margin: f64| {
            let cfg = PpoConfig {
                lookahead_runs: 1,
                random_start: 1.0,
                lookahead_keep_margin: keep_margin,
                ..PpoConfig::default()
            };
            ds2_round(&w, &cfg)
        };
        // Every label leaves the stage where it is: "keep" when DS2 would move it, and DS2's
        // own move when DS2 agrees with the parallelism it has.
        let held = run(1e6);
        let staying = |a: &StageAction| a.parallelism == 0 || a.parallelism == DS2_MOVE;
        assert!(held.labels.iter().all(|t| t.actions.iter().all(staying)));
        assert!(
            held.labels
                .iter()
                .any(|t| t.actions.iter().any(|a| a.parallelism == 0)),
            "DS2 wanted to move somewhere on the run, and the label held back"
        );
        // Without it, some label on the same run moves a stage as DS2 or past it.
        let free = run(0.0);
        assert!(
            free.labels
                .iter()
                .any(|t| t.actions.iter().any(|a| !staying(a)))
        );
    }

    #[test]
    fn the_keep_margin_holds_back_every_move_or_only_lowerings() {
        let margin = |lowers_only| PpoConfig {
            lookahead_keep_margin: 0.03,
            lookahead_keep_lowers_only: lowers_only,
            ..PpoConfig::default()
        };
        // Symmetric: staying at 3 is credited the margin over going to 2 or to 4.
        let both = margin(false);
        assert_eq!(
            [2, 3, 4].map(|p| keep_favour(&both, p, 3, 0.0, None)),
            [0.0, 0.03, 0.0]
        );
        // Lowerings only: a raise to 4 stands level with staying, going down to 2 must beat
        // staying by the margin.
        let lowers = margin(true);
        assert_eq!(
            [2, 3, 4].map(|p| keep_favour(&lowers, p, 3, 0.0, None)),
            [-0.03, 0.0, 0.0]
        );
        // Against the held keep only: a lowering that beats holding (valued 1.0) by the margin
        // keeps its value; one that does not must still beat staying by the margin.
        let held_only = PpoConfig {
            lookahead_keep_margin_held_only: true,
            ..lowers
        };
        assert_eq!(keep_favour(&held_only, 2, 3, 1.05, Some(1.0)), 0.0);
        assert_eq!(keep_favour(&held_only, 2, 3, 1.01, Some(1.0)), -0.03);
        assert_eq!(keep_favour(&held_only, 2, 3, 1.05, None), -0.03);
        assert_eq!(keep_favour(&held_only, 4, 3, 1.05, Some(1.0)), 0.0);
    }

    #[test]
    fn a_lowering_only_put_off_by_a_keep_is_labelled_with_the_margin_held_only_against_holding() {
        // Selective's writer: DS2 lowers it as the sine falls. Kept one epoch, DS2 lowers it
        // the next, so against that keep the lowering earns one thread-epoch, short of a keep
        // margin of 0.1: labelled to wait. Holding it through the trough costs far more.
        let w = training_workload("selective");
        let keeps = |held_only: bool| {
            let cfg = PpoConfig {
                lookahead_runs: 1,
                random_start: 0.0,
                randomise: 0.0,
                lookahead_keep_margin: 0.1,
                lookahead_keep_lowers_only: true,
                lookahead_keep_hold: true,
                lookahead_keep_margin_held_only: held_only,
                ..PpoConfig::default()
            };
            let round = ds2_round(&w, &cfg);
            let write = round.labels[0].stages.len().checked_sub(1).unwrap();
            round
                .labels
                .iter()
                .map(|t| t.actions[write].parallelism == 0)
                .collect::<Vec<_>>()
        };
        let (margin, held_only) = (keeps(false), keeps(true));
        let waited = margin.iter().filter(|&&k| k).count();
        assert!(waited > 0, "the margin holds a lowering back: {margin:?}");
        assert!(
            held_only.iter().filter(|&&k| k).count() < waited,
            "{held_only:?} vs {margin:?}"
        );
    }

    #[test]
    fn a_lowering_the_live_limit_would_hold_is_valued_as_held_and_never_labelled_for_it() {
        // cpu-sine's scorer as the sine falls: the simulator absorbs a brief saturation, so
        // lowering below DS2's suggestion a little early pays on its fork, but the live loop
        // would hold it (busy over 0.95 at the lower parallelism). With the live limit in the
        // lookahead those lowerings are valued as held: fewer labels go below DS2.
        let w = training_workload("cpu-sine");
        let below_ds2 = |guarded: bool| {
            let cfg = PpoConfig {
                lookahead_runs: 2,
                random_start: 0.0,
                randomise: 0.0,
                lookahead_guarded_lowerings: guarded,
                ..PpoConfig::default()
            };
            let round = ds2_round(&w, &cfg);
            round
                .labels
                .iter()
                .flat_map(|t| &t.actions)
                .filter(|a| a.parallelism == DS2_MOVE - 1)
                .count()
        };
        let (free, guarded) = (below_ds2(false), below_ds2(true));
        assert!(free > 0, "the simulator pays for lowering early");
        assert!(guarded < free, "{guarded} vs {free}");
    }

    #[test]
    fn the_held_only_relief_within_the_limit_spares_lowerings_the_live_limit_would_hold() {
        // Relieved of the keep margin, lowerings of cpu-sine's scorer below DS2's suggestion
        // became labels where the live limit would hold them (busy over 0.95 at the lower
        // parallelism). Within the limit they keep the margin; selective's writer, lowered
        // well inside the limit at each trough, still loses its waits.
        let round = |name: &str, relief: Option<bool>| {
            let cfg = PpoConfig {
                lookahead_runs: 2,
                random_start: 0.0,
                randomise: 0.0,
                lookahead_keep_margin: 0.1,
                lookahead_keep_lowers_only: true,
                lookahead_keep_hold: true,
                lookahead_keep_margin_held_only: relief.is_some(),
                lookahead_held_only_within_limit: relief == Some(true),
                ..PpoConfig::default()
            };
            ds2_round(&training_workload(name), &cfg).labels
        };
        let below_ds2 = |labels: &[Transition]| {
            labels
                .iter()
                .flat_map(|t| &t.actions)
                .filter(|a| a.parallelism == DS2_MOVE - 1)
                .count()
        };
        let (relieved, within) = (
            below_ds2(&round("cpu-sine", Some(false))),
            below_ds2(&round("cpu-sine", Some(true))),
        );
        assert!(within < relieved, "{within} vs {relieved}");
        let writer_waits = |labels: &[Transition]| {
            let write = labels[0].stages.len() - 1;
            labels
                .iter()
                .filter(|t| t.actions[write].parallelism == 0)
                .count()
        };
        let (margin, within) = (
            writer_waits(&round("selective", None)),
            writer_waits(&round("selective", Some(true))),
        );
        assert!(within < margin, "{within} vs {margin}");
    }

    #[test]
    fn the_held_only_relief_for_postponements_still_lowers_selectives_writer_at_once() {
        // Keeping selective's writer one epoch only puts its lowering off (DS2 makes the same
        // lowering on its next decision), so that relief still applies there.
        let writer_waits = |relief: Option<bool>| {
            let cfg = PpoConfig {
                lookahead_runs: 2,
                random_start: 0.0,
                randomise: 0.0,
                lookahead_keep_margin: 0.1,
                lookahead_keep_lowers_only: true,
                lookahead_keep_hold: true,
                lookahead_keep_margin_held_only: relief.is_some(),
                lookahead_held_only_postponed: relief == Some(true),
                ..PpoConfig::default()
            };
            let labels = ds2_round(&training_workload("selective"), &cfg).labels;
            let write = labels[0].stages.len() - 1;
            labels
                .iter()
                .filter(|t| t.actions[write].parallelism == 0)
                .count()
        };
        let (margin, postponed) = (writer_waits(None), writer_waits(Some(true)));
        assert!(postponed < margin, "{postponed} vs {margin}");
    }

    #[test]
    fn only_a_lowering_merely_put_off_or_within_the_limit_is_relieved_of_the_margin() {
        let cfg = |postponed, within_limit| PpoConfig {
            lookahead_keep_margin_held_only: true,
            lookahead_held_only_postponed: postponed,
            lookahead_held_only_within_limit: within_limit,
            ..PpoConfig::default()
        };
        // Lowering from 3 to 1. Unrestricted, the relief goes to any lowering.
        assert!(relieved_of_the_margin(&cfg(false, false), 1, None, 2));
        // Postponed: only when the kept stage's finisher lowers it to 1 itself next epoch, not
        // when it keeps it (None or 3), nor when it lowers it part of the way, nor when keeping
        // lets two steps down become one.
        let postponed = cfg(true, false);
        assert!(relieved_of_the_margin(&postponed, 2, Some(2), 2));
        for then in [None, Some(3), Some(2)] {
            assert!(!relieved_of_the_margin(&postponed, 1, then, 1), "{then:?}");
        }
        assert!(!relieved_of_the_margin(&postponed, 2, Some(1), 2));
        // Within the limit: not where the limit would hold the stage at 2.
        let within = cfg(false, true);
        assert!(!relieved_of_the_margin(&within, 1, None, 2));
        assert!(relieved_of_the_margin(&within, 1, None, 1));
        assert!(!relieved_of_the_margin(&cfg(true, true), 1, Some(1), 2));
    }

    #[test]
    fn a_forks_next_configuration_is_what_its_finisher_makes_of_the_epoch_after() {
        // A fork taking DS2's move and letting DS2 decide is DS2's run itself, so the first
        // configuration its finisher chooses is DS2's next decision on the run, and the value
        // comes out as `value` gives it.
        let w = wait_step();
        let mut decisions = Vec::new();
        let mut forked = Vec::new();
        along_ds2s_run(&w, 5, false, None, |_, forks, next| {
            decisions.push(next.clone());
            forked.push((
                forks.value(next).unwrap(),
                forks.value_and_next(next).unwrap(),
            ));
        });
        let moves = decisions.windows(2).filter(|d| d[0] != d[1]).count();
        assert!(moves > 0, "DS2 moves somewhere on wait-step");
        for (t, (value, (with_next, then))) in forked.iter().enumerate() {
            assert_eq!(value, with_next, "epoch {t}");
            assert_eq!(then.as_ref(), decisions.get(t + 1), "epoch {t}");
        }
    }

    #[test]
    fn a_move_is_named_as_ds2s_demonstrations_name_it() {
        let w = wait_step();
        let cx = w.context();
        let mut env = SimEnv::new(&w.workload, w.params.clone(), 1);
        let snapshot = env.observe().unwrap().unwrap();
        let obs = observe(&snapshot, &cx, &History::default());
        let (pm, _) = masks(&obs, &snapshot.config, 0);
        let now = obs.parallelism[0];
        let suggested = obs.ds2.parallelism(&obs.stages[0]).unwrap_or(now);
        let outs = outcomes(&obs, 0);
        // Following DS2's model is the residual move 0, whatever the current parallelism.
        assert_eq!(name_move(&outs, &pm, suggested, now, suggested), 2);
        // Holding still against the model is "keep".
        if suggested != now {
            assert_eq!(name_move(&outs, &pm, now, now, suggested), 0);
        }
        // One above the model is +1.
        if pm[3] {
            assert_eq!(name_move(&outs, &pm, suggested + 1, now, suggested), 3);
        }
    }
}

//! Tests of lookahead labelling and of the forks it values moves on.

use super::forks::{Forks, Hold, total_reward};
use super::*;
use crate::agent::actions::DS2_MOVE;
use crate::agent::policy::{BUFFER_ACTIONS, argmax, masked_softmax};
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
    lookahead_round(std::slice::from_ref(w), &stats, cfg, None, None, 0).unwrap()
}

/// `runs` nominal lookahead runs from the spec's start, with the shipped keep margin: 0.1,
/// on lowerings only, leaving a stage also valued held.
fn keep_margin_runs(runs: usize) -> PpoConfig {
    PpoConfig {
        lookahead_runs: runs,
        random_start: 0.0,
        randomise: 0.0,
        lookahead_keep_margin: 0.1,
        lookahead_keep_lowers_only: true,
        lookahead_keep_hold: true,
        ..PpoConfig::default()
    }
}

/// How many of `labels` leave the last stage (selective's writer) where it is.
fn writer_waits(labels: &[Transition]) -> usize {
    let write = labels[0].stages.len() - 1;
    labels
        .iter()
        .filter(|t| t.actions[write].parallelism == 0)
        .count()
}

/// How many stage labels of `labels` go one below DS2's suggestion.
fn below_ds2(labels: &[Transition]) -> usize {
    labels
        .iter()
        .flat_map(|t| &t.actions)
        .filter(|a| a.parallelism == DS2_MOVE - 1)
        .count()
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
        assert!((forks.value_held(&snapshot.config).unwrap() - total_reward(&held)).abs() < 1e-9);
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
    let untried = run(false);
    assert!(buffers(&untried).iter().all(|&b| b == 1));
    assert!(
        untried
            .labels
            .iter()
            .flat_map(|t| &t.stages)
            .all(|s| s.buffer_regret == [0.0; BUFFER_ACTIONS]),
        "no buffer regret where no buffer move was tried"
    );
    let tried = run(true);
    let labels = buffers(&tried);
    assert!(labels.contains(&0), "a halving is labelled: {labels:?}");
    assert!(!labels.contains(&2), "doubling a channel never pays here");
    for t in &tried.labels {
        for (s, a) in t.actions.iter().enumerate() {
            assert!(t.buf_masks[s][a.buffer], "a label is always allowed");
            // Buffer regrets: losses against the best move, none for the label itself
            // (the best move at its parallelism) and none for a move that was not allowed.
            let regret = t.stages[s].buffer_regret;
            assert_eq!(regret[a.buffer], 0.0, "{regret:?}, label {}", a.buffer);
            for b in 0..BUFFER_ACTIONS {
                assert!(regret[b] >= 0.0, "{regret:?}");
                if !t.buf_masks[s][b] {
                    assert_eq!(regret[b], 0.0, "{regret:?}");
                }
            }
            // A halving is labelled only where it beats keeping the channel.
            if a.buffer == 0 {
                assert!(regret[1] > 0.0, "{regret:?}");
            }
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
    // With a postponement margin, the relieved lowering must still beat waiting by it.
    let postpone = PpoConfig {
        lookahead_postpone_margin: 0.02,
        ..held_only
    };
    assert_eq!(keep_favour(&postpone, 2, 3, 1.05, Some(1.0)), -0.02);
    assert_eq!(keep_favour(&postpone, 2, 3, 1.01, Some(1.0)), -0.03);
    assert_eq!(keep_favour(&postpone, 3, 3, 1.05, Some(1.0)), 0.0);
}

#[test]
fn a_lowering_only_put_off_by_a_keep_is_labelled_with_the_margin_held_only_against_holding() {
    // Selective's writer: DS2 lowers it as the sine falls. Kept one epoch, DS2 lowers it
    // the next, so against that keep the lowering earns one thread-epoch, short of a keep
    // margin of 0.1: labelled to wait. Holding it through the trough costs far more.
    let w = training_workload("selective");
    let waits = |held_only: bool| {
        let cfg = PpoConfig {
            lookahead_keep_margin_held_only: held_only,
            ..keep_margin_runs(1)
        };
        writer_waits(&ds2_round(&w, &cfg).labels)
    };
    let (waited, held_only) = (waits(false), waits(true));
    assert!(waited > 0, "the margin holds a lowering back");
    assert!(held_only < waited, "{held_only} vs {waited}");
}

#[test]
fn a_lowering_the_live_limit_would_hold_is_valued_as_held_and_never_labelled_for_it() {
    // cpu-sine's scorer as the sine falls: the simulator absorbs a brief saturation, so
    // lowering below DS2's suggestion a little early pays on its fork, but the live loop
    // would hold it (busy over 0.95 at the lower parallelism). With the live limit in the
    // lookahead those lowerings are valued as held: fewer labels go below DS2.
    let w = training_workload("cpu-sine");
    let below = |guarded: bool| {
        let cfg = PpoConfig {
            lookahead_runs: 2,
            random_start: 0.0,
            randomise: 0.0,
            lookahead_guarded_lowerings: guarded,
            ..PpoConfig::default()
        };
        below_ds2(&ds2_round(&w, &cfg).labels)
    };
    let (free, guarded) = (below(false), below(true));
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
            lookahead_keep_margin_held_only: relief.is_some(),
            lookahead_held_only_within_limit: relief == Some(true),
            ..keep_margin_runs(2)
        };
        ds2_round(&training_workload(name), &cfg).labels
    };
    let (relieved, within) = (
        below_ds2(&round("cpu-sine", Some(false))),
        below_ds2(&round("cpu-sine", Some(true))),
    );
    assert!(within < relieved, "{within} vs {relieved}");
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
    let waits = |relief: Option<bool>| {
        let cfg = PpoConfig {
            lookahead_keep_margin_held_only: relief.is_some(),
            lookahead_held_only_postponed: relief == Some(true),
            ..keep_margin_runs(2)
        };
        writer_waits(&ds2_round(&training_workload("selective"), &cfg).labels)
    };
    let (margin, postponed) = (waits(None), waits(Some(true)));
    assert!(postponed < margin, "{postponed} vs {margin}");
}

#[test]
fn the_held_only_relief_with_ds2_lowers_selectives_writer_with_ds2_and_no_earlier() {
    // Relieved only where DS2 lowers the writer itself, the labels stop waiting an epoch
    // after DS2; a lowering before DS2's or below it keeps the margin, so no more of those.
    let labels = |with_ds2: bool| {
        let cfg = PpoConfig {
            lookahead_keep_margin_held_only: with_ds2,
            lookahead_held_only_with_ds2: with_ds2,
            ..keep_margin_runs(2)
        };
        ds2_round(&training_workload("selective"), &cfg).labels
    };
    let (margin, with_ds2) = (labels(false), labels(true));
    let (waited, waits_with_ds2) = (writer_waits(&margin), writer_waits(&with_ds2));
    assert!(waits_with_ds2 < waited, "{waits_with_ds2} vs {waited}");
    assert!(below_ds2(&with_ds2) <= below_ds2(&margin));
}

#[test]
fn only_a_lowering_merely_put_off_within_the_limit_or_with_ds2_is_relieved_of_the_margin() {
    let cfg = |postponed, within_limit| PpoConfig {
        lookahead_keep_margin_held_only: true,
        lookahead_held_only_postponed: postponed,
        lookahead_held_only_within_limit: within_limit,
        ..PpoConfig::default()
    };
    // Lowering from 3 to 1, DS2 keeping the stage at 3 (which only the DS2 condition reads).
    // Unrestricted, the relief goes to any lowering.
    let keeps = 3;
    assert!(relieved_of_the_margin(
        &cfg(false, false),
        1,
        None,
        2,
        keeps
    ));
    // Postponed: only when the kept stage's finisher lowers it to 1 itself next epoch, not
    // when it keeps it (None or 3), nor when it lowers it part of the way, nor when keeping
    // lets two steps down become one.
    let postponed = cfg(true, false);
    assert!(relieved_of_the_margin(&postponed, 2, Some(2), 2, keeps));
    for then in [None, Some(3), Some(2)] {
        assert!(
            !relieved_of_the_margin(&postponed, 1, then, 1, keeps),
            "{then:?}"
        );
    }
    assert!(!relieved_of_the_margin(&postponed, 2, Some(1), 2, keeps));
    // Within the limit: not where the limit would hold the stage at 2.
    let within = cfg(false, true);
    assert!(!relieved_of_the_margin(&within, 1, None, 2, keeps));
    assert!(relieved_of_the_margin(&within, 1, None, 1, keeps));
    assert!(!relieved_of_the_margin(
        &cfg(true, true),
        1,
        Some(1),
        2,
        keeps
    ));
    // With DS2: only DS2's own lowering at this epoch, not one before it or below it.
    let with_ds2 = PpoConfig {
        lookahead_held_only_with_ds2: true,
        ..cfg(false, false)
    };
    assert!(relieved_of_the_margin(&with_ds2, 1, None, 1, 1));
    assert!(!relieved_of_the_margin(&with_ds2, 1, None, 1, keeps));
    assert!(!relieved_of_the_margin(&with_ds2, 1, None, 1, 2));
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

#[test]
fn the_held_only_relief_starts_at_the_round_asked_for() {
    let cfg = PpoConfig {
        lookahead_keep_margin_held_only: true,
        lookahead_relief_from_round: 1,
        ..PpoConfig::default()
    };
    assert!(!round_config(&cfg, 0).lookahead_keep_margin_held_only);
    assert!(round_config(&cfg, 1).lookahead_keep_margin_held_only);
    assert!(round_config(&cfg, 11).lookahead_keep_margin_held_only);
    // Without the relief asked for, no round has it; from round 0, every round does.
    let off = PpoConfig {
        lookahead_keep_margin_held_only: false,
        ..cfg.clone()
    };
    assert!(!round_config(&off, 5).lookahead_keep_margin_held_only);
    let every = PpoConfig {
        lookahead_relief_from_round: 0,
        ..cfg
    };
    assert!(round_config(&every, 0).lookahead_keep_margin_held_only);
}

#[test]
fn random_buffer_starts_only_grow_input_buffers_and_stay_within_the_budget() {
    let w = training_workload("six-stage");
    let cx = w.context();
    let initial = initial_config(&w.workload);
    let mut grown = 0;
    for seed in 0..64 {
        let start = random_buffers(&initial, &cx.bounds, &mut SmallRng::seed_from_u64(seed));
        assert!(
            crate::action::buffered_records(&start) <= cx.bounds.max_buffered_records,
            "seed {seed}: {start:?} buffers more than the budget"
        );
        for (name, edge) in &start.edges {
            let before = initial.edges[name].capacity;
            assert!(edge.capacity >= before, "seed {seed}: {name} shrank");
            grown += usize::from(edge.capacity > before);
        }
        assert_eq!(
            start.stages, initial.stages,
            "seed {seed}: parallelism moved"
        );
    }
    // Each stage draws 0 of 4 doublings one time in five, so most edges grow somewhere.
    assert!(grown > 64, "only {grown} grown edges in 64 starts");
}

#[test]
fn a_sampling_behaviour_visits_other_states_from_the_same_start() {
    // An untrained network is unsure everywhere, so sampling its moves leaves the path its
    // most probable moves take; the first state, before any move, is the same.
    let w = wait_step();
    let stats = super::super::feature_stats(std::slice::from_ref(&w), &[0]).unwrap();
    let policy = Policy::untrained();
    let round = |sampled: f64| {
        let cfg = PpoConfig {
            lookahead_runs: 2,
            random_start: 0.0,
            randomise: 0.0,
            lookahead_sampled: sampled,
            ..PpoConfig::default()
        };
        lookahead_round(
            std::slice::from_ref(&w),
            &stats,
            &cfg,
            Some(&policy),
            None,
            1,
        )
        .unwrap()
    };
    let (greedy, sampled) = (round(0.0), round(1.0));
    assert_eq!(greedy.labels.len(), sampled.labels.len());
    assert_eq!(greedy.labels[0].rows, sampled.labels[0].rows);
    let differ = greedy
        .labels
        .iter()
        .zip(&sampled.labels)
        .filter(|(g, s)| g.rows != s.rows)
        .count();
    assert!(differ > greedy.labels.len() / 4, "{differ} states differ");
    // Sampling is the behaviour's alone: the same round samples the same moves again.
    let again = round(1.0);
    assert!(
        sampled
            .labels
            .iter()
            .zip(&again.labels)
            .all(|(a, b)| a.rows == b.rows && a.actions == b.actions)
    );
}

#[test]
fn an_anchor_labels_the_buffers_the_workload_still_has_and_the_lookahead_the_rest() {
    let w = wait_step();
    let stats = super::super::feature_stats(std::slice::from_ref(&w), &[0]).unwrap();
    let behaviour = Policy::untrained();
    let anchor = Policy::new(Policy::untrained().net, stats.clone());
    let round = |grown: f64, anchor: Option<&Policy>| {
        let cfg = PpoConfig {
            lookahead_runs: 2,
            random_start: 0.0,
            randomise: 0.0,
            lookahead_buffers: true,
            random_buffer_start: grown,
            ..PpoConfig::default()
        };
        let labels = lookahead_round(
            std::slice::from_ref(&w),
            &stats,
            &cfg,
            Some(&behaviour),
            anchor,
            1,
        );
        labels.unwrap().labels
    };
    // The anchor's own most probable buffer move per stage of a state.
    let own = |t: &Transition| -> Vec<usize> {
        let outputs = anchor.net.infer(&t.rows, &anchor.device);
        outputs
            .iter()
            .zip(&t.buf_masks)
            .map(|(out, mask)| {
                let logits = &out[PARALLELISM_ACTIONS..PARALLELISM_ACTIONS + BUFFER_ACTIONS];
                argmax(&masked_softmax::<BUFFER_ACTIONS>(logits, mask))
            })
            .collect()
    };
    let buffers = |t: &Transition| t.actions.iter().map(|a| a.buffer).collect::<Vec<_>>();
    let moves = |t: &Transition| t.actions.iter().map(|a| a.parallelism).collect::<Vec<_>>();
    for grown in [0.0, 1.0] {
        let (plain, anchored) = (round(grown, None), round(grown, Some(&anchor)));
        assert_eq!(plain.len(), anchored.len());
        let (mut kept, mut relearned) = (0, 0);
        for (p, a) in plain.iter().zip(&anchored) {
            // Only the buffer labels (and their regrets) change.
            assert_eq!(p.rows, a.rows);
            assert_eq!(moves(p), moves(a));
            for (s, ((&pb, &ab), &ob)) in
                buffers(p).iter().zip(&buffers(a)).zip(&own(a)).enumerate()
            {
                assert!(
                    ab == ob || ab == pb,
                    "a label is the anchor's or the lookahead's"
                );
                if ab == ob && ab != pb {
                    kept += 1;
                    assert_eq!(a.stages[s].buffer_regret, [0.0; BUFFER_ACTIONS]);
                }
                relearned += usize::from(ab != ob);
            }
        }
        if grown == 0.0 {
            // From the workload's own buffers, the first state is the anchor's everywhere.
            assert_eq!(buffers(&anchored[0]), own(&anchored[0]));
            assert!(kept > 0, "the anchor changed no label");
        } else {
            assert!(relearned > 0, "grown buffers are the lookahead's to label");
        }
    }
}

//! The agent's parts: checkpoints (round trip, and every kind of bad file as a clear error),
//! the guardrails, action masks, and a short PPO run on the simulator.

use std::path::PathBuf;

use burn::tensor::Device;
use rheo_tuner::agent::Policy;
use rheo_tuner::agent::checkpoint::{CheckpointHeader, load, save};
use rheo_tuner::agent::curve::{read_experience, write_experience};
use rheo_tuner::agent::features::{FEATURES, FeatureStats, History, observe};
use rheo_tuner::agent::guard::{Controls, GuardConfig, GuardState, Verdict, effective_bounds};
use rheo_tuner::agent::policy::{BUFFER_ACTIONS, PARALLELISM_ACTIONS, PolicyNet};
use rheo_tuner::agent::ppo::{PpoConfig, TrainingWorkload, fine_tune, train, train_from};
use rheo_tuner::env::{Environment, SimEnv, SimParams};
use rheo_tuner::run::run;
use rheo_tuner::scoreboard::context;
use rheo_tuner::spec::Workload;
use rheo_tuner::tuners::{Ds2Knobs, ds2_suggestion};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rheo-agent-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn header() -> CheckpointHeader {
    let mut stats = FeatureStats::default();
    stats.add(&[0.5; FEATURES]);
    stats.add(&[0.25; FEATURES]);
    CheckpointHeader::new(stats, 3, "test".into(), 0.0)
}

/// The shipped workload `name` (`workloads/NAME.toml`).
fn shipped_workload(name: &str) -> Workload {
    Workload::load(format!(
        "{}/../workloads/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn workload() -> Workload {
    shipped_workload("wait-step")
}

/// `w` as the only training workload, DS2 at its default knobs.
fn training_alone(w: &Workload, params: &SimParams) -> Vec<TrainingWorkload> {
    vec![TrainingWorkload {
        workload: w.clone(),
        params: params.clone(),
        ds2: Ds2Knobs::default(),
        ds2_base: Default::default(),
    }]
}

#[test]
fn a_checkpoint_round_trip_keeps_the_policy() {
    let device = Device::flex();
    let net = PolicyNet::new(&device);
    let path = temp("round-trip.ckpt");
    save(&path, &net, &header()).unwrap();
    let (read_header, read) = load(&path, &device).unwrap();
    assert_eq!(read_header, header_with_time(&read_header));
    let row = [[0.3f32; FEATURES], [-0.7; FEATURES]];
    assert_eq!(net.infer(&row, &device), read.infer(&row, &device));
}

#[test]
fn a_checkpoint_says_which_ds2_its_moves_are_offsets_from() {
    let device = Device::flex();
    let path = temp("tuned-base.ckpt");
    let tuned = CheckpointHeader {
        tuned_ds2_base: true,
        ..header()
    };
    save(&path, &PolicyNet::new(&device), &tuned).unwrap();
    assert!(Policy::load(&path).unwrap().0.tuned_ds2_base);
    // The policy shipped on the morning of 2026-12-04 was written before the field existed:
    // DS2 at its default knobs.
    let older = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/policy-before-tuned-base.ckpt"
    );
    let (policy, header) = Policy::load(std::path::Path::new(older)).unwrap();
    assert!(!policy.tuned_ds2_base && !header.tuned_ds2_base);
    // The policy shipped now was trained on tuned DS2.
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/policy.ckpt");
    let (policy, header) = Policy::load(std::path::Path::new(shipped)).unwrap();
    assert!(policy.tuned_ds2_base && header.tuned_ds2_base);
}

/// `header()` with the creation time of `read` (the only field that differs by run).
fn header_with_time(read: &CheckpointHeader) -> CheckpointHeader {
    CheckpointHeader {
        created_unix_s: read.created_unix_s,
        commit: read.commit.clone(),
        ..header()
    }
}

#[test]
fn bad_checkpoints_are_errors_that_name_the_file_and_the_reason() {
    let device = Device::flex();
    let path = temp("good.ckpt");
    save(&path, &PolicyNet::new(&device), &header()).unwrap();
    let good = std::fs::read(&path).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "flipped.ckpt",
            {
                let mut b = good.clone();
                let mid = b.len() / 2;
                b[mid] ^= 0x40;
                b
            },
            "checksum mismatch",
        ),
        (
            "truncated.ckpt",
            good[..good.len() - 10].to_vec(),
            "checksum mismatch",
        ),
        ("empty.ckpt", Vec::new(), "bad magic"),
        (
            "text.ckpt",
            b"not a checkpoint at all, just text".to_vec(),
            "bad magic",
        ),
    ];
    for (name, bytes, reason) in cases {
        let p = temp(name);
        std::fs::write(&p, bytes).unwrap();
        let err = load(&p, &device).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains(reason), "{name}: {err}");
    }
    let missing = temp("missing.ckpt");
    let err = load(&missing, &device).unwrap_err().to_string();
    assert!(err.contains("missing.ckpt"), "{err}");

    let mut other = header();
    other.features[0] = "something else".into();
    let p = temp("features.ckpt");
    save(&p, &PolicyNet::new(&device), &other).unwrap();
    let err = load(&p, &device).unwrap_err().to_string();
    assert!(err.contains("feature list differs"), "{err}");

    let mut version = good.clone();
    version[8] = 9;
    let body = version.len() - 4;
    let crc = crc32(&version[..body]);
    version[body..].copy_from_slice(&crc.to_le_bytes());
    let p = temp("version.ckpt");
    std::fs::write(&p, version).unwrap();
    let err = load(&p, &device).unwrap_err().to_string();
    assert!(err.contains("schema version 9"), "{err}");
}

fn crc32(bytes: &[u8]) -> u32 {
    // The envelope's checksum, recomputed here to forge a well-formed file of another version.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn the_guard_cools_down_and_rolls_back_a_change_that_hurt() {
    let guard = GuardConfig {
        cooldown_epochs: 1,
        rollback_drop: 0.2,
        ..GuardConfig::default()
    };
    let mut before = rheo_engine::JobConfig::default();
    before
        .set_parallelism("enrich", 4)
        .set_capacity("parse->enrich", 64);
    let mut lowered = before.clone();
    lowered.set_parallelism("enrich", 2);
    let mut state = GuardState::default();
    state.changed(before.clone(), &lowered, 0.8, false);
    assert_eq!(
        state.check(&guard, 0.5),
        Verdict::Cooldown,
        "the epoch of the change"
    );
    assert_eq!(state.check(&guard, 0.3), Verdict::Rollback(before.clone()));
    // After a rollback there is no second rollback of the rollback.
    state.changed(lowered.clone(), &before, 0.3, true);
    assert_eq!(state.check(&guard, 0.0), Verdict::Cooldown);
    assert_eq!(state.check(&guard, 0.0), Verdict::Apply);
    // A change that helped stays.
    state.changed(before.clone(), &lowered, 0.5, false);
    state.check(&guard, 0.4);
    assert_eq!(state.check(&guard, 0.45), Verdict::Apply);
    // A smaller buffer takes capacity away too.
    let mut smaller = before.clone();
    smaller.set_capacity("parse->enrich", 16);
    state.changed(before.clone(), &smaller, 0.8, false);
    state.check(&guard, 0.8);
    assert_eq!(state.check(&guard, 0.3), Verdict::Rollback(before.clone()));
    // A change that only added capacity stays however the next epoch scores: the shortfall
    // is load it did not cover, and going back would cost a second pause.
    let mut raised = before.clone();
    raised
        .set_parallelism("enrich", 8)
        .set_capacity("parse->enrich", 128);
    state.changed(before, &raised, 0.8, false);
    state.check(&guard, 0.0);
    assert_eq!(state.check(&guard, 0.0), Verdict::Apply);
}

#[test]
fn pins_limits_and_the_run_time_budget_tighten_the_bounds() {
    let w = workload();
    let cx = context(&w);
    let stages = w.stage_names();
    let mut guard = GuardConfig::default();
    guard.pins.insert(stages[0].clone(), 2);
    let controls = Controls::default();
    controls.set_thread_budget(5);
    let b = effective_bounds(&cx.bounds, &guard, &controls);
    assert_eq!(b.stages[0].1, 2);
    assert_eq!(b.stages[0].2, 2);
    assert_eq!(b.max_threads, 5);
    controls.set_fixed(Some(rheo_engine::JobConfig::default()));
    assert!(controls.fixed().is_some());
}

#[test]
fn observations_have_a_row_per_stage_within_range() {
    let w = workload();
    let cx = context(&w);
    let mut env = SimEnv::new(&w, SimParams::nominal(&w), 1);
    let snapshot = env.observe().unwrap().unwrap();
    let obs = observe(&snapshot, &cx, &History::default());
    assert_eq!(obs.rows.len(), w.stages.len());
    for row in &obs.rows {
        assert!(
            row.iter()
                .all(|v| v.is_finite() && (-5.0..=5.0).contains(v)),
            "{row:?}"
        );
    }
}

#[test]
fn a_short_ppo_run_trains_a_policy_that_runs_as_a_tuner() {
    short_ppo_run(false);
}

/// The same with per-stage credit: every decision's stages carry their own credited reward.
#[test]
fn a_short_ppo_run_with_per_stage_credit_trains_a_policy_that_runs_as_a_tuner() {
    short_ppo_run(true);
}

fn short_ppo_run(stage_credit: bool) {
    // The two modes run side by side: each writes files of its own.
    let mode = if stage_credit {
        "per-stage"
    } else {
        "pipeline"
    };
    let w = workload();
    let params = SimParams::nominal(&w);
    let cfg = PpoConfig {
        iterations: 3,
        envs_per_workload: 2,
        epochs: 2,
        imitation_epochs: 2,
        demonstration_runs: 1,
        stage_credit,
        ..PpoConfig::default()
    };
    let workloads = training_alone(&w, &params);
    let mut seen = 0;
    let trained = train(&workloads, &cfg, |_| seen += 1).unwrap();
    assert_eq!(seen, 3);
    assert_eq!(trained.curve.len(), 3);
    assert!(trained.curve.iter().all(|p| p.objective.is_finite()
        && p.policy_loss.is_finite()
        && p.value_loss.is_finite()
        && p.entropy > 0.0));
    assert!(!trained.experience.is_empty());
    // Every stage of every decision was credited a reward of its own, one it shares with the
    // decision's pipeline-wide terms (never above the decision's best case of 1).
    for t in &trained.experience {
        assert_eq!(t.stages.len(), w.stages.len());
        assert!(t.stages.iter().all(|s| s.reward.is_some_and(|r| r <= 1.0)));
        let logp: f32 = t.stages.iter().map(|s| s.logp).sum();
        assert!((logp - t.logp).abs() < 1e-3, "{logp} vs {}", t.logp);
    }
    // The experience log replays for offline training.
    let log = temp(&format!("experience-{mode}.bin"));
    write_experience(&log, &trained.experience).unwrap();
    let replayed = read_experience(&log).unwrap();
    assert_eq!(replayed.len(), trained.experience.len());
    assert_eq!(replayed[0].actions, trained.experience[0].actions);
    let (tuned, losses) = fine_tune(&trained.net, &replayed, &cfg).unwrap();
    assert!(losses.0.is_finite() && losses.1.is_finite());
    let rows = [[0.1f32; FEATURES]];
    assert_ne!(
        tuned.infer(&rows, &Device::flex()),
        trained.net.infer(&rows, &Device::flex()),
        "replay changed the policy"
    );
    std::fs::write(&log, b"garbage").unwrap();
    assert!(
        read_experience(&log)
            .unwrap_err()
            .contains(&format!("experience-{mode}.bin"))
    );
    let path = temp(&format!("trained-{mode}.ckpt"));
    save(
        &path,
        &trained.net,
        &CheckpointHeader::new(trained.stats, 7, "test".into(), trained.seconds),
    )
    .unwrap();
    let (policy, _) = Policy::load(&path).unwrap();
    let mut agent = rheo_tuner::agent::Agent::new(
        policy,
        GuardConfig::default(),
        Controls::default(),
        "trained.ckpt",
    );
    let mut env = SimEnv::new(&w, params, 1000);
    let result = run(&mut env, &mut agent, &context(&w), None, |_, _| {}).unwrap();
    assert_eq!(result.epochs.len(), w.epochs());
    assert!(result.objective.is_finite());
}

/// A `--from` start: an untrained network with statistics of two made-up rows.
fn untrained_start() -> Policy {
    let mut stats = FeatureStats::default();
    stats.add(&[0.5; FEATURES]);
    stats.add(&[0.25; FEATURES]);
    Policy::new(PolicyNet::new(&Device::flex()), stats)
}

/// `rheo train --from`: a run from a policy starts from its network and its statistics. With
/// nothing to train it keeps the start as it is (candidate 0); a lookahead round from it labels
/// the start's own runs, not tuned DS2's as a fresh run's first round does.
#[test]
fn training_from_a_policy_starts_from_its_network_and_its_runs() {
    let w = workload();
    let params = SimParams::nominal(&w);
    let workloads = training_alone(&w, &params);
    let start = untrained_start();
    let stats = start.stats.clone();
    let rows = vec![[0.3f32; FEATURES], [0.7; FEATURES]];
    let cfg = PpoConfig {
        iterations: 0,
        lookahead_rounds: 0,
        selection_seeds: 1,
        ..PpoConfig::default()
    };
    let kept = train_from(&workloads, &cfg, Some(&start), |_| {}).unwrap();
    assert_eq!(kept.selected.map(|s| s.0), Some(0));
    assert_eq!(kept.candidates.len(), 1);
    assert_eq!(
        kept.stats, stats,
        "the start's statistics, not the workloads'"
    );
    assert_eq!(
        kept.net.infer(&rows, &Device::flex()),
        start.net.infer(&rows, &Device::flex())
    );
    let cfg = PpoConfig {
        lookahead_rounds: 1,
        lookahead_runs: 1,
        lookahead_policy_finish: true,
        imitation_epochs: 1,
        ..cfg
    };
    let fresh = train(&workloads, &cfg, |_| {}).unwrap();
    let from = train_from(&workloads, &cfg, Some(&start), |_| {}).unwrap();
    // Round 0's objective is its behaviour's on the round's runs (the same seeds): tuned DS2
    // for the fresh run, the untrained start for the other.
    let (fresh0, from0) = (fresh.curve[0].objective, from.curve[0].objective);
    assert!(
        (fresh0 - from0).abs() > 0.01,
        "round 0 ran DS2 ({fresh0:.3}) and the start ({from0:.3}) alike"
    );
    // The start is a candidate beside the round's network.
    assert_eq!(
        from.candidates
            .iter()
            .map(|c| c.iteration)
            .collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(fresh.candidates.len(), 1);
}

/// Training only the buffer outputs from a start leaves every parallelism and value output
/// exactly the start's, moves the buffer outputs, and does not offer the start for selection.
#[test]
fn buffer_head_only_rounds_change_the_buffer_outputs_alone() {
    let w = workload();
    let params = SimParams::nominal(&w);
    let workloads = training_alone(&w, &params);
    let start = untrained_start();
    let cfg = PpoConfig {
        iterations: 0,
        lookahead_rounds: 1,
        lookahead_runs: 1,
        lookahead_buffers: true,
        lookahead_buffer_head_only: true,
        random_buffer_start: 1.0,
        imitation_epochs: 2,
        selection_seeds: 1,
        ..PpoConfig::default()
    };
    let trained = train_from(&workloads, &cfg, Some(&start), |_| {}).unwrap();
    assert_eq!(
        trained
            .candidates
            .iter()
            .map(|c| c.iteration)
            .collect::<Vec<_>>(),
        [1]
    );
    let rows: Vec<[f32; FEATURES]> = (0..8)
        .map(|i| std::array::from_fn(|f| ((i * 7 + f * 3) % 11) as f32 / 5.0 - 1.0))
        .collect();
    let before = start.net.infer(&rows, &Device::flex());
    let after = trained.net.infer(&rows, &Device::flex());
    let buffers = PARALLELISM_ACTIONS..PARALLELISM_ACTIONS + BUFFER_ACTIONS;
    let mut moved = 0.0f32;
    for (b, a) in before.iter().zip(&after) {
        for k in 0..b.len() {
            if buffers.contains(&k) {
                moved = moved.max((a[k] - b[k]).abs());
            } else {
                assert_eq!(a[k], b[k], "output {k} changed");
            }
        }
    }
    assert!(moved > 1e-4, "the buffer outputs did not move ({moved})");
}

/// A random policy (an untrained network, moves sampled) behind the guard, with pins, limits
/// and a thread budget that changes while the job runs: no applied configuration ever leaves a
/// stage's bounds, the thread budget in force or the buffer budget.
#[test]
fn guardrails_hold_under_a_random_policy() {
    // Lowerings the guard cut back: the limit on utilisation is exercised, not just met.
    let mut held = 0;
    // Decisions two guardrails changed at once (both named in the label).
    let mut both = 0;
    for (file, seed) in [
        ("wait-step", 1),
        ("six-stage", 2),
        ("mixed-burst", 3),
        ("selective", 4),
    ] {
        let w = shipped_workload(file);
        let cx = context(&w);
        let stages = w.stage_names();
        let mut guard = GuardConfig {
            cooldown_epochs: 0,
            rollback_drop: 0.05,
            // Every decision taken, so the run is the same on a loaded machine (the budget has
            // its own test).
            decision_budget_us: u64::MAX,
            ..GuardConfig::default()
        };
        guard.pins.insert(stages[0].clone(), 2);
        if stages.len() > 1 {
            guard.limits.insert(stages[1].clone(), (2, 3));
        }
        let controls = Controls::default();
        let mut agent = rheo_tuner::agent::Agent::new(
            Policy::untrained(),
            guard.clone(),
            controls.clone(),
            "random",
        )
        .learning(seed);
        let mut env = SimEnv::new(&w, SimParams::nominal(&w), seed);
        // The budget the next decision is made under, changed every few epochs.
        let budgets = [
            cx.bounds.max_threads,
            4 + stages.len(),
            stages.len() + 2,
            stages.len() + 3,
        ];
        let mut budget = cx.bounds.max_threads;
        let mut decisions = 0;
        let mut lowerings = 0;
        run(&mut env, &mut agent, &cx, None, |snapshot, record| {
            decisions += 1;
            let bounds = effective_bounds(&cx.bounds, &guard, &controls);
            let config = &record.decision.config;
            for (name, min, max) in &bounds.stages {
                let p = config.parallelism(name).unwrap_or(1);
                assert!(
                    (*min..=*max).contains(&p),
                    "{file} epoch {}: {name} at {p}, bounds {min}..={max} ({})",
                    snapshot.epoch,
                    record.decision.reason
                );
            }
            assert!(
                bounds.threads(config) <= budget,
                "{file} epoch {}: {} threads over the budget of {budget} ({})",
                snapshot.epoch,
                bounds.threads(config),
                record.decision.reason
            );
            assert!(
                rheo_tuner::action::buffered_records(config) <= bounds.max_buffered_records,
                "{file} epoch {}: buffers over budget",
                snapshot.epoch
            );
            // No lowering of the policy's own leaves a stage busier than the guard allows, unless
            // DS2 suggests going as low; a budget or bound that shrank, or a rollback, may (they
            // take capacity by force).
            let detail = &record.decision.detail;
            held += usize::from(detail.get("utilisation_after_lowering").is_some());
            // The label names every guardrail that changed the proposal, unless one that
            // replaces the whole decision (cooldown, rollback, …) acted last.
            let label = detail["guardrail"].as_str().unwrap_or("");
            let whole = [
                "cooldown",
                "rollback",
                "decision budget",
                "advisory (dry run)",
            ];
            if !whole.contains(&label) {
                if detail.get("utilisation_after_lowering").is_some() {
                    assert!(label.contains("utilisation after lowering"), "{label}");
                }
                if detail["clamped"].as_array().is_some_and(|n| !n.is_empty()) {
                    assert!(label.contains("bounds and budgets (clamp)"), "{label}");
                }
                both += usize::from(label.contains("; "));
            }
            let forced = matches!(
                detail["guardrail"].as_str(),
                Some("rollback" | "bounds changed at run time")
            ) || detail["clamped"].as_array().is_some_and(|n| !n.is_empty());
            let max_utilisation = guard.max_utilisation_after_lowering.unwrap();
            for (name, pi_raw) in ds2_suggestion(snapshot, &cx, 0.0, 0.0).raw {
                let (Some(from), Some(to)) =
                    (snapshot.config.parallelism(&name), config.parallelism(&name))
                else {
                    continue;
                };
                let ds2 = detail["ds2"][&name]["parallelism"].as_u64();
                if to < from && !forced {
                    lowerings += 1;
                    assert!(
                        pi_raw / to as f64 <= max_utilisation
                            || ds2.is_some_and(|d| to as u64 >= d),
                        "{file} epoch {}: {name} lowered {from}→{to} at {pi_raw:.2} workers of load ({})",
                        snapshot.epoch,
                        record.decision.reason
                    );
                }
            }
            budget = budgets[(snapshot.epoch as usize / 5) % budgets.len()];
            controls.set_thread_budget(budget);
        })
        .unwrap();
        assert_eq!(decisions, w.epochs());
        assert!(
            lowerings > 0,
            "{file}: the random policy never lowered a stage"
        );
    }
    assert!(held > 0, "no lowering was ever cut back");
    assert!(
        both > 0,
        "no decision was changed by two guardrails at once"
    );
}

/// Mean objective of `tuner` over `seeds` on the simulator.
fn mean_objective(
    w: &Workload,
    params: &SimParams,
    seeds: &[u64],
    mut tuner: impl FnMut() -> Box<dyn rheo_tuner::tuners::Tuner>,
) -> f64 {
    let cx = context(w);
    seeds
        .iter()
        .map(|&seed| {
            let mut env = SimEnv::new(w, params.clone(), seed);
            run(&mut env, tuner().as_mut(), &cx, None, |_, _| {})
                .unwrap()
                .objective
        })
        .sum::<f64>()
        / seeds.len() as f64
}

/// PPO learns: from scratch (no imitation of DS2), on a one-stage environment whose optimum the
/// oracle knows, 200 updates (with training's own model selection on the training seeds every
/// 10) bring the greedy policy to 90 % of the optimal return on the evaluation seeds; the
/// untrained network sampling its moves (close to uniform) stays under half of it.
#[test]
fn ppo_learns_a_small_environment_to_ninety_percent_of_its_optimum() {
    ppo_learns(false);
}

/// The same through the per-stage update (each row's own ratio, advantage and value). With one
/// stage the stage's credit is the pipeline's, so this checks that path learns as the other
/// does, not that per-stage credit helps (docs/benchmarks.md measures that on six stages).
#[test]
fn ppo_with_per_stage_credit_learns_a_small_environment_too() {
    ppo_learns(true);
}

fn ppo_learns(stage_credit: bool) {
    // The backend's generator is process-wide: the two variants take turns, so each seeds it
    // and draws its networks without the other drawing in between.
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let w = Workload::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/ppo-small.toml"
    ))
    .unwrap();
    let params = SimParams::nominal(&w);
    let cx = context(&w);
    let seeds = [1000, 1001, 1002];
    let schedule = rheo_tuner::tuners::plan_oracle(&w, params.clone(), &cx.bounds);
    let optimum = mean_objective(&w, &params, &seeds, || {
        Box::new(rheo_tuner::tuners::Oracle::new(schedule.clone()))
    });
    // The policies' own moves are scored: the limit on lowerings would hold back the random
    // policy's worst ones (0.54 instead of at most half the optimum).
    let guard = GuardConfig {
        max_utilisation_after_lowering: None,
        ..GuardConfig::default()
    };
    let mut k = 0;
    let random = mean_objective(&w, &params, &seeds, || {
        k += 1;
        Device::flex().seed(k);
        let agent = rheo_tuner::agent::Agent::new(
            Policy::untrained(),
            guard.clone(),
            Controls::default(),
            "random",
        );
        Box::new(agent.learning(k))
    });
    let cfg = PpoConfig {
        iterations: 200,
        envs_per_workload: 8,
        imitation_epochs: 0,
        select_every: 10,
        learning_rate: 1e-3,
        seed: 5,
        stage_credit,
        ..PpoConfig::default()
    };
    let workloads = training_alone(&w, &params);
    let trained = train(&workloads, &cfg, |_| {}).unwrap();
    let (kept, _) = trained.selected.unwrap();
    assert!(kept > 0, "the kept policy is a trained one");
    assert_eq!(
        trained.candidates.len(),
        200 / 10 + 1,
        "the starting policy and every tenth iteration's are scored"
    );
    assert_eq!(trained.baseline.len(), workloads.len());
    let kept_score = trained
        .candidates
        .iter()
        .find(|c| c.iteration == kept)
        .map(|c| c.score)
        .unwrap();
    assert!(
        trained
            .candidates
            .iter()
            .all(|c| c.score <= kept_score && c.rows.len() == workloads.len()),
        "the kept policy is the best scored"
    );
    let policy = Policy::new(trained.net, trained.stats);
    let learned = mean_objective(&w, &params, &seeds, || {
        Box::new(rheo_tuner::agent::Agent::new(
            policy.clone(),
            guard.clone(),
            Controls::default(),
            "learned",
        ))
    });
    eprintln!(
        "stage credit {stage_credit}: optimum {optimum:.3}, random {random:.3}, learned {learned:.3}"
    );
    assert!(optimum > 0.5, "optimum {optimum}");
    assert!(
        random <= 0.5 * optimum,
        "random {random} vs optimum {optimum}"
    );
    assert!(
        learned >= 0.9 * optimum,
        "learned {learned} vs optimum {optimum} (random {random})"
    );
}

/// A decision that overruns its time budget is dropped: the configuration stays, and the run
/// log says which guardrail acted.
#[test]
fn a_decision_over_its_budget_is_dropped() {
    let w = workload();
    let cx = context(&w);
    let guard = GuardConfig {
        decision_budget_us: 0,
        ..GuardConfig::default()
    };
    let mut agent =
        rheo_tuner::agent::Agent::new(Policy::untrained(), guard, Controls::default(), "slow");
    let mut env = SimEnv::new(&w, SimParams::nominal(&w), 3);
    let first = env.observe().unwrap().unwrap();
    let decision = rheo_tuner::tuners::Tuner::decide(&mut agent, &first, &cx);
    assert_eq!(decision.config, first.config);
    assert_eq!(decision.detail["guardrail"], "decision budget");
    assert!(
        decision.reason.contains("over the budget of 0 µs"),
        "{}",
        decision.reason
    );
}

/// Online learning on a live run: the explainer thread explains every decision handed over
/// (and hands back the same decisions the run's epochs record), then fine-tunes on the run's
/// decisions — the same network a fine-tune on the caller's thread gives — and the fine-tuned
/// policy differs from the one the run acted with.
#[test]
fn online_fine_tuning_runs_on_the_explainer_thread() {
    use rheo_tuner::agent::ppo::advantages;
    use rheo_tuner::explain::LiveExplainer;
    use rheo_tuner::explain::runlog::{LoggedEpoch, epoch_decisions};

    let w = workload();
    let cx = context(&w);
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/policy.ckpt");
    let policy = Policy::load(std::path::Path::new(shipped)).unwrap().0;
    let mut agent = rheo_tuner::agent::Agent::new(
        policy.clone(),
        GuardConfig::default(),
        Controls::default(),
        "shipped",
    )
    .learning(5);
    let traces = agent.traces();
    let live = LiveExplainer::start(&policy).unwrap();
    let mut env = SimEnv::new(&w, SimParams::nominal(&w), 1000);
    let mut epochs = Vec::new();
    run(&mut env, &mut agent, &cx, None, |snapshot, record| {
        if let Some(trace) = traces.take() {
            live.send(trace);
        }
        epochs.push(LoggedEpoch {
            snapshot: snapshot.clone(),
            record: record.clone(),
        });
    })
    .unwrap();
    let (experience, _) = agent.take_experience();
    assert!(!experience.is_empty());
    let cfg = PpoConfig::default();
    let mut direct = experience.clone();
    advantages(&mut direct, cfg.gamma, cfg.lambda);
    let (expected, _) = fine_tune(&policy.net, &direct, &cfg).unwrap();
    let (explained, fine_tuned) = live.fine_tune_and_finish(experience, &cfg);
    // The decisions read from the traces are the ones the run's epochs record.
    let logged = epoch_decisions(&epochs, std::path::Path::new("live run")).unwrap();
    assert!(!logged.is_empty());
    assert_eq!(explained.decisions, logged);
    assert_eq!(explained.explanations.len(), logged.len());
    let (net, losses) = fine_tuned.unwrap();
    assert!(losses.0.is_finite() && losses.1.is_finite());
    let rows = [[0.1f32; FEATURES], [0.6f32; FEATURES]];
    let device = Device::flex();
    assert_eq!(net.infer(&rows, &device), expected.infer(&rows, &device));
    assert_ne!(net.infer(&rows, &device), policy.net.infer(&rows, &device));
}

/// A stage handed to DS2 by the fallback keeps its input buffer, as DS2 would: an untrained
/// policy is unsure nearly everywhere and proposes buffer moves too.
#[test]
fn a_stage_that_falls_back_to_ds2_keeps_its_buffer() {
    let w = shipped_workload("six-stage");
    let cx = context(&w);
    let guard = GuardConfig {
        cooldown_epochs: 0,
        decision_budget_us: u64::MAX,
        ..GuardConfig::default()
    };
    assert!(guard.fallback.is_some(), "the default guard falls back");
    let capacity = |c: &rheo_engine::JobConfig, stage: &str| {
        rheo_tuner::agent::actions::input_capacity(c, stage)
    };
    let (mut fell, mut proposed_buffer_moves) = (0, 0);
    // A few untrained networks (the device seeds them; another test seeding it at the same
    // time only changes which), each on its own run.
    for k in 1..=6u64 {
        Device::flex().seed(100 + k);
        let mut agent = rheo_tuner::agent::Agent::new(
            Policy::untrained(),
            guard.clone(),
            Controls::default(),
            "untrained",
        );
        let mut env = SimEnv::new(&w, SimParams::nominal(&w), k);
        run(&mut env, &mut agent, &cx, None, |snapshot, record| {
            let detail = &record.decision.detail;
            let Some(proposal) = detail.get("proposal") else {
                return;
            };
            let proposal: rheo_engine::JobConfig =
                serde_json::from_value(proposal.clone()).unwrap();
            for f in detail["fallback"].as_array().into_iter().flatten() {
                let stage = f["stage"].as_str().unwrap();
                fell += 1;
                proposed_buffer_moves +=
                    usize::from(capacity(&proposal, stage) != capacity(&snapshot.config, stage));
                assert_eq!(
                    capacity(&record.decision.config, stage),
                    capacity(&snapshot.config, stage),
                    "epoch {}: {stage} fell back to DS2 but its buffer moved",
                    snapshot.epoch
                );
            }
        })
        .unwrap();
    }
    assert!(fell > 0, "no untrained policy ever fell back");
    assert!(
        proposed_buffer_moves > 0,
        "no stage that fell back had a buffer move proposed"
    );
}

//! Explanations are faithful: the feature a policy reads ranks first, ignored features get
//! nothing, saliency of a randomised policy is unrelated to the trained one's, sentences name
//! the top features; the DS2 fallback's out-of-distribution check fires far out and never on
//! training observations, and its uncertainty check pools moves with the same outcome; the
//! report is self-contained and has every section.

use std::path::Path;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rheo_tuner::agent::features::{FEATURES, FeatureStats, Observation};
use rheo_tuner::agent::guard::Fallback;
use rheo_tuner::agent::policy::{HIDDEN, PolicyNet};
use rheo_tuner::agent::{Policy, StageChoice, fallback_stages};
use rheo_tuner::explain::runlog::{LoggedEpoch, epoch_decisions};
use rheo_tuner::explain::sample::simulated_decisions;
use rheo_tuner::explain::{Analysis, Explainer, StageDecision, report, spearman};
use rheo_tuner::run::run;
use rheo_tuner::scoreboard::{TRAINING_SEEDS, context, sim_params};
use rheo_tuner::spec::Workload;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn shipped() -> Policy {
    Policy::load(&root().join("../models/policy.ckpt"))
        .unwrap()
        .0
}

/// Zeroes every input weight of the first layer but `keep`'s: the network reads one feature.
struct ReadOnly {
    keep: usize,
}

impl ModuleMapper for ReadOnly {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let keep = self.keep;
        param.map(|t| {
            let dims = t.dims();
            if D != 2 || dims[0] != FEATURES || dims[1] != HIDDEN {
                return t;
            }
            let mask: Vec<f32> = (0..FEATURES * HIDDEN)
                .map(|i| if i / HIDDEN == keep { 1.0 } else { 0.0 })
                .collect();
            let device = t.device();
            t * Tensor::<D>::from_data(TensorData::new(mask, dims), &device)
        })
    }
}

/// Statistics of rows drawn uniformly in 0..1, and 100 such rows.
fn random_rows(seed: u64) -> (FeatureStats, Vec<[f32; FEATURES]>) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let rows: Vec<[f32; FEATURES]> = (0..100)
        .map(|_| std::array::from_fn(|_| rng.random::<f32>()))
        .collect();
    let mut stats = FeatureStats::default();
    for r in &rows {
        stats.add(r);
    }
    (stats, rows)
}

fn decision(row: [f32; FEATURES], explainer: &Explainer) -> StageDecision {
    // The policy's own greedy move, so the explanation is of what it would do.
    let z = explainer.normalise(&row);
    let p = explainer.probabilities(&[z], &[true; 5])[0];
    let mut d = StageDecision::example("enrich", row);
    d.action.parallelism = rheo_tuner::agent::policy::argmax(&p);
    d.probabilities = p;
    d
}

#[test]
fn a_policy_reading_one_feature_gets_it_ranked_first_and_the_others_nothing() {
    let (stats, rows) = random_rows(1);
    for keep in [1, 4, 15] {
        let net = PolicyNet::new(&Device::flex()).map(&mut ReadOnly { keep });
        let policy = Policy::new(net, stats.clone());
        let mut explainer = Explainer::new(&policy).with_background(rows.iter().copied());
        for row in rows.iter().take(20) {
            let e = explainer.explain(&decision(*row, &explainer));
            let top = e.saliency[keep];
            let by_saliency = (0..FEATURES)
                .max_by(|&a, &b| e.saliency[a].total_cmp(&e.saliency[b]))
                .unwrap();
            assert_eq!(by_saliency, keep, "saliency: {:?}", e.saliency);
            assert_eq!(e.top[0].feature, keep, "top: {:?}", e.top);
            let by_masking = (0..FEATURES)
                .max_by(|&a, &b| e.masking[a].total_cmp(&e.masking[b]))
                .unwrap();
            // Masking ranks it first unless the feature already sits at its mean (nothing to
            // mask): permutation must then rank it first.
            if e.masking[keep] > 1e-6 {
                assert_eq!(by_masking, keep, "masking: {:?}", e.masking);
            }
            for f in (0..FEATURES).filter(|&f| f != keep) {
                assert!(e.saliency[f] < 0.02 * top, "saliency of ignored {f}");
                assert!(e.masking[f] <= 0.02 * e.masking[keep].max(1e-9));
                assert!(e.permutation[f] <= 0.02 * e.permutation[keep].max(1e-9));
            }
            assert!(e.permutation[keep] > 0.0);
        }
    }
}

#[test]
fn saliency_of_a_randomised_policy_is_unrelated_to_the_trained_one() {
    let policy = shipped();
    let w = Workload::load(root().join("../workloads/wait-step.toml")).unwrap();
    let params = sim_params(&root().join("../workloads/wait-step.toml"), &w).unwrap();
    let decisions = simulated_decisions(&policy, &w, &params, &TRAINING_SEEDS, true).unwrap();
    let sample: Vec<StageDecision> = decisions.iter().step_by(3).take(100).cloned().collect();
    assert_eq!(sample.len(), 100);
    let trained = Explainer::new(&policy).explain_all(&sample);
    let randomised = Policy::new(PolicyNet::new(&Device::flex()), policy.stats.clone());
    let random = Explainer::new(&randomised).explain_all(&sample);
    let mean: f64 = trained
        .iter()
        .zip(&random)
        .map(|(a, b)| spearman(&a.saliency, &b.saliency))
        .sum::<f64>()
        / 100.0;
    println!("mean Spearman correlation, trained vs randomised saliency: {mean:.3}");
    assert!(mean < 0.5, "mean Spearman {mean:.3}");
}

#[test]
fn the_sentence_names_the_top_features_and_the_move() {
    let policy = shipped();
    let w = Workload::load(root().join("../workloads/mixed-burst.toml")).unwrap();
    let params = sim_params(&root().join("../workloads/mixed-burst.toml"), &w).unwrap();
    let decisions = simulated_decisions(&policy, &w, &params, &[0], false).unwrap();
    let mut explainer = Explainer::new(&policy);
    let explained = explainer.explain_all(&decisions);
    assert!(
        explained.iter().any(|e| e.to > e.from),
        "no raise to explain"
    );
    for e in &explained {
        for f in &e.top {
            assert!(
                e.sentence.contains(&f.name),
                "{} lacks {}",
                e.sentence,
                f.name
            );
        }
        assert!(e.sentence.contains(&format!("`{}`", e.stage)));
        // The top feature is the one whose masking moves the decision most.
        let most = e.masking.iter().copied().fold(0.0f32, f32::max);
        assert_eq!(e.masking[e.top[0].feature], most);
        if e.to > e.from {
            assert!(
                e.sentence
                    .starts_with(&format!("raised `{}` {}→{}", e.stage, e.from, e.to))
            );
        }
    }
}

fn observation(rows: Vec<[f32; FEATURES]>) -> (Observation, Vec<StageChoice>) {
    let w = Workload::load(root().join("../workloads/wait-step.toml")).unwrap();
    let config = rheo_tuner::env::sim::initial_config(&w);
    let n = rows.len();
    let obs = Observation {
        stages: (0..n).map(|i| format!("s{i}")).collect(),
        rows,
        parallelism: vec![2; n],
        bounds: vec![(1, 8); n],
        ds2: rheo_tuner::tuners::Ds2Suggestion {
            raw: Default::default(),
            target_in: Default::default(),
            config,
            clamped: Vec::new(),
        },
    };
    // A sure policy: only the distance can make the stage fall back.
    let choices = (0..n)
        .map(|i| StageChoice {
            stage: format!("s{i}"),
            action: rheo_tuner::agent::actions::StageAction::KEEP,
            label: "keep".into(),
            p_parallelism: 1.0,
            p_buffer: 1.0,
            parallelism_probabilities: [1.0, 0.0, 0.0, 0.0, 0.0],
            buffer_probabilities: [0.0, 1.0, 0.0],
        })
        .collect();
    (obs, choices)
}

#[test]
fn the_out_of_distribution_fallback_fires_far_out_and_never_on_training_observations() {
    let policy = shipped();
    let fallback = Fallback::default();
    // Far out: every feature ten times past anything a ratio feature takes.
    let (obs, choices) = observation(vec![[40.0; FEATURES]]);
    let fell = fallback_stages(&policy, &obs, &choices, fallback);
    assert_eq!(fell.len(), 1);
    assert_eq!(fell[0].reason, "out of distribution");
    // Every observation of the training workloads on the training seeds, greedy and
    // exploring from random starts.
    let mut farthest = 0.0f64;
    let mut count = 0;
    for entry in std::fs::read_dir(root().join("../workloads")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let w = Workload::load(&path).unwrap();
        let params = sim_params(&path, &w).unwrap();
        let decisions = simulated_decisions(&policy, &w, &params, &TRAINING_SEEDS, true).unwrap();
        let rows: Vec<[f32; FEATURES]> = decisions.iter().map(|d| d.features()).collect();
        count += rows.len();
        for r in &rows {
            farthest = farthest.max(policy.stats.distance(r));
        }
        let (obs, choices) = observation(rows);
        let fell = fallback_stages(&policy, &obs, &choices, fallback);
        assert!(fell.is_empty(), "{}: {:?}", w.name, fell.first());
    }
    println!(
        "{count} training observations: farthest at {farthest:.2}, threshold {}",
        fallback.max_distance
    );
}

#[test]
fn the_uncertainty_fallback_pools_moves_that_lead_to_the_same_parallelism() {
    let policy = shipped();
    let fallback = Fallback::default();
    let mean: [f32; FEATURES] = std::array::from_fn(|i| policy.stats.mean[i] as f32);
    let (mut obs, mut choices) = observation(vec![mean]);
    // `lookup` runs 2 workers and DS2 suggests 1: `keep` and `ds2+1` both mean 2 workers.
    obs.stages = vec!["lookup".into()];
    obs.ds2.config.set_parallelism("lookup", 1);
    choices[0].stage = "lookup".into();
    choices[0].parallelism_probabilities = [0.45, 0.0, 0.10, 0.45, 0.0];
    let fell = fallback_stages(&policy, &obs, &choices, fallback);
    assert!(
        fell.is_empty(),
        "2 workers have p = 0.9: {:?}",
        fell.first()
    );
    // Split three ways between 2 workers (`keep`, the chosen move), 1 (`ds2`) and 3 (`ds2+2`),
    // the chosen one under the threshold: unsure, DS2 decides.
    let split = fallback.min_probability - 0.05;
    choices[0].parallelism_probabilities = [split, 0.0, split, 0.0, 1.0 - 2.0 * split];
    let fell = fallback_stages(&policy, &obs, &choices, fallback);
    assert_eq!(fell.len(), 1);
    assert_eq!(fell[0].reason, "uncertain");
    assert!((fell[0].probability - split).abs() < 1e-6);
}

#[test]
fn the_report_is_self_contained_and_has_every_section() {
    let path = root().join("../workloads/wait-step.toml");
    let w = Workload::load(&path).unwrap();
    let params = sim_params(&path, &w).unwrap();
    let policy = shipped();
    let mut agent = rheo_tuner::agent::Agent::new(
        policy.clone(),
        Default::default(),
        Default::default(),
        "models/policy.ckpt",
    );
    let mut env = rheo_tuner::env::SimEnv::new(&w, params, 1000);
    let mut epochs = Vec::new();
    let cx = context(&w);
    run(&mut env, &mut agent, &cx, None, |s, r| {
        epochs.push(LoggedEpoch {
            snapshot: s.clone(),
            record: r.clone(),
        })
    })
    .unwrap();
    let header = serde_json::json!({
        "workload": w.name, "tuner": "agent", "backend": "sim", "seed": 1000,
        "spec": path, "latency_slo_ms": cx.objective.latency_slo_ms,
        "settings": { "checkpoint": "models/policy.ckpt" },
    });
    let decisions = epoch_decisions(&epochs, &path).unwrap();
    let analysis = Analysis::of_run(&policy, &header, decisions, None).unwrap();
    let html = report::render(&header, &epochs, Some(&analysis)).unwrap();
    for external in [
        "http://", "https://", "<script", "<link", "src=", "url(", "@import",
    ] {
        assert!(!html.contains(external), "the report holds `{external}`");
    }
    for id in report::SECTIONS.iter().chain([&report::TREE_SECTION]) {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "no {id}");
    }
    assert!(html.matches("<svg").count() >= 7);
    assert!(html.contains("Fidelity on"));
    assert!(html.contains("raised `lookup`"));
}

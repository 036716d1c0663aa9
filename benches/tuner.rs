//! Tuner benchmarks (criterion).
//!
//! - `sim/epoch/<workload>`: one simulated epoch of a shipped workload (model, noise and the
//!   synthesized snapshot), so epochs per second = 1 / time.
//! - `ds2/decide`: one DS2 decision from a snapshot (suggestion, clamp, knobs).
//! - `agent/decide/<workload>`: one agent decision from a snapshot — feature extraction
//!   (DS2's suggestion included), the policy forward, masks, clamp and guardrails — with the
//!   shipped policy, or a fresh network of the same shape if none is shipped yet; the DS2
//!   fallback is on (its distance check included).
//! - `agent/decide-and-hand-off/<workload>`: the same with traces on, plus handing the
//!   decision's trace to the explainer thread (what explanations cost the decision thread).
//! - `explain/decision/<workload>`: explaining one whole decision (every stage): gradient
//!   saliency (one forward and one backward), masking and permutation importance (one
//!   forward over every perturbation), the runner-up and the sentence.
//!
//! Run: `cargo bench --bench tuner` (results in docs/benchmarks.md).

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use rheo::engine::MetricsSnapshot;
use rheo::tuner::agent::guard::{Controls, GuardConfig};
use rheo::tuner::agent::trace::DecisionTrace;
use rheo::tuner::agent::{Agent, Policy};
use rheo::tuner::env::{Environment, SimEnv, SimParams};
use rheo::tuner::explain::sample::simulated_decisions;
use rheo::tuner::explain::{Explainer, StageDecision};
use rheo::tuner::scoreboard::context;
use rheo::tuner::spec::Workload;
use rheo::tuner::tuners::{Ds2, Ds2Knobs, TuneContext, Tuner};

fn workload(name: &str) -> Workload {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("workloads")
        .join(format!("{name}.toml"));
    Workload::load(path).expect("shipped workload")
}

fn sim_epoch(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim/epoch");
    for name in ["wait-constant", "mixed-burst", "six-stage"] {
        let mut w = workload(name);
        // Long enough never to end inside the measurement.
        w.duration_s = 1e9;
        let params = SimParams::nominal(&w);
        let mut env = SimEnv::new(&w, params, 1);
        group.bench_function(name, |b| b.iter(|| env.observe().expect("simulated epoch")));
    }
    group.finish();
}

fn ds2_decide(c: &mut Criterion) {
    let (snapshot, cx) = first_epoch("six-stage");
    let mut ds2 = Ds2::new(Ds2Knobs {
        warmup_epochs: 0,
        activation: 1,
        ..Ds2Knobs::default()
    });
    c.bench_function("ds2/decide", |b| b.iter(|| ds2.decide(&snapshot, &cx)));
}

fn agent_decide(c: &mut Criterion) {
    let policy = shipped_policy();
    let mut group = c.benchmark_group("agent/decide");
    for name in ["wait-constant", "six-stage"] {
        let (snapshot, cx) = first_epoch(name);
        let mut agent = bench_agent(&policy);
        group.bench_function(name, |b| b.iter(|| agent.decide(&snapshot, &cx)));
    }
    group.finish();
}

fn agent_decide_and_hand_off(c: &mut Criterion) {
    let policy = shipped_policy();
    let mut group = c.benchmark_group("agent/decide-and-hand-off");
    for name in ["wait-constant", "six-stage"] {
        let (snapshot, cx) = first_epoch(name);
        let mut agent = bench_agent(&policy);
        // The explainer's side: a thread receiving the traces, here dropping them (explaining
        // every one of criterion's iterations would only grow the queue).
        let traces = agent.traces();
        let (tx, rx) = std::sync::mpsc::channel::<DecisionTrace>();
        let sink = std::thread::spawn(move || for _ in rx {});
        group.bench_function(name, |b| {
            b.iter(|| {
                let decision = agent.decide(&snapshot, &cx);
                if let Some(trace) = traces.take() {
                    let _ = tx.send(trace);
                }
                decision
            })
        });
        drop(tx);
        let _ = sink.join();
    }
    group.finish();
}

fn explain_decision(c: &mut Criterion) {
    let policy = shipped_policy();
    let mut group = c.benchmark_group("explain/decision");
    for name in ["wait-constant", "six-stage"] {
        let w = workload(name);
        let params = SimParams::nominal(&w);
        let decisions =
            simulated_decisions(&policy, &w, &params, &[1], false).expect("simulated decisions");
        let stages = w.stages.len();
        let one: Vec<StageDecision> = decisions.iter().take(stages).cloned().collect();
        let mut explainer =
            Explainer::new(&policy).with_background(decisions.iter().map(|d| d.features()));
        group.bench_function(name, |b| b.iter(|| explainer.explain_all(&one)));
    }
    group.finish();
}

/// The first simulated epoch of the workload `name`, and its context.
fn first_epoch(name: &str) -> (MetricsSnapshot, TuneContext) {
    let w = workload(name);
    let mut env = SimEnv::new(&w, SimParams::nominal(&w), 1);
    let snapshot = env.observe().expect("simulated epoch").expect("an epoch");
    (snapshot, context(&w))
}

/// An agent with `policy` and no cooldown, so every iteration decides.
fn bench_agent(policy: &Policy) -> Agent {
    Agent::new(
        policy.clone(),
        GuardConfig {
            cooldown_epochs: 0,
            ..GuardConfig::default()
        },
        Controls::default(),
        "bench",
    )
}

fn shipped_policy() -> Policy {
    let checkpoint = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/policy.ckpt");
    match Policy::load(&checkpoint) {
        Ok((policy, _)) => policy,
        Err(_) => Policy::untrained(),
    }
}

criterion_group!(
    benches,
    sim_epoch,
    ds2_decide,
    agent_decide,
    agent_decide_and_hand_off,
    explain_decision
);
criterion_main!(benches);

//! The autotuned demo: a shipped workload whose rate steps up and down runs on the real engine
//! under the shipped policy (`models/policy.ckpt`), printing a row per epoch with every
//! decision; then the same workload runs under tuned DS2 and under its static configuration,
//! and the three are compared side by side.
//!
//! Every decision is explained on a thread of its own while the job runs, and the run ends in
//! a self-contained HTML report (`autotune-report.html`, or the third argument): the run's
//! plots with decisions and DS2 fallbacks marked, each decision's sentence and top features,
//! importance over the run, a projection of the observations and the distilled tree.
//!
//! `cargo run --release --example autotune [-- WORKLOAD.toml [CHECKPOINT [REPORT.html]]]`

use std::path::PathBuf;

use rheo::harness::tuning::{EpochPrinter, print_comparison};
use rheo::tuner::agent::guard::{Controls, GuardConfig};
use rheo::tuner::agent::{Agent, Policy};
use rheo::tuner::env::EngineEnv;
use rheo::tuner::explain::runlog::LoggedEpoch;
use rheo::tuner::explain::{Analysis, LiveExplainer, report};
use rheo::tuner::run::run;
use rheo::tuner::scoreboard::{
    Backend, EVALUATION_SEEDS, agent_ds2_base, context, sim_params, tune_ds2,
};
use rheo::tuner::spec::Workload;
use rheo::tuner::tuners::{Ds2, Static, TuneContext, Tuner};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let spec = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "workloads/wait-step.toml".into()),
    );
    let checkpoint = PathBuf::from(args.next().unwrap_or_else(|| "models/policy.ckpt".into()));
    let report_path = PathBuf::from(args.next().unwrap_or_else(|| "autotune-report.html".into()));
    let workload = Workload::load(&spec)?;
    let params = sim_params(&spec, &workload)?;
    let seed = EVALUATION_SEEDS[0];
    let (policy, header) = Policy::load(&checkpoint)?;
    let cx = TuneContext {
        ds2_base: agent_ds2_base(&policy, &workload, &params)?,
        ..context(&workload)
    };
    println!(
        "{}: {} stages, rate {:?}, SLO p99 {} ms, thread budget {}; policy {} (trained on {} in {:.0} s, commit {})\n",
        workload.name,
        workload.stages.len(),
        workload.source.rate,
        cx.objective.latency_slo_ms,
        cx.bounds.max_threads,
        checkpoint.display(),
        header.workloads.join(", "),
        header.training_s,
        header.commit
    );
    let mut agent = Agent::new(
        policy,
        GuardConfig::default(),
        Controls::default(),
        &checkpoint.display().to_string(),
    );
    let header = serde_json::json!({
        "workload": workload.name,
        "spec": spec,
        "tuner": "agent",
        "settings": agent.settings(),
        "backend": "engine",
        "seed": seed,
        "epoch_s": workload.epoch_s,
        "latency_slo_ms": cx.objective.latency_slo_ms,
        "ds2_base": cx.ds2_base,
    });
    let explainer = LiveExplainer::start(agent.policy())?;
    let traces = agent.traces();
    let mut epochs = Vec::new();
    let printer = EpochPrinter::new(workload.stage_names());
    let mut env = EngineEnv::start(&workload, seed)?;
    let agent_run = run(&mut env, &mut agent, &cx, None, |s, r| {
        printer.row(s, r);
        // Applied: the decision's trace goes to the explainer thread.
        if let Some(trace) = traces.take() {
            explainer.send(trace);
        }
        epochs.push(LoggedEpoch {
            snapshot: s.clone(),
            record: r.clone(),
        });
    })?;
    // The explainer thread read the decisions from their traces as they came.
    let explained = explainer.finish();
    let analysis = Analysis::of_run(
        agent.policy(),
        &header,
        explained.decisions,
        Some(explained.explanations),
    )?;
    println!("\nwhy the agent changed what it changed:");
    for (d, e) in analysis.decisions.iter().zip(&analysis.explanations) {
        if d.changed() || e.fallback.is_some() {
            println!("  epoch {:>3}: {}", e.epoch, e.sentence);
        }
    }
    report::write(
        &report_path,
        &report::render(&header, &epochs, Some(&analysis))?,
    )?;

    println!("\nthe same workload under tuned DS2 and the static configuration…");
    let (knobs, _) = tune_ds2(&workload, &params, Backend::Sim)?;
    let mut env = EngineEnv::start(&workload, seed)?;
    let ds2_run = run(&mut env, &mut Ds2::new(knobs), &cx, None, |_, _| {})?;
    let mut env = EngineEnv::start(&workload, seed)?;
    let static_run = run(&mut env, &mut Static, &cx, None, |_, _| {})?;
    println!();
    print_comparison(
        &[&agent_run, &ds2_run, &static_run],
        cx.objective.latency_slo_ms,
    );
    if let Some(t) = &analysis.tree {
        println!(
            "\ndistilled tree (depth {}): fidelity {:.1}% overall, {:.1}% on moves",
            t.depth,
            t.fidelity * 100.0,
            t.fidelity_on_moves * 100.0
        );
    }
    println!("report: {}", report_path.display());
    println!(
        "\nDS2 knobs (tuned on the simulator): warm-up {}, activation {}, factor {}, catch-up {} s",
        knobs.warmup_epochs, knobs.activation, knobs.factor, knobs.catch_up_s
    );
    Ok(())
}

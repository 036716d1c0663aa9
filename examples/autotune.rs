//! The autotuned demo: a shipped workload whose rate steps up and down runs on the real engine
//! under the shipped policy (`models/policy.ckpt`), printing a row per epoch with every
//! decision; then the same workload runs under tuned DS2 and under its static configuration,
//! and the three are compared side by side.
//!
//! `cargo run --release --example autotune [-- WORKLOAD.toml [CHECKPOINT]]`

use std::path::PathBuf;

use rheo::harness::tuning::{EpochPrinter, print_comparison};
use rheo::tuner::agent::guard::{Controls, GuardConfig};
use rheo::tuner::agent::{Agent, Policy};
use rheo::tuner::env::EngineEnv;
use rheo::tuner::run::run;
use rheo::tuner::scoreboard::{Backend, EVALUATION_SEEDS, context, sim_params, tune_ds2};
use rheo::tuner::spec::Workload;
use rheo::tuner::tuners::{Ds2, Static};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let spec = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "workloads/wait-step.toml".into()),
    );
    let checkpoint = PathBuf::from(args.next().unwrap_or_else(|| "models/policy.ckpt".into()));
    let workload = Workload::load(&spec)?;
    let cx = context(&workload);
    let seed = EVALUATION_SEEDS[0];
    let (policy, header) = Policy::load(&checkpoint)?;
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
    let printer = EpochPrinter::new(workload.stage_names());
    let mut env = EngineEnv::start(&workload, seed)?;
    let agent_run = run(&mut env, &mut agent, &cx, None, |s, r| printer.row(s, r))?;

    println!("\nthe same workload under tuned DS2 and the static configuration…");
    let params = sim_params(&spec, &workload)?;
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
    println!(
        "\nDS2 knobs (tuned on the simulator): warm-up {}, activation {}, factor {}, catch-up {} s",
        knobs.warmup_epochs, knobs.activation, knobs.factor, knobs.catch_up_s
    );
    Ok(())
}

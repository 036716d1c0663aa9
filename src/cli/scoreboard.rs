//! `rheo scoreboard`: static, tuned DS2 and the oracle on each workload, over evaluation
//! seeds, on the simulator or the engine.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use rheo::tuner::agent::Policy;
use rheo::tuner::scoreboard::{
    Backend, EVALUATION_SEEDS, Row, TRAINING_SEEDS, TunerKind, agent_ds2_base, row, run_once,
    sim_params, tune_ds2,
};
use rheo::tuner::spec::Workload;
use rheo::tuner::tuners::Ds2Base;

/// Arguments of `rheo scoreboard`.
#[derive(clap::Args)]
pub struct Args {
    /// Workload specs (TOML).
    #[arg(long, num_args = 1.., required = true)]
    workload: Vec<PathBuf>,
    /// sim or engine.
    #[arg(long, default_value = "sim")]
    backend: String,
    /// Runs per tuner and workload (evaluation seeds).
    #[arg(long, default_value_t = 3)]
    seeds: usize,
    /// Run on the training seeds (those DS2 is tuned and policies are selected on) instead of
    /// the evaluation seeds: for choosing a setting without looking at the evaluation seeds.
    #[arg(long)]
    training_seeds: bool,
    /// Write the rows as a JSON list.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The agent's policy checkpoint; its rows appear when the file exists.
    #[arg(long, default_value = "models/policy.ckpt")]
    agent: PathBuf,
    /// Leave the agent out.
    #[arg(long)]
    no_agent: bool,
    /// The agent's DS2 fallback.
    #[command(flatten)]
    fallback: super::FallbackArgs,
    /// Only these tuners (comma-separated: static, ds2, oracle, agent).
    #[arg(long, value_delimiter = ',')]
    tuners: Option<Vec<String>>,
    /// The simulator's machine.
    #[command(flatten)]
    sim: super::SimArgs,
    /// How the engine reconfigures.
    #[command(flatten)]
    engine: super::EngineArgs,
}

/// Runs the scoreboard and prints its table.
pub fn run_scoreboard(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let backend = match args.backend.as_str() {
        "engine" => Backend::Engine,
        "sim" => Backend::Sim,
        other => {
            return Err(format!("--backend: unknown backend `{other}` (sim or engine)").into());
        }
    };
    let pool: &[u64] = if args.training_seeds {
        &TRAINING_SEEDS
    } else {
        &EVALUATION_SEEDS
    };
    if args.seeds == 0 || args.seeds > pool.len() {
        return Err(format!("--seeds: must be in 1..={}", pool.len()).into());
    }
    let seeds = &pool[..args.seeds];
    let workloads = args
        .workload
        .iter()
        .map(|p| {
            Workload::load(p).map(|mut w| {
                args.engine.apply(&mut w);
                (p.clone(), w)
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let wanted = |name: &str| {
        args.tuners
            .as_ref()
            .is_none_or(|t| t.iter().any(|x| x == name))
    };
    if let Some(t) = &args.tuners
        && let Some(bad) = t
            .iter()
            .find(|x| !["static", "ds2", "oracle", "agent"].contains(&x.as_str()))
    {
        return Err(format!("--tuners: unknown tuner `{bad}` (static, ds2, oracle, agent)").into());
    }
    let tuning_runs = if backend == Backend::Engine && wanted("ds2") {
        3
    } else {
        0
    };
    let with_agent = wanted("agent") && !args.no_agent && args.agent.exists();
    let agent_policy = if with_agent {
        Some(Policy::load(&args.agent)?.0)
    } else {
        None
    };
    let tuners = ["static", "ds2", "oracle"]
        .iter()
        .filter(|t| wanted(t))
        .count()
        + usize::from(with_agent);
    let total = workloads.len() * (tuners * seeds.len() + tuning_runs);
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} runs {msg} [{elapsed_precise}, eta {eta}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut rows: Vec<Row> = Vec::new();
    for (path, workload) in &workloads {
        let params = args.sim.apply(sim_params(path, workload)?);
        bar.set_message(format!("{}: tuning ds2", workload.name));
        let mut kinds = Vec::new();
        if wanted("static") {
            kinds.push(TunerKind::Static);
        }
        if wanted("ds2") {
            let (knobs, _) = tune_ds2(workload, &params, backend)?;
            bar.inc(tuning_runs as u64);
            kinds.push(TunerKind::Ds2(knobs));
        }
        if wanted("oracle") {
            kinds.push(TunerKind::Oracle);
        }
        if with_agent {
            // An agent trained on tuned DS2's suggestions runs on them here too: DS2 tuned on
            // the simulator, as in training (not the engine's pick, one noisy run each).
            let base = match &agent_policy {
                Some(policy) => agent_ds2_base(policy, workload, &params)?,
                None => Ds2Base::default(),
            };
            kinds.push(TunerKind::Agent {
                checkpoint: args.agent.display().to_string(),
                fallback: args.fallback.fallback(),
                tie_margin: args.fallback.ds2_tie_margin,
                base,
            });
        }
        for kind in kinds {
            bar.set_message(format!("{}: {}", workload.name, kind.label()));
            let mut runs = Vec::new();
            for seed in seeds {
                runs.push(run_once(workload, &params, backend, &kind, *seed)?);
                bar.inc(1);
            }
            rows.push(row(workload, backend, &kind, &runs));
        }
    }
    bar.finish_and_clear();
    print_table(&rows);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<14} {:<7} {:>7} {:>6} {:>9} {:>9} {:>8} {:>7} {:>7} {:>6} {:>5} {:>6}",
        "workload",
        "tuner",
        "obj",
        "±ci95",
        "thru/s",
        "target/s",
        "p99 ms",
        "threads",
        "reconf",
        "conv",
        "rmax",
        "slo-x"
    );
    for r in rows {
        println!(
            "{:<14} {:<7} {:>7.3} {:>6.3} {:>9.0} {:>9.0} {:>8.1} {:>7.2} {:>7.1} {:>6.1} {:>5} {:>6.1}",
            r.workload,
            r.tuner,
            r.objective,
            r.objective_ci95,
            r.throughput_eps,
            r.target_eps,
            r.p99_ms,
            r.mean_threads,
            r.reconfigurations,
            r.epochs_to_converge,
            r.reconfigs_to_converge_max,
            r.slo_violation_epochs
        );
    }
}

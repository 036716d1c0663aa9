//! `rheo tune`: one tuner on one workload, live on the engine (or on the simulator), with a
//! per-epoch table and an optional run log.

use std::path::PathBuf;

use super::control;

use rheo::engine::MetricsSnapshot;
use rheo::harness::tuning::EpochPrinter;
use rheo::tuner::agent::checkpoint::{CheckpointHeader, save};
use rheo::tuner::agent::guard::{Controls, GuardConfig};
use rheo::tuner::agent::ppo::PpoConfig;
use rheo::tuner::agent::{Agent, Policy};
use rheo::tuner::env::sim::initial_config;
use rheo::tuner::env::{EngineEnv, Environment, SimEnv};
use rheo::tuner::explain::runlog::LoggedEpoch;
use rheo::tuner::explain::{Analysis, LiveExplainer, report};
use rheo::tuner::run::{EpochRecord, RunLog, run};
use rheo::tuner::scoreboard::{Backend, agent_ds2_base, context, decision_budget_us, sim_params};
use rheo::tuner::spec::Workload;
use rheo::tuner::tuners::{Ds2, Ds2Base, Ds2Knobs, Oracle, Static, Tuner, plan_oracle};

/// Arguments of `rheo tune`.
#[derive(clap::Args)]
pub struct Args {
    /// Workload spec (TOML).
    #[arg(long)]
    workload: PathBuf,
    /// static, ds2, oracle or agent.
    #[arg(long, default_value = "ds2")]
    tuner: String,
    /// Stop after this many epochs (default: the workload's duration).
    #[arg(long)]
    epochs: Option<usize>,
    /// Write a run log (JSON lines: a header, then one line per epoch).
    #[arg(long)]
    run_log: Option<PathBuf>,
    /// Write the HTML report of the run (plots, and for the agent every decision explained).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Key seed (and simulator noise seed).
    #[arg(long, default_value_t = 1000)]
    seed: u64,
    /// engine or sim.
    #[arg(long, default_value = "engine")]
    backend: String,
    /// DS2: epochs to wait after a change.
    #[arg(long, default_value_t = 1)]
    ds2_warmup: usize,
    /// DS2: consecutive agreeing epochs before a change.
    #[arg(long, default_value_t = 1)]
    ds2_activation: usize,
    /// DS2: over-provisioning factor (default 0). For the agent, with `--ds2-catch-up`: the
    /// DS2 its moves are offsets from (default: DS2 tuned on the simulator for a policy trained
    /// on tuned DS2, else 0).
    #[arg(long)]
    ds2_factor: Option<f64>,
    /// DS2: seconds to work off backlog in (default 0: ignore backlog).
    #[arg(long)]
    ds2_catch_up: Option<f64>,
    /// Agent: the policy checkpoint.
    #[arg(long, default_value = "models/policy.ckpt")]
    checkpoint: PathBuf,
    /// Agent: only log what it would do (advisory, dry-run).
    #[arg(long)]
    advisory: bool,
    /// Agent: hold a stage at a parallelism (`stage=p`, repeatable).
    #[arg(long, value_parser = parse_pin)]
    pin: Vec<(String, usize)>,
    /// Agent: thread budget (default: the workload's).
    #[arg(long)]
    thread_budget: Option<usize>,
    /// Agent: learn online (sample moves, then fine-tune on the run's decisions).
    #[arg(long)]
    learn: bool,
    /// Agent with --learn: where to write the fine-tuned checkpoint.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Agent: epochs without a change after each change.
    #[arg(long, default_value_t = GuardConfig::default().cooldown_epochs)]
    cooldown: usize,
    /// Agent: keep a stage's parallelism within bounds (`stage=min..max`, repeatable).
    #[arg(long, value_parser = parse_limit)]
    limit: Vec<(String, (usize, usize))>,
    /// Agent: most microseconds a decision may take; a slower one is dropped (no change).
    /// Default: 1000 on the engine, none on the simulator (its epochs do not wait for a
    /// decision, and a budget would make its runs depend on how busy the machine is)
    #[arg(long)]
    decision_budget_us: Option<u64>,
    /// Agent: a lowering leaves the stage's workers busy at most this share of the time at
    /// the epoch's rates (lowered only that far, or held), unless DS2 suggests going as low;
    /// 0 turns the limit off.
    #[arg(long, default_value_t = GuardConfig::default().max_utilisation_after_lowering.unwrap_or(0.0))]
    max_utilisation_after_lowering: f64,
    /// Agent: the DS2 fallback.
    #[command(flatten)]
    fallback: super::FallbackArgs,
    /// Agent: read run-time controls from standard input, one per line: `budget N|off`,
    /// `advisory on|off`, `fixed` (hand control back to the starting configuration), `agent`.
    #[arg(long)]
    control: bool,
    /// The simulator's machine.
    #[command(flatten)]
    sim: super::SimArgs,
    /// How the engine reconfigures.
    #[command(flatten)]
    engine: super::EngineArgs,
}

fn parse_limit(s: &str) -> Result<(String, (usize, usize)), String> {
    let (stage, range) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected stage=min..max"))?;
    let (lo, hi) = range
        .split_once("..")
        .ok_or_else(|| format!("`{s}`: expected stage=min..max"))?;
    let parse = |v: &str| {
        v.parse::<usize>()
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| format!("`{s}`: bounds must be positive integers"))
    };
    let (lo, hi) = (parse(lo)?, parse(hi)?);
    if lo > hi {
        return Err(format!("`{s}`: min is above max"));
    }
    Ok((stage.to_owned(), (lo, hi)))
}

fn parse_pin(s: &str) -> Result<(String, usize), String> {
    let (stage, p) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected stage=parallelism"))?;
    let p: usize = p
        .parse()
        .map_err(|_| format!("`{s}`: parallelism must be a positive integer"))?;
    if p == 0 {
        return Err(format!("`{s}`: parallelism must be at least 1"));
    }
    Ok((stage.to_owned(), p))
}

/// Runs the tuner and prints a row per epoch.
pub fn run_tune(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut workload = Workload::load(&args.workload)?;
    args.engine.apply(&mut workload);
    if let Some(n) = args.epochs {
        workload.duration_s = workload.duration_s.min(n as f64 * workload.epoch_s);
    }
    let backend = match args.backend.as_str() {
        "engine" => Backend::Engine,
        "sim" => Backend::Sim,
        other => {
            return Err(format!("--backend: unknown backend `{other}` (engine or sim)").into());
        }
    };
    let params = args.sim.apply(sim_params(&args.workload, &workload)?);
    let mut cx = context(&workload);
    let mut agent: Option<Agent> = None;
    let mut agent_header: Option<CheckpointHeader> = None;
    let mut other: Option<Box<dyn Tuner>> = None;
    match args.tuner.as_str() {
        "static" => other = Some(Box::new(Static)),
        "ds2" => {
            other = Some(Box::new(Ds2::new(Ds2Knobs {
                warmup_epochs: args.ds2_warmup,
                activation: args.ds2_activation,
                factor: args.ds2_factor.unwrap_or(0.0),
                catch_up_s: args.ds2_catch_up.unwrap_or(0.0),
            })))
        }
        "oracle" => {
            other = Some(Box::new(Oracle::new(plan_oracle(
                &workload,
                params.clone(),
                &cx.bounds,
            ))))
        }
        "agent" => {
            let (built, header) = make_agent(&args, &workload, backend)?;
            cx.ds2_base = if args.ds2_factor.is_some() || args.ds2_catch_up.is_some() {
                Ds2Base {
                    factor: args.ds2_factor.unwrap_or(0.0),
                    catch_up_s: args.ds2_catch_up.unwrap_or(0.0),
                }
            } else {
                agent_ds2_base(built.policy(), &workload, &params)?
            };
            agent_header = Some(header);
            agent = Some(if args.learn {
                built.learning(args.seed)
            } else {
                built
            });
        }
        unknown => {
            return Err(format!(
                "--tuner: unknown tuner `{unknown}` (static, ds2, oracle or agent)"
            )
            .into());
        }
    }
    if args.learn && agent.is_none() {
        return Err("--learn: only the agent learns".into());
    }
    if args.control && agent.is_none() {
        return Err("--control: only the agent takes run-time controls".into());
    }
    // Explanations are computed on their own thread after each decision was applied; online
    // fine-tuning runs on that thread too, at the end of the run.
    let explainer = match (args.report.is_some() || args.learn, agent.as_mut()) {
        (true, Some(a)) => Some((
            LiveExplainer::start(a.policy())?,
            args.report.is_some().then(|| a.traces()),
        )),
        _ => None,
    };
    let tuner: &mut dyn Tuner = match (agent.as_mut(), other.as_mut()) {
        (Some(a), _) => a,
        (None, Some(b)) => b.as_mut(),
        (None, None) => return Err("no tuner".into()),
    };
    let mut env: Box<dyn Environment> = match backend {
        Backend::Engine => Box::new(EngineEnv::start(&workload, args.seed)?),
        Backend::Sim => Box::new(SimEnv::new(&workload, params, args.seed)),
    };
    let header = serde_json::json!({
        "workload": workload.name,
        "spec": args.workload,
        "tuner": tuner.name(),
        "settings": tuner.settings(),
        "backend": backend.to_string(),
        "seed": args.seed,
        "epoch_s": workload.epoch_s,
        "latency_slo_ms": cx.objective.latency_slo_ms,
        "ds2_base": cx.ds2_base,
    });
    let mut log = match &args.run_log {
        Some(path) => Some(RunLog::create(path, &header)?),
        None => None,
    };
    let mut kept: Vec<LoggedEpoch> = Vec::new();
    let printer = EpochPrinter::new(workload.stage_names());
    let print = |snapshot: &MetricsSnapshot, record: &EpochRecord| {
        printer.row(snapshot, record);
        // The decision has been applied: its trace goes to the explainer thread.
        if let Some((x, Some(traces))) = &explainer
            && let Some(trace) = traces.take()
        {
            x.send(trace);
        }
        if args.report.is_some() {
            kept.push(LoggedEpoch {
                snapshot: snapshot.clone(),
                record: record.clone(),
            });
        }
    };
    let result = run(env.as_mut(), tuner, &cx, log.as_mut(), print)?;
    println!(
        "\n{} on {} ({}): objective {:.3} over {} epochs",
        result.tuner,
        workload.name,
        result.backend,
        result.objective,
        result.epochs.len()
    );
    let cfg = PpoConfig::default();
    let (explained, fine_tuned) = match (explainer, agent.as_mut()) {
        (Some((x, _)), Some(a)) if args.learn => {
            let (experience, _) = a.take_experience();
            let decisions = experience.len();
            let (explained, fine_tuned) = x.fine_tune_and_finish(experience, &cfg);
            (Some(explained), Some((fine_tuned, decisions)))
        }
        (Some((x, _)), _) => (Some(x.finish()), None),
        (None, _) => (None, None),
    };
    if let Some(path) = &args.report {
        // With a report the agent's run had the explainer thread, which read the decisions
        // from their traces already.
        let analysis = match (agent.as_ref(), explained) {
            (Some(a), Some(x)) => Some(Analysis::of_run(
                a.policy(),
                &header,
                x.decisions,
                Some(x.explanations),
            )?),
            _ => None,
        };
        report::write(path, &report::render(&header, &kept, analysis.as_ref())?)?;
        super::explain::print_summary(analysis.as_ref());
        println!("wrote {}", path.display());
    }
    if let (Some((fine_tuned, decisions)), Some(agent), Some(original)) =
        (fine_tuned, agent.as_ref(), agent_header)
    {
        let save_to = args
            .save
            .clone()
            .unwrap_or_else(|| args.checkpoint.with_extension("tuned.ckpt"));
        let (net, losses) = fine_tuned?;
        let policy = agent.policy();
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        let mut header = CheckpointHeader::new(
            policy.stats.clone(),
            args.seed,
            command,
            original.training_s,
        );
        header.workloads = original.workloads;
        header
            .workloads
            .push(format!("{} (online, {})", workload.name, result.backend));
        save(&save_to, &net, &header)?;
        println!(
            "fine-tuned on {} decisions (policy loss {:.3}, value loss {:.3}); wrote {}",
            decisions,
            losses.0,
            losses.1,
            save_to.display()
        );
    }
    Ok(())
}

/// The agent `args` ask for on `backend`, and its checkpoint's header.
fn make_agent(
    args: &Args,
    workload: &Workload,
    backend: Backend,
) -> Result<(Agent, CheckpointHeader), Box<dyn std::error::Error>> {
    let (policy, header) = Policy::load(&args.checkpoint)?;
    for (flag, stage) in args
        .pin
        .iter()
        .map(|(s, _)| ("--pin", s))
        .chain(args.limit.iter().map(|(s, _)| ("--limit", s)))
    {
        if !workload.stage_names().contains(stage) {
            return Err(format!("{flag} {stage}: no such stage in {}", workload.name).into());
        }
    }
    let guard = GuardConfig {
        cooldown_epochs: args.cooldown,
        pins: args.pin.iter().cloned().collect(),
        limits: args.limit.iter().cloned().collect(),
        decision_budget_us: args
            .decision_budget_us
            .unwrap_or(decision_budget_us(backend)),
        fallback: args.fallback.fallback(),
        ds2_tie_margin: args.fallback.ds2_tie_margin,
        max_utilisation_after_lowering: (args.max_utilisation_after_lowering > 0.0)
            .then_some(args.max_utilisation_after_lowering),
        ..GuardConfig::default()
    };
    let controls = Controls::default();
    controls.set_advisory(args.advisory);
    if let Some(budget) = args.thread_budget {
        controls.set_thread_budget(budget);
    }
    if args.control {
        control::spawn(controls.clone(), initial_config(workload))?;
    }
    let agent = Agent::new(
        policy,
        guard,
        controls,
        &args.checkpoint.display().to_string(),
    );
    Ok((agent, header))
}

//! The scoreboard (design.md §5): every tuner on every workload, on the simulator or the
//! engine, over evaluation seeds, reported with the same objective and convergence rule.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::action::Bounds;
use crate::agent::guard::{Controls, Fallback, GuardConfig};
use crate::agent::{Agent, Policy};
use crate::env::{EngineEnv, EnvError, Environment, SimEnv, SimParams};
use crate::run::{RunResult, run};
use crate::spec::Workload;
use crate::tuners::{Ds2, Ds2Base, Ds2Knobs, Oracle, Static, TuneContext, Tuner, plan_oracle};

/// Seeds runs are scored with; training and tuning use [`TRAINING_SEEDS`].
pub const EVALUATION_SEEDS: [u64; 5] = [1_000, 1_001, 1_002, 1_003, 1_004];
/// Seeds for training and for tuning DS2's knobs.
pub const TRAINING_SEEDS: [u64; 3] = [0, 1, 2];

/// Where a run happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The calibrated simulator.
    Sim,
    /// The live engine.
    Engine,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sim => "sim",
            Backend::Engine => "engine",
        })
    }
}

/// Which tuner a row is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "tuner", rename_all = "lowercase")]
pub enum TunerKind {
    /// The initial configuration.
    Static,
    /// DS2 with these knobs.
    Ds2(Ds2Knobs),
    /// The oracle's schedule, planned on the simulator.
    Oracle,
    /// The RL agent with the policy in this checkpoint.
    Agent {
        /// The checkpoint file.
        checkpoint: String,
        /// The DS2 fallback's thresholds (`None`: off).
        fallback: Option<Fallback>,
        /// The DS2 its moves are offsets from.
        #[serde(default)]
        base: Ds2Base,
        /// How much more probable than DS2's suggestion another move must be for the agent
        /// to take it ([`GuardConfig::ds2_tie_margin`]).
        #[serde(default = "crate::agent::guard::default_ds2_tie_margin")]
        tie_margin: f32,
    },
}

impl TunerKind {
    /// The row label.
    pub fn label(&self) -> &'static str {
        match self {
            TunerKind::Static => "static",
            TunerKind::Ds2(_) => "ds2",
            TunerKind::Oracle => "oracle",
            TunerKind::Agent { .. } => "agent",
        }
    }
}

/// One row of the scoreboard: a tuner on a workload, averaged over its runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Workload name.
    pub workload: String,
    /// `sim` or `engine`.
    pub backend: String,
    /// `static`, `ds2`, `oracle` (and `agent` once it exists).
    pub tuner: String,
    /// Runs averaged.
    pub runs: usize,
    /// Mean run objective.
    pub objective: f64,
    /// Half-width of the 95 % confidence interval of the objective.
    pub objective_ci95: f64,
    /// Mean events emitted per second.
    pub throughput_eps: f64,
    /// Mean events offered per second.
    pub target_eps: f64,
    /// Mean per-epoch p99 latency, ms.
    pub p99_ms: f64,
    /// Mean threads over the workload's stages.
    pub mean_threads: f64,
    /// Mean configuration changes per run.
    pub reconfigurations: f64,
    /// Mean epochs from a rate change to convergence.
    pub epochs_to_converge: f64,
    /// Most changes between a rate change and convergence, over all changes and runs.
    pub reconfigs_to_converge_max: usize,
    /// Mean epochs per run with p99 over the SLO.
    pub slo_violation_epochs: f64,
    /// Share of epochs whose applied configuration differs from the tuner's proposal.
    pub fallback_share: f64,
    /// Peak resident memory of the process, MB.
    pub peak_rss_mb: f64,
    /// The tuner's settings (DS2's chosen knobs).
    pub settings: serde_json::Value,
}

/// The calibration file of a workload spec: `calibration/<name>.json` beside the spec's
/// directory of workloads.
pub fn calibration_path(spec: &Path, workload: &Workload) -> PathBuf {
    let dir = spec.parent().unwrap_or(Path::new("."));
    let root = if dir.file_name().is_some_and(|n| n == "held_out") {
        dir.parent().unwrap_or(dir)
    } else {
        dir
    };
    root.join("calibration")
        .join(format!("{}.json", workload.name))
}

/// The simulator constants for a workload: its calibration file if there is one, else nominal.
pub fn sim_params(spec: &Path, workload: &Workload) -> Result<SimParams, EnvError> {
    let path = calibration_path(spec, workload);
    if path.exists() {
        SimParams::load(path)
    } else {
        Ok(SimParams::nominal(workload))
    }
}

/// The tuning context of a workload.
pub fn context(workload: &Workload) -> TuneContext {
    TuneContext {
        objective: workload.objective(),
        bounds: Bounds::from_workload(workload),
        ds2_base: Ds2Base::default(),
    }
}

/// The DS2 an agent running `policy` on `workload` takes its moves from: DS2 tuned on the
/// simulator (as in its training) for a policy trained so, else DS2 without over-provisioning
/// or catch-up.
pub fn agent_ds2_base(
    policy: &Policy,
    workload: &Workload,
    params: &SimParams,
) -> Result<Ds2Base, EnvError> {
    Ok(if policy.tuned_ds2_base {
        tune_ds2(workload, params, Backend::Sim)?.0.into()
    } else {
        Ds2Base::default()
    })
}

/// The agent's decision budget on `backend`: the live loop's on the engine; none on the
/// simulator, whose epochs do not wait for a decision, so that its rows do not depend on how
/// busy the machine was (a decision dropped over budget would change the run).
pub fn decision_budget_us(backend: Backend) -> u64 {
    match backend {
        Backend::Engine => GuardConfig::default().decision_budget_us,
        Backend::Sim => u64::MAX,
    }
}

/// One run of `kind` on `workload`.
pub fn run_once(
    workload: &Workload,
    params: &SimParams,
    backend: Backend,
    kind: &TunerKind,
    seed: u64,
) -> Result<RunResult, EnvError> {
    let mut cx = context(workload);
    if let TunerKind::Agent { base, .. } = kind {
        cx.ds2_base = *base;
    }
    let mut tuner: Box<dyn Tuner> = match kind {
        TunerKind::Static => Box::new(Static),
        TunerKind::Ds2(knobs) => Box::new(Ds2::new(*knobs)),
        TunerKind::Oracle => Box::new(Oracle::new(plan_oracle(
            workload,
            params.clone(),
            &cx.bounds,
        ))),
        TunerKind::Agent {
            checkpoint,
            fallback,
            tie_margin,
            ..
        } => {
            let (policy, _) = Policy::load(Path::new(checkpoint))?;
            Box::new(Agent::new(
                policy,
                GuardConfig {
                    fallback: *fallback,
                    ds2_tie_margin: *tie_margin,
                    decision_budget_us: decision_budget_us(backend),
                    ..GuardConfig::default()
                },
                Controls::default(),
                checkpoint,
            ))
        }
    };
    let mut env: Box<dyn Environment> = match backend {
        Backend::Sim => Box::new(SimEnv::new(workload, params.clone(), seed)),
        Backend::Engine => Box::new(EngineEnv::start(workload, seed)?),
    };
    run(env.as_mut(), tuner.as_mut(), &cx, None, |_, _| {})
}

/// DS2's knobs for `workload`: the best of the grid on the simulator over the training seeds;
/// on the engine, the best of the simulator's three best, run once on the engine with one
/// training seed. Returns the knobs and, per candidate tried last, its objective.
pub fn tune_ds2(
    workload: &Workload,
    params: &SimParams,
    backend: Backend,
) -> Result<(Ds2Knobs, Vec<(Ds2Knobs, f64)>), EnvError> {
    let mut scored = Vec::new();
    for knobs in Ds2Knobs::grid() {
        let mut total = 0.0;
        for seed in TRAINING_SEEDS {
            total +=
                run_once(workload, params, Backend::Sim, &TunerKind::Ds2(knobs), seed)?.objective;
        }
        scored.push((knobs, total / TRAINING_SEEDS.len() as f64));
    }
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    if backend == Backend::Sim {
        return Ok((scored[0].0, scored));
    }
    let mut on_engine = Vec::new();
    for (knobs, _) in scored.iter().take(3) {
        let r = run_once(
            workload,
            params,
            Backend::Engine,
            &TunerKind::Ds2(*knobs),
            TRAINING_SEEDS[0],
        )?;
        on_engine.push((*knobs, r.objective));
    }
    on_engine.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok((on_engine[0].0, on_engine))
}

/// Peak resident memory of this process, MB.
pub fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Aggregates the runs of one tuner on one workload into a row.
pub fn row(workload: &Workload, backend: Backend, kind: &TunerKind, runs: &[RunResult]) -> Row {
    let n = runs.len().max(1) as f64;
    let objectives: Vec<f64> = runs.iter().map(|r| r.objective).collect();
    let mean_obj = objectives.iter().sum::<f64>() / n;
    let var = if runs.len() > 1 {
        objectives
            .iter()
            .map(|o| (o - mean_obj).powi(2))
            .sum::<f64>()
            / (n - 1.0)
    } else {
        0.0
    };
    let per_epoch = |f: &dyn Fn(&crate::run::EpochRecord) -> f64| {
        let all: Vec<f64> = runs.iter().flat_map(|r| r.epochs.iter().map(f)).collect();
        if all.is_empty() {
            0.0
        } else {
            all.iter().sum::<f64>() / all.len() as f64
        }
    };
    let per_run = |f: &dyn Fn(&RunResult) -> f64| runs.iter().map(f).sum::<f64>() / n;
    let changes = workload.source.rate.change_points(workload.duration_s);
    let slo = workload.objective.latency_slo_ms;
    let conv: Vec<_> = runs
        .iter()
        .map(|r| r.convergence(workload.epoch_s, &changes, slo))
        .collect();
    let phases: Vec<usize> = conv
        .iter()
        .flat_map(|c| c.epochs_to_converge.iter().copied())
        .collect();
    Row {
        workload: workload.name.clone(),
        backend: backend.to_string(),
        tuner: kind.label().to_owned(),
        runs: runs.len(),
        objective: mean_obj,
        objective_ci95: 1.96 * var.sqrt() / n.sqrt(),
        throughput_eps: per_epoch(&|e| e.throughput),
        target_eps: per_epoch(&|e| e.offered_rate),
        p99_ms: per_epoch(&|e| e.p99_ms),
        mean_threads: per_epoch(&|e| e.score.threads as f64),
        reconfigurations: per_run(&|r| r.reconfigurations() as f64),
        epochs_to_converge: if phases.is_empty() {
            0.0
        } else {
            phases.iter().sum::<usize>() as f64 / phases.len() as f64
        },
        reconfigs_to_converge_max: conv.iter().map(|c| c.max_reconfigs()).max().unwrap_or(0),
        slo_violation_epochs: per_run(&|r| {
            r.epochs.iter().filter(|e| e.p99_ms > slo).count() as f64
        }),
        fallback_share: per_epoch(&|e| f64::from(u8::from(e.fallback))),
        peak_rss_mb: peak_rss_mb(),
        settings: settings(kind, runs),
    }
}

/// The settings a row reports: the tuner's own, and an agent's DS2 base where it is not DS2's
/// default.
fn settings(kind: &TunerKind, runs: &[RunResult]) -> serde_json::Value {
    let mut settings = runs.first().map(|r| r.settings.clone()).unwrap_or_default();
    if let (TunerKind::Agent { base, .. }, Some(map)) = (kind, settings.as_object_mut())
        && *base != Ds2Base::default()
    {
        map.insert("ds2_base".into(), serde_json::json!(base));
    }
    settings
}

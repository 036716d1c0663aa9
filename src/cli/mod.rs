//! One module per subcommand.

pub mod calibrate;
pub mod control;
pub mod distill;
pub mod explain;
pub mod metrics;
pub mod nexmark;
pub mod scoreboard;
pub mod train;
pub mod tune;

use rheo::tuner::agent::guard::{Fallback, GuardConfig};

/// The agent's DS2 fallback and its near-tie rule, as `tune` and `scoreboard` take them.
#[derive(clap::Args, Debug, Clone)]
pub struct FallbackArgs {
    /// Agent: never fall back to DS2's suggestion.
    #[arg(long)]
    no_fallback: bool,
    /// Agent: fall back to DS2 on a stage when the parallelism its chosen move leads to has
    /// less than this probability (moves with the same outcome pooled)
    #[arg(long, default_value_t = Fallback::default().min_probability)]
    fallback_probability: f32,
    /// Agent: fall back to DS2 on a stage whose observation lies further than this from the
    /// training statistics (root-mean-square of standardised features).
    #[arg(long, default_value_t = Fallback::default().max_distance)]
    fallback_distance: f64,
    /// Agent: take another parallelism than DS2's suggestion only when the policy gives it
    /// this much more probability (near-ties go to DS2; the move stays the policy's own)
    #[arg(long, default_value_t = GuardConfig::default().ds2_tie_margin, value_parser = parse_tie_margin)]
    pub ds2_tie_margin: f32,
}

fn parse_tie_margin(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(m) if (0.0..=1.0).contains(&m) => Ok(m),
        Ok(m) => Err(format!("{m}: a probability margin, between 0 and 1")),
        Err(e) => Err(format!("`{s}`: {e}")),
    }
}

/// How reconfigurations are applied (on the engine, and as the simulator prices them), shared
/// by `rheo scoreboard`, `rheo tune` and `rheo train`.
#[derive(clap::Args, Debug, Clone)]
pub struct EngineArgs {
    /// What a reconfiguration does with queued records — `drain` (the old configuration
    /// processes them first) or `hand-over` (they go to the new one), on the engine and in the
    /// simulator; default: the workload's `rescale`, drain unless it says
    #[arg(long, value_parser = parse_rescale)]
    rescale: Option<rheo::engine::Rescale>,
}

impl EngineArgs {
    /// Applies the choice, if any, to `workload`.
    pub fn apply(&self, workload: &mut rheo::tuner::spec::Workload) {
        if let Some(r) = self.rescale {
            workload.rescale = r;
        }
    }
}

fn parse_rescale(s: &str) -> Result<rheo::engine::Rescale, String> {
    match s {
        "drain" => Ok(rheo::engine::Rescale::Drain),
        "hand-over" => Ok(rheo::engine::Rescale::HandOver),
        other => Err(format!("`{other}`: expected drain or hand-over")),
    }
}

/// The simulator's machine, shared by `rheo scoreboard` and `rheo tune`.
#[derive(clap::Args, Debug, Clone)]
pub struct SimArgs {
    /// Simulator: model a machine with this many cores instead of the workload's calibration
    /// (or, uncalibrated, this machine); on the engine backend it applies to what the simulator
    /// plans for the engine (the oracle's schedule, DS2's candidate knobs).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    sim_cores: Option<u16>,
}

impl SimArgs {
    /// `params` with the core count asked for, if any.
    pub fn apply(&self, mut params: rheo::tuner::env::SimParams) -> rheo::tuner::env::SimParams {
        if let Some(cores) = self.sim_cores {
            params.cores = f64::from(cores);
        }
        params
    }
}

impl FallbackArgs {
    /// The fallback asked for (`None`: off).
    pub fn fallback(&self) -> Option<Fallback> {
        (!self.no_fallback).then_some(Fallback {
            min_probability: self.fallback_probability,
            max_distance: self.fallback_distance,
        })
    }
}

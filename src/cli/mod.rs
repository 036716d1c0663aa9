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

use rheo::tuner::agent::guard::Fallback;

/// The agent's DS2 fallback, as `tune` and `scoreboard` take it.
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

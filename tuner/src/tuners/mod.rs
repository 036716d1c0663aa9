//! Tuners: a snapshot in, a configuration out, once per epoch.

mod ds2;
mod oracle;
mod static_config;

use rheo_engine::{JobConfig, MetricsSnapshot};
use serde::{Deserialize, Serialize};

use crate::action::Bounds;
use crate::objective::Objective;

pub use ds2::{Ds2, Ds2Base, Ds2Knobs, Ds2Suggestion, ds2_suggestion};
pub use oracle::{Oracle, plan_oracle};
pub use static_config::Static;

/// What a tuner may know besides the snapshots: the objective, the bounds, and the DS2 the
/// operator runs.
#[derive(Debug, Clone)]
pub struct TuneContext {
    /// The objective (SLO, thread budget, the stages that count).
    pub objective: Objective,
    /// Parallelism bounds and budgets.
    pub bounds: Bounds,
    /// The DS2 whose suggestion the agent's moves are offsets from and its fallback applies
    /// (DS2 without over-provisioning or catch-up unless the operator set them).
    pub ds2_base: Ds2Base,
}

/// A tuner's decision for the next epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The configuration to run next (the current one for "no change").
    pub config: JobConfig,
    /// One line for people.
    pub reason: String,
    /// The tuner's own record of the decision (suggestions, knobs state, ...).
    pub detail: serde_json::Value,
}

/// Decides a configuration per epoch from the epoch's snapshot.
pub trait Tuner: Send {
    /// Short name (`static`, `ds2`, `oracle`, ...).
    fn name(&self) -> &str;
    /// The tuner's settings, for run logs and reports.
    fn settings(&self) -> serde_json::Value;
    /// The configuration for the next epoch, given the snapshot of the one that ended.
    fn decide(&mut self, snapshot: &MetricsSnapshot, cx: &TuneContext) -> Decision;
}

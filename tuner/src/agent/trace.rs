//! What a decision leaves for its explanation: a typed trace, handed from the decision thread to
//! the explainer after the decision was applied, through a one-slot mailbox (no JSON, no copy of
//! the run-log detail on the decision path).

use std::sync::Arc;

use parking_lot::Mutex;

use super::actions::StageAction;
use super::features::FEATURES;
use super::policy::{BUFFER_ACTIONS, PARALLELISM_ACTIONS};

/// One agent decision, as explanations need it: a handful of flat vectors (per tunable stage,
/// in order), so handing it to another thread costs a few allocations, not a copy of the
/// run-log detail.
#[derive(Debug, Clone)]
pub struct DecisionTrace {
    /// The epoch the decision followed.
    pub epoch: u64,
    /// The tunable stages (shared by every trace of a run).
    pub stages: Arc<[String]>,
    /// Raw feature rows.
    pub rows: Vec<[f32; FEATURES]>,
    /// The policy's moves.
    pub actions: Vec<StageAction>,
    /// Every parallelism move's probability (0 where masked).
    pub parallelism_probabilities: Vec<[f32; PARALLELISM_ACTIONS]>,
    /// Every buffer move's probability (0 where masked).
    pub buffer_probabilities: Vec<[f32; BUFFER_ACTIONS]>,
    /// Parallelism before the decision and applied.
    pub parallelism: Vec<(usize, usize)>,
    /// Input buffer (batches) before and applied.
    pub buffers: Vec<(usize, usize)>,
    /// DS2's suggested parallelism.
    pub ds2: Vec<Option<usize>>,
    /// The stages the DS2 fallback took (index) and why.
    pub fallbacks: Vec<(usize, &'static str)>,
    /// The guardrail that changed the decision, if any.
    pub guardrail: Option<String>,
}

/// The mailbox holding the latest trace; the agent fills it, the run loop empties it after
/// applying the decision. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct TraceSlot(Arc<Mutex<Option<DecisionTrace>>>);

impl TraceSlot {
    /// Leaves `trace` (replacing one nobody took).
    pub fn put(&self, trace: DecisionTrace) {
        *self.0.lock() = Some(trace);
    }

    /// Takes the latest trace, if any.
    pub fn take(&self) -> Option<DecisionTrace> {
        self.0.lock().take()
    }
}

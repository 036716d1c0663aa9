//! Everything explained about one run: per-decision explanations, the distilled tree, the
//! projection and the importance over the run.

use serde::Serialize;

use super::importance::FeatureImportance;
use super::tree::{DistilledTree, TreeInputs, choose_move_weight, distill, effective_action};
use super::{ExplainError, Explainer, Explanation, StageDecision, aggregate_importance};
use crate::agent::Policy;
use crate::agent::features::FEATURES;

/// Depth of the distilled tree in reports.
pub const TREE_DEPTH: usize = 5;
/// Weight of a move (a decision that changes its stage) when fitting the tree, where there are
/// too few decisions to choose one by validation ([`choose_move_weight`]).
pub const MOVE_WEIGHT: f32 = 6.0;

/// Simulator seeds (0..N, never an evaluation seed) whose runs of the workload a report's tree
/// is fitted on beside the run's own decisions: one run gives a few hundred decisions, too few
/// for the rare moves (under a second of sampling for the shipped workloads; 100 or 200 seeds
/// gave wait-step's tree the same fidelity as 40).
pub const REPORT_FIT_SEEDS: u64 = 40;

/// One run, explained.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// Every stage decision of the run.
    pub decisions: Vec<StageDecision>,
    /// One explanation per decision.
    pub explanations: Vec<Explanation>,
    /// Importance per feature over the run.
    pub importance: Vec<FeatureImportance>,
    /// The distilled tree (`None` without decisions).
    pub tree: Option<DistilledTree>,
    /// Each decision on the first two principal components, with its effective move.
    pub projection: Vec<(f64, f64, usize)>,
    /// Variance share of the two components.
    pub projection_share: [f64; 2],
}

impl Analysis {
    /// Explains `decisions` of a run under `policy` (or takes `explanations` computed while it
    /// ran), and distils a tree from the run's decisions and `simulated` ones: fitted on the
    /// run's even epochs and `simulated.0`, measured on its odd epochs and `simulated.1`, its
    /// move weight chosen by fitting on `simulated.0` and scoring on the run's even epochs.
    pub fn new(
        policy: &Policy,
        decisions: Vec<StageDecision>,
        explanations: Option<Vec<Explanation>>,
        simulated: (Vec<StageDecision>, Vec<StageDecision>),
    ) -> Result<Analysis, ExplainError> {
        let explanations = match explanations {
            Some(e) if e.len() == decisions.len() => e,
            _ => {
                let mut explainer =
                    Explainer::new(policy).with_background(decisions.iter().map(|d| d.features()));
                explainer.explain_all(&decisions)
            }
        };
        let (mut fit, mut held_out) = simulated;
        // The move weight is chosen by fitting on the simulated runs and scoring on this run's
        // fitted (even) epochs; the measured (odd) epochs stay out of it.
        let (run_fit, run_held_out): (Vec<StageDecision>, Vec<StageDecision>) =
            decisions.iter().cloned().partition(|d| d.epoch % 2 == 0);
        let (weight, _) = choose_move_weight(
            &fit,
            &run_fit,
            TREE_DEPTH,
            MOVE_WEIGHT,
            TreeInputs::default(),
        )?;
        fit.extend(run_fit);
        held_out.extend(run_held_out);
        let tree = if fit.is_empty() {
            None
        } else {
            Some(distill(
                &fit,
                &held_out,
                TREE_DEPTH,
                weight,
                TreeInputs::default(),
            )?)
        };
        let rows: Vec<[f32; FEATURES]> = decisions
            .iter()
            .map(|d| policy.stats.normalise(&d.features()))
            .collect();
        let (points, projection_share) = super::projection::principal_components(&rows);
        let projection = points
            .into_iter()
            .zip(&decisions)
            .map(|((x, y), d)| (x, y, effective_action(d)))
            .collect();
        Ok(Analysis {
            importance: aggregate_importance(&explanations),
            decisions,
            explanations,
            tree,
            projection,
            projection_share,
        })
    }
}

impl Analysis {
    /// Explains a run of the agent from its `decisions` (see
    /// [`epoch_decisions`](super::runlog::epoch_decisions)), and a tree fitted on them together
    /// with simulated decisions of the run's workload (the spec named in the run's header, when
    /// it can be read: [`REPORT_FIT_SEEDS`] to fit, evaluation seeds held out).
    pub fn of_run(
        policy: &Policy,
        header: &serde_json::Value,
        decisions: Vec<StageDecision>,
        explanations: Option<Vec<Explanation>>,
    ) -> Result<Analysis, ExplainError> {
        let simulated = match header["spec"].as_str().map(std::path::Path::new) {
            Some(spec) if spec.exists() => {
                let workload = crate::spec::Workload::load(spec)
                    .map_err(|e| ExplainError::Tree(e.to_string()))?;
                let params = crate::scoreboard::sim_params(spec, &workload)?;
                let sample = |seeds: &[u64]| {
                    super::sample::simulated_decisions(policy, &workload, &params, seeds, true)
                };
                let fit_seeds: Vec<u64> = (0..REPORT_FIT_SEEDS).collect();
                (
                    sample(&fit_seeds)?,
                    sample(&crate::scoreboard::EVALUATION_SEEDS[3..])?,
                )
            }
            _ => (Vec::new(), Vec::new()),
        };
        Analysis::new(policy, decisions, explanations, simulated)
    }
}

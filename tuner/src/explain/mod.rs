//! Why the agent did what it did.
//!
//! Per decision ([`Explainer`]): the top features by gradient saliency (input gradients through
//! the Burn policy), by masking and by permutation importance (a feature replaced by its
//! training mean, or by values other decisions saw, and the change in the action's
//! probabilities measured — the black-box audit), the action's probability and the runner-up,
//! DS2's suggestion and whether the agent agreed, and a one-line sentence. Globally: a shallow
//! decision tree distilled from the policy with its fidelity on held-out observations
//! ([`tree`]), a 2-D projection of observations coloured by action ([`projection`]), and
//! importance aggregated over a run. [`report`] puts all of it, with plots of the run, into one
//! self-contained HTML file.
//!
//! Everything here runs after a decision was applied, from what the run log recorded — never
//! on the decision path.
//!
//! ```
//! use rheo_tuner::agent::Policy;
//! use rheo_tuner::agent::features::FEATURES;
//! use rheo_tuner::explain::{Explainer, StageDecision};
//!
//! let mut explainer = Explainer::new(&Policy::untrained());
//! let decision = StageDecision::example("enrich", [0.5; FEATURES]);
//! let why = explainer.explain(&decision);
//! assert_eq!(why.saliency.len(), FEATURES);
//! assert!(why.sentence.contains("enrich"));
//! ```

mod analysis;
mod decision;
mod error;
mod importance;
mod live;
mod plots;
pub mod projection;
pub mod report;
pub mod runlog;
pub mod sample;
mod sentence;
pub mod tree;

pub use analysis::{Analysis, MOVE_WEIGHT, TREE_DEPTH};
pub use decision::{Explainer, Explanation, RankedFeature, StageDecision};
pub use error::ExplainError;
pub use importance::{FeatureImportance, aggregate_importance, spearman};
pub use live::{FineTuned, LiveExplained, LiveExplainer};
pub use sentence::sentence;

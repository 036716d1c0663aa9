//! A shallow decision tree distilled from the policy, its fidelity on held-out observations,
//! and its rules.
//!
//! Each (epoch, stage) decision is one sample: its raw feature row, labelled with the policy's
//! most probable parallelism move *as an effect* — `keep` when the move would leave the
//! stage's parallelism where it is (a `ds2` move when DS2 agrees with the current parallelism
//! is a keep too), otherwise the move. Fidelity is the share of held-out decisions the tree
//! labels as the policy does, overall and over the decisions whose label changes the stage.

use linfa::prelude::*;
use linfa_trees::{DecisionTree, TreeNode};
use ndarray::{Array1, Array2};
use serde::Serialize;

use super::decision::move_label;
use super::{ExplainError, StageDecision};
use crate::agent::features::{FEATURE_NAMES, FEATURES};
use crate::agent::policy::argmax;

/// The policy's move for `d`, as an effect on the stage (0: the parallelism stays).
pub fn effective_move(d: &StageDecision) -> usize {
    let k = argmax(&d.probabilities);
    if k == 0 {
        return 0;
    }
    let target = d.ds2.unwrap_or(d.from) as i64 + k as i64 - 2;
    if target == d.from as i64 { 0 } else { k }
}

/// A distilled tree and how faithful it is.
#[derive(Debug, Clone, Serialize)]
pub struct DistilledTree {
    #[serde(skip)]
    tree: DecisionTree<f64, usize>,
    /// Depth limit it was grown to.
    pub max_depth: usize,
    /// Depth reached.
    pub depth: usize,
    /// Leaves.
    pub leaves: usize,
    /// Decisions it was fitted on.
    pub trained_on: usize,
    /// Held-out decisions.
    pub held_out: usize,
    /// Held-out decisions whose label changes the stage.
    pub held_out_moves: usize,
    /// Share of held-out decisions labelled as the policy labels them.
    pub fidelity: f64,
    /// The same over the held-out decisions whose label changes the stage.
    pub fidelity_on_moves: f64,
    /// Its rules, one line per node, indented by depth.
    pub rules: Vec<String>,
}

fn matrix(decisions: &[StageDecision]) -> Array2<f64> {
    let mut x = Array2::zeros((decisions.len(), FEATURES));
    for (i, d) in decisions.iter().enumerate() {
        for (f, v) in d.features().iter().enumerate() {
            x[[i, f]] = *v as f64;
        }
    }
    x
}

/// Fits a tree of depth at most `max_depth` to the policy's moves in `train` (moves weighted
/// by `move_weight`: they are rare and they are what matters) and measures it on `held_out`.
pub fn distill(
    train: &[StageDecision],
    held_out: &[StageDecision],
    max_depth: usize,
    move_weight: f32,
) -> Result<DistilledTree, ExplainError> {
    if train.is_empty() {
        return Err(ExplainError::Tree("no decisions to fit".into()));
    }
    let labels: Array1<usize> = train.iter().map(effective_move).collect();
    let weights: Array1<f32> = labels
        .iter()
        .map(|&l| if l == 0 { 1.0 } else { move_weight })
        .collect();
    let data = Dataset::new(matrix(train), labels)
        .with_weights(weights)
        .with_feature_names(FEATURE_NAMES.to_vec());
    let tree = DecisionTree::params()
        .max_depth(Some(max_depth))
        .min_weight_leaf(2.0)
        .fit(&data)
        .map_err(|e| ExplainError::Tree(e.to_string()))?;
    let predicted = tree.predict(&matrix(held_out));
    let (mut hits, mut moves, mut move_hits) = (0usize, 0usize, 0usize);
    for (d, p) in held_out.iter().zip(predicted.iter()) {
        let truth = effective_move(d);
        let hit = truth == *p;
        hits += usize::from(hit);
        if truth != 0 {
            moves += 1;
            move_hits += usize::from(hit);
        }
    }
    let mut rules = Vec::new();
    write_rules(tree.root_node(), 0, &mut rules);
    Ok(DistilledTree {
        max_depth,
        depth: tree.max_depth(),
        leaves: tree.num_leaves(),
        trained_on: train.len(),
        held_out: held_out.len(),
        held_out_moves: moves,
        fidelity: hits as f64 / held_out.len().max(1) as f64,
        fidelity_on_moves: if moves == 0 {
            1.0
        } else {
            move_hits as f64 / moves as f64
        },
        rules,
        tree,
    })
}

impl DistilledTree {
    /// The tree's move for a raw feature row.
    pub fn predict(&self, row: &[f32; FEATURES]) -> usize {
        let x = Array2::from_shape_fn((1, FEATURES), |(_, f)| row[f] as f64);
        self.tree.predict(&x)[0]
    }
}

fn write_rules(node: &TreeNode<f64, usize>, depth: usize, out: &mut Vec<String>) {
    let pad = "  ".repeat(depth);
    if let Some(label) = node.prediction() {
        out.push(format!("{pad}→ {}", effect_label(label)));
        return;
    }
    let (feature, split, _) = node.split();
    let name = FEATURE_NAMES.get(feature).copied().unwrap_or("?");
    let children = node.children();
    for (side, child) in ["<", "≥"].iter().zip(children) {
        if let Some(child) = child {
            out.push(format!("{pad}if {name} {side} {split:.3}:"));
            write_rules(child, depth + 1, out);
        }
    }
}

/// `keep` or the move's label.
pub fn effect_label(k: usize) -> String {
    if k == 0 { "keep".into() } else { move_label(k) }
}

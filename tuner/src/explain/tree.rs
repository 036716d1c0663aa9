//! A shallow decision tree distilled from the policy, its fidelity on held-out observations,
//! and its rules.
//!
//! Each (epoch, stage) decision is one sample: its raw feature row, labelled with the policy's
//! greedy move *as an effect* on the stage ([`effective_action`]): its parallelism move
//! ([`effective_move`]: `keep` when the move would leave the parallelism where it is — a `ds2`
//! move when DS2 agrees with the current parallelism is a keep too) together with its most
//! probable buffer move (halve, keep or double the input buffer). Fidelity is the share of
//! held-out decisions the tree labels as the policy does, overall and over the decisions whose
//! label changes the stage's configuration — its workers, its input buffer, or both.

use linfa::prelude::*;
use linfa_trees::{DecisionTree, TreeNode};
use ndarray::{Array1, Array2};
use serde::Serialize;

use super::{ExplainError, StageDecision};
use crate::agent::actions::StageAction;
use crate::agent::actions::{DS2_TIE_MARGIN, greedy_move};
use crate::agent::features::{FEATURE_NAMES, FEATURES};
use crate::agent::policy::{BUFFER_ACTIONS, PARALLELISM_ACTIONS};

/// The classes a tree tells apart: every parallelism effect ([`effective_move`]) with every
/// buffer effect (keep, halve, double), in [`effective_action`] order; class 0 keeps both.
pub const TREE_CLASSES: usize = PARALLELISM_ACTIONS * BUFFER_ACTIONS;

/// The buffer move (action index: halve, keep, double) of each buffer effect, in class order.
const BUFFER_MOVE_OF_EFFECT: [usize; BUFFER_ACTIONS] = [1, 0, 2];

/// The policy's move for `d`, as an effect on the stage (0: the parallelism stays).
pub fn effective_move(d: &StageDecision) -> usize {
    let k = greedy_move(
        &d.probabilities,
        d.from,
        d.ds2.unwrap_or(d.from),
        DS2_TIE_MARGIN,
    );
    if k == 0 {
        return 0;
    }
    let target = d.ds2.unwrap_or(d.from) as i64 + k as i64 - 2;
    if target == d.from as i64 { 0 } else { k }
}

/// The policy's most probable buffer move for `d` as an effect on the stage (0: the buffer
/// stays, 1: halved, 2: doubled); a decision logged without buffer probabilities keeps it.
pub fn effective_buffer_move(d: &StageDecision) -> usize {
    let p = &d.buffer_probabilities;
    let best = crate::agent::policy::argmax(p);
    if p[best] <= 0.0 {
        return 0;
    }
    BUFFER_MOVE_OF_EFFECT
        .iter()
        .position(|&m| m == best)
        .unwrap_or(0)
}

/// The policy's move for `d` as an effect on the stage: one of [`TREE_CLASSES`], 0 when it
/// leaves both the stage's parallelism and its input buffer where they are.
pub fn effective_action(d: &StageDecision) -> usize {
    effective_move(d) + PARALLELISM_ACTIONS * effective_buffer_move(d)
}

/// A distilled tree and how faithful it is.
#[derive(Debug, Clone, Serialize)]
pub struct DistilledTree {
    #[serde(skip)]
    tree: DecisionTree<f64, usize>,
    /// Depth limit it was grown to.
    pub max_depth: usize,
    /// Weight of a decision that changes its stage, against 1 for a keep, when fitting.
    pub move_weight: f32,
    /// What it splits on.
    pub inputs: TreeInputs,
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
    /// Of those, the ones whose label moves the stage's input buffer.
    pub held_out_buffer_moves: usize,
    /// Share of held-out decisions labelled as the policy labels them.
    pub fidelity: f64,
    /// The same over the held-out decisions whose label changes the stage.
    pub fidelity_on_moves: f64,
    /// Held-out decisions by the policy's label (row) and the tree's (column), both
    /// [`effective_action`]s: where the tree goes wrong, and which moves it takes for which.
    pub confusion: [[usize; TREE_CLASSES]; TREE_CLASSES],
    /// Its rules, one line per node, indented by depth.
    pub rules: Vec<String>,
}

/// Features the tree reads besides the policy's own row: quantities in workers that the
/// policy sees only as fractions of the stage's maximum (a split on a fraction means a
/// different number of workers on every stage), computed from the same decision.
pub const DERIVED_FEATURE_NAMES: [&str; DERIVED_FEATURES] = [
    "DS2 suggestion − parallelism (workers)",
    "DS2 suggestion − DS2 raw parallelism (workers of headroom)",
    "DS2 raw parallelism / parallelism",
];

/// How many [`DERIVED_FEATURE_NAMES`] there are.
pub const DERIVED_FEATURES: usize = 3;

/// Features a tree splits on: the policy's row, then the derived ones.
pub const TREE_FEATURES: usize = FEATURES + DERIVED_FEATURES;

/// What a tree may split on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum TreeInputs {
    /// The policy's feature row and [`DERIVED_FEATURE_NAMES`] (the default).
    #[default]
    WithDerived,
    /// The policy's feature row alone.
    PolicyRow,
}

impl TreeInputs {
    /// How many features a tree with these inputs splits on.
    pub fn width(self) -> usize {
        match self {
            TreeInputs::WithDerived => TREE_FEATURES,
            TreeInputs::PolicyRow => FEATURES,
        }
    }

    /// The name of every feature, in [`tree_row`] order.
    pub fn names(self) -> Vec<&'static str> {
        FEATURE_NAMES
            .iter()
            .chain(DERIVED_FEATURE_NAMES.iter())
            .take(self.width())
            .copied()
            .collect()
    }
}

/// What the tree reads of `d`: its feature row, then [`DERIVED_FEATURE_NAMES`].
pub fn tree_row(d: &StageDecision) -> [f64; TREE_FEATURES] {
    let row = d.features();
    let mut out = [0.0; TREE_FEATURES];
    for (dst, src) in out.iter_mut().zip(row) {
        *dst = src as f64;
    }
    let p = d.from.max(1) as f64;
    let suggested = d.ds2.unwrap_or(d.from) as f64;
    // Row 0 is parallelism / max and row 9 DS2's raw parallelism / max: their ratio is in workers.
    let max = if row[0] > 0.0 { p / row[0] as f64 } else { p };
    let raw = row[9] as f64 * max;
    out[FEATURES] = suggested - p;
    out[FEATURES + 1] = suggested - raw;
    out[FEATURES + 2] = raw / p;
    out
}

fn matrix(decisions: &[StageDecision], inputs: TreeInputs) -> Array2<f64> {
    let mut x = Array2::zeros((decisions.len(), inputs.width()));
    for (i, d) in decisions.iter().enumerate() {
        for (f, v) in tree_row(d).iter().take(inputs.width()).enumerate() {
            x[[i, f]] = *v;
        }
    }
    x
}

/// Fits a tree of depth at most `max_depth` on `inputs` to the policy's moves in `train` (moves
/// weighted by `move_weight`: they are rare and they are what matters) and measures it on
/// `held_out`.
pub fn distill(
    train: &[StageDecision],
    held_out: &[StageDecision],
    max_depth: usize,
    move_weight: f32,
    inputs: TreeInputs,
) -> Result<DistilledTree, ExplainError> {
    if train.is_empty() {
        return Err(ExplainError::Tree("no decisions to fit".into()));
    }
    let labels: Array1<usize> = train.iter().map(effective_action).collect();
    let weights: Array1<f32> = labels
        .iter()
        .map(|&l| if l == 0 { 1.0 } else { move_weight })
        .collect();
    let names = inputs.names();
    let data = Dataset::new(matrix(train, inputs), labels)
        .with_weights(weights)
        .with_feature_names(names.clone());
    let tree = DecisionTree::params()
        .max_depth(Some(max_depth))
        .min_weight_leaf(2.0)
        .fit(&data)
        .map_err(|e| ExplainError::Tree(e.to_string()))?;
    let predicted = tree.predict(&matrix(held_out, inputs));
    let (mut hits, mut moves, mut move_hits, mut buffer_moves) = (0usize, 0usize, 0usize, 0usize);
    let mut confusion = [[0; TREE_CLASSES]; TREE_CLASSES];
    for (d, p) in held_out.iter().zip(predicted.iter()) {
        let truth = effective_action(d);
        buffer_moves += usize::from(truth >= PARALLELISM_ACTIONS);
        if let Some(cell) = confusion.get_mut(truth).and_then(|row| row.get_mut(*p)) {
            *cell += 1;
        }
        let hit = truth == *p;
        hits += usize::from(hit);
        if truth != 0 {
            moves += 1;
            move_hits += usize::from(hit);
        }
    }
    let mut rules = Vec::new();
    write_rules(tree.root_node(), 0, &names, &mut rules);
    Ok(DistilledTree {
        max_depth,
        move_weight,
        inputs,
        depth: tree.max_depth(),
        leaves: tree.num_leaves(),
        trained_on: train.len(),
        held_out: held_out.len(),
        held_out_moves: moves,
        held_out_buffer_moves: buffer_moves,
        fidelity: hits as f64 / held_out.len().max(1) as f64,
        fidelity_on_moves: if moves == 0 {
            1.0
        } else {
            move_hits as f64 / moves as f64
        },
        confusion,
        rules,
        tree,
    })
}

/// Move weights [`choose_move_weight`] tries.
pub const MOVE_WEIGHTS: [f32; 8] = [1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 15.0, 20.0];

/// Overall fidelity a distilled tree is asked for: [`choose_move_weight`] keeps to it first.
pub const FIDELITY_GOAL: f64 = 0.95;

/// Fidelity on the decisions that change their stage a distilled tree is asked for.
pub const MOVES_FIDELITY_GOAL: f64 = 0.80;

/// The move weight for a distilled tree, chosen without any held-out decision: for each of
/// [`MOVE_WEIGHTS`] a tree is fitted on `train` and scored on `validation` (decisions of other
/// runs than `train`'s, so that neighbouring epochs of one run do not flatter it). Of the
/// weights that reach both goals ([`FIDELITY_GOAL`] overall, [`MOVES_FIDELITY_GOAL`] on
/// moves), the one whose nearer goal is furthest below its fidelity wins, so a shift between
/// validation and other runs does not tip the tree under either; if none reaches both, of
/// those reaching the overall goal the most faithful on moves; if none reaches that, the most
/// faithful overall (the smaller weight of equals). Weighting trades one fidelity for the
/// other — keeps are most decisions, moves are what matters — and the best balance depends on
/// the policy. `fallback` is returned, with no trial, when either set is empty.
pub fn choose_move_weight(
    train: &[StageDecision],
    validation: &[StageDecision],
    max_depth: usize,
    fallback: f32,
    inputs: TreeInputs,
) -> Result<(f32, Vec<WeightTrial>), ExplainError> {
    if train.is_empty() || validation.is_empty() {
        return Ok((fallback, Vec::new()));
    }
    let mut trials = Vec::with_capacity(MOVE_WEIGHTS.len());
    for weight in MOVE_WEIGHTS {
        let tree = distill(train, validation, max_depth, weight, inputs)?;
        trials.push(WeightTrial {
            move_weight: weight,
            fidelity: tree.fidelity,
            fidelity_on_moves: tree.fidelity_on_moves,
        });
    }
    Ok((preferred_weight(&trials).unwrap_or(fallback), trials))
}

/// The weight of the best-ranked of `trials` by [`weight_rank`], the first of equals.
fn preferred_weight(trials: &[WeightTrial]) -> Option<f32> {
    let mut best: Option<(f32, f64)> = None;
    for t in trials {
        let score = weight_rank(t.fidelity, t.fidelity_on_moves);
        if best.is_none_or(|(_, b)| score > b + 1e-12) {
            best = Some((t.move_weight, score));
        }
    }
    best.map(|(weight, _)| weight)
}

/// How [`choose_move_weight`] ranks a tree by its validation fidelity (higher is better):
/// meeting both goals first, by the slack to the nearer one; then meeting the overall goal, by
/// fidelity on moves; then fidelity overall.
fn weight_rank(fidelity: f64, fidelity_on_moves: f64) -> f64 {
    let overall = fidelity - FIDELITY_GOAL;
    let moves = fidelity_on_moves - MOVES_FIDELITY_GOAL;
    if overall >= 0.0 && moves >= 0.0 {
        4.0 + overall.min(moves)
    } else if overall >= 0.0 {
        2.0 + fidelity_on_moves
    } else {
        fidelity
    }
}

/// One move weight [`choose_move_weight`] tried, and the validation fidelity it reached.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WeightTrial {
    /// The weight of a move.
    pub move_weight: f32,
    /// Share of validation decisions the tree labels as the policy does.
    pub fidelity: f64,
    /// The same over the validation decisions that change their stage.
    pub fidelity_on_moves: f64,
}

impl DistilledTree {
    /// The tree's move for a decision.
    pub fn predict(&self, d: &StageDecision) -> usize {
        self.tree
            .predict(&matrix(std::slice::from_ref(d), self.inputs))[0]
    }
}

fn write_rules(node: &TreeNode<f64, usize>, depth: usize, names: &[&str], out: &mut Vec<String>) {
    let pad = "  ".repeat(depth);
    if let Some(label) = node.prediction() {
        out.push(format!("{pad}→ {}", effect_label(label)));
        return;
    }
    let (feature, split, _) = node.split();
    let name = names.get(feature).copied().unwrap_or("?");
    let children = node.children();
    for (side, child) in ["<", "≥"].iter().zip(children) {
        if let Some(child) = child {
            out.push(format!("{pad}if {name} {side} {split:.3}:"));
            write_rules(child, depth + 1, names, out);
        }
    }
}

/// The label of tree class `k` (an [`effective_action`]): `keep`, or the move's label with its
/// buffer move (`ds2+1, buf÷2`; `keep, buf×2` when only the buffer moves).
pub fn effect_label(k: usize) -> String {
    if k == 0 {
        return "keep".into();
    }
    let buffer = BUFFER_MOVE_OF_EFFECT[(k / PARALLELISM_ACTIONS) % BUFFER_ACTIONS];
    StageAction {
        parallelism: k % PARALLELISM_ACTIONS,
        buffer,
    }
    .label()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// Epoch `epoch`'s decision on `row`: the policy raises (ds2+1) when `raise`, else keeps.
    fn raise_or_keep(epoch: usize, row: [f32; FEATURES], raise: bool) -> StageDecision {
        let mut d = StageDecision::example("s", row);
        d.epoch = epoch as u64;
        d.probabilities = if raise {
            [0.025, 0.025, 0.05, 0.85, 0.05]
        } else {
            [0.85, 0.025, 0.05, 0.05, 0.025]
        };
        d
    }

    /// A feature row whose first `features` features are uniform in [0, 1), the rest 0.
    fn random_row(rng: &mut SmallRng, features: usize) -> [f32; FEATURES] {
        let mut row = [0.0; FEATURES];
        for v in row.iter_mut().take(features) {
            *v = rng.random::<f32>();
        }
        row
    }

    /// Decisions of a policy that raises (ds2+1) only when features 0 and 1 are both high — one
    /// decision in fifty — and keeps otherwise; feature 2 is noise.
    fn decisions(n: usize, seed: u64) -> Vec<StageDecision> {
        let mut rng = SmallRng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                let row = random_row(&mut rng, 3);
                raise_or_keep(i, row, row[0] > 0.95 && row[1] > 0.6)
            })
            .collect()
    }

    #[test]
    fn the_weight_kept_meets_both_goals_with_the_most_room_to_spare() {
        // The distill of 2026-12-05's policy: 15 is the most faithful on moves among those
        // over 95 % overall, but only 1.8 points over it; 4 has 3.2 and 5.6 points of room.
        let trials = [
            (1.0, 0.986, 0.776),
            (4.0, 0.982, 0.856),
            (15.0, 0.968, 0.914),
            (20.0, 0.932, 0.961),
        ];
        let best = |trials: &[(f32, f64, f64)]| {
            let trials: Vec<WeightTrial> = trials
                .iter()
                .map(|&(move_weight, fidelity, fidelity_on_moves)| WeightTrial {
                    move_weight,
                    fidelity,
                    fidelity_on_moves,
                })
                .collect();
            preferred_weight(&trials)
        };
        assert_eq!(best(&trials), Some(4.0));
        // None meets the moves goal: the most faithful on moves over the overall goal.
        assert_eq!(
            best(&[(1.0, 0.99, 0.5), (2.0, 0.97, 0.7), (3.0, 0.94, 0.9)]),
            Some(2.0)
        );
        // None meets the overall goal: the most faithful overall.
        assert_eq!(best(&[(1.0, 0.93, 0.5), (2.0, 0.90, 0.9)]), Some(1.0));
    }

    #[test]
    fn a_stump_finds_rare_moves_only_when_they_weigh_more_and_validation_says_so() {
        let (fit, validation, held_out) =
            (decisions(4000, 1), decisions(2000, 2), decisions(2000, 3));
        assert!(fit.iter().any(|d| effective_move(d) == 3));
        // One split cannot isolate the moves (four in ten past the best split are moves):
        // unweighted, the keeps win every leaf, and the tree is 98 % faithful overall.
        let plain = distill(&fit, &held_out, 1, 1.0, TreeInputs::default()).unwrap();
        assert_eq!(plain.fidelity_on_moves, 0.0);
        let (weight, trials) =
            choose_move_weight(&fit, &validation, 1, 6.0, TreeInputs::default()).unwrap();
        assert_eq!(trials.len(), MOVE_WEIGHTS.len());
        assert_eq!(
            trials[0].fidelity_on_moves, 0.0,
            "unweighted, no move is found"
        );
        assert!(weight > 1.0 && MOVE_WEIGHTS.contains(&weight));
        let weighted = distill(&fit, &held_out, 1, weight, TreeInputs::default()).unwrap();
        assert_eq!(weighted.move_weight, weight);
        // Weighted, the split's far side is a raise: every move found, still ≥ 95 % overall.
        assert!(weighted.fidelity_on_moves > 0.9, "{weighted:?}");
        assert!(weighted.fidelity > FIDELITY_GOAL, "{weighted:?}");
        // Deep enough, the tree is exact whatever the weight, and says which features matter.
        let deep = distill(&fit, &held_out, 3, weight, TreeInputs::default()).unwrap();
        assert!(
            deep.fidelity > 0.99 && deep.fidelity_on_moves > 0.95,
            "{deep:?}"
        );
        assert!(deep.rules.iter().any(|r| r.contains(FEATURE_NAMES[0])));
    }

    /// Decisions of a policy that raises past DS2 (ds2+1) when DS2's rounded suggestion leaves
    /// under 0.3 of a worker of headroom, and keeps otherwise, on stages of 1–8 workers whose
    /// maximum is 8, 16 or 32: in the policy's row that headroom is spread over fractions of
    /// the maximum.
    fn headroom_decisions(n: usize, seed: u64) -> Vec<StageDecision> {
        let mut rng = SmallRng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                let p = rng.random_range(1..=8usize);
                let max = [8.0, 16.0, 32.0][rng.random_range(0..3usize)];
                // DS2 wants between p and p + 1 workers: its suggestion is p + 1.
                let raw = p as f64 + rng.random_range(0.01..0.99);
                let suggested = raw.ceil() as usize;
                let mut row = [0.0; FEATURES];
                row[0] = (p as f64 / max) as f32;
                row[9] = (raw / max) as f32;
                row[10] = ((suggested - p) as f64 / max) as f32;
                let mut d = raise_or_keep(i, row, suggested as f64 - raw < 0.3);
                d.from = p;
                d.ds2 = Some(suggested);
                d
            })
            .collect()
    }

    #[test]
    fn the_headroom_in_workers_lets_a_stump_follow_a_policy_the_fractions_hide() {
        let (fit, held_out) = (headroom_decisions(4000, 5), headroom_decisions(2000, 6));
        let moves = held_out.iter().filter(|d| effective_move(d) == 3).count();
        assert!(moves > 400 && moves < 800, "{moves} moves");
        let derived = distill(&fit, &held_out, 1, 2.0, TreeInputs::WithDerived).unwrap();
        assert!(
            derived.fidelity > 0.99 && derived.fidelity_on_moves > 0.98,
            "{derived:?}"
        );
        assert!(
            derived.rules[0].contains(DERIVED_FEATURE_NAMES[1]),
            "{:?}",
            derived.rules
        );
        // The confusion matrix holds every held-out decision; its diagonal, the hits.
        let total: usize = derived.confusion.iter().flatten().sum();
        let hits: usize = (0..TREE_CLASSES).map(|k| derived.confusion[k][k]).sum();
        assert_eq!(total, held_out.len());
        assert_eq!(hits, (derived.fidelity * total as f64).round() as usize);
        // On the policy's row alone, twice as deep, the same rule is out of reach.
        let row_only = distill(&fit, &held_out, 2, 2.0, TreeInputs::PolicyRow).unwrap();
        assert!(row_only.fidelity < 0.9, "{row_only:?}");
        assert!(row_only.rules.iter().all(|r| !r.contains("headroom")));
        // `predict` is the tree that was measured: it puts each decision in a counted cell.
        for d in held_out.iter().take(50) {
            assert!(derived.confusion[effective_action(d)][derived.predict(d)] > 0);
        }
    }

    /// Decisions of a policy that keeps its workers and halves the input buffer when feature 4
    /// (input queue occupancy) is over 0.8, raises (ds2+1) and doubles it when feature 1 (busy)
    /// is over 0.9 as well, and keeps everything otherwise.
    fn buffer_decisions(n: usize, seed: u64) -> Vec<StageDecision> {
        let mut rng = SmallRng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                let row = random_row(&mut rng, 5);
                let (full, busy) = (row[4] > 0.8, row[1] > 0.9);
                let mut d = raise_or_keep(i, row, full && busy);
                d.buffer_probabilities = match (full, busy) {
                    (true, false) => [0.8, 0.15, 0.05],
                    (true, true) => [0.05, 0.15, 0.8],
                    _ => [0.1, 0.8, 0.1],
                };
                d
            })
            .collect()
    }

    #[test]
    fn buffer_moves_are_classes_of_their_own_and_count_as_moves() {
        let (fit, held_out) = (buffer_decisions(4000, 7), buffer_decisions(2000, 8));
        let halve = PARALLELISM_ACTIONS;
        let raise_double = 3 + 2 * PARALLELISM_ACTIONS;
        assert_eq!(effect_label(0), "keep");
        assert_eq!(effect_label(halve), "keep, buf÷2");
        assert_eq!(effect_label(raise_double), "ds2+1, buf×2");
        assert_eq!(effect_label(3), "ds2+1");
        let classes: Vec<usize> = held_out.iter().map(effective_action).collect();
        assert!(classes.contains(&halve) && classes.contains(&raise_double));
        let tree = distill(&fit, &held_out, 2, 2.0, TreeInputs::default()).unwrap();
        let buffer_moves = classes
            .iter()
            .filter(|&&c| c >= PARALLELISM_ACTIONS)
            .count();
        assert_eq!(tree.held_out_buffer_moves, buffer_moves);
        // Every move of this policy moves a buffer, so the moves are the buffer moves.
        assert_eq!(tree.held_out_moves, buffer_moves);
        assert!(
            tree.fidelity > 0.99 && tree.fidelity_on_moves > 0.98,
            "{tree:?}"
        );
        assert!(tree.rules.iter().any(|r| r.contains("keep, buf÷2")));
        assert!(tree.rules.iter().any(|r| r.contains("ds2+1, buf×2")));
        assert!(tree.confusion[halve][halve] > 0);
        // A decision logged before buffer probabilities were recorded keeps its buffer.
        let mut old = held_out[0].clone();
        old.buffer_probabilities = [0.0; BUFFER_ACTIONS];
        assert_eq!(effective_buffer_move(&old), 0);
    }

    #[test]
    fn without_a_validation_set_the_fallback_weight_is_kept() {
        let (weight, trials) =
            choose_move_weight(&decisions(50, 4), &[], 5, 6.0, TreeInputs::default()).unwrap();
        assert_eq!(weight, 6.0);
        assert!(trials.is_empty());
    }
}

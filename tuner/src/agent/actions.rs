//! The agent's action space and how an action becomes a configuration.
//!
//! Per stage, a parallelism move — keep the current parallelism, or take DS2's suggestion
//! offset by −1, 0, +1 or +2 (residual control: DS2's model does the arithmetic, the policy
//! learns where it is wrong and when not to move) — and a buffer move on the stage's input
//! edges: halve, keep or double the capacity. Moves that leave the stage's bounds or the buffer
//! range are masked; the result then goes through the shared [`clamp`](crate::action::clamp).

use rheo_engine::JobConfig;
use rheo_engine::config::edge_target;
use serde::{Deserialize, Serialize};

use super::features::Observation;
use super::policy::{BUFFER_ACTIONS, PARALLELISM_ACTIONS};

/// Smallest and largest input buffer (batches per channel) the agent sets.
pub const BUFFER_RANGE: (usize, usize) = (2, 1024);

/// One stage's move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageAction {
    /// 0 keeps the parallelism; `k` in 1..=4 takes DS2's suggestion + (k − 2).
    pub parallelism: usize,
    /// 0 halves, 1 keeps, 2 doubles the input buffer.
    pub buffer: usize,
}

impl StageAction {
    /// The move that changes nothing.
    pub const KEEP: StageAction = StageAction {
        parallelism: 0,
        buffer: 1,
    };

    /// A short label (`keep`, `ds2+1`, …, with `buf×2` / `buf÷2`).
    pub fn label(&self) -> String {
        let p = match self.parallelism {
            0 => "keep".to_owned(),
            k => match k as i64 - 2 {
                0 => "ds2".to_owned(),
                o if o > 0 => format!("ds2+{o}"),
                o => format!("ds2{o}"),
            },
        };
        match self.buffer {
            0 => format!("{p}, buf÷2"),
            2 => format!("{p}, buf×2"),
            _ => p,
        }
    }
}

/// Which moves are allowed for stage `i` of `obs` under `config`.
pub fn masks(
    obs: &Observation,
    config: &JobConfig,
    i: usize,
) -> ([bool; PARALLELISM_ACTIONS], [bool; BUFFER_ACTIONS]) {
    let (min, max) = obs.bounds[i];
    let mut par = [true; PARALLELISM_ACTIONS];
    for (k, allowed) in par.iter_mut().enumerate().skip(1) {
        let target = target_parallelism(obs, i, k);
        *allowed = target.is_some_and(|t| (min..=max).contains(&t));
    }
    let capacity = input_capacity(config, &obs.stages[i]);
    let buf = [
        capacity / 2 >= BUFFER_RANGE.0,
        true,
        capacity * 2 <= BUFFER_RANGE.1,
    ];
    (par, buf)
}

/// DS2's suggested parallelism for stage `i` (its current one where DS2 has none): what the
/// moves are offsets from, and what the DS2 fallback applies.
pub fn ds2_parallelism(obs: &Observation, i: usize) -> usize {
    obs.ds2
        .parallelism(&obs.stages[i])
        .unwrap_or(obs.parallelism[i])
}

/// The parallelism move `k` (1..=4) asks for at stage `i`.
fn target_parallelism(obs: &Observation, i: usize, k: usize) -> Option<usize> {
    offset_from(ds2_parallelism(obs, i), k)
}

/// DS2's `suggested` parallelism offset by move `k` (1..=4): `k − 2`, if that leaves a worker.
fn offset_from(suggested: usize, k: usize) -> Option<usize> {
    let t = suggested as i64 + k as i64 - 2;
    (t >= 1).then_some(t as usize)
}

/// The probability that stage `i` ends up with the parallelism move `k` gives it: moves that
/// lead to the same parallelism (keep, and DS2 + 1 when the stage already runs DS2 + 1) are one
/// choice, whatever the policy calls them.
pub fn probability_of_outcome(
    obs: &Observation,
    i: usize,
    k: usize,
    probabilities: &[f32; PARALLELISM_ACTIONS],
) -> f32 {
    let outcomes = outcomes(obs, i);
    pooled(
        probabilities,
        &outcomes,
        outcomes[k.min(PARALLELISM_ACTIONS - 1)],
    )
}

/// The summed probability of the moves whose outcome is `outcome`.
fn pooled(
    probabilities: &[f32; PARALLELISM_ACTIONS],
    outcomes: &[usize; PARALLELISM_ACTIONS],
    outcome: usize,
) -> f32 {
    probabilities
        .iter()
        .zip(outcomes)
        .filter(|&(_, &o)| o == outcome)
        .map(|(p, _)| p)
        .sum()
}

/// How much more probable than DS2's outcome another outcome must be for the greedy policy to
/// take it. The lookahead that labelled the policy's training data broke near-ties toward DS2
/// (its label is DS2's move unless another beats it by 0.05 summed reward), and where the
/// network splits its probability about evenly between DS2's outcome and another, it is
/// reproducing such a tie. On the simulator's scoreboard 0.05 changes no row by more than
/// 0.001 against plain argmax, where 0.1 loses mixed-burst's lead (docs/benchmarks.md).
/// Training (lookahead behaviour, model selection) acts with this margin; the live loop takes
/// its own ([`GuardConfig::ds2_tie_margin`](super::guard::GuardConfig::ds2_tie_margin)).
pub const DS2_TIE_MARGIN: f32 = 0.05;

/// The greedy parallelism move for a stage at parallelism `current` for which DS2 suggests
/// `suggested`, given the policy's move `probabilities`: moves that lead to the same
/// parallelism are one choice (as in [`probability_of_outcome`]) — "keep" at 0.3 and "ds2" at
/// 0.25 on a stage DS2 leaves alone outweigh "ds2+2" at 0.45 — and DS2's outcome wins unless
/// another is more probable by `tie_margin` (as in training: [`DS2_TIE_MARGIN`]). Returns the
/// most probable move that leads to the chosen outcome.
pub fn greedy_move(
    probabilities: &[f32; PARALLELISM_ACTIONS],
    current: usize,
    suggested: usize,
    tie_margin: f32,
) -> usize {
    let outcomes = outcomes_from(current, suggested);
    let pooled = |o: usize| pooled(probabilities, &outcomes, o);
    let mut best = 0;
    for k in 1..PARALLELISM_ACTIONS {
        if pooled(outcomes[k]) > pooled(outcomes[best]) {
            best = k;
        }
    }
    let ds2 = outcomes[DS2_MOVE];
    let outcome =
        if probabilities[DS2_MOVE] > 0.0 && pooled(ds2) + tie_margin >= pooled(outcomes[best]) {
            ds2
        } else {
            outcomes[best]
        };
    (0..PARALLELISM_ACTIONS)
        .filter(|&k| outcomes[k] == outcome)
        .fold(None, |b: Option<usize>, k| match b {
            Some(b) if probabilities[b] >= probabilities[k] => Some(b),
            _ => Some(k),
        })
        .unwrap_or(0)
}

/// The parallelism move that takes DS2's suggestion as it is.
pub const DS2_MOVE: usize = 2;

/// Per parallelism move, the parallelism it leaves stage `i` with (before the clamp): its
/// current one for "keep" and for an offset that would leave no worker.
pub fn outcomes(obs: &Observation, i: usize) -> [usize; PARALLELISM_ACTIONS] {
    outcomes_from(obs.parallelism[i], ds2_parallelism(obs, i))
}

/// Per parallelism move, the parallelism it leaves a stage at `current` with when DS2
/// suggests `suggested`.
pub fn outcomes_from(current: usize, suggested: usize) -> [usize; PARALLELISM_ACTIONS] {
    std::array::from_fn(|j| match j {
        0 => current,
        j => offset_from(suggested, j).unwrap_or(current),
    })
}

/// The capacity of the edges feeding `stage` (the largest, if several).
pub fn input_capacity(config: &JobConfig, stage: &str) -> usize {
    config
        .edges
        .iter()
        .filter(|(name, _)| edge_target(name) == Some(stage))
        .map(|(_, e)| e.capacity)
        .max()
        .unwrap_or(BUFFER_RANGE.0)
}

/// Applies buffer move `buffer` (0 halves, 1 keeps, 2 doubles, within [`BUFFER_RANGE`]) to
/// every edge feeding `stage` in `config`.
pub fn move_input_buffer(config: &mut JobConfig, stage: &str, buffer: usize) {
    if buffer == 1 {
        return;
    }
    for (name, edge) in config.edges.iter_mut() {
        if edge_target(name) == Some(stage) {
            edge.capacity = if buffer == 0 {
                (edge.capacity / 2).max(BUFFER_RANGE.0)
            } else {
                (edge.capacity * 2).min(BUFFER_RANGE.1)
            };
        }
    }
}

/// Gives every edge feeding `stage` in `config` the capacity it has in `from`.
pub fn keep_input_buffer(config: &mut JobConfig, from: &JobConfig, stage: &str) {
    for (name, edge) in config.edges.iter_mut() {
        if edge_target(name) == Some(stage)
            && let Some(before) = from.edges.get(name)
        {
            edge.capacity = before.capacity;
        }
    }
}

/// The configuration `actions` ask for, before the clamp.
pub fn proposal(obs: &Observation, config: &JobConfig, actions: &[StageAction]) -> JobConfig {
    let mut next = config.clone();
    for (i, a) in actions.iter().enumerate() {
        let stage = &obs.stages[i];
        if a.parallelism > 0
            && let Some(t) = target_parallelism(obs, i, a.parallelism)
        {
            next.set_parallelism(stage, t);
        }
        move_input_buffer(&mut next, stage, a.buffer);
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_move_changes_only_the_edges_into_the_stage_within_the_range() {
        let mut config = JobConfig::default();
        for (edge, capacity) in [("source->a", 64), ("a->b", 3), ("b->sink", 64)] {
            config.edges.insert(
                edge.to_owned(),
                rheo_engine::config::EdgeConfig {
                    capacity,
                    batch_size: 64,
                },
            );
        }
        let capacities = |c: &JobConfig| c.edges.values().map(|e| e.capacity).collect::<Vec<_>>();
        let mut halved = config.clone();
        move_input_buffer(&mut halved, "a", 0);
        // Edges in name order: a->b, b->sink, source->a.
        assert_eq!(capacities(&halved), [3, 64, 32]);
        let mut kept = config.clone();
        move_input_buffer(&mut kept, "a", 1);
        assert_eq!(kept, config);
        let (mut low, mut high) = (config.clone(), config.clone());
        move_input_buffer(&mut low, "b", 0);
        move_input_buffer(&mut high, "b", 2);
        assert_eq!(low.edges["a->b"].capacity, BUFFER_RANGE.0);
        assert_eq!(high.edges["a->b"].capacity, 6);
        high.edges.get_mut("a->b").unwrap().capacity = BUFFER_RANGE.1;
        move_input_buffer(&mut high, "b", 2);
        assert_eq!(high.edges["a->b"].capacity, BUFFER_RANGE.1);
        // Kept as another configuration has it: only the edges into the stage.
        keep_input_buffer(&mut halved, &high, "b");
        assert_eq!(capacities(&halved), [BUFFER_RANGE.1, 64, 32]);
    }

    #[test]
    fn greedy_move_pools_moves_with_the_same_outcome() {
        // At 2 workers with DS2 suggesting 2, keep and ds2 both leave 2 workers: 0.55 together.
        let p = [0.30, 0.0, 0.25, 0.0, 0.45];
        assert_eq!(greedy_move(&p, 2, 2, DS2_TIE_MARGIN), 0);
    }

    #[test]
    fn greedy_move_takes_ds2s_outcome_on_a_near_tie_and_the_winner_otherwise() {
        // DS2 suggests 3 for a stage at 2: ds2 → 3, ds2+2 → 5.
        let m = DS2_TIE_MARGIN;
        assert_eq!(
            greedy_move(&[0.0, 0.0, 0.44, 0.10, 0.46], 2, 3, m),
            DS2_MOVE
        );
        assert_eq!(greedy_move(&[0.0, 0.0, 0.20, 0.20, 0.60], 2, 3, m), 4);
        // DS2's move masked (probability 0): no tie to break.
        assert_eq!(greedy_move(&[0.5, 0.0, 0.0, 0.0, 0.5], 2, 3, m), 0);
        // A wider margin hands DS2 a wider lead: keep at 0.57 against DS2's lowering at 0.42
        // (selective's writer at a trough) stays a keep at 0.1 and goes to DS2 at 0.2.
        let trough = [0.57, 0.0, 0.42, 0.01, 0.0];
        assert_eq!(greedy_move(&trough, 2, 1, 0.1), 0);
        assert_eq!(greedy_move(&trough, 2, 1, 0.2), DS2_MOVE);
        // Zero: plain argmax over outcomes, DS2's winning exact ties only.
        assert_eq!(greedy_move(&[0.5, 0.0, 0.5, 0.0, 0.0], 2, 1, 0.0), DS2_MOVE);
    }
}

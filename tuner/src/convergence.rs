//! The convergence rule (design.md §4): after a rate change (step and burst profiles), a tuner
//! has converged at the first epoch from which, until the next rate change or the end of the
//! run, its configuration stays unchanged, shortfall ≤ 0.01 and p99 ≤ SLO. A tuner that never
//! converges within a phase counts the whole phase.

use serde::{Deserialize, Serialize};

/// The share of an epoch's offered events that may go unabsorbed in an epoch that keeps up.
pub const SHORTFALL_TOLERANCE: f64 = 0.01;

/// What the rule needs of one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochFacts {
    /// The configuration changed at this epoch.
    pub changed: bool,
    /// Share of the epoch's offered events not absorbed.
    pub shortfall: f64,
    /// p99 latency, ms.
    pub p99_ms: f64,
}

/// Convergence after each rate change of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Convergence {
    /// Per rate change: epochs from the change to convergence (the phase's length if never).
    pub epochs_to_converge: Vec<usize>,
    /// Per rate change: configuration changes from the change to convergence (in the whole
    /// phase if never).
    pub reconfigs_to_converge: Vec<usize>,
    /// Per rate change: whether the tuner converged within the phase.
    pub converged: Vec<bool>,
}

impl Convergence {
    /// Mean epochs to converge over the run's rate changes (0 without rate changes).
    pub fn mean_epochs(&self) -> f64 {
        mean(&self.epochs_to_converge)
    }

    /// The most changes any rate change needed.
    pub fn max_reconfigs(&self) -> usize {
        self.reconfigs_to_converge
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
    }
}

fn mean(v: &[usize]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<usize>() as f64 / v.len() as f64
    }
}

/// Applies the rule to a run of `epochs` of `epoch_s` seconds whose rate changes at
/// `change_times` (seconds).
pub fn convergence(
    epochs: &[EpochFacts],
    epoch_s: f64,
    change_times: &[f64],
    slo_ms: f64,
) -> Convergence {
    let mut starts: Vec<usize> = change_times
        .iter()
        .map(|t| (t / epoch_s).floor() as usize)
        .filter(|s| *s < epochs.len())
        .collect();
    starts.dedup();
    let mut out = Convergence::default();
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(epochs.len());
        let phase = &epochs[start..end];
        let good = |e: &EpochFacts| e.shortfall <= SHORTFALL_TOLERANCE && e.p99_ms <= slo_ms;
        // The first j from which every epoch is good and no later epoch changes the config.
        let mut converged_at = None;
        for j in (0..phase.len()).rev() {
            if !good(&phase[j]) || (j + 1 < phase.len() && phase[j + 1].changed) {
                break;
            }
            converged_at = Some(j);
        }
        let (epochs_needed, changes) = match converged_at {
            Some(j) => (j, phase[..=j].iter().filter(|e| e.changed).count()),
            None => (phase.len(), phase.iter().filter(|e| e.changed).count()),
        };
        out.epochs_to_converge.push(epochs_needed);
        out.reconfigs_to_converge.push(changes);
        out.converged.push(converged_at.is_some());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(spec: &[(bool, f64, f64)]) -> Vec<EpochFacts> {
        spec.iter()
            .map(|&(changed, shortfall, p99_ms)| EpochFacts {
                changed,
                shortfall,
                p99_ms,
            })
            .collect()
    }

    #[test]
    fn converges_at_the_first_epoch_from_which_all_is_well() {
        // Rate change at t = 2 s (epoch 2); a change at epoch 3 fixes things by epoch 4.
        let run = facts(&[
            (false, 0.0, 10.0),
            (false, 0.0, 10.0),
            (false, 0.3, 500.0),
            (true, 0.1, 300.0),
            (false, 0.0, 50.0),
            (false, 0.0, 40.0),
        ]);
        let c = convergence(&run, 1.0, &[2.0], 100.0);
        assert_eq!(c.epochs_to_converge, vec![2]);
        assert_eq!(c.reconfigs_to_converge, vec![1]);
        assert_eq!(c.converged, vec![true]);
    }

    #[test]
    fn a_tuner_that_never_moves_under_a_step_up_never_converges() {
        // The rate steps up at epoch 3 and the static configuration falls behind for good.
        let run = facts(&[
            (false, 0.0, 20.0),
            (false, 0.0, 20.0),
            (false, 0.0, 20.0),
            (false, 0.4, 400.0),
            (false, 0.4, 900.0),
            (false, 0.4, 1500.0),
        ]);
        let c = convergence(&run, 1.0, &[3.0], 100.0);
        assert_eq!(c.epochs_to_converge, vec![3], "the whole phase counts");
        assert_eq!(c.converged, vec![false]);
        assert_eq!(c.max_reconfigs(), 0);
    }

    #[test]
    fn a_late_change_resets_convergence_and_phases_end_at_the_next_change() {
        let run = facts(&[
            (false, 0.0, 10.0), // phase 1 starts (t = 0)
            (false, 0.0, 10.0),
            (true, 0.0, 10.0), // moved although all was well: converged only from here
            (false, 0.0, 10.0),
            (false, 0.5, 200.0), // phase 2 starts (t = 4): never good
            (true, 0.2, 200.0),
        ]);
        let c = convergence(&run, 1.0, &[0.0, 4.0], 100.0);
        assert_eq!(c.epochs_to_converge, vec![2, 2]);
        assert_eq!(c.reconfigs_to_converge, vec![1, 1]);
        assert_eq!(c.converged, vec![true, false]);
        assert_eq!(c.mean_epochs(), 2.0);
    }
}

//! The objective every tuner is scored by (design.md §4).
//!
//! Per epoch `t`:
//! `r_t = 1 − 2·shortfall_t − slo_t − 0.5·threads_t / max_threads − 0.1·changed_t`, where
//! `shortfall_t = clamp(1 − emitted_t / offered_t, 0, 1)` (events the profile made due in the
//! epoch that the pipeline did not absorb; an epoch that works off old backlog scores 0),
//! `slo_t = clamp((p99_t − slo) / slo, 0, 1)` with latency from each event's scheduled time,
//! and 1 for an epoch with offered events but no sink output, `threads_t` the sum of the
//! parallelism of the workload's stages (sources and sinks excluded), and `changed_t` 1 when
//! the configuration changed at that epoch. A run scores the mean of `r_t`.

use rheo_engine::MetricsSnapshot;
use serde::{Deserialize, Serialize};

/// What a run is scored against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// The latency SLO (p99, from scheduled time), in milliseconds.
    pub latency_slo_ms: f64,
    /// The thread budget.
    pub max_threads: usize,
    /// The stages whose parallelism counts as threads (the workload's stages).
    pub stages: Vec<String>,
}

/// One epoch's score and its parts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochScore {
    /// `r_t`.
    pub reward: f64,
    /// Share of the epoch's offered events not absorbed, 0..1.
    pub shortfall: f64,
    /// Latency penalty, 0..1.
    pub slo: f64,
    /// Threads in use.
    pub threads: usize,
    /// Whether the configuration changed at this epoch.
    pub changed: bool,
}

impl EpochScore {
    /// Whether the epoch kept up with the rate (shortfall within
    /// [`SHORTFALL_TOLERANCE`](crate::convergence::SHORTFALL_TOLERANCE)) and met the SLO.
    pub fn meets_targets(&self) -> bool {
        self.shortfall <= crate::convergence::SHORTFALL_TOLERANCE && self.slo == 0.0
    }
}

impl Objective {
    /// Scores one epoch.
    pub fn score(&self, snapshot: &MetricsSnapshot, changed: bool) -> EpochScore {
        let offered = snapshot.offered() as f64;
        let emitted = snapshot.emitted() as f64;
        let shortfall = if offered > 0.0 {
            (1.0 - emitted / offered).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let slo = if offered > 0.0 && snapshot.sink_records() == 0 {
            1.0
        } else {
            self.latency_penalty(snapshot.latency.p99_ms)
        };
        let threads: usize = self
            .stages
            .iter()
            .filter_map(|s| snapshot.config.parallelism(s))
            .sum();
        let reward = self.reward(shortfall, slo, threads, changed);
        EpochScore {
            reward,
            shortfall,
            slo,
            threads,
            changed,
        }
    }

    /// One stage's share of an epoch's score, for training credit: the epoch's pipeline-wide
    /// terms (events not absorbed, latency) with only this stage's own thread cost (`threads`
    /// its parallelism) and change cost (`changed`: its parallelism or input buffer changed).
    pub fn stage_reward(&self, score: &EpochScore, threads: usize, changed: bool) -> f64 {
        self.reward(score.shortfall, score.slo, threads, changed)
    }

    /// The latency penalty of an epoch whose p99 is `p99_ms`: `clamp((p99 − SLO) / SLO, 0, 1)`
    /// (0 without an SLO).
    pub fn latency_penalty(&self, p99_ms: f64) -> f64 {
        if self.latency_slo_ms > 0.0 {
            ((p99_ms - self.latency_slo_ms) / self.latency_slo_ms).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// `r_t` from its parts.
    fn reward(&self, shortfall: f64, slo: f64, threads: usize, changed: bool) -> f64 {
        let budget = self.max_threads.max(1) as f64;
        1.0 - 2.0 * shortfall
            - slo
            - 0.5 * threads as f64 / budget
            - 0.1 * f64::from(u8::from(changed))
    }
}

/// The objective of a run: the mean epoch reward (0 for an empty run).
pub fn run_objective(scores: &[EpochScore]) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    scores.iter().map(|s| s.reward).sum::<f64>() / scores.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rheo_engine::JobConfig;
    use rheo_engine::metrics::{
        HostMetrics, LatencyMetrics, SourceMetrics, StageKind, StageMetrics,
    };

    fn stage(name: &str, kind: StageKind, records_in: u64) -> StageMetrics {
        StageMetrics {
            records_in,
            ..StageMetrics::empty(name, kind, 1)
        }
    }

    fn snapshot(
        offered: u64,
        emitted: u64,
        sink_in: u64,
        p99_ms: f64,
        threads: usize,
    ) -> MetricsSnapshot {
        let mut config = JobConfig::default();
        config.set_parallelism("map", threads);
        config.set_parallelism("src", 1);
        config.set_parallelism("out", 1);
        MetricsSnapshot {
            epoch: 0,
            time_s: 1.0,
            epoch_s: 1.0,
            generation: 0,
            config,
            stages: vec![
                stage("src", StageKind::Source, 0),
                stage("map", StageKind::Operator, emitted),
                stage("out", StageKind::Sink, sink_in),
            ],
            edges: vec![],
            sources: vec![SourceMetrics {
                name: "src".into(),
                offered,
                emitted,
                backlog: offered.saturating_sub(emitted),
                offered_rate: offered as f64,
                emitted_rate: emitted as f64,
                target_rate: offered as f64,
                offered_total: offered,
                emitted_total: emitted,
            }],
            latency: LatencyMetrics {
                count: sink_in,
                p99_ms,
                ..Default::default()
            },
            last_reconfiguration: None,
            reconfigurations: 0,
            host: HostMetrics {
                cores: 2,
                process_cpu_s: 0.0,
                process_cpu_fraction: 0.0,
            },
        }
    }

    fn objective() -> Objective {
        Objective {
            latency_slo_ms: 100.0,
            max_threads: 8,
            stages: vec!["map".into()],
        }
    }

    #[test]
    fn a_healthy_epoch_pays_only_for_threads() {
        let s = objective().score(&snapshot(1000, 1000, 1000, 50.0, 2), false);
        assert_eq!((s.shortfall, s.slo, s.threads), (0.0, 0.0, 2));
        assert!((s.reward - (1.0 - 0.5 * 2.0 / 8.0)).abs() < 1e-12);
    }

    #[test]
    fn shortfall_latency_and_changes_are_charged() {
        // Absorbed 600 of 1000, p99 at 150 ms (half over the SLO), 4 threads, changed.
        let s = objective().score(&snapshot(1000, 600, 600, 150.0, 4), true);
        assert!((s.shortfall - 0.4).abs() < 1e-12);
        assert!((s.slo - 0.5).abs() < 1e-12);
        let expected = 1.0 - 2.0 * 0.4 - 0.5 - 0.5 * 4.0 / 8.0 - 0.1;
        assert!((s.reward - expected).abs() < 1e-12);
    }

    #[test]
    fn working_off_backlog_is_no_shortfall_and_silence_breaks_the_slo() {
        let s = objective().score(&snapshot(1000, 1500, 1500, 10.0, 1), false);
        assert_eq!(s.shortfall, 0.0);
        let s = objective().score(&snapshot(1000, 1000, 0, 0.0, 1), false);
        assert_eq!(s.slo, 1.0);
        let s = objective().score(&snapshot(1000, 1000, 1000, 900.0, 1), false);
        assert_eq!(s.slo, 1.0, "the latency penalty is capped at 1");
    }

    #[test]
    fn a_stage_is_credited_the_pipeline_terms_and_only_its_own_costs() {
        // Two of 8 threads are this stage's, of 4 in all; the configuration changed, but not
        // this stage's part of it.
        let o = objective();
        let s = o.score(&snapshot(1000, 600, 600, 150.0, 4), true);
        let own = o.stage_reward(&s, 2, false);
        assert!((own - (1.0 - 2.0 * 0.4 - 0.5 - 0.5 * 2.0 / 8.0)).abs() < 1e-12);
        assert!((o.stage_reward(&s, 2, true) - (own - 0.1)).abs() < 1e-12);
        assert!(
            own > s.reward,
            "the others' threads and change are not this stage's"
        );
    }

    #[test]
    fn the_run_objective_is_the_mean() {
        let o = objective();
        let scores = [
            o.score(&snapshot(10, 10, 10, 1.0, 8), false),
            o.score(&snapshot(10, 0, 0, 0.0, 8), true),
        ];
        let mean = (scores[0].reward + scores[1].reward) / 2.0;
        assert!((run_objective(&scores) - mean).abs() < 1e-12);
        assert_eq!(run_objective(&[]), 0.0);
    }
}

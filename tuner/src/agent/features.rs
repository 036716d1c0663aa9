//! Observation features, from snapshots, the SLO and the budgets only — never from the
//! workload spec's costs, which a real user would not know.
//!
//! Each tunable stage gets one row: its own features followed by the pipeline's global
//! features, so one network scores pipelines of any length. Every feature is a ratio or a
//! fraction, mostly within 0..1, clamped where a ratio can explode.

use rheo_engine::metrics::StageMetrics;
use rheo_engine::{JobConfig, MetricsSnapshot};
use serde::{Deserialize, Serialize};

use crate::action::buffered_records;
use crate::tuners::{Ds2Suggestion, TuneContext, ds2_suggestion};

/// Features per stage.
pub const STAGE_FEATURES: usize = 13;
/// Features of the whole pipeline, appended to every stage's row.
pub const GLOBAL_FEATURES: usize = 9;
/// Features per row.
pub const FEATURES: usize = STAGE_FEATURES + GLOBAL_FEATURES;

/// The name of every feature, in row order (checkpoints store it; explanations print it).
pub const FEATURE_NAMES: [&str; FEATURES] = [
    "parallelism / max",
    "busy fraction",
    "blocked fraction",
    "idle fraction",
    "input queue occupancy",
    "input rate / target",
    "true rate / target",
    "true rate per worker / target",
    "selectivity",
    "DS2 raw parallelism / max",
    "(DS2 suggestion − parallelism) / max",
    "CPU fraction",
    "epochs DS2 has disagreed / 4",
    "source rate trend",
    "backlog / epoch of offered load",
    "p99 / SLO",
    "threads / budget",
    "shortfall",
    "epochs since a change / 10",
    "buffered records / budget",
    "stages / 8",
    "peak rate of the last 40 epochs / rate",
];

/// How late a source that keeps up may run, in seconds of its offered load, before the events
/// it owes read as a backlog and a shortfall. The engine counts events offered by the clock and
/// emitted by the source's thread, which a loaded CPU wakes a few milliseconds late; the engine
/// itself forgives only the first 2 ms of that (its `SOURCE_WAKE_UP_GRACE`, so that the scored
/// shortfall stays strict), and the features allow for the rest: without
/// the slack, that lateness changing between two epoch boundaries read as the pipeline falling
/// short (with every queue empty), which the simulator, whose source is never late, only shows
/// under back-pressure, and the policy answered it by raising its busiest stage.
pub const SOURCE_SLACK_S: f64 = 0.02;

/// Epochs of offered rates the agent remembers for the peak-rate feature.
pub const RATE_MEMORY: usize = 40;

/// What the agent remembers between epochs to compute trends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The offered rate of the previous epoch.
    pub previous_rate: Option<f64>,
    /// Epochs since the configuration last changed.
    pub since_change: usize,
    /// The configuration of the previous epoch.
    pub previous_config: Option<JobConfig>,
    /// Per stage: consecutive epochs DS2's suggestion has differed from the parallelism.
    pub disagreed: std::collections::BTreeMap<String, usize>,
    /// The offered rates of the last [`RATE_MEMORY`] epochs (a job that has seen bursts keeps
    /// headroom for the next).
    pub recent_rates: std::collections::VecDeque<f64>,
}

impl History {
    /// Records `snapshot` (and `obs`, its observation) after its features were taken.
    pub fn update_with(&mut self, snapshot: &MetricsSnapshot, obs: &Observation) {
        for (i, stage) in obs.stages.iter().enumerate() {
            let differs = obs.ds2.parallelism(stage) != Some(obs.parallelism[i]);
            let n = self.disagreed.entry(stage.clone()).or_default();
            *n = if differs { *n + 1 } else { 0 };
        }
        self.update(snapshot);
    }

    /// Records `snapshot` after its features were taken.
    pub fn update(&mut self, snapshot: &MetricsSnapshot) {
        let rate: f64 = snapshot.sources.iter().map(|s| s.offered_rate).sum();
        self.previous_rate = Some(rate);
        if self.recent_rates.len() == RATE_MEMORY {
            self.recent_rates.pop_front();
        }
        self.recent_rates.push_back(rate);
        let changed = self
            .previous_config
            .as_ref()
            .is_some_and(|c| *c != snapshot.config);
        self.since_change = if changed { 0 } else { self.since_change + 1 };
        self.previous_config = Some(snapshot.config.clone());
    }
}

/// One epoch's observation: a row per tunable stage, and what the rows were computed from.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Tunable stage names, in topological order.
    pub stages: Vec<String>,
    /// Per stage: the feature row.
    pub rows: Vec<[f32; FEATURES]>,
    /// Per stage: current parallelism.
    pub parallelism: Vec<usize>,
    /// Per stage: `(min, max)` parallelism.
    pub bounds: Vec<(usize, usize)>,
    /// DS2's suggestion for this epoch (over-provisioning 0, no catch-up).
    pub ds2: Ds2Suggestion,
}

fn ratio(a: f64, b: f64, cap: f64) -> f32 {
    if b <= 0.0 {
        if a > 0.0 { cap as f32 } else { 0.0 }
    } else {
        (a / b).clamp(0.0, cap) as f32
    }
}

fn stage_row(
    stage: Option<&StageMetrics>,
    p: usize,
    max: usize,
    target_in: f64,
    (ds2_raw, ds2_p): (f64, usize),
    disagreed: usize,
) -> [f32; STAGE_FEATURES] {
    let maxf = max.max(1) as f64;
    let Some(s) = stage else {
        let mut row = [0.0; STAGE_FEATURES];
        row[0] = (p as f64 / maxf) as f32;
        return row;
    };
    let selectivity = if s.records_in > 0 {
        s.records_out as f64 / s.records_in as f64
    } else {
        1.0
    };
    [
        (p as f64 / maxf) as f32,
        s.busy_fraction.clamp(0.0, 1.0) as f32,
        s.blocked_fraction.clamp(0.0, 1.0) as f32,
        s.idle_fraction.clamp(0.0, 1.0) as f32,
        s.input_occupancy.clamp(0.0, 1.0) as f32,
        ratio(s.observed_input_rate, target_in, 4.0),
        ratio(s.true_processing_rate, target_in, 4.0),
        ratio(s.true_processing_rate / p.max(1) as f64, target_in, 4.0),
        selectivity.clamp(0.0, 4.0) as f32,
        (ds2_raw / maxf).clamp(0.0, 4.0) as f32,
        ((ds2_p as f64 - p as f64) / maxf) as f32,
        s.cpu_fraction.clamp(0.0, 1.0) as f32,
        (disagreed as f32 / 4.0).min(1.0),
    ]
}

/// The observation of `snapshot`.
pub fn observe(snapshot: &MetricsSnapshot, cx: &TuneContext, history: &History) -> Observation {
    let ds2 = ds2_suggestion(snapshot, cx, cx.ds2_base.factor, cx.ds2_base.catch_up_s);
    let rate: f64 = snapshot.sources.iter().map(|s| s.offered_rate).sum();
    let emitted: f64 = snapshot.sources.iter().map(|s| s.emitted_rate).sum();
    let trend = match history.previous_rate {
        Some(prev) if prev > 0.0 => ((rate - prev) / prev).clamp(-1.0, 1.0),
        _ => 0.0,
    };
    let peak = history.recent_rates.iter().copied().fold(rate, f64::max);
    let swing = if rate > 0.0 {
        (peak / rate).min(8.0)
    } else {
        1.0
    };
    let epoch_load = (rate * snapshot.epoch_s).max(1.0);
    // Events a source that keeps up can still owe at an epoch boundary (see SOURCE_SLACK_S):
    // neither a backlog nor a shortfall until they are more.
    let slack = rate * SOURCE_SLACK_S;
    let owed = (snapshot.backlog() as f64 - slack).max(0.0);
    let backlog = (owed / epoch_load).min(100.0);
    let slo = cx.objective.latency_slo_ms.max(1e-3);
    let shortfall = if rate > 0.0 {
        ((rate - emitted) * snapshot.epoch_s).clamp(0.0, owed) / epoch_load
    } else {
        0.0
    };
    let global: [f32; GLOBAL_FEATURES] = [
        trend as f32,
        backlog.ln_1p() as f32,
        (snapshot.latency.p99_ms / slo).min(100.0).ln_1p() as f32,
        (cx.bounds.threads(&snapshot.config) as f64 / cx.bounds.max_threads.max(1) as f64) as f32,
        shortfall as f32,
        (history.since_change as f64 / 10.0).min(1.0) as f32,
        (buffered_records(&snapshot.config) as f64 / cx.bounds.max_buffered_records.max(1) as f64)
            .min(4.0) as f32,
        (cx.bounds.stages.len() as f64 / 8.0) as f32,
        swing.ln() as f32,
    ];
    let mut obs = Observation {
        stages: Vec::new(),
        rows: Vec::new(),
        parallelism: Vec::new(),
        bounds: Vec::new(),
        ds2,
    };
    for (name, min, max) in &cx.bounds.stages {
        let p = snapshot.config.parallelism(name).unwrap_or(1);
        let target_in = obs.ds2.target_in.get(name).copied().unwrap_or(0.0);
        let raw = obs.ds2.raw.get(name).copied().unwrap_or(p as f64);
        let suggested = obs.ds2.parallelism(name).unwrap_or(p);
        let disagreed =
            history.disagreed.get(name).copied().unwrap_or(0) + usize::from(suggested != p);
        let stage = stage_row(
            snapshot.stage(name),
            p,
            *max,
            target_in,
            (raw, suggested),
            disagreed,
        );
        let mut row = [0.0f32; FEATURES];
        row[..STAGE_FEATURES].copy_from_slice(&stage);
        row[STAGE_FEATURES..].copy_from_slice(&global);
        obs.stages.push(name.clone());
        obs.rows.push(row);
        obs.parallelism.push(p);
        obs.bounds.push((*min, *max));
    }
    obs
}

/// Running mean and variance of feature rows (Welford), for normalisation and for the
/// out-of-distribution check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureStats {
    /// Rows seen.
    pub count: u64,
    /// Per feature mean.
    pub mean: Vec<f64>,
    /// Per feature sum of squared deviations.
    pub m2: Vec<f64>,
}

impl Default for FeatureStats {
    fn default() -> Self {
        FeatureStats {
            count: 0,
            mean: vec![0.0; FEATURES],
            m2: vec![0.0; FEATURES],
        }
    }
}

impl FeatureStats {
    /// Adds one row.
    pub fn add(&mut self, row: &[f32; FEATURES]) {
        self.count += 1;
        let n = self.count as f64;
        for (i, &x) in row.iter().enumerate() {
            let x = x as f64;
            let d = x - self.mean[i];
            self.mean[i] += d / n;
            self.m2[i] += d * (x - self.mean[i]);
        }
    }

    /// Per feature standard deviation (at least 0.05, so constant features do not blow up).
    pub fn std(&self) -> Vec<f64> {
        (0..self.m2.len()).map(|i| self.feature_std(i)).collect()
    }

    /// Feature `i`'s standard deviation (floored at 0.05, so a constant feature stays finite).
    fn feature_std(&self, i: usize) -> f64 {
        (self.m2[i] / self.count.max(2).saturating_sub(1) as f64)
            .sqrt()
            .max(0.05)
    }

    /// `row` standardised (on the decision path: no allocation).
    pub fn normalise(&self, row: &[f32; FEATURES]) -> [f32; FEATURES] {
        let mut out = [0.0; FEATURES];
        for i in 0..FEATURES {
            out[i] = ((row[i] as f64 - self.mean[i]) / self.feature_std(i)).clamp(-8.0, 8.0) as f32;
        }
        out
    }

    /// Root-mean-square standardised distance of `row` from the training mean.
    pub fn distance(&self, row: &[f32; FEATURES]) -> f64 {
        let z = self.normalise(row);
        (z.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / FEATURES as f64).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{Environment, SimEnv, SimParams};
    use crate::scoreboard::context;
    use crate::spec::Workload;

    const BACKLOG: usize = STAGE_FEATURES + 1;
    const SHORTFALL: usize = STAGE_FEATURES + 4;

    /// A one-stage job (`a`, waiting `wait_us` per record) under a constant `rate` of events
    /// per second in epochs of 0.5 s, and its first epoch on the simulator.
    fn first_epoch(rate: u32, wait_us: f64) -> (Workload, MetricsSnapshot) {
        let text = format!(
            "name = \"one\"\nduration_s = 2\nepoch_s = 0.5\n\
             [source]\nrate = {{ profile = \"constant\", value = {rate} }}\n\
             [[stage]]\nname = \"a\"\nwait_us = {wait_us:?}\n\
             [objective]\nlatency_slo_ms = 100\nmax_threads = 8\n"
        );
        let w = Workload::parse(&text, "one.toml").unwrap();
        let mut env = SimEnv::new(&w, SimParams::nominal(&w), 1);
        let snapshot = env.observe().unwrap().unwrap();
        (w, snapshot)
    }

    /// The first epoch of a chain that keeps up with 2 000 events/s, its source `late_s`
    /// behind at the epoch's end.
    fn late_by(late_s: f64) -> [f32; FEATURES] {
        let (w, mut snapshot) = first_epoch(2000, 100.0);
        let source = &mut snapshot.sources[0];
        let owed = (2000.0 * late_s) as u64;
        source.emitted = source.offered - owed;
        source.emitted_rate = source.emitted as f64 / 0.5;
        source.backlog = owed;
        observe(&snapshot, &context(&w), &History::default()).rows[0]
    }

    #[test]
    fn a_tuned_ds2_base_moves_the_suggestion_the_moves_are_offsets_from() {
        // 3 000 events/s through a 500 µs wait: π_raw = 1.5 at any parallelism.
        let (w, snapshot) = first_epoch(3000, 500.0);
        let at = |factor: f64| {
            let cx = TuneContext {
                ds2_base: crate::tuners::Ds2Base {
                    factor,
                    catch_up_s: 0.0,
                },
                ..context(&w)
            };
            observe(&snapshot, &cx, &History::default())
        };
        let (plain, tuned) = (at(0.0), at(1.0));
        let (p, q) = (
            plain.ds2.parallelism("a").unwrap(),
            tuned.ds2.parallelism("a").unwrap(),
        );
        assert!(q > p, "over-provisioned by 1.0: {q} vs {p}");
        // The feature the network reads moves with it; the raw model does not.
        const RAW: usize = 9;
        const GAP: usize = 10;
        assert_eq!(plain.rows[0][RAW], tuned.rows[0][RAW]);
        assert!(tuned.rows[0][GAP] > plain.rows[0][GAP]);
    }

    #[test]
    fn a_source_a_few_milliseconds_late_owes_nothing_and_one_further_behind_falls_short() {
        let on_time = late_by(0.0);
        assert_eq!((on_time[BACKLOG], on_time[SHORTFALL]), (0.0, 0.0));
        // Late by half the slack, as a loaded CPU wakes a source thread: nothing owed.
        let late = late_by(SOURCE_SLACK_S / 2.0);
        assert_eq!((late[BACKLOG], late[SHORTFALL]), (0.0, 0.0));
        // 100 ms behind: 200 events, of which what exceeds the slack's 40 is owed, over the
        // epoch's 1 000.
        let behind = late_by(0.1);
        assert!(
            (behind[SHORTFALL] - 0.16).abs() < 1e-3,
            "{}",
            behind[SHORTFALL]
        );
        assert!((behind[BACKLOG] - 0.16f32.ln_1p()).abs() < 1e-3);
    }
}

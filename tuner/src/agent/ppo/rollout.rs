//! Rollouts: simulated runs stepped in lockstep, one batched policy forward per step.

use burn::tensor::Device;
use rand::Rng;
use rand::rngs::SmallRng;
use rayon::prelude::*;
use rheo_engine::source::RateProfile;
use rheo_engine::{JobConfig, MetricsSnapshot};

use crate::action::clamp;
use crate::agent::actions::proposal;
use crate::agent::features::{FEATURES, FeatureStats, History, observe};
use crate::agent::policy::{OUTPUTS, PolicyNet, sample};
use crate::agent::tuner::choose;
use crate::env::{EnvError, Environment, SimEnv, SimParams};
use crate::tuners::{Ds2, Ds2Knobs, TuneContext, Tuner};

use super::*;

/// The constants of `params` varied by up to `cfg.randomise` on a log scale, and a source
/// that stalls for a mean share of each epoch drawn up to `cfg.source_stall`.
pub fn randomised(params: &SimParams, cfg: &PpoConfig, rng: &mut SmallRng) -> SimParams {
    let width = cfg.randomise;
    let mut p = params.clone();
    let mut jitter = |x: &mut f64| *x *= (rng.random_range(-width..=width)).exp();
    p.rate_factor.iter_mut().for_each(&mut jitter);
    jitter(&mut p.latency_factor);
    jitter(&mut p.overhead_us);
    for a in &mut p.scaling {
        *a = (*a * (rng.random_range(-width..=width)).exp()).clamp(0.3, 1.0);
    }
    p.noise *= rng.random_range(0.5..1.5);
    // Drawn only when on, so training without it reproduces the same runs.
    if cfg.source_stall > 0.0 {
        p.source_stall = rng.random_range(0.0..=cfg.source_stall);
    }
    p
}

/// A random rate profile in place of `profile` for a run of `duration_s` seconds: a constant,
/// a step, a sine or a burst (one kind each with equal chance) spanning the rates `profile`
/// asks for over the run, widened to ±30 % of their mean where they span less. Training draws
/// one for a share of its runs so that each pipeline meets every shape of load, not only the
/// one its spec was written with.
pub fn random_profile(profile: &RateProfile, duration_s: f64, rng: &mut SmallRng) -> RateProfile {
    let samples: Vec<f64> = (0..200)
        .map(|i| profile.rate_at(duration_s * (i as f64 + 0.5) / 200.0))
        .collect();
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let mut lo = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let mut hi = samples.iter().copied().fold(0.0, f64::max);
    if hi - lo < 0.6 * mean {
        (lo, hi) = (lo.min(0.7 * mean), hi.max(1.3 * mean));
    }
    let duration_s = duration_s.max(1.0);
    match rng.random_range(0..4) {
        0 => RateProfile::Constant {
            value: rng.random_range(lo..=hi),
        },
        1 => RateProfile::Step {
            values: (0..rng.random_range(2..=3))
                .map(|_| rng.random_range(lo..=hi))
                .collect(),
            period_s: rng.random_range(duration_s / 4.0..=duration_s / 2.0),
        },
        2 => {
            let base = (lo + hi) / 2.0;
            RateProfile::Sine {
                base,
                amplitude: (hi - lo) / 2.0 * rng.random_range(0.5..=1.0),
                period_s: rng.random_range(duration_s / 4.0..=duration_s),
            }
        }
        _ => {
            let every_s = rng.random_range(duration_s / 4.0..=duration_s / 2.0);
            RateProfile::Burst {
                base: rng.random_range(lo..=(lo + hi) / 2.0),
                peak: hi,
                every_s,
                length_s: every_s * rng.random_range(0.1..=0.4),
            }
        }
    }
}

/// One simulated run in progress.
pub(super) struct Episode {
    pub(super) env: SimEnv,
    pub(super) cx: TuneContext,
    pub(super) history: History,
    pub(super) previous: Option<JobConfig>,
    pub(super) rng: SmallRng,
    pub(super) steps: Vec<Transition>,
    pub(super) scores: Vec<f64>,
    /// The snapshot waiting for a decision.
    pub(super) current: Option<MetricsSnapshot>,
    /// The stages the last decision moved, in its order.
    pub(super) stage_names: Vec<String>,
    pub(super) done: bool,
    /// Tuned DS2's objective on the same run, when training holds the policy to it.
    pub(super) ds2_objective: Option<f64>,
}

impl Episode {
    /// Observes the next epoch: scores it, credits the previous step, keeps the snapshot.
    pub(super) fn observe(&mut self) -> Result<(), EnvError> {
        match self.env.observe()? {
            Some(snapshot) => {
                let changed = self
                    .previous
                    .as_ref()
                    .is_some_and(|p| *p != snapshot.config);
                let epoch = self.cx.objective.score(&snapshot, changed);
                let score = epoch.reward;
                self.scores.push(score);
                if let Some(last) = self.steps.last_mut() {
                    last.reward = score as f32;
                    last.credit_stages(
                        &self.cx.objective,
                        &epoch,
                        self.previous.as_ref(),
                        &snapshot.config,
                        &self.stage_names,
                    );
                }
                self.previous = Some(snapshot.config.clone());
                self.current = Some(snapshot);
            }
            None => {
                self.done = true;
                self.current = None;
            }
        }
        Ok(())
    }
}

/// Collects feature statistics from DS2-driven runs of every workload.
pub fn feature_stats(
    workloads: &[TrainingWorkload],
    seeds: &[u64],
) -> Result<FeatureStats, EnvError> {
    let mut stats = FeatureStats::default();
    for w in workloads {
        for &seed in seeds {
            let cx = w.context();
            let mut env = SimEnv::new(&w.workload, w.params.clone(), seed);
            let mut ds2 = Ds2::new(Ds2Knobs::default());
            let mut history = History::default();
            while let Some(snapshot) = env.observe()? {
                let obs = observe(&snapshot, &cx, &history);
                for row in &obs.rows {
                    stats.add(row);
                }
                history.update_with(&snapshot, &obs);
                env.apply(&ds2.decide(&snapshot, &cx).config)?;
            }
        }
    }
    Ok(stats)
}

/// Runs every episode to its end, sampling moves from the policy.
pub(super) fn rollout(
    episodes: &mut [Episode],
    net: &PolicyNet,
    device: &Device,
    stats: &FeatureStats,
) -> Result<(), EnvError> {
    loop {
        episodes
            .par_iter_mut()
            .filter(|e| !e.done)
            .try_for_each(|e| e.observe())?;
        let live: Vec<usize> = (0..episodes.len())
            .filter(|&i| episodes[i].current.is_some())
            .collect();
        if live.is_empty() {
            return Ok(());
        }
        let mut observations = Vec::with_capacity(live.len());
        let mut rows = Vec::new();
        for &i in &live {
            let e = &episodes[i];
            let Some(snapshot) = &e.current else { continue };
            let obs = observe(snapshot, &e.cx, &e.history);
            let normalised: Vec<[f32; FEATURES]> =
                obs.rows.iter().map(|r| stats.normalise(r)).collect();
            rows.extend_from_slice(&normalised);
            observations.push((i, obs, normalised));
        }
        let outputs = net.infer(&rows, device);
        let mut at = 0;
        for (i, obs, normalised) in observations {
            let e = &mut episodes[i];
            let Some(snapshot) = e.current.take() else {
                continue;
            };
            let n = obs.stages.len();
            let out: &[[f32; OUTPUTS]] = &outputs[at..at + n];
            at += n;
            let rng = &mut e.rng;
            let (_, t) = choose(&obs, &snapshot.config, normalised, out, |p| {
                sample(p, rng.random())
            });
            let next = clamp(
                &snapshot.config,
                &proposal(&obs, &snapshot.config, &t.actions),
                &e.cx.bounds,
            );
            e.history.update_with(&snapshot, &obs);
            e.env.apply(&next.config)?;
            e.stage_names.clone_from(&obs.stages);
            e.steps.push(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn rates(p: &RateProfile, duration_s: f64) -> Vec<f64> {
        (0..400)
            .map(|i| p.rate_at(duration_s * i as f64 / 400.0))
            .collect()
    }

    #[test]
    fn a_random_profile_is_valid_stays_in_the_specs_range_and_takes_every_shape() {
        let specs = [
            RateProfile::Constant { value: 4000.0 },
            RateProfile::Step {
                values: vec![1000.0, 3000.0],
                period_s: 10.0,
            },
            RateProfile::Burst {
                base: 2000.0,
                peak: 6000.0,
                every_s: 8.0,
                length_s: 2.0,
            },
        ];
        let mut rng = SmallRng::seed_from_u64(5);
        for spec in &specs {
            let own = rates(spec, 20.0);
            let mean = own.iter().sum::<f64>() / own.len() as f64;
            let lo = own
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min)
                .min(0.7 * mean);
            let hi = own.iter().copied().fold(0.0, f64::max).max(1.3 * mean);
            let mut kinds = [0; 4];
            for _ in 0..200 {
                let p = random_profile(spec, 20.0, &mut rng);
                assert_eq!(p.validate(), Ok(()), "{p:?}");
                kinds[match p {
                    RateProfile::Constant { .. } => 0,
                    RateProfile::Step { .. } => 1,
                    RateProfile::Sine { .. } => 2,
                    RateProfile::Burst { .. } => 3,
                }] += 1;
                for r in rates(&p, 20.0) {
                    assert!(
                        r >= lo - 1e-6 && r <= hi + 1e-6,
                        "{r} outside {lo}..{hi}: {p:?}"
                    );
                }
            }
            assert!(kinds.iter().all(|&k| k > 20), "{kinds:?}");
        }
    }

    #[test]
    fn the_simulator_asks_for_the_profile_it_is_given() {
        let w = Workload::parse(
            "name = \"w\"\nduration_s = 4\nepoch_s = 0.5\n[source]\n\
             rate = { profile = \"constant\", value = 1000 }\n\
             [[stage]]\nname = \"a\"\nwait_us = 100.0\n[objective]\nlatency_slo_ms = 100\nmax_threads = 4\n",
            "w.toml",
        )
        .unwrap();
        let mut env = SimEnv::new(&w, SimParams::nominal(&w), 1)
            .with_rate_profile(RateProfile::Constant { value: 3000.0 });
        let snapshot = env.observe().ok().flatten();
        let offered = snapshot.map(|s| s.sources[0].offered);
        assert_eq!(offered, Some(1500));
    }
}

//! Forks of a simulated run at one epoch, finished by tuned DS2 or by the network: what the
//! lookahead values each move by.

use rheo_engine::{JobConfig, MetricsSnapshot};

use crate::action::clamp;
use crate::agent::Agent;
use crate::env::{EnvError, Environment, SimEnv};
use crate::objective::EpochScore;
use crate::tuners::{Ds2, TuneContext, Tuner};

/// When a fork's finish keeps the configuration instead of letting its finisher decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hold {
    /// Never: the finisher decides every epoch.
    Never,
    /// After every epoch that keeps up and meets the SLO.
    WhileMet,
    /// Until the first epoch that falls short of the rate or the SLO, and never after.
    UntilMiss,
}

impl Hold {
    /// Whether to keep the configuration after an epoch scored `score`; `missed` remembers
    /// whether an epoch of this finish fell short before.
    pub(super) fn holds(self, score: &EpochScore, missed: &mut bool) -> bool {
        *missed |= !score.meets_targets();
        match self {
            Hold::Never => false,
            Hold::WhileMet => score.meets_targets(),
            Hold::UntilMiss => !*missed,
        }
    }
}

/// Forks of a run at one epoch, each finished by the base policy (or by the network).
pub(super) struct Forks<'a> {
    pub(super) env: &'a SimEnv,
    pub(super) base: &'a Ds2,
    pub(super) cx: &'a TuneContext,
    /// The epoch the run forks at.
    pub(super) current: &'a MetricsSnapshot,
    /// Also finish each fork with DS2 holding while targets are met; keep the better finish.
    pub(super) hold: bool,
    /// Finish each fork with this agent (as it was before the epoch) instead of DS2.
    pub(super) finisher: Option<&'a Agent>,
}

impl Forks<'_> {
    /// The sum of the rewards of the epochs to come if `proposed` is applied now and the base
    /// policy decides from then on (the better of its two finishes with `hold`).
    pub(super) fn value(&self, proposed: &JobConfig) -> Result<f64, EnvError> {
        Ok(self.value_and_next(proposed)?.0)
    }

    /// [`Forks::value`], and the first configuration the finisher chose on the finish in which
    /// it decides every epoch (what it makes of `proposed` one epoch on).
    pub(super) fn value_and_next(
        &self,
        proposed: &JobConfig,
    ) -> Result<(f64, Option<JobConfig>), EnvError> {
        let mut first = None;
        let followed = total_reward(&match self.finisher {
            Some(agent) => self.finish_with_recording(agent, proposed, Hold::Never, &mut first)?,
            None => self.finish_recording(proposed, Hold::Never, &mut first)?,
        });
        let value = if self.finisher.is_none() && self.hold {
            followed.max(total_reward(&self.finish(proposed, Hold::WhileMet)?))
        } else {
            followed
        };
        Ok((value, first))
    }

    /// The sum of the rewards of [`Forks::finish_held`].
    pub(super) fn value_held(&self, proposed: &JobConfig) -> Result<f64, EnvError> {
        Ok(total_reward(&self.finish_held(proposed)?))
    }

    /// The epochs to come if `proposed` is applied now and then held while each epoch keeps
    /// up and meets the SLO; from the first epoch that does not, the finisher (the network, or
    /// tuned DS2) decides.
    pub(super) fn finish_held(&self, proposed: &JobConfig) -> Result<Vec<EpochScore>, EnvError> {
        match self.finisher {
            Some(agent) => self.finish_with(agent, proposed, Hold::UntilMiss),
            None => self.finish(proposed, Hold::UntilMiss),
        }
    }

    /// One finish of the fork: tuned DS2 decides every epoch, and its decision is applied
    /// unless `hold` keeps the configuration.
    pub(super) fn finish(
        &self,
        proposed: &JobConfig,
        hold: Hold,
    ) -> Result<Vec<EpochScore>, EnvError> {
        self.finish_recording(proposed, hold, &mut None)
    }

    /// [`Forks::finish`], `first` given the first configuration applied after `proposed`.
    fn finish_recording(
        &self,
        proposed: &JobConfig,
        hold: Hold,
        first: &mut Option<JobConfig>,
    ) -> Result<Vec<EpochScore>, EnvError> {
        let mut ds2 = self.base.clone();
        let mut missed = false;
        self.play_out(proposed, first, |snapshot, score| {
            // DS2 decides every epoch either way, so its warm-up state stays its own.
            let decision = ds2.decide(snapshot, self.cx).config;
            if hold.holds(score, &mut missed) {
                snapshot.config.clone()
            } else {
                decision
            }
        })
    }

    /// One finish of the fork by `agent`, which takes over as if it had applied `proposed`
    /// and decides every epoch that `hold` does not keep the configuration.
    pub(super) fn finish_with(
        &self,
        agent: &Agent,
        proposed: &JobConfig,
        hold: Hold,
    ) -> Result<Vec<EpochScore>, EnvError> {
        self.finish_with_recording(agent, proposed, hold, &mut None)
    }

    /// [`Forks::finish_with`], `first` given the first configuration applied after `proposed`.
    fn finish_with_recording(
        &self,
        agent: &Agent,
        proposed: &JobConfig,
        hold: Hold,
        first: &mut Option<JobConfig>,
    ) -> Result<Vec<EpochScore>, EnvError> {
        let applied = clamp(&self.current.config, proposed, &self.cx.bounds).config;
        let mut agent = agent.fork_applying(self.current, self.cx, &applied);
        let mut missed = false;
        self.play_out(proposed, first, |snapshot, score| {
            if hold.holds(score, &mut missed) {
                // The hold is the agent's move, so its cooldown and history carry on.
                agent = agent.fork_applying(snapshot, self.cx, &snapshot.config);
                snapshot.config.clone()
            } else {
                agent.decide(snapshot, self.cx).config
            }
        })
    }

    /// The epochs of the fork that applies `proposed` now and then, at every epoch, what
    /// `next` makes of its snapshot and score; `first` gets `next`'s first configuration.
    fn play_out(
        &self,
        proposed: &JobConfig,
        first: &mut Option<JobConfig>,
        mut next: impl FnMut(&MetricsSnapshot, &EpochScore) -> JobConfig,
    ) -> Result<Vec<EpochScore>, EnvError> {
        let mut env = self.env.clone();
        let mut previous = self.current.config.clone();
        env.apply(&clamp(&self.current.config, proposed, &self.cx.bounds).config)?;
        let mut epochs = Vec::new();
        while let Some(snapshot) = env.observe()? {
            let changed = previous != snapshot.config;
            let score = self.cx.objective.score(&snapshot, changed);
            previous = snapshot.config.clone();
            let decision = next(&snapshot, &score);
            if first.is_none() {
                *first = Some(decision.clone());
            }
            env.apply(&decision)?;
            epochs.push(score);
        }
        Ok(epochs)
    }
}

/// The summed reward of `epochs`.
pub(super) fn total_reward(epochs: &[EpochScore]) -> f64 {
    epochs.iter().map(|e| e.reward).sum()
}

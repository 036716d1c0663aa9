//! PPO on the simulator: many simulated workloads stepped in lockstep (in parallel with
//! rayon), one batched policy forward per step, generalised advantage estimation, the clipped
//! objective, a value loss, an entropy bonus, and global-norm gradient clipping.

mod demos;
mod lookahead;
mod rollout;
mod selection;
mod update;

use std::time::Instant;

use burn::module::Module;
use burn::optim::AdamConfig;
use burn::tensor::Device;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rheo_engine::JobConfig;
use serde::{Deserialize, Serialize};

use crate::action::{Bounds, clamp};
use crate::agent::Policy;
use crate::agent::actions::{StageAction, input_capacity};
use crate::agent::features::{FEATURES, FeatureStats, History};
use crate::agent::policy::{BUFFER_ACTIONS, PARALLELISM_ACTIONS, PolicyNet};
use crate::env::sim::initial_config;
use crate::env::{EnvError, SimEnv, SimParams};
use crate::objective::{EpochScore, Objective};
use crate::run::run;
use crate::scoreboard::context;
use crate::spec::Workload;
use crate::tuners::{Ds2, Ds2Base, Ds2Knobs, TuneContext};

pub use demos::demonstrations;
use rollout::{Episode, rollout};
pub use rollout::{feature_stats, random_profile, randomised};
use selection::Selection;
pub use selection::{Candidate, SelectionRow, meets_targets};
use update::update;
pub use update::{advantages, fine_tune};

/// PPO's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PpoConfig {
    /// Training iterations (rollout + update).
    pub iterations: usize,
    /// Simulated runs per workload per iteration.
    pub envs_per_workload: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Discount.
    pub gamma: f64,
    /// GAE's λ.
    pub lambda: f64,
    /// Ratio clip ε.
    pub clip: f64,
    /// Passes over each rollout.
    pub epochs: usize,
    /// Steps per minibatch.
    pub minibatch: usize,
    /// Entropy bonus.
    pub entropy: f64,
    /// Value-loss weight.
    pub value_coef: f64,
    /// Global gradient-norm limit.
    pub max_grad_norm: f64,
    /// Domain randomisation: simulator constants vary by up to this factor (log scale).
    pub randomise: f64,
    /// Domain randomisation of the source: each training run's source loses a mean share of
    /// each epoch to scheduling stalls drawn up to this ([`SimParams::source_stall`]), as a
    /// starved CPU makes the engine's source fall behind with every queue empty; without
    /// it such a shortfall only ever means back-pressure in training (0: off).
    pub source_stall: f64,
    /// Seed of everything random in training.
    pub seed: u64,
    /// Passes of imitation over DS2's runs before PPO (0: start from scratch).
    pub imitation_epochs: usize,
    /// DS2 runs per workload to imitate.
    pub demonstration_runs: usize,
    /// Imitate DS2 with each workload's tuned knobs (over-provisioning factors the policy
    /// cannot see, so it learns a blanket "+1"), or with the default knobs (the residual
    /// move 0, leaving PPO to find where more helps).
    pub imitate_tuned_ds2: bool,
    /// Every this many iterations, score the greedy policy on the training seeds and keep the
    /// best (0: keep the last).
    pub select_every: usize,
    /// Share of training runs that start from a random configuration (each stage's
    /// parallelism drawn within its bounds and the thread budget) instead of the workload's.
    pub random_start: f64,
    /// Share of lookahead runs whose start also has every stage's input buffer doubled a random
    /// 0 to 4 times (then brought within the buffer budget), so the buffer moves are labelled
    /// where grown buffers are, not only where the workload's own buffers and the network's
    /// greedy moves lead (0: off).
    pub random_buffer_start: f64,
    /// Share of training runs (PPO rollouts and lookahead runs) whose source rate profile is
    /// shifted ahead by a random time of up to half the workload's duration, so a step or burst
    /// does not always come at the same epoch and the policy cannot anticipate it by counting
    /// epochs (0: off).
    pub rate_shift: f64,
    /// Share of training runs (PPO rollouts and lookahead runs) whose source asks for a random
    /// rate profile instead of the spec's: a constant, step, sine or burst over the range of
    /// rates the spec's profile spans (`random_profile`), so that each training pipeline meets
    /// every shape of load and the policy learns to read the rate rather than the workload
    /// (0: off).
    pub profile_swap: f64,
    /// Training reward shaping: a run whose objective ends below tuned DS2's on the same
    /// simulated run (same constants, seed and start) loses this many times the gap on every
    /// decision (0: off). The scoreboard's objective is unchanged; this only teaches the policy
    /// that falling behind DS2 anywhere costs more than winning elsewhere pays.
    pub ds2_margin: f64,
    /// Per-stage credit: each stage's moves are judged by their own probability ratio and an
    /// advantage over their own reward — the epoch's pipeline-wide terms (events not absorbed,
    /// latency) plus only that stage's thread and change cost — against a per-stage value,
    /// instead of every stage sharing the pipeline's ratio and advantage (where one stage's
    /// needless move is charged to every stage that kept still).
    pub stage_credit: bool,
    /// Rounds of policy improvement over tuned DS2 by lookahead before PPO (0: off, and the
    /// policy starts by imitating DS2). Round 0 labels the states of tuned DS2's runs, each later
    /// round those of the network trained so far; the network imitates every label so far.
    pub lookahead_rounds: usize,
    /// Simulated runs per workload per lookahead round.
    pub lookahead_runs: usize,
    /// How much more (summed reward over the rest of a run) a move must earn on its fork than
    /// DS2's own move to become the label.
    pub lookahead_margin: f64,
    /// How much more a move that changes a stage must earn on its fork than leaving the stage
    /// where it is, to become the label (added to DS2's margin when DS2 leaves it too). Above
    /// 0 the labels hold back from changes that barely pay: fewer reconfigurations than DS2.
    pub lookahead_keep_margin: f64,
    /// The keep margin holds back only moves that lower a stage: a raise competes with leaving
    /// the stage on value alone. Putting a raise off costs latency and events not absorbed when
    /// the load keeps rising (and the labels, whose forks DS2 finishes, see that raise made
    /// next epoch anyway); putting a lowering off costs only threads.
    pub lookahead_keep_lowers_only: bool,
    /// Value each fork by the better of two finishes: tuned DS2, and tuned DS2 that holds the
    /// configuration while the pipeline keeps up and meets the SLO (acting only when it does
    /// not). Without it, a move DS2 would undo (a stage left one worker below DS2's
    /// over-provisioned target, a change DS2 would make again later) is judged as undone.
    pub lookahead_hold: bool,
    /// From the second round on, finish each fork with the network being improved (through
    /// the same guardrails) instead of tuned DS2: approximate policy iteration. With DS2
    /// finishing, putting a change off always looks cheap (DS2 makes it next epoch), so where
    /// the network cannot tell the epochs before a burst apart it learns to put it off for
    /// good; finished by the network, putting off is valued by what the network itself does
    /// next. `lookahead_hold` does not apply to these finishes.
    pub lookahead_policy_finish: bool,
    /// Share of the lookahead runs under the network whose behaviour samples its moves from
    /// the policy's probabilities instead of taking the most probable ones, so the states that
    /// less probable moves lead to get labels too (0: off).
    pub lookahead_sampled: f64,
    /// Lookahead rounds train only the buffer outputs, on the buffer labels, and leave every
    /// other weight as it was: a start's parallelism moves and values stay exactly its own,
    /// and its buffer moves are relearned. With a `train_from` start, the start is then no
    /// candidate of the model selection (what the rounds change is where the selection's runs
    /// do not go).
    pub lookahead_buffer_head_only: bool,
    /// With a `train_from` start: a stage whose input buffer is still the workload's own takes
    /// the start's most probable buffer move as its buffer label (and no buffer regret), not
    /// the lookahead's; buffers that have grown or shrunk are labelled by the lookahead. The
    /// start's rounds labelled its moves from the workload's buffers on many more runs than a
    /// few further rounds see (where halving or keeping is a close call on the simulator, as
    /// at batch-wait's first epoch, a few runs flip it); what they did not see is where its
    /// own less probable moves lead.
    pub lookahead_buffer_anchor: bool,
    /// With `lookahead_buffer_head_only`: what the buffer outputs learn.
    pub lookahead_buffer_loss: BufferLoss,
    /// Value leaving a stage where it is also by a finish that holds the whole configuration
    /// from then on while the pipeline keeps up and meets the SLO, the finisher (tuned DS2, or
    /// the network with `lookahead_policy_finish`) taking over at the first epoch that falls
    /// short; the better finish counts. Without it, putting a change off is valued over one
    /// epoch, since the finisher makes the change next: lowering a stage between two bursts
    /// looks worth its threads, though holding it through the next burst would spare that
    /// lowering and the raise back.
    pub lookahead_keep_hold: bool,
    /// With `lookahead_keep_lowers_only` and `lookahead_keep_hold`: the keep margin holds a
    /// lowering back only against holding the stage where it is (the held finish), not
    /// against keeping it one epoch and letting the finisher decide. That finish usually makes
    /// the same lowering an epoch later, so with the margin against it every lowering was
    /// labelled to wait one epoch (a thread-epoch lost at each trough); a lowering now
    /// competes with putting it off on value alone, and must still beat holding by the margin.
    pub lookahead_keep_margin_held_only: bool,
    /// With `lookahead_keep_margin_held_only`: that relief goes only to lowerings the live
    /// loop's utilisation limit ([`GuardConfig::default`]'s `max_utilisation_after_lowering`,
    /// at the epoch's rates) applies as they are. A lowering the limit would hold back keeps
    /// the keep margin against it: relieved, the simulator's cheap saturation made some of
    /// them the label (cpu-sine's scorer at busy 1.01–1.10), moves the live loop holds and
    /// counts in `fallback_share`. Unlike `lookahead_guarded_lowerings`, no fork's value
    /// changes, only which lowerings are relieved of the margin.
    ///
    /// [`GuardConfig::default`]: crate::agent::guard::GuardConfig
    pub lookahead_held_only_within_limit: bool,
    /// With `lookahead_keep_margin_held_only`: that relief goes only to a lowering that
    /// keeping the stage one epoch merely puts off (the finisher lowers it to the same
    /// parallelism on that fork's next decision). Where keeping it one epoch spares the change,
    /// or lets the finisher make two lowerings one, the keep saves a reconfiguration and keeps
    /// the margin against the lowering, as without the relief.
    pub lookahead_held_only_postponed: bool,
    /// With `lookahead_keep_margin_held_only`: that relief goes only to a lowering DS2 makes
    /// at the same epoch, to DS2's own suggestion. The network may then lower with DS2 rather
    /// than an epoch after it, but a lowering DS2 does not make now (before DS2, or below its
    /// suggestion) still has to beat keeping the stage by the margin.
    pub lookahead_held_only_with_ds2: bool,
    /// With `lookahead_keep_margin_held_only`: what a lowering relieved of the keep margin must
    /// still beat its one-epoch postponement by (summed reward over the rest of a run). At 0
    /// it competes on value alone, and a lowering worth one thread-epoch more than waiting
    /// (0.031 at 16 threads) is the label even where it only trims a stage the network will
    /// want back, a reconfiguration more; above one thread-epoch only a lowering that pays
    /// for more than that wins, such as lowering selective's writer before DS2 does.
    pub lookahead_postpone_margin: f64,
    /// With `lookahead_keep_margin_held_only`: the first lookahead round whose labels get that
    /// relief (0: every round). The first round's forks are finished by tuned DS2, which makes
    /// any lowering it wants an epoch later itself, so every such lowering looks merely put
    /// off there (trims between bursts included); from the second round on the network
    /// finishes the forks, and a lowering counts as put off only where the network itself
    /// would make it.
    pub lookahead_relief_from_round: usize,
    /// Model selection keeps, among the candidates, one that meets the agent's targets against
    /// tuned DS2 on the selection seeds ([`meets_targets`]: nowhere below DS2, above
    /// it on the mean, fewer reconfigurations) when any does, the best-scoring otherwise; off,
    /// the best-scoring.
    pub select_on_targets: bool,
    /// Value a lowering that the live loop's utilisation limit would hold back
    /// ([`GuardConfig::default`]'s `max_utilisation_after_lowering`, at the epoch's rates) by
    /// the fork of what the limit makes of it, as the live loop would apply it. Training runs
    /// without that limit, so the simulator's cheap saturation could make a lowering past it
    /// the label, a move the live loop never applies and counts as overridden
    /// (`fallback_share`).
    ///
    /// [`GuardConfig::default`]: crate::agent::guard::GuardConfig
    pub lookahead_guarded_lowerings: bool,
    /// Also try buffer moves on the lookahead's forks: halving and doubling a stage's input
    /// buffer, with the stage left where it is and with its best parallelism (the other
    /// stages following DS2, as for parallelism moves). DS2 never sizes buffers, so where a
    /// smaller channel bounds the queueing latency that DS2 would buy down with workers (a
    /// batched call behind a full channel) only a buffer move finds the cheaper configuration.
    pub lookahead_buffers: bool,
    /// How much more (summed reward over the rest of a run) a buffer move must earn on its
    /// fork than the stage's best move that leaves the buffer alone, to become the label.
    pub lookahead_buffer_margin: f64,
    /// Seeds each candidate policy runs every training workload on for model selection (0, 1,
    /// 2, …; the first three are the scoreboard's training seeds). More seeds make the choice
    /// among candidates less a matter of which runs they drew.
    pub selection_seeds: usize,
}

impl Default for PpoConfig {
    fn default() -> Self {
        PpoConfig {
            iterations: 60,
            envs_per_workload: 4,
            learning_rate: 3e-4,
            gamma: 0.95,
            lambda: 0.9,
            clip: 0.2,
            epochs: 4,
            minibatch: 128,
            entropy: 0.01,
            value_coef: 0.5,
            max_grad_norm: 0.5,
            randomise: 0.15,
            source_stall: 0.0,
            seed: 7,
            imitation_epochs: 30,
            demonstration_runs: 8,
            imitate_tuned_ds2: false,
            select_every: 10,
            random_start: 0.5,
            random_buffer_start: 0.0,
            rate_shift: 0.0,
            profile_swap: 0.0,
            ds2_margin: 0.0,
            stage_credit: false,
            lookahead_rounds: 0,
            lookahead_runs: 8,
            lookahead_margin: 0.05,
            lookahead_keep_margin: 0.0,
            lookahead_keep_lowers_only: false,
            lookahead_hold: false,
            lookahead_policy_finish: false,
            lookahead_sampled: 0.0,
            lookahead_buffer_head_only: false,
            lookahead_buffer_anchor: false,
            lookahead_buffer_loss: BufferLoss::Labels,
            lookahead_keep_hold: false,
            lookahead_keep_margin_held_only: false,
            lookahead_held_only_within_limit: false,
            lookahead_held_only_postponed: false,
            lookahead_held_only_with_ds2: false,
            lookahead_postpone_margin: 0.0,
            lookahead_relief_from_round: 0,
            select_on_targets: false,
            lookahead_guarded_lowerings: false,
            lookahead_buffers: false,
            lookahead_buffer_margin: 0.1,
            selection_seeds: crate::scoreboard::TRAINING_SEEDS.len(),
        }
    }
}

/// A workload with its calibrated simulator and DS2's knobs tuned for it.
#[derive(Debug, Clone)]
pub struct TrainingWorkload {
    /// The spec.
    pub workload: Workload,
    /// Its calibrated constants.
    pub params: SimParams,
    /// Tuned DS2's knobs (the demonstrations the policy starts from).
    pub ds2: Ds2Knobs,
    /// The DS2 the policy's moves are offsets from on this workload: the default
    /// ([`Ds2Base::default`], no over-provisioning) or tuned DS2's (`ds2.into()`), as the agent
    /// will be given where it runs.
    pub ds2_base: Ds2Base,
}

impl TrainingWorkload {
    /// The tuning context of a run of this workload, with its DS2 base.
    pub fn context(&self) -> TuneContext {
        TuneContext {
            ds2_base: self.ds2_base,
            ..context(&self.workload)
        }
    }
}

/// One point of the learning curve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Iteration.
    pub iteration: usize,
    /// Environment steps so far.
    pub steps: usize,
    /// Mean run objective of this iteration's rollouts (the scoreboard's measure).
    pub objective: f64,
    /// Mean policy loss of the update.
    pub policy_loss: f64,
    /// Mean value loss of the update.
    pub value_loss: f64,
    /// Mean entropy per step.
    pub entropy: f64,
    /// Seconds since training started.
    pub seconds: f64,
    /// A lookahead round (its objective is the behaviour's on the round's runs, its losses
    /// imitation's) rather than a PPO iteration.
    #[serde(default)]
    pub lookahead: bool,
}

/// What training produces.
#[derive(Debug, Clone)]
pub struct Trained {
    /// The network, for inference.
    pub net: PolicyNet,
    /// The feature statistics it was trained with.
    pub stats: FeatureStats,
    /// The learning curve.
    pub curve: Vec<CurvePoint>,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Every transition, for offline replay.
    pub experience: Vec<Transition>,
    /// The iteration whose policy was kept and its selection score on the training seeds.
    pub selected: Option<(usize, f64)>,
    /// Tuned DS2 on each training workload over the selection seeds.
    pub baseline: Vec<SelectionRow>,
    /// Every policy scored for selection, in training order.
    pub candidates: Vec<Candidate>,
}

/// One decision of one simulated run: what the policy saw, did and got.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transition {
    /// Normalised feature rows, one per stage.
    pub rows: Vec<[f32; FEATURES]>,
    /// Allowed parallelism moves per stage.
    pub par_masks: Vec<[bool; PARALLELISM_ACTIONS]>,
    /// Allowed buffer moves per stage.
    pub buf_masks: Vec<[bool; BUFFER_ACTIONS]>,
    /// The moves taken.
    pub actions: Vec<StageAction>,
    /// Log-probability of the moves under the acting policy.
    pub logp: f32,
    /// The value estimate.
    pub value: f32,
    /// The objective of the epoch the moves led to.
    pub reward: f32,
    /// Advantage (GAE).
    pub advantage: f32,
    /// Discounted return target.
    pub ret: f32,
    /// Each stage's part of the decision, for per-stage credit.
    pub stages: Vec<StageStep>,
}

impl Transition {
    /// A decision on the normalised `rows` (one per stage) whose masks and moves are still to
    /// be pushed — a demonstration's or a lookahead label's.
    pub(crate) fn awaiting_labels(rows: impl Iterator<Item = [f32; FEATURES]>) -> Transition {
        let rows: Vec<[f32; FEATURES]> = rows.collect();
        let n = rows.len();
        Transition {
            rows,
            par_masks: Vec::with_capacity(n),
            buf_masks: Vec::with_capacity(n),
            actions: Vec::with_capacity(n),
            logp: 0.0,
            value: 0.0,
            reward: 0.0,
            advantage: 0.0,
            ret: 0.0,
            stages: vec![StageStep::default(); n],
        }
    }

    /// Credits each stage (named by `stages`, in the decision's order) the epoch its moves led
    /// to: the epoch's pipeline-wide terms with only the stage's own thread and change cost
    /// (its parallelism or input buffer differs from `previous`).
    pub(crate) fn credit_stages(
        &mut self,
        objective: &Objective,
        epoch: &EpochScore,
        previous: Option<&JobConfig>,
        now: &JobConfig,
        stages: &[String],
    ) {
        for (stage, name) in self.stages.iter_mut().zip(stages) {
            let moved = previous.is_some_and(|p| {
                p.parallelism(name) != now.parallelism(name)
                    || input_capacity(p, name) != input_capacity(now, name)
            });
            let threads = now.parallelism(name).unwrap_or(0);
            stage.reward = Some(objective.stage_reward(epoch, threads, moved) as f32);
        }
    }
}

/// What lookahead rounds that train the buffer outputs alone teach them
/// ([`PpoConfig::lookahead_buffer_head_only`]). A move's regret is what the lookahead measured
/// it to lose against the best move ([`StageStep::buffer_regret`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BufferLoss {
    /// The labels' likelihood.
    #[default]
    Labels,
    /// The labels' likelihood plus the expected regret (each move's probability times its
    /// regret), as the parallelism moves are imitated: a state where one move loses much
    /// pulls hardest.
    LabelsAndRegret,
    /// The expected regret alone: where the moves come close (a close call the labels would
    /// settle by a few runs' noise) the start's buffer outputs barely move.
    Regret,
}

/// One stage's part of a decision: its moves' probability, its value, and what it is credited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StageStep {
    /// Log-probability of the stage's moves under the acting policy (the stages' sum to the
    /// decision's).
    pub logp: f32,
    /// The critic's value on the stage's row.
    pub value: f32,
    /// The reward credited to the stage's moves (`None`: the decision's reward).
    pub reward: Option<f32>,
    /// Advantage (GAE over the stage's rewards and values).
    pub advantage: f32,
    /// Discounted return target of the stage's value.
    pub ret: f32,
    /// Per parallelism move, what it loses against the best move (summed reward over the rest
    /// of the run, measured by lookahead; all 0 where none was measured). Imitation weighs the
    /// policy's probabilities by it, so it learns most where the choice matters most.
    #[serde(default)]
    pub regret: [f32; PARALLELISM_ACTIONS],
    /// Per buffer move at the labelled parallelism, what it loses against the best move,
    /// likewise (all 0 where none was measured: without `lookahead_buffers`).
    #[serde(default)]
    pub buffer_regret: [f32; BUFFER_ACTIONS],
}

/// Discounted Monte-Carlo returns of one imitated run (its decisions in order, the run ending
/// after the last), which are also its value targets.
fn monte_carlo_returns(run: &mut [Transition], gamma: f64) {
    let mut ret = 0.0f32;
    for t in run.iter_mut().rev() {
        ret = t.reward + gamma as f32 * ret;
        t.ret = ret;
        t.value = ret;
        for stage in &mut t.stages {
            stage.ret = ret;
            stage.value = ret;
        }
    }
}

/// Trains a policy with PPO on `workloads`; `progress` sees each learning-curve point.
pub fn train(
    workloads: &[TrainingWorkload],
    cfg: &PpoConfig,
    progress: impl FnMut(&CurvePoint),
) -> Result<Trained, EnvError> {
    train_from(workloads, cfg, None, progress)
}

/// Like [`train`], but from `start`'s weights and feature statistics when given, rather than
/// fresh ones: the first lookahead round then labels the start's own runs (it visits the
/// states and, with `lookahead_policy_finish`, finishes the forks, as the network does in
/// later rounds), the network learns only the new rounds' labels, DS2 is not imitated first,
/// and the start is candidate 0 of the model selection, kept unless a later candidate ranks
/// above it: more rounds of policy improvement on a trained policy, labelled where its own
/// lookahead disagrees with it (imitating them moves the network elsewhere too: the
/// candidates of docs/benchmarks.md, "late night", learned buffer moves in explored states).
pub fn train_from(
    workloads: &[TrainingWorkload],
    cfg: &PpoConfig,
    start: Option<&Policy>,
    mut progress: impl FnMut(&CurvePoint),
) -> Result<Trained, EnvError> {
    let started = Instant::now();
    let stats = match start {
        Some(policy) => policy.stats.clone(),
        None => feature_stats(workloads, &[0, 1])?,
    };
    let device = Device::flex().autodiff();
    // The initial weights come from the backend's generator: seed it, so a training seed
    // names one policy.
    device.seed(cfg.seed);
    let mut model = PolicyNet::new(&device);
    if let Some(policy) = start {
        model = model.load_record(policy.net.clone().into_record());
    }
    let mut optim = AdamConfig::new().init();
    let mut rng = SmallRng::seed_from_u64(cfg.seed);
    // Model selection on the training seeds (never the evaluation seeds): the greedy policy's
    // objective per workload, with a penalty for falling below tuned DS2 on any of them.
    let mut selection = Selection::new(workloads, cfg.selection_seeds, cfg.select_on_targets)?;
    let mut curve = Vec::new();
    let mut experience = Vec::new();
    let mut total_steps = 0;
    if start.is_some() && !cfg.lookahead_buffer_head_only {
        selection.consider(0, model.valid(), &stats, workloads)?;
    }
    if cfg.lookahead_rounds > 0 {
        // Policy improvement over tuned DS2 (see `lookahead`): each round's labels join the
        // earlier rounds', the network imitates them all, and each round's network is a
        // candidate for selection.
        let mut labels = Vec::new();
        let imitation = PpoConfig {
            epochs: cfg.imitation_epochs,
            ..cfg.clone()
        };
        for round in 0..cfg.lookahead_rounds {
            let behaviour =
                (round > 0 || start.is_some()).then(|| Policy::new(model.valid(), stats.clone()));
            let mut next = lookahead::lookahead_round(
                workloads,
                &stats,
                &lookahead::round_config(cfg, round),
                behaviour.as_ref(),
                start.filter(|_| cfg.lookahead_buffer_anchor),
                round as u64,
            )?;
            labels.append(&mut next.labels);
            let (trained, losses) = update(
                model, &mut optim, &labels, &imitation, &device, &mut rng, true,
            );
            model = trained;
            let point = CurvePoint {
                iteration: round,
                steps: labels.len(),
                objective: next.objective,
                policy_loss: losses.0,
                value_loss: losses.1,
                entropy: losses.2,
                seconds: started.elapsed().as_secs_f64(),
                lookahead: true,
            };
            progress(&point);
            curve.push(point);
            selection.consider(round + 1, model.valid(), &stats, workloads)?;
        }
        total_steps = labels.len();
        optim = AdamConfig::new().init();
    } else if start.is_none() && cfg.imitation_epochs > 0 {
        // Start from DS2: the policy first learns to do what DS2 does (the residual move 0, or
        // keep while DS2 waits), then PPO learns where to differ.
        let demos = demonstrations(workloads, &stats, cfg)?;
        let imitation = PpoConfig {
            epochs: cfg.imitation_epochs,
            ..cfg.clone()
        };
        let (next, _) = update(
            model, &mut optim, &demos, &imitation, &device, &mut rng, true,
        );
        model = next;
        optim = AdamConfig::new().init();
    }
    if !selection.has_best() {
        selection.consider(0, model.valid(), &stats, workloads)?;
    }
    for iteration in 0..cfg.iterations {
        let infer = model.valid();
        let infer_device = Device::flex();
        let mut episodes = Vec::new();
        for w in workloads {
            for _ in 0..cfg.envs_per_workload {
                // Training seeds live far from the evaluation seeds (1000–1004).
                let seed = 1_000_000 + rng.random_range(0..1_000_000u64);
                let params = randomised(&w.params, cfg, &mut rng);
                let cx = w.context();
                let start = rng
                    .random_bool(cfg.random_start.clamp(0.0, 1.0))
                    .then(|| random_start(&w.workload, &cx.bounds, &mut rng));
                // Drawn only when on, so runs without it reproduce the same training.
                let shift = if cfg.rate_shift > 0.0 && rng.random_bool(cfg.rate_shift.min(1.0)) {
                    rng.random_range(0.0..=w.workload.duration_s / 2.0)
                } else {
                    0.0
                };
                let profile = (cfg.profile_swap > 0.0
                    && rng.random_bool(cfg.profile_swap.min(1.0)))
                .then(|| random_profile(&w.workload.source.rate, w.workload.duration_s, &mut rng));
                // Tuned DS2 on the very same run (workload, constants, seed, start): the bar
                // this run's return is held to when `ds2_margin` is on.
                let ds2_objective = if cfg.ds2_margin > 0.0 {
                    let mut ds2_env =
                        SimEnv::new(&w.workload, params.clone(), seed).with_rate_shift(shift);
                    if let Some(profile) = &profile {
                        ds2_env = ds2_env.with_rate_profile(profile.clone());
                    }
                    if let Some(start) = &start {
                        ds2_env = ds2_env.starting_from(start.clone());
                    }
                    let mut ds2 = Ds2::new(w.ds2);
                    Some(run(&mut ds2_env, &mut ds2, &cx, None, |_, _| {})?.objective)
                } else {
                    None
                };
                let mut env = SimEnv::new(&w.workload, params, seed).with_rate_shift(shift);
                if let Some(profile) = profile {
                    env = env.with_rate_profile(profile);
                }
                if let Some(start) = start {
                    env = env.starting_from(start);
                }
                episodes.push(Episode {
                    env,
                    cx,
                    history: History::default(),
                    previous: None,
                    rng: SmallRng::seed_from_u64(seed),
                    steps: Vec::new(),
                    scores: Vec::new(),
                    current: None,
                    stage_names: Vec::new(),
                    done: false,
                    ds2_objective,
                });
            }
        }
        rollout(&mut episodes, &infer, &infer_device, &stats)?;
        let objective = episodes
            .iter()
            .map(|e| e.scores.iter().sum::<f64>() / e.scores.len().max(1) as f64)
            .sum::<f64>()
            / episodes.len().max(1) as f64;
        let mut batch: Vec<Transition> = Vec::new();
        for e in &mut episodes {
            // The last decision of a run leads nowhere: drop it.
            e.steps.pop();
            if let Some(bar) = e.ds2_objective {
                // A run that ends below tuned DS2 on the same run costs every one of its
                // decisions the gap per epoch, `ds2_margin` times over.
                let own = e.scores.iter().sum::<f64>() / e.scores.len().max(1) as f64;
                let penalty = (cfg.ds2_margin * (bar - own).max(0.0)) as f32;
                for step in &mut e.steps {
                    step.reward -= penalty;
                    for stage in &mut step.stages {
                        if let Some(r) = &mut stage.reward {
                            *r -= penalty;
                        }
                    }
                }
            }
            advantages(&mut e.steps, cfg.gamma, cfg.lambda);
            batch.append(&mut e.steps);
        }
        total_steps += batch.len();
        let (model_next, losses) = update(model, &mut optim, &batch, cfg, &device, &mut rng, false);
        model = model_next;
        let point = CurvePoint {
            iteration: cfg.lookahead_rounds + iteration,
            steps: total_steps,
            objective,
            policy_loss: losses.0,
            value_loss: losses.1,
            entropy: losses.2,
            seconds: started.elapsed().as_secs_f64(),
            lookahead: false,
        };
        progress(&point);
        curve.push(point);
        experience.extend(batch);
        if cfg.select_every > 0 && (iteration + 1) % cfg.select_every == 0 {
            let done = cfg.lookahead_rounds + iteration + 1;
            selection.consider(done, model.valid(), &stats, workloads)?;
        }
    }
    let (net, selected) = match selection.take_best() {
        Some((net, iteration, score)) if cfg.select_every > 0 || cfg.lookahead_rounds > 0 => {
            (net, Some((iteration, score)))
        }
        _ => (model.valid(), None),
    };
    Ok(Trained {
        net,
        selected,
        stats,
        curve,
        seconds: started.elapsed().as_secs_f64(),
        experience,
        baseline: selection.baseline,
        candidates: selection.candidates,
    })
}

/// `start` with each stage's input buffer doubled 0 to 4 times (drawn evenly), brought within
/// the bounds' buffer budget.
fn random_buffers(start: &JobConfig, bounds: &Bounds, rng: &mut SmallRng) -> JobConfig {
    let mut proposed = start.clone();
    for (name, _, _) in &bounds.stages {
        for _ in 0..rng.random_range(0..=4) {
            crate::agent::actions::move_input_buffer(&mut proposed, name, 2);
        }
    }
    clamp(start, &proposed, bounds).config
}

/// A configuration of `workload` with each stage's parallelism drawn from 1 to twice what the
/// workload's thread budget would give every stage evenly (within the stage's bounds), then
/// brought within the budget.
fn random_start(workload: &Workload, bounds: &Bounds, rng: &mut SmallRng) -> JobConfig {
    let initial = initial_config(workload);
    let even = (bounds.max_threads / bounds.stages.len().max(1)).max(1);
    let mut proposed = initial.clone();
    for (name, min, max) in &bounds.stages {
        let hi = (2 * even).clamp(*min, *max);
        proposed.set_parallelism(name, rng.random_range(*min..=hi));
    }
    clamp(&initial, &proposed, bounds).config
}

//! Live reconfiguration through an in-process barrier.
//!
//! 1. The controller tells every source worker to inject `Barrier(n)` into each output channel
//!    (after its pending records) and pause.
//! 2. An operator worker that has received the barrier from every upstream worker of every
//!    input (alignment) runs its operator's barrier hook, flushes its partial batches, forwards
//!    the barrier, hands its stage state and watermark back to the controller and exits. Since
//!    sources pause behind their barriers, nothing follows a barrier on any channel: alignment
//!    never has to hold back input.
//! 3. When every worker has retired (the **drain**), the controller regroups each keyed stage's
//!    state by key group for its new parallelism, builds new channels with the new capacities
//!    and batch sizes, and starts the new generation's workers.
//! 4. Sources resume on the new channels. The **pause** runs from barrier injection to resume.
//!    An epoch that ended during the pause is published just before the resume, so what the
//!    sources emit on the new channels always counts in the next epoch, which keeps the
//!    cadence but is never shorter than half an epoch.
//!
//! Every record is processed exactly once: the barrier separates what the old generation
//! processed (all of it, drained) from what the new one will. Per-key order holds where a key's
//! records flow through a single channel per generation (hash edges from an order-preserving
//! upstream), since generations do not overlap.
//!
//! With [`Rescale::HandOver`](crate::Rescale) the queued records are not drained. The
//! controller raises a flag instead of injecting barriers: every operator worker stops after the
//! message in hand (running the operator's barrier hook, as at a barrier), and every send that
//! finds a full channel hands its batch back instead of blocking (the *stash*), since its
//! receiver may have stopped. Once all have stopped, each edge's unread batches — what a
//! worker had left of its own prelude, then its channel, then what the senders stashed —
//! become the first input of the new generation's workers (the *prelude*, read before any
//! channel): kept with their target where the downstream parallelism is unchanged (so key
//! groups and per-sender order hold); where it changed, sent record by record to the new owner
//! of the key group on a keyed stream's hash edge (a key's records keep their order) and dealt
//! round-robin on a rebalanced edge. Any other change (a stage behind a forward or broadcast
//! edge changing parallelism, or an ended source) drains instead. Markers are dropped: the new generation starts from the watermarks the workers
//! hand back, and sources send theirs again on resume. Each record is still processed exactly
//! once — by the old generation if it got that far, else by the new one.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::channel::{POLL, Timestamp};
use crate::config::{JobConfig, Rescale};
use crate::error::ReconfigError;
use crate::graph::{AnyBox, NewTargets, Preludes, Runner, StateMoves};
use crate::metrics::ReconfigSummary;
use crate::pipeline::merge_config;
use crate::runtime::Controller;
use crate::worker::{SourceCommand, WorkerEvent};

/// What a reconfiguration did and how long the job paused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconfigReport {
    /// The generation it started (unchanged when nothing changed).
    pub generation: u64,
    /// False when the requested configuration equals the current one (no barrier was run).
    pub changed: bool,
    /// Barrier injection to source resume.
    pub pause: Duration,
    /// Barrier injection to the last worker drained.
    pub drain: Duration,
    /// Batches (and markers) queued in channels when the barrier was injected.
    pub queued_batches_at_barrier: usize,
    /// Sources that had run out of input when the barrier was injected.
    pub sources_exhausted: usize,
    /// Stages whose parallelism changed, as `(stage, old, new)`.
    pub parallelism_changes: Vec<(String, usize, usize)>,
    /// Edges whose capacity or batch size changed.
    pub edges_changed: Vec<String>,
    /// Per keyed stage whose state moved: `(stage, key groups moved, keys moved)`.
    pub state_moves: Vec<(String, u64, u64)>,
    /// True when the queued records were handed over ([`Rescale::HandOver`](crate::Rescale))
    /// rather than drained.
    #[serde(default)]
    pub handed_over: bool,
    /// Records handed to the new generation (0 after a drain).
    #[serde(default)]
    pub carried_records: u64,
}

impl ReconfigReport {
    /// Key groups that changed worker, over all stages.
    pub fn key_groups_moved(&self) -> u64 {
        self.state_moves.iter().map(|m| m.1).sum()
    }

    /// Keys that changed worker, over all stages.
    pub fn keys_moved(&self) -> u64 {
        self.state_moves.iter().map(|m| m.2).sum()
    }
}

impl Controller {
    /// Applies `requested` through the barrier protocol.
    pub(crate) fn reconfigure(
        &mut self,
        requested: JobConfig,
    ) -> Result<ReconfigReport, ReconfigError> {
        if !self.is_running() {
            return Err(ReconfigError::JobNotRunning);
        }
        let new = merge_config(
            &self.pipeline.stages,
            &self.pipeline.edges,
            &self.config,
            &requested,
        )?;
        let parallelism_changes: Vec<(String, usize, usize)> = new
            .stages
            .iter()
            .filter_map(|(name, s)| {
                let old = self.config.parallelism(name)?;
                (old != s.parallelism).then(|| (name.clone(), old, s.parallelism))
            })
            .collect();
        let edges_changed: Vec<String> = new
            .edges
            .iter()
            .filter(|(name, e)| self.config.edges.get(*name) != Some(*e))
            .map(|(name, _)| name.clone())
            .collect();
        if parallelism_changes.is_empty() && edges_changed.is_empty() {
            return Ok(ReconfigReport {
                generation: self.generation,
                changed: false,
                pause: Duration::ZERO,
                drain: Duration::ZERO,
                queued_batches_at_barrier: 0,
                sources_exhausted: self.exhausted,
                parallelism_changes,
                edges_changed,
                state_moves: Vec::new(),
                handed_over: false,
                carried_records: 0,
            });
        }

        // 1. Inject the barrier.
        let started = Instant::now();
        let queued = self.collector.queued_messages();
        let sources_exhausted = self.exhausted;
        let id = self.generation + 1;
        let hand_over = self.options.rescale == Rescale::HandOver && self.hand_over_allowed(&new);
        if hand_over {
            self.env.handing_over.store(true, Ordering::SeqCst);
            self.tell_sources(|_, _| SourceCommand::HandOver);
        } else {
            self.tell_sources(|_, _| SourceCommand::Barrier(id));
        }

        // 2. Wait for every source to pause and every operator worker to retire.
        let n_stages = self.pipeline.stages.len();
        let mut states: Vec<Vec<Option<AnyBox>>> = (0..n_stages)
            .map(|s| {
                let p = self
                    .config
                    .parallelism(&self.pipeline.stages[s].name)
                    .unwrap_or(0);
                (0..p).map(|_| None).collect()
            })
            .collect();
        // Per stage, per worker: what each output edge's writer stashed (a hand-over).
        let mut stashes: Vec<Vec<Vec<Option<AnyBox>>>> = (0..n_stages)
            .map(|s| {
                let p = self.parallelism(s);
                (0..p).map(|_| Vec::new()).collect()
            })
            .collect();
        // Per stage, per worker, per input edge: what was left of its prelude (a hand-over).
        let mut unreads = stashes
            .iter()
            .map(|workers| workers.iter().map(|_| Vec::new()).collect())
            .collect::<Vec<Vec<Vec<Option<AnyBox>>>>>();
        let mut watermarks: Vec<Option<Timestamp>> = vec![None; n_stages];
        let mut paused = 0;
        let mut retired = 0;
        let expected_retired = self.live_operators;
        while paused < self.source_workers() || retired < expected_retired {
            if self.env.abort.load(Ordering::Relaxed) {
                self.env.handing_over.store(false, Ordering::SeqCst);
                return Err(ReconfigError::JobNotRunning);
            }
            match self.events.recv_timeout(POLL) {
                Ok(WorkerEvent::Paused {
                    stage,
                    worker,
                    stashed,
                }) => {
                    if let Some(slot) = stashes.get_mut(stage).and_then(|s| s.get_mut(worker)) {
                        *slot = stashed.into_iter().map(Some).collect();
                    }
                    paused += 1;
                }
                Ok(WorkerEvent::Retired {
                    stage,
                    worker,
                    state,
                    watermark,
                    stashed,
                    unread,
                }) => {
                    if let Some(slot) = stashes.get_mut(stage).and_then(|s| s.get_mut(worker)) {
                        *slot = stashed.into_iter().map(Some).collect();
                    }
                    if let Some(slot) = unreads.get_mut(stage).and_then(|s| s.get_mut(worker)) {
                        *slot = unread.into_iter().map(Some).collect();
                    }
                    if let Some(slot) = states.get_mut(stage).and_then(|s| s.get_mut(worker)) {
                        *slot = Some(state);
                    }
                    let w = &mut watermarks[stage];
                    *w = Some(w.map_or(watermark, |x: Timestamp| x.min(watermark)));
                    retired += 1;
                    self.live_operators -= 1;
                }
                Ok(WorkerEvent::Exhausted { .. }) => self.exhausted += 1,
                Ok(WorkerEvent::Failed {
                    stage,
                    worker,
                    message,
                }) => {
                    self.worker_ended(stage);
                    let text = format!(
                        "stage `{}` worker {worker}: {message}",
                        self.pipeline.stages[stage].name
                    );
                    self.fail(stage, worker, message);
                    self.env.handing_over.store(false, Ordering::SeqCst);
                    return Err(ReconfigError::JobFailed(text));
                }
                Ok(WorkerEvent::Aborted { stage, .. })
                | Ok(WorkerEvent::Finished { stage, .. }) => {
                    self.worker_ended(stage);
                }
                Err(_) => {}
            }
        }
        let drain = started.elapsed();
        // Every old worker has stopped: nothing sends on the old channels any more.
        let (preludes, carried_records) = if hand_over {
            self.env.handing_over.store(false, Ordering::SeqCst);
            match self.reroute_queued(&new, &mut stashes, &mut unreads) {
                Ok(routed) => routed,
                Err(message) => {
                    self.fail(0, 0, format!("internal error: {message}"));
                    return Err(ReconfigError::JobFailed(message));
                }
            }
        } else {
            (Vec::new(), 0)
        };

        // 3. Regroup state for the new parallelism and start the next generation.
        let mut new_states: Vec<Vec<AnyBox>> = Vec::with_capacity(n_stages);
        let mut state_moves = Vec::new();
        for (s, stage_states) in states.into_iter().enumerate() {
            let node = &self.pipeline.stages[s];
            let Runner::Operator(runner) = &node.runner else {
                new_states.push(Vec::new());
                continue;
            };
            let old: Option<Vec<AnyBox>> = stage_states.into_iter().collect();
            let new_p = new.parallelism(&node.name).unwrap_or(node.parallelism);
            let regrouped = old.and_then(|old| runner.redistribute(old, node.key_groups, new_p));
            let name = node.name.to_string();
            let Some((regrouped, moves)) = regrouped else {
                self.fail(
                    s,
                    0,
                    "internal error: stage state missing at a barrier".into(),
                );
                return Err(ReconfigError::JobFailed(format!(
                    "stage `{name}`: state missing at the barrier"
                )));
            };
            if moves != StateMoves::default() {
                state_moves.push((name, moves.key_groups, moves.keys));
            }
            new_states.push(regrouped);
            if let Some(w) = watermarks[s] {
                self.watermarks[s] = self.watermarks[s].max(w);
            }
        }
        self.config = new;
        self.generation = id;
        let outputs = match self.spawn_generation(new_states, preludes) {
            Ok(outputs) => outputs,
            Err(e) => {
                let text = e.to_string();
                self.failure.get_or_insert(e);
                self.abort();
                return Err(ReconfigError::JobFailed(text));
            }
        };

        // An epoch that ended during the pause is cut here, before any source resumes: what
        // the sources emit on the new channels belongs to the next epoch, whichever thread
        // runs first, and that epoch is not a sliver.
        let pause = started.elapsed();
        self.last_reconfiguration = Some(ReconfigSummary {
            generation: id,
            pause_ms: pause.as_secs_f64() * 1e3,
            drain_ms: drain.as_secs_f64() * 1e3,
        });
        self.publish_snapshot_if_due(Instant::now());

        // 4. Resume the sources on the new channels.
        let mut outputs: Vec<std::vec::IntoIter<Vec<AnyBox>>> =
            outputs.into_iter().map(Vec::into_iter).collect();
        let source_stages: Vec<usize> = (0..n_stages)
            .filter(|&s| matches!(self.pipeline.stages[s].runner, Runner::Source(_)))
            .collect();
        let chunks: Vec<usize> = source_stages.iter().map(|&s| self.chunk(s)).collect();
        self.tell_sources(|stage, _| {
            let k = source_stages.iter().position(|&s| s == stage).unwrap_or(0);
            SourceCommand::Resume {
                outputs: outputs
                    .get_mut(k)
                    .and_then(Iterator::next)
                    .unwrap_or_default(),
                chunk: chunks.get(k).copied().unwrap_or(1),
                generation: id,
            }
        });
        let report = ReconfigReport {
            generation: id,
            changed: true,
            pause,
            drain,
            queued_batches_at_barrier: queued,
            sources_exhausted,
            parallelism_changes,
            edges_changed,
            state_moves,
            handed_over: hand_over,
            carried_records,
        };
        self.reconfigurations.push(report.clone());
        Ok(report)
    }

    /// Whether `new` may be applied by a hand-over: no source has ended (its end-of-stream
    /// markers may be queued), and every stage whose parallelism changes is an operator that
    /// reads only rebalanced edges (nothing ties a queued record to a worker) or hash edges of
    /// keyed streams (a queued record's key says where it goes now).
    fn hand_over_allowed(&self, new: &JobConfig) -> bool {
        if self.exhausted > 0 {
            return false;
        }
        let edges = &self.pipeline.edges;
        self.pipeline.stages.iter().enumerate().all(|(i, stage)| {
            let old = self.parallelism(i);
            if new.parallelism(&stage.name).unwrap_or(old) == old {
                return true;
            }
            matches!(stage.runner, Runner::Operator(_))
                && stage.inputs.iter().all(|&e| {
                    edges[e]
                        .partition
                        .hand_over_may_rescale(edges[e].factory.rekeyable())
                })
        })
    }

    /// A hand-over's re-routing: per edge, what its old downstream workers had not read (the
    /// rest of a prelude, then the channel) and what its senders stashed, as the prelude of each
    /// new downstream worker. Returns the preludes (per edge, per
    /// new worker) and the records they carry.
    fn reroute_queued(
        &self,
        new: &JobConfig,
        stashes: &mut [Vec<Vec<Option<AnyBox>>>],
        unreads: &mut [Vec<Vec<Option<AnyBox>>>],
    ) -> Result<(Preludes, u64), String> {
        let mut preludes = Vec::with_capacity(self.pipeline.edges.len());
        let mut carried = 0;
        for (e, edge) in self.pipeline.edges.iter().enumerate() {
            let to = &self.pipeline.stages[edge.to];
            let old_p = self.parallelism(edge.to);
            let new_p = new.parallelism(&to.name).unwrap_or(old_p);
            let k = self.pipeline.stages[edge.from]
                .outputs
                .iter()
                .position(|&o| o == e)
                .ok_or("an edge missing from its stage's outputs")?;
            let stashed: Vec<AnyBox> = stashes[edge.from]
                .iter_mut()
                .filter_map(|worker| worker.get_mut(k).and_then(Option::take))
                .collect();
            // Per old target: the rest of its prelude, then its channel.
            let input = to
                .inputs
                .iter()
                .position(|&i| i == e)
                .ok_or("an edge missing from its stage's inputs")?;
            let mut queued = Vec::new();
            for (w, channel) in self.collector.take_queued(e).into_iter().enumerate() {
                if let Some(rest) = unreads[edge.to]
                    .get_mut(w)
                    .and_then(|u| u.get_mut(input))
                    .and_then(Option::take)
                {
                    queued.push((w, rest));
                }
                queued.push((w, channel));
            }
            let to_targets = NewTargets {
                p_to: new_p,
                keep_targets: new_p == old_p,
                groups: to.key_groups,
            };
            let (routed, records) = edge
                .factory
                .reroute(queued, stashed, to_targets)
                .ok_or_else(|| {
                    format!("edge `{}`: queued records of unexpected type", edge.name)
                })?;
            carried += records;
            preludes.push(routed.into_iter().map(Some).collect());
        }
        Ok((preludes, carried))
    }
}

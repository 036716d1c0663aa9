//! The queueing model of one workload's pipeline: one epoch at a time, from a configuration,
//! the offered load and what the previous epoch left queued.

use rheo_engine::JobConfig;
use rheo_engine::config::EdgeConfig;
use rheo_engine::partition::{DEFAULT_KEY_GROUPS, Partition, key_group, key_group_range, key_hash};

use super::SimParams;
use crate::spec::{SINK, SOURCE, Workload};

/// Per key group, its share of a Zipf key distribution (hashed as the engine hashes keys).
fn group_shares(key_space: u64, skew: f64) -> Vec<f64> {
    let groups = DEFAULT_KEY_GROUPS;
    let mut shares = vec![0.0; groups as usize];
    let weights: Vec<f64> = (0..key_space)
        .map(|k| ((k + 1) as f64).powf(-skew))
        .collect();
    let total: f64 = weights.iter().sum();
    for (k, w) in weights.iter().enumerate() {
        shares[key_group(key_hash(&(k as u64)), groups) as usize] += w / total;
    }
    shares
}

/// The pipeline model of one workload.
#[derive(Debug, Clone)]
pub struct Model {
    pub(super) workload: Workload,
    pub(super) params: SimParams,
    /// Per parallelism (index p), the busiest worker's share under hash partitioning.
    hash_share: Vec<f64>,
    /// This epoch's service-rate noise per stage.
    noise: Vec<f64>,
}

/// Per stage: service rate, CPU per record, effective batch; and the pipeline's capacity.
struct StageModel {
    mu: Vec<f64>,
    /// Whether the stage keeps up only by making its input batches grow (channel full).
    filled: Vec<bool>,
    cpu_us: Vec<f64>,
    b_eff: Vec<f64>,
    /// Source events per second the pipeline can take.
    capacity: f64,
    bottleneck: usize,
}

/// What an epoch hands to the next: events waiting at the source and queued in channels.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Carry {
    /// Due at the source, not yet emitted.
    pub backlog: f64,
    /// Emitted, waiting in channels.
    pub queued: f64,
    /// Whether the channels up to the bottleneck ended the epoch full, so senders block and
    /// their batches grow past the flush size.
    pub full: bool,
}

/// How the reconfiguration at the start of an epoch treats queued events (the engine's
/// [`rheo_engine::Rescale`], with what the model needs to price it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reconfiguration {
    /// The old configuration, which absorbed `previous_capacity` events/s, drains the queues.
    Drain {
        /// Events per second the old configuration absorbed.
        previous_capacity: f64,
    },
    /// The queues go to the new configuration after workers finish the batch in hand.
    HandOver {
        /// Seconds the workers take to stop.
        stop_s: f64,
    },
}

/// Which batches form on the edges.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Batching {
    /// Senders flush partial batches on the timeout: no channel is full yet.
    Flush,
    /// As [`Batching::Flush`], but a stage whose per-batch cost makes it fall behind has its
    /// batches grow until it keeps up (its channel is full and its senders block).
    Grow,
    /// Every batch fills: the source works off a backlog.
    Full,
}

impl EpochOutcome {
    /// What this epoch hands to the next.
    pub fn carry(&self) -> Carry {
        Carry {
            backlog: self.backlog,
            queued: self.queued,
            full: self.full,
        }
    }
}

/// What one epoch of the model yields.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochOutcome {
    /// Events emitted by the source.
    pub emitted: f64,
    /// Events the pipeline worked through (in source events).
    pub processed: f64,
    /// Backlog at the end of the epoch.
    pub backlog: f64,
    /// Events queued in channels at the end of the epoch.
    pub queued: f64,
    /// Whether the channels up to the bottleneck ended the epoch full.
    pub full: bool,
    /// Events the source can emit per second with this configuration.
    pub capacity: f64,
    /// The stage that limits the capacity.
    pub bottleneck: usize,
    /// p99 latency, ms.
    pub p99_ms: f64,
    /// Per stage: average busy fraction of its workers.
    pub busy: Vec<f64>,
    /// Per stage: busy fraction of its busiest worker (the hottest key range under skew).
    pub hottest: Vec<f64>,
    /// Per stage: (blocked, idle) fractions.
    pub waiting: Vec<(f64, f64)>,
    /// Per stage: input channel fill, 0..1.
    pub occupancy: Vec<f64>,
    /// Per stage: per-worker service rate μ (records per busy second).
    pub mu: Vec<f64>,
    /// Per stage: input rate multiplier relative to the source rate.
    pub gain: Vec<f64>,
    /// Per stage: CPU µs per record.
    pub cpu_us: Vec<f64>,
    /// Per stage: records per arriving batch.
    pub batch: Vec<f64>,
    /// Seconds the source paused for a reconfiguration at the start of the epoch.
    pub pause_s: f64,
}

impl Model {
    /// The model of `workload` with `params`.
    pub fn new(workload: &Workload, params: SimParams) -> Model {
        let shares = group_shares(workload.source.key_space, workload.source.key_skew);
        let max_p = workload
            .stages
            .iter()
            .map(|s| workload.max_parallelism(s))
            .max()
            .unwrap_or(1)
            .max(1);
        let hash_share = (0..=max_p)
            .map(|p| {
                if p == 0 {
                    return 1.0;
                }
                (0..p)
                    .map(|w| {
                        key_group_range(w, p, DEFAULT_KEY_GROUPS)
                            .map(|g| shares[g as usize])
                            .sum::<f64>()
                    })
                    .fold(0.0, f64::max)
            })
            .collect();
        Model {
            workload: workload.clone(),
            params,
            hash_share,
            noise: Vec::new(),
        }
    }

    /// The workload.
    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    /// The constants.
    pub fn params(&self) -> &SimParams {
        &self.params
    }

    /// Name of the edge into stage `i`.
    pub fn edge_into(&self, i: usize) -> String {
        let from = if i == 0 {
            SOURCE
        } else {
            &self.workload.stages[i - 1].name
        };
        format!("{from}->{}", self.workload.stages[i].name)
    }

    /// The edge into the sink.
    pub fn sink_edge(&self) -> String {
        let last = self
            .workload
            .stages
            .last()
            .map_or(SOURCE, |s| s.name.as_str());
        format!("{last}->{SINK}")
    }

    /// Busy fraction of stage `i`'s busiest worker, with `p` workers taking `input` records/s
    /// at `mu` records per busy second each.
    fn hottest_busy(&self, i: usize, p: usize, input: f64, mu: f64) -> f64 {
        (input * self.share(i, p) / mu.max(1e-9)).clamp(0.0, 1.0)
    }

    fn share(&self, i: usize, p: usize) -> f64 {
        match self.workload.stages[i].partition {
            Partition::Hash => self.hash_share.get(p).copied().unwrap_or(1.0 / p as f64),
            Partition::Broadcast => 1.0,
            Partition::Forward | Partition::Rebalance => 1.0 / p as f64,
        }
    }

    /// Service rates, capacities and batch sizes of every stage at source rate `rate`, with the
    /// batches `batching` forms.
    fn stages(
        &self,
        config: &JobConfig,
        gain: &[f64],
        rate: f64,
        batching: Batching,
    ) -> StageModel {
        let w = &self.workload;
        let par = |name: &str| self.parallelism(config, name);
        let n = w.stages.len();
        let mut model = StageModel {
            mu: Vec::with_capacity(n),
            filled: Vec::with_capacity(n),
            cpu_us: Vec::with_capacity(n),
            b_eff: Vec::with_capacity(n),
            capacity: f64::INFINITY,
            bottleneck: 0,
        };
        let mut cpu_per_event = self.params.source_overhead_us;
        for (i, s) in w.stages.iter().enumerate() {
            let p = par(&s.name);
            let p_up = if i == 0 {
                1
            } else {
                par(&w.stages[i - 1].name)
            };
            let batch_size = config
                .edges
                .get(&self.edge_into(i))
                .map_or(w.initial.batch_size, |e| e.batch_size);
            let per_buffer = rate * gain[i]
                / p_up as f64
                / if s.partition == Partition::Hash {
                    p as f64
                } else {
                    1.0
                };
            let factor = self
                .params
                .rate_factor
                .get(i)
                .copied()
                .unwrap_or(1.0)
                .max(1e-6);
            let noise = self.noise.get(i).copied().unwrap_or(1.0);
            let alpha = self.params.scaling.get(i).copied().unwrap_or(1.0);
            let spread = (1.0 / self.share(i, p)).powf(alpha);
            let mut b = if batching == Batching::Full {
                batch_size as f64
            } else {
                self.params.flush_batch(per_buffer, batch_size as f64)
            };
            // A stage with a per-batch cost that falls behind makes its upstream's batches
            // grow (the sender fills its batch while blocked on the full channel) until the
            // stage keeps up or the batches are full: it then runs saturated, channel full.
            let mut filled = false;
            if s.batch_wait_us > 0.0 && batching != Batching::Flush {
                let input = rate * gain[i];
                let per_record_room = 1e6 * noise * spread / input.max(1e-9)
                    - (s.cpu_us + s.wait_us) / factor
                    - self.params.overhead_us;
                let needed = if per_record_room > 0.0 {
                    s.batch_wait_us / factor / per_record_room
                } else {
                    f64::INFINITY
                };
                if needed > b {
                    b = needed.min(batch_size as f64);
                    filled = true;
                }
            }
            let cpu_us = s.cpu_us / factor + self.params.overhead_us;
            let service =
                (s.cpu_us + s.wait_us + s.batch_wait_us / b) / factor + self.params.overhead_us;
            let mu = 1e6 / service * noise;
            let mut capacity = mu * spread;
            // CPU work runs on at most as many cores as there are workers (and cores).
            capacity = capacity.min(self.params.cores.min(p as f64) * 1e6 / cpu_us);
            cpu_per_event += gain[i] * cpu_us;
            let limit = capacity / gain[i];
            if limit < model.capacity {
                model.capacity = limit;
                model.bottleneck = i;
            }
            model.mu.push(mu);
            model.cpu_us.push(cpu_us);
            model.b_eff.push(b);
            model.filled.push(filled);
        }
        model.capacity = model
            .capacity
            .min(self.params.cores * 1e6 / cpu_per_event.max(1e-9));
        model
    }

    /// Workers of `stage` under `config` (the workload's starting parallelism where the
    /// configuration does not say), at least one.
    fn parallelism(&self, config: &JobConfig, stage: &str) -> usize {
        config
            .parallelism(stage)
            .unwrap_or(self.workload.initial.parallelism)
            .max(1)
    }

    /// Runs one epoch of `epoch_s` seconds with `config`, `offered` new events, and the backlog
    /// and queued events of `state`; `noise` multiplies each stage's service rate.
    pub fn epoch(
        &mut self,
        config: &JobConfig,
        offered: f64,
        state: Carry,
        noise: &[f64],
    ) -> EpochOutcome {
        self.epoch_span(config, offered, state, noise, 1.0)
    }

    /// If the workload asks for hand-overs ([`rheo_engine::Rescale::HandOver`]) and the engine
    /// would hand this change over (every stage whose parallelism changes reads a rebalanced or
    /// hash edge), the seconds the workers of `previous` take to stop: half the longest batch
    /// in hand, at full batch size (changes come under load). `None` when the change drains.
    pub fn hand_over_stop_s(
        &mut self,
        previous: &JobConfig,
        next: &JobConfig,
        noise: &[f64],
    ) -> Option<f64> {
        let w = &self.workload;
        let eligible = w.rescale == rheo_engine::Rescale::HandOver
            && w.stages.iter().all(|s| {
                // The engine's own rule; a spec's hash stage is built as a keyed stream.
                previous.parallelism(&s.name) == next.parallelism(&s.name)
                    || s.partition.hand_over_may_rescale(true)
            });
        if !eligible {
            return None;
        }
        let batch = |i: usize| {
            previous
                .edges
                .get(&self.edge_into(i))
                .map_or(w.initial.batch_size, |e| e.batch_size) as f64
        };
        let batches: Vec<f64> = (0..w.stages.len()).map(batch).collect();
        let idle = self.epoch(previous, 0.0, Carry::default(), noise);
        Some(
            0.5 * batches
                .iter()
                .zip(&idle.mu)
                .map(|(b, mu)| b / mu.max(1e-9))
                .fold(0.0, f64::max),
        )
    }

    /// The reconfiguration the engine makes going from `previous` to `next`: a hand-over where
    /// [`Model::hand_over_stop_s`] finds one, else a drain through the old configuration, whose
    /// capacity `previous_capacity` gives (asked only for a drain).
    pub fn reconfiguration(
        &mut self,
        previous: &JobConfig,
        next: &JobConfig,
        noise: &[f64],
        previous_capacity: impl FnOnce(&mut Model) -> f64,
    ) -> Reconfiguration {
        match self.hand_over_stop_s(previous, next, noise) {
            Some(stop_s) => Reconfiguration::HandOver { stop_s },
            None => Reconfiguration::Drain {
                previous_capacity: previous_capacity(self),
            },
        }
    }

    /// Like [`Model::epoch`], for an epoch that starts with a reconfiguration. With
    /// [`Reconfiguration::Drain`] the barrier first drains what is queued through the old configuration
    /// (which absorbed `previous_capacity` events/s) while the source pauses, so the epoch loses
    /// that time, the events due meanwhile join the backlog, and every event waits out the
    /// pause. With [`Reconfiguration::HandOver`] the source pauses only while workers finish the batch
    /// in hand (`stop_s`) and the queued events stay queued, for the new configuration.
    pub fn epoch_after_change(
        &mut self,
        config: &JobConfig,
        offered: f64,
        state: Carry,
        noise: &[f64],
        change: Reconfiguration,
    ) -> EpochOutcome {
        let e = self.workload.epoch_s;
        // Plus a millisecond to rebuild and restart.
        let (pause_s, queued) = match change {
            Reconfiguration::Drain { previous_capacity } => {
                (state.queued / previous_capacity.max(1.0) + 0.001, 0.0)
            }
            Reconfiguration::HandOver { stop_s } => (stop_s.min(e) + 0.001, state.queued),
        };
        if pause_s >= e {
            // Full queues drain longer than an epoch: the source emits nothing all epoch (the
            // engine stretches the epoch to the end of the pause; the next one catches up).
            return self.paused_epoch(config, offered, state, noise, pause_s);
        }
        let active = 1.0 - pause_s / e;
        let carry = Carry {
            backlog: state.backlog + offered * (1.0 - active),
            queued,
            // A drain empties the channels; a hand-over keeps what they held.
            full: queued > 0.0 && state.full,
        };
        let mut out = self.epoch_span(config, offered * active, carry, noise, active);
        out.processed += state.queued - queued;
        out.pause_s = pause_s;
        out
    }

    /// An epoch spent entirely in a reconfiguration's drain: nothing emitted, the queued events
    /// worked off through the old configuration, every due event joins the backlog, and the
    /// drained events wait out the pause.
    fn paused_epoch(
        &mut self,
        config: &JobConfig,
        offered: f64,
        state: Carry,
        noise: &[f64],
        pause_s: f64,
    ) -> EpochOutcome {
        // The new configuration's shape (capacity, bottleneck, per-stage rates) from an idle
        // sliver of an epoch.
        let mut out = self.epoch_span(config, 0.0, Carry::default(), noise, 1e-3);
        out.emitted = 0.0;
        out.processed = state.queued;
        out.backlog = state.backlog + offered;
        out.queued = 0.0;
        out.full = false;
        out.p99_ms = self.params.latency_floor_ms + self.params.latency_factor * pause_s * 1e3;
        out.pause_s = pause_s;
        let rate = state.queued / self.workload.epoch_s;
        for (i, s) in self.workload.stages.iter().enumerate() {
            let p = self.parallelism(config, &s.name) as f64;
            out.busy[i] = (rate * out.gain[i] / (out.mu[i] * p).max(1e-9)).min(1.0);
            out.hottest[i] = self.hottest_busy(i, p as usize, rate * out.gain[i], out.mu[i]);
            out.waiting[i] = (0.0, 1.0 - out.busy[i]);
        }
        out
    }

    fn epoch_span(
        &mut self,
        config: &JobConfig,
        offered: f64,
        state: Carry,
        noise: &[f64],
        span: f64,
    ) -> EpochOutcome {
        self.noise.clear();
        self.noise.extend_from_slice(noise);
        let w = &self.workload;
        let e = w.epoch_s * span;
        let par = |name: &str| self.parallelism(config, name);
        let edge = |name: String| {
            config.edges.get(&name).copied().unwrap_or(EdgeConfig {
                capacity: w.initial.buffer,
                batch_size: w.initial.batch_size,
            })
        };
        let n = w.stages.len();
        // Rate multipliers along the chain.
        let mut gain = Vec::with_capacity(n);
        let mut g = 1.0;
        for s in &w.stages {
            gain.push(g);
            g *= s.selectivity;
        }
        let sink_gain = g;
        let demand = offered + state.backlog;
        // Channels up to the bottleneck, in source events: at flush-sized batches while no
        // sender blocks, at full batches once they do.
        let room = |stage: &StageModel, batching: Batching| -> f64 {
            (0..=stage.bottleneck.min(n.saturating_sub(1)))
                .map(|i| {
                    let ec = edge(self.edge_into(i));
                    let b = if batching == Batching::Flush {
                        stage.b_eff[i]
                    } else {
                        ec.batch_size as f64
                    };
                    ec.capacity as f64 * b * par(&w.stages[i].name) as f64 / gain[i].max(1e-9)
                })
                .sum()
        };
        // Senders block, and their batches grow past the flush size, only behind a full
        // channel: one the epoch before left full, a backlog at the source (it emits as fast as
        // the channels take), or a shortfall this epoch beyond the channels' room. Until then a
        // stage with a per-batch cost works at flush-sized batches and the shortfall queues.
        let mut batching = if state.full || state.backlog > 1.0 {
            Batching::Grow
        } else {
            Batching::Flush
        };
        // Partial batches depend on the rate, and the rate on the capacity: start from the rate
        // wanted, then refine once with the rate achieved.
        let mut stage = self.stages(config, &gain, demand / e, batching);
        if batching == Batching::Flush
            && stage.capacity * e < demand
            && state.queued + demand - stage.capacity * e >= room(&stage, batching)
        {
            batching = Batching::Grow;
            stage = self.stages(config, &gain, demand / e, batching);
        }
        if batching == Batching::Grow && stage.capacity * e < demand {
            // Overloaded: the source has a backlog and emits full batches, which amortise
            // per-batch costs.
            batching = Batching::Full;
            stage = self.stages(config, &gain, stage.capacity, batching);
        }
        let room_total = room(&stage, batching);
        // The channels fill with the batches senders flush before any of them blocks; they
        // read full (in batches, as the engine counts) from then on, while the batches behind
        // the blocked senders grow and the room in records with them.
        let flush_room = if batching == Batching::Flush {
            room_total
        } else {
            room(
                &self.stages(config, &gain, demand / e, Batching::Flush),
                Batching::Flush,
            )
            .min(room_total)
        };
        let StageModel {
            mu,
            filled,
            cpu_us: cpu,
            b_eff,
            capacity,
            bottleneck,
        } = stage;
        // The source emits while the buffers have room; the pipeline works through what is
        // queued and what arrives, up to its capacity.
        let can_process = capacity * e;
        let emitted = demand.min(can_process + (room_total - state.queued).max(0.0));
        let processed = (state.queued + emitted).min(can_process);
        let queued_end = state.queued + emitted - processed;
        // The engine reads a channel's fill as its mean over the epoch, so a channel filling
        // from empty reads about half of what it holds at the end.
        let queued_mean = mean_queue(state.queued, emitted, can_process, room_total);
        let backlog_end = demand - emitted;
        let rate = processed / e;
        let saturated = backlog_end > 1.0 || queued_end > 0.5 * room_total;
        let mut busy = Vec::with_capacity(n);
        let mut hottest = Vec::with_capacity(n);
        let mut waiting = Vec::with_capacity(n);
        let mut occupancy = Vec::with_capacity(n);
        // FIFO from the scheduled time: everything still queued or due at the end of the epoch
        // was scheduled after the last event served, so that event waited as long as the
        // schedule took to offer them (Little's law; dividing by the capacity instead would
        // date a growing queue by how fast it drains, not by how fast it grew).
        let arrival = if offered > 0.0 { offered / e } else { capacity }.max(1.0);
        let mut queue_s = queued_end / arrival;
        let mut batch_s = 0.0;
        let mut service_s = 0.0;
        for (i, s) in w.stages.iter().enumerate() {
            let p = par(&s.name) as f64;
            let ec = edge(self.edge_into(i));
            let input = rate * gain[i];
            let u = (input / (mu[i] * p)).min(1.0);
            busy.push(u);
            let hottest_u = self.hottest_busy(i, p as usize, input, mu[i]);
            hottest.push(hottest_u);
            let hot = hottest_u.min(0.999);
            // What piles up behind a stage that cannot keep up: the queued events, in the
            // flush-sized batches the engine counts.
            let piled_up = (queued_mean / flush_room.max(1.0)).clamp(0.0, 1.0);
            let occ = if saturated && i <= bottleneck {
                piled_up
            } else if filled[i] {
                // Keeping up with grown batches: the channel stays full.
                let per_channel = (input / p).max(1e-9);
                queue_s += ec.capacity as f64 * b_eff[i] / per_channel;
                1.0
            } else if hot >= 0.98 {
                // Over capacity: what piles up is the queued events, counted above.
                piled_up
            } else {
                // A busy worker's queue, in batches: M/D/1 (Pollaczek–Khinchine), half of
                // M/M/1's — a record's cost is fixed (and as the source paces its events
                // rather than sending them at random, even this is an upper bound).
                let batches = 0.5 * hot * hot / (1.0 - hot);
                let occ = (batches / ec.capacity as f64).min(1.0);
                let per_channel = (input / p).max(1e-9);
                queue_s += occ * ec.capacity as f64 * b_eff[i] / per_channel;
                occ
            };
            occupancy.push(occ);
            waiting.push(if saturated && i < bottleneck {
                (1.0 - u, 0.0)
            } else {
                (0.0, 1.0 - u)
            });
            let p_up = if i == 0 {
                1.0
            } else {
                par(&w.stages[i - 1].name) as f64
            };
            let per_buffer = input
                / p_up
                / if s.partition == Partition::Hash {
                    p
                } else {
                    1.0
                };
            batch_s +=
                (ec.batch_size as f64 / per_buffer.max(1e-9)).min(self.params.flush_timeout_s);
            service_s += b_eff[i] / mu[i];
        }
        let backlog_s = if backlog_end > 1.0 {
            backlog_end / arrival
        } else {
            0.0
        };
        // A backlog carried in (a reconfiguration's pause, an overload) is events already late
        // by its age when the source reaches them; once they are over 1% of the epoch's
        // records, the p99 is theirs.
        let age_s = if offered > 0.0 && state.backlog > 0.01 * demand {
            state.backlog / (offered / e)
        } else {
            0.0
        };
        let backlog_s = backlog_s.max(age_s);
        let modelled_ms = (backlog_s + queue_s + batch_s + service_s) * 1e3;
        let p99_ms = self.params.latency_floor_ms + self.params.latency_factor * modelled_ms;
        EpochOutcome {
            emitted,
            processed,
            backlog: backlog_end,
            queued: queued_end,
            full: saturated || filled.iter().any(|&f| f),
            capacity,
            bottleneck,
            p99_ms,
            busy,
            hottest,
            waiting,
            occupancy,
            mu,
            gain: {
                let mut g = gain;
                g.push(sink_gain);
                g
            },
            cpu_us: cpu,
            batch: b_eff,
            pause_s: 0.0,
        }
    }
}

/// The mean over an epoch of a queue that starts at `start` records, takes `arrivals` and
/// serves up to `served` (both spread evenly over the epoch), and holds between 0 and `room`.
fn mean_queue(start: f64, arrivals: f64, served: f64, room: f64) -> f64 {
    let start = start.clamp(0.0, room.max(0.0));
    let slope = arrivals - served;
    if slope > 0.0 {
        // Fills, and stays full from `t` (a share of the epoch) on.
        let t = (room - start) / slope;
        if t >= 1.0 {
            start + slope / 2.0
        } else {
            (start + room) / 2.0 * t + room * (1.0 - t)
        }
    } else if slope < 0.0 {
        // Drains, and stays empty from `t` on.
        let t = start / -slope;
        if t >= 1.0 {
            start + slope / 2.0
        } else {
            start / 2.0 * t
        }
    } else {
        start
    }
}

#[cfg(test)]
mod tests {
    use super::mean_queue;

    #[test]
    fn the_mean_queue_follows_its_fill_and_drain_over_the_epoch() {
        // Filling from empty without reaching the room: half the end.
        assert_eq!(mean_queue(0.0, 1000.0, 734.0, 320.0), 133.0);
        // Full from the middle of the epoch on: a quarter of the room short of full.
        assert_eq!(mean_queue(0.0, 200.0, 0.0, 100.0), 75.0);
        // Already full and still overloaded: full.
        assert_eq!(mean_queue(100.0, 200.0, 0.0, 100.0), 100.0);
        // Draining to empty at the middle of the epoch: a quarter of the start.
        assert_eq!(mean_queue(100.0, 0.0, 200.0, 1000.0), 25.0);
        // Draining part way, and steady.
        assert_eq!(mean_queue(100.0, 0.0, 50.0, 1000.0), 75.0);
        assert_eq!(mean_queue(40.0, 10.0, 10.0, 100.0), 40.0);
    }
}

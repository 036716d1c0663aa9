//! The controller's side of metrics: samples queues within an epoch and turns the workers'
//! cumulative counters into per-epoch snapshots.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use hdrhistogram::Histogram;

use super::counters::{CounterValues, WorkerCounters, process_cpu_ns};
use super::latency::{LatencyMetrics, new_histogram};
use super::snapshot::{
    EdgeMetrics, HostMetrics, MetricsSnapshot, ReconfigSummary, SourceMetrics, StageKind,
    StageMetrics, WorkerMetrics,
};
use crate::channel::QueueProbe;
use crate::config::JobConfig;
use crate::partition::Partition;

/// What the collector needs to know about a stage.
pub(crate) struct StageInfo {
    pub name: String,
    pub kind: StageKind,
    pub inputs: Vec<usize>,
}

/// What the collector needs to know about an edge.
pub(crate) struct EdgeInfo {
    pub name: String,
    pub from: String,
    pub to: String,
    pub partition: Partition,
}

struct WorkerSlot {
    counters: Arc<WorkerCounters>,
    last: CounterValues,
    last_custom: Vec<(&'static str, u64)>,
}

impl WorkerSlot {
    fn new(counters: Arc<WorkerCounters>) -> WorkerSlot {
        WorkerSlot {
            counters,
            last: CounterValues::default(),
            last_custom: Vec::new(),
        }
    }
}

#[derive(Default)]
struct StageSlots {
    current: Vec<WorkerSlot>,
    retired: Vec<WorkerSlot>,
    total_in: u64,
    total_out: u64,
    total_offered: u64,
}

#[derive(Default)]
struct EdgeSlots {
    probes: Vec<Box<dyn QueueProbe>>,
    capacity: usize,
    batch_size: usize,
    sum_queued: f64,
    sum_occupancy: f64,
    max_len: usize,
    samples: u64,
}

/// Cumulative per-stage totals, for the final report.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StageTotals {
    pub records_in: u64,
    pub records_out: u64,
    pub offered: u64,
}

pub(crate) struct Collector {
    info: Vec<StageInfo>,
    edge_info: Vec<EdgeInfo>,
    stages: Vec<StageSlots>,
    edges: Vec<EdgeSlots>,
    epoch: u64,
    last_ns: u64,
    last_cpu_ns: u64,
    cores: usize,
    job_latency: Histogram<u64>,
    epoch_latency: Histogram<u64>,
}

/// Reads one worker's counters, adds its epoch delta to `sum`, `counters` and `latency`, and
/// returns the delta.
fn read_slot(
    slot: &mut WorkerSlot,
    now_ns: u64,
    sum: &mut CounterValues,
    counters: &mut BTreeMap<String, u64>,
    latency: &mut Histogram<u64>,
) -> CounterValues {
    let now = slot.counters.read(&slot.last, now_ns);
    let d = now.delta(&slot.last);
    slot.last = now;
    sum.records_in += d.records_in;
    sum.batches_in += d.batches_in;
    sum.records_out += d.records_out;
    sum.busy_ns += d.busy_ns;
    sum.blocked_ns += d.blocked_ns;
    sum.idle_ns += d.idle_ns;
    sum.cpu_ns += d.cpu_ns;
    sum.offered += d.offered;
    let custom = slot.counters.custom.lock().clone();
    for (name, value) in &custom {
        let before = slot
            .last_custom
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| *v);
        if *value > before {
            *counters.entry((*name).to_owned()).or_default() += value - before;
        }
    }
    slot.last_custom = custom;
    if let Some(recorder) = &slot.counters.latency {
        recorder.lock().drain_into(latency);
    }
    d
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

impl Collector {
    pub fn new(info: Vec<StageInfo>, edge_info: Vec<EdgeInfo>, start_ns: u64) -> Collector {
        let stages = info.iter().map(|_| StageSlots::default()).collect();
        let edges = edge_info.iter().map(|_| EdgeSlots::default()).collect();
        Collector {
            info,
            edge_info,
            stages,
            edges,
            epoch: 0,
            last_ns: start_ns,
            last_cpu_ns: process_cpu_ns(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            job_latency: new_histogram(),
            epoch_latency: new_histogram(),
        }
    }

    /// A stage's workers of a new generation; the previous ones are read one last time at the
    /// next snapshot.
    pub fn install_workers(&mut self, stage: usize, workers: Vec<Arc<WorkerCounters>>) {
        let slots = &mut self.stages[stage];
        let old = std::mem::replace(
            &mut slots.current,
            workers.into_iter().map(WorkerSlot::new).collect(),
        );
        slots.retired.extend(old);
    }

    /// The channels of an edge in a new generation.
    pub fn install_probes(
        &mut self,
        edge: usize,
        probes: Vec<Box<dyn QueueProbe>>,
        capacity: usize,
        batch_size: usize,
    ) {
        let e = &mut self.edges[edge];
        e.probes = probes;
        e.capacity = capacity;
        e.batch_size = batch_size;
    }

    /// Messages queued in all channels right now.
    pub fn queued_messages(&self) -> usize {
        self.edges
            .iter()
            .flat_map(|e| e.probes.iter())
            .map(|p| p.len())
            .sum()
    }

    /// Takes everything queued on `edge`'s channels, one `Vec<Message<_>>` per channel (a
    /// hand-over re-routes it).
    pub fn take_queued(&self, edge: usize) -> Vec<Box<dyn std::any::Any + Send>> {
        self.edges
            .get(edge)
            .map(|e| e.probes.iter().map(|p| p.take_messages()).collect())
            .unwrap_or_default()
    }

    /// Empties every channel, returning the records they held (used after an abort).
    pub fn drain_channels(&self) -> u64 {
        self.edges
            .iter()
            .flat_map(|e| e.probes.iter())
            .map(|p| p.drain_records())
            .sum()
    }

    /// Samples the length of every channel.
    pub fn sample(&mut self) {
        for e in &mut self.edges {
            if e.probes.is_empty() {
                continue;
            }
            let mut total = 0usize;
            for p in &e.probes {
                let len = p.len();
                total += len;
                e.max_len = e.max_len.max(len);
            }
            e.sum_queued += total as f64;
            e.sum_occupancy += ratio(total as f64, (e.capacity * e.probes.len()) as f64);
            e.samples += 1;
        }
    }

    pub fn totals(&self) -> Vec<StageTotals> {
        self.stages
            .iter()
            .map(|s| StageTotals {
                records_in: s.total_in,
                records_out: s.total_out,
                offered: s.total_offered,
            })
            .collect()
    }

    /// Latency over the whole job so far.
    pub fn job_latency(&self) -> LatencyMetrics {
        LatencyMetrics::from_histogram(&self.job_latency)
    }

    /// Builds the snapshot of the epoch ending at `now_ns` and starts the next one.
    pub fn snapshot(
        &mut self,
        now_ns: u64,
        config: &JobConfig,
        generation: u64,
        last_reconfiguration: Option<ReconfigSummary>,
        reconfigurations: u64,
    ) -> MetricsSnapshot {
        let epoch_ns = now_ns.saturating_sub(self.last_ns).max(1);
        let epoch_s = secs(epoch_ns);
        self.sample();
        let mut stages = Vec::with_capacity(self.stages.len());
        let mut sources = Vec::new();
        self.epoch_latency.reset();
        for (i, slots) in self.stages.iter_mut().enumerate() {
            let info = &self.info[i];
            let mut sum = CounterValues::default();
            let mut counters: BTreeMap<String, u64> = BTreeMap::new();
            let n_current = slots.current.len();
            let mut per_worker = Vec::with_capacity(n_current);
            for (w, slot) in slots.current.iter_mut().enumerate() {
                let d = read_slot(
                    slot,
                    now_ns,
                    &mut sum,
                    &mut counters,
                    &mut self.epoch_latency,
                );
                let keys = slot.counters.state_keys.load(Relaxed);
                per_worker.push((w, d, keys));
            }
            for mut slot in std::mem::take(&mut slots.retired) {
                read_slot(
                    &mut slot,
                    now_ns,
                    &mut sum,
                    &mut counters,
                    &mut self.epoch_latency,
                );
            }
            slots.total_in += sum.records_in;
            slots.total_out += sum.records_out;
            slots.total_offered += sum.offered;

            // DS2 rates: per worker records / busy time; workers without a measurement this
            // epoch (just started, or no input) are credited with the stage's pooled rate.
            let pooled_in = ratio(sum.records_in as f64, secs(sum.busy_ns));
            let pooled_out = ratio(sum.records_out as f64, secs(sum.busy_ns));
            let mut true_in = 0.0;
            let mut true_out = 0.0;
            let mut workers = Vec::with_capacity(per_worker.len());
            let mut keys = 0;
            let mut max_worker_busy: f64 = 0.0;
            for (index, d, state_keys) in per_worker {
                let busy = secs(d.busy_ns);
                max_worker_busy =
                    max_worker_busy.max(ratio(busy, secs(d.busy_ns + d.blocked_ns + d.idle_ns)));
                let measured = busy > 0.0 && (d.records_in > 0 || d.records_out > 0);
                let rate_in = if measured {
                    d.records_in as f64 / busy
                } else {
                    pooled_in
                };
                let rate_out = if measured {
                    d.records_out as f64 / busy
                } else {
                    pooled_out
                };
                true_in += rate_in;
                true_out += rate_out;
                keys += state_keys;
                workers.push(WorkerMetrics {
                    index,
                    records_in: d.records_in,
                    records_out: d.records_out,
                    busy_s: busy,
                    blocked_s: secs(d.blocked_ns),
                    idle_s: secs(d.idle_ns),
                    cpu_s: secs(d.cpu_ns),
                    true_processing_rate: if measured { rate_in } else { 0.0 },
                    keyed_state_keys: state_keys,
                });
            }
            let accounted = secs(sum.busy_ns + sum.blocked_ns + sum.idle_ns);
            let (queue, capacity, occupancy) = info.inputs.iter().fold((0.0, 0, 0.0), |acc, &e| {
                let slots = &self.edges[e];
                let n = slots.samples.max(1) as f64;
                (
                    acc.0 + slots.sum_queued / n,
                    acc.1 + slots.capacity * slots.probes.len(),
                    acc.2 + slots.sum_occupancy / n,
                )
            });
            let parallelism = config.parallelism(&info.name).unwrap_or(n_current);
            stages.push(StageMetrics {
                name: info.name.clone(),
                kind: info.kind,
                parallelism,
                records_in: sum.records_in,
                records_out: sum.records_out,
                mean_input_batch: if sum.batches_in > 0 {
                    sum.records_in as f64 / sum.batches_in as f64
                } else {
                    0.0
                },
                busy_s: secs(sum.busy_ns),
                blocked_s: secs(sum.blocked_ns),
                idle_s: secs(sum.idle_ns),
                cpu_s: secs(sum.cpu_ns),
                busy_fraction: ratio(secs(sum.busy_ns), accounted),
                max_worker_busy_fraction: max_worker_busy,
                blocked_fraction: ratio(secs(sum.blocked_ns), accounted),
                idle_fraction: ratio(secs(sum.idle_ns), accounted),
                cpu_fraction: ratio(secs(sum.cpu_ns), epoch_s * parallelism.max(1) as f64),
                observed_input_rate: sum.records_in as f64 / epoch_s,
                observed_output_rate: sum.records_out as f64 / epoch_s,
                true_processing_rate: true_in,
                true_output_rate: true_out,
                keyed_state_keys: keys,
                input_queue: queue,
                input_capacity: capacity,
                input_occupancy: if info.inputs.is_empty() {
                    0.0
                } else {
                    occupancy / info.inputs.len() as f64
                },
                counters,
                workers,
            });
            if info.kind == StageKind::Source {
                let target_rate: f64 = slots
                    .current
                    .iter()
                    .map(|s| {
                        s.counters
                            .scheduled_rate(now_ns)
                            .unwrap_or(s.counters.target_rate_milli.load(Relaxed) as f64 / 1000.0)
                    })
                    .sum();
                sources.push(SourceMetrics {
                    name: info.name.clone(),
                    offered: sum.offered,
                    emitted: sum.records_out,
                    backlog: slots.total_offered.saturating_sub(slots.total_out),
                    offered_rate: sum.offered as f64 / epoch_s,
                    emitted_rate: sum.records_out as f64 / epoch_s,
                    target_rate,
                    offered_total: slots.total_offered,
                    emitted_total: slots.total_out,
                });
            }
        }
        let _ = self.job_latency.add(&self.epoch_latency);
        let edges = self
            .edge_info
            .iter()
            .zip(self.edges.iter_mut())
            .map(|(info, slots)| {
                let n = slots.samples.max(1) as f64;
                let m = EdgeMetrics {
                    name: info.name.clone(),
                    from: info.from.clone(),
                    to: info.to.clone(),
                    partition: info.partition,
                    capacity: slots.capacity,
                    batch_size: slots.batch_size,
                    channels: slots.probes.len(),
                    queue_mean: slots.sum_queued / n,
                    queue_max: slots.max_len,
                    occupancy: slots.sum_occupancy / n,
                };
                slots.sum_queued = 0.0;
                slots.sum_occupancy = 0.0;
                slots.max_len = 0;
                slots.samples = 0;
                m
            })
            .collect();
        let cpu_now = process_cpu_ns();
        let process_cpu_s = secs(cpu_now.saturating_sub(self.last_cpu_ns));
        self.last_cpu_ns = cpu_now;
        self.last_ns = now_ns;
        let snapshot = MetricsSnapshot {
            epoch: self.epoch,
            time_s: secs(now_ns),
            epoch_s,
            generation,
            config: config.clone(),
            stages,
            edges,
            sources,
            latency: LatencyMetrics::from_histogram(&self.epoch_latency),
            last_reconfiguration,
            reconfigurations,
            host: HostMetrics {
                cores: self.cores,
                process_cpu_s,
                process_cpu_fraction: ratio(process_cpu_s, epoch_s * self.cores as f64),
            },
        };
        self.epoch += 1;
        snapshot
    }
}

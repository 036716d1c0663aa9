//! Runs a workload spec as a real pipeline on the engine.

use std::time::Duration;

use rheo_engine::operator::{Context, Operator};
use rheo_engine::partition::Partition;
use rheo_engine::source::RateSource;
use rheo_engine::state::KeyedState;
use rheo_engine::{BuildError, Pipeline, PipelineBuilder, Stream};
use rheo_operators::prelude::*;
use rheo_operators::sources::ZipfKeys;

use super::{StageSpec, Workload, burn_cpu};

/// Name of the source stage of every workload pipeline.
pub const SOURCE: &str = "source";
/// Name of the sink stage of every workload pipeline.
pub const SINK: &str = "sink";

/// A workload record: its key and sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Zipf-distributed key.
    pub key: u64,
    /// Event number.
    pub seq: u64,
}

/// Builds the pipeline of `workload`: a rate-controlled source of Zipf keys (drawn from
/// `seed`) for `duration_s`, one synthetic stage per `[[stage]]`, and a sink.
pub fn build_pipeline(workload: &Workload, seed: u64) -> Result<Pipeline, BuildError> {
    let keys =
        ZipfKeys::new(workload.source.key_space, workload.source.key_skew, seed).map_err(|e| {
            BuildError::OutOfRange {
                stage: SOURCE.into(),
                field: "key_skew",
                value: 0,
                reason: e.to_string(),
            }
        })?;
    let generator = move |seq: u64, _: Duration| Event {
        key: keys.key(seq),
        seq,
    };
    let source = RateSource::new(workload.source.rate.clone(), generator)
        .duration(Duration::from_secs_f64(workload.duration_s));
    let builder =
        PipelineBuilder::new().edge_defaults(workload.initial.buffer, workload.initial.batch_size);
    let mut stream = builder.source(SOURCE, source);
    for spec in &workload.stages {
        stream = add_stage(
            &stream,
            spec,
            workload.max_parallelism(spec),
            workload.initial.parallelism,
        );
    }
    stream.discard(SINK);
    builder.build()
}

fn add_stage(
    input: &Stream<Event>,
    spec: &StageSpec,
    max: usize,
    parallelism: usize,
) -> Stream<Event> {
    let cost = Cost {
        cpu_ns: (spec.cpu_us * 1e3) as u64,
        wait_ns: (spec.wait_us * 1e3) as u64,
        batch_wait_ns: (spec.batch_wait_us * 1e3) as u64,
        selectivity: spec.selectivity,
    };
    let out = match spec.partition {
        Partition::Hash if spec.keyed_state => {
            input.key_by(|e: &Event| e.key).unary(&spec.name, move |_| {
                Synthetic::<KeyedState<u64, u64>>::new(cost)
            })
        }
        Partition::Hash => input
            .key_by(|e: &Event| e.key)
            .unary(&spec.name, move |_| Synthetic::<()>::new(cost)),
        Partition::Forward => input
            .forward()
            .unary(&spec.name, move |_| Synthetic::<()>::new(cost)),
        Partition::Rebalance => input
            .rebalance()
            .unary(&spec.name, move |_| Synthetic::<()>::new(cost)),
        Partition::Broadcast => input
            .broadcast()
            .unary(&spec.name, move |_| Synthetic::<()>::new(cost)),
    };
    out.max_parallelism(max).parallelism(parallelism)
}

/// What a synthetic stage spends per record and per batch.
#[derive(Debug, Clone, Copy)]
struct Cost {
    cpu_ns: u64,
    wait_ns: u64,
    batch_wait_ns: u64,
    selectivity: f64,
}

/// Per-key counts, or nothing.
trait Counts: rheo_engine::state::StageState {
    fn touch(&mut self, key: u64);
}

impl Counts for () {
    fn touch(&mut self, _: u64) {}
}

impl Counts for KeyedState<u64, u64> {
    fn touch(&mut self, key: u64) {
        *self.get_or_insert_with(key, || 0) += 1;
    }
}

/// A stage that burns CPU, waits, keeps counts per key if asked, and emits `selectivity`
/// records per input on average (deterministically: fractions carry over).
struct Synthetic<S> {
    cost: Cost,
    carry: f64,
    _s: std::marker::PhantomData<fn() -> S>,
}

impl<S> Synthetic<S> {
    fn new(cost: Cost) -> Self {
        Synthetic {
            cost,
            carry: 0.0,
            _s: std::marker::PhantomData,
        }
    }
}

impl<S: Counts> Operator for Synthetic<S> {
    type In = Event;
    type Out = Event;
    type State = S;

    fn on_batch(&mut self, batch: &mut Vec<Event>, cx: &mut Context<'_, Event, S>) {
        let n = batch.len() as u64;
        burn_cpu(self.cost.cpu_ns * n);
        let wait = self.cost.wait_ns * n + self.cost.batch_wait_ns;
        if wait > 0 {
            std::thread::sleep(Duration::from_nanos(wait));
        }
        for event in batch.drain(..) {
            cx.state().touch(event.key);
            self.carry += self.cost.selectivity;
            while self.carry >= 1.0 {
                self.carry -= 1.0;
                cx.emit(event);
            }
        }
    }
}

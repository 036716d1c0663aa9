//! rheo: each workload as a user writes it, every parallel stage at one worker per core, in two
//! shapes: [`Shape::Chained`] runs stateless operators inside their upstream's edge writer
//! ([`Stream::select`]: no stage, no thread hop, no copy), as Flink chains operators and as the
//! hand-written pipeline and timely do; [`Shape::Staged`] gives every operator its own stage
//! (its own worker pool and input channel, tunable on its own).

use std::sync::Arc;

use rheo::engine::operator::{Context, Data, Operator};
use rheo::engine::source::{Source, SourceContext, SourceStatus};
use rheo::engine::state::KeyedState;
use rheo::operators::aggregate::Count;
use rheo::prelude::*;

use super::input::{self, Answer, BATCH, Input, Workload};
use super::{RunError, System};

/// Channel capacity in batches (the engine's default).
const CAPACITY: usize = 64;

/// How the pipeline is laid out in stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Stateless operators run in their upstream stage's edge writer ([`Stream::select`]).
    Chained,
    /// One stage per operator.
    Staged,
}

/// The configuration [`run`] uses.
pub fn config(workload: Workload, cores: usize, shape: Shape) -> String {
    let stages = match (workload, shape) {
        (Workload::WordCount, Shape::Chained) => "source (+ normalise chained), count",
        (Workload::WordCount, Shape::Staged) => "source, normalise, count",
        (Workload::MapFilter, Shape::Chained) => {
            "source (+ scramble, keep-first, rotate, keep-second chained)"
        }
        (Workload::MapFilter, Shape::Staged) => "source, scramble, keep-first, rotate, keep-second",
        (Workload::WindowCount, _) => "source, window-count",
    };
    format!("{stages} ×{cores} each, sink ×1; batch {BATCH}, capacity {CAPACITY}, metrics on")
}

/// Runs `workload` on a rheo job laid out as `shape`.
pub fn run(
    workload: Workload,
    input: &Input,
    cores: usize,
    shape: Shape,
) -> Result<Answer, RunError> {
    let system = match shape {
        Shape::Chained => System::Rheo,
        Shape::Staged => System::RheoStaged,
    };
    let error = |reason: String| RunError { system, reason };
    let builder = PipelineBuilder::new().edge_defaults(CAPACITY, BATCH);
    let keys = input.shared();
    let checksum = match (workload, shape) {
        (Workload::WordCount, Shape::Chained) => builder
            .parallel_source("tokens", cores, |i, n| Blocks::new(&keys, i, n, |_, k| k))
            .select(|k| Some(input::normalise(k)))
            .key_by(|k: &u64| *k)
            .unary("count", |_| CountAtEnd)
            .parallelism(cores)
            .checksum("sink"),
        (Workload::WordCount, Shape::Staged) => builder
            .parallel_source("tokens", cores, |i, n| Blocks::new(&keys, i, n, |_, k| k))
            .map("normalise", input::normalise)
            .parallelism(cores)
            .key_by(|k: &u64| *k)
            .unary("count", |_| CountAtEnd)
            .parallelism(cores)
            .checksum("sink"),
        (Workload::MapFilter, Shape::Chained) => builder
            .parallel_source("numbers", cores, |i, n| Blocks::new(&keys, i, n, |_, k| k))
            .select(|x| Some(input::scramble(x)).filter(input::keep_first))
            .select(|x| Some(input::rotate(x)).filter(input::keep_second))
            .checksum("sink"),
        (Workload::MapFilter, Shape::Staged) => builder
            .parallel_source("numbers", cores, |i, n| Blocks::new(&keys, i, n, |_, k| k))
            .map("scramble", input::scramble)
            .parallelism(cores)
            .filter("keep-first", input::keep_first)
            .parallelism(cores)
            .map("rotate", input::rotate)
            .parallelism(cores)
            .filter("keep-second", input::keep_second)
            .parallelism(cores)
            .checksum("sink"),
        (Workload::WindowCount, _) => {
            let events = builder.parallel_source("events", cores, |i, n| {
                Blocks::new(&keys, i, n, |i, k| (k, input::timestamp(i)))
                    .with_timestamps(|e: &(u64, u64)| e.1, 0)
            });
            let windows = events
                .key_by(|e: &(u64, u64)| e.0)
                .window(tumbling(input::WINDOW_MS), |e: &(u64, u64)| e.1)
                .aggregate("window-count", Count);
            windows.results.parallelism(cores).checksum("sink")
        }
    };
    let pipeline = builder.build().map_err(|e| error(e.to_string()))?;
    pipeline
        .run(JobOptions::default())
        .map_err(|e| error(e.to_string()))?;
    Ok((checksum.records(), checksum.value()))
}

/// Reads one worker's blocks of the shared input.
struct Blocks<F> {
    keys: Arc<Vec<u64>>,
    ranges: Box<dyn Iterator<Item = std::ops::Range<usize>> + Send>,
    current: std::ops::Range<usize>,
    make: F,
}

impl<F> Blocks<F> {
    fn new(keys: &Arc<Vec<u64>>, worker: usize, workers: usize, make: F) -> Self {
        Blocks {
            keys: keys.clone(),
            ranges: Box::new(input::blocks(keys.len(), worker, workers)),
            current: 0..0,
            make,
        }
    }
}

impl<T: Data, F: Fn(usize, u64) -> T + Send + 'static> Source for Blocks<F> {
    type Out = T;
    fn poll(&mut self, out: &mut Vec<T>, max: usize, _: &mut SourceContext) -> SourceStatus {
        if self.current.is_empty() {
            match self.ranges.next() {
                Some(next) => self.current = next,
                None => return SourceStatus::Exhausted,
            }
        }
        let end = self.current.end.min(self.current.start + max.max(1));
        let (keys, make) = (&self.keys[..], &self.make);
        out.extend((self.current.start..end).map(|i| make(i, keys[i])));
        self.current.start = end;
        SourceStatus::Ready
    }
}

/// Counts per key in keyed state and emits `(key, count)` at the end of the stream.
struct CountAtEnd;

impl Operator for CountAtEnd {
    type In = u64;
    type Out = (u64, u64);
    type State = KeyedState<u64, u64>;
    fn on_batch(&mut self, batch: &mut Vec<u64>, cx: &mut Context<'_, (u64, u64), Self::State>) {
        let state = cx.state();
        for key in batch.drain(..) {
            *state.get_or_insert_with(key, || 0) += 1;
        }
    }
    fn on_end(&mut self, cx: &mut Context<'_, (u64, u64), Self::State>) {
        let counts: Vec<_> = cx.state().drain().collect();
        cx.emit_all(counts);
    }
}

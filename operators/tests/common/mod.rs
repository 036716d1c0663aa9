//! Shared by the operator tests: a source the test releases in chunks, and a driver that runs
//! a pipeline while rescaling its stages between chunks, so every keyed and windowed operator
//! is checked under live reconfiguration against a single-threaded reference.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rheo_engine::metrics::MetricsSnapshot;
use rheo_engine::operator::Data;
use rheo_engine::source::{Source, SourceContext, SourceStatus};
use rheo_engine::{JobHandle, JobOptions, JobReport, PipelineBuilder, Stream, Timestamp};
use rheo_operators::prelude::*;

/// Emits its input only as far as the test has released it.
pub struct Gated<T> {
    pub input: Vec<T>,
    pub next: usize,
    pub released: Arc<AtomicUsize>,
    pub emitted: Arc<AtomicUsize>,
}

impl<T: Data> Source for Gated<T> {
    type Out = T;

    fn poll(&mut self, out: &mut Vec<T>, max: usize, _: &mut SourceContext) -> SourceStatus {
        let allowed = self.released.load(Ordering::Acquire).min(self.input.len());
        let end = allowed.min(self.next + max);
        out.extend_from_slice(&self.input[self.next..end]);
        self.next = end;
        self.emitted.store(end, Ordering::Release);
        if self.next == self.input.len() {
            SourceStatus::Exhausted
        } else if self.next == allowed {
            SourceStatus::Idle(Duration::from_millis(1))
        } else {
            SourceStatus::Ready
        }
    }
}

/// The handles of a gated source.
#[derive(Clone, Default)]
pub struct Gate {
    pub released: Arc<AtomicUsize>,
    pub emitted: Arc<AtomicUsize>,
}

impl Gate {
    pub fn source<T: Data>(&self, input: Vec<T>) -> Gated<T> {
        Gated {
            input,
            next: 0,
            released: self.released.clone(),
            emitted: self.emitted.clone(),
        }
    }

    /// Releases the first `n` records and waits until the source has taken them.
    pub fn release(&self, n: usize) {
        self.released.store(n, Ordering::Release);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.emitted.load(Ordering::Acquire) < n {
            assert!(
                Instant::now() < deadline,
                "the source stalled before {n} records"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Event time of a record, and how far the watermark trails the largest one seen.
pub type EventTime<T> = (fn(&T) -> Timestamp, Timestamp);

/// Parallelisms the rescaled stages cycle through, one per reconfiguration.
const SCHEDULE: [usize; 6] = [3, 1, 4, 2, 3, 1];

/// What a reconfiguring run produced.
pub struct Run<O> {
    pub output: Vec<O>,
    pub report: JobReport,
    pub snapshots: Vec<Arc<MetricsSnapshot>>,
}

impl<O> Run<O> {
    /// The sum of an operator counter over every epoch.
    pub fn counter(&self, stage: &str, name: &str) -> u64 {
        self.snapshots
            .iter()
            .filter_map(|s| s.stage(stage))
            .filter_map(|s| s.counters.get(name))
            .sum()
    }
}

/// Runs `input` through the pipeline `build` makes (from the source stream to the stream to
/// collect), releasing the input in chunks and rescaling `rescale` stages between chunks
/// (the first at least 6 times). With `timestamps`, the source assigns event time and
/// watermarks trailing by `bound`. Returns the output sorted.
pub fn run_rescaling<T, O>(
    input: Vec<T>,
    timestamps: Option<EventTime<T>>,
    rescale: &[&str],
    build: impl FnOnce(Stream<T>) -> Stream<O>,
) -> Run<O>
where
    T: Data,
    O: Data + Ord,
{
    let gate = Gate::default();
    let builder = PipelineBuilder::new().edge_defaults(8, 16);
    let source = match timestamps {
        Some((ts, bound)) => {
            builder.source("src", gate.source(input.clone()).with_timestamps(ts, bound))
        }
        None => builder.source("src", gate.source(input.clone())),
    };
    let collected = build(source).collect("out");
    let job = builder
        .build()
        .expect("valid pipeline")
        .start(JobOptions::default().epoch(Duration::from_millis(50)))
        .expect("job starts");
    let stream = job.snapshots();
    let rounds = SCHEDULE.len();
    let chunk = input.len() / (rounds + 1);
    for (round, p) in SCHEDULE.iter().enumerate() {
        gate.release((round + 1) * chunk);
        rescale_to(&job, rescale, *p);
    }
    gate.release(input.len());
    let report = job.join().expect("job succeeds");
    assert_eq!(report.reconfigurations.len(), rounds);
    let snapshots: Vec<_> = stream.collect();
    let mut output = collected.take();
    output.sort();
    Run {
        output,
        report,
        snapshots,
    }
}

fn rescale_to(job: &JobHandle, stages: &[&str], parallelism: usize) {
    let mut config = job.config();
    for s in stages {
        config.set_parallelism(s, parallelism);
    }
    let report = job.reconfigure(config).expect("reconfiguration applies");
    assert!(report.changed);
}

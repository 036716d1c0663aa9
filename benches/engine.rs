//! Engine benchmarks (criterion).
//!
//! - `keyed_count/{cpu,wall}/p{P}/batch{B}`: source → map → hash → keyed count → sink over
//!   u64 keys with 100 000 distinct values, at parallelism 1 and 2 and batch sizes 1, 64 and
//!   1024. The `cpu` group measures process CPU time, so its throughput is records per
//!   CPU-second; `wall` measures elapsed time.
//! - `reconfigure/{stateless,keyed_1m}/{pause,drain}`: the pause (barrier injection to source
//!   resume) and drain (barrier injection to the last worker retired) of a live
//!   reconfiguration under load — the source outruns the pipeline, so every buffer is full —
//!   for a stateless stage and for a keyed stage holding 1 000 000 keys.
//! - `reconfigure/slow_{drain,hand_over}/{pause,drain}`: the pause (and drain) of flipping a wait-bound stage
//!   (200 µs per record, behind 16 queued batches of 32 records) between 1 and 4 workers,
//!   with [`Rescale::Drain`] (the old workers process the queue first) and
//!   [`Rescale::HandOver`] (the queue goes to the new workers).
//! - `metrics/{on,off}`: the keyed-count pipeline with timing and latency collection on and off.
//!
//! Run: `cargo bench --bench engine` (results and reading in docs/benchmarks.md).

use std::time::Duration;

mod common;

use common::ProcessCpu;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rheo::engine::operator::{Context, Operator};
use rheo::engine::source::{Source, SourceContext, SourceStatus};
use rheo::engine::state::KeyedState;
use rheo::prelude::*;

const KEYS: u64 = 100_000;

/// `n` pseudo-random keys below `keys` (generation is part of the measured work).
struct Keys {
    next: u64,
    end: u64,
    keys: u64,
}

impl Source for Keys {
    type Out = u64;
    fn poll(&mut self, out: &mut Vec<u64>, max: usize, _: &mut SourceContext) -> SourceStatus {
        let end = self.end.min(self.next + max as u64);
        out.extend((self.next..end).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % self.keys));
        self.next = end;
        if end == self.end {
            SourceStatus::Exhausted
        } else {
            SourceStatus::Ready
        }
    }
}

/// Counts per key in keyed state; emits the counts at the end of the stream.
struct KeyedCount;

impl Operator for KeyedCount {
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

fn keyed_count_pipeline(
    records: u64,
    parallelism: usize,
    batch: usize,
    keys: u64,
) -> (Pipeline, Count) {
    let builder = PipelineBuilder::new().edge_defaults(64, batch);
    let counted = builder
        .source(
            "keys",
            Keys {
                next: 0,
                end: records,
                keys,
            },
        )
        .map("map", |k: u64| k ^ 1)
        .parallelism(parallelism)
        .key_by(|k: &u64| *k)
        .unary("count", |_| KeyedCount)
        .parallelism(parallelism)
        .count("sink");
    (builder.build().expect("valid pipeline"), counted)
}

fn run_keyed_count(records: u64, parallelism: usize, batch: usize, metrics: bool) {
    let (pipeline, counted) = keyed_count_pipeline(records, parallelism, batch, KEYS);
    pipeline
        .run(JobOptions::default().metrics(metrics))
        .expect("job runs");
    assert_eq!(counted.get(), KEYS.min(records));
}

fn records_for(batch: usize) -> u64 {
    if batch == 1 { 200_000 } else { 2_000_000 }
}

fn keyed_count_cpu(c: &mut Criterion<ProcessCpu>) {
    let mut group = c.benchmark_group("keyed_count/cpu");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500));
    for p in [1, 2] {
        for batch in [1, 64, 1024] {
            let n = records_for(batch);
            group.throughput(Throughput::Elements(n));
            group.bench_function(
                BenchmarkId::new(format!("p{p}"), format!("batch{batch}")),
                |b| b.iter(|| run_keyed_count(n, p, batch, true)),
            );
        }
    }
    group.finish();
}

fn keyed_count_wall(c: &mut Criterion) {
    let mut group = c.benchmark_group("keyed_count/wall");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500));
    for p in [1, 2] {
        for batch in [1, 64, 1024] {
            let n = records_for(batch);
            group.throughput(Throughput::Elements(n));
            group.bench_function(
                BenchmarkId::new(format!("p{p}"), format!("batch{batch}")),
                |b| b.iter(|| run_keyed_count(n, p, batch, true)),
            );
        }
    }
    group.finish();
}

fn metrics_overhead(c: &mut Criterion<ProcessCpu>) {
    let mut group = c.benchmark_group("metrics");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500));
    let n = 2_000_000;
    group.throughput(Throughput::Elements(n));
    for (name, on) in [("on", true), ("off", false)] {
        group.bench_function(name, |b| b.iter(|| run_keyed_count(n, 1, 64, on)));
    }
    group.finish();
}

/// A stateless stage doing a little work per record.
struct Work;

impl Operator for Work {
    type In = u64;
    type Out = u64;
    type State = ();
    fn on_batch(&mut self, batch: &mut Vec<u64>, cx: &mut Context<'_, u64, ()>) {
        cx.emit_all(batch.drain(..).map(|x| {
            let mut h = x;
            for _ in 0..16 {
                h = h.rotate_left(7).wrapping_mul(0x2545_f491_4f6c_dd1d);
            }
            h
        }));
    }
}

/// What [`reconfigure_bench`] changes: `stage` flips between two parallelisms, `refill` after
/// the previous change (so the buffers fill again), in `samples` criterion samples.
struct Flips<'a> {
    stage: &'a str,
    between: (usize, usize),
    refill: Duration,
    samples: usize,
}

/// Reconfigures a running job back and forth between two parallelisms of a stage, timing
/// either the pause or the drain of each change.
fn reconfigure_bench(c: &mut Criterion, name: &str, job: JobHandle, flips: Flips) {
    let mut group = c.benchmark_group(format!("reconfigure/{name}"));
    group
        .sample_size(flips.samples)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(5));
    let mut flip = false;
    let (mut loaded, mut changes, mut carried) = (0usize, 0usize, 0u64);
    let mut change = |job: &JobHandle| {
        flip = !flip;
        let mut config = job.config();
        let (low, high) = flips.between;
        config.set_parallelism(flips.stage, if flip { high } else { low });
        std::thread::sleep(flips.refill);
        let report = job.reconfigure(config).expect("reconfiguration applies");
        loaded += usize::from(report.queued_batches_at_barrier > 0);
        changes += 1;
        carried += report.carried_records;
        report
    };
    group.bench_function("pause", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| change(&job).pause).sum())
    });
    group.bench_function("drain", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| change(&job).drain).sum())
    });
    eprintln!(
        "reconfigure/{name}: {loaded} of {changes} changes found batches queued at the barrier; \
         {:.0} records handed over per change",
        carried as f64 / changes.max(1) as f64
    );
    group.finish();
    job.abort();
    let _ = job.join();
}

/// A job of `keys` → rebalance → one `stage` of `make` (one worker) → a discarding sink.
fn rebalanced_job<Op, F>(
    builder: PipelineBuilder,
    stage: &str,
    make: F,
    options: JobOptions,
) -> JobHandle
where
    Op: Operator<In = u64, Out = u64, State = ()>,
    F: Fn(&rheo::engine::operator::WorkerInfo) -> Op + Send + Sync + 'static,
{
    builder
        .source(
            "keys",
            Keys {
                next: 0,
                end: u64::MAX,
                keys: KEYS,
            },
        )
        .rebalance()
        .unary(stage, make)
        .parallelism(1)
        .discard("sink");
    builder
        .build()
        .expect("valid pipeline")
        .start(options)
        .expect("starts")
}

fn reconfigure_stateless(c: &mut Criterion) {
    let job = rebalanced_job(
        PipelineBuilder::new(),
        "work",
        |_| Work,
        JobOptions::default(),
    );
    let flips = Flips {
        stage: "work",
        between: (1, 2),
        refill: Duration::from_millis(20),
        samples: 20,
    };
    reconfigure_bench(c, "stateless", job, flips);
}

fn reconfigure_keyed(c: &mut Criterion) {
    let builder = PipelineBuilder::new();
    // Sequential keys fill 1 M keys quickly, then repeat.
    struct Sequential(u64);
    impl Source for Sequential {
        type Out = u64;
        fn poll(&mut self, out: &mut Vec<u64>, max: usize, _: &mut SourceContext) -> SourceStatus {
            out.extend((self.0..self.0 + max as u64).map(|i| i % 1_000_000));
            self.0 += max as u64;
            SourceStatus::Ready
        }
    }
    builder
        .source("keys", Sequential(0))
        .key_by(|k: &u64| *k)
        .unary("count", |_| KeyedCount)
        .parallelism(2)
        .discard("sink");
    let job = builder
        .build()
        .expect("valid pipeline")
        .start(JobOptions::default().epoch(Duration::from_millis(100)))
        .expect("starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let keys = job
            .latest()
            .and_then(|s| s.stage("count").map(|c| c.keyed_state_keys))
            .unwrap_or(0);
        if keys >= 1_000_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "state never reached 1 M keys ({keys})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let flips = Flips {
        stage: "count",
        between: (2, 3),
        refill: Duration::from_millis(20),
        samples: 20,
    };
    reconfigure_bench(c, "keyed_1m", job, flips);
}

/// A stateless stage that waits 200 µs per record, as on a remote call.
struct Slow;

impl Operator for Slow {
    type In = u64;
    type Out = u64;
    type State = ();
    fn on_batch(&mut self, batch: &mut Vec<u64>, cx: &mut Context<'_, u64, ()>) {
        std::thread::sleep(Duration::from_micros(200) * batch.len() as u32);
        cx.emit_all(batch.drain(..));
    }
}

fn reconfigure_slow(c: &mut Criterion) {
    for (name, rescale) in [
        ("slow_drain", Rescale::Drain),
        ("slow_hand_over", Rescale::HandOver),
    ] {
        let builder = PipelineBuilder::new().edge_defaults(16, 32);
        let job = rebalanced_job(
            builder,
            "slow",
            |_| Slow,
            JobOptions::default().rescale(rescale),
        );
        let flips = Flips {
            stage: "slow",
            between: (1, 4),
            refill: Duration::from_millis(100),
            samples: 10,
        };
        reconfigure_bench(c, name, job, flips);
    }
}

criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ProcessCpu);
    targets = keyed_count_cpu, metrics_overhead
}
criterion_group!(
    wall,
    keyed_count_wall,
    reconfigure_stateless,
    reconfigure_keyed,
    reconfigure_slow
);
criterion_main!(cpu, wall);

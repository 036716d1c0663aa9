//! Operator benchmarks (criterion).
//!
//! - `combiner/{cpu,wall}/{with,without}`: a keyed count at parallelism 2 over 2 000 000
//!   records where one key carries half of the traffic (the rest spread over 100 000 keys),
//!   with a local pre-aggregation (combiner, parallelism 2) before the hash exchange and
//!   without. The `cpu` group measures process CPU time (records per CPU-second), `wall`
//!   elapsed time.
//!
//! Run: `cargo bench --bench operators` (results in docs/benchmarks.md).

mod common;

use std::time::Duration;

use common::ProcessCpu;
use criterion::measurement::Measurement;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use rheo::engine::source::{Source, SourceContext, SourceStatus};
use rheo::operators::aggregate::Count;
use rheo::prelude::*;

const RECORDS: u64 = 2_000_000;
const HOT: u64 = 0;

/// Keys where every second record is the hot key.
struct HotKeys {
    next: u64,
}

impl Source for HotKeys {
    type Out = u64;
    fn poll(&mut self, out: &mut Vec<u64>, max: usize, _: &mut SourceContext) -> SourceStatus {
        let end = RECORDS.min(self.next + max as u64);
        out.extend((self.next..end).map(|i| {
            if i % 2 == 0 {
                HOT
            } else {
                1 + i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 100_000
            }
        }));
        self.next = end;
        if end == RECORDS {
            SourceStatus::Exhausted
        } else {
            SourceStatus::Ready
        }
    }
}

fn run(combiner: bool) {
    let builder = PipelineBuilder::new();
    let keys = builder.source("keys", HotKeys { next: 0 }).rebalance();
    let counts = if combiner {
        keys.combine("partial", |k: &u64| *k, Count, 4096)
            .parallelism(2)
            .key_by(|p: &(u64, u64)| p.0)
            .merge_partials("count", Count)
            .parallelism(2)
    } else {
        keys.key_by(|k: &u64| *k)
            .aggregate("count", Count)
            .parallelism(2)
    };
    let last = counts.count("sink");
    builder
        .build()
        .expect("valid pipeline")
        .run(JobOptions::default())
        .expect("job runs");
    assert!(last.get() > 0);
}

fn group<M: Measurement>(c: &mut Criterion<M>, name: &str) {
    let mut group: BenchmarkGroup<'_, M> = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500));
    group.throughput(Throughput::Elements(RECORDS));
    group.bench_function("without", |b| b.iter(|| run(false)));
    group.bench_function("with", |b| b.iter(|| run(true)));
    group.finish();
}

fn combiner_cpu(c: &mut Criterion<ProcessCpu>) {
    group(c, "combiner/cpu");
}

fn combiner_wall(c: &mut Criterion) {
    group(c, "combiner/wall");
}

criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ProcessCpu);
    targets = combiner_cpu
}
criterion_group!(wall, combiner_wall);
criterion_main!(cpu, wall);

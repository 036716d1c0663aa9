//! rheo side by side with timely-dataflow, a hand-written thread pipeline and a single loop
//! (criterion): `peers/{workload}/cores{n}/{system}`, each on the same 2 000 000 generated
//! events, the process pinned to cores `0..n` (as `taskset -c 0` and `-c 0,1`). Throughput is
//! events per CPU-second (process CPU time, all threads).
//!
//! Run: `cargo bench --bench peers`. The harness `cargo run --release --example peers` measures
//! the same systems with a check of every answer and writes the JSON rows and ratios reported
//! in docs/benchmarks.md.

mod common;

#[allow(dead_code)]
#[path = "../examples/peers/systems/mod.rs"]
mod systems;

use std::time::Duration;

use common::ProcessCpu;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use systems::{Input, System, Workload};

const EVENTS: usize = 2_000_000;

/// Pins the calling thread, and the threads it starts, to cores `0..cores`.
fn pin(cores: usize) {
    // SAFETY: `set` is a plain bitmask initialised by CPU_ZERO; the call only reads it.
    let status = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        for core in 0..cores {
            libc::CPU_SET(core, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(status, 0, "pinning to cores 0..{cores}");
}

fn peers(c: &mut Criterion<ProcessCpu>) {
    let input = Input::generate(EVENTS, 42);
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    for cores in [1, 2].into_iter().filter(|&n| n <= available) {
        pin(cores);
        for workload in Workload::ALL {
            let expected = System::SingleLoop.run(workload, &input, 1).expect("runs");
            let mut group = c.benchmark_group(format!("peers/{}/cores{cores}", workload.name()));
            group
                .sample_size(10)
                .warm_up_time(Duration::from_millis(300))
                .throughput(Throughput::Elements(EVENTS as u64));
            for system in System::ALL {
                group.bench_function(BenchmarkId::from_parameter(system.name()), |b| {
                    b.iter(|| {
                        let answer = system.run(workload, &input, cores).expect("runs");
                        assert_eq!(answer, expected, "{} {}", system.name(), workload.name());
                    })
                });
            }
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ProcessCpu);
    targets = peers
}
criterion_main!(benches);

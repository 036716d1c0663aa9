//! Backpressure bounds memory: with a sink that stops, the source stops too, and the records
//! between them never exceed the bound the engine states (`Pipeline::in_flight_bound`),
//! counted at the source and at the sink, not inside the engine. Then an abort with full
//! buffers and a sink stuck in user code returns promptly.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Gate, within};
use proptest::prelude::*;
use rheo_engine::operator::{Context, Operator, Sink};
use rheo_engine::source::{Source, SourceContext, SourceStatus};
use rheo_engine::state::KeyedState;
use rheo_engine::{JobConfig, JobOptions, PipelineBuilder};

/// Endless numbers, counting what it hands to the engine.
struct Counting {
    next: u64,
    emitted: Arc<AtomicU64>,
}

impl Source for Counting {
    type Out = u64;
    fn poll(&mut self, out: &mut Vec<u64>, max: usize, _: &mut SourceContext) -> SourceStatus {
        out.extend(self.next..self.next + max as u64);
        self.next += max as u64;
        self.emitted.fetch_add(max as u64, Ordering::SeqCst);
        SourceStatus::Ready
    }
}

/// Counts per key, passing records on.
struct PassCount;
impl Operator for PassCount {
    type In = u64;
    type Out = u64;
    type State = KeyedState<u64, u64>;
    fn on_batch(&mut self, batch: &mut Vec<u64>, cx: &mut Context<'_, u64, KeyedState<u64, u64>>) {
        for x in batch.drain(..) {
            *cx.state().get_or_insert_with(x % 1000, || 0) += 1;
            cx.emit(x);
        }
    }
}

struct Double;
impl Operator for Double {
    type In = u64;
    type Out = u64;
    type State = ();
    fn on_batch(&mut self, batch: &mut Vec<u64>, cx: &mut Context<'_, u64, ()>) {
        cx.emit_all(batch.drain(..).map(|x| x * 2));
    }
}

/// Counts what it receives, then waits at the gate.
struct Stuck {
    received: Arc<AtomicU64>,
    gate: Arc<Gate>,
}

impl Sink<u64> for Stuck {
    fn write(&mut self, batch: &mut Vec<u64>) {
        self.received
            .fetch_add(batch.len() as u64, Ordering::SeqCst);
        batch.clear();
        self.gate.pass();
    }
}

struct Setup {
    parallelism: [usize; 3],
    capacity: usize,
    batch: usize,
}

fn run(setup: Setup) {
    let emitted = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Gate::default());
    gate.close();
    let builder = PipelineBuilder::new().edge_defaults(setup.capacity, setup.batch);
    let (r, g) = (received.clone(), gate.clone());
    builder
        .source(
            "numbers",
            Counting {
                next: 0,
                emitted: emitted.clone(),
            },
        )
        .rebalance()
        .unary("double", |_| Double)
        .parallelism(setup.parallelism[0])
        .key_by(|x: &u64| x % 1000)
        .unary("count", |_| PassCount)
        .parallelism(setup.parallelism[1])
        .sink("stuck", move |_| Stuck {
            received: r.clone(),
            gate: g.clone(),
        })
        .parallelism(setup.parallelism[2]);
    let pipeline = builder.build().unwrap();
    let bound = pipeline.in_flight_bound(&pipeline.default_config());
    let job = pipeline
        .start(
            JobOptions::default()
                .epoch(Duration::from_millis(50))
                .abort_grace(Duration::from_millis(200)),
        )
        .unwrap();
    assert_eq!(job.in_flight_bound(), bound);

    // Sample the difference until the source's counter has not moved for 300 ms.
    let mut max_gap = 0;
    let mut last = u64::MAX;
    let mut still_since = Instant::now();
    let start = Instant::now();
    loop {
        let e = emitted.load(Ordering::SeqCst);
        let r = received.load(Ordering::SeqCst);
        max_gap = max_gap.max(e.saturating_sub(r));
        if e != last {
            last = e;
            still_since = Instant::now();
        } else if still_since.elapsed() > Duration::from_millis(300) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the source never stopped"
        );
        std::thread::sleep(Duration::from_micros(500));
    }
    assert!(
        max_gap <= bound,
        "in flight {max_gap} > stated bound {bound}"
    );
    assert!(max_gap > 0);

    // Abort with full buffers while the sink is stuck in user code.
    let aborted = Instant::now();
    job.abort();
    let report = job.join().unwrap();
    assert!(
        aborted.elapsed() < Duration::from_secs(5),
        "abort took {:?}",
        aborted.elapsed()
    );
    assert!(report.aborted);
    assert!(report.dropped_records > 0, "{report:?}");
    // The sink workers that got a batch are stuck in user code and are left behind.
    assert!(
        (1..=setup.parallelism[2]).contains(&report.detached_threads),
        "{report:?}"
    );
    gate.open();
}

#[test]
fn a_stopped_sink_stops_the_source_within_the_bound() {
    within(Duration::from_secs(60), || {
        run(Setup {
            parallelism: [2, 2, 1],
            capacity: 4,
            batch: 64,
        })
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, max_shrink_iters: 4, ..ProptestConfig::default() })]

    #[test]
    fn the_bound_holds_for_any_configuration(
        p in [1usize..4, 1usize..4, 1usize..3],
        capacity in 1usize..16,
        batch in 1usize..300,
    ) {
        within(Duration::from_secs(60), move || run(Setup { parallelism: p, capacity, batch }));
    }
}

#[test]
fn bound_counts_channels_partial_batches_and_workers() {
    let builder = PipelineBuilder::new().edge_defaults(2, 10);
    builder
        .source(
            "s",
            Counting {
                next: 0,
                emitted: Arc::default(),
            },
        )
        .key_by(|x: &u64| *x)
        .unary("c", |_| PassCount)
        .parallelism(3)
        .sink_fn("out", |_: u64| {});
    let pipeline = builder.build().unwrap();
    let config: JobConfig = pipeline.default_config();
    // s->c: 3 channels × 2 × 10 queued + 1 worker × 3 partial batches × 10;
    // c->out: 1 × 2 × 10 + 3 workers × 1 × 10;
    // workers: source poll 10, c: 3 × 2 × 10, out: 1 × 2 × 10.
    assert_eq!(
        pipeline.in_flight_bound(&config),
        60 + 30 + 20 + 30 + 10 + 60 + 20
    );
}

//! Live reconfiguration: a keyed stage that waits on a slow "service" cannot keep up with its
//! input, so a backlog builds. Halfway through, the job is given four workers for that stage
//! and bigger buffers — while it runs, without losing a record — and the metrics before and
//! after show the backlog draining.
//!
//! ```text
//! cargo run --release --example reconfigure
//! ```

use std::time::Duration;

use rheo::engine::operator::{Context, Operator};
use rheo::engine::state::KeyedState;
use rheo::prelude::*;
use rheo::table::EpochTable;

/// Calls a pretend service (200 µs per record) and keeps a count per key.
struct Enrich;

impl Operator for Enrich {
    type In = u64;
    type Out = (u64, u64);
    type State = KeyedState<u64, u64>;

    fn on_batch(&mut self, batch: &mut Vec<u64>, cx: &mut Context<'_, (u64, u64), Self::State>) {
        std::thread::sleep(Duration::from_micros(200) * batch.len() as u32);
        for key in batch.drain(..) {
            let n = cx.state().get_or_insert_with(key, || 0);
            *n += 1;
            let out = (key, *n);
            cx.emit(out);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let builder = PipelineBuilder::new().edge_defaults(16, 32);
    // 8 000 events/s for 8 s; one worker of `enrich` absorbs about 5 000/s.
    let events = RateSource::new(
        RateProfile::Constant { value: 8_000.0 },
        |seq: u64, _: Duration| seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 10_000,
    )
    .duration(Duration::from_secs(8));
    let processed = builder
        .source("events", events)
        .key_by(|key: &u64| *key)
        .unary("enrich", |_| Enrich)
        .count("out");

    let job = builder
        .build()?
        .start(JobOptions::default().epoch(Duration::from_millis(500)))?;
    let mut snapshots = job.snapshots();
    let mut table = None;
    let mut print = |s: &MetricsSnapshot| {
        let t = table.get_or_insert_with(|| {
            let t = EpochTable::new(s);
            println!("{}", t.header());
            t
        });
        println!("{}", t.row(s));
    };
    for s in snapshots.by_ref().take(6) {
        print(&s);
    }

    let mut config = job.config();
    config.set_parallelism("enrich", 4);
    config.set_input_capacity("enrich", 64);
    let change = job.reconfigure(config)?;
    println!(
        "\nreconfigured: enrich 1 -> 4 workers, input buffer 16 -> 64 batches; paused {:.2} ms \
         (drain {:.2} ms) with {} batches in flight; moved {} key groups holding {} keys\n",
        change.pause.as_secs_f64() * 1e3,
        change.drain.as_secs_f64() * 1e3,
        change.queued_batches_at_barrier,
        change.key_groups_moved(),
        change.keys_moved()
    );
    for s in snapshots {
        print(&s);
    }
    let report = job.join()?;
    let emitted: u64 = report.sources.iter().map(|s| s.emitted).sum();
    println!(
        "\n{} events emitted, {} processed (exactly once), p99 latency {:.1} ms over the run",
        emitted,
        processed.get(),
        report.latency.p99_ms
    );
    Ok(())
}

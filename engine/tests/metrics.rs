//! Metrics as design.md §2 defines them: busy time and DS2 rates of a wait-bound stage,
//! backlog and latency under overload, snapshots on the handle and as JSON lines; key skew
//! seen by the busiest worker.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::within;
use rheo_engine::metrics::{MetricsSnapshot, StageKind, read_json_lines};
use rheo_engine::operator::{Context, Operator};
use rheo_engine::source::{RateProfile, RateSource};
use rheo_engine::{JobHandle, JobOptions, PipelineBuilder};

/// Sleeps `per_record` for every record (a wait-bound stage, like a call to a service).
struct Slow {
    per_record: Duration,
}

impl Operator for Slow {
    type In = u64;
    type Out = u64;
    type State = ();
    fn on_batch(&mut self, batch: &mut Vec<u64>, cx: &mut Context<'_, u64, ()>) {
        std::thread::sleep(self.per_record * batch.len() as u32);
        cx.emit_all(batch.drain(..));
    }
}

/// `events` at a constant `rate` per second into one `slow` worker taking `per_record` per
/// record, then a sink, over edges of `capacity` batches of `batch_size`.
fn slow_chain(
    capacity: usize,
    batch_size: usize,
    rate: f64,
    per_record: Duration,
) -> PipelineBuilder {
    let builder = PipelineBuilder::new().edge_defaults(capacity, batch_size);
    let events = RateSource::new(
        RateProfile::Constant { value: rate },
        |seq: u64, _: Duration| seq,
    );
    builder
        .source("events", events)
        .unary("slow", move |_| Slow { per_record })
        .sink_fn("out", |_: u64| {});
    builder
}

/// Builds and starts the pipeline.
fn start(builder: PipelineBuilder, options: JobOptions) -> JobHandle {
    builder.build().unwrap().start(options).unwrap()
}

/// Runs the built pipeline with 100 ms epochs for `epochs` snapshots, then stops it.
fn run_epochs(builder: PipelineBuilder, epochs: usize) -> Vec<Arc<MetricsSnapshot>> {
    let job = start(
        builder,
        JobOptions::default().epoch(Duration::from_millis(100)),
    );
    let snapshots = job.snapshots().take(epochs).collect();
    job.abort();
    job.join().unwrap();
    snapshots
}

#[test]
fn a_wait_bound_stage_shows_its_busy_time_and_true_rate() {
    within(Duration::from_secs(60), || {
        let builder = slow_chain(64, 20, 2_000.0, Duration::from_micros(100));
        let dir = std::env::temp_dir().join(format!("rheo-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("snapshots.jsonl");
        let job = start(
            builder,
            JobOptions::default()
                .epoch(Duration::from_millis(100))
                .metrics_jsonl(&log),
        );
        let stream = job.snapshots();
        let snapshots: Vec<_> = stream.take(8).collect();
        job.abort();
        job.join().unwrap();

        // Epochs arrive in order, each carrying the configuration.
        for pair in snapshots.windows(2) {
            assert_eq!(pair[1].epoch, pair[0].epoch + 1);
        }
        let last = snapshots.last().unwrap();
        assert_eq!(last.config.parallelism("slow"), Some(1));
        let slow = last.stage("slow").unwrap();
        assert_eq!(slow.kind, StageKind::Operator);
        // 2000 records/s at ≥ 100 µs each: busy about 20% of the time, idle most of the rest.
        assert!(slow.records_in > 0);
        assert!((0.1..0.6).contains(&slow.busy_fraction), "{slow:?}");
        assert!(slow.idle_fraction > 0.3, "{slow:?}");
        // Sleeping only overshoots: the true rate is at most 10 000 records per busy second.
        assert!(
            slow.true_processing_rate <= 10_500.0 && slow.true_processing_rate > 3_000.0,
            "{slow:?}"
        );
        // A sleeping stage burns little CPU.
        assert!(slow.cpu_fraction < 0.2, "{slow:?}");
        let source = &last.sources[0];
        assert!(source.offered > 0 && source.backlog < 500, "{source:?}");
        assert!(
            last.latency.count > 0 && last.latency.p99_ms < 100.0,
            "{:?}",
            last.latency
        );
        assert!(last.edge("events->slow").is_some());

        // The JSON lines log holds the same snapshots.
        let logged = read_json_lines(&log).unwrap();
        assert!(logged.len() >= snapshots.len());
        assert_eq!(logged[0], *snapshots[0]);
        std::fs::remove_dir_all(&dir).ok();
    });
}

#[test]
fn overload_builds_backlog_latency_and_backpressure() {
    within(Duration::from_secs(60), || {
        let builder = slow_chain(4, 10, 20_000.0, Duration::from_micros(200));
        let snapshots = run_epochs(builder, 6);
        let first = &snapshots[1];
        let last = snapshots.last().unwrap();
        // The source is blocked on backpressure most of the time; its offered load still
        // follows the schedule exactly (read from the schedule, not from its last poll).
        for s in &snapshots {
            let expected = 20_000.0 * s.epoch_s;
            let offered = s.sources[0].offered as f64;
            assert!(
                (offered - expected).abs() <= expected * 0.05 + 50.0,
                "offered {offered} vs {expected}"
            );
        }
        // The stage can absorb at most 5 000/s of the 20 000/s offered: the backlog grows.
        assert!(
            last.backlog() > first.backlog(),
            "{} vs {}",
            last.backlog(),
            first.backlog()
        );
        assert!(last.offered() > 2 * last.emitted());
        // The slow stage is always busy; the source is blocked on its full output channel.
        let slow = last.stage("slow").unwrap();
        assert!(slow.busy_fraction > 0.8, "{slow:?}");
        assert!(slow.input_occupancy > 0.5, "{slow:?}");
        let source = last.stage("events").unwrap();
        assert!(source.blocked_fraction > 0.5, "{source:?}");
        // Latency from scheduled time includes the time spent in the backlog.
        assert!(last.latency.p99_ms > first.latency.p50_ms);
        assert!(last.latency.p99_ms > 100.0, "{:?}", last.latency);
    });
}

#[test]
fn the_busiest_worker_shows_a_hot_key_that_the_mean_hides() {
    within(Duration::from_secs(60), || {
        let builder = PipelineBuilder::new().edge_defaults(64, 20);
        // Every other record has key 0; the rest spread over 1 000 keys: the worker owning
        // key 0's group gets well over half the load of two.
        let events = RateSource::new(
            RateProfile::Constant { value: 1_000.0 },
            |seq: u64, _: Duration| if seq.is_multiple_of(2) { 0 } else { seq % 1000 },
        );
        builder
            .source("events", events)
            .key_by(|x: &u64| *x)
            .unary("slow", |_| Slow {
                per_record: Duration::from_micros(300),
            })
            .parallelism(2)
            .sink_fn("out", |_: u64| {});
        let snapshots = run_epochs(builder, 6);
        let slow = snapshots.last().unwrap().stage("slow").unwrap();
        assert_eq!(slow.workers.len(), 2, "{slow:?}");
        // 1 000 records/s at ≥ 300 µs over two workers: a mean of about 15% busy, the hot
        // worker at least three quarters of the load (about 22% busy).
        assert!(
            slow.max_worker_busy_fraction > 1.2 * slow.busy_fraction,
            "mean {:.3}, busiest {:.3}",
            slow.busy_fraction,
            slow.max_worker_busy_fraction
        );
        assert!(slow.max_worker_busy_fraction <= 1.0);
    });
}

#[test]
fn an_epoch_that_ends_during_a_pause_is_cut_before_the_sources_resume() {
    within(Duration::from_secs(60), || {
        // 2 000 records/s into a stage that takes 1 ms per record: its 8 × 20 queued records
        // take at least 160 ms to drain, longer than the 100 ms epoch.
        let builder = slow_chain(8, 20, 2_000.0, Duration::from_millis(1));
        let job = start(
            builder,
            JobOptions::default().epoch(Duration::from_millis(100)),
        );
        let mut snapshots = job.snapshots();
        let before = snapshots.by_ref().nth(2).unwrap();
        assert!(before.stage("slow").unwrap().input_occupancy > 0.5);
        let mut config = job.config();
        config.set_parallelism("slow", 4);
        let report = job.reconfigure(config).unwrap();
        assert!(report.drain >= Duration::from_millis(100), "{report:?}");
        let mut after = snapshots.skip_while(|s| {
            s.last_reconfiguration
                .is_none_or(|r| r.generation != report.generation)
        });
        let cut = after.next().unwrap();
        let next = after.next().unwrap();
        job.abort();
        job.join().unwrap();

        // The epoch the pause overran ends at the resume: it spans the whole pause, and the
        // paused source emitted at most the few batches that fitted before its barrier; what
        // it emits on resume, working off the backlog of the pause, is the next epoch's, which
        // is at least half an epoch long, not a sliver left to the old schedule.
        let pause_ms = cut.last_reconfiguration.unwrap().pause_ms;
        assert!(
            cut.epoch_s * 1e3 >= pause_ms,
            "{} vs {pause_ms}",
            cut.epoch_s
        );
        assert!(cut.sources[0].emitted <= 60, "{:?}", cut.sources[0]);
        assert!(cut.sources[0].backlog >= 200, "{:?}", cut.sources[0]);
        assert!(next.epoch_s >= 0.05, "{}", next.epoch_s);
        assert!(
            next.sources[0].emitted > next.sources[0].offered,
            "{:?}",
            next.sources[0]
        );
    });
}

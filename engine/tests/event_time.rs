//! Event time: watermarks flow through every stage as the minimum over inputs, never run ahead
//! of in-order input (before or after a reconfiguration), and end-of-stream closes every stage
//! once, after a final watermark — whether the input runs out or the job is drained.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::within;
use rheo_engine::operator::{Context, Operator};
use rheo_engine::source::{RateProfile, RateSource, SourceExt};
use rheo_engine::{JobOptions, PipelineBuilder, Timestamp};

#[derive(Default, Debug)]
struct Seen {
    late: u64,
    records: u64,
    watermarks: Vec<Timestamp>,
    ends: u64,
}

/// Records what a worker sees: records behind its watermark, watermarks, ends.
struct Observe {
    seen: Arc<Mutex<Seen>>,
}

impl Operator for Observe {
    type In = u64;
    type Out = u64;
    type State = ();
    fn on_batch(&mut self, batch: &mut Vec<u64>, cx: &mut Context<'_, u64, ()>) {
        let wm = cx.watermark();
        let mut seen = self.seen.lock().unwrap();
        seen.records += batch.len() as u64;
        seen.late += batch.iter().filter(|ts| **ts < wm).count() as u64;
        cx.emit_all(batch.drain(..));
    }
    fn on_watermark(&mut self, watermark: Timestamp, _: &mut Context<'_, u64, ()>) {
        self.seen.lock().unwrap().watermarks.push(watermark);
    }
    fn on_end(&mut self, _: &mut Context<'_, u64, ()>) {
        self.seen.lock().unwrap().ends += 1;
    }
}

/// Events whose timestamp is their sequence number, at `rate` per second.
fn timed(rate: f64, limit: Option<u64>) -> impl rheo_engine::source::Source<Out = u64> {
    let src = RateSource::new(
        RateProfile::Constant { value: rate },
        |seq: u64, _: Duration| seq,
    );
    let src = match limit {
        Some(n) => src.limit(n),
        None => src,
    };
    src.with_timestamps(|ts: &u64| *ts, 0)
}

#[test]
fn watermarks_are_the_minimum_over_inputs_and_never_pass_the_data() {
    within(Duration::from_secs(60), || {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let builder = PipelineBuilder::new().edge_defaults(16, 32);
        let fast = builder.source("fast", timed(40_000.0, Some(16_000)));
        let slow = builder.source("slow", timed(20_000.0, Some(8_000)));
        let s = seen.clone();
        fast.union(&slow)
            .key_by(|ts: &u64| *ts)
            .unary("observe", move |_| Observe { seen: s.clone() })
            .parallelism(2)
            .sink_fn("out", |_: u64| {});
        let job = builder
            .build()
            .unwrap()
            .start(JobOptions::default().watermark_interval(Duration::from_millis(5)))
            .unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let mut config = job.config();
        config.set_parallelism("observe", 3);
        job.reconfigure(config).unwrap();
        job.join().unwrap();

        let seen = seen.lock().unwrap();
        assert_eq!(seen.records, 24_000);
        assert_eq!(seen.late, 0, "a watermark ran ahead of in-order data");
        assert_eq!(
            seen.ends, 3,
            "every worker of the last generation ends once"
        );
        // Intermediate watermarks advanced before the end, and every worker saw the final one.
        let progress: Vec<_> = seen
            .watermarks
            .iter()
            .filter(|w| **w < Timestamp::MAX)
            .collect();
        assert!(progress.len() > 5, "{:?}", seen.watermarks);
        // While both sources run, the watermark follows the slower one: it never passed the
        // slow source's last timestamp (8 000) until that source ended.
        assert!(progress.iter().all(|w| **w < 16_000));
        assert_eq!(
            seen.watermarks
                .iter()
                .filter(|w| **w == Timestamp::MAX)
                .count(),
            3
        );
    });
}

#[test]
fn stop_drain_ends_an_endless_job_with_a_final_watermark() {
    within(Duration::from_secs(60), || {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let builder = PipelineBuilder::new();
        let s = seen.clone();
        builder
            .source("endless", timed(10_000.0, None))
            .rebalance()
            .unary("observe", move |_| Observe { seen: s.clone() })
            .parallelism(2)
            .sink_fn("out", |_: u64| {});
        let job = builder
            .build()
            .unwrap()
            .start(JobOptions::default())
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        job.stop_drain();
        let report = job.join().unwrap();
        assert!(!report.aborted);
        assert_eq!(report.dropped_records, 0);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.ends, 2);
        assert_eq!(seen.late, 0);
        assert_eq!(seen.records, report.stage("out").unwrap().records_in);
        assert_eq!(report.sources[0].emitted, seen.records);
    });
}

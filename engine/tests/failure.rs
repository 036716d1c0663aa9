//! Failures end jobs cleanly: a panicking operator or source ends the job with an error naming
//! the stage and the message, every thread stops, and `join()` returns (never a hang). Invalid
//! reconfigurations are rejected with typed errors while the job keeps running.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::within;
use rheo_engine::operator::{Context, Operator};
use rheo_engine::source::{IterSource, RateProfile, RateSource};
use rheo_engine::state::KeyedState;
use rheo_engine::{JobConfig, JobError, JobOptions, PipelineBuilder, ReconfigError};

/// Threads of this process whose name starts with one of `prefixes`, once they have had up to
/// five seconds to leave: a joined thread can linger in `/proc` for a moment after
/// `pthread_join` returns (the kernel wakes the joiner before it reaps the task), which a
/// loaded machine makes visible. A thread still there after five seconds was left behind.
fn threads_left(prefixes: &[&str]) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let n: usize = prefixes.iter().map(|p| threads_named(p)).sum();
        if n == 0 || std::time::Instant::now() >= deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Threads of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

struct Explode {
    at: u64,
}

impl Operator for Explode {
    type In = u64;
    type Out = u64;
    type State = ();
    fn on_batch(&mut self, batch: &mut Vec<u64>, cx: &mut Context<'_, u64, ()>) {
        for x in batch.drain(..) {
            if x == self.at {
                panic!("boom at {x}");
            }
            cx.emit(x);
        }
    }
}

#[test]
fn a_panicking_operator_fails_the_job_naming_the_stage() {
    within(Duration::from_secs(30), || {
        let builder = PipelineBuilder::new();
        let endless = RateSource::new(
            RateProfile::Constant { value: 1e9 },
            |seq: u64, _: Duration| seq,
        );
        builder
            .source("pfsrc", endless)
            .rebalance()
            .unary("pfexplode", |_| Explode { at: 5_000 })
            .parallelism(3)
            .sink_fn("pfsink", |_: u64| {});
        let job = builder
            .build()
            .unwrap()
            .start(JobOptions::default())
            .unwrap();
        match job.join() {
            Err(JobError::OperatorPanicked { stage, message, .. }) => {
                assert_eq!(stage, "pfexplode");
                assert_eq!(message, "boom at 5000");
            }
            other => panic!("expected a panic error, got {other:?}"),
        }
        for prefix in ["pfsrc", "pfexplode", "pfsink"] {
            assert_eq!(
                threads_left(&[prefix]),
                0,
                "threads of {prefix} still running"
            );
        }
    });
}

#[test]
fn a_panicking_source_fails_the_job() {
    within(Duration::from_secs(30), || {
        let builder = PipelineBuilder::new();
        let bad = RateSource::new(
            RateProfile::Constant { value: 1e6 },
            |seq: u64, _: Duration| {
                assert!(seq < 100, "generator gave up at {seq}");
                seq
            },
        );
        builder.source("psrc", bad).sink_fn("psink", |_: u64| {});
        let err = builder
            .build()
            .unwrap()
            .run(JobOptions::default())
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("`psrc`") && text.contains("generator gave up at 100"),
            "{text}"
        );
        assert_eq!(threads_left(&["psrc", "psink"]), 0);
    });
}

struct PanicOnBarrier;

impl Operator for PanicOnBarrier {
    type In = u64;
    type Out = u64;
    type State = ();
    fn on_batch(&mut self, batch: &mut Vec<u64>, cx: &mut Context<'_, u64, ()>) {
        cx.emit_all(batch.drain(..));
    }
    fn on_barrier(&mut self, _: &mut Context<'_, u64, ()>) {
        panic!("cannot flush");
    }
}

#[test]
fn a_panic_during_reconfiguration_fails_both_the_change_and_the_job() {
    within(Duration::from_secs(30), || {
        let builder = PipelineBuilder::new();
        let endless = RateSource::new(
            RateProfile::Constant { value: 100_000.0 },
            |seq: u64, _: Duration| seq,
        );
        builder
            .source("bsrc", endless)
            .unary("bflush", |_| PanicOnBarrier)
            .sink_fn("bsink", |_: u64| {});
        let job = builder
            .build()
            .unwrap()
            .start(JobOptions::default())
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let mut config = job.config();
        config.set_parallelism("bflush", 2);
        match job.reconfigure(config) {
            Err(ReconfigError::JobFailed(text)) => assert!(
                text.contains("bflush") && text.contains("cannot flush"),
                "{text}"
            ),
            other => panic!("expected JobFailed, got {other:?}"),
        }
        let err = job.join().unwrap_err();
        assert!(
            matches!(err, JobError::OperatorPanicked { ref stage, .. } if stage == "bflush"),
            "{err}"
        );
        assert_eq!(threads_left(&["bsrc", "bflush", "bsink"]), 0);
    });
}

struct Count;

impl Operator for Count {
    type In = u64;
    type Out = (u64, u64);
    type State = KeyedState<u64, u64>;
    fn on_batch(
        &mut self,
        batch: &mut Vec<u64>,
        cx: &mut Context<'_, (u64, u64), KeyedState<u64, u64>>,
    ) {
        for x in batch.drain(..) {
            *cx.state().get_or_insert_with(x % 10, || 0) += 1;
        }
    }
    fn on_end(&mut self, cx: &mut Context<'_, (u64, u64), KeyedState<u64, u64>>) {
        let all: Vec<_> = cx.state().drain().collect();
        cx.emit_all(all);
    }
}

#[test]
fn invalid_reconfigurations_are_rejected_and_the_job_carries_on() {
    within(Duration::from_secs(60), || {
        let total = Arc::new(AtomicU64::new(0));
        let t = total.clone();
        let builder = PipelineBuilder::new();
        let events = RateSource::new(
            RateProfile::Constant { value: 200_000.0 },
            |seq: u64, _: Duration| seq,
        )
        .limit(60_000);
        builder
            .source("isrc", events)
            .key_by(|x: &u64| x % 10)
            .unary("icount", |_| Count)
            .max_parallelism(4)
            .sink_fn("isink", move |(_, n): (u64, u64)| {
                t.fetch_add(n, Ordering::Relaxed);
            });
        let job = builder
            .build()
            .unwrap()
            .start(JobOptions::default())
            .unwrap();
        let before = job.config();

        let bad = |f: &dyn Fn(&mut JobConfig)| {
            let mut c = before.clone();
            f(&mut c);
            c
        };
        let cases: Vec<(JobConfig, ReconfigError)> = vec![
            (
                bad(&|c| {
                    c.set_parallelism("icount", 0);
                }),
                ReconfigError::InvalidParallelism {
                    stage: "icount".into(),
                    value: 0,
                    max: 4,
                },
            ),
            (
                bad(&|c| {
                    c.set_parallelism("icount", 5);
                }),
                ReconfigError::InvalidParallelism {
                    stage: "icount".into(),
                    value: 5,
                    max: 4,
                },
            ),
            (
                bad(&|c| {
                    c.set_capacity("isrc->icount", 0);
                }),
                ReconfigError::InvalidCapacity {
                    edge: "isrc->icount".into(),
                    value: 0,
                },
            ),
            (
                bad(&|c| {
                    c.set_batch_size("icount->isink", 0);
                }),
                ReconfigError::InvalidBatchSize {
                    edge: "icount->isink".into(),
                    value: 0,
                },
            ),
            (
                bad(&|c| {
                    c.set_parallelism("nope", 2);
                }),
                ReconfigError::UnknownStage("nope".into()),
            ),
            (
                bad(&|c| {
                    c.set_capacity("isrc->nope", 2);
                }),
                ReconfigError::UnknownEdge("isrc->nope".into()),
            ),
            (
                bad(&|c| {
                    c.set_parallelism("isrc", 2);
                }),
                ReconfigError::SourceParallelism {
                    stage: "isrc".into(),
                    current: 1,
                },
            ),
        ];
        for (config, expected) in cases {
            assert_eq!(job.reconfigure(config).unwrap_err(), expected);
            assert_eq!(
                job.config(),
                before,
                "a rejected change must not touch the configuration"
            );
        }
        // The job still runs and still reconfigures.
        let mut good = before.clone();
        good.set_parallelism("icount", 3);
        let report = job.reconfigure(good.clone()).unwrap();
        assert!(report.changed);
        assert_eq!(job.config(), good);
        let report = job.join().unwrap();
        assert_eq!(total.load(Ordering::Relaxed), 60_000);
        assert_eq!(report.reconfigurations.len(), 1);
        assert!(!report.aborted);
    });
}

#[test]
fn reconfiguring_a_finished_job_is_an_error_not_a_hang() {
    within(Duration::from_secs(30), || {
        let builder = PipelineBuilder::new();
        builder
            .source("fsrc", IterSource::new(0..10u64))
            .sink_fn("fsink", |_: u64| {});
        let job = builder
            .build()
            .unwrap()
            .start(JobOptions::default())
            .unwrap();
        while !job.is_finished() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let config = job.config();
        assert_eq!(job.reconfigure(config), Err(ReconfigError::JobNotRunning));
        job.join().unwrap();
    });
}

/// Keeps state under a key other than the one its input is partitioned by.
struct WrongKey;

impl Operator for WrongKey {
    type In = u64;
    type Out = u64;
    type State = KeyedState<u64, u64>;
    fn on_batch(&mut self, batch: &mut Vec<u64>, cx: &mut Context<'_, u64, KeyedState<u64, u64>>) {
        for x in batch.drain(..) {
            *cx.state().get_or_insert_with(x + 1, || 0) += 1;
        }
    }
}

#[test]
fn state_under_a_foreign_key_fails_the_job_with_an_explanation() {
    within(Duration::from_secs(30), || {
        let builder = PipelineBuilder::new();
        builder
            .source("wsrc", IterSource::new(0..10_000u64))
            .key_by(|x: &u64| *x)
            .unary("wkeyed", |_| WrongKey)
            .parallelism(4)
            .sink_fn("wsink", |_: u64| {});
        match builder.build().unwrap().run(JobOptions::default()) {
            Err(JobError::OperatorPanicked { stage, message, .. }) => {
                assert_eq!(stage, "wkeyed");
                assert!(
                    message.contains("the key its input is partitioned by"),
                    "{message}"
                );
            }
            other => panic!("expected a failure naming the stage, got {other:?}"),
        }
    });
}

//! Broadcast reaches every worker; partial batches are flushed on a timeout, so a trickle of
//! input flows even with large batches.

mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{GatedSource, Rec, records, within};
use rheo_engine::operator::{Context, Operator};
use rheo_engine::source::IterSource;
use rheo_engine::{JobOptions, PipelineBuilder};

/// Tags each record with the index of the worker that saw it.
struct Tag;

impl Operator for Tag {
    type In = u64;
    type Out = (usize, u64);
    type State = ();
    fn on_batch(&mut self, batch: &mut Vec<u64>, cx: &mut Context<'_, (usize, u64), ()>) {
        let me = cx.worker().index;
        for x in batch.drain(..) {
            cx.emit((me, x));
        }
    }
}

#[test]
fn broadcast_gives_every_worker_every_record() {
    within(Duration::from_secs(30), || {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let builder = PipelineBuilder::new().edge_defaults(4, 16);
        builder
            .source("n", IterSource::new(0..1000u64))
            .broadcast()
            .unary("tag", |_| Tag)
            .parallelism(3)
            .sink_fn("out", move |r: (usize, u64)| s.lock().unwrap().push(r));
        builder.build().unwrap().run(JobOptions::default()).unwrap();
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        let expected: Vec<(usize, u64)> = (0..3)
            .flat_map(|w| (0..1000).map(move |x| (w, x)))
            .collect();
        assert_eq!(seen, expected);
    });
}

#[test]
fn a_trickle_flows_through_large_batches() {
    within(Duration::from_secs(60), || {
        let input = records(&(0..5).map(|i| (i, i as u64)).collect::<Vec<_>>());
        let released = Arc::new(AtomicUsize::new(0));
        let arrived = Arc::new(AtomicU64::new(0));
        let builder = PipelineBuilder::new().edge_defaults(8, 1024);
        let a = arrived.clone();
        builder
            .source(
                "trickle",
                GatedSource {
                    input: input.clone(),
                    next: 0,
                    released: released.clone(),
                    emitted: Arc::default(),
                },
            )
            .key_by(|r: &Rec| r.key())
            .unary("pass", |_| common::MapOp { mult: 1, lin: None })
            .sink_fn("out", move |_: Rec| {
                a.fetch_add(1, Ordering::SeqCst);
            });
        let job = builder
            .build()
            .unwrap()
            .start(JobOptions::default().flush_timeout(Duration::from_millis(2)))
            .unwrap();
        // One record at a time: each must reach the sink long before 1024 have accumulated.
        for i in 1..input.len() {
            released.store(i, Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(20);
            while arrived.load(Ordering::SeqCst) < i as u64 {
                assert!(
                    Instant::now() < deadline,
                    "record {i} is stuck in a partial batch"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        released.store(input.len(), Ordering::SeqCst);
        job.join().unwrap();
        assert_eq!(arrived.load(Ordering::SeqCst), input.len() as u64);
    });
}

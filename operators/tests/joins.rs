//! Joins under live rescaling, against single-threaded references.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::Gate;
use rheo_engine::operator::Data;
use rheo_engine::{Either, JobOptions, PipelineBuilder, Timestamp};
use rheo_operators::prelude::*;

/// (key, id, event time)
type Rec = (u32, u64, Timestamp);

fn side(n: u64, keys: u64, salt: u64) -> Vec<Rec> {
    (0..n)
        .map(|i| {
            let h = (i ^ salt).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            ((h % keys) as u32, i + salt, i * 7 + (h >> 50) % 20)
        })
        .collect()
}

/// Runs two gated sources into `join`, releasing both in steps and rescaling the join stage
/// between steps; returns the sorted pairs.
fn run_join<O: Data + Ord>(
    left: Vec<Rec>,
    right: Vec<Rec>,
    join: impl FnOnce(
        rheo_engine::KeyedStream<Rec, u32, fn(&Rec) -> u32>,
        rheo_engine::KeyedStream<Rec, u32, fn(&Rec) -> u32>,
    ) -> rheo_engine::Stream<O>,
) -> Vec<O> {
    let (gl, gr) = (Gate::default(), Gate::default());
    let builder = PipelineBuilder::new().edge_defaults(8, 16);
    let key: fn(&Rec) -> u32 = |r| r.0;
    let ts = |r: &Rec| r.2;
    let l = builder
        .source("left", gl.source(left.clone()).with_timestamps(ts, 20))
        .key_by(key);
    let r = builder
        .source("right", gr.source(right.clone()).with_timestamps(ts, 20))
        .key_by(key);
    let out = join(l, r).collect("out");
    let job = builder
        .build()
        .unwrap()
        .start(JobOptions::default())
        .unwrap();
    for (step, p) in [3usize, 1, 4, 2, 3, 1].into_iter().enumerate() {
        gl.release(left.len() * (step + 1) / 7);
        gr.release(right.len() * (step + 1) / 7);
        let mut config = job.config();
        config.set_parallelism("join", p);
        assert!(job.reconfigure(config).unwrap().changed);
    }
    gl.release(left.len());
    gr.release(right.len());
    let report = job.join().unwrap();
    assert_eq!(report.reconfigurations.len(), 6);
    assert_eq!(gl.emitted.load(Ordering::Acquire), left.len());
    let mut got = out.take();
    got.sort();
    got
}

#[test]
fn incremental_join_emits_every_pair_once() {
    let (left, right) = (side(1500, 60, 0), side(1500, 60, 10_000));
    let got = run_join(left.clone(), right.clone(), |l, r| l.join(&r, "join"));
    let mut expected: Vec<(u32, Rec, Rec)> = Vec::new();
    for a in &left {
        for b in right.iter().filter(|b| b.0 == a.0) {
            expected.push((a.0, *a, *b));
        }
    }
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn window_join_pairs_records_of_the_same_window() {
    let (left, right) = (side(2000, 30, 0), side(2000, 30, 20_000));
    let got = run_join(left.clone(), right.clone(), |l, r| {
        l.window_join(&r, "join", 500, |x: &Rec| x.2, |x: &Rec| x.2)
    });
    let mut expected: Vec<(u32, Rec, Rec)> = Vec::new();
    for a in &left {
        for b in right
            .iter()
            .filter(|b| b.0 == a.0 && b.2 / 500 == a.2 / 500)
        {
            expected.push((a.0, *a, *b));
        }
    }
    expected.sort();
    assert!(expected.len() > 1000);
    assert_eq!(got, expected);
}

#[test]
fn two_input_stages_see_both_sides_tagged() {
    let builder = PipelineBuilder::new();
    let a = builder.source("a", IterSource::new(0..3u32));
    let b = builder.source("b", IterSource::new(["x".to_string()]));
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s = seen.clone();
    a.binary(&b, "both", |_| Tagger)
        .sink_fn("out", move |e| s.lock().push(e));
    builder.build().unwrap().run(JobOptions::default()).unwrap();
    let mut got = seen.lock().clone();
    got.sort();
    assert_eq!(got, vec!["L0", "L1", "L2", "Rx"]);
}

struct Tagger;

impl rheo_engine::operator::Operator for Tagger {
    type In = Either<u32, String>;
    type Out = String;
    type State = ();
    fn on_batch(
        &mut self,
        batch: &mut Vec<Either<u32, String>>,
        cx: &mut rheo_engine::operator::Context<'_, String, ()>,
    ) {
        for e in batch.drain(..) {
            cx.emit(match e {
                Either::Left(n) => format!("L{n}"),
                Either::Right(s) => format!("R{s}"),
            });
        }
    }
}

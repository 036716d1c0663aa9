//! Event-time windows: results equal a single-threaded reference under live rescaling, with
//! out-of-order input inside the watermark bound; late records past it go to the side output
//! and the `late_records` metric; allowed lateness re-fires windows; sessions split on gaps
//! and merge across them; open windows fire at the end of the stream; an idle source
//! partition does not hold the watermark back; and a long run fires windows by watermark
//! before its input ends.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Gate, run_rescaling};
use rheo_engine::{JobOptions, PipelineBuilder, Timestamp};
use rheo_operators::aggregate::{Count, sum};
use rheo_operators::prelude::*;
use rheo_operators::window::Window;

/// (key, value, event time)
type Event = (u32, u64, Timestamp);

fn ts(e: &Event) -> Timestamp {
    e.2
}

/// `n` events, ten per 100 ms of event time, shuffled by up to `bound` - 1 (never late).
fn out_of_order(n: u64, keys: u64, bound: u64) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            (
                (h % keys) as u32,
                (h >> 33) % 100,
                i * 10 + (h >> 50) % bound,
            )
        })
        .collect()
}

/// Reference: fixed windows `[s, s + size)`, `s` a multiple of `slide`, per key.
fn fixed_reference(input: &[Event], size: u64, slide: u64) -> Vec<WindowResult<u32, (u64, u64)>> {
    let mut windows: BTreeMap<(u32, u64), (u64, u64)> = BTreeMap::new();
    for e in input {
        let mut start = e.2 - e.2 % slide;
        loop {
            if start + size > e.2 {
                let w = windows.entry((e.0, start)).or_default();
                w.0 += 1;
                w.1 += e.1;
            }
            if start < slide {
                break;
            }
            start -= slide;
            if start + size <= e.2 {
                break;
            }
        }
    }
    windows
        .into_iter()
        .map(|((key, start), value)| WindowResult {
            key,
            start,
            end: start + size,
            value,
        })
        .collect()
}

/// Reference: per key, sorted times split wherever two neighbours are `gap` or more apart.
fn session_reference(input: &[Event], gap: u64) -> Vec<WindowResult<u32, (u64, u64)>> {
    let mut per_key: BTreeMap<u32, Vec<&Event>> = BTreeMap::new();
    for e in input {
        per_key.entry(e.0).or_default().push(e);
    }
    let mut out = Vec::new();
    for (key, mut events) in per_key {
        events.sort_by_key(|e| e.2);
        let mut current: Option<(u64, u64, (u64, u64))> = None;
        for e in events {
            current = match current {
                Some((start, end, (n, s))) if e.2 < end => {
                    Some((start, end.max(e.2 + gap), (n + 1, s + e.1)))
                }
                other => {
                    if let Some((start, end, value)) = other {
                        out.push(WindowResult {
                            key,
                            start,
                            end,
                            value,
                        });
                    }
                    Some((e.2, e.2 + gap, (1, e.1)))
                }
            };
        }
        if let Some((start, end, value)) = current {
            out.push(WindowResult {
                key,
                start,
                end,
                value,
            });
        }
    }
    out.sort();
    out
}

/// Runs a window (count) over `input` under rescaling and returns its results with the
/// per-window value sums, checking nothing was late.
fn windowed_under_rescaling(
    input: Vec<Event>,
    window: Window,
    bound: u64,
) -> Vec<WindowResult<u32, (u64, u64)>> {
    let run = run_rescaling(
        input,
        Some((ts as fn(&Event) -> Timestamp, bound)),
        &["windows"],
        move |s| {
            let both = s
                .key_by(|e: &Event| e.0)
                .window(window, ts)
                .aggregate("windows", (Count, sum(|e: &Event| e.1)));
            both.results
                .union(&both.late.map("late-marker", |e: Event| WindowResult {
                    key: u32::MAX,
                    start: e.2,
                    end: 0,
                    value: (0, 0),
                }))
        },
    );
    assert_eq!(run.counter("windows", "late_records"), 0);
    assert!(
        run.output.iter().all(|r| r.key != u32::MAX),
        "records were late"
    );
    run.output
}

#[test]
fn tumbling_windows_match_the_reference_under_rescaling() {
    let input = out_of_order(6000, 20, 40);
    let got = windowed_under_rescaling(input.clone(), tumbling(100), 40);
    assert_eq!(got, fixed_reference(&input, 100, 100));
}

#[test]
fn hopping_windows_match_the_reference_under_rescaling() {
    let input = out_of_order(6000, 20, 40);
    let got = windowed_under_rescaling(input.clone(), hop(300, 100), 40);
    assert_eq!(got, fixed_reference(&input, 300, 100));
}

#[test]
fn sessions_split_on_gaps_and_merge_across_them_under_rescaling() {
    // Per key, bursts of events 0..40 ms apart, with pauses of 0..400 ms between bursts; a gap
    // of 150 ms splits some pauses and not others, and out-of-order arrival (bound 60) makes
    // later records bridge sessions that had started separately.
    let mut input = Vec::new();
    for key in 0..12u32 {
        let mut t = u64::from(key) * 7;
        for i in 0..500u64 {
            let h = (i * 31 + u64::from(key)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            t += if i % 10 == 0 {
                (h >> 20) % 400
            } else {
                (h >> 20) % 40
            };
            input.push((key, (h >> 40) % 50, t));
        }
    }
    input.sort_by_key(|e| e.2);
    // Shuffle within the watermark bound: swap neighbours less than 60 ms apart.
    for i in (1..input.len()).step_by(3) {
        if input[i].2 - input[i - 1].2 < 60 {
            input.swap(i, i - 1);
        }
    }
    let got = windowed_under_rescaling(input.clone(), session(150), 60);
    let expected = session_reference(&input, 150);
    assert!(
        expected.len() > 100,
        "the input has too few sessions to be interesting"
    );
    assert_eq!(got, expected);
}

#[test]
fn open_windows_fire_at_the_end_of_the_stream() {
    // A watermark bound larger than the whole input: no window can close before the end.
    let input = out_of_order(2000, 5, 40);
    let got = windowed_under_rescaling(input.clone(), tumbling(1000), 1_000_000);
    assert_eq!(got, fixed_reference(&input, 1000, 1000));
}

/// Waits until `collected` holds at least `n` records.
fn wait_for<T>(collected: &Collected<T>, n: usize, what: &str) -> Vec<T> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while seen.len() < n {
        seen.extend(collected.take());
        assert!(
            Instant::now() < deadline,
            "{what}: {} of {n} after 30 s",
            seen.len()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    seen
}

/// Runs a tumbling(100) count with `lateness` over two phases: in-order events 0..2000 ms,
/// then — once the windows up to 1 500 have fired — `stragglers` and one event at 5 000 ms.
fn late_run(
    lateness: u64,
    stragglers: Vec<Event>,
) -> (Vec<WindowResult<u32, u64>>, Vec<Event>, u64) {
    let mut input: Vec<Event> = (0..200u64).map(|i| ((i % 4) as u32, 1, i * 10)).collect();
    let phase_one = input.len();
    input.extend(stragglers);
    input.push((0, 1, 5_000));
    let gate = Gate::default();
    let builder = PipelineBuilder::new();
    let windows = builder
        .source("src", gate.source(input.clone()).with_timestamps(ts, 0))
        .key_by(|e: &Event| e.0)
        .window(tumbling(100), ts)
        .allowed_lateness(lateness)
        .aggregate("windows", Count);
    let results = windows.results.collect("results");
    let late = windows.late.collect("late");
    let job = builder
        .build()
        .unwrap()
        .start(JobOptions::default().epoch(Duration::from_millis(20)))
        .unwrap();
    let snapshots = job.snapshots();
    gate.release(phase_one);
    // Windows [0,100) .. [1400,1500) for 4 keys: 60 results before the stragglers come.
    let mut got = wait_for(&results, 60, "windows firing by watermark");
    gate.release(input.len());
    job.join().unwrap();
    got.extend(results.take());
    got.sort();
    let counted = snapshots
        .filter_map(|s| {
            s.stage("windows")
                .and_then(|w| w.counters.get("late_records").copied())
        })
        .sum();
    (got, late.take(), counted)
}

#[test]
fn late_records_go_to_the_side_output_and_are_counted() {
    let stragglers: Vec<Event> = (0..10).map(|i| (i % 4, 1, 50 + u64::from(i))).collect();
    let (results, late, counted) = late_run(0, stragglers.clone());
    assert_eq!(late, stragglers);
    assert_eq!(counted, 10);
    // The window they belonged to kept its on-time result.
    let first: Vec<_> = results
        .iter()
        .filter(|r| r.start == 0)
        .map(|r| (r.key, r.value))
        .collect();
    assert_eq!(first, vec![(0, 3), (1, 3), (2, 2), (3, 2)]);
}

#[test]
fn allowed_lateness_updates_and_refires_windows() {
    // Window [1400,1500) fired at watermark 1500; with 1 000 ms of lateness it stays open until
    // 2 500, so stragglers at 1 450 update it; stragglers at 50 are too late even so.
    let stragglers = vec![(0, 1, 1450), (0, 1, 1460), (1, 1, 50)];
    let (results, late, counted) = late_run(1000, stragglers);
    assert_eq!(late, vec![(1, 1, 50)]);
    assert_eq!(counted, 1);
    let refired: Vec<u64> = results
        .iter()
        .filter(|r| r.key == 0 && r.start == 1400)
        .map(|r| r.value)
        .collect();
    // On time: 1400, 1440, 1480 → 3; then 4 and 5 as the stragglers arrive.
    assert_eq!(refired, vec![3, 4, 5]);
}

/// Two source partitions; the second sends a few events and then nothing for a long time.
fn idle_run(idle_after: Option<Duration>) -> usize {
    let busy: Vec<Event> = (0..400u64).map(|i| ((i % 3) as u32, 1, i * 10)).collect();
    let quiet: Vec<Event> = vec![(9, 1, 0), (9, 1, 5)];
    let gates = [Gate::default(), Gate::default()];
    let builder = PipelineBuilder::new();
    let sources = builder.parallel_source("src", 2, |i, _| {
        let input = if i == 0 { busy.clone() } else { quiet.clone() };
        let timed = gates[i].source(input).with_timestamps(ts, 0);
        match idle_after {
            Some(after) => timed.idle_after(after),
            None => timed.idle_after(Duration::from_secs(3600)),
        }
    });
    let results = sources
        .key_by(|e: &Event| e.0)
        .window(tumbling(100), ts)
        .aggregate("windows", Count)
        .results
        .collect("results");
    let job = builder
        .build()
        .unwrap()
        .start(JobOptions::default())
        .unwrap();
    gates[1].release(1);
    gates[0].release(busy.len());
    // Give the watermark time to move (or not).
    let fired = if idle_after.is_some() {
        wait_for(&results, 10, "windows firing while a partition is idle").len()
    } else {
        std::thread::sleep(Duration::from_millis(300));
        results.take().len()
    };
    gates[1].release(quiet.len());
    job.join().unwrap();
    fired
}

#[test]
fn an_idle_partition_does_not_hold_back_the_watermark() {
    // Without idleness the quiet partition pins the watermark at 0: nothing fires.
    assert_eq!(idle_run(None), 0);
    // Declared idle after 30 ms, it is left out, and windows fire by the busy one's watermark.
    assert!(idle_run(Some(Duration::from_millis(30))) >= 10);
}

#[test]
fn a_long_run_fires_windows_by_watermark_before_its_input_ends() {
    // 40 windows of event time; before the last tenth of the input is released, at least 20
    // windows per key must have fired by watermark alone.
    let input: Vec<Event> = (0..4000u64).map(|i| ((i % 2) as u32, 1, i * 10)).collect();
    let gate = Gate::default();
    let builder = PipelineBuilder::new();
    let results = builder
        .source("src", gate.source(input.clone()).with_timestamps(ts, 20))
        .key_by(|e: &Event| e.0)
        .window(tumbling(1000), ts)
        .aggregate("windows", Count)
        .results
        .collect("results");
    let job = builder
        .build()
        .unwrap()
        .start(JobOptions::default())
        .unwrap();
    for tenth in 1..10 {
        gate.release(input.len() * tenth / 10);
    }
    let before_end = wait_for(&results, 2 * 20, "windows firing before the end");
    assert!(gate.emitted.load(std::sync::atomic::Ordering::Acquire) < input.len());
    gate.release(input.len());
    job.join().unwrap();
    let all = before_end.len() + results.take().len();
    assert_eq!(all, 2 * 40);
    assert!(before_end.iter().all(|r| r.value == 50));
}

#[test]
fn a_window_stage_takes_its_parallelism_from_its_results_stream() {
    let builder = PipelineBuilder::new();
    let events = out_of_order(2_000, 7, 1);
    let windows = builder
        .source(
            "events",
            IterSource::new(events.clone()).with_timestamps(ts, 0),
        )
        .key_by(|e: &Event| e.0)
        .window(tumbling(100), ts)
        .aggregate("count", Count);
    // The results are a view of the window stage: its stage properties are that stage's.
    let results = windows.results.parallelism(3).collect("out");
    let pipeline = builder
        .build()
        .expect("a view of one stage is not ambiguous");
    assert_eq!(pipeline.default_config().parallelism("count"), Some(3));
    pipeline.run(JobOptions::default()).expect("job runs");
    let total: u64 = results.take().iter().map(|r| r.value).sum();
    assert_eq!(total, events.len() as u64);
}

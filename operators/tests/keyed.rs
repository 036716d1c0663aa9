//! Keyed operators under live reconfiguration, against single-threaded references.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::run_rescaling;
use proptest::prelude::*;
use rheo_engine::Timestamp;
use rheo_operators::aggregate::{Count, sum};
use rheo_operators::prelude::*;
use rheo_operators::process::{KeyedProcess, ProcessContext};

/// (key, value, event time)
type Event = (u32, u64, Timestamp);

fn events(n: usize, keys: u32) -> Vec<Event> {
    (0..n as u64)
        .map(|i| {
            let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            ((h % keys as u64) as u32, (h >> 40) % 1000, i)
        })
        .collect()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

#[test]
fn reduce_emits_running_values_per_key() {
    let input = events(6000, 50);
    let run = run_rescaling(input.clone(), None, &["running"], |s| {
        s.key_by(|e: &Event| e.0).reduce(
            "running",
            |k: &u32| (*k, 0u64),
            |acc: &mut (u32, u64), e| acc.1 += e.1,
        )
    });
    let mut totals: HashMap<u32, u64> = HashMap::new();
    let expected: Vec<(u32, u64)> = input
        .iter()
        .map(|e| {
            let t = totals.entry(e.0).or_default();
            *t += e.1;
            (e.0, *t)
        })
        .collect();
    assert_eq!(run.output, sorted(expected));
}

#[test]
fn aggregate_keeps_incremental_accumulators() {
    let input = events(6000, 50);
    let run = run_rescaling(input.clone(), None, &["sum"], |s| {
        s.key_by(|e: &Event| e.0)
            .aggregate("sum", sum(|e: &Event| e.1))
    });
    let mut totals: HashMap<u32, u64> = HashMap::new();
    let expected: Vec<(u32, u64)> = input
        .iter()
        .map(|e| {
            let t = totals.entry(e.0).or_default();
            *t += e.1;
            (e.0, *t)
        })
        .collect();
    assert_eq!(run.output, sorted(expected));
}

#[test]
fn combiner_and_merge_reach_the_exact_counts() {
    // One key carries half of the traffic.
    let input: Vec<Event> = events(8000, 40)
        .into_iter()
        .enumerate()
        .map(|(i, e)| if i % 2 == 0 { (7, e.1, e.2) } else { e })
        .collect();
    let run = run_rescaling(input.clone(), None, &["partial", "merge"], |s| {
        s.combine("partial", |e: &Event| e.0, Count, 64)
            .key_by(|p: &(u32, u64)| p.0)
            .merge_partials("merge", Count)
    });
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    for (k, n) in &run.output {
        let e = last.entry(*k).or_default();
        *e = (*e).max(*n);
    }
    let mut expected: BTreeMap<u32, u64> = BTreeMap::new();
    for e in &input {
        *expected.entry(e.0).or_default() += 1;
    }
    assert_eq!(last, expected);
    // The combiner sent fewer partials than there were records.
    let merged_in = run.report.stage("merge").unwrap().records_in;
    assert!(
        merged_in < input.len() as u64,
        "{merged_in} partials for {} records",
        input.len()
    );
}

#[test]
fn top_n_tracks_the_best_records_per_key() {
    let input = events(4000, 20);
    let run = run_rescaling(input.clone(), None, &["top3"], |s| {
        s.key_by(|e: &Event| e.0).top_n("top3", 3, |e: &Event| e.1)
    });
    let mut tops: HashMap<u32, Vec<Event>> = HashMap::new();
    let mut expected = Vec::new();
    for e in &input {
        let top = tops.entry(e.0).or_default();
        let at = top.partition_point(|t| t.1 >= e.1);
        if at < 3 {
            top.insert(at, *e);
            top.truncate(3);
            expected.push((e.0, top.clone()));
        }
    }
    assert_eq!(run.output, sorted(expected));
}

#[test]
fn dedup_passes_the_first_record_of_each_key() {
    let input = events(5000, 300);
    let run = run_rescaling(input.clone(), None, &["first"], |s| {
        s.key_by(|e: &Event| e.0).dedup("first")
    });
    let mut seen = std::collections::HashSet::new();
    let expected: Vec<Event> = input.iter().filter(|e| seen.insert(e.0)).copied().collect();
    assert_eq!(run.output, sorted(expected));
}

#[test]
fn dedup_within_forgets_keys_after_the_horizon() {
    // Ten keys, each recurring every 1 000 ms of event time, with a 5 000 ms horizon. When a
    // key is forgotten depends on how far the watermark has come (it trails the data by up to
    // the source's watermark interval), so the test checks what holds whatever the lag: every
    // key passes first, no key passes twice within the horizon, and keys do pass again.
    let input: Vec<Event> = (0..4000u64)
        .map(|i| ((i % 10) as u32, i, i * 100))
        .collect();
    let run = run_rescaling(
        input.clone(),
        Some((|e: &Event| e.2, 0)),
        &["recent"],
        |s| {
            s.key_by(|e: &Event| e.0)
                .dedup_within("recent", |e: &Event| e.2, 5_000)
        },
    );
    let mut passes: BTreeMap<u32, Vec<Timestamp>> = BTreeMap::new();
    for e in &run.output {
        passes.entry(e.0).or_default().push(e.2);
    }
    for k in 0..10u32 {
        let times = &passes[&k];
        assert_eq!(times[0], u64::from(k) * 100, "key {k} did not pass first");
        for pair in times.windows(2) {
            assert!(
                pair[1] >= pair[0] + 5_000,
                "key {k} passed again within the horizon: {pair:?}"
            );
        }
    }
    assert!(
        run.output.len() >= 20,
        "keys were never forgotten: {} passes",
        run.output.len()
    );
}

/// The largest value per key and 1 000 ms period, emitted when the watermark reaches the end
/// of the period, then forgotten: a Nexmark q9-style winner per auction period.
struct Deadline;

type Best = BTreeMap<Timestamp, u64>;

impl KeyedProcess<u32, Event> for Deadline {
    type Value = Best;
    type Out = (u32, u64, Timestamp);

    fn on_record(
        &self,
        _: &u32,
        e: Event,
        cx: &mut ProcessContext<'_, u32, Best, (u32, u64, Timestamp)>,
    ) {
        let deadline = e.2 - e.2 % 1000 + 1000;
        let best = cx
            .value_or_insert_with(BTreeMap::new)
            .entry(deadline)
            .or_default();
        *best = (*best).max(e.1);
        cx.register_timer(deadline);
    }

    fn on_timer(
        &self,
        key: &u32,
        time: Timestamp,
        cx: &mut ProcessContext<'_, u32, Best, (u32, u64, Timestamp)>,
    ) {
        let Some(periods) = cx.value() else { return };
        let best = periods.remove(&time);
        if periods.is_empty() {
            cx.take_value();
        }
        if let Some(best) = best {
            cx.emit((*key, best, time));
        }
    }
}

#[test]
fn process_fires_event_time_timers_on_keyed_state() {
    // Event time advances 1 per record; each key's value closes every 1 000 ms.
    let input: Vec<Event> = events(8000, 16);
    let run = run_rescaling(
        input.clone(),
        Some((|e: &Event| e.2, 50)),
        &["winners"],
        |s| s.key_by(|e: &Event| e.0).process("winners", Deadline),
    );
    let mut best: BTreeMap<(u32, Timestamp), u64> = BTreeMap::new();
    for e in &input {
        let deadline = e.2 - e.2 % 1000 + 1000;
        let b = best.entry((e.0, deadline)).or_default();
        *b = (*b).max(e.1);
    }
    let expected: Vec<(u32, u64, Timestamp)> =
        best.into_iter().map(|((k, d), v)| (k, v, d)).collect();
    assert_eq!(run.output, sorted(expected));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, max_shrink_iters: 4, ..ProptestConfig::default() })]

    /// Partitioning: whatever the keys and however often the stage is rescaled, every key's
    /// count comes out exact.
    #[test]
    fn keyed_counts_survive_rescaling(keys in prop::collection::vec(0u32..500, 700..2000)) {
        let input: Vec<Event> = keys.iter().enumerate().map(|(i, k)| (*k, 1, i as u64)).collect();
        let run = run_rescaling(input.clone(), None, &["count"], |s| {
            s.key_by(|e: &Event| e.0).aggregate("count", Count)
        });
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        for (k, n) in &run.output {
            let e = last.entry(*k).or_default();
            *e = (*e).max(*n);
        }
        let mut expected: BTreeMap<u32, u64> = BTreeMap::new();
        for k in &keys {
            *expected.entry(*k).or_default() += 1;
        }
        prop_assert_eq!(last, expected);
    }
}

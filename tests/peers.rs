//! The peers benchmark's four systems compute the same answers (the harness checks this on its
//! full input before timing; here on a small one, at one and two workers, in CI).

#[allow(dead_code)]
#[path = "../examples/peers/systems/mod.rs"]
mod systems;

use std::collections::{BTreeMap, BTreeSet};

use rheo::operators::sinks::Checksum;
use systems::input::{self, Answer};
use systems::{Input, System, Workload};

/// Enough events for two windows and blocks left over at both worker counts.
const EVENTS: usize = 1_300_000;

fn answers(workload: Workload, input: &Input) -> Vec<(System, usize, Answer)> {
    let mut out = Vec::new();
    for system in System::ALL {
        for workers in [1, 2] {
            let answer = system
                .run(workload, input, workers)
                .unwrap_or_else(|e| panic!("{e}"));
            out.push((system, workers, answer));
        }
    }
    out
}

fn assert_all_equal(workload: Workload, expected: Answer, input: &Input) {
    for (system, workers, answer) in answers(workload, input) {
        assert_eq!(
            answer,
            expected,
            "{} on {} with {workers} worker(s)",
            system.name(),
            workload.name()
        );
    }
}

#[test]
fn word_count_agrees_with_a_plain_count() {
    let input = Input::generate(EVENTS, 7);
    let mut counts = BTreeMap::<u64, u64>::new();
    for &k in input.keys() {
        *counts.entry(input::normalise(k)).or_default() += 1;
    }
    let pairs: Vec<(u64, u64)> = counts.into_iter().collect();
    let expected = Checksum::of(&pairs);
    // Zipf over 100 000 ids: many distinct words, far fewer than events.
    assert!(expected.0 > 10_000 && expected.0 < EVENTS as u64 / 10);
    assert_all_equal(Workload::WordCount, expected, &input);
}

#[test]
fn map_filter_agrees_with_a_plain_chain() {
    let input = Input::generate(EVENTS, 8);
    let survivors: Vec<u64> = input
        .keys()
        .iter()
        .map(|&x| input::scramble(x))
        .filter(input::keep_first)
        .map(input::rotate)
        .filter(input::keep_second)
        .collect();
    // Both filters drop something and keep most.
    assert!(survivors.len() < EVENTS && survivors.len() > EVENTS / 2);
    assert_all_equal(Workload::MapFilter, Checksum::of(&survivors), &input);
}

#[test]
fn window_count_agrees_with_a_plain_count_per_window() {
    let input = Input::generate(EVENTS, 9);
    let mut counts = BTreeMap::<(u64, u64), u64>::new();
    for (i, &k) in input.keys().iter().enumerate() {
        let ts = input::timestamp(i);
        *counts.entry((ts - ts % input::WINDOW_MS, k)).or_default() += 1;
    }
    let windows: BTreeSet<u64> = counts.keys().map(|&(w, _)| w).collect();
    assert_eq!(windows.len(), 2, "the input spans two windows");
    let mut expected = (0, 0);
    for w in windows {
        let pane = counts
            .range((w, 0)..=(w, u64::MAX))
            .map(|(&(_, k), &n)| (k, n));
        expected = input::merge(expected, input::close_window(w, pane));
    }
    assert_all_equal(Workload::WindowCount, expected, &input);
}

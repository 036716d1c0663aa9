//! The generated input, the workloads' per-record functions, and the answer every system
//! produces.

use std::ops::Range;
use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Zipf};
use rheo::operators::sinks::Checksum;
use rheo::operators::window::WindowResult;

/// Records per batch in every system (and per block of the input split).
pub const BATCH: usize = 1024;
/// Distinct keys (word ids).
pub const KEYS: u64 = 100_000;
/// Event time advances one millisecond every this many events.
pub const EVENTS_PER_MS: u64 = 1_000;
/// The tumbling window's size in event-time milliseconds (1 000 000 events per window).
pub const WINDOW_MS: u64 = 1_000;

/// Records out of a workload: how many, and the wrapping sum of their hashes.
pub type Answer = (u64, u64);

/// The answer for the results of one closed window: `(key, count)` pairs of the window
/// starting at `start`, as [`WindowResult`]s.
pub fn close_window(start: u64, counts: impl IntoIterator<Item = (u64, u64)>) -> Answer {
    let results: Vec<WindowResult<u64, u64>> = counts
        .into_iter()
        .map(|(key, value)| WindowResult {
            key,
            start,
            end: start + WINDOW_MS,
            value,
        })
        .collect();
    Checksum::of(&results)
}

/// Adds two partial answers.
pub fn merge(a: Answer, b: Answer) -> Answer {
    (a.0 + b.0, a.1.wrapping_add(b.1))
}

/// What the pipeline computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Pre-tokenised word ids: map → hash exchange → count per key, emitted at the end.
    WordCount,
    /// map → filter → map → filter, stateless; the survivors are the output.
    MapFilter,
    /// Keyed tumbling-window count in event time, a result per (key, window).
    WindowCount,
}

impl Workload {
    /// All three.
    pub const ALL: [Workload; 3] = [
        Workload::WordCount,
        Workload::MapFilter,
        Workload::WindowCount,
    ];

    /// The name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Workload::WordCount => "word-count",
            Workload::MapFilter => "map-filter",
            Workload::WindowCount => "window-count",
        }
    }

    /// Parses [`Workload::name`].
    pub fn parse(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }
}

/// Word ids with Zipf(1.0) popularity over [`KEYS`] ids, in memory.
#[derive(Debug, Clone)]
pub struct Input {
    keys: Arc<Vec<u64>>,
}

impl Input {
    /// `events` ids drawn with `seed`.
    pub fn generate(events: usize, seed: u64) -> Input {
        let mut rng = StdRng::seed_from_u64(seed);
        // KEYS ≥ 1 and the exponent is finite and positive: the distribution exists.
        let zipf = Zipf::new(KEYS as f64, 1.0).expect("valid Zipf parameters");
        let keys = (0..events)
            .map(|_| zipf.sample(&mut rng) as u64 - 1)
            .collect();
        Input {
            keys: Arc::new(keys),
        }
    }

    /// The ids.
    pub fn keys(&self) -> &[u64] {
        &self.keys
    }

    /// The ids, shared.
    pub fn shared(&self) -> Arc<Vec<u64>> {
        self.keys.clone()
    }
}

/// The index ranges worker `worker` of `workers` reads: blocks of [`BATCH`] events dealt
/// round-robin, so every worker's event time advances at the same pace.
pub fn blocks(len: usize, worker: usize, workers: usize) -> impl Iterator<Item = Range<usize>> {
    (worker * BATCH..len)
        .step_by(BATCH * workers.max(1))
        .map(move |start| start..(start + BATCH).min(len))
}

/// Event time of the event at `index`, in ms.
pub fn timestamp(index: usize) -> u64 {
    index as u64 / EVENTS_PER_MS
}

/// Word count's map: normalises a token id.
pub fn normalise(key: u64) -> u64 {
    key ^ 1
}

/// The chain's first map.
pub fn scramble(x: u64) -> u64 {
    x.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (x >> 7)
}

/// The chain's first filter (keeps about 7 in 8).
pub fn keep_first(x: &u64) -> bool {
    x >> 61 != 0
}

/// The chain's second map.
pub fn rotate(x: u64) -> u64 {
    x.rotate_left(17).wrapping_add(0x5555)
}

/// The chain's second filter (keeps about 2 in 3).
pub fn keep_second(x: &u64) -> bool {
    !x.is_multiple_of(3)
}

/// The hash the hand-written pipeline and timely exchange keys by.
pub fn key_hash(key: u64) -> u64 {
    key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32
}

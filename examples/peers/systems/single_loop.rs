//! One thread, one loop, no channels: the ceiling per core.

use rheo::operators::sinks::Checksum;
use rustc_hash::FxHashMap;

use super::input::{self, Answer, BATCH, Input, Workload, merge};

/// Runs `workload` over `input` on the calling thread.
pub fn run(workload: Workload, input: &Input) -> Answer {
    let keys = input.keys();
    match workload {
        Workload::WordCount => {
            let mut counts = FxHashMap::<u64, u64>::default();
            for &key in keys {
                *counts.entry(input::normalise(key)).or_insert(0) += 1;
            }
            let counts: Vec<(u64, u64)> = counts.into_iter().collect();
            Checksum::of(&counts)
        }
        Workload::MapFilter => {
            let mut answer = (0, 0);
            let mut out = Vec::with_capacity(BATCH);
            for chunk in keys.chunks(BATCH) {
                out.extend(
                    chunk
                        .iter()
                        .map(|&x| input::scramble(x))
                        .filter(input::keep_first)
                        .map(input::rotate)
                        .filter(input::keep_second),
                );
                answer = merge(answer, Checksum::of(&out));
                out.clear();
            }
            answer
        }
        Workload::WindowCount => {
            let mut answer = (0, 0);
            let mut counts = FxHashMap::<u64, u64>::default();
            let mut current = 0;
            for (i, &key) in keys.iter().enumerate() {
                let ts = input::timestamp(i);
                let start = ts - ts % input::WINDOW_MS;
                if start != current {
                    answer = merge(answer, input::close_window(current, counts.drain()));
                    current = start;
                }
                *counts.entry(key).or_insert(0) += 1;
            }
            merge(answer, input::close_window(current, counts.drain()))
        }
    }
}

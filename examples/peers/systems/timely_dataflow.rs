//! timely-dataflow, written the way its own examples are: an input handle fed a batch at a
//! time with the worker stepped between batches, `Exchange` by key before the stateful
//! operator, `Pipeline` elsewhere, state in the operator's closure, results released when the
//! frontier passes their time, and a probe to run the dataflow to completion. One timely
//! worker per core; each worker reads its own blocks of the input.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;

use rheo::operators::sinks::Checksum;
use rheo::operators::window::WindowResult;
use rustc_hash::FxHashMap;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::vec::{Filter, Map};
use timely::dataflow::operators::{Capability, Operator, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

use super::input::{self, Answer, BATCH, Input, Workload, merge};
use super::{RunError, System};

/// Runs `workload` on `cores` timely workers in this process.
pub fn run(workload: Workload, input: &Input, cores: usize) -> Result<Answer, RunError> {
    let error = |reason: String| RunError {
        system: System::Timely,
        reason,
    };
    let keys = input.shared();
    let guards = timely::execute(timely::Config::process(cores.max(1)), move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let answer = Rc::new(Cell::new((0u64, 0u64)));
        let sum = answer.clone();
        let probe = ProbeHandle::new();
        let blocks = input::blocks(keys.len(), index, peers);
        match workload {
            Workload::WordCount => {
                let mut events = InputHandle::new();
                worker.dataflow::<u64, _, _>(|scope| {
                    events
                        .to_stream(scope)
                        .map(input::normalise)
                        .unary_frontier(
                            Exchange::new(|k: &u64| input::key_hash(*k)),
                            "count",
                            |capability, _| {
                                let mut capability = Some(capability);
                                let mut counts = FxHashMap::<u64, u64>::default();
                                move |(input, frontier), output| {
                                    input.for_each(|_, batch: &mut Vec<u64>| {
                                        for key in batch.drain(..) {
                                            *counts.entry(key).or_insert(0) += 1;
                                        }
                                    });
                                    // The input is complete: emit the counts and let go.
                                    if frontier.is_empty()
                                        && let Some(cap) = capability.take()
                                    {
                                        output.session(&cap).give_iterator(counts.drain());
                                    }
                                }
                            },
                        )
                        .container::<Vec<(u64, u64)>>()
                        .probe_with(&probe)
                        .sink(Pipeline, "checksum", move |(input, _)| {
                            input.for_each(|_, batch| {
                                sum.set(merge(sum.get(), Checksum::of(&*batch)))
                            });
                        });
                });
                let mut buffer = Vec::with_capacity(BATCH);
                for range in blocks {
                    buffer.extend_from_slice(&keys[range]);
                    events.send_batch(&mut buffer);
                    buffer.clear();
                    worker.step();
                }
            }
            Workload::MapFilter => {
                let mut numbers = InputHandle::new();
                worker.dataflow::<u64, _, _>(|scope| {
                    numbers
                        .to_stream(scope)
                        .map(input::scramble)
                        .filter(input::keep_first)
                        .map(input::rotate)
                        .filter(input::keep_second)
                        .probe_with(&probe)
                        .sink(Pipeline, "checksum", move |(input, _)| {
                            input.for_each(|_, batch: &mut Vec<u64>| {
                                sum.set(merge(sum.get(), Checksum::of(&*batch)))
                            });
                        });
                });
                let mut buffer = Vec::with_capacity(BATCH);
                for range in blocks {
                    buffer.extend_from_slice(&keys[range]);
                    numbers.send_batch(&mut buffer);
                    buffer.clear();
                    worker.step();
                }
            }
            Workload::WindowCount => {
                // Timely time is the window's index: the frontier passing a window closes it.
                let mut events = InputHandle::new();
                worker.dataflow::<u64, _, _>(|scope| {
                    events
                        .to_stream(scope)
                        .unary_frontier(
                            Exchange::new(|e: &(u64, u64)| input::key_hash(e.0)),
                            "window-count",
                            |_, _| {
                                let mut open =
                                    BTreeMap::<u64, (Capability<u64>, FxHashMap<u64, u64>)>::new();
                                move |(input, frontier), output| {
                                    input.for_each(|cap, batch: &mut Vec<(u64, u64)>| {
                                        // Runs of one window at a time (a batch rarely holds two).
                                        let mut rest = &batch[..];
                                        while let Some(&(_, ts)) = rest.first() {
                                            let window = ts / input::WINDOW_MS;
                                            let run = rest
                                                .iter()
                                                .take_while(|e| e.1 / input::WINDOW_MS == window)
                                                .count();
                                            let counts = &mut open
                                                .entry(window)
                                                .or_insert_with(|| {
                                                    (
                                                        cap.delayed(&window, output.output_index()),
                                                        FxHashMap::default(),
                                                    )
                                                })
                                                .1;
                                            for &(key, _) in &rest[..run] {
                                                *counts.entry(key).or_insert(0) += 1;
                                            }
                                            rest = &rest[run..];
                                        }
                                        batch.clear();
                                    });
                                    while let Some(entry) = open.first_entry() {
                                        if frontier.less_equal(entry.key()) {
                                            break;
                                        }
                                        let (window, (cap, counts)) = entry.remove_entry();
                                        let start = window * input::WINDOW_MS;
                                        output.session(&cap).give_iterator(counts.into_iter().map(
                                            |(key, value)| WindowResult {
                                                key,
                                                start,
                                                end: start + input::WINDOW_MS,
                                                value,
                                            },
                                        ));
                                    }
                                }
                            },
                        )
                        .container::<Vec<WindowResult<u64, u64>>>()
                        .probe_with(&probe)
                        .sink(Pipeline, "checksum", move |(input, _)| {
                            input.for_each(|_, batch| {
                                sum.set(merge(sum.get(), Checksum::of(&*batch)))
                            });
                        });
                });
                let mut buffer = Vec::with_capacity(BATCH);
                for range in blocks {
                    // A block may straddle two windows: send each part at its own time.
                    let mut start = range.start;
                    while start < range.end {
                        let window = input::timestamp(start) / input::WINDOW_MS;
                        let mut end = start;
                        while end < range.end && input::timestamp(end) / input::WINDOW_MS == window
                        {
                            buffer.push((keys[end], input::timestamp(end)));
                            end += 1;
                        }
                        events.advance_to(window);
                        events.send_batch(&mut buffer);
                        buffer.clear();
                        start = end;
                    }
                    worker.step();
                }
            }
        }
        // Inputs are dropped here: run until the frontier is empty everywhere.
        worker.step_while(|| !probe.done());
        answer.get()
    })
    .map_err(error)?;
    guards
        .join()
        .into_iter()
        .try_fold((0, 0), |total, worker| worker.map(|a| merge(total, a)))
        .map_err(error)
}

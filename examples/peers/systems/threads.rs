//! A hand-written pipeline: plain threads joined by bounded crossbeam channels, batches of
//! [`BATCH`] records, no engine — what a user writes instead of adopting one. One producer
//! thread per core reads its blocks; keyed work goes to one consumer thread per core by key
//! hash; stateless work stays in the producer and only survivors travel, to one sink thread.

use std::collections::BTreeMap;
use std::thread;

use crossbeam_channel::{Receiver, Sender, bounded};
use rheo::operators::sinks::Checksum;
use rustc_hash::FxHashMap;

use super::input::{self, Answer, BATCH, Input, Workload, merge};

/// Channel capacity in batches (as rheo's default).
const CAPACITY: usize = 64;

/// The configuration [`run`] uses.
pub fn config(workload: Workload, cores: usize) -> String {
    match workload {
        Workload::MapFilter => {
            format!("{cores} producer(s) running the chain, 1 sink thread; batch {BATCH}")
        }
        _ => format!("{cores} producer(s), {cores} keyed consumer(s); batch {BATCH}"),
    }
}

/// One bounded channel per consumer: the senders and the receivers.
type Channels<T> = (Vec<Sender<T>>, Vec<Receiver<T>>);

/// Runs `workload` on `cores` producers (and as many consumers where it is keyed).
pub fn run(workload: Workload, input: &Input, cores: usize) -> Answer {
    let cores = cores.max(1);
    match workload {
        Workload::WordCount => word_count(input, cores),
        Workload::MapFilter => map_filter(input, cores),
        Workload::WindowCount => window_count(input, cores),
    }
}

fn word_count(input: &Input, cores: usize) -> Answer {
    let keys = input.keys();
    let (senders, receivers): Channels<Vec<u64>> = (0..cores).map(|_| bounded(CAPACITY)).unzip();
    thread::scope(|s| {
        for producer in 0..cores {
            let senders = senders.clone();
            s.spawn(move || {
                let mut out: Vec<Vec<u64>> =
                    (0..cores).map(|_| Vec::with_capacity(BATCH)).collect();
                for range in input::blocks(keys.len(), producer, cores) {
                    for &key in &keys[range] {
                        let key = input::normalise(key);
                        let to = (input::key_hash(key) % cores as u64) as usize;
                        out[to].push(key);
                        if out[to].len() == BATCH {
                            let full = std::mem::replace(&mut out[to], Vec::with_capacity(BATCH));
                            // A consumer only leaves when every producer has: send cannot fail.
                            let _ = senders[to].send(full);
                        }
                    }
                }
                for (to, rest) in out.into_iter().enumerate() {
                    let _ = senders[to].send(rest);
                }
            });
        }
        drop(senders);
        let consumers: Vec<_> = receivers
            .into_iter()
            .map(|rx| {
                s.spawn(move || {
                    let mut counts = FxHashMap::<u64, u64>::default();
                    for batch in rx {
                        for key in batch {
                            *counts.entry(key).or_insert(0) += 1;
                        }
                    }
                    let counts: Vec<(u64, u64)> = counts.into_iter().collect();
                    Checksum::of(&counts)
                })
            })
            .collect();
        join_all(consumers)
    })
}

fn map_filter(input: &Input, cores: usize) -> Answer {
    let keys = input.keys();
    let (tx, rx) = bounded::<Vec<u64>>(CAPACITY);
    thread::scope(|s| {
        for producer in 0..cores {
            let tx = tx.clone();
            s.spawn(move || {
                let mut out = Vec::with_capacity(BATCH);
                for range in input::blocks(keys.len(), producer, cores) {
                    out.extend(
                        keys[range]
                            .iter()
                            .map(|&x| input::scramble(x))
                            .filter(input::keep_first)
                            .map(input::rotate)
                            .filter(input::keep_second),
                    );
                    if out.len() >= BATCH {
                        let _ = tx.send(std::mem::replace(&mut out, Vec::with_capacity(BATCH)));
                    }
                }
                let _ = tx.send(out);
            });
        }
        drop(tx);
        let sink = s.spawn(move || {
            rx.into_iter()
                .fold((0, 0), |total, batch| merge(total, Checksum::of(&batch)))
        });
        join_all(vec![sink])
    })
}

/// What a window consumer receives from a producer.
enum Message {
    Events(Vec<(u64, u64)>),
    /// No later event from this producer is earlier than this (event time, ms).
    Watermark(usize, u64),
}

fn window_count(input: &Input, cores: usize) -> Answer {
    let keys = input.keys();
    let (senders, receivers): Channels<Message> = (0..cores).map(|_| bounded(CAPACITY)).unzip();
    thread::scope(|s| {
        for producer in 0..cores {
            let senders = senders.clone();
            s.spawn(move || {
                let mut out: Vec<Vec<(u64, u64)>> =
                    (0..cores).map(|_| Vec::with_capacity(BATCH)).collect();
                for range in input::blocks(keys.len(), producer, cores) {
                    let last = input::timestamp(range.end - 1);
                    for i in range {
                        let key = keys[i];
                        let to = (input::key_hash(key) % cores as u64) as usize;
                        out[to].push((key, input::timestamp(i)));
                        if out[to].len() == BATCH {
                            let full = std::mem::replace(&mut out[to], Vec::with_capacity(BATCH));
                            let _ = senders[to].send(Message::Events(full));
                        }
                    }
                    // Events travel before the watermark that covers them.
                    for (to, sender) in senders.iter().enumerate() {
                        if !out[to].is_empty() {
                            let part = std::mem::replace(&mut out[to], Vec::with_capacity(BATCH));
                            let _ = sender.send(Message::Events(part));
                        }
                        let _ = sender.send(Message::Watermark(producer, last));
                    }
                }
            });
        }
        drop(senders);
        let consumers: Vec<_> = receivers
            .into_iter()
            .map(|rx| {
                s.spawn(move || {
                    let mut watermarks = vec![0u64; cores];
                    let mut open = BTreeMap::<u64, FxHashMap<u64, u64>>::new();
                    let mut answer = (0, 0);
                    for message in rx {
                        match message {
                            Message::Events(events) => {
                                for (key, ts) in events {
                                    let start = ts - ts % input::WINDOW_MS;
                                    *open.entry(start).or_default().entry(key).or_insert(0) += 1;
                                }
                            }
                            Message::Watermark(producer, ts) => {
                                watermarks[producer] = ts;
                                let low = watermarks.iter().copied().min().unwrap_or(0);
                                while let Some(entry) = open.first_entry() {
                                    if entry.key() + input::WINDOW_MS > low {
                                        break;
                                    }
                                    let (start, counts) = entry.remove_entry();
                                    answer = merge(answer, input::close_window(start, counts));
                                }
                            }
                        }
                    }
                    // End of input closes every window.
                    for (start, counts) in open {
                        answer = merge(answer, input::close_window(start, counts));
                    }
                    answer
                })
            })
            .collect();
        join_all(consumers)
    })
}

fn join_all(handles: Vec<thread::ScopedJoinHandle<'_, Answer>>) -> Answer {
    handles.into_iter().fold((0, 0), |total, h| {
        // A panicking worker is a bug in this file: surface it.
        merge(
            total,
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
        )
    })
}

//! Every Nexmark query against a straightforward single-threaded reference, on 100 000 events
//! of a fixed seed at 400 events per second of event time (250 s: 25 tumbling windows of 10 s,
//! 125 sliding windows), at parallelism 1, at parallelism 3 (three source workers splitting
//! the sequence), and with live reconfigurations of every stage in the middle of the run.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use common::Gate;
use rheo_engine::source::SourceExt;
use rheo_engine::{JobConfig, JobHandle, JobOptions, PipelineBuilder, Stream, Timestamp};
use rheo_operators::nexmark::queries::params::*;
use rheo_operators::nexmark::queries::winning_bids::{beats, counts};
use rheo_operators::nexmark::queries::*;
use rheo_operators::nexmark::*;
use rheo_operators::prelude::*;

const EVENTS: u64 = 100_000;

fn generator() -> EventGenerator {
    EventGenerator::new(NexmarkConfig {
        seed: 7,
        first_event_rate: 400,
        ..NexmarkConfig::default()
    })
    .unwrap()
}

struct Sinks {
    q0: Checksum,
    q1: Checksum,
    q2: Checksum,
    q3: Collected<(u64, LocalSeller, u64)>,
    q4: Collected<(u64, u64)>,
    q5: Collected<WindowResult<Timestamp, HotItems>>,
    q7: Collected<WindowResult<u64, Vec<Bid>>>,
    q8: Collected<NewSeller>,
    q9: Collected<(Auction, Bid)>,
    q11: Collected<WindowResult<u64, u64>>,
}

/// What each query produced, in a form that does not depend on arrival order: a checksum for
/// the per-event queries, sorted results otherwise, and for q4's running averages the number
/// of updates and each category's final average.
#[derive(Debug, PartialEq)]
struct Outputs {
    q0: (u64, u64),
    q1: (u64, u64),
    q2: (u64, u64),
    q3: Vec<(u64, LocalSeller, u64)>,
    q4: (usize, BTreeMap<u64, u64>),
    q5: Vec<WindowResult<Timestamp, HotItems>>,
    q7: Vec<WindowResult<u64, Vec<Bid>>>,
    q8: Vec<NewSeller>,
    q9: Vec<(Auction, Bid)>,
    q11: Vec<WindowResult<u64, u64>>,
}

fn attach(events: &Stream<Event>) -> Sinks {
    Sinks {
        q0: q0(events).checksum("q0-out"),
        q1: q1(events).checksum("q1-out"),
        q2: q2(events).checksum("q2-out"),
        q3: q3(events).collect("q3-out"),
        q4: q4(events).collect("q4-out"),
        q5: q5(events).collect("q5-out"),
        q7: q7(events).collect("q7-out"),
        q8: q8(events).collect("q8-out"),
        q9: q9(events).collect("q9-out"),
        q11: q11(events).collect("q11-out"),
    }
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

impl Sinks {
    fn outputs(self) -> Outputs {
        let q4 = self.q4.take();
        let finals: BTreeMap<u64, u64> = q4.iter().copied().collect();
        Outputs {
            q0: (self.q0.records(), self.q0.value()),
            q1: (self.q1.records(), self.q1.value()),
            q2: (self.q2.records(), self.q2.value()),
            q3: sorted(self.q3.take()),
            q4: (q4.len(), finals),
            q5: sorted(self.q5.take()),
            q7: sorted(self.q7.take()),
            q8: sorted(self.q8.take()),
            q9: sorted(self.q9.take()),
            q11: sorted(self.q11.take()),
        }
    }
}

/// The winning bid of every auction with a counting bid, by brute force.
fn winners(events: &[Event], reserve: bool) -> Vec<(Auction, Bid)> {
    let mut bids: HashMap<u64, Vec<&Bid>> = HashMap::new();
    for e in events {
        if let Event::Bid(b) = e {
            bids.entry(b.auction).or_default().push(b);
        }
    }
    let mut out = Vec::new();
    for e in events {
        if let Event::Auction(a) = e {
            let mut best: Option<&Bid> = None;
            for b in bids.get(&a.id).into_iter().flatten() {
                if counts(a, b, reserve) && best.is_none_or(|w| beats(b, w)) {
                    best = Some(b);
                }
            }
            if let Some(b) = best {
                out.push((a.clone(), b.clone()));
            }
        }
    }
    out
}

fn reference(events: &[Event]) -> Outputs {
    let bids: Vec<&Bid> = events
        .iter()
        .filter_map(|e| match e {
            Event::Bid(b) => Some(b),
            _ => None,
        })
        .collect();
    let persons: Vec<&Person> = events
        .iter()
        .filter_map(|e| match e {
            Event::Person(p) => Some(p),
            _ => None,
        })
        .collect();
    let auctions: Vec<&Auction> = events
        .iter()
        .filter_map(|e| match e {
            Event::Auction(a) => Some(a),
            _ => None,
        })
        .collect();

    let q1: Vec<EuroBid> = bids
        .iter()
        .map(|b| EuroBid {
            auction: b.auction,
            bidder: b.bidder,
            price: euro_cents(b),
            date_time: b.date_time,
            extra: b.extra.clone(),
        })
        .collect();
    let q2: Vec<(u64, u64)> = bids
        .iter()
        .filter(|b| b.auction % AUCTION_MODULUS == 0)
        .map(|b| (b.auction, b.price))
        .collect();

    let mut q3 = Vec::new();
    for p in persons
        .iter()
        .filter(|p| Q3_STATES.contains(&p.state.as_str()))
    {
        for a in auctions
            .iter()
            .filter(|a| a.seller == p.id && a.category == Q3_CATEGORY)
        {
            let seller = LocalSeller {
                name: p.name.clone(),
                city: p.city.clone(),
                state: p.state.clone(),
            };
            q3.push((p.id, seller, a.id));
        }
    }

    let mut per_category: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let q4_winners = winners(events, false);
    for (a, b) in &q4_winners {
        let c = per_category.entry(a.category).or_default();
        c.0 += b.price;
        c.1 += 1;
    }
    let q4 = (
        q4_winners.len(),
        per_category
            .into_iter()
            .map(|(k, (sum, n))| (k, sum / n))
            .collect(),
    );

    // q5: bids per auction per sliding window, then the top auctions of each window.
    let mut windows: BTreeMap<Timestamp, HashMap<u64, u64>> = BTreeMap::new();
    for b in &bids {
        let last = b.date_time / Q5_SLIDE * Q5_SLIDE;
        let mut start = last + Q5_SLIDE - Q5_SIZE;
        while start <= last {
            *windows
                .entry(start + Q5_SIZE)
                .or_default()
                .entry(b.auction)
                .or_default() += 1;
            start += Q5_SLIDE;
        }
    }
    let q5 = windows
        .into_iter()
        .map(|(end, counts)| {
            let top = counts.values().copied().max().unwrap_or(0);
            let mut hot: Vec<u64> = counts
                .into_iter()
                .filter(|&(_, n)| n == top)
                .map(|(a, _)| a)
                .collect();
            hot.sort();
            WindowResult {
                key: end,
                start: end - Q5_SLIDE,
                end,
                value: HotItems {
                    bids: top,
                    auctions: hot,
                },
            }
        })
        .collect();

    let mut tumbles: BTreeMap<u64, Vec<Bid>> = BTreeMap::new();
    for b in &bids {
        tumbles
            .entry(b.date_time / Q7_SIZE)
            .or_default()
            .push((*b).clone());
    }
    let q7 = tumbles
        .into_iter()
        .map(|(w, all)| {
            let top = all.iter().map(|b| b.price).max().unwrap_or(0);
            let best = sorted(all.into_iter().filter(|b| b.price == top).collect());
            WindowResult {
                key: w,
                start: w * Q7_SIZE,
                end: (w + 1) * Q7_SIZE,
                value: best,
            }
        })
        .collect();

    let mut q8 = BTreeSet::new();
    for p in &persons {
        if auctions
            .iter()
            .any(|a| a.seller == p.id && a.date_time / Q8_SIZE == p.date_time / Q8_SIZE)
        {
            q8.insert(NewSeller {
                id: p.id,
                name: p.name.clone(),
                start: p.date_time / Q8_SIZE * Q8_SIZE,
            });
        }
    }

    let mut by_bidder: BTreeMap<u64, Vec<Timestamp>> = BTreeMap::new();
    for b in &bids {
        by_bidder.entry(b.bidder).or_default().push(b.date_time);
    }
    let mut q11 = Vec::new();
    for (bidder, mut times) in by_bidder {
        times.sort();
        let mut start = 0;
        for i in 1..=times.len() {
            if i == times.len() || times[i] - times[i - 1] >= Q11_GAP {
                q11.push(WindowResult {
                    key: bidder,
                    start: times[start],
                    end: times[i - 1] + Q11_GAP,
                    value: (i - start) as u64,
                });
                start = i;
            }
        }
    }

    Outputs {
        q0: Checksum::of(events),
        q1: Checksum::of(&q1),
        q2: Checksum::of(&q2),
        q3: sorted(q3),
        q4,
        q5,
        q7: sorted(q7),
        q8: q8.into_iter().collect(),
        q9: sorted(winners(events, true)),
        q11: sorted(q11),
    }
}

fn all_operators(config: &JobConfig, source: &str) -> Vec<String> {
    config
        .stages
        .keys()
        .filter(|s| s.as_str() != source)
        .cloned()
        .collect()
}

fn rescale(job: &JobHandle, source: &str, parallelism: usize) {
    let mut config = job.config();
    for stage in all_operators(&config, source) {
        config.set_parallelism(&stage, parallelism);
    }
    assert!(
        job.reconfigure(config)
            .expect("reconfiguration applies")
            .changed
    );
}

/// Runs every query with `p` source workers and `p` workers per stage.
fn run_parallel(p: usize) -> Outputs {
    let generator = generator();
    let builder = PipelineBuilder::new();
    let events = builder.parallel_source("nexmark", p, |i, n| {
        NexmarkSource::new(generator.clone(), EVENTS).split(i, n)
    });
    let sinks = attach(&events);
    let pipeline = builder.build().unwrap();
    let mut config = pipeline.default_config();
    for stage in all_operators(&config, "nexmark") {
        config.set_parallelism(&stage, p);
    }
    pipeline
        .run(JobOptions::default().config(config))
        .expect("job succeeds");
    sinks.outputs()
}

fn assert_same(got: &Outputs, want: &Outputs, run: &str) {
    assert_eq!(got.q0, want.q0, "q0 {run}");
    assert_eq!(got.q1, want.q1, "q1 {run}");
    assert_eq!(got.q2, want.q2, "q2 {run}");
    assert_eq!(got.q3, want.q3, "q3 {run}");
    assert_eq!(got.q4, want.q4, "q4 {run}");
    assert_eq!(got.q5, want.q5, "q5 {run}");
    assert_eq!(got.q7, want.q7, "q7 {run}");
    assert_eq!(got.q8, want.q8, "q8 {run}");
    assert_eq!(got.q9, want.q9, "q9 {run}");
    assert_eq!(got.q11, want.q11, "q11 {run}");
}

fn check_size(want: &Outputs) {
    // The input is large enough to be a real check: windows fire many times, joins match.
    assert!(want.q3.len() >= 20, "q3 matched {}", want.q3.len());
    assert!(want.q4.0 >= 1000, "q4 closed {}", want.q4.0);
    assert!(want.q5.len() >= 100, "q5 fired {}", want.q5.len());
    assert!(want.q7.len() >= 20, "q7 fired {}", want.q7.len());
    assert!(want.q8.len() >= 20, "q8 found {}", want.q8.len());
    assert!(want.q9.len() >= 1000, "q9 closed {}", want.q9.len());
    assert!(want.q11.len() >= 1000, "q11 sessions {}", want.q11.len());
}

#[test]
fn queries_match_the_reference_at_parallelism_1_and_3() {
    let generator = generator();
    let events: Vec<Event> = (0..EVENTS).map(|n| generator.event(n)).collect();
    let want = reference(&events);
    check_size(&want);
    assert_same(&run_parallel(1), &want, "at parallelism 1");
    assert_same(&run_parallel(3), &want, "at parallelism 3");
}

#[test]
fn queries_match_the_reference_under_live_reconfiguration() {
    let generator = generator();
    let events: Vec<Event> = (0..EVENTS).map(|n| generator.event(n)).collect();
    let want = reference(&events);
    let gate = Gate::default();
    let builder = PipelineBuilder::new().edge_defaults(16, 64);
    let source = builder.source(
        "nexmark",
        gate.source(events.clone())
            .with_timestamps(|e: &Event| e.date_time(), 0),
    );
    let sinks = attach(&source);
    let job = builder
        .build()
        .unwrap()
        .start(JobOptions::default().epoch(Duration::from_millis(50)))
        .unwrap();
    let schedule = [3, 1, 4, 2];
    for (round, p) in schedule.iter().enumerate() {
        gate.release(events.len() * (round + 1) / (schedule.len() + 1));
        rescale(&job, "nexmark", *p);
    }
    gate.release(events.len());
    let report = job.join().expect("job succeeds");
    assert_eq!(report.reconfigurations.len(), schedule.len());
    assert!(
        report
            .reconfigurations
            .iter()
            .any(|r| r.key_groups_moved() > 0),
        "keyed state moved"
    );
    assert_same(&sinks.outputs(), &want, "with live reconfigurations");
}

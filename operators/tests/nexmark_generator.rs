//! Generator fidelity: the event mix, id rules, hot-key shares, prices, auction lengths and
//! record sizes, checked against the reference rules (design.md §3) and against the
//! statistics of the `nexmark` crate, the Rust port of the reference generator.

use rheo_operators::nexmark::*;

const N: u64 = 200_000;

/// The statistics both generators are compared on.
#[derive(Debug, Default)]
struct Stats {
    persons: u64,
    auctions: u64,
    bids: u64,
    person_bytes: f64,
    auction_bytes: f64,
    bid_bytes: f64,
    hot_sellers: u64,
    hot_auctions: u64,
    hot_bidders: u64,
    hot_channels: u64,
    /// Mean of log10(price / 100) over bids: 3 for log-uniform over [1 $, 1 000 000 $).
    log_price: f64,
    /// Bids per decade of price (cents 100–1 000, …).
    price_decades: [u64; 6],
    categories: [u64; 5],
    /// Mean auction length (expires − date_time), ms.
    auction_ms: f64,
    max_auction_ms: u64,
    states: std::collections::BTreeMap<String, u64>,
}

/// What the two generators' events have in common, field by field.
struct Common<'a> {
    kind: u8,
    date_time: u64,
    seller: u64,
    auction: u64,
    bidder: u64,
    price: u64,
    category: u64,
    expires: u64,
    channel: &'a str,
    state: &'a str,
    size: usize,
}

impl Stats {
    fn add(&mut self, n: u64, e: Common<'_>) {
        let block = n / 50;
        match e.kind {
            0 => {
                self.persons += 1;
                self.person_bytes += e.size as f64;
                *self.states.entry(e.state.to_owned()).or_default() += 1;
            }
            1 => {
                self.auctions += 1;
                self.auction_bytes += e.size as f64;
                self.hot_sellers += u64::from(e.seller == 1000 + block / 100 * 100);
                self.categories[(e.category - 10) as usize] += 1;
                self.auction_ms += (e.expires - e.date_time) as f64;
                self.max_auction_ms = self.max_auction_ms.max(e.expires - e.date_time);
            }
            _ => {
                self.bids += 1;
                self.bid_bytes += e.size as f64;
                let last_auction = block * 3 + 2;
                self.hot_auctions += u64::from(e.auction == 1000 + last_auction / 100 * 100);
                self.hot_bidders += u64::from(e.bidder == 1000 + block / 100 * 100 + 1);
                self.hot_channels +=
                    u64::from(["Google", "Facebook", "Baidu", "Apple"].contains(&e.channel));
                let lp = (e.price as f64 / 100.0).log10();
                self.log_price += lp;
                self.price_decades[(lp.floor() as usize).min(5)] += 1;
            }
        }
    }

    fn finish(mut self) -> Stats {
        self.person_bytes /= self.persons as f64;
        self.auction_bytes /= self.auctions as f64;
        self.bid_bytes /= self.bids as f64;
        self.log_price /= self.bids as f64;
        self.auction_ms /= self.auctions as f64;
        self
    }
}

fn ours() -> Stats {
    let g = EventGenerator::new(NexmarkConfig::default()).unwrap();
    let mut s = Stats::default();
    for n in 0..N {
        let e = g.event(n);
        let size = e.size_bytes();
        let c = match &e {
            Event::Person(p) => Common {
                kind: 0,
                date_time: p.date_time,
                state: &p.state,
                size,
                ..blank()
            },
            Event::Auction(a) => Common {
                kind: 1,
                date_time: a.date_time,
                seller: a.seller,
                category: a.category,
                expires: a.expires,
                size,
                ..blank()
            },
            Event::Bid(b) => Common {
                kind: 2,
                date_time: b.date_time,
                auction: b.auction,
                bidder: b.bidder,
                price: b.price,
                channel: &b.channel,
                size,
                ..blank()
            },
        };
        s.add(n, c);
    }
    s.finish()
}

fn blank() -> Common<'static> {
    Common {
        kind: 0,
        date_time: 0,
        seller: 0,
        auction: 0,
        bidder: 0,
        price: 0,
        category: 0,
        expires: 0,
        channel: "",
        state: "",
        size: 0,
    }
}

fn crate_events() -> Vec<nexmark::event::Event> {
    let config = nexmark::config::NexmarkConfig {
        base_time: NexmarkConfig::default().base_time,
        ..Default::default()
    };
    nexmark::EventGenerator::new(config)
        .take(N as usize)
        .collect()
}

fn theirs() -> Stats {
    use nexmark::event::Event as E;
    let mut s = Stats::default();
    for (n, e) in crate_events().iter().enumerate() {
        // The reference's size: eight bytes per number plus string lengths (design.md §3).
        let c = match e {
            E::Person(p) => Common {
                kind: 0,
                date_time: p.date_time,
                state: &p.state,
                size: 8
                    + p.name.len()
                    + p.email_address.len()
                    + p.credit_card.len()
                    + p.city.len()
                    + p.state.len()
                    + p.extra.len(),
                ..blank()
            },
            E::Auction(a) => Common {
                kind: 1,
                date_time: a.date_time,
                seller: a.seller as u64,
                category: a.category as u64,
                expires: a.expires,
                size: 8 + a.item_name.len() + a.description.len() + 40 + a.extra.len(),
                ..blank()
            },
            E::Bid(b) => Common {
                kind: 2,
                date_time: b.date_time,
                auction: b.auction as u64,
                bidder: b.bidder as u64,
                price: b.price as u64,
                channel: &b.channel,
                size: 32 + b.extra.len(),
                ..blank()
            },
        };
        s.add(n as u64, c);
    }
    s.finish()
}

fn close(a: f64, b: f64, tolerance: f64, what: &str) {
    assert!(
        (a - b).abs() <= tolerance,
        "{what}: {a} vs {b} (tolerance {tolerance})"
    );
}

#[test]
fn the_mix_ids_and_times_follow_the_reference_rules() {
    let g = EventGenerator::new(NexmarkConfig::default()).unwrap();
    let mut next_auction = 1000;
    for n in 0..20_000 {
        let e = g.event(n);
        // 10 000 events per second: event n at base + n / 10 ms, rounded.
        assert_eq!(e.date_time(), 1_600_000_000_000 + (n + 5) / 10);
        let block = n / 50;
        match (n % 50, &e) {
            (0, Event::Person(p)) => assert_eq!(p.id, 1000 + block),
            (1..=3, Event::Auction(a)) => {
                assert_eq!(a.id, next_auction);
                next_auction += 1;
                let people = block + 1;
                let oldest = people.saturating_sub(1000);
                assert!((1000 + oldest..1000 + people + 10).contains(&a.seller));
                assert!((10..15).contains(&a.category));
                assert!(a.reserve > a.initial_bid);
                assert!(a.expires > a.date_time);
            }
            (4..=49, Event::Bid(b)) => {
                let last = block * 3 + 2;
                assert!(
                    (1000 + last.saturating_sub(100)..=1000 + last + 10).contains(&b.auction),
                    "event {n}: auction {} outside the in-flight range",
                    b.auction
                );
                let people = block + 1;
                assert!(
                    (1000 + people.saturating_sub(1000)..1000 + people + 10).contains(&b.bidder)
                );
                assert!((100..=100_000_000).contains(&b.price));
            }
            (r, e) => panic!("event {n} (position {r} of 50) is {e:?}"),
        }
    }
}

#[test]
fn statistics_match_the_reference_rules() {
    let s = ours();
    assert_eq!(
        (s.persons, s.auctions, s.bids),
        (N / 50, 3 * N / 50, 46 * N / 50)
    );
    close(s.person_bytes, 199.5, 2.0, "mean person size");
    close(s.auction_bytes, 499.5, 5.0, "mean auction size");
    close(s.bid_bytes, 99.5, 1.0, "mean bid size");
    close(
        s.hot_sellers as f64 / s.auctions as f64,
        0.75,
        0.02,
        "hot seller share",
    );
    close(
        s.hot_auctions as f64 / s.bids as f64,
        0.5,
        0.01,
        "hot auction share",
    );
    close(
        s.hot_bidders as f64 / s.bids as f64,
        0.75,
        0.01,
        "hot bidder share",
    );
    close(
        s.hot_channels as f64 / s.bids as f64,
        0.5,
        0.01,
        "hot channel share",
    );
    close(s.log_price, 3.0, 0.02, "mean log10(price / 100)");
    for (decade, n) in s.price_decades.iter().enumerate() {
        close(
            *n as f64 / s.bids as f64,
            1.0 / 6.0,
            0.01,
            &format!("price decade {decade}"),
        );
    }
    for (c, n) in s.categories.iter().enumerate() {
        close(
            *n as f64 / s.auctions as f64,
            0.2,
            0.02,
            &format!("category {}", 10 + c),
        );
    }
    // Auctions last U[1, 2·horizon] ms, the horizon being the time 1666 events take.
    close(s.auction_ms, 167.0, 3.0, "mean auction length");
    assert!(s.max_auction_ms <= 334);
    assert_eq!(s.states.len(), 6);
}

#[test]
fn statistics_match_the_nexmark_crate() {
    let (a, b) = (ours(), theirs());
    assert_eq!(
        (a.persons, a.auctions, a.bids),
        (b.persons, b.auctions, b.bids)
    );
    close(a.person_bytes, b.person_bytes, 2.0, "mean person size");
    close(a.auction_bytes, b.auction_bytes, 5.0, "mean auction size");
    close(a.bid_bytes, b.bid_bytes, 1.0, "mean bid size");
    let share = |x: u64, of: u64| x as f64 / of as f64;
    close(
        share(a.hot_sellers, a.auctions),
        share(b.hot_sellers, b.auctions),
        0.03,
        "hot seller share",
    );
    close(
        share(a.hot_auctions, a.bids),
        share(b.hot_auctions, b.bids),
        0.01,
        "hot auction share",
    );
    close(
        share(a.hot_bidders, a.bids),
        share(b.hot_bidders, b.bids),
        0.01,
        "hot bidder share",
    );
    close(
        share(a.hot_channels, a.bids),
        share(b.hot_channels, b.bids),
        0.01,
        "hot channel share",
    );
    close(a.log_price, b.log_price, 0.03, "mean log10(price / 100)");
    for d in 0..6 {
        close(
            share(a.price_decades[d], a.bids),
            share(b.price_decades[d], b.bids),
            0.01,
            &format!("price decade {d}"),
        );
    }
    close(a.auction_ms, b.auction_ms, 3.0, "mean auction length");
    close(
        a.max_auction_ms as f64,
        b.max_auction_ms as f64,
        5.0,
        "longest auction",
    );
}

#[test]
fn ids_and_times_equal_the_nexmark_crate_event_by_event() {
    use nexmark::event::Event as E;
    let g = EventGenerator::new(NexmarkConfig::default()).unwrap();
    for (n, theirs) in crate_events().iter().enumerate() {
        let ours = g.event(n as u64);
        assert_eq!(ours.date_time(), theirs.timestamp(), "event {n}: time");
        match (&ours, theirs) {
            (Event::Person(a), E::Person(b)) => assert_eq!(a.id, b.id as u64, "event {n}"),
            (Event::Auction(a), E::Auction(b)) => assert_eq!(a.id, b.id as u64, "event {n}"),
            (Event::Bid(_), E::Bid(_)) => {}
            _ => panic!("event {n}: kinds differ"),
        }
    }
}

#[test]
fn splitting_across_workers_keeps_the_sequence() {
    let g = EventGenerator::new(NexmarkConfig {
        seed: 3,
        ..NexmarkConfig::default()
    })
    .unwrap();
    let whole: Vec<Event> = g.events(0, 3000, 1).collect();
    let mut merged: Vec<(u64, Event)> = Vec::new();
    for worker in 0..4 {
        merged.extend((worker..3000).step_by(4).zip(g.events(worker, 3000, 4)));
    }
    merged.sort_by_key(|(n, _)| *n);
    assert!(merged.into_iter().map(|(_, e)| e).eq(whole));
    let other = EventGenerator::new(NexmarkConfig::default()).unwrap();
    assert_ne!(other.event(10), g.event(10), "seeds give different inputs");
}

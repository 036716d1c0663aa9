//! Query 5, hot items: the auctions with the most bids in each 10-second window sliding by 2
//! seconds.
//!
//! Most bids go to one hot auction, so counting per auction after a hash exchange would load
//! one worker with half the bids. A combiner before the exchange counts bids per (auction,
//! 2-second slice) on every worker; the window stage adds up slices. A slice lies in exactly
//! the same windows as each of its bids, because windows start on slice boundaries.

use rheo_engine::{Stream, Timestamp};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregator, Count, Merge, Partials};
use crate::combine::Combine;
use crate::nexmark::{Bid, Event};
use crate::window::{WindowBy, WindowResult, hop, tumbling};

/// Window length.
pub const SIZE: Timestamp = 10_000;
/// Distance between window starts.
pub const SLIDE: Timestamp = 2_000;
/// Records a combiner worker folds before it sends its partial counts anyway.
pub const COMBINE_EVERY: usize = 4096;

/// The winners of one window.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct HotItems {
    /// The highest bid count.
    pub bids: u64,
    /// The auctions with that count, in id order.
    pub auctions: Vec<u64>,
}

/// Keeps the auctions with the highest count.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hottest;

impl HotItems {
    fn offer(&mut self, bids: u64, auctions: &[u64]) {
        if bids > self.bids {
            self.bids = bids;
            self.auctions.clear();
        }
        if bids == self.bids {
            self.auctions.extend_from_slice(auctions);
        }
    }
}

impl Merge for Hottest {
    type Acc = HotItems;
    type Out = HotItems;
    fn init(&self) -> HotItems {
        HotItems::default()
    }
    fn merge(&self, acc: &mut HotItems, other: HotItems) {
        acc.offer(other.bids, &other.auctions);
    }
    fn result(&self, acc: &HotItems) -> HotItems {
        let mut out = acc.clone();
        out.auctions.sort_unstable();
        out
    }
}

impl Aggregator<WindowResult<u64, u64>> for Hottest {
    fn add(&self, acc: &mut HotItems, count: &WindowResult<u64, u64>) {
        acc.offer(count.value, &[count.key]);
    }
}

/// Per window (keyed by its end), the auctions with the most bids.
pub fn q5(events: &Stream<Event>) -> Stream<WindowResult<Timestamp, HotItems>> {
    events
        .select(Event::bid)
        .combine(
            "q5-partial",
            |b: &Bid| (b.auction, b.date_time / SLIDE),
            Count,
            COMBINE_EVERY,
        )
        .key_by(|p: &((u64, u64), u64)| p.0.0)
        .window(hop(SIZE, SLIDE), |p: &((u64, u64), u64)| p.0.1 * SLIDE)
        .aggregate("q5-counts", Partials(Count))
        .results
        .key_by(|r: &WindowResult<u64, u64>| r.end)
        // Counts of the window ending at `end` arrive before the watermark reaches `end`; a
        // one-slide window ending there collects them and fires once they are all in.
        .window(tumbling(SLIDE), |r: &WindowResult<u64, u64>| r.end - 1)
        .aggregate("q5-hottest", Hottest)
        .results
}

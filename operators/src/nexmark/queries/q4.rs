//! Query 4, average price per category: the mean winning price of the closed auctions of
//! each category, updated as auctions close.

use rheo_engine::Stream;

use super::winning_bids::winning_bids;
use crate::aggregate::{Aggregate, Aggregator, Merge};
use crate::map::Map;
use crate::nexmark::Event;

/// The integer mean of prices, in cents (rounded down).
#[derive(Debug, Clone, Copy, Default)]
pub struct MeanPrice;

impl Merge for MeanPrice {
    type Acc = (u64, u64);
    type Out = u64;
    fn init(&self) -> (u64, u64) {
        (0, 0)
    }
    fn merge(&self, acc: &mut (u64, u64), other: (u64, u64)) {
        acc.0 += other.0;
        acc.1 += other.1;
    }
    fn result(&self, acc: &(u64, u64)) -> u64 {
        acc.0.checked_div(acc.1).unwrap_or(0)
    }
}

impl Aggregator<(u64, u64)> for MeanPrice {
    fn add(&self, acc: &mut (u64, u64), record: &(u64, u64)) {
        acc.0 += record.1;
        acc.1 += 1;
    }
}

/// `(category, mean winning price)` after every auction that closes with a bid.
pub fn q4(events: &Stream<Event>) -> Stream<(u64, u64)> {
    winning_bids(events, "q4-winners", false)
        .map("q4-category", |(a, b)| (a.category, b.price))
        .key_by(|c: &(u64, u64)| c.0)
        .aggregate("q4-mean", MeanPrice)
}

//! Query 7, highest bid: the bids with the top price in each 10-second tumbling window.
//!
//! A combiner keeps each worker's top bids per window, so the single window key does not put
//! every bid on one worker.

use rheo_engine::{Stream, Timestamp};

use crate::aggregate::{Aggregator, Merge, Partials};
use crate::combine::Combine;
use crate::nexmark::{Bid, Event};
use crate::window::{WindowBy, WindowResult, tumbling};

/// Window length.
pub const SIZE: Timestamp = 10_000;
/// Records a combiner worker folds before it sends its partial maxima anyway.
pub const COMBINE_EVERY: usize = 4096;

/// Keeps the bids with the highest price, ties included.
#[derive(Debug, Clone, Copy, Default)]
pub struct TopBids;

fn offer(acc: &mut Vec<Bid>, price: u64, bids: impl IntoIterator<Item = Bid>) {
    let best = acc.first().map_or(0, |b| b.price);
    if price > best {
        acc.clear();
    }
    if price >= best {
        acc.extend(bids);
    }
}

impl Merge for TopBids {
    type Acc = Vec<Bid>;
    type Out = Vec<Bid>;
    fn init(&self) -> Vec<Bid> {
        Vec::new()
    }
    fn merge(&self, acc: &mut Vec<Bid>, other: Vec<Bid>) {
        if let Some(price) = other.first().map(|b| b.price) {
            offer(acc, price, other);
        }
    }
    fn result(&self, acc: &Vec<Bid>) -> Vec<Bid> {
        let mut out = acc.clone();
        out.sort_unstable();
        out
    }
}

impl Aggregator<Bid> for TopBids {
    fn add(&self, acc: &mut Vec<Bid>, bid: &Bid) {
        // Compare before cloning: most bids are below the window's top.
        if acc.first().is_none_or(|b| bid.price >= b.price) {
            offer(acc, bid.price, [bid.clone()]);
        }
    }
}

/// Per 10-second window (keyed by its number), the bids with the highest price.
pub fn q7(events: &Stream<Event>) -> Stream<WindowResult<u64, Vec<Bid>>> {
    events
        .select(Event::bid)
        .combine(
            "q7-partial",
            |b: &Bid| b.date_time / SIZE,
            TopBids,
            COMBINE_EVERY,
        )
        .key_by(|p: &(u64, Vec<Bid>)| p.0)
        .window(tumbling(SIZE), |p: &(u64, Vec<Bid>)| p.0 * SIZE)
        .aggregate("q7-max", Partials(TopBids))
        .results
}

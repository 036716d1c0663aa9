//! Query 1, currency conversion: every bid's price from dollars to euros.

use rheo_engine::Stream;
use serde::{Deserialize, Serialize};

use crate::map::Map;
use crate::nexmark::{Bid, Event, Millis};

/// A bid with its price in euro cents.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EuroBid {
    /// The auction bid on.
    pub auction: u64,
    /// The bidder.
    pub bidder: u64,
    /// Price in euro cents: dollar cents × 0.908, rounded down.
    pub price: u64,
    /// Event time.
    pub date_time: Millis,
    /// The bid's padding, carried through.
    pub extra: String,
}

/// The price of `bid` in euro cents.
pub fn euro_cents(bid: &Bid) -> u64 {
    bid.price * 908 / 1000
}

/// Every bid, its price converted to euros.
pub fn q1(events: &Stream<Event>) -> Stream<EuroBid> {
    events.select(Event::bid).map("q1-euros", |b: Bid| EuroBid {
        auction: b.auction,
        bidder: b.bidder,
        price: euro_cents(&b),
        date_time: b.date_time,
        extra: b.extra,
    })
}

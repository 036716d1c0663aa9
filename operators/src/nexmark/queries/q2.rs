//! Query 2, selection: the bids on a fixed set of auctions.

use rheo_engine::Stream;

use crate::flat_map::FlatMap;
use crate::nexmark::Event;

/// The auctions query 2 selects: ids divisible by this.
pub const AUCTION_MODULUS: u64 = 123;

/// `(auction, price)` of every bid on an auction whose id is divisible by 123.
pub fn q2(events: &Stream<Event>) -> Stream<(u64, u64)> {
    events.flat_map("q2-select", |e: Event, out: &mut Vec<(u64, u64)>| {
        if let Event::Bid(b) = e
            && b.auction % AUCTION_MODULUS == 0
        {
            out.push((b.auction, b.price));
        }
    })
}

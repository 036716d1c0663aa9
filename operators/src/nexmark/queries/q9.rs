//! Query 9, winning bids: every auction with its winning bid, at the auction's close.

use rheo_engine::Stream;

use super::winning_bids::winning_bids;
use crate::nexmark::{Auction, Bid, Event};

/// `(auction, winning bid)` for every auction that closes with a bid at or above its reserve,
/// emitted when the watermark passes its close (an event-time timer).
pub fn q9(events: &Stream<Event>) -> Stream<(Auction, Bid)> {
    winning_bids(events, "q9-winners", true)
}

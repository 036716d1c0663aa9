//! Query 11, user sessions: bids per bidder per session, a session ending after 10 seconds
//! without a bid.

use rheo_engine::{Stream, Timestamp};

use crate::aggregate::Count;
use crate::nexmark::{Bid, Event};
use crate::window::{WindowBy, WindowResult, session};

/// Inactivity that ends a session.
pub const GAP: Timestamp = 10_000;

/// Per bidder session, the number of bids.
pub fn q11(events: &Stream<Event>) -> Stream<WindowResult<u64, u64>> {
    events
        .select(Event::bid)
        .key_by(|b: &Bid| b.bidder)
        .window(session(GAP), |b: &Bid| b.date_time)
        .aggregate("q11-sessions", Count)
        .results
}

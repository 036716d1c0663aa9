//! Query 3, local item suggestion: who sells in category 10 from Oregon, Idaho or California —
//! an incremental join of persons and auctions on the seller.

use rheo_engine::Stream;
use serde::{Deserialize, Serialize};

use crate::join::IncrementalJoin;
use crate::nexmark::Event;

/// The category query 3 watches.
pub const CATEGORY: u64 = 10;
/// The states query 3 watches.
pub const STATES: [&str; 3] = ["or", "id", "ca"];

/// A seller from one of [`STATES`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LocalSeller {
    /// Name.
    pub name: String,
    /// City.
    pub city: String,
    /// State.
    pub state: String,
}

/// `(seller id, seller, auction id)` for every auction in category 10 whose seller lives in
/// Oregon, Idaho or California, emitted as soon as both the person and the auction are known.
pub fn q3(events: &Stream<Event>) -> Stream<(u64, LocalSeller, u64)> {
    let persons = events
        .select(|e: Event| match e {
            Event::Person(p) if STATES.contains(&p.state.as_str()) => Some((
                p.id,
                LocalSeller {
                    name: p.name,
                    city: p.city,
                    state: p.state,
                },
            )),
            _ => None,
        })
        .key_by(|p: &(u64, LocalSeller)| p.0);
    let auctions = events
        .select(|e: Event| match e {
            Event::Auction(a) if a.category == CATEGORY => Some((a.seller, a.id)),
            _ => None,
        })
        .key_by(|a: &(u64, u64)| a.0);
    persons
        .join(&auctions, "q3-join")
        .select(|(seller, p, a): (u64, (u64, LocalSeller), (u64, u64))| Some((seller, p.1, a.1)))
}

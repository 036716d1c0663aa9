//! Query 8, monitor new users: the persons who opened an auction in the same 10-second
//! tumbling window as they registered.

use rheo_engine::{Stream, Timestamp};
use serde::{Deserialize, Serialize};

use crate::dedup::Dedup;
use crate::join::WindowJoin;
use crate::map::Map;
use crate::nexmark::{Event, Millis};

/// Window length.
pub const SIZE: Timestamp = 10_000;

/// A new person who sells.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NewSeller {
    /// Person id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Start of the window.
    pub start: Millis,
}

/// Every (person, window) where the person registered and opened an auction, once.
pub fn q8(events: &Stream<Event>) -> Stream<NewSeller> {
    let persons = events
        .select(|e: Event| e.person().map(|p| (p.id, p.name, p.date_time)))
        .key_by(|p: &(u64, String, Millis)| p.0);
    let auctions = events
        .select(|e: Event| e.auction().map(|a| (a.seller, a.date_time)))
        .key_by(|a: &(u64, Millis)| a.0);
    persons
        .window_join(
            &auctions,
            "q8-join",
            SIZE,
            |p: &(u64, String, Millis)| p.2,
            |a: &(u64, Millis)| a.1,
        )
        .map("q8-seller", |(id, p, _)| NewSeller {
            id,
            name: p.1,
            start: p.2 / SIZE * SIZE,
        })
        .key_by(|s: &NewSeller| (s.id, s.start))
        .dedup_within("q8-distinct", |s: &NewSeller| s.start, SIZE)
}

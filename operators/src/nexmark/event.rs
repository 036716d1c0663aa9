//! The three Nexmark event kinds: people register, open auctions, and bid on them.

use serde::{Deserialize, Serialize};

/// Event time in milliseconds since the Unix epoch.
pub type Millis = u64;

/// A person registering with the auction site.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Person {
    /// Person id: `1000 + n / 50` for event number `n`.
    pub id: u64,
    /// "first last".
    pub name: String,
    /// Seven letters, `@`, five letters, `.com`.
    pub email_address: String,
    /// Four groups of four digits.
    pub credit_card: String,
    /// One of ten US cities.
    pub city: String,
    /// One of six US states, lower case (`or`, `id`, `ca`, …).
    pub state: String,
    /// Event time.
    pub date_time: Millis,
    /// Padding that brings the mean record size to the configured average.
    pub extra: String,
}

/// A person putting an item up for auction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Auction {
    /// Auction id: consecutive from 1000, three per 50 events.
    pub id: u64,
    /// Twenty letters.
    pub item_name: String,
    /// A hundred letters.
    pub description: String,
    /// Opening price, in cents.
    pub initial_bid: u64,
    /// Lowest price the seller accepts, in cents; above `initial_bid`.
    pub reserve: u64,
    /// Event time (the auction opens).
    pub date_time: Millis,
    /// When the auction closes (event time).
    pub expires: Millis,
    /// The selling person's id.
    pub seller: u64,
    /// Category, from 10.
    pub category: u64,
    /// Padding that brings the mean record size to the configured average.
    pub extra: String,
}

/// A bid on an auction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Bid {
    /// The auction bid on.
    pub auction: u64,
    /// The bidding person's id.
    pub bidder: u64,
    /// Price in cents.
    pub price: u64,
    /// Where the bid came from (`Google`, …, or `channel-N`).
    pub channel: String,
    /// The page the bid came from.
    pub url: String,
    /// Event time.
    pub date_time: Millis,
    /// Padding that brings the mean record size to the configured average.
    pub extra: String,
}

/// One Nexmark event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Event {
    /// A new person.
    Person(Person),
    /// A new auction.
    Auction(Auction),
    /// A bid.
    Bid(Bid),
}

impl Event {
    /// The event's time.
    pub fn date_time(&self) -> Millis {
        match self {
            Event::Person(p) => p.date_time,
            Event::Auction(a) => a.date_time,
            Event::Bid(b) => b.date_time,
        }
    }

    /// The record size the reference generator pads to: eight bytes per number, string
    /// lengths, and the padding (the reference counts neither a bid's channel and url nor a
    /// person's time).
    pub fn size_bytes(&self) -> usize {
        match self {
            Event::Person(p) => {
                8 + p.name.len()
                    + p.email_address.len()
                    + p.credit_card.len()
                    + p.city.len()
                    + p.state.len()
                    + p.extra.len()
            }
            Event::Auction(a) => 8 + a.item_name.len() + a.description.len() + 40 + a.extra.len(),
            Event::Bid(b) => 32 + b.extra.len(),
        }
    }

    /// The bid, if this event is one.
    pub fn bid(self) -> Option<Bid> {
        match self {
            Event::Bid(b) => Some(b),
            _ => None,
        }
    }

    /// The auction, if this event is one.
    pub fn auction(self) -> Option<Auction> {
        match self {
            Event::Auction(a) => Some(a),
            _ => None,
        }
    }

    /// The person, if this event is one.
    pub fn person(self) -> Option<Person> {
        match self {
            Event::Person(p) => Some(p),
            _ => None,
        }
    }
}

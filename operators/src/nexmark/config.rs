//! The generator's parameters, with the reference generator's defaults.

use super::event::Millis;

/// Event kinds per 50 events: 1 person, 3 auctions, 46 bids (in that order).
pub const PROPORTION_DENOMINATOR: u64 = 50;
/// Persons per [`PROPORTION_DENOMINATOR`] events.
pub const PERSON_PROPORTION: u64 = 1;
/// Auctions per [`PROPORTION_DENOMINATOR`] events.
pub const AUCTION_PROPORTION: u64 = 3;
/// The first person id.
pub const FIRST_PERSON_ID: u64 = 1000;
/// The first auction id.
pub const FIRST_AUCTION_ID: u64 = 1000;
/// The first category id.
pub const FIRST_CATEGORY_ID: u64 = 10;
/// How far ahead of the newest person a bidder or seller id may point.
pub const PERSON_ID_LEAD: u64 = 10;
/// How far ahead of the newest auction a bid may point.
pub const AUCTION_ID_LEAD: u64 = 10;
/// Hot ids are the first id of each block of this many ids.
pub const HOT_BLOCK: u64 = 100;

/// Parameters of the Nexmark generator. The defaults are the reference generator's, with a
/// fixed base time so output is reproducible.
#[derive(Debug, Clone, PartialEq)]
pub struct NexmarkConfig {
    /// Mixed into every event's random draws: two seeds give two independent inputs with the
    /// same shape.
    pub seed: u64,
    /// Event time of event 0, in ms since the Unix epoch.
    pub base_time: Millis,
    /// Events per second of event time (the reference's `first_event_rate`).
    pub first_event_rate: u64,
    /// The reference's generator count: the inter-event delay is
    /// `1e6 / first_event_rate * num_event_generators` µs.
    pub num_event_generators: u64,
    /// Bidders and sellers are drawn from the newest this many persons (when not hot).
    pub active_people: u64,
    /// Bids go to the newest this many auctions (when not hot); also sets the auction length.
    pub in_flight_auctions: u64,
    /// Mean person record size in bytes ([`Event::size_bytes`](super::Event::size_bytes)).
    pub avg_person_bytes: u64,
    /// Mean auction record size in bytes.
    pub avg_auction_bytes: u64,
    /// Mean bid record size in bytes.
    pub avg_bid_bytes: u64,
    /// A seller is the hot seller with probability `1 - 1/ratio`.
    pub hot_seller_ratio: u64,
    /// A bid goes to the hot auction with probability `1 - 1/ratio`.
    pub hot_auction_ratio: u64,
    /// A bidder is the hot bidder with probability `1 - 1/ratio`.
    pub hot_bidder_ratio: u64,
    /// A bid comes from one of the four hot channels with probability `1 - 1/ratio`.
    pub hot_channel_ratio: u64,
    /// Number of auction categories.
    pub num_categories: u64,
}

impl Default for NexmarkConfig {
    fn default() -> Self {
        NexmarkConfig {
            seed: 0,
            base_time: 1_600_000_000_000,
            first_event_rate: 10_000,
            num_event_generators: 1,
            active_people: 1000,
            in_flight_auctions: 100,
            avg_person_bytes: 200,
            avg_auction_bytes: 500,
            avg_bid_bytes: 100,
            hot_seller_ratio: 4,
            hot_auction_ratio: 2,
            hot_bidder_ratio: 4,
            hot_channel_ratio: 2,
            num_categories: 5,
        }
    }
}

/// A parameter the generator cannot work with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("nexmark config field `{field}`: {reason}")]
pub struct ConfigError {
    /// The field.
    pub field: &'static str,
    /// Why it is unusable.
    pub reason: String,
}

impl NexmarkConfig {
    /// Checks every field the generator divides by or draws from.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("first_event_rate", self.first_event_rate),
            ("num_event_generators", self.num_event_generators),
            ("active_people", self.active_people),
            ("in_flight_auctions", self.in_flight_auctions),
            ("hot_seller_ratio", self.hot_seller_ratio),
            ("hot_auction_ratio", self.hot_auction_ratio),
            ("hot_bidder_ratio", self.hot_bidder_ratio),
            ("hot_channel_ratio", self.hot_channel_ratio),
            ("num_categories", self.num_categories),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(ConfigError {
                    field,
                    reason: "must be at least 1".into(),
                });
            }
        }
        Ok(())
    }

    /// Event time of event number `n`: `base_time + n · delay`, rounded to the millisecond,
    /// with `delay = 1e6 / first_event_rate · num_event_generators` µs.
    pub fn timestamp(&self, n: u64) -> Millis {
        let num = n as u128 * 1000 * self.num_event_generators as u128;
        let rate = self.first_event_rate.max(1) as u128;
        self.base_time + ((2 * num + rate) / (2 * rate)) as u64
    }
}

//! Nexmark, the standard streaming benchmark: an online auction's event stream (persons,
//! auctions, bids), a generator faithful to the reference one, and the queries.
//!
//! - [`EventGenerator`]: event number in, event out, as a pure function of the configuration
//!   and the number — deterministic per seed and base time, and split across parallel source
//!   workers ([`NexmarkSource::split`]) without changing the event sequence. It follows the
//!   reference generator's rules: 1 person, 3 auctions and 46 bids per 50 events, consecutive
//!   ids from 1000, hot auctions, bidders and sellers, log-uniform prices, auctions that stay
//!   open for about `in_flight_auctions` auctions' time, and padding to 200 / 500 / 100 bytes.
//! - [`queries`]: q0, q1, q2, q3, q4, q5, q7, q8, q9 and q11 built from the operator library;
//!   [`Query::attach`] adds one, ending in a checksum sink.
//!
//! ```
//! use rheo_engine::{JobOptions, PipelineBuilder};
//! use rheo_operators::nexmark::{EventGenerator, NexmarkConfig, NexmarkSource, Query};
//!
//! let generator = EventGenerator::new(NexmarkConfig::default())?;
//! let builder = PipelineBuilder::new();
//! let events = builder.source("nexmark", NexmarkSource::new(generator, 10_000));
//! let out = Query::Q2.attach(&events);
//! builder.build()?.run(JobOptions::default())?;
//! println!("q2: {} results, checksum {:x}", out.records(), out.value());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod event;
mod generator;
pub mod queries;
mod source;

pub use config::{
    AUCTION_ID_LEAD, AUCTION_PROPORTION, ConfigError, FIRST_AUCTION_ID, FIRST_CATEGORY_ID,
    FIRST_PERSON_ID, HOT_BLOCK, NexmarkConfig, PERSON_ID_LEAD, PERSON_PROPORTION,
    PROPORTION_DENOMINATOR,
};
pub use event::{Auction, Bid, Event, Millis, Person};
pub use generator::EventGenerator;
pub use queries::{Query, UnknownQuery};
pub use source::NexmarkSource;

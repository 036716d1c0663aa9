//! The Nexmark queries as pipelines of the operator library, one per file, each a function
//! from the event stream to the query's output stream.

mod q0;
mod q1;
mod q11;
mod q2;
mod q3;
mod q4;
mod q5;
mod q7;
mod q8;
mod q9;
pub mod winning_bids;

use std::fmt;
use std::str::FromStr;

pub use q0::q0;
pub use q1::{EuroBid, euro_cents, q1};
pub use q2::{AUCTION_MODULUS, q2};
pub use q3::{LocalSeller, q3};
pub use q4::{MeanPrice, q4};
pub use q5::{HotItems, Hottest, q5};
pub use q7::{TopBids, q7};
pub use q8::{NewSeller, q8};
pub use q9::q9;
pub use q11::q11;
use rheo_engine::Stream;

use super::Event;
use crate::sinks::{Checksum, ChecksumSink};

/// Window and session constants of the queries.
pub mod params {
    pub use super::q3::{CATEGORY as Q3_CATEGORY, STATES as Q3_STATES};
    pub use super::q5::{SIZE as Q5_SIZE, SLIDE as Q5_SLIDE};
    pub use super::q7::SIZE as Q7_SIZE;
    pub use super::q8::SIZE as Q8_SIZE;
    pub use super::q11::GAP as Q11_GAP;
}

/// One of the implemented queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Query {
    /// Pass-through.
    Q0,
    /// Currency conversion.
    Q1,
    /// Selection.
    Q2,
    /// Local item suggestion (incremental join).
    Q3,
    /// Average price per category.
    Q4,
    /// Hot items (sliding windows, combiner).
    Q5,
    /// Highest bid (tumbling windows).
    Q7,
    /// Monitor new users (windowed join).
    Q8,
    /// Winning bids (event-time timers).
    Q9,
    /// User sessions (session windows).
    Q11,
}

impl Query {
    /// Every implemented query, in order.
    pub const ALL: [Query; 10] = [
        Query::Q0,
        Query::Q1,
        Query::Q2,
        Query::Q3,
        Query::Q4,
        Query::Q5,
        Query::Q7,
        Query::Q8,
        Query::Q9,
        Query::Q11,
    ];

    /// `q0`, `q1`, ….
    pub fn name(self) -> &'static str {
        match self {
            Query::Q0 => "q0",
            Query::Q1 => "q1",
            Query::Q2 => "q2",
            Query::Q3 => "q3",
            Query::Q4 => "q4",
            Query::Q5 => "q5",
            Query::Q7 => "q7",
            Query::Q8 => "q8",
            Query::Q9 => "q9",
            Query::Q11 => "q11",
        }
    }

    /// Adds the query to `events` and ends it in a checksum sink named `sink`.
    pub fn attach(self, events: &Stream<Event>) -> Checksum {
        match self {
            Query::Q0 => q0(events).checksum("sink"),
            Query::Q1 => q1(events).checksum("sink"),
            Query::Q2 => q2(events).checksum("sink"),
            Query::Q3 => q3(events).checksum("sink"),
            Query::Q4 => q4(events).checksum("sink"),
            Query::Q5 => q5(events).checksum("sink"),
            Query::Q7 => q7(events).checksum("sink"),
            Query::Q8 => q8(events).checksum("sink"),
            Query::Q9 => q9(events).checksum("sink"),
            Query::Q11 => q11(events).checksum("sink"),
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A query name that is not one of [`Query::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Nexmark query `{0}` (known: q0, q1, q2, q3, q4, q5, q7, q8, q9, q11)")]
pub struct UnknownQuery(pub String);

impl FromStr for Query {
    type Err = UnknownQuery;

    fn from_str(s: &str) -> Result<Query, UnknownQuery> {
        Query::ALL
            .into_iter()
            .find(|q| q.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownQuery(s.to_owned()))
    }
}

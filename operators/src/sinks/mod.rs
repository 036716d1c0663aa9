//! Sinks: where streams end.

mod collect;
mod count;
mod discard;

pub use collect::{CollectSink, Collected};
pub use count::{Count, CountSink};
pub use discard::Discard;

//! Sinks: where streams end.

mod channel;
mod collect;
mod count;
mod discard;
mod jsonl;

pub use channel::ChannelSink;
pub use collect::{CollectSink, Collected};
pub use count::{Count, CountSink};
pub use discard::Discard;
pub use jsonl::JsonLinesSink;

//! Sinks: where streams end.

mod channel;
mod checksum;
mod collect;
mod count;
mod discard;
mod jsonl;

pub use channel::ChannelSink;
pub use checksum::{Checksum, ChecksumSink};
pub use collect::{CollectSink, Collected};
pub use count::{Count, CountSink};
pub use discard::Discard;
pub use jsonl::JsonLinesSink;

//! # rheo-operators
//!
//! The operator library of rheo, one operator per file, each an extension method on the
//! engine's [`Stream`](rheo_engine::Stream) or [`KeyedStream`](rheo_engine::KeyedStream).
//! Import the traits with `use rheo_operators::prelude::*;`.
//!
//! ```
//! use rheo_engine::{JobOptions, PipelineBuilder};
//! use rheo_operators::prelude::*;
//!
//! let builder = PipelineBuilder::new();
//! let counts = builder
//!     .source("lines", IterSource::new(["a b", "b c", "c b"]))
//!     .flat_map("split", |line: &str, out: &mut Vec<String>| {
//!         out.extend(line.split_whitespace().map(String::from))
//!     })
//!     .key_by(|w: &String| w.clone())
//!     .reduce("count", |w: &String| (w.clone(), 0u64), |acc: &mut (String, u64), _| acc.1 += 1)
//!     .collect("out");
//! builder.build()?.run(JobOptions::default())?;
//! let mut last = std::collections::BTreeMap::new();
//! for (word, n) in counts.take() {
//!     last.insert(word, n);
//! }
//! assert_eq!(last["b"], 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod filter;
pub mod flat_map;
pub mod map;
pub mod reduce;
pub mod sinks;
pub mod sources;

/// The operator traits and the common sources and sinks.
pub mod prelude {
    pub use crate::filter::Filter;
    pub use crate::flat_map::FlatMap;
    pub use crate::map::Map;
    pub use crate::reduce::Reduce;
    pub use crate::sinks::{CollectSink, Collected, Count, CountSink, Discard};
    pub use crate::sources::IterSource;
}

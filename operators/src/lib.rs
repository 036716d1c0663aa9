//! # rheo-operators
//!
//! The operator library of rheo, one operator per file, each an extension method on the
//! engine's [`Stream`](rheo_engine::Stream) or [`KeyedStream`](rheo_engine::KeyedStream).
//! Import the traits with `use rheo_operators::prelude::*;`.
//!
//! - stateless: [`map`], [`filter`], [`flat_map`]; `union`, `key_by`, `rebalance` and
//!   `broadcast` are methods of the engine's `Stream` itself;
//! - keyed (state in the engine's keyed state, moved by key group on rescale): [`reduce`],
//!   [`aggregate`] (incremental [`Aggregator`](aggregate::Aggregator)s), [`combine`] (local
//!   pre-aggregation before the exchange, for hot keys), [`top_n`], [`dedup`], [`process`]
//!   (user logic with event-time timers);
//! - event time: [`window`] (tumbling, hop, session; allowed lateness; late side output) and
//!   [`join`] (windowed and unbounded incremental);
//! - [`sources`] (iterator, file lines, rate-controlled with Zipf keys) and [`sinks`]
//!   (collect, count, discard, JSON lines, channel).
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

pub mod aggregate;
pub mod combine;
pub mod dedup;
pub mod filter;
pub mod flat_map;
pub mod join;
pub mod map;
pub mod nexmark;
pub mod process;
pub mod reduce;
pub mod sinks;
pub mod sources;
pub mod top_n;
pub mod window;

/// The operator traits and the common sources and sinks.
pub mod prelude {
    pub use crate::aggregate::{Aggregate, Aggregator, Merge};
    pub use crate::combine::{Combine, MergePartials};
    pub use crate::dedup::Dedup;
    pub use crate::filter::Filter;
    pub use crate::flat_map::FlatMap;
    pub use crate::join::{IncrementalJoin, WindowJoin};
    pub use crate::map::Map;
    pub use crate::process::{KeyedProcess, Process, ProcessContext};
    pub use crate::reduce::Reduce;
    pub use crate::sinks::{
        ChannelSink, Checksum, ChecksumSink, CollectSink, Collected, Count, CountSink, Discard,
        JsonLinesSink,
    };
    pub use crate::sources::{
        IterSource, LinesSource, RateProfile, RateSource, SourceExt, ZipfKeys,
    };
    pub use crate::top_n::TopN;
    pub use crate::window::{Window, WindowBy, WindowResult, hop, session, tumbling};
}

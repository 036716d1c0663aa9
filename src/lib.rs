//! # rheo
//!
//! A self-contained, multithreaded stream processing engine with a built-in tuner. This crate
//! is the facade: it re-exports the engine ([`engine`]), the operator library ([`operators`])
//! and the tuner ([`tuner`]), and holds what the `rheo` command line and the examples share.
//!
//! ```
//! use rheo::prelude::*;
//!
//! let builder = PipelineBuilder::new();
//! let words = builder
//!     .source("lines", IterSource::new(["a rose is a rose"]))
//!     .flat_map("split", |line: &str, out: &mut Vec<String>| {
//!         out.extend(line.split(' ').map(String::from))
//!     })
//!     .key_by(|w: &String| w.clone())
//!     .reduce("count", |w: &String| (w.clone(), 0u64), |c: &mut (String, u64), _| c.1 += 1)
//!     .collect("counts");
//! builder.build()?.run(JobOptions::default())?;
//! assert!(words.take().contains(&("rose".to_string(), 2)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub use rheo_engine as engine;
pub use rheo_operators as operators;
pub use rheo_tuner as tuner;

pub mod harness;
pub mod table;

/// The README's code, compiled and run as a doctest so it stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Everything needed to build and run a pipeline.
pub mod prelude {
    pub use rheo_engine::metrics::MetricsSnapshot;
    pub use rheo_engine::source::{RateProfile, RateSource, SourceExt};
    pub use rheo_engine::{
        JobConfig, JobHandle, JobOptions, JobReport, Pipeline, PipelineBuilder, Rescale, Stream,
    };
    pub use rheo_operators::prelude::*;
}

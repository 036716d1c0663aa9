//! Sources. The engine provides the source interface, the iterator source and the
//! rate-controlled source; they are re-exported here beside the library's own.

pub use rheo_engine::source::{IterSource, RateProfile, RateSource, Source, SourceExt};

//! Sources. The engine provides the source interface, the iterator source and the
//! rate-controlled source; they are re-exported here beside the library's own: the lines of a
//! file and Zipf-distributed keys for the rate-controlled source.

mod lines;
mod zipf;

pub use lines::LinesSource;
pub use rheo_engine::source::{IterSource, RateProfile, RateSource, Source, SourceExt};
pub use zipf::{ZipfError, ZipfKeys, fit_exponent};

//! Joins of two keyed streams: within event-time windows ([`WindowJoin::window_join`]) or over
//! everything seen so far ([`IncrementalJoin::join`]). Both keep their records in keyed state.

mod incremental;
mod window;

pub use incremental::IncrementalJoin;
pub use window::WindowJoin;

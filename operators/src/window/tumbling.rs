//! Tumbling windows: fixed, non-overlapping windows of one size.

use rheo_engine::Timestamp;

use super::Window;

/// Windows `[k·size, (k+1)·size)`: each record belongs to exactly one.
///
/// ```
/// use rheo_engine::{JobOptions, PipelineBuilder, Timestamp};
/// use rheo_engine::source::SourceExt;
/// use rheo_operators::prelude::*;
/// use rheo_operators::aggregate::Count;
/// use rheo_operators::window::{WindowBy, WindowResult, tumbling};
///
/// // (user, event time in ms), slightly out of order.
/// let clicks = [("ann", 5u64), ("bob", 12), ("ann", 3), ("ann", 17), ("ann", 25)];
/// let builder = PipelineBuilder::new();
/// let windows = builder
///     .source("clicks", IterSource::new(clicks).with_timestamps(|c| c.1, 5))
///     .key_by(|c: &(&str, Timestamp)| c.0)
///     .window(tumbling(10), |c: &(&str, Timestamp)| c.1)
///     .aggregate("clicks-per-10ms", Count);
/// let results = windows.results.collect("results");
/// builder.build()?.run(JobOptions::default())?;
/// let mut got = results.take();
/// got.sort();
/// assert_eq!(got, vec![
///     WindowResult { key: "ann", start: 0, end: 10, value: 2 },
///     WindowResult { key: "ann", start: 10, end: 20, value: 1 },
///     WindowResult { key: "ann", start: 20, end: 30, value: 1 },
///     WindowResult { key: "bob", start: 10, end: 20, value: 1 },
/// ]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn tumbling(size: Timestamp) -> Window {
    Window::Tumbling { size: size.max(1) }
}

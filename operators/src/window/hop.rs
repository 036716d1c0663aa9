//! Hopping (sliding) windows: windows of one size starting every `slide`.

use rheo_engine::Timestamp;

use super::Window;

/// Windows `[k·slide, k·slide + size)`: a record belongs to `size / slide` of them.
///
/// ```
/// use rheo_engine::{JobOptions, PipelineBuilder, Timestamp};
/// use rheo_engine::source::SourceExt;
/// use rheo_operators::prelude::*;
/// use rheo_operators::aggregate::Count;
/// use rheo_operators::window::{WindowBy, hop};
///
/// let builder = PipelineBuilder::new();
/// let windows = builder
///     .source("events", IterSource::new([1u64, 6, 11]).with_timestamps(|t| *t, 0))
///     .key_by(|_: &u64| 0u8)
///     .window(hop(10, 5), |t: &u64| *t)
///     .aggregate("count", Count);
/// let results = windows.results.collect("results");
/// builder.build()?.run(JobOptions::default())?;
/// let mut got: Vec<_> = results.take().into_iter().map(|r| (r.start, r.end, r.value)).collect();
/// got.sort();
/// // [0,10) holds 1 and 6; [5,15) holds 6 and 11; [10,20) holds 11.
/// assert_eq!(got, vec![(0, 10, 2), (5, 15, 2), (10, 20, 1)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn hop(size: Timestamp, slide: Timestamp) -> Window {
    let slide = slide.max(1);
    Window::Hop {
        size: size.max(slide),
        slide,
    }
}

/// Starts of the windows `[s, s + size)`, `s` a multiple of `slide`, that contain `ts`.
pub(super) fn starts(
    ts: Timestamp,
    size: Timestamp,
    slide: Timestamp,
) -> impl Iterator<Item = Timestamp> {
    let last = ts - ts % slide;
    (0..)
        .map_while(move |k: u64| last.checked_sub(k * slide))
        .take_while(move |s| s + size > ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_belongs_to_size_over_slide_windows() {
        assert_eq!(starts(12, 10, 5).collect::<Vec<_>>(), vec![10, 5]);
        assert_eq!(starts(12, 10, 10).collect::<Vec<_>>(), vec![10]);
        assert_eq!(starts(3, 10, 5).collect::<Vec<_>>(), vec![0]);
        assert_eq!(starts(29, 30, 10).collect::<Vec<_>>(), vec![20, 10, 0]);
    }
}

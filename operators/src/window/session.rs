//! Session windows: per key, bursts of activity separated by gaps.

use std::hash::Hash;

use rheo_engine::operator::Emitter;
use rheo_engine::{Either, Timestamp};

use super::{Arrival, Pane, Panes, Window, WindowResult, WindowState, fire};
use crate::aggregate::Aggregator;

/// A key's session lasts while its records are less than `gap` apart: each record opens the
/// window `[ts, ts + gap)`, and overlapping windows merge.
///
/// ```
/// use rheo_engine::{JobOptions, PipelineBuilder, Timestamp};
/// use rheo_engine::source::SourceExt;
/// use rheo_operators::prelude::*;
/// use rheo_operators::aggregate::Count;
/// use rheo_operators::window::{WindowBy, session};
///
/// // Two bursts; the record at 24 bridges the sessions around 20 and 30 into one.
/// let times = [1u64, 4, 20, 30, 24];
/// let builder = PipelineBuilder::new();
/// let windows = builder
///     .source("events", IterSource::new(times).with_timestamps(|t| *t, 10))
///     .key_by(|_: &u64| "user")
///     .window(session(7), |t: &u64| *t)
///     .aggregate("sessions", Count);
/// let results = windows.results.collect("results");
/// builder.build()?.run(JobOptions::default())?;
/// let mut got: Vec<_> = results.take().into_iter().map(|r| (r.start, r.end, r.value)).collect();
/// got.sort();
/// assert_eq!(got, vec![(1, 11, 2), (20, 37, 3)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn session(gap: Timestamp) -> Window {
    Window::Session { gap: gap.max(1) }
}

/// Adds the record to its key's sessions, merging those its window overlaps. Returns false
/// when the merged session has expired (the record is late); state is then left unchanged.
pub(super) fn add<T, K, A>(
    agg: &A,
    arrival: Arrival<'_, K, T>,
    gap: Timestamp,
    lateness: Timestamp,
    state: &mut WindowState<K, A::Acc>,
    out: &mut Emitter<'_, Either<WindowResult<K, A::Out>, T>>,
) -> bool
where
    K: Clone + Hash + Eq + Send + 'static,
    A: Aggregator<T>,
{
    let Arrival {
        key,
        record,
        ts,
        watermark: wm,
    } = arrival;
    let (panes, timers) = state;
    let (mut start, mut end) = (ts, ts.saturating_add(gap));
    let key_panes = panes.get_or_insert_with(key.clone(), Panes::new);
    let overlaps =
        |p: &Pane<A::Acc>, start: Timestamp, end: Timestamp| p.start < end && start < p.end;
    for p in key_panes
        .iter()
        .filter(|p| overlaps(p, ts, ts.saturating_add(gap)))
    {
        start = start.min(p.start);
        end = end.max(p.end);
    }
    if end.saturating_add(lateness) <= wm {
        if key_panes.is_empty() {
            panes.remove(key);
        }
        return false;
    }
    let mut acc = agg.init();
    let mut kept = Panes::with_capacity(key_panes.len());
    for p in key_panes.drain(..) {
        if overlaps(&p, start, end) {
            agg.merge(&mut acc, p.acc);
        } else {
            kept.push(p);
        }
    }
    agg.add(&mut acc, record);
    let at = kept.partition_point(|p| p.start < start);
    kept.insert(
        at,
        Pane {
            start,
            end,
            acc,
            fired: false,
        },
    );
    *key_panes = kept;
    timers.register(key.clone(), end);
    if lateness > 0 {
        timers.register(key.clone(), end.saturating_add(lateness));
    }
    if end <= wm {
        // The merged session is already complete (within the allowed lateness): fire now.
        fire(agg, key, &mut key_panes[at], out);
    }
    true
}

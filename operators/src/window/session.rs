//! Session windows: per key, bursts of activity separated by gaps.

use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use rheo_engine::operator::{Context, Data, Emitter, Operator};
use rheo_engine::state::{KeyedState, Timers};
use rheo_engine::{Either, Timestamp};
use smallvec::SmallVec;

use super::{Window, WindowResult};
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

/// One session of one key.
#[derive(Debug, Clone)]
pub struct Pane<Acc> {
    start: Timestamp,
    end: Timestamp,
    acc: Acc,
    fired: bool,
}

/// A key's open sessions, in start order. Almost always one, kept inline in the key's state
/// entry: a record then costs one lookup and no allocation.
type Panes<Acc> = SmallVec<[Pane<Acc>; 1]>;

/// The state of a session stage: open sessions per key, and their timers.
type SessionState<K, Acc> = (KeyedState<K, Panes<Acc>>, Timers<K>);

/// Aggregates session windows, per key. Built by
/// [`Windowed::aggregate`](super::Windowed::aggregate).
pub struct Sessions<T, K, KF, TS, A> {
    pub(super) key: Arc<KF>,
    pub(super) timestamp: Arc<TS>,
    pub(super) aggregator: Arc<A>,
    pub(super) gap: Timestamp,
    pub(super) lateness: Timestamp,
    pub(super) _t: PhantomData<fn(T) -> K>,
}

/// Emits the result of `pane`.
fn fire<T, K: Clone, A: Aggregator<T>>(
    agg: &A,
    key: &K,
    pane: &mut Pane<A::Acc>,
    out: &mut Emitter<'_, Either<WindowResult<K, A::Out>, T>>,
) {
    pane.fired = true;
    out.emit(Either::Left(WindowResult {
        key: key.clone(),
        start: pane.start,
        end: pane.end,
        value: agg.result(&pane.acc),
    }));
}

impl<T, K, KF, TS, A> Operator for Sessions<T, K, KF, TS, A>
where
    T: Data,
    K: Data + Hash + Eq,
    KF: Fn(&T) -> K + Send + Sync + 'static,
    TS: Fn(&T) -> Timestamp + Send + Sync + 'static,
    A: Aggregator<T>,
{
    type In = T;
    type Out = Either<WindowResult<K, A::Out>, T>;
    type State = SessionState<K, A::Acc>;

    fn on_batch(&mut self, batch: &mut Vec<T>, cx: &mut Context<'_, Self::Out, Self::State>) {
        let wm = cx.watermark();
        let (state, mut out) = cx.split();
        for record in batch.drain(..) {
            let key = (self.key)(&record);
            let ts = (self.timestamp)(&record);
            let arrival = Arrival {
                key: &key,
                record: &record,
                ts,
                watermark: wm,
            };
            if !add(
                &*self.aggregator,
                arrival,
                self.gap,
                self.lateness,
                state,
                &mut out,
            ) {
                out.count("late_records", 1);
                out.emit(Either::Right(record));
            }
        }
    }

    fn on_watermark(&mut self, watermark: Timestamp, cx: &mut Context<'_, Self::Out, Self::State>) {
        let agg = &*self.aggregator;
        let lateness = self.lateness;
        let (state, mut out) = cx.split();
        let (panes, timers) = state;
        for (_, key) in timers.expired(watermark) {
            let Some(key_panes) = panes.get_mut(&key) else {
                continue;
            };
            for pane in key_panes.iter_mut() {
                if !pane.fired && pane.end <= watermark {
                    fire(agg, &key, pane, &mut out);
                }
            }
            key_panes.retain(|p| p.end.saturating_add(lateness) > watermark);
            if key_panes.is_empty() {
                panes.remove(&key);
            }
        }
    }
}

/// A record arriving at a session stage: its key, its event time and the stage's watermark.
struct Arrival<'r, K, T> {
    key: &'r K,
    record: &'r T,
    ts: Timestamp,
    watermark: Timestamp,
}

/// Adds the record to its key's sessions, merging those its window overlaps. Returns false
/// when the merged session has expired (the record is late); state is then left unchanged.
fn add<T, K, A>(
    agg: &A,
    arrival: Arrival<'_, K, T>,
    gap: Timestamp,
    lateness: Timestamp,
    state: &mut SessionState<K, A::Acc>,
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

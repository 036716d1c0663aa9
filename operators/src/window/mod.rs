//! Event-time windows: [`tumbling`], [`hop`] (sliding) and [`session`], on a keyed stream.
//!
//! A window collects the records of a key whose event time falls in `[start, end)` into an
//! incremental [`Aggregator`], and fires — emits a [`WindowResult`] — once the watermark
//! reaches `end`. With an allowed lateness `L`, a fired window is kept until the watermark
//! reaches `end + L`; records arriving for it meanwhile update it and it fires again. A record
//! too late for every window it belongs to goes to the **late side output** and is counted in
//! the stage's metrics as `late_records`; nothing is dropped silently. At the end of the stream
//! the final watermark fires every open window.
//!
//! Windows and their timers live in the engine's keyed state, so a rescale moves them with
//! their key groups.

mod hop;
mod session;
mod tumbling;

use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

pub use hop::hop;
use rheo_engine::operator::{Context, Data, Emitter, Operator};
use rheo_engine::state::{KeyedState, Timers};
use rheo_engine::{Either, KeyedStream, Stream, Timestamp};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
pub use session::session;
pub use tumbling::tumbling;

use crate::aggregate::Aggregator;

/// How records are grouped in event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Fixed windows `[k·size, (k+1)·size)`.
    Tumbling {
        /// Window length.
        size: Timestamp,
    },
    /// Overlapping fixed windows of `size`, one starting every `slide`.
    Hop {
        /// Window length.
        size: Timestamp,
        /// Distance between window starts.
        slide: Timestamp,
    },
    /// Windows of activity per key, closed by `gap` without records.
    Session {
        /// Inactivity that ends a session.
        gap: Timestamp,
    },
}

/// The result of one window of one key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WindowResult<K, O> {
    /// The key.
    pub key: K,
    /// Window start (inclusive).
    pub start: Timestamp,
    /// Window end (exclusive).
    pub end: Timestamp,
    /// The aggregate.
    pub value: O,
}

/// The streams a windowed aggregation produces.
pub struct WindowOutput<K, O, T> {
    /// One result per window firing.
    pub results: Stream<WindowResult<K, O>>,
    /// Records too late for every window they belong to.
    pub late: Stream<T>,
}

/// Groups a keyed stream into event-time windows.
pub trait WindowBy<T, K, KF> {
    /// Windows of `window` over the event time `timestamp(record)`.
    fn window<TS>(&self, window: Window, timestamp: TS) -> Windowed<T, K, KF, TS>
    where
        TS: Fn(&T) -> Timestamp + Send + Sync + 'static;
}

impl<T, K, KF> WindowBy<T, K, KF> for KeyedStream<T, K, KF>
where
    T: Data,
    K: Data + Hash + Eq,
    KF: Fn(&T) -> K + Send + Sync + 'static,
{
    fn window<TS>(&self, window: Window, timestamp: TS) -> Windowed<T, K, KF, TS>
    where
        TS: Fn(&T) -> Timestamp + Send + Sync + 'static,
    {
        Windowed {
            stream: self.clone(),
            window,
            timestamp: Arc::new(timestamp),
            lateness: 0,
        }
    }
}

/// A keyed stream grouped into windows, ready to aggregate.
pub struct Windowed<T, K, KF, TS> {
    stream: KeyedStream<T, K, KF>,
    window: Window,
    timestamp: Arc<TS>,
    lateness: Timestamp,
}

impl<T, K, KF, TS> Windowed<T, K, KF, TS>
where
    T: Data,
    K: Data + Hash + Eq,
    KF: Fn(&T) -> K + Send + Sync + 'static,
    TS: Fn(&T) -> Timestamp + Send + Sync + 'static,
{
    /// Keeps fired windows open for `lateness` more event time (default 0).
    pub fn allowed_lateness(mut self, lateness: Timestamp) -> Self {
        self.lateness = lateness;
        self
    }

    /// Adds the window stage, aggregating each window with `aggregator`.
    pub fn aggregate<A: Aggregator<T>>(
        &self,
        name: &str,
        aggregator: A,
    ) -> WindowOutput<K, A::Out, T> {
        let key = self.stream.key_fn();
        let timestamp = self.timestamp.clone();
        let aggregator = Arc::new(aggregator);
        let (window, lateness) = (self.window, self.lateness);
        let both = self.stream.unary(name, move |_| WindowOperator {
            key: key.clone(),
            timestamp: timestamp.clone(),
            aggregator: aggregator.clone(),
            window,
            lateness,
            _t: PhantomData,
        });
        WindowOutput {
            results: both.left(),
            late: both.right(),
        }
    }
}

/// One window of one key.
#[derive(Debug, Clone)]
pub struct Pane<Acc> {
    start: Timestamp,
    end: Timestamp,
    acc: Acc,
    fired: bool,
}

/// A record arriving at a window stage: its key, its event time and the stage's watermark.
pub(super) struct Arrival<'r, K, T> {
    key: &'r K,
    record: &'r T,
    ts: Timestamp,
    watermark: Timestamp,
}

/// The state of a window stage: open panes per key, and their timers.
type WindowState<K, Acc> = (KeyedState<K, Panes<Acc>>, Timers<K>);

/// A key's open panes, in start order. Almost always one (a tumbling window, in-order input),
/// kept inline in the key's state entry: a record then costs one lookup and no allocation.
type Panes<Acc> = SmallVec<[Pane<Acc>; 1]>;

/// The operator behind [`Windowed::aggregate`].
pub struct WindowOperator<T, K, KF, TS, A> {
    key: Arc<KF>,
    timestamp: Arc<TS>,
    aggregator: Arc<A>,
    window: Window,
    lateness: Timestamp,
    _t: PhantomData<fn(T) -> K>,
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

impl<T, K, KF, TS, A> WindowOperator<T, K, KF, TS, A>
where
    T: Data,
    K: Data + Hash + Eq,
    A: Aggregator<T>,
{
    /// Adds the record to the fixed windows `[s, s + size)` containing its event time. Returns
    /// false when every such window has expired (the record is late).
    fn add_fixed(
        &self,
        arrival: Arrival<'_, K, T>,
        (size, slide): (Timestamp, Timestamp),
        state: &mut WindowState<K, A::Acc>,
        out: &mut Emitter<'_, Either<WindowResult<K, A::Out>, T>>,
    ) -> bool {
        let agg = &*self.aggregator;
        let (panes, timers) = state;
        let Arrival {
            key,
            record,
            ts,
            watermark: wm,
        } = arrival;
        let mut accepted = false;
        for start in hop::starts(ts, size, slide) {
            let end = start.saturating_add(size);
            if end.saturating_add(self.lateness) <= wm {
                continue;
            }
            accepted = true;
            let key_panes = panes.get_or_insert_with(key.clone(), Panes::new);
            let at = key_panes.partition_point(|p| p.start < start);
            if key_panes.get(at).is_none_or(|p| p.start != start) {
                key_panes.insert(
                    at,
                    Pane {
                        start,
                        end,
                        acc: agg.init(),
                        fired: false,
                    },
                );
                timers.register(key.clone(), end);
                if self.lateness > 0 {
                    timers.register(key.clone(), end.saturating_add(self.lateness));
                }
            }
            let pane = &mut key_panes[at];
            agg.add(&mut pane.acc, record);
            if end <= wm {
                // Already fired, still within the allowed lateness: fire again, updated.
                fire(agg, key, pane, out);
            }
        }
        accepted
    }
}

impl<T, K, KF, TS, A> Operator for WindowOperator<T, K, KF, TS, A>
where
    T: Data,
    K: Data + Hash + Eq,
    KF: Fn(&T) -> K + Send + Sync + 'static,
    TS: Fn(&T) -> Timestamp + Send + Sync + 'static,
    A: Aggregator<T>,
{
    type In = T;
    type Out = Either<WindowResult<K, A::Out>, T>;
    type State = WindowState<K, A::Acc>;

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
            let accepted = match self.window {
                Window::Tumbling { size } => self.add_fixed(arrival, (size, size), state, &mut out),
                Window::Hop { size, slide } => {
                    self.add_fixed(arrival, (size, slide), state, &mut out)
                }
                Window::Session { gap } => session::add(
                    &*self.aggregator,
                    arrival,
                    gap,
                    self.lateness,
                    state,
                    &mut out,
                ),
            };
            if !accepted {
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

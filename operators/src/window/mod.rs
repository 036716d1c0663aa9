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
//! Tumbling and hopping windows keep their values per window in the engine's
//! [`WindowedState`](rheo_engine::state::WindowedState) (one lookup per record, no timer per
//! key: a window closes for every key at once); sessions keep their panes per key with a timer
//! each. Either way the state is split by key group, so a rescale moves it with its keys.

mod fixed;
mod hop;
mod session;
mod tumbling;

use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

pub use fixed::FixedWindows;
pub use hop::hop;
use rheo_engine::operator::Data;
use rheo_engine::{KeyedStream, Stream, Timestamp};
use serde::{Deserialize, Serialize};
pub use session::{Sessions, session};
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
        let lateness = self.lateness;
        let both = match self.window {
            Window::Tumbling { size } => self.stream.unary(name, move |_| FixedWindows {
                key: key.clone(),
                timestamp: timestamp.clone(),
                aggregator: aggregator.clone(),
                size,
                slide: size,
                lateness,
                _t: PhantomData,
            }),
            Window::Hop { size, slide } => self.stream.unary(name, move |_| FixedWindows {
                key: key.clone(),
                timestamp: timestamp.clone(),
                aggregator: aggregator.clone(),
                size,
                slide,
                lateness,
                _t: PhantomData,
            }),
            Window::Session { gap } => self.stream.unary(name, move |_| Sessions {
                key: key.clone(),
                timestamp: timestamp.clone(),
                aggregator: aggregator.clone(),
                gap,
                lateness,
                _t: PhantomData,
            }),
        };
        WindowOutput {
            results: both.left(),
            late: both.right(),
        }
    }
}

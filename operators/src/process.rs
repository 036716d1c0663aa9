//! `process`: a keyed operator written by the user, with per-key state and event-time timers,
//! both kept in the engine's keyed state so they move with their key groups.

use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use rheo_engine::operator::{Context, Data, Emitter, Operator};
use rheo_engine::state::{KeyedState, Timers};
use rheo_engine::{KeyedStream, Stream, Timestamp};

/// Per-key logic for [`Process::process`]. One instance is shared by all workers; anything
/// that must persist lives in the per-key value or in timers.
pub trait KeyedProcess<K, T>: Send + Sync + 'static {
    /// Per-key state.
    type Value: Send + 'static;
    /// Output records.
    type Out: Data;
    /// Handles one record of `key`.
    fn on_record(&self, key: &K, record: T, cx: &mut ProcessContext<'_, K, Self::Value, Self::Out>);
    /// Handles a timer of `key` that the watermark reached.
    fn on_timer(
        &self,
        key: &K,
        time: Timestamp,
        cx: &mut ProcessContext<'_, K, Self::Value, Self::Out>,
    );
}

/// The current key's state, its timers and the output, during a [`KeyedProcess`] callback.
pub struct ProcessContext<'a, K, V, O> {
    key: &'a K,
    values: &'a mut KeyedState<K, V>,
    timers: &'a mut Timers<K>,
    out: Emitter<'a, O>,
    watermark: Timestamp,
}

impl<K: Clone + Hash + Eq, V, O> ProcessContext<'_, K, V, O> {
    /// The key's value, if set.
    pub fn value(&mut self) -> Option<&mut V> {
        self.values.get_mut(self.key)
    }

    /// The key's value, set to `init()` first if unset.
    pub fn value_or_insert_with(&mut self, init: impl FnOnce() -> V) -> &mut V {
        self.values.get_or_insert_with(self.key.clone(), init)
    }

    /// Clears the key's value, returning it.
    pub fn take_value(&mut self) -> Option<V> {
        self.values.remove(self.key)
    }

    /// Calls [`KeyedProcess::on_timer`] for this key once the watermark reaches `time`.
    pub fn register_timer(&mut self, time: Timestamp) {
        self.timers.register(self.key.clone(), time);
    }

    /// Cancels this key's timer at `time`.
    pub fn cancel_timer(&mut self, time: Timestamp) {
        self.timers.cancel(self.key, time);
    }

    /// Emits a record.
    pub fn emit(&mut self, record: O) {
        self.out.emit(record);
    }

    /// The current watermark.
    pub fn watermark(&self) -> Timestamp {
        self.watermark
    }

    /// Adds to a stage counter (reported in the stage's metrics).
    pub fn count(&mut self, name: &'static str, n: u64) {
        self.out.count(name, n);
    }
}

/// Runs user logic per key.
pub trait Process<T, K> {
    /// Adds a keyed stage running `logic` on each record and on each due timer.
    ///
    /// ```
    /// use rheo_engine::{JobOptions, PipelineBuilder, Timestamp};
    /// use rheo_engine::source::SourceExt;
    /// use rheo_operators::prelude::*;
    /// use rheo_operators::process::{KeyedProcess, ProcessContext};
    ///
    /// /// The highest bid per auction, emitted when the auction closes at time 100.
    /// struct Winner;
    /// impl KeyedProcess<u32, (u32, u64, Timestamp)> for Winner {
    ///     type Value = u64;
    ///     type Out = (u32, u64);
    ///     fn on_record(&self, _: &u32, bid: (u32, u64, Timestamp), cx: &mut ProcessContext<'_, u32, u64, (u32, u64)>) {
    ///         let best = cx.value_or_insert_with(|| 0);
    ///         *best = (*best).max(bid.1);
    ///         cx.register_timer(100);
    ///     }
    ///     fn on_timer(&self, auction: &u32, _: Timestamp, cx: &mut ProcessContext<'_, u32, u64, (u32, u64)>) {
    ///         if let Some(best) = cx.take_value() {
    ///             cx.emit((*auction, best));
    ///         }
    ///     }
    /// }
    ///
    /// let bids = [(1u32, 5u64, 10), (2, 3, 20), (1, 8, 30)];
    /// let builder = PipelineBuilder::new();
    /// let out = builder
    ///     .source("bids", IterSource::new(bids).with_timestamps(|b| b.2, 0))
    ///     .key_by(|b: &(u32, u64, Timestamp)| b.0)
    ///     .process("winners", Winner)
    ///     .collect("out");
    /// builder.build()?.run(JobOptions::default())?;
    /// let mut winners = out.take();
    /// winners.sort();
    /// assert_eq!(winners, vec![(1, 8), (2, 3)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn process<P: KeyedProcess<K, T>>(&self, name: &str, logic: P) -> Stream<P::Out>;
}

impl<T, K, KF> Process<T, K> for KeyedStream<T, K, KF>
where
    T: Data,
    K: Data + Hash + Eq,
    KF: Fn(&T) -> K + Send + Sync + 'static,
{
    fn process<P: KeyedProcess<K, T>>(&self, name: &str, logic: P) -> Stream<P::Out> {
        let key = self.key_fn();
        let logic = Arc::new(logic);
        self.unary(name, move |_| ProcessOperator {
            key: key.clone(),
            logic: logic.clone(),
            _t: PhantomData,
        })
    }
}

/// The operator behind [`Process::process`].
pub struct ProcessOperator<T, K, KF, P> {
    key: Arc<KF>,
    logic: Arc<P>,
    _t: PhantomData<fn(T) -> K>,
}

/// Runs `f` with a [`ProcessContext`] for `key`.
fn with_key<K, V, O, R>(
    cx: &mut Context<'_, O, (KeyedState<K, V>, Timers<K>)>,
    key: &K,
    f: impl FnOnce(&mut ProcessContext<'_, K, V, O>) -> R,
) -> R {
    let watermark = cx.watermark();
    let (state, out) = cx.split();
    let (values, timers) = state;
    f(&mut ProcessContext {
        key,
        values,
        timers,
        out,
        watermark,
    })
}

impl<T, K, KF, P> Operator for ProcessOperator<T, K, KF, P>
where
    T: Data,
    K: Data + Hash + Eq,
    KF: Fn(&T) -> K + Send + Sync + 'static,
    P: KeyedProcess<K, T>,
{
    type In = T;
    type Out = P::Out;
    type State = (KeyedState<K, P::Value>, Timers<K>);

    fn on_batch(&mut self, batch: &mut Vec<T>, cx: &mut Context<'_, P::Out, Self::State>) {
        let logic = &*self.logic;
        for record in batch.drain(..) {
            let key = (self.key)(&record);
            with_key(cx, &key, |pcx| logic.on_record(&key, record, pcx));
        }
    }

    fn on_watermark(&mut self, watermark: Timestamp, cx: &mut Context<'_, P::Out, Self::State>) {
        let logic = &*self.logic;
        // Timers may register new timers at or before the watermark: run until none is due.
        loop {
            let due = cx.state().1.expired(watermark);
            if due.is_empty() {
                break;
            }
            for (time, key) in due {
                with_key(cx, &key, |pcx| logic.on_timer(&key, time, pcx));
            }
        }
    }
}

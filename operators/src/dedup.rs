//! `dedup`: the first record of each key, forever or within an event-time horizon.

use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use rheo_engine::operator::{Context, Data, Operator};
use rheo_engine::state::{KeyedState, Timers};
use rheo_engine::{KeyedStream, Stream, Timestamp};

/// Drops repeated keys.
pub trait Dedup<T, K> {
    /// Adds a keyed stage that passes the first record of every key and drops the rest.
    /// Keeps one entry per key seen.
    ///
    /// ```
    /// use rheo_engine::{JobOptions, PipelineBuilder};
    /// use rheo_operators::prelude::*;
    ///
    /// let builder = PipelineBuilder::new();
    /// let out = builder
    ///     .source("events", IterSource::new([(1u32, "a"), (2, "b"), (1, "c")]))
    ///     .key_by(|e: &(u32, &str)| e.0)
    ///     .dedup("first")
    ///     .collect("out");
    /// builder.build()?.run(JobOptions::default())?;
    /// assert_eq!(out.take(), vec![(1, "a"), (2, "b")]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn dedup(&self, name: &str) -> Stream<T>;

    /// Like [`Dedup::dedup`], but a key is forgotten once the watermark passes `ttl` after the
    /// event time of its first record, so state stays bounded; the key's next record then
    /// passes again.
    fn dedup_within<TS>(&self, name: &str, timestamp: TS, ttl: Timestamp) -> Stream<T>
    where
        TS: Fn(&T) -> Timestamp + Send + Sync + 'static;
}

impl<T, K, KF> Dedup<T, K> for KeyedStream<T, K, KF>
where
    T: Data,
    K: Data + Hash + Eq,
    KF: Fn(&T) -> K + Send + Sync + 'static,
{
    fn dedup(&self, name: &str) -> Stream<T> {
        let key = self.key_fn();
        self.unary(name, move |_| DedupOperator {
            key: key.clone(),
            _t: PhantomData,
        })
    }

    fn dedup_within<TS>(&self, name: &str, timestamp: TS, ttl: Timestamp) -> Stream<T>
    where
        TS: Fn(&T) -> Timestamp + Send + Sync + 'static,
    {
        let key = self.key_fn();
        let timestamp = Arc::new(timestamp);
        self.unary(name, move |_| DedupWithinOperator {
            key: key.clone(),
            timestamp: timestamp.clone(),
            ttl,
            _t: PhantomData,
        })
    }
}

/// The operator behind [`Dedup::dedup`].
pub struct DedupOperator<T, K, KF> {
    key: Arc<KF>,
    _t: PhantomData<fn(T) -> K>,
}

impl<T, K, KF> Operator for DedupOperator<T, K, KF>
where
    T: Data,
    K: Data + Hash + Eq,
    KF: Fn(&T) -> K + Send + Sync + 'static,
{
    type In = T;
    type Out = T;
    type State = KeyedState<K, ()>;

    fn on_batch(&mut self, batch: &mut Vec<T>, cx: &mut Context<'_, T, Self::State>) {
        for record in batch.drain(..) {
            if cx.state().insert((self.key)(&record), ()).is_none() {
                cx.emit(record);
            }
        }
    }
}

/// The operator behind [`Dedup::dedup_within`]: per key, the time it expires.
pub struct DedupWithinOperator<T, K, KF, TS> {
    key: Arc<KF>,
    timestamp: Arc<TS>,
    ttl: Timestamp,
    _t: PhantomData<fn(T) -> K>,
}

impl<T, K, KF, TS> Operator for DedupWithinOperator<T, K, KF, TS>
where
    T: Data,
    K: Data + Hash + Eq,
    KF: Fn(&T) -> K + Send + Sync + 'static,
    TS: Fn(&T) -> Timestamp + Send + Sync + 'static,
{
    type In = T;
    type Out = T;
    type State = (KeyedState<K, Timestamp>, Timers<K>);

    fn on_batch(&mut self, batch: &mut Vec<T>, cx: &mut Context<'_, T, Self::State>) {
        for record in batch.drain(..) {
            let key = (self.key)(&record);
            let (seen, timers) = cx.state();
            if seen.get(&key).is_some() {
                continue;
            }
            let expires = (self.timestamp)(&record).saturating_add(self.ttl);
            seen.insert(key.clone(), expires);
            timers.register(key, expires);
            cx.emit(record);
        }
    }

    fn on_watermark(&mut self, watermark: Timestamp, cx: &mut Context<'_, T, Self::State>) {
        let (seen, timers) = cx.state();
        for (time, key) in timers.expired(watermark) {
            if seen.get(&key) == Some(&time) {
                seen.remove(&key);
            }
        }
    }
}

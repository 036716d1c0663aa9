//! `combine` and `merge_partials`: local pre-aggregation before a hash exchange, for hot keys.
//!
//! A keyed aggregate sends every record to the worker owning its key; when one key carries
//! much of the traffic, that worker becomes the bottleneck. A combiner runs before the exchange
//! on every upstream worker, folds records into per-key partial accumulators kept locally,
//! and sends only the partials; the keyed stage after the exchange merges them.

use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use rheo_engine::operator::{Context, Data, Operator};
use rheo_engine::state::KeyedState;
use rheo_engine::{KeyedStream, Stream, Timestamp};
use rustc_hash::FxHashMap;

use crate::aggregate::{Aggregator, Merge};

/// Pre-aggregates locally.
pub trait Combine<T> {
    /// Adds a stateless stage that folds records into per-key partial accumulators local to
    /// each worker, and emits `(key, partial)` pairs every `flush_every` records, when its
    /// input goes quiet, at watermarks, at reconfiguration barriers and at the end. Follow it
    /// with `key_by` on the key and [`MergePartials::merge_partials`].
    ///
    /// ```
    /// use rheo_engine::{JobOptions, PipelineBuilder};
    /// use rheo_operators::prelude::*;
    /// use rheo_operators::aggregate::Count;
    ///
    /// let builder = PipelineBuilder::new();
    /// let out = builder
    ///     .source("clicks", IterSource::new(["home", "home", "cart", "home"]))
    ///     .combine("partial", |page: &&str| *page, Count, 1024)
    ///     .key_by(|p: &(&str, u64)| p.0)
    ///     .merge_partials("clicks-per-page", Count)
    ///     .collect("out");
    /// builder.build()?.run(JobOptions::default())?;
    /// let mut last = std::collections::BTreeMap::new();
    /// for (page, n) in out.take() {
    ///     last.insert(page, n);
    /// }
    /// assert_eq!(last["home"], 3);
    /// assert_eq!(last["cart"], 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn combine<K, KF, A>(
        &self,
        name: &str,
        key: KF,
        aggregator: A,
        flush_every: usize,
    ) -> Stream<(K, A::Acc)>
    where
        K: Data + Hash + Eq,
        KF: Fn(&T) -> K + Send + Sync + 'static,
        A: Aggregator<T>;
}

impl<T: Data> Combine<T> for Stream<T> {
    fn combine<K, KF, A>(
        &self,
        name: &str,
        key: KF,
        aggregator: A,
        flush_every: usize,
    ) -> Stream<(K, A::Acc)>
    where
        K: Data + Hash + Eq,
        KF: Fn(&T) -> K + Send + Sync + 'static,
        A: Aggregator<T>,
    {
        let key = Arc::new(key);
        let aggregator = Arc::new(aggregator);
        let flush_every = flush_every.max(1);
        self.unary(name, move |_| CombineOperator {
            key: key.clone(),
            aggregator: aggregator.clone(),
            partials: FxHashMap::default(),
            since_flush: 0,
            flush_every,
            _t: PhantomData,
        })
    }
}

/// The operator behind [`Combine::combine`].
pub struct CombineOperator<T, K, KF, A: Aggregator<T>> {
    key: Arc<KF>,
    aggregator: Arc<A>,
    partials: FxHashMap<K, A::Acc>,
    since_flush: usize,
    flush_every: usize,
    _t: PhantomData<fn(T)>,
}

impl<T, K, KF, A: Aggregator<T>> CombineOperator<T, K, KF, A> {
    fn flush(&mut self, cx: &mut Context<'_, (K, A::Acc), ()>) {
        self.since_flush = 0;
        cx.emit_all(self.partials.drain());
    }
}

impl<T, K, KF, A> Operator for CombineOperator<T, K, KF, A>
where
    T: Data,
    K: Data + Hash + Eq,
    KF: Fn(&T) -> K + Send + Sync + 'static,
    A: Aggregator<T>,
{
    type In = T;
    type Out = (K, A::Acc);
    type State = ();

    fn on_batch(&mut self, batch: &mut Vec<T>, cx: &mut Context<'_, Self::Out, ()>) {
        let agg = &*self.aggregator;
        self.since_flush += batch.len();
        for record in batch.drain(..) {
            let acc = self
                .partials
                .entry((self.key)(&record))
                .or_insert_with(|| agg.init());
            agg.add(acc, &record);
        }
        if self.since_flush >= self.flush_every || self.partials.len() >= self.flush_every {
            self.flush(cx);
        }
    }

    fn on_tick(&mut self, cx: &mut Context<'_, Self::Out, ()>) {
        self.flush(cx);
    }

    fn on_watermark(&mut self, _: Timestamp, cx: &mut Context<'_, Self::Out, ()>) {
        self.flush(cx);
    }

    fn on_barrier(&mut self, cx: &mut Context<'_, Self::Out, ()>) {
        self.flush(cx);
    }

    fn on_end(&mut self, cx: &mut Context<'_, Self::Out, ()>) {
        self.flush(cx);
    }
}

/// Merges partial accumulators per key.
pub trait MergePartials<K, Acc> {
    /// Adds a keyed stage merging `(key, partial)` pairs (from [`Combine::combine`]) into the
    /// key's accumulator in keyed state, emitting `(key, result)` after each merge.
    fn merge_partials<A: Merge<Acc = Acc>>(&self, name: &str, aggregator: A)
    -> Stream<(K, A::Out)>;
}

impl<K, Acc, KF> MergePartials<K, Acc> for KeyedStream<(K, Acc), K, KF>
where
    K: Data + Hash + Eq,
    Acc: Data,
    KF: Fn(&(K, Acc)) -> K + Send + Sync + 'static,
{
    fn merge_partials<A: Merge<Acc = Acc>>(
        &self,
        name: &str,
        aggregator: A,
    ) -> Stream<(K, A::Out)> {
        let aggregator = Arc::new(aggregator);
        self.unary(name, move |_| MergeOperator {
            aggregator: aggregator.clone(),
            _t: PhantomData,
        })
    }
}

/// The operator behind [`MergePartials::merge_partials`].
pub struct MergeOperator<K, A> {
    aggregator: Arc<A>,
    _t: PhantomData<fn() -> K>,
}

impl<K, A> Operator for MergeOperator<K, A>
where
    K: Data + Hash + Eq,
    A: Merge,
{
    type In = (K, A::Acc);
    type Out = (K, A::Out);
    type State = KeyedState<K, A::Acc>;

    fn on_batch(
        &mut self,
        batch: &mut Vec<(K, A::Acc)>,
        cx: &mut Context<'_, Self::Out, Self::State>,
    ) {
        let agg = &*self.aggregator;
        for (key, partial) in batch.drain(..) {
            let acc = cx.state().get_or_insert_with(key.clone(), || agg.init());
            agg.merge(acc, partial);
            let out = agg.result(acc);
            cx.emit((key, out));
        }
    }
}

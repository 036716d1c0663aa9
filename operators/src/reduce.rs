//! `reduce`: a running accumulator per key, kept in keyed state.

use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use rheo_engine::operator::{Context, Data, Operator};
use rheo_engine::state::KeyedState;
use rheo_engine::{KeyedStream, Stream};

/// Folds the records of each key into an accumulator.
pub trait Reduce<T, K> {
    /// Adds a keyed stage that keeps one accumulator per key (created by `init(&key)`), folds
    /// each record into it with `fold`, and emits the updated accumulator. The accumulators
    /// live in keyed state, so they move with their key groups when the stage is rescaled.
    ///
    /// ```
    /// use rheo_engine::{JobOptions, PipelineBuilder};
    /// use rheo_operators::prelude::*;
    ///
    /// let builder = PipelineBuilder::new();
    /// let out = builder
    ///     .source("sales", IterSource::new([("tea", 3u64), ("jam", 1), ("tea", 2)]))
    ///     .key_by(|s: &(&str, u64)| s.0)
    ///     .reduce("total", |k: &&str| (*k, 0u64), |acc: &mut (&str, u64), s| acc.1 += s.1)
    ///     .collect("out");
    /// builder.build()?.run(JobOptions::default())?;
    /// assert_eq!(out.take(), vec![("tea", 3), ("jam", 1), ("tea", 5)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn reduce<A, I, F>(&self, name: &str, init: I, fold: F) -> Stream<A>
    where
        A: Data,
        I: Fn(&K) -> A + Send + Sync + 'static,
        F: Fn(&mut A, T) + Send + Sync + 'static;
}

impl<T, K, KF> Reduce<T, K> for KeyedStream<T, K, KF>
where
    T: Data,
    K: Hash + Eq + Send + 'static,
    KF: Fn(&T) -> K + Send + Sync + 'static,
{
    fn reduce<A, I, F>(&self, name: &str, init: I, fold: F) -> Stream<A>
    where
        A: Data,
        I: Fn(&K) -> A + Send + Sync + 'static,
        F: Fn(&mut A, T) + Send + Sync + 'static,
    {
        let key = self.key_fn();
        let init = Arc::new(init);
        let fold = Arc::new(fold);
        self.unary(name, move |_| ReduceOperator {
            key: key.clone(),
            init: init.clone(),
            fold: fold.clone(),
            _t: PhantomData,
        })
    }
}

/// The operator behind [`Reduce::reduce`].
pub struct ReduceOperator<T, K, A, KF, I, F> {
    key: Arc<KF>,
    init: Arc<I>,
    fold: Arc<F>,
    _t: PhantomData<fn(T, K) -> A>,
}

impl<T, K, A, KF, I, F> Operator for ReduceOperator<T, K, A, KF, I, F>
where
    T: Data,
    K: Hash + Eq + Send + 'static,
    A: Data,
    KF: Fn(&T) -> K + Send + Sync + 'static,
    I: Fn(&K) -> A + Send + Sync + 'static,
    F: Fn(&mut A, T) + Send + Sync + 'static,
{
    type In = T;
    type Out = A;
    type State = KeyedState<K, A>;

    fn on_batch(&mut self, batch: &mut Vec<T>, cx: &mut Context<'_, A, KeyedState<K, A>>) {
        for record in batch.drain(..) {
            let key = (self.key)(&record);
            let init = &self.init;
            let acc = cx.state().get_or_insert_with_key(key, |k| init(k));
            (self.fold)(acc, record);
            let updated = acc.clone();
            cx.emit(updated);
        }
    }
}

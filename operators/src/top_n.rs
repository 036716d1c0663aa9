//! `top_n`: the best `n` records per key, maintained incrementally.

use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use rheo_engine::operator::{Context, Data, Operator};
use rheo_engine::state::KeyedState;
use rheo_engine::{KeyedStream, Stream};

/// Keeps the top records per key.
pub trait TopN<T, K> {
    /// Adds a keyed stage keeping, per key, the `n` records with the highest `score` (earlier
    /// records win ties), and emitting `(key, top)` — best first — whenever a record enters it.
    /// For a global top-n, key by a constant.
    ///
    /// ```
    /// use rheo_engine::{JobOptions, PipelineBuilder};
    /// use rheo_operators::prelude::*;
    ///
    /// let builder = PipelineBuilder::new();
    /// let out = builder
    ///     .source("bids", IterSource::new([("a", 5u32), ("a", 9), ("a", 1), ("a", 7)]))
    ///     .key_by(|b: &(&str, u32)| b.0)
    ///     .top_n("best-2", 2, |b: &(&str, u32)| b.1)
    ///     .collect("out");
    /// builder.build()?.run(JobOptions::default())?;
    /// let updates = out.take();
    /// assert_eq!(updates.last().unwrap().1, vec![("a", 9), ("a", 7)]);
    /// assert_eq!(updates.len(), 3); // ("a", 1) never entered the top 2
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn top_n<S, F>(&self, name: &str, n: usize, score: F) -> Stream<(K, Vec<T>)>
    where
        S: Ord + 'static,
        F: Fn(&T) -> S + Send + Sync + 'static;
}

impl<T, K, KF> TopN<T, K> for KeyedStream<T, K, KF>
where
    T: Data,
    K: Data + Hash + Eq,
    KF: Fn(&T) -> K + Send + Sync + 'static,
{
    fn top_n<S, F>(&self, name: &str, n: usize, score: F) -> Stream<(K, Vec<T>)>
    where
        S: Ord + 'static,
        F: Fn(&T) -> S + Send + Sync + 'static,
    {
        let key = self.key_fn();
        let score = Arc::new(score);
        self.unary(name, move |_| TopNOperator {
            key: key.clone(),
            score: score.clone(),
            n,
            _t: PhantomData,
        })
    }
}

/// The operator behind [`TopN::top_n`].
pub struct TopNOperator<T, K, KF, F> {
    key: Arc<KF>,
    score: Arc<F>,
    n: usize,
    _t: PhantomData<fn(T) -> K>,
}

impl<T, K, KF, S, F> Operator for TopNOperator<T, K, KF, F>
where
    T: Data,
    K: Data + Hash + Eq,
    KF: Fn(&T) -> K + Send + Sync + 'static,
    S: Ord + 'static,
    F: Fn(&T) -> S + Send + Sync + 'static,
{
    type In = T;
    type Out = (K, Vec<T>);
    type State = KeyedState<K, Vec<T>>;

    fn on_batch(&mut self, batch: &mut Vec<T>, cx: &mut Context<'_, Self::Out, Self::State>) {
        let score = &*self.score;
        for record in batch.drain(..) {
            let key = (self.key)(&record);
            let top = cx.state().get_or_insert_with(key.clone(), Vec::new);
            let s = score(&record);
            // First position whose score is lower: equal scores keep arrival order.
            let at = top.partition_point(|t| score(t) >= s);
            if at >= self.n {
                continue;
            }
            top.insert(at, record);
            top.truncate(self.n);
            let snapshot = top.clone();
            cx.emit((key, snapshot));
        }
    }
}

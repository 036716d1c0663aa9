//! `aggregate`: incremental accumulators per key, and the [`Aggregator`] interface that
//! windows and the combiner share.

use std::hash::Hash;
use std::marker::PhantomData;
use std::ops::Add;
use std::sync::Arc;

use rheo_engine::operator::{Context, Data, Operator};
use rheo_engine::state::KeyedState;
use rheo_engine::{KeyedStream, Stream};

/// The record-independent half of an aggregation: accumulators that start empty, merge, and
/// yield a result. What a stage merging partial accumulators needs.
pub trait Merge: Send + Sync + 'static {
    /// The running state.
    type Acc: Data;
    /// The result.
    type Out: Data;
    /// An empty accumulator.
    fn init(&self) -> Self::Acc;
    /// Merges a partial accumulator into `acc`.
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc);
    /// The result so far.
    fn result(&self, acc: &Self::Acc) -> Self::Out;
}

/// An incremental aggregation of records of type `T`: records are added to an accumulator one
/// at a time, partial accumulators merge (so a combiner can pre-aggregate), and the result is
/// read at any time.
pub trait Aggregator<T>: Merge {
    /// Adds one record.
    fn add(&self, acc: &mut Self::Acc, record: &T);
}

/// Counts records.
#[derive(Debug, Clone, Copy, Default)]
pub struct Count;

impl Merge for Count {
    type Acc = u64;
    type Out = u64;
    fn init(&self) -> u64 {
        0
    }
    fn merge(&self, acc: &mut u64, other: u64) {
        *acc += other;
    }
    fn result(&self, acc: &u64) -> u64 {
        *acc
    }
}

impl<T> Aggregator<T> for Count {
    fn add(&self, acc: &mut u64, _: &T) {
        *acc += 1;
    }
}

/// Sums a value taken from each record.
pub struct Sum<F, N> {
    value: F,
    _n: PhantomData<fn() -> N>,
}

/// Sums `value(record)`.
pub fn sum<T, N, F: Fn(&T) -> N>(value: F) -> Sum<F, N> {
    Sum {
        value,
        _n: PhantomData,
    }
}

impl<F, N> Merge for Sum<F, N>
where
    N: Data + Default + Add<Output = N> + Copy,
    F: Send + Sync + 'static,
{
    type Acc = N;
    type Out = N;
    fn init(&self) -> N {
        N::default()
    }
    fn merge(&self, acc: &mut N, other: N) {
        *acc = *acc + other;
    }
    fn result(&self, acc: &N) -> N {
        *acc
    }
}

impl<T, N, F> Aggregator<T> for Sum<F, N>
where
    N: Data + Default + Add<Output = N> + Copy,
    F: Fn(&T) -> N + Send + Sync + 'static,
{
    fn add(&self, acc: &mut N, record: &T) {
        *acc = *acc + (self.value)(record);
    }
}

/// The largest value taken from each record.
pub struct Max<F, N> {
    value: F,
    _n: PhantomData<fn() -> N>,
}

/// The largest `value(record)` (None before the first record).
pub fn max<T, N, F: Fn(&T) -> N>(value: F) -> Max<F, N> {
    Max {
        value,
        _n: PhantomData,
    }
}

impl<F, N> Merge for Max<F, N>
where
    N: Data + Ord,
    F: Send + Sync + 'static,
{
    type Acc = Option<N>;
    type Out = Option<N>;
    fn init(&self) -> Option<N> {
        None
    }
    fn merge(&self, acc: &mut Option<N>, other: Option<N>) {
        if let Some(v) = other
            && acc.as_ref().is_none_or(|a| v > *a)
        {
            *acc = Some(v);
        }
    }
    fn result(&self, acc: &Option<N>) -> Option<N> {
        acc.clone()
    }
}

impl<T, N, F> Aggregator<T> for Max<F, N>
where
    N: Data + Ord,
    F: Fn(&T) -> N + Send + Sync + 'static,
{
    fn add(&self, acc: &mut Option<N>, record: &T) {
        let v = (self.value)(record);
        if acc.as_ref().is_none_or(|a| v > *a) {
            *acc = Some(v);
        }
    }
}

/// The mean of a value taken from each record.
pub struct Mean<F> {
    value: F,
}

/// The mean of `value(record)` (0 before the first record).
pub fn mean<T, F: Fn(&T) -> f64>(value: F) -> Mean<F> {
    Mean { value }
}

impl<F: Send + Sync + 'static> Merge for Mean<F> {
    type Acc = (f64, u64);
    type Out = f64;
    fn init(&self) -> (f64, u64) {
        (0.0, 0)
    }
    fn merge(&self, acc: &mut (f64, u64), other: (f64, u64)) {
        acc.0 += other.0;
        acc.1 += other.1;
    }
    fn result(&self, acc: &(f64, u64)) -> f64 {
        if acc.1 == 0 {
            0.0
        } else {
            acc.0 / acc.1 as f64
        }
    }
}

impl<T, F: Fn(&T) -> f64 + Send + Sync + 'static> Aggregator<T> for Mean<F> {
    fn add(&self, acc: &mut (f64, u64), record: &T) {
        acc.0 += (self.value)(record);
        acc.1 += 1;
    }
}

/// Two aggregations side by side (e.g. `(Count, sum(..))`).
impl<A: Merge, B: Merge> Merge for (A, B) {
    type Acc = (A::Acc, B::Acc);
    type Out = (A::Out, B::Out);
    fn init(&self) -> Self::Acc {
        (self.0.init(), self.1.init())
    }
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        self.0.merge(&mut acc.0, other.0);
        self.1.merge(&mut acc.1, other.1);
    }
    fn result(&self, acc: &Self::Acc) -> Self::Out {
        (self.0.result(&acc.0), self.1.result(&acc.1))
    }
}

impl<T, A: Aggregator<T>, B: Aggregator<T>> Aggregator<T> for (A, B) {
    fn add(&self, acc: &mut Self::Acc, record: &T) {
        self.0.add(&mut acc.0, record);
        self.1.add(&mut acc.1, record);
    }
}

/// Aggregates the `(key, partial)` pairs a [`combine`](crate::combine) stage emits by merging
/// the partials with `A`: how a window stage after a combiner finishes the aggregation.
///
/// ```
/// use rheo_operators::aggregate::{Aggregator, Count, Merge, Partials};
///
/// let merged = Partials(Count);
/// let mut acc = merged.init();
/// merged.add(&mut acc, &("home", 3));
/// merged.add(&mut acc, &("home", 4));
/// assert_eq!(merged.result(&acc), 7);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Partials<A>(pub A);

impl<A: Merge> Merge for Partials<A> {
    type Acc = A::Acc;
    type Out = A::Out;
    fn init(&self) -> A::Acc {
        self.0.init()
    }
    fn merge(&self, acc: &mut A::Acc, other: A::Acc) {
        self.0.merge(acc, other)
    }
    fn result(&self, acc: &A::Acc) -> A::Out {
        self.0.result(acc)
    }
}

impl<K, A: Merge> Aggregator<(K, A::Acc)> for Partials<A> {
    fn add(&self, acc: &mut A::Acc, record: &(K, A::Acc)) {
        self.0.merge(acc, record.1.clone())
    }
}

/// Keeps an incremental aggregate per key.
pub trait Aggregate<T, K> {
    /// Adds a keyed stage that adds each record to its key's accumulator (kept in keyed state)
    /// and emits `(key, result)` after every update.
    ///
    /// ```
    /// use rheo_engine::{JobOptions, PipelineBuilder};
    /// use rheo_operators::prelude::*;
    /// use rheo_operators::aggregate::sum;
    ///
    /// let builder = PipelineBuilder::new();
    /// let out = builder
    ///     .source("sales", IterSource::new([("tea", 3u64), ("jam", 1), ("tea", 2)]))
    ///     .key_by(|s: &(&str, u64)| s.0)
    ///     .aggregate("total", sum(|s: &(&str, u64)| s.1))
    ///     .collect("out");
    /// builder.build()?.run(JobOptions::default())?;
    /// assert_eq!(out.take(), vec![("tea", 3), ("jam", 1), ("tea", 5)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn aggregate<A: Aggregator<T>>(&self, name: &str, aggregator: A) -> Stream<(K, A::Out)>;
}

impl<T, K, KF> Aggregate<T, K> for KeyedStream<T, K, KF>
where
    T: Data,
    K: Data + Hash + Eq,
    KF: Fn(&T) -> K + Send + Sync + 'static,
{
    fn aggregate<A: Aggregator<T>>(&self, name: &str, aggregator: A) -> Stream<(K, A::Out)> {
        let key = self.key_fn();
        let aggregator = Arc::new(aggregator);
        self.unary(name, move |_| AggregateOperator {
            key: key.clone(),
            aggregator: aggregator.clone(),
            _t: PhantomData,
        })
    }
}

/// The operator behind [`Aggregate::aggregate`].
pub struct AggregateOperator<T, K, KF, A> {
    key: Arc<KF>,
    aggregator: Arc<A>,
    _t: PhantomData<fn(T) -> K>,
}

impl<T, K, KF, A> Operator for AggregateOperator<T, K, KF, A>
where
    T: Data,
    K: Data + Hash + Eq,
    KF: Fn(&T) -> K + Send + Sync + 'static,
    A: Aggregator<T>,
{
    type In = T;
    type Out = (K, A::Out);
    type State = KeyedState<K, A::Acc>;

    fn on_batch(&mut self, batch: &mut Vec<T>, cx: &mut Context<'_, Self::Out, Self::State>) {
        let agg = &*self.aggregator;
        for record in batch.drain(..) {
            let key = (self.key)(&record);
            let acc = cx.state().get_or_insert_with(key.clone(), || agg.init());
            agg.add(acc, &record);
            let out = agg.result(acc);
            cx.emit((key, out));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_aggregators_add_and_merge() {
        let s = sum(|x: &u64| *x);
        let mut a = s.init();
        s.add(&mut a, &3);
        let mut b = s.init();
        s.add(&mut b, &4);
        s.merge(&mut a, b);
        assert_eq!(s.result(&a), 7);

        let m = max(|x: &i32| *x);
        let mut a = m.init();
        m.add(&mut a, &-2);
        m.merge(&mut a, Some(5));
        m.merge(&mut a, None);
        assert_eq!(m.result(&a), Some(5));

        let avg = mean(|x: &u32| f64::from(*x));
        let mut a = avg.init();
        for x in [1, 2, 6] {
            avg.add(&mut a, &x);
        }
        assert_eq!(avg.result(&a), 3.0);
        assert_eq!(Count.result(&4), 4);

        let both = (Count, sum(|x: &u64| *x));
        let mut a = Merge::init(&both);
        both.add(&mut a, &5);
        both.add(&mut a, &6);
        assert_eq!(both.result(&a), (2, 11));
    }
}

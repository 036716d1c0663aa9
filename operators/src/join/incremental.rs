//! `join`: an unbounded incremental equi-join of two keyed streams.

use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use rheo_engine::operator::{Context, Data, Operator};
use rheo_engine::state::KeyedState;
use rheo_engine::{Either, KeyedStream, Stream};

/// Joins over everything seen.
pub trait IncrementalJoin<L, K> {
    /// Adds a keyed two-input stage that keeps every record of both sides in keyed state and
    /// emits `(key, left, right)` for each new pair as soon as its second record arrives
    /// (Nexmark q3's join of persons and auctions). State grows with the input; filter first.
    ///
    /// ```
    /// use rheo_engine::{JobOptions, PipelineBuilder};
    /// use rheo_operators::prelude::*;
    /// use rheo_operators::join::IncrementalJoin;
    ///
    /// let builder = PipelineBuilder::new();
    /// let people = builder
    ///     .source("people", IterSource::new([(7u32, "ann"), (8, "bob")]))
    ///     .key_by(|p: &(u32, &str)| p.0);
    /// let auctions = builder
    ///     .source("auctions", IterSource::new([(100u32, 7u32), (101, 7), (102, 9)]))
    ///     .key_by(|a: &(u32, u32)| a.1);
    /// let sellers = people.join(&auctions, "seller-of").collect("out");
    /// builder.build()?.run(JobOptions::default())?;
    /// let mut got: Vec<_> = sellers.take().into_iter().map(|(_, p, a)| (p.1, a.0)).collect();
    /// got.sort();
    /// assert_eq!(got, vec![("ann", 100), ("ann", 101)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn join<R, KR>(&self, other: &KeyedStream<R, K, KR>, name: &str) -> Stream<(K, L, R)>
    where
        R: Data,
        KR: Fn(&R) -> K + Send + Sync + 'static;
}

impl<L, K, KL> IncrementalJoin<L, K> for KeyedStream<L, K, KL>
where
    L: Data,
    K: Data + Hash + Eq,
    KL: Fn(&L) -> K + Send + Sync + 'static,
{
    fn join<R, KR>(&self, other: &KeyedStream<R, K, KR>, name: &str) -> Stream<(K, L, R)>
    where
        R: Data,
        KR: Fn(&R) -> K + Send + Sync + 'static,
    {
        let (left_key, right_key) = (self.key_fn(), other.key_fn());
        self.binary(other, name, move |_| JoinOperator {
            left_key: left_key.clone(),
            right_key: right_key.clone(),
            _t: PhantomData,
        })
    }
}

/// The operator behind [`IncrementalJoin::join`]; per key, both sides' records.
pub struct JoinOperator<L, R, K, KL, KR> {
    left_key: Arc<KL>,
    right_key: Arc<KR>,
    _t: PhantomData<fn(L, R) -> K>,
}

impl<L, R, K, KL, KR> Operator for JoinOperator<L, R, K, KL, KR>
where
    L: Data,
    R: Data,
    K: Data + Hash + Eq,
    KL: Fn(&L) -> K + Send + Sync + 'static,
    KR: Fn(&R) -> K + Send + Sync + 'static,
{
    type In = Either<L, R>;
    type Out = (K, L, R);
    type State = KeyedState<K, (Vec<L>, Vec<R>)>;

    fn on_batch(
        &mut self,
        batch: &mut Vec<Either<L, R>>,
        cx: &mut Context<'_, Self::Out, Self::State>,
    ) {
        let (state, mut out) = cx.split();
        for record in batch.drain(..) {
            match record {
                Either::Left(l) => {
                    let key = (self.left_key)(&l);
                    let sides = state.get_or_insert_with(key.clone(), Default::default);
                    for r in &sides.1 {
                        out.emit((key.clone(), l.clone(), r.clone()));
                    }
                    sides.0.push(l);
                }
                Either::Right(r) => {
                    let key = (self.right_key)(&r);
                    let sides = state.get_or_insert_with(key.clone(), Default::default);
                    for l in &sides.0 {
                        out.emit((key.clone(), l.clone(), r.clone()));
                    }
                    sides.1.push(r);
                }
            }
        }
    }
}

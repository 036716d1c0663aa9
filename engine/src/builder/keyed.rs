//! [`KeyedStream`]: a stream partitioned by key, for stages with keyed state.

use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use super::*;
use crate::graph::{Rehash, TypedEdge};
use crate::metrics::StageKind;
use crate::operator::{Data, Operator, WorkerInfo};
use crate::partition::{Partition, key_hash};

/// A stream partitioned by key: the next stage may keep [`KeyedState`](crate::state::KeyedState).
pub struct KeyedStream<T, K, F> {
    pub(super) stream: Stream<T>,
    pub(super) key: Arc<F>,
    pub(super) _k: PhantomData<fn() -> K>,
}

impl<T, K, F> Clone for KeyedStream<T, K, F> {
    fn clone(&self) -> Self {
        KeyedStream {
            stream: self.stream.clone(),
            key: self.key.clone(),
            _k: PhantomData,
        }
    }
}

impl<T, K, F> KeyedStream<T, K, F>
where
    T: Data,
    K: Hash + Eq + Send + 'static,
    F: Fn(&T) -> K + Send + Sync + 'static,
{
    /// The key function, for operators that need the key of a record.
    pub fn key_fn(&self) -> Arc<F> {
        self.key.clone()
    }

    /// The stream before partitioning.
    pub fn stream(&self) -> &Stream<T> {
        &self.stream
    }

    /// Adds a keyed stage running `make(worker)` on each worker; its input is hash-partitioned
    /// by the key, and its state is split by key group.
    pub fn unary<Op, G>(&self, name: &str, make: G) -> Stream<Op::Out>
    where
        Op: Operator<In = T>,
        G: Fn(&WorkerInfo) -> Op + Send + Sync + 'static,
    {
        let id = add_operator_stage::<Op, G>(&self.stream.graph, name, StageKind::Operator, make);
        let key = self.key.clone();
        self.connect(id, identity::<T>, Arc::new(move |t: &T| key_hash(&key(t))));
        keyed_stage_limits(&self.stream.graph, id);
        Stream::new(self.stream.graph.clone(), vec![Port::plain(id)])
    }

    /// Adds a keyed stage with two inputs partitioned by the same key type (a join).
    pub fn binary<R, F2, Op, G>(
        &self,
        other: &KeyedStream<R, K, F2>,
        name: &str,
        make: G,
    ) -> Stream<Op::Out>
    where
        R: Data,
        F2: Fn(&R) -> K + Send + Sync + 'static,
        Op: Operator<In = Either<T, R>>,
        G: Fn(&WorkerInfo) -> Op + Send + Sync + 'static,
    {
        let id = add_operator_stage::<Op, G>(&self.stream.graph, name, StageKind::Operator, make);
        // Either side's key, for a hand-over that re-partitions queued records.
        let (left, right) = (self.key.clone(), other.key.clone());
        let rehash: Rehash<Either<T, R>> = Arc::new(move |e: &Either<T, R>| match e {
            Either::Left(t) => key_hash(&left(t)),
            Either::Right(r) => key_hash(&right(r)),
        });
        self.connect(id, Either::<T, R>::Left, rehash.clone());
        other.connect(id, Either::<T, R>::Right, rehash);
        keyed_stage_limits(&self.stream.graph, id);
        Stream::new(self.stream.graph.clone(), vec![Port::plain(id)])
    }

    pub(super) fn connect<I: Data, C>(&self, to: usize, convert: C, rehash: Rehash<I>)
    where
        C: Fn(T) -> I + Clone + Send + Sync + 'static,
    {
        let mut g = self.stream.graph.borrow_mut();
        for port in &self.stream.ports {
            let key = self.key.clone();
            let hash = move |t: &T| key_hash(&key(t));
            let factory = TypedEdge::<T, I, C, _> {
                partition: Partition::Hash,
                convert: convert.clone(),
                hash: Some(hash),
                rehash: Some(rehash.clone()),
                _t: PhantomData,
            };
            g.add_edge(
                port.stage,
                to,
                Partition::Hash,
                port.factory(Box::new(factory)),
            );
        }
    }
}

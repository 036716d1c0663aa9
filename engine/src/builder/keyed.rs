//! [`KeyedStream`]: a stream partitioned by key, for stages with keyed state.

use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use super::*;
use crate::graph::TypedEdge;
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
        self.connect(id, identity::<T>);
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
        self.connect(id, Either::<T, R>::Left);
        other.connect(id, Either::<T, R>::Right);
        keyed_stage_limits(&self.stream.graph, id);
        Stream::new(self.stream.graph.clone(), vec![Port::plain(id)])
    }

    pub(super) fn connect<I: Data, C>(&self, to: usize, convert: C)
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

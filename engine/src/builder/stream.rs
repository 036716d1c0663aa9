//! [`Stream`]: the records of one stage (or several), and the operators that add stages.

use std::hash::Hash;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use crate::error::BuildError;
use crate::graph::{EdgeFactory, TypedEdge, ViewEdge};
use crate::metrics::StageKind;
use crate::operator::{Data, Operator, Sink, SinkOperator, WorkerInfo};
use crate::partition::Partition;

use super::*;

/// Turns an edge factory for a view's records into one for the stage's own records.
pub(super) type Wrap = Rc<dyn Fn(Box<dyn EdgeFactory>) -> Box<dyn EdgeFactory>>;

/// One producing stage of a stream: the stage, the partitioning of the next edge, and the view
/// (a selection of the stage's output) if the stream is one.
#[derive(Clone)]
pub(super) struct Port {
    pub(super) stage: usize,
    pub(super) partition: Partition,
    pub(super) view: Option<Wrap>,
}

impl Port {
    pub(super) fn plain(stage: usize) -> Port {
        Port {
            stage,
            partition: Partition::Forward,
            view: None,
        }
    }

    pub(super) fn factory(&self, typed: Box<dyn EdgeFactory>) -> Box<dyn EdgeFactory> {
        match &self.view {
            Some(wrap) => wrap(typed),
            None => typed,
        }
    }
}

/// The records produced by one stage (or several, after a union), of type `T`.
pub struct Stream<T> {
    pub(super) graph: Shared,
    pub(super) ports: Vec<Port>,
    pub(super) _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Stream<T> {
    fn clone(&self) -> Self {
        Stream {
            graph: self.graph.clone(),
            ports: self.ports.clone(),
            _t: PhantomData,
        }
    }
}

impl<T: Data> Stream<T> {
    pub(super) fn new(graph: Shared, ports: Vec<Port>) -> Stream<T> {
        Stream {
            graph,
            ports,
            _t: PhantomData,
        }
    }

    pub(super) fn with_partition(&self, partition: Partition) -> Stream<T> {
        let ports = self
            .ports
            .iter()
            .map(|p| Port {
                partition,
                ..p.clone()
            })
            .collect();
        Stream::new(self.graph.clone(), ports)
    }

    /// A view of this stream: the records `select` maps to `Some`, converted. No stage is
    /// added; each edge from the view filters its upstream's output as it sends. Side outputs
    /// (an operator emitting [`Either`]) are read through views ([`Stream::left`],
    /// [`Stream::right`]).
    ///
    /// ```
    /// use rheo_engine::{JobOptions, PipelineBuilder};
    /// use rheo_engine::source::IterSource;
    /// let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    /// let s = seen.clone();
    /// let builder = PipelineBuilder::new();
    /// builder
    ///     .source("n", IterSource::new(0..6u32))
    ///     .select(|x: u32| (x % 2 == 0).then(|| x * 10))
    ///     .sink_fn("even", move |x: u32| s.lock().unwrap().push(x));
    /// builder.build()?.run(JobOptions::default())?;
    /// assert_eq!(*seen.lock().unwrap(), vec![0, 20, 40]);
    /// # Ok::<(), rheo_engine::JobError>(())
    /// ```
    pub fn select<U, F>(&self, select: F) -> Stream<U>
    where
        U: Data,
        F: Fn(T) -> Option<U> + Send + Sync + 'static,
    {
        let select = Arc::new(select);
        let ports = self
            .ports
            .iter()
            .map(|p| {
                let outer = p.clone();
                let select = select.clone();
                let wrap: Wrap = Rc::new(move |inner| {
                    let view: Box<dyn EdgeFactory> = Box::new(ViewEdge::<T, U, F> {
                        inner,
                        select: select.clone(),
                        _t: PhantomData,
                    });
                    outer.factory(view)
                });
                Port {
                    stage: p.stage,
                    partition: p.partition,
                    view: Some(wrap),
                }
            })
            .collect();
        Stream::new(self.graph.clone(), ports)
    }

    /// The next edge sends whole batches round-robin to the next stage's workers.
    pub fn rebalance(&self) -> Stream<T> {
        self.with_partition(Partition::Rebalance)
    }

    /// The next edge sends every batch to every worker of the next stage.
    pub fn broadcast(&self) -> Stream<T> {
        self.with_partition(Partition::Broadcast)
    }

    /// The next edge connects worker `i` to worker `i` (round-robin when the parallelisms differ).
    pub fn forward(&self) -> Stream<T> {
        self.with_partition(Partition::Forward)
    }

    /// Partitions the stream by `key`: the next stage receives every record of a key on the
    /// same worker and may keep keyed state.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use rheo_engine::operator::{Context, Operator};
    /// use rheo_engine::source::IterSource;
    /// use rheo_engine::{JobOptions, PipelineBuilder};
    ///
    /// /// Tags each word with the worker that saw it.
    /// struct Where;
    /// impl Operator for Where {
    ///     type In = &'static str;
    ///     type Out = (&'static str, usize);
    ///     type State = ();
    ///     fn on_batch(&mut self, batch: &mut Vec<&'static str>, cx: &mut Context<'_, (&'static str, usize), ()>) {
    ///         let me = cx.worker().index;
    ///         batch.drain(..).for_each(|w| cx.emit((w, me)));
    ///     }
    /// }
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let s = seen.clone();
    /// let builder = PipelineBuilder::new();
    /// builder
    ///     .source("words", IterSource::new(["a", "b", "a", "c", "a", "b"]))
    ///     .key_by(|w: &&str| *w)
    ///     .unary("where", |_| Where)
    ///     .parallelism(3)
    ///     .sink_fn("out", move |x| s.lock().unwrap().push(x));
    /// builder.build()?.run(JobOptions::default())?;
    /// // Every "a" went to the same worker, as did every "b".
    /// let seen = seen.lock().unwrap();
    /// let workers_of = |w: &str| {
    ///     let mut ws: Vec<usize> = seen.iter().filter(|(x, _)| *x == w).map(|(_, i)| *i).collect();
    ///     ws.dedup();
    ///     ws.len()
    /// };
    /// assert_eq!((workers_of("a"), workers_of("b")), (1, 1));
    /// # Ok::<(), rheo_engine::JobError>(())
    /// ```
    pub fn key_by<K, F>(&self, key: F) -> KeyedStream<T, K, F>
    where
        K: Hash + Eq + Send + 'static,
        F: Fn(&T) -> K + Send + Sync + 'static,
    {
        KeyedStream {
            stream: self.clone(),
            key: Arc::new(key),
            _k: PhantomData,
        }
    }

    /// The records of both streams, as one stream (no extra stage: the next stage gets one
    /// input edge from each).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use rheo_engine::source::IterSource;
    /// use rheo_engine::{JobOptions, PipelineBuilder};
    ///
    /// let all = Arc::new(Mutex::new(Vec::new()));
    /// let a = all.clone();
    /// let builder = PipelineBuilder::new();
    /// let odd = builder.source("odd", IterSource::new([1u8, 3, 5]));
    /// let even = builder.source("even", IterSource::new([2u8, 4]));
    /// odd.union(&even).sink_fn("all", move |x| a.lock().unwrap().push(x));
    /// builder.build()?.run(JobOptions::default())?;
    /// let mut all = all.lock().unwrap().clone();
    /// all.sort();
    /// assert_eq!(all, vec![1, 2, 3, 4, 5]);
    /// # Ok::<(), rheo_engine::JobError>(())
    /// ```
    pub fn union(&self, other: &Stream<T>) -> Stream<T> {
        let mut ports = self.ports.clone();
        ports.extend(other.ports.iter().cloned());
        Stream::new(self.graph.clone(), ports)
    }

    pub(super) fn single_stage(&self, what: &'static str) -> Option<usize> {
        match self.ports.as_slice() {
            // A view (a window's results, one side of an `Either`) is still one stage's
            // output: its stage properties are that stage's.
            [port] => Some(port.stage),
            _ => {
                self.graph
                    .borrow_mut()
                    .errors
                    .push(BuildError::AmbiguousStage(what));
                None
            }
        }
    }

    /// Sets the initial parallelism of the stage producing this stream.
    pub fn parallelism(self, parallelism: usize) -> Stream<T> {
        if let Some(stage) = self.single_stage("parallelism") {
            set_parallelism(&self.graph, stage, parallelism);
        }
        self
    }

    /// Sets the largest parallelism a reconfiguration may give the stage producing this stream.
    pub fn max_parallelism(self, max: usize) -> Stream<T> {
        if let Some(stage) = self.single_stage("max_parallelism") {
            set_max_parallelism(&self.graph, stage, max);
        }
        self
    }

    /// Sets the number of key groups of the (keyed) stage producing this stream.
    pub fn key_groups(self, groups: u16) -> Stream<T> {
        if let Some(stage) = self.single_stage("key_groups") {
            let mut g = self.graph.borrow_mut();
            if groups == 0 {
                let name = g.stages[stage].name.to_string();
                g.errors.push(BuildError::OutOfRange {
                    stage: name,
                    field: "key_groups",
                    value: 0,
                    reason: "a keyed stage needs at least one key group".into(),
                });
            } else {
                let s = &mut g.stages[stage];
                s.key_groups = groups;
                s.max_parallelism = s.max_parallelism.min(groups as usize);
            }
        }
        self
    }

    /// The name of the stage producing this stream (None after a union).
    pub fn stage_name(&self) -> Option<String> {
        match self.ports.as_slice() {
            [port] => Some(self.graph.borrow().stages[port.stage].name.to_string()),
            _ => None,
        }
    }

    /// Adds a stateless stage running `make(worker)` on each worker.
    pub fn unary<Op, F>(&self, name: &str, make: F) -> Stream<Op::Out>
    where
        Op: Operator<In = T, State = ()>,
        F: Fn(&WorkerInfo) -> Op + Send + Sync + 'static,
    {
        let id = add_operator_stage::<Op, F>(&self.graph, name, StageKind::Operator, make);
        self.connect(id, identity::<T>);
        Stream::new(self.graph.clone(), vec![Port::plain(id)])
    }

    /// Adds a stage with two inputs: records of this stream arrive as [`Either::Left`], those of
    /// `other` as [`Either::Right`].
    pub fn binary<R, Op, F>(&self, other: &Stream<R>, name: &str, make: F) -> Stream<Op::Out>
    where
        R: Data,
        Op: Operator<In = Either<T, R>, State = ()>,
        F: Fn(&WorkerInfo) -> Op + Send + Sync + 'static,
    {
        let id = add_operator_stage::<Op, F>(&self.graph, name, StageKind::Operator, make);
        self.connect(id, Either::<T, R>::Left);
        other.connect(id, Either::<T, R>::Right);
        Stream::new(self.graph.clone(), vec![Port::plain(id)])
    }

    /// Ends the stream in a sink stage built by `make(worker)` on each worker.
    pub fn sink<S, F>(&self, name: &str, make: F) -> StageRef
    where
        S: Sink<T>,
        F: Fn(&WorkerInfo) -> S + Send + Sync + 'static,
    {
        let make = move |w: &WorkerInfo| SinkOperator {
            sink: make(w),
            _t: PhantomData,
        };
        let id = add_operator_stage(&self.graph, name, StageKind::Sink, make);
        self.connect(id, identity::<T>);
        StageRef {
            graph: self.graph.clone(),
            stage: id,
        }
    }

    /// Ends the stream in a sink calling `f` on every record.
    pub fn sink_fn<F>(&self, name: &str, f: F) -> StageRef
    where
        F: Fn(T) + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        self.sink(name, move |_| FnSink {
            f: f.clone(),
            _t: PhantomData,
        })
    }

    pub(super) fn connect<I: Data, C>(&self, to: usize, convert: C)
    where
        C: Fn(T) -> I + Clone + Send + Sync + 'static,
    {
        let mut g = self.graph.borrow_mut();
        for port in &self.ports {
            let factory = TypedEdge::<T, I, C, fn(&T) -> u64> {
                partition: port.partition,
                convert: convert.clone(),
                hash: None,
                rehash: None,
                _t: PhantomData,
            };
            g.add_edge(
                port.stage,
                to,
                port.partition,
                port.factory(Box::new(factory)),
            );
        }
    }
}

pub(super) fn identity<T>(x: T) -> T {
    x
}

impl<L: Data, R: Data> Stream<Either<L, R>> {
    /// The `Left` records, as a stream (a view: no stage is added).
    pub fn left(&self) -> Stream<L> {
        self.select(|e| match e {
            Either::Left(l) => Some(l),
            Either::Right(_) => None,
        })
    }

    /// The `Right` records, as a stream (a view: no stage is added).
    pub fn right(&self) -> Stream<R> {
        self.select(|e| match e {
            Either::Left(_) => None,
            Either::Right(r) => Some(r),
        })
    }
}

//! The typed pipeline API: [`PipelineBuilder`] makes [`Stream`]s, streams make stages, and
//! [`PipelineBuilder::build`] checks the result into a runnable [`Pipeline`].
//!
//! A stream is the output of one stage (or, after [`Stream::union`], of several). Applying an
//! operator to it adds a stage and an edge from each producing stage. How records cross that
//! edge is chosen on the stream: [`Stream::rebalance`], [`Stream::broadcast`],
//! [`Stream::key_by`] (hash by key, required by stages with keyed state), forward by default.

use std::cell::RefCell;
use std::hash::Hash;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use crate::error::BuildError;
use crate::graph::{
    EdgeFactory, EdgeNode, Runner, StageNode, TypedEdge, TypedOperatorRunner, TypedSourceRunner,
    ViewEdge,
};
use crate::metrics::StageKind;
use crate::operator::{Data, Operator, Sink, SinkOperator, WorkerInfo};
use crate::partition::{DEFAULT_KEY_GROUPS, Partition, key_hash};
use crate::pipeline::Pipeline;
use crate::source::Source;

/// Parallelism ceiling of a stage unless its builder sets one.
pub const DEFAULT_MAX_PARALLELISM: usize = 128;

pub(crate) struct Graph {
    pub stages: Vec<StageNode>,
    pub edges: Vec<EdgeNode>,
    pub errors: Vec<BuildError>,
    pub default_capacity: usize,
    pub default_batch_size: usize,
}

type Shared = Rc<RefCell<Graph>>;

impl Graph {
    fn add_stage(
        &mut self,
        name: &str,
        kind: StageKind,
        parallelism: usize,
        runner: Runner,
    ) -> usize {
        if name.is_empty() || name.contains("->") || name.contains('#') {
            self.errors.push(BuildError::InvalidName(name.to_owned()));
        }
        if self.stages.iter().any(|s| &*s.name == name) {
            self.errors
                .push(BuildError::DuplicateStage(name.to_owned()));
        }
        self.stages.push(StageNode {
            name: name.into(),
            kind,
            inputs: Vec::new(),
            outputs: Vec::new(),
            parallelism,
            max_parallelism: DEFAULT_MAX_PARALLELISM.max(parallelism),
            key_groups: DEFAULT_KEY_GROUPS,
            runner,
        });
        self.stages.len() - 1
    }

    fn add_edge(
        &mut self,
        from: usize,
        to: usize,
        partition: Partition,
        factory: Box<dyn EdgeFactory>,
    ) {
        let base = format!("{}->{}", self.stages[from].name, self.stages[to].name);
        let same = self
            .edges
            .iter()
            .filter(|e| e.from == from && e.to == to)
            .count();
        let name = if same == 0 {
            base
        } else {
            format!("{base}#{}", same + 1)
        };
        let id = self.edges.len();
        self.edges.push(EdgeNode {
            name,
            from,
            to,
            partition,
            factory,
        });
        self.stages[from].outputs.push(id);
        self.stages[to].inputs.push(id);
    }
}

/// Builds a pipeline.
///
/// ```
/// use rheo_engine::{PipelineBuilder, JobOptions};
/// use rheo_engine::source::IterSource;
/// use rheo_engine::operator::{Context, Operator};
///
/// struct AddOne;
/// impl Operator for AddOne {
///     type In = u64;
///     type Out = u64;
///     type State = ();
///     fn on_batch(&mut self, batch: &mut Vec<u64>, cx: &mut Context<'_, u64, ()>) {
///         batch.drain(..).for_each(|x| cx.emit(x + 1));
///     }
/// }
///
/// let total = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
/// let sum = total.clone();
/// let builder = PipelineBuilder::new();
/// builder
///     .source("numbers", IterSource::new(0..100u64))
///     .unary("add-one", |_| AddOne)
///     .sink_fn("sum", move |x: u64| { sum.fetch_add(x, std::sync::atomic::Ordering::Relaxed); });
/// let report = builder.build()?.run(JobOptions::default())?;
/// assert_eq!(total.load(std::sync::atomic::Ordering::Relaxed), (1..=100).sum::<u64>());
/// assert_eq!(report.stage("sum").map(|s| s.records_in), Some(100));
/// # Ok::<(), rheo_engine::JobError>(())
/// ```
pub struct PipelineBuilder {
    graph: Shared,
}

impl Default for PipelineBuilder {
    fn default() -> Self {
        PipelineBuilder::new()
    }
}

impl PipelineBuilder {
    /// An empty pipeline; edges start with 64 batches of 64 records.
    pub fn new() -> PipelineBuilder {
        PipelineBuilder {
            graph: Rc::new(RefCell::new(Graph {
                stages: Vec::new(),
                edges: Vec::new(),
                errors: Vec::new(),
                default_capacity: 64,
                default_batch_size: 64,
            })),
        }
    }

    /// Sets the initial buffer capacity (batches) and batch size (records) of every edge.
    pub fn edge_defaults(self, capacity: usize, batch_size: usize) -> PipelineBuilder {
        {
            let mut g = self.graph.borrow_mut();
            g.default_capacity = capacity;
            g.default_batch_size = batch_size;
        }
        self
    }

    /// A source stage with one worker.
    pub fn source<S: Source>(&self, name: &str, source: S) -> Stream<S::Out> {
        self.add_source(name, vec![source])
    }

    /// A source stage with `parallelism` workers; `make(i, parallelism)` builds worker `i`'s
    /// source (each should produce its own share of the input). Source parallelism is fixed
    /// for the life of the job.
    pub fn parallel_source<S: Source>(
        &self,
        name: &str,
        parallelism: usize,
        mut make: impl FnMut(usize, usize) -> S,
    ) -> Stream<S::Out> {
        if parallelism == 0 {
            self.graph.borrow_mut().errors.push(BuildError::OutOfRange {
                stage: name.to_owned(),
                field: "parallelism",
                value: 0,
                reason: "a source needs at least one worker".into(),
            });
        }
        let p = parallelism.max(1);
        self.add_source(name, (0..p).map(|i| make(i, p)).collect())
    }

    fn add_source<S: Source>(&self, name: &str, instances: Vec<S>) -> Stream<S::Out> {
        let p = instances.len();
        let runner = Runner::Source(Box::new(TypedSourceRunner {
            instances: parking_lot::Mutex::new(instances.into_iter().map(Some).collect()),
        }));
        let id = self
            .graph
            .borrow_mut()
            .add_stage(name, StageKind::Source, p, runner);
        Stream::new(self.graph.clone(), vec![Port::plain(id)])
    }

    /// Checks the pipeline and returns it, ready to start.
    pub fn build(self) -> Result<Pipeline, BuildError> {
        let graph = Rc::try_unwrap(self.graph)
            .map(RefCell::into_inner)
            .unwrap_or_else(|shared| {
                // Streams still alive share the graph: take its contents.
                let mut g = shared.borrow_mut();
                Graph {
                    stages: std::mem::take(&mut g.stages),
                    edges: std::mem::take(&mut g.edges),
                    errors: std::mem::take(&mut g.errors),
                    default_capacity: g.default_capacity,
                    default_batch_size: g.default_batch_size,
                }
            });
        if let Some(e) = graph.errors.into_iter().next() {
            return Err(e);
        }
        if !graph.stages.iter().any(|s| s.kind == StageKind::Source) {
            return Err(BuildError::NoSource);
        }
        for (field, value) in [
            ("capacity", graph.default_capacity),
            ("batch_size", graph.default_batch_size),
        ] {
            if value == 0 {
                return Err(BuildError::OutOfRange {
                    stage: "(edge defaults)".into(),
                    field,
                    value: 0,
                    reason: "must be at least 1".into(),
                });
            }
        }
        Ok(Pipeline::new(
            graph.stages,
            graph.edges,
            graph.default_capacity,
            graph.default_batch_size,
        ))
    }
}

/// Turns an edge factory for a view's records into one for the stage's own records.
type Wrap = Rc<dyn Fn(Box<dyn EdgeFactory>) -> Box<dyn EdgeFactory>>;

/// One producing stage of a stream: the stage, the partitioning of the next edge, and the view
/// (a selection of the stage's output) if the stream is one.
#[derive(Clone)]
struct Port {
    stage: usize,
    partition: Partition,
    view: Option<Wrap>,
}

impl Port {
    fn plain(stage: usize) -> Port {
        Port {
            stage,
            partition: Partition::Forward,
            view: None,
        }
    }

    fn factory(&self, typed: Box<dyn EdgeFactory>) -> Box<dyn EdgeFactory> {
        match &self.view {
            Some(wrap) => wrap(typed),
            None => typed,
        }
    }
}

/// The records produced by one stage (or several, after a union), of type `T`.
pub struct Stream<T> {
    graph: Shared,
    ports: Vec<Port>,
    _t: PhantomData<fn() -> T>,
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
    fn new(graph: Shared, ports: Vec<Port>) -> Stream<T> {
        Stream {
            graph,
            ports,
            _t: PhantomData,
        }
    }

    fn with_partition(&self, partition: Partition) -> Stream<T> {
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

    fn single_stage(&self, what: &'static str) -> Option<usize> {
        match self.ports.as_slice() {
            [port] if port.view.is_none() => Some(port.stage),
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

    fn connect<I: Data, C>(&self, to: usize, convert: C)
    where
        C: Fn(T) -> I + Clone + Send + Sync + 'static,
    {
        let mut g = self.graph.borrow_mut();
        for port in &self.ports {
            let factory = TypedEdge::<T, I, C, fn(&T) -> u64> {
                partition: port.partition,
                convert: convert.clone(),
                hash: None,
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

fn identity<T>(x: T) -> T {
    x
}

fn set_parallelism(graph: &Shared, stage: usize, parallelism: usize) {
    let mut g = graph.borrow_mut();
    let s = &g.stages[stage];
    if s.kind == StageKind::Source {
        let name = s.name.to_string();
        g.errors.push(BuildError::OutOfRange {
            stage: name,
            field: "parallelism",
            value: parallelism as u64,
            reason: "set a source's parallelism with PipelineBuilder::parallel_source".into(),
        });
    } else if parallelism == 0 || parallelism > s.max_parallelism {
        let (name, max) = (s.name.to_string(), s.max_parallelism);
        g.errors.push(BuildError::OutOfRange {
            stage: name,
            field: "parallelism",
            value: parallelism as u64,
            reason: format!("must be in 1..={max}"),
        });
    } else {
        g.stages[stage].parallelism = parallelism;
    }
}

fn set_max_parallelism(graph: &Shared, stage: usize, max: usize) {
    let mut g = graph.borrow_mut();
    let s = &g.stages[stage];
    let limit = keyed_limit(&g, stage);
    if max == 0 || max < s.parallelism || max > limit {
        let name = s.name.to_string();
        let parallelism = s.parallelism;
        g.errors.push(BuildError::OutOfRange {
            stage: name,
            field: "max_parallelism",
            value: max as u64,
            reason: format!(
                "must be at least the parallelism ({parallelism}) and at most {limit} (key groups)"
            ),
        });
    } else {
        g.stages[stage].max_parallelism = max;
    }
}

/// The parallelism ceiling that key groups impose on a stage with hash inputs.
fn keyed_limit(g: &Graph, stage: usize) -> usize {
    let s = &g.stages[stage];
    let keyed = s
        .inputs
        .iter()
        .any(|&e| g.edges[e].partition == Partition::Hash);
    if keyed {
        s.key_groups as usize
    } else {
        usize::MAX
    }
}

fn add_operator_stage<Op, F>(graph: &Shared, name: &str, kind: StageKind, make: F) -> usize
where
    Op: Operator,
    F: Fn(&WorkerInfo) -> Op + Send + Sync + 'static,
{
    let runner = Runner::Operator(Box::new(TypedOperatorRunner {
        factory: Arc::new(make),
        _op: PhantomData,
    }));
    graph.borrow_mut().add_stage(name, kind, 1, runner)
}

/// A stream partitioned by key: the next stage may keep [`KeyedState`](crate::state::KeyedState).
pub struct KeyedStream<T, K, F> {
    stream: Stream<T>,
    key: Arc<F>,
    _k: PhantomData<fn() -> K>,
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

    fn connect<I: Data, C>(&self, to: usize, convert: C)
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

fn keyed_stage_limits(graph: &Shared, stage: usize) {
    let mut g = graph.borrow_mut();
    let s = &mut g.stages[stage];
    s.max_parallelism = s.max_parallelism.min(s.key_groups as usize);
}

/// One of the two inputs of a two-input stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Either<L, R> {
    /// A record of the first input.
    Left(L),
    /// A record of the second input.
    Right(R),
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

/// A handle on a stage that produces no stream (a sink), to set its properties.
pub struct StageRef {
    graph: Shared,
    stage: usize,
}

impl StageRef {
    /// Sets the initial parallelism of the stage.
    pub fn parallelism(self, parallelism: usize) -> StageRef {
        set_parallelism(&self.graph, self.stage, parallelism);
        self
    }

    /// Sets the largest parallelism a reconfiguration may give the stage.
    pub fn max_parallelism(self, max: usize) -> StageRef {
        set_max_parallelism(&self.graph, self.stage, max);
        self
    }

    /// The stage's name.
    pub fn name(&self) -> String {
        self.graph.borrow().stages[self.stage].name.to_string()
    }
}

struct FnSink<T, F> {
    f: Arc<F>,
    _t: PhantomData<fn(T)>,
}

impl<T: Data, F: Fn(T) + Send + Sync + 'static> Sink<T> for FnSink<T, F> {
    fn write(&mut self, batch: &mut Vec<T>) {
        for x in batch.drain(..) {
            (self.f)(x);
        }
    }
}

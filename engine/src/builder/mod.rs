//! The typed pipeline API: [`PipelineBuilder`] makes [`Stream`]s, streams make stages, and
//! [`PipelineBuilder::build`] checks the result into a runnable [`Pipeline`].
//!
//! A stream is the output of one stage (or, after [`Stream::union`], of several). Applying an
//! operator to it adds a stage and an edge from each producing stage. How records cross that
//! edge is chosen on the stream: [`Stream::rebalance`], [`Stream::broadcast`],
//! [`Stream::key_by`] (hash by key, required by stages with keyed state), forward by default.

mod keyed;
mod stream;

use std::cell::RefCell;
use std::hash::Hash;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use crate::error::BuildError;
use crate::graph::{
    EdgeFactory, EdgeNode, Runner, StageNode, TypedOperatorRunner, TypedSourceRunner,
};
use crate::metrics::StageKind;
use crate::operator::{Data, Operator, Sink, WorkerInfo};
use crate::partition::{DEFAULT_KEY_GROUPS, Partition};
use crate::pipeline::Pipeline;
use crate::source::Source;

pub use keyed::KeyedStream;
pub use stream::Stream;
use stream::{Port, identity};

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

//! The operator interface: what a stage's worker calls for each batch, watermark, barrier and
//! the end of the stream.
//!
//! Operators are built by a factory once per worker and per generation (a reconfiguration
//! starts a new generation), so anything an operator must keep across reconfigurations lives in
//! its stage state ([`KeyedState`](crate::state::KeyedState)); anything it buffers locally
//! (a combiner's partial sums) it emits in [`Operator::on_barrier`].

use std::sync::Arc;

use crate::channel::Timestamp;
use crate::state::StageState;

/// A record type that can travel between stages.
pub trait Data: Clone + Send + 'static {}
impl<T: Clone + Send + 'static> Data for T {}

/// Who a worker is: its stage, its index and the stage's parallelism in this generation.
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    /// Stage name.
    pub stage: Arc<str>,
    /// Index of this worker within the stage, `0..parallelism`.
    pub index: usize,
    /// Number of workers of the stage.
    pub parallelism: usize,
    /// Generation of the job (0 at start, +1 per reconfiguration).
    pub generation: u64,
}

/// The output, state and clock an operator sees while it handles one event.
pub struct Context<'a, O, S> {
    pub(crate) out: &'a mut Vec<O>,
    pub(crate) state: &'a mut S,
    pub(crate) watermark: Timestamp,
    pub(crate) info: &'a WorkerInfo,
    pub(crate) counters: &'a mut Vec<(&'static str, u64)>,
}

impl<O, S> Context<'_, O, S> {
    /// Emits one record downstream.
    #[inline]
    pub fn emit(&mut self, record: O) {
        self.out.push(record);
    }

    /// Emits every record of `records`.
    pub fn emit_all(&mut self, records: impl IntoIterator<Item = O>) {
        self.out.extend(records);
    }

    /// The stage state of this worker (its key groups for a keyed stage).
    #[inline]
    pub fn state(&mut self) -> &mut S {
        self.state
    }

    /// The worker's input watermark: the minimum over all its upstream workers.
    pub fn watermark(&self) -> Timestamp {
        self.watermark
    }

    /// Who this worker is.
    pub fn worker(&self) -> &WorkerInfo {
        self.info
    }

    /// Adds `n` to the stage counter `name` (reported per epoch in the stage's metrics, e.g.
    /// `late_records`).
    pub fn count(&mut self, name: &'static str, n: u64) {
        add_count(self.counters, name, n);
    }

    /// The state and an emitter at once, for code that updates state while it emits.
    pub fn split(&mut self) -> (&mut S, Emitter<'_, O>) {
        (
            self.state,
            Emitter {
                out: self.out,
                counters: self.counters,
            },
        )
    }
}

fn add_count(counters: &mut Vec<(&'static str, u64)>, name: &'static str, n: u64) {
    match counters.iter_mut().find(|(k, _)| *k == name) {
        Some((_, v)) => *v += n,
        None => counters.push((name, n)),
    }
}

/// Emits records and counts, borrowed from a [`Context`] by [`Context::split`].
pub struct Emitter<'a, O> {
    out: &'a mut Vec<O>,
    counters: &'a mut Vec<(&'static str, u64)>,
}

impl<O> Emitter<'_, O> {
    /// Emits one record downstream.
    #[inline]
    pub fn emit(&mut self, record: O) {
        self.out.push(record);
    }

    /// Adds `n` to the stage counter `name`.
    pub fn count(&mut self, name: &'static str, n: u64) {
        add_count(self.counters, name, n);
    }
}

/// A stage's processing logic. One instance per worker.
///
/// ```
/// use rheo_engine::operator::{Context, Operator};
///
/// /// Doubles every number.
/// struct Double;
/// impl Operator for Double {
///     type In = u64;
///     type Out = u64;
///     type State = ();
///     fn on_batch(&mut self, batch: &mut Vec<u64>, cx: &mut Context<'_, u64, ()>) {
///         for x in batch.drain(..) {
///             cx.emit(2 * x);
///         }
///     }
/// }
/// ```
pub trait Operator: Send + 'static {
    /// Input records.
    type In: Data;
    /// Output records.
    type Out: Data;
    /// State kept across reconfigurations: `()` or a [`KeyedState`](crate::state::KeyedState).
    type State: StageState;

    /// Handles a batch of input records. The batch may be drained or left as it is.
    fn on_batch(&mut self, batch: &mut Vec<Self::In>, cx: &mut Context<'_, Self::Out, Self::State>);

    /// Called when the input watermark advances to `watermark` (already in `cx.watermark()`).
    fn on_watermark(&mut self, watermark: Timestamp, cx: &mut Context<'_, Self::Out, Self::State>) {
        let _ = (watermark, cx);
    }

    /// Called when no input arrived for a while (the job's flush timeout, at most 10 ms):
    /// a chance to emit what an operator buffers locally (a combiner's partial sums) so a
    /// trickle of input still flows.
    fn on_tick(&mut self, cx: &mut Context<'_, Self::Out, Self::State>) {
        let _ = cx;
    }

    /// Called at a reconfiguration barrier, before the worker hands its state back: emit
    /// anything buffered outside the stage state.
    fn on_barrier(&mut self, cx: &mut Context<'_, Self::Out, Self::State>) {
        let _ = cx;
    }

    /// Called once at the end of the stream, after the final watermark.
    fn on_end(&mut self, cx: &mut Context<'_, Self::Out, Self::State>) {
        let _ = cx;
    }
}

/// The end of a pipeline: receives records and emits none.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use rheo_engine::operator::Sink;
///
/// struct Collect(Arc<Mutex<Vec<u64>>>);
/// impl Sink<u64> for Collect {
///     fn write(&mut self, batch: &mut Vec<u64>) {
///         self.0.lock().unwrap().append(batch);
///     }
/// }
/// ```
pub trait Sink<T>: Send + 'static {
    /// Receives a batch (it may be drained).
    fn write(&mut self, batch: &mut Vec<T>);
    /// Called when the input watermark advances.
    fn on_watermark(&mut self, watermark: Timestamp) {
        let _ = watermark;
    }
    /// Called at a reconfiguration barrier (this instance is then dropped) and before
    /// [`Sink::finish`]: make written data durable.
    fn flush(&mut self) {}
    /// Called once at the end of the stream.
    fn finish(&mut self) {}
}

/// A record type with no values: the output of sinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Never {}

/// Runs a [`Sink`] as an operator with no output.
pub(crate) struct SinkOperator<T, S> {
    pub sink: S,
    pub _t: std::marker::PhantomData<fn(T)>,
}

impl<T: Data, S: Sink<T>> Operator for SinkOperator<T, S> {
    type In = T;
    type Out = Never;
    type State = ();

    fn on_batch(&mut self, batch: &mut Vec<T>, _: &mut Context<'_, Never, ()>) {
        self.sink.write(batch);
    }

    fn on_watermark(&mut self, watermark: Timestamp, _: &mut Context<'_, Never, ()>) {
        self.sink.on_watermark(watermark);
    }

    fn on_barrier(&mut self, _: &mut Context<'_, Never, ()>) {
        self.sink.flush();
    }

    fn on_end(&mut self, _: &mut Context<'_, Never, ()>) {
        self.sink.flush();
        self.sink.finish();
    }
}

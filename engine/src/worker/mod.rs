//! The worker loops: one thread per worker, running a source or an operator.
//!
//! An operator worker receives messages from its input channels and, per message, either runs
//! the operator on a batch, advances its watermark (the minimum over every upstream worker),
//! aligns a reconfiguration barrier (once every upstream worker sent it, the worker flushes,
//! forwards it, hands its state to the controller and exits), or closes at end of stream.
//! A source worker polls its source, obeys the controller's commands between polls (inject a
//! barrier and pause; resume with new output channels; finish), and emits watermarks.
//!
//! Every worker ends by sending exactly one [`WorkerEvent`]; a panic in user code is caught and
//! reported as [`WorkerEvent::Failed`] naming the stage.

mod operator_loop;
mod source_loop;

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::channel::{IoCx, Marker, POLL, Stamp, Stopped, Timestamp};
use crate::graph::AnyBox;
use crate::metrics::counters::{LocalCounters, WorkerCounters};
use crate::operator::{Data, WorkerInfo};
use crate::writer::EdgeWriter;

pub(crate) use operator_loop::run_operator;
pub(crate) use source_loop::run_source;

/// Job-wide settings and signals shared by every worker.
pub(crate) struct WorkerEnv {
    pub abort: AtomicBool,
    /// Set by the controller while a reconfiguration hands queued records over: operator
    /// workers stop after the message in hand, and no send blocks.
    pub handing_over: AtomicBool,
    pub start: Instant,
    pub events: Sender<WorkerEvent>,
    pub flush_timeout_ns: u64,
    pub watermark_interval_ns: u64,
    pub timing: bool,
}

impl WorkerEnv {
    /// Job clock: ns since the job started.
    #[inline]
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    fn handing_over(&self) -> bool {
        self.handing_over.load(Ordering::Relaxed)
    }
}

/// How a worker ended (or paused), reported to the controller.
pub(crate) enum WorkerEvent {
    /// An operator worker aligned a barrier, forwarded it and gave back its state.
    Retired {
        stage: usize,
        worker: usize,
        state: AnyBox,
        watermark: Timestamp,
        /// Per output edge (in the stage's output order): what a hand-over stashed.
        stashed: Vec<AnyBox>,
        /// Per input edge: what was left of the worker's prelude when a hand-over stopped it
        /// (`Vec<Message<In>>`; older than anything in its channels).
        unread: Vec<AnyBox>,
    },
    /// A source worker injected a barrier (or stopped for a hand-over, `stashed` holding per
    /// output edge what it could not send) and waits for `Resume`.
    Paused {
        stage: usize,
        worker: usize,
        stashed: Vec<AnyBox>,
    },
    /// A source worker has no more input; it waits for `Finish` (or a barrier).
    Exhausted { stage: usize, worker: usize },
    /// A worker closed at end of stream.
    Finished { stage: usize, worker: usize },
    /// A worker stopped on abort; `dropped` records it held were discarded.
    Aborted {
        stage: usize,
        worker: usize,
        dropped: u64,
    },
    /// A worker failed (a panic in user code, or an engine invariant).
    Failed {
        stage: usize,
        worker: usize,
        message: String,
    },
}

/// What the controller tells a source worker.
pub(crate) enum SourceCommand {
    /// Flush, send `Barrier(id)` on every output, report `Paused`, wait.
    Barrier(u64),
    /// A hand-over: flush what fits, stash the rest, report `Paused` with it, wait.
    HandOver,
    /// Continue with these outputs (the new generation's edge writers).
    Resume {
        outputs: Vec<AnyBox>,
        chunk: usize,
        generation: u64,
    },
    /// Stop producing; send the final watermark and end-of-stream.
    Finish,
}

/// Everything an operator worker starts with.
pub(crate) struct WorkerSetup {
    pub stage: usize,
    pub info: WorkerInfo,
    pub inputs: Vec<AnyBox>,
    /// Per input edge, the records a hand-over gave this worker (`Vec<Message<In>>`), taken
    /// before its channels; empty when the generation did not start from a hand-over.
    pub prelude: Vec<AnyBox>,
    /// Parallelism of the upstream stage of each input edge.
    pub upstream: Vec<usize>,
    pub outputs: Vec<AnyBox>,
    pub state: AnyBox,
    pub watermark: Timestamp,
    pub counters: Arc<WorkerCounters>,
    pub env: Arc<WorkerEnv>,
    pub is_sink: bool,
}

/// Everything a source worker starts with.
pub(crate) struct SourceSetup {
    pub stage: usize,
    pub info: WorkerInfo,
    pub outputs: Vec<AnyBox>,
    /// Records per poll (the largest batch size of its output edges).
    pub chunk: usize,
    pub counters: Arc<WorkerCounters>,
    pub env: Arc<WorkerEnv>,
    pub commands: Receiver<SourceCommand>,
}

impl SourceSetup {
    /// Reports an engine invariant failure for this source worker.
    pub fn fail_internal(self, message: &str) {
        self.counters.mark_exited();
        let _ = self.env.events.send(WorkerEvent::Failed {
            stage: self.stage,
            worker: self.info.index,
            message: format!("internal error: {message}"),
        });
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Runs `body` and reports its outcome as the worker's final event.
fn run_reporting(
    stage: usize,
    worker: usize,
    counters: &WorkerCounters,
    env: &WorkerEnv,
    body: impl FnOnce() -> Result<WorkerEvent, String>,
) {
    counters.bind_cpu_clock();
    let event = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(event)) => event,
        Ok(Err(message)) => WorkerEvent::Failed {
            stage,
            worker,
            message: format!("internal error: {message}"),
        },
        Err(payload) => WorkerEvent::Failed {
            stage,
            worker,
            message: panic_message(payload),
        },
    };
    counters.mark_exited();
    // The controller outlives every worker; if it is gone there is no one left to tell.
    let _ = env.events.send(event);
}

/// Sends `staging` to every output edge (clones to all but the last).
fn route<O: Data>(
    outputs: &mut [Box<dyn EdgeWriter<O>>],
    staging: &mut Vec<O>,
    stamp: Stamp,
    now: u64,
    io: &mut IoCx,
    local: &mut LocalCounters,
) -> Result<(), Stopped> {
    if staging.is_empty() {
        return Ok(());
    }
    local.records_out += staging.len() as u64;
    match outputs.split_last_mut() {
        None => staging.clear(),
        Some((last, rest)) => {
            for w in rest {
                w.write_cloned(staging, stamp, now, io)?;
            }
            last.write(staging, stamp, now, io)?;
        }
    }
    Ok(())
}

fn marker_all<O>(
    outputs: &mut [Box<dyn EdgeWriter<O>>],
    marker: Marker,
    io: &mut IoCx,
) -> Result<(), Stopped> {
    for w in outputs {
        w.marker(marker, io)?;
    }
    Ok(())
}

/// Flushes the writers whose oldest pending record has waited `timeout_ns`.
fn flush_due<O>(
    outputs: &mut [Box<dyn EdgeWriter<O>>],
    now: u64,
    timeout_ns: u64,
    io: &mut IoCx,
) -> Result<(), Stopped> {
    for w in outputs {
        if w.pending_since().is_some_and(|t| now >= t + timeout_ns) {
            w.flush(io)?;
        }
    }
    Ok(())
}

/// How long a worker may wait for input before a pending batch is due.
fn wait_for<O>(outputs: &[Box<dyn EdgeWriter<O>>], now: u64, timeout_ns: u64) -> Duration {
    let due = outputs
        .iter()
        .filter_map(|w| w.pending_since())
        .min()
        .map(|t| t + timeout_ns);
    match due {
        Some(due) => Duration::from_nanos(due.saturating_sub(now)).min(POLL),
        None => POLL,
    }
}

/// Flushes every writer (sending what fits, stashing the rest while a hand-over runs) and takes
/// what each stashed.
fn flush_and_stash<O>(
    outputs: &mut [Box<dyn EdgeWriter<O>>],
    io: &mut IoCx,
) -> Result<Vec<AnyBox>, Stopped> {
    let mut stashed = Vec::with_capacity(outputs.len());
    for w in outputs.iter_mut() {
        w.flush(io)?;
        stashed.push(w.take_stash());
    }
    Ok(stashed)
}

fn held<O>(outputs: &[Box<dyn EdgeWriter<O>>], staging: usize) -> u64 {
    outputs.iter().map(|w| w.pending_records()).sum::<u64>() + staging as u64
}

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

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::channel::{IoCx, Marker, Message, POLL, Received, Stamp, Stopped, Timestamp, receive};
use crate::graph::{AnyBox, take_receivers, take_writers};
use crate::metrics::counters::{LocalCounters, WorkerCounters};
use crate::operator::{Context, Data, Operator, WorkerInfo};
use crate::partition::EdgeWriter;
use crate::source::{Source, SourceContext, SourceStatus};
use crate::state::StageState;

/// Job-wide settings and signals shared by every worker.
pub(crate) struct WorkerEnv {
    pub abort: AtomicBool,
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
}

/// How a worker ended (or paused), reported to the controller.
pub(crate) enum WorkerEvent {
    /// An operator worker aligned a barrier, forwarded it and gave back its state.
    Retired {
        stage: usize,
        worker: usize,
        state: AnyBox,
        watermark: Timestamp,
    },
    /// A source worker injected a barrier and waits for `Resume`.
    Paused { stage: usize, worker: usize },
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

fn held<O>(outputs: &[Box<dyn EdgeWriter<O>>], staging: usize) -> u64 {
    outputs.iter().map(|w| w.pending_records()).sum::<u64>() + staging as u64
}

/// Runs one operator worker to completion.
pub(crate) fn run_operator<Op, F>(make: &F, setup: WorkerSetup)
where
    Op: Operator,
    F: Fn(&WorkerInfo) -> Op,
{
    let (stage, worker) = (setup.stage, setup.info.index);
    let counters = setup.counters.clone();
    let env = setup.env.clone();
    run_reporting(stage, worker, &counters, &env, || {
        operator_loop(make, setup)
    });
}

fn operator_loop<Op, F>(make: &F, s: WorkerSetup) -> Result<WorkerEvent, String>
where
    Op: Operator,
    F: Fn(&WorkerInfo) -> Op,
{
    let inputs = take_receivers::<Op::In>(s.inputs).ok_or("input channel of unexpected type")?;
    let mut outputs =
        take_writers::<Op::Out>(s.outputs).ok_or("output writer of unexpected type")?;
    let mut state = *s
        .state
        .downcast::<Op::State>()
        .map_err(|_| "stage state of unexpected type")?;
    let env = &*s.env;
    let counters = &*s.counters;
    let info = &s.info;
    let mut op = make(info);

    // One slot per upstream worker of every input edge: watermarks, barriers, ends.
    let mut offsets = Vec::with_capacity(s.upstream.len());
    let mut slots = 0usize;
    for &p in &s.upstream {
        offsets.push(slots);
        slots += p;
    }
    let mut slot_wm = vec![s.watermark; slots];
    let mut barrier_seen = vec![false; slots];
    let mut barriers = 0usize;
    let mut ended = vec![false; slots];
    let mut ends = 0usize;
    let mut watermark = s.watermark;
    // Upstream workers that declared themselves idle are left out of the watermark; when all
    // are, this worker tells its own outputs it is idle (and wakes them when one returns).
    let mut slot_idle = vec![false; slots];
    let mut out_idle = false;
    let mut last_stamp = Stamp::EMPTY;

    let mut staging: Vec<Op::Out> = Vec::new();
    let mut local = LocalCounters::default();
    let mut io = IoCx {
        abort: &env.abort,
        timing: env.timing,
        blocked_ns: 0,
    };
    let timing = env.timing;
    let flush_ns = env.flush_timeout_ns;
    local.publish(counters, 0, state.keys());

    macro_rules! cx {
        () => {
            Context {
                out: &mut staging,
                state: &mut state,
                watermark,
                info,
                counters: &mut local.custom,
            }
        };
    }
    // Recomputes the watermark from the active inputs; runs the operator's watermark hook and
    // forwards the new watermark (or the idle status) downstream.
    macro_rules! advance {
        ($now:expr) => {{
            let active = slot_wm
                .iter()
                .zip(&slot_idle)
                .filter(|(_, idle)| !**idle)
                .map(|(w, _)| *w)
                .min();
            match active {
                Some(min) if min > watermark => {
                    watermark = min;
                    out_idle = false;
                    op.on_watermark(min, &mut cx!());
                    route(
                        &mut outputs,
                        &mut staging,
                        last_stamp,
                        $now,
                        &mut io,
                        &mut local,
                    )
                    .and_then(|_| marker_all(&mut outputs, Marker::Watermark(min), &mut io))
                }
                Some(_) if out_idle => {
                    out_idle = false;
                    marker_all(&mut outputs, Marker::Watermark(watermark), &mut io)
                }
                None if !out_idle => {
                    out_idle = true;
                    marker_all(&mut outputs, Marker::Idle, &mut io)
                }
                _ => Ok(()),
            }
        }};
    }
    macro_rules! stop {
        () => {{
            local.publish(counters, io.blocked_ns, state.keys());
            return Ok(WorkerEvent::Aborted {
                stage: s.stage,
                worker: info.index,
                dropped: held(&outputs, staging.len()),
            });
        }};
    }
    macro_rules! tri {
        ($e:expr) => {
            if $e.is_err() {
                stop!();
            }
        };
    }

    let mut closed = vec![false; inputs.len()];
    let mut t_wait = env.now();
    loop {
        let wait = wait_for(&outputs, t_wait, flush_ns);
        let received = receive(&inputs, &mut closed, wait, &env.abort);
        let t_got = env.now();
        if timing {
            local.idle_ns += t_got - t_wait;
        }
        let blocked_before = io.blocked_ns;
        match received {
            Received::Stopped => stop!(),
            Received::Timeout => {
                op.on_tick(&mut cx!());
                tri!(route(
                    &mut outputs,
                    &mut staging,
                    last_stamp,
                    t_got,
                    &mut io,
                    &mut local
                ));
            }
            Received::Message(_, Message::Data { mut records, stamp }) => {
                let n = records.len() as u64;
                local.records_in += n;
                local.batches_in += 1;
                if !stamp.is_empty() {
                    // Outputs of watermark, barrier and end handlers are attributed to the
                    // newest input seen so far.
                    last_stamp = Stamp::at(stamp.max.max(last_stamp.max));
                }
                op.on_batch(&mut records, &mut cx!());
                if s.is_sink
                    && timing
                    && let Some(latency) = &counters.latency
                {
                    latency.lock().record(stamp, n, t_got);
                }
                tri!(route(
                    &mut outputs,
                    &mut staging,
                    stamp,
                    t_got,
                    &mut io,
                    &mut local
                ));
            }
            Received::Message(edge, Message::Watermark { from, ts }) => {
                let slot = offsets[edge] + from as usize;
                if let Some(w) = slot_wm.get_mut(slot) {
                    *w = (*w).max(ts);
                }
                if let Some(idle) = slot_idle.get_mut(slot) {
                    *idle = false;
                }
                tri!(advance!(t_got));
            }
            Received::Message(edge, Message::Idle { from }) => {
                if let Some(idle) = slot_idle.get_mut(offsets[edge] + from as usize) {
                    *idle = true;
                }
                tri!(advance!(t_got));
            }
            Received::Message(edge, Message::Barrier { from, id }) => {
                let slot = offsets[edge] + from as usize;
                if let Some(seen) = barrier_seen.get_mut(slot)
                    && !*seen
                {
                    *seen = true;
                    barriers += 1;
                }
                if barriers == slots {
                    op.on_barrier(&mut cx!());
                    let now = env.now();
                    tri!(route(
                        &mut outputs,
                        &mut staging,
                        last_stamp,
                        now,
                        &mut io,
                        &mut local
                    ));
                    tri!(marker_all(&mut outputs, Marker::Barrier(id), &mut io));
                    if timing {
                        local.busy_ns +=
                            (env.now() - t_got).saturating_sub(io.blocked_ns - blocked_before);
                    }
                    local.publish(counters, io.blocked_ns, state.keys());
                    return Ok(WorkerEvent::Retired {
                        stage: s.stage,
                        worker: info.index,
                        state: Box::new(state),
                        watermark,
                    });
                }
            }
            Received::Message(edge, Message::End { from }) => {
                let slot = offsets[edge] + from as usize;
                if let Some(e) = ended.get_mut(slot)
                    && !*e
                {
                    *e = true;
                    ends += 1;
                }
                if ends == slots {
                    if watermark < Timestamp::MAX {
                        watermark = Timestamp::MAX;
                        op.on_watermark(watermark, &mut cx!());
                    }
                    op.on_end(&mut cx!());
                    let now = env.now();
                    tri!(route(
                        &mut outputs,
                        &mut staging,
                        last_stamp,
                        now,
                        &mut io,
                        &mut local
                    ));
                    tri!(marker_all(&mut outputs, Marker::End, &mut io));
                    if timing {
                        local.busy_ns +=
                            (env.now() - t_got).saturating_sub(io.blocked_ns - blocked_before);
                    }
                    local.publish(counters, io.blocked_ns, state.keys());
                    return Ok(WorkerEvent::Finished {
                        stage: s.stage,
                        worker: info.index,
                    });
                }
            }
        }
        let now = env.now();
        tri!(flush_due(&mut outputs, now, flush_ns, &mut io));
        let t_done = if timing { env.now() } else { now };
        if timing {
            local.busy_ns += (t_done - t_got).saturating_sub(io.blocked_ns - blocked_before);
        }
        local.publish(counters, io.blocked_ns, state.keys());
        t_wait = t_done;
    }
}

/// Runs one source worker until the job finishes or aborts.
pub(crate) fn run_source<S: Source>(source: S, setup: SourceSetup) {
    let (stage, worker) = (setup.stage, setup.info.index);
    let counters = setup.counters.clone();
    let env = setup.env.clone();
    run_reporting(stage, worker, &counters, &env, || {
        source_loop(source, setup)
    });
}

/// A source worker's watermark bookkeeping.
struct SourceWatermark {
    /// The source's current watermark.
    current: Option<Timestamp>,
    /// The last one sent downstream.
    sent: Option<Timestamp>,
    sent_at: u64,
}

impl SourceWatermark {
    fn due(&self, now: u64, interval: u64) -> Option<Timestamp> {
        let w = self.current?;
        let newer = self.sent.is_none_or(|s| w > s);
        (newer && (self.sent.is_none() || now >= self.sent_at + interval)).then_some(w)
    }
}

fn source_loop<S: Source>(mut src: S, s: SourceSetup) -> Result<WorkerEvent, String> {
    let env = &*s.env;
    let counters = &*s.counters;
    let mut info = s.info.clone();
    let mut outputs =
        take_writers::<S::Out>(s.outputs).ok_or("output writer of unexpected type")?;
    let mut chunk = s.chunk.max(1);
    let mut staging: Vec<S::Out> = Vec::with_capacity(chunk);
    let mut local = LocalCounters::default();
    let mut io = IoCx {
        abort: &env.abort,
        timing: env.timing,
        blocked_ns: 0,
    };
    let timing = env.timing;
    let flush_ns = env.flush_timeout_ns;
    let mut wm = SourceWatermark {
        current: None,
        sent: None,
        sent_at: 0,
    };
    let mut exhausted = false;
    let mut idle_until: Option<u64> = None;
    let mut offered = 0u64;
    let mut scheduled = false;
    let mut idle_sent = false;

    macro_rules! stop {
        () => {{
            local.publish(counters, io.blocked_ns, 0);
            return Ok(WorkerEvent::Aborted {
                stage: s.stage,
                worker: info.index,
                dropped: held(&outputs, staging.len()),
            });
        }};
    }
    macro_rules! tri {
        ($e:expr) => {
            if $e.is_err() {
                stop!();
            }
        };
    }

    let mut t_mark = env.now();
    loop {
        // Commands first: between polls is where a source may pause.
        let waiting = exhausted || idle_until.is_some_and(|t| t > t_mark);
        let command = if waiting {
            let mut wait = wait_for(&outputs, t_mark, flush_ns);
            if let Some(t) = idle_until {
                wait = wait.min(Duration::from_nanos(t.saturating_sub(t_mark)));
            }
            if wm.current.is_some() && wm.current != wm.sent {
                wait = wait.min(Duration::from_nanos(
                    (wm.sent_at + env.watermark_interval_ns).saturating_sub(t_mark),
                ));
            }
            match s.commands.recv_timeout(wait) {
                Ok(c) => Some(c),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => stop!(),
            }
        } else {
            s.commands.try_recv().ok()
        };
        let t_start = env.now();
        if timing {
            local.idle_ns += t_start.saturating_sub(t_mark);
        }
        let blocked_before = io.blocked_ns;
        if env.aborted() {
            stop!();
        }
        match command {
            Some(SourceCommand::Barrier(id)) => {
                tri!(marker_all(&mut outputs, Marker::Barrier(id), &mut io));
                local.publish(counters, io.blocked_ns, 0);
                let _ = env.events.send(WorkerEvent::Paused {
                    stage: s.stage,
                    worker: info.index,
                });
                // Paused: wait for the new generation's outputs.
                loop {
                    match s.commands.recv_timeout(POLL) {
                        Ok(SourceCommand::Resume {
                            outputs: new_outputs,
                            chunk: new_chunk,
                            generation,
                        }) => {
                            outputs = take_writers::<S::Out>(new_outputs)
                                .ok_or("output writer of unexpected type")?;
                            chunk = new_chunk.max(1);
                            info.generation = generation;
                            // The new channels start without this source's watermark or idleness.
                            wm.sent = None;
                            idle_sent = false;
                            break;
                        }
                        Ok(SourceCommand::Finish) => {
                            return finish(
                                &mut outputs,
                                &mut io,
                                &mut local,
                                counters,
                                s.stage,
                                &info,
                            );
                        }
                        Ok(SourceCommand::Barrier(_)) => {}
                        Err(RecvTimeoutError::Timeout) if !env.aborted() => {}
                        Err(_) => stop!(),
                    }
                }
            }
            Some(SourceCommand::Finish) => {
                return finish(&mut outputs, &mut io, &mut local, counters, s.stage, &info);
            }
            Some(SourceCommand::Resume { .. }) | None => {}
        }

        let now = env.now();
        let poll = !exhausted && idle_until.is_none_or(|t| t <= now);
        if poll {
            let mut cx = SourceContext {
                now_ns: now,
                schedule: None,
                watermark: None,
                progress: None,
                idle: false,
                info: info.clone(),
            };
            let status = src.poll(&mut staging, chunk, &mut cx);
            let n = staging.len() as u64;
            if let Some(p) = cx.progress {
                scheduled = true;
                offered = p.offered;
                counters
                    .target_rate_milli
                    .store((p.target_rate * 1000.0) as u64, Ordering::Relaxed);
            }
            if let Some(w) = cx.watermark {
                wm.current = Some(wm.current.map_or(w, |c| c.max(w)));
            }
            if n > 0 && idle_sent {
                // Back from idle: the watermark goes ahead of the records, so downstream
                // counts this source again before its records arrive.
                let w = wm.current.unwrap_or(0);
                tri!(marker_all(&mut outputs, Marker::Watermark(w), &mut io));
                wm.sent = Some(w);
                wm.sent_at = now;
                idle_sent = false;
            }
            if n > 0 {
                let stamp = match cx.schedule {
                    Some((first, last)) => Stamp {
                        min: first.min(last),
                        max: first.max(last),
                    },
                    None => Stamp::at(now),
                };
                tri!(route(
                    &mut outputs,
                    &mut staging,
                    stamp,
                    now,
                    &mut io,
                    &mut local
                ));
            } else if cx.idle && !idle_sent {
                // Bring the watermark up to date first: the idle marker must be the last word.
                if let Some(w) = wm.current
                    && wm.sent != Some(w)
                {
                    tri!(marker_all(&mut outputs, Marker::Watermark(w), &mut io));
                    wm.sent = Some(w);
                    wm.sent_at = now;
                }
                tri!(marker_all(&mut outputs, Marker::Idle, &mut io));
                idle_sent = true;
            }
            if !scheduled {
                offered = local.records_out;
            }
            counters.offered.store(offered, Ordering::Relaxed);
            match status {
                SourceStatus::Ready => idle_until = None,
                SourceStatus::Idle(d) => idle_until = Some(now + d.as_nanos() as u64),
                SourceStatus::Exhausted => {
                    exhausted = true;
                    wm.current = Some(Timestamp::MAX);
                }
            }
        }
        let now = env.now();
        if poll && exhausted {
            // The final watermark goes at once, so other inputs alone hold back event time.
            tri!(marker_all(
                &mut outputs,
                Marker::Watermark(Timestamp::MAX),
                &mut io
            ));
            wm.sent = Some(Timestamp::MAX);
            let _ = env.events.send(WorkerEvent::Exhausted {
                stage: s.stage,
                worker: info.index,
            });
        } else if let Some(w) = wm.due(now, env.watermark_interval_ns) {
            tri!(marker_all(&mut outputs, Marker::Watermark(w), &mut io));
            wm.sent = Some(w);
            wm.sent_at = now;
        }
        tri!(flush_due(&mut outputs, now, flush_ns, &mut io));
        t_mark = env.now();
        if timing {
            local.busy_ns += (t_mark - t_start).saturating_sub(io.blocked_ns - blocked_before);
        }
        local.publish(counters, io.blocked_ns, 0);
    }
}

/// A source's end of stream: final watermark, then `End` on every output.
fn finish<O>(
    outputs: &mut [Box<dyn EdgeWriter<O>>],
    io: &mut IoCx,
    local: &mut LocalCounters,
    counters: &WorkerCounters,
    stage: usize,
    info: &WorkerInfo,
) -> Result<WorkerEvent, String> {
    let sent = marker_all(outputs, Marker::Watermark(Timestamp::MAX), io)
        .and_then(|_| marker_all(outputs, Marker::End, io));
    local.publish(counters, io.blocked_ns, 0);
    Ok(match sent {
        Ok(()) => WorkerEvent::Finished {
            stage,
            worker: info.index,
        },
        Err(Stopped) => WorkerEvent::Aborted {
            stage,
            worker: info.index,
            dropped: held(outputs, 0),
        },
    })
}

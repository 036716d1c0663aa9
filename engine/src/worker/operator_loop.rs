//! The operator worker's loop: batches, watermarks, barriers, end of stream.

use crate::channel::{IoCx, Marker, Message, Received, Stamp, Timestamp, receive};
use crate::graph::{AnyBox, take_prelude, take_receivers, take_writers};
use crate::metrics::counters::LocalCounters;
use crate::operator::{Context, Operator, WorkerInfo};
use crate::state::StageState;

use super::*;

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
    let mut prelude = take_prelude::<Op::In>(s.prelude).ok_or("prelude of unexpected type")?;
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
        handing_over: &env.handing_over,
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
            let unread: u64 = prelude.iter().map(|(_, m)| m.records()).sum();
            return Ok(WorkerEvent::Aborted {
                stage: s.stage,
                worker: info.index,
                dropped: held(&outputs, staging.len()) + unread,
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

    // Hands the state back and ends the worker (a barrier or a hand-over), counting the time
    // since `t_got` as busy.
    macro_rules! retire {
        ($t_got:expr, $blocked_before:expr, $stashed:expr, $unread:expr) => {{
            if timing {
                local.busy_ns +=
                    (env.now() - $t_got).saturating_sub(io.blocked_ns - $blocked_before);
            }
            local.publish(counters, io.blocked_ns, state.keys());
            return Ok(WorkerEvent::Retired {
                stage: s.stage,
                worker: info.index,
                state: Box::new(state),
                watermark,
                stashed: $stashed,
                unread: $unread,
            });
        }};
    }

    let mut closed = vec![false; inputs.len()];
    let mut t_wait = env.now();
    loop {
        if env.handing_over() {
            // A hand-over: stop after the message in hand. What the operator holds for a
            // barrier goes out (or into the stash) now; the queued input is re-routed by the
            // controller.
            let t_got = env.now();
            let blocked_before = io.blocked_ns;
            op.on_barrier(&mut cx!());
            tri!(route(
                &mut outputs,
                &mut staging,
                last_stamp,
                t_got,
                &mut io,
                &mut local
            ));
            let Ok(stashed) = flush_and_stash(&mut outputs, &mut io) else {
                stop!();
            };
            let mut unread: Vec<Vec<Message<Op::In>>> =
                (0..inputs.len()).map(|_| Vec::new()).collect();
            for (edge, msg) in prelude.drain(..) {
                unread[edge].push(msg);
            }
            let unread = unread.into_iter().map(|v| Box::new(v) as AnyBox).collect();
            retire!(t_got, blocked_before, stashed, unread);
        }
        let wait = wait_for(&outputs, t_wait, flush_ns);
        let received = match prelude.pop_front() {
            Some((edge, msg)) => Received::Message(edge, msg),
            None => receive(&inputs, &mut closed, wait, &env.abort),
        };
        let t_got = env.now();
        if timing {
            local.idle_ns += t_got - t_wait;
        }
        let blocked_before = io.blocked_ns;
        match received {
            // During a hand-over, upstream workers that stopped have dropped their senders: an
            // emptied input reads as closed. Stop at the top of the loop like the others.
            Received::Stopped if env.handing_over() && !env.aborted() => continue,
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
                    // A barrier comes through the channels, after the whole prelude.
                    retire!(t_got, blocked_before, Vec::new(), Vec::new());
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

//! The source worker's loop: polling, the controller's commands, watermarks.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;

use crate::channel::{IoCx, Marker, POLL, Stamp, Stopped, Timestamp};
use crate::graph::take_writers;
use crate::metrics::counters::{LocalCounters, WorkerCounters};
use crate::operator::WorkerInfo;
use crate::source::{Source, SourceContext, SourceStatus};
use crate::writer::EdgeWriter;

use super::*;

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
        handing_over: &env.handing_over,
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
            Some(c @ (SourceCommand::Barrier(_) | SourceCommand::HandOver)) => {
                let stashed = match c {
                    SourceCommand::Barrier(id) => {
                        tri!(marker_all(&mut outputs, Marker::Barrier(id), &mut io));
                        Vec::new()
                    }
                    // Nothing waits for a barrier: what fits goes, the rest is handed back.
                    _ => match flush_and_stash(&mut outputs, &mut io) {
                        Ok(stashed) => stashed,
                        Err(Stopped) => stop!(),
                    },
                };
                local.publish(counters, io.blocked_ns, 0);
                let _ = env.events.send(WorkerEvent::Paused {
                    stage: s.stage,
                    worker: info.index,
                    stashed,
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
                        Ok(SourceCommand::Barrier(_) | SourceCommand::HandOver) => {}
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

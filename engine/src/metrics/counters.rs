//! Per-worker counters: written by one worker thread, read by the controller once per epoch.
//!
//! Each counter has a single writer, which accumulates locally and publishes totals with plain
//! stores after each message; the controller derives per-epoch deltas. No locks on the data path
//! except the sink's latency histogram (uncontended, once per batch).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::source::Schedule;

use super::latency::LatencyRecorder;

/// `cpu_clock` before the worker bound its clock (thread CPU clock ids are negative on Linux).
const NO_CLOCK: i64 = i64::MIN;

/// Counters of one worker of one generation.
#[derive(Debug, Default)]
pub(crate) struct WorkerCounters {
    pub records_in: AtomicU64,
    pub batches_in: AtomicU64,
    pub records_out: AtomicU64,
    pub busy_ns: AtomicU64,
    pub blocked_ns: AtomicU64,
    pub idle_ns: AtomicU64,
    pub state_keys: AtomicU64,
    /// Sources: events their schedule has made due (cumulative).
    pub offered: AtomicU64,
    /// Sources: the schedule's current rate, in milli-events per second.
    pub target_rate_milli: AtomicU64,
    /// Operator-defined counters (cumulative), e.g. `late_records`.
    pub custom: Mutex<Vec<(&'static str, u64)>>,
    /// Sinks: latency of the records received since the last snapshot.
    pub latency: Option<Mutex<LatencyRecorder>>,
    /// Sources with a schedule: read at snapshots instead of `offered`.
    schedule: Mutex<Option<Arc<dyn Schedule>>>,
    cpu_clock: AtomicI64,
    cpu_final_ns: AtomicU64,
    exited: AtomicBool,
}

/// A point-in-time copy of the cumulative counters.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct CounterValues {
    pub records_in: u64,
    pub batches_in: u64,
    pub records_out: u64,
    pub busy_ns: u64,
    pub blocked_ns: u64,
    pub idle_ns: u64,
    pub cpu_ns: u64,
    pub offered: u64,
}

impl CounterValues {
    pub fn delta(&self, earlier: &CounterValues) -> CounterValues {
        CounterValues {
            records_in: self.records_in.saturating_sub(earlier.records_in),
            batches_in: self.batches_in.saturating_sub(earlier.batches_in),
            records_out: self.records_out.saturating_sub(earlier.records_out),
            busy_ns: self.busy_ns.saturating_sub(earlier.busy_ns),
            blocked_ns: self.blocked_ns.saturating_sub(earlier.blocked_ns),
            idle_ns: self.idle_ns.saturating_sub(earlier.idle_ns),
            cpu_ns: self.cpu_ns.saturating_sub(earlier.cpu_ns),
            offered: self.offered.saturating_sub(earlier.offered),
        }
    }
}

impl WorkerCounters {
    pub fn new(sink: bool) -> WorkerCounters {
        WorkerCounters {
            latency: sink.then(|| Mutex::new(LatencyRecorder::new())),
            cpu_clock: AtomicI64::new(NO_CLOCK),
            ..Default::default()
        }
    }

    /// Makes snapshots read offered load and target rate from `schedule`.
    pub fn set_schedule(&self, schedule: Arc<dyn Schedule>) {
        *self.schedule.lock() = Some(schedule);
    }

    /// The schedule's target rate at job time `now_ns`, if there is a schedule.
    pub fn scheduled_rate(&self, now_ns: u64) -> Option<f64> {
        self.schedule
            .lock()
            .as_ref()
            .map(|s| s.rate(Duration::from_nanos(now_ns)))
    }

    /// Called on the worker's own thread when it starts: lets the controller read the thread's
    /// CPU clock while it runs.
    pub fn bind_cpu_clock(&self) {
        if let Some(id) = thread_cpu_clock_id() {
            self.cpu_clock.store(id, Relaxed);
        }
    }

    /// Called on the worker's own thread when it ends: keeps its final CPU time.
    pub fn mark_exited(&self) {
        self.cpu_final_ns.store(own_thread_cpu_ns(), Relaxed);
        self.exited.store(true, Relaxed);
    }

    #[cfg(test)]
    pub fn exited(&self) -> bool {
        self.exited.load(Relaxed)
    }

    fn cpu_ns(&self, previous: u64) -> u64 {
        if self.exited.load(Relaxed) {
            return self.cpu_final_ns.load(Relaxed);
        }
        let id = self.cpu_clock.load(Relaxed);
        match read_clock_ns(id) {
            Some(ns) => ns,
            // The thread ended between the two loads: its final value is set by now.
            None if self.exited.load(Relaxed) => self.cpu_final_ns.load(Relaxed),
            None => previous,
        }
    }

    /// The counters now; `now_ns` is the job clock (for sources with a schedule).
    pub fn read(&self, previous: &CounterValues, now_ns: u64) -> CounterValues {
        let records_out = self.records_out.load(Relaxed);
        let offered = match self.schedule.lock().as_ref() {
            Some(s) => scheduled_offered(s.as_ref(), records_out, now_ns),
            None => self.offered.load(Relaxed),
        };
        CounterValues {
            records_in: self.records_in.load(Relaxed),
            batches_in: self.batches_in.load(Relaxed),
            records_out,
            busy_ns: self.busy_ns.load(Relaxed),
            blocked_ns: self.blocked_ns.load(Relaxed),
            idle_ns: self.idle_ns.load(Relaxed),
            cpu_ns: self.cpu_ns(previous.cpu_ns),
            offered,
        }
    }
}

/// How long an event may have been due before a snapshot counts it as offered while its source
/// has not emitted it yet: the source worker's wake-up lag. A source sleeps until its next
/// event is due and emits it when the OS wakes it, tens of microseconds later (milliseconds on
/// a loaded machine); without the grace, an epoch whose end falls in that gap is charged a
/// shortfall for an event the source emits a moment later (and the next epoch gets no credit
/// for it), so identical runs scored differently by where their boundaries fell.
pub(crate) const SOURCE_WAKE_UP_GRACE: Duration = Duration::from_millis(2);

/// A scheduled source's offered events at job time `now_ns`: those it has emitted (they were
/// due) and those due for longer than [`SOURCE_WAKE_UP_GRACE`]. A source behind by more than
/// the grace (blocked by backpressure, paused) is charged all of it, as before; one that has
/// emitted everything due, exhausted ones included, is charged nothing.
fn scheduled_offered(schedule: &dyn Schedule, records_out: u64, now_ns: u64) -> u64 {
    let due = schedule.offered(Duration::from_nanos(now_ns));
    let grace_ns = SOURCE_WAKE_UP_GRACE.as_nanos() as u64;
    let due_before_grace = schedule.offered(Duration::from_nanos(now_ns.saturating_sub(grace_ns)));
    due_before_grace.max(records_out.min(due))
}

/// The worker's private running totals, published to its [`WorkerCounters`] after each message.
#[derive(Debug, Default)]
pub(crate) struct LocalCounters {
    pub records_in: u64,
    pub batches_in: u64,
    pub records_out: u64,
    pub busy_ns: u64,
    pub idle_ns: u64,
    pub custom: Vec<(&'static str, u64)>,
    custom_published: usize,
    custom_sum: u64,
}

impl LocalCounters {
    pub fn publish(&mut self, shared: &WorkerCounters, blocked_ns: u64, state_keys: usize) {
        shared.records_in.store(self.records_in, Relaxed);
        shared.batches_in.store(self.batches_in, Relaxed);
        shared.records_out.store(self.records_out, Relaxed);
        shared.busy_ns.store(self.busy_ns, Relaxed);
        shared.blocked_ns.store(blocked_ns, Relaxed);
        shared.idle_ns.store(self.idle_ns, Relaxed);
        shared.state_keys.store(state_keys as u64, Relaxed);
        let sum: u64 = self.custom.iter().map(|(_, v)| *v).sum();
        if self.custom.len() != self.custom_published || sum != self.custom_sum {
            *shared.custom.lock() = self.custom.clone();
            self.custom_published = self.custom.len();
            self.custom_sum = sum;
        }
    }
}

#[cfg(target_os = "linux")]
fn thread_cpu_clock_id() -> Option<i64> {
    let mut id: libc::clockid_t = 0;
    // SAFETY: pthread_self() is the calling thread; `id` is a valid out-pointer.
    let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut id) };
    (rc == 0).then_some(id as i64)
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_clock_id() -> Option<i64> {
    None
}

#[cfg(target_os = "linux")]
fn read_clock_ns(id: i64) -> Option<u64> {
    if id == NO_CLOCK {
        return None;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; an invalid clock id makes the call fail, not UB.
    let rc = unsafe { libc::clock_gettime(id as libc::clockid_t, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

#[cfg(not(target_os = "linux"))]
fn read_clock_ns(_: i64) -> Option<u64> {
    None
}

/// CPU time consumed by the calling thread, in ns.
pub fn own_thread_cpu_ns() -> u64 {
    #[cfg(target_os = "linux")]
    {
        read_clock_ns(libc::CLOCK_THREAD_CPUTIME_ID as i64).unwrap_or(0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// CPU time (user + system) consumed by the whole process, in ns.
pub fn process_cpu_ns() -> u64 {
    #[cfg(target_os = "linux")]
    {
        read_clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID as i64).unwrap_or(0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_clock_of_another_thread_is_readable_and_frozen_at_exit() {
        let counters = std::sync::Arc::new(WorkerCounters::new(false));
        let c = counters.clone();
        let (spun_tx, spun_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let handle = std::thread::spawn(move || {
            c.bind_cpu_clock();
            let start = own_thread_cpu_ns();
            let mut x = 0u64;
            while own_thread_cpu_ns() - start < 20_000_000 {
                x = x.wrapping_add(1);
            }
            spun_tx.send(()).unwrap();
            done_rx.recv().unwrap();
            c.mark_exited();
            x
        });
        spun_rx.recv().unwrap();
        // Read from this thread while the worker is alive (and idle).
        let live = counters.read(&CounterValues::default(), 0);
        assert!(live.cpu_ns >= 20_000_000, "cpu {}", live.cpu_ns);
        done_tx.send(()).unwrap();
        handle.join().unwrap();
        let v = counters.read(&live, 0);
        assert!(v.cpu_ns >= live.cpu_ns);
        assert!(counters.exited());
    }

    /// One event per millisecond, `limit` in all.
    #[derive(Debug)]
    struct EveryMillisecond {
        limit: u64,
    }

    impl Schedule for EveryMillisecond {
        fn offered(&self, since_start: Duration) -> u64 {
            (since_start.as_millis() as u64).min(self.limit)
        }
        fn rate(&self, _: Duration) -> f64 {
            1000.0
        }
    }

    #[test]
    fn a_source_lagging_by_its_wake_up_is_not_charged_one_behind_by_more_is() {
        let schedule = EveryMillisecond { limit: u64::MAX };
        let now_ns = 100_000_000;
        let grace_ms = SOURCE_WAKE_UP_GRACE.as_millis() as u64;
        // Emitted all but the events due within the grace: what it emitted is what was offered.
        for behind in 0..=grace_ms {
            assert_eq!(
                scheduled_offered(&schedule, 100 - behind, now_ns),
                100 - behind
            );
        }
        // Further behind (backpressure, a pause): every event due before the grace counts.
        assert_eq!(scheduled_offered(&schedule, 50, now_ns), 100 - grace_ms);
        assert_eq!(scheduled_offered(&schedule, 0, now_ns), 100 - grace_ms);
        // Never more than is due, whatever the count says.
        assert_eq!(scheduled_offered(&schedule, 500, now_ns), 100);
    }

    #[test]
    fn an_exhausted_source_is_offered_its_whole_schedule() {
        let schedule = EveryMillisecond { limit: 100 };
        // The last event came due just now and has gone out.
        assert_eq!(scheduled_offered(&schedule, 100, 100_500_000), 100);
        assert_eq!(scheduled_offered(&schedule, 100, 1_000_000_000), 100);
    }

    #[test]
    fn scheduled_offered_never_goes_back_as_a_source_catches_up() {
        let schedule = EveryMillisecond { limit: u64::MAX };
        let mut last = 0;
        // Reads every 0.7 ms of a source that falls behind, then catches up at twice the rate.
        let mut out = 0u64;
        for step in 1..400u64 {
            let now_ns = step * 700_000;
            let due = schedule.offered(Duration::from_nanos(now_ns));
            out = if step < 200 {
                out + step % 2
            } else {
                (out + 2).min(due)
            };
            let offered = scheduled_offered(&schedule, out, now_ns);
            assert!(offered >= last, "step {step}: {offered} after {last}");
            assert!(offered <= due && offered >= out.min(due));
            last = offered;
        }
        assert_eq!(last, out, "caught up: offered is what went out");
    }

    #[test]
    fn deltas_subtract_field_by_field() {
        let a = CounterValues {
            records_in: 10,
            busy_ns: 5,
            ..Default::default()
        };
        let b = CounterValues {
            records_in: 25,
            busy_ns: 9,
            ..Default::default()
        };
        let d = b.delta(&a);
        assert_eq!((d.records_in, d.busy_ns), (15, 4));
    }
}

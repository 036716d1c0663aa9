//! A source that keeps a schedule: events become due following a [`RateProfile`], and each
//! carries the time it became due, so a backlog shows up as latency.

use std::time::Duration;

use super::{RateProfile, Schedule, Source, SourceContext, SourceProgress, SourceStatus};
use crate::operator::Data;

/// Makes the record for event number `seq` (global across parallel source workers), which was
/// scheduled at `scheduled` (since the job started).
pub trait Generator: Send + 'static {
    /// Records produced.
    type Out: Data;
    /// The record of event `seq`.
    fn generate(&mut self, seq: u64, scheduled: Duration) -> Self::Out;
}

impl<T: Data, F: FnMut(u64, Duration) -> T + Send + 'static> Generator for F {
    type Out = T;

    fn generate(&mut self, seq: u64, scheduled: Duration) -> T {
        self(seq, scheduled)
    }
}

/// Emits the events of a generator at the rate a profile asks for.
///
/// The source keeps its schedule: `offered` counts the events the profile has made due, and
/// when the pipeline cannot keep up the difference to what was emitted is the backlog, which
/// the source works off as fast as backpressure allows. Parallel workers split the event
/// sequence round-robin ([`RateSource::split`]), so the overall sequence does not depend on the
/// parallelism.
///
/// ```
/// use std::time::Duration;
/// use rheo_engine::source::{RateProfile, RateSource};
/// let src = RateSource::new(RateProfile::Constant { value: 10_000.0 }, |seq: u64, _at: Duration| seq % 100)
///     .limit(50_000);
/// # let _ = src;
/// ```
pub struct RateSource<G> {
    profile: RateProfile,
    generator: G,
    index: u64,
    step: u64,
    next_seq: u64,
    limit: Option<u64>,
}

impl<G: Generator> RateSource<G> {
    /// A source following `profile`, making records with `generator`.
    pub fn new(profile: RateProfile, generator: G) -> Self {
        RateSource {
            profile,
            generator,
            index: 0,
            step: 1,
            next_seq: 0,
            limit: None,
        }
    }

    /// This worker's share when `count` workers run the source: events `index`, `index + count`,
    /// `index + 2·count`, ...
    pub fn split(mut self, index: usize, count: usize) -> Self {
        let count = count.max(1) as u64;
        self.index = (index as u64).min(count - 1);
        self.step = count;
        self.next_seq = self.index;
        self
    }

    /// Ends after `events` events in total (over all workers).
    pub fn limit(mut self, events: u64) -> Self {
        self.limit = Some(events);
        self
    }

    /// Ends when the schedule reaches `duration`.
    pub fn duration(self, duration: Duration) -> Self {
        let events = self.profile.offered_at(duration.as_secs_f64()).floor() as u64;
        self.limit(events)
    }

    /// Events of this worker's share among the first `total` global events.
    fn share(&self, total: u64) -> u64 {
        if total > self.index {
            (total - self.index - 1) / self.step + 1
        } else {
            0
        }
    }
}

/// The schedule of one [`RateSource`] worker.
#[derive(Debug, Clone)]
pub struct RateSchedule {
    profile: RateProfile,
    index: u64,
    step: u64,
    limit: Option<u64>,
}

impl RateSchedule {
    fn share(&self, total: u64) -> u64 {
        if total > self.index {
            (total - self.index - 1) / self.step + 1
        } else {
            0
        }
    }
}

impl Schedule for RateSchedule {
    fn offered(&self, since_start: Duration) -> u64 {
        let mut total = self.profile.offered_at(since_start.as_secs_f64()).floor() as u64;
        if let Some(limit) = self.limit {
            total = total.min(limit);
        }
        self.share(total)
    }

    fn rate(&self, since_start: Duration) -> f64 {
        let t = since_start.as_secs_f64();
        if self
            .limit
            .is_some_and(|l| self.profile.offered_at(t) >= l as f64)
        {
            return 0.0;
        }
        self.profile.rate_at(t) / self.step as f64
    }
}

impl<G: Generator> Source for RateSource<G> {
    type Out = G::Out;

    fn schedule(&self) -> Option<std::sync::Arc<dyn Schedule>> {
        Some(std::sync::Arc::new(RateSchedule {
            profile: self.profile.clone(),
            index: self.index,
            step: self.step,
            limit: self.limit,
        }))
    }

    fn poll(&mut self, out: &mut Vec<G::Out>, max: usize, cx: &mut SourceContext) -> SourceStatus {
        let t = cx.now().as_secs_f64();
        let mut due_total = self.profile.offered_at(t).floor() as u64;
        if let Some(limit) = self.limit {
            due_total = due_total.min(limit);
        }
        let offered = self.share(due_total);
        let emitted = (self.next_seq - self.index) / self.step;
        cx.progress(SourceProgress {
            offered,
            target_rate: self.profile.rate_at(t) / self.step as f64,
        });
        let exhausted = |s: &Self| s.limit.is_some_and(|l| s.next_seq >= l);
        if exhausted(self) {
            return SourceStatus::Exhausted;
        }
        let due = offered.saturating_sub(emitted);
        if due == 0 {
            let next_at = self.profile.time_of(self.next_seq);
            let wait = if next_at.is_finite() {
                Duration::from_secs_f64((next_at - t).max(0.0))
            } else {
                Duration::from_secs(1)
            };
            return SourceStatus::Idle(wait.max(Duration::from_micros(50)));
        }
        let n = due.min(max as u64);
        let first_seq = self.next_seq;
        let last_seq = first_seq + (n - 1) * self.step;
        let first = self.profile.time_of(first_seq);
        let last = self.profile.time_of(last_seq);
        let span = last - first;
        for i in 0..n {
            // Scheduled times inside one poll are interpolated between its first and last event.
            let at = first + span * (i as f64 / (n.max(2) - 1) as f64);
            let record = self
                .generator
                .generate(self.next_seq, Duration::from_secs_f64(at.max(0.0)));
            out.push(record);
            self.next_seq += self.step;
        }
        cx.schedule(
            Duration::from_secs_f64(first.max(0.0)),
            Duration::from_secs_f64(last.max(0.0)),
        );
        if exhausted(self) {
            SourceStatus::Exhausted
        } else {
            SourceStatus::Ready
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll_at<G: Generator>(
        src: &mut RateSource<G>,
        secs: f64,
        max: usize,
    ) -> (Vec<G::Out>, SourceStatus, SourceContext) {
        let mut cx = SourceContext::for_test(Duration::from_secs_f64(secs));
        let mut out = Vec::new();
        let status = src.poll(&mut out, max, &mut cx);
        (out, status, cx)
    }

    #[test]
    fn emits_what_is_due_and_keeps_the_schedule() {
        let mut src = RateSource::new(
            RateProfile::Constant { value: 1000.0 },
            |seq: u64, _: Duration| seq,
        );
        let (out, status, cx) = poll_at(&mut src, 0.0105, 100);
        assert_eq!(out, (0..10).collect::<Vec<_>>());
        assert_eq!(status, SourceStatus::Ready);
        assert_eq!(cx.progress.unwrap().offered, 10);
        assert_eq!(cx.schedule, Some((1_000_000, 10_000_000)));
        // Nothing more is due until 11 ms.
        let (out, status, _) = poll_at(&mut src, 0.0105, 100);
        assert!(out.is_empty());
        assert!(matches!(status, SourceStatus::Idle(d) if d <= Duration::from_micros(600)));
        // A late poll finds a backlog and works it off in chunks of `max`.
        let (out, _, cx) = poll_at(&mut src, 1.0, 100);
        assert_eq!(out.len(), 100);
        assert_eq!(cx.progress.unwrap().offered, 1000);
    }

    #[test]
    fn split_workers_cover_the_sequence_once() {
        let mut all = Vec::new();
        for i in 0..3 {
            let mut src = RateSource::new(
                RateProfile::Constant { value: 1e6 },
                |seq: u64, _: Duration| seq,
            )
            .split(i, 3)
            .limit(1000);
            let (out, status, cx) = poll_at(&mut src, 10.0, 10_000);
            assert_eq!(status, SourceStatus::Exhausted);
            assert_eq!(cx.progress.unwrap().offered, out.len() as u64);
            all.extend(out);
        }
        all.sort();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn generator_sees_scheduled_times() {
        let mut src = RateSource::new(
            RateProfile::Constant { value: 100.0 },
            |_: u64, at: Duration| at,
        );
        let (out, _, _) = poll_at(&mut src, 0.05, 10);
        let ms: Vec<f64> = out
            .iter()
            .map(|d| (d.as_secs_f64() * 1e3).round())
            .collect();
        assert_eq!(ms, vec![10.0, 20.0, 30.0, 40.0, 50.0]);
    }
}

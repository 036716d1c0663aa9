//! Sources: the stages that bring records into a job.
//!
//! A [`Source`] is polled by its worker thread. It may stamp the records of a poll with their
//! scheduled times (for latency), advance the event-time watermark, and report how many events
//! it was asked to offer so far (for backlog). [`RateSource`] does all three for any
//! [`Generator`] following a [`RateProfile`]; [`IterSource`] drains an iterator.

mod iter;
mod profile;
mod rate;
mod timestamps;

use std::time::Duration;

pub use iter::IterSource;
pub use profile::{ProfileError, RateProfile};
pub use rate::{Generator, RateSchedule, RateSource};
pub use timestamps::WithTimestamps;

use crate::channel::Timestamp;
use crate::operator::{Data, WorkerInfo};

/// What a poll found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceStatus {
    /// Records may be available right away; poll again.
    Ready,
    /// Nothing is due now; poll again after this long (earlier if a command arrives).
    Idle(Duration),
    /// The source has no more records (those pushed in this poll still count).
    Exhausted,
}

/// What a source reports about its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SourceProgress {
    /// Events the source's schedule has made due so far (this worker's share).
    pub offered: u64,
    /// The rate the schedule asks for right now, in events per second (this worker's share).
    pub target_rate: f64,
}

/// The worker's side of a poll: the job clock, and where the source reports stamps,
/// watermarks and progress.
pub struct SourceContext {
    pub(crate) now_ns: u64,
    pub(crate) schedule: Option<(u64, u64)>,
    pub(crate) watermark: Option<Timestamp>,
    pub(crate) progress: Option<SourceProgress>,
    pub(crate) idle: bool,
    pub(crate) info: WorkerInfo,
}

impl SourceContext {
    /// Time since the job started.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now_ns)
    }

    /// The scheduled times (since job start) of the first and last record pushed by this poll.
    /// Without it, records are stamped with the time they were polled (ingestion time).
    pub fn schedule(&mut self, first: Duration, last: Duration) {
        self.schedule = Some((first.as_nanos() as u64, last.as_nanos() as u64));
    }

    /// Advances the source's event-time watermark (it never goes back).
    pub fn advance_watermark(&mut self, watermark: Timestamp) {
        self.watermark = Some(self.watermark.map_or(watermark, |w| w.max(watermark)));
    }

    /// Reports the schedule's progress (offered events, target rate).
    pub fn progress(&mut self, progress: SourceProgress) {
        self.progress = Some(progress);
    }

    /// Declares this source worker idle: it has had no input for a while, so downstream
    /// stages leave it out of their watermark until it produces again (it then sends its
    /// watermark ahead of the new records).
    pub fn mark_idle(&mut self) {
        self.idle = true;
    }

    /// Who this source worker is.
    pub fn worker(&self) -> &WorkerInfo {
        &self.info
    }

    #[cfg(test)]
    pub(crate) fn for_test(now: Duration) -> SourceContext {
        SourceContext {
            now_ns: now.as_nanos() as u64,
            schedule: None,
            watermark: None,
            progress: None,
            idle: false,
            info: WorkerInfo {
                stage: "test".into(),
                index: 0,
                parallelism: 1,
                generation: 0,
            },
        }
    }
}

/// A source's schedule, evaluated by the engine at every epoch boundary: how many events it has
/// made due by a given time, and the rate it asks for then (this worker's share). The engine
/// reads it from the controller, so offered load and backlog stay exact while the source worker
/// is blocked on backpressure or paused for a reconfiguration.
pub trait Schedule: Send + Sync + std::fmt::Debug {
    /// Events due in `[0, since_start]`.
    fn offered(&self, since_start: Duration) -> u64;
    /// The rate asked for at `since_start`, in events per second.
    fn rate(&self, since_start: Duration) -> f64;
}

/// Produces records for a source stage. One instance per source worker; it lives as long as
/// the job (reconfigurations pause it and resume it).
///
/// ```
/// use rheo_engine::source::{Source, SourceContext, SourceStatus};
///
/// /// The numbers below `limit`.
/// struct Count { next: u64, limit: u64 }
/// impl Source for Count {
///     type Out = u64;
///     fn poll(&mut self, out: &mut Vec<u64>, max: usize, _: &mut SourceContext) -> SourceStatus {
///         let end = self.limit.min(self.next + max as u64);
///         out.extend(self.next..end);
///         self.next = end;
///         if end == self.limit { SourceStatus::Exhausted } else { SourceStatus::Ready }
///     }
/// }
/// ```
pub trait Source: Send + 'static {
    /// Records produced.
    type Out: Data;

    /// Pushes at most `max` records onto `out`.
    fn poll(
        &mut self,
        out: &mut Vec<Self::Out>,
        max: usize,
        cx: &mut SourceContext,
    ) -> SourceStatus;

    /// The source's schedule, if it keeps one (see [`Schedule`]).
    fn schedule(&self) -> Option<std::sync::Arc<dyn Schedule>> {
        None
    }
}

/// Combinators on sources.
pub trait SourceExt: Source + Sized {
    /// Assigns event time with `timestamp` and emits watermarks `max_out_of_orderness` behind
    /// the largest timestamp seen.
    fn with_timestamps<F>(
        self,
        timestamp: F,
        max_out_of_orderness: Timestamp,
    ) -> WithTimestamps<Self, F>
    where
        F: Fn(&Self::Out) -> Timestamp + Send + 'static,
    {
        WithTimestamps::new(self, timestamp, max_out_of_orderness)
    }
}

impl<S: Source> SourceExt for S {}

//! Event time for any source: a timestamp per record and a bounded-out-of-orderness watermark.

use std::time::Duration;

use super::{Source, SourceContext, SourceStatus};
use crate::channel::Timestamp;

/// A source whose records carry event time; its watermark trails the largest timestamp seen by
/// a fixed bound. Built with [`SourceExt::with_timestamps`](super::SourceExt::with_timestamps).
///
/// With [`WithTimestamps::idle_after`], a source worker that has produced nothing for that long
/// declares itself idle, so the watermark of the stages it feeds keeps advancing with their
/// other inputs.
pub struct WithTimestamps<S, F> {
    inner: S,
    timestamp: F,
    bound: Timestamp,
    max_seen: Option<Timestamp>,
    idle_after: Option<Duration>,
    last_data: Option<Duration>,
}

impl<S, F> WithTimestamps<S, F> {
    pub(crate) fn new(inner: S, timestamp: F, bound: Timestamp) -> Self {
        WithTimestamps {
            inner,
            timestamp,
            bound,
            max_seen: None,
            idle_after: None,
            last_data: None,
        }
    }

    /// Declares the source idle after `timeout` without records.
    pub fn idle_after(mut self, timeout: Duration) -> Self {
        self.idle_after = Some(timeout);
        self
    }
}

impl<S, F> Source for WithTimestamps<S, F>
where
    S: Source,
    F: Fn(&S::Out) -> Timestamp + Send + 'static,
{
    type Out = S::Out;

    fn schedule(&self) -> Option<std::sync::Arc<dyn super::Schedule>> {
        self.inner.schedule()
    }

    fn poll(&mut self, out: &mut Vec<S::Out>, max: usize, cx: &mut SourceContext) -> SourceStatus {
        let start = out.len();
        let status = self.inner.poll(out, max, cx);
        if let Some(ts) = out[start..].iter().map(|r| (self.timestamp)(r)).max() {
            self.max_seen = Some(self.max_seen.map_or(ts, |m| m.max(ts)));
        }
        if let Some(max_seen) = self.max_seen {
            cx.advance_watermark(max_seen.saturating_sub(self.bound));
        }
        let now = cx.now();
        if out.len() > start {
            self.last_data = Some(now);
            return status;
        }
        let Some(timeout) = self.idle_after else {
            return status;
        };
        let quiet = now.saturating_sub(self.last_data.unwrap_or_default());
        if quiet >= timeout {
            cx.mark_idle();
            return status;
        }
        // Poll again by the time the source would turn idle.
        match status {
            SourceStatus::Idle(wait) => SourceStatus::Idle(wait.min(timeout - quiet)),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::source::{IterSource, SourceExt};

    use super::*;

    #[test]
    fn watermark_trails_the_largest_timestamp() {
        let mut src = IterSource::new(vec![10u64, 30, 20, 50]).with_timestamps(|t| *t, 5);
        let mut cx = SourceContext::for_test(Duration::ZERO);
        let mut out = Vec::new();
        src.poll(&mut out, 3, &mut cx);
        assert_eq!(cx.watermark, Some(25));
        src.poll(&mut out, 3, &mut cx);
        assert_eq!(cx.watermark, Some(45));
    }

    /// Produces nothing, ever.
    struct Silent;
    impl Source for Silent {
        type Out = u64;
        fn poll(&mut self, _: &mut Vec<u64>, _: usize, _: &mut SourceContext) -> SourceStatus {
            SourceStatus::Idle(Duration::from_secs(5))
        }
    }

    #[test]
    fn a_quiet_source_declares_itself_idle_after_the_timeout() {
        let mut src = Silent
            .with_timestamps(|t| *t, 0)
            .idle_after(Duration::from_millis(100));
        let mut out = Vec::new();
        let mut cx = SourceContext::for_test(Duration::from_millis(30));
        // Not yet idle; asked to poll again when it would be.
        assert_eq!(
            src.poll(&mut out, 8, &mut cx),
            SourceStatus::Idle(Duration::from_millis(70))
        );
        assert!(!cx.idle);
        let mut cx = SourceContext::for_test(Duration::from_millis(100));
        src.poll(&mut out, 8, &mut cx);
        assert!(cx.idle);
    }
}

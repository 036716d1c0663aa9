//! Event time for any source: a timestamp per record and a bounded-out-of-orderness watermark.

use super::{Source, SourceContext, SourceStatus};
use crate::channel::Timestamp;

/// A source whose records carry event time; its watermark trails the largest timestamp seen by
/// a fixed bound. Built with [`SourceExt::with_timestamps`](super::SourceExt::with_timestamps).
pub struct WithTimestamps<S, F> {
    inner: S,
    timestamp: F,
    bound: Timestamp,
    max_seen: Option<Timestamp>,
}

impl<S, F> WithTimestamps<S, F> {
    pub(crate) fn new(inner: S, timestamp: F, bound: Timestamp) -> Self {
        WithTimestamps {
            inner,
            timestamp,
            bound,
            max_seen: None,
        }
    }
}

impl<S, F> Source for WithTimestamps<S, F>
where
    S: Source,
    F: Fn(&S::Out) -> Timestamp + Send + 'static,
{
    type Out = S::Out;

    fn poll(&mut self, out: &mut Vec<S::Out>, max: usize, cx: &mut SourceContext) -> SourceStatus {
        let start = out.len();
        let status = self.inner.poll(out, max, cx);
        for record in &out[start..] {
            let ts = (self.timestamp)(record);
            self.max_seen = Some(self.max_seen.map_or(ts, |m| m.max(ts)));
        }
        if let Some(max_seen) = self.max_seen {
            cx.advance_watermark(max_seen.saturating_sub(self.bound));
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
}

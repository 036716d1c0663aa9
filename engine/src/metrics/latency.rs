//! End-to-end latency from each event's scheduled time to the sink, in an HDR histogram.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::channel::Stamp;

/// Latency histogram of one sink worker, in microseconds (2 significant digits).
#[derive(Debug)]
pub(crate) struct LatencyRecorder {
    hist: Histogram<u64>,
}

/// Points a batch's records are spread over between its oldest and newest scheduled time.
const SPREAD: u64 = 8;

pub(crate) fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 1 hour, auto-resizing beyond; 2 significant digits (1% resolution).
    let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 2)
        .unwrap_or_else(|_| Histogram::new(2).unwrap_or_else(|_| unreachable_histogram()));
    h.auto(true);
    h
}

#[cold]
fn unreachable_histogram() -> Histogram<u64> {
    // `Histogram::new(2)` only fails for sigfig > 5; keep the type checker honest.
    panic!("hdrhistogram rejected 2 significant digits")
}

impl LatencyRecorder {
    pub fn new() -> LatencyRecorder {
        LatencyRecorder {
            hist: new_histogram(),
        }
    }

    /// Records `n` records whose scheduled times span `stamp`, received at `now` (ns since job
    /// start): they are spread evenly over the range.
    pub fn record(&mut self, stamp: Stamp, n: u64, now: u64) {
        if n == 0 || stamp.is_empty() {
            return;
        }
        let lo = now.saturating_sub(stamp.max) / 1000;
        let hi = now.saturating_sub(stamp.min) / 1000;
        let points = n.clamp(1, SPREAD);
        let each = n / points;
        let extra = n % points;
        for i in 0..points {
            let v = if points == 1 {
                hi
            } else {
                lo + (hi - lo) * i / (points - 1)
            };
            let count = each + u64::from(i < extra);
            // Values beyond the histogram's range are clamped rather than lost.
            self.hist.saturating_record_n(v.max(1), count);
        }
    }

    /// Moves everything recorded into `into` and starts over.
    pub fn drain_into(&mut self, into: &mut Histogram<u64>) {
        let _ = into.add(&self.hist);
        self.hist.reset();
    }
}

/// Percentiles of a latency histogram, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LatencyMetrics {
    /// Records measured.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl LatencyMetrics {
    pub(crate) fn from_histogram(h: &Histogram<u64>) -> LatencyMetrics {
        if h.is_empty() {
            return LatencyMetrics::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        LatencyMetrics {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_spread_over_its_stamp_range() {
        let mut r = LatencyRecorder::new();
        // Scheduled between 10 ms and 20 ms, received at 30 ms: latencies 10..20 ms.
        r.record(
            Stamp {
                min: 10_000_000,
                max: 20_000_000,
            },
            100,
            30_000_000,
        );
        let mut h = new_histogram();
        r.drain_into(&mut h);
        let m = LatencyMetrics::from_histogram(&h);
        assert_eq!(m.count, 100);
        assert!((9.9..=10.1).contains(&(h.min() as f64 / 1000.0)));
        assert!((19.8..=20.2).contains(&m.max_ms), "{m:?}");
        assert!((14.0..=16.0).contains(&m.p50_ms), "{m:?}");
        // Drained: the recorder starts over.
        let mut h2 = new_histogram();
        r.drain_into(&mut h2);
        assert!(h2.is_empty());
    }

    #[test]
    fn empty_stamps_and_batches_record_nothing() {
        let mut r = LatencyRecorder::new();
        r.record(Stamp::EMPTY, 5, 100);
        r.record(Stamp::at(1), 0, 100);
        let mut h = new_histogram();
        r.drain_into(&mut h);
        assert_eq!(
            LatencyMetrics::from_histogram(&h),
            LatencyMetrics::default()
        );
    }
}

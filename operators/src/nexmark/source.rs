//! [`NexmarkSource`]: the generator as a source stage, split over parallel workers.

use std::time::Duration;

use rheo_engine::source::{Generator, Source, SourceContext, SourceStatus};

use super::event::Event;
use super::generator::EventGenerator;

/// Emits Nexmark events `0..events` as fast as downstream takes them. Worker `i` of `p` emits
/// the events numbered `i, i + p, i + 2p, …`, so the job sees the same events at any source
/// parallelism; each worker's events are in event-time order and its watermark is the time of
/// the last event it emitted.
///
/// For a paced run (events per wall-clock second, latency from scheduled times), use the
/// generator with the engine's [`RateSource`](rheo_engine::source::RateSource): it implements
/// [`Generator`].
///
/// ```
/// use rheo_engine::{JobOptions, PipelineBuilder};
/// use rheo_operators::nexmark::{EventGenerator, NexmarkConfig, NexmarkSource};
/// use rheo_operators::prelude::*;
///
/// let generator = EventGenerator::new(NexmarkConfig::default())?;
/// let builder = PipelineBuilder::new();
/// let n = builder
///     .parallel_source("nexmark", 2, |i, p| NexmarkSource::new(generator.clone(), 1000).split(i, p))
///     .count("events");
/// builder.build()?.run(JobOptions::default())?;
/// assert_eq!(n.get(), 1000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct NexmarkSource {
    generator: EventGenerator,
    next: u64,
    step: u64,
    end: u64,
}

impl NexmarkSource {
    /// Events `0..events`, all from one worker until [`NexmarkSource::split`].
    pub fn new(generator: EventGenerator, events: u64) -> NexmarkSource {
        NexmarkSource {
            generator,
            next: 0,
            step: 1,
            end: events,
        }
    }

    /// This worker's share: worker `index` of `count`.
    pub fn split(mut self, index: usize, count: usize) -> NexmarkSource {
        self.next = index as u64;
        self.step = count.max(1) as u64;
        self
    }
}

impl Source for NexmarkSource {
    type Out = Event;

    fn poll(&mut self, out: &mut Vec<Event>, max: usize, cx: &mut SourceContext) -> SourceStatus {
        let mut last = None;
        for _ in 0..max {
            if self.next >= self.end {
                break;
            }
            let event = self.generator.event(self.next);
            last = Some(event.date_time());
            out.push(event);
            self.next += self.step;
        }
        if let Some(t) = last {
            cx.advance_watermark(t);
        }
        if self.next >= self.end {
            SourceStatus::Exhausted
        } else {
            SourceStatus::Ready
        }
    }
}

impl Generator for EventGenerator {
    type Out = Event;

    fn generate(&mut self, seq: u64, _: Duration) -> Event {
        self.event(seq)
    }
}

//! `discard`: drops every record (benchmarks, side effects upstream).

use rheo_engine::operator::{Data, Sink};
use rheo_engine::{StageRef, Stream};

/// Ends a stream without keeping anything.
pub trait Discard<T> {
    /// Adds a sink stage that drops every record.
    ///
    /// ```
    /// use rheo_engine::{JobOptions, PipelineBuilder};
    /// use rheo_operators::prelude::*;
    ///
    /// let builder = PipelineBuilder::new();
    /// builder.source("n", IterSource::new(0..10u8)).discard("drop");
    /// let report = builder.build()?.run(JobOptions::default())?;
    /// assert_eq!(report.stage("drop").map(|s| s.records_in), Some(10));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn discard(&self, name: &str) -> StageRef;
}

impl<T: Data> Discard<T> for Stream<T> {
    fn discard(&self, name: &str) -> StageRef {
        self.sink(name, |_| Dropper)
    }
}

struct Dropper;

impl<T: Data> Sink<T> for Dropper {
    fn write(&mut self, batch: &mut Vec<T>) {
        batch.clear();
    }
}

//! `collect`: keeps every record in memory, for tests and small results.

use std::sync::Arc;

use parking_lot::Mutex;
use rheo_engine::Stream;
use rheo_engine::operator::{Data, Sink};

/// The records a [`CollectSink::collect`] stage received, readable while and after the job runs.
#[derive(Clone)]
pub struct Collected<T> {
    records: Arc<Mutex<Vec<T>>>,
}

impl<T> Collected<T> {
    /// Takes the records received so far (in arrival order).
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.records.lock())
    }

    /// Number of records received so far and not yet taken.
    pub fn len(&self) -> usize {
        self.records.lock().len()
    }

    /// True when nothing is waiting to be taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Ends a stream in memory.
pub trait CollectSink<T> {
    /// Adds a sink stage that appends every record to a shared vector.
    ///
    /// ```
    /// use rheo_engine::{JobOptions, PipelineBuilder};
    /// use rheo_operators::prelude::*;
    ///
    /// let builder = PipelineBuilder::new();
    /// let out = builder.source("n", IterSource::new(0..3u8)).collect("out");
    /// builder.build()?.run(JobOptions::default())?;
    /// assert_eq!(out.take(), vec![0, 1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn collect(&self, name: &str) -> Collected<T>;
}

impl<T: Data> CollectSink<T> for Stream<T> {
    fn collect(&self, name: &str) -> Collected<T> {
        let collected = Collected {
            records: Arc::new(Mutex::new(Vec::new())),
        };
        let shared = collected.records.clone();
        self.sink(name, move |_| CollectWriter {
            records: shared.clone(),
        });
        collected
    }
}

struct CollectWriter<T> {
    records: Arc<Mutex<Vec<T>>>,
}

impl<T: Data> Sink<T> for CollectWriter<T> {
    fn write(&mut self, batch: &mut Vec<T>) {
        self.records.lock().append(batch);
    }
}

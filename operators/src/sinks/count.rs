//! `count`: counts records and drops them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rheo_engine::Stream;
use rheo_engine::operator::{Data, Sink};

/// The number of records a [`CountSink::count`] stage received.
#[derive(Clone, Default)]
pub struct Count(Arc<AtomicU64>);

impl Count {
    /// Records received so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Ends a stream in a counter.
pub trait CountSink<T> {
    /// Adds a sink stage that counts records.
    ///
    /// ```
    /// use rheo_engine::{JobOptions, PipelineBuilder};
    /// use rheo_operators::prelude::*;
    ///
    /// let builder = PipelineBuilder::new();
    /// let n = builder.source("n", IterSource::new(0..1000u32)).count("n-out");
    /// builder.build()?.run(JobOptions::default())?;
    /// assert_eq!(n.get(), 1000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn count(&self, name: &str) -> Count;
}

impl<T: Data> CountSink<T> for Stream<T> {
    fn count(&self, name: &str) -> Count {
        let count = Count::default();
        let shared = count.0.clone();
        self.sink(name, move |_| Counter {
            total: shared.clone(),
        });
        count
    }
}

struct Counter {
    total: Arc<AtomicU64>,
}

impl<T: Data> Sink<T> for Counter {
    fn write(&mut self, batch: &mut Vec<T>) {
        self.total.fetch_add(batch.len() as u64, Ordering::Relaxed);
        batch.clear();
    }
}

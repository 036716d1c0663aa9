//! `to_channel`: hands records to the application through a bounded channel.

use crossbeam_channel::{Receiver, Sender};
use rheo_engine::Stream;
use rheo_engine::operator::{Data, Sink};

/// Ends a stream in a channel the application reads.
pub trait ChannelSink<T> {
    /// Adds a sink stage sending every record into a channel of `capacity` records and returns
    /// its receiving end. A full channel blocks the sink, so a slow reader slows the job
    /// (backpressure) rather than buffering without bound. Once the receiver is dropped, records
    /// are discarded. The channel closes when the job ends.
    ///
    /// ```
    /// use rheo_engine::{JobOptions, PipelineBuilder};
    /// use rheo_operators::prelude::*;
    ///
    /// let builder = PipelineBuilder::new();
    /// let rx = builder.source("n", IterSource::new(0..5u32)).to_channel("out", 16);
    /// let job = builder.build()?.start(JobOptions::default())?;
    /// let got: Vec<u32> = rx.iter().collect();
    /// job.join()?;
    /// assert_eq!(got, vec![0, 1, 2, 3, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn to_channel(&self, name: &str, capacity: usize) -> Receiver<T>;
}

impl<T: Data> ChannelSink<T> for Stream<T> {
    fn to_channel(&self, name: &str, capacity: usize) -> Receiver<T> {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        // The stage holds the only sender; the channel closes when the stage is dropped
        // with the job.
        let shared = parking_lot::Mutex::new(Some(tx));
        let sender = std::sync::Arc::new(shared);
        self.sink(name, move |_| ChannelWriter {
            tx: sender.lock().clone(),
        });
        rx
    }
}

struct ChannelWriter<T> {
    tx: Option<Sender<T>>,
}

impl<T: Data> Sink<T> for ChannelWriter<T> {
    fn write(&mut self, batch: &mut Vec<T>) {
        let Some(tx) = &self.tx else {
            batch.clear();
            return;
        };
        // `drain` drops whatever is left if the receiver is gone mid-batch.
        if batch
            .drain(..)
            .try_for_each(|record| tx.send(record))
            .is_err()
        {
            self.tx = None;
        }
    }
}

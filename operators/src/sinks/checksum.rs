//! `checksum`: folds every field of every record into an order-independent checksum.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rheo_engine::Stream;
use rheo_engine::operator::{Data, Sink};
use rustc_hash::FxHasher;

/// What a [`ChecksumSink::checksum`] stage received: the record count and the wrapping sum of
/// the records' 64-bit hashes.
///
/// The sum does not depend on the order records arrive in or on which worker received them, so
/// the same output produces the same checksum at any parallelism; and since every record is
/// hashed field by field, no output field can go uncomputed without changing it.
#[derive(Clone, Default)]
pub struct Checksum {
    records: Arc<AtomicU64>,
    sum: Arc<AtomicU64>,
}

impl Checksum {
    /// Records received so far.
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// The checksum of the records received so far.
    pub fn value(&self) -> u64 {
        self.sum.load(Ordering::Relaxed)
    }

    /// The checksum [`ChecksumSink::checksum`] computes for `records`, for reference
    /// implementations to compare with.
    pub fn of<'a, T: Hash + 'a>(records: impl IntoIterator<Item = &'a T>) -> (u64, u64) {
        records
            .into_iter()
            .fold((0, 0), |(n, sum), r| (n + 1, sum.wrapping_add(hash_of(r))))
    }
}

fn hash_of<T: Hash + ?Sized>(record: &T) -> u64 {
    let mut h = FxHasher::default();
    record.hash(&mut h);
    // Fx's last step leaves the low bits weak; a final mix spreads them before summing.
    let x = h.finish();
    let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Ends a stream in a checksum.
pub trait ChecksumSink<T> {
    /// Adds a sink stage that hashes every record and sums the hashes.
    ///
    /// ```
    /// use rheo_engine::{JobOptions, PipelineBuilder};
    /// use rheo_operators::prelude::*;
    ///
    /// let builder = PipelineBuilder::new();
    /// let sum = builder
    ///     .source("n", IterSource::new(0..1000u32))
    ///     .checksum("n-out");
    /// builder.build()?.run(JobOptions::default())?;
    /// let all: Vec<u32> = (0..1000).rev().collect();
    /// assert_eq!((sum.records(), sum.value()), Checksum::of(&all));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn checksum(&self, name: &str) -> Checksum;
}

impl<T: Data + Hash> ChecksumSink<T> for Stream<T> {
    fn checksum(&self, name: &str) -> Checksum {
        let checksum = Checksum::default();
        let shared = checksum.clone();
        self.sink(name, move |_| Summer {
            total: shared.clone(),
        });
        checksum
    }
}

struct Summer {
    total: Checksum,
}

impl<T: Data + Hash> Sink<T> for Summer {
    fn write(&mut self, batch: &mut Vec<T>) {
        let n = batch.len() as u64;
        let sum = batch
            .drain(..)
            .fold(0u64, |s, r| s.wrapping_add(hash_of(&r)));
        // fetch_add wraps on overflow, as the checksum's sum must.
        self.total.sum.fetch_add(sum, Ordering::Relaxed);
        self.total.records.fetch_add(n, Ordering::Relaxed);
    }
}

//! `filter`: keeps the records a predicate accepts.

use std::marker::PhantomData;
use std::sync::Arc;

use rheo_engine::Stream;
use rheo_engine::operator::{Context, Data, Operator};

/// Drops records.
pub trait Filter<T> {
    /// Adds a stage keeping the records for which `keep` returns true. To filter inside the
    /// upstream stage instead (no thread hop or copy), use [`Stream::select`].
    ///
    /// ```
    /// use rheo_engine::{JobOptions, PipelineBuilder};
    /// use rheo_operators::prelude::*;
    ///
    /// let builder = PipelineBuilder::new();
    /// let out = builder
    ///     .source("numbers", IterSource::new(1..=6u64))
    ///     .filter("even", |x: &u64| x % 2 == 0)
    ///     .collect("out");
    /// builder.build()?.run(JobOptions::default())?;
    /// assert_eq!(out.take(), vec![2, 4, 6]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn filter<F>(&self, name: &str, keep: F) -> Stream<T>
    where
        F: Fn(&T) -> bool + Send + Sync + 'static;
}

impl<T: Data> Filter<T> for Stream<T> {
    fn filter<F>(&self, name: &str, keep: F) -> Stream<T>
    where
        F: Fn(&T) -> bool + Send + Sync + 'static,
    {
        let keep = Arc::new(keep);
        self.unary(name, move |_| FilterOperator {
            keep: keep.clone(),
            _t: PhantomData,
        })
    }
}

/// The operator behind [`Filter::filter`].
pub struct FilterOperator<T, F> {
    keep: Arc<F>,
    _t: PhantomData<fn(T)>,
}

impl<T: Data, F: Fn(&T) -> bool + Send + Sync + 'static> Operator for FilterOperator<T, F> {
    type In = T;
    type Out = T;
    type State = ();

    fn on_batch(&mut self, batch: &mut Vec<T>, cx: &mut Context<'_, T, ()>) {
        batch.retain(|x| (self.keep)(x));
        cx.emit_all(batch.drain(..));
    }
}

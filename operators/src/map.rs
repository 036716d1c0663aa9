//! `map`: one output record per input record.

use std::marker::PhantomData;
use std::sync::Arc;

use rheo_engine::Stream;
use rheo_engine::operator::{Context, Data, Operator};

/// Transforms every record.
pub trait Map<T> {
    /// Adds a stage applying `f` to every record. The stage has its own workers (and can be
    /// rescaled on its own); to run a cheap map inside the upstream stage instead, with no
    /// thread hop or copy, use [`Stream::select`].
    ///
    /// ```
    /// use rheo_engine::{JobOptions, PipelineBuilder};
    /// use rheo_operators::prelude::*;
    ///
    /// let builder = PipelineBuilder::new();
    /// let out = builder
    ///     .source("numbers", IterSource::new(1..=3u64))
    ///     .map("square", |x: u64| x * x)
    ///     .collect("out");
    /// builder.build()?.run(JobOptions::default())?;
    /// assert_eq!(out.take(), vec![1, 4, 9]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn map<U: Data, F>(&self, name: &str, f: F) -> Stream<U>
    where
        F: Fn(T) -> U + Send + Sync + 'static;
}

impl<T: Data> Map<T> for Stream<T> {
    fn map<U: Data, F>(&self, name: &str, f: F) -> Stream<U>
    where
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        self.unary(name, move |_| MapOperator {
            f: f.clone(),
            _t: PhantomData,
        })
    }
}

/// The operator behind [`Map::map`].
pub struct MapOperator<T, U, F> {
    f: Arc<F>,
    _t: PhantomData<fn(T) -> U>,
}

impl<T: Data, U: Data, F: Fn(T) -> U + Send + Sync + 'static> Operator for MapOperator<T, U, F> {
    type In = T;
    type Out = U;
    type State = ();

    fn on_batch(&mut self, batch: &mut Vec<T>, cx: &mut Context<'_, U, ()>) {
        let f = &*self.f;
        cx.emit_all(batch.drain(..).map(f));
    }
}

//! `flat_map`: any number of output records per input record.

use std::marker::PhantomData;
use std::sync::Arc;

use rheo_engine::Stream;
use rheo_engine::operator::{Context, Data, Operator};

/// Expands records.
pub trait FlatMap<T> {
    /// Adds a stage calling `f(record, out)`, which pushes the record's outputs onto `out`.
    ///
    /// ```
    /// use rheo_engine::{JobOptions, PipelineBuilder};
    /// use rheo_operators::prelude::*;
    ///
    /// let builder = PipelineBuilder::new();
    /// let out = builder
    ///     .source("lines", IterSource::new(["to be", "or not"]))
    ///     .flat_map("split", |line: &str, out: &mut Vec<String>| {
    ///         out.extend(line.split(' ').map(String::from))
    ///     })
    ///     .collect("words");
    /// builder.build()?.run(JobOptions::default())?;
    /// assert_eq!(out.take(), vec!["to", "be", "or", "not"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn flat_map<U: Data, F>(&self, name: &str, f: F) -> Stream<U>
    where
        F: Fn(T, &mut Vec<U>) + Send + Sync + 'static;
}

impl<T: Data> FlatMap<T> for Stream<T> {
    fn flat_map<U: Data, F>(&self, name: &str, f: F) -> Stream<U>
    where
        F: Fn(T, &mut Vec<U>) + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        self.unary(name, move |_| FlatMapOperator {
            f: f.clone(),
            buf: Vec::new(),
            _t: PhantomData,
        })
    }
}

/// The operator behind [`FlatMap::flat_map`].
pub struct FlatMapOperator<T, U, F> {
    f: Arc<F>,
    buf: Vec<U>,
    _t: PhantomData<fn(T)>,
}

impl<T: Data, U: Data, F: Fn(T, &mut Vec<U>) + Send + Sync + 'static> Operator
    for FlatMapOperator<T, U, F>
{
    type In = T;
    type Out = U;
    type State = ();

    fn on_batch(&mut self, batch: &mut Vec<T>, cx: &mut Context<'_, U, ()>) {
        for x in batch.drain(..) {
            (self.f)(x, &mut self.buf);
            cx.emit_all(self.buf.drain(..));
        }
    }
}

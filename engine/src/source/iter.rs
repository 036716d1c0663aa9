//! A source draining an iterator.

use super::{Source, SourceContext, SourceStatus};
use crate::operator::Data;

/// Emits the items of an iterator, then ends.
///
/// ```
/// use rheo_engine::source::IterSource;
/// let words = IterSource::new(["a", "b", "c"].map(String::from));
/// # let _ = words;
/// ```
pub struct IterSource<I> {
    iter: I,
}

impl<I> IterSource<I> {
    /// A source over `iter`.
    pub fn new<T>(iter: T) -> Self
    where
        T: IntoIterator<IntoIter = I>,
    {
        IterSource {
            iter: iter.into_iter(),
        }
    }
}

impl<I> Source for IterSource<I>
where
    I: Iterator + Send + 'static,
    I::Item: Data,
{
    type Out = I::Item;

    fn poll(&mut self, out: &mut Vec<I::Item>, max: usize, _: &mut SourceContext) -> SourceStatus {
        for _ in 0..max {
            match self.iter.next() {
                Some(item) => out.push(item),
                None => return SourceStatus::Exhausted,
            }
        }
        SourceStatus::Ready
    }
}

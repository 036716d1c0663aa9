//! The operator behind tumbling and hopping windows: values per window in the engine's
//! [`WindowedState`], fired for every key of a window at once when the watermark reaches its
//! end.

use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use rheo_engine::operator::{Context, Data, Operator};
use rheo_engine::state::WindowedState;
use rheo_engine::{Either, Timestamp};

use super::{WindowResult, hop};
use crate::aggregate::Aggregator;

/// Aggregates windows `[s, s + size)`, `s` a multiple of `slide` (tumbling when they are
/// equal). Built by [`Windowed::aggregate`](super::Windowed::aggregate).
pub struct FixedWindows<T, K, KF, TS, A> {
    pub(super) key: Arc<KF>,
    pub(super) timestamp: Arc<TS>,
    pub(super) aggregator: Arc<A>,
    pub(super) size: Timestamp,
    pub(super) slide: Timestamp,
    pub(super) lateness: Timestamp,
    pub(super) _t: PhantomData<fn(T) -> K>,
}

impl<T, K, KF, TS, A> FixedWindows<T, K, KF, TS, A>
where
    T: Data,
    K: Data + Hash + Eq,
    KF: Fn(&T) -> K + Send + Sync + 'static,
    TS: Fn(&T) -> Timestamp + Send + Sync + 'static,
    A: Aggregator<T>,
{
    /// Tumbling windows: a record is in one window, and a batch is mostly runs of one window,
    /// so the window is looked up once per run rather than once per record.
    fn tumbling_batch(
        &mut self,
        batch: &mut Vec<T>,
        cx: &mut Context<'_, <Self as Operator>::Out, <Self as Operator>::State>,
    ) {
        let wm = cx.watermark();
        let agg = &*self.aggregator;
        let (key_of, time_of) = (&*self.key, &*self.timestamp);
        let (state, mut out) = cx.split();
        let mut records = batch.drain(..).peekable();
        while let Some(first) = records.next() {
            let ts = time_of(&first);
            let start = ts - ts % self.size;
            let end = start.saturating_add(self.size);
            if end.saturating_add(self.lateness) <= wm {
                out.count("late_records", 1);
                out.emit(Either::Right(first));
                continue;
            }
            let mut window = state.window(start, end, wm);
            let mut record = first;
            loop {
                let key = key_of(&record);
                if window.closed() {
                    // Within the allowed lateness of a fired window: fire again, updated.
                    let acc = window.get_or_insert_with(key.clone(), || agg.init());
                    agg.add(acc, &record);
                    let value = agg.result(acc);
                    out.emit(Either::Left(WindowResult {
                        key,
                        start,
                        end,
                        value,
                    }));
                } else {
                    agg.add(window.get_or_insert_with(key, || agg.init()), &record);
                }
                match records.next_if(|r| (start..end).contains(&time_of(r))) {
                    Some(next) => record = next,
                    None => break,
                }
            }
        }
    }
}

impl<T, K, KF, TS, A> Operator for FixedWindows<T, K, KF, TS, A>
where
    T: Data,
    K: Data + Hash + Eq,
    KF: Fn(&T) -> K + Send + Sync + 'static,
    TS: Fn(&T) -> Timestamp + Send + Sync + 'static,
    A: Aggregator<T>,
{
    type In = T;
    type Out = Either<WindowResult<K, A::Out>, T>;
    type State = WindowedState<K, A::Acc>;

    fn on_batch(&mut self, batch: &mut Vec<T>, cx: &mut Context<'_, Self::Out, Self::State>) {
        if self.size == self.slide {
            return self.tumbling_batch(batch, cx);
        }
        let wm = cx.watermark();
        let agg = &*self.aggregator;
        let (state, mut out) = cx.split();
        for record in batch.drain(..) {
            let key = (self.key)(&record);
            let ts = (self.timestamp)(&record);
            let mut accepted = false;
            for start in hop::starts(ts, self.size, self.slide) {
                let end = start.saturating_add(self.size);
                if end.saturating_add(self.lateness) <= wm {
                    continue;
                }
                accepted = true;
                let (acc, closed) =
                    state.get_or_insert_with(start, end, key.clone(), wm, || agg.init());
                agg.add(acc, &record);
                if closed {
                    // Within the allowed lateness of a fired window: fire again, updated.
                    let value = agg.result(acc);
                    out.emit(Either::Left(WindowResult {
                        key: key.clone(),
                        start,
                        end,
                        value,
                    }));
                }
            }
            if !accepted {
                out.count("late_records", 1);
                out.emit(Either::Right(record));
            }
        }
    }

    fn on_watermark(&mut self, watermark: Timestamp, cx: &mut Context<'_, Self::Out, Self::State>) {
        let agg = &*self.aggregator;
        let (state, mut out) = cx.split();
        state.fire(watermark, |start, end, key, acc| {
            out.emit(Either::Left(WindowResult {
                key: key.clone(),
                start,
                end,
                value: agg.result(acc),
            }))
        });
        state.close(watermark.saturating_sub(self.lateness));
    }
}

//! `window_join`: pairs the records of two keyed streams that share a key and a tumbling
//! event-time window.

use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use rheo_engine::operator::{Context, Data, Operator};
use rheo_engine::state::{KeyedState, Timers};
use rheo_engine::{Either, KeyedStream, Stream, Timestamp};

/// Joins within windows.
pub trait WindowJoin<L, K> {
    /// Adds a keyed two-input stage that emits `(key, left, right)` for every pair of records
    /// with the same key whose event times fall in the same window `[k·size, (k+1)·size)`.
    /// Pairs are emitted as soon as both records have arrived; a window's records are dropped
    /// from state once the watermark passes its end. A record arriving after that is counted in
    /// the stage's `late_records` metric.
    ///
    /// ```
    /// use rheo_engine::{JobOptions, PipelineBuilder, Timestamp};
    /// use rheo_engine::source::SourceExt;
    /// use rheo_operators::prelude::*;
    /// use rheo_operators::join::WindowJoin;
    ///
    /// let builder = PipelineBuilder::new();
    /// let views = builder
    ///     .source("views", IterSource::new([(1u32, 3u64), (2, 14)]).with_timestamps(|v| v.1, 0))
    ///     .key_by(|v: &(u32, Timestamp)| v.0);
    /// let buys = builder
    ///     .source("buys", IterSource::new([(1u32, 7u64), (2, 25)]).with_timestamps(|b| b.1, 0))
    ///     .key_by(|b: &(u32, Timestamp)| b.0);
    /// let pairs = views
    ///     .window_join(&buys, "view-then-buy", 10, |v: &(u32, Timestamp)| v.1, |b: &(u32, Timestamp)| b.1)
    ///     .collect("pairs");
    /// builder.build()?.run(JobOptions::default())?;
    /// // Item 2 was viewed at 14 and bought at 25: different windows, no pair.
    /// assert_eq!(pairs.take(), vec![(1, (1, 3), (1, 7))]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn window_join<R, KR, TL, TR>(
        &self,
        other: &KeyedStream<R, K, KR>,
        name: &str,
        size: Timestamp,
        left_time: TL,
        right_time: TR,
    ) -> Stream<(K, L, R)>
    where
        R: Data,
        KR: Fn(&R) -> K + Send + Sync + 'static,
        TL: Fn(&L) -> Timestamp + Send + Sync + 'static,
        TR: Fn(&R) -> Timestamp + Send + Sync + 'static;
}

impl<L, K, KL> WindowJoin<L, K> for KeyedStream<L, K, KL>
where
    L: Data,
    K: Data + Hash + Eq,
    KL: Fn(&L) -> K + Send + Sync + 'static,
{
    fn window_join<R, KR, TL, TR>(
        &self,
        other: &KeyedStream<R, K, KR>,
        name: &str,
        size: Timestamp,
        left_time: TL,
        right_time: TR,
    ) -> Stream<(K, L, R)>
    where
        R: Data,
        KR: Fn(&R) -> K + Send + Sync + 'static,
        TL: Fn(&L) -> Timestamp + Send + Sync + 'static,
        TR: Fn(&R) -> Timestamp + Send + Sync + 'static,
    {
        let (left_key, right_key) = (self.key_fn(), other.key_fn());
        let (left_time, right_time) = (Arc::new(left_time), Arc::new(right_time));
        let size = size.max(1);
        self.binary(other, name, move |_| WindowJoinOperator {
            left_key: left_key.clone(),
            right_key: right_key.clone(),
            left_time: left_time.clone(),
            right_time: right_time.clone(),
            size,
            _t: PhantomData,
        })
    }
}

/// One window of one key: the records of each side seen so far.
#[derive(Debug, Clone)]
pub struct JoinPane<L, R> {
    start: Timestamp,
    left: Vec<L>,
    right: Vec<R>,
}

/// The operator behind [`WindowJoin::window_join`].
pub struct WindowJoinOperator<L, R, K, KL, KR, TL, TR> {
    left_key: Arc<KL>,
    right_key: Arc<KR>,
    left_time: Arc<TL>,
    right_time: Arc<TR>,
    size: Timestamp,
    _t: PhantomData<fn(L, R) -> K>,
}

type JoinState<K, L, R> = (KeyedState<K, Vec<JoinPane<L, R>>>, Timers<K>);

impl<L, R, K, KL, KR, TL, TR> Operator for WindowJoinOperator<L, R, K, KL, KR, TL, TR>
where
    L: Data,
    R: Data,
    K: Data + Hash + Eq,
    KL: Fn(&L) -> K + Send + Sync + 'static,
    KR: Fn(&R) -> K + Send + Sync + 'static,
    TL: Fn(&L) -> Timestamp + Send + Sync + 'static,
    TR: Fn(&R) -> Timestamp + Send + Sync + 'static,
{
    type In = Either<L, R>;
    type Out = (K, L, R);
    type State = JoinState<K, L, R>;

    fn on_batch(
        &mut self,
        batch: &mut Vec<Either<L, R>>,
        cx: &mut Context<'_, Self::Out, Self::State>,
    ) {
        let wm = cx.watermark();
        let (state, mut out) = cx.split();
        let (panes, timers) = state;
        for record in batch.drain(..) {
            let (key, ts) = match &record {
                Either::Left(l) => ((self.left_key)(l), (self.left_time)(l)),
                Either::Right(r) => ((self.right_key)(r), (self.right_time)(r)),
            };
            let start = ts - ts % self.size;
            let end = start.saturating_add(self.size);
            if end <= wm {
                out.count("late_records", 1);
                continue;
            }
            let key_panes = panes.get_or_insert_with(key.clone(), Vec::new);
            let at = key_panes.partition_point(|p| p.start < start);
            if key_panes.get(at).is_none_or(|p| p.start != start) {
                key_panes.insert(
                    at,
                    JoinPane {
                        start,
                        left: Vec::new(),
                        right: Vec::new(),
                    },
                );
                timers.register(key.clone(), end);
            }
            let pane = &mut key_panes[at];
            match record {
                Either::Left(l) => {
                    for r in &pane.right {
                        out.emit((key.clone(), l.clone(), r.clone()));
                    }
                    pane.left.push(l);
                }
                Either::Right(r) => {
                    for l in &pane.left {
                        out.emit((key.clone(), l.clone(), r.clone()));
                    }
                    pane.right.push(r);
                }
            }
        }
    }

    fn on_watermark(&mut self, watermark: Timestamp, cx: &mut Context<'_, Self::Out, Self::State>) {
        let size = self.size;
        let (panes, timers) = cx.state();
        for (_, key) in timers.expired(watermark) {
            if let Some(key_panes) = panes.get_mut(&key) {
                key_panes.retain(|p| p.start.saturating_add(size) > watermark);
                if key_panes.is_empty() {
                    panes.remove(&key);
                }
            }
        }
    }
}

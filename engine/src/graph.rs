//! The built pipeline: stages, edges, and the type-erased factories that make channels, edge
//! writers and worker threads for each generation of a running job.
//!
//! Types are checked when the pipeline is built (the typed [`Stream`](crate::Stream) API);
//! after that the runtime handles channels and states as `Box<dyn Any>` and the typed code
//! behind these traits downcasts them back. A failed downcast is an engine bug and is reported
//! as [`JobError::Internal`](crate::JobError::Internal).

use std::any::Any;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::channel::{IoCx, Marker, Message, QueueProbe, Stamp, Stopped};
use crate::metrics::StageKind;
use crate::operator::{Data, Operator, WorkerInfo};
use crate::partition::{Partition, key_group, key_group_range, worker_for_key_group};
use crate::source::Source;
use crate::state::StageState;
use crate::worker::{SourceSetup, WorkerSetup, run_operator, run_source};
use crate::writer::{EdgeWriter, WriterSpec, make_writer};

/// A type-erased value handed between the controller and typed stage code.
pub(crate) type AnyBox = Box<dyn Any + Send>;

/// After a hand-over, per edge and per downstream worker of the new generation, the records
/// that worker takes first (`Vec<Message<I>>`); empty when a generation starts without one.
pub(crate) type Preludes = Vec<Vec<Option<AnyBox>>>;

pub(crate) struct StageNode {
    pub name: Arc<str>,
    pub kind: StageKind,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    pub parallelism: usize,
    pub max_parallelism: usize,
    pub key_groups: u16,
    pub runner: Runner,
}

pub(crate) enum Runner {
    Source(Box<dyn SourceRunner>),
    Operator(Box<dyn OperatorRunner>),
}

pub(crate) struct EdgeNode {
    pub name: String,
    pub from: usize,
    pub to: usize,
    pub partition: Partition,
    pub factory: Box<dyn EdgeFactory>,
}

/// The channels of one edge in one generation.
pub(crate) struct EdgeChannels {
    /// `Vec<Sender<Message<I>>>`, one per downstream worker.
    pub senders: Box<dyn Any + Send + Sync>,
    /// `Receiver<Message<I>>`, one per downstream worker.
    pub receivers: Vec<AnyBox>,
    pub probes: Vec<Box<dyn QueueProbe>>,
}

pub(crate) trait EdgeFactory: Send + Sync {
    fn channels(&self, p_to: usize, capacity: usize) -> EdgeChannels;
    /// A `Box<dyn EdgeWriter<T>>` for upstream worker `from` of `p_from`, as `AnyBox`.
    fn writer(
        &self,
        channels: &EdgeChannels,
        from: usize,
        p_from: usize,
        batch_size: usize,
        key_groups: u16,
    ) -> Option<AnyBox>;
    /// A hand-over's re-routing: the records an old generation left on this edge — `queued`,
    /// what each old target had not read (`(old target, Vec<Message<I>>)`, oldest first: the
    /// rest of its prelude, then its channel), then `stashed`, what each
    /// upstream worker could not send (`Vec<(target, Message<I>)>` per worker) — as the first
    /// input of each of the `p_to` new targets (`Vec<Message<I>>` each). With `keep_targets`
    /// (the downstream parallelism is unchanged) every batch stays with its target, so key
    /// groups and per-sender order hold; otherwise a hash edge sends each record to the new
    /// owner of its key group (a key's records keep their order) and a rebalanced edge deals
    /// batches round-robin. Markers are dropped. Also returns the records re-routed. `None` on
    /// a type mismatch (an engine bug).
    fn reroute(
        &self,
        queued: Vec<(usize, AnyBox)>,
        stashed: Vec<AnyBox>,
        to: NewTargets,
    ) -> Option<(Vec<AnyBox>, u64)>;
    /// Whether [`EdgeFactory::reroute`] can find the key of a queued record (a hash edge built
    /// by a keyed stream), so a hand-over may change the downstream parallelism.
    fn rekeyable(&self) -> bool;
}

/// Where a hand-over sends an edge's queued records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewTargets {
    /// The downstream parallelism of the new generation.
    pub p_to: usize,
    /// The downstream parallelism is unchanged: every batch stays with its target.
    pub keep_targets: bool,
    /// Key groups of the downstream stage (for a hash edge).
    pub groups: u16,
}

/// The key hash of a record on a hash edge's channel.
pub(crate) type Rehash<I> = Arc<dyn Fn(&I) -> u64 + Send + Sync>;

/// [`EdgeFactory::reroute`] for channels of `I`; `rehash` finds a record's key hash.
fn reroute_typed<I: Send + 'static>(
    queued: Vec<(usize, AnyBox)>,
    stashed: Vec<AnyBox>,
    to: NewTargets,
    rehash: Option<&Rehash<I>>,
) -> Option<(Vec<AnyBox>, u64)> {
    let p_to = to.p_to.max(1);
    let mut out: Vec<Vec<Message<I>>> = (0..p_to).map(|_| Vec::new()).collect();
    let owner: Vec<usize> = match rehash {
        Some(_) if !to.keep_targets => (0..to.groups)
            .map(|g| worker_for_key_group(g, to.groups, p_to))
            .collect(),
        _ => Vec::new(),
    };
    let mut next = 0usize;
    let mut records_moved = 0u64;
    let mut place = |target: usize, msg: Message<I>, out: &mut Vec<Vec<Message<I>>>| {
        let Message::Data { records, stamp } = msg else {
            return;
        };
        if records.is_empty() {
            return;
        }
        records_moved += records.len() as u64;
        match rehash {
            _ if to.keep_targets => {
                out[target.min(p_to - 1)].push(Message::Data { records, stamp })
            }
            Some(hash) => {
                // Split the batch by the new owners, keeping the records' order.
                let mut parts: Vec<Vec<I>> = (0..p_to).map(|_| Vec::new()).collect();
                for r in records {
                    parts[owner[key_group(hash(&r), to.groups) as usize]].push(r);
                }
                for (t, part) in parts.into_iter().enumerate() {
                    if !part.is_empty() {
                        out[t].push(Message::Data {
                            records: part,
                            stamp,
                        });
                    }
                }
            }
            None => {
                next = (next + 1) % p_to;
                out[next].push(Message::Data { records, stamp });
            }
        }
    };
    // Everything a channel held was sent before anything its senders stashed.
    for (target, q) in queued {
        for msg in *q.downcast::<Vec<Message<I>>>().ok()? {
            place(target, msg, &mut out);
        }
    }
    for s in stashed {
        for (target, msg) in *s.downcast::<Vec<(usize, Message<I>)>>().ok()? {
            place(target, msg, &mut out);
        }
    }
    Some((
        out.into_iter().map(|v| Box::new(v) as AnyBox).collect(),
        records_moved,
    ))
}

/// An edge from a stage emitting `T` to a stage receiving `I`; `convert` maps one to the other
/// (identity, or into one side of a two-input operator's input).
pub(crate) struct TypedEdge<T, I, C, H> {
    pub partition: Partition,
    pub convert: C,
    pub hash: Option<H>,
    /// `hash` seen through `convert`: the key hash of a record on the channel (hash edges).
    pub rehash: Option<Rehash<I>>,
    pub _t: PhantomData<fn(T) -> I>,
}

impl<T, I, C, H> EdgeFactory for TypedEdge<T, I, C, H>
where
    T: Data,
    I: Data,
    C: Fn(T) -> I + Clone + Send + Sync + 'static,
    H: Fn(&T) -> u64 + Clone + Send + Sync + 'static,
{
    fn channels(&self, p_to: usize, capacity: usize) -> EdgeChannels {
        let mut senders: Vec<Sender<Message<I>>> = Vec::with_capacity(p_to);
        let mut receivers: Vec<AnyBox> = Vec::with_capacity(p_to);
        let mut probes: Vec<Box<dyn QueueProbe>> = Vec::with_capacity(p_to);
        for _ in 0..p_to {
            let (tx, rx) = crossbeam_channel::bounded::<Message<I>>(capacity);
            senders.push(tx);
            probes.push(Box::new(rx.clone()));
            receivers.push(Box::new(rx));
        }
        EdgeChannels {
            senders: Box::new(senders),
            receivers,
            probes,
        }
    }

    fn writer(
        &self,
        channels: &EdgeChannels,
        from: usize,
        p_from: usize,
        batch_size: usize,
        key_groups: u16,
    ) -> Option<AnyBox> {
        let senders = channels
            .senders
            .downcast_ref::<Vec<Sender<Message<I>>>>()?
            .clone();
        let spec = WriterSpec {
            partition: self.partition,
            from,
            p_from,
            batch_size,
            groups: key_groups,
        };
        let writer: Box<dyn EdgeWriter<T>> =
            make_writer(spec, senders, self.convert.clone(), self.hash.clone());
        Some(Box::new(writer))
    }

    fn reroute(
        &self,
        queued: Vec<(usize, AnyBox)>,
        stashed: Vec<AnyBox>,
        to: NewTargets,
    ) -> Option<(Vec<AnyBox>, u64)> {
        let rehash = self
            .rehash
            .as_ref()
            .filter(|_| self.partition == Partition::Hash);
        reroute_typed::<I>(queued, stashed, to, rehash)
    }

    fn rekeyable(&self) -> bool {
        self.partition == Partition::Hash && self.rehash.is_some()
    }
}

/// An edge that carries only part of its upstream stage's output: `select` maps each record
/// of the stage (type `T`) to the record of the view (type `U`) or drops it. The channels and
/// routing are those of the inner edge, built for `U`. Used for side outputs.
pub(crate) struct ViewEdge<T, U, F> {
    pub inner: Box<dyn EdgeFactory>,
    pub select: Arc<F>,
    pub _t: PhantomData<fn(T) -> U>,
}

impl<T, U, F> EdgeFactory for ViewEdge<T, U, F>
where
    T: Data,
    U: Data,
    F: Fn(T) -> Option<U> + Send + Sync + 'static,
{
    fn channels(&self, p_to: usize, capacity: usize) -> EdgeChannels {
        self.inner.channels(p_to, capacity)
    }

    fn writer(
        &self,
        channels: &EdgeChannels,
        from: usize,
        p_from: usize,
        batch_size: usize,
        key_groups: u16,
    ) -> Option<AnyBox> {
        let inner = self
            .inner
            .writer(channels, from, p_from, batch_size, key_groups)?
            .downcast::<Box<dyn EdgeWriter<U>>>()
            .ok()?;
        let writer: Box<dyn EdgeWriter<T>> = Box::new(ViewWriter {
            inner: *inner,
            select: self.select.clone(),
            buf: Vec::new(),
            _t: PhantomData,
        });
        Some(Box::new(writer))
    }

    fn reroute(
        &self,
        queued: Vec<(usize, AnyBox)>,
        stashed: Vec<AnyBox>,
        to: NewTargets,
    ) -> Option<(Vec<AnyBox>, u64)> {
        self.inner.reroute(queued, stashed, to)
    }

    fn rekeyable(&self) -> bool {
        self.inner.rekeyable()
    }
}

/// The writer of a [`ViewEdge`]: selects a batch's records, then hands them to the inner writer.
struct ViewWriter<T, U, F> {
    inner: Box<dyn EdgeWriter<U>>,
    select: Arc<F>,
    buf: Vec<U>,
    _t: PhantomData<fn(T)>,
}

impl<T, U, F> EdgeWriter<T> for ViewWriter<T, U, F>
where
    T: Data,
    U: Data,
    F: Fn(T) -> Option<U> + Send + Sync + 'static,
{
    fn write(
        &mut self,
        records: &mut Vec<T>,
        stamp: Stamp,
        now: u64,
        io: &mut IoCx,
    ) -> Result<(), Stopped> {
        self.buf
            .extend(records.drain(..).filter_map(|r| (self.select)(r)));
        self.inner.write(&mut self.buf, stamp, now, io)
    }

    fn write_cloned(
        &mut self,
        records: &[T],
        stamp: Stamp,
        now: u64,
        io: &mut IoCx,
    ) -> Result<(), Stopped> {
        self.buf
            .extend(records.iter().cloned().filter_map(|r| (self.select)(r)));
        self.inner.write(&mut self.buf, stamp, now, io)
    }

    fn flush(&mut self, io: &mut IoCx) -> Result<(), Stopped> {
        self.inner.flush(io)
    }

    fn pending_since(&self) -> Option<u64> {
        self.inner.pending_since()
    }

    fn pending_records(&self) -> u64 {
        self.inner.pending_records()
    }

    fn marker(&mut self, marker: Marker, io: &mut IoCx) -> Result<(), Stopped> {
        self.inner.marker(marker, io)
    }

    fn take_stash(&mut self) -> AnyBox {
        self.inner.take_stash()
    }
}

/// Starts the worker threads of a source stage. Sources live for the whole job.
pub(crate) trait SourceRunner: Send + Sync {
    fn spawn(&self, setup: SourceSetup) -> std::io::Result<JoinHandle<()>>;
}

pub(crate) struct TypedSourceRunner<S> {
    /// One instance per worker, taken when the job starts.
    pub instances: parking_lot::Mutex<Vec<Option<S>>>,
}

impl<S: Source> SourceRunner for TypedSourceRunner<S> {
    fn spawn(&self, setup: SourceSetup) -> std::io::Result<JoinHandle<()>> {
        let source = self
            .instances
            .lock()
            .get_mut(setup.info.index)
            .and_then(Option::take);
        if let Some(schedule) = source.as_ref().and_then(Source::schedule) {
            setup.counters.set_schedule(schedule);
        }
        let name = format!("{}#{}", setup.info.stage, setup.info.index);
        std::thread::Builder::new()
            .name(name)
            .spawn(move || match source {
                Some(source) => run_source(source, setup),
                None => setup.fail_internal("source instance missing or already started"),
            })
    }
}

/// Moves of keyed state during one reconfiguration of one stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StateMoves {
    pub key_groups: u64,
    pub keys: u64,
}

/// Starts the worker threads of an operator (or sink) stage and moves its state between
/// generations.
pub(crate) trait OperatorRunner: Send + Sync {
    fn spawn(&self, setup: WorkerSetup) -> std::io::Result<JoinHandle<()>>;
    /// Empty states for `parallelism` workers.
    fn initial_states(&self, parallelism: usize, key_groups: u16) -> Vec<AnyBox>;
    /// Takes the states of the old workers (in worker order) and splits them for `new_p`
    /// workers, by key group.
    fn redistribute(
        &self,
        old: Vec<AnyBox>,
        key_groups: u16,
        new_p: usize,
    ) -> Option<(Vec<AnyBox>, StateMoves)>;
}

pub(crate) struct TypedOperatorRunner<Op, F> {
    pub factory: Arc<F>,
    pub _op: PhantomData<fn() -> Op>,
}

impl<Op, F> OperatorRunner for TypedOperatorRunner<Op, F>
where
    Op: Operator,
    F: Fn(&WorkerInfo) -> Op + Send + Sync + 'static,
{
    fn spawn(&self, setup: WorkerSetup) -> std::io::Result<JoinHandle<()>> {
        let factory = self.factory.clone();
        let name = format!("{}#{}", setup.info.stage, setup.info.index);
        std::thread::Builder::new()
            .name(name)
            .spawn(move || run_operator::<Op, _>(&*factory, setup))
    }

    fn initial_states(&self, parallelism: usize, key_groups: u16) -> Vec<AnyBox> {
        (0..parallelism)
            .map(|i| {
                let range = key_group_range(i, parallelism, key_groups);
                let groups = range.clone().map(|_| Op::State::empty_group()).collect();
                Box::new(Op::State::assemble(range, key_groups, groups)) as AnyBox
            })
            .collect()
    }

    fn redistribute(
        &self,
        old: Vec<AnyBox>,
        key_groups: u16,
        new_p: usize,
    ) -> Option<(Vec<AnyBox>, StateMoves)> {
        let mut slots: Vec<Option<<Op::State as StageState>::Group>> =
            (0..key_groups).map(|_| None).collect();
        let mut owner = vec![usize::MAX; key_groups as usize];
        for (w, state) in old.into_iter().enumerate() {
            let state = *state.downcast::<Op::State>().ok()?;
            let (range, groups): (Range<u16>, _) = state.disassemble();
            for (g, group) in range.zip(groups) {
                let slot = slots.get_mut(g as usize)?;
                *slot = Some(group);
                owner[g as usize] = w;
            }
        }
        let mut moves = StateMoves::default();
        let states = (0..new_p)
            .map(|i| {
                let range = key_group_range(i, new_p, key_groups);
                let groups = range
                    .clone()
                    .map(|g| {
                        let group = slots[g as usize]
                            .take()
                            .unwrap_or_else(Op::State::empty_group);
                        let was = owner[g as usize];
                        if was != usize::MAX && was != i {
                            moves.key_groups += 1;
                            moves.keys += Op::State::group_keys(&group) as u64;
                        }
                        group
                    })
                    .collect();
                Box::new(Op::State::assemble(range, key_groups, groups)) as AnyBox
            })
            .collect();
        Some((states, moves))
    }
}

/// Downcasts the receivers of a worker's input edges.
pub(crate) fn take_receivers<I: Send + 'static>(
    inputs: Vec<AnyBox>,
) -> Option<Vec<Receiver<Message<I>>>> {
    inputs
        .into_iter()
        .map(|b| b.downcast::<Receiver<Message<I>>>().ok().map(|r| *r))
        .collect()
}

/// Downcasts a worker's prelude (per input edge, the `Vec<Message<I>>` a hand-over gave it)
/// into the messages it takes before reading its channels, tagged with their input edge.
pub(crate) fn take_prelude<I: Send + 'static>(
    prelude: Vec<AnyBox>,
) -> Option<std::collections::VecDeque<(usize, Message<I>)>> {
    let mut out = std::collections::VecDeque::new();
    for (edge, msgs) in prelude.into_iter().enumerate() {
        out.extend(
            msgs.downcast::<Vec<Message<I>>>()
                .ok()?
                .into_iter()
                .map(|m| (edge, m)),
        );
    }
    Some(out)
}

/// Downcasts the writers of a worker's output edges.
pub(crate) fn take_writers<O: 'static>(
    outputs: Vec<AnyBox>,
) -> Option<Vec<Box<dyn EdgeWriter<O>>>> {
    outputs
        .into_iter()
        .map(|b| b.downcast::<Box<dyn EdgeWriter<O>>>().ok().map(|w| *w))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(records: Vec<u32>) -> Message<u32> {
        Message::Data {
            records,
            stamp: Stamp::EMPTY,
        }
    }

    fn records(prelude: Vec<AnyBox>) -> Vec<Vec<Vec<u32>>> {
        prelude
            .into_iter()
            .map(|b| {
                b.downcast::<Vec<Message<u32>>>()
                    .expect("a prelude of u32 messages")
                    .into_iter()
                    .map(|m| match m {
                        Message::Data { records, .. } => records,
                        _ => panic!("a marker in a prelude"),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_hand_over_keeps_batches_with_their_target_queued_before_stashed() {
        let queued: Vec<(usize, AnyBox)> = vec![
            (
                0,
                Box::new(vec![
                    data(vec![1]),
                    Message::Watermark { from: 0, ts: 5 },
                    data(vec![2]),
                ]),
            ),
            (
                1,
                Box::new(vec![data(vec![3]), Message::Barrier { from: 0, id: 1 }]),
            ),
        ];
        let stashed: Vec<AnyBox> = vec![
            Box::new(vec![(0usize, data(vec![4]))]),
            Box::new(vec![(1usize, data(vec![5])), (0usize, data(vec![6]))]),
        ];
        let to = NewTargets {
            p_to: 2,
            keep_targets: true,
            groups: 8,
        };
        let (prelude, moved) = reroute_typed::<u32>(queued, stashed, to, None).unwrap();
        assert_eq!(moved, 6);
        assert_eq!(
            records(prelude),
            vec![
                vec![vec![1], vec![2], vec![4], vec![6]],
                vec![vec![3], vec![5]]
            ]
        );
    }

    #[test]
    fn a_hand_over_to_a_new_parallelism_deals_every_batch_once() {
        let queued: Vec<(usize, AnyBox)> = vec![(
            0,
            Box::new(vec![
                data(vec![1, 2]),
                data(vec![3]),
                data(vec![]),
                data(vec![4]),
                Message::End { from: 0 },
            ]),
        )];
        let stashed: Vec<AnyBox> =
            vec![Box::new(vec![(0usize, data(vec![5])), (0, data(vec![6]))])];
        let to = NewTargets {
            p_to: 3,
            keep_targets: false,
            groups: 8,
        };
        let (prelude, moved) = reroute_typed::<u32>(queued, stashed, to, None).unwrap();
        assert_eq!(moved, 6);
        let per_target = records(prelude);
        // Five non-empty batches over three targets: two, two and one.
        let mut counts: Vec<usize> = per_target.iter().map(Vec::len).collect();
        counts.sort();
        assert_eq!(counts, vec![1, 2, 2]);
        let mut all: Vec<u32> = per_target.into_iter().flatten().flatten().collect();
        all.sort();
        assert_eq!(all, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn a_prelude_of_the_wrong_type_is_refused() {
        let queued: Vec<(usize, AnyBox)> = vec![(0, Box::new(vec![data(vec![1])]))];
        let to = NewTargets {
            p_to: 1,
            keep_targets: true,
            groups: 8,
        };
        assert!(reroute_typed::<u64>(queued, Vec::new(), to, None).is_none());
    }

    #[test]
    fn a_hand_over_on_a_hash_edge_sends_each_key_to_its_new_owner_in_order() {
        use crate::partition::key_hash;
        // Two old owners; the new parallelism is 3.
        let queued: Vec<(usize, AnyBox)> = vec![
            (
                0,
                Box::new(vec![data((0..40).collect()), data((40..60).collect())]),
            ),
            (1, Box::new(vec![data((60..100).collect())])),
        ];
        let stashed: Vec<AnyBox> = vec![Box::new(vec![(1usize, data((100..120).collect()))])];
        let to = NewTargets {
            p_to: 3,
            keep_targets: false,
            groups: 16,
        };
        let rehash: Rehash<u32> = Arc::new(|x: &u32| key_hash(&(x % 7)));
        let (prelude, moved) = reroute_typed::<u32>(queued, stashed, to, Some(&rehash)).unwrap();
        assert_eq!(moved, 120);
        let per_target: Vec<Vec<u32>> = records(prelude)
            .into_iter()
            .map(|batches| batches.into_iter().flatten().collect())
            .collect();
        let mut all: Vec<u32> = per_target.iter().flatten().copied().collect();
        all.sort();
        assert_eq!(all, (0..120).collect::<Vec<_>>());
        for (t, recs) in per_target.iter().enumerate() {
            for r in recs {
                let g = key_group(key_hash(&(r % 7)), 16);
                assert_eq!(worker_for_key_group(g, 16, 3), t, "record {r}");
            }
            // Each key's records in the order they were queued (ascending here).
            for k in 0..7 {
                let of_key: Vec<u32> = recs.iter().copied().filter(|r| r % 7 == k).collect();
                assert!(
                    of_key.windows(2).all(|w| w[0] < w[1]),
                    "key {k} out of order"
                );
            }
        }
    }
}

//! Edge writers: the sending half of an edge, owned by one upstream worker, which batches
//! records per target worker and routes them by the edge's [`Partition`].

use std::marker::PhantomData;

use crossbeam_channel::Sender;

use crate::channel::{IoCx, Marker, Message, Stamp, Stopped};
use crate::graph::AnyBox;
use crate::partition::{Partition, key_group, worker_for_key_group};

/// The sending half of one edge, owned by one upstream worker: it batches records per target
/// and sends full batches, blocking on a full channel.
pub(crate) trait EdgeWriter<T>: Send {
    /// Routes all of `records` (leaving it empty); `now` is the job clock in ns.
    fn write(
        &mut self,
        records: &mut Vec<T>,
        stamp: Stamp,
        now: u64,
        io: &mut IoCx,
    ) -> Result<(), Stopped>;
    /// Routes clones of `records` (for fan-out to several edges).
    fn write_cloned(
        &mut self,
        records: &[T],
        stamp: Stamp,
        now: u64,
        io: &mut IoCx,
    ) -> Result<(), Stopped>;
    /// Sends every partial batch.
    fn flush(&mut self, io: &mut IoCx) -> Result<(), Stopped>;
    /// Job-clock time at which the oldest pending record arrived, if any is pending.
    fn pending_since(&self) -> Option<u64>;
    /// Records held in partial batches (and in batches a hand-over stashed).
    fn pending_records(&self) -> u64;
    /// Flushes, then sends `marker` to every target.
    fn marker(&mut self, marker: Marker, io: &mut IoCx) -> Result<(), Stopped>;
    /// Takes the batches a hand-over stashed, as `Vec<(target, Message<I>)>` for the channel
    /// type `I` of the edge.
    fn take_stash(&mut self) -> AnyBox;
}

/// The channels of one edge as seen from one upstream worker.
struct Targets<I> {
    txs: Vec<Sender<Message<I>>>,
    from: u32,
    batch_size: usize,
    /// Batches a hand-over found no room for, with their targets, in the order they were due;
    /// the controller re-routes them after what the channels hold.
    stash: Vec<(usize, Message<I>)>,
    /// Per target: a batch was stashed, so later ones go behind it (per-target order holds).
    stashed: Vec<bool>,
}

impl<I: Send + 'static> Targets<I> {
    fn new(txs: Vec<Sender<Message<I>>>, from: u32, batch_size: usize) -> Targets<I> {
        let n = txs.len();
        Targets {
            txs,
            from,
            batch_size,
            stash: Vec::new(),
            stashed: vec![false; n],
        }
    }

    fn send(
        &mut self,
        target: usize,
        buf: &mut Vec<I>,
        stamp: &mut Stamp,
        io: &mut IoCx,
    ) -> Result<(), Stopped> {
        let records = std::mem::replace(buf, Vec::with_capacity(self.batch_size));
        let stamp = std::mem::replace(stamp, Stamp::EMPTY);
        let msg = Message::Data { records, stamp };
        if self.stashed[target] {
            self.stash.push((target, msg));
            return Ok(());
        }
        if let Some(back) = io.send_or_return(&self.txs[target], msg)? {
            self.stashed[target] = true;
            self.stash.push((target, back));
        }
        Ok(())
    }

    fn marker_all(&self, marker: Marker, io: &mut IoCx) -> Result<(), Stopped> {
        // A hand-over drops markers: the new generation starts from the watermarks the
        // workers hand back, and sources send theirs again when they resume.
        if io.handing_over() {
            return Ok(());
        }
        for tx in &self.txs {
            // A marker that meets a full channel as a hand-over begins is dropped likewise.
            io.send_or_return(tx, marker.message(self.from))?;
        }
        Ok(())
    }

    /// Records in stashed batches.
    fn stashed_records(&self) -> u64 {
        self.stash.iter().map(|(_, m)| m.records()).sum()
    }

    fn take_stash(&mut self) -> AnyBox {
        self.stashed.iter_mut().for_each(|s| *s = false);
        Box::new(std::mem::take(&mut self.stash))
    }
}

/// Forward (one target) and rebalance (round-robin by batch).
struct SingleWriter<T, I, C> {
    targets: Targets<I>,
    buf: Vec<I>,
    stamp: Stamp,
    since: Option<u64>,
    next: usize,
    round_robin: bool,
    convert: C,
    _t: PhantomData<fn(T)>,
}

impl<T, I: Send + 'static, C: Fn(T) -> I> SingleWriter<T, I, C> {
    fn send_buf(&mut self, io: &mut IoCx) -> Result<(), Stopped> {
        let target = self.next;
        if self.round_robin {
            self.next = (self.next + 1) % self.targets.txs.len();
        }
        self.since = None;
        self.targets
            .send(target, &mut self.buf, &mut self.stamp, io)
    }

    fn push_all(
        &mut self,
        mut records: impl ExactSizeIterator<Item = T>,
        stamp: Stamp,
        now: u64,
        io: &mut IoCx,
    ) -> Result<(), Stopped> {
        let batch = self.targets.batch_size.max(1);
        // A batch's worth at a time: `extend` from an exact-size iterator reserves once and
        // copies without a capacity check per record.
        while records.len() > 0 {
            if self.buf.is_empty() {
                self.since.get_or_insert(now);
            }
            let room = batch.saturating_sub(self.buf.len()).max(1);
            self.buf
                .extend(records.by_ref().take(room).map(&self.convert));
            if self.buf.len() >= batch {
                self.stamp.merge(stamp);
                self.send_buf(io)?;
            }
        }
        if !self.buf.is_empty() {
            self.stamp.merge(stamp);
        }
        Ok(())
    }
}

impl<T: Clone + Send, I: Send + 'static, C: Fn(T) -> I + Send> EdgeWriter<T>
    for SingleWriter<T, I, C>
{
    fn write(
        &mut self,
        records: &mut Vec<T>,
        stamp: Stamp,
        now: u64,
        io: &mut IoCx,
    ) -> Result<(), Stopped> {
        // The common case, a batch that fits: one whole drain, which `extend` copies as one
        // loop; a `take` over a borrowed iterator (the general path) goes record by record.
        if records.len() <= self.targets.batch_size.saturating_sub(self.buf.len()) {
            if !records.is_empty() {
                self.since.get_or_insert(now);
                self.buf.extend(records.drain(..).map(&self.convert));
                self.stamp.merge(stamp);
                if self.buf.len() >= self.targets.batch_size {
                    self.send_buf(io)?;
                }
            }
            return Ok(());
        }
        self.push_all(records.drain(..), stamp, now, io)
    }

    fn write_cloned(
        &mut self,
        records: &[T],
        stamp: Stamp,
        now: u64,
        io: &mut IoCx,
    ) -> Result<(), Stopped> {
        self.push_all(records.iter().cloned(), stamp, now, io)
    }

    fn flush(&mut self, io: &mut IoCx) -> Result<(), Stopped> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.send_buf(io)
    }

    fn pending_since(&self) -> Option<u64> {
        self.since
    }

    fn pending_records(&self) -> u64 {
        self.buf.len() as u64 + self.targets.stashed_records()
    }

    fn marker(&mut self, marker: Marker, io: &mut IoCx) -> Result<(), Stopped> {
        self.flush(io)?;
        self.targets.marker_all(marker, io)
    }

    fn take_stash(&mut self) -> AnyBox {
        self.targets.take_stash()
    }
}

/// Every batch to every target.
struct BroadcastWriter<T, I, C> {
    targets: Targets<I>,
    buf: Vec<I>,
    stamp: Stamp,
    since: Option<u64>,
    convert: C,
    _t: PhantomData<fn(T)>,
}

impl<T, I: Clone + Send + 'static, C: Fn(T) -> I> BroadcastWriter<T, I, C> {
    fn send_buf(&mut self, io: &mut IoCx) -> Result<(), Stopped> {
        self.since = None;
        let n = self.targets.txs.len();
        for target in 0..n.saturating_sub(1) {
            let mut copy = self.buf.clone();
            let mut stamp = self.stamp;
            self.targets.send(target, &mut copy, &mut stamp, io)?;
        }
        self.targets.send(n - 1, &mut self.buf, &mut self.stamp, io)
    }

    fn push_all(
        &mut self,
        mut records: impl ExactSizeIterator<Item = T>,
        stamp: Stamp,
        now: u64,
        io: &mut IoCx,
    ) -> Result<(), Stopped> {
        let batch = self.targets.batch_size.max(1);
        while records.len() > 0 {
            if self.buf.is_empty() {
                self.since.get_or_insert(now);
            }
            let room = batch.saturating_sub(self.buf.len()).max(1);
            self.buf
                .extend(records.by_ref().take(room).map(&self.convert));
            if self.buf.len() >= batch {
                self.stamp.merge(stamp);
                self.send_buf(io)?;
            }
        }
        if !self.buf.is_empty() {
            self.stamp.merge(stamp);
        }
        Ok(())
    }
}

impl<T: Clone + Send, I: Clone + Send + 'static, C: Fn(T) -> I + Send> EdgeWriter<T>
    for BroadcastWriter<T, I, C>
{
    fn write(
        &mut self,
        records: &mut Vec<T>,
        stamp: Stamp,
        now: u64,
        io: &mut IoCx,
    ) -> Result<(), Stopped> {
        self.push_all(records.drain(..), stamp, now, io)
    }

    fn write_cloned(
        &mut self,
        records: &[T],
        stamp: Stamp,
        now: u64,
        io: &mut IoCx,
    ) -> Result<(), Stopped> {
        self.push_all(records.iter().cloned(), stamp, now, io)
    }

    fn flush(&mut self, io: &mut IoCx) -> Result<(), Stopped> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.send_buf(io)
    }

    fn pending_since(&self) -> Option<u64> {
        self.since
    }

    fn pending_records(&self) -> u64 {
        self.buf.len() as u64 + self.targets.stashed_records()
    }

    fn marker(&mut self, marker: Marker, io: &mut IoCx) -> Result<(), Stopped> {
        self.flush(io)?;
        self.targets.marker_all(marker, io)
    }

    fn take_stash(&mut self) -> AnyBox {
        self.targets.take_stash()
    }
}

/// Each record to the owner of its key group; one partial batch per target.
struct HashWriter<T, I, C, H> {
    targets: Targets<I>,
    bufs: Vec<Vec<I>>,
    stamps: Vec<Stamp>,
    /// Per target, the buffer's length when the current call began (scratch).
    lens: Vec<usize>,
    pending: usize,
    since: Option<u64>,
    groups: u16,
    /// The target worker of each key group (a division per record otherwise).
    owner: Vec<u32>,
    convert: C,
    hash: H,
    _t: PhantomData<fn(T)>,
}

impl<T, I: Send + 'static, C: Fn(T) -> I, H: Fn(&T) -> u64> HashWriter<T, I, C, H> {
    fn push_all(
        &mut self,
        records: impl Iterator<Item = T>,
        stamp: Stamp,
        now: u64,
        io: &mut IoCx,
    ) -> Result<(), Stopped> {
        let batch = self.targets.batch_size;
        // Every record of a call shares its stamp and arrival time: the per-record loop only
        // routes and pushes; stamps and the pending count are settled per target afterwards
        // (a target whose buffer grew took records from this call).
        self.lens.clear();
        self.lens.extend(self.bufs.iter().map(Vec::len));
        for rec in records {
            let group = key_group((self.hash)(&rec), self.groups);
            let target = self.owner[group as usize] as usize;
            let buf = &mut self.bufs[target];
            buf.push((self.convert)(rec));
            if buf.len() >= batch {
                self.lens[target] = 0;
                self.stamps[target].merge(stamp);
                self.targets
                    .send(target, buf, &mut self.stamps[target], io)?;
            }
        }
        // `lens` now holds, per target, the records from before this call still pending.
        let (mut older, mut pending) = (0, 0);
        for (target, buf) in self.bufs.iter().enumerate() {
            let kept = self.lens[target];
            if buf.len() > kept {
                self.stamps[target].merge(stamp);
            }
            older += kept;
            pending += buf.len();
        }
        self.pending = pending;
        if older == 0 {
            self.since = (pending > 0).then_some(now);
        }
        Ok(())
    }
}

impl<T: Clone + Send, I: Send + 'static, C: Fn(T) -> I + Send, H: Fn(&T) -> u64 + Send>
    EdgeWriter<T> for HashWriter<T, I, C, H>
{
    fn write(
        &mut self,
        records: &mut Vec<T>,
        stamp: Stamp,
        now: u64,
        io: &mut IoCx,
    ) -> Result<(), Stopped> {
        self.push_all(records.drain(..), stamp, now, io)
    }

    fn write_cloned(
        &mut self,
        records: &[T],
        stamp: Stamp,
        now: u64,
        io: &mut IoCx,
    ) -> Result<(), Stopped> {
        self.push_all(records.iter().cloned(), stamp, now, io)
    }

    fn flush(&mut self, io: &mut IoCx) -> Result<(), Stopped> {
        for target in 0..self.bufs.len() {
            if !self.bufs[target].is_empty() {
                self.pending -= self.bufs[target].len();
                self.targets
                    .send(target, &mut self.bufs[target], &mut self.stamps[target], io)?;
            }
        }
        self.since = None;
        Ok(())
    }

    fn pending_since(&self) -> Option<u64> {
        self.since
    }

    fn pending_records(&self) -> u64 {
        self.pending as u64 + self.targets.stashed_records()
    }

    fn marker(&mut self, marker: Marker, io: &mut IoCx) -> Result<(), Stopped> {
        self.flush(io)?;
        self.targets.marker_all(marker, io)
    }

    fn take_stash(&mut self) -> AnyBox {
        self.targets.take_stash()
    }
}

/// Where a writer sits: its edge's partitioning and batch size, its worker among `p_from`, and
/// the key groups of the downstream stage.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriterSpec {
    pub partition: Partition,
    pub from: usize,
    pub p_from: usize,
    pub batch_size: usize,
    pub groups: u16,
}

/// Builds the writer of one upstream worker for an edge to `txs`.
pub(crate) fn make_writer<T, I, C, H>(
    spec: WriterSpec,
    txs: Vec<Sender<Message<I>>>,
    convert: C,
    hash: Option<H>,
) -> Box<dyn EdgeWriter<T>>
where
    T: Clone + Send + 'static,
    I: Clone + Send + 'static,
    C: Fn(T) -> I + Send + 'static,
    H: Fn(&T) -> u64 + Send + 'static,
{
    let WriterSpec {
        partition,
        from,
        p_from,
        batch_size,
        groups,
    } = spec;
    let p_to = txs.len();
    let targets = Targets::new(txs, from as u32, batch_size);
    match (partition, hash) {
        // With one target every key group is its: whole batches go there unhashed.
        (Partition::Hash, Some(hash)) if p_to > 1 => Box::new(HashWriter {
            bufs: (0..p_to).map(|_| Vec::with_capacity(batch_size)).collect(),
            stamps: vec![Stamp::EMPTY; p_to],
            lens: Vec::with_capacity(p_to),
            targets,
            pending: 0,
            since: None,
            groups,
            owner: (0..groups)
                .map(|g| worker_for_key_group(g, groups, p_to) as u32)
                .collect(),
            convert,
            hash,
            _t: PhantomData,
        }),
        (Partition::Broadcast, _) if p_to > 1 => Box::new(BroadcastWriter {
            targets,
            buf: Vec::with_capacity(batch_size),
            stamp: Stamp::EMPTY,
            since: None,
            convert,
            _t: PhantomData,
        }),
        _ => {
            let forward = partition == Partition::Forward && p_from == p_to;
            Box::new(SingleWriter {
                targets,
                buf: Vec::with_capacity(batch_size),
                stamp: Stamp::EMPTY,
                since: None,
                // Different upstream workers start at different targets, so round-robin
                // spreads load even when each sends only a few batches.
                next: from % p_to,
                round_robin: !forward && p_to > 1,
                convert,
                _t: PhantomData,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::key_hash;
    use std::sync::atomic::AtomicBool;

    fn spec(
        partition: Partition,
        from: usize,
        p_from: usize,
        batch_size: usize,
        groups: u16,
    ) -> WriterSpec {
        WriterSpec {
            partition,
            from,
            p_from,
            batch_size,
            groups,
        }
    }

    /// The receiving ends of an edge's channels.
    type Receivers = Vec<crossbeam_channel::Receiver<Message<u64>>>;

    /// A hash writer of worker 0 of `p_from` into `targets` channels, batches of 4, 64 key
    /// groups.
    fn hash_writer(targets: usize, p_from: usize) -> (Box<dyn EdgeWriter<u64>>, Receivers) {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..targets)
            .map(|_| crossbeam_channel::bounded(100))
            .unzip();
        let w = make_writer(
            spec(Partition::Hash, 0, p_from, 4, 64),
            txs,
            |x: u64| x,
            Some(|x: &u64| key_hash(x)),
        );
        (w, rxs)
    }

    #[test]
    fn hash_writer_sends_each_key_to_its_owner() {
        let (mut w, rxs) = hash_writer(3, 1);
        let abort = AtomicBool::new(false);
        let mut io = IoCx {
            abort: &abort,
            handing_over: &abort,
            timing: false,
            blocked_ns: 0,
        };
        let mut recs: Vec<u64> = (0..100).collect();
        w.write(&mut recs, Stamp::at(5), 0, &mut io).unwrap();
        assert!(w.pending_records() > 0);
        w.marker(Marker::End, &mut io).unwrap();
        assert_eq!(w.pending_records(), 0);
        let got = drain_all(&rxs);
        assert_eq!(got.iter().map(Vec::len).sum::<usize>(), 100);
        for (target, keys) in got.iter().enumerate() {
            for k in keys {
                assert_eq!(
                    worker_for_key_group(key_group(key_hash(k), 64), 64, 3),
                    target
                );
            }
        }
    }

    #[test]
    fn hash_to_one_target_sends_whole_batches_in_order() {
        let (mut w, rxs) = hash_writer(1, 2);
        let abort = AtomicBool::new(false);
        let mut io = IoCx {
            abort: &abort,
            handing_over: &abort,
            timing: false,
            blocked_ns: 0,
        };
        w.write(&mut (0..10).collect(), Stamp::at(5), 0, &mut io)
            .unwrap();
        assert_eq!(w.pending_records(), 2);
        w.marker(Marker::End, &mut io).unwrap();
        let batches: Vec<usize> = std::iter::from_fn(|| rxs[0].try_recv().ok())
            .filter_map(|m| match m {
                Message::Data { records, .. } => Some(records.len()),
                _ => None,
            })
            .collect();
        assert_eq!(batches, vec![4, 4, 2]);
    }

    #[test]
    fn rebalance_rotates_batches_and_broadcast_copies() {
        let abort = AtomicBool::new(false);
        let mut io = IoCx {
            abort: &abort,
            handing_over: &abort,
            timing: false,
            blocked_ns: 0,
        };
        let none: Option<fn(&u64) -> u64> = None;
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..2).map(|_| crossbeam_channel::bounded(100)).unzip();
        let mut w = make_writer(
            spec(Partition::Rebalance, 0, 1, 2, 1),
            txs,
            |x: u64| x,
            none,
        );
        w.write(&mut (0..8).collect(), Stamp::EMPTY, 0, &mut io)
            .unwrap();
        assert_eq!(drain_all(&rxs), vec![vec![0, 1, 4, 5], vec![2, 3, 6, 7]]);

        let (txs, rxs): (Vec<_>, Vec<_>) = (0..3).map(|_| crossbeam_channel::bounded(100)).unzip();
        let mut w = make_writer(
            spec(Partition::Broadcast, 0, 1, 2, 1),
            txs,
            |x: u64| x,
            none,
        );
        w.write(&mut vec![1, 2, 3], Stamp::EMPTY, 0, &mut io)
            .unwrap();
        w.flush(&mut io).unwrap();
        assert_eq!(drain_all(&rxs), vec![vec![1, 2, 3]; 3]);
    }

    #[test]
    fn forward_with_equal_parallelism_keeps_worker_pairs() {
        let abort = AtomicBool::new(false);
        let mut io = IoCx {
            abort: &abort,
            handing_over: &abort,
            timing: false,
            blocked_ns: 0,
        };
        let none: Option<fn(&u64) -> u64> = None;
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..3).map(|_| crossbeam_channel::bounded(100)).unzip();
        let mut w = make_writer(spec(Partition::Forward, 2, 3, 2, 1), txs, |x: u64| x, none);
        w.write(&mut (0..5).collect(), Stamp::EMPTY, 0, &mut io)
            .unwrap();
        assert_eq!(w.pending_since(), Some(0));
        w.flush(&mut io).unwrap();
        assert_eq!(drain_all(&rxs), vec![vec![], vec![], vec![0, 1, 2, 3, 4]]);
    }

    fn drain_all(rxs: &[crossbeam_channel::Receiver<Message<u64>>]) -> Vec<Vec<u64>> {
        rxs.iter()
            .map(|rx| {
                let mut out = vec![];
                while let Ok(m) = rx.try_recv() {
                    if let Message::Data { records, .. } = m {
                        out.extend(records);
                    }
                }
                out
            })
            .collect()
    }
}

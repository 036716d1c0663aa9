//! What travels on an edge: batches of records and control markers, over bounded channels.
//!
//! Every downstream worker has one bounded channel per input edge; all upstream workers of that
//! edge send into it. A full channel blocks the sender (backpressure). Blocking sends and receives
//! wake up every [`POLL`] to notice an abort, so no thread waits forever on a dead peer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{
    Receiver, RecvTimeoutError, SendTimeoutError, Sender, TryRecvError, TrySendError,
};

/// Event time, in the units the pipeline's timestamps use (milliseconds by convention).
pub type Timestamp = u64;

/// How often a blocked worker looks at the abort flag.
pub(crate) const POLL: Duration = Duration::from_millis(10);

/// The scheduled times (ns since job start) of the oldest and newest events a batch derives from.
///
/// Latency is measured from each event's scheduled time; a batch carries the range of its
/// events' scheduled times rather than one stamp per record, so the data path stays a plain
/// `Vec<T>`. Sinks spread a batch's records evenly over the range when they record latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub min: u64,
    pub max: u64,
}

impl Stamp {
    pub const EMPTY: Stamp = Stamp {
        min: u64::MAX,
        max: 0,
    };

    pub fn at(t: u64) -> Stamp {
        Stamp { min: t, max: t }
    }

    pub fn is_empty(&self) -> bool {
        self.min > self.max
    }

    #[inline]
    pub fn merge(&mut self, other: Stamp) {
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// A message on an edge. `from` is the sending worker's index within its stage.
pub(crate) enum Message<T> {
    Data {
        records: Vec<T>,
        stamp: Stamp,
    },
    Watermark {
        from: u32,
        ts: Timestamp,
    },
    Barrier {
        from: u32,
        id: u64,
    },
    End {
        from: u32,
    },
    /// The sender has no input for now: leave it out of the watermark until it sends one.
    Idle {
        from: u32,
    },
}

impl<T> Message<T> {
    /// Records the message carries (0 for a marker).
    pub fn records(&self) -> u64 {
        match self {
            Message::Data { records, .. } => records.len() as u64,
            _ => 0,
        }
    }
}

/// A control marker, sent to every target of an edge after its pending records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    Watermark(Timestamp),
    Barrier(u64),
    End,
    Idle,
}

impl Marker {
    pub fn message<T>(self, from: u32) -> Message<T> {
        match self {
            Marker::Watermark(ts) => Message::Watermark { from, ts },
            Marker::Barrier(id) => Message::Barrier { from, id },
            Marker::End => Message::End { from },
            Marker::Idle => Message::Idle { from },
        }
    }
}

/// The job was aborted (or a peer vanished) while a worker waited on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stopped;

/// Per-worker I/O context: the abort flag, the hand-over flag and the blocked-time accumulator.
pub(crate) struct IoCx<'a> {
    pub abort: &'a AtomicBool,
    /// Set while a reconfiguration hands queued records over: a full channel no longer blocks
    /// (see [`IoCx::send_or_return`]).
    pub handing_over: &'a AtomicBool,
    pub timing: bool,
    /// Nanoseconds spent blocked on full output channels.
    pub blocked_ns: u64,
}

impl IoCx<'_> {
    /// Whether a reconfiguration is handing queued records over.
    #[inline]
    pub fn handing_over(&self) -> bool {
        self.handing_over.load(Ordering::Relaxed)
    }

    /// Sends `msg`, blocking while the channel is full and counting that time as blocked —
    /// except while a hand-over runs, when a full channel gives the message back
    /// (`Ok(Some(msg))`) instead: its receiver may have stopped.
    pub fn send_or_return<T>(
        &mut self,
        tx: &Sender<Message<T>>,
        msg: Message<T>,
    ) -> Result<Option<Message<T>>, Stopped> {
        let mut msg = match tx.try_send(msg) {
            Ok(()) => return Ok(None),
            Err(TrySendError::Disconnected(_)) => return Err(Stopped),
            Err(TrySendError::Full(msg)) => msg,
        };
        if self.handing_over() {
            return Ok(Some(msg));
        }
        let start = self.timing.then(Instant::now);
        let result = loop {
            match tx.send_timeout(msg, POLL) {
                Ok(()) => break Ok(None),
                Err(SendTimeoutError::Disconnected(_)) => break Err(Stopped),
                Err(SendTimeoutError::Timeout(back)) => {
                    if self.abort.load(Ordering::Relaxed) {
                        break Err(Stopped);
                    }
                    if self.handing_over() {
                        break Ok(Some(back));
                    }
                    msg = back;
                }
            }
        };
        if let Some(start) = start {
            self.blocked_ns += start.elapsed().as_nanos() as u64;
        }
        result
    }
}

/// Outcome of waiting for input.
pub(crate) enum Received<T> {
    Message(usize, Message<T>),
    Timeout,
    Stopped,
}

/// Waits up to `wait` for a message on any of `inputs` (one receiver per input edge).
///
/// An input whose senders are all gone and which is empty is marked in `closed` and skipped:
/// with several inputs, one upstream stage may retire (having sent its barrier) while another
/// still has messages queued.
pub(crate) fn receive<T>(
    inputs: &[Receiver<Message<T>>],
    closed: &mut [bool],
    wait: Duration,
    abort: &AtomicBool,
) -> Received<T> {
    if abort.load(Ordering::Relaxed) {
        return Received::Stopped;
    }
    match inputs {
        [] => {
            std::thread::sleep(wait.min(POLL));
            Received::Timeout
        }
        [rx] => match rx.recv_timeout(wait) {
            Ok(msg) => Received::Message(0, msg),
            Err(RecvTimeoutError::Timeout) => Received::Timeout,
            Err(RecvTimeoutError::Disconnected) => Received::Stopped,
        },
        many => {
            // Fast path: take whatever is ready without building a selector.
            for (i, rx) in many.iter().enumerate() {
                if closed[i] {
                    continue;
                }
                match rx.try_recv() {
                    Ok(msg) => return Received::Message(i, msg),
                    Err(TryRecvError::Disconnected) => closed[i] = true,
                    Err(TryRecvError::Empty) => {}
                }
            }
            let deadline = std::time::Instant::now() + wait;
            loop {
                let open: Vec<usize> = (0..many.len()).filter(|&i| !closed[i]).collect();
                if open.is_empty() {
                    return Received::Stopped;
                }
                let mut select = crossbeam_channel::Select::new();
                for &i in &open {
                    select.recv(&many[i]);
                }
                match select.select_deadline(deadline) {
                    Ok(op) => {
                        let i = open[op.index()];
                        match op.recv(&many[i]) {
                            Ok(msg) => return Received::Message(i, msg),
                            Err(_) => closed[i] = true,
                        }
                    }
                    Err(_) => return Received::Timeout,
                }
            }
        }
    }
}

/// A type-erased view of one channel, kept by the controller: queue length for metrics, and
/// the records left in it when a job is aborted.
pub(crate) trait QueueProbe: Send {
    /// Messages currently queued.
    fn len(&self) -> usize;
    /// Takes everything queued and returns how many records it held.
    fn drain_records(&self) -> u64;
    /// Takes everything queued, as a `Vec<Message<T>>` in arrival order.
    fn take_messages(&self) -> Box<dyn std::any::Any + Send>;
}

impl<T: Send + 'static> QueueProbe for Receiver<Message<T>> {
    fn len(&self) -> usize {
        Receiver::len(self)
    }

    fn drain_records(&self) -> u64 {
        self.try_iter().map(|m| m.records()).sum()
    }

    fn take_messages(&self) -> Box<dyn std::any::Any + Send> {
        let messages: Vec<Message<T>> = self.try_iter().collect();
        Box::new(messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_merge_to_the_covering_range() {
        let mut s = Stamp::EMPTY;
        assert!(s.is_empty());
        s.merge(Stamp::at(10));
        s.merge(Stamp { min: 4, max: 7 });
        assert_eq!(s, Stamp { min: 4, max: 10 });
    }

    #[test]
    fn blocked_send_gives_up_on_abort() {
        let (tx, _rx) = crossbeam_channel::bounded::<Message<u32>>(1);
        let abort = AtomicBool::new(false);
        let handing_over = AtomicBool::new(false);
        let mut io = IoCx {
            abort: &abort,
            handing_over: &handing_over,
            timing: true,
            blocked_ns: 0,
        };
        assert!(matches!(
            io.send_or_return(&tx, Message::End { from: 0 }),
            Ok(None)
        ));
        abort.store(true, Ordering::Relaxed);
        assert!(matches!(
            io.send_or_return(&tx, Message::End { from: 0 }),
            Err(Stopped)
        ));
        assert!(io.blocked_ns > 0);
    }

    #[test]
    fn a_full_channel_hands_the_message_back_during_a_hand_over() {
        let (tx, rx) = crossbeam_channel::bounded::<Message<u32>>(1);
        let abort = AtomicBool::new(false);
        let handing_over = AtomicBool::new(true);
        let mut io = IoCx {
            abort: &abort,
            handing_over: &handing_over,
            timing: true,
            blocked_ns: 0,
        };
        // Room: sent. Full: given back at once, not blocked on.
        assert!(matches!(
            io.send_or_return(&tx, Message::End { from: 0 }),
            Ok(None)
        ));
        assert!(matches!(
            io.send_or_return(&tx, Message::End { from: 1 }),
            Ok(Some(Message::End { from: 1 }))
        ));
        assert_eq!(io.blocked_ns, 0);
        assert_eq!(rx.len(), 1);
    }

    #[test]
    fn receive_takes_from_any_input() {
        let (tx1, rx1) = crossbeam_channel::bounded::<Message<u32>>(4);
        let (_tx2, rx2) = crossbeam_channel::bounded::<Message<u32>>(4);
        let abort = AtomicBool::new(false);
        tx1.send(Message::End { from: 3 }).unwrap();
        let mut closed = [false; 2];
        match receive(&[rx2.clone(), rx1.clone()], &mut closed, POLL, &abort) {
            Received::Message(1, Message::End { from: 3 }) => {}
            _ => panic!("expected the end marker from input 1"),
        }
        assert!(matches!(
            receive(
                &[rx2.clone(), rx1.clone()],
                &mut closed,
                Duration::from_millis(1),
                &abort
            ),
            Received::Timeout
        ));
    }

    #[test]
    fn a_closed_input_does_not_hide_the_others() {
        let (tx1, rx1) = crossbeam_channel::bounded::<Message<u32>>(4);
        let (tx2, rx2) = crossbeam_channel::bounded::<Message<u32>>(4);
        let abort = AtomicBool::new(false);
        drop(tx1);
        tx2.send(Message::End { from: 1 }).unwrap();
        let mut closed = [false; 2];
        for _ in 0..20 {
            // The first input is disconnected; the second still has its marker.
            match receive(&[rx1.clone(), rx2.clone()], &mut closed, POLL, &abort) {
                Received::Message(1, Message::End { from: 1 }) => {
                    tx2.send(Message::End { from: 1 }).unwrap();
                }
                _ => panic!("lost the second input's message"),
            }
        }
        assert!(closed[0]);
    }

    #[test]
    fn probe_drains_and_counts_records() {
        let (tx, rx) = crossbeam_channel::bounded::<Message<u32>>(4);
        tx.send(Message::Data {
            records: vec![1, 2, 3],
            stamp: Stamp::EMPTY,
        })
        .unwrap();
        tx.send(Message::End { from: 0 }).unwrap();
        assert_eq!(QueueProbe::len(&rx), 2);
        assert_eq!(rx.drain_records(), 3);
        assert_eq!(QueueProbe::len(&rx), 0);
    }
}

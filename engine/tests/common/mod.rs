//! Test pipelines shared by the engine's integration tests: a source the test releases in
//! chunks, a sink the test can hold shut, and small operators with known single-threaded
//! results.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rheo_engine::operator::{Context, Operator, Sink};
use rheo_engine::source::{Source, SourceContext, SourceStatus};
use rheo_engine::state::KeyedState;

/// A test record: data, or the final count of a key at a keyed stage.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rec {
    Data {
        key: u32,
        seq: u32,
        val: u64,
        lin: u8,
    },
    Count {
        stage: u8,
        key: u32,
        n: u64,
    },
}

impl Rec {
    pub fn key(&self) -> u32 {
        match self {
            Rec::Data { key, .. } | Rec::Count { key, .. } => *key,
        }
    }
}

/// Numbers records per key in input order.
pub fn records(input: &[(u32, u64)]) -> Vec<Rec> {
    let mut seq = std::collections::HashMap::new();
    input
        .iter()
        .map(|&(key, val)| {
            let s = seq.entry(key).or_insert(0u32);
            *s += 1;
            Rec::Data {
                key,
                seq: *s,
                val,
                lin: 0,
            }
        })
        .collect()
}

/// Emits its input only as far as the test has released it.
pub struct GatedSource {
    pub input: Vec<Rec>,
    pub next: usize,
    pub released: Arc<AtomicUsize>,
    pub emitted: Arc<AtomicUsize>,
}

impl Source for GatedSource {
    type Out = Rec;

    fn poll(&mut self, out: &mut Vec<Rec>, max: usize, _: &mut SourceContext) -> SourceStatus {
        let allowed = self.released.load(Ordering::Acquire).min(self.input.len());
        let end = allowed.min(self.next + max);
        out.extend_from_slice(&self.input[self.next..end]);
        self.next = end;
        self.emitted.store(end, Ordering::Release);
        if self.next == self.input.len() {
            SourceStatus::Exhausted
        } else if self.next == allowed {
            SourceStatus::Idle(Duration::from_millis(1))
        } else {
            SourceStatus::Ready
        }
    }
}

/// A gate a sink waits at while it is closed.
#[derive(Default)]
pub struct Gate {
    closed: Mutex<bool>,
    cv: Condvar,
    pub waiting: AtomicUsize,
}

impl Gate {
    pub fn close(&self) {
        *self.closed.lock().unwrap() = true;
    }

    pub fn open(&self) {
        *self.closed.lock().unwrap() = false;
        self.cv.notify_all();
    }

    pub fn pass(&self) {
        let mut closed = self.closed.lock().unwrap();
        if *closed {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            while *closed {
                closed = self.cv.wait(closed).unwrap();
            }
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Waits until a sink is held at the gate.
    pub fn wait_for_waiter(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.waiting.load(Ordering::SeqCst) == 0 {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        true
    }
}

/// Collects everything, passing the gate before each batch.
pub struct CollectSink {
    pub out: Arc<Mutex<Vec<Rec>>>,
    pub gate: Arc<Gate>,
    pub received: Arc<AtomicU64>,
}

impl Sink<Rec> for CollectSink {
    fn write(&mut self, batch: &mut Vec<Rec>) {
        self.gate.pass();
        self.received
            .fetch_add(batch.len() as u64, Ordering::SeqCst);
        self.out.lock().unwrap().append(batch);
    }
}

/// `val → val · mult + 1`, and optionally sets the lineage.
pub struct MapOp {
    pub mult: u64,
    pub lin: Option<u8>,
}

pub fn map_rec(r: Rec, mult: u64, lin: Option<u8>) -> Rec {
    match r {
        Rec::Data {
            key,
            seq,
            val,
            lin: l,
        } => Rec::Data {
            key,
            seq,
            val: val.wrapping_mul(mult).wrapping_add(1),
            lin: lin.unwrap_or(l),
        },
        c => c,
    }
}

impl Operator for MapOp {
    type In = Rec;
    type Out = Rec;
    type State = ();
    fn on_batch(&mut self, batch: &mut Vec<Rec>, cx: &mut Context<'_, Rec, ()>) {
        for r in batch.drain(..) {
            cx.emit(map_rec(r, self.mult, self.lin));
        }
    }
}

/// Keeps data whose mixed value is not a multiple of `m`: about `(m - 1) / m` of it.
pub struct FilterOp {
    pub m: u64,
}

/// Mixes the value before the modulus because maps upstream are affine (`val · mult + 1`):
/// a plain `val % m` can be zero for every record after some chains (`·4+1` then `·7+1` is
/// always a multiple of 4), and then no data reaches the sink at all.
pub fn keep(r: &Rec, m: u64) -> bool {
    match r {
        // One SplitMix64 step from `val`: spreads any regular pattern over all bits.
        Rec::Data { val, .. } => !SplitMix(*val).next().is_multiple_of(m),
        Rec::Count { .. } => true,
    }
}

/// SplitMix64: the tests' small deterministic generator (and, one step from a value, a mixer).
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

impl Operator for FilterOp {
    type In = Rec;
    type Out = Rec;
    type State = ();
    fn on_batch(&mut self, batch: &mut Vec<Rec>, cx: &mut Context<'_, Rec, ()>) {
        for r in batch.drain(..) {
            if keep(&r, self.m) {
                cx.emit(r);
            }
        }
    }
}

/// Emits one copy of data with an even value and two of data with an odd one.
pub struct FlatMapOp;

pub fn copies(r: &Rec) -> usize {
    match r {
        Rec::Data { val, .. } => 1 + (val % 2) as usize,
        Rec::Count { .. } => 1,
    }
}

impl Operator for FlatMapOp {
    type In = Rec;
    type Out = Rec;
    type State = ();
    fn on_batch(&mut self, batch: &mut Vec<Rec>, cx: &mut Context<'_, Rec, ()>) {
        for r in batch.drain(..) {
            for _ in 0..copies(&r) {
                cx.emit(r.clone());
            }
        }
    }
}

/// Per key: the count of data records and the last sequence number seen per lineage.
#[derive(Debug, Default, Clone)]
pub struct KeyStats {
    pub count: u64,
    pub last_seq: [u32; 4],
}

/// Counts data per key in keyed state, passes every record through, and emits the final
/// counts at the end; counts records whose sequence number went backwards for their lineage.
pub struct KeyedCountOp {
    pub id: u8,
    pub violations: Arc<AtomicU64>,
}

impl Operator for KeyedCountOp {
    type In = Rec;
    type Out = Rec;
    type State = KeyedState<u32, KeyStats>;
    fn on_batch(&mut self, batch: &mut Vec<Rec>, cx: &mut Context<'_, Rec, Self::State>) {
        for r in batch.drain(..) {
            if let Rec::Data { key, seq, lin, .. } = r {
                let stats = cx.state().get_or_insert_with(key, KeyStats::default);
                stats.count += 1;
                let last = &mut stats.last_seq[lin as usize % 4];
                if seq < *last {
                    self.violations.fetch_add(1, Ordering::Relaxed);
                }
                *last = seq;
            }
            cx.emit(r);
        }
    }

    fn on_end(&mut self, cx: &mut Context<'_, Rec, Self::State>) {
        let id = self.id;
        let counts: Vec<Rec> = cx
            .state()
            .iter()
            .map(|(k, s)| Rec::Count {
                stage: id,
                key: *k,
                n: s.count,
            })
            .collect();
        cx.emit_all(counts);
    }
}

/// Runs `f` on another thread and panics if it does not finish within `limit`: a hang becomes
/// a test failure instead of a stuck CI run.
pub fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            let _ = handle.join();
            v
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("the test body ended without a result"),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("timed out after {limit:?}: the job hangs")
        }
    }
}

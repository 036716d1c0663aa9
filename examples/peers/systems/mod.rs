//! The systems of the peers benchmark and the workloads they run, shared by the harness
//! (`examples/peers`), the criterion bench (`benches/peers.rs`) and the equality test
//! (`tests/peers.rs`).
//!
//! Every system reads the same in-memory input (generated once, before timing), splits it the
//! same way (blocks of [`BATCH`] events dealt round-robin to the workers), batches by
//! [`BATCH`], and ends in the same order-independent checksum of its output
//! ([`Checksum::of`](rheo::operators::sinks::Checksum::of)), so the answers compare exactly.

pub mod input;
pub mod rheo_pipeline;
pub mod single_loop;
pub mod threads;
pub mod timely_dataflow;

use std::fmt;

pub use input::{Answer, Input, Workload};
pub use rheo_pipeline::Shape;

/// A system under comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// rheo with stateless operators chained into their upstream stage.
    Rheo,
    /// rheo with one stage per operator.
    RheoStaged,
    /// timely-dataflow, written as its own examples write it.
    Timely,
    /// Plain threads joined by bounded crossbeam channels.
    Threads,
    /// One thread, one loop (the ceiling per core).
    SingleLoop,
}

impl System {
    /// All five, rheo first (the others' ratios are to it).
    pub const ALL: [System; 5] = [
        System::Rheo,
        System::RheoStaged,
        System::Timely,
        System::Threads,
        System::SingleLoop,
    ];

    /// The name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            System::Rheo => "rheo",
            System::RheoStaged => "rheo-staged",
            System::Timely => "timely",
            System::Threads => "threads",
            System::SingleLoop => "single-loop",
        }
    }

    /// How the system is configured for `workload` on `cores` cores.
    pub fn config(self, workload: Workload, cores: usize) -> String {
        match self {
            System::Rheo => rheo_pipeline::config(workload, cores, Shape::Chained),
            System::RheoStaged => rheo_pipeline::config(workload, cores, Shape::Staged),
            System::Timely => format!("{cores} worker(s), one dataflow each"),
            System::Threads => threads::config(workload, cores),
            System::SingleLoop => "1 thread".to_owned(),
        }
    }

    /// Runs `workload` over `input` with `cores` workers per parallel stage.
    pub fn run(self, workload: Workload, input: &Input, cores: usize) -> Result<Answer, RunError> {
        match self {
            System::Rheo => rheo_pipeline::run(workload, input, cores, Shape::Chained),
            System::RheoStaged => rheo_pipeline::run(workload, input, cores, Shape::Staged),
            System::Timely => timely_dataflow::run(workload, input, cores),
            System::Threads => Ok(threads::run(workload, input, cores)),
            System::SingleLoop => Ok(single_loop::run(workload, input)),
        }
    }
}

/// A system failed to run a workload.
#[derive(Debug)]
pub struct RunError {
    /// Which system.
    pub system: System,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.system.name(), self.reason)
    }
}

impl std::error::Error for RunError {}

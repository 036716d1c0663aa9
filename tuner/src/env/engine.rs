//! [`EngineEnv`]: a workload running on the engine, observed through its job handle.

use std::time::Duration;

use rheo_engine::{
    JobConfig, JobHandle, JobOptions, MetricsSnapshot, ReconfigError, SnapshotStream,
};

use super::{EnvError, Environment};
use crate::spec::{Workload, build_pipeline};

/// A running job of a workload. Each observation waits for the job's next epoch; a run
/// lasts the workload's number of epochs, then the job is stopped.
pub struct EngineEnv {
    job: Option<JobHandle>,
    snapshots: SnapshotStream,
    epochs_left: usize,
    epoch_s: f64,
}

impl EngineEnv {
    /// Starts `workload` on the engine with keys drawn from `seed`.
    pub fn start(workload: &Workload, seed: u64) -> Result<EngineEnv, EnvError> {
        let pipeline = build_pipeline(workload, seed)?;
        let options = JobOptions::default()
            .epoch(Duration::from_secs_f64(workload.epoch_s))
            .rescale(workload.rescale);
        let job = pipeline.start(options)?;
        let snapshots = job.snapshots();
        Ok(EngineEnv {
            job: Some(job),
            snapshots,
            epochs_left: workload.epochs(),
            epoch_s: workload.epoch_s,
        })
    }

    /// Stops the job (whatever it still has in flight is dropped).
    pub fn stop(&mut self) {
        if let Some(job) = self.job.take() {
            job.abort();
            let _ = job.join();
        }
    }
}

impl Drop for EngineEnv {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Environment for EngineEnv {
    fn backend(&self) -> &'static str {
        "engine"
    }

    fn observe(&mut self) -> Result<Option<MetricsSnapshot>, EnvError> {
        if self.epochs_left == 0 {
            self.stop();
            return Ok(None);
        }
        loop {
            let Some(snapshot) = self
                .snapshots
                .next_timeout(Duration::from_secs_f64(self.epoch_s * 10.0 + 5.0))
            else {
                // The job ended (or stalled): no more epochs.
                self.stop();
                return Ok(None);
            };
            // The last snapshot of a job covers a partial epoch; a run is made of whole ones.
            if snapshot.epoch_s < 0.5 * self.epoch_s {
                continue;
            }
            self.epochs_left -= 1;
            return Ok(Some((*snapshot).clone()));
        }
    }

    fn apply(&mut self, config: &JobConfig) -> Result<(), EnvError> {
        let Some(job) = &self.job else { return Ok(()) };
        if job.config() == *config {
            return Ok(());
        }
        match job.reconfigure(config.clone()) {
            Ok(_) | Err(ReconfigError::JobNotRunning) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

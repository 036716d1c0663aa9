//! Explaining a live run as it goes, on a thread of its own: the decision thread hands each
//! applied decision over a channel and never waits for the explanation.

use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;

use rheo_engine::JobConfig;

use super::runlog::stage_decisions;
use super::{Explainer, Explanation};
use crate::agent::Policy;
use crate::tuners::Decision;

/// The explainer thread of a live run.
pub struct LiveExplainer {
    to_thread: Option<Sender<(u64, JobConfig, Decision)>>,
    thread: Option<JoinHandle<Vec<Explanation>>>,
}

impl LiveExplainer {
    /// Starts the thread for `policy`.
    pub fn start(policy: &Policy) -> std::io::Result<LiveExplainer> {
        let (tx, rx) = channel::<(u64, JobConfig, Decision)>();
        let policy = policy.clone();
        let thread = std::thread::Builder::new()
            .name("rheo-explainer".into())
            .spawn(move || {
                let mut explainer = Explainer::new(&policy);
                let mut seen = Vec::new();
                let mut out = Vec::new();
                for (epoch, before, decision) in rx {
                    let Ok(decisions) = stage_decisions(epoch, &before, &decision) else {
                        continue;
                    };
                    // Permutation values come from the decisions seen so far in the run.
                    seen.extend(decisions.iter().map(|d| d.features()));
                    explainer = explainer.with_background(seen.iter().copied());
                    out.extend(explainer.explain_all(&decisions));
                }
                out
            })?;
        Ok(LiveExplainer {
            to_thread: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands over a decision made after `epoch` on a job running `before` (after it was
    /// applied). Never blocks.
    pub fn send(&self, epoch: u64, before: &JobConfig, decision: &Decision) {
        if let Some(tx) = &self.to_thread {
            // A thread that died takes its explanations with it; the run goes on.
            let _ = tx.send((epoch, before.clone(), decision.clone()));
        }
    }

    /// Waits for the explanations of every decision handed over.
    pub fn finish(mut self) -> Vec<Explanation> {
        self.to_thread.take();
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

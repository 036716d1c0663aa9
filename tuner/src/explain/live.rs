//! Explaining a live run as it goes, on a thread of its own: after each decision was applied,
//! the run loop hands its [`DecisionTrace`] over a channel and never waits for the explanation.

use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;

use super::runlog::trace_decisions;
use super::{Explainer, Explanation};
use crate::agent::Policy;
use crate::agent::trace::DecisionTrace;

/// The explainer thread of a live run.
pub struct LiveExplainer {
    to_thread: Option<Sender<DecisionTrace>>,
    thread: Option<JoinHandle<Vec<Explanation>>>,
}

impl LiveExplainer {
    /// Starts the thread for `policy`.
    pub fn start(policy: &Policy) -> std::io::Result<LiveExplainer> {
        let (tx, rx) = channel::<DecisionTrace>();
        let policy = policy.clone();
        let thread = std::thread::Builder::new()
            .name("rheo-explainer".into())
            .spawn(move || {
                let mut explainer = Explainer::new(&policy);
                let mut seen = Vec::new();
                let mut out = Vec::new();
                for trace in rx {
                    let decisions = trace_decisions(&trace);
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

    /// Hands over an applied decision's trace. Never blocks.
    pub fn send(&self, trace: DecisionTrace) {
        if let Some(tx) = &self.to_thread {
            // A thread that died takes its explanations with it; the run goes on.
            let _ = tx.send(trace);
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

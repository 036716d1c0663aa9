//! The live run's companion thread: after each decision was applied, the run loop hands its
//! [`DecisionTrace`] over a channel and never waits for the explanation; when the agent learns
//! online, the same thread fine-tunes the policy on the run's decisions at the end. Saliency and
//! fine-tuning both need gradients; neither ever runs on the decision thread.

use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;

use super::runlog::trace_decisions;
use super::{Explainer, Explanation, StageDecision};
use crate::agent::Policy;
use crate::agent::policy::PolicyNet;
use crate::agent::ppo::{PpoConfig, Transition, advantages, fine_tune};
use crate::agent::trace::DecisionTrace;

/// Work for the companion thread, done in the order it was handed over.
enum Work {
    Explain(DecisionTrace),
    FineTune(Vec<Transition>, PpoConfig),
}

/// A policy fine-tuned online, and the last update's losses (policy, value, entropy).
pub type FineTuned = Result<(PolicyNet, (f64, f64, f64)), String>;

/// What the explainer thread of a live run hands back: the decisions it was handed, read from
/// their traces (the analysis of the run needs them, and need not parse the run log's JSON
/// again), and their explanations.
#[derive(Debug, Clone, Default)]
pub struct LiveExplained {
    /// Every stage decision handed over, in order.
    pub decisions: Vec<StageDecision>,
    /// Their explanations, in the same order.
    pub explanations: Vec<Explanation>,
}

/// What the thread hands back when it ends.
type Outcome = (LiveExplained, Option<FineTuned>);

/// The explainer (and online fine-tuning) thread of a live run.
pub struct LiveExplainer {
    to_thread: Option<Sender<Work>>,
    thread: Option<JoinHandle<Outcome>>,
}

impl LiveExplainer {
    /// Starts the thread for `policy`.
    pub fn start(policy: &Policy) -> std::io::Result<LiveExplainer> {
        let (tx, rx) = channel::<Work>();
        let policy = policy.clone();
        let thread = std::thread::Builder::new()
            .name("rheo-explainer".into())
            .spawn(move || {
                let mut explainer = Explainer::new(&policy);
                let mut out = LiveExplained::default();
                let mut fine_tuned = None;
                for work in rx {
                    match work {
                        Work::Explain(trace) => {
                            let decisions = trace_decisions(&trace);
                            // Permutation values come from the decisions seen so far in the run.
                            explainer.extend_background(decisions.iter().map(|d| d.features()));
                            out.explanations.extend(explainer.explain_all(&decisions));
                            out.decisions.extend(decisions);
                        }
                        Work::FineTune(mut experience, cfg) => {
                            advantages(&mut experience, cfg.gamma, cfg.lambda);
                            fine_tuned = Some(fine_tune(&policy.net, &experience, &cfg));
                        }
                    }
                }
                (out, fine_tuned)
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
            let _ = tx.send(Work::Explain(trace));
        }
    }

    /// Waits for the explanations of every decision handed over.
    pub fn finish(self) -> LiveExplained {
        self.join().0
    }

    /// Fine-tunes the policy on a run's `experience` (rewards filled in, advantages not yet
    /// computed) after the explanations still queued, and waits for both.
    pub fn fine_tune_and_finish(
        self,
        experience: Vec<Transition>,
        cfg: &PpoConfig,
    ) -> (LiveExplained, FineTuned) {
        if let Some(tx) = &self.to_thread {
            let _ = tx.send(Work::FineTune(experience, cfg.clone()));
        }
        let (explanations, fine_tuned) = self.join();
        (
            explanations,
            fine_tuned.unwrap_or_else(|| Err("the fine-tuning thread stopped early".into())),
        )
    }

    fn join(mut self) -> Outcome {
        self.to_thread.take();
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

//! The embedded RL agent: features, the Burn policy, PPO training, checkpoints, and the
//! guardrails it acts behind.

pub mod actions;
pub mod checkpoint;
pub mod curve;
pub mod features;
pub mod guard;
pub mod policy;
pub mod ppo;
pub mod trace;
mod tuner;

pub use tuner::{Agent, Policy, StageChoice, StageFallback, fallback_stages};

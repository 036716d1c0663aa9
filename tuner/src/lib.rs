//! # rheo-tuner
//!
//! The tuner of rheo. This crate starts with the one thing every tuner — static, DS2, the
//! oracle and the RL agent — must share so that comparisons are honest: the **objective**
//! (design.md §4), computed from the engine's per-epoch
//! [`MetricsSnapshot`](rheo_engine::MetricsSnapshot)s.
//!
//! ```
//! use rheo_tuner::objective::{Objective, run_objective};
//! let objective = Objective { latency_slo_ms: 100.0, max_threads: 8, stages: vec!["map".into()] };
//! # let _ = (objective, run_objective(&[]));
//! ```

#![warn(missing_docs)]

pub mod objective;

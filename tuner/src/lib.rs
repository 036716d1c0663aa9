//! # rheo-tuner
//!
//! The tuning ground of rheo: workload specs that run as real pipelines ([`spec`]), the
//! objective every tuner is scored by ([`objective`]), and the environments and tuners built on
//! them.
//!
//! ```
//! use rheo_tuner::spec::Workload;
//! let w = Workload::parse(r#"
//!     name = "tiny"
//!     duration_s = 10
//!     [source]
//!     rate = { profile = "constant", value = 1000 }
//!     [[stage]]
//!     name = "work"
//!     wait_us = 50
//!     [objective]
//!     latency_slo_ms = 100
//!     max_threads = 4
//! "#, "tiny.toml")?;
//! assert_eq!(w.epochs(), 10);
//! # Ok::<(), rheo_tuner::spec::SpecError>(())
//! ```

#![warn(missing_docs)]

pub mod action;
pub mod agent;
pub mod calibrate;
pub mod convergence;
pub mod env;
pub mod explain;
pub mod objective;
pub mod run;
pub mod scoreboard;
pub mod spec;
pub mod tuners;

//! Harnesses shared by the `rheo` command line and the examples.

pub mod nexmark;
pub mod scaling;
pub mod tuning;

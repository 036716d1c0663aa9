//! Harnesses shared by the `rheo` command line and the examples.

pub mod nexmark;
mod scaling;
pub mod tuning;

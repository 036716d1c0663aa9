//! `rheo nexmark`: the Nexmark queries, each measured in its own process.

pub use rheo::harness::nexmark::Args;

/// Runs the harness.
pub fn run_nexmark(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    rheo::harness::nexmark::run(&["nexmark"], args)
}

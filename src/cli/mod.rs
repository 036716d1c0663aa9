//! One module per subcommand.

pub mod calibrate;
pub mod control;
pub mod metrics;
pub mod nexmark;
pub mod scoreboard;
pub mod train;
pub mod tune;

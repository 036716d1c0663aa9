//! One module per subcommand.

pub mod metrics;
pub mod scoreboard;
pub mod tune;

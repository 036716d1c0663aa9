//! The `rheo` command line.

mod cli;

// The engine hands every record's allocations from the thread that made them to the thread
// that drops them; mimalloc frees across threads without the arena locks of the system
// allocator (docs/benchmarks.md, Nexmark, shows the difference).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// rheo: a stream processing engine with a built-in tuner.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prints the per-epoch table of a metrics log written with `JobOptions::metrics_jsonl`.
    Metrics(cli::metrics::Args),
    /// Runs one tuner on one workload and prints a row per epoch.
    Tune(cli::tune::Args),
    /// Scores static, tuned DS2 and the oracle on workloads.
    Scoreboard(cli::scoreboard::Args),
    /// Fits the simulator to engine runs of workloads and reports its error.
    Calibrate(cli::calibrate::Args),
    /// Trains the RL agent's policy with PPO on the simulator.
    Train(cli::train::Args),
    /// Writes the HTML report of a run log, every agent decision explained.
    Explain(cli::explain::Args),
    /// Distils a shallow decision tree from the policy and measures its fidelity.
    Distill(cli::distill::Args),
    /// Runs Nexmark queries, each in its own process, and prints their speed.
    Nexmark(cli::nexmark::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Metrics(args) => cli::metrics::run(args),
        Command::Tune(args) => cli::tune::run_tune(args),
        Command::Scoreboard(args) => cli::scoreboard::run_scoreboard(args),
        Command::Calibrate(args) => cli::calibrate::run_calibrate(args),
        Command::Nexmark(args) => cli::nexmark::run_nexmark(args),
        Command::Train(args) => cli::train::run_train(args),
        Command::Explain(args) => cli::explain::run_explain(args),
        Command::Distill(args) => cli::distill::run_distill(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rheo: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

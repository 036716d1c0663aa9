//! The `rheo` command line.

mod cli;

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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Metrics(args) => cli::metrics::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rheo: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

//! The Nexmark benchmark: `cargo run --release --example nexmark -- --query all --events 10000000`
//! (the same harness as `rheo nexmark`). Each query runs in its own child process and prints
//! events per CPU-second, the generator's own rate, the speed-up from 1 to 2 workers, latency,
//! peak memory and a checksum of its output.

use clap::Parser;

// As the `rheo` binary: records are allocated in one thread and dropped in another, which
// mimalloc handles without the system allocator's arena locks.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "Runs Nexmark queries on rheo, one child process per measurement")]
struct Cli {
    #[command(flatten)]
    args: rheo::harness::nexmark::Args,
}

fn main() -> std::process::ExitCode {
    match rheo::harness::nexmark::run(&[], Cli::parse().args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nexmark: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

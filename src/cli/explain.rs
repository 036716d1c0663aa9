//! `rheo explain`: the HTML report of a run log, with every agent decision explained.

use std::path::PathBuf;

use rheo::tuner::agent::Policy;
use rheo::tuner::explain::runlog::RunLog;
use rheo::tuner::explain::{Analysis, report};

/// Arguments of `rheo explain`.
#[derive(clap::Args)]
pub struct Args {
    /// A run log written by `rheo tune --run-log`.
    #[arg(long)]
    run: PathBuf,
    /// Where to write the report.
    #[arg(long, default_value = "report.html")]
    out: PathBuf,
    /// The policy checkpoint (default: the one the run log's header names).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
}

/// Reads the run log, explains it and writes the report.
pub fn run_explain(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let log = RunLog::read(&args.run)?;
    let analysis = match (log.tuner(), args.checkpoint.or_else(|| log.checkpoint())) {
        ("agent", Some(checkpoint)) => {
            let (policy, _) = Policy::load(&checkpoint)?;
            if let (Some(logged), Some(crc)) = (
                log.header["settings"]["checkpoint_crc32"].as_str(),
                policy.checksum,
            ) && logged != format!("{crc:08x}")
            {
                eprintln!(
                    "warning: {} has crc32 {crc:08x}, the run used {logged}: explanations are of the file as it is now",
                    checkpoint.display()
                );
            }
            // Read line by line: a bad or mismatched log names its file and line.
            let decisions = log.decisions()?;
            Some(Analysis::of_run(&policy, &log.header, decisions, None)?)
        }
        ("agent", None) => return Err("the run log names no checkpoint: pass --checkpoint".into()),
        _ => None,
    };
    let html = report::render(&log.header, &log.epochs, analysis.as_ref())?;
    report::write(&args.out, &html)?;
    print_summary(analysis.as_ref());
    println!("wrote {}", args.out.display());
    Ok(())
}

/// The decisions' sentences and the tree's fidelity, for the terminal.
pub fn print_summary(analysis: Option<&Analysis>) {
    let Some(a) = analysis else {
        return;
    };
    for (d, e) in a.decisions.iter().zip(&a.explanations) {
        if d.changed() || e.fallback.is_some() {
            println!("epoch {:>4}: {}", e.epoch, e.sentence);
        }
    }
    if let Some(t) = &a.tree {
        println!(
            "distilled tree: depth {}, {} leaves; fidelity {:.1}% overall, {:.1}% on {} moves ({} held-out decisions)",
            t.depth,
            t.leaves,
            t.fidelity * 100.0,
            t.fidelity_on_moves * 100.0,
            t.held_out_moves,
            t.held_out
        );
    }
}

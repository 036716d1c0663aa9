//! `rheo metrics LOG`: the per-epoch table of a JSON-lines metrics log.

use std::path::PathBuf;

use rheo::engine::metrics::read_json_lines;
use rheo::table::EpochTable;

/// Arguments of `rheo metrics`.
#[derive(clap::Args)]
pub struct Args {
    /// A file of snapshots, one JSON object per line.
    log: PathBuf,
}

/// Prints one row per snapshot.
pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let snapshots = read_json_lines(&args.log)?;
    let Some(first) = snapshots.first() else {
        println!("{}: no snapshots", args.log.display());
        return Ok(());
    };
    let table = EpochTable::new(first);
    println!("{}", table.header());
    for s in &snapshots {
        println!("{}", table.row(s));
    }
    Ok(())
}

//! Word count: counts the words of a file (or of generated text), prints a metrics table per
//! epoch while it runs, then the most frequent words.
//!
//! ```text
//! cargo run --release --example wordcount                 # generated text, 5 s at 20 000 lines/s
//! cargo run --release --example wordcount -- FILE         # the words of FILE
//! ```

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use rheo::prelude::*;
use rheo::table::EpochTable;

#[derive(Parser)]
struct Args {
    /// Text file to count (default: generated text).
    file: Option<PathBuf>,
    /// Generated lines per second.
    #[arg(long, default_value_t = 20_000.0)]
    rate: f64,
    /// Seconds of generated text.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Workers of the split and count stages.
    #[arg(long, default_value_t = 2)]
    parallelism: usize,
    /// Words to print.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

const VOCABULARY: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "had",
    "they",
    "you",
    "were",
    "stream",
    "record",
    "window",
    "barrier",
    "watermark",
    "operator",
    "latency",
    "throughput",
];

/// A line of 8 words, skewed towards the start of the vocabulary.
fn line(seq: u64, _scheduled: Duration) -> String {
    let mut x = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let words: Vec<&str> = (0..8)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Squaring a uniform draw favours small indices (a rough Zipf).
            let u = (x % 1_000_000) as f64 / 1e6;
            VOCABULARY[((u * u) * VOCABULARY.len() as f64) as usize]
        })
        .collect();
    words.join(" ")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let builder = PipelineBuilder::new();
    let lines = match &args.file {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let lines = std::io::BufReader::new(file).lines().map_while(Result::ok);
            builder.source("lines", IterSource::new(lines))
        }
        None => {
            let profile = RateProfile::Constant { value: args.rate };
            let generated =
                RateSource::new(profile, line).duration(Duration::from_secs(args.seconds));
            builder.source("lines", generated)
        }
    };
    let counts = Arc::new(Mutex::new(HashMap::<String, u64>::new()));
    let sink_counts = counts.clone();
    lines
        .rebalance()
        .flat_map("split", |line: String, out: &mut Vec<String>| {
            out.extend(line.split_whitespace().map(str::to_lowercase))
        })
        .parallelism(args.parallelism)
        .key_by(|word: &String| word.clone())
        .reduce(
            "count",
            |w: &String| (w.clone(), 0u64),
            |acc: &mut (String, u64), _| acc.1 += 1,
        )
        .parallelism(args.parallelism)
        .sink_fn("latest", move |(word, n): (String, u64)| {
            // Counts only grow: the latest update of a word is its count so far.
            let mut map = sink_counts.lock().unwrap_or_else(|e| e.into_inner());
            let entry = map.entry(word).or_insert(0);
            *entry = (*entry).max(n);
        });

    let job = builder.build()?.start(JobOptions::default())?;
    let mut table = None;
    for snapshot in job.snapshots() {
        let t = table.get_or_insert_with(|| {
            let t = EpochTable::new(&snapshot);
            println!("{}", t.header());
            t
        });
        println!("{}", t.row(&snapshot));
    }
    let report = job.join()?;

    let mut top: Vec<(String, u64)> = counts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let words: u64 = top.iter().map(|(_, n)| n).sum();
    println!(
        "\n{} words ({} distinct) in {:.2} s, p99 latency {:.1} ms",
        words,
        top.len(),
        report.duration.as_secs_f64(),
        report.latency.p99_ms
    );
    for (word, n) in top.iter().take(args.top) {
        println!("{n:>10}  {word}");
    }
    Ok(())
}

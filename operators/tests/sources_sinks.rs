//! Sources and sinks end to end: file lines in, JSON lines and channels out, Zipf keys split
//! over parallel source workers.

use std::collections::BTreeMap;
use std::time::Duration;

use rheo_engine::{JobError, JobOptions, PipelineBuilder};
use rheo_operators::prelude::*;
use rheo_operators::sources::fit_exponent;

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("rheo-{}-{name}", std::process::id()))
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let err = LinesSource::open("/nonexistent/words.txt")
        .err()
        .expect("the file does not exist");
    assert!(err.to_string().contains("/nonexistent/words.txt"), "{err}");
}

#[test]
fn lines_in_json_lines_out_through_parallel_workers() {
    let input = temp("in.txt");
    let output = temp("out.jsonl");
    let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let builder = PipelineBuilder::new();
    builder
        .source("file", LinesSource::open(&input).unwrap())
        .rebalance()
        .map("number", |line: String| {
            line["line ".len()..].parse::<u32>().unwrap_or(u32::MAX)
        })
        .parallelism(2)
        .to_jsonl("json", &output)
        .unwrap()
        .parallelism(2);
    builder.build().unwrap().run(JobOptions::default()).unwrap();
    let mut got: Vec<u32> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    got.sort();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
    std::fs::remove_file(&input).ok();
    std::fs::remove_file(&output).ok();
}

#[test]
fn a_json_lines_sink_on_a_bad_path_fails_before_the_job_starts() {
    let builder = PipelineBuilder::new();
    let err = builder
        .source("n", IterSource::new(0..3u8))
        .to_jsonl("json", "/nonexistent/dir/out.jsonl")
        .err()
        .expect("the directory does not exist");
    assert!(err.to_string().contains("/nonexistent/dir/out.jsonl"));
}

#[test]
fn a_slow_channel_reader_holds_the_job_back_without_losing_records() {
    let builder = PipelineBuilder::new();
    let rx = builder
        .source("n", IterSource::new(0..2000u32))
        .to_channel("out", 4);
    let job = builder
        .build()
        .unwrap()
        .start(JobOptions::default())
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // Nothing read yet: the job cannot have finished past the channel's capacity.
    assert!(!job.is_finished());
    let got: Vec<u32> = rx.iter().collect();
    job.join().unwrap();
    assert_eq!(got, (0..2000).collect::<Vec<_>>());
}

#[test]
fn zipf_keys_are_the_same_whatever_the_source_parallelism() {
    let count = |workers: usize| {
        let builder = PipelineBuilder::new();
        let keys = builder
            .parallel_source("keys", workers, |i, n| {
                RateSource::new(
                    RateProfile::Constant { value: 1e9 },
                    ZipfKeys::new(500, 1.1, 3).unwrap(),
                )
                .split(i, n)
                .limit(100_000)
            })
            .collect("out");
        builder.build().unwrap().run(JobOptions::default()).unwrap();
        let mut counts = BTreeMap::new();
        for k in keys.take() {
            *counts.entry(k).or_insert(0u64) += 1;
        }
        counts
    };
    let one = count(1);
    assert_eq!(one, count(3));
    let by_rank: Vec<u64> = (0..500)
        .map(|k| one.get(&k).copied().unwrap_or(0))
        .collect();
    let fitted = fit_exponent(&by_rank);
    assert!((fitted - 1.1).abs() <= 0.05, "fitted {fitted}");
}

#[test]
fn a_panicking_user_function_names_its_stage() {
    let builder = PipelineBuilder::new();
    builder
        .source("n", IterSource::new(0..10u32))
        .map("divide", |x: u32| 100 / (x - x))
        .discard("out");
    match builder.build().unwrap().run(JobOptions::default()) {
        Err(JobError::OperatorPanicked { stage, .. }) => assert_eq!(stage, "divide"),
        other => panic!("expected the stage to be named, got {other:?}"),
    }
}

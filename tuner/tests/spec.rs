//! Workload specs: every error names the file, the field and the reason; every shipped spec
//! parses.

use rheo_tuner::spec::{SpecError, Workload};

const GOOD: &str = r#"
name = "two-stage"
duration_s = 30
[source]
rate = { profile = "step", values = [1000, 3000], period_s = 15 }
key_space = 500
key_skew = 0.8
[[stage]]
name = "parse"
cpu_us = 5.0
[[stage]]
name = "enrich"
wait_us = 200.0
partition = "hash"
keyed_state = true
[objective]
latency_slo_ms = 100
max_threads = 8
"#;

fn error(text: &str) -> SpecError {
    Workload::parse(text, "bad.toml").expect_err("the spec is invalid")
}

#[test]
fn a_good_spec_parses_with_defaults() {
    let w = Workload::parse(GOOD, "good.toml").unwrap();
    assert_eq!(w.stages.len(), 2);
    assert_eq!(w.stages[0].selectivity, 1.0);
    assert_eq!(w.initial.buffer, 64);
    assert_eq!(w.objective.max_buffered_records, 1_000_000);
    assert_eq!(w.epochs(), 30);
}

#[test]
fn a_spec_may_ask_for_hand_overs_and_drains_otherwise() {
    let w = Workload::parse(GOOD, "good.toml").unwrap();
    assert_eq!(w.rescale, rheo_engine::Rescale::Drain);
    let w = Workload::parse(&format!("rescale = \"hand-over\"\n{GOOD}"), "good.toml").unwrap();
    assert_eq!(w.rescale, rheo_engine::Rescale::HandOver);
    let e = error(&format!("rescale = \"handover\"\n{GOOD}"));
    assert_eq!(e.field, "rescale", "{e}");
    assert!(e.reason.contains("unknown variant"), "{e}");
}

#[test]
fn an_unknown_field_is_named_with_its_table() {
    let e = error(&GOOD.replace("wait_us = 200.0", "wait_us = 200.0\nwiat_us = 3"));
    assert_eq!(e.file.to_str(), Some("bad.toml"));
    assert_eq!(e.field, "stage[1].wiat_us");
    assert!(e.reason.contains("unknown field"), "{e}");
    assert!(
        e.to_string()
            .starts_with("bad.toml: stage[1].wiat_us: unknown field"),
        "{e}"
    );
}

#[test]
fn a_missing_field_is_named() {
    let e = error(&GOOD.replace("latency_slo_ms = 100\n", ""));
    assert_eq!(e.field, "objective.latency_slo_ms", "{e}");
    assert!(e.reason.contains("missing field"), "{e}");
    let e = error(&GOOD.replace("name = \"enrich\"\n", ""));
    assert_eq!(e.field, "stage[1].name", "{e}");
    let e = error(&GOOD.replace("duration_s = 30\n", ""));
    assert_eq!(e.field, "duration_s", "{e}");
}

#[test]
fn out_of_range_values_name_the_field_and_the_reason() {
    let cases = [
        (
            GOOD.replace("cpu_us = 5.0", "cpu_us = -1.0"),
            "stage[0].cpu_us",
            "must be a finite number >= 0",
        ),
        (
            GOOD.replace("max_threads = 8", "max_threads = 1"),
            "objective.max_threads",
            "one thread per stage",
        ),
        (
            GOOD.replace("key_skew = 0.8", "key_skew = -2"),
            "source.key_skew",
            ">= 0",
        ),
        (
            GOOD.replace("period_s = 15", "period_s = 0"),
            "source.rate.period_s",
            "> 0",
        ),
        (
            GOOD.replace("partition = \"hash\"\n", ""),
            "stage[1].keyed_state",
            "needs partition = \"hash\"",
        ),
        (
            GOOD.replace("name = \"enrich\"", "name = \"parse\""),
            "stage[1].name",
            "used by an earlier stage",
        ),
        (
            GOOD.replace("duration_s = 30", "duration_s = 0"),
            "duration_s",
            "> 0",
        ),
    ];
    for (text, field, reason) in cases {
        let e = error(&text);
        assert_eq!(e.field, field, "{e}");
        assert!(e.reason.contains(reason), "{e}");
    }
}

#[test]
fn a_wrong_type_names_the_field() {
    let e = error(&GOOD.replace("wait_us = 200.0", "wait_us = \"slow\""));
    assert_eq!(e.field, "stage[1].wait_us", "{e}");
    assert!(e.reason.contains("invalid type"), "{e}");
}

#[test]
fn an_unknown_rate_profile_is_an_error() {
    let e = error(&GOOD.replace("profile = \"step\"", "profile = \"zigzag\""));
    assert!(e.field.starts_with("source"), "{e}");
    assert!(e.reason.contains("zigzag"), "{e}");
}

#[test]
fn a_missing_file_is_named() {
    let e = Workload::load("/nonexistent/w.toml").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/w.toml"), "{e}");
}

#[test]
fn every_shipped_workload_parses() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../workloads");
    let mut found = 0;
    for dir in [root.clone(), root.join("held_out"), root.join("device")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Workload::load(&path).unwrap_or_else(|e| panic!("{e}"));
                found += 1;
            }
        }
    }
    assert!(found >= 12, "only {found} workloads shipped");
}

//! `--sim-cores`: the simulator models the machine it is told to, so a 2-core developer can
//! preview a scoreboard for a 16-core machine (and docs/benchmarks.md's 16-core simulator rows
//! are reproducible anywhere).

mod common;

use common::{rheo, run_with_json};

/// The oracle's objective and p99 latency (ms) on the CPU-heavy `cpu-step` workload (its
/// scorer needs 8 cores at the peak; SLO 200 ms) when the simulator has `cores`.
fn oracle_on(cores: &str) -> (f64, f64) {
    let workload = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/workloads/device/cpu-step.toml"
    );
    let (_, rows) = run_with_json(&[
        "scoreboard",
        "--workload",
        workload,
        "--backend",
        "sim",
        "--seeds",
        "1",
        "--tuners",
        "oracle",
        "--sim-cores",
        cores,
    ]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    (
        row["objective"].as_f64().unwrap(),
        row["p99_ms"].as_f64().unwrap(),
    )
}

#[test]
fn the_simulator_models_the_cores_it_is_given() {
    let (objective_16, p99_16) = oracle_on("16");
    let (objective_2, p99_2) = oracle_on("2");
    assert!(
        objective_16 > 0.5 && p99_16 < 200.0,
        "16 cores: {objective_16}, {p99_16} ms"
    );
    // Two cores run a 1 ms-per-record scorer at 2 000 records/s at most: the queues fill
    // whatever the plan.
    assert!(
        objective_2 < 0.0 && p99_2 > 2000.0,
        "2 cores: {objective_2}, {p99_2} ms"
    );
}

#[test]
fn zero_cores_is_refused() {
    let out = rheo()
        .args(["scoreboard", "--workload", "w.toml", "--sim-cores", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--sim-cores"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

//! `rheo nexmark --scaling`: one row per query and level, each level's child pinned to that many
//! cores, the same output at every level, and a level the machine can't pin refused by name.

mod common;

use common::{rheo, run_with_json};

#[test]
fn every_level_gets_a_row_with_the_same_output_and_speed_up_against_the_first() {
    let levels = if std::thread::available_parallelism().map_or(1, |c| c.get()) >= 2 {
        "1,2"
    } else {
        "1,1"
    };
    let (stdout, rows) = run_with_json(&[
        "nexmark",
        "--scaling",
        levels,
        "--query",
        "q0,q5",
        "--events",
        "30000",
    ]);
    let levels: Vec<u64> = levels.split(',').map(|l| l.parse().unwrap()).collect();
    assert_eq!(rows.len(), 2 * levels.len(), "{rows:?}");
    for (i, row) in rows.iter().enumerate() {
        let level = levels[i % levels.len()];
        assert_eq!(row["query"], if i < levels.len() { "q0" } else { "q5" });
        assert_eq!(row["parallelism"], level);
        assert_eq!(row["cores"], level, "the child saw its pinning: {row}");
        assert_eq!(row["events"], 30000);
        assert!(row["wall_s"].as_f64().unwrap() > 0.0, "{row}");
        let first = &rows[i - i % levels.len()];
        assert_eq!(row["checksum"], first["checksum"], "{row} against {first}");
        let speedup = first["wall_s"].as_f64().unwrap() / row["wall_s"].as_f64().unwrap();
        assert!(
            (row["speedup"].as_f64().unwrap() - speedup).abs() < 1e-9,
            "{row}"
        );
    }
    assert!(
        stdout.contains("speed-up") && !stdout.contains("note:"),
        "{stdout}"
    );
}

#[test]
fn a_level_with_more_cores_than_the_process_may_use_is_refused_by_name() {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let out = rheo()
        .args(["nexmark", "--query", "q0", "--events", "1000", "--scaling"])
        .arg(format!("1,{}", cores + 1))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "--scaling: level {} needs {} cores, this process may use {cores}",
            cores + 1,
            cores + 1
        )),
        "{stderr}"
    );
}

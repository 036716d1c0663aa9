//! Running the `rheo` binary from integration tests.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The `rheo` binary this test build made.
pub fn rheo() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rheo"))
}

/// Runs `rheo` with `args` and `--json FILE`, FILE in a temporary directory of its own;
/// asserts that it succeeded and returns its standard output and the JSON rows it wrote.
pub fn run_with_json(args: &[&str]) -> (String, Vec<serde_json::Value>) {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rheo-test-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("rows.json");
    let out = rheo().args(args).arg("--json").arg(&json).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    (String::from_utf8_lossy(&out.stdout).into_owned(), rows)
}

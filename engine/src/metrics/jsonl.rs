//! Snapshots as JSON lines: one snapshot per line, for any job, tuned or not.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::snapshot::MetricsSnapshot;
use crate::error::JobError;

/// Appends snapshots to a file, one JSON object per line, flushed after each line.
pub struct JsonLinesWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl JsonLinesWriter {
    /// Creates (or truncates) `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<JsonLinesWriter, JobError> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path).map_err(|source| JobError::MetricsLog {
            path: path.clone(),
            source,
        })?;
        Ok(JsonLinesWriter {
            path,
            out: BufWriter::new(file),
        })
    }

    /// Writes one snapshot as a line.
    pub fn write(&mut self, snapshot: &MetricsSnapshot) -> Result<(), JobError> {
        let line = snapshot.to_json_line();
        writeln!(self.out, "{line}")
            .and_then(|_| self.out.flush())
            .map_err(|source| JobError::MetricsLog {
                path: self.path.clone(),
                source,
            })
    }
}

/// Reads snapshots written by [`JsonLinesWriter`]; a malformed line is an error naming the file
/// and line number.
pub fn read_json_lines(path: impl AsRef<Path>) -> Result<Vec<MetricsSnapshot>, std::io::Error> {
    let path = path.as_ref();
    let file = File::open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let snapshot = serde_json::from_str(&line).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}:{}: not a metrics snapshot: {e}", path.display(), i + 1),
            )
        })?;
        out.push(snapshot);
    }
    Ok(out)
}

//! `to_jsonl`: writes records as JSON lines to a file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rheo_engine::operator::{Data, Sink};
use rheo_engine::{StageRef, Stream};
use serde::Serialize;

/// Ends a stream in a JSON-lines file.
pub trait JsonLinesSink<T> {
    /// Adds a sink stage writing each record as one line of JSON to `path` (created or
    /// truncated now, so a bad path is reported here, naming the file). All workers of the
    /// stage append to the same file; it is flushed at reconfiguration barriers and at the end.
    /// A write error ends the job with an error naming the file.
    ///
    /// ```
    /// use rheo_engine::{JobOptions, PipelineBuilder};
    /// use rheo_operators::prelude::*;
    ///
    /// let path = std::env::temp_dir().join(format!("rheo-jsonl-{}.jsonl", std::process::id()));
    /// let builder = PipelineBuilder::new();
    /// builder.source("n", IterSource::new([(1u8, "a"), (2, "b")])).to_jsonl("file", &path)?;
    /// builder.build()?.run(JobOptions::default())?;
    /// assert_eq!(std::fs::read_to_string(&path)?, "[1,\"a\"]\n[2,\"b\"]\n");
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn to_jsonl(&self, name: &str, path: impl AsRef<Path>) -> std::io::Result<StageRef>;
}

impl<T: Data + Serialize> JsonLinesSink<T> for Stream<T> {
    fn to_jsonl(&self, name: &str, path: impl AsRef<Path>) -> std::io::Result<StageRef> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let shared = Arc::new(Mutex::new(BufWriter::new(file)));
        Ok(self.sink(name, move |_| JsonLinesWriter {
            path: path.clone(),
            out: shared.clone(),
            line: Vec::new(),
        }))
    }
}

struct JsonLinesWriter {
    path: PathBuf,
    out: Arc<Mutex<BufWriter<File>>>,
    line: Vec<u8>,
}

impl JsonLinesWriter {
    fn fail(&self, e: impl std::fmt::Display) -> ! {
        panic!("writing {}: {e}", self.path.display())
    }
}

impl<T: Data + Serialize> Sink<T> for JsonLinesWriter {
    fn write(&mut self, batch: &mut Vec<T>) {
        self.line.clear();
        for record in batch.drain(..) {
            if let Err(e) = serde_json::to_writer(&mut self.line, &record) {
                self.fail(e);
            }
            self.line.push(b'\n');
        }
        let written = self.out.lock().write_all(&self.line);
        if let Err(e) = written {
            self.fail(e);
        }
    }

    fn flush(&mut self) {
        let flushed = self.out.lock().flush();
        if let Err(e) = flushed {
            self.fail(e);
        }
    }
}

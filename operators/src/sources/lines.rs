//! `LinesSource`: the lines of a text file.

use std::fs::File;
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};

use rheo_engine::source::{Source, SourceContext, SourceStatus};

/// Emits the lines of a file (without line endings), then ends. A read error ends the job
/// with an error naming the file.
///
/// ```
/// use rheo_engine::{JobOptions, PipelineBuilder};
/// use rheo_operators::prelude::*;
/// use rheo_operators::sources::LinesSource;
///
/// let path = std::env::temp_dir().join(format!("rheo-lines-{}.txt", std::process::id()));
/// std::fs::write(&path, "one\ntwo\n")?;
/// let builder = PipelineBuilder::new();
/// let lines = builder.source("file", LinesSource::open(&path)?).collect("out");
/// builder.build()?.run(JobOptions::default())?;
/// assert_eq!(lines.take(), vec!["one".to_string(), "two".to_string()]);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LinesSource {
    path: PathBuf,
    lines: Lines<BufReader<File>>,
}

impl LinesSource {
    /// Opens `path`; the error names the file.
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<LinesSource> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(LinesSource {
            path,
            lines: BufReader::new(file).lines(),
        })
    }
}

impl Source for LinesSource {
    type Out = String;

    fn poll(&mut self, out: &mut Vec<String>, max: usize, _: &mut SourceContext) -> SourceStatus {
        for _ in 0..max {
            match self.lines.next() {
                Some(Ok(line)) => out.push(line),
                Some(Err(e)) => panic!("reading {}: {e}", self.path.display()),
                None => return SourceStatus::Exhausted,
            }
        }
        SourceStatus::Ready
    }
}

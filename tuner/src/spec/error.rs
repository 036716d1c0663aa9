//! [`SpecError`]: what is wrong with a workload spec, and where.

use std::path::{Path, PathBuf};

/// A workload spec that cannot be used: the file, the field (a path such as
/// `stage[1].cpu_us`; empty for the whole file) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}{reason}", file.display(), if field.is_empty() { String::new() } else { format!("{field}: ") })]
pub struct SpecError {
    /// The spec file.
    pub file: PathBuf,
    /// The offending field.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl SpecError {
    pub(crate) fn new(file: &Path, field: &str, reason: impl Into<String>) -> SpecError {
        SpecError {
            file: file.to_path_buf(),
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// Turns a TOML error into one naming the field: the table comes from the section the
    /// error's position falls in, the key from the message (unknown or missing field) or from
    /// the line (a bad value).
    pub(crate) fn from_toml(file: &Path, text: &str, e: &toml::de::Error) -> SpecError {
        let message = e.message().trim().to_owned();
        let at = e.span().map_or(0, |s| s.start).min(text.len());
        let before = &text[..at];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        let line = &text[line_start..line_end];
        // A missing field's span starts at its table's header line, so that line counts.
        let table = table_at(&text[..line_end]);
        let quoted = message.split('`').nth(1).map(str::to_owned);
        let key = if message.starts_with("unknown field") || message.starts_with("missing field") {
            quoted
        } else {
            line.split_once('=')
                .map(|(k, _)| k.trim().to_owned())
                .filter(|k| !k.is_empty() && !k.starts_with('['))
        };
        let field = match (table.as_str(), key) {
            ("", Some(k)) => k,
            (t, Some(k)) => format!("{t}.{k}"),
            (t, None) => t.to_owned(),
        };
        let line_no = before.matches('\n').count() + 1;
        SpecError::new(file, &field, format!("{message} (line {line_no})"))
    }
}

/// The table a position in a TOML text belongs to: `source`, `stage[2]`, ... or "" for the
/// top level.
fn table_at(before: &str) -> String {
    let mut table = String::new();
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for line in before.lines() {
        let l = line.trim();
        if let Some(name) = l.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
            let n = counts.entry(name.trim().to_owned()).or_insert(0);
            table = format!("{}[{}]", name.trim(), *n);
            *n += 1;
        } else if let Some(name) = l.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = name.trim().to_owned();
        }
    }
    table
}

//! Diagnostics: what was wrong, odd or changed in a catalog file, with where and why.
//!
//! A diagnostic never stops a load by itself. An [`Severity::Error`] means the row (or file) it names was
//! *not* loaded; a [`Severity::Warning`] means it was loaded but changed or suspicious (an override applied,
//! `GpuInfo` disagreeing with the accelerator columns); [`Severity::Info`] notes an expected structural fact
//! (a GCP GPU-price row with no host VM in its zone).

use serde::Serialize;
use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// Where in a line a diagnostic points.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    /// A CSV field: its 1-based position and its header name.
    Field { index: u32, name: String },
    /// A 1-based character column (JSON, YAML).
    Char(u32),
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Column::Field { index, name } => write!(f, "column {index} ({name})"),
            Column::Char(c) => write!(f, "column {c}"),
        }
    }
}

/// One finding about a catalog file.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize)]
pub struct Diagnostic {
    /// The file, as the loader was given it (relative to the catalog directory for SkyPilot imports:
    /// `aws/vms.csv`).
    pub file: String,
    /// 1-based line, when the finding is about one line.
    pub line: Option<u64>,
    pub column: Option<Column>,
    pub severity: Severity,
    pub reason: String,
}

impl Diagnostic {
    pub fn new(severity: Severity, file: impl Into<String>, reason: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            line: None,
            column: None,
            severity,
            reason: reason.into(),
        }
    }
    pub fn at_line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }
    pub fn at_column(mut self, column: Column) -> Self {
        self.column = Some(column);
        self
    }
}

impl fmt::Display for Diagnostic {
    /// `aws/vms.csv:12: column 7 (Price): error: ...` for a CSV field, `cat.json:5:17: error: ...` for a
    /// character position.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        match &self.column {
            Some(Column::Char(c)) => write!(f, ":{c}")?,
            Some(c @ Column::Field { .. }) => write!(f, ": {c}")?,
            None => {}
        }
        write!(f, ": {}: {}", self.severity, self.reason)
    }
}

//! The one error type of the simulator crate. Every variant names what failed and where.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{file}: cannot read: {reason}")]
    Read { file: PathBuf, reason: String },
    #[error("{file}:{line}: field {field}: {reason}")]
    BadLine {
        file: PathBuf,
        line: u64,
        field: String,
        reason: String,
    },
    #[error("{file}: missing column {column:?} (header: {header})")]
    MissingColumn {
        file: PathBuf,
        column: String,
        header: String,
    },
    #[error("{file}: {reason}")]
    BadFile { file: PathBuf, reason: String },
    #[error("trace spec {spec:?}: {reason} (expected KIND:PATH, KIND one of {kinds})")]
    BadTraceSpec {
        spec: String,
        reason: String,
        kinds: &'static str,
    },
    #[error("outage spec {spec:?}: {reason} (expected PROVIDER@YYYY-MM-DDTHH:MM+DURATION, e.g. azure@2027-03-01T00:00+72h)")]
    BadOutageSpec { spec: String, reason: String },
    #[error("portfolio {file}: {reason}")]
    BadPortfolio { file: PathBuf, reason: String },
    #[error("unknown policy {name:?} (known: {known})")]
    UnknownPolicy { name: String, known: &'static str },
    #[error("job {job}: accelerator index {index} is not in the trace's table of {known} accelerator(s)")]
    UnknownAccelerator { job: u64, index: u16, known: usize },
    #[error("simulation setup: {what}: {reason}")]
    Setup { what: String, reason: String },
}

impl SimError {
    pub(crate) fn read(file: &std::path::Path, e: impl std::fmt::Display) -> Self {
        SimError::Read {
            file: file.to_owned(),
            reason: e.to_string(),
        }
    }
    pub(crate) fn line(
        file: &std::path::Path,
        line: u64,
        field: &str,
        reason: impl Into<String>,
    ) -> Self {
        SimError::BadLine {
            file: file.to_owned(),
            line,
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

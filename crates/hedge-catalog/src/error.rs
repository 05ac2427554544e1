//! What stops a catalog from loading at all. Problems confined to one row are [`crate::Diagnostic`]s instead.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a catalog: {reason}")]
    NotACatalog { path: PathBuf, reason: String },
    #[error("{file}:{line}:{column}: invalid JSON: {message}")]
    Json {
        file: String,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{file}: missing schema_version (this reader understands schema_version {supported})")]
    MissingSchemaVersion { file: String, supported: u32 },
    #[error(
        "{file}: schema_version {found} is not supported (this reader understands {supported})"
    )]
    UnsupportedSchema {
        file: String,
        found: u64,
        supported: u32,
    },
    #[error("{file}:{line}:{column}: invalid YAML: {message}")]
    Yaml {
        file: String,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{file}: {field}: {reason}")]
    InvalidField {
        file: String,
        field: String,
        reason: String,
    },
}

//! The one error type of this crate.

use hedge_core::{AttemptStatus, CommitmentId, JobId, JobState, TeamId};

/// What went wrong in a store call. Variants before `Sqlite` are about the caller's request (a 4xx at the
/// HTTP edge); `Sqlite`, `Postgres`, `Pool`, `Corrupt`, `Migration`, `SchemaTooNew` and `Io` are about the
/// backend (a 5xx).
///
/// `#[non_exhaustive]`: variants are added as the store grows; match the ones you handle and keep a `_` arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("unknown team {team}")]
    UnknownTeam { team: TeamId },
    #[error("unknown job {job}")]
    UnknownJob { job: JobId },
    #[error("unknown launch attempt with idempotency key {key:?}")]
    UnknownAttempt { key: String },
    #[error("unknown API token id {id}")]
    UnknownToken { id: i64 },
    #[error("job {job}: {from} -> {to} is not a legal transition")]
    IllegalTransition {
        job: JobId,
        from: JobState,
        to: JobState,
    },
    /// The compare-and-set lost: the job is no longer in the state (or version) the caller read.
    #[error("job {job}: expected state {expected} (version {expected_version:?}), but it is {actual} (version {actual_version})")]
    StaleTransition {
        job: JobId,
        expected: JobState,
        expected_version: Option<u64>,
        actual: JobState,
        actual_version: u64,
    },
    #[error("launch attempt {key:?}: status {from} cannot become {to}")]
    IllegalAttemptUpdate {
        key: String,
        from: AttemptStatus,
        to: AttemptStatus,
    },
    /// The team already submitted a job with this `Idempotency-Key`, with a different request.
    #[error("Idempotency-Key {key:?} was already used with a different request")]
    IdempotencyConflict { key: String },
    /// A commitment id that is already stored, or appears twice in one batch (`index` is its position in
    /// the batch). Commitments are never silently replaced: delete one first to change it.
    #[error("commitment {id} already exists (commitments[{index}].id)")]
    DuplicateCommitment { id: CommitmentId, index: usize },
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },

    #[error("sqlite")]
    Sqlite(#[source] rusqlite::Error),
    #[error("postgres")]
    Postgres(#[source] tokio_postgres::Error),
    #[error("postgres connection pool: {0}")]
    Pool(String),
    /// A stored value could not be decoded: the database was changed by something other than this crate.
    #[error("corrupt row in {table}.{column}: {reason}")]
    Corrupt {
        table: &'static str,
        column: &'static str,
        reason: String,
    },
    #[error("migration {version} ({name}) failed")]
    Migration {
        version: u32,
        name: &'static str,
        #[source]
        source: Box<StoreError>,
    },
    #[error("migration {version} ({name}) was applied with different SQL than this build has; restore the original migration file")]
    MigrationChanged { version: u32, name: &'static str },
    #[error(
        "database schema version {found} is newer than this build knows ({known}); upgrade hedge"
    )]
    SchemaTooNew { found: u32, known: u32 },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("store URL {url:?} is neither a path, sqlite://PATH nor postgres://...")]
    BadUrl { url: String },
}

impl StoreError {
    /// Whether the error is about the request (unknown ids, illegal or stale moves, bad input) rather than
    /// about the backend.
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            StoreError::UnknownTeam { .. }
                | StoreError::UnknownJob { .. }
                | StoreError::UnknownAttempt { .. }
                | StoreError::UnknownToken { .. }
                | StoreError::IllegalTransition { .. }
                | StoreError::StaleTransition { .. }
                | StoreError::IllegalAttemptUpdate { .. }
                | StoreError::InvalidInput { .. }
                | StoreError::IdempotencyConflict { .. }
                | StoreError::DuplicateCommitment { .. }
        )
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e)
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Postgres(e)
    }
}

//! Hedge's persistence layer: one async [`Store`] trait, two real backends ([`SqliteStore`], the embedded
//! default, and [`PgStore`]), each with versioned migrations applied when it opens.
//!
//! The server holds an `Arc<dyn Store>`; [`open`] picks the backend from a URL:
//!
//! ```no_run
//! # async fn demo() -> Result<(), hedge_store::StoreError> {
//! use hedge_store::{open, Store, Team};
//! let store = open("/var/lib/hedge/hedge.db").await?;        // or "sqlite:///path", "postgres://..."
//! store.put_team(&Team::new("ml")).await?;
//! # Ok(()) }
//! ```
//!
//! **Architecture Invariant:** a job's state changes only through [`Store::transition`] /
//! [`Store::begin_launch`], a compare-and-set that checks [`hedge_core::JobState::can_transition_to`] and
//! appends a [`JobEvent`] in the same transaction. Replaying a job's events gives its current state.
//!
//! **Architecture Invariant:** a launch attempt is written (status `Recorded`, with its idempotency key)
//! before any driver is asked to launch it.
//!
//! **Architecture Invariant:** API token secrets are never stored or logged; only their SHA-256 is kept.

mod backend;
mod cache;
mod codec;
mod error;
mod logic;
mod migrations;
mod model;
mod postgres;
mod sqlite;
mod store;
mod token;

pub use error::StoreError;
pub use logic::span_of;
pub use migrations::SCHEMA_VERSION;
pub use model::{
    month_range, AttemptUpdate, CommitmentUsage, HealthState, IssuedToken, Job, JobEvent,
    JobFilter, JobPage, LaunchAttempt, NewAttempt, NewJob, OnBudgetExceeded, Principal,
    ProviderHealth, QueuedJob, SpendEntry, SubmitKey, Team, TeamQuota, TokenInfo, Transition,
    MAX_DETAIL_CHARS, MAX_EXPLANATION_BYTES,
};
pub use postgres::{PgOptions, PgStore};
pub use sqlite::SqliteStore;
pub use store::{schedule_order, Store, StoreResult, QUEUED_STATES};
pub use token::{hash_secret, TOKEN_PREFIX};

use std::sync::Arc;

/// Opens a store from a URL: `postgres://...` / `postgresql://...` for PostgreSQL; `sqlite://PATH`,
/// `sqlite:PATH` or a plain file path for SQLite (created, with its directory, if missing).
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PgStore::connect(url).await?));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.is_empty() || path.contains("://") {
        return Err(StoreError::BadUrl {
            url: url.to_owned(),
        });
    }
    Ok(Arc::new(SqliteStore::open(path).await?))
}

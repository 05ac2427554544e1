//! The [`Store`] trait: everything the broker persists, one async interface, two backends.

use crate::error::StoreError;
use crate::model::*;
use async_trait::async_trait;
use hedge_core::ledger::{PriceVersion, Segment};
use hedge_core::{Commitment, CommitmentId, JobId, JobState, Money, ProviderId, TeamId, Timestamp};

/// The states [`Store::schedule_queue`] reads: jobs waiting for a placement.
pub const QUEUED_STATES: [JobState; 3] =
    [JobState::Pending, JobState::Placing, JobState::Recovering];

/// The scheduler's order of queued jobs: priority descending, deadline ascending with none last, id
/// ascending. [`Store::schedule_queue`] returns jobs in this order.
pub fn schedule_order(a: &QueuedJob, b: &QueuedJob) -> std::cmp::Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| a.deadline.is_none().cmp(&b.deadline.is_none()))
        .then_with(|| a.deadline.cmp(&b.deadline))
        .then_with(|| a.id.cmp(&b.id))
}

/// Result of every store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Persistence for the broker. Object safe: the server holds an `Arc<dyn Store>` (see [`crate::open`]).
///
/// Contract shared by every backend (and checked by the one conformance suite that runs against both):
/// - every write that touches two tables is one transaction; a call that returns an error has written
///   nothing;
/// - input is validated before anything is written ([`StoreError::InvalidInput`] names the field);
/// - unknown ids are typed errors ([`StoreError::UnknownTeam`], [`StoreError::UnknownJob`], ...);
/// - job state changes are compare-and-set ([`Store::transition`]) and each appends one [`JobEvent`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// A cheap round trip to the database, for `/healthz`.
    async fn ping(&self) -> StoreResult<()>;

    // ---- teams ------------------------------------------------------------------------------------------

    /// Creates or replaces a team (its budget, quotas and preemption policy).
    async fn put_team(&self, team: &Team) -> StoreResult<()>;
    /// [`StoreError::UnknownTeam`] if there is no such team.
    async fn team(&self, id: &TeamId) -> StoreResult<Team>;
    /// All teams, by id.
    async fn teams(&self) -> StoreResult<Vec<Team>>;

    // ---- API tokens ---------------------------------------------------------------------------------------

    /// Issues a new random token for `principal` (the team must exist). The secret is returned once and only
    /// its SHA-256 is stored.
    async fn create_token(
        &self,
        principal: &Principal,
        label: &str,
        at: Timestamp,
    ) -> StoreResult<IssuedToken>;
    /// Issues the first admin token if and only if none was ever bootstrapped in this database; `None`
    /// afterwards (also when several processes race: exactly one gets `Some`).
    async fn bootstrap_admin_token(&self, at: Timestamp) -> StoreResult<Option<IssuedToken>>;
    /// The principal of a presented secret, or `None` if it is unknown or revoked.
    async fn authenticate(&self, presented_secret: &str) -> StoreResult<Option<Principal>>;
    /// [`StoreError::UnknownToken`] if there is no such token; revoking twice is not an error.
    async fn revoke_token(&self, id: i64, at: Timestamp) -> StoreResult<()>;
    /// Every token's metadata, by id.
    async fn tokens(&self) -> StoreResult<Vec<TokenInfo>>;

    // ---- jobs -------------------------------------------------------------------------------------------

    /// Stores a new job in [`JobState::Pending`] with its submission event (seq 0, reason `submitted`).
    /// [`StoreError::UnknownTeam`] if the team does not exist.
    async fn submit_job(&self, job: &NewJob) -> StoreResult<Job>;
    /// [`StoreError::UnknownJob`] if there is no such job.
    async fn job(&self, id: JobId) -> StoreResult<Job>;
    /// One page of jobs matching the filter, in id order (keyset pagination on the id).
    async fn list_jobs(&self, filter: &JobFilter) -> StoreResult<JobPage>;
    /// Every job in one of `states`, oldest first (the reconciler's and scheduler's view).
    async fn jobs_in_states(&self, states: &[JobState]) -> StoreResult<Vec<Job>>;
    /// [`Store::jobs_in_states`] for the scheduler's full-queue read: the same jobs, with specs shared from
    /// an in-process cache (specs never change after submission) instead of parsed and copied per call.
    /// Added after the trait was published, so it has a default; both backends override it.
    async fn queued_jobs(&self, states: &[JobState]) -> StoreResult<Vec<QueuedJob>> {
        Ok(self
            .jobs_in_states(states)
            .await?
            .into_iter()
            .map(QueuedJob::from)
            .collect())
    }
    /// The first `limit` queued jobs ([`QUEUED_STATES`]: pending, placing, recovering) in the scheduler's
    /// order: priority descending, then deadline ascending with no deadline last, then id (age) ascending.
    /// Read through an index that matches this order (no sort over the table), with specs from the cache
    /// like [`Store::queued_jobs`]. Added after the trait was published, so it has a default (sorting the
    /// whole queue); both backends override it.
    async fn schedule_queue(&self, limit: usize) -> StoreResult<Vec<QueuedJob>> {
        let mut q = self.queued_jobs(&QUEUED_STATES).await?;
        q.sort_by(schedule_order);
        q.truncate(limit);
        Ok(q)
    }
    /// Number of jobs per state (states with no job are omitted), for metrics.
    async fn job_counts(&self) -> StoreResult<Vec<(JobState, u64)>>;

    /// Atomic compare-and-set of the job's state: succeeds only if the job is in `t.from` (and at
    /// `t.expected_version` when given), and the move is legal ([`JobState::can_transition_to`]). Appends a
    /// [`JobEvent`] and applies `t.attempt_update`, in one transaction. Errors: [`StoreError::IllegalTransition`]
    /// (checked before touching the database), [`StoreError::StaleTransition`] (lost the race or read an old
    /// state), [`StoreError::UnknownJob`], [`StoreError::InvalidInput`], and the attempt-update errors;
    /// nothing is written on any error.
    async fn transition(&self, t: &Transition) -> StoreResult<Job>;

    /// [`Store::transition`] to [`JobState::Launching`] that also records a new launch attempt (status
    /// `Recorded`, number `current_attempt + 1`, a fresh unique idempotency key) and makes it the job's
    /// current attempt, in one transaction. Call it BEFORE asking the driver to submit.
    async fn begin_launch(
        &self,
        t: &Transition,
        attempt: &NewAttempt,
    ) -> StoreResult<(Job, LaunchAttempt)>;

    /// Every event of a job, by seq. [`StoreError::UnknownJob`] if there is no such job.
    async fn job_events(&self, id: JobId) -> StoreResult<Vec<JobEvent>>;

    // ---- launch attempts ----------------------------------------------------------------------------------

    /// A job's attempts by number. [`StoreError::UnknownJob`] if there is no such job.
    async fn attempts(&self, job: JobId) -> StoreResult<Vec<LaunchAttempt>>;
    /// [`StoreError::UnknownAttempt`] if no attempt has this key.
    async fn attempt_by_key(&self, idempotency_key: &str) -> StoreResult<LaunchAttempt>;
    /// Attempts that are not finished (recorded, submitted, running): after a restart, ask the driver about
    /// each by its idempotency key.
    async fn in_flight_attempts(&self) -> StoreResult<Vec<LaunchAttempt>>;
    /// Moves an attempt's status forward ([`hedge_core::AttemptStatus::can_become`]) and sets its handle or
    /// detail. [`StoreError::IllegalAttemptUpdate`] for a backwards move or a change to a finished attempt.
    async fn update_attempt(&self, update: &AttemptUpdate) -> StoreResult<LaunchAttempt>;

    // ---- commitments --------------------------------------------------------------------------------------

    /// Inserts new commitments, all or none. A commitment is never replaced:
    /// [`StoreError::DuplicateCommitment`] names the first id that is already stored or repeated in the batch.
    async fn put_commitments(&self, commitments: &[Commitment]) -> StoreResult<()>;
    /// All commitments, by id.
    async fn commitments(&self) -> StoreResult<Vec<Commitment>>;
    /// Every commitment with the GPUs that in-flight attempts hold on it.
    async fn commitment_usage(&self) -> StoreResult<Vec<CommitmentUsage>>;
    /// Removes a commitment (attempts keep referring to its id). Returns whether it existed.
    async fn delete_commitment(&self, id: &CommitmentId) -> StoreResult<bool>;

    // ---- provider health ----------------------------------------------------------------------------------

    /// Creates or replaces the health record of a provider.
    async fn put_provider_health(&self, health: &ProviderHealth) -> StoreResult<()>;
    async fn provider_health(&self, provider: &ProviderId) -> StoreResult<Option<ProviderHealth>>;
    /// All health records, by provider.
    async fn all_provider_health(&self) -> StoreResult<Vec<ProviderHealth>>;

    // ---- spend ledger -------------------------------------------------------------------------------------

    /// Appends a ledger line. [`StoreError::UnknownTeam`] / [`StoreError::UnknownJob`] for unknown ids.
    async fn record_spend(&self, entry: &SpendEntry) -> StoreResult<()>;
    /// The team's spend over entries whose interval starts in `[from, to)` (see [`month_range`]).
    async fn team_spend(&self, team: &TeamId, from: Timestamp, to: Timestamp)
        -> StoreResult<Money>;
    /// Ledger lines whose interval starts in `[from, to)`, for one team or all, in insertion order.
    async fn spend_entries(
        &self,
        team: Option<&TeamId>,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<SpendEntry>>;

    // ---- ledger -------------------------------------------------------------------------------------------

    /// Adds price versions to the history; a version whose rate equals the one already in force at its
    /// `from` is skipped (returns how many were added). An ended attempt's segments are priced from this
    /// history, in the transaction that moves it to its final status.
    async fn record_prices(&self, versions: &[PriceVersion]) -> StoreResult<usize>;
    /// The whole price history, by (provider, market, from).
    async fn price_versions(&self) -> StoreResult<Vec<PriceVersion>>;
    /// Booked ledger segments that overlap `[from, to)`, for one team or all, in (start, row id) order after
    /// the cursor `after` (keyset pagination: pass the last segment's `(start, id)`), at most `limit`.
    async fn ledger_segments(
        &self,
        team: Option<&TeamId>,
        from: Timestamp,
        to: Timestamp,
        after: Option<(Timestamp, i64)>,
        limit: u32,
    ) -> StoreResult<Vec<(i64, Segment)>>;
    /// Booked usage per team in `[from, to)` (each segment by its overlap with the window), one SQL
    /// `GROUP BY`; equal to summing `Segment::billed_in` over `ledger_segments`.
    async fn booked_spend_by_team(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<(TeamId, Money)>>;
}

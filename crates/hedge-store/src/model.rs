//! The values the store keeps and returns. Plain data, serialisable, no behaviour beyond validation.

use crate::error::StoreError;
use hedge_core::{
    Accelerator, AttemptStatus, Commitment, CommitmentId, JobId, JobState, Market, Money,
    ProviderId, RegionId, TaskSpec, TeamId, Timestamp, ZoneId,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// A cap on the GPUs a team may hold at once. `None` in a field means "any": a quota with both `None` caps
/// the team's GPUs everywhere.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct TeamQuota {
    pub provider: Option<ProviderId>,
    pub accelerator: Option<Accelerator>,
    pub max_gpus: u32,
}

/// A team: owns jobs, tokens, quotas and a monthly budget.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Team {
    pub id: TeamId,
    /// `None`: no budget limit.
    pub monthly_budget: Option<Money>,
    pub quotas: Vec<TeamQuota>,
    /// Whether this team's higher-priority jobs may preempt its own lower-priority ones (and be preempted).
    pub allow_preemption: bool,
    /// What happens to the team's running jobs once its spend reaches its monthly budget.
    pub on_budget_exceeded: OnBudgetExceeded,
}

/// `wait`: running jobs go on, new ones wait. `stop`: running jobs are cancelled too (confirmed by the
/// driver, as a user's cancel).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBudgetExceeded {
    #[default]
    Wait,
    Stop,
}

impl OnBudgetExceeded {
    pub fn as_str(self) -> &'static str {
        match self {
            OnBudgetExceeded::Wait => "wait",
            OnBudgetExceeded::Stop => "stop",
        }
    }
}

impl Team {
    pub fn new(id: impl Into<TeamId>) -> Self {
        Team {
            id: id.into(),
            monthly_budget: None,
            quotas: vec![],
            allow_preemption: false,
            on_budget_exceeded: OnBudgetExceeded::Wait,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        validate_name("team.id", self.id.as_str())?;
        if let Some(b) = self.monthly_budget {
            if b < Money::ZERO {
                return Err(invalid("team.monthly_budget", format!("{b} is negative")));
            }
        }
        for (i, q) in self.quotas.iter().enumerate() {
            if self.quotas[..i]
                .iter()
                .any(|p| p.provider == q.provider && p.accelerator == q.accelerator)
            {
                return Err(invalid(
                    "team.quotas",
                    format!(
                        "two quotas for provider {} and accelerator {}",
                        q.provider.as_ref().map_or("any", |p| p.as_str()),
                        q.accelerator.as_ref().map_or("any", |a| a.as_str())
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Who a presented API token speaks for.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", content = "team", rename_all = "snake_case")]
pub enum Principal {
    Admin,
    Team(TeamId),
}

/// A freshly issued API token. The clear `secret` exists only in this value: the store keeps its SHA-256.
/// `Debug` redacts it so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub id: i64,
    pub principal: Principal,
    pub secret: String,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("id", &self.id)
            .field("principal", &self.principal)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A stored token's metadata (never its secret or hash).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: i64,
    pub principal: Principal,
    pub label: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A client's idempotency key for a submission, with the SHA-256 of the request it came with. A second
/// submission with the same key (for the same team) returns the first job when the request is the same, and
/// is refused ([`StoreError::IdempotencyConflict`]) when it differs.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SubmitKey {
    /// 1 to 255 printable ASCII characters (the `Idempotency-Key` header).
    pub key: String,
    /// Lower- or upper-case hex SHA-256 (64 characters) of the request body; stored lower-case.
    pub request_sha256: String,
}

impl SubmitKey {
    pub const MAX_KEY_LEN: usize = 255;

    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        if self.key.is_empty() || self.key.len() > Self::MAX_KEY_LEN {
            return Err(invalid(
                "Idempotency-Key",
                format!(
                    "is {} bytes long (1 to {})",
                    self.key.len(),
                    Self::MAX_KEY_LEN
                ),
            ));
        }
        if !self.key.bytes().all(|b| (b' '..=b'~').contains(&b)) {
            return Err(invalid("Idempotency-Key", "must be printable ASCII".into()));
        }
        if self.request_sha256.len() != 64
            || !self.request_sha256.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(invalid(
                "request_sha256",
                "must be 64 hex characters (a SHA-256)".into(),
            ));
        }
        Ok(())
    }

    /// The digest as stored and compared.
    pub(crate) fn sha(&self) -> String {
        self.request_sha256.to_ascii_lowercase()
    }
}

/// A job as submitted, before the store assigns its id.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct NewJob {
    pub team: TeamId,
    /// Higher runs first.
    pub priority: i32,
    pub deadline: Option<Timestamp>,
    pub spec: TaskSpec,
    pub submitted_at: Timestamp,
    /// Makes the submission idempotent: unique per team (see [`SubmitKey`]).
    #[serde(default)]
    pub idempotency: Option<SubmitKey>,
}

impl NewJob {
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        validate_name("team", self.team.as_str())?;
        if self.spec.num_nodes == 0 {
            return Err(invalid("spec.num_nodes", "must be at least 1".into()));
        }
        if self.spec.resources.is_empty() {
            return Err(invalid(
                "spec.resources",
                "must list at least one resource shape".into(),
            ));
        }
        if let Some(d) = self.deadline {
            if d < self.submitted_at {
                return Err(invalid(
                    "deadline",
                    format!("{d} is before the submission time {}", self.submitted_at),
                ));
            }
        }
        if let Some(k) = &self.idempotency {
            k.validate()?;
        }
        Ok(())
    }
}

/// A stored job.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub team: TeamId,
    pub priority: i32,
    pub deadline: Option<Timestamp>,
    pub spec: TaskSpec,
    pub submitted_at: Timestamp,
    pub state: JobState,
    /// Number of transitions so far (0 right after submission). Increases by one with every transition,
    /// so `(state, version)` identifies a moment of the job's life exactly.
    pub version: u64,
    /// The latest launch attempt's number, 0 when none was recorded yet.
    pub current_attempt: u32,
    pub updated_at: Timestamp,
    /// The client's `Idempotency-Key` it was submitted with, if any.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// A job as the scheduler reads the whole queue ([`crate::Store::queued_jobs`]): a [`Job`] whose spec is
/// shared from the store's in-process cache instead of copied.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct QueuedJob {
    pub id: JobId,
    pub team: TeamId,
    pub priority: i32,
    pub deadline: Option<Timestamp>,
    pub spec: Arc<TaskSpec>,
    pub submitted_at: Timestamp,
    pub state: JobState,
    pub version: u64,
    pub current_attempt: u32,
    pub updated_at: Timestamp,
    pub idempotency_key: Option<String>,
}

impl From<QueuedJob> for Job {
    fn from(q: QueuedJob) -> Job {
        Job {
            id: q.id,
            team: q.team,
            priority: q.priority,
            deadline: q.deadline,
            spec: Arc::unwrap_or_clone(q.spec),
            submitted_at: q.submitted_at,
            state: q.state,
            version: q.version,
            current_attempt: q.current_attempt,
            updated_at: q.updated_at,
            idempotency_key: q.idempotency_key,
        }
    }
}

impl From<Job> for QueuedJob {
    fn from(j: Job) -> QueuedJob {
        QueuedJob {
            id: j.id,
            team: j.team,
            priority: j.priority,
            deadline: j.deadline,
            spec: Arc::new(j.spec),
            submitted_at: j.submitted_at,
            state: j.state,
            version: j.version,
            current_attempt: j.current_attempt,
            updated_at: j.updated_at,
            idempotency_key: j.idempotency_key,
        }
    }
}

/// A requested state change: an atomic compare-and-set on `(job, from[, expected_version])`. Built with
/// [`Transition::new`] and the chained setters.
#[derive(Clone, PartialEq, Debug)]
pub struct Transition {
    pub job: JobId,
    pub from: JobState,
    pub to: JobState,
    /// A short stable code (`placed`, `preempted`, `no_fit`, `over_budget`, `cancelled_by_user`, ...).
    pub reason: String,
    /// Anything that explains the move (a placement explanation, a driver error), stored with the event.
    pub explanation: serde_json::Value,
    pub at: Timestamp,
    /// When set, the move also requires the job to be at exactly this version (guards against ABA: a job
    /// that went Running -> Recovering -> ... -> Running again in the meantime).
    pub expected_version: Option<u64>,
    /// A launch-attempt update applied in the same transaction (e.g. the attempt becomes `Lost` as the job
    /// becomes `Recovering`). The attempt must belong to this job.
    pub attempt_update: Option<AttemptUpdate>,
}

impl Transition {
    pub fn new(job: JobId, from: JobState, to: JobState, at: Timestamp) -> Self {
        Transition {
            job,
            from,
            to,
            reason: String::new(),
            explanation: serde_json::Value::Null,
            at,
            expected_version: None,
            attempt_update: None,
        }
    }
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }
    pub fn explanation(mut self, explanation: serde_json::Value) -> Self {
        self.explanation = explanation;
        self
    }
    pub fn expect_version(mut self, version: u64) -> Self {
        self.expected_version = Some(version);
        self
    }
    pub fn with_attempt_update(mut self, update: AttemptUpdate) -> Self {
        self.attempt_update = Some(update);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        if self.reason.trim().is_empty() {
            return Err(invalid(
                "transition.reason",
                "is empty: every transition is stored with its reason".into(),
            ));
        }
        validate_text("transition.reason", &self.reason, 256)?;
        let size = self.explanation.to_string().len();
        if size > MAX_EXPLANATION_BYTES {
            return Err(invalid(
                "transition.explanation",
                format!("is {size} bytes of JSON (at most {MAX_EXPLANATION_BYTES})"),
            ));
        }
        if let Some(u) = &self.attempt_update {
            u.validate()?;
        }
        if !self.from.can_transition_to(self.to) {
            return Err(StoreError::IllegalTransition {
                job: self.job,
                from: self.from,
                to: self.to,
            });
        }
        Ok(())
    }
}

/// One stored state change of a job. `seq` counts from 0 (the submission, `from == None`).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct JobEvent {
    pub job: JobId,
    pub seq: u64,
    pub from: Option<JobState>,
    pub to: JobState,
    pub reason: String,
    pub explanation: serde_json::Value,
    pub at: Timestamp,
}

/// What the broker is about to launch; recorded BEFORE the driver call by [`crate::Store::begin_launch`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct NewAttempt {
    pub provider: ProviderId,
    /// The offer / instance type launched (`p5.48xlarge`, `local-gpu`).
    pub offer: String,
    pub region: Option<RegionId>,
    pub zone: Option<ZoneId>,
    pub market: Market,
    /// The commitment whose capacity this attempt consumes (market `Committed`).
    pub commitment: Option<CommitmentId>,
    pub accelerator: Option<Accelerator>,
    /// GPUs held by the attempt in total (all nodes).
    pub gpus: u32,
}

impl NewAttempt {
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        validate_name("attempt.provider", self.provider.as_str())?;
        validate_name("attempt.offer", &self.offer)?;
        if let Some(r) = &self.region {
            validate_name("attempt.region", r.as_str())?;
        }
        if let Some(z) = &self.zone {
            validate_name("attempt.zone", z.as_str())?;
        }
        if let Some(c) = &self.commitment {
            validate_name("attempt.commitment", c.as_str())?;
        }
        if self.commitment.is_some() != (self.market == Market::Committed) {
            return Err(invalid(
                "attempt.commitment",
                "is required for market committed and only for it".into(),
            ));
        }
        Ok(())
    }
}

/// A stored launch attempt.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LaunchAttempt {
    pub job: JobId,
    /// 1, 2, ... per job.
    pub attempt_no: u32,
    /// Unique across the store (and across stores: it embeds the store's random instance id). Drivers key
    /// their submits by it.
    pub idempotency_key: String,
    pub provider: ProviderId,
    pub offer: String,
    pub region: Option<RegionId>,
    pub zone: Option<ZoneId>,
    pub market: Market,
    pub commitment: Option<CommitmentId>,
    pub accelerator: Option<Accelerator>,
    pub gpus: u32,
    /// What the driver returned from submit (a pid, a Slurm job id, an instance id).
    pub driver_handle: Option<String>,
    pub status: AttemptStatus,
    /// The latest detail (a driver error, an exit code).
    pub detail: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A change to a launch attempt's status, handle or detail. `None` fields keep their stored value.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AttemptUpdate {
    pub idempotency_key: String,
    pub status: AttemptStatus,
    pub driver_handle: Option<String>,
    pub detail: Option<String>,
    pub at: Timestamp,
}

impl AttemptUpdate {
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        validate_text("attempt.idempotency_key", &self.idempotency_key, 256)?;
        if let Some(h) = &self.driver_handle {
            validate_text("attempt.driver_handle", h, 1024)?;
        }
        Ok(())
    }

    /// The detail as stored: NUL characters dropped and cut to [`MAX_DETAIL_CHARS`] (drivers return
    /// arbitrary output; it is kept as a hint, never refused).
    pub(crate) fn stored_detail(&self) -> Option<String> {
        self.detail.as_deref().map(clean_detail)
    }

    pub fn new(idempotency_key: impl Into<String>, status: AttemptStatus, at: Timestamp) -> Self {
        AttemptUpdate {
            idempotency_key: idempotency_key.into(),
            status,
            driver_handle: None,
            detail: None,
            at,
        }
    }
    pub fn handle(mut self, h: impl Into<String>) -> Self {
        self.driver_handle = Some(h.into());
        self
    }
    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }
}

/// A commitment with the GPUs that in-flight launch attempts (recorded, submitted or running) hold on it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CommitmentUsage {
    pub commitment: hedge_core::Commitment,
    pub gpus_in_use: u32,
}

impl CommitmentUsage {
    pub fn gpus_idle(&self) -> u32 {
        self.commitment.gpus.saturating_sub(self.gpus_in_use)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    Healthy,
    Degraded,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::Degraded => "degraded",
        }
    }
}

/// What the broker last concluded about a provider. The policy (how many failures make it degraded) is the
/// broker's; the store only keeps the record.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ProviderHealth {
    pub provider: ProviderId,
    pub state: HealthState,
    pub consecutive_failures: u32,
    pub last_heartbeat: Option<Timestamp>,
    pub last_error: Option<String>,
    pub updated_at: Timestamp,
}

/// One spend ledger line: money spent on `[start, end)`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SpendEntry {
    /// `None` for spend not tied to a job (idle committed capacity).
    pub job: Option<JobId>,
    pub team: TeamId,
    pub provider: ProviderId,
    pub market: Market,
    pub amount: Money,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl SpendEntry {
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        validate_name("spend.team", self.team.as_str())?;
        if self.end < self.start {
            return Err(invalid(
                "spend.end",
                format!("{} is before start {}", self.end, self.start),
            ));
        }
        validate_name("spend.provider", self.provider.as_str())
    }
}

/// A filter and page request for [`crate::Store::list_jobs`]. Jobs are ordered by id (oldest first, or newest
/// first with `newest_first`); `after` is the cursor returned as [`JobPage::next`].
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct JobFilter {
    pub team: Option<TeamId>,
    /// Empty: every state.
    pub states: Vec<JobState>,
    pub after: Option<JobId>,
    /// 0 means the default, 100; capped at 1000.
    pub limit: u32,
    pub newest_first: bool,
}

impl JobFilter {
    pub const DEFAULT_LIMIT: u32 = 100;
    pub const MAX_LIMIT: u32 = 1000;

    pub(crate) fn effective_limit(&self) -> u32 {
        match self.limit {
            0 => Self::DEFAULT_LIMIT,
            n => n.min(Self::MAX_LIMIT),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    /// Pass as [`JobFilter::after`] for the next page; `None` on the last page.
    pub next: Option<JobId>,
}

/// `[first instant of the month, first instant of the next month)` in UTC, for budget queries.
pub fn month_range(year: i32, month: u32) -> Result<(Timestamp, Timestamp), StoreError> {
    if !(1..=12).contains(&month) {
        return Err(invalid("month", format!("{month} is not in 1..=12")));
    }
    let start = Timestamp::from_ymd(year, month, 1);
    let end = if month == 12 {
        Timestamp::from_ymd(year + 1, 1, 1)
    } else {
        Timestamp::from_ymd(year, month + 1, 1)
    };
    Ok((start, end))
}

/// Largest explanation stored with a job event, as JSON text.
pub const MAX_EXPLANATION_BYTES: usize = 64 * 1024;
/// Longest attempt detail or provider error kept; longer ones are cut.
pub const MAX_DETAIL_CHARS: usize = 4096;

pub(crate) fn clean_detail(s: &str) -> String {
    s.chars()
        .filter(|&c| c != '\0')
        .take(MAX_DETAIL_CHARS)
        .collect()
}

/// Free text (a reason, a label, a handle): at most `max` bytes, no control characters other than tab.
pub(crate) fn validate_text(field: &'static str, s: &str, max: usize) -> Result<(), StoreError> {
    if s.len() > max {
        return Err(invalid(
            field,
            format!("is {} bytes long (at most {max})", s.len()),
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\t') {
        return Err(invalid(field, "contains control characters".into()));
    }
    Ok(())
}

/// Whether a looked-up key can exist at all (PostgreSQL refuses NUL in text; no stored key has one).
pub(crate) fn storable_key(s: &str) -> bool {
    !s.contains('\0')
}

pub(crate) fn validate_commitment(c: &Commitment) -> Result<(), StoreError> {
    validate_name("commitment.id", c.id.as_str())?;
    validate_name("commitment.provider", c.provider.as_str())?;
    if let Some(r) = &c.region {
        validate_name("commitment.region", r.as_str())?;
    }
    if c.gpus == 0 {
        return Err(invalid(
            "commitment.gpus",
            format!("commitment {} has 0 GPUs", c.id),
        ));
    }
    if c.end <= c.start {
        return Err(invalid(
            "commitment.end",
            format!(
                "commitment {} ends ({}) before it starts ({})",
                c.id, c.end, c.start
            ),
        ));
    }
    if c.per_gpu_hour.hourly() < Money::ZERO {
        return Err(invalid(
            "commitment.per_gpu_hour",
            format!("commitment {} has a negative rate", c.id),
        ));
    }
    Ok(())
}

/// Validates a batch of commitments for [`crate::Store::put_commitments`]: each one, and no id twice.
pub(crate) fn validate_commitments(cs: &[Commitment]) -> Result<(), StoreError> {
    let mut seen = std::collections::HashSet::with_capacity(cs.len());
    for (index, c) in cs.iter().enumerate() {
        validate_commitment(c)?;
        if !seen.insert(c.id.as_str()) {
            return Err(StoreError::DuplicateCommitment {
                id: c.id.clone(),
                index,
            });
        }
    }
    Ok(())
}

pub(crate) fn invalid(field: &'static str, reason: String) -> StoreError {
    StoreError::InvalidInput { field, reason }
}

/// Names (team ids, provider ids) are non-empty, at most 128 characters, with no control characters.
pub(crate) fn validate_name(field: &'static str, s: &str) -> Result<(), StoreError> {
    if s.trim().is_empty() {
        return Err(invalid(field, "is empty".into()));
    }
    if s.len() > 128 {
        return Err(invalid(
            field,
            format!("is {} bytes long (at most 128)", s.len()),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months() {
        let (s, e) = month_range(2026, 12).unwrap();
        assert_eq!(s.to_string(), "2026-12-01T00:00:00Z");
        assert_eq!(e.to_string(), "2027-01-01T00:00:00Z");
        assert!(month_range(2026, 13).is_err());
        assert!(month_range(2026, 0).is_err());
    }

    #[test]
    fn issued_token_debug_is_redacted() {
        let t = IssuedToken {
            id: 1,
            principal: Principal::Admin,
            secret: "hedge_supersecret".into(),
        };
        let dbg = format!("{t:?}");
        assert!(!dbg.contains("supersecret"), "{dbg}");
    }

    #[test]
    fn transition_validation() {
        let t = Transition::new(JobId(1), JobState::Pending, JobState::Running, Timestamp(0))
            .reason("x");
        assert!(matches!(
            t.validate(),
            Err(StoreError::IllegalTransition { .. })
        ));
        let t = Transition::new(JobId(1), JobState::Pending, JobState::Placing, Timestamp(0));
        assert!(matches!(
            t.validate(),
            Err(StoreError::InvalidInput {
                field: "transition.reason",
                ..
            })
        ));
    }
}

//! The `/v1` API's request and response types, shared by the server ([`crate::api`]) and the CLI's client
//! ([`crate::client`]). The OpenAPI document ([`crate::openapi`]) is derived from them with utoipa, so the
//! document, the server and the client cannot drift apart.
//!
//! These are wire types: plain fields (ids as strings, times as seconds since the Unix epoch, money as
//! integer micro-dollars), converted from the store's and the core's values in one place (the `From`
//! impls below). The store and the core stay free of HTTP and OpenAPI concerns.

use crate::schedule::WaitReason;
use hedge_core::{AttemptStatus, Bound, JobState, Market, Preference, SpotPref};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// JSON numbers for integer fields: a whole number also when written as a float (`3.0`), as JSON Schema's
/// `integer` allows; anything else (a fraction, out of range) is refused naming the field.
pub mod whole {
    use serde::{Deserialize, Deserializer};

    fn to_i128<'de, D: Deserializer<'de>>(v: serde_json::Number) -> Result<i128, D::Error> {
        if let Some(i) = v.as_i64() {
            return Ok(i128::from(i));
        }
        if let Some(u) = v.as_u64() {
            return Ok(i128::from(u));
        }
        match v.as_f64() {
            Some(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e30 => Ok(f as i128),
            _ => Err(serde::de::Error::custom(format!(
                "expected a whole number, got {v}"
            ))),
        }
    }
    pub fn de<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<T, D::Error> {
        let n = to_i128::<D>(serde_json::Number::deserialize(d)?)?;
        T::try_from(n).map_err(|_| serde::de::Error::custom(format!("{n} is out of range")))
    }
    pub fn de_opt<'de, D: Deserializer<'de>, T: TryFrom<i128>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        match Option::<serde_json::Number>::deserialize(d)? {
            None => Ok(None),
            Some(v) => {
                let n = to_i128::<D>(v)?;
                T::try_from(n)
                    .map(Some)
                    .map_err(|_| serde::de::Error::custom(format!("{n} is out of range")))
            }
        }
    }
}

/// The pattern of team ids, provider names and commitment ids the API accepts.
pub const NAME_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$";

/// Whether `s` matches [`NAME_PATTERN`].
pub fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Every error answer: `{"error": {"code", "message", "field"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, e.g. `invalid_yaml`, `unknown_accelerator`, `invalid_query`, `invalid_path`, `body_too_large`,
    /// `unknown_team`, `unauthorized`, `forbidden`, `not_found`, `method_not_allowed`, `conflict`,
    /// `idempotency_conflict`, `duplicate_commitment`.
    pub code: String,
    pub message: String,
    /// The offending input: a body field (`resources.accelerators`, `commitments[3].provider`), a query or
    /// path parameter, or a header (`Authorization`, `Idempotency-Key`).
    pub field: Option<String>,
}

/// `GET /healthz`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok` (a store failure answers 500).
    pub status: String,
    /// `sqlite` or `postgres`.
    pub store: String,
}

// ---- jobs -----------------------------------------------------------------------------------------------------

/// A job's lifecycle state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStateName {
    Pending,
    Placing,
    Launching,
    Running,
    Recovering,
    Cancelling,
    Succeeded,
    Failed,
    Cancelled,
}

impl From<JobState> for JobStateName {
    fn from(s: JobState) -> Self {
        match s {
            JobState::Pending => JobStateName::Pending,
            JobState::Placing => JobStateName::Placing,
            JobState::Launching => JobStateName::Launching,
            JobState::Running => JobStateName::Running,
            JobState::Recovering => JobStateName::Recovering,
            JobState::Cancelling => JobStateName::Cancelling,
            JobState::Succeeded => JobStateName::Succeeded,
            JobState::Failed => JobStateName::Failed,
            JobState::Cancelled => JobStateName::Cancelled,
        }
    }
}

impl std::fmt::Display for JobStateName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = serde_json::to_value(self).ok();
        f.write_str(s.as_ref().and_then(|v| v.as_str()).unwrap_or("?"))
    }
}

/// An accelerator request per node: `name` × `count`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccelView {
    pub name: String,
    pub count: u32,
}

/// `{"exactly": n}` or `{"at_least": n}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BoundView {
    Exactly(u64),
    AtLeast(u64),
}

impl<T: Into<u64>> From<Bound<T>> for BoundView {
    fn from(b: Bound<T>) -> Self {
        match b {
            Bound::Exactly(x) => BoundView::Exactly(x.into()),
            Bound::AtLeast(x) => BoundView::AtLeast(x.into()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SpotView {
    Never,
    Required,
    Allowed,
}

/// One acceptable resource shape per node; `null` means "any".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResourceView {
    pub accelerators: Option<AccelView>,
    pub provider: Option<String>,
    pub region: Option<String>,
    pub zone: Option<String>,
    pub spot: SpotView,
    /// vCPUs per node, in thousandths.
    pub cpus_milli: Option<BoundView>,
    pub memory_mib: Option<BoundView>,
    pub instance_type: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PreferenceView {
    Cheapest,
    Ordered,
}

/// The parsed task: what runs, on what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskView {
    pub name: Option<String>,
    pub run: Option<String>,
    pub num_nodes: u32,
    pub resources: Vec<ResourceView>,
    pub preference: PreferenceView,
    /// Hedge's `time_limit_seconds`, when the submission gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit_seconds: Option<u64>,
}

impl From<&hedge_core::TaskSpec> for TaskView {
    fn from(t: &hedge_core::TaskSpec) -> Self {
        TaskView {
            name: t.name.clone(),
            run: t.run.clone(),
            num_nodes: t.num_nodes,
            resources: t
                .resources
                .iter()
                .map(|r| ResourceView {
                    accelerators: r.accelerators.as_ref().map(|a| AccelView {
                        name: a.name.as_str().to_owned(),
                        count: a.count,
                    }),
                    provider: r.provider.as_ref().map(|p| p.as_str().to_owned()),
                    region: r.region.as_ref().map(|p| p.as_str().to_owned()),
                    zone: r.zone.as_ref().map(|p| p.as_str().to_owned()),
                    spot: match r.spot {
                        SpotPref::Never => SpotView::Never,
                        SpotPref::Required => SpotView::Required,
                        SpotPref::Allowed => SpotView::Allowed,
                    },
                    cpus_milli: r.cpus_milli.map(BoundView::from),
                    memory_mib: r.memory_mib.map(BoundView::from),
                    instance_type: r.instance_type.clone(),
                })
                .collect(),
            preference: match t.preference {
                Preference::Cheapest => PreferenceView::Cheapest,
                Preference::Ordered => PreferenceView::Ordered,
            },
            time_limit_seconds: t.time_limit_seconds,
        }
    }
}

/// Why a job waits (as of the last reconciliation pass).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Waiting {
    /// `unknown_team`, `over_budget`, `over_quota`, `no_fit` or `preempting`.
    pub reason: String,
    pub detail: WaitDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WaitDetail {
    UnknownTeam {
        team: String,
    },
    /// Micro-dollars: booked, accrued and reserved this month; the budget; this job's reservation.
    OverBudget {
        spent: i64,
        budget: i64,
        needed: i64,
    },
    OverQuota {
        provider: Option<String>,
        accelerator: Option<String>,
        max_gpus: u32,
        in_use: u32,
        needed: u32,
    },
    NoFit {
        rejected: Vec<String>,
    },
    Preempting {
        victims: Vec<u64>,
        provider: String,
        gpus: u32,
    },
}

impl From<&WaitReason> for Waiting {
    fn from(w: &WaitReason) -> Self {
        let detail = match w {
            WaitReason::UnknownTeam { team } => WaitDetail::UnknownTeam {
                team: team.as_str().to_owned(),
            },
            WaitReason::OverBudget {
                spent,
                budget,
                needed,
            } => WaitDetail::OverBudget {
                spent: spent.micros(),
                budget: budget.micros(),
                needed: needed.micros(),
            },
            WaitReason::OverQuota {
                provider,
                accelerator,
                max_gpus,
                in_use,
                needed,
            } => WaitDetail::OverQuota {
                provider: provider.as_ref().map(|p| p.as_str().to_owned()),
                accelerator: accelerator.as_ref().map(|a| a.as_str().to_owned()),
                max_gpus: *max_gpus,
                in_use: *in_use,
                needed: *needed,
            },
            WaitReason::NoFit { rejected } => WaitDetail::NoFit {
                rejected: rejected.clone(),
            },
            WaitReason::Preempting {
                victims,
                provider,
                gpus,
            } => WaitDetail::Preempting {
                victims: victims.iter().map(|v| v.0).collect(),
                provider: provider.as_str().to_owned(),
                gpus: *gpus,
            },
        };
        Waiting {
            reason: w.code().to_owned(),
            detail,
        }
    }
}

/// A job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub id: u64,
    pub team: String,
    /// Higher runs first.
    pub priority: i32,
    /// Seconds since the Unix epoch.
    pub deadline: Option<i64>,
    pub spec: TaskView,
    pub submitted_at: i64,
    pub state: JobStateName,
    /// Transitions so far.
    pub version: u64,
    /// The latest launch attempt's number (0: none yet).
    pub current_attempt: u32,
    pub updated_at: i64,
    /// The `Idempotency-Key` it was submitted with.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Set while the job waits for a reason other than "no capacity yet".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
}

impl JobView {
    pub fn new(job: &hedge_store::Job, waiting: Option<&WaitReason>) -> Self {
        JobView {
            id: job.id.0,
            team: job.team.as_str().to_owned(),
            priority: job.priority,
            deadline: job.deadline.map(|d| d.unix()),
            spec: TaskView::from(&job.spec),
            submitted_at: job.submitted_at.unix(),
            state: job.state.into(),
            version: job.version,
            current_attempt: job.current_attempt,
            updated_at: job.updated_at.unix(),
            idempotency_key: job.idempotency_key.clone(),
            waiting: waiting.map(Waiting::from),
        }
    }
}

/// `POST /v1/jobs`: the stored job plus the task parser's warnings (unknown fields).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubmittedJob {
    #[serde(flatten)]
    pub job: JobView,
    pub warnings: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MarketName {
    Committed,
    OnDemand,
    Spot,
}

impl From<Market> for MarketName {
    fn from(m: Market) -> Self {
        match m {
            Market::Committed => MarketName::Committed,
            Market::OnDemand => MarketName::OnDemand,
            Market::Spot => MarketName::Spot,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatusName {
    Recorded,
    Submitted,
    Running,
    Cancelling,
    Orphaned,
    Succeeded,
    Failed,
    Lost,
    Cancelled,
}

impl From<AttemptStatus> for AttemptStatusName {
    fn from(s: AttemptStatus) -> Self {
        match s {
            AttemptStatus::Recorded => AttemptStatusName::Recorded,
            AttemptStatus::Submitted => AttemptStatusName::Submitted,
            AttemptStatus::Running => AttemptStatusName::Running,
            AttemptStatus::Cancelling => AttemptStatusName::Cancelling,
            AttemptStatus::Orphaned => AttemptStatusName::Orphaned,
            AttemptStatus::Succeeded => AttemptStatusName::Succeeded,
            AttemptStatus::Failed => AttemptStatusName::Failed,
            AttemptStatus::Lost => AttemptStatusName::Lost,
            AttemptStatus::Cancelled => AttemptStatusName::Cancelled,
        }
    }
}

impl std::fmt::Display for AttemptStatusName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = serde_json::to_value(self).ok();
        f.write_str(s.as_ref().and_then(|v| v.as_str()).unwrap_or("?"))
    }
}

/// One launch attempt of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    pub attempt_no: u32,
    pub idempotency_key: String,
    pub provider: String,
    pub offer: String,
    pub region: Option<String>,
    pub zone: Option<String>,
    pub market: MarketName,
    pub commitment: Option<String>,
    pub accelerator: Option<String>,
    pub gpus: u32,
    pub driver_handle: Option<String>,
    pub status: AttemptStatusName,
    pub detail: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&hedge_store::LaunchAttempt> for AttemptView {
    fn from(a: &hedge_store::LaunchAttempt) -> Self {
        AttemptView {
            attempt_no: a.attempt_no,
            idempotency_key: a.idempotency_key.clone(),
            provider: a.provider.as_str().to_owned(),
            offer: a.offer.clone(),
            region: a.region.as_ref().map(|r| r.as_str().to_owned()),
            zone: a.zone.as_ref().map(|r| r.as_str().to_owned()),
            market: a.market.into(),
            commitment: a.commitment.as_ref().map(|c| c.as_str().to_owned()),
            accelerator: a.accelerator.as_ref().map(|c| c.as_str().to_owned()),
            gpus: a.gpus,
            driver_handle: a.driver_handle.clone(),
            status: a.status.into(),
            detail: a.detail.clone(),
            created_at: a.created_at.unix(),
            updated_at: a.updated_at.unix(),
        }
    }
}

/// `GET /v1/jobs/{id}`: the job with its launch attempts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobDetail {
    #[serde(flatten)]
    pub job: JobView,
    pub attempts: Vec<AttemptView>,
}

/// `GET /v1/jobs`: one page, oldest first unless `newest_first`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobPage {
    pub jobs: Vec<JobView>,
    /// The cursor of the next page (`after=`), `null` on the last page.
    pub next: Option<u64>,
}

/// Query parameters of `GET /v1/jobs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this team's jobs (a team token may name only its own team).
    pub team: Option<String>,
    /// Comma-separated states, e.g. `pending,running`.
    #[param(
        pattern = r"^((pending|placing|launching|running|recovering|cancelling|succeeded|failed|cancelled)(,(pending|placing|launching|running|recovering|cancelling|succeeded|failed|cancelled))*)?$"
    )]
    pub state: Option<String>,
    /// Cursor: `next` of the previous page.
    #[param(minimum = 0)]
    pub after: Option<u64>,
    /// Page size (0 or absent: the default, 100); at most 1000.
    #[param(minimum = 0, maximum = 1000)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub newest_first: Option<bool>,
}

/// Query parameters of `GET /v1/jobs/{id}/logs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// At most this many bytes of each stream, from the end (default 65536).
    #[param(minimum = 0)]
    pub tail_bytes: Option<u64>,
}

/// What an instance's boot script reports when its command ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttemptStatusReport {
    /// The command's exit status (0 = success).
    pub exit_code: i32,
}

/// Which output stream a report carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StreamName {
    Stdout,
    Stderr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// `stdout` or `stderr`.
    pub stream: StreamName,
}

/// A report was recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportRecorded {
    pub attempt: String,
}

/// One state change of a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// 0 for the submission.
    pub seq: u64,
    pub from: Option<JobStateName>,
    pub to: JobStateName,
    /// A short stable code: `submitted`, `placed_committed`, `cancelled_by_user`, ...
    pub reason: String,
    /// Anything that explains the move (a placement explanation, a driver error); `null` when nothing.
    pub explanation: serde_json::Value,
    pub at: i64,
}

impl From<&hedge_store::JobEvent> for EventView {
    fn from(e: &hedge_store::JobEvent) -> Self {
        EventView {
            seq: e.seq,
            from: e.from.map(Into::into),
            to: e.to.into(),
            reason: e.reason.clone(),
            explanation: e.explanation.clone(),
            at: e.at.unix(),
        }
    }
}

/// `GET /v1/jobs/{id}/events`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobEvents {
    pub job: u64,
    pub events: Vec<EventView>,
}

/// `GET /v1/jobs/{id}/logs`: the latest attempt's output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobLogs {
    pub job: u64,
    pub attempt: u32,
    pub provider: String,
    pub stdout: String,
    pub stderr: String,
    pub truncated: bool,
}

/// The body of `POST /v1/jobs`: one SkyPilot task document, as YAML or JSON, with Hedge's top-level `team`,
/// `priority` and `deadline`. The server parses it with its SkyPilot task parser, which knows more
/// SkyPilot fields than listed here (unknown ones come back as `warnings`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSubmission {
    /// The team the job is for: required with the admin token; a team token may name only its own team.
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    pub team: String,
    #[schema(
        nullable = false,
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
    pub name: Option<String>,
    /// Higher runs first (default 0).
    #[schema(nullable = false)]
    pub priority: Option<i32>,
    #[schema(nullable = false)]
    pub resources: Option<TaskResources>,
    #[schema(minimum = 1, nullable = false)]
    pub num_nodes: Option<u32>,
    /// The command: a shell script (not blank).
    #[schema(
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
    pub run: String,
    /// Hedge's: the longest the job is expected to run; a launch reserves this much of its cost against the
    /// team's budget (default: the broker's `ledger.reserve_hours`, renewed while it runs).
    #[schema(minimum = 1, maximum = 31_622_400, nullable = false)]
    pub time_limit_seconds: Option<u64>,
}

/// The `resources` of a task (the subset this document describes; see SkyPilot's task YAML).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskResources {
    /// `NAME` or `NAME:COUNT`, e.g. `H100:8`; the name must be in the broker's catalog.
    #[schema(pattern = r"^(H100|A100|L4)(:[1-9][0-9]{0,8})?$", nullable = false)]
    pub accelerators: Option<String>,
    /// SkyPilot's `use_spot`.
    #[schema(nullable = false)]
    pub use_spot: Option<bool>,
}

// ---- providers, commitments, teams, tokens, faults -------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommittedCapacity {
    pub commitment: String,
    pub gpus: u32,
    pub gpus_in_use: u32,
    pub gpus_free: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthName {
    Healthy,
    Degraded,
}

/// A configured provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProviderView {
    pub name: String,
    /// The driver: `local`, `slurm` or `ec2`.
    pub kind: String,
    /// What it sells: `owned`, or `catalog` (the catalog's offers of `catalog_provider` in `regions`).
    pub sells: String,
    pub catalog_provider: Option<String>,
    /// Catalog regions (empty: all of the catalog provider's).
    pub regions: Vec<String>,
    /// The accelerator of an owned provider; `null` for a catalog provider (whatever its offers carry).
    pub accelerator: Option<String>,
    /// GPUs the broker may hold on it at once.
    pub gpus: u32,
    pub gpus_in_use: u32,
    /// Nodes one job may span on it (1 where its driver cannot run multi-node jobs).
    pub max_nodes: u32,
    /// An owned provider's rate, e.g. `$2.00/h`; `null` for catalog prices (per offer).
    pub on_demand_per_gpu_hour: Option<String>,
    pub health: HealthName,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub committed: Vec<CommittedCapacity>,
    pub committed_gpus_free: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProviderList {
    pub providers: Vec<ProviderView>,
}

/// A commitment as stored, with its use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommitmentView {
    pub id: String,
    pub provider: String,
    pub accelerator: String,
    /// `null`: any region of the provider.
    pub region: Option<String>,
    pub gpus: u32,
    /// Micro-dollars per GPU-hour.
    pub per_gpu_hour: i64,
    /// Seconds since the Unix epoch.
    pub start: i64,
    /// Exclusive end.
    pub end: i64,
    pub gpus_in_use: u32,
    pub gpus_idle: u32,
}

impl From<&hedge_store::CommitmentUsage> for CommitmentView {
    fn from(u: &hedge_store::CommitmentUsage) -> Self {
        let c = &u.commitment;
        CommitmentView {
            id: c.id.as_str().to_owned(),
            provider: c.provider.as_str().to_owned(),
            accelerator: c.accelerator.as_str().to_owned(),
            region: c.region.as_ref().map(|r| r.as_str().to_owned()),
            gpus: c.gpus,
            per_gpu_hour: c.per_gpu_hour.hourly().micros(),
            start: c.start.unix(),
            end: c.end.unix(),
            gpus_in_use: u.gpus_in_use,
            gpus_idle: u.gpus_idle(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommitmentList {
    pub commitments: Vec<CommitmentView>,
}

/// A hand-written commitment to import.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommitmentInput {
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    pub id: String,
    /// A provider configured in this broker.
    pub provider: String,
    /// An accelerator that provider offers.
    pub accelerator: String,
    #[serde(default)]
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    pub region: Option<String>,
    #[serde(deserialize_with = "whole::de")]
    #[schema(minimum = 1, maximum = 1000000)]
    pub gpus: i64,
    /// Micro-dollars per GPU-hour.
    #[serde(deserialize_with = "whole::de")]
    #[schema(minimum = 0, maximum = 1000000000000_i64)]
    pub per_gpu_hour: i64,
    /// Seconds since the Unix epoch; from 2000 to 10 years after the server's clock.
    #[serde(deserialize_with = "whole::de")]
    #[schema(minimum = 946684800)]
    pub start: i64,
    /// Exclusive end, after `start`.
    #[serde(deserialize_with = "whole::de")]
    pub end: i64,
}

/// The horizon of a plan (`hedge plan --format json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanHorizon {
    /// `YYYY-MM`, from 2000-01.
    #[schema(pattern = r"^(20[0-9]{2})-(0[1-9]|1[0-2])$")]
    pub start: String,
    #[serde(deserialize_with = "whole::de")]
    #[schema(minimum = 1, maximum = 240)]
    pub periods: u32,
    #[serde(deserialize_with = "whole::de")]
    #[schema(minimum = 1, maximum = 744)]
    pub period_hours: u32,
}

/// One commitment of a plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlannedCommitmentInput {
    pub provider: String,
    pub accelerator: String,
    #[serde(deserialize_with = "whole::de")]
    #[schema(minimum = 1, maximum = 240)]
    pub term_periods: u32,
    #[serde(deserialize_with = "whole::de")]
    #[schema(minimum = 0, maximum = 239)]
    pub start_period: u32,
    #[serde(deserialize_with = "whole::de")]
    #[schema(minimum = 1, maximum = 1000000)]
    pub gpus: u32,
    /// $/GPU-hour.
    #[schema(minimum = 0, maximum = 1000000)]
    pub rate: f64,
}

/// The body of `POST /v1/commitments`: a list of commitments, the same under `commitments`, or a plan's JSON
/// (`horizon` plus planned `commitments`, converted with the plan's horizon).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CommitmentImportBody {
    List(Vec<CommitmentInput>),
    Plan {
        horizon: PlanHorizon,
        commitments: Vec<PlannedCommitmentInput>,
    },
    Wrapped {
        commitments: Vec<CommitmentInput>,
    },
}

/// `POST /v1/commitments`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Imported {
    pub imported: usize,
}

/// A team's cap on GPUs held at once; `null` provider or accelerator means "any".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaView {
    #[serde(default)]
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    pub provider: Option<String>,
    #[serde(default)]
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")]
    pub accelerator: Option<String>,
    #[serde(deserialize_with = "whole::de")]
    #[schema(minimum = 0, maximum = 1000000)]
    pub max_gpus: u32,
}

/// A team.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TeamView {
    pub id: String,
    /// Micro-dollars per month; `null`: no limit.
    pub monthly_budget: Option<i64>,
    pub quotas: Vec<QuotaView>,
    pub allow_preemption: bool,
    pub on_budget_exceeded: BudgetActionName,
}

/// What a team's running jobs do once its spend reaches its monthly budget: `wait` (they go on; new jobs
/// wait) or `stop` (they are cancelled, confirmed by the provider).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetActionName {
    #[default]
    Wait,
    Stop,
}

impl From<hedge_store::OnBudgetExceeded> for BudgetActionName {
    fn from(a: hedge_store::OnBudgetExceeded) -> Self {
        match a {
            hedge_store::OnBudgetExceeded::Wait => BudgetActionName::Wait,
            hedge_store::OnBudgetExceeded::Stop => BudgetActionName::Stop,
        }
    }
}

impl From<BudgetActionName> for hedge_store::OnBudgetExceeded {
    fn from(a: BudgetActionName) -> Self {
        match a {
            BudgetActionName::Wait => hedge_store::OnBudgetExceeded::Wait,
            BudgetActionName::Stop => hedge_store::OnBudgetExceeded::Stop,
        }
    }
}

impl From<&hedge_store::Team> for TeamView {
    fn from(t: &hedge_store::Team) -> Self {
        TeamView {
            id: t.id.as_str().to_owned(),
            monthly_budget: t.monthly_budget.map(|m| m.micros()),
            quotas: t
                .quotas
                .iter()
                .map(|q| QuotaView {
                    provider: q.provider.as_ref().map(|p| p.as_str().to_owned()),
                    accelerator: q.accelerator.as_ref().map(|a| a.as_str().to_owned()),
                    max_gpus: q.max_gpus,
                })
                .collect(),
            allow_preemption: t.allow_preemption,
            on_budget_exceeded: t.on_budget_exceeded.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TeamList {
    pub teams: Vec<TeamView>,
}

/// The body of `PUT /v1/teams/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamBody {
    /// Dollars per month; absent: no limit.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub monthly_budget_usd: Option<f64>,
    #[serde(default)]
    pub allow_preemption: bool,
    /// At most one quota per (provider, accelerator) pair.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub quotas: Vec<QuotaView>,
    /// `wait` (default) or `stop`.
    #[serde(default)]
    pub on_budget_exceeded: BudgetActionName,
}

/// The body of `POST /v1/teams/{id}/tokens` (may be empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    #[serde(default)]
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub label: String,
}

/// A new team token. The secret is shown once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IssuedTokenView {
    pub id: i64,
    pub team: String,
    pub token: String,
}

impl std::fmt::Debug for IssuedTokenView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTokenView")
            .field("id", &self.id)
            .field("team", &self.team)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// A provider's injected faults (the body of `PUT /v1/admin/providers/{id}/faults`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Every call fails as unreachable (a partition).
    pub unreachable: bool,
    /// The next this many submits fail.
    #[serde(deserialize_with = "whole::de")]
    #[schema(minimum = 0, maximum = 1000000)]
    pub fail_submits: u32,
    /// The next this many observations of an attempt lose it.
    #[serde(deserialize_with = "whole::de")]
    #[schema(minimum = 0, maximum = 1000000)]
    pub lose_next: u32,
}

impl From<hedge_drivers::FaultSettings> for Faults {
    fn from(f: hedge_drivers::FaultSettings) -> Self {
        Faults {
            unreachable: f.unreachable,
            fail_submits: f.fail_submits,
            lose_next: f.lose_next,
        }
    }
}

impl From<Faults> for hedge_drivers::FaultSettings {
    fn from(f: Faults) -> Self {
        hedge_drivers::FaultSettings {
            unreachable: f.unreachable,
            fail_submits: f.fail_submits,
            lose_next: f.lose_next,
        }
    }
}

/// `PUT` and `GET /v1/admin/providers/{id}/faults`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FaultsView {
    pub provider: String,
    pub faults: Faults,
    /// Faults injected so far (`GET` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injected: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_may_be_written_as_floats_but_not_as_fractions() {
        let q = |s: &str| {
            serde_json::from_str::<QuotaView>(s)
                .map(|q| q.max_gpus)
                .map_err(|e| e.to_string())
        };
        assert_eq!(q(r#"{"max_gpus": 3}"#), Ok(3));
        assert_eq!(q(r#"{"max_gpus": 3.0}"#), Ok(3));
        assert!(q(r#"{"max_gpus": 3.5}"#)
            .unwrap_err()
            .contains("whole number"));
        assert!(q(r#"{"max_gpus": -1}"#)
            .unwrap_err()
            .contains("out of range"));
        assert!(q(r#"{"max_gpus": 1e40}"#).is_err());
        assert!(q(r#"{"max_gpus": "3"}"#).is_err());
    }

    #[test]
    fn names() {
        for ok in ["ml", "team-1", "A.b_c", "0"] {
            assert!(is_name(ok), "{ok}");
        }
        for bad in ["", "-x", "a b", "null,null", "é", &"x".repeat(65)] {
            assert!(!is_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_submitted_job_is_the_job_plus_warnings_on_the_wire() {
        let v = serde_json::json!({
            "id": 1, "team": "ml", "priority": 0, "deadline": null,
            "spec": {"name": null, "run": "true", "num_nodes": 1, "resources": [], "preference": "cheapest"},
            "submitted_at": 5, "state": "pending", "version": 0, "current_attempt": 0, "updated_at": 5,
            "idempotency_key": "k", "warnings": ["w"]
        });
        let s: SubmittedJob = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(
            (s.job.id, s.job.state, s.warnings.as_slice()),
            (1, JobStateName::Pending, &["w".to_owned()][..])
        );
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            v,
            "flattened, no `waiting` when none"
        );
        assert_eq!(JobStateName::Cancelling.to_string(), "cancelling");
    }
}

// ---- cost ----------------------------------------------------------------------------------------------------

/// A cost window: `[from, to)`, each `YYYY-MM-DD[THH:MM[:SS]][Z]` (UTC); both absent: the current month.
/// `to` must be after `from`, and a date that does not exist (`2026-02-31`) is refused: 409, as a rule the
/// schema cannot state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CostQuery {
    /// Start of the window (inclusive), e.g. `2026-11-01`.
    #[param(
        pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?)?Z?$"
    )]
    pub from: Option<String>,
    /// End of the window (exclusive), e.g. `2026-12-01`; clipped at now.
    #[param(
        pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?)?Z?$"
    )]
    pub to: Option<String>,
    /// Only this team (a team token may name only its own team).
    pub team: Option<String>,
}

/// A cost window without a team (see [`CostQuery`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WindowQuery {
    /// Start of the window (inclusive), e.g. `2026-11-01`.
    #[param(
        pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?)?Z?$"
    )]
    pub from: Option<String>,
    /// End of the window (exclusive); clipped at now.
    #[param(
        pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?)?Z?$"
    )]
    pub to: Option<String>,
}

/// A FOCUS export's window and version.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Start of the window (inclusive), e.g. `2026-11-01`.
    #[param(
        pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?)?Z?$"
    )]
    pub from: Option<String>,
    /// End of the window (exclusive); clipped at now.
    #[param(
        pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?)?Z?$"
    )]
    pub to: Option<String>,
    /// `1.0` (default) or `1.2`.
    #[param(pattern = r"^(1\.0|1\.2)$")]
    pub focus_version: Option<String>,
}

/// Spend in a window: usage (booked, and running attempts accrued up to now) plus commitment fees charged
/// by the configured allocation. Micro-dollars.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SpendReport {
    pub from: i64,
    pub to: i64,
    /// The ledger's total for the window (all teams, and fees charged to none); the FOCUS export's
    /// EffectiveCost sums to it.
    pub total: i64,
    pub teams: Vec<TeamSpend>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TeamSpend {
    /// `null`: commitment fees charged to no team (unused, with `usage_share` allocation).
    pub team: Option<String>,
    pub spend: i64,
    /// This month's budget, if any (only when the window is given for a team).
    pub monthly_budget: Option<i64>,
}

/// Commitment metrics over a window, with burn-down as of now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CommitmentReport {
    pub from: i64,
    pub to: i64,
    pub now: i64,
    pub commitments: Vec<CommitmentMetricsView>,
    /// The same figures summed per provider and per accelerator (`group`: `provider:aws`, `accelerator:H100`).
    pub groups: Vec<CommitmentMetricsView>,
    /// Each team's share of the fees (used and unused), by the configured allocation.
    pub fee_by_team: Vec<TeamSpend>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CommitmentMetricsView {
    /// The commitment's id, or the group's name.
    pub id: String,
    pub capacity_gpu_hours: f64,
    pub used_gpu_hours: f64,
    /// On-demand and spot GPU-hours of the same provider and accelerator in the commitment's term.
    pub uncovered_gpu_hours: f64,
    /// Micro-dollars.
    pub fee: i64,
    pub waste: i64,
    pub on_demand_equivalent: i64,
    pub utilization: f64,
    pub coverage: f64,
    pub effective_savings_rate: f64,
    pub remaining_fee: i64,
    pub remaining_gpu_hours: f64,
    pub projected_unused_gpu_hours: f64,
}

impl CommitmentMetricsView {
    pub fn from_metrics(id: String, m: &hedge_core::ledger::CommitmentMetrics) -> Self {
        let h = |s: u64| s as f64 / 3600.0;
        CommitmentMetricsView {
            id,
            capacity_gpu_hours: h(m.capacity_gpu_seconds),
            used_gpu_hours: h(m.used_gpu_seconds),
            uncovered_gpu_hours: h(m.uncovered_gpu_seconds),
            fee: m.fee.micros(),
            waste: m.waste.micros(),
            on_demand_equivalent: m.on_demand_equivalent.micros(),
            utilization: m.utilization,
            coverage: m.coverage,
            effective_savings_rate: m.effective_savings_rate,
            remaining_fee: m.remaining_fee.micros(),
            remaining_gpu_hours: h(m.remaining_gpu_seconds),
            projected_unused_gpu_hours: h(m.projected_unused_gpu_seconds),
        }
    }
}

//! The HTTP API. Every handler authenticates first ([`Auth`]), parses its input in one place, and answers
//! errors as [`ApiError`] JSON. A team token sees only its team's jobs: another team's job is "not found",
//! so its existence does not leak.

use crate::{chain, submit, ApiError, Broker};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use hedge_core::{Accelerator, Commitment, JobId, JobState, Money, ProviderId, TeamId};
use hedge_drivers::{FaultSettings, IdempotencyKey};
use hedge_store::{Job, JobFilter, NewJob, Principal, Team, TeamQuota, Transition};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

type AppState = Arc<Broker>;
type ApiResult = Result<Response, ApiError>;

pub fn router(broker: Arc<Broker>) -> Router {
    let limit = broker.config.body_limit_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/jobs", post(submit_job).get(list_jobs))
        .route("/v1/jobs/{id}", get(get_job))
        .route("/v1/jobs/{id}/cancel", post(cancel_job))
        .route("/v1/jobs/{id}/events", get(job_events))
        .route("/v1/jobs/{id}/logs", get(job_logs))
        .route("/v1/providers", get(providers))
        .route("/v1/commitments", get(list_commitments).post(import_commitments))
        .route("/v1/teams", get(list_teams))
        .route("/v1/teams/{id}", put(put_team))
        .route("/v1/teams/{id}/tokens", post(create_token))
        .route("/v1/admin/providers/{id}/faults", put(put_faults).get(get_faults))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(log_request))
        .with_state(broker)
}

/// Logs method, path and status of every request. Never headers (they carry tokens) and never bodies.
async fn log_request(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    tracing::info!(%method, %path, status = resp.status().as_u16(), "request");
    resp
}

// ---- auth ---------------------------------------------------------------------------------------------------

/// The authenticated principal of a request (`Authorization: Bearer <token>`).
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::unauthorized)?;
        match state.store.authenticate(token).await? {
            Some(p) => Ok(Auth(p)),
            None => Err(ApiError::unauthorized()),
        }
    }
}

impl Auth {
    fn admin(&self) -> Result<(), ApiError> {
        match self.0 {
            Principal::Admin => Ok(()),
            Principal::Team(_) => Err(ApiError::forbidden("this needs the admin token")),
        }
    }
    fn may_see(&self, team: &TeamId) -> bool {
        match &self.0 {
            Principal::Admin => true,
            Principal::Team(t) => t == team,
        }
    }
}

/// The body, or 413 naming the field when it is over the limit.
fn body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the body is over the size limit").field("body")
        } else {
            ApiError::bad_request("invalid_body", "body", r.body_text())
        }
    })
}

fn json_body<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(b).map_err(|e| {
        let msg = e.to_string();
        // serde names the field in "unknown field `x`" and "missing field `x`".
        let field = msg.split('`').nth(1).unwrap_or("body").to_owned();
        ApiError::bad_request("invalid_json", field, format!("invalid JSON: {msg}"))
    })
}

fn ok(status: StatusCode, v: Value) -> ApiResult {
    Ok((status, Json(v)).into_response())
}

// ---- plumbing ---------------------------------------------------------------------------------------------

async fn healthz(State(b): State<AppState>) -> ApiResult {
    b.store.ping().await?;
    ok(StatusCode::OK, json!({"status": "ok", "store": b.store.backend()}))
}

async fn openapi() -> ApiResult {
    ok(StatusCode::OK, crate::openapi::document())
}

async fn metrics(State(b): State<AppState>) -> ApiResult {
    use std::fmt::Write;
    let mut out = String::new();
    b.metrics.render_counters(&mut out);
    let counts = b.store.job_counts().await?;
    let _ = writeln!(out, "# HELP hedge_jobs Jobs per state.\n# TYPE hedge_jobs gauge");
    for s in JobState::ALL {
        let n = counts.iter().find(|(st, _)| *st == s).map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "hedge_jobs{{state=\"{s}\"}} {n}");
    }
    let in_use = gpus_in_use(&b).await?;
    let _ = writeln!(out, "# HELP hedge_provider_healthy 1 when the provider is healthy, 0 when degraded.\n# TYPE hedge_provider_healthy gauge");
    let healthy: Vec<(ProviderId, bool)> = {
        let h = b.health.lock().unwrap_or_else(|p| p.into_inner());
        b.drivers.keys().map(|p| (p.clone(), h.is_healthy(p))).collect()
    };
    for (p, ok) in &healthy {
        let _ = writeln!(out, "hedge_provider_healthy{{provider=\"{}\"}} {}", crate::metrics::label(p.as_str()), u8::from(*ok));
    }
    let _ = writeln!(out, "# HELP hedge_provider_gpus_in_use GPUs held by in-flight attempts.\n# TYPE hedge_provider_gpus_in_use gauge");
    for (p, _) in &healthy {
        let n = in_use.get(p).copied().unwrap_or(0);
        let _ = writeln!(out, "hedge_provider_gpus_in_use{{provider=\"{}\"}} {n}", crate::metrics::label(p.as_str()));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

async fn gpus_in_use(b: &Broker) -> Result<std::collections::BTreeMap<ProviderId, u32>, ApiError> {
    let mut m = std::collections::BTreeMap::new();
    for a in b.store.in_flight_attempts().await? {
        *m.entry(a.provider).or_default() += a.gpus;
    }
    Ok(m)
}

// ---- jobs ---------------------------------------------------------------------------------------------------

async fn submit_job(State(b): State<AppState>, auth: Auth, raw: Result<Bytes, BytesRejection>) -> ApiResult {
    let r = submit_inner(&b, &auth, raw).await;
    if r.is_err() {
        b.metrics.inc(&b.metrics.rejected_submits);
    }
    r
}

async fn submit_inner(b: &Broker, auth: &Auth, raw: Result<Bytes, BytesRejection>) -> ApiResult {
    let raw = body(raw)?;
    let s = submit::parse(&raw, &b.known_accelerators)?;
    let team = match (&auth.0, s.team) {
        (Principal::Team(own), None) => own.clone(),
        (Principal::Team(own), Some(t)) if &t == own => t,
        (Principal::Team(_), Some(t)) => {
            return Err(ApiError::forbidden(format!("this token may not submit for team {t}")).field("team"))
        }
        (Principal::Admin, Some(t)) => t,
        (Principal::Admin, None) => {
            return Err(ApiError::bad_request("missing_team", "team", "the admin token must name the job's team"))
        }
    };
    let job = NewJob { team, priority: s.priority, deadline: s.deadline, spec: s.spec, submitted_at: b.clock.now() };
    let job = b.store.submit_job(&job).await.map_err(|e| match e {
        hedge_store::StoreError::UnknownTeam { team } => {
            ApiError::bad_request("unknown_team", "team", format!("unknown team {team}"))
        }
        e => e.into(),
    })?;
    b.metrics.inc(&b.metrics.submitted);
    b.wake.notify_one();
    let mut v = job_view(b, &job);
    v["warnings"] = json!(s.warnings);
    ok(StatusCode::CREATED, v)
}

fn job_view(b: &Broker, job: &Job) -> Value {
    let mut v = serde_json::to_value(job).unwrap_or_default();
    if let Some(w) = b.waiting.lock().unwrap_or_else(|p| p.into_inner()).get(&job.id) {
        v["waiting"] = json!({"reason": w.code(), "detail": w});
    }
    v
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    team: Option<String>,
    /// Comma-separated states.
    state: Option<String>,
    after: Option<u64>,
    limit: Option<u32>,
    #[serde(default)]
    newest_first: bool,
}

async fn list_jobs(State(b): State<AppState>, auth: Auth, q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>) -> ApiResult {
    let Query(q) = q.map_err(|e| ApiError::bad_request("invalid_query", "query", e.body_text()))?;
    let team = match (&auth.0, q.team) {
        (Principal::Team(own), None) => Some(own.clone()),
        (Principal::Team(own), Some(t)) if t == own.as_str() => Some(own.clone()),
        (Principal::Team(_), Some(_)) => return Err(ApiError::forbidden("a team token lists only its own jobs").field("team")),
        (Principal::Admin, t) => t.map(TeamId::new),
    };
    let mut states = Vec::new();
    for s in q.state.iter().flat_map(|s| s.split(',')).filter(|s| !s.is_empty()) {
        states.push(s.parse::<JobState>().map_err(|e| ApiError::bad_request("invalid_query", "state", e.to_string()))?);
    }
    let filter = JobFilter { team, states, after: q.after.map(JobId), limit: q.limit.unwrap_or(0), newest_first: q.newest_first };
    let page = b.store.list_jobs(&filter).await?;
    let jobs: Vec<Value> = page.jobs.iter().map(|j| job_view(&b, j)).collect();
    ok(StatusCode::OK, json!({"jobs": jobs, "next": page.next}))
}

/// The job, if the caller may see it; "not found" otherwise.
async fn visible_job(b: &Broker, auth: &Auth, id: u64) -> Result<Job, ApiError> {
    let job = b.store.job(JobId(id)).await?;
    if !auth.may_see(&job.team) {
        return Err(ApiError::not_found("job", id));
    }
    Ok(job)
}

async fn get_job(State(b): State<AppState>, auth: Auth, Path(id): Path<u64>) -> ApiResult {
    let job = visible_job(&b, &auth, id).await?;
    let attempts = b.store.attempts(job.id).await?;
    let mut v = job_view(&b, &job);
    v["attempts"] = json!(attempts);
    ok(StatusCode::OK, v)
}

async fn job_events(State(b): State<AppState>, auth: Auth, Path(id): Path<u64>) -> ApiResult {
    let job = visible_job(&b, &auth, id).await?;
    let events = b.store.job_events(job.id).await?;
    ok(StatusCode::OK, json!({"job": job.id, "events": events}))
}

async fn cancel_job(State(b): State<AppState>, auth: Auth, Path(id): Path<u64>) -> ApiResult {
    for _ in 0..20 {
        let job = visible_job(&b, &auth, id).await?;
        if job.state.is_terminal() {
            return Err(ApiError::new(StatusCode::CONFLICT, "already_finished", format!("job {id} is already {}", job.state)));
        }
        let t = Transition::new(job.id, job.state, JobState::Cancelled, b.clock.now())
            .reason("cancelled_by_user")
            .expect_version(job.version);
        match b.store.transition(&t).await {
            Ok(job) => {
                b.wake.notify_one();
                return ok(StatusCode::OK, job_view(&b, &job));
            }
            Err(hedge_store::StoreError::StaleTransition { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(StatusCode::CONFLICT, "conflict", format!("job {id} kept changing; try again")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsQuery {
    tail_bytes: Option<u64>,
}

async fn job_logs(State(b): State<AppState>, auth: Auth, Path(id): Path<u64>, q: Result<Query<LogsQuery>, axum::extract::rejection::QueryRejection>) -> ApiResult {
    let Query(q) = q.map_err(|e| ApiError::bad_request("invalid_query", "tail_bytes", e.body_text()))?;
    let job = visible_job(&b, &auth, id).await?;
    let attempts = b.store.attempts(job.id).await?;
    let Some(a) = attempts.last() else {
        return Err(ApiError::new(StatusCode::CONFLICT, "not_started", format!("job {id} has no launch attempt yet")));
    };
    let driver = b.drivers.get(&a.provider).ok_or_else(|| ApiError::not_found("provider", &a.provider))?;
    let key = IdempotencyKey::parse(&a.idempotency_key).map_err(|e| ApiError::internal(e.to_string()))?;
    let logs = driver.logs(&key, q.tail_bytes.unwrap_or(64 * 1024)).await.map_err(|e| match e {
        hedge_drivers::DriverError::NotFound { .. } => {
            ApiError::new(StatusCode::CONFLICT, "no_logs", format!("attempt {} has no logs (yet)", a.attempt_no))
        }
        e => ApiError::new(StatusCode::BAD_GATEWAY, "provider_error", chain(&e)),
    })?;
    ok(
        StatusCode::OK,
        json!({"job": job.id, "attempt": a.attempt_no, "provider": a.provider, "stdout": logs.stdout, "stderr": logs.stderr, "truncated": logs.truncated}),
    )
}

// ---- providers, commitments, teams --------------------------------------------------------------------------

async fn providers(State(b): State<AppState>, _auth: Auth) -> ApiResult {
    let in_use = gpus_in_use(&b).await?;
    let usage = b.store.commitment_usage().await?;
    let now = b.clock.now();
    let h = b.health.lock().unwrap_or_else(|p| p.into_inner()).all().clone();
    let list: Vec<Value> = b
        .config
        .providers
        .iter()
        .map(|p| {
            let committed: Vec<Value> = usage
                .iter()
                .filter(|u| u.commitment.provider == p.name && u.commitment.active_at(now))
                .map(|u| json!({"commitment": u.commitment.id, "gpus": u.commitment.gpus, "gpus_in_use": u.gpus_in_use, "gpus_free": u.gpus_idle()}))
                .collect();
            let st = h.get(&p.name);
            json!({
                "name": p.name,
                "kind": "local",
                "accelerator": p.accelerator,
                "gpus": p.gpus,
                "gpus_in_use": in_use.get(&p.name).copied().unwrap_or(0),
                "on_demand_per_gpu_hour": p.on_demand_per_gpu_hour.to_string(),
                "health": st.map(|s| s.state.as_str()).unwrap_or("healthy"),
                "consecutive_failures": st.map_or(0, |s| s.consecutive_failures),
                "last_error": st.and_then(|s| s.last_error.clone()),
                "committed": committed,
                "committed_gpus_free": usage.iter().filter(|u| u.commitment.provider == p.name && u.commitment.active_at(now)).map(|u| u.gpus_idle()).sum::<u32>(),
            })
        })
        .collect();
    ok(StatusCode::OK, json!({"providers": list}))
}

async fn list_commitments(State(b): State<AppState>, _auth: Auth) -> ApiResult {
    let usage = b.store.commitment_usage().await?;
    let list: Vec<Value> = usage
        .iter()
        .map(|u| {
            let mut v = serde_json::to_value(&u.commitment).unwrap_or_default();
            v["gpus_in_use"] = json!(u.gpus_in_use);
            v["gpus_idle"] = json!(u.gpus_idle());
            v
        })
        .collect();
    ok(StatusCode::OK, json!({"commitments": list}))
}

/// What `POST /v1/commitments` accepts: a plan's JSON (`hedge plan --format json`: a horizon and planned
/// commitments, converted by `hedge_core::portfolio::plan_commitments`), or hand-written commitments, as a list or
/// under `commitments`.
#[derive(Deserialize)]
#[serde(untagged)]
enum CommitmentImport {
    List(Vec<Commitment>),
    Plan { horizon: hedge_core::PlanHorizon, commitments: Vec<hedge_core::PlannedCommitment> },
    Wrapped { commitments: Vec<Commitment> },
}

async fn import_commitments(State(b): State<AppState>, auth: Auth, raw: Result<Bytes, BytesRejection>) -> ApiResult {
    auth.admin()?;
    let raw = body(raw)?;
    let list = match json_body::<CommitmentImport>(&raw).map_err(|e| {
        ApiError::bad_request(
            "invalid_commitments",
            "body",
            format!("{}; expected a plan's JSON (horizon + commitments) or a list of commitments", e.message),
        )
    })? {
        CommitmentImport::List(l) | CommitmentImport::Wrapped { commitments: l } => l,
        CommitmentImport::Plan { horizon, commitments } => hedge_core::portfolio::plan_commitments(&horizon, &commitments),
    };
    let mut clean = Vec::with_capacity(list.len());
    for (i, mut c) in list.into_iter().enumerate() {
        c.accelerator = Accelerator::parse(c.accelerator.as_str())
            .map_err(|e| ApiError::bad_request("invalid_commitment", format!("commitments[{i}].accelerator"), e.to_string()))?;
        c.provider = ProviderId::parse(c.provider.as_str());
        if c.end <= c.start {
            return Err(ApiError::bad_request("invalid_commitment", format!("commitments[{i}].end"), "end must be after start"));
        }
        clean.push(c);
    }
    b.store.put_commitments(&clean).await?;
    b.wake.notify_one();
    ok(StatusCode::OK, json!({"imported": clean.len()}))
}

async fn list_teams(State(b): State<AppState>, auth: Auth) -> ApiResult {
    let teams = b.store.teams().await?;
    let teams: Vec<&Team> = teams.iter().filter(|t| auth.may_see(&t.id)).collect();
    ok(StatusCode::OK, json!({"teams": teams}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamBody {
    #[serde(default)]
    monthly_budget_usd: Option<f64>,
    #[serde(default)]
    allow_preemption: bool,
    #[serde(default)]
    quotas: Vec<QuotaBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaBody {
    provider: Option<String>,
    accelerator: Option<String>,
    max_gpus: u32,
}

async fn put_team(State(b): State<AppState>, auth: Auth, Path(id): Path<String>, raw: Result<Bytes, BytesRejection>) -> ApiResult {
    auth.admin()?;
    let raw = body(raw)?;
    let tb: TeamBody = json_body(&raw)?;
    let monthly_budget = tb
        .monthly_budget_usd
        .map(Money::from_usd_f64)
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_team", "monthly_budget_usd", e.to_string()))?;
    let mut quotas = Vec::new();
    for (i, q) in tb.quotas.into_iter().enumerate() {
        let accelerator = q
            .accelerator
            .as_deref()
            .map(Accelerator::parse)
            .transpose()
            .map_err(|e| ApiError::bad_request("invalid_team", format!("quotas[{i}].accelerator"), e.to_string()))?;
        quotas.push(TeamQuota { provider: q.provider.as_deref().map(ProviderId::parse), accelerator, max_gpus: q.max_gpus });
    }
    let team = Team { id: TeamId::new(id.trim()), monthly_budget, quotas, allow_preemption: tb.allow_preemption };
    b.store.put_team(&team).await?;
    b.wake.notify_one();
    ok(StatusCode::OK, json!(team))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    #[serde(default)]
    label: String,
}

async fn create_token(State(b): State<AppState>, auth: Auth, Path(id): Path<String>, raw: Result<Bytes, BytesRejection>) -> ApiResult {
    auth.admin()?;
    let raw = body(raw)?;
    let tb: TokenBody = if raw.iter().all(u8::is_ascii_whitespace) { TokenBody::default() } else { json_body(&raw)? };
    let team = TeamId::new(id.trim());
    let issued = b.store.create_token(&Principal::Team(team.clone()), &tb.label, b.clock.now()).await?;
    tracing::info!(team = %team, token_id = issued.id, "issued a team token");
    ok(StatusCode::CREATED, json!({"id": issued.id, "team": team, "token": issued.secret}))
}

async fn put_faults(State(b): State<AppState>, auth: Auth, Path(id): Path<String>, raw: Result<Bytes, BytesRejection>) -> ApiResult {
    auth.admin()?;
    if !b.config.fault_injection {
        return Err(ApiError::forbidden("fault injection is disabled in this server's configuration"));
    }
    let p = ProviderId::parse(&id);
    let control = b.faults.get(&p).ok_or_else(|| ApiError::not_found("provider", &p))?;
    let raw = body(raw)?;
    let settings: FaultSettings = json_body(&raw)?;
    tracing::warn!(provider = %p, ?settings, "fault injection changed");
    control.set(settings.clone());
    ok(StatusCode::OK, json!({"provider": p, "faults": settings}))
}

async fn get_faults(State(b): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult {
    auth.admin()?;
    let p = ProviderId::parse(&id);
    let control = b.faults.get(&p).ok_or_else(|| ApiError::not_found("provider", &p))?;
    ok(StatusCode::OK, json!({"provider": p, "faults": control.get(), "injected": control.injected()}))
}

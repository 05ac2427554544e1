//! The HTTP API. Every handler authenticates first ([`Auth`]), parses its input in one place, and answers
//! with a type of [`crate::api_types`] or an [`ApiError`] JSON body. A team token sees only its team's jobs:
//! another team's job is "not found", so its existence does not leak.
//!
//! Each handler carries its `#[utoipa::path]` (statuses, bodies, parameters as they are parsed); the
//! OpenAPI document ([`crate::openapi`]) is generated from those and from the types. Framework answers
//! (path, query and body rejections, the router's 404 and 405) leave as the same JSON error body: the
//! extractors below map their rejections, and [`json_errors`] rewrites whatever else would leave as text.

use crate::api_types::*;
use crate::{chain, submit, ApiError, Broker};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use hedge_core::{
    Accelerator, Commitment, CommitmentId, JobId, JobState, Money, ProviderId, Rate, TeamId,
    Timestamp,
};
use hedge_drivers::IdempotencyKey;
use hedge_store::{Job, JobFilter, NewJob, Principal, Team, TeamQuota, Transition};
use std::sync::Arc;

type AppState = Arc<Broker>;
type ApiResult<T> = Result<T, ApiError>;

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
        .route("/v1/attempts/{key}/status", post(report_status))
        .route("/v1/attempts/{key}/logs", post(report_logs))
        .route("/v1/providers", get(providers))
        .route(
            "/v1/commitments",
            get(list_commitments).post(import_commitments),
        )
        .route("/v1/teams", get(list_teams))
        .route("/v1/teams/{id}", put(put_team))
        .route("/v1/teams/{id}/tokens", post(create_token))
        .route(
            "/v1/admin/providers/{id}/faults",
            put(put_faults).get(get_faults),
        )
        .route("/v1/cost/spend", get(cost_spend))
        .route("/v1/cost/commitments", get(cost_commitments))
        .route("/v1/cost/export", get(cost_export))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(json_errors))
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

/// Turns any error answer that is not already JSON (axum's 405 with its empty body, a rejection this module
/// did not map) into the JSON error body, keeping the status and the headers (a 405 keeps its `Allow`).
async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            (
                "method_not_allowed",
                format!("this route does not answer that method; it answers {allow}"),
            )
        }
        StatusCode::NOT_FOUND => ("not_found", "no such route".to_owned()),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            "the body is over the size limit".to_owned(),
        ),
        s if s.is_server_error() => (
            "internal",
            if text.is_empty() {
                "internal error".to_owned()
            } else {
                text
            },
        ),
        _ => (
            "bad_request",
            if text.is_empty() {
                status.to_string()
            } else {
                text
            },
        ),
    };
    let mut e = ApiError::new(status, code, message);
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        e = e.field("body");
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    let mut out = e.into_response();
    for (k, v) in parts.headers.drain().filter_map(|(k, v)| k.map(|k| (k, v))) {
        if k != header::CONTENT_TYPE {
            out.headers_mut().insert(k, v);
        }
    }
    out
}

// ---- auth ---------------------------------------------------------------------------------------------------

/// The authenticated principal of a request (`Authorization: Bearer <token>`; the scheme is
/// case-insensitive, as RFC 9110 says).
pub struct Auth(pub Principal);

/// The token of an `Authorization` header value, if its scheme is `Bearer` (any case).
pub fn bearer_token(value: &str) -> Option<&str> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    Some(rest.trim()).filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
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

// ---- input extractors: every rejection is the JSON error naming the parameter -------------------------------

/// The integer `{id}` of a job route.
pub struct IdPath(pub u64);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<u64>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(IdPath(id)),
            Err(e) => Err(ApiError::bad_request(
                "invalid_path",
                "id",
                format!("the job id must be a whole number: {}", e.body_text()),
            )),
        }
    }
}

/// The string `{id}` of a team or provider route.
pub struct NamePath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for NamePath {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(NamePath(id)),
            Err(e) => Err(ApiError::bad_request("invalid_path", "id", e.body_text())),
        }
    }
}

/// A query string parsed into `T`; a rejection names the parameter when serde does.
pub struct Q<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Q(v)),
            Err(e) => {
                let text = e.body_text();
                let detail = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                // "limit: invalid digit found in string", "unknown field `x`, expected ..."
                let field = match detail.split('`').nth(1) {
                    Some(f) if detail.starts_with("unknown field") => f.to_owned(),
                    _ => detail
                        .split_once(": ")
                        .map(|(f, _)| f)
                        .filter(|f| {
                            !f.is_empty()
                                && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        })
                        .unwrap_or("query")
                        .to_owned(),
                };
                Err(ApiError::bad_request(
                    "invalid_query",
                    field,
                    detail.to_owned(),
                ))
            }
        }
    }
}

/// The body, or 413 naming the field when it is over the limit.
fn body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the body is over the size limit",
            )
            .field("body")
        } else {
            ApiError::bad_request("invalid_body", "body", r.body_text())
        }
    })
}

/// A JSON body that must be an object (or `null` when `null_ok`), parsed into `T`.
fn json_object<T: serde::de::DeserializeOwned>(b: &[u8], null_ok: bool) -> Result<T, ApiError> {
    let v: serde_json::Value = json_body(b)?;
    let fine = v.is_object() || (null_ok && v.is_null());
    if !fine {
        return Err(ApiError::bad_request(
            "invalid_json",
            "body",
            "the body must be a JSON object",
        ));
    }
    for (k, x) in v.as_object().into_iter().flatten() {
        if k == "horizon" && !x.is_object() {
            return Err(ApiError::bad_request(
                "invalid_json",
                "horizon",
                "horizon must be an object",
            ));
        }
        if let (true, serde_json::Value::Array(items)) = (k == "quotas" || k == "commitments", x) {
            if let Some(i) = items.iter().position(|q| !q.is_object()) {
                return Err(ApiError::bad_request(
                    "invalid_json",
                    format!("{k}[{i}]"),
                    format!("{k}[{i}] must be an object"),
                ));
            }
        }
    }
    json_body(b)
}

/// A JSON body parsed into `T`; the error names the field's path (`quotas[0].max_gpus`).
fn json_body<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(b);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        let field = if path.is_empty() || path == "." {
            // serde names the field in "unknown field `x`" and "missing field `x`".
            msg.split('`')
                .nth(1)
                .filter(|_| msg.contains("field"))
                .unwrap_or("body")
                .to_owned()
        } else {
            path
        };
        ApiError::bad_request("invalid_json", field, format!("invalid JSON: {msg}"))
    })
}

fn ok<T: serde::Serialize>(status: StatusCode, v: T) -> Response {
    (status, Json(v)).into_response()
}

// ---- plumbing ---------------------------------------------------------------------------------------------

/// Liveness and store reachability.
#[utoipa::path(get, path = "/healthz", tag = "plumbing",
    responses((status = 200, body = Health), (status = 500, body = ErrorBody, description = "the store does not answer")))]
async fn healthz(State(b): State<AppState>) -> ApiResult<Json<Health>> {
    b.store.ping().await?;
    Ok(Json(Health {
        status: "ok".into(),
        store: b.store.backend().into(),
    }))
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "plumbing",
    responses((status = 200, description = "the OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
async fn openapi(State(b): State<AppState>) -> Response {
    ok(StatusCode::OK, crate::openapi::document_for(&b))
}

/// Prometheus metrics, in the OpenMetrics text format.
#[utoipa::path(get, path = "/metrics", tag = "plumbing",
    responses((status = 200, description = "counters and gauges", content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String),
              (status = 500, body = ErrorBody)))]
async fn metrics(State(b): State<AppState>) -> ApiResult<Response> {
    let counts = b.store.job_counts().await?;
    let in_use = gpus_in_use(&b).await?;
    let healthy: Vec<(ProviderId, bool)> = {
        let h = b.health.lock().unwrap_or_else(|p| p.into_inner());
        b.drivers
            .keys()
            .map(|p| (p.clone(), h.is_healthy(p)))
            .collect()
    };
    let scrape = crate::metrics::Scrape {
        jobs: JobState::ALL
            .iter()
            .map(|s| {
                (
                    s.to_string(),
                    counts.iter().find(|(st, _)| st == s).map_or(0, |(_, n)| *n),
                )
            })
            .collect(),
        providers: healthy
            .iter()
            .map(|(p, ok)| crate::metrics::ProviderGauge {
                provider: p.to_string(),
                healthy: *ok,
                gpus_in_use: in_use.get(p).copied().unwrap_or(0),
            })
            .collect(),
        teams: vec![],
        commitments: vec![],
    };
    let (teams, commitments) = crate::ledger::gauges(&b, b.clock.now()).await?;
    let scrape = crate::metrics::Scrape {
        teams,
        commitments,
        ..scrape
    };
    let text = b
        .metrics
        .render(&scrape)
        .map_err(|e| ApiError::internal(format!("rendering the metrics: {e}")))?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response())
}

async fn gpus_in_use(b: &Broker) -> Result<std::collections::BTreeMap<ProviderId, u32>, ApiError> {
    let mut m = std::collections::BTreeMap::new();
    for a in b.store.in_flight_attempts().await? {
        *m.entry(a.provider).or_default() += a.gpus;
    }
    Ok(m)
}

// ---- jobs ---------------------------------------------------------------------------------------------------

/// Submit a job: a SkyPilot task YAML (or JSON) with Hedge's top-level `team`, `priority`, `deadline`.
#[utoipa::path(post, path = "/v1/jobs", tag = "jobs", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, max_length = 200, pattern = r"^[!-~]{1,200}$",
        description = "Makes the submission idempotent: a retry with the same key and the same body answers the job the key first made (201, the same body), instead of making a second job; the same key with another body is a 409. Keys are per team.")),
    request_body(content(
        (TaskSubmission = "application/json"),
        (TaskSubmission = "application/yaml"),
    ), description = "A SkyPilot task document (YAML or JSON). This schema lists the fields most tasks use; the parser knows more of SkyPilot's, and unknown ones come back as `warnings`."),
    responses(
        (status = 201, body = SubmittedJob, description = "stored"),
        (status = 400, body = ErrorBody, description = "invalid task or `Idempotency-Key` (the field is named)"),
        (status = 401, body = ErrorBody, description = "no valid bearer token", headers(("WWW-Authenticate" = String))),
        (status = 403, body = ErrorBody, description = "a team token submitting for another team"),
        (status = 404, body = ErrorBody, description = "unknown team"),
        (status = 413, body = ErrorBody, description = "body over the size limit"),
        (status = 409, body = ErrorBody, description = "the `Idempotency-Key` was used before with another body (`field`: `Idempotency-Key`)"),
    ))]
async fn submit_job(
    State(b): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let r = submit_inner(&b, &auth, &headers, raw).await;
    if r.is_err() {
        b.metrics.inc(&b.metrics.rejected_submits);
    }
    r
}

/// The `Idempotency-Key` header: 1 to 200 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(crate::client::IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request(
            "invalid_header",
            crate::client::IDEMPOTENCY_KEY,
            "Idempotency-Key must be 1 to 200 visible ASCII characters",
        )
    };
    let k = v.to_str().map_err(|_| bad())?;
    if k.is_empty() || k.len() > 200 || !k.bytes().all(|c| (b'!'..=b'~').contains(&c)) {
        return Err(bad());
    }
    Ok(Some(k.to_owned()))
}

async fn submit_inner(
    b: &Broker,
    auth: &Auth,
    headers: &HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let key = idempotency_key(headers)?;
    let raw = body(raw)?;
    // The request a key stands for: the SHA-256 of the body's bytes.
    let key = key.map(|key| {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(&raw);
        let request_sha256 = digest.iter().map(|b| format!("{b:02x}")).collect();
        hedge_store::SubmitKey {
            key,
            request_sha256,
        }
    });
    let s = submit::parse(&raw, &b.known_accelerators)?;
    let team = match (&auth.0, s.team) {
        (Principal::Team(own), None) => own.clone(),
        (Principal::Team(own), Some(t)) if &t == own => t,
        (Principal::Team(_), Some(t)) => {
            return Err(
                ApiError::forbidden(format!("this token may not submit for team {t}"))
                    .field("team"),
            )
        }
        (Principal::Admin, Some(t)) => t,
        (Principal::Admin, None) => {
            return Err(ApiError::bad_request(
                "missing_team",
                "team",
                "the admin token must name the job's team",
            ))
        }
    };
    let submitted_at = b.clock.now();
    let job = NewJob {
        team,
        priority: s.priority,
        deadline: s.deadline,
        spec: s.spec,
        submitted_at,
        idempotency: key,
    };
    let job = b.store.submit_job(&job).await?;
    if job.submitted_at != submitted_at || job.version > 0 {
        // The answer to a repeated Idempotency-Key: the job the key first made (not counted again).
        return Ok(ok(
            StatusCode::CREATED,
            SubmittedJob {
                job: job_view(b, &job),
                warnings: s.warnings,
            },
        ));
    }
    b.metrics.inc(&b.metrics.submitted);
    {
        let mut m = b.submitted_ms.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= 1 << 20 {
            m.clear();
        }
        m.insert(job.id, b.clock.monotonic_ms());
    }
    b.wake.notify_one();
    Ok(ok(
        StatusCode::CREATED,
        SubmittedJob {
            job: job_view(b, &job),
            warnings: s.warnings,
        },
    ))
}

fn job_view(b: &Broker, job: &Job) -> JobView {
    let waiting = b.waiting.lock().unwrap_or_else(|p| p.into_inner());
    JobView::new(job, waiting.get(&job.id).map(|w| &**w))
}

/// List jobs (a team token sees only its team's).
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", security(("bearer" = [])), params(ListQuery),
    responses(
        (status = 200, body = JobPage),
        (status = 400, body = ErrorBody, description = "invalid query parameter (named)"),
        (status = 401, body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 403, body = ErrorBody, description = "a team token listing another team"),
    ))]
async fn list_jobs(
    State(b): State<AppState>,
    auth: Auth,
    Q(q): Q<ListQuery>,
) -> ApiResult<Json<JobPage>> {
    let team = match (&auth.0, q.team) {
        (Principal::Team(own), None) => Some(own.clone()),
        (Principal::Team(own), Some(t)) if t == own.as_str() => Some(own.clone()),
        (Principal::Team(_), Some(_)) => {
            return Err(ApiError::forbidden("a team token lists only its own jobs").field("team"))
        }
        (Principal::Admin, t) => t.map(TeamId::new),
    };
    let mut states = Vec::new();
    for s in q
        .state
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
    {
        states.push(
            s.parse::<JobState>()
                .map_err(|e| ApiError::bad_request("invalid_query", "state", e.to_string()))?,
        );
    }
    let limit = q.limit.unwrap_or(0);
    if limit > 1000 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit",
            format!("limit {limit} is over 1000"),
        ));
    }
    let filter = JobFilter {
        team,
        states,
        after: q.after.map(JobId),
        limit,
        newest_first: q.newest_first.unwrap_or(false),
    };
    let page = b.store.list_jobs(&filter).await?;
    Ok(Json(JobPage {
        jobs: page.jobs.iter().map(|j| job_view(&b, j)).collect(),
        next: page.next.map(|n| n.0),
    }))
}

/// The job, if the caller may see it; "not found" otherwise.
async fn visible_job(b: &Broker, auth: &Auth, id: u64) -> Result<Job, ApiError> {
    let job = b.store.job(JobId(id)).await?;
    if !auth.may_see(&job.team) {
        return Err(ApiError::not_found("job", id));
    }
    Ok(job)
}

/// A job with its launch attempts and, if it waits, why.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = u64, Path, description = "the job's id", minimum = 0)),
    responses(
        (status = 200, body = JobDetail),
        (status = 400, body = ErrorBody, description = "`id` is not a whole number"),
        (status = 401, body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 404, body = ErrorBody, description = "no such job (or another team's)"),
    ))]
async fn get_job(
    State(b): State<AppState>,
    auth: Auth,
    IdPath(id): IdPath,
) -> ApiResult<Json<JobDetail>> {
    let job = visible_job(&b, &auth, id).await?;
    let attempts = b.store.attempts(job.id).await?;
    Ok(Json(JobDetail {
        job: job_view(&b, &job),
        attempts: attempts.iter().map(AttemptView::from).collect(),
    }))
}

/// Every state change of a job with its reason and explanation.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "jobs", security(("bearer" = [])),
    params(("id" = u64, Path, description = "the job's id", minimum = 0)),
    responses(
        (status = 200, body = JobEvents),
        (status = 400, body = ErrorBody, description = "`id` is not a whole number"),
        (status = 401, body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 404, body = ErrorBody, description = "no such job (or another team's)"),
    ))]
async fn job_events(
    State(b): State<AppState>,
    auth: Auth,
    IdPath(id): IdPath,
) -> ApiResult<Json<JobEvents>> {
    let job = visible_job(&b, &auth, id).await?;
    let events = b.store.job_events(job.id).await?;
    Ok(Json(JobEvents {
        job: job.id.0,
        events: events.iter().map(EventView::from).collect(),
    }))
}

/// Cancel a job. A live job moves to `cancelling` until its driver confirms the work is gone; cancelling
/// again answers the same.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "jobs", security(("bearer" = [])),
    params(("id" = u64, Path, description = "the job's id", minimum = 0)),
    responses(
        (status = 200, body = JobView, description = "the job, `cancelling` or `cancelled`"),
        (status = 400, body = ErrorBody, description = "`id` is not a whole number"),
        (status = 401, body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 404, body = ErrorBody, description = "no such job (or another team's)"),
        (status = 409, body = ErrorBody, description = "the job already finished"),
    ))]
async fn cancel_job(
    State(b): State<AppState>,
    auth: Auth,
    IdPath(id): IdPath,
) -> ApiResult<Json<JobView>> {
    for _ in 0..20 {
        let job = visible_job(&b, &auth, id).await?;
        let Some(target) = job.state.cancel_target() else {
            if job.state == JobState::Cancelling {
                // Already being cancelled: the same answer as the first cancel (idempotent).
                return Ok(Json(job_view(&b, &job)));
            }
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_finished",
                format!("job {id} is already {}", job.state),
            ));
        };
        let t = Transition::new(job.id, job.state, target, b.clock.now())
            .reason("cancelled_by_user")
            .expect_version(job.version);
        match b.store.transition(&t).await {
            Ok(job) => {
                b.wake.notify_one();
                return Ok(Json(job_view(&b, &job)));
            }
            Err(hedge_store::StoreError::StaleTransition { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "conflict",
        format!("job {id} kept changing; try again"),
    ))
}

/// The latest attempt's stdout and stderr.
#[utoipa::path(get, path = "/v1/jobs/{id}/logs", tag = "jobs", security(("bearer" = [])),
    params(("id" = u64, Path, description = "the job's id", minimum = 0), LogsQuery),
    responses(
        (status = 200, body = JobLogs),
        (status = 400, body = ErrorBody, description = "`id` or `tail_bytes` is not a whole number"),
        (status = 401, body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 404, body = ErrorBody, description = "no such job (or another team's)"),
        (status = 409, body = ErrorBody, description = "the job has no launch attempt or no logs yet"),
        (status = 502, body = ErrorBody, description = "the provider failed to answer"),
    ))]
async fn job_logs(
    State(b): State<AppState>,
    auth: Auth,
    IdPath(id): IdPath,
    Q(q): Q<LogsQuery>,
) -> ApiResult<Json<JobLogs>> {
    let job = visible_job(&b, &auth, id).await?;
    let attempts = b.store.attempts(job.id).await?;
    let Some(a) = attempts.last() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_started",
            format!("job {id} has no launch attempt yet"),
        ));
    };
    let driver = b
        .drivers
        .get(&a.provider)
        .ok_or_else(|| ApiError::not_found("provider", &a.provider))?;
    let key =
        IdempotencyKey::parse(&a.idempotency_key).map_err(|e| ApiError::internal(e.to_string()))?;
    let logs = driver
        .logs(&key, q.tail_bytes.unwrap_or(64 * 1024))
        .await
        .map_err(|e| match e {
            hedge_drivers::DriverError::NotFound { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "no_logs",
                format!("attempt {} has no logs (yet)", a.attempt_no),
            ),
            e => ApiError::new(StatusCode::BAD_GATEWAY, "provider_error", chain(&e)),
        })?;
    Ok(Json(JobLogs {
        job: job.id.0,
        attempt: a.attempt_no,
        provider: a.provider.to_string(),
        stdout: logs.stdout,
        stderr: logs.stderr,
        truncated: logs.truncated,
    }))
}

// ---- reports from cloud instances --------------------------------------------------------------------------

/// The EC2 driver that launched attempt `key`, once the request's per-attempt token checks out. Every failure
/// is the same 401 (an unknown attempt does not leak), except a malformed key.
async fn reporting_driver(
    b: &Broker,
    key: &str,
    headers: &HeaderMap,
) -> Result<(IdempotencyKey, Arc<hedge_drivers::Ec2Driver>), ApiError> {
    let key = IdempotencyKey::parse(key)
        .map_err(|e| ApiError::bad_request("invalid_path", "key", e.to_string()))?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .ok_or_else(ApiError::unauthorized)?;
    let attempt = match b.store.attempt_by_key(key.as_str()).await {
        Ok(a) => a,
        Err(hedge_store::StoreError::UnknownAttempt { .. }) => return Err(ApiError::unauthorized()),
        Err(e) => return Err(e.into()),
    };
    match b.ec2.get(&attempt.provider) {
        Some(d) if d.check_token(&key, token) => Ok((key, d.clone())),
        _ => Err(ApiError::unauthorized()),
    }
}

/// An instance reports its command's exit status (the boot script calls this with its attempt's token, not
/// an API token). The reconciler sees it at its next observation of the attempt.
#[utoipa::path(post, path = "/v1/attempts/{key}/status", tag = "attempts", security(("bearer" = [])),
    params(("key" = String, Path, description = "the attempt's idempotency key", pattern = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")),
    request_body(content = AttemptStatusReport, content_type = "application/json"),
    responses(
        (status = 200, body = ReportRecorded),
        (status = 400, body = ErrorBody, description = "malformed key or body"),
        (status = 401, body = ErrorBody, description = "not the attempt's report token (or no such attempt)", headers(("WWW-Authenticate" = String))),
        (status = 413, body = ErrorBody, description = "body over the size limit"),
    ))]
async fn report_status(
    State(b): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<ReportRecorded>> {
    let (key, driver) = reporting_driver(&b, &key, &headers).await?;
    let report: AttemptStatusReport = json_object(&body(raw)?, false)?;
    driver
        .record_report(
            &key,
            &hedge_drivers::ec2::AttemptReport {
                exit_code: report.exit_code,
            },
        )
        .await
        .map_err(|e| ApiError::internal(chain(&e)))?;
    b.wake.notify_one();
    Ok(Json(ReportRecorded {
        attempt: key.to_string(),
    }))
}

/// An instance reports the tail of one output stream (raw bytes), read back by `GET /v1/jobs/{id}/logs`.
#[utoipa::path(post, path = "/v1/attempts/{key}/logs", tag = "attempts", security(("bearer" = [])),
    params(("key" = String, Path, description = "the attempt's idempotency key", pattern = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$"), StreamQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 200, body = ReportRecorded),
        (status = 400, body = ErrorBody, description = "malformed key or query"),
        (status = 401, body = ErrorBody, description = "not the attempt's report token (or no such attempt)", headers(("WWW-Authenticate" = String))),
        (status = 413, body = ErrorBody, description = "body over the size limit"),
    ))]
async fn report_logs(
    State(b): State<AppState>,
    Path(key): Path<String>,
    Q(q): Q<StreamQuery>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<ReportRecorded>> {
    let (key, driver) = reporting_driver(&b, &key, &headers).await?;
    let raw = body(raw)?;
    let stream = match q.stream {
        StreamName::Stdout => hedge_drivers::ec2::OutputStream::Stdout,
        StreamName::Stderr => hedge_drivers::ec2::OutputStream::Stderr,
    };
    driver
        .record_output(&key, stream, &raw)
        .await
        .map_err(|e| ApiError::internal(chain(&e)))?;
    Ok(Json(ReportRecorded {
        attempt: key.to_string(),
    }))
}

// ---- providers, commitments, teams --------------------------------------------------------------------------

/// Providers with health, GPUs in use and free committed capacity.
#[utoipa::path(get, path = "/v1/providers", tag = "providers", security(("bearer" = [])),
    responses((status = 200, body = ProviderList), (status = 401, body = ErrorBody, headers(("WWW-Authenticate" = String)))))]
async fn providers(State(b): State<AppState>, _auth: Auth) -> ApiResult<Json<ProviderList>> {
    let in_use = gpus_in_use(&b).await?;
    let usage = b.store.commitment_usage().await?;
    let now = b.clock.now();
    let h = b
        .health
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .all()
        .clone();
    let providers = b
        .config
        .providers
        .iter()
        .map(|p| {
            let committed: Vec<CommittedCapacity> = usage
                .iter()
                .filter(|u| u.commitment.provider == p.name && u.commitment.active_at(now))
                .map(|u| CommittedCapacity {
                    commitment: u.commitment.id.to_string(),
                    gpus: u.commitment.gpus,
                    gpus_in_use: u.gpus_in_use,
                    gpus_free: u.gpus_idle(),
                })
                .collect();
            let st = h.get(&p.name);
            let (catalog_provider, regions, rate) = match &p.sells {
                crate::Sells::Owned {
                    on_demand_per_gpu_hour,
                    ..
                } => (None, vec![], Some(on_demand_per_gpu_hour.to_string())),
                crate::Sells::Catalog {
                    provider, regions, ..
                } => (
                    Some(provider.to_string()),
                    regions.iter().map(|r| r.to_string()).collect(),
                    None,
                ),
            };
            ProviderView {
                name: p.name.to_string(),
                kind: p.driver.kind().into(),
                sells: if catalog_provider.is_some() {
                    "catalog".into()
                } else {
                    "owned".into()
                },
                catalog_provider,
                regions,
                accelerator: p.accelerator().map(|a| a.to_string()),
                gpus: p.gpus(),
                gpus_in_use: in_use.get(&p.name).copied().unwrap_or(0),
                max_nodes: b.capabilities.get(&p.name).map_or(1, |c| c.max_nodes),
                on_demand_per_gpu_hour: rate,
                health: match st.map(|s| s.state) {
                    Some(hedge_store::HealthState::Degraded) => HealthName::Degraded,
                    _ => HealthName::Healthy,
                },
                consecutive_failures: st.map_or(0, |s| s.consecutive_failures),
                last_error: st.and_then(|s| s.last_error.clone()),
                committed_gpus_free: committed.iter().map(|c| c.gpus_free).sum(),
                committed,
            }
        })
        .collect();
    Ok(Json(ProviderList { providers }))
}

/// Commitments with used and idle GPUs.
#[utoipa::path(get, path = "/v1/commitments", tag = "commitments", security(("bearer" = [])),
    responses((status = 200, body = CommitmentList), (status = 401, body = ErrorBody, headers(("WWW-Authenticate" = String)))))]
async fn list_commitments(
    State(b): State<AppState>,
    _auth: Auth,
) -> ApiResult<Json<CommitmentList>> {
    let usage = b.store.commitment_usage().await?;
    Ok(Json(CommitmentList {
        commitments: usage.iter().map(CommitmentView::from).collect(),
    }))
}

/// What `POST /v1/commitments` accepts (documented as [`CommitmentImportBody`]): a plan's JSON
/// (`hedge plan --format json`: a horizon and planned commitments, converted by `hedge_core::portfolio::plan_commitments`),
/// or hand-written commitments, as a list or under `commitments`.
type CommitmentImport = CommitmentImportBody;

/// The import body: a list of objects, or an object (see [`json_object`]).
fn json_commitments(raw: &[u8]) -> Result<CommitmentImport, ApiError> {
    match serde_json::from_slice::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Array(items)) => {
            if let Some(i) = items.iter().position(|q| !q.is_object()) {
                return Err(ApiError::bad_request(
                    "invalid_json",
                    format!("[{i}]"),
                    "each commitment must be an object",
                ));
            }
            json_body(raw)
        }
        _ => json_object(raw, false),
    }
}

/// A plan's horizon and commitments as the planner's types (validated by their schema's bounds first, so the
/// conversion's arithmetic stays in range).
fn plan_inputs(
    horizon: &PlanHorizon,
    commitments: &[PlannedCommitmentInput],
) -> Result<(hedge_core::PlanHorizon, Vec<hedge_core::PlannedCommitment>), ApiError> {
    let bad = |field: String, msg: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_commitment", msg).field(field)
    };
    if !(1..=240).contains(&horizon.periods) || !(1..=744).contains(&horizon.period_hours) {
        return Err(bad(
            "horizon".into(),
            "periods must be 1..=240 and period_hours 1..=744".into(),
        ));
    }
    let h: hedge_core::PlanHorizon = serde_json::from_value(serde_json::json!({
        "start": horizon.start, "periods": horizon.periods, "period_hours": horizon.period_hours,
    }))
    .map_err(|e| bad("horizon.start".into(), format!("horizon: {e}")))?;
    if h.start.year < 2000 {
        return Err(bad(
            "horizon.start".into(),
            "the horizon starts before 2000".into(),
        ));
    }
    let mut out = Vec::with_capacity(commitments.len());
    for (i, c) in commitments.iter().enumerate() {
        if !(1..=240).contains(&c.term_periods) || c.start_period > 239 {
            return Err(bad(
                format!("commitments[{i}].term_periods"),
                "term_periods must be 1..=240 and start_period 0..=239".into(),
            ));
        }
        if !(c.rate.is_finite() && (0.0..=1e6).contains(&c.rate)) {
            return Err(bad(
                format!("commitments[{i}].rate"),
                format!("rate {} must be 0 to 1,000,000 $/GPU-hour", c.rate),
            ));
        }
        let p: hedge_core::PlannedCommitment = serde_json::from_value(serde_json::json!({
            "provider": c.provider, "accelerator": c.accelerator, "term_periods": c.term_periods,
            "start_period": c.start_period, "gpus": c.gpus, "rate": c.rate,
        }))
        .map_err(|e| bad(format!("commitments[{i}]"), e.to_string()))?;
        out.push(p);
    }
    Ok((h, out))
}

/// The earliest start a commitment may have (2000-01-01), and how far ahead of the server's clock it may
/// start (10 years).
pub const EARLIEST_START: i64 = 946_684_800;
pub const LATEST_START_AHEAD_SECS: i64 = 10 * 366 * 86_400;

/// The latest start the server accepts: 10 years from now, rounded down to the day (so the bound that
/// [`crate::openapi::document_for`] publishes holds all day).
pub fn latest_start(now: Timestamp) -> i64 {
    now.unix()
        .saturating_add(LATEST_START_AHEAD_SECS)
        .div_euclid(86_400)
        * 86_400
}

/// The configured provider a commitment of `named` (a plan's provider, e.g. `aws`) maps onto: the provider
/// of that name, else the one `catalog:` provider that sells `named`'s offers of `accelerator` (in `region`,
/// when given). Errors: (field, reason).
fn resolve_provider(
    b: &Broker,
    named: &ProviderId,
    accelerator: &Accelerator,
    region: Option<&hedge_core::RegionId>,
) -> Result<ProviderId, (&'static str, String)> {
    let offers = |p: &ProviderId| {
        b.catalog.offers().iter().any(|o| {
            &o.provider == p
                && o.accelerator
                    .as_ref()
                    .is_some_and(|a| &a.name == accelerator)
                && region.is_none_or(|r| o.location.region() == r)
        })
    };
    if let Some(p) = b.provider_config(named) {
        if !offers(&p.name) {
            if let Some(r) = region {
                let mut regions: Vec<&str> = b
                    .catalog
                    .offers()
                    .iter()
                    .filter(|o| {
                        &o.provider == named
                            && o.accelerator
                                .as_ref()
                                .is_some_and(|a| &a.name == accelerator)
                    })
                    .map(|o| o.location.region().as_str())
                    .collect();
                if !regions.is_empty() {
                    regions.sort_unstable();
                    regions.dedup();
                    return Err((
                        "region",
                        format!(
                            "provider {named} offers {accelerator} in {}, not in region {r}",
                            regions.join(", ")
                        ),
                    ));
                }
            }
            let mut have: Vec<String> = b
                .catalog
                .offers()
                .iter()
                .filter(|o| &o.provider == named)
                .filter_map(|o| o.accelerator.as_ref().map(|a| a.name.to_string()))
                .collect();
            have.sort();
            have.dedup();
            let place = region
                .map(|r| format!(" in region {r}"))
                .unwrap_or_default();
            return Err((
                "accelerator",
                format!(
                    "provider {named} does not offer {accelerator}{place} (it offers {})",
                    have.join(", ")
                ),
            ));
        }
        return Ok(p.name.clone());
    }
    let candidates: Vec<&ProviderId> = b
        .config
        .providers
        .iter()
        .filter(|p| matches!(&p.sells, crate::Sells::Catalog { provider, .. } if provider == named))
        .map(|p| &p.name)
        .collect();
    let fits: Vec<&ProviderId> = candidates.iter().copied().filter(|p| offers(p)).collect();
    match (candidates.as_slice(), fits.as_slice()) {
        ([], _) => {
            let known: Vec<&str> = b.config.providers.iter().map(|p| p.name.as_str()).collect();
            Err(("provider", format!("provider {named:?} is not configured in this broker (it has: {})", known.join(", "))))
        }
        (_, [one]) => Ok((*one).clone()),
        (_, []) => Err(("accelerator", format!("no provider selling {named}'s offers ({}) offers {accelerator}{}", candidates.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", "), region.map(|r| format!(" in region {r}")).unwrap_or_default()))),
        (_, many) => Err((
            "region",
            format!("{named} {accelerator} matches several providers ({}): name the commitment's region", many.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")),
        )),
    }
}

/// Checks one imported commitment against this broker: a configured provider that offers the accelerator,
/// at least one GPU, a sane start and an end after it. `i` names the entry in the error's field.
/// `from_plan`: the entry was converted from a plan, so its start is computed from several fields
/// (`horizon.start` + `start_period` × `period_hours`); a start out of bounds is then a 409, as the other
/// rules across fields are.
fn check_commitment(
    b: &Broker,
    i: usize,
    c: &CommitmentInput,
    now: Timestamp,
    from_plan: bool,
) -> Result<Commitment, ApiError> {
    let f = |k: &str| format!("commitments[{i}].{k}");
    let bad = |k: &str, msg: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_commitment", msg).field(f(k))
    };
    let id = c.id.trim();
    if id.is_empty() || id.len() > 128 || id.chars().any(|ch| ch.is_control() || ch.is_whitespace())
    {
        return Err(bad(
            "id",
            format!("id {:?} must be 1 to 128 characters without spaces", c.id),
        ));
    }
    let accelerator =
        Accelerator::parse(&c.accelerator).map_err(|e| bad("accelerator", e.to_string()))?;
    let region = match c.region.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(r) => Some(hedge_core::RegionId::new(r)),
    };
    let provider = resolve_provider(
        b,
        &ProviderId::parse(&c.provider),
        &accelerator,
        region.as_ref(),
    )
    .map_err(|(k, m)| bad(k, m))?;
    let gpus = u32::try_from(c.gpus)
        .ok()
        .filter(|g| (1..=1_000_000).contains(g))
        .ok_or_else(|| bad("gpus", format!("gpus must be at least 1, got {}", c.gpus)))?;
    if c.per_gpu_hour < 0 {
        return Err(bad(
            "per_gpu_hour",
            format!("per_gpu_hour must not be negative, got {}", c.per_gpu_hour),
        ));
    }
    let latest = latest_start(now);
    if c.start < EARLIEST_START || c.start > latest {
        let msg = format!(
            "start {} is outside 2000-01-01 .. 10 years from now",
            Timestamp::from_unix(c.start)
        );
        if from_plan {
            return Err(ApiError::new(StatusCode::CONFLICT, "invalid_interval", msg)
                .field(f("start_period")));
        }
        return Err(bad("start", msg));
    }
    if c.end <= c.start {
        // A rule across two fields, which the schema cannot state: the entry conflicts with itself.
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_interval",
            "end must be after start",
        )
        .field(f("end")));
    }
    Ok(Commitment {
        id: CommitmentId::new(id),
        provider,
        accelerator,
        region,
        gpus,
        per_gpu_hour: Rate::per_hour(Money::from_micros(c.per_gpu_hour)),
        start: Timestamp::from_unix(c.start),
        end: Timestamp::from_unix(c.end),
    })
}

/// Import commitments: a list, or a plan's JSON with a `commitments` list. Needs the admin token. Nothing
/// is stored when any entry is refused.
#[utoipa::path(post, path = "/v1/commitments", tag = "commitments", security(("bearer" = [])),
    request_body(content = CommitmentImportBody, content_type = "application/json"),
    responses(
        (status = 200, body = Imported),
        (status = 400, body = ErrorBody, description = "not JSON of the documented shape"),
        (status = 401, body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 403, body = ErrorBody, description = "not the admin token"),
        (status = 409, body = ErrorBody, description = "a commitment id repeats in the batch or is already stored (`field`: the entry's id), or an entry's end is not after its start (`field`: `commitments[i].end`), or a plan entry starts more than 10 years ahead (`field`: `commitments[i].start_period`): rules across fields, which the schema cannot state"),
        (status = 413, body = ErrorBody, description = "body over the size limit"),
        (status = 422, body = ErrorBody, description = "an entry is refused: unknown provider, accelerator the provider does not offer, GPUs < 1, start before 2000 or more than 10 years ahead (`field`: `commitments[i].provider`, ...)"),
    ))]
async fn import_commitments(
    State(b): State<AppState>,
    auth: Auth,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Imported>> {
    auth.admin()?;
    let raw = body(raw)?;
    let import = json_commitments(&raw).map_err(|e| {
        ApiError::bad_request(
            "invalid_commitments",
            "body",
            format!(
                "{}; expected a plan's JSON (horizon + commitments) or a list of commitments",
                e.message
            ),
        )
    })?;
    let from_plan = matches!(import, CommitmentImport::Plan { .. });
    let list: Vec<CommitmentInput> = match import {
        CommitmentImport::List(l) | CommitmentImport::Wrapped { commitments: l } => l,
        CommitmentImport::Plan {
            horizon,
            commitments,
        } => {
            let (horizon, commitments) = plan_inputs(&horizon, &commitments)?;
            hedge_core::portfolio::plan_commitments(&horizon, &commitments)
        }
        .into_iter()
        .map(|c| CommitmentInput {
            id: c.id.to_string(),
            provider: c.provider.to_string(),
            accelerator: c.accelerator.to_string(),
            region: c.region.map(|r| r.to_string()),
            gpus: i64::from(c.gpus),
            per_gpu_hour: c.per_gpu_hour.hourly().micros(),
            start: c.start.unix(),
            end: c.end.unix(),
        })
        .collect(),
    };
    let now = b.clock.now();
    let mut clean: Vec<Commitment> = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        let c = check_commitment(&b, i, c, now, from_plan)?;
        if clean.iter().any(|d| d.id == c.id) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "duplicate_commitment",
                format!("commitment id {} appears twice in the batch", c.id),
            )
            .field(format!("commitments[{i}].id")));
        }
        clean.push(c);
    }
    b.store.put_commitments(&clean).await.map_err(|e| match e {
        hedge_store::StoreError::DuplicateCommitment { id, index } => ApiError::new(
            StatusCode::CONFLICT,
            "duplicate_commitment",
            format!(
                "commitment {id} already exists or is listed twice; delete it first to replace it"
            ),
        )
        .field(format!("commitments[{index}].id")),
        e => ApiError::from(e),
    })?;
    b.wake.notify_one();
    Ok(Json(Imported {
        imported: clean.len(),
    }))
}

/// Teams (a team token sees its own).
#[utoipa::path(get, path = "/v1/teams", tag = "teams", security(("bearer" = [])),
    responses((status = 200, body = TeamList), (status = 401, body = ErrorBody, headers(("WWW-Authenticate" = String)))))]
async fn list_teams(State(b): State<AppState>, auth: Auth) -> ApiResult<Json<TeamList>> {
    let teams = b.store.teams().await?;
    Ok(Json(TeamList {
        teams: teams
            .iter()
            .filter(|t| auth.may_see(&t.id))
            .map(TeamView::from)
            .collect(),
    }))
}

/// Create or replace a team: monthly budget, GPU quotas, preemption policy. Needs the admin token.
#[utoipa::path(put, path = "/v1/teams/{id}", tag = "teams", security(("bearer" = [])),
    params(("id" = String, Path, description = "the team's id", pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")),
    request_body(content = TeamBody, content_type = "application/json"),
    responses(
        (status = 200, body = TeamView),
        (status = 400, body = ErrorBody, description = "invalid body or team id (the field is named)"),
        (status = 401, body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 403, body = ErrorBody, description = "not the admin token"),
        (status = 409, body = ErrorBody, description = "two quotas for the same provider and accelerator (`field`: the second)"),
        (status = 413, body = ErrorBody, description = "body over the size limit"),
    ))]
async fn put_team(
    State(b): State<AppState>,
    auth: Auth,
    NamePath(id): NamePath,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<TeamView>> {
    auth.admin()?;
    if !is_name(&id) {
        return Err(ApiError::bad_request(
            "invalid_path",
            "id",
            format!("team id {id:?} must match {NAME_PATTERN}"),
        ));
    }
    let raw = body(raw)?;
    let tb: TeamBody = json_object(&raw, false)?;
    // The budget as written: serde_json's float reading may round a number just over the bound down to it.
    #[derive(serde::Deserialize)]
    struct RawBudget<'a> {
        #[serde(borrow)]
        monthly_budget_usd: Option<&'a serde_json::value::RawValue>,
    }
    let exact = serde_json::from_slice::<RawBudget>(&raw)
        .ok()
        .and_then(|r| r.monthly_budget_usd)
        .and_then(|v| v.get().parse::<f64>().ok());
    if tb
        .monthly_budget_usd
        .is_some_and(|m| !(0.0..=1e9).contains(&m))
        || exact.is_some_and(|m| !(0.0..=1e9).contains(&m))
    {
        return Err(ApiError::bad_request(
            "invalid_team",
            "monthly_budget_usd",
            "monthly_budget_usd must be 0 to 1,000,000,000",
        ));
    }
    let monthly_budget = tb
        .monthly_budget_usd
        .map(Money::from_usd_f64)
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_team", "monthly_budget_usd", e.to_string()))?;
    let mut quotas: Vec<TeamQuota> = Vec::new();
    for (i, q) in tb.quotas.into_iter().enumerate() {
        if let Some(p) = q.provider.as_deref().filter(|p| !is_name(p)) {
            return Err(ApiError::bad_request(
                "invalid_team",
                format!("quotas[{i}].provider"),
                format!("provider {p:?} must match {NAME_PATTERN}"),
            ));
        }
        if q.max_gpus > 1_000_000 {
            return Err(ApiError::bad_request(
                "invalid_team",
                format!("quotas[{i}].max_gpus"),
                "max_gpus is over 1,000,000",
            ));
        }
        if let Some(a) = q
            .accelerator
            .as_deref()
            .filter(|a| !is_name(a) || a.len() > 32)
        {
            return Err(ApiError::bad_request(
                "invalid_team",
                format!("quotas[{i}].accelerator"),
                format!("accelerator {a:?} is not an accelerator name"),
            ));
        }
        let accelerator = q
            .accelerator
            .as_deref()
            .map(Accelerator::parse)
            .transpose()
            .map_err(|e| {
                ApiError::bad_request(
                    "invalid_team",
                    format!("quotas[{i}].accelerator"),
                    e.to_string(),
                )
            })?;
        let quota = TeamQuota {
            provider: q.provider.as_deref().map(ProviderId::parse),
            accelerator,
            max_gpus: q.max_gpus,
        };
        if quotas
            .iter()
            .any(|o| o.provider == quota.provider && o.accelerator == quota.accelerator)
        {
            // A rule across entries, which the schema cannot state: a conflict between two quotas.
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflicting_quotas",
                "two quotas for the same provider and accelerator",
            )
            .field(format!("quotas[{i}]")));
        }
        quotas.push(quota);
    }
    let team = Team {
        id: TeamId::new(id.trim()),
        monthly_budget,
        quotas,
        allow_preemption: tb.allow_preemption,
        on_budget_exceeded: tb.on_budget_exceeded.into(),
    };
    b.store.put_team(&team).await?;
    b.wake.notify_one();
    Ok(Json(TeamView::from(&team)))
}

/// Issue a token for a team (the secret is returned once). Needs the admin token.
#[utoipa::path(post, path = "/v1/teams/{id}/tokens", tag = "teams", security(("bearer" = [])),
    params(("id" = String, Path, description = "the team's id")),
    request_body(content = Option<TokenBody>, content_type = "application/json", description = "optional"),
    responses(
        (status = 201, body = IssuedTokenView),
        (status = 400, body = ErrorBody, description = "invalid body (the field is named)"),
        (status = 401, body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 403, body = ErrorBody, description = "not the admin token"),
        (status = 404, body = ErrorBody, description = "unknown team"),
        (status = 413, body = ErrorBody, description = "body over the size limit"),
    ))]
async fn create_token(
    State(b): State<AppState>,
    auth: Auth,
    NamePath(id): NamePath,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    auth.admin()?;
    let raw = body(raw)?;
    let tb: TokenBody = if raw.iter().all(u8::is_ascii_whitespace) {
        TokenBody::default()
    } else {
        json_object::<Option<TokenBody>>(&raw, true)?.unwrap_or_default()
    };
    if tb.label.chars().count() > 200 || tb.label.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_json",
            "label",
            "label must be at most 200 characters, none of them control characters",
        ));
    }
    let team = TeamId::new(id.trim());
    let issued = b
        .store
        .create_token(&Principal::Team(team.clone()), &tb.label, b.clock.now())
        .await?;
    tracing::info!(team = %team, token_id = issued.id, "issued a team token");
    Ok(ok(
        StatusCode::CREATED,
        IssuedTokenView {
            id: issued.id,
            team: team.to_string(),
            token: issued.secret,
        },
    ))
}

/// Inject faults into a provider (when the configuration enables fault injection). Needs the admin token.
#[utoipa::path(put, path = "/v1/admin/providers/{id}/faults", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "a configured provider")),
    request_body(content = Faults, content_type = "application/json"),
    responses(
        (status = 200, body = FaultsView),
        (status = 400, body = ErrorBody, description = "invalid body (the field is named)"),
        (status = 401, body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 403, body = ErrorBody, description = "not the admin token, or fault injection is disabled"),
        (status = 404, body = ErrorBody, description = "no such provider"),
        (status = 413, body = ErrorBody, description = "body over the size limit"),
    ))]
async fn put_faults(
    State(b): State<AppState>,
    auth: Auth,
    NamePath(id): NamePath,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<FaultsView>> {
    auth.admin()?;
    if !b.config.fault_injection {
        return Err(ApiError::forbidden(
            "fault injection is disabled in this server's configuration",
        ));
    }
    let p = ProviderId::parse(&id);
    let control = b
        .faults
        .get(&p)
        .ok_or_else(|| ApiError::not_found("provider", &p))?;
    let raw = body(raw)?;
    let faults: Faults = json_object(&raw, false)?;
    tracing::warn!(provider = %p, ?faults, "fault injection changed");
    control.set(faults.clone().into());
    Ok(Json(FaultsView {
        provider: p.to_string(),
        faults,
        injected: None,
    }))
}

/// A provider's injected faults. Needs the admin token.
#[utoipa::path(get, path = "/v1/admin/providers/{id}/faults", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "a configured provider")),
    responses(
        (status = 200, body = FaultsView),
        (status = 401, body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 403, body = ErrorBody, description = "not the admin token"),
        (status = 404, body = ErrorBody, description = "no such provider"),
    ))]
async fn get_faults(
    State(b): State<AppState>,
    auth: Auth,
    NamePath(id): NamePath,
) -> ApiResult<Json<FaultsView>> {
    auth.admin()?;
    let p = ProviderId::parse(&id);
    let control = b
        .faults
        .get(&p)
        .ok_or_else(|| ApiError::not_found("provider", &p))?;
    Ok(Json(FaultsView {
        provider: p.to_string(),
        faults: control.get().into(),
        injected: Some(control.injected()),
    }))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// Any query strings: a window (clipped at now, from <= to) or an error naming `from` or `to`,
        /// 400 for a malformed date and 409 for a date that does not exist or an empty window; never a panic.
        #[test]
        fn cost_windows_parse_or_name_the_parameter(
            from in prop_oneof![".{0,24}", "[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2})?Z?"],
            to in prop_oneof![".{0,24}", "[0-9]{4}-[0-9]{2}-[0-9]{2}"],
        ) {
            let now = hedge_core::Timestamp::from_unix(1_796_460_000);
            match super::cost_window(now, Some(&from), Some(&to)) {
                Ok((f, t)) => prop_assert!(f <= t && t <= now.max(f)),
                Err(e) => {
                    prop_assert!(matches!(e.field.as_deref(), Some("from" | "to")), "{e:?}");
                    prop_assert!(matches!(e.status.as_u16(), 400 | 409), "{e:?}");
                }
            }
        }
    }

    #[test]
    fn cost_windows_default_to_this_month_and_clip_at_now() {
        let now = hedge_core::Timestamp::parse_civil("2026-12-05T12:00:00Z").unwrap();
        let (f, t) = super::cost_window(now, None, None).unwrap();
        assert_eq!(
            (f.to_string(), t.to_string()),
            ("2026-12-01T00:00:00Z".into(), "2026-12-05T12:00:00Z".into())
        );
        let (f, t) = super::cost_window(now, Some("2027-01-01"), Some("2027-02-01")).unwrap();
        assert_eq!(f, t, "a window wholly in the future is empty");
        let e = super::cost_window(now, Some("2026-02-30"), None).unwrap_err();
        assert_eq!((e.status.as_u16(), e.field.as_deref()), (409, Some("from")));
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        use super::bearer_token;
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER \tabc "), Some("abc"));
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer   "), None);
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }

    #[test]
    fn the_latest_start_is_a_day_boundary_ten_years_ahead() {
        let now = hedge_core::Timestamp::from_unix(1_796_460_000);
        let latest = super::latest_start(now);
        assert_eq!(latest % 86_400, 0);
        assert!(
            latest <= now.unix() + super::LATEST_START_AHEAD_SECS
                && latest > now.unix() + super::LATEST_START_AHEAD_SECS - 86_400
        );
    }
}

// ---- cost --------------------------------------------------------------------------------------------------

/// A cost window from the query: both bounds parsed with Hedge's date grammar; both absent, the current
/// month; clipped at now. Errors name the parameter.
fn cost_window(
    now: Timestamp,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Timestamp, Timestamp), ApiError> {
    let parse = |field: &'static str, s: &str| {
        Timestamp::parse_civil(s).map_err(|e| match e {
            // A well-formed date that does not exist: a rule the schema's pattern cannot state.
            hedge_core::TimeError::NotReal(_) => ApiError::new(
                StatusCode::CONFLICT,
                "invalid_window",
                format!("{field}: {e}"),
            )
            .field(field),
            _ => ApiError::bad_request("invalid_query", field, format!("{field}: {e}")),
        })
    };
    let (y, m, ..) = now.to_civil();
    let (month_start, month_end) = hedge_store::month_range(y, m)?;
    let from = from
        .map(|s| parse("from", s))
        .transpose()?
        .unwrap_or(month_start);
    let to = to
        .map(|s| parse("to", s))
        .transpose()?
        .unwrap_or(if from == month_start {
            month_end
        } else {
            now.max(from.plus_seconds(1))
        });
    if to <= from {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_window",
            format!("to {to} is not after from {from}"),
        )
        .field("to"));
    }
    // Nothing has accrued after now: a window reaching into the future ends at now (and a window wholly in
    // the future is empty).
    Ok((from, to.min(now).max(from)))
}

fn money_rows(rows: impl IntoIterator<Item = (Option<TeamId>, Money)>) -> Vec<TeamSpend> {
    rows.into_iter()
        .map(|(t, m)| TeamSpend {
            team: t.map(|t| t.to_string()),
            spend: m.micros(),
            monthly_budget: None,
        })
        .collect()
}

/// Spend per team in a window, from the ledger (running attempts accrue up to now; commitment fees by the
/// configured allocation). A team token sees only its own team.
#[utoipa::path(get, path = "/v1/cost/spend", tag = "cost", security(("bearer" = [])), params(CostQuery),
    responses(
        (status = 200, body = SpendReport),
        (status = 400, body = ErrorBody, description = "invalid query parameter (named)"),
        (status = 401, body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 403, body = ErrorBody, description = "a team token naming another team"),
        (status = 409, body = ErrorBody, description = "`to` not after `from`, or a date that does not exist (named)"),
    ))]
async fn cost_spend(
    State(b): State<AppState>,
    auth: Auth,
    Q(q): Q<CostQuery>,
) -> ApiResult<Json<SpendReport>> {
    let team = match (&auth.0, q.team.as_deref()) {
        (Principal::Team(own), None) => Some(own.clone()),
        (Principal::Team(own), Some(t)) if t == own.as_str() => Some(own.clone()),
        (Principal::Team(_), Some(_)) => {
            return Err(ApiError::forbidden("a team token sees only its own spend").field("team"))
        }
        (Principal::Admin, t) => t.map(TeamId::new),
    };
    let now = b.clock.now();
    let (from, to) = cost_window(now, q.from.as_deref(), q.to.as_deref())?;
    let (by_team, total) = crate::ledger::spend_by_team(&b, from, to, now).await?;
    let teams = match &team {
        Some(t) => money_rows([(
            Some(t.clone()),
            by_team
                .get(&Some(t.clone()))
                .copied()
                .unwrap_or(Money::ZERO),
        )]),
        None => money_rows(by_team),
    };
    let total = if team.is_some() {
        teams.iter().fold(0i64, |a, t| a.saturating_add(t.spend))
    } else {
        total.micros()
    };
    Ok(Json(SpendReport {
        from: from.unix(),
        to: to.unix(),
        total,
        teams,
    }))
}

/// Commitment metrics over a window: coverage, utilization, waste, effective savings rate against
/// on-demand, and burn-down as of now; per commitment and per provider and accelerator; fees per team.
#[utoipa::path(get, path = "/v1/cost/commitments", tag = "cost", security(("bearer" = [])), params(WindowQuery),
    responses(
        (status = 200, body = CommitmentReport),
        (status = 400, body = ErrorBody, description = "invalid query parameter (named)"),
        (status = 401, body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 403, body = ErrorBody, description = "only the admin token"),
        (status = 409, body = ErrorBody, description = "`to` not after `from`, or a date that does not exist (named)"),
    ))]
async fn cost_commitments(
    State(b): State<AppState>,
    auth: Auth,
    Q(q): Q<WindowQuery>,
) -> ApiResult<Json<CommitmentReport>> {
    if auth.0 != Principal::Admin {
        return Err(ApiError::forbidden(
            "commitment metrics need the admin token",
        ));
    }
    let now = b.clock.now();
    let (from, to) = cost_window(now, q.from.as_deref(), q.to.as_deref())?;
    let segs = crate::ledger::segments_in(&b, None, from, to, now).await?;
    let commitments = b.store.commitments().await?;
    let metrics: Vec<_> = commitments
        .iter()
        .map(|c| hedge_core::ledger::commitment_metrics(c, &segs, from, to, now))
        .collect();
    let mut groups = Vec::new();
    let mut keys: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for m in &metrics {
        keys.insert(format!("provider:{}", m.provider));
        keys.insert(format!("accelerator:{}", m.accelerator));
    }
    for k in keys {
        let of = metrics.iter().filter(|m| {
            k == format!("provider:{}", m.provider) || k == format!("accelerator:{}", m.accelerator)
        });
        if let Some(sum) =
            hedge_core::ledger::CommitmentMetrics::sum(CommitmentId::new(k.clone()), of)
        {
            groups.push(CommitmentMetricsView::from_metrics(k, &sum));
        }
    }
    let fees = hedge_core::ledger::fees_by_team(
        &segs,
        &commitments,
        from,
        to,
        &b.config.ledger.commitment_fees,
    );
    Ok(Json(CommitmentReport {
        from: from.unix(),
        to: to.unix(),
        now: now.unix(),
        commitments: metrics
            .iter()
            .map(|m| CommitmentMetricsView::from_metrics(m.commitment.to_string(), m))
            .collect(),
        groups,
        fee_by_team: money_rows(fees),
    }))
}

/// A FOCUS export of a window as CSV, streamed (rows are written as the ledger is read, a page at a time).
#[utoipa::path(get, path = "/v1/cost/export", tag = "cost", security(("bearer" = [])), params(ExportQuery),
    responses(
        (status = 200, content_type = "text/csv", body = String, description = "FOCUS CSV, header first; Hedge's columns are x_team, x_job, x_attempt"),
        (status = 400, body = ErrorBody, description = "invalid query parameter (named)"),
        (status = 401, body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 403, body = ErrorBody, description = "only the admin token"),
        (status = 409, body = ErrorBody, description = "`to` not after `from`, or a date that does not exist (named)"),
    ))]
async fn cost_export(
    State(b): State<AppState>,
    auth: Auth,
    Q(q): Q<ExportQuery>,
) -> ApiResult<Response> {
    if auth.0 != Principal::Admin {
        return Err(ApiError::forbidden(
            "the FOCUS export needs the admin token",
        ));
    }
    let version = match q.focus_version.as_deref() {
        None => hedge_core::focus::FocusVersion::V1_0,
        Some(v) => v
            .parse()
            .map_err(|e: String| ApiError::bad_request("invalid_query", "focus_version", e))?,
    };
    let now = b.clock.now();
    let (from, to) = cost_window(now, q.from.as_deref(), q.to.as_deref())?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let broker = b.clone();
    tokio::spawn(async move {
        let err_tx = tx.clone();
        if let Err(e) = crate::ledger::export_focus(&broker, version, from, to, now, tx).await {
            tracing::error!(error = %chain(&e), "FOCUS export failed");
            let _ = err_tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    let body = axum::body::Body::from_stream(ChunkStream(rx));
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response())
}

/// The export's chunks as a body stream.
struct ChunkStream(tokio::sync::mpsc::Receiver<Result<String, std::io::Error>>);

impl futures_core::Stream for ChunkStream {
    type Item = Result<String, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

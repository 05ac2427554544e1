//! The store, written once: validation, compare-and-set transitions, events, attempts, keyset pagination,
//! commitments, tokens, health and spend, for every [`Backend`]. The backends differ only in how they
//! connect, run a statement and migrate (`sqlite.rs`, `postgres.rs`).

use crate::backend::{logic, vals, Backend, Conn, Row, Value};
use crate::cache::SpecCache;
use crate::codec::*;
use crate::error::StoreError;
use crate::model::*;
use crate::store::{Store, StoreResult, QUEUED_STATES};
use crate::token;
use async_trait::async_trait;
use hedge_core::ledger::{self, AttemptSpan, PriceBook, PriceVersion, Segment};
use hedge_core::{
    Commitment, CommitmentId, JobId, JobState, Money, ProviderId, Rate, RegionId, TeamId,
    Timestamp, ZoneId,
};
use std::collections::HashMap;
use std::sync::Arc;

// ---- rows ---------------------------------------------------------------------------------------------------

const HEAD_COLS: &str =
    "id, team_id, priority, deadline, submitted_at, state, version, current_attempt, updated_at, idempotency_key";
const JOB_COLS: &str =
    "id, team_id, priority, deadline, submitted_at, state, version, current_attempt, updated_at, idempotency_key, spec";

/// A job row of [`HEAD_COLS`] (then, for [`JOB_COLS`], the spec) with the spec from the cache or parsed.
fn job_head(r: &Row, spec: Arc<hedge_core::TaskSpec>) -> StoreResult<QueuedJob> {
    let priority = r.i64(2)?;
    Ok(QueuedJob {
        id: job_id("jobs", r.i64(0)?)?,
        team: TeamId::new(r.str(1)?),
        priority: i32::try_from(priority)
            .map_err(|_| corrupt("jobs", "priority", format!("{priority}")))?,
        deadline: r.opt_i64(3)?.map(Timestamp),
        spec,
        submitted_at: Timestamp(r.i64(4)?),
        state: parse_state("jobs", "state", r.str(5)?)?,
        version: to_u64("jobs", "version", r.i64(6)?)?,
        current_attempt: to_u32("jobs", "current_attempt", r.i64(7)?)?,
        updated_at: Timestamp(r.i64(8)?),
        idempotency_key: r.opt_string(9)?,
    })
}

fn queued_row(r: &Row, specs: &SpecCache) -> StoreResult<QueuedJob> {
    let id = job_id("jobs", r.i64(0)?)?;
    job_head(r, specs.get_or_parse(id, r.str(10)?)?)
}

fn job_row(r: &Row, specs: &SpecCache) -> StoreResult<Job> {
    queued_row(r, specs).map(Job::from)
}

const ATTEMPT_COLS: &str =
    "job_id, attempt_no, idempotency_key, provider, offer, region, zone, market, commitment_id, \
     accelerator, gpus, driver_handle, status, detail, created_at, updated_at";

fn attempt_row(r: &Row) -> StoreResult<LaunchAttempt> {
    Ok(LaunchAttempt {
        job: job_id("launch_attempts", r.i64(0)?)?,
        attempt_no: to_u32("launch_attempts", "attempt_no", r.i64(1)?)?,
        idempotency_key: r.string(2)?,
        provider: ProviderId::new(r.str(3)?),
        offer: r.string(4)?,
        region: r.opt_str(5)?.map(RegionId::new),
        zone: r.opt_str(6)?.map(ZoneId::new),
        market: parse_market("launch_attempts", r.str(7)?)?,
        commitment: r.opt_str(8)?.map(CommitmentId::new),
        accelerator: r
            .opt_str(9)?
            .map(|a| parse_accel("launch_attempts", a))
            .transpose()?,
        gpus: to_u32("launch_attempts", "gpus", r.i64(10)?)?,
        driver_handle: r.opt_string(11)?,
        status: parse_attempt_status(r.str(12)?)?,
        detail: r.opt_string(13)?,
        created_at: Timestamp(r.i64(14)?),
        updated_at: Timestamp(r.i64(15)?),
    })
}

const COMMITMENT_COLS: &str =
    "id, provider, accelerator, region, gpus, per_gpu_hour_micros, start_at, end_at";

fn commitment_row(r: &Row) -> StoreResult<Commitment> {
    Ok(Commitment {
        id: CommitmentId::new(r.str(0)?),
        provider: ProviderId::new(r.str(1)?),
        accelerator: parse_accel("commitments", r.str(2)?)?,
        region: r.opt_str(3)?.map(RegionId::new),
        gpus: to_u32("commitments", "gpus", r.i64(4)?)?,
        per_gpu_hour: Rate::per_hour(Money::from_micros(r.i64(5)?)),
        start: Timestamp(r.i64(6)?),
        end: Timestamp(r.i64(7)?),
    })
}

const TEAM_COLS: &str = "id, monthly_budget_micros, quotas, allow_preemption, on_budget_exceeded";

fn team_row(r: &Row) -> StoreResult<Team> {
    Ok(Team {
        id: TeamId::new(r.str(0)?),
        monthly_budget: r.opt_i64(1)?.map(Money::from_micros),
        quotas: serde_json::from_str(r.str(2)?)
            .map_err(|e| corrupt("teams", "quotas", e.to_string()))?,
        allow_preemption: r.bool(3)?,
        on_budget_exceeded: match r.str(4)? {
            "wait" => OnBudgetExceeded::Wait,
            "stop" => OnBudgetExceeded::Stop,
            other => return Err(corrupt("teams", "on_budget_exceeded", format!("{other:?}"))),
        },
    })
}

const HEALTH_COLS: &str =
    "provider, state, consecutive_failures, last_heartbeat, last_error, updated_at";

fn health_row(r: &Row) -> StoreResult<ProviderHealth> {
    Ok(ProviderHealth {
        provider: ProviderId::new(r.str(0)?),
        state: parse_health(r.str(1)?)?,
        consecutive_failures: to_u32("provider_health", "consecutive_failures", r.i64(2)?)?,
        last_heartbeat: r.opt_i64(3)?.map(Timestamp),
        last_error: r.opt_string(4)?,
        updated_at: Timestamp(r.i64(5)?),
    })
}

fn spend_row(r: &Row) -> StoreResult<SpendEntry> {
    Ok(SpendEntry {
        job: r.opt_i64(0)?.map(|j| job_id("spend", j)).transpose()?,
        team: TeamId::new(r.str(1)?),
        provider: ProviderId::new(r.str(2)?),
        market: parse_market("spend", r.str(3)?)?,
        amount: Money::from_micros(r.i64(4)?),
        start: Timestamp(r.i64(5)?),
        end: Timestamp(r.i64(6)?),
    })
}

fn event_row(r: &Row) -> StoreResult<JobEvent> {
    Ok(JobEvent {
        job: job_id("job_events", r.i64(0)?)?,
        seq: to_u64("job_events", "seq", r.i64(1)?)?,
        from: r
            .opt_str(2)?
            .map(|s| parse_state("job_events", "from_state", s))
            .transpose()?,
        to: parse_state("job_events", "to_state", r.str(3)?)?,
        reason: r.string(4)?,
        explanation: parse_explanation(r.str(5)?)?,
        at: Timestamp(r.i64(6)?),
    })
}

fn token_row(r: &Row) -> StoreResult<TokenInfo> {
    Ok(TokenInfo {
        id: r.i64(0)?,
        principal: principal("api_tokens", r.bool(1)?, r.opt_string(2)?)?,
        label: r.string(3)?,
        created_at: Timestamp(r.i64(4)?),
        revoked_at: r.opt_i64(5)?.map(Timestamp),
    })
}

async fn all<T>(
    c: &mut dyn Conn,
    sql: &str,
    params: &[Value],
    f: impl Fn(&Row) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    c.query(sql, params).await?.iter().map(f).collect()
}

/// `('a', 'b')`: a closed set of lower-case state names, safe to inline (and the same text every call, so
/// the statement caches hit).
fn states_sql(states: &[JobState]) -> String {
    let names: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
    format!("({})", names.join(", "))
}

// ---- transactional helpers ------------------------------------------------------------------------------------

async fn team_exists(c: &mut dyn Conn, team: &TeamId) -> StoreResult<bool> {
    Ok(
        c.query_opt("SELECT 1 FROM teams WHERE id = $1", &vals![team.as_str()])
            .await?
            .is_some(),
    )
}

async fn get_job(c: &mut dyn Conn, specs: &SpecCache, id: JobId) -> StoreResult<Job> {
    match c
        .query_opt(
            &format!("SELECT {HEAD_COLS} FROM jobs WHERE id = $1"),
            &vals![job_id_sql(id)?],
        )
        .await?
    {
        Some(r) => head_to_job(c, specs, &r).await,
        None => Err(StoreError::UnknownJob { job: id }),
    }
}

/// A [`HEAD_COLS`] row as a job, its spec from the cache (or read and parsed once): the spec's text is not
/// copied out of the database on every read of a job.
async fn head_to_job(c: &mut dyn Conn, specs: &SpecCache, r: &Row) -> StoreResult<Job> {
    let id = job_id("jobs", r.i64(0)?)?;
    let spec = match specs.get(id) {
        Some(s) => s,
        None => {
            let row = c
                .query_opt(
                    "SELECT spec FROM jobs WHERE id = $1",
                    &vals![job_id_sql(id)?],
                )
                .await?
                .ok_or(StoreError::UnknownJob { job: id })?;
            specs.get_or_parse(id, row.str(0)?)?
        }
    };
    job_head(r, spec).map(Job::from)
}

async fn job_exists(c: &mut dyn Conn, id: JobId) -> StoreResult<()> {
    match c
        .query_opt("SELECT 1 FROM jobs WHERE id = $1", &vals![job_id_sql(id)?])
        .await?
    {
        Some(_) => Ok(()),
        None => Err(StoreError::UnknownJob { job: id }),
    }
}

async fn get_attempt(c: &mut dyn Conn, key: &str) -> StoreResult<LaunchAttempt> {
    let sql = format!("SELECT {ATTEMPT_COLS} FROM launch_attempts WHERE idempotency_key = $1");
    match c.query_opt(&sql, &vals![key]).await? {
        Some(r) => attempt_row(&r),
        None => Err(StoreError::UnknownAttempt {
            key: key.to_owned(),
        }),
    }
}

/// The job CAS: moves the job and appends its event, plus the attempt update. The `UPDATE ... WHERE state =
/// $from` is the compare-and-set: PostgreSQL's row lock makes a concurrent second writer re-check the
/// condition and lose; SQLite's writer lock serialises the whole transaction.
async fn apply_transition(c: &mut dyn Conn, specs: &SpecCache, t: &Transition) -> StoreResult<Job> {
    t.validate()?;
    let id = job_id_sql(t.job)?;
    let moved = c
        .query_opt(
            &format!(
                "UPDATE jobs SET state = $1, version = version + 1, updated_at = $2
                 WHERE id = $3 AND state = $4 AND (CAST($5 AS BIGINT) IS NULL OR version = $5)
                 RETURNING {HEAD_COLS}"
            ),
            &vals![
                t.to.as_str(),
                t.at.0,
                id,
                t.from.as_str(),
                t.expected_version.map(|v| v as i64)
            ],
        )
        .await?;
    let job = match moved {
        Some(r) => head_to_job(c, specs, &r).await?,
        None => {
            let job = get_job(c, specs, t.job).await?;
            return Err(StoreError::StaleTransition {
                job: t.job,
                expected: t.from,
                expected_version: t.expected_version,
                actual: job.state,
                actual_version: job.version,
            });
        }
    };
    c.exec(
        "INSERT INTO job_events (job_id, seq, from_state, to_state, reason, explanation, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &vals![
            id,
            job.version as i64,
            t.from.as_str(),
            t.to.as_str(),
            &t.reason,
            explanation_json(&t.explanation),
            t.at.0
        ],
    )
    .await?;
    if let Some(u) = &t.attempt_update {
        let a = get_attempt(c, &u.idempotency_key).await?;
        if a.job != t.job {
            return Err(invalid(
                "transition.attempt_update",
                format!(
                    "attempt {:?} belongs to job {}, not {}",
                    u.idempotency_key, a.job, t.job
                ),
            ));
        }
        apply_attempt_update(c, a, u).await?;
    }
    Ok(job)
}

/// Moves an attempt forward, as a compare-and-set on the status that was read: a concurrent writer that
/// moved the attempt first makes this update nothing, and it reports the status it lost to.
async fn apply_attempt_update(
    c: &mut dyn Conn,
    a: LaunchAttempt,
    u: &AttemptUpdate,
) -> StoreResult<LaunchAttempt> {
    if !a.status.can_become(u.status) {
        return Err(StoreError::IllegalAttemptUpdate {
            key: a.idempotency_key,
            from: a.status,
            to: u.status,
        });
    }
    let sql = format!(
        "UPDATE launch_attempts SET status = $1, driver_handle = COALESCE($2, driver_handle),
             detail = COALESCE($3, detail), updated_at = $4
         WHERE idempotency_key = $5 AND status = $6
         RETURNING {ATTEMPT_COLS}"
    );
    let params = vals![
        u.status.as_str(),
        u.driver_handle.clone(),
        u.stored_detail(),
        u.at.0,
        &u.idempotency_key,
        a.status.as_str()
    ];
    match c.query_opt(&sql, &params).await? {
        Some(r) => {
            let moved = attempt_row(&r)?;
            if moved.status.is_terminal() {
                book_segments(c, &moved, u.at).await?;
            }
            Ok(moved)
        }
        None => {
            let now = get_attempt(c, &u.idempotency_key).await?;
            Err(StoreError::IllegalAttemptUpdate {
                key: now.idempotency_key,
                from: now.status,
                to: u.status,
            })
        }
    }
}

/// The price history of one provider (every market).
async fn provider_prices(c: &mut dyn Conn, provider: &ProviderId) -> StoreResult<PriceBook> {
    let rows = all(
        c,
        // The provider's own series and its offers' (`provider/region/instance_type`).
        "SELECT provider, market, from_at, per_gpu_hour_micros FROM price_versions WHERE provider = $1 OR provider LIKE $2",
        &vals![provider.as_str(), format!("{}/%", provider.as_str())],
        price_row,
    )
    .await?;
    Ok(PriceBook::new(rows))
}

fn price_row(r: &Row) -> StoreResult<PriceVersion> {
    Ok(PriceVersion {
        provider: ProviderId::new(r.str(0)?),
        market: parse_market("price_versions", r.str(1)?)?,
        from: Timestamp(r.i64(2)?),
        per_gpu_hour: Rate::per_hour(Money::from_micros(r.i64(3)?)),
    })
}

/// The span an attempt held, for pricing: from its launch record to `end`, with its job's team.
async fn attempt_span(c: &mut dyn Conn, a: &LaunchAttempt) -> StoreResult<AttemptSpan> {
    let team = c
        .query_opt(
            "SELECT team_id FROM jobs WHERE id = $1",
            &vals![job_id_sql(a.job)?],
        )
        .await?
        .ok_or(StoreError::UnknownJob { job: a.job })?
        .string(0)?;
    Ok(span_of(a, TeamId::new(team)))
}

/// What an attempt held, as the ledger prices it: from its launch record (`created_at`) on.
pub fn span_of(a: &LaunchAttempt, team: TeamId) -> AttemptSpan {
    AttemptSpan {
        attempt: a.idempotency_key.clone(),
        job: a.job,
        attempt_no: a.attempt_no,
        team,
        provider: a.provider.clone(),
        region: a.region.clone(),
        zone: a.zone.clone(),
        instance_type: a.offer.clone(),
        market: a.market,
        commitment: a.commitment.clone(),
        accelerator: a.accelerator.clone(),
        gpus: a.gpus,
        start: a.created_at,
    }
}

/// Books an ended attempt's segments, priced from the price history, in the caller's transaction (the one
/// that moved the attempt to its final status). Unique per (attempt, seq): writing them again adds nothing.
async fn book_segments(c: &mut dyn Conn, a: &LaunchAttempt, end: Timestamp) -> StoreResult<()> {
    let book = provider_prices(c, &a.provider).await?;
    let span = attempt_span(c, a).await?;
    for s in ledger::segments(&book, &span, end.max(a.created_at)) {
        c.exec(
            "INSERT INTO ledger_segments (attempt_key, seq, job_id, attempt_no, team_id, provider, region, zone,
                 instance_type, market, commitment_id, accelerator, gpus, start_at, end_at, per_gpu_hour_micros,
                 list_per_gpu_hour_micros)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
             ON CONFLICT (attempt_key, seq) DO NOTHING",
            &vals![
                &s.attempt,
                s.seq,
                job_id_sql(s.job)?,
                s.attempt_no,
                s.team.as_str(),
                s.provider.as_str(),
                s.region.as_ref().map(|r| r.as_str()),
                s.zone.as_ref().map(|z| z.as_str()),
                &s.instance_type,
                market_str(s.market),
                s.commitment.as_ref().map(|x| x.as_str()),
                s.accelerator.as_ref().map(|x| x.as_str()),
                s.gpus,
                s.start.0,
                s.end.0,
                s.per_gpu_hour.hourly().micros(),
                s.list_per_gpu_hour.hourly().micros(),
            ],
        )
        .await?;
    }
    Ok(())
}

const SEGMENT_COLS: &str = "id, attempt_key, seq, job_id, attempt_no, team_id, provider, region, zone, instance_type, market, \
     commitment_id, accelerator, gpus, start_at, end_at, per_gpu_hour_micros, list_per_gpu_hour_micros";

fn segment_row(r: &Row) -> StoreResult<(i64, Segment)> {
    Ok((
        r.i64(0)?,
        Segment {
            attempt: r.string(1)?,
            seq: to_u32("ledger_segments", "seq", r.i64(2)?)?,
            job: job_id("ledger_segments", r.i64(3)?)?,
            attempt_no: to_u32("ledger_segments", "attempt_no", r.i64(4)?)?,
            team: TeamId::new(r.str(5)?),
            provider: ProviderId::new(r.str(6)?),
            region: r.opt_str(7)?.map(RegionId::new),
            zone: r.opt_str(8)?.map(ZoneId::new),
            instance_type: r.string(9)?,
            market: parse_market("ledger_segments", r.str(10)?)?,
            commitment: r.opt_str(11)?.map(CommitmentId::new),
            accelerator: r
                .opt_str(12)?
                .map(|a| parse_accel("ledger_segments", a))
                .transpose()?,
            gpus: to_u32("ledger_segments", "gpus", r.i64(13)?)?,
            start: Timestamp(r.i64(14)?),
            end: Timestamp(r.i64(15)?),
            per_gpu_hour: Rate::per_hour(Money::from_micros(r.i64(16)?)),
            list_per_gpu_hour: Rate::per_hour(Money::from_micros(r.i64(17)?)),
        },
    ))
}

/// The start of `t`'s calendar month. Every segment lies inside one month (`hedge_core::ledger::price_span`
/// cuts at month boundaries), so a segment that ends after `t` starts at or after this: the lower bound
/// that turns a window query into a range scan of the `ledger_by_start` index.
fn month_of(t: Timestamp) -> Timestamp {
    let (y, m, ..) = t.to_civil();
    Timestamp::from_ymd(y, m, 1)
}

/// The billed cost of a segment inside `[$1, $2)`, in the common dialect: rate × GPUs × overlap seconds,
/// rounded half up to the micro-dollar exactly as `hedge_core::ledger::cost`.
pub(crate) const OVERLAP_COST_SQL: &str =
    "(per_gpu_hour_micros * gpus * ((CASE WHEN end_at < $2 THEN end_at ELSE $2 END) - \
     (CASE WHEN start_at > $1 THEN start_at ELSE $1 END)) + 1800) / 3600";

async fn insert_token(
    c: &mut dyn Conn,
    principal: &Principal,
    label: &str,
    at: Timestamp,
) -> StoreResult<IssuedToken> {
    let secret = token::new_secret()?;
    let (is_admin, team) = match principal {
        Principal::Admin => (true, None),
        Principal::Team(t) => (false, Some(t.as_str())),
    };
    let id = c
        .insert_id(
            "INSERT INTO api_tokens (token_sha256, is_admin, team_id, label, created_at) VALUES ($1, $2, $3, $4, $5)",
            &vals![token::hash_secret(&secret), is_admin, team, label, at.0],
        )
        .await?
        .ok_or_else(|| corrupt("api_tokens", "id", "insert returned no id".into()))?;
    Ok(IssuedToken {
        id,
        principal: principal.clone(),
        secret,
    })
}

/// The job that the team submitted with this key, and the request digest it came with.
async fn keyed_job(
    c: &mut dyn Conn,
    team: &TeamId,
    key: &str,
) -> StoreResult<Option<(JobId, Option<String>)>> {
    match c
        .query_opt(
            "SELECT id, request_sha256 FROM jobs WHERE team_id = $1 AND idempotency_key = $2",
            &vals![team.as_str(), key],
        )
        .await?
    {
        Some(r) => Ok(Some((job_id("jobs", r.i64(0)?)?, r.opt_string(1)?))),
        None => Ok(None),
    }
}

/// Job heads with their specs: from the cache, and only when some are missing, the specs of the same
/// states in a second query (instead of shipping and copying every spec's text on every read).
async fn with_specs(
    c: &mut dyn Conn,
    specs: &SpecCache,
    heads: Vec<Row>,
    states: &str,
) -> StoreResult<Vec<QueuedJob>> {
    let ids = heads
        .iter()
        .map(|h| h.i64(0).and_then(|id| job_id("jobs", id)))
        .collect::<StoreResult<Vec<JobId>>>()?;
    let mut found = specs.get_many(ids.iter().copied());
    if found.iter().any(Option::is_none) {
        // Some specs are not cached (a restart, another process's submits): read the queue's specs once.
        let mut missing: HashMap<JobId, usize> = found
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_none())
            .map(|(i, _)| (ids[i], i))
            .collect();
        for r in c
            .query(
                &format!("SELECT id, spec FROM jobs WHERE state IN {states}"),
                &[],
            )
            .await?
        {
            let id = job_id("jobs", r.i64(0)?)?;
            if let Some(i) = missing.remove(&id) {
                found[i] = Some(specs.get_or_parse(id, r.str(1)?)?);
            }
        }
    }
    heads
        .iter()
        .zip(found)
        .zip(&ids)
        .map(|((h, s), id)| match s {
            Some(s) => job_head(h, s),
            None => Err(corrupt(
                "jobs",
                "spec",
                format!("job {id} left the queue while it was read"),
            )),
        })
        .collect()
}

// ---- the Store, once ------------------------------------------------------------------------------------------

#[async_trait]
impl<B: Backend> Store for B {
    fn backend(&self) -> &'static str {
        B::NAME
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(logic(|c| {
            Box::pin(async move { c.query("SELECT 1", &[]).await.map(drop) })
        }))
        .await
    }

    async fn put_team(&self, team: &Team) -> StoreResult<()> {
        team.validate()?;
        let quotas = serde_json::to_string(&team.quotas)
            .map_err(|e| invalid("team.quotas", e.to_string()))?;
        let params = vals![
            team.id.as_str(),
            team.monthly_budget.map(Money::micros),
            quotas,
            team.allow_preemption,
            team.on_budget_exceeded.as_str()
        ];
        self.write(logic(move |c| {
            Box::pin(async move {
                c.exec(
                    "INSERT INTO teams (id, monthly_budget_micros, quotas, allow_preemption, on_budget_exceeded)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (id) DO UPDATE SET monthly_budget_micros = excluded.monthly_budget_micros,
                         quotas = excluded.quotas, allow_preemption = excluded.allow_preemption,
                         on_budget_exceeded = excluded.on_budget_exceeded",
                    &params,
                )
                .await
                .map(drop)
            })
        }))
        .await
    }

    async fn team(&self, id: &TeamId) -> StoreResult<Team> {
        if !storable_key(id.as_str()) {
            return Err(StoreError::UnknownTeam { team: id.clone() });
        }
        let id = id.clone();
        self.read(logic(move |c| {
            Box::pin(async move {
                match c
                    .query_opt(
                        &format!("SELECT {TEAM_COLS} FROM teams WHERE id = $1"),
                        &vals![id.as_str()],
                    )
                    .await?
                {
                    Some(r) => team_row(&r),
                    None => Err(StoreError::UnknownTeam { team: id }),
                }
            })
        }))
        .await
    }

    async fn teams(&self) -> StoreResult<Vec<Team>> {
        self.read(logic(|c| {
            Box::pin(async move {
                all(
                    c,
                    &format!("SELECT {TEAM_COLS} FROM teams ORDER BY id"),
                    &[],
                    team_row,
                )
                .await
            })
        }))
        .await
    }

    async fn create_token(
        &self,
        principal: &Principal,
        label: &str,
        at: Timestamp,
    ) -> StoreResult<IssuedToken> {
        validate_text("token.label", label, 256)?;
        if let Principal::Team(t) = principal {
            if !storable_key(t.as_str()) {
                return Err(StoreError::UnknownTeam { team: t.clone() });
            }
        }
        let (principal, label) = (principal.clone(), label.to_owned());
        self.write(logic(move |c| {
            Box::pin(async move {
                if let Principal::Team(t) = &principal {
                    if !team_exists(c, t).await? {
                        return Err(StoreError::UnknownTeam { team: t.clone() });
                    }
                }
                insert_token(c, &principal, &label, at).await
            })
        }))
        .await
    }

    async fn bootstrap_admin_token(&self, at: Timestamp) -> StoreResult<Option<IssuedToken>> {
        self.write(logic(move |c| {
            Box::pin(async move {
                let first = c
                    .exec(
                        "INSERT INTO meta (key, value) VALUES ('admin_bootstrapped', $1) ON CONFLICT (key) DO NOTHING",
                        &vals![at.0.to_string()],
                    )
                    .await?;
                if first == 0 {
                    return Ok(None);
                }
                insert_token(c, &Principal::Admin, "bootstrap admin", at).await.map(Some)
            })
        }))
        .await
    }

    async fn authenticate(&self, presented_secret: &str) -> StoreResult<Option<Principal>> {
        let hash = token::hash_secret(presented_secret);
        self.read(logic(move |c| {
            Box::pin(async move {
                let sql = "SELECT is_admin, team_id FROM api_tokens WHERE token_sha256 = $1 AND revoked_at IS NULL";
                match c.query_opt(sql, &vals![hash]).await? {
                    Some(r) => Ok(Some(principal("api_tokens", r.bool(0)?, r.opt_string(1)?)?)),
                    None => Ok(None),
                }
            })
        }))
        .await
    }

    async fn revoke_token(&self, id: i64, at: Timestamp) -> StoreResult<()> {
        self.write(logic(move |c| {
            Box::pin(async move {
                let n = c
                    .exec(
                        "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
                        &vals![at.0, id],
                    )
                    .await?;
                if n == 0 {
                    return Err(StoreError::UnknownToken { id });
                }
                Ok(())
            })
        }))
        .await
    }

    async fn tokens(&self) -> StoreResult<Vec<TokenInfo>> {
        self.read(logic(|c| {
            Box::pin(async move {
                let sql = "SELECT id, is_admin, team_id, label, created_at, revoked_at FROM api_tokens ORDER BY id";
                all(c, sql, &[], token_row).await
            })
        }))
        .await
    }

    async fn submit_job(&self, job: &NewJob) -> StoreResult<Job> {
        job.validate()?;
        let spec = spec_json(&job.spec)?;
        let job = job.clone();
        let specs = self.specs().clone();
        let job = self.write(logic(move |c| {
            Box::pin(async move {
                if let Some(k) = &job.idempotency {
                    if let Some((id, sha)) = keyed_job(c, &job.team, &k.key).await? {
                        same_request(k, sha)?;
                        return get_job(c, &specs, id).await;
                    }
                }
                // The team check rides in the INSERT (one round trip less): nothing is inserted for an unknown
                // team. ON CONFLICT DO NOTHING: on PostgreSQL it waits for a concurrent submit of the same key
                // to commit (or roll back); the loser inserts nothing and reads the winner's job (READ
                // COMMITTED: a new statement sees it). SQLite's writer lock makes the lookup above race-free.
                let inserted = c
                    .insert_id(
                        "INSERT INTO jobs (team_id, priority, deadline, spec, submitted_at, state, version, current_attempt,
                             updated_at, idempotency_key, request_sha256)
                         SELECT $1, $2, $3, $4, $5, $6, 0, 0, $5, $7, $8 WHERE EXISTS (SELECT 1 FROM teams WHERE id = $1)
                         ON CONFLICT (team_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING",
                        &vals![
                            job.team.as_str(),
                            job.priority,
                            job.deadline.map(|d| d.0),
                            spec,
                            job.submitted_at.0,
                            JobState::INITIAL.as_str(),
                            job.idempotency.as_ref().map(|k| k.key.as_str()),
                            job.idempotency.as_ref().map(SubmitKey::sha),
                        ],
                    )
                    .await?;
                let id = match (inserted, &job.idempotency) {
                    (Some(id), _) => id,
                    (None, Some(k)) => {
                        let Some((id, sha)) = keyed_job(c, &job.team, &k.key).await? else {
                            return Err(StoreError::UnknownTeam { team: job.team.clone() });
                        };
                        same_request(k, sha)?;
                        return get_job(c, &specs, id).await;
                    }
                    (None, None) => return Err(StoreError::UnknownTeam { team: job.team.clone() }),
                };
                c.exec(
                    "INSERT INTO job_events (job_id, seq, from_state, to_state, reason, explanation, at)
                     VALUES ($1, 0, NULL, $2, 'submitted', 'null', $3)",
                    &vals![id, JobState::INITIAL.as_str(), job.submitted_at.0],
                )
                .await?;
                Ok(Job {
                    id: job_id("jobs", id)?,
                    team: job.team,
                    priority: job.priority,
                    deadline: job.deadline,
                    spec: job.spec,
                    submitted_at: job.submitted_at,
                    state: JobState::INITIAL,
                    version: 0,
                    current_attempt: 0,
                    updated_at: job.submitted_at,
                    idempotency_key: job.idempotency.map(|k| k.key),
                })
            })
        }))
        .await?;
        // Cached only once committed: a rolled-back SQLite insert gives its id to the next job.
        self.specs().insert(job.id, Arc::new(job.spec.clone()));
        Ok(job)
    }

    async fn job(&self, id: JobId) -> StoreResult<Job> {
        let specs = self.specs().clone();
        self.read(logic(move |c| {
            Box::pin(async move { get_job(c, &specs, id).await })
        }))
        .await
    }

    async fn list_jobs(&self, filter: &JobFilter) -> StoreResult<JobPage> {
        if filter
            .team
            .as_ref()
            .is_some_and(|t| !storable_key(t.as_str()))
        {
            return Ok(JobPage {
                jobs: vec![],
                next: None,
            });
        }
        let limit = filter.effective_limit();
        let mut sql = format!("SELECT {JOB_COLS} FROM jobs WHERE 1 = 1");
        let mut params = vec![];
        if let Some(t) = &filter.team {
            params.push(Value::from(t.as_str()));
            sql.push_str(&format!(" AND team_id = ${}", params.len()));
        }
        if !filter.states.is_empty() {
            sql.push_str(&format!(" AND state IN {}", states_sql(&filter.states)));
        }
        let (op, dir) = if filter.newest_first {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        if let Some(after) = filter.after {
            params.push(job_id_sql(after)?.into());
            sql.push_str(&format!(" AND id {op} ${}", params.len()));
        }
        params.push(i64::from(limit + 1).into());
        sql.push_str(&format!(" ORDER BY id {dir} LIMIT ${}", params.len()));
        let specs = self.specs().clone();
        self.read(logic(move |c| {
            Box::pin(async move {
                let mut jobs = all(c, &sql, &params, |r| job_row(r, &specs)).await?;
                let next = if jobs.len() > limit as usize {
                    jobs.truncate(limit as usize);
                    jobs.last().map(|j| j.id)
                } else {
                    None
                };
                Ok(JobPage { jobs, next })
            })
        }))
        .await
    }

    async fn jobs_in_states(&self, states: &[JobState]) -> StoreResult<Vec<Job>> {
        Ok(self
            .queued_jobs(states)
            .await?
            .into_iter()
            .map(Job::from)
            .collect())
    }

    async fn queued_jobs(&self, states: &[JobState]) -> StoreResult<Vec<QueuedJob>> {
        if states.is_empty() {
            return Ok(vec![]);
        }
        let states = states_sql(states);
        let specs = self.specs().clone();
        self.read(logic(move |c| {
            Box::pin(async move {
                let heads = c
                    .query(
                        &format!(
                            "SELECT {HEAD_COLS} FROM jobs WHERE state IN {states} ORDER BY id"
                        ),
                        &[],
                    )
                    .await?;
                with_specs(c, &specs, heads, &states).await
            })
        }))
        .await
    }

    async fn schedule_queue(&self, limit: usize) -> StoreResult<Vec<QueuedJob>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = B::schedule_sql(HEAD_COLS);
        let specs = self.specs().clone();
        self.read(logic(move |c| {
            Box::pin(async move {
                let heads = c.query(&sql, &vals![limit]).await?;
                with_specs(c, &specs, heads, &states_sql(&QUEUED_STATES)).await
            })
        }))
        .await
    }

    async fn job_counts(&self) -> StoreResult<Vec<(JobState, u64)>> {
        self.read(logic(|c| {
            Box::pin(async move {
                all(
                    c,
                    "SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state",
                    &[],
                    |r| {
                        Ok((
                            parse_state("jobs", "state", r.str(0)?)?,
                            to_u64("jobs", "count", r.i64(1)?)?,
                        ))
                    },
                )
                .await
            })
        }))
        .await
    }

    async fn transition(&self, t: &Transition) -> StoreResult<Job> {
        t.validate()?;
        let t = t.clone();
        let specs = self.specs().clone();
        let job = self
            .write(logic(move |c| {
                Box::pin(async move { apply_transition(c, &specs, &t).await })
            }))
            .await?;
        if job.state.is_terminal() {
            self.specs().remove(job.id);
        }
        Ok(job)
    }

    async fn begin_launch(
        &self,
        t: &Transition,
        attempt: &NewAttempt,
    ) -> StoreResult<(Job, LaunchAttempt)> {
        t.validate()?;
        attempt.validate()?;
        if t.to != JobState::Launching {
            return Err(invalid(
                "transition.to",
                format!("begin_launch moves to launching, not {}", t.to),
            ));
        }
        let (t, a) = (t.clone(), attempt.clone());
        let (specs, instance) = (self.specs().clone(), self.instance().to_owned());
        self.write(logic(move |c| {
            Box::pin(async move {
                let job = apply_transition(c, &specs, &t).await?;
                let n = job.current_attempt + 1;
                let key = idempotency_key(&instance, job.id, n);
                let row = c
                    .query_opt(
                        &format!(
                            "INSERT INTO launch_attempts (job_id, attempt_no, idempotency_key, provider, offer, region, zone,
                                 market, commitment_id, accelerator, gpus, driver_handle, status, detail, created_at, updated_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, 'recorded', NULL, $12, $12)
                             RETURNING {ATTEMPT_COLS}"
                        ),
                        &vals![
                            job_id_sql(job.id)?,
                            n,
                            key,
                            a.provider.as_str(),
                            &a.offer,
                            a.region.as_ref().map(|r| r.as_str()),
                            a.zone.as_ref().map(|z| z.as_str()),
                            market_str(a.market),
                            a.commitment.as_ref().map(|x| x.as_str()),
                            a.accelerator.as_ref().map(|x| x.as_str()),
                            a.gpus,
                            t.at.0,
                        ],
                    )
                    .await?
                    .ok_or_else(|| corrupt("launch_attempts", "job_id", "insert returned no row".into()))?;
                let attempt = attempt_row(&row)?;
                c.exec("UPDATE jobs SET current_attempt = $1 WHERE id = $2", &vals![n, job_id_sql(job.id)?]).await?;
                Ok((Job { current_attempt: n, ..job }, attempt))
            })
        }))
        .await
    }

    async fn job_events(&self, id: JobId) -> StoreResult<Vec<JobEvent>> {
        self.read(logic(move |c| {
            Box::pin(async move {
                job_exists(c, id).await?;
                let sql = "SELECT job_id, seq, from_state, to_state, reason, explanation, at FROM job_events
                           WHERE job_id = $1 ORDER BY seq";
                all(c, sql, &vals![job_id_sql(id)?], event_row).await
            })
        }))
        .await
    }

    async fn attempts(&self, job: JobId) -> StoreResult<Vec<LaunchAttempt>> {
        self.read(logic(move |c| {
            Box::pin(async move {
                job_exists(c, job).await?;
                let sql = format!("SELECT {ATTEMPT_COLS} FROM launch_attempts WHERE job_id = $1 ORDER BY attempt_no");
                all(c, &sql, &vals![job_id_sql(job)?], attempt_row).await
            })
        }))
        .await
    }

    async fn attempt_by_key(&self, idempotency_key: &str) -> StoreResult<LaunchAttempt> {
        if !storable_key(idempotency_key) {
            return Err(StoreError::UnknownAttempt {
                key: idempotency_key.to_owned(),
            });
        }
        let key = idempotency_key.to_owned();
        self.read(logic(move |c| {
            Box::pin(async move { get_attempt(c, &key).await })
        }))
        .await
    }

    async fn in_flight_attempts(&self) -> StoreResult<Vec<LaunchAttempt>> {
        self.read(logic(|c| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {ATTEMPT_COLS} FROM launch_attempts WHERE status IN {} ORDER BY job_id, attempt_no",
                    in_flight_sql()
                );
                all(c, &sql, &[], attempt_row).await
            })
        }))
        .await
    }

    async fn update_attempt(&self, update: &AttemptUpdate) -> StoreResult<LaunchAttempt> {
        update.validate()?;
        let u = update.clone();
        self.write(logic(move |c| {
            Box::pin(async move {
                let a = get_attempt(c, &u.idempotency_key).await?;
                apply_attempt_update(c, a, &u).await
            })
        }))
        .await
    }

    async fn put_commitments(&self, commitments: &[Commitment]) -> StoreResult<()> {
        validate_commitments(commitments)?;
        let cs = commitments.to_vec();
        self.write(logic(move |c| {
            Box::pin(async move {
                for (index, m) in cs.iter().enumerate() {
                    let n = c
                        .exec(
                            "INSERT INTO commitments (id, provider, accelerator, region, gpus, per_gpu_hour_micros, start_at, end_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                             ON CONFLICT (id) DO NOTHING",
                            &vals![
                                m.id.as_str(),
                                m.provider.as_str(),
                                m.accelerator.as_str(),
                                m.region.as_ref().map(|r| r.as_str()),
                                m.gpus,
                                m.per_gpu_hour.hourly().micros(),
                                m.start.0,
                                m.end.0,
                            ],
                        )
                        .await?;
                    if n == 0 {
                        return Err(StoreError::DuplicateCommitment { id: m.id.clone(), index });
                    }
                }
                Ok(())
            })
        }))
        .await
    }

    async fn commitments(&self) -> StoreResult<Vec<Commitment>> {
        self.read(logic(|c| {
            Box::pin(async move {
                all(
                    c,
                    &format!("SELECT {COMMITMENT_COLS} FROM commitments ORDER BY id"),
                    &[],
                    commitment_row,
                )
                .await
            })
        }))
        .await
    }

    async fn commitment_usage(&self) -> StoreResult<Vec<CommitmentUsage>> {
        let cols = COMMITMENT_COLS
            .split(", ")
            .map(|col| format!("m.{col}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {cols}, CAST(COALESCE((SELECT SUM(a.gpus) FROM launch_attempts a
                 WHERE a.commitment_id = m.id AND a.status IN {}), 0) AS BIGINT)
             FROM commitments m ORDER BY m.id",
            in_flight_sql()
        );
        self.read(logic(move |c| {
            Box::pin(async move {
                all(c, &sql, &[], |r| {
                    Ok(CommitmentUsage {
                        commitment: commitment_row(r)?,
                        gpus_in_use: to_u32("launch_attempts", "gpus", r.i64(8)?)?,
                    })
                })
                .await
            })
        }))
        .await
    }

    async fn delete_commitment(&self, id: &CommitmentId) -> StoreResult<bool> {
        if !storable_key(id.as_str()) {
            return Ok(false);
        }
        let id = id.clone();
        self.write(logic(move |c| {
            Box::pin(async move {
                Ok(
                    c.exec("DELETE FROM commitments WHERE id = $1", &vals![id.as_str()])
                        .await?
                        > 0,
                )
            })
        }))
        .await
    }

    async fn put_provider_health(&self, h: &ProviderHealth) -> StoreResult<()> {
        validate_name("provider_health.provider", h.provider.as_str())?;
        let params = vals![
            h.provider.as_str(),
            h.state.as_str(),
            h.consecutive_failures,
            h.last_heartbeat.map(|t| t.0),
            h.last_error.as_deref().map(clean_detail),
            h.updated_at.0,
        ];
        self.write(logic(move |c| {
            Box::pin(async move {
                c.exec(
                    &format!(
                        "INSERT INTO provider_health ({HEALTH_COLS}) VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (provider) DO UPDATE SET state = excluded.state,
                             consecutive_failures = excluded.consecutive_failures,
                             last_heartbeat = excluded.last_heartbeat,
                             last_error = excluded.last_error, updated_at = excluded.updated_at"
                    ),
                    &params,
                )
                .await
                .map(drop)
            })
        }))
        .await
    }

    async fn provider_health(&self, provider: &ProviderId) -> StoreResult<Option<ProviderHealth>> {
        if !storable_key(provider.as_str()) {
            return Ok(None);
        }
        let p = provider.clone();
        self.read(logic(move |c| {
            Box::pin(async move {
                let sql = format!("SELECT {HEALTH_COLS} FROM provider_health WHERE provider = $1");
                c.query_opt(&sql, &vals![p.as_str()])
                    .await?
                    .map(|r| health_row(&r))
                    .transpose()
            })
        }))
        .await
    }

    async fn all_provider_health(&self) -> StoreResult<Vec<ProviderHealth>> {
        self.read(logic(|c| {
            Box::pin(async move {
                all(
                    c,
                    &format!("SELECT {HEALTH_COLS} FROM provider_health ORDER BY provider"),
                    &[],
                    health_row,
                )
                .await
            })
        }))
        .await
    }

    async fn record_spend(&self, entry: &SpendEntry) -> StoreResult<()> {
        entry.validate()?;
        let e = entry.clone();
        self.write(logic(move |c| {
            Box::pin(async move {
                if !team_exists(c, &e.team).await? {
                    return Err(StoreError::UnknownTeam { team: e.team.clone() });
                }
                if let Some(j) = e.job {
                    job_exists(c, j).await?;
                }
                c.exec(
                    "INSERT INTO spend (job_id, team_id, provider, market, amount_micros, start_at, end_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &vals![
                        e.job.map(job_id_sql).transpose()?,
                        e.team.as_str(),
                        e.provider.as_str(),
                        market_str(e.market),
                        e.amount.micros(),
                        e.start.0,
                        e.end.0,
                    ],
                )
                .await
                .map(drop)
            })
        }))
        .await
    }

    async fn team_spend(
        &self,
        team: &TeamId,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Money> {
        if !storable_key(team.as_str()) {
            return Err(StoreError::UnknownTeam { team: team.clone() });
        }
        let team = team.clone();
        self.read(logic(move |c| {
            Box::pin(async move {
                if !team_exists(c, &team).await? {
                    return Err(StoreError::UnknownTeam { team });
                }
                let r = c
                    .query_opt(
                        "SELECT CAST(COALESCE(SUM(amount_micros), 0) AS BIGINT) FROM spend
                         WHERE team_id = $1 AND start_at >= $2 AND start_at < $3",
                        &vals![team.as_str(), from.0, to.0],
                    )
                    .await?
                    .ok_or_else(|| corrupt("spend", "amount_micros", "no sum".into()))?;
                Ok(Money::from_micros(r.i64(0)?))
            })
        }))
        .await
    }

    async fn spend_entries(
        &self,
        team: Option<&TeamId>,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<SpendEntry>> {
        if team.is_some_and(|t| !storable_key(t.as_str())) {
            return Ok(vec![]);
        }
        let team = team.map(|t| t.as_str().to_owned());
        self.read(logic(move |c| {
            Box::pin(async move {
                all(
                    c,
                    "SELECT job_id, team_id, provider, market, amount_micros, start_at, end_at FROM spend
                     WHERE (CAST($1 AS TEXT) IS NULL OR team_id = $1) AND start_at >= $2 AND start_at < $3 ORDER BY id",
                    &vals![team, from.0, to.0],
                    spend_row,
                )
                .await
            })
        }))
        .await
    }

    async fn record_prices(&self, versions: &[PriceVersion]) -> StoreResult<usize> {
        for (i, v) in versions.iter().enumerate() {
            validate_name("prices.provider", v.provider.as_str())?;
            if v.per_gpu_hour.hourly() < Money::ZERO {
                return Err(invalid(
                    "prices.per_gpu_hour",
                    format!("prices[{i}]: {} is negative", v.per_gpu_hour.hourly()),
                ));
            }
        }
        let vs = versions.to_vec();
        self.write(logic(move |c| {
            Box::pin(async move {
                let mut added = 0;
                for v in &vs {
                    let latest = c
                        .query_opt(
                            "SELECT per_gpu_hour_micros FROM price_versions WHERE provider = $1 AND market = $2 AND from_at <= $3
                             ORDER BY from_at DESC LIMIT 1",
                            &vals![v.provider.as_str(), market_str(v.market), v.from.0],
                        )
                        .await?;
                    if latest.map(|r| r.i64(0)).transpose()? == Some(v.per_gpu_hour.hourly().micros()) {
                        continue;
                    }
                    added += c
                        .exec(
                            "INSERT INTO price_versions (provider, market, from_at, per_gpu_hour_micros) VALUES ($1, $2, $3, $4)
                             ON CONFLICT (provider, market, from_at) DO UPDATE SET per_gpu_hour_micros = excluded.per_gpu_hour_micros",
                            &vals![v.provider.as_str(), market_str(v.market), v.from.0, v.per_gpu_hour.hourly().micros()],
                        )
                        .await? as usize;
                }
                Ok(added)
            })
        }))
        .await
    }

    async fn price_versions(&self) -> StoreResult<Vec<PriceVersion>> {
        self.read(logic(|c| {
            Box::pin(async move {
                all(
                    c,
                    "SELECT provider, market, from_at, per_gpu_hour_micros FROM price_versions ORDER BY provider, market, from_at",
                    &[],
                    price_row,
                )
                .await
            })
        }))
        .await
    }

    async fn ledger_segments(
        &self,
        team: Option<&TeamId>,
        from: Timestamp,
        to: Timestamp,
        after: Option<(Timestamp, i64)>,
        limit: u32,
    ) -> StoreResult<Vec<(i64, Segment)>> {
        if team.is_some_and(|t| !storable_key(t.as_str())) {
            return Ok(vec![]);
        }
        let team = team.map(|t| t.as_str().to_owned());
        self.read(logic(move |c| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {SEGMENT_COLS} FROM ledger_segments
                     WHERE (start_at, id) > ($6, $4) AND start_at < $2 AND end_at > $1
                         AND (CAST($3 AS TEXT) IS NULL OR team_id = $3)
                     ORDER BY start_at, id LIMIT $5"
                );
                // The cursor, or just before the window's first possible segment (the start of `from`'s month).
                let (start, id) = after.map_or((month_of(from).0, i64::MIN), |(s, id)| {
                    (s.0.max(month_of(from).0), id)
                });
                let params = vals![from.0, to.0, team, id, i64::from(limit.max(1)), start];
                all(c, &sql, &params, segment_row).await
            })
        }))
        .await
    }

    async fn booked_spend_by_team(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<(TeamId, Money)>> {
        self.read(logic(move |c| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT team_id, CAST(COALESCE(SUM({OVERLAP_COST_SQL}), 0) AS BIGINT) FROM ledger_segments
                     WHERE start_at >= $3 AND start_at < $2 AND end_at > $1 GROUP BY team_id ORDER BY team_id"
                );
                let params = vals![from.0, to.0, month_of(from).0];
                all(c, &sql, &params, |r| Ok((TeamId::new(r.str(0)?), Money::from_micros(r.i64(1)?)))).await
            })
        }))
        .await
    }
}

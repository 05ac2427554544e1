//! The PostgreSQL backend: a deadpool connection pool over tokio-postgres, prepared-statement caches per
//! connection, READ COMMITTED transactions. The job CAS is one `UPDATE ... WHERE state = $from` whose
//! row lock makes a concurrent second writer re-check the condition and lose.

use crate::cache::SpecCache;
use crate::codec::*;
use crate::error::StoreError;
use crate::model::*;
use crate::store::{Store, StoreResult};
use crate::token;
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use hedge_core::{Commitment, CommitmentId, JobId, JobState, Money, ProviderId, Rate, TeamId, Timestamp};
use tokio_postgres::types::ToSql;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_postgres::{NoTls, Row};

use crate::migrations::{plan, Migration};

const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "init", sql: include_str!("../migrations/postgres/0001_init.sql") },
    Migration {
        version: 2,
        name: "cancelling_orphaned",
        sql: include_str!("../migrations/postgres/0002_cancelling_orphaned.sql"),
    },
    Migration {
        version: 3,
        name: "submit_idempotency",
        sql: include_str!("../migrations/postgres/0003_submit_idempotency.sql"),
    },
];

/// Serialises concurrent migrations of one schema: `pg_advisory_xact_lock(MIGRATION_LOCK,
/// hashtext(current_schema()))` ("hedg" in ASCII), so stores in other schemas never wait on each other.
const MIGRATION_LOCK: i32 = 0x68_65_64_67;

/// How to connect. `schema` confines every table to one schema (created if missing): tests use a fresh
/// schema each, so they can share one server.
#[derive(Clone, Debug, Default)]
pub struct PgOptions {
    pub schema: Option<String>,
    /// Pool size; 0 means the default, 16.
    pub max_connections: usize,
}

/// The PostgreSQL store. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    instance: String,
    specs: Arc<SpecCache>,
}

type P<'a> = &'a (dyn ToSql + Sync);

impl PgStore {
    /// Connects to `postgres://...` and applies the pending migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(url, &PgOptions::default()).await
    }

    pub async fn connect_with(url: &str, opts: &PgOptions) -> StoreResult<Self> {
        let mut cfg: tokio_postgres::Config =
            url.parse().map_err(|_| StoreError::BadUrl { url: redact_url(url) })?;
        if let Some(schema) = &opts.schema {
            if schema.is_empty() || !schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
                return Err(invalid("schema", format!("{schema:?} must be lower-case letters, digits and '_'")));
            }
            let (client, conn) = cfg.connect(NoTls).await?;
            let task = tokio::spawn(conn);
            client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).await?;
            drop(client);
            let _ = task.await;
            cfg.options(format!("-c search_path={schema}"));
        }
        let mgr = Manager::from_config(cfg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let size = if opts.max_connections == 0 { 16 } else { opts.max_connections };
        let pool = Pool::builder(mgr).max_size(size).build().map_err(|e| StoreError::Pool(e.to_string()))?;
        let mut client = pool.get().await.map_err(pool_err)?;
        if let Err(e) = migrate(&mut client).await {
            // Close every connection now rather than whenever the pool's tasks next run.
            drop(client);
            pool.close();
            return Err(e);
        }
        let fresh = token::new_instance_id()?;
        client
            .execute(
                "INSERT INTO meta (key, value) VALUES ('instance_id', $1) ON CONFLICT (key) DO NOTHING",
                &[&fresh],
            )
            .await?;
        let instance: String =
            client.query_one("SELECT value FROM meta WHERE key = 'instance_id'", &[]).await?.try_get(0)?;
        drop(client);
        Ok(PgStore { pool, instance, specs: Arc::default() })
    }

    pub fn instance_id(&self) -> &str {
        &self.instance
    }

    pub async fn schema_version(&self) -> StoreResult<u32> {
        let c = self.client().await?;
        let v: i64 = c.query_one("SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations", &[]).await?.try_get(0)?;
        to_u32("schema_migrations", "version", v)
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_err)
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => StoreError::Postgres(e),
        e => StoreError::Pool(e.to_string()),
    }
}

/// The URL without its password, for error messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].find(':') {
            Some(c) => format!("{}:***{}", &url[..s + 3 + c], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

async fn migrate(client: &mut deadpool_postgres::Object) -> StoreResult<()> {
    let tx = client.transaction().await?;
    match migrate_in(&tx).await {
        Ok(()) => Ok(tx.commit().await?),
        Err(e) => {
            // Roll back explicitly: release the advisory lock before reporting, not when the connection's
            // task next runs.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

async fn migrate_in(tx: &deadpool_postgres::Transaction<'_>) -> StoreResult<()> {
    tx.execute("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await?;
    // Databases made before checksums were recorded: add the column, and trust and record what they have.
    tx.batch_execute("ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS sha256 TEXT NOT NULL DEFAULT ''").await?;
    for m in MIGRATIONS {
        tx.execute(
            "UPDATE schema_migrations SET sha256 = $1 WHERE version = $2 AND sha256 = ''",
            &[&m.sha256(), &i64::from(m.version)],
        )
        .await?;
    }
    let applied = rows(tx, "SELECT version, sha256 FROM schema_migrations ORDER BY version", &[], |r| {
        Ok((to_u32("schema_migrations", "version", r.try_get(0)?)?, r.try_get::<_, String>(1)?))
    })
    .await?;
    for m in plan(&applied, MIGRATIONS)? {
        let wrap = |e: tokio_postgres::Error| StoreError::Migration {
            version: m.version,
            name: m.name,
            source: Box::new(StoreError::Postgres(e)),
        };
        tx.batch_execute(m.sql).await.map_err(wrap)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, sha256, applied_at)
             VALUES ($1, $2, $3, EXTRACT(EPOCH FROM now())::BIGINT)",
            &[&i64::from(m.version), &m.name, &m.sha256()],
        )
        .await
        .map_err(wrap)?;
    }
    Ok(())
}

// ---- row decoding ----------------------------------------------------------------------------------------

const JOB_COLS: &str =
    "id, team_id, priority, deadline, spec, submitted_at, state, version, current_attempt, updated_at, idempotency_key";

fn job_row(r: &Row, specs: &SpecCache) -> StoreResult<Job> {
    let id = job_id("jobs", r.try_get(0)?)?;
    let spec = specs.get_or_parse(id, r.try_get(4)?)?;
    head_row(r, 5).map(|h| h.with_spec(spec)).map(Job::from)
}

/// A job row without its spec: `id, team_id, priority, deadline` then, from `rest`, `submitted_at, state,
/// version, current_attempt, updated_at`.
fn head_row(r: &Row, rest: usize) -> StoreResult<JobHead> {
    let priority: i64 = r.try_get(2)?;
    Ok(JobHead {
        id: job_id("jobs", r.try_get(0)?)?,
        team: TeamId::new(r.try_get::<_, String>(1)?),
        priority: i32::try_from(priority).map_err(|_| corrupt("jobs", "priority", format!("{priority}")))?,
        deadline: r.try_get::<_, Option<i64>>(3)?.map(Timestamp),
        submitted_at: Timestamp(r.try_get(rest)?),
        state: parse_state("jobs", "state", r.try_get(rest + 1)?)?,
        version: to_u64("jobs", "version", r.try_get(rest + 2)?)?,
        current_attempt: to_u32("jobs", "current_attempt", r.try_get(rest + 3)?)?,
        updated_at: Timestamp(r.try_get(rest + 4)?),
        idempotency_key: r.try_get(rest + 5)?,
    })
}

struct JobHead {
    id: JobId,
    team: TeamId,
    priority: i32,
    deadline: Option<Timestamp>,
    submitted_at: Timestamp,
    state: JobState,
    version: u64,
    current_attempt: u32,
    updated_at: Timestamp,
    idempotency_key: Option<String>,
}

impl JobHead {
    fn with_spec(self, spec: Arc<hedge_core::TaskSpec>) -> QueuedJob {
        QueuedJob {
            id: self.id,
            team: self.team,
            priority: self.priority,
            deadline: self.deadline,
            spec,
            submitted_at: self.submitted_at,
            state: self.state,
            version: self.version,
            current_attempt: self.current_attempt,
            updated_at: self.updated_at,
            idempotency_key: self.idempotency_key,
        }
    }
}

const ATTEMPT_COLS: &str = "job_id, attempt_no, idempotency_key, provider, offer, region, zone, market, commitment_id, \
     accelerator, gpus, driver_handle, status, detail, created_at, updated_at";

fn attempt_row(r: &Row) -> StoreResult<LaunchAttempt> {
    Ok(LaunchAttempt {
        job: job_id("launch_attempts", r.try_get(0)?)?,
        attempt_no: to_u32("launch_attempts", "attempt_no", r.try_get(1)?)?,
        idempotency_key: r.try_get(2)?,
        provider: ProviderId::new(r.try_get::<_, String>(3)?),
        offer: r.try_get(4)?,
        region: r.try_get::<_, Option<String>>(5)?.map(hedge_core::RegionId::new),
        zone: r.try_get::<_, Option<String>>(6)?.map(hedge_core::ZoneId::new),
        market: parse_market("launch_attempts", r.try_get(7)?)?,
        commitment: r.try_get::<_, Option<String>>(8)?.map(CommitmentId::new),
        accelerator: r.try_get::<_, Option<&str>>(9)?.map(|a| parse_accel("launch_attempts", a)).transpose()?,
        gpus: to_u32("launch_attempts", "gpus", r.try_get(10)?)?,
        driver_handle: r.try_get(11)?,
        status: parse_attempt_status(r.try_get(12)?)?,
        detail: r.try_get(13)?,
        created_at: Timestamp(r.try_get(14)?),
        updated_at: Timestamp(r.try_get(15)?),
    })
}

const COMMITMENT_COLS: &str = "id, provider, accelerator, region, gpus, per_gpu_hour_micros, start_at, end_at";

fn commitment_row(r: &Row) -> StoreResult<Commitment> {
    Ok(Commitment {
        id: CommitmentId::new(r.try_get::<_, String>(0)?),
        provider: ProviderId::new(r.try_get::<_, String>(1)?),
        accelerator: parse_accel("commitments", r.try_get(2)?)?,
        region: r.try_get::<_, Option<String>>(3)?.map(hedge_core::RegionId::new),
        gpus: to_u32("commitments", "gpus", r.try_get(4)?)?,
        per_gpu_hour: Rate::per_hour(Money::from_micros(r.try_get(5)?)),
        start: Timestamp(r.try_get(6)?),
        end: Timestamp(r.try_get(7)?),
    })
}

fn team_row(r: &Row) -> StoreResult<Team> {
    Ok(Team {
        id: TeamId::new(r.try_get::<_, String>(0)?),
        monthly_budget: r.try_get::<_, Option<i64>>(1)?.map(Money::from_micros),
        quotas: serde_json::from_str(r.try_get(2)?).map_err(|e| corrupt("teams", "quotas", e.to_string()))?,
        allow_preemption: r.try_get(3)?,
    })
}

fn health_row(r: &Row) -> StoreResult<ProviderHealth> {
    Ok(ProviderHealth {
        provider: ProviderId::new(r.try_get::<_, String>(0)?),
        state: parse_health(r.try_get(1)?)?,
        consecutive_failures: to_u32("provider_health", "consecutive_failures", r.try_get(2)?)?,
        last_heartbeat: r.try_get::<_, Option<i64>>(3)?.map(Timestamp),
        last_error: r.try_get(4)?,
        updated_at: Timestamp(r.try_get(5)?),
    })
}

fn spend_row(r: &Row) -> StoreResult<SpendEntry> {
    Ok(SpendEntry {
        job: r.try_get::<_, Option<i64>>(0)?.map(|j| job_id("spend", j)).transpose()?,
        team: TeamId::new(r.try_get::<_, String>(1)?),
        provider: ProviderId::new(r.try_get::<_, String>(2)?),
        market: parse_market("spend", r.try_get(3)?)?,
        amount: Money::from_micros(r.try_get(4)?),
        start: Timestamp(r.try_get(5)?),
        end: Timestamp(r.try_get(6)?),
    })
}

async fn rows<C: GenericClient, T>(
    c: &C,
    sql: &str,
    params: &[P<'_>],
    f: impl Fn(&Row) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let st = c.prepare_cached(sql).await?;
    c.query(&st, params).await?.iter().map(f).collect()
}

async fn team_exists<C: GenericClient>(c: &C, team: &TeamId) -> StoreResult<bool> {
    let st = c.prepare_cached("SELECT 1 FROM teams WHERE id = $1").await?;
    Ok(c.query_opt(&st, &[&team.as_str()]).await?.is_some())
}

async fn get_job<C: GenericClient>(c: &C, specs: &SpecCache, id: JobId) -> StoreResult<Job> {
    let st = c.prepare_cached(&format!("SELECT {JOB_COLS} FROM jobs WHERE id = $1")).await?;
    match c.query_opt(&st, &[&job_id_sql(id)?]).await? {
        Some(r) => job_row(&r, specs),
        None => Err(StoreError::UnknownJob { job: id }),
    }
}

async fn job_exists<C: GenericClient>(c: &C, id: JobId) -> StoreResult<()> {
    let st = c.prepare_cached("SELECT 1 FROM jobs WHERE id = $1").await?;
    match c.query_opt(&st, &[&job_id_sql(id)?]).await? {
        Some(_) => Ok(()),
        None => Err(StoreError::UnknownJob { job: id }),
    }
}

async fn get_attempt<C: GenericClient>(c: &C, key: &str) -> StoreResult<LaunchAttempt> {
    let st = c.prepare_cached(&format!("SELECT {ATTEMPT_COLS} FROM launch_attempts WHERE idempotency_key = $1")).await?;
    match c.query_opt(&st, &[&key]).await? {
        Some(r) => attempt_row(&r),
        None => Err(StoreError::UnknownAttempt { key: key.to_owned() }),
    }
}

async fn apply_transition<C: GenericClient>(c: &C, specs: &SpecCache, t: &Transition) -> StoreResult<Job> {
    t.validate()?;
    let id = job_id_sql(t.job)?;
    let st = c
        .prepare_cached(&format!(
            "UPDATE jobs SET state = $1, version = version + 1, updated_at = $2
             WHERE id = $3 AND state = $4 AND ($5::BIGINT IS NULL OR version = $5)
             RETURNING {JOB_COLS}"
        ))
        .await?;
    let expected = t.expected_version.map(|v| v as i64);
    let job = match c.query_opt(&st, &[&t.to.as_str(), &t.at.0, &id, &t.from.as_str(), &expected]).await? {
        Some(r) => job_row(&r, specs)?,
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
    let st = c
        .prepare_cached(
            "INSERT INTO job_events (job_id, seq, from_state, to_state, reason, explanation, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?;
    c.execute(
        &st,
        &[&id, &(job.version as i64), &t.from.as_str(), &t.to.as_str(), &t.reason, &explanation_json(&t.explanation), &t.at.0],
    )
    .await?;
    if let Some(u) = &t.attempt_update {
        let a = get_attempt(c, &u.idempotency_key).await?;
        if a.job != t.job {
            return Err(invalid(
                "transition.attempt_update",
                format!("attempt {:?} belongs to job {}, not {}", u.idempotency_key, a.job, t.job),
            ));
        }
        apply_attempt_update(c, a, u).await?;
    }
    Ok(job)
}

async fn apply_attempt_update<C: GenericClient>(c: &C, a: LaunchAttempt, u: &AttemptUpdate) -> StoreResult<LaunchAttempt> {
    if !a.status.can_become(u.status) {
        return Err(StoreError::IllegalAttemptUpdate { key: a.idempotency_key, from: a.status, to: u.status });
    }
    // `status = $6` makes the update a compare-and-set too: a concurrent writer that moved the attempt
    // first makes this one update nothing, and it reports the status it lost to.
    let st = c
        .prepare_cached(&format!(
            "UPDATE launch_attempts SET status = $1, driver_handle = COALESCE($2, driver_handle),
                 detail = COALESCE($3, detail), updated_at = $4
             WHERE idempotency_key = $5 AND status = $6
             RETURNING {ATTEMPT_COLS}"
        ))
        .await?;
    match c
        .query_opt(&st, &[&u.status.as_str(), &u.driver_handle, &u.stored_detail(), &u.at.0, &u.idempotency_key, &a.status.as_str()])
        .await?
    {
        Some(r) => attempt_row(&r),
        None => {
            let now = get_attempt(c, &u.idempotency_key).await?;
            Err(StoreError::IllegalAttemptUpdate { key: now.idempotency_key, from: now.status, to: u.status })
        }
    }
}

async fn insert_token<C: GenericClient>(
    c: &C,
    principal: &Principal,
    label: &str,
    at: Timestamp,
) -> StoreResult<IssuedToken> {
    let secret = token::new_secret()?;
    let (is_admin, team) = match principal {
        Principal::Admin => (true, None),
        Principal::Team(t) => (false, Some(t.as_str())),
    };
    let st = c
        .prepare_cached(
            "INSERT INTO api_tokens (token_sha256, is_admin, team_id, label, created_at) VALUES ($1, $2, $3, $4, $5)
             RETURNING id",
        )
        .await?;
    let id: i64 = c.query_one(&st, &[&token::hash_secret(&secret), &is_admin, &team, &label, &at.0]).await?.try_get(0)?;
    Ok(IssuedToken { id, principal: principal.clone(), secret })
}

fn state_names(states: &[JobState]) -> Vec<&'static str> {
    states.iter().map(|s| s.as_str()).collect()
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.client().await?.query_one("SELECT 1", &[]).await?;
        Ok(())
    }

    async fn put_team(&self, team: &Team) -> StoreResult<()> {
        team.validate()?;
        let quotas = serde_json::to_string(&team.quotas).map_err(|e| invalid("team.quotas", e.to_string()))?;
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "INSERT INTO teams (id, monthly_budget_micros, quotas, allow_preemption) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET monthly_budget_micros = excluded.monthly_budget_micros,
                     quotas = excluded.quotas, allow_preemption = excluded.allow_preemption",
            )
            .await?;
        c.execute(&st, &[&team.id.as_str(), &team.monthly_budget.map(Money::micros), &quotas, &team.allow_preemption])
            .await?;
        Ok(())
    }

    async fn team(&self, id: &TeamId) -> StoreResult<Team> {
        if !storable_key(id.as_str()) {
            return Err(StoreError::UnknownTeam { team: id.clone() });
        }
        let c = self.client().await?;
        let mut v = rows(
            &c,
            "SELECT id, monthly_budget_micros, quotas, allow_preemption FROM teams WHERE id = $1",
            &[&id.as_str()],
            team_row,
        )
        .await?;
        v.pop().ok_or_else(|| StoreError::UnknownTeam { team: id.clone() })
    }

    async fn teams(&self) -> StoreResult<Vec<Team>> {
        let c = self.client().await?;
        rows(&c, "SELECT id, monthly_budget_micros, quotas, allow_preemption FROM teams ORDER BY id", &[], team_row).await
    }

    async fn create_token(&self, principal: &Principal, label: &str, at: Timestamp) -> StoreResult<IssuedToken> {
        validate_text("token.label", label, 256)?;
        if let Principal::Team(t) = principal {
            if !storable_key(t.as_str()) {
                return Err(StoreError::UnknownTeam { team: t.clone() });
            }
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        if let Principal::Team(t) = principal {
            if !team_exists(&tx, t).await? {
                return Err(StoreError::UnknownTeam { team: t.clone() });
            }
        }
        let tok = insert_token(&tx, principal, label, at).await?;
        tx.commit().await?;
        Ok(tok)
    }

    async fn bootstrap_admin_token(&self, at: Timestamp) -> StoreResult<Option<IssuedToken>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let first = tx
            .execute(
                "INSERT INTO meta (key, value) VALUES ('admin_bootstrapped', $1) ON CONFLICT (key) DO NOTHING",
                &[&at.0.to_string()],
            )
            .await?;
        if first == 0 {
            return Ok(None);
        }
        let tok = insert_token(&tx, &Principal::Admin, "bootstrap admin", at).await?;
        tx.commit().await?;
        Ok(Some(tok))
    }

    async fn authenticate(&self, presented_secret: &str) -> StoreResult<Option<Principal>> {
        let hash = token::hash_secret(presented_secret);
        let c = self.client().await?;
        let st = c
            .prepare_cached("SELECT is_admin, team_id FROM api_tokens WHERE token_sha256 = $1 AND revoked_at IS NULL")
            .await?;
        match c.query_opt(&st, &[&hash]).await? {
            Some(r) => Ok(Some(principal("api_tokens", r.try_get(0)?, r.try_get(1)?)?)),
            None => Ok(None),
        }
    }

    async fn revoke_token(&self, id: i64, at: Timestamp) -> StoreResult<()> {
        let c = self.client().await?;
        let n = c
            .execute("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2", &[&at.0, &id])
            .await?;
        if n == 0 {
            return Err(StoreError::UnknownToken { id });
        }
        Ok(())
    }

    async fn tokens(&self) -> StoreResult<Vec<TokenInfo>> {
        let c = self.client().await?;
        rows(&c, "SELECT id, is_admin, team_id, label, created_at, revoked_at FROM api_tokens ORDER BY id", &[], |r| {
            Ok(TokenInfo {
                id: r.try_get(0)?,
                principal: principal("api_tokens", r.try_get(1)?, r.try_get(2)?)?,
                label: r.try_get(3)?,
                created_at: Timestamp(r.try_get(4)?),
                revoked_at: r.try_get::<_, Option<i64>>(5)?.map(Timestamp),
            })
        })
        .await
    }

    async fn submit_job(&self, job: &NewJob) -> StoreResult<Job> {
        job.validate()?;
        let spec = spec_json(&job.spec)?;
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        if !team_exists(&tx, &job.team).await? {
            return Err(StoreError::UnknownTeam { team: job.team.clone() });
        }
        let first_with_key = |k: &SubmitKey| {
            let (team, key) = (job.team.as_str().to_owned(), k.key.clone());
            let tx = &tx;
            async move {
                let st = tx.prepare_cached("SELECT id, request_sha256 FROM jobs WHERE team_id = $1 AND idempotency_key = $2").await?;
                match tx.query_opt(&st, &[&team, &key]).await? {
                    Some(r) => Ok::<_, StoreError>(Some((job_id("jobs", r.try_get(0)?)?, r.try_get::<_, Option<String>>(1)?))),
                    None => Ok(None),
                }
            }
        };
        if let Some(k) = &job.idempotency {
            if let Some((id, sha)) = first_with_key(k).await? {
                same_request(k, sha)?;
                return get_job(&tx, &self.specs, id).await;
            }
        }
        // ON CONFLICT DO NOTHING waits for a concurrent submit of the same key to commit (or roll back): the
        // loser inserts nothing and reads the winner's job below (READ COMMITTED: a new statement sees it).
        let st = tx
            .prepare_cached(
                "WITH j AS (
                     INSERT INTO jobs (team_id, priority, deadline, spec, submitted_at, state, version, current_attempt,
                         updated_at, idempotency_key, request_sha256)
                     VALUES ($1, $2, $3, $4, $5, $6, 0, 0, $5, $7, $8)
                     ON CONFLICT (team_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
                     RETURNING id)
                 INSERT INTO job_events (job_id, seq, from_state, to_state, reason, explanation, at)
                 SELECT id, 0, NULL, $6, 'submitted', 'null', $5 FROM j
                 RETURNING job_id",
            )
            .await?;
        let inserted = tx
            .query_opt(
                &st,
                &[
                    &job.team.as_str(),
                    &i64::from(job.priority),
                    &job.deadline.map(|d| d.0),
                    &spec,
                    &job.submitted_at.0,
                    &JobState::INITIAL.as_str(),
                    &job.idempotency.as_ref().map(|k| k.key.as_str()),
                    &job.idempotency.as_ref().map(SubmitKey::sha),
                ],
            )
            .await?;
        let id: i64 = match (inserted, &job.idempotency) {
            (Some(r), _) => r.try_get(0)?,
            (None, Some(k)) => {
                let (id, sha) = first_with_key(k)
                    .await?
                    .ok_or_else(|| corrupt("jobs", "idempotency_key", "conflicting submit vanished".into()))?;
                same_request(k, sha)?;
                return get_job(&tx, &self.specs, id).await;
            }
            (None, None) => return Err(corrupt("jobs", "id", "insert returned no id".into())),
        };
        tx.commit().await?;
        let id = job_id("jobs", id)?;
        self.specs.insert(id, Arc::new(job.spec.clone()));
        Ok(Job {
            id,
            team: job.team.clone(),
            priority: job.priority,
            deadline: job.deadline,
            spec: job.spec.clone(),
            submitted_at: job.submitted_at,
            state: JobState::INITIAL,
            version: 0,
            current_attempt: 0,
            updated_at: job.submitted_at,
            idempotency_key: job.idempotency.as_ref().map(|k| k.key.clone()),
        })
    }

    async fn job(&self, id: JobId) -> StoreResult<Job> {
        get_job(&self.client().await?, &self.specs, id).await
    }

    async fn list_jobs(&self, filter: &JobFilter) -> StoreResult<JobPage> {
        if filter.team.as_ref().is_some_and(|t| !storable_key(t.as_str())) {
            return Ok(JobPage { jobs: vec![], next: None });
        }
        let limit = filter.effective_limit();
        let team = filter.team.as_ref().map(|t| t.as_str());
        let states = state_names(&filter.states);
        let after = filter.after.map(job_id_sql).transpose()?;
        let (op, dir) = if filter.newest_first { ("<", "DESC") } else { (">", "ASC") };
        let sql = format!(
            "SELECT {JOB_COLS} FROM jobs
             WHERE ($1::TEXT IS NULL OR team_id = $1)
               AND (cardinality($2::TEXT[]) = 0 OR state = ANY($2))
               AND ($3::BIGINT IS NULL OR id {op} $3)
             ORDER BY id {dir} LIMIT $4"
        );
        let c = self.client().await?;
        let mut jobs = rows(&c, &sql, &[&team, &states, &after, &i64::from(limit + 1)], |r| {
            job_row(r, &self.specs)
        })
        .await?;
        let next = if jobs.len() > limit as usize {
            jobs.truncate(limit as usize);
            jobs.last().map(|j| j.id)
        } else {
            None
        };
        Ok(JobPage { jobs, next })
    }

    async fn jobs_in_states(&self, states: &[JobState]) -> StoreResult<Vec<Job>> {
        if states.is_empty() {
            return Ok(vec![]);
        }
        let c = self.client().await?;
        rows(&c, &format!("SELECT {JOB_COLS} FROM jobs WHERE state = ANY($1) ORDER BY id"), &[&state_names(states)], |r| {
            job_row(r, &self.specs)
        })
        .await
    }

    async fn queued_jobs(&self, states: &[JobState]) -> StoreResult<Vec<QueuedJob>> {
        if states.is_empty() {
            return Ok(vec![]);
        }
        // Two round trips instead of shipping every spec's text: the heads, then the specs not cached yet.
        let c = self.client().await?;
        let heads = rows(
            &c,
            "SELECT id, team_id, priority, deadline, submitted_at, state, version, current_attempt, updated_at,
                 idempotency_key
             FROM jobs WHERE state = ANY($1) ORDER BY id",
            &[&state_names(states)],
            |r| head_row(r, 4),
        )
        .await?;
        let mut found: HashMap<JobId, Arc<hedge_core::TaskSpec>> = HashMap::new();
        let mut missing = vec![];
        for h in &heads {
            match self.specs.get(h.id) {
                Some(s) => {
                    found.insert(h.id, s);
                }
                None => missing.push(job_id_sql(h.id)?),
            }
        }
        if !missing.is_empty() {
            let fetched = rows(&c, "SELECT id, spec FROM jobs WHERE id = ANY($1)", &[&missing], |r| {
                let id = job_id("jobs", r.try_get(0)?)?;
                Ok((id, self.specs.get_or_parse(id, r.try_get(1)?)?))
            })
            .await?;
            found.extend(fetched);
        }
        heads
            .into_iter()
            .map(|h| match found.get(&h.id) {
                Some(s) => Ok(h.with_spec(s.clone())),
                None => Err(corrupt("jobs", "spec", format!("job {} vanished while the queue was read", h.id))),
            })
            .collect()
    }

    async fn job_counts(&self) -> StoreResult<Vec<(JobState, u64)>> {
        let c = self.client().await?;
        rows(&c, "SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state", &[], |r| {
            Ok((parse_state("jobs", "state", r.try_get(0)?)?, to_u64("jobs", "count", r.try_get(1)?)?))
        })
        .await
    }

    async fn transition(&self, t: &Transition) -> StoreResult<Job> {
        t.validate()?;
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let job = apply_transition(&tx, &self.specs, t).await?;
        tx.commit().await?;
        if job.state.is_terminal() {
            self.specs.remove(job.id);
        }
        Ok(job)
    }

    async fn begin_launch(&self, t: &Transition, a: &NewAttempt) -> StoreResult<(Job, LaunchAttempt)> {
        t.validate()?;
        a.validate()?;
        if t.to != JobState::Launching {
            return Err(invalid("transition.to", format!("begin_launch moves to launching, not {}", t.to)));
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let job = apply_transition(&tx, &self.specs, t).await?;
        let n = job.current_attempt + 1;
        let key = idempotency_key(&self.instance, job.id, n);
        let st = tx
            .prepare_cached(&format!(
                "INSERT INTO launch_attempts (job_id, attempt_no, idempotency_key, provider, offer, region, zone, market,
                     commitment_id, accelerator, gpus, driver_handle, status, detail, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, 'recorded', NULL, $12, $12)
                 RETURNING {ATTEMPT_COLS}"
            ))
            .await?;
        let attempt = attempt_row(
            &tx.query_one(
                &st,
                &[
                    &job_id_sql(job.id)?,
                    &i64::from(n),
                    &key,
                    &a.provider.as_str(),
                    &a.offer,
                    &a.region.as_ref().map(|r| r.as_str()),
                    &a.zone.as_ref().map(|z| z.as_str()),
                    &market_str(a.market),
                    &a.commitment.as_ref().map(|x| x.as_str()),
                    &a.accelerator.as_ref().map(|x| x.as_str()),
                    &i64::from(a.gpus),
                    &t.at.0,
                ],
            )
            .await?,
        )?;
        let st = tx.prepare_cached("UPDATE jobs SET current_attempt = $1 WHERE id = $2").await?;
        tx.execute(&st, &[&i64::from(n), &job_id_sql(job.id)?]).await?;
        tx.commit().await?;
        Ok((Job { current_attempt: n, ..job }, attempt))
    }

    async fn job_events(&self, id: JobId) -> StoreResult<Vec<JobEvent>> {
        let c = self.client().await?;
        job_exists(&c, id).await?;
        rows(
            &c,
            "SELECT job_id, seq, from_state, to_state, reason, explanation, at FROM job_events WHERE job_id = $1 ORDER BY seq",
            &[&job_id_sql(id)?],
            |r| {
                Ok(JobEvent {
                    job: job_id("job_events", r.try_get(0)?)?,
                    seq: to_u64("job_events", "seq", r.try_get(1)?)?,
                    from: r.try_get::<_, Option<&str>>(2)?.map(|s| parse_state("job_events", "from_state", s)).transpose()?,
                    to: parse_state("job_events", "to_state", r.try_get(3)?)?,
                    reason: r.try_get(4)?,
                    explanation: parse_explanation(r.try_get(5)?)?,
                    at: Timestamp(r.try_get(6)?),
                })
            },
        )
        .await
    }

    async fn attempts(&self, job: JobId) -> StoreResult<Vec<LaunchAttempt>> {
        let c = self.client().await?;
        job_exists(&c, job).await?;
        rows(
            &c,
            &format!("SELECT {ATTEMPT_COLS} FROM launch_attempts WHERE job_id = $1 ORDER BY attempt_no"),
            &[&job_id_sql(job)?],
            attempt_row,
        )
        .await
    }

    async fn attempt_by_key(&self, idempotency_key: &str) -> StoreResult<LaunchAttempt> {
        if !storable_key(idempotency_key) {
            return Err(StoreError::UnknownAttempt { key: idempotency_key.to_owned() });
        }
        get_attempt(&self.client().await?, idempotency_key).await
    }

    async fn in_flight_attempts(&self) -> StoreResult<Vec<LaunchAttempt>> {
        let c = self.client().await?;
        rows(
            &c,
            &format!(
                "SELECT {ATTEMPT_COLS} FROM launch_attempts WHERE status IN {} ORDER BY job_id, attempt_no",
                in_flight_sql()
            ),
            &[],
            attempt_row,
        )
        .await
    }

    async fn update_attempt(&self, update: &AttemptUpdate) -> StoreResult<LaunchAttempt> {
        update.validate()?;
        let c = self.client().await?;
        let a = get_attempt(&c, &update.idempotency_key).await?;
        apply_attempt_update(&c, a, update).await
    }

    async fn put_commitments(&self, commitments: &[Commitment]) -> StoreResult<()> {
        validate_commitments(commitments)?;
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let st = tx
            .prepare_cached(
                "INSERT INTO commitments (id, provider, accelerator, region, gpus, per_gpu_hour_micros, start_at, end_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (id) DO NOTHING",
            )
            .await?;
        for (index, m) in commitments.iter().enumerate() {
            let n = tx.execute(
                &st,
                &[
                    &m.id.as_str(),
                    &m.provider.as_str(),
                    &m.accelerator.as_str(),
                    &m.region.as_ref().map(|r| r.as_str()),
                    &i64::from(m.gpus),
                    &m.per_gpu_hour.hourly().micros(),
                    &m.start.0,
                    &m.end.0,
                ],
            )
            .await?;
            if n == 0 {
                return Err(StoreError::DuplicateCommitment { id: m.id.clone(), index });
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn commitments(&self) -> StoreResult<Vec<Commitment>> {
        let c = self.client().await?;
        rows(&c, &format!("SELECT {COMMITMENT_COLS} FROM commitments ORDER BY id"), &[], commitment_row).await
    }

    async fn commitment_usage(&self) -> StoreResult<Vec<CommitmentUsage>> {
        let cols = COMMITMENT_COLS.split(", ").map(|col| format!("m.{col}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {cols}, COALESCE((SELECT SUM(a.gpus) FROM launch_attempts a
                 WHERE a.commitment_id = m.id AND a.status IN {}), 0)::BIGINT
             FROM commitments m ORDER BY m.id",
            in_flight_sql()
        );
        let c = self.client().await?;
        rows(&c, &sql, &[], |r| {
            Ok(CommitmentUsage {
                commitment: commitment_row(r)?,
                gpus_in_use: to_u32("launch_attempts", "gpus", r.try_get(8)?)?,
            })
        })
        .await
    }

    async fn delete_commitment(&self, id: &CommitmentId) -> StoreResult<bool> {
        if !storable_key(id.as_str()) {
            return Ok(false);
        }
        let c = self.client().await?;
        Ok(c.execute("DELETE FROM commitments WHERE id = $1", &[&id.as_str()]).await? > 0)
    }

    async fn put_provider_health(&self, h: &ProviderHealth) -> StoreResult<()> {
        validate_name("provider_health.provider", h.provider.as_str())?;
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "INSERT INTO provider_health (provider, state, consecutive_failures, last_heartbeat, last_error, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (provider) DO UPDATE SET state = excluded.state,
                     consecutive_failures = excluded.consecutive_failures, last_heartbeat = excluded.last_heartbeat,
                     last_error = excluded.last_error, updated_at = excluded.updated_at",
            )
            .await?;
        c.execute(
            &st,
            &[
                &h.provider.as_str(),
                &h.state.as_str(),
                &i64::from(h.consecutive_failures),
                &h.last_heartbeat.map(|t| t.0),
                &h.last_error.as_deref().map(clean_detail),
                &h.updated_at.0,
            ],
        )
        .await?;
        Ok(())
    }

    async fn provider_health(&self, provider: &ProviderId) -> StoreResult<Option<ProviderHealth>> {
        if !storable_key(provider.as_str()) {
            return Ok(None);
        }
        let c = self.client().await?;
        Ok(rows(
            &c,
            "SELECT provider, state, consecutive_failures, last_heartbeat, last_error, updated_at
             FROM provider_health WHERE provider = $1",
            &[&provider.as_str()],
            health_row,
        )
        .await?
        .pop())
    }

    async fn all_provider_health(&self) -> StoreResult<Vec<ProviderHealth>> {
        let c = self.client().await?;
        rows(
            &c,
            "SELECT provider, state, consecutive_failures, last_heartbeat, last_error, updated_at
             FROM provider_health ORDER BY provider",
            &[],
            health_row,
        )
        .await
    }

    async fn record_spend(&self, e: &SpendEntry) -> StoreResult<()> {
        e.validate()?;
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        if !team_exists(&tx, &e.team).await? {
            return Err(StoreError::UnknownTeam { team: e.team.clone() });
        }
        if let Some(j) = e.job {
            job_exists(&tx, j).await?;
        }
        let st = tx
            .prepare_cached(
                "INSERT INTO spend (job_id, team_id, provider, market, amount_micros, start_at, end_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .await?;
        tx.execute(
            &st,
            &[
                &e.job.map(job_id_sql).transpose()?,
                &e.team.as_str(),
                &e.provider.as_str(),
                &market_str(e.market),
                &e.amount.micros(),
                &e.start.0,
                &e.end.0,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn team_spend(&self, team: &TeamId, from: Timestamp, to: Timestamp) -> StoreResult<Money> {
        if !storable_key(team.as_str()) {
            return Err(StoreError::UnknownTeam { team: team.clone() });
        }
        let c = self.client().await?;
        if !team_exists(&c, team).await? {
            return Err(StoreError::UnknownTeam { team: team.clone() });
        }
        let st = c
            .prepare_cached(
                "SELECT COALESCE(SUM(amount_micros), 0)::BIGINT FROM spend
                 WHERE team_id = $1 AND start_at >= $2 AND start_at < $3",
            )
            .await?;
        let v: i64 = c.query_one(&st, &[&team.as_str(), &from.0, &to.0]).await?.try_get(0)?;
        Ok(Money::from_micros(v))
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
        let c = self.client().await?;
        rows(
            &c,
            "SELECT job_id, team_id, provider, market, amount_micros, start_at, end_at FROM spend
             WHERE ($1::TEXT IS NULL OR team_id = $1) AND start_at >= $2 AND start_at < $3 ORDER BY id",
            &[&team.map(|t| t.as_str()), &from.0, &to.0],
            spend_row,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_numbered_up_to_the_schema_version() {
        let versions: Vec<u32> = super::MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(versions, (1..=crate::SCHEMA_VERSION).collect::<Vec<_>>());
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(super::redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}

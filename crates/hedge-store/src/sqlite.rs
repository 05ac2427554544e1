//! The SQLite backend: one file under the data directory, WAL mode, one writer connection and a few reader
//! connections. Calls run on tokio's blocking pool (or inline when no tokio runtime is running).
//!
//! Durability: `journal_mode=WAL` with `synchronous=NORMAL`. A committed transaction survives the process
//! being killed at any point (SIGKILL); on power loss the last few commits may be rolled back, never torn.

use crate::cache::SpecCache;
use crate::codec::*;
use crate::error::StoreError;
use crate::model::*;
use crate::store::{Store, StoreResult};
use crate::token;
use async_trait::async_trait;
use hedge_core::{
    Commitment, CommitmentId, JobId, JobState, Money, ProviderId, Rate, TeamId, Timestamp,
};
use rusqlite::{params, params_from_iter, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::migrations::{plan, Migration};

const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "init", sql: include_str!("../migrations/sqlite/0001_init.sql") },
    Migration {
        version: 2,
        name: "cancelling_orphaned",
        sql: include_str!("../migrations/sqlite/0002_cancelling_orphaned.sql"),
    },
    Migration {
        version: 3,
        name: "submit_idempotency",
        sql: include_str!("../migrations/sqlite/0003_submit_idempotency.sql"),
    },
];

/// Reader connections besides the writer (WAL lets them read while the writer writes).
const READERS: usize = 2;

/// The SQLite store. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    instance: String,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    specs: SpecCache,
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock dropped its rusqlite Transaction, which rolled back: the connection is
    // usable again.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SqliteStore {
    /// Opens (creating if needed, with its parent directories) the database file at `path` and applies the
    /// pending migrations.
    pub async fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        let path = path.as_ref().to_path_buf();
        run_blocking(move || Self::open_blocking(&path)).await
    }

    /// [`SqliteStore::open`] for callers outside an async context.
    pub fn open_blocking(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                context: format!("creating the data directory {}", dir.display()),
                source,
            })?;
        }
        create_private(path)?;
        let mut writer = open_conn(path)?;
        migrate(&mut writer)?;
        let instance = instance_id(&mut writer)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let c = open_conn(path)?;
            c.pragma_update(None, "query_only", true)?;
            readers.push(Mutex::new(c));
        }
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                instance,
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
                specs: SpecCache::default(),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The random id of this database, embedded in idempotency keys.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> StoreResult<u32> {
        self.read(|c, _| {
            let v: i64 = c.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
            to_u32("schema_migrations", "version", v)
        })
        .await
    }

    /// SQLite's `PRAGMA integrity_check` plus `foreign_key_check`: `Ok(())` or the problems it found.
    pub async fn integrity_check(&self) -> StoreResult<Result<(), Vec<String>>> {
        self.read(|c, _| {
            let mut problems = vec![];
            let mut st = c.prepare("PRAGMA integrity_check")?;
            for r in st.query_map([], |r| r.get::<_, String>(0))? {
                let r = r?;
                if r != "ok" {
                    problems.push(r);
                }
            }
            let mut st = c.prepare("PRAGMA foreign_key_check")?;
            for r in st.query_map([], |r| Ok(format!("foreign key violation in {}", r.get::<_, String>(0)?)))? {
                problems.push(r?);
            }
            Ok(if problems.is_empty() { Ok(()) } else { Err(problems) })
        })
        .await
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &SpecCache) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let inner = self.inner.clone();
        run_blocking(move || f(&mut lock(&inner.writer), &inner.specs)).await
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &SpecCache) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let inner = self.inner.clone();
        run_blocking(move || {
            // Take a free reader if there is one; otherwise wait on the next in turn.
            for m in &inner.readers {
                if let Ok(c) = m.try_lock() {
                    return f(&c, &inner.specs);
                }
            }
            let i = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            f(&lock(&inner.readers[i]), &inner.specs)
        })
        .await
    }
}

async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> StoreResult<T> + Send + 'static) -> StoreResult<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => match h.spawn_blocking(f).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StoreError::Io { context: "store task cancelled".into(), source: std::io::Error::other(e) }),
        },
        Err(_) => f(),
    }
}

/// Creates a missing database file readable by its owner only (it holds token hashes and job specs);
/// SQLite gives the `-wal` and `-shm` files the same permissions. An existing file is left as it is.
fn create_private(path: &Path) -> StoreResult<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Io { context: format!("creating the database file {}", path.display()), source }),
    }
}

fn open_conn(path: &Path) -> StoreResult<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    c.busy_timeout(std::time::Duration::from_secs(10))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    c.pragma_update(None, "foreign_keys", true)?;
    // Whole-queue reads scan tens of MB of rows: keep them in SQLite's page cache (64 MiB per connection)
    // and memory-map the file rather than copying every page through read().
    c.pragma_update(None, "cache_size", -65_536)?;
    c.pragma_update(None, "mmap_size", 1_i64 << 30)?;
    c.set_prepared_statement_cache_capacity(64);
    Ok(c)
}

fn migrate(c: &mut Connection) -> StoreResult<()> {
    // Migrations may rebuild tables (SQLite cannot alter a CHECK), which needs foreign keys off; it is a no-op
    // inside a transaction, so it is set here and checked with `foreign_key_check` before the commit.
    c.pragma_update(None, "foreign_keys", false)?;
    let r = migrate_unchecked(c);
    c.pragma_update(None, "foreign_keys", true)?;
    r
}

fn migrate_unchecked(c: &mut Connection) -> StoreResult<()> {
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )?;
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Databases made before checksums were recorded: add the column, and trust and record what they have.
    let has_sha: bool =
        tx.query_row("SELECT COUNT(*) > 0 FROM pragma_table_info('schema_migrations') WHERE name = 'sha256'", [], |r| r.get(0))?;
    if !has_sha {
        tx.execute_batch("ALTER TABLE schema_migrations ADD COLUMN sha256 TEXT NOT NULL DEFAULT ''")?;
    }
    for m in MIGRATIONS {
        tx.execute(
            "UPDATE schema_migrations SET sha256 = ?1 WHERE version = ?2 AND sha256 = ''",
            params![m.sha256(), m.version],
        )?;
    }
    let applied = collect(&tx, "SELECT version, sha256 FROM schema_migrations ORDER BY version", [], |r| {
        Ok((to_u32("schema_migrations", "version", r.get(0)?)?, r.get::<_, String>(1)?))
    })?;
    for m in plan(&applied, MIGRATIONS)? {
        let wrap = |e: rusqlite::Error| StoreError::Migration {
            version: m.version,
            name: m.name,
            source: Box::new(StoreError::Sqlite(e)),
        };
        tx.execute_batch(m.sql).map_err(wrap)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, sha256, applied_at)
             VALUES (?1, ?2, ?3, CAST(strftime('%s','now') AS INTEGER))",
            params![m.version, m.name, m.sha256()],
        )
        .map_err(wrap)?;
    }
    let broken: i64 = tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| r.get(0))?;
    if broken > 0 {
        return Err(corrupt("schema_migrations", "version", format!("{broken} foreign key violations after migrating")));
    }
    tx.commit()?;
    Ok(())
}

fn instance_id(c: &mut Connection) -> StoreResult<String> {
    let fresh = token::new_instance_id()?;
    c.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('instance_id', ?1)", params![fresh])?;
    Ok(c.query_row("SELECT value FROM meta WHERE key = 'instance_id'", [], |r| r.get(0))?)
}

// ---- row decoding ----------------------------------------------------------------------------------------

const JOB_COLS: &str =
    "id, team_id, priority, deadline, spec, submitted_at, state, version, current_attempt, updated_at, idempotency_key";

fn job_row(r: &Row<'_>, specs: &SpecCache) -> StoreResult<Job> {
    queued_row(r, specs).map(Job::from)
}

fn queued_row(r: &Row<'_>, specs: &SpecCache) -> StoreResult<QueuedJob> {
    let priority: i64 = r.get(2)?;
    let id = job_id("jobs", r.get(0)?)?;
    let spec_text = r.get_ref(4)?.as_str().map_err(|e| corrupt("jobs", "spec", e.to_string()))?;
    Ok(QueuedJob {
        id,
        team: TeamId::new(r.get::<_, String>(1)?),
        priority: i32::try_from(priority).map_err(|_| corrupt("jobs", "priority", format!("{priority}")))?,
        deadline: r.get::<_, Option<i64>>(3)?.map(Timestamp),
        spec: specs.get_or_parse(id, spec_text)?,
        submitted_at: Timestamp(r.get(5)?),
        state: parse_state("jobs", "state", &r.get::<_, String>(6)?)?,
        version: to_u64("jobs", "version", r.get(7)?)?,
        current_attempt: to_u32("jobs", "current_attempt", r.get(8)?)?,
        updated_at: Timestamp(r.get(9)?),
        idempotency_key: r.get(10)?,
    })
}

const ATTEMPT_COLS: &str = "job_id, attempt_no, idempotency_key, provider, offer, region, zone, market, commitment_id, \
     accelerator, gpus, driver_handle, status, detail, created_at, updated_at";

fn attempt_row(r: &Row<'_>) -> StoreResult<LaunchAttempt> {
    Ok(LaunchAttempt {
        job: job_id("launch_attempts", r.get(0)?)?,
        attempt_no: to_u32("launch_attempts", "attempt_no", r.get(1)?)?,
        idempotency_key: r.get(2)?,
        provider: ProviderId::new(r.get::<_, String>(3)?),
        offer: r.get(4)?,
        region: r.get::<_, Option<String>>(5)?.map(hedge_core::RegionId::new),
        zone: r.get::<_, Option<String>>(6)?.map(hedge_core::ZoneId::new),
        market: parse_market("launch_attempts", &r.get::<_, String>(7)?)?,
        commitment: r.get::<_, Option<String>>(8)?.map(CommitmentId::new),
        accelerator: r.get::<_, Option<String>>(9)?.map(|a| parse_accel("launch_attempts", &a)).transpose()?,
        gpus: to_u32("launch_attempts", "gpus", r.get(10)?)?,
        driver_handle: r.get(11)?,
        status: parse_attempt_status(&r.get::<_, String>(12)?)?,
        detail: r.get(13)?,
        created_at: Timestamp(r.get(14)?),
        updated_at: Timestamp(r.get(15)?),
    })
}

const COMMITMENT_COLS: &str = "id, provider, accelerator, region, gpus, per_gpu_hour_micros, start_at, end_at";

fn commitment_row(r: &Row<'_>) -> StoreResult<Commitment> {
    Ok(Commitment {
        id: CommitmentId::new(r.get::<_, String>(0)?),
        provider: ProviderId::new(r.get::<_, String>(1)?),
        accelerator: parse_accel("commitments", &r.get::<_, String>(2)?)?,
        region: r.get::<_, Option<String>>(3)?.map(hedge_core::RegionId::new),
        gpus: to_u32("commitments", "gpus", r.get(4)?)?,
        per_gpu_hour: Rate::per_hour(Money::from_micros(r.get(5)?)),
        start: Timestamp(r.get(6)?),
        end: Timestamp(r.get(7)?),
    })
}

fn team_row(r: &Row<'_>) -> StoreResult<Team> {
    let quotas: String = r.get(2)?;
    Ok(Team {
        id: TeamId::new(r.get::<_, String>(0)?),
        monthly_budget: r.get::<_, Option<i64>>(1)?.map(Money::from_micros),
        quotas: serde_json::from_str(&quotas).map_err(|e| corrupt("teams", "quotas", e.to_string()))?,
        allow_preemption: r.get(3)?,
    })
}

fn health_row(r: &Row<'_>) -> StoreResult<ProviderHealth> {
    Ok(ProviderHealth {
        provider: ProviderId::new(r.get::<_, String>(0)?),
        state: parse_health(&r.get::<_, String>(1)?)?,
        consecutive_failures: to_u32("provider_health", "consecutive_failures", r.get(2)?)?,
        last_heartbeat: r.get::<_, Option<i64>>(3)?.map(Timestamp),
        last_error: r.get(4)?,
        updated_at: Timestamp(r.get(5)?),
    })
}

fn spend_row(r: &Row<'_>) -> StoreResult<SpendEntry> {
    Ok(SpendEntry {
        job: r.get::<_, Option<i64>>(0)?.map(|j| job_id("spend", j)).transpose()?,
        team: TeamId::new(r.get::<_, String>(1)?),
        provider: ProviderId::new(r.get::<_, String>(2)?),
        market: parse_market("spend", &r.get::<_, String>(3)?)?,
        amount: Money::from_micros(r.get(4)?),
        start: Timestamp(r.get(5)?),
        end: Timestamp(r.get(6)?),
    })
}

fn collect<T>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut st = c.prepare_cached(sql)?;
    let mut rows = st.query(params)?;
    let mut out = vec![];
    while let Some(r) = rows.next()? {
        out.push(f(r)?);
    }
    Ok(out)
}

// ---- transactional helpers -------------------------------------------------------------------------------

fn team_exists(c: &Connection, team: &TeamId) -> StoreResult<bool> {
    Ok(c.prepare_cached("SELECT 1 FROM teams WHERE id = ?1")?.exists(params![team.as_str()])?)
}

fn get_job(c: &Connection, specs: &SpecCache, id: JobId) -> StoreResult<Job> {
    let sql = format!("SELECT {JOB_COLS} FROM jobs WHERE id = ?1");
    let mut st = c.prepare_cached(&sql)?;
    let mut rows = st.query(params![job_id_sql(id)?])?;
    match rows.next()? {
        Some(r) => job_row(r, specs),
        None => Err(StoreError::UnknownJob { job: id }),
    }
}

fn job_exists(c: &Connection, id: JobId) -> StoreResult<()> {
    if c.prepare_cached("SELECT 1 FROM jobs WHERE id = ?1")?.exists(params![job_id_sql(id)?])? {
        Ok(())
    } else {
        Err(StoreError::UnknownJob { job: id })
    }
}

fn get_attempt(c: &Connection, key: &str) -> StoreResult<LaunchAttempt> {
    let sql = format!("SELECT {ATTEMPT_COLS} FROM launch_attempts WHERE idempotency_key = ?1");
    let mut st = c.prepare_cached(&sql)?;
    let mut rows = st.query(params![key])?;
    match rows.next()? {
        Some(r) => attempt_row(r),
        None => Err(StoreError::UnknownAttempt { key: key.to_owned() }),
    }
}

/// The CAS: moves the job and appends the event. Returns the updated job.
fn apply_transition(c: &Connection, specs: &SpecCache, t: &Transition) -> StoreResult<Job> {
    t.validate()?;
    let id = job_id_sql(t.job)?;
    let changed = c.prepare_cached(
        "UPDATE jobs SET state = ?1, version = version + 1, updated_at = ?2
         WHERE id = ?3 AND state = ?4 AND (?5 IS NULL OR version = ?5)",
    )?
    .execute(params![t.to.as_str(), t.at.0, id, t.from.as_str(), t.expected_version.map(|v| v as i64)])?;
    let job = get_job(c, specs, t.job)?;
    if changed == 0 {
        return Err(StoreError::StaleTransition {
            job: t.job,
            expected: t.from,
            expected_version: t.expected_version,
            actual: job.state,
            actual_version: job.version,
        });
    }
    c.prepare_cached(
        "INSERT INTO job_events (job_id, seq, from_state, to_state, reason, explanation, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        id,
        job.version as i64,
        t.from.as_str(),
        t.to.as_str(),
        t.reason,
        explanation_json(&t.explanation),
        t.at.0
    ])?;
    if let Some(u) = &t.attempt_update {
        let a = get_attempt(c, &u.idempotency_key)?;
        if a.job != t.job {
            return Err(invalid(
                "transition.attempt_update",
                format!("attempt {:?} belongs to job {}, not {}", u.idempotency_key, a.job, t.job),
            ));
        }
        apply_attempt_update(c, a, u)?;
    }
    Ok(job)
}

fn apply_attempt_update(c: &Connection, a: LaunchAttempt, u: &AttemptUpdate) -> StoreResult<LaunchAttempt> {
    if !a.status.can_become(u.status) {
        return Err(StoreError::IllegalAttemptUpdate { key: a.idempotency_key, from: a.status, to: u.status });
    }
    c.prepare_cached(
        "UPDATE launch_attempts SET status = ?1, driver_handle = COALESCE(?2, driver_handle),
             detail = COALESCE(?3, detail), updated_at = ?4
         WHERE idempotency_key = ?5",
    )?
    .execute(params![u.status.as_str(), u.driver_handle, u.stored_detail(), u.at.0, u.idempotency_key])?;
    get_attempt(c, &u.idempotency_key)
}

fn insert_token(c: &Connection, principal: &Principal, label: &str, at: Timestamp) -> StoreResult<IssuedToken> {
    let secret = token::new_secret()?;
    let (is_admin, team) = match principal {
        Principal::Admin => (true, None),
        Principal::Team(t) => (false, Some(t.as_str())),
    };
    c.prepare_cached(
        "INSERT INTO api_tokens (token_sha256, is_admin, team_id, label, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![token::hash_secret(&secret), is_admin, team, label, at.0])?;
    Ok(IssuedToken { id: c.last_insert_rowid(), principal: principal.clone(), secret })
}

fn states_sql(states: &[JobState]) -> String {
    let mut s = String::from("(");
    for (i, st) in states.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('\'');
        s.push_str(st.as_str()); // closed set of lower-case words: safe to inline
        s.push('\'');
    }
    s.push(')');
    s
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|c, _| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?)).await
    }

    async fn put_team(&self, team: &Team) -> StoreResult<()> {
        team.validate()?;
        let team = team.clone();
        let quotas = serde_json::to_string(&team.quotas).map_err(|e| invalid("team.quotas", e.to_string()))?;
        self.write(move |c, _| {
            c.prepare_cached(
                "INSERT INTO teams (id, monthly_budget_micros, quotas, allow_preemption) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET monthly_budget_micros = excluded.monthly_budget_micros,
                     quotas = excluded.quotas, allow_preemption = excluded.allow_preemption",
            )?
            .execute(params![team.id.as_str(), team.monthly_budget.map(Money::micros), quotas, team.allow_preemption])?;
            Ok(())
        })
        .await
    }

    async fn team(&self, id: &TeamId) -> StoreResult<Team> {
        if !storable_key(id.as_str()) {
            return Err(StoreError::UnknownTeam { team: id.clone() });
        }
        let id = id.clone();
        self.read(move |c, _| {
            let mut st = c.prepare_cached(
                "SELECT id, monthly_budget_micros, quotas, allow_preemption FROM teams WHERE id = ?1",
            )?;
            let mut rows = st.query(params![id.as_str()])?;
            match rows.next()? {
                Some(r) => team_row(r),
                None => Err(StoreError::UnknownTeam { team: id }),
            }
        })
        .await
    }

    async fn teams(&self) -> StoreResult<Vec<Team>> {
        self.read(|c, _| {
            collect(c, "SELECT id, monthly_budget_micros, quotas, allow_preemption FROM teams ORDER BY id", [], team_row)
        })
        .await
    }

    async fn create_token(&self, principal: &Principal, label: &str, at: Timestamp) -> StoreResult<IssuedToken> {
        validate_text("token.label", label, 256)?;
        if let Principal::Team(t) = principal {
            if !storable_key(t.as_str()) {
                return Err(StoreError::UnknownTeam { team: t.clone() });
            }
        }
        let principal = principal.clone();
        let label = label.to_owned();
        self.write(move |c, _| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Principal::Team(t) = &principal {
                if !team_exists(&tx, t)? {
                    return Err(StoreError::UnknownTeam { team: t.clone() });
                }
            }
            let tok = insert_token(&tx, &principal, &label, at)?;
            tx.commit()?;
            Ok(tok)
        })
        .await
    }

    async fn bootstrap_admin_token(&self, at: Timestamp) -> StoreResult<Option<IssuedToken>> {
        self.write(move |c, _| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let first = tx.execute(
                "INSERT INTO meta (key, value) VALUES ('admin_bootstrapped', ?1) ON CONFLICT (key) DO NOTHING",
                params![at.0.to_string()],
            )?;
            if first == 0 {
                return Ok(None);
            }
            let tok = insert_token(&tx, &Principal::Admin, "bootstrap admin", at)?;
            tx.commit()?;
            Ok(Some(tok))
        })
        .await
    }

    async fn authenticate(&self, presented_secret: &str) -> StoreResult<Option<Principal>> {
        let hash = token::hash_secret(presented_secret);
        self.read(move |c, _| {
            let row = c
                .prepare_cached("SELECT is_admin, team_id FROM api_tokens WHERE token_sha256 = ?1 AND revoked_at IS NULL")?
                .query_row(params![hash], |r| Ok((r.get::<_, bool>(0)?, r.get::<_, Option<String>>(1)?)))
                .optional()?;
            row.map(|(a, t)| principal("api_tokens", a, t)).transpose()
        })
        .await
    }

    async fn revoke_token(&self, id: i64, at: Timestamp) -> StoreResult<()> {
        self.write(move |c, _| {
            let n = c.execute(
                "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?1) WHERE id = ?2",
                params![at.0, id],
            )?;
            if n == 0 {
                return Err(StoreError::UnknownToken { id });
            }
            Ok(())
        })
        .await
    }

    async fn tokens(&self) -> StoreResult<Vec<TokenInfo>> {
        self.read(|c, _| {
            collect(
                c,
                "SELECT id, is_admin, team_id, label, created_at, revoked_at FROM api_tokens ORDER BY id",
                [],
                |r| {
                    Ok(TokenInfo {
                        id: r.get(0)?,
                        principal: principal("api_tokens", r.get(1)?, r.get(2)?)?,
                        label: r.get(3)?,
                        created_at: Timestamp(r.get(4)?),
                        revoked_at: r.get::<_, Option<i64>>(5)?.map(Timestamp),
                    })
                },
            )
        })
        .await
    }

    async fn submit_job(&self, job: &NewJob) -> StoreResult<Job> {
        job.validate()?;
        let spec = spec_json(&job.spec)?;
        let job = job.clone();
        self.write(move |c, specs| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if !team_exists(&tx, &job.team)? {
                return Err(StoreError::UnknownTeam { team: job.team.clone() });
            }
            // The writer lock (BEGIN IMMEDIATE) serialises submits, also across handles on the file: looking
            // the key up first is race-free.
            if let Some(k) = &job.idempotency {
                let first = tx
                    .prepare_cached("SELECT id, request_sha256 FROM jobs WHERE team_id = ?1 AND idempotency_key = ?2")?
                    .query_row(params![job.team.as_str(), k.key], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?)))
                    .optional()?;
                if let Some((id, sha)) = first {
                    return same_request(k, sha).and_then(|()| get_job(&tx, specs, job_id("jobs", id)?));
                }
            }
            tx.prepare_cached(
                "INSERT INTO jobs (team_id, priority, deadline, spec, submitted_at, state, version, current_attempt, updated_at,
                     idempotency_key, request_sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0, ?5, ?7, ?8)",
            )?
            .execute(params![
                job.team.as_str(),
                job.priority,
                job.deadline.map(|d| d.0),
                spec,
                job.submitted_at.0,
                JobState::INITIAL.as_str(),
                job.idempotency.as_ref().map(|k| k.key.as_str()),
                job.idempotency.as_ref().map(SubmitKey::sha),
            ])?;
            let id = tx.last_insert_rowid();
            tx.prepare_cached(
                "INSERT INTO job_events (job_id, seq, from_state, to_state, reason, explanation, at)
                 VALUES (?1, 0, NULL, ?2, 'submitted', 'null', ?3)",
            )?
            .execute(params![id, JobState::INITIAL.as_str(), job.submitted_at.0])?;
            tx.commit()?;
            let id = job_id("jobs", id)?;
            specs.insert(id, std::sync::Arc::new(job.spec.clone()));
            Ok(Job {
                id,
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
        .await
    }

    async fn job(&self, id: JobId) -> StoreResult<Job> {
        self.read(move |c, specs| get_job(c, specs, id)).await
    }

    async fn list_jobs(&self, filter: &JobFilter) -> StoreResult<JobPage> {
        if filter.team.as_ref().is_some_and(|t| !storable_key(t.as_str())) {
            return Ok(JobPage { jobs: vec![], next: None });
        }
        let filter = filter.clone();
        self.read(move |c, specs| {
            let limit = filter.effective_limit();
            let mut sql = format!("SELECT {JOB_COLS} FROM jobs WHERE 1 = 1");
            let mut args: Vec<rusqlite::types::Value> = vec![];
            if let Some(t) = &filter.team {
                args.push(t.as_str().to_owned().into());
                sql.push_str(&format!(" AND team_id = ?{}", args.len()));
            }
            if !filter.states.is_empty() {
                sql.push_str(&format!(" AND state IN {}", states_sql(&filter.states)));
            }
            if let Some(after) = filter.after {
                args.push(job_id_sql(after)?.into());
                let op = if filter.newest_first { "<" } else { ">" };
                sql.push_str(&format!(" AND id {op} ?{}", args.len()));
            }
            let dir = if filter.newest_first { "DESC" } else { "ASC" };
            args.push(i64::from(limit + 1).into());
            sql.push_str(&format!(" ORDER BY id {dir} LIMIT ?{}", args.len()));
            let mut jobs = collect(c, &sql, params_from_iter(args), |r| job_row(r, specs))?;
            let next = if jobs.len() > limit as usize {
                jobs.truncate(limit as usize);
                jobs.last().map(|j| j.id)
            } else {
                None
            };
            Ok(JobPage { jobs, next })
        })
        .await
    }

    async fn jobs_in_states(&self, states: &[JobState]) -> StoreResult<Vec<Job>> {
        if states.is_empty() {
            return Ok(vec![]);
        }
        let sql = format!("SELECT {JOB_COLS} FROM jobs WHERE state IN {} ORDER BY id", states_sql(states));
        self.read(move |c, specs| collect(c, &sql, [], |r| job_row(r, specs))).await
    }

    async fn queued_jobs(&self, states: &[JobState]) -> StoreResult<Vec<QueuedJob>> {
        if states.is_empty() {
            return Ok(vec![]);
        }
        let sql = format!("SELECT {JOB_COLS} FROM jobs WHERE state IN {} ORDER BY id", states_sql(states));
        self.read(move |c, specs| collect(c, &sql, [], |r| queued_row(r, specs))).await
    }

    async fn job_counts(&self) -> StoreResult<Vec<(JobState, u64)>> {
        self.read(|c, _| {
            collect(c, "SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state", [], |r| {
                Ok((parse_state("jobs", "state", &r.get::<_, String>(0)?)?, to_u64("jobs", "count", r.get(1)?)?))
            })
        })
        .await
    }

    async fn transition(&self, t: &Transition) -> StoreResult<Job> {
        t.validate()?;
        let t = t.clone();
        self.write(move |c, specs| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let job = apply_transition(&tx, specs, &t)?;
            tx.commit()?;
            if job.state.is_terminal() {
                specs.remove(job.id);
            }
            Ok(job)
        })
        .await
    }

    async fn begin_launch(&self, t: &Transition, attempt: &NewAttempt) -> StoreResult<(Job, LaunchAttempt)> {
        t.validate()?;
        attempt.validate()?;
        if t.to != JobState::Launching {
            return Err(invalid("transition.to", format!("begin_launch moves to launching, not {}", t.to)));
        }
        let (t, a) = (t.clone(), attempt.clone());
        let instance = self.inner.instance.clone();
        self.write(move |c, specs| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let job = apply_transition(&tx, specs, &t)?;
            let n = job.current_attempt + 1;
            let key = idempotency_key(&instance, job.id, n);
            tx.prepare_cached(
                "INSERT INTO launch_attempts (job_id, attempt_no, idempotency_key, provider, offer, region, zone, market,
                     commitment_id, accelerator, gpus, driver_handle, status, detail, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, NULL, 'recorded', NULL, ?12, ?12)",
            )?
            .execute(params![
                job_id_sql(job.id)?,
                n,
                key,
                a.provider.as_str(),
                a.offer,
                a.region.as_ref().map(|r| r.as_str()),
                a.zone.as_ref().map(|z| z.as_str()),
                market_str(a.market),
                a.commitment.as_ref().map(|x| x.as_str()),
                a.accelerator.as_ref().map(|x| x.as_str()),
                a.gpus,
                t.at.0
            ])?;
            tx.prepare_cached("UPDATE jobs SET current_attempt = ?1 WHERE id = ?2")?
                .execute(params![n, job_id_sql(job.id)?])?;
            let attempt = get_attempt(&tx, &key)?;
            tx.commit()?;
            Ok((Job { current_attempt: n, ..job }, attempt))
        })
        .await
    }

    async fn job_events(&self, id: JobId) -> StoreResult<Vec<JobEvent>> {
        self.read(move |c, _| {
            job_exists(c, id)?;
            collect(
                c,
                "SELECT job_id, seq, from_state, to_state, reason, explanation, at FROM job_events
                 WHERE job_id = ?1 ORDER BY seq",
                params![job_id_sql(id)?],
                |r| {
                    Ok(JobEvent {
                        job: job_id("job_events", r.get(0)?)?,
                        seq: to_u64("job_events", "seq", r.get(1)?)?,
                        from: r
                            .get::<_, Option<String>>(2)?
                            .map(|s| parse_state("job_events", "from_state", &s))
                            .transpose()?,
                        to: parse_state("job_events", "to_state", &r.get::<_, String>(3)?)?,
                        reason: r.get(4)?,
                        explanation: parse_explanation(&r.get::<_, String>(5)?)?,
                        at: Timestamp(r.get(6)?),
                    })
                },
            )
        })
        .await
    }

    async fn attempts(&self, job: JobId) -> StoreResult<Vec<LaunchAttempt>> {
        self.read(move |c, _| {
            job_exists(c, job)?;
            collect(
                c,
                &format!("SELECT {ATTEMPT_COLS} FROM launch_attempts WHERE job_id = ?1 ORDER BY attempt_no"),
                params![job_id_sql(job)?],
                attempt_row,
            )
        })
        .await
    }

    async fn attempt_by_key(&self, idempotency_key: &str) -> StoreResult<LaunchAttempt> {
        if !storable_key(idempotency_key) {
            return Err(StoreError::UnknownAttempt { key: idempotency_key.to_owned() });
        }
        let key = idempotency_key.to_owned();
        self.read(move |c, _| get_attempt(c, &key)).await
    }

    async fn in_flight_attempts(&self) -> StoreResult<Vec<LaunchAttempt>> {
        self.read(|c, _| {
            collect(
                c,
                &format!(
                    "SELECT {ATTEMPT_COLS} FROM launch_attempts
                     WHERE status IN {} ORDER BY job_id, attempt_no",
                    in_flight_sql()
                ),
                [],
                attempt_row,
            )
        })
        .await
    }

    async fn update_attempt(&self, update: &AttemptUpdate) -> StoreResult<LaunchAttempt> {
        update.validate()?;
        let u = update.clone();
        self.write(move |c, _| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let a = get_attempt(&tx, &u.idempotency_key)?;
            let a = apply_attempt_update(&tx, a, &u)?;
            tx.commit()?;
            Ok(a)
        })
        .await
    }

    async fn put_commitments(&self, commitments: &[Commitment]) -> StoreResult<()> {
        validate_commitments(commitments)?;
        let cs = commitments.to_vec();
        self.write(move |c, _| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut st = tx.prepare_cached(
                    "INSERT INTO commitments (id, provider, accelerator, region, gpus, per_gpu_hour_micros, start_at, end_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (id) DO NOTHING",
                )?;
                for (index, m) in cs.iter().enumerate() {
                    let n = st.execute(params![
                        m.id.as_str(),
                        m.provider.as_str(),
                        m.accelerator.as_str(),
                        m.region.as_ref().map(|r| r.as_str()),
                        m.gpus,
                        m.per_gpu_hour.hourly().micros(),
                        m.start.0,
                        m.end.0
                    ])?;
                    if n == 0 {
                        return Err(StoreError::DuplicateCommitment { id: m.id.clone(), index });
                    }
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn commitments(&self) -> StoreResult<Vec<Commitment>> {
        self.read(|c, _| collect(c, &format!("SELECT {COMMITMENT_COLS} FROM commitments ORDER BY id"), [], commitment_row))
            .await
    }

    async fn commitment_usage(&self) -> StoreResult<Vec<CommitmentUsage>> {
        self.read(|c, _| {
            let cols = COMMITMENT_COLS.split(", ").map(|col| format!("m.{col}")).collect::<Vec<_>>().join(", ");
            collect(
                c,
                &format!(
                    "SELECT {cols}, COALESCE((SELECT SUM(a.gpus) FROM launch_attempts a
                         WHERE a.commitment_id = m.id AND a.status IN {}), 0)
                     FROM commitments m ORDER BY m.id",
                    in_flight_sql()
                ),
                [],
                |r| Ok(CommitmentUsage { commitment: commitment_row(r)?, gpus_in_use: to_u32("launch_attempts", "gpus", r.get(8)?)? }),
            )
        })
        .await
    }

    async fn delete_commitment(&self, id: &CommitmentId) -> StoreResult<bool> {
        if !storable_key(id.as_str()) {
            return Ok(false);
        }
        let id = id.clone();
        self.write(move |c, _| Ok(c.execute("DELETE FROM commitments WHERE id = ?1", params![id.as_str()])? > 0)).await
    }

    async fn put_provider_health(&self, health: &ProviderHealth) -> StoreResult<()> {
        validate_name("provider_health.provider", health.provider.as_str())?;
        let h = health.clone();
        self.write(move |c, _| {
            c.prepare_cached(
                "INSERT INTO provider_health (provider, state, consecutive_failures, last_heartbeat, last_error, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (provider) DO UPDATE SET state = excluded.state,
                     consecutive_failures = excluded.consecutive_failures, last_heartbeat = excluded.last_heartbeat,
                     last_error = excluded.last_error, updated_at = excluded.updated_at",
            )?
            .execute(params![
                h.provider.as_str(),
                h.state.as_str(),
                h.consecutive_failures,
                h.last_heartbeat.map(|t| t.0),
                h.last_error.as_deref().map(clean_detail),
                h.updated_at.0
            ])?;
            Ok(())
        })
        .await
    }

    async fn provider_health(&self, provider: &ProviderId) -> StoreResult<Option<ProviderHealth>> {
        if !storable_key(provider.as_str()) {
            return Ok(None);
        }
        let p = provider.clone();
        self.read(move |c, _| {
            Ok(collect(
                c,
                "SELECT provider, state, consecutive_failures, last_heartbeat, last_error, updated_at
                 FROM provider_health WHERE provider = ?1",
                params![p.as_str()],
                health_row,
            )?
            .pop())
        })
        .await
    }

    async fn all_provider_health(&self) -> StoreResult<Vec<ProviderHealth>> {
        self.read(|c, _| {
            collect(
                c,
                "SELECT provider, state, consecutive_failures, last_heartbeat, last_error, updated_at
                 FROM provider_health ORDER BY provider",
                [],
                health_row,
            )
        })
        .await
    }

    async fn record_spend(&self, entry: &SpendEntry) -> StoreResult<()> {
        entry.validate()?;
        let e = entry.clone();
        self.write(move |c, _| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if !team_exists(&tx, &e.team)? {
                return Err(StoreError::UnknownTeam { team: e.team.clone() });
            }
            if let Some(j) = e.job {
                job_exists(&tx, j)?;
            }
            tx.prepare_cached(
                "INSERT INTO spend (job_id, team_id, provider, market, amount_micros, start_at, end_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                e.job.map(job_id_sql).transpose()?,
                e.team.as_str(),
                e.provider.as_str(),
                market_str(e.market),
                e.amount.micros(),
                e.start.0,
                e.end.0
            ])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn team_spend(&self, team: &TeamId, from: Timestamp, to: Timestamp) -> StoreResult<Money> {
        if !storable_key(team.as_str()) {
            return Err(StoreError::UnknownTeam { team: team.clone() });
        }
        let team = team.clone();
        self.read(move |c, _| {
            if !team_exists(c, &team)? {
                return Err(StoreError::UnknownTeam { team });
            }
            let v: i64 = c
                .prepare_cached(
                    "SELECT COALESCE(SUM(amount_micros), 0) FROM spend WHERE team_id = ?1 AND start_at >= ?2 AND start_at < ?3",
                )?
                .query_row(params![team.as_str(), from.0, to.0], |r| r.get(0))?;
            Ok(Money::from_micros(v))
        })
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
        let team = team.cloned();
        self.read(move |c, _| {
            collect(
                c,
                "SELECT job_id, team_id, provider, market, amount_micros, start_at, end_at FROM spend
                 WHERE (?1 IS NULL OR team_id = ?1) AND start_at >= ?2 AND start_at < ?3 ORDER BY id",
                params![team.as_ref().map(|t| t.as_str()), from.0, to.0],
                spend_row,
            )
        })
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
}

//! The SQLite backend: one file under the data directory, WAL mode, one writer connection and a few reader
//! connections. Calls run on tokio's blocking pool (or inline when no tokio runtime is running).
//!
//! Durability: `journal_mode=WAL` with `synchronous=NORMAL`. A committed transaction survives the process
//! being killed at any point (SIGKILL); on power loss the last few commits may be rolled back, never torn.

use crate::backend::{block_on, Backend, Conn, Logic, Row, Value};
use crate::cache::SpecCache;
use crate::codec::*;
use crate::error::StoreError;
use crate::store::StoreResult;
use crate::token;
use async_trait::async_trait;
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::migrations::{plan, Migration};

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
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
    Migration {
        version: 4,
        name: "schedule_queue",
        sql: include_str!("../migrations/sqlite/0004_schedule_queue.sql"),
    },
    Migration {
        version: 5,
        name: "ledger",
        sql: include_str!("../migrations/sqlite/0005_ledger.sql"),
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
    specs: Arc<SpecCache>,
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
                specs: Arc::default(),
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
        self.on_reader(|c| {
            let v: i64 = c.query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )?;
            to_u32("schema_migrations", "version", v)
        })
        .await
    }

    /// `EXPLAIN QUERY PLAN` of [`Store::schedule_queue`]'s query, one line per step (diagnostics: shows that
    /// the queue is read through the `jobs_schedule` index without a sort).
    pub async fn schedule_queue_plan(&self) -> StoreResult<Vec<String>> {
        self.on_reader(|c| {
            let mut st = c.prepare(&placeholders(&format!(
                "EXPLAIN QUERY PLAN {}",
                schedule_sql("id, spec")
            )))?;
            let rows = st.query_map(params![5000], |r| r.get::<_, String>(3))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// SQLite's `PRAGMA integrity_check` plus `foreign_key_check`: `Ok(())` or the problems it found.
    pub async fn integrity_check(&self) -> StoreResult<Result<(), Vec<String>>> {
        self.on_reader(|c| {
            let mut problems = vec![];
            let mut st = c.prepare("PRAGMA integrity_check")?;
            for r in st.query_map([], |r| r.get::<_, String>(0))? {
                let r = r?;
                if r != "ok" {
                    problems.push(r);
                }
            }
            let mut st = c.prepare("PRAGMA foreign_key_check")?;
            for r in st.query_map([], |r| {
                Ok(format!(
                    "foreign key violation in {}",
                    r.get::<_, String>(0)?
                ))
            })? {
                problems.push(r?);
            }
            Ok(if problems.is_empty() {
                Ok(())
            } else {
                Err(problems)
            })
        })
        .await
    }

    /// Runs `f` on a reader connection (a free one if there is one, otherwise the next in turn).
    async fn on_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let inner = self.inner.clone();
        run_blocking(move || {
            for m in &inner.readers {
                if let Ok(mut c) = m.try_lock() {
                    return f(&mut c);
                }
            }
            let i = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            f(&mut lock(&inner.readers[i]))
        })
        .await
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => match h.spawn_blocking(f).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StoreError::Io {
                context: "store task cancelled".into(),
                source: std::io::Error::other(e),
            }),
        },
        Err(_) => f(),
    }
}

/// Creates a missing database file readable by its owner only (it holds token hashes and job specs);
/// SQLite gives the `-wal` and `-shm` files the same permissions. An existing file is left as it is.
fn create_private(path: &Path) -> StoreResult<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Io {
            context: format!("creating the database file {}", path.display()),
            source,
        }),
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
    let has_sha: bool = tx.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('schema_migrations') WHERE name = 'sha256'",
        [],
        |r| r.get(0),
    )?;
    if !has_sha {
        tx.execute_batch(
            "ALTER TABLE schema_migrations ADD COLUMN sha256 TEXT NOT NULL DEFAULT ''",
        )?;
    }
    for m in MIGRATIONS {
        tx.execute(
            "UPDATE schema_migrations SET sha256 = ?1 WHERE version = ?2 AND sha256 = ''",
            params![m.sha256(), m.version],
        )?;
    }
    let mut applied = vec![];
    {
        let mut st =
            tx.prepare("SELECT version, sha256 FROM schema_migrations ORDER BY version")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            applied.push((
                to_u32("schema_migrations", "version", r.get(0)?)?,
                r.get::<_, String>(1)?,
            ));
        }
    }
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
    let broken: i64 = tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
        r.get(0)
    })?;
    if broken > 0 {
        return Err(corrupt(
            "schema_migrations",
            "version",
            format!("{broken} foreign key violations after migrating"),
        ));
    }
    tx.commit()?;
    Ok(())
}

fn instance_id(c: &mut Connection) -> StoreResult<String> {
    let fresh = token::new_instance_id()?;
    c.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('instance_id', ?1)",
        params![fresh],
    )?;
    Ok(c.query_row(
        "SELECT value FROM meta WHERE key = 'instance_id'",
        [],
        |r| r.get(0),
    )?)
}

/// The scheduler's queue read: the `jobs_schedule` index's predicate and order (migration 4), word for word.
/// `INDEXED BY` because without statistics SQLite's planner prefers `jobs_by_state` plus a sort; with it,
/// a query the index cannot serve is an error rather than a silent full sort.
fn schedule_sql(cols: &str) -> String {
    format!(
        "SELECT {cols} FROM jobs INDEXED BY jobs_schedule WHERE state IN {QUEUED_SQL}
         ORDER BY priority DESC, deadline IS NULL, deadline, id LIMIT $1"
    )
}

/// A connection the shared logic runs on: statements are synchronous rusqlite calls (the whole logic of a
/// store call runs in one `spawn_blocking`, driven by [`block_on`]), prepared once per connection.
struct SqliteConn<'a>(&'a mut Connection);

/// `$N` placeholders (the logic's dialect) as SQLite's `?N`.
fn placeholders(sql: &str) -> String {
    sql.replace('$', "?")
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::I64(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
        })
    }
}

fn bind(params: &[Value]) -> impl rusqlite::Params + '_ {
    rusqlite::params_from_iter(params.iter())
}

fn row(r: &rusqlite::Row<'_>, n: usize) -> StoreResult<Row> {
    use rusqlite::types::ValueRef;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(match r.get_ref(i)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(v) => Value::I64(v),
            ValueRef::Text(t) => Value::Text(
                std::str::from_utf8(t)
                    .map_err(|e| corrupt("(row)", "(column)", e.to_string()))?
                    .to_owned(),
            ),
            other => {
                return Err(corrupt(
                    "(row)",
                    "(column)",
                    format!("column {i} has type {:?}", other.data_type()),
                ))
            }
        });
    }
    Ok(Row(out))
}

#[async_trait]
impl Conn for SqliteConn<'_> {
    async fn exec(&mut self, sql: &str, params: &[Value]) -> StoreResult<u64> {
        Ok(self
            .0
            .prepare_cached(&placeholders(sql))?
            .execute(bind(params))? as u64)
    }

    async fn insert_id(&mut self, sql: &str, params: &[Value]) -> StoreResult<Option<i64>> {
        let n = self
            .0
            .prepare_cached(&placeholders(sql))?
            .execute(bind(params))?;
        Ok((n > 0).then(|| self.0.last_insert_rowid()))
    }

    async fn query(&mut self, sql: &str, params: &[Value]) -> StoreResult<Vec<Row>> {
        let mut st = self.0.prepare_cached(&placeholders(sql))?;
        let n = st.column_count();
        let mut rows = st.query(bind(params))?;
        let mut out = vec![];
        while let Some(r) = rows.next()? {
            out.push(row(r, n)?);
        }
        Ok(out)
    }
}

#[async_trait]
impl Backend for SqliteStore {
    const NAME: &'static str = "sqlite";

    fn instance(&self) -> &str {
        &self.inner.instance
    }

    fn specs(&self) -> &Arc<SpecCache> {
        &self.inner.specs
    }

    fn schedule_sql(cols: &str) -> String {
        schedule_sql(cols)
    }

    async fn read<T: Send + 'static>(&self, f: Logic<T>) -> StoreResult<T> {
        self.on_reader(move |c| block_on(f(&mut SqliteConn(c))))
            .await
    }

    async fn write<T: Send + 'static>(&self, f: Logic<T>) -> StoreResult<T> {
        let inner = self.inner.clone();
        run_blocking(move || {
            let mut c = lock(&inner.writer);
            if !c.is_autocommit() {
                // A panic mid-transaction left it open: it never committed, so roll it back.
                c.execute_batch("ROLLBACK")?;
            }
            c.execute_batch("BEGIN IMMEDIATE")?;
            match block_on(f(&mut SqliteConn(&mut c))) {
                Ok(v) => {
                    c.execute_batch("COMMIT")?;
                    Ok(v)
                }
                Err(e) => {
                    c.execute_batch("ROLLBACK")?;
                    Err(e)
                }
            }
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

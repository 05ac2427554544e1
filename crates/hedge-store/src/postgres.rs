//! The PostgreSQL backend: a deadpool connection pool over tokio-postgres, prepared-statement caches per
//! connection, READ COMMITTED transactions. The job CAS is one `UPDATE ... WHERE state = $from` whose
//! row lock makes a concurrent second writer re-check the condition and lose.

use crate::backend::{Backend, Conn, Logic, Row, Value};
use crate::cache::SpecCache;
use crate::codec::*;
use crate::error::StoreError;
use crate::model::invalid;
use crate::store::StoreResult;
use crate::token;
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use std::sync::Arc;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::NoTls;

use crate::migrations::{plan, Migration};

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
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
    Migration {
        version: 4,
        name: "schedule_queue",
        sql: include_str!("../migrations/postgres/0004_schedule_queue.sql"),
    },
    Migration {
        version: 5,
        name: "ledger",
        sql: include_str!("../migrations/postgres/0005_ledger.sql"),
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

impl PgStore {
    /// Connects to `postgres://...` and applies the pending migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(url, &PgOptions::default()).await
    }

    pub async fn connect_with(url: &str, opts: &PgOptions) -> StoreResult<Self> {
        let mut cfg: tokio_postgres::Config = url.parse().map_err(|_| StoreError::BadUrl {
            url: redact_url(url),
        })?;
        if let Some(schema) = &opts.schema {
            if schema.is_empty()
                || !schema
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(invalid(
                    "schema",
                    format!("{schema:?} must be lower-case letters, digits and '_'"),
                ));
            }
            let (client, conn) = cfg.connect(NoTls).await?;
            let task = tokio::spawn(conn);
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await?;
            drop(client);
            let _ = task.await;
            cfg.options(format!("-c search_path={schema}"));
        }
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let size = if opts.max_connections == 0 {
            16
        } else {
            opts.max_connections
        };
        let pool = Pool::builder(mgr)
            .max_size(size)
            .build()
            .map_err(|e| StoreError::Pool(e.to_string()))?;
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
        let instance: String = client
            .query_one("SELECT value FROM meta WHERE key = 'instance_id'", &[])
            .await?
            .try_get(0)?;
        drop(client);
        Ok(PgStore {
            pool,
            instance,
            specs: Arc::default(),
        })
    }

    pub fn instance_id(&self) -> &str {
        &self.instance
    }

    pub async fn schema_version(&self) -> StoreResult<u32> {
        let c = self.client().await?;
        let v: i64 = c
            .query_one(
                "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
                &[],
            )
            .await?
            .try_get(0)?;
        to_u32("schema_migrations", "version", v)
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_err)
    }

    /// `EXPLAIN` of [`crate::Store::schedule_queue`]'s query (diagnostics: shows that the queue is read
    /// through the `jobs_schedule` index without a sort).
    pub async fn schedule_queue_plan(&self) -> StoreResult<Vec<String>> {
        let c = self.client().await?;
        let sql = format!("EXPLAIN {}", schedule_sql("id, spec"));
        c.query(&sql, &[&5000_i64])
            .await?
            .iter()
            .map(|r| Ok(r.try_get::<_, String>(0)?))
            .collect()
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
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
        &[&MIGRATION_LOCK],
    )
    .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await?;
    // Databases made before checksums were recorded: add the column, and trust and record what they have.
    tx.batch_execute(
        "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS sha256 TEXT NOT NULL DEFAULT ''",
    )
    .await?;
    for m in MIGRATIONS {
        tx.execute(
            "UPDATE schema_migrations SET sha256 = $1 WHERE version = $2 AND sha256 = ''",
            &[&m.sha256(), &i64::from(m.version)],
        )
        .await?;
    }
    let mut applied = vec![];
    for r in tx
        .query(
            "SELECT version, sha256 FROM schema_migrations ORDER BY version",
            &[],
        )
        .await?
    {
        applied.push((
            to_u32("schema_migrations", "version", r.try_get(0)?)?,
            r.try_get::<_, String>(1)?,
        ));
    }
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

/// The scheduler's queue read: the `jobs_schedule` index's predicate and order (migration 4), word for word.
fn schedule_sql(cols: &str) -> String {
    format!(
        "SELECT {cols} FROM jobs WHERE state IN {QUEUED_SQL}
         ORDER BY priority DESC, deadline ASC NULLS LAST, id LIMIT $1"
    )
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut tokio_postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::I64(v) if *ty == Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
            Value::I64(v) => v.to_sql(ty, out),
            Value::Text(s) => s.to_sql(ty, out),
            Value::Bool(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn row(r: &tokio_postgres::Row) -> StoreResult<Row> {
    let mut out = Vec::with_capacity(r.len());
    for (i, col) in r.columns().iter().enumerate() {
        let t = col.type_();
        out.push(if *t == Type::INT8 {
            r.try_get::<_, Option<i64>>(i)?
                .map_or(Value::Null, Value::I64)
        } else if *t == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)?
                .map_or(Value::Null, |v| Value::I64(v.into()))
        } else if *t == Type::BOOL {
            r.try_get::<_, Option<bool>>(i)?
                .map_or(Value::Null, Value::Bool)
        } else {
            r.try_get::<_, Option<String>>(i)?
                .map_or(Value::Null, Value::Text)
        });
    }
    Ok(Row(out))
}

/// A pooled connection or a transaction on one; statements are prepared once per connection.
struct PgConn<'a, C>(&'a C);

#[async_trait]
impl<C: GenericClient + Sync> Conn for PgConn<'_, C> {
    async fn exec(&mut self, sql: &str, params: &[Value]) -> StoreResult<u64> {
        let st = self.0.prepare_cached(sql).await?;
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        Ok(self.0.execute(&st, &params).await?)
    }

    async fn insert_id(&mut self, sql: &str, params: &[Value]) -> StoreResult<Option<i64>> {
        let st = self
            .0
            .prepare_cached(&format!("{sql} RETURNING id"))
            .await?;
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        Ok(match self.0.query_opt(&st, &params).await? {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    async fn query(&mut self, sql: &str, params: &[Value]) -> StoreResult<Vec<Row>> {
        let st = self.0.prepare_cached(sql).await?;
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        self.0.query(&st, &params).await?.iter().map(row).collect()
    }
}

#[async_trait]
impl Backend for PgStore {
    const NAME: &'static str = "postgres";

    fn instance(&self) -> &str {
        &self.instance
    }

    fn specs(&self) -> &Arc<SpecCache> {
        &self.specs
    }

    fn schedule_sql(cols: &str) -> String {
        schedule_sql(cols)
    }

    async fn read<T: Send + 'static>(&self, f: Logic<T>) -> StoreResult<T> {
        let c = self.client().await?;
        f(&mut PgConn(&c)).await
    }

    async fn write<T: Send + 'static>(&self, f: Logic<T>) -> StoreResult<T> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let r = f(&mut PgConn(&tx)).await;
        match r {
            Ok(v) => {
                tx.commit().await?;
                Ok(v)
            }
            Err(e) => {
                // Roll back now, not when the pooled connection is next used.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
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
        assert_eq!(
            super::redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}

//! The conformance suite on PostgreSQL. Needs a server: `HEDGE_TEST_DATABASE_URL` (scripts/test starts one).
//! Each test gets its own fresh schema, so tests run in parallel on one server.

use crate::conformance::{self, new_job, with_team, S};
use hedge_store::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const HOW_TO_START: &str = "PostgreSQL tests need a server: run\n\
    \n    eval \"$(bash scripts/pg-test-server start)\"\n\n\
    (or export HEDGE_TEST_DATABASE_URL=postgres://USER@HOST:PORT/DB yourself), then rerun the tests. \
    `bash scripts/test` does this for you.";

/// The server's URL. Tests read their configuration from the environment (they have no CLI).
pub fn database_url() -> String {
    #[allow(clippy::disallowed_methods)]
    let url = std::env::var("HEDGE_TEST_DATABASE_URL");
    match url {
        Ok(u) if !u.trim().is_empty() => u,
        _ => panic!("HEDGE_TEST_DATABASE_URL is not set. {HOW_TO_START}"),
    }
}

/// A unique schema name per test (process id + counter): reruns never collide with leftovers.
pub fn fresh_schema() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "hedge_test_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Drops the test's schema when the test ends (best effort: never panics, even while unwinding).
pub struct DropSchema {
    url: String,
    schema: String,
}

impl DropSchema {
    fn new(schema: &str) -> Self {
        DropSchema {
            url: database_url(),
            schema: schema.to_owned(),
        }
    }
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        // On a thread of its own: we may be inside a runtime that is shutting down.
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((c, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                    tokio::spawn(conn);
                    // Never wait long: a connection of the test's own runtime (blocked while this thread
                    // is joined) could hold a lock. A schema left behind is swept by a later run.
                    let _ = c
                        .batch_execute(&format!(
                            "SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {schema} CASCADE"
                        ))
                        .await;
                }
            })
        })
        .join();
    }
}

/// Drops `hedge_test_<pid>_*` schemas left by test processes that no longer run (once per process).
async fn sweep_stale_schemas(url: &str) {
    static SWEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if SWEPT.swap(true, Ordering::SeqCst) {
        return;
    }
    let Ok((c, conn)) = tokio_postgres::connect(url, tokio_postgres::NoTls).await else {
        return;
    };
    tokio::spawn(conn);
    let Ok(rows) = c
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'hedge\\_test\\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    for r in rows {
        let name: String = r.get(0);
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| {
            p != std::process::id() && !std::path::Path::new(&format!("/proc/{p}")).exists()
        }) {
            let _ = c
                .batch_execute(&format!(
                    "SET lock_timeout = '2s'; DROP SCHEMA IF EXISTS {name} CASCADE"
                ))
                .await;
        }
    }
}

pub async fn connect_schema(schema: &str) -> PgStore {
    let url = database_url();
    sweep_stale_schemas(&url).await;
    match PgStore::connect_with(
        &url,
        &PgOptions {
            schema: Some(schema.to_owned()),
            max_connections: 8,
        },
    )
    .await
    {
        Ok(s) => s,
        Err(e) => panic!(
            "cannot connect to {url}: {e} ({:?}). {HOW_TO_START}",
            std::error::Error::source(&e)
        ),
    }
}

pub async fn make() -> (S, DropSchema) {
    let schema = fresh_schema();
    let guard = DropSchema::new(&schema);
    let store = connect_schema(&schema).await;
    (Arc::new(store), guard)
}

mod suite {
    backend_suite!(super::make);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pools_on_one_database_race_with_one_winner() {
    let schema = fresh_schema();
    let _guard = DropSchema::new(&schema);
    let a: S = Arc::new(connect_schema(&schema).await);
    let b: S = Arc::new(connect_schema(&schema).await);
    conformance::racing_transitions_between(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_migrate_once_and_reopen_keeps_data() {
    let schema = fresh_schema();
    let _guard = DropSchema::new(&schema);
    let opens = (0..4).map(|_| {
        let schema = schema.clone();
        tokio::spawn(async move { connect_schema(&schema).await })
    });
    let mut stores = vec![];
    for h in opens {
        stores.push(h.await.unwrap());
    }
    let instance = stores[0].instance_id().to_owned();
    assert!(stores.iter().all(|s| s.instance_id() == instance));
    assert_eq!(stores[0].schema_version().await.unwrap(), SCHEMA_VERSION);
    let s: S = Arc::new(stores.pop().unwrap());
    with_team(&s, "ml").await;
    let j = s.submit_job(&new_job("ml", 2)).await.unwrap();
    drop(s);
    drop(stores);
    let again = connect_schema(&schema).await;
    assert_eq!(again.job(j.id).await.unwrap(), j);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_or_edited_schemas_are_refused() {
    let schema = fresh_schema();
    let _guard = DropSchema::new(&schema);
    drop(connect_schema(&schema).await);
    let (c, conn) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let table = format!("{schema}.schema_migrations");
    c.batch_execute(&format!(
        "UPDATE {table} SET sha256 = 'edited' WHERE version = 1"
    ))
    .await
    .unwrap();
    let opts = PgOptions {
        schema: Some(schema.clone()),
        max_connections: 2,
    };
    let e = PgStore::connect_with(&database_url(), &opts)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(
            e,
            StoreError::MigrationChanged {
                version: 1,
                name: "init"
            }
        ),
        "{e:?}"
    );
    c.batch_execute(&format!(
        "INSERT INTO {table} VALUES (99, 'future', 'x', 0)"
    ))
    .await
    .unwrap();
    let e = PgStore::connect_with(&database_url(), &opts)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(
            e,
            StoreError::SchemaTooNew {
                found: 99,
                known: SCHEMA_VERSION
            }
        ),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_by_url_and_bad_credentials_are_errors() {
    let s = open(&database_url()).await.unwrap();
    assert_eq!(s.backend(), "postgres");
    s.ping().await.unwrap();
    let e = PgStore::connect("postgres://nobody:pw@127.0.0.1:1/none")
        .await
        .err()
        .expect("no server on port 1");
    assert!(!e.to_string().contains("pw@"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_database_upgrades_in_place() {
    let schema = fresh_schema();
    let _guard = DropSchema::new(&schema);
    let (c, conn) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let v1 = include_str!("../../migrations/postgres/0001_init.sql");
    c.batch_execute(&format!(
        "CREATE SCHEMA {schema}; SET search_path = {schema}"
    ))
    .await
    .unwrap();
    c.batch_execute(v1).await.unwrap();
    c.batch_execute(
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL,
             applied_at BIGINT NOT NULL)",
    )
    .await
    .unwrap();
    c.execute(
        "INSERT INTO schema_migrations VALUES (1, 'init', $1, 0)",
        &[&hash_secret(v1)],
    )
    .await
    .unwrap();
    c.batch_execute(&conformance::v1_fixture_sql("FALSE"))
        .await
        .unwrap();
    // Explicit ids do not advance an identity: do what a v1 store would have done.
    c.batch_execute("SELECT setval(pg_get_serial_sequence('jobs', 'id'), 9)")
        .await
        .unwrap();
    assert!(
        c.batch_execute("UPDATE launch_attempts SET status = 'orphaned'")
            .await
            .is_err(),
        "v1 refuses the new names"
    );

    let s = connect_schema(&schema).await;
    assert_eq!(s.schema_version().await.unwrap(), SCHEMA_VERSION);
    conformance::v1_fixture_survived_upgrade(Arc::new(s)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_queue_is_read_through_its_index_without_a_sort() {
    let schema = fresh_schema();
    let _guard = DropSchema::new(&schema);
    let s = connect_schema(&schema).await;
    let (c, conn) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    // A realistic table: 100k jobs, most of them finished, 20k queued; statistics up to date.
    c.batch_execute(&format!(
        "SET search_path = {schema};
         INSERT INTO teams VALUES ('ml', NULL, '[]', FALSE);
         INSERT INTO jobs (team_id, priority, deadline, spec, submitted_at, state, version, current_attempt, updated_at)
             SELECT 'ml', i % 10, CASE WHEN i % 3 = 0 THEN i END, '{{}}', i,
                    CASE WHEN i % 5 = 0 THEN 'pending' ELSE 'succeeded' END, 0, 0, i
             FROM generate_series(1, 100000) AS i;
         ANALYZE jobs;"
    ))
    .await
    .unwrap();
    let plan = s.schedule_queue_plan().await.unwrap();
    assert!(
        plan.iter().any(|l| l.contains("jobs_schedule")),
        "{plan:#?}"
    );
    assert!(
        !plan.iter().any(|l| l.contains("Sort")),
        "no sort: {plan:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pools_on_one_database_race_attempt_updates_with_one_winner() {
    let schema = fresh_schema();
    let _guard = DropSchema::new(&schema);
    let a: S = Arc::new(connect_schema(&schema).await);
    let b: S = Arc::new(connect_schema(&schema).await);
    conformance::racing_attempt_updates_between(a, b).await;
}

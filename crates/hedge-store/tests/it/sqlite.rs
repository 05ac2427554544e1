//! The conformance suite on SQLite, plus what only SQLite has: a file that survives SIGKILL, several
//! processes (handles) on one file, and migrations on reopen.

use crate::conformance::{self, new_job, on_demand, t, with_team, S};
use hedge_core::{AttemptStatus, JobState};
use hedge_store::*;
use std::sync::Arc;

pub async fn make() -> (S, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("data/hedge.db"))
        .await
        .unwrap();
    (Arc::new(store), dir)
}

mod suite {
    backend_suite!(super::make);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_on_one_file_race_with_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hedge.db");
    let a: S = Arc::new(SqliteStore::open(&path).await.unwrap());
    let b: S = Arc::new(SqliteStore::open(&path).await.unwrap());
    conformance::racing_transitions_between(a, b).await;
}

#[tokio::test]
async fn reopen_keeps_data_and_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hedge.db");
    let s = SqliteStore::open(&path).await.unwrap();
    let instance = s.instance_id().to_owned();
    let s: S = Arc::new(s);
    with_team(&s, "ml").await;
    let j = s.submit_job(&new_job("ml", 3)).await.unwrap();
    drop(s);
    let s = SqliteStore::open(&path).await.unwrap();
    assert_eq!(s.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(
        s.instance_id(),
        instance,
        "the instance id is stored, not regenerated"
    );
    assert_eq!(s.job(j.id).await.unwrap(), j);
    assert_eq!(s.integrity_check().await.unwrap(), Ok(()));
}

#[tokio::test]
async fn a_new_database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hedge.db");
    let s = SqliteStore::open(&path).await.unwrap();
    s.bootstrap_admin_token(t(0)).await.unwrap();
    for p in [path.clone(), path.with_extension("db-wal")] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
}

#[tokio::test]
async fn open_by_url_and_bad_urls() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("x/hedge.db").display());
    let s = open(&url).await.unwrap();
    assert_eq!(s.backend(), "sqlite");
    s.ping().await.unwrap();
    assert!(matches!(open("").await, Err(StoreError::BadUrl { .. })));
    assert!(matches!(
        open("mysql://localhost/db").await,
        Err(StoreError::BadUrl { .. })
    ));
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hedge.db");
    drop(SqliteStore::open(&path).await.unwrap());
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute("INSERT INTO schema_migrations (version, name, sha256, applied_at) VALUES (99, 'future', 'x', 0)", []).unwrap();
    drop(c);
    let e = SqliteStore::open(&path).await.err().expect("refused");
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

#[tokio::test]
async fn a_database_from_before_migration_checksums_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hedge.db");
    let s: S = Arc::new(SqliteStore::open(&path).await.unwrap());
    with_team(&s, "ml").await;
    drop(s);
    // Rebuild schema_migrations as the first published version of this crate wrote it (no sha256).
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "CREATE TABLE old (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
         INSERT INTO old SELECT version, name, applied_at FROM schema_migrations;
         DROP TABLE schema_migrations; ALTER TABLE old RENAME TO schema_migrations;",
    )
    .unwrap();
    drop(c);
    let s = SqliteStore::open(&path).await.unwrap();
    assert_eq!(s.team(&"ml".into()).await.unwrap().id.as_str(), "ml");
    drop(s);
    let c = rusqlite::Connection::open(&path).unwrap();
    let sha: String = c
        .query_row(
            "SELECT sha256 FROM schema_migrations WHERE version = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(sha.len(), 64, "the checksum was recorded");
}

#[tokio::test]
async fn an_edited_applied_migration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hedge.db");
    drop(SqliteStore::open(&path).await.unwrap());
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute(
        "UPDATE schema_migrations SET sha256 = 'edited' WHERE version = 1",
        [],
    )
    .unwrap();
    drop(c);
    let e = SqliteStore::open(&path).await.err().expect("refused");
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
}

#[tokio::test]
async fn corrupt_rows_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hedge.db");
    let s: S = Arc::new(SqliteStore::open(&path).await.unwrap());
    with_team(&s, "ml").await;
    let j = s.submit_job(&new_job("ml", 3)).await.unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute(
        "UPDATE jobs SET spec = '{\"not\": \"a spec\"}' WHERE id = ?1",
        [j.id.0 as i64],
    )
    .unwrap();
    // The handle that submitted the job has its spec cached (specs never change through the store), so
    // read with a fresh one.
    let fresh = SqliteStore::open(&path).await.unwrap();
    let e = fresh.job(j.id).await.unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Corrupt {
                table: "jobs",
                column: "spec",
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn token_secrets_never_reach_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hedge.db");
    let s = SqliteStore::open(&path).await.unwrap();
    let admin = s.bootstrap_admin_token(t(0)).await.unwrap().unwrap();
    drop(s); // checkpoints the WAL into the main file
    let mut bytes = std::fs::read(&path).unwrap();
    for ext in ["db-wal"] {
        if let Ok(more) = std::fs::read(path.with_extension(ext)) {
            bytes.extend(more);
        }
    }
    let hay = String::from_utf8_lossy(&bytes);
    assert!(
        hay.contains(&hash_secret(&admin.secret)),
        "the hash is stored"
    );
    assert!(!hay.contains(&admin.secret), "the secret is not");
}

// ---- crash safety ------------------------------------------------------------------------------------------

/// Where the child writer puts its database. Read only by the child test below.
const CRASH_DB_ENV: &str = "HEDGE_STORE_CRASH_DB";

/// The child half of `file_survives_sigkill_mid_write`: writes jobs, transitions, launches, spend and
/// 40-commitment batches as fast as it can until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of sqlite::file_survives_sigkill_mid_write, which runs it with --include-ignored"]
async fn crash_child_writer() {
    // The child reads its one parameter from the environment its parent set (tests have no CLI of their own).
    #[allow(clippy::disallowed_methods)]
    let path = std::env::var(CRASH_DB_ENV)
        .expect("run by file_survives_sigkill_mid_write with HEDGE_STORE_CRASH_DB set");
    let s: S = Arc::new(SqliteStore::open(&path).await.unwrap());
    s.put_team(&Team::new("ml")).await.unwrap();
    s.record_prices(&[
        hedge_core::ledger::PriceVersion {
            provider: "aws".into(),
            market: hedge_core::Market::OnDemand,
            from: t(0),
            per_gpu_hour: hedge_core::Rate::per_hour(hedge_core::Money::from_usd(2)),
        },
        hedge_core::ledger::PriceVersion {
            provider: "aws".into(),
            market: hedge_core::Market::OnDemand,
            from: t(4),
            per_gpu_hour: hedge_core::Rate::per_hour(hedge_core::Money::from_usd(3)),
        },
    ])
    .await
    .unwrap();
    let base = s.commitments().await.unwrap().len();
    for i in 0u64.. {
        let j = s.submit_job(&new_job("ml", (i % 7) as i32)).await.unwrap();
        s.transition(
            &Transition::new(j.id, JobState::Pending, JobState::Placing, t(1)).reason("placing"),
        )
        .await
        .unwrap();
        let (_, a) = s
            .begin_launch(
                &Transition::new(j.id, JobState::Placing, JobState::Launching, t(2))
                    .reason("placed"),
                &on_demand("aws"),
            )
            .await
            .unwrap();
        s.transition(
            &Transition::new(j.id, JobState::Launching, JobState::Running, t(3))
                .reason("observed_running")
                .with_attempt_update(
                    AttemptUpdate::new(&a.idempotency_key, AttemptStatus::Running, t(3))
                        .handle("pid:1"),
                ),
        )
        .await
        .unwrap();
        // Half the jobs end: the attempt's final status and its ledger segments are one transaction.
        if i % 2 == 0 {
            s.transition(
                &Transition::new(j.id, JobState::Running, JobState::Succeeded, t(6))
                    .reason("succeeded")
                    .with_attempt_update(AttemptUpdate::new(
                        &a.idempotency_key,
                        AttemptStatus::Succeeded,
                        t(6),
                    )),
            )
            .await
            .unwrap();
        }
        s.record_spend(&SpendEntry {
            job: Some(j.id),
            team: "ml".into(),
            provider: "aws".into(),
            market: hedge_core::Market::OnDemand,
            amount: hedge_core::Money::from_micros(1),
            start: t(3),
            end: t(4),
        })
        .await
        .unwrap();
        if i % 5 == 0 {
            let batch: Vec<_> = (0..40)
                .map(|k| conformance::commitment(&format!("b{}-{k}", base as u64 + i), 8))
                .collect();
            s.put_commitments(&batch).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_survives_sigkill_mid_write() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let exe = std::env::current_exe().unwrap();
    let mut last_jobs = 0;
    for round in 0..4u64 {
        let mut child = Command::new(&exe)
            .args([
                "sqlite::crash_child_writer",
                "--exact",
                "--include-ignored",
                "--test-threads=1",
            ])
            .env(CRASH_DB_ENV, &path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until it has made progress (at least 20 more jobs), then a little longer (varying per round)
        // so the kill lands at a different point of the write loop each time.
        for polls in 0.. {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                use std::io::Read;
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("child writer exited early ({status}): {err}");
            }
            let jobs: i64 = rusqlite::Connection::open(&path)
                .and_then(|c| {
                    c.busy_timeout(std::time::Duration::from_secs(5))?;
                    c.query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))
                })
                .unwrap_or(0);
            if jobs as usize >= last_jobs + 20 {
                break;
            }
            assert!(
                polls < 6000,
                "round {round}: the child made no progress in 6000 polls (about 2 minutes)"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(7 + 31 * round)).await;
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();

        let s = SqliteStore::open(&path).await.unwrap();
        assert_eq!(s.integrity_check().await.unwrap(), Ok(()), "round {round}");
        let jobs = s
            .list_jobs(&JobFilter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .jobs;
        let mut all = jobs.clone();
        let mut next = s
            .list_jobs(&JobFilter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .next;
        while let Some(after) = next {
            let p = s
                .list_jobs(&JobFilter {
                    limit: 1000,
                    after: Some(after),
                    ..Default::default()
                })
                .await
                .unwrap();
            all.extend(p.jobs);
            next = p.next;
        }
        assert!(
            all.len() > last_jobs,
            "round {round}: the child wrote nothing ({} jobs)",
            all.len()
        );
        last_jobs = all.len();
        for j in &all {
            let ev = s.job_events(j.id).await.unwrap();
            assert_eq!(ev.len() as u64, j.version + 1, "job {}", j.id);
            let replayed =
                hedge_core::job::replay(ev.iter().skip(1).map(|e| (e.from.unwrap(), e.to)));
            assert_eq!(replayed, Ok(j.state), "job {}", j.id);
            let attempts = s.attempts(j.id).await.unwrap();
            assert_eq!(attempts.len() as u32, j.current_attempt, "job {}", j.id);
            if j.state == JobState::Running {
                assert_eq!(attempts[0].status, AttemptStatus::Running);
            }
        }
        // The ledger: every ended attempt has exactly its segments (none lost, none doubled), and no attempt
        // still in flight has any.
        let book = hedge_core::ledger::PriceBook::new(s.price_versions().await.unwrap());
        let mut booked =
            std::collections::BTreeMap::<String, Vec<hedge_core::ledger::Segment>>::new();
        let mut after = None;
        loop {
            let page = s
                .ledger_segments(None, t(-1), t(1_000_000), after, 5000)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some((last.1.start, last.0));
            for (_, seg) in page {
                booked.entry(seg.attempt.clone()).or_default().push(seg);
            }
        }
        let mut ended = 0;
        for j in &all {
            for a in s.attempts(j.id).await.unwrap() {
                let got = booked.remove(&a.idempotency_key).unwrap_or_default();
                if a.status.is_terminal() {
                    ended += 1;
                    let want = hedge_core::ledger::segments(
                        &book,
                        &span_of(&a, "ml".into()),
                        a.updated_at,
                    );
                    assert_eq!(got, want, "round {round}: attempt {}", a.idempotency_key);
                    assert_eq!(
                        got.len(),
                        2,
                        "round {round}: a price change at t(4) splits [t(2), t(6))"
                    );
                } else {
                    assert!(
                        got.is_empty(),
                        "round {round}: in-flight attempt {} has segments",
                        a.idempotency_key
                    );
                }
            }
        }
        assert!(
            ended > 0 && booked.is_empty(),
            "round {round}: {ended} ended; segments of no attempt: {booked:?}"
        );
        // Commitment batches are all or nothing.
        let mut per_batch = std::collections::BTreeMap::<String, usize>::new();
        for c in s.commitments().await.unwrap() {
            *per_batch
                .entry(c.id.as_str().split('-').next().unwrap().to_owned())
                .or_default() += 1;
        }
        assert!(per_batch.values().all(|&n| n == 40), "{per_batch:?}");
    }
}

#[tokio::test]
async fn a_version_1_database_upgrades_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hedge.db");
    let v1 = include_str!("../../migrations/sqlite/0001_init.sql");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.pragma_update(None, "foreign_keys", true).unwrap();
    c.execute_batch(v1).unwrap();
    c.execute_batch(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL,
             applied_at INTEGER NOT NULL)",
    )
    .unwrap();
    c.execute(
        "INSERT INTO schema_migrations VALUES (1, 'init', ?1, 0)",
        [hash_secret(v1)],
    )
    .unwrap();
    c.execute_batch(&conformance::v1_fixture_sql("0")).unwrap();
    // The old schema refuses the new names.
    assert!(c
        .execute("UPDATE launch_attempts SET status = 'orphaned'", [])
        .is_err());
    drop(c);

    let s = SqliteStore::open(&path).await.unwrap();
    assert_eq!(s.schema_version().await.unwrap(), SCHEMA_VERSION);
    let s: S = Arc::new(s);
    conformance::v1_fixture_survived_upgrade(s.clone()).await;
    drop(s);
    let s = SqliteStore::open(&path).await.unwrap();
    assert_eq!(s.integrity_check().await.unwrap(), Ok(()));
    // Foreign keys are on again after the migration.
    let entry = SpendEntry {
        job: Some(hedge_core::JobId(12345)),
        team: "ml".into(),
        provider: "aws".into(),
        market: hedge_core::Market::Spot,
        amount: hedge_core::Money::from_micros(1),
        start: t(0),
        end: t(1),
    };
    assert!(matches!(
        s.record_spend(&entry).await,
        Err(StoreError::UnknownJob { .. })
    ));
    let c = rusqlite::Connection::open(&path).unwrap();
    let fk: i64 = c.query_row("SELECT COUNT(*) FROM pragma_foreign_key_list('launch_attempts') WHERE \"table\" = 'jobs'", [], |r| r.get(0)).unwrap();
    assert_eq!(fk, 1, "launch_attempts still references jobs");
}

#[tokio::test]
async fn the_schedule_queue_is_read_through_its_index_without_a_sort() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path().join("hedge.db"))
        .await
        .unwrap();
    let plan = s.schedule_queue_plan().await.unwrap();
    assert!(
        plan.iter().any(|l| l.contains("USING INDEX jobs_schedule")),
        "{plan:?}"
    );
    assert!(
        !plan.iter().any(|l| l.contains("TEMP B-TREE")),
        "no sort: {plan:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_on_one_file_race_attempt_updates_with_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hedge.db");
    let a: S = Arc::new(SqliteStore::open(&path).await.unwrap());
    let b: S = Arc::new(SqliteStore::open(&path).await.unwrap());
    conformance::racing_attempt_updates_between(a, b).await;
}

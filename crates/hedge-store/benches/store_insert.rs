//! Store-level throughput: job submits (one writer and 16 concurrent writers), CAS transitions, loading a
//! 100k-job queue and reading the scheduler's 5,000-job window of it (`schedule_queue`), on SQLite and (with `--pg URL`) PostgreSQL. Each backend is also compared with a raw
//! baseline measured in the same run: the same two INSERTs per job written directly with rusqlite /
//! tokio-postgres, without the store.
//!
//! Run through `bench/broker/store/run.sh`, or:
//! `cargo bench -p hedge-store --bench store_insert -- [--pg postgres://...] [--jobs N] [--queue N]`

// A benchmark measures wall time: Instant::now is allowed here (clippy.toml bans it elsewhere).
#![allow(clippy::disallowed_methods)]

use hedge_core::{AccelRequest, Accelerator, JobState, ResourceRequest, TaskSpec, Timestamp};
use hedge_store::{NewJob, PgOptions, PgStore, SqliteStore, Store, Team, Transition};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    pg: Option<String>,
    jobs: usize,
    queue: usize,
    writers: usize,
}

fn args() -> Args {
    let mut a = Args {
        pg: None,
        jobs: 5000,
        queue: 100_000,
        writers: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--pg" => a.pg = it.next(),
            "--jobs" => a.jobs = it.next().and_then(|v| v.parse().ok()).expect("--jobs N"),
            "--queue" => a.queue = it.next().and_then(|v| v.parse().ok()).expect("--queue N"),
            "--writers" => a.writers = it.next().and_then(|v| v.parse().ok()).expect("--writers N"),
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

fn job(i: usize) -> NewJob {
    let mut spec = TaskSpec::single(ResourceRequest {
        accelerators: Some(AccelRequest::new(Accelerator::parse("H100").unwrap(), 8)),
        ..Default::default()
    });
    spec.name = Some(format!("train-{i}"));
    spec.run = Some("python train.py --epochs 3 --lr 3e-4".into());
    NewJob {
        team: "ml".into(),
        priority: (i % 10) as i32,
        deadline: None,
        spec,
        submitted_at: Timestamp::from_unix(1_780_000_000 + i as i64),
        idempotency: None,
    }
}

#[derive(Default)]
struct Stats {
    ops: usize,
    wall: Duration,
    lat: Vec<Duration>,
}

impl Stats {
    fn per_sec(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64()
    }
    fn pct(&self, p: f64) -> f64 {
        if self.lat.is_empty() {
            return f64::NAN;
        }
        let mut l = self.lat.clone();
        l.sort();
        let i = ((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1;
        l[i].as_secs_f64() * 1e3
    }
}

fn row(backend: &str, case: &str, s: &Stats) {
    println!(
        "{backend:<9} {case:<34} {:>10.0} {:>9.3} {:>9.3}",
        s.per_sec(),
        s.pct(0.50),
        s.pct(0.99)
    );
}

async fn submit_sequential(s: &Arc<dyn Store>, n: usize, offset: usize) -> Stats {
    let mut st = Stats {
        ops: n,
        ..Default::default()
    };
    let t0 = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        s.submit_job(&job(offset + i)).await.unwrap();
        st.lat.push(t.elapsed());
    }
    st.wall = t0.elapsed();
    st
}

async fn submit_concurrent(s: &Arc<dyn Store>, writers: usize, per: usize, offset: usize) -> Stats {
    let t0 = Instant::now();
    let mut hs = vec![];
    for w in 0..writers {
        let s = s.clone();
        hs.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for i in 0..per {
                let t = Instant::now();
                s.submit_job(&job(offset + w * per + i)).await.unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat = vec![];
    for h in hs {
        lat.extend(h.await.unwrap());
    }
    Stats {
        ops: writers * per,
        wall: t0.elapsed(),
        lat,
    }
}

async fn transitions(s: &Arc<dyn Store>, n: usize) -> Stats {
    let pending = s.jobs_in_states(&[JobState::Pending]).await.unwrap();
    let mut st = Stats {
        ops: n.min(pending.len()),
        ..Default::default()
    };
    let t0 = Instant::now();
    for j in pending.iter().take(n) {
        let t = Instant::now();
        s.transition(
            &Transition::new(j.id, JobState::Pending, JobState::Placing, j.submitted_at)
                .reason("placing"),
        )
        .await
        .unwrap();
        st.lat.push(t.elapsed());
    }
    st.wall = t0.elapsed();
    st
}

/// CPU time this process has used (user + system), from /proc/self/stat, in milliseconds (10 ms ticks).
/// On a shared machine wall time inflates with the load average; CPU time much less.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields overall.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) * 10.0
}

/// Fills the store up to `queue` pending jobs, then times `jobs_in_states(Pending)` and `queued_jobs(Pending)`
/// (best of 3 each; the first `queued_jobs` call warms the spec cache of jobs this handle did not submit).
async fn queue_load(
    s: &Arc<dyn Store>,
    queue: usize,
    writers: usize,
) -> (usize, [(Duration, f64); 3]) {
    let have = s.jobs_in_states(&[JobState::Pending]).await.unwrap().len();
    if queue > have {
        let per = (queue - have).div_ceil(writers);
        submit_concurrent(s, writers, per, 10_000_000).await;
    }
    let mut best = [(Duration::MAX, f64::MAX); 3];
    let mut n = 0;
    for _ in 0..3 {
        let (t, c) = (Instant::now(), cpu_ms());
        n = s.jobs_in_states(&[JobState::Pending]).await.unwrap().len();
        best[0] = (best[0].0.min(t.elapsed()), best[0].1.min(cpu_ms() - c));
        let (t, c) = (Instant::now(), cpu_ms());
        assert_eq!(s.queued_jobs(&[JobState::Pending]).await.unwrap().len(), n);
        best[1] = (best[1].0.min(t.elapsed()), best[1].1.min(cpu_ms() - c));
        let (t, c) = (Instant::now(), cpu_ms());
        assert_eq!(s.schedule_queue(5_000).await.unwrap().len(), n.min(5_000));
        best[2] = (best[2].0.min(t.elapsed()), best[2].1.min(cpu_ms() - c));
    }
    (n, best)
}

/// The same rows as `submit_job` writes (a job and its submission event, one transaction), with rusqlite
/// directly on a file with the same schema and pragmas.
fn raw_sqlite(path: &std::path::Path, n: usize) -> Stats {
    let mut c = rusqlite::Connection::open(path).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "NORMAL").unwrap();
    c.pragma_update(None, "foreign_keys", true).unwrap();
    let mut st = Stats {
        ops: n,
        ..Default::default()
    };
    let t0 = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        let j = job(i);
        let spec = serde_json::to_string(&j.spec).unwrap();
        let tx = c
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        tx.prepare_cached(
            "INSERT INTO jobs (team_id, priority, deadline, spec, submitted_at, state, version, current_attempt, updated_at)
             VALUES (?1, ?2, NULL, ?3, ?4, 'pending', 0, 0, ?4)",
        )
        .unwrap()
        .execute(rusqlite::params![j.team.as_str(), j.priority, spec, j.submitted_at.unix()])
        .unwrap();
        let id = tx.last_insert_rowid();
        tx.prepare_cached(
            "INSERT INTO job_events (job_id, seq, from_state, to_state, reason, explanation, at)
             VALUES (?1, 0, NULL, 'pending', 'submitted', 'null', ?2)",
        )
        .unwrap()
        .execute(rusqlite::params![id, j.submitted_at.unix()])
        .unwrap();
        tx.commit().unwrap();
        st.lat.push(t.elapsed());
    }
    st.wall = t0.elapsed();
    st
}

async fn raw_postgres(url: &str, schema: &str, n: usize) -> Stats {
    let (mut c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c.batch_execute(&format!("SET search_path = {schema}"))
        .await
        .unwrap();
    let mut st = Stats {
        ops: n,
        ..Default::default()
    };
    let ins_job = c
        .prepare(
            "INSERT INTO jobs (team_id, priority, deadline, spec, submitted_at, state, version, current_attempt, updated_at)
             VALUES ($1, $2, NULL, $3, $4, 'pending', 0, 0, $4) RETURNING id",
        )
        .await
        .unwrap();
    let ins_ev = c
        .prepare(
            "INSERT INTO job_events (job_id, seq, from_state, to_state, reason, explanation, at)
             VALUES ($1, 0, NULL, 'pending', 'submitted', 'null', $2)",
        )
        .await
        .unwrap();
    let t0 = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        let j = job(i);
        let spec = serde_json::to_string(&j.spec).unwrap();
        let tx = c.transaction().await.unwrap();
        let id: i64 = tx
            .query_one(
                &ins_job,
                &[
                    &j.team.as_str(),
                    &i64::from(j.priority),
                    &spec,
                    &j.submitted_at.unix(),
                ],
            )
            .await
            .unwrap()
            .get(0);
        tx.execute(&ins_ev, &[&id, &j.submitted_at.unix()])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        st.lat.push(t.elapsed());
    }
    st.wall = t0.elapsed();
    st
}

struct Result {
    seq: Stats,
    conc: Stats,
    raw: Stats,
}

async fn run_backend(name: &str, s: Arc<dyn Store>, raw: Stats, a: &Args) -> Result {
    s.put_team(&Team::new("ml")).await.unwrap();
    let seq = submit_sequential(&s, a.jobs, 0).await;
    row(name, "submit_job, 1 writer", &seq);
    let per = a.jobs.div_ceil(a.writers);
    let conc = submit_concurrent(&s, a.writers, per, a.jobs).await;
    row(name, &format!("submit_job, {} writers", a.writers), &conc);
    row(name, "raw INSERTs (baseline), 1 writer", &raw);
    let tr = transitions(&s, a.jobs).await;
    row(name, "transition CAS, 1 writer", &tr);
    let (n, [d, q, w]) = queue_load(&s, a.queue, a.writers).await;
    for (case, (wall, cpu)) in [
        ("jobs_in_states(pending)", d),
        ("queued_jobs(pending), shared specs", q),
        ("schedule_queue(5000)", w),
    ] {
        println!(
            "{name:<9} {case:<34} {:>10} {:>9.1} ms wall, {cpu:.0} ms client CPU (best of 3)",
            format!("{n} jobs"),
            wall.as_secs_f64() * 1e3
        );
    }
    Result { seq, conc, raw }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    println!(
        "hedge-store insert benchmark: {} jobs per case, {} writers, queue of {}",
        a.jobs, a.writers, a.queue
    );
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        println!(
            "load average at start: {}",
            l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        );
    }
    println!(
        "{:<9} {:<34} {:>10} {:>9} {:>9}",
        "backend", "case", "ops/s", "p50 ms", "p99 ms"
    );

    let dir = tempfile::tempdir().unwrap();
    // Raw baseline first, on its own file with the store's schema.
    let raw_path = dir.path().join("raw.db");
    let rs = SqliteStore::open(&raw_path).await.unwrap();
    rs.put_team(&Team::new("ml")).await.unwrap();
    drop(rs);
    let raw = raw_sqlite(&raw_path, a.jobs);
    let sqlite: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path().join("hedge.db"))
            .await
            .unwrap(),
    );
    let sq = run_backend("sqlite", sqlite, raw, &a).await;

    let mut pg_res = None;
    if let Some(url) = &a.pg {
        let schema = format!("hedge_bench_{}", std::process::id());
        let raw_schema = format!("{schema}_raw");
        let opts = |s: &str| PgOptions {
            schema: Some(s.to_owned()),
            max_connections: a.writers,
        };
        let rs = PgStore::connect_with(url, &opts(&raw_schema))
            .await
            .unwrap();
        rs.put_team(&Team::new("ml")).await.unwrap();
        drop(rs);
        let raw = raw_postgres(url, &raw_schema, a.jobs).await;
        let pg: Arc<dyn Store> =
            Arc::new(PgStore::connect_with(url, &opts(&schema)).await.unwrap());
        pg_res = Some(run_backend("postgres", pg, raw, &a).await);
        let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c.batch_execute(&format!(
            "DROP SCHEMA {schema} CASCADE; DROP SCHEMA {raw_schema} CASCADE"
        ))
        .await
        .unwrap();
    }

    println!();
    println!("ratios (same run):");
    println!(
        "  sqlite   store submit / raw rusqlite INSERTs, 1 writer:  {:.2}x",
        sq.seq.per_sec() / sq.raw.per_sec()
    );
    if let Some(pg) = &pg_res {
        println!(
            "  postgres store submit / raw tokio-postgres, 1 writer:  {:.2}x",
            pg.seq.per_sec() / pg.raw.per_sec()
        );
        println!(
            "  postgres / sqlite submit, 1 writer:                   {:.2}x",
            pg.seq.per_sec() / sq.seq.per_sec()
        );
        println!(
            "  postgres / sqlite submit, {} writers:                 {:.2}x",
            a.writers,
            pg.conc.per_sec() / sq.conc.per_sec()
        );
    } else {
        println!("  (postgres skipped: pass --pg postgres://...)");
    }
}

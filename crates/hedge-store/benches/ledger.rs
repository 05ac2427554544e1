//! The ledger at scale: 1M segments (20 teams, 12 months), on SQLite and (with `--pg URL`) PostgreSQL.
//!
//! 1. spend by team for a month through the store (`Store::booked_spend_by_team`: each segment by its
//!    overlap with the window, the index range of the month), for each of the 12 months; against a plain
//!    SQL `GROUP BY team_id` over the same table and month (whole segments, no overlap), in the same run;
//! 2. a FOCUS 1.0 export of every segment of the year: keyset pages of 5,000 segments from the store, mapped
//!    by `hedge_core::focus::Exporter` and written as CSV by `CsvWriter` to a sink (what `/v1/cost/export`
//!    streams, without HTTP); against a plain `SELECT * ... ORDER BY id` written as naive CSV, in the same
//!    run. Peak memory is read from `/proc/self/status` (VmHWM, reset through `/proc/self/clear_refs`
//!    before each export).
//!
//! Run through `bench/ledger/run.sh`, or `cargo bench -p hedge-store --bench ledger -- [--pg URL] [--rows N]`.

// A benchmark measures wall time: Instant::now is allowed here (clippy.toml bans it elsewhere).
#![allow(clippy::disallowed_methods)]

use hedge_core::focus::{CsvWriter, Exporter, FocusVersion};
use hedge_core::ledger::FeeAllocation;
use hedge_core::{AccelRequest, Accelerator, ResourceRequest, TaskSpec, Timestamp};
use hedge_store::{NewJob, PgOptions, PgStore, SqliteStore, Store, Team};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TEAMS: usize = 20;

fn months() -> Vec<(Timestamp, Timestamp)> {
    (1..=12)
        .map(|m| {
            (
                Timestamp::from_ymd(2026, m, 1),
                if m == 12 {
                    Timestamp::from_ymd(2027, 1, 1)
                } else {
                    Timestamp::from_ymd(2026, m + 1, 1)
                },
            )
        })
        .collect()
}

/// Inserts `rows` segments spread evenly over the 12 months of 2026 with one statement per month
/// (a recursive CTE on SQLite, `generate_series` on PostgreSQL): every segment lies inside its month, is
/// 1 to 60 minutes long, on 1, 2, 4 or 8 GPUs, at $1.000000-$4.999999 per GPU-hour.
fn insert_sql(
    month: usize,
    per_month: usize,
    ms: Timestamp,
    me: Timestamp,
    job: i64,
    pg: bool,
) -> String {
    let span = me.unix() - ms.unix() - 3600;
    let gen = if pg {
        format!("FROM generate_series(CAST(1 AS BIGINT), {per_month}) AS g(i)")
    } else {
        format!("FROM (WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {per_month}) SELECT i FROM g) AS g")
    };
    format!(
        "INSERT INTO ledger_segments (attempt_key, seq, job_id, attempt_no, team_id, provider, region, zone, instance_type,
             market, commitment_id, accelerator, gpus, start_at, end_at, per_gpu_hour_micros, list_per_gpu_hour_micros)
         SELECT 'k{month}-' || CAST(i AS TEXT), 0, {job}, 1, 't' || CAST(i % {TEAMS} AS TEXT), 'aws', 'us-east-1', NULL,
             'p5.48xlarge', CASE WHEN i % 3 = 0 THEN 'spot' ELSE 'on_demand' END, NULL, 'H100',
             CASE i % 4 WHEN 0 THEN 1 WHEN 1 THEN 2 WHEN 2 THEN 4 ELSE 8 END,
             {s} + (i * 7919) % {span}, {s} + (i * 7919) % {span} + 60 + (i * 31) % 3540,
             1000000 + (i * 104729) % 4000000, 5000000
         {gen}",
        s = ms.unix(),
    )
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Sink(u64);
impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Raw access to the same database for the inserts and the baselines.
enum Raw {
    Sqlite(rusqlite::Connection),
    Pg(tokio_postgres::Client),
}

impl Raw {
    async fn exec(&mut self, sql: &str) {
        match self {
            Raw::Sqlite(c) => {
                c.execute_batch(sql).unwrap();
            }
            Raw::Pg(c) => {
                c.batch_execute(sql).await.unwrap();
            }
        }
    }
    /// The plain GROUP BY: whole segments that start in the month, per team.
    async fn group_by(&mut self, ms: Timestamp, me: Timestamp) -> usize {
        let sql = "SELECT team_id, SUM(per_gpu_hour_micros * gpus * (end_at - start_at) / 3600) FROM ledger_segments
                   WHERE start_at >= $1 AND start_at < $2 GROUP BY team_id";
        match self {
            Raw::Sqlite(c) => {
                let mut st = c.prepare_cached(&sql.replace('$', "?")).unwrap();
                let rows: Vec<(String, i64)> = st
                    .query_map([ms.unix(), me.unix()], |r| Ok((r.get(0)?, r.get(1)?)))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                rows.len()
            }
            Raw::Pg(c) => c.query(sql, &[&ms.unix(), &me.unix()]).await.unwrap().len(),
        }
    }
    /// The plain dump: every row, written as naive CSV.
    async fn dump(&mut self, out: &mut impl Write) -> usize {
        let sql = "SELECT id, attempt_key, seq, job_id, team_id, provider, market, gpus, start_at, end_at, per_gpu_hour_micros
                   FROM ledger_segments ORDER BY id";
        let mut n = 0;
        match self {
            Raw::Sqlite(c) => {
                let mut st = c.prepare(sql).unwrap();
                let mut rows = st.query([]).unwrap();
                while let Some(r) = rows.next().unwrap() {
                    let (a, b, c2, d): (i64, String, i64, i64) = (
                        r.get(0).unwrap(),
                        r.get(1).unwrap(),
                        r.get(2).unwrap(),
                        r.get(3).unwrap(),
                    );
                    let (e, f, g): (String, String, String) =
                        (r.get(4).unwrap(), r.get(5).unwrap(), r.get(6).unwrap());
                    let (h, i, j, k): (i64, i64, i64, i64) = (
                        r.get(7).unwrap(),
                        r.get(8).unwrap(),
                        r.get(9).unwrap(),
                        r.get(10).unwrap(),
                    );
                    writeln!(out, "{a},{b},{c2},{d},{e},{f},{g},{h},{i},{j},{k}").unwrap();
                    n += 1;
                }
            }
            Raw::Pg(c) => {
                // Streamed in pages by a cursor, as a client would for 1M rows.
                let tx = c.transaction().await.unwrap();
                tx.batch_execute(&format!("DECLARE dump NO SCROLL CURSOR FOR {sql}"))
                    .await
                    .unwrap();
                loop {
                    let rows = tx.query("FETCH 5000 FROM dump", &[]).await.unwrap();
                    if rows.is_empty() {
                        break;
                    }
                    for r in &rows {
                        let (a, b, c2, d): (i64, String, i64, i64) =
                            (r.get(0), r.get(1), r.get(2), r.get(3));
                        let (e, f, g): (String, String, String) = (r.get(4), r.get(5), r.get(6));
                        let (h, i, j, k): (i64, i64, i64, i64) =
                            (r.get(7), r.get(8), r.get(9), r.get(10));
                        writeln!(out, "{a},{b},{c2},{d},{e},{f},{g},{h},{i},{j},{k}").unwrap();
                        n += 1;
                    }
                }
                tx.commit().await.unwrap();
            }
        }
        n
    }
}

async fn run(name: &str, store: Arc<dyn Store>, mut raw: Raw, rows: usize, pg: bool) {
    store.put_team(&Team::new("ml")).await.unwrap();
    let spec = TaskSpec::single(ResourceRequest {
        accelerators: Some(AccelRequest::new(Accelerator::parse("H100").unwrap(), 8)),
        ..Default::default()
    });
    let job = store
        .submit_job(&NewJob {
            team: "ml".into(),
            priority: 0,
            deadline: None,
            spec,
            submitted_at: Timestamp::from_ymd(2026, 1, 1),
            idempotency: None,
        })
        .await
        .unwrap();
    let t0 = Instant::now();
    for (m, (ms, me)) in months().into_iter().enumerate() {
        raw.exec(&insert_sql(m, rows / 12, ms, me, job.id.0 as i64, pg))
            .await;
    }
    // What autovacuum does to a table after a bulk load (on PostgreSQL the visibility map makes the covering
    // index scans index-only).
    raw.exec(if pg {
        "VACUUM ANALYZE ledger_segments"
    } else {
        "ANALYZE"
    })
    .await;
    let total = (rows / 12) * 12;
    println!(
        "{name:<9} inserted {total} segments in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    // 1. Spend by team and month, three rounds over the 12 months; medians per query.
    let (mut store_t, mut plain_t) = (Vec::new(), Vec::new());
    let mut teams_seen = 0;
    for _ in 0..3 {
        for (ms, me) in months() {
            let t = Instant::now();
            let by_team = store.booked_spend_by_team(ms, me).await.unwrap();
            store_t.push(t.elapsed());
            teams_seen = teams_seen.max(by_team.len());
            let t = Instant::now();
            let n = raw.group_by(ms, me).await;
            plain_t.push(t.elapsed());
            assert_eq!(n, by_team.len());
        }
    }
    let year_store: Duration = store_t[..12].iter().sum();
    let (s, p) = (median(store_t), median(plain_t));
    println!(
        "{name:<9} spend by team, one month ({teams_seen} teams, ~{} segments): store {:.1} ms, plain GROUP BY {:.1} ms, ratio {:.2}x; all 12 months {:.0} ms",
        total / 12,
        s.as_secs_f64() * 1e3,
        p.as_secs_f64() * 1e3,
        s.as_secs_f64() / p.as_secs_f64(),
        year_store.as_secs_f64() * 1e3
    );

    // 2. FOCUS export of the year, streamed.
    let (from, to) = (
        Timestamp::from_ymd(2026, 1, 1),
        Timestamp::from_ymd(2027, 1, 1),
    );
    // The reading alone: every page of segments, nothing written.
    let t = Instant::now();
    let (mut after, mut read) = (None, 0usize);
    loop {
        let page = store
            .ledger_segments(None, from, to, after, 5000)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.1.start, last.0));
        read += page.len();
    }
    println!(
        "{name:<9} reading {read} segments in pages of 5,000: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    reset_peak();
    let rss0 = rss_kib("VmRSS:");
    let t = Instant::now();
    let w = CsvWriter::new(FocusVersion::V1_0);
    let mut ex = Exporter::new(vec![], from, to, FeeAllocation::UsageShare);
    let mut sink = Sink(0);
    let mut buf = String::with_capacity(1 << 20);
    w.header_line(&mut buf);
    let (mut after, mut n, mut out_rows) = (None, 0usize, Vec::new());
    loop {
        let page = store
            .ledger_segments(None, from, to, after, 5000)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.1.start, last.0));
        for (_, seg) in &page {
            out_rows.clear();
            ex.usage_rows(seg, &mut out_rows);
            for r in &out_rows {
                w.row(r, &mut buf);
                n += 1;
            }
        }
        sink.write_all(buf.as_bytes()).unwrap();
        buf.clear();
    }
    for r in ex.fee_rows() {
        w.row(&r, &mut buf);
    }
    sink.write_all(buf.as_bytes()).unwrap();
    let export = t.elapsed();
    let peak = rss_kib("VmHWM:");
    reset_peak();
    let t = Instant::now();
    let mut plain_sink = Sink(0);
    let plain_n = raw.dump(&mut plain_sink).await;
    let plain = t.elapsed();
    println!(
        "{name:<9} FOCUS 1.0 export: {n} rows, {:.0} MB in {:.2} s (peak RSS {:.0} MB, {:+.0} MB over the {:.0} MB before); plain SELECT + naive CSV: {plain_n} rows, {:.0} MB in {:.2} s; ratio {:.2}x",
        sink.0 as f64 / 1e6,
        export.as_secs_f64(),
        peak as f64 / 1024.0,
        (peak as f64 - rss0 as f64) / 1024.0,
        rss0 as f64 / 1024.0,
        plain_sink.0 as f64 / 1e6,
        plain.as_secs_f64(),
        export.as_secs_f64() / plain.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut pg = None;
    let mut rows = 1_000_000usize;
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--pg" => pg = it.next(),
            "--rows" => rows = it.next().and_then(|v| v.parse().ok()).expect("--rows N"),
            _ => {} // cargo bench passes --bench
        }
    }
    println!("hedge ledger benchmark: {rows} segments, {TEAMS} teams, 12 months");
    println!(
        "load average at start: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.busy_timeout(Duration::from_secs(30)).unwrap();
    run("sqlite", store, Raw::Sqlite(raw), rows, false).await;
    if let Some(url) = pg {
        let schema = format!("hedge_ledger_bench_{}", std::process::id());
        let opts = PgOptions {
            schema: Some(schema.clone()),
            max_connections: 4,
        };
        let store: Arc<dyn Store> = Arc::new(PgStore::connect_with(&url, &opts).await.unwrap());
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(&format!("SET search_path TO {schema}"))
            .await
            .unwrap();
        run("postgres", store, Raw::Pg(client), rows, true).await;
        let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .unwrap();
    }
}

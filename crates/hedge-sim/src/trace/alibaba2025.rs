//! Alibaba cluster-trace-gpu-v2025 (disaggregated DLRM serving): `disaggregated_DLRM_trace.csv`.
//!
//! Every instance with `gpu_request > 0` (the `HN` role) is a long-running [`JobKind::Service`] with
//! priority 3 and no checkpoints. An empty `creation_time` means the instance existed before the trace
//! began (submit = 0); an empty `deletion_time` means it still ran when the trace ended (it runs to the
//! last time seen anywhere in the file). Duration is measured from `scheduled_time` when present, else
//! from creation. CPU-only instances (`CN`) are excluded (counted).

use super::{
    csv_records, finish, parse_count, parse_secs, Header, Lines, Tables, Trace, TraceOptions,
};
use crate::error::SimError;
use crate::job::{JobKind, JobSpec};
use std::path::Path;

pub fn parse(file: &Path, text: &str, opts: &TraceOptions) -> Result<Trace, SimError> {
    let mut rdr = csv_records(text);
    let h = Header::new(
        file,
        rdr.headers().map_err(|e| SimError::BadFile {
            file: file.into(),
            reason: e.to_string(),
        })?,
    );
    let (c_gpu, c_create, c_sched, c_del, c_app) = (
        h.col("gpu_request")?,
        h.col("creation_time")?,
        h.col("scheduled_time")?,
        h.col("deletion_time")?,
        h.col("app_name")?,
    );
    let mut lines = Lines::new(file, opts.skip_bad);
    let mut tables = Tables::new(&opts.default_accel);
    // (submit, start, end or None, gpus, team)
    let mut rows = Vec::new();
    let mut last = 0i64;
    let mut t = Trace::default();
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 2;
        let Some(rec) = lines.ok(line, "record", rec.map_err(|e| e.to_string()))? else {
            continue;
        };
        let get = |c: usize| rec.get(c).unwrap_or("").trim();
        let opt_time = |c: usize| -> Result<Option<i64>, String> {
            let s = get(c);
            if s.is_empty() {
                Ok(None)
            } else {
                parse_secs(s).map(Some)
            }
        };
        let Some(gpus) = lines.ok(line, "gpu_request", parse_count(get(c_gpu)))? else {
            continue;
        };
        let (create, sched, del) = match (opt_time(c_create), opt_time(c_sched), opt_time(c_del)) {
            (Ok(a), Ok(b), Ok(c)) => (a, b, c),
            (Err(e), _, _) => {
                lines.bad(line, "creation_time", e)?;
                continue;
            }
            (_, Err(e), _) => {
                lines.bad(line, "scheduled_time", e)?;
                continue;
            }
            (_, _, Err(e)) => {
                lines.bad(line, "deletion_time", e)?;
                continue;
            }
        };
        last = last
            .max(create.unwrap_or(0))
            .max(sched.unwrap_or(0))
            .max(del.unwrap_or(0));
        if gpus == 0 {
            *t.excluded.entry("cpu-only instance").or_default() += 1;
            continue;
        }
        let submit = create.unwrap_or(0);
        let start = sched.unwrap_or(submit).max(submit);
        if let Some(d) = del {
            if d < start {
                lines.bad(
                    line,
                    "deletion_time",
                    format!("{d} is before the start {start}"),
                )?;
                continue;
            }
        }
        let team = tables.team(get(c_app));
        rows.push((submit, start, del, gpus, team));
    }
    for (submit, start, del, gpus, team) in rows {
        let end = del.unwrap_or(last);
        let mut j = JobSpec::batch(
            t.jobs.len() as u64,
            submit,
            (end - start).max(1) as u64,
            gpus,
        );
        j.kind = JobKind::Service;
        j.priority = 3;
        j.team = team;
        j.restart_overhead_s = opts.restart_overhead_s;
        t.jobs.push(j);
    }
    Ok(finish(t, tables, lines))
}

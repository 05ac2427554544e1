//! Sia workload CSVs (`name,time,application,num_replicas,batch_size`), Philly and Helios (Saturn) samples.
//!
//! submit = `time`, GPUs = `num_replicas`, team = `application`. Sia's files carry no durations (Sia derives
//! them from profiled goodput models that are not part of the data), so each job's duration is drawn, with
//! the run's seed, from the Philly distribution ([`TraceOptions::durations_from`]) among jobs of the same GPU
//! count. Without that distribution the loader fails with a message saying so.

use super::{
    csv_records, finish, parse_count, parse_secs, Header, Lines, Tables, Trace, TraceOptions,
};
use crate::error::SimError;
use crate::job::JobSpec;
use crate::rng::{SimRng, Stream};
use std::path::Path;

pub fn parse(file: &Path, text: &str, opts: &TraceOptions) -> Result<Trace, SimError> {
    let dist = opts.durations_from.as_ref().ok_or_else(|| SimError::BadFile {
        file: file.into(),
        reason: "Sia traces carry no job durations: give the Philly distribution to draw them from (--durations-from philly_job_distribution.csv)".into(),
    })?;
    let mut rdr = csv_records(text);
    let h = Header::new(
        file,
        rdr.headers().map_err(|e| SimError::BadFile {
            file: file.into(),
            reason: e.to_string(),
        })?,
    );
    let (c_time, c_app, c_n) = (
        h.col("time")?,
        h.col("application")?,
        h.col("num_replicas")?,
    );
    let mut lines = Lines::new(file, opts.skip_bad);
    let mut tables = Tables::new(&opts.default_accel);
    let mut rng = SimRng::new(opts.seed, Stream::Durations);
    let mut t = Trace::default();
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 2;
        let Some(rec) = lines.ok(line, "record", rec.map_err(|e| e.to_string()))? else {
            continue;
        };
        let get = |c: usize| rec.get(c).unwrap_or("").trim();
        let Some(submit) = lines.ok(line, "time", parse_secs(get(c_time)))? else {
            continue;
        };
        let gpus = match parse_count(get(c_n)) {
            Ok(v) if v > 0 => v,
            Ok(_) => {
                lines.bad(line, "num_replicas", "must be at least 1")?;
                continue;
            }
            Err(e) => {
                lines.bad(line, "num_replicas", e)?;
                continue;
            }
        };
        let mut j = JobSpec::batch(
            t.jobs.len() as u64,
            submit,
            dist.duration_for(gpus, &mut rng),
            gpus,
        );
        j.team = tables.team(get(c_app));
        j.checkpoint_interval_s = opts.checkpoint_interval_s;
        j.restart_overhead_s = opts.restart_overhead_s;
        t.jobs.push(j);
    }
    Ok(finish(t, tables, lines))
}

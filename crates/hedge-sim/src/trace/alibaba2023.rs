//! Alibaba cluster-trace-gpu-v2023 pod lists (`openb_pod_list_*.csv`).
//!
//! Columns used: `num_gpu`, `gpu_milli`, `gpu_spec` (optional), `qos` (optional), `creation_time`,
//! `scheduled_time`, `deletion_time`, all times in seconds from the trace start. A pod is a job:
//! submit = `creation_time`, duration = `deletion_time - scheduled_time` (the time it really ran).
//! Fractional GPU shares (`gpu_milli < 1000`) are rounded up to a whole GPU: clouds rent whole GPUs.
//! `gpu_spec` lists acceptable models (`V100M16|V100M32`); the first one Hedge can name is the job's
//! accelerator (`V100M16` = V100, `V100M32` = V100-32GB; `G1`-`G3` are undisclosed models and map to the
//! run's default accelerator). QoS `LS` (latency-sensitive) gets priority 2, `Burstable` 1, `BE` 0.
//! Excluded (counted): CPU-only pods and pods never scheduled. A file without time columns (the sampled
//! `multigpu50` list) is an error naming the missing column.

use super::{
    csv_records, finish, parse_count, parse_secs, Header, Lines, Tables, Trace, TraceOptions,
};
use crate::error::SimError;
use crate::job::JobSpec;
use hedge_core::Accelerator;
use std::path::Path;

fn model(spec: &str) -> Option<Accelerator> {
    spec.split('|').find_map(|m| {
        let name = match m.trim() {
            "V100M16" => "V100",
            "V100M32" => "V100-32GB",
            "P100" => "P100",
            "T4" => "T4",
            "A10" => "A10",
            _ => return None,
        };
        Accelerator::parse(name).ok()
    })
}

pub fn parse(file: &Path, text: &str, opts: &TraceOptions) -> Result<Trace, SimError> {
    let mut rdr = csv_records(text);
    let h = Header::new(
        file,
        rdr.headers().map_err(|e| SimError::BadFile {
            file: file.into(),
            reason: e.to_string(),
        })?,
    );
    let (c_gpu, c_milli, c_create, c_sched, c_del) = (
        h.col("num_gpu")?,
        h.col("gpu_milli")?,
        h.col("creation_time")?,
        h.col("scheduled_time")?,
        h.col("deletion_time")?,
    );
    let (c_spec, c_qos) = (h.opt("gpu_spec"), h.opt("qos"));
    let mut lines = Lines::new(file, opts.skip_bad);
    let mut tables = Tables::new(&opts.default_accel);
    let mut t = Trace::default();
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 2;
        let Some(rec) = lines.ok(line, "record", rec.map_err(|e| e.to_string()))? else {
            continue;
        };
        let get = |c: usize| rec.get(c).unwrap_or("").trim();
        let Some(gpus) = lines.ok(line, "num_gpu", parse_count(get(c_gpu)))? else {
            continue;
        };
        if let Err(e) = parse_count(get(c_milli)) {
            lines.bad(line, "gpu_milli", e)?;
            continue;
        }
        let Some(create) = lines.ok(line, "creation_time", parse_secs(get(c_create)))? else {
            continue;
        };
        let Some(del) = lines.ok(line, "deletion_time", parse_secs(get(c_del)))? else {
            continue;
        };
        if gpus == 0 {
            *t.excluded.entry("cpu-only pod").or_default() += 1;
            continue;
        }
        let sched_s = get(c_sched);
        if sched_s.is_empty() {
            *t.excluded.entry("never scheduled").or_default() += 1;
            continue;
        }
        let Some(sched) = lines.ok(line, "scheduled_time", parse_secs(sched_s))? else {
            continue;
        };
        if del < sched || sched < create {
            lines.bad(
                line,
                "deletion_time",
                format!("times out of order: created {create}, scheduled {sched}, deleted {del}"),
            )?;
            continue;
        }
        let mut j = JobSpec::batch(
            t.jobs.len() as u64,
            create,
            (del - sched).max(1) as u64,
            gpus,
        );
        if let Some(a) = c_spec.and_then(|c| model(rec.get(c).unwrap_or(""))) {
            j.accel = tables.accel(a);
        }
        j.priority = match c_qos.map(get) {
            Some("LS") => 2,
            Some("Burstable") => 1,
            _ => 0,
        };
        j.checkpoint_interval_s = opts.checkpoint_interval_s;
        j.restart_overhead_s = opts.restart_overhead_s;
        t.jobs.push(j);
    }
    Ok(finish(t, tables, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reports_bad_lines() {
        let text = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n\
                    p0,1,1,2,1000,V100M32|T4,LS,Running,10,110,20\n\
                    p1,1,1,0,0,,BE,Running,10,110,20\n\
                    p2,1,1,1,500,,BE,Pending,10,110,\n\
                    p3,1,1,x,500,,BE,Running,10,110,20\n";
        let f = Path::new("pods.csv");
        let e = parse(f, text, &TraceOptions::default())
            .unwrap_err()
            .to_string();
        assert_eq!(e, "pods.csv:5: field num_gpu: \"x\" is not a number");
        let opts = TraceOptions {
            skip_bad: true,
            ..TraceOptions::default()
        };
        let t = parse(f, text, &opts).unwrap();
        assert_eq!(t.jobs.len(), 1);
        assert_eq!(t.skipped_count, 1);
        let j = t.jobs[0];
        assert_eq!((j.submit, j.duration_s, j.gpus, j.priority), (10, 90, 2, 2));
        assert_eq!(t.accels[j.accel.0 as usize].as_str(), "V100-32GB");
        assert_eq!(t.excluded["cpu-only pod"], 1);
        assert_eq!(t.excluded["never scheduled"], 1);
    }
}

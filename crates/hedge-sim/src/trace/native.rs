//! Hedge's native trace format, **version 1**: JSON Lines.
//!
//! The first non-empty line is the header `{"format":"hedge-trace","version":1}`. Every other non-empty
//! line is one job:
//!
//! ```text
//! {"id":7,"submit_s":120,"duration_s":3600,"gpus":16,"num_nodes":2,"accelerator":"H100",
//!  "checkpoint_interval_s":1800,"restart_overhead_s":300,"deadline_s":14400,"team":"nlp","priority":1,
//!  "kind":"batch"}
//! ```
//!
//! Required: `submit_s` (seconds since trace start), `duration_s` (> 0), `gpus` (> 0). Optional: `id`
//! (default: line order), `num_nodes` (1), `accelerator` (the run's default), `checkpoint_interval_s`
//! (none), `restart_overhead_s` (0), `deadline_s` (absolute, seconds since trace start; none),
//! `team` ("default"), `priority` (0), `kind` (`batch` | `service`). Unknown fields are errors, so a newer
//! version's file is never silently misread; a later version bumps `version`. [`write`] produces this
//! format from any [`Trace`].

use super::{finish, Lines, Tables, Trace, TraceOptions};
use crate::error::SimError;
use crate::job::{JobKind, JobSpec};
use hedge_core::{Accelerator, JobId};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    submit_s: i64,
    duration_s: u64,
    gpus: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    num_nodes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    accelerator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checkpoint_interval_s: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    restart_overhead_s: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deadline_s: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<JobKind>,
}

pub fn parse(file: &Path, text: &str, opts: &TraceOptions) -> Result<Trace, SimError> {
    let mut lines = Lines::new(file, opts.skip_bad);
    let mut tables = Tables::new(&opts.default_accel);
    let mut t = Trace::default();
    let mut header_seen = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        if raw.trim().is_empty() {
            continue;
        }
        if !header_seen {
            let h: Header = serde_json::from_str(raw).map_err(|e| {
                SimError::line(
                    file,
                    line,
                    "header",
                    format!("{e} (expected {{\"format\":\"hedge-trace\",\"version\":{VERSION}}})"),
                )
            })?;
            if h.format != "hedge-trace" {
                return Err(SimError::line(
                    file,
                    line,
                    "format",
                    format!("{:?} is not \"hedge-trace\"", h.format),
                ));
            }
            if h.version != VERSION {
                return Err(SimError::line(
                    file,
                    line,
                    "version",
                    format!(
                        "version {} is not supported (this build reads {VERSION})",
                        h.version
                    ),
                ));
            }
            header_seen = true;
            continue;
        }
        let l: Line = match serde_json::from_str(raw) {
            Ok(l) => l,
            Err(e) => {
                lines.bad(line, "job", e.to_string())?;
                continue;
            }
        };
        if l.submit_s < 0 {
            lines.bad(line, "submit_s", "negative")?;
            continue;
        }
        if l.duration_s == 0 {
            lines.bad(line, "duration_s", "must be positive")?;
            continue;
        }
        if l.gpus == 0 {
            lines.bad(line, "gpus", "must be positive")?;
            continue;
        }
        if l.num_nodes == Some(0) {
            lines.bad(line, "num_nodes", "must be positive")?;
            continue;
        }
        if l.deadline_s.is_some_and(|d| d < l.submit_s) {
            lines.bad(line, "deadline_s", "before submit_s")?;
            continue;
        }
        let accel = match l.accelerator.as_deref().map(Accelerator::parse) {
            None => None,
            Some(Ok(a)) => Some(a),
            Some(Err(e)) => {
                lines.bad(line, "accelerator", e.to_string())?;
                continue;
            }
        };
        let mut j = JobSpec::batch(
            l.id.unwrap_or(t.jobs.len() as u64),
            l.submit_s,
            l.duration_s,
            l.gpus,
        );
        j.id = JobId(l.id.unwrap_or(t.jobs.len() as u64));
        j.num_nodes = l.num_nodes.unwrap_or(1);
        if let Some(a) = accel {
            j.accel = tables.accel(a);
        }
        j.checkpoint_interval_s = l.checkpoint_interval_s.or(opts.checkpoint_interval_s);
        j.restart_overhead_s = l.restart_overhead_s.unwrap_or(opts.restart_overhead_s);
        j.deadline = l.deadline_s;
        if let Some(team) = &l.team {
            j.team = tables.team(team);
        }
        j.priority = l.priority.unwrap_or(0);
        j.kind = l.kind.unwrap_or_default();
        t.jobs.push(j);
    }
    if !header_seen {
        return Err(SimError::BadFile {
            file: file.into(),
            reason: "empty: no hedge-trace header line".into(),
        });
    }
    Ok(finish(t, tables, lines))
}

/// Writes `trace` in the native format (every field explicit).
pub fn write(trace: &Trace) -> String {
    let mut out = serde_json::to_string(&Header {
        format: "hedge-trace".into(),
        version: VERSION,
    })
    .expect("plain struct");
    out.push('\n');
    for j in &trace.jobs {
        let l = Line {
            id: Some(j.id.0),
            submit_s: j.submit,
            duration_s: j.duration_s,
            gpus: j.gpus,
            num_nodes: Some(j.num_nodes),
            accelerator: trace.accels.get(j.accel.0 as usize).map(|a| a.to_string()),
            checkpoint_interval_s: j.checkpoint_interval_s,
            restart_overhead_s: Some(j.restart_overhead_s),
            deadline_s: j.deadline,
            team: trace.teams.get(j.team.0 as usize).map(|t| t.to_string()),
            priority: Some(j.priority),
            kind: Some(j.kind),
        };
        out.push_str(&serde_json::to_string(&l).expect("plain struct"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let text = "{\"format\":\"hedge-trace\",\"version\":1}\n\
                    {\"submit_s\":5,\"duration_s\":60,\"gpus\":8,\"accelerator\":\"h100-sxm\",\"team\":\"nlp\",\"deadline_s\":600,\"kind\":\"service\"}\n\
                    {\"submit_s\":1,\"duration_s\":30,\"gpus\":1}\n";
        let t = parse(Path::new("t.jsonl"), text, &TraceOptions::default()).unwrap();
        let back = parse(Path::new("t2.jsonl"), &write(&t), &TraceOptions::default()).unwrap();
        assert_eq!(t.jobs, back.jobs);
        assert_eq!(t.accels, back.accels);
        let bad = "{\"format\":\"hedge-trace\",\"version\":1}\n{\"submit_s\":1,\"duration_s\":30,\"gpus\":1,\"colour\":\"red\"}\n";
        let e = parse(Path::new("t.jsonl"), bad, &TraceOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.jsonl:2: field job: unknown field `colour`"),
            "{e}"
        );
        let v2 = "{\"format\":\"hedge-trace\",\"version\":2}\n";
        assert!(parse(Path::new("t.jsonl"), v2, &TraceOptions::default())
            .unwrap_err()
            .to_string()
            .contains("version 2 is not supported"));
    }
}

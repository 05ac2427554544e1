//! Trace loaders: real GPU-job traces, a native JSONL format, and a synthetic generator, all producing
//! [`JobSpec`]s sorted by submission time.
//!
//! | kind | file | what becomes a job |
//! |---|---|---|
//! | `alibaba2023` | `openb_pod_list_*.csv` (cluster-trace-gpu-v2023) | every pod with `num_gpu > 0` that was scheduled: submit = `creation_time`, duration = `deletion_time - scheduled_time`, GPU model constraint from `gpu_spec` |
//! | `gavel` | Gavel `*.trace` (Philly-derived, 7 tab-separated fields) | every line: submit = arrival, GPUs = scale factor; duration from a Gavel throughputs table, or resampled from the Philly distribution |
//! | `sia` | Sia `workload-*.csv` | every line: submit = `time`, GPUs = `num_replicas`; duration resampled from the Philly distribution (Sia's files carry none) |
//! | `alibaba2025` | `disaggregated_DLRM_trace.csv` (cluster-trace-gpu-v2025) | every GPU (`HN`) instance, as a long-running service |
//! | `native` | Hedge JSONL, see [`native`] | every line after the header |
//! | `synthetic` | `philly_job_distribution.csv` | generated: Poisson arrivals, (duration, GPUs) pairs drawn from the file |
//!
//! Loaders never panic on bad input: a malformed line is [`SimError::BadLine`] naming the file, line and
//! field, or, with [`TraceOptions::skip_bad`], a counted skip ([`Trace::skipped`]). Lines that are well
//! formed but not replayable (CPU-only pods, pods never scheduled) are counted in [`Trace::excluded`].

pub mod alibaba2023;
pub mod alibaba2025;
pub mod gavel;
pub mod native;
pub mod philly;
pub mod sia;

use crate::error::SimError;
use crate::job::{AccelSym, JobSpec, TeamSym};
use crate::queue::SimTime;
use hedge_core::{Accelerator, TeamId};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use philly::{PhillyDist, Synthetic, SyntheticOptions};

/// The trace kinds `--trace KIND:PATH` accepts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TraceKind {
    Alibaba2023,
    Gavel,
    Sia,
    Alibaba2025,
    Native,
    Synthetic,
}

const KINDS: &str = "alibaba2023, gavel, sia, alibaba2025, native, synthetic";

impl TraceKind {
    pub fn name(self) -> &'static str {
        match self {
            TraceKind::Alibaba2023 => "alibaba2023",
            TraceKind::Gavel => "gavel",
            TraceKind::Sia => "sia",
            TraceKind::Alibaba2025 => "alibaba2025",
            TraceKind::Native => "native",
            TraceKind::Synthetic => "synthetic",
        }
    }
}

/// `KIND:PATH`, parsed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TraceSpec {
    pub kind: TraceKind,
    pub path: PathBuf,
}

impl FromStr for TraceSpec {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        let bad = |reason: &str| SimError::BadTraceSpec {
            spec: s.to_owned(),
            reason: reason.to_owned(),
            kinds: KINDS,
        };
        let (k, p) = s
            .split_once(':')
            .ok_or_else(|| bad("no ':' between kind and path"))?;
        let kind = match k.trim().to_ascii_lowercase().as_str() {
            "alibaba2023" | "alibaba-2023" | "openb" => TraceKind::Alibaba2023,
            "gavel" | "philly-gavel" => TraceKind::Gavel,
            "sia" => TraceKind::Sia,
            "alibaba2025" | "alibaba-2025" | "dlrm" => TraceKind::Alibaba2025,
            "native" | "jsonl" => TraceKind::Native,
            "synthetic" | "philly" => TraceKind::Synthetic,
            _ => return Err(bad("unknown kind")),
        };
        if p.is_empty() {
            return Err(bad("empty path"));
        }
        Ok(TraceSpec {
            kind,
            path: PathBuf::from(p),
        })
    }
}

/// How to read and reshape a trace.
#[derive(Clone, Debug)]
pub struct TraceOptions {
    /// Skip (and count) malformed lines instead of failing on the first.
    pub skip_bad: bool,
    /// Multiplies every time and duration (2.0: everything takes twice as long).
    pub time_scale: f64,
    /// Multiplies the arrival rate by compressing submission times (2.0: twice the load, same jobs).
    pub load_scale: f64,
    /// The accelerator of jobs whose trace names none (interned as [`AccelSym`]`(0)`).
    pub default_accel: Accelerator,
    /// Checkpoint interval given to batch jobs whose trace says nothing (`None`: no checkpoints).
    pub checkpoint_interval_s: Option<u32>,
    /// Restart overhead given to every job whose trace says nothing.
    pub restart_overhead_s: u32,
    /// The Philly (duration, GPUs) distribution, used by `sia` and by `gavel` without throughputs.
    pub durations_from: Option<PhillyDist>,
    /// Gavel throughputs, steps per second by job type (`"ResNet-18 (batch size 64)"`).
    pub gavel_throughputs: Option<BTreeMap<String, f64>>,
    pub seed: u64,
    pub synthetic: SyntheticOptions,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            skip_bad: false,
            time_scale: 1.0,
            load_scale: 1.0,
            default_accel: Accelerator::parse("H100").expect("known name"),
            checkpoint_interval_s: None,
            restart_overhead_s: 0,
            durations_from: None,
            gavel_throughputs: None,
            seed: 0,
            synthetic: SyntheticOptions::default(),
        }
    }
}

/// A line that was skipped under `skip_bad`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Skipped {
    pub line: u64,
    pub reason: String,
}

/// A loaded trace: jobs sorted by (submit, id), plus the interning tables their symbols index.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    pub source: String,
    pub jobs: Vec<JobSpec>,
    pub accels: Vec<Accelerator>,
    pub teams: Vec<TeamId>,
    /// Malformed lines skipped (at most the first 100 kept; `skipped_count` has them all).
    pub skipped: Vec<Skipped>,
    pub skipped_count: u64,
    /// Well-formed lines that are not replayable, by reason.
    pub excluded: BTreeMap<&'static str, u64>,
}

/// Symbol tables being built while loading.
/// Moves what a loader gathered besides its jobs (interned accelerators and teams, skipped lines) into `t`.
pub(crate) fn finish(mut t: Trace, tables: Tables, lines: Lines<'_>) -> Trace {
    t.accels = tables.accels;
    t.teams = tables.teams;
    t.skipped = lines.skipped;
    t.skipped_count = lines.skipped_count;
    t
}

pub(crate) struct Tables {
    pub accels: Vec<Accelerator>,
    pub teams: Vec<TeamId>,
}

impl Tables {
    pub fn new(default_accel: &Accelerator) -> Self {
        Tables {
            accels: vec![default_accel.clone()],
            teams: vec![TeamId::new("default")],
        }
    }
    pub fn accel(&mut self, a: Accelerator) -> AccelSym {
        if let Some(i) = self.accels.iter().position(|x| *x == a) {
            return AccelSym(i as u16);
        }
        self.accels.push(a);
        AccelSym((self.accels.len() - 1) as u16)
    }
    pub fn team(&mut self, t: &str) -> TeamSym {
        if let Some(i) = self.teams.iter().position(|x| x.as_str() == t) {
            return TeamSym(i as u32);
        }
        self.teams.push(TeamId::new(t));
        TeamSym((self.teams.len() - 1) as u32)
    }
}

/// Bad-line bookkeeping shared by the loaders.
pub(crate) struct Lines<'a> {
    pub file: &'a Path,
    pub skip_bad: bool,
    pub skipped: Vec<Skipped>,
    pub skipped_count: u64,
}

impl<'a> Lines<'a> {
    pub fn new(file: &'a Path, skip_bad: bool) -> Self {
        Lines {
            file,
            skip_bad,
            skipped: Vec::new(),
            skipped_count: 0,
        }
    }
    /// Handles a bad line: an error, or a counted skip (`Ok(())`) under `skip_bad`.
    pub fn bad(
        &mut self,
        line: u64,
        field: &str,
        reason: impl Into<String>,
    ) -> Result<(), SimError> {
        let reason = reason.into();
        if !self.skip_bad {
            return Err(SimError::line(self.file, line, field, reason));
        }
        self.skipped_count += 1;
        if self.skipped.len() < 100 {
            self.skipped.push(Skipped {
                line,
                reason: format!("field {field}: {reason}"),
            });
        }
        Ok(())
    }
    /// The value of a parsed field, or `None` after handling the failure as [`Lines::bad`] does, so a loader
    /// writes `let Some(v) = lines.ok(line, "field", parse(..))? else { continue };`.
    pub fn ok<T, E: Into<String>>(
        &mut self,
        line: u64,
        field: &str,
        r: Result<T, E>,
    ) -> Result<Option<T>, SimError> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(e) => self.bad(line, field, e).map(|()| None),
        }
    }
}

/// Parses a non-negative number of seconds written as an integer or a float (`475.00000000000006`).
pub(crate) fn parse_secs(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(v) = s.parse::<i64>() {
        return if v >= 0 {
            Ok(v)
        } else {
            Err(format!("{v} is negative"))
        };
    }
    let f: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !f.is_finite() || !(0.0..=1e15).contains(&f) {
        return Err(format!("{s:?} is not a time in seconds"));
    }
    Ok(f.round() as i64)
}

/// Parses a whole count written as an integer or as a float with no fraction (`8`, `8.0`).
pub(crate) fn parse_count(s: &str) -> Result<u32, String> {
    let s = s.trim();
    if let Ok(v) = s.parse::<u32>() {
        return Ok(v);
    }
    let f: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= u32::MAX as f64 {
        Ok(f as u32)
    } else {
        Err(format!("{s:?} is not a whole count"))
    }
}

pub(crate) fn read_file(path: &Path) -> Result<String, SimError> {
    std::fs::read_to_string(path).map_err(|e| SimError::read(path, e))
}

/// Loads a trace file of any kind except `synthetic` (which streams: use [`Synthetic`]).
pub fn load(spec: &TraceSpec, opts: &TraceOptions) -> Result<Trace, SimError> {
    let text = read_file(&spec.path)?;
    let mut t = parse(spec.kind, &spec.path, &text, opts)?;
    t.source = format!("{}:{}", spec.kind.name(), spec.path.display());
    Ok(t)
}

/// Parses trace text of the given kind; `file` is only used in error messages.
pub fn parse(
    kind: TraceKind,
    file: &Path,
    text: &str,
    opts: &TraceOptions,
) -> Result<Trace, SimError> {
    let mut t = match kind {
        TraceKind::Alibaba2023 => alibaba2023::parse(file, text, opts)?,
        TraceKind::Alibaba2025 => alibaba2025::parse(file, text, opts)?,
        TraceKind::Gavel => gavel::parse(file, text, opts)?,
        TraceKind::Sia => sia::parse(file, text, opts)?,
        TraceKind::Native => native::parse(file, text, opts)?,
        TraceKind::Synthetic => {
            let dist = PhillyDist::parse(file, text, opts.skip_bad)?;
            let jobs: Vec<JobSpec> = Synthetic::new(dist, opts).collect();
            Trace {
                accels: vec![opts.default_accel.clone()],
                teams: vec![TeamId::new("default")],
                jobs,
                ..Trace::default()
            }
        }
    };
    if kind != TraceKind::Synthetic {
        scale(&mut t.jobs, opts.time_scale, opts.load_scale);
    }
    t.jobs.sort_by_key(|j| (j.submit, j.id));
    Ok(t)
}

/// Applies time and load scaling: durations (and deadlines' slack) × `time_scale`; submission times ×
/// `time_scale / load_scale`.
pub fn scale(jobs: &mut [JobSpec], time_scale: f64, load_scale: f64) {
    if time_scale == 1.0 && load_scale == 1.0 {
        return;
    }
    let ts = if time_scale.is_finite() && time_scale > 0.0 {
        time_scale
    } else {
        1.0
    };
    let ls = if load_scale.is_finite() && load_scale > 0.0 {
        load_scale
    } else {
        1.0
    };
    for j in jobs {
        let slack = j.deadline.map(|d| d - j.submit);
        j.submit = (j.submit as f64 * ts / ls).round() as SimTime;
        j.duration_s = ((j.duration_s as f64 * ts).round() as u64).max(1);
        j.deadline = slack.map(|s| j.submit + (s as f64 * ts).round() as SimTime);
    }
}

/// Column positions by header name.
pub(crate) struct Header<'a> {
    file: &'a Path,
    names: Vec<String>,
}

impl<'a> Header<'a> {
    pub fn new(file: &'a Path, rec: &csv::StringRecord) -> Self {
        Header {
            file,
            names: rec
                .iter()
                .map(|s| s.trim().trim_start_matches('\u{feff}').to_owned())
                .collect(),
        }
    }
    pub fn col(&self, name: &str) -> Result<usize, SimError> {
        self.names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| SimError::MissingColumn {
                file: self.file.to_owned(),
                column: name.to_owned(),
                header: self.names.join(","),
            })
    }
    pub fn opt(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

/// Reads CSV records with their 1-based line numbers; a record the csv reader itself rejects is a bad line.
pub(crate) fn csv_records(text: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_specs() {
        let s: TraceSpec = "alibaba2023:/x/openb.csv".parse().unwrap();
        assert_eq!(s.kind, TraceKind::Alibaba2023);
        assert_eq!(s.path, PathBuf::from("/x/openb.csv"));
        assert!("nope:/x"
            .parse::<TraceSpec>()
            .unwrap_err()
            .to_string()
            .contains("unknown kind"));
        assert!("gavel".parse::<TraceSpec>().is_err());
        assert!("gavel:".parse::<TraceSpec>().is_err());
    }

    #[test]
    fn scaling() {
        let mut jobs = vec![JobSpec::batch(0, 100, 50, 1)];
        jobs[0].deadline = Some(200);
        scale(&mut jobs, 2.0, 4.0);
        assert_eq!(jobs[0].submit, 50);
        assert_eq!(jobs[0].duration_s, 100);
        assert_eq!(jobs[0].deadline, Some(250));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_secs("475.00000000000006"), Ok(475));
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("NaN").is_err());
        assert_eq!(parse_count("8.0"), Ok(8));
        assert!(parse_count("1.5").is_err());
    }
}

//! `hedge forecast HISTORY.csv | --focus FILE | --trace KIND:PATH`: usage history → the `horizon`,
//! `accelerators` and `demand:` scenarios of a `hedge.plan/v1` file (method in `hedge_planner::forecast`).
//! Every source becomes the same monthly history: mean GPUs in use per calendar month and accelerator.
//!
//! - **Samples CSV** (`HISTORY.csv`): a header `time,accelerator,gpus`, one row per sample: `time` is
//!   `YYYY-MM` or starts with it (`2026-03-14T10:00:00Z`), `gpus` the GPUs of that accelerator in use at
//!   that time. Rows with the same time and accelerator are added (several clusters or jobs); each month's
//!   value is the mean over the distinct sample times seen in that month (an accelerator missing at a time
//!   counts as 0 then).
//! - **FOCUS cost and usage file** (`--focus FILE`, FOCUS 1.0 columns): `ChargePeriodStart`,
//!   `ChargePeriodEnd`, `ConsumedQuantity`, `ConsumedUnit`, and Hedge's custom column `x_Accelerator` (the
//!   accelerator the charge is for, e.g. `H100`; FOCUS prefixes custom columns with `x_`). A row counts
//!   when its `ConsumedUnit` is GPU-hours (`GPU-Hours`, `GPU Hours`, `GPUHours`, any case) and
//!   `x_Accelerator` is set; other rows (storage, network, CPU) are skipped and counted. Its GPU-hours are
//!   spread evenly over `[ChargePeriodStart, ChargePeriodEnd)`; a month's value is the GPU-hours falling in
//!   it divided by the month's hours. Columns are found by name, in any order, quoted fields allowed.
//! - **Job trace** (`--trace KIND:PATH`, any kind `hedge simulate` reads): each job uses its GPUs from
//!   submission for its duration (demand, as if it ran at once); `--trace-start` is the date of the trace's
//!   time 0 and `--time-scale` stretches it (30: a day of trace is a month of history, for traces days
//!   long). A month's value is the job GPU-hours in it divided by the month's hours.

use anyhow::{bail, Context};
use hedge_planner::forecast::{forecast, ForecastConfig};
use hedge_planner::input::YearMonth;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// CSV of GPUs in use: `time,accelerator,gpus`.
    #[arg(required_unless_present_any = ["focus", "trace"], conflicts_with_all = ["focus", "trace"])]
    pub history: Option<PathBuf>,
    /// A FOCUS cost and usage file (CSV) instead: GPU-hours per `x_Accelerator`.
    #[arg(long, value_name = "FILE", conflicts_with = "trace")]
    pub focus: Option<PathBuf>,
    /// A job trace instead, `KIND:PATH` as `hedge simulate --trace` takes it (alibaba2023, gavel, sia,
    /// alibaba2025, native).
    #[arg(long, value_name = "KIND:PATH")]
    pub trace: Option<String>,
    /// Job traces: the date of the trace's time 0.
    #[arg(long, default_value = "2026-01-01", value_name = "DATE")]
    pub trace_start: String,
    /// Job traces: multiply every time and duration (30: a day of trace becomes a month).
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    pub time_scale: f64,
    /// Job traces: the accelerator of jobs whose trace names none.
    #[arg(long, default_value = "H100")]
    pub accelerator: String,
    /// Months to forecast.
    #[arg(long, default_value_t = 24)]
    pub horizon: usize,
    /// Scenarios to keep (fast forward selection).
    #[arg(long, default_value_t = 5)]
    pub scenarios: usize,
    /// Growth per month you expect (0.03 = 3%); default: the fitted trend.
    #[arg(long)]
    pub growth: Option<f64>,
    /// Season length in months (0 = none).
    #[arg(long, default_value_t = 12)]
    pub season: usize,
    /// Bootstrap paths sampled before reduction.
    #[arg(long, default_value_t = 200)]
    pub paths: usize,
    /// Block length (months) of the residual bootstrap.
    #[arg(long, default_value_t = 3)]
    pub block: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Resample residuals as they are, instead of as a fitted AR(1) from the last residual (the default,
    /// which keeps a recent drift from the fit and widens the band with the horizon).
    #[arg(long)]
    pub iid_residuals: bool,
    /// Write to this file instead of stdout.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

use hedge_core::Timestamp;
use hedge_planner::rolling::plus_months;

/// Monthly history: the first month, accelerator names (sorted), `[a][t]` mean GPUs in use.
pub type Monthly = (YearMonth, Vec<String>, Vec<Vec<f64>>);

/// GPUs in use over intervals `(start, end, accelerator, gpus)` as monthly means: each month's GPU-hours
/// divided by its hours, from the month of the first start to the month of the last end.
pub fn monthly_from_intervals(
    intervals: &[(Timestamp, Timestamp, String, f64)],
) -> anyhow::Result<Monthly> {
    let month_of = |t: Timestamp| {
        let (year, month, ..) = t.to_civil();
        YearMonth { year, month }
    };
    let live: Vec<_> = intervals
        .iter()
        .filter(|i| i.1 > i.0 && i.3 > 0.0)
        .collect();
    let (Some(first), Some(last)) = (
        live.iter().map(|i| i.0).min(),
        live.iter().map(|i| i.1).max(),
    ) else {
        bail!("no usage: every interval is empty or uses no GPUs")
    };
    let (first, last) = (month_of(first), month_of(Timestamp(last.unix() - 1)));
    let n = first.months_until(last) as usize + 1;
    if n > 12 * 200 {
        bail!("history from {first} to {last} is longer than 200 years");
    }
    let bounds: Vec<i64> = (0..=n)
        .map(|k| plus_months(first, k).to_timestamp().unix())
        .collect();
    let accels: Vec<String> = live
        .iter()
        .map(|i| i.2.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut hist = vec![vec![0.0; n]; accels.len()];
    for (s, e, acc, g) in live {
        let a = accels.binary_search(acc).expect("collected above");
        let k0 = first.months_until(month_of(*s)).max(0) as usize;
        for k in k0..n {
            let (lo, hi) = (bounds[k].max(s.unix()), bounds[k + 1].min(e.unix()));
            if bounds[k] >= e.unix() {
                break;
            }
            if hi > lo {
                hist[a][k] += g * (hi - lo) as f64 / (bounds[k + 1] - bounds[k]) as f64;
            }
        }
    }
    Ok((first, accels, hist))
}

/// Whether a FOCUS `ConsumedUnit` means GPU-hours.
fn gpu_hours_unit(u: &str) -> bool {
    let k: String = u
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    k == "gpuhours" || k == "gpuhour"
}

/// A FOCUS date-time (`2026-03-01T00:00:00Z`, fractional seconds and a `+00:00` offset allowed).
fn focus_time(s: &str) -> Option<Timestamp> {
    let t = s.trim();
    let t = t
        .strip_suffix("+00:00")
        .map_or_else(|| t.to_owned(), |x| format!("{x}Z"));
    let t = match (t.find('.'), t.ends_with('Z')) {
        (Some(dot), true) => format!("{}Z", &t[..dot]),
        _ => t,
    };
    Timestamp::parse_civil(&t).ok()
}

/// What a FOCUS file held besides GPU usage.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FocusSkipped {
    /// Rows whose `ConsumedUnit` is not GPU-hours, or with no `x_Accelerator`.
    pub not_gpu: usize,
}

/// A FOCUS cost and usage CSV (see the module doc) to monthly history. Errors name the line and column.
pub fn monthly_from_focus(text: &str) -> anyhow::Result<(Monthly, FocusSkipped)> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let head = rdr.headers().context("line 1: not a CSV header")?.clone();
    let col = |n: &str| {
        head.iter().position(|c| c.trim().trim_start_matches('\u{feff}').eq_ignore_ascii_case(n)).with_context(|| format!("line 1: no `{n}` column (a FOCUS file with Hedge's `x_Accelerator` column is needed)"))
    };
    let (cs, ce, cq, cu, ca) = (
        col("ChargePeriodStart")?,
        col("ChargePeriodEnd")?,
        col("ConsumedQuantity")?,
        col("ConsumedUnit")?,
        col("x_Accelerator")?,
    );
    let mut skipped = FocusSkipped::default();
    let mut intervals = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.with_context(|| format!("line {line}: malformed CSV record"))?;
        let get = |c: usize| rec.get(c).unwrap_or("").trim();
        let acc = get(ca);
        if acc.is_empty() || !gpu_hours_unit(get(cu)) {
            skipped.not_gpu += 1;
            continue;
        }
        let accel = hedge_core::Accelerator::parse(acc)
            .map_err(|e| anyhow::anyhow!("line {line}: x_Accelerator {acc:?}: {e}"))?;
        let start = focus_time(get(cs)).with_context(|| {
            format!(
                "line {line}: ChargePeriodStart {:?} is not a date-time (2026-03-01T00:00:00Z)",
                get(cs)
            )
        })?;
        let end = focus_time(get(ce)).with_context(|| {
            format!(
                "line {line}: ChargePeriodEnd {:?} is not a date-time (2026-03-01T00:00:00Z)",
                get(ce)
            )
        })?;
        if end <= start {
            bail!("line {line}: ChargePeriodEnd must be after ChargePeriodStart");
        }
        let q: f64 = get(cq)
            .parse()
            .ok()
            .filter(|q: &f64| q.is_finite() && *q >= 0.0)
            .with_context(|| {
                format!(
                    "line {line}: ConsumedQuantity {:?} must be a number >= 0",
                    get(cq)
                )
            })?;
        let hours = (end.unix() - start.unix()) as f64 / 3600.0;
        intervals.push((start, end, accel.to_string(), q / hours));
    }
    if intervals.is_empty() {
        bail!(
            "no GPU-hour rows ({} rows skipped: ConsumedUnit not GPU-hours, or no x_Accelerator)",
            skipped.not_gpu
        );
    }
    Ok((monthly_from_intervals(&intervals)?, skipped))
}

/// A job trace (any kind `hedge simulate` reads) to monthly history of GPUs demanded.
fn monthly_from_trace(
    spec: &str,
    origin: Timestamp,
    time_scale: f64,
    accelerator: &str,
) -> anyhow::Result<Monthly> {
    let spec: hedge_sim::trace::TraceSpec = spec.parse()?;
    if spec.kind == hedge_sim::trace::TraceKind::Synthetic {
        bail!("--trace synthetic: a generated trace is no usage history; give a recorded trace");
    }
    if !(time_scale.is_finite() && time_scale > 0.0) {
        bail!("--time-scale {time_scale}: must be above 0");
    }
    let default_accel = hedge_core::Accelerator::parse(accelerator).context("--accelerator")?;
    let opts = hedge_sim::trace::TraceOptions {
        time_scale,
        default_accel,
        ..hedge_sim::trace::TraceOptions::default()
    };
    let trace = hedge_sim::trace::load(&spec, &opts)?;
    let intervals: Vec<_> = trace
        .jobs
        .iter()
        .map(|j| {
            let s = origin.unix().saturating_add(j.submit);
            (
                Timestamp(s),
                Timestamp(s.saturating_add(j.duration_s as i64)),
                trace.accels[j.accel.0 as usize].to_string(),
                f64::from(j.gpus),
            )
        })
        .collect();
    monthly_from_intervals(&intervals).with_context(|| format!("trace {}", spec.path.display()))
}

/// Monthly history: the first month and `[a][t]` mean GPUs, accelerators sorted by name.
pub fn monthly(text: &str) -> anyhow::Result<(YearMonth, Vec<String>, Vec<Vec<f64>>)> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, head)) = lines.next() else {
        bail!("empty file: expected a header `time,accelerator,gpus`")
    };
    let cols: Vec<&str> = head.split(',').map(str::trim).collect();
    let col = |n: &str| {
        cols.iter().position(|c| *c == n).with_context(|| {
            format!("line 1: no `{n}` column (header must name time, accelerator, gpus)")
        })
    };
    let (ct, ca, cg) = (col("time")?, col("accelerator")?, col("gpus")?);
    // (time, accelerator) -> GPUs; month -> distinct times.
    let mut at: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut times: BTreeMap<YearMonth, BTreeSet<String>> = BTreeMap::new();
    for (i, line) in lines {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |c: usize, name: &str| {
            f.get(c)
                .copied()
                .with_context(|| format!("line {}: no {name} field", i + 1))
        };
        let time = get(ct, "time")?;
        let month = time
            .get(..7)
            .and_then(|s| YearMonth::parse(s).ok())
            .with_context(|| {
                format!("line {}: time {time:?} does not start with YYYY-MM", i + 1)
            })?;
        let acc = get(ca, "accelerator")?;
        hedge_core::Accelerator::parse(acc)
            .map_err(|e| anyhow::anyhow!("line {}: accelerator {acc:?}: {e}", i + 1))?;
        let g: f64 = get(cg, "gpus")?
            .parse()
            .ok()
            .filter(|g: &f64| g.is_finite() && *g >= 0.0)
            .with_context(|| format!("line {}: gpus must be a number >= 0", i + 1))?;
        *at.entry((time.to_owned(), acc.to_owned())).or_default() += g;
        times.entry(month).or_default().insert(time.to_owned());
    }
    let (Some(&first), Some(&last)) = (times.keys().next(), times.keys().next_back()) else {
        bail!("no rows after the header")
    };
    let n = first.months_until(last) as usize + 1;
    let accels: Vec<String> = at
        .keys()
        .map(|k| k.1.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut hist = vec![Vec::with_capacity(n); accels.len()];
    for t in 0..n {
        let m = plus_months(first, t);
        let Some(ts) = times.get(&m) else {
            bail!("no samples in {m}: the history must cover every month from {first} to {last}")
        };
        for (name, row) in accels.iter().zip(hist.iter_mut()) {
            let sum: f64 = ts
                .iter()
                .map(|time| {
                    at.get(&(time.clone(), name.clone()))
                        .copied()
                        .unwrap_or(0.0)
                })
                .sum();
            row.push(sum / ts.len() as f64);
        }
    }
    Ok((first, accels, hist))
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if a.horizon == 0 || a.scenarios == 0 || a.paths < a.scenarios || a.block == 0 {
        bail!("need --horizon >= 1, --scenarios >= 1, --paths >= --scenarios and --block >= 1");
    }
    if let Some(g) = a.growth {
        if !(g.is_finite() && g > -1.0) {
            bail!("--growth {g}: must be above -1");
        }
    }
    let (first, accels, hist, source) = if let Some(p) = &a.focus {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("reading FOCUS file {}", p.display()))?;
        let ((f, ac, h), skipped) =
            monthly_from_focus(&text).with_context(|| format!("FOCUS file {}", p.display()))?;
        (
            f,
            ac,
            h,
            format!(
                "FOCUS {} ({} non-GPU rows skipped)",
                p.display(),
                skipped.not_gpu
            ),
        )
    } else if let Some(spec) = &a.trace {
        let origin = Timestamp::parse_civil(&a.trace_start)
            .map_err(|e| anyhow::anyhow!("--trace-start: {e}"))?;
        let (f, ac, h) = monthly_from_trace(spec, origin, a.time_scale, &a.accelerator)?;
        (
            f,
            ac,
            h,
            format!(
                "trace {spec} from {}, time x{}",
                a.trace_start, a.time_scale
            ),
        )
    } else {
        let p = a
            .history
            .as_ref()
            .context("give a history CSV, --focus FILE or --trace KIND:PATH")?;
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("reading history {}", p.display()))?;
        let (f, ac, h) = monthly(&text).with_context(|| format!("history {}", p.display()))?;
        (f, ac, h, p.display().to_string())
    };
    let n = hist[0].len();
    let cfg = ForecastConfig {
        horizon: a.horizon,
        season: a.season,
        growth: a.growth,
        paths: a.paths,
        block: a.block,
        scenarios: a.scenarios,
        seed: a.seed,
        persistent: !a.iid_residuals,
    };
    let scenarios = forecast(&hist, &cfg);
    let start = plus_months(first, n);
    let mut out = String::new();
    out.push_str(&format!(
        "# hedge forecast: {n} months of history from {first} ({source}); trend + season {} fit, growth {}, {} bootstrap paths (blocks of {}, {} residuals), {} scenarios by fast forward selection, seed {}\n",
        a.season,
        a.growth.map_or("as fitted".to_owned(), |g| format!("{g} per month")),
        a.paths,
        a.block,
        if a.iid_residuals { "iid" } else { "AR(1)" },
        scenarios.len(),
        a.seed
    ));
    out.push_str(&format!(
        "horizon: {{start: {start}, periods: {}, period_hours: 730}}\n",
        a.horizon
    ));
    out.push_str(&format!("accelerators: [{}]\ndemand:\n", accels.join(", ")));
    // Probabilities to 6 decimals, the rounding put on the last so they sum to 1.
    let mut probs: Vec<f64> = scenarios
        .iter()
        .map(|s| (s.probability * 1e6).round() / 1e6)
        .collect();
    let head: f64 = probs.iter().take(probs.len().saturating_sub(1)).sum();
    if let Some(l) = probs.last_mut() {
        *l = ((1.0 - head) * 1e6).round() / 1e6;
    }
    for (i, (s, p)) in scenarios.iter().zip(&probs).enumerate() {
        out.push_str(&format!(
            "  - scenario: f{}\n    probability: {p}\n    gpus:\n",
            i + 1
        ));
        for (name, row) in accels.iter().zip(&s.gpus) {
            let vals: Vec<String> = row
                .iter()
                .map(|v| format!("{}", (v * 10.0).round() / 10.0))
                .collect();
            out.push_str(&format!("      {name}: [{}]\n", vals.join(", ")));
        }
    }
    match &a.output {
        Some(p) => std::fs::write(p, out).with_context(|| format!("writing {}", p.display())),
        None => {
            let mut o = super::stdout();
            o.write_all(out.as_bytes())?;
            o.flush()?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn monthly_means_sum_rows_at_a_time_and_average_times() {
        let csv = "time,accelerator,gpus\n2026-01-05,H100,10\n2026-01-05,H100,6\n2026-01-20,H100,8\n2026-01-20,L40S,4\n2026-02,H100,20\n";
        let (first, accels, hist) = monthly(csv).unwrap();
        assert_eq!(first.to_string(), "2026-01");
        assert_eq!(accels, vec!["H100", "L40S"]);
        // January: (16 + 8) / 2 H100, (0 + 4) / 2 L40S; February: 20 and 0.
        assert_eq!(hist, vec![vec![12.0, 20.0], vec![2.0, 0.0]]);
        assert!(
            monthly("time,accelerator,gpus\n2026-01,H100,1\n2026-03,H100,1\n")
                .unwrap_err()
                .to_string()
                .contains("no samples in 2026-02")
        );
        assert!(monthly("time,accelerator,gpus\n2026-01,H100,-1\n")
            .unwrap_err()
            .to_string()
            .contains("line 2: gpus"));
    }

    #[test]
    fn focus_rows_become_monthly_gpus_in_use() {
        // 744 H100 GPU-hours over all of January (744 h) = 1 GPU; a charge over Jan 31 + Feb 1 split by time;
        // storage and an empty accelerator skipped; a quoted field with a comma; columns in any order.
        let csv = "BilledCost,ChargePeriodEnd,ChargePeriodStart,ConsumedQuantity,ConsumedUnit,SkuPriceDetails,x_Accelerator
10,2026-02-01T00:00:00Z,2026-01-01T00:00:00Z,744,GPU-Hours,\"{\"\"a\"\": 1, \"\"b\"\": 2}\",H100
5,2026-02-02T00:00:00.000Z,2026-01-31T00:00:00+00:00,96,GPU Hours,,H100
1,2026-02-01T00:00:00Z,2026-01-01T00:00:00Z,100,GB-Mo,,
2,2026-02-01T00:00:00Z,2026-01-01T00:00:00Z,72,gpuhours,,
3,2026-03-01T00:00:00Z,2026-02-01T00:00:00Z,672,GPU-Hours,,L40S
";
        let ((first, accels, hist), skipped) = monthly_from_focus(csv).unwrap();
        assert_eq!(
            (first.to_string(), accels.clone(), skipped),
            (
                "2026-01".to_owned(),
                vec!["H100".to_owned(), "L40S".to_owned()],
                FocusSkipped { not_gpu: 2 }
            )
        );
        // January: 744/744 + 48/744 GPUs; February (672 h): 48/672 H100, 672/672 L40S.
        let close = |x: f64, y: f64| (x - y).abs() < 1e-12;
        assert!(
            close(hist[0][0], 1.0 + 48.0 / 744.0) && close(hist[0][1], 48.0 / 672.0),
            "{hist:?}"
        );
        assert!(close(hist[1][0], 0.0) && close(hist[1][1], 1.0), "{hist:?}");
        let err = |t: &str| format!("{:#}", monthly_from_focus(t).unwrap_err());
        assert!(err("ChargePeriodStart,ConsumedQuantity\n")
            .contains("line 1: no `ChargePeriodEnd` column"));
        let head =
            "ChargePeriodStart,ChargePeriodEnd,ConsumedQuantity,ConsumedUnit,x_Accelerator\n";
        assert_eq!(
            err(&format!("{head}2026-01-01,2026-02-01,abc,GPU-Hours,H100\n")),
            "line 2: ConsumedQuantity \"abc\" must be a number >= 0"
        );
        assert_eq!(
            err(&format!("{head}2026-01-01,2026-13-01,1,GPU-Hours,H100\n")),
            "line 2: ChargePeriodEnd \"2026-13-01\" is not a date-time (2026-03-01T00:00:00Z)"
        );
        assert_eq!(
            err(&format!("{head}2026-02-01,2026-01-01,1,GPU-Hours,H100\n")),
            "line 2: ChargePeriodEnd must be after ChargePeriodStart"
        );
        assert!(err(&format!("{head}2026-01-01,2026-02-01,1,Hours,H100\n"))
            .starts_with("no GPU-hour rows (1 rows skipped"));
    }

    proptest::proptest! {
        /// Outside input: any text, or a FOCUS header with any rows, is read or refused with a message.
        #[test]
        fn focus_reader_never_panics(rows in "[0-9A-Za-z:., \"\n-]{0,300}", text in "\\PC{0,200}") {
            let _ = monthly_from_focus(&text);
            let _ = monthly_from_focus(&format!("ChargePeriodStart,ChargePeriodEnd,ConsumedQuantity,ConsumedUnit,x_Accelerator\n{rows}"));
        }
    }

    /// The Alibaba 2023 pod list (real data, about 2 months long), stretched so a day is a month: a history
    /// of GPUs demanded per accelerator, and a forecast that parses as a plan.
    #[test]
    fn forecast_from_a_real_job_trace() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/alibaba-gpu-v2023/csv/openb_pod_list_default.csv"
        );
        assert!(std::path::Path::new(path).exists(), "missing test data: {path} (the real public data sets live in ../shared/data beside the repository)");
        let (first, accels, hist) = monthly_from_trace(
            &format!("alibaba2023:{path}"),
            Timestamp::from_ymd(2020, 1, 1),
            30.0,
            "T4",
        )
        .unwrap();
        assert_eq!(first.to_string(), "2020-01");
        assert!(hist[0].len() >= 24, "{} months", hist[0].len());
        assert!(accels.contains(&"T4".to_owned()), "{accels:?}");
        let total: f64 = hist.iter().map(|r| r.iter().sum::<f64>()).sum();
        assert!(total > 100.0, "{total}");
        let dir = std::env::temp_dir().join(format!("hedge-forecast-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("demand.yaml");
        let spec = format!("alibaba2023:{path}");
        let args = [
            "forecast",
            "--trace",
            &spec,
            "--trace-start",
            "2020-01-01",
            "--time-scale",
            "30",
            "--accelerator",
            "T4",
            "--horizon",
            "6",
            "--season",
            "0",
            "--scenarios",
            "3",
            "-o",
            out.to_str().unwrap(),
        ];
        run(Cli::parse_from(args).args).unwrap();
        let demand = std::fs::read_to_string(&out).unwrap();
        assert!(demand.contains("(trace alibaba2023:"), "{demand}");
        let plan = format!(
            "schema: hedge.plan/v1\n{demand}providers:\n  - name: aws\n    on_demand: {{{}}}\n",
            accels
                .iter()
                .map(|a| format!("{a}: 2"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let input = hedge_planner::parse_plan_yaml(&plan).unwrap_or_else(|e| panic!("{e}\n{plan}"));
        assert_eq!(input.scenarios.len(), 3);
        assert!(
            monthly_from_trace("synthetic:x", Timestamp::from_ymd(2020, 1, 1), 1.0, "H100")
                .unwrap_err()
                .to_string()
                .contains("no usage history")
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    /// The output is the demand block of a valid plan file: with a schema and a provider it parses.
    #[test]
    fn forecast_output_parses_as_a_plan() {
        let dir = std::env::temp_dir().join(format!("hedge-forecast-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("h.csv");
        let mut text = String::from("time,accelerator,gpus\n");
        for t in 0..36 {
            let m = format!("{:04}-{:02}", 2024 + t / 12, t % 12 + 1);
            text.push_str(&format!(
                "{m},H100,{}\n",
                40 + t as i64 + [3i64, -2, 0, 1, -4][t % 5]
            ));
            text.push_str(&format!("{m},L40S,{}\n", 10 + (t % 12)));
        }
        std::fs::write(&csv, text).unwrap();
        let out = dir.join("demand.yaml");
        let args = [
            "forecast",
            csv.to_str().unwrap(),
            "--horizon",
            "12",
            "--scenarios",
            "4",
            "--growth",
            "0.02",
            "-o",
            out.to_str().unwrap(),
        ];
        run(Cli::parse_from(args).args).unwrap();
        let demand = std::fs::read_to_string(&out).unwrap();
        assert!(
            demand.contains("horizon: {start: 2027-01, periods: 12, period_hours: 730}"),
            "{demand}"
        );
        let plan = format!("schema: hedge.plan/v1\n{demand}providers:\n  - name: aws\n    on_demand: {{H100: 6, L40S: 2}}\n");
        let input = hedge_planner::parse_plan_yaml(&plan).unwrap_or_else(|e| panic!("{e}\n{plan}"));
        assert_eq!(input.scenarios.len(), 4);
        assert_eq!(input.accelerators.len(), 2);
        std::fs::remove_dir_all(&dir).ok();
    }
}

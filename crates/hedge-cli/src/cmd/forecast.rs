//! `hedge forecast HISTORY.csv`: usage history → the `horizon`, `accelerators` and `demand:` scenarios of a
//! `hedge.plan/v1` file (method in `hedge_planner::forecast`).
//!
//! Input: a CSV with a header `time,accelerator,gpus`, one row per sample: `time` is `YYYY-MM` or starts
//! with it (`2026-03-14T10:00:00Z`), `gpus` the GPUs of that accelerator in use at that time. Rows with the
//! same time and accelerator are added (several clusters or jobs); each month's value is the mean over the
//! distinct sample times seen in that month (an accelerator missing at a time counts as 0 then).

use anyhow::{bail, Context};
use hedge_planner::forecast::{forecast, ForecastConfig};
use hedge_planner::input::YearMonth;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// CSV of GPUs in use: `time,accelerator,gpus`.
    pub history: PathBuf,
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
    /// Write to this file instead of stdout.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

/// The month `k` months after `m`.
fn plus_months(m: YearMonth, k: usize) -> YearMonth {
    let i = i64::from(m.month) - 1 + k as i64;
    YearMonth {
        year: m.year + (i / 12) as i32,
        month: (i % 12) as u32 + 1,
    }
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
    let text = std::fs::read_to_string(&a.history)
        .with_context(|| format!("reading history {}", a.history.display()))?;
    let (first, accels, hist) =
        monthly(&text).with_context(|| format!("history {}", a.history.display()))?;
    let n = hist[0].len();
    let cfg = ForecastConfig {
        horizon: a.horizon,
        season: a.season,
        growth: a.growth,
        paths: a.paths,
        block: a.block,
        scenarios: a.scenarios,
        seed: a.seed,
    };
    let scenarios = forecast(&hist, &cfg);
    let start = plus_months(first, n);
    let mut out = String::new();
    out.push_str(&format!(
        "# hedge forecast: {n} months of history from {first}; trend + season {} fit, growth {}, {} bootstrap paths (blocks of {}), {} scenarios by fast forward selection, seed {}\n",
        a.season,
        a.growth.map_or("as fitted".to_owned(), |g| format!("{g} per month")),
        a.paths,
        a.block,
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

//! `hedge simulate`: replay a job trace (or a spot trace, for one deadline job) through the placement
//! engine on a virtual clock, with a portfolio, outages and spot preemptions, and report cost and damage.
//!
//! Fleet runs: `--trace KIND:PATH` with KIND one of alibaba2023, gavel, sia, alibaba2025, native, synthetic.
//! Deadline runs ("Can't Be Late"): `--trace spot:PATH` (a trace file or a folder of them) with
//! `--policy`/`--compare` among on-demand, greedy, uniform-progress, omniscient.

use anyhow::{bail, Context};
use hedge_core::{Accelerator, Rate, RegionId};
use hedge_sim::deadline::{self, DeadlineJob, SpotPolicy, SpotPrices};
use hedge_sim::fleet::{OnDemandLimit, SpotPool};
use hedge_sim::outage::{parse_duration, OutageSpec};
use hedge_sim::rng::{SimRng, Stream};
use hedge_sim::spot::SpotTrace;
use hedge_sim::trace::{self, PhillyDist, Synthetic, TraceKind, TraceOptions, TraceSpec};
use hedge_sim::{render, Policy, SimConfig};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutFormat {
    #[default]
    Table,
    Json,
    /// A self-contained HTML page with SVG charts.
    Html,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// KIND:PATH. Kinds: alibaba2023, gavel, sia, alibaba2025, native, synthetic (PATH = philly_job_distribution.csv),
    /// spot (PATH = a spot trace or a folder of them: one deadline job, Can't Be Late policies).
    #[arg(long)]
    pub trace: String,
    /// Commitments: the planner's JSON report or a hand-written list (see examples/portfolios/).
    #[arg(long)]
    pub portfolio: Option<PathBuf>,
    /// lock-in[:PROVIDER], cheapest-failover, hedge (default); spot traces always compare on-demand, greedy,
    /// uniform-progress and omniscient.
    #[arg(long)]
    pub policy: Option<String>,
    /// Run several policies on the same trace and outages, side by side (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub compare: Vec<String>,
    /// PROVIDER@YYYY-MM-DDTHH:MM+DURATION, e.g. azure@2027-03-01T00:00+72h. Repeatable.
    #[arg(long)]
    pub outage: Vec<String>,
    /// Random outages of every provider, fitted to this incident_stages.csv (llm-service-outages).
    #[arg(long)]
    pub random_outages: Option<PathBuf>,
    /// Minimum incident impact level used in the fit (0-4).
    #[arg(long, default_value_t = 2)]
    pub min_impact: u32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutFormat,
    /// Write the report here instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// A SkyPilot v8 directory or native catalog (default: the catalog shipped with hedge).
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// Skip (and count) malformed trace lines instead of failing.
    #[arg(long)]
    pub skip_bad: bool,
    /// Multiply all times and durations.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Multiply the arrival rate.
    #[arg(long, default_value_t = 1.0)]
    pub load_scale: f64,
    /// Accelerator of jobs whose trace names none.
    #[arg(long, default_value = "H100")]
    pub accelerator: String,
    /// Checkpoint interval of batch jobs (e.g. 30m); none by default.
    #[arg(long)]
    pub checkpoint_interval: Option<String>,
    /// Restart overhead of every (re)start (e.g. 5m).
    #[arg(long, default_value = "0s")]
    pub restart_overhead: String,
    /// Philly distribution to draw durations from (sia, gavel without throughputs).
    #[arg(long)]
    pub durations_from: Option<PathBuf>,
    /// Gavel throughputs JSON, and its worker type.
    #[arg(long)]
    pub gavel_throughputs: Option<PathBuf>,
    #[arg(long, default_value = "v100")]
    pub gavel_worker: String,
    /// Synthetic runs: number of jobs and mean arrivals per hour.
    #[arg(long, default_value_t = 10_000)]
    pub jobs: u64,
    #[arg(long, default_value_t = 60.0)]
    pub jobs_per_hour: f64,
    /// Synthetic runs: cap on a job's duration (the Philly tail runs for months).
    #[arg(long, default_value = "14d")]
    pub max_duration: String,
    /// Synthetic runs: fraction of jobs with a deadline of 2x their duration.
    #[arg(long, default_value_t = 0.0)]
    pub deadline_fraction: f64,
    /// Simulation time 0 (UTC date or date-time).
    #[arg(long, default_value = "2027-01-01")]
    pub start: String,
    /// Stop after this long (e.g. 365d); default: when every job is done.
    #[arg(long)]
    pub horizon: Option<String>,
    /// PROVIDER[/REGION]:ACCEL=GPUS on-demand capacity limit. Repeatable.
    #[arg(long)]
    pub on_demand_cap: Vec<String>,
    /// PROVIDER/REGION:ACCEL:TRACE[:GPUS_PER_UNIT[:SCALE]] spot pool driven by a real trace. Repeatable.
    #[arg(long)]
    pub spot_pool: Vec<String>,
    /// Launch timeout into a provider that is down (cheapest-failover).
    #[arg(long, default_value = "10m")]
    pub launch_timeout: String,
    /// Spot traces: the deadline job.
    #[arg(long, default_value_t = 48.0)]
    pub job_hours: f64,
    #[arg(long, default_value_t = 52.0)]
    pub deadline_hours: f64,
    /// Spot traces: evenly spaced job start points per trace.
    #[arg(long, default_value_t = 50)]
    pub starts: usize,
    /// Spot traces: on-demand and spot USD per instance-hour (default: from the trace's metadata, else 3.06 and 0.918,
    /// AWS p3.2xlarge).
    #[arg(long)]
    pub on_demand_price: Option<f64>,
    #[arg(long)]
    pub spot_price: Option<f64>,
    /// Spot traces: per-tick spot prices by trace name (h100-spot/v100_spot_prices.json).
    #[arg(long)]
    pub spot_prices: Option<PathBuf>,
}

fn dur(s: &str, what: &str) -> anyhow::Result<i64> {
    parse_duration(s).map_err(|e| anyhow::anyhow!("--{what}: {e}"))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let text = match args.trace.strip_prefix("spot:") {
        Some(path) => run_deadline(&args, Path::new(path))?,
        None => run_fleet(&args)?,
    };
    match &args.output {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => {
            let mut out = super::stdout();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}

fn policies(args: &Args, default: &str) -> Vec<String> {
    if args.compare.is_empty() {
        vec![args.policy.clone().unwrap_or_else(|| default.to_owned())]
    } else {
        args.compare.clone()
    }
}

fn run_fleet(args: &Args) -> anyhow::Result<String> {
    let spec: TraceSpec = args.trace.parse()?;
    let loaded = super::load_catalog(args.catalog.as_deref())?;
    let catalog = &loaded.catalog;
    let accel = Accelerator::parse(&args.accelerator).context("--accelerator")?;
    let mut opts = TraceOptions {
        skip_bad: args.skip_bad,
        time_scale: args.time_scale,
        load_scale: args.load_scale,
        default_accel: accel.clone(),
        checkpoint_interval_s: args
            .checkpoint_interval
            .as_deref()
            .map(|c| dur(c, "checkpoint-interval"))
            .transpose()?
            .map(|v| v as u32),
        restart_overhead_s: dur(&args.restart_overhead, "restart-overhead").or_else(|_| {
            if args.restart_overhead == "0s" || args.restart_overhead == "0" {
                Ok(0)
            } else {
                bail!(
                    "--restart-overhead: {:?} is not a duration",
                    args.restart_overhead
                )
            }
        })? as u32,
        seed: args.seed,
        ..TraceOptions::default()
    };
    if let Some(p) = &args.durations_from {
        opts.durations_from = Some(PhillyDist::load(p, args.skip_bad)?);
    }
    if let Some(p) = &args.gavel_throughputs {
        opts.gavel_throughputs = Some(trace::gavel::load_throughputs(p, &args.gavel_worker)?);
    }
    opts.synthetic.jobs = args.jobs;
    opts.synthetic.jobs_per_hour = args.jobs_per_hour;
    opts.synthetic.max_duration_s = Some(dur(&args.max_duration, "max-duration")? as u64);
    opts.synthetic.deadline_fraction = args.deadline_fraction;
    let origin = hedge_core::Timestamp::parse_civil(&args.start)
        .map_err(|e| anyhow::anyhow!("--start: {e}"))?;
    let commitments = match &args.portfolio {
        Some(p) => hedge_sim::portfolio::load(p)?,
        None => Vec::new(),
    };
    let mut outages: Vec<_> = args
        .outage
        .iter()
        .map(|s| s.parse::<OutageSpec>().map(|o| o.to_outage(origin)))
        .collect::<Result<_, _>>()?;
    let horizon = args
        .horizon
        .as_deref()
        .map(|h| dur(h, "horizon"))
        .transpose()?;
    if let Some(csv) = &args.random_outages {
        let fits = hedge_sim::outage::fit_incidents_file(csv, args.min_impact)?;
        let Some(fit) = fits.iter().max_by_key(|f| f.incidents) else {
            bail!("{}: no provider has 3 incidents to fit", csv.display())
        };
        let providers: Vec<_> = catalog.providers().keys().cloned().collect();
        let until = horizon.unwrap_or(365 * 86_400);
        outages.extend(fit.model().generate(
            &providers,
            until,
            &mut SimRng::new(args.seed, Stream::Outages),
        ));
        outages.sort_by_key(|o| (o.start, o.provider.clone()));
    }
    let mut fleet = hedge_sim::fleet::FleetConfig {
        launch_timeout_s: dur(&args.launch_timeout, "launch-timeout")?,
        ..Default::default()
    };
    for s in &args.on_demand_cap {
        fleet
            .on_demand
            .push(parse_cap(s).with_context(|| format!("--on-demand-cap {s:?}"))?);
    }
    for s in &args.spot_pool {
        fleet
            .spot
            .push(parse_pool(s).with_context(|| format!("--spot-pool {s:?}"))?);
    }
    // Load the trace once (streaming for synthetic runs, which can be millions of jobs).
    let (file_trace, dist) = match spec.kind {
        TraceKind::Synthetic => (None, Some(PhillyDist::load(&spec.path, args.skip_bad)?)),
        _ => (Some(trace::load(&spec, &opts)?), None),
    };
    if let Some(t) = &file_trace {
        if t.skipped_count > 0 {
            eprintln!(
                "warning: {}: skipped {} malformed line(s); first: line {}: {}",
                spec.path.display(),
                t.skipped_count,
                t.skipped[0].line,
                t.skipped[0].reason
            );
        }
    }
    let accels = file_trace
        .as_ref()
        .map_or_else(|| vec![accel.clone()], |t| t.accels.clone());
    let show_progress =
        args.format != OutFormat::Json && args.output.is_none() && std::io::stderr().is_terminal();
    let mut reports = Vec::new();
    for name in policies(args, "hedge") {
        let policy: Policy = name.parse()?;
        let mut cfg = SimConfig::new(policy, accels.clone());
        cfg.seed = args.seed;
        cfg.origin = origin;
        cfg.horizon = horizon;
        cfg.fleet = fleet.clone();
        cfg.outages = outages.clone();
        cfg.commitments = commitments.clone();
        cfg.trace = args.trace.clone();
        let progress = |now: i64| {
            if show_progress {
                eprint!("\r{name}: simulated day {:.1}   ", now as f64 / 86_400.0);
            }
        };
        let report = match (&file_trace, &dist) {
            (Some(t), _) => hedge_sim::engine::simulate_with_progress(
                catalog,
                t.jobs.iter().copied(),
                &cfg,
                progress,
            )?,
            (None, Some(d)) => hedge_sim::engine::simulate_with_progress(
                catalog,
                Synthetic::new(d.clone(), &opts),
                &cfg,
                progress,
            )?,
            (None, None) => unreachable!("one of the two is loaded"),
        };
        if show_progress {
            eprint!("\r\x1b[K");
        }
        reports.push(report);
    }
    Ok(match args.format {
        OutFormat::Table => render::table(&reports),
        OutFormat::Json if reports.len() == 1 => serde_json::to_string_pretty(&reports[0])? + "\n",
        OutFormat::Json => serde_json::to_string_pretty(&reports)? + "\n",
        OutFormat::Html => render::html(&reports),
    })
}

/// `PROVIDER[/REGION]:ACCEL=GPUS`
fn parse_cap(s: &str) -> anyhow::Result<OnDemandLimit> {
    let (lhs, gpus) = s
        .split_once('=')
        .context("expected PROVIDER[/REGION]:ACCEL=GPUS")?;
    let (loc, acc) = lhs
        .split_once(':')
        .context("expected PROVIDER[/REGION]:ACCEL=GPUS")?;
    let (provider, region) = match loc.split_once('/') {
        Some((p, r)) => (p, Some(RegionId::new(r))),
        None => (loc, None),
    };
    Ok(OnDemandLimit {
        provider: hedge_core::ProviderId::parse(provider),
        region,
        accelerator: Accelerator::parse(acc)?,
        gpus: gpus.trim().parse().context("GPUS")?,
    })
}

/// `PROVIDER/REGION:ACCEL:TRACE[:GPUS_PER_UNIT[:SCALE]]`
fn parse_pool(s: &str) -> anyhow::Result<SpotPool> {
    let parts: Vec<&str> = s.split(':').collect();
    if !(3..=5).contains(&parts.len()) {
        bail!("expected PROVIDER/REGION:ACCEL:TRACE[:GPUS_PER_UNIT[:SCALE]]");
    }
    let (provider, region) = parts[0]
        .split_once('/')
        .context("expected PROVIDER/REGION")?;
    let trace = SpotTrace::load(Path::new(parts[2]))?;
    let n = |i: usize| -> anyhow::Result<u32> {
        Ok(parts
            .get(i)
            .map(|x| x.parse())
            .transpose()
            .context("a whole number")?
            .unwrap_or(1))
    };
    Ok(SpotPool {
        provider: hedge_core::ProviderId::parse(provider),
        region: RegionId::new(region),
        accelerator: Accelerator::parse(parts[1])?,
        trace: Arc::new(trace),
        gpus_per_unit: n(3)?,
        scale: n(4)?,
    })
}

fn run_deadline(args: &Args, path: &Path) -> anyhow::Result<String> {
    let mut files = Vec::new();
    if path.is_dir() {
        collect_json(path, &mut files)?;
        files.sort();
    } else {
        files.push(path.to_owned());
    }
    if files.is_empty() {
        bail!("{}: no .json spot traces", path.display());
    }
    // The study always runs all four policies side by side; the names given are only checked.
    for p in policies(args, "greedy") {
        p.parse::<SpotPolicy>()?;
    }
    let spot_prices: Option<serde_json::Map<String, serde_json::Value>> = match &args.spot_prices {
        Some(p) => Some(
            serde_json::from_str(
                &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            )
            .with_context(|| format!("{}: not a JSON object", p.display()))?,
        ),
        None => None,
    };
    let job = DeadlineJob {
        work_s: (args.job_hours * 3600.0).round() as u64,
        deadline_s: (args.deadline_hours * 3600.0).round() as u64,
        restart_overhead_s: dur(&args.restart_overhead, "restart-overhead").unwrap_or(0) as u64,
    };
    let mut studies = Vec::new();
    for f in &files {
        let t = SpotTrace::load(f)?;
        let usd = |x: f64| Rate::from_usd_per_hour_f64(x).map_err(anyhow::Error::from);
        let on_demand = match args.on_demand_price {
            Some(p) => usd(p)?,
            None => t.on_demand.map_or_else(|| usd(3.06), Ok)?,
        };
        let stem = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let per_tick = spot_prices
            .as_ref()
            .and_then(|m| m.get(&stem))
            .and_then(|v| v.as_array())
            .filter(|a| a.len() == t.available.len());
        let spot = match (args.spot_price, per_tick, &t.prices, t.spot_price) {
            (Some(p), ..) => vec![usd(p)?],
            (None, Some(a), ..) => a
                .iter()
                .map(|x| usd(x.as_f64().unwrap_or(f64::NAN)))
                .collect::<Result<_, _>>()?,
            (None, None, Some(p), _) => p.clone(),
            (None, None, None, Some(p)) => vec![p],
            (None, None, None, None) => vec![usd(0.918)?],
        };
        let prices = SpotPrices { on_demand, spot };
        studies.push(deadline::study(&t, &job, &prices, args.starts));
    }
    Ok(match args.format {
        OutFormat::Json => serde_json::to_string_pretty(&studies)? + "\n",
        _ => render::deadline_table(&studies) + &summary(&studies),
    })
}

fn summary(studies: &[hedge_sim::deadline::TraceStudy]) -> String {
    let n = studies.len() as f64;
    let mean = |i: usize| studies.iter().map(|s| s.savings[i].1).sum::<f64>() / n;
    let closed: Vec<f64> = studies.iter().filter_map(|s| s.up_gap_closed).collect();
    format!(
        "mean savings over on-demand: greedy {:.1}%, uniform-progress {:.1}%, omniscient {:.1}%; UP closes {:.0}% of greedy's gap (median over {} traces)\n",
        100.0 * mean(1),
        100.0 * mean(2),
        100.0 * mean(3),
        100.0 * median(closed.clone()),
        closed.len()
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            collect_json(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
    Ok(())
}

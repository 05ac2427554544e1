//! `hedge simulate`: replay a job trace (or a spot trace, for one deadline job) through the placement
//! engine on a virtual clock, with a portfolio, outages and spot preemptions, and report cost and damage.
//!
//! Fleet runs: `--trace KIND:PATH` with KIND one of alibaba2023, gavel, sia, alibaba2025, native, synthetic.
//! Deadline runs ("Can't Be Late"): `--trace spot:PATH` (a trace file or a folder of them) with
//! `--policy`/`--compare` among on-demand, greedy, uniform-progress, availability-aware, omniscient.

use anyhow::{bail, Context};
use hedge_core::{Accelerator, Rate, RegionId};
use hedge_sim::deadline::{self, DeadlineJob, SpotPolicy, SpotPrices};
use hedge_sim::fleet::{OnDemandLimit, SpotPool};
use hedge_sim::outage::{parse_duration, OutageSpec};
use hedge_sim::rng::{SimRng, Stream};
use hedge_sim::spot::SpotTrace;
use hedge_sim::trace::{self, PhillyDist, Synthetic, TraceKind, TraceOptions, TraceSpec};
use hedge_sim::workload::{PlanWorkload, PlanWorkloadOptions};
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
    /// uniform-progress, availability-aware and omniscient.
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
    /// Fleet runs: generate the workload a plan was made for, from this plan file (hedge.plan/v1): jobs whose
    /// GPU demand follows `--scenario` over the plan's horizon, with Philly-shaped sizes drawn from the
    /// `--trace synthetic:` file. Unless given, the catalog, the horizon, spot pools (the plan's spot share
    /// of demand) and the delay penalty come from the plan too; the start is always the plan's.
    #[arg(long)]
    pub workload_from_plan: Option<PathBuf>,
    /// The plan scenario to simulate (default: the plan's first).
    #[arg(long)]
    pub scenario: Option<String>,
    /// USD per GPU-hour of delay (waiting to start) or unmet work (default: the plan's `unmet_demand`
    /// penalty, else the dearest on-demand GPU-hour of the run's accelerators in the catalog).
    #[arg(long)]
    pub delay_penalty: Option<f64>,
    /// The SLO: a job should start within this wait (reported as the share of jobs that did).
    #[arg(long, default_value = "1h")]
    pub slo_wait: String,
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
    let plan = args
        .workload_from_plan
        .as_deref()
        .map(|p| from_plan::load(p, args.scenario.as_deref()))
        .transpose()?;
    let owned_catalog;
    let catalog = match (&plan, &args.catalog) {
        (Some(p), None) => &p.catalog,
        _ => {
            owned_catalog = super::load_catalog(args.catalog.as_deref())?;
            &owned_catalog.catalog
        }
    };
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
    let origin = match &plan {
        Some(p) => p.origin,
        None => hedge_core::Timestamp::parse_civil(&args.start)
            .map_err(|e| anyhow::anyhow!("--start: {e}"))?,
    };
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
        .transpose()?
        .or(plan.as_ref().map(|p| p.horizon_s));
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
    if let Some(p) = &plan {
        fleet.on_demand.extend(p.on_demand_limits(&commitments));
        if args.spot_pool.is_empty() {
            fleet.spot.extend(p.spot_pools.iter().cloned());
        }
    }
    // Load the trace once (streaming for synthetic runs, which can be millions of jobs).
    let (file_trace, dist) = match spec.kind {
        TraceKind::Synthetic => (None, Some(PhillyDist::load(&spec.path, args.skip_bad)?)),
        _ if plan.is_some() => bail!("--workload-from-plan draws job sizes from a Philly distribution: use --trace synthetic:PATH"),
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
    let accels = match (&file_trace, &plan) {
        (Some(t), _) => t.accels.clone(),
        (None, Some(p)) => p.accels.clone(),
        (None, None) => vec![accel.clone()],
    };
    let delay_penalty = match (
        args.delay_penalty,
        plan.as_ref().and_then(|p| p.unmet_penalty),
    ) {
        (Some(usd), _) => Rate::from_usd_per_hour_f64(usd).context("--delay-penalty")?,
        (None, Some(r)) => r,
        (None, None) => dearest_on_demand_gpu_hour(catalog, &accels),
    };
    let slo_wait_s = dur(&args.slo_wait, "slo-wait")?;
    let plan_jobs = |seed: u64| -> Option<PlanWorkload> {
        let (p, d) = (plan.as_ref()?, dist.as_ref()?);
        let o = PlanWorkloadOptions {
            period_s: p.period_s,
            max_duration_s: opts.synthetic.max_duration_s.unwrap_or(u64::MAX),
            // Checkpointed by default, so the plan's spot share can be used.
            checkpoint_interval_s: opts.checkpoint_interval_s.or(Some(1800)),
            restart_overhead_s: opts.restart_overhead_s,
            seed,
        };
        Some(PlanWorkload::new(p.curves.clone(), d.clone(), o))
    };
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
        cfg.trace = match &plan {
            Some(p) => format!(
                "{} following plan {} scenario {}",
                args.trace, p.file, p.scenario
            ),
            None => args.trace.clone(),
        };
        cfg.delay_penalty = delay_penalty;
        cfg.slo_wait_s = slo_wait_s;
        let progress = |now: i64| {
            if show_progress {
                eprint!("\r{name}: simulated day {:.1}   ", now as f64 / 86_400.0);
            }
        };
        let report = match (&file_trace, &dist) {
            (None, Some(_)) if plan.is_some() => hedge_sim::engine::simulate_with_progress(
                catalog,
                plan_jobs(args.seed).expect("plan and distribution"),
                &cfg,
                progress,
            )?,
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
    let against_plan = match (&plan, &args.portfolio) {
        (Some(p), Some(report)) => from_plan::expected_cost(report, &p.scenario)?
            .map(|e| from_plan::compare(&p.scenario, e, &reports)),
        _ => None,
    };
    Ok(match args.format {
        OutFormat::Table => render::table(&reports) + against_plan.as_deref().unwrap_or(""),
        OutFormat::Json if reports.len() == 1 => serde_json::to_string_pretty(&reports[0])? + "\n",
        OutFormat::Json => serde_json::to_string_pretty(&reports)? + "\n",
        OutFormat::Html => render::html(&reports),
    })
}

/// The dearest on-demand price per GPU-hour of `accels` in the catalog: the default price of a GPU-hour of
/// delay, so that no policy can look cheaper by leaving work waiting than by buying the dearest capacity.
fn dearest_on_demand_gpu_hour(catalog: &hedge_core::Catalog, accels: &[Accelerator]) -> Rate {
    accels
        .iter()
        .flat_map(|a| {
            catalog
                .with_accelerator(a)
                .iter()
                .map(|&o| catalog.offer(o))
        })
        .filter_map(|o| o.prices.on_demand.map(|r| r.per_unit(o.gpus().max(1))))
        .max()
        .unwrap_or(Rate::ZERO)
}

/// `--workload-from-plan`: a plan file (hedge.plan/v1) turned into what the simulator takes — demand curves,
/// a catalog with the plan's prices, spot pools for the plan's spot share, capacities and the penalty.
mod from_plan {
    use anyhow::{bail, Context};
    use hedge_core::{
        AccelRequest, Accelerator, Catalog, Commitment, Location, Offer, Prices, Rate, RegionId,
        Timestamp,
    };
    use hedge_sim::fleet::{OnDemandLimit, SpotPool};
    use hedge_sim::spot::{Convention, SpotTrace};
    use hedge_sim::workload::DemandCurve;
    use hedge_sim::{AccelSym, Report};
    use std::path::Path;
    use std::sync::Arc;

    /// The region every offer built from a plan is in (plans price providers, not regions).
    pub const REGION: &str = "plan";

    pub struct FromPlan {
        pub file: String,
        pub scenario: String,
        pub origin: Timestamp,
        pub period_s: i64,
        pub horizon_s: i64,
        pub accels: Vec<Accelerator>,
        pub curves: Vec<DemandCurve>,
        pub catalog: Catalog,
        pub spot_pools: Vec<SpotPool>,
        /// (provider, accelerator, GPUs in all markets) from the plan's `capacity`.
        capacity: Vec<(hedge_core::ProviderId, Accelerator, u64)>,
        pub unmet_penalty: Option<Rate>,
    }

    pub fn load(path: &Path, scenario: Option<&str>) -> anyhow::Result<FromPlan> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading plan file {}", path.display()))?;
        let loaded = if text.contains("prices_from") {
            Some(super::super::load_catalog(None)?)
        } else {
            None
        };
        let source = loaded.as_ref().map(|l| hedge_planner::CatalogSource {
            catalog: &l.catalog,
            label: "data/catalog.json (embedded)",
        });
        let input = hedge_planner::parse_plan_yaml_with(&text, source)
            .with_context(|| format!("plan file {}", path.display()))?;
        let sc = match scenario {
            Some(name) => input
                .scenarios
                .iter()
                .find(|s| s.name == name)
                .with_context(|| {
                    format!(
                        "--scenario {name:?}: the plan has {}",
                        input
                            .scenarios
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?,
            None => input
                .scenarios
                .first()
                .context("the plan has no demand scenario")?,
        };
        let period_s = i64::from(input.horizon.period_hours) * 3600;
        let curves = (0..input.accelerators.len())
            .map(|a| DemandCurve {
                accel: AccelSym(a as u16),
                gpus: sc.demand[a].iter().map(|g| g.gpus_f64()).collect(),
            })
            .collect();
        let region = RegionId::new(REGION);
        let mut offers = Vec::new();
        let mut spot_pools = Vec::new();
        let mut capacity = Vec::new();
        for p in &input.providers {
            for (a, accel) in input.accelerators.iter().enumerate() {
                let (od, spot) = (p.on_demand[a], p.spot[a]);
                if let Some(c) = p.capacity[a] {
                    capacity.push((p.id.clone(), accel.clone(), c));
                }
                if od.is_none() && spot.is_none() {
                    // Sold only under commitment: an offer with no market price, so committed capacity can be placed.
                    for n in [1, 2, 4, 8] {
                        offers.push(offer(p.id.clone(), accel, n, &region, None, None));
                    }
                    continue;
                }
                for n in [1, 2, 4, 8] {
                    offers.push(offer(
                        p.id.clone(),
                        accel,
                        n,
                        &region,
                        od.map(|r| r.times(n)),
                        spot.map(|r| r.times(n)),
                    ));
                }
                if spot.is_some() && p.spot_availability[a] > 0.0 {
                    // The plan lets spot serve this share of the scenario's demand: a pool of that size per period.
                    let available = sc.demand[a]
                        .iter()
                        .map(|g| (g.gpus_f64() * p.spot_availability[a]).floor() as u32)
                        .collect();
                    let trace = SpotTrace {
                        name: format!("plan spot share {} {}", p.id, accel),
                        gap_s: u32::try_from(period_s).context("period too long")?,
                        convention: Convention::AvailableCount,
                        available,
                        prices: None,
                        on_demand: None,
                        spot_price: None,
                    };
                    spot_pools.push(SpotPool {
                        provider: p.id.clone(),
                        region: region.clone(),
                        accelerator: accel.clone(),
                        trace: Arc::new(trace),
                        gpus_per_unit: 1,
                        scale: 1,
                    });
                }
            }
        }
        let unmet_penalty = match input.policies.unmet {
            hedge_planner::input::Unmet::Penalty(r) => Some(r),
            hedge_planner::input::Unmet::Forbid => None,
        };
        if sc.demand.iter().all(|row| row.iter().all(|g| g.0 == 0)) {
            bail!("scenario {} has no demand", sc.name);
        }
        Ok(FromPlan {
            file: path.display().to_string(),
            scenario: sc.name.clone(),
            origin: input.horizon.start.to_timestamp(),
            period_s,
            horizon_s: period_s * input.horizon.periods as i64,
            accels: input.accelerators.clone(),
            curves,
            catalog: Catalog::new(offers, Default::default(), vec![]),
            spot_pools,
            capacity,
            unmet_penalty,
        })
    }

    fn offer(
        provider: hedge_core::ProviderId,
        accel: &Accelerator,
        n: u32,
        region: &RegionId,
        od: Option<Rate>,
        spot: Option<Rate>,
    ) -> Offer {
        Offer {
            instance_type: format!("{provider}-{accel}x{n}"),
            provider,
            accelerator: Some(AccelRequest::new(accel.clone(), n)),
            vcpus_milli: None,
            memory_mib: None,
            location: Location::Region {
                region: region.clone(),
            },
            prices: Prices {
                on_demand: od,
                spot,
                committed: vec![],
            },
        }
    }

    impl FromPlan {
        /// On-demand limits from the plan's capacities: what the provider can supply beyond the most GPUs
        /// committed there at any time.
        pub fn on_demand_limits(&self, commitments: &[Commitment]) -> Vec<OnDemandLimit> {
            self.capacity
                .iter()
                .map(|(p, a, cap)| {
                    let committed = max_committed(commitments, p, a);
                    OnDemandLimit {
                        provider: p.clone(),
                        region: None,
                        accelerator: a.clone(),
                        gpus: cap.saturating_sub(committed).min(u32::MAX as u64) as u32,
                    }
                })
                .collect()
        }
    }

    fn max_committed(
        commitments: &[Commitment],
        p: &hedge_core::ProviderId,
        a: &Accelerator,
    ) -> u64 {
        let mine: Vec<&Commitment> = commitments
            .iter()
            .filter(|c| c.provider == *p && c.accelerator == *a)
            .collect();
        mine.iter()
            .map(|c| {
                mine.iter()
                    .filter(|o| o.start <= c.start && c.start < o.end)
                    .map(|o| o.gpus as u64)
                    .sum::<u64>()
            })
            .max()
            .unwrap_or(0)
    }

    /// The plan report's expected cost of `scenario` (`scenarios[].total_usd`), if the portfolio file is a
    /// plan report.
    pub fn expected_cost(report: &Path, scenario: &str) -> anyhow::Result<Option<f64>> {
        let text = std::fs::read_to_string(report)
            .with_context(|| format!("reading {}", report.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not JSON", report.display()))?;
        Ok(v.get("scenarios")
            .and_then(|s| s.as_array())
            .and_then(|a| {
                a.iter()
                    .find(|s| s.get("scenario").and_then(|n| n.as_str()) == Some(scenario))
            })
            .and_then(|s| s.get("total_usd"))
            .and_then(|t| t.as_f64()))
    }

    /// One line per policy: the simulated cost next to the plan's expected cost of the scenario.
    pub fn compare(scenario: &str, expected_usd: f64, reports: &[Report]) -> String {
        let mut out = format!(
            "\nplan's expected cost, scenario {scenario}: ${}\n",
            group(expected_usd)
        );
        for r in reports {
            let sim = r.total_cost.to_usd_f64();
            out += &format!(
                "  simulated, {}: ${} ({:+.1}% against the plan)\n",
                r.policy,
                group(sim),
                100.0 * (sim / expected_usd - 1.0)
            );
        }
        out
    }

    fn group(usd: f64) -> String {
        hedge_core::Money::from_usd_f64(usd)
            .map(|m| {
                m.cents_grouped()
                    .to_string()
                    .trim_start_matches('$')
                    .to_owned()
            })
            .unwrap_or_else(|_| format!("{usd:.2}"))
    }
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
    let no_dearer = |i: usize| {
        studies
            .iter()
            .filter(|s| s.mean_cost[i].1 <= s.mean_cost[1].1)
            .count()
    };
    format!(
        "mean savings over on-demand: greedy {:.2}%, uniform-progress {:.2}%, availability-aware {:.2}%, omniscient {:.2}%; no dearer than greedy on: uniform-progress {}, availability-aware {} of {}; deadline misses {}; UP closes {:.0}% of greedy's gap (median over {} traces)\n",
        100.0 * mean(1),
        100.0 * mean(2),
        100.0 * mean(3),
        100.0 * mean(4),
        no_dearer(2),
        no_dearer(3),
        studies.len(),
        studies.iter().flat_map(|s| s.misses.iter().map(|m| m.1)).sum::<u64>(),
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

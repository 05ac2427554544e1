//! `hedge plan FILE`: the commitment planner. Optimises a `hedge.plan/v1` file (default), or evaluates a
//! given portfolio (`--evaluate`), sweeps a policy (`--sweep keep_fraction=0:1:0.1`), or prints
//! break-even rates (`--break-even`). Output as a table, JSON or one self-contained HTML file.

use anyhow::{bail, Context};
use hedge_planner::report::{
    render_break_even, render_infeasible, render_sweep, render_table, usd,
};
use hedge_planner::{
    html, outofsample, Backend, Method, PlanOutcome, PlannerConfig, Portfolio, SweepParam,
};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PlanFormat {
    #[default]
    Table,
    Json,
    /// One self-contained HTML file with SVG charts.
    Html,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The plan file (`schema: hedge.plan/v1`).
    pub file: PathBuf,
    #[arg(long, value_enum, default_value_t = PlanFormat::Table)]
    pub format: PlanFormat,
    /// Catalog for providers with `prices_from` (a native catalog, a SkyPilot v8 directory or a `vms.csv`);
    /// default: the catalog shipped with hedge.
    #[arg(long, value_name = "PATH")]
    pub catalog: Option<PathBuf>,
    /// Evaluate this portfolio (JSON or YAML with `commitments: [...]`, e.g. a previous plan) without optimising.
    #[arg(long, value_name = "PORTFOLIO")]
    pub evaluate: Option<PathBuf>,
    /// Sweep a policy and print the frontier: `keep_fraction=0:1:0.1` or `max_share=0.2:1:0.1`.
    #[arg(long, value_name = "PARAM=FROM:TO:STEP")]
    pub sweep: Option<String>,
    /// For every term on offer, the rates at which it enters, grows in or leaves the plan (about 16 re-solves
    /// per term: add --relax on large models).
    #[arg(long)]
    pub break_even: bool,
    /// Solver backend: cbc or microlp.
    #[arg(long, default_value = "cbc")]
    pub backend: String,
    /// auto, extensive or benders.
    #[arg(long, default_value = "auto")]
    pub method: String,
    /// Solve the LP relaxation (integer blocks, minimum sizes and min_providers are not enforced).
    #[arg(long)]
    pub relax: bool,
    /// Relative optimality gap.
    #[arg(long, default_value_t = 1e-4)]
    pub gap: f64,
    /// Seconds one MIP solve may run before its best point is used (the report then says "not proven").
    #[arg(long, default_value_t = 60.0)]
    pub time_limit: f64,
    /// Skip the baselines and the policy prices (faster).
    #[arg(long)]
    pub quick: bool,
    /// Also cost the plan on N fresh demand paths drawn from the plan's scenarios (scenario switching with
    /// multiplicative noise), against the expected-value plan, the lookback recommender, all on-demand and
    /// each path's hindsight optimum; reports VSS, EVPI and regret percentiles.
    #[arg(long, value_name = "N")]
    pub out_of_sample: Option<usize>,
    /// Seed of the out-of-sample paths.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Out-of-sample generator: probability per period that a path redraws its scenario.
    #[arg(long, default_value_t = 0.1, value_name = "P")]
    pub oos_switch: f64,
    /// Out-of-sample generator: per-period volatility of the multiplicative demand noise.
    #[arg(long, default_value_t = 0.03, value_name = "SIGMA")]
    pub oos_noise: f64,
    /// Write the report to this file instead of stdout.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("reading plan file {}", a.file.display()))?;
    // The planner never reads a catalog: it is loaded here, only for files that take prices from one.
    let loaded = if a.catalog.is_some() || text.contains("prices_from") {
        Some(super::load_catalog(a.catalog.as_deref())?)
    } else {
        None
    };
    let label = a.catalog.as_ref().map_or_else(
        || "data/catalog.json (embedded)".to_owned(),
        |p| p.display().to_string(),
    );
    let source = loaded.as_ref().map(|l| hedge_planner::CatalogSource {
        catalog: &l.catalog,
        label: &label,
    });
    let input = hedge_planner::parse_plan_yaml_with(&text, source)
        .with_context(|| format!("plan file {}", a.file.display()))?;
    let backend = Backend::parse(&a.backend)
        .with_context(|| format!("--backend {:?}: expected cbc or microlp", a.backend))?;
    let method = Method::parse(&a.method).with_context(|| {
        format!(
            "--method {:?}: expected auto, extensive or benders",
            a.method
        )
    })?;
    if !(a.gap > 0.0 && a.gap < 1.0) {
        bail!("--gap {}: must be between 0 and 1", a.gap);
    }
    let cfg = PlannerConfig {
        backend,
        method,
        gap: a.gap,
        relax_integers: a.relax,
        time_limit_s: a.time_limit,
        price_policies: !a.quick,
        baselines: !a.quick,
        ..PlannerConfig::default()
    };
    let mut buf: Vec<u8> = Vec::new();

    if let Some(path) = &a.evaluate {
        let ptext = std::fs::read_to_string(path)
            .with_context(|| format!("reading portfolio {}", path.display()))?;
        let portfolio =
            Portfolio::parse(&ptext).with_context(|| format!("portfolio {}", path.display()))?;
        let resolved = portfolio
            .resolve(&input)
            .with_context(|| format!("portfolio {}", path.display()))?;
        let ev = hedge_planner::evaluate(&input, &resolved);
        match a.format {
            PlanFormat::Json => {
                serde_json::to_writer_pretty(&mut buf, &ev)?;
                writeln!(buf)?;
            }
            _ => {
                writeln!(
                    buf,
                    "expected cost {}   commitments {}",
                    usd(ev.expected_cost_usd),
                    usd(ev.commitment_cost_usd)
                )?;
                writeln!(
                    buf,
                    "coverage {:.1}%   utilization {:.1}%",
                    ev.coverage * 100.0,
                    ev.utilization * 100.0
                )?;
                for s in &ev.scenarios {
                    writeln!(
                        buf,
                        "  {} (p={:.2}): {}",
                        s.scenario,
                        s.probability,
                        usd(s.total_usd)
                    )?;
                }
                if ev.violations.is_empty() {
                    writeln!(buf, "every policy holds")?;
                } else {
                    for v in &ev.violations {
                        writeln!(buf, "VIOLATION {}: {}", v.policy, v.detail)?;
                    }
                }
            }
        }
        return emit(&a, &buf);
    }

    if a.break_even {
        let rows = hedge_planner::break_even(&input, &cfg)?;
        match a.format {
            PlanFormat::Json => {
                serde_json::to_writer_pretty(&mut buf, &rows)?;
                writeln!(buf)?;
            }
            _ => buf.extend_from_slice(render_break_even(&rows).as_bytes()),
        }
        return emit(&a, &buf);
    }

    let sweep = match &a.sweep {
        Some(spec) => {
            let (param, values) = SweepParam::parse_spec(spec)?;
            Some((param, hedge_planner::sweep(&input, &cfg, param, &values)?))
        }
        None => None,
    };
    if let (Some((param, points)), false) = (&sweep, a.format == PlanFormat::Html) {
        match a.format {
            PlanFormat::Json => {
                serde_json::to_writer_pretty(
                    &mut buf,
                    &serde_json::json!({"param": param, "points": points}),
                )?;
                writeln!(buf)?;
            }
            _ => buf.extend_from_slice(render_sweep(*param, points).as_bytes()),
        }
        return emit(&a, &buf);
    }

    match hedge_planner::plan(&input, &cfg)? {
        PlanOutcome::Optimal(mut r) => {
            if let Some(n) = a.out_of_sample {
                if n == 0 {
                    bail!("--out-of-sample {n}: must be at least 1");
                }
                if !((0.0..=1.0).contains(&a.oos_switch)
                    && a.oos_noise.is_finite()
                    && (0.0..=1.0).contains(&a.oos_noise))
                {
                    bail!("--oos-switch and --oos-noise must be between 0 and 1");
                }
                let plan = Portfolio {
                    commitments: r.commitments.clone(),
                }
                .resolve(&input)?;
                let generator = outofsample::Generator {
                    switch: a.oos_switch,
                    noise: a.oos_noise,
                };
                r.out_of_sample = Some(outofsample::out_of_sample_sampled(
                    &input, &cfg, &plan, generator, n, a.seed,
                )?);
            }
            match a.format {
                PlanFormat::Table => buf.extend_from_slice(render_table(&r, &input).as_bytes()),
                PlanFormat::Json => {
                    serde_json::to_writer_pretty(&mut buf, &r)?;
                    writeln!(buf)?;
                }
                PlanFormat::Html => {
                    let s = sweep.as_ref().map(|(p, pts)| (*p, pts.as_slice()));
                    buf.extend_from_slice(html::render_html(&r, &input, s).as_bytes());
                }
            }
            emit(&a, &buf)
        }
        PlanOutcome::Infeasible(inf) => {
            match a.format {
                PlanFormat::Json => {
                    serde_json::to_writer_pretty(&mut buf, &inf)?;
                    writeln!(buf)?;
                }
                PlanFormat::Html => {
                    let body = html::escape(&render_infeasible(&inf));
                    write!(buf, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Hedge plan: infeasible</title></head><body><pre>{body}</pre></body></html>\n")?;
                }
                PlanFormat::Table => buf.extend_from_slice(render_infeasible(&inf).as_bytes()),
            }
            emit(&a, &buf)?;
            bail!("no portfolio meets every policy (see the report)")
        }
    }
}

fn emit(a: &Args, buf: &[u8]) -> anyhow::Result<()> {
    match &a.output {
        Some(p) => std::fs::write(p, buf).with_context(|| format!("writing {}", p.display())),
        None => {
            let mut out = super::stdout();
            out.write_all(buf)?;
            out.flush()?;
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

    fn run_to(args: &[&str], out: &std::path::Path) -> anyhow::Result<String> {
        let mut v = vec!["plan"];
        v.extend_from_slice(args);
        let out_s = out.to_str().unwrap().to_owned();
        v.extend_from_slice(&["-o", &out_s]);
        run(Cli::parse_from(v).args)?;
        Ok(std::fs::read_to_string(out)?)
    }

    /// The JSON report is a portfolio file: evaluating a plan's own output gives the plan's expected cost.
    #[test]
    fn json_plan_round_trips_through_evaluate() {
        let example = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/small-team.yaml"
        );
        let dir = std::env::temp_dir().join(format!("hedge-plan-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plan_json = dir.join("plan.json");
        let text = run_to(&[example, "--format", "json", "--quick"], &plan_json).unwrap();
        let plan: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(plan["horizon"]["start"], "2027-01");
        assert_eq!(plan["horizon"]["period_hours"], 730);
        let c0 = &plan["commitments"][0];
        for k in [
            "provider",
            "accelerator",
            "term_periods",
            "start_period",
            "gpus",
            "rate",
        ] {
            assert!(c0.get(k).is_some(), "commitments[0].{k}");
        }
        let eval = run_to(
            &[
                example,
                "--evaluate",
                plan_json.to_str().unwrap(),
                "--format",
                "json",
            ],
            &dir.join("eval.json"),
        )
        .unwrap();
        let eval: serde_json::Value = serde_json::from_str(&eval).unwrap();
        assert_eq!(eval["expected_cost_usd"], plan["expected_cost_usd"]);
        assert_eq!(eval["violations"].as_array().map(Vec::len), Some(0));
        let html = run_to(
            &[example, "--format", "html", "--quick"],
            &dir.join("plan.html"),
        )
        .unwrap();
        assert!(
            html.starts_with("<!DOCTYPE html>")
                && html.contains("<svg")
                && !html.contains("<script")
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    /// `--out-of-sample N` adds the out-of-sample section; the same seed gives the same figures.
    #[test]
    fn out_of_sample_section_is_reported_and_seeded() {
        let example = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/small-team.yaml"
        );
        let dir = std::env::temp_dir().join(format!("hedge-plan-cli-oos-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let args = [example, "--quick", "--out-of-sample", "6", "--seed", "5"];
        let text = run_to(&args, &dir.join("a.txt")).unwrap();
        assert!(text.contains("Out of sample: 6 fresh demand paths (scenario switching 0.10/period, noise 0.030, seed 5)"), "{text}");
        for row in [
            "expected-value plan",
            "lookback recommender",
            "all on-demand",
            "hindsight optimum",
            "VSS",
            "EVPI",
            "regret vs hindsight",
        ] {
            assert!(text.contains(row), "{row} missing:\n{text}");
        }
        assert_eq!(
            text,
            run_to(&args, &dir.join("b.txt")).unwrap(),
            "same seed, same report"
        );
        let mut json_args = args.to_vec();
        json_args.extend(["--format", "json"]);
        let json: serde_json::Value =
            serde_json::from_str(&run_to(&json_args, &dir.join("c.json")).unwrap()).unwrap();
        let o = &json["out_of_sample"];
        assert_eq!(o["paths"], 6);
        assert_eq!(o["plans"].as_array().unwrap().len(), 5);
        assert!(o["evpi_usd"].as_f64().unwrap() >= 0.0, "{o}");
        assert!(run_to(
            &[example, "--quick", "--out-of-sample", "0"],
            &dir.join("d.txt")
        )
        .is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    /// `prices_from` takes prices from the shipped catalog by default and from `--catalog PATH` when given;
    /// errors name the field.
    #[test]
    fn prices_from_the_catalog() {
        let dir = std::env::temp_dir().join(format!("hedge-plan-cli-cat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("plan.yaml");
        let plan = |prices_from: &str| {
            format!(
                "schema: hedge.plan/v1
horizon: {{start: 2027-01, periods: 12, period_hours: 730}}
accelerators: [H100]
demand:
  - {{scenario: base, probability: 1, gpus: {{H100: [16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16]}}}}
providers:
  - name: lambda
    prices_from: {prices_from}
"
            )
        };
        std::fs::write(&file, plan("{region: us-east-1}")).unwrap();
        let f = file.to_str().unwrap();
        let text = run_to(&[f, "--quick"], &dir.join("a.txt")).unwrap();
        assert!(
            text.contains("catalog data/catalog.json (embedded): lambda us-east-1"),
            "{text}"
        );
        // The same catalog through --catalog names the path.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/catalog.json");
        let text = run_to(&[f, "--quick", "--catalog", path], &dir.join("b.txt")).unwrap();
        assert!(
            text.contains(&format!("catalog {path}: lambda us-east-1")),
            "{text}"
        );
        std::fs::write(
            &file,
            plan("{region: us-east-1, accelerators: [H100], provider: aws-nope}"),
        )
        .unwrap();
        let err = format!(
            "{:#}",
            run_to(&[f, "--quick"], &dir.join("c.txt")).unwrap_err()
        );
        assert!(err.contains("providers[0].prices_from: the catalog (data/catalog.json (embedded)) has no offers for aws-nope"), "{err}");
        std::fs::write(&file, plan("{region: mars-1}")).unwrap();
        let err = format!(
            "{:#}",
            run_to(&[f, "--quick"], &dir.join("d.txt")).unwrap_err()
        );
        assert!(err.contains("providers[0].prices_from.region: the catalog (data/catalog.json (embedded)) has no offers for lambda in mars-1"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn infeasible_plan_prints_the_report_and_fails() {
        let dir = std::env::temp_dir().join(format!("hedge-plan-cli-inf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("plan.yaml");
        std::fs::write(
            &file,
            "schema: hedge.plan/v1
horizon: {start: 2027-01, periods: 2, period_hours: 730}
accelerators: [H100]
demand:
  - {scenario: base, probability: 1, gpus: {H100: [100, 100]}}
providers:
  - name: gcp
    on_demand: {H100: 6.5}
    capacity: {H100: 50}
",
        )
        .unwrap();
        let out = dir.join("out.txt");
        let err = run_to(&[file.to_str().unwrap()], &out).unwrap_err();
        assert!(
            err.to_string().contains("no portfolio meets every policy"),
            "{err}"
        );
        let report = std::fs::read_to_string(&out).unwrap();
        assert!(report.starts_with("INFEASIBLE"), "{report}");
        std::fs::remove_dir_all(&dir).ok();
    }
}

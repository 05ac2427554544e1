//! The plan report: the serialisable result (`--format json`) and its text table (`--format table`). The
//! HTML page is in `crate::html`. Every cost in it comes from the independent evaluator.

use crate::baselines::BaselineResult;
use crate::evaluate::{cvar, evaluate, Evaluation, Holding, ScenarioCost, Violation};
use crate::input::{Horizon, PlanningInput};
use crate::outofsample::OutOfSample;
use crate::plan::{
    planned, BreakEven, InfeasibilityReport, Method, Optimised, Rounding, SweepParam, SweepPoint,
};
use crate::portfolio::PlannedCommitment;
use crate::prices::PriceSource;
use serde::Serialize;
use std::fmt::Write;

pub const REPORT_SCHEMA: &str = "hedge.plan-report/v1";

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HorizonOut {
    pub start: String,
    pub periods: usize,
    pub period_hours: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SolverInfo {
    pub backend: String,
    pub method: Method,
    pub iterations: usize,
    /// GPUs were integer variables (else rounded from the LP).
    pub integer_gpus: bool,
    /// The LP relaxation was solved (blocks, minimums and min_providers not enforced).
    pub relaxed: bool,
    /// Optimality proven within the gap (false: a MIP solve stopped at its time limit).
    pub proven: bool,
    pub objective_usd: f64,
    pub lower_bound_usd: f64,
    /// How the GPU counts became whole numbers.
    pub rounding: Rounding,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyCost {
    pub policy: String,
    /// Expected cost with the policy minus without it (`None`: infeasible without it).
    pub cost_usd: Option<f64>,
    pub binding: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanReport {
    pub schema: &'static str,
    pub status: &'static str,
    pub horizon: HorizonOut,
    pub solver: SolverInfo,
    pub expected_cost_usd: f64,
    pub cvar_alpha: f64,
    pub cvar_usd: f64,
    pub all_on_demand_cost_usd: f64,
    /// 1 − expected cost / all on-demand expected cost.
    pub savings_rate: f64,
    pub coverage: f64,
    pub utilization: f64,
    pub waste_gpu_hours: f64,
    pub commitment_cost_usd: f64,
    pub commitments: Vec<PlannedCommitment>,
    pub holdings: Vec<Holding>,
    pub scenarios: Vec<ScenarioCost>,
    pub policies: Vec<PolicyCost>,
    pub violations: Vec<Violation>,
    pub baselines: Vec<BaselineResult>,
    /// Committed GPUs (signed and new, all accelerators) per provider per period, for the charts.
    pub committed_by_provider: Vec<(String, Vec<u64>)>,
    /// Where every price came from: the plan file or the catalog.
    pub prices: Vec<PriceSource>,
    /// Costs on fresh demand paths (`hedge plan --out-of-sample N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_sample: Option<OutOfSample>,
}

pub fn horizon_out(h: &Horizon) -> HorizonOut {
    HorizonOut {
        start: h.start.to_string(),
        periods: h.periods,
        period_hours: h.period_hours,
    }
}

/// `2027-03` for monthly periods, `p3` otherwise.
pub fn period_label(h: &Horizon, t: usize) -> String {
    if h.period_hours == 730 {
        let m = (h.start.month as usize - 1) + t;
        format!("{:04}-{:02}", h.start.year + (m / 12) as i32, m % 12 + 1)
    } else {
        format!("p{t}")
    }
}

pub fn build(
    input: &PlanningInput,
    backend: &str,
    opt: &Optimised,
    ev: Evaluation,
    policies: Vec<PolicyCost>,
    baselines: Vec<BaselineResult>,
) -> PlanReport {
    let od = evaluate(input, &[]).expected_cost_usd;
    let alpha = input.risk.map_or(0.95, |r| r.cvar_alpha);
    let (np, nt) = (input.providers.len(), input.horizon.periods);
    let mut series = vec![vec![0u64; nt]; np];
    for (p, prov) in input.providers.iter().enumerate() {
        for e in &prov.existing {
            for t in e.active_periods(&input.horizon) {
                series[p][t] += u64::from(e.gpus);
            }
        }
    }
    for c in &opt.commitments {
        for t in c.start_period..(c.start_period + c.term_periods).min(nt) {
            series[c.provider][t] += u64::from(c.gpus);
        }
    }
    PlanReport {
        schema: REPORT_SCHEMA,
        status: "optimal",
        horizon: horizon_out(&input.horizon),
        solver: SolverInfo {
            backend: backend.to_owned(),
            method: opt.method,
            iterations: opt.iterations,
            integer_gpus: opt.integer_gpus,
            relaxed: opt.relaxed,
            proven: opt.proven,
            objective_usd: opt.objective_usd,
            lower_bound_usd: opt.lower_bound_usd,
            rounding: opt.rounding.clone(),
        },
        expected_cost_usd: ev.expected_cost_usd,
        cvar_alpha: alpha,
        cvar_usd: ev.cvar_usd.unwrap_or_else(|| cvar(&ev.scenarios, alpha)),
        all_on_demand_cost_usd: od,
        savings_rate: if od > 0.0 {
            1.0 - ev.expected_cost_usd / od
        } else {
            0.0
        },
        coverage: ev.coverage,
        utilization: ev.utilization,
        waste_gpu_hours: ev.waste_gpu_hours,
        commitment_cost_usd: ev.commitment_cost_usd,
        commitments: planned(input, &opt.commitments),
        holdings: ev.holdings,
        scenarios: ev.scenarios,
        policies,
        violations: ev.violations,
        baselines,
        committed_by_provider: input
            .providers
            .iter()
            .map(|p| p.id.to_string())
            .zip(series)
            .collect(),
        prices: input.price_sources.clone(),
        out_of_sample: None,
    }
}

/// `$1,234,567` (whole dollars, thousands separated).
pub fn usd(x: f64) -> String {
    let neg = x < 0.0;
    let n = x.abs().round() as u128;
    let out = hedge_core::money::group_thousands(&n.to_string());
    format!("{}${out}", if neg { "-" } else { "" })
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// Renders rows as aligned columns (first column left-aligned, others right-aligned).
pub fn columns(head: &[&str], rows: &[Vec<String>]) -> String {
    let n = head.len();
    let mut w: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            if i == 0 {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str("  ");
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(head.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

pub fn render_table(r: &PlanReport, input: &PlanningInput) -> String {
    let mut s = String::new();
    let h = &input.horizon;
    let _ = writeln!(
        s,
        "Hedge plan: {} periods of {} h from {} ({} solver, {:?} method, {} iteration{})",
        h.periods,
        h.period_hours,
        h.start,
        r.solver.backend,
        r.solver.method,
        r.solver.iterations,
        if r.solver.iterations == 1 { "" } else { "s" }
    );
    if !r.solver.proven {
        let _ = writeln!(s, "note: a MIP solve stopped at its time limit; the plan is feasible but not proven optimal");
    }
    if matches!(
        r.solver.rounding,
        Rounding::Repaired { .. } | Rounding::Unrepaired { .. }
    ) {
        let _ = writeln!(s, "note: whole GPUs: {}", r.solver.rounding.describe());
    }
    if r.solver.relaxed {
        let _ = writeln!(
            s,
            "note: LP relaxation solved; blocks, minimums and min_providers are not enforced"
        );
    }
    let _ = writeln!(
        s,
        "expected cost {}   CVaR{:.0} {}",
        usd(r.expected_cost_usd),
        r.cvar_alpha * 100.0,
        usd(r.cvar_usd)
    );
    let _ = writeln!(
        s,
        "all on-demand {}   savings {}",
        usd(r.all_on_demand_cost_usd),
        pct(r.savings_rate)
    );
    let _ = writeln!(
        s,
        "coverage {}   utilization {}   waste {:.0} GPU-hours",
        pct(r.coverage),
        pct(r.utilization),
        r.waste_gpu_hours
    );
    let _ = writeln!(s, "\nNew commitments");
    let rows: Vec<Vec<String>> = r
        .commitments
        .iter()
        .map(|c| {
            vec![
                c.provider.to_string(),
                c.accelerator.to_string(),
                c.term_periods.to_string(),
                period_label(h, c.start_period),
                c.gpus.to_string(),
                format!("{:.2}", c.rate),
            ]
        })
        .collect();
    if rows.is_empty() {
        s.push_str("(none)\n");
    } else {
        s.push_str(&columns(
            &[
                "provider",
                "accelerator",
                "term",
                "start",
                "gpus",
                "$/GPU-h",
            ],
            &rows,
        ));
    }
    let _ = writeln!(s, "\nHoldings (signed and new)");
    let rows: Vec<Vec<String>> = r
        .holdings
        .iter()
        .map(|x| {
            vec![
                x.provider.clone(),
                x.accelerator.clone(),
                format!("{:.0}", x.avg_gpus),
                usd(x.spend_usd),
                pct(x.gpu_share),
                pct(x.spend_share),
            ]
        })
        .collect();
    s.push_str(&columns(
        &[
            "provider",
            "accelerator",
            "avg GPUs",
            "spend",
            "GPU share",
            "spend share",
        ],
        &rows,
    ));
    let _ = writeln!(s, "\nCost per scenario");
    let rows: Vec<Vec<String>> = r
        .scenarios
        .iter()
        .map(|x| {
            vec![
                x.scenario.clone(),
                format!("{:.2}", x.probability),
                usd(x.total_usd),
                usd(x.commitments_usd),
                usd(x.on_demand_usd),
                usd(x.spot_usd),
                format!("{:.0}", x.unmet_gpu_hours),
            ]
        })
        .collect();
    s.push_str(&columns(
        &[
            "scenario",
            "prob",
            "total",
            "commitments",
            "on-demand",
            "spot",
            "unmet GPU-h",
        ],
        &rows,
    ));
    if !r.prices.is_empty() {
        let _ = writeln!(s, "\nPrices");
        let rows: Vec<Vec<String>> = r
            .prices
            .iter()
            .map(|p| {
                vec![
                    p.provider.clone(),
                    p.accelerator.clone(),
                    p.market.clone(),
                    format!("{:.4}", p.usd_per_gpu_hour),
                    p.source.clone(),
                ]
            })
            .collect();
        s.push_str(&columns(
            &["provider", "accelerator", "market", "$/GPU-h", "source"],
            &rows,
        ));
    }
    if !r.policies.is_empty() {
        let _ = writeln!(s, "\nPolicies");
        let rows: Vec<Vec<String>> = r
            .policies
            .iter()
            .map(|p| {
                vec![
                    p.policy.clone(),
                    if p.binding {
                        "binding".into()
                    } else {
                        "slack".into()
                    },
                    match p.cost_usd {
                        None => "needed for feasibility".into(),
                        Some(c) if p.binding => usd(c),
                        Some(_) => "-".into(),
                    },
                ]
            })
            .collect();
        s.push_str(&columns(&["policy", "status", "costs"], &rows));
    }
    if !r.violations.is_empty() {
        let _ = writeln!(s, "\nViolations");
        for v in &r.violations {
            let _ = writeln!(s, "- {}: {}", v.policy, v.detail);
        }
    }
    if !r.baselines.is_empty() {
        let _ = writeln!(s, "\nBaselines");
        let mut rows = vec![vec![
            "this plan".to_owned(),
            usd(r.expected_cost_usd),
            "1.000".into(),
            if r.violations.is_empty() {
                "-".into()
            } else {
                "see violations".into()
            },
        ]];
        rows.extend(r.baselines.iter().map(|b| {
            vec![
                b.name.clone(),
                usd(b.expected_cost_usd),
                format!("{:.3}", b.vs_plan),
                if b.breaks.is_empty() {
                    "-".into()
                } else {
                    b.breaks.join(", ")
                },
            ]
        }));
        s.push_str(&columns(
            &["plan", "expected cost", "vs plan", "breaks"],
            &rows,
        ));
    }
    if let Some(o) = &r.out_of_sample {
        s.push('\n');
        s.push_str(&render_out_of_sample(o));
    }
    s
}

/// The out-of-sample section: cost distributions, VSS, EVPI and regret.
pub fn render_out_of_sample(o: &OutOfSample) -> String {
    let mut s = String::new();
    let _ = write!(s, "Out of sample: {} fresh demand paths", o.paths);
    if let (Some(g), Some(seed)) = (o.generator, o.seed) {
        let _ = write!(
            s,
            " (scenario switching {:.2}/period, noise {:.3}, seed {seed})",
            g.switch, g.noise
        );
    }
    s.push('\n');
    let rows: Vec<Vec<String>> = o
        .plans
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                usd(p.cost_usd.mean),
                usd(p.cost_usd.p10),
                usd(p.cost_usd.p50),
                usd(p.cost_usd.p90),
                usd(p.cost_usd.p99),
                format!("{:.3}", p.vs_plan),
                if p.name == "this plan" || p.name == "hindsight optimum" {
                    "-".into()
                } else {
                    pct(p.plan_cheaper_on)
                },
                if p.breaks.is_empty() {
                    "-".into()
                } else {
                    p.breaks.join(", ")
                },
            ]
        })
        .collect();
    s.push_str(&columns(
        &[
            "plan",
            "mean",
            "p10",
            "p50",
            "p90",
            "p99",
            "vs plan",
            "plan cheaper on",
            "breaks",
        ],
        &rows,
    ));
    let _ = writeln!(s, "(hindsight: the same model and policies solved knowing each path; breaks: policies broken on the planning scenarios)");
    let rp = o.plans.first().map_or(0.0, |p| p.cost_usd.mean);
    let rel = |x: f64| if rp > 0.0 { pct(x / rp) } else { "-".into() };
    let _ = writeln!(
        s,
        "VSS (expected-value plan − this plan, mean): {} ({} of this plan)",
        usd(o.vss_usd),
        rel(o.vss_usd)
    );
    let _ = writeln!(
        s,
        "EVPI (this plan − hindsight optimum, mean): {} ({})",
        usd(o.evpi_usd),
        rel(o.evpi_usd)
    );
    let r = &o.regret_usd;
    let _ = writeln!(
        s,
        "regret vs hindsight per path: p50 {}  p90 {}  p99 {}  max {}",
        usd(r.p50),
        usd(r.p90),
        usd(r.p99),
        usd(r.max)
    );
    if o.hindsight_infeasible > 0 {
        let _ = writeln!(
            s,
            "note: {} paths have no feasible hindsight plan (left out of EVPI and regret)",
            o.hindsight_infeasible
        );
    }
    let unmet: Vec<String> = o
        .plans
        .iter()
        .filter(|p| p.unmet_gpu_hours > 0.0)
        .map(|p| format!("{} {:.0}", p.name, p.unmet_gpu_hours))
        .collect();
    if !unmet.is_empty() {
        let _ = writeln!(
            s,
            "note: mean unserved GPU-hours per path (capacity exhausted): {}",
            unmet.join(", ")
        );
    }
    s
}

pub fn render_infeasible(r: &InfeasibilityReport) -> String {
    let mut s = String::from("INFEASIBLE: no portfolio meets every policy and capacity.\n");
    s.push_str("Least total violation, by constraint family:\n");
    let rows: Vec<Vec<String>> = r
        .conflicts
        .iter()
        .map(|c| {
            vec![
                c.family.clone(),
                c.rows.to_string(),
                format!("{:.1}", c.total),
                format!("{:.1}", c.worst_amount),
                c.worst.clone(),
            ]
        })
        .collect();
    s.push_str(&columns(
        &["family", "rows", "total short", "worst", "worst row"],
        &rows,
    ));
    if r.dropping_any_restores.is_empty() {
        s.push_str("No single policy's removal makes it feasible.\n");
    } else {
        let _ = writeln!(
            s,
            "Dropping any one of these makes it feasible: {}",
            r.dropping_any_restores.join(", ")
        );
    }
    s
}

pub fn render_sweep(param: SweepParam, points: &[SweepPoint]) -> String {
    let mut s = format!("Frontier: expected cost against {}\n", param.as_str());
    let rows: Vec<Vec<String>> = points
        .iter()
        .map(|p| {
            vec![
                format!("{:.2}", p.value),
                p.expected_cost_usd.map_or("infeasible".into(), usd),
                p.cvar_usd.map_or("-".into(), usd),
                p.committed_avg_gpus
                    .map_or("-".into(), |g| format!("{g:.0}")),
            ]
        })
        .collect();
    s.push_str(&columns(
        &[
            param.as_str(),
            "expected cost",
            "CVaR",
            "avg committed GPUs",
        ],
        &rows,
    ));
    s
}

pub fn render_break_even(rows_in: &[BreakEven]) -> String {
    let mut s =
        String::from("Break-even rates ($/GPU-hour): the price to ask for in a negotiation\n");
    let f = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.2}"));
    let rows: Vec<Vec<String>> = rows_in
        .iter()
        .map(|b| {
            vec![
                b.provider.clone(),
                b.accelerator.clone(),
                b.term_periods.to_string(),
                format!("{:.2}", b.rate),
                b.planned_gpu_periods.to_string(),
                f(b.enters_below),
                f(b.grows_below),
                if b.planned_gpu_periods > 0 && b.leaves_above.is_none() {
                    "forced".into()
                } else {
                    f(b.leaves_above)
                },
            ]
        })
        .collect();
    s.push_str(&columns(
        &[
            "provider",
            "accelerator",
            "term",
            "rate",
            "GPU-periods",
            "enters below",
            "grows below",
            "leaves above",
        ],
        &rows,
    ));
    s
}

//! Orchestration: choose a method, solve, round, evaluate independently, explain infeasibility, cost the
//! binding policies, run the baselines, sweep a policy (the frontier) and find break-even rates.

use crate::backend::Backend;
use crate::baselines;
use crate::benders;
use crate::error::PlanError;
use crate::evaluate::evaluate;
use crate::formulation::{contracts_from, extensive_form, BuildOptions, FirstStage};
use crate::input::{PlanningInput, PolicyName};
use crate::lp::{Family, LinearProgram, LpBackend, LpOutcome, SolveOptions};
use crate::portfolio::{PlannedCommitment, Resolved};
use crate::report::{self, PlanReport, PolicyCost};
use serde::Serialize;

/// How to solve.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Extensive form for models with at most `AUTO_EXTENSIVE_CELLS` second-stage variables or a CVaR
    /// term, the decomposition otherwise.
    #[default]
    Auto,
    Extensive,
    Benders,
}

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        match s {
            "auto" => Some(Method::Auto),
            "extensive" => Some(Method::Extensive),
            "benders" => Some(Method::Benders),
            _ => None,
        }
    }
}

/// Second-stage variables above which `Method::Auto` decomposes.
pub const AUTO_EXTENSIVE_CELLS: usize = 60_000;
/// Contract variables up to which GPUs are integer variables (above: continuous, rounded).
pub const AUTO_INTEGER_CONTRACTS: usize = 60;

#[derive(Clone, Debug)]
pub struct PlannerConfig {
    pub backend: Backend,
    pub method: Method,
    /// Relative optimality gap (MIP gap, and the Benders stopping rule).
    pub gap: f64,
    /// Solve the LP relaxation (blocks, minimums and min_providers become continuous).
    pub relax_integers: bool,
    /// Whole GPUs as integer variables; `None` = automatic (small models).
    pub integer_gpus: Option<bool>,
    pub max_iterations: usize,
    /// Seconds one MIP solve may take before its best point is used (reported as unproven).
    pub time_limit_s: f64,
    /// Re-solve without each policy to price it.
    pub price_policies: bool,
    pub baselines: bool,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        PlannerConfig {
            backend: Backend::Cbc,
            method: Method::Auto,
            gap: 1e-4,
            relax_integers: false,
            integer_gpus: None,
            max_iterations: 200,
            time_limit_s: 60.0,
            price_policies: true,
            baselines: true,
        }
    }
}

impl PlannerConfig {
    /// A configuration for the inner solves (sweeps, baselines, policy prices): no reports of its own.
    pub fn inner(&self) -> PlannerConfig {
        PlannerConfig {
            price_policies: false,
            baselines: false,
            ..self.clone()
        }
    }
}

/// An optimised portfolio, rounded to whole GPUs.
#[derive(Clone, Debug)]
pub struct Optimised {
    pub commitments: Vec<Resolved>,
    /// The solver's objective (before rounding), dollars.
    pub objective_usd: f64,
    /// A lower bound on the optimum (the Benders master's objective; the objective in the extensive form).
    pub lower_bound_usd: f64,
    pub method: Method,
    pub iterations: usize,
    pub integer_gpus: bool,
    pub relaxed: bool,
    /// Optimality proven within the gap (false when a MIP solve hit its time limit).
    pub proven: bool,
    /// How the GPU counts became whole numbers.
    pub rounding: Rounding,
}

/// How a plan's GPU counts became whole numbers.
///
/// Large models are solved with continuous GPUs. Their point is rounded to the nearest whole GPU (block),
/// and the independent evaluator checks the rounded plan exactly. If that breaks anything (a resilience
/// cell short by 0.4 GPU, 301 GPUs against a capacity of 300, a share above its cap), the plan is repaired
/// by a small integer model around the LP point: the same model with every contract an integer between
/// the floor and the ceiling of its LP value, so the solver picks the rounding direction of every contract
/// at once, at least cost, with every policy row in force. If no such point exists the box grows
/// ([`REPAIR_BOXES`]), at last to every contract's full range.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "how")]
pub enum Rounding {
    /// GPUs were integer variables of the model.
    Integer,
    /// The LP relaxation was asked for (`--relax`): rounded to the nearest whole block, nothing repaired.
    Relaxed,
    /// Rounded to the nearest whole GPU; the evaluator found every policy kept.
    Nearest,
    /// The nearest rounding broke these policies; an integer model repaired it, every contract within
    /// `box_slack` blocks of the floor/ceiling of its LP value (`None`: over its full range).
    Repaired {
        nearest_broke: Vec<String>,
        box_slack: Option<u32>,
    },
    /// The nearest rounding broke these policies and no integer point keeps them all (the report lists
    /// the violations).
    Unrepaired { nearest_broke: Vec<String> },
}

impl Rounding {
    pub fn describe(&self) -> String {
        match self {
            Rounding::Integer => "whole GPUs in the model".into(),
            Rounding::Relaxed => "LP relaxation rounded to the nearest block".into(),
            Rounding::Nearest => "continuous GPUs rounded to the nearest whole GPU".into(),
            Rounding::Repaired {
                nearest_broke,
                box_slack,
            } => format!(
                "nearest rounding broke {}; repaired by an integer model {}",
                nearest_broke.join(", "),
                match box_slack {
                    None => "over each contract's full range".to_owned(),
                    Some(0) => "within floor/ceiling of the LP point".to_owned(),
                    Some(k) => format!("within {k} of floor/ceiling of the LP point"),
                }
            ),
            Rounding::Unrepaired { nearest_broke } => {
                format!(
                    "nearest rounding broke {}; no whole-GPU plan keeps every policy",
                    nearest_broke.join(", ")
                )
            }
        }
    }
}

/// One family of rows that has to give way for the model to be feasible.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Conflict {
    pub family: String,
    /// Rows of the family that are violated in the least-violation point.
    pub rows: usize,
    /// Total violation (GPUs for coverage rows, dollars for the budget, providers for min_providers).
    pub total: f64,
    pub worst: String,
    pub worst_amount: f64,
}

/// Why no plan meets every policy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InfeasibilityReport {
    pub status: &'static str,
    /// Least total violation split by family.
    pub conflicts: Vec<Conflict>,
    /// Single policies whose removal makes the model feasible.
    pub dropping_any_restores: Vec<String>,
}

pub enum PlanOutcome {
    Optimal(Box<PlanReport>),
    Infeasible(InfeasibilityReport),
}

fn choose_method(input: &PlanningInput, cfg: &PlannerConfig) -> Method {
    match cfg.method {
        Method::Auto => {
            if input.risk.is_some_and(|r| r.weight > 0.0) {
                return Method::Extensive;
            }
            let cells = input.scenarios.len()
                * input.horizon.periods
                * input.accelerators.len()
                * input.providers.len()
                * 2;
            if cells <= AUTO_EXTENSIVE_CELLS {
                Method::Extensive
            } else {
                Method::Benders
            }
        }
        m => m,
    }
}

fn resolved(input: &PlanningInput, fs: &FirstStage, values: &[f64]) -> Vec<Resolved> {
    contracts_from(fs, values)
        .into_iter()
        .map(|(p, o, j, g)| {
            let opt = &input.providers[p].options[o];
            Resolved {
                provider: p,
                accelerator: opt.accelerator,
                term_periods: opt.term_periods,
                start_period: j,
                gpus: g,
                rate: opt.rate,
            }
        })
        .collect()
}

/// Solves the model (no reports).
pub fn optimise(
    input: &PlanningInput,
    cfg: &PlannerConfig,
) -> Result<Result<Optimised, InfeasibilityReport>, PlanError> {
    let method = choose_method(input, cfg);
    let n_contracts: usize = input
        .providers
        .iter()
        .map(|p| p.options.len())
        .sum::<usize>()
        * input.horizon.start_periods;
    let integer_gpus = !cfg.relax_integers
        && cfg
            .integer_gpus
            .unwrap_or(n_contracts <= AUTO_INTEGER_CONTRACTS);
    let build = BuildOptions {
        relax_integers: cfg.relax_integers,
        integer_gpus,
    };
    let opts = SolveOptions {
        mip_gap: cfg.gap,
        time_limit_s: cfg.time_limit_s,
    };
    let backend: &dyn LpBackend = &cfg.backend;
    match method {
        Method::Benders => {
            match benders::solve(input, backend, build, &opts, cfg.gap, cfg.max_iterations)? {
                Ok(r) => {
                    let (commitments, rounding, proven) =
                        whole_gpus(input, cfg, &opts, &r.fs, &r.values, integer_gpus)?;
                    Ok(Ok(Optimised {
                        commitments,
                        objective_usd: r.upper_bound,
                        lower_bound_usd: r.lower_bound,
                        method,
                        iterations: r.iterations,
                        integer_gpus,
                        relaxed: cfg.relax_integers,
                        proven: r.proven && proven,
                        rounding,
                    }))
                }
                Err(fs) => Ok(Err(explain(input, cfg, &fs)?)),
            }
        }
        _ => {
            let fs = extensive_form(input, build)?;
            match backend
                .solve(&fs.lp, &opts)
                .map_err(|reason| PlanError::Solver {
                    backend: backend.name(),
                    reason,
                })? {
                Ok(sol) => {
                    let (commitments, rounding, proven) =
                        whole_gpus(input, cfg, &opts, &fs, &sol.values, integer_gpus)?;
                    Ok(Ok(Optimised {
                        commitments,
                        objective_usd: sol.objective,
                        lower_bound_usd: sol.objective,
                        method: Method::Extensive,
                        iterations: 1,
                        integer_gpus,
                        relaxed: cfg.relax_integers,
                        proven: sol.proven && proven,
                        rounding,
                    }))
                }
                Err(LpOutcome::Infeasible) => Ok(Err(explain(input, cfg, &fs)?)),
                Err(LpOutcome::Unbounded) => Err(PlanError::Solver {
                    backend: backend.name(),
                    reason: "model unbounded".into(),
                }),
            }
        }
    }
}

/// Whole GPUs from a solution of `fs` (see [`Rounding`]); also whether the repair solve (if any) was proven.
fn whole_gpus(
    input: &PlanningInput,
    cfg: &PlannerConfig,
    opts: &SolveOptions,
    fs: &FirstStage,
    values: &[f64],
    integer_gpus: bool,
) -> Result<(Vec<Resolved>, Rounding, bool), PlanError> {
    let nearest = resolved(input, fs, values);
    if cfg.relax_integers {
        return Ok((nearest, Rounding::Relaxed, true));
    }
    let nearest_broke = evaluate(input, &nearest).broken_policies();
    if nearest_broke.is_empty() {
        return Ok((
            nearest,
            if integer_gpus {
                Rounding::Integer
            } else {
                Rounding::Nearest
            },
            true,
        ));
    }
    let backend: &dyn LpBackend = &cfg.backend;
    for slack in REPAIR_BOXES {
        let lp = integer_around(fs, values, slack);
        match backend
            .solve(&lp, opts)
            .map_err(|reason| PlanError::Solver {
                backend: backend.name(),
                reason,
            })? {
            Ok(sol) => {
                let repaired = resolved(input, fs, &sol.values);
                return Ok((
                    repaired,
                    Rounding::Repaired {
                        nearest_broke,
                        box_slack: slack,
                    },
                    sol.proven,
                ));
            }
            Err(_) => continue,
        }
    }
    Ok((nearest, Rounding::Unrepaired { nearest_broke }, true))
}

/// The boxes the repair tries in turn: each contract within `floor − k ..= ceil + k` blocks of its LP value,
/// then (`None`) over its whole range.
pub const REPAIR_BOXES: [Option<u32>; 4] = [Some(0), Some(1), Some(8), None];

/// The model with every contract an integer number of blocks: within `floor − k ..= ceil + k` of its value
/// at `values` (`Some(k)`), or over its whole range (`None`).
pub fn integer_around(fs: &FirstStage, values: &[f64], slack: Option<u32>) -> LinearProgram {
    let mut lp = fs.lp.clone();
    for c in &fs.contracts {
        let v = &mut lp.vars[c.blocks.0 as usize];
        let x = values[c.blocks.0 as usize].max(0.0);
        v.integer = true;
        let (lb, ub) = (v.lb.ceil(), v.ub.floor());
        if let Some(k) = slack {
            let k = f64::from(k);
            // Tolerances: an LP value within 1e-6 of a whole number is that number.
            v.lb = ((x + 1e-6).floor() - k).clamp(lb, ub);
            v.ub = ((x - 1e-6).ceil() + k).clamp(v.lb, ub);
        } else {
            v.lb = lb;
            v.ub = ub;
        }
    }
    lp
}

/// Least-violation point of the elastic model, grouped by family; then which single policy to drop.
fn explain(
    input: &PlanningInput,
    cfg: &PlannerConfig,
    fs: &FirstStage,
) -> Result<InfeasibilityReport, PlanError> {
    let mut lp = fs.lp.clone();
    // The elastic point is explained in GPUs and dollars, so integrality does not matter here.
    for v in &mut lp.vars {
        v.integer = false;
    }
    let (elastic, slacks) = lp.elastic();
    let backend: &dyn LpBackend = &cfg.backend;
    let mut conflicts: Vec<Conflict> = Vec::new();
    match backend
        .solve(&elastic, &SolveOptions::default())
        .map_err(|reason| PlanError::Solver {
            backend: backend.name(),
            reason,
        })? {
        Ok(sol) => {
            for (v, row, _) in slacks {
                let amount = sol.values[v.0 as usize];
                if amount <= 1e-6 {
                    continue;
                }
                let tag = &elastic.rows[row].tag;
                let name = tag.family.as_str().to_owned();
                let c = match conflicts.iter_mut().position(|c| c.family == name) {
                    Some(i) => &mut conflicts[i],
                    None => {
                        conflicts.push(Conflict {
                            family: name,
                            rows: 0,
                            total: 0.0,
                            worst: String::new(),
                            worst_amount: 0.0,
                        });
                        conflicts.last_mut().expect("just pushed")
                    }
                };
                c.rows += 1;
                c.total += amount;
                if amount > c.worst_amount {
                    c.worst_amount = amount;
                    c.worst = tag.detail.clone();
                }
            }
        }
        Err(_) => conflicts.push(Conflict {
            family: Family::ContractShape.as_str().to_owned(),
            rows: 0,
            total: 0.0,
            worst: "no point satisfies the definitions even with every policy relaxed".into(),
            worst_amount: 0.0,
        }),
    }
    let mut dropping_any_restores = Vec::new();
    let small = input.scenarios.len()
        * input.horizon.periods
        * input.accelerators.len()
        * input.providers.len()
        <= AUTO_EXTENSIVE_CELLS;
    if small {
        for p in input.policies.active() {
            let mut relaxed = input.clone();
            relaxed.policies = input.policies.without(p);
            let fs2 = extensive_form(
                &relaxed,
                BuildOptions {
                    relax_integers: true,
                    integer_gpus: false,
                },
            )?;
            if let Ok(Ok(_)) = backend.solve(&fs2.lp, &SolveOptions::default()) {
                dropping_any_restores.push(p.as_str().to_owned());
            }
        }
    }
    Ok(InfeasibilityReport {
        status: "infeasible",
        conflicts,
        dropping_any_restores,
    })
}

/// Solves, evaluates, prices the policies and runs the baselines.
pub fn plan(input: &PlanningInput, cfg: &PlannerConfig) -> Result<PlanOutcome, PlanError> {
    let opt = match optimise(input, cfg)? {
        Ok(o) => o,
        Err(inf) => return Ok(PlanOutcome::Infeasible(inf)),
    };
    let ev = evaluate(input, &opt.commitments);
    let mut policy_costs = Vec::new();
    if cfg.price_policies {
        for p in input.policies.active() {
            let mut without = input.clone();
            without.policies = input.policies.without(p);
            let cost = match optimise(&without, &cfg.inner())? {
                Ok(o) => Some(evaluate(&without, &o.commitments).expected_cost_usd),
                Err(_) => None,
            };
            let price = cost.map(|c| ev.expected_cost_usd - c);
            policy_costs.push(PolicyCost {
                policy: p.as_str().to_owned(),
                cost_usd: price,
                binding: price
                    .is_some_and(|x| x > cfg.gap.max(1e-6) * ev.expected_cost_usd.abs().max(1.0)),
            });
        }
    }
    let baselines = if cfg.baselines {
        baselines::all(input, cfg, &opt)?
    } else {
        Vec::new()
    };
    Ok(PlanOutcome::Optimal(Box::new(report::build(
        input,
        cfg.backend.name(),
        &opt,
        ev,
        policy_costs,
        baselines,
    ))))
}

/// A policy parameter to sweep.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepParam {
    KeepFraction,
    MaxShare,
}

impl SweepParam {
    /// Parses `keep_fraction=0:1:0.1` into the parameter and its values.
    pub fn parse_spec(spec: &str) -> Result<(SweepParam, Vec<f64>), PlanError> {
        let bad = |reason: &str| PlanError::Invalid {
            field: "--sweep".into(),
            reason: reason.into(),
        };
        let (name, range) = spec
            .split_once('=')
            .ok_or_else(|| bad("expected NAME=FROM:TO:STEP"))?;
        let param = match name.trim() {
            "keep_fraction" => SweepParam::KeepFraction,
            "max_share" => SweepParam::MaxShare,
            other => {
                return Err(bad(&format!(
                    "unknown parameter {other:?} (keep_fraction or max_share)"
                )))
            }
        };
        let parts: Vec<f64> = range
            .split(':')
            .map(|x| x.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad("FROM:TO:STEP must be numbers"))?;
        let [from, to, step] = parts[..] else {
            return Err(bad("expected FROM:TO:STEP"));
        };
        if step.is_nan()
            || step <= 0.0
            || !(0.0..=1.0).contains(&from)
            || !(0.0..=1.0).contains(&to)
            || from > to
        {
            return Err(bad("need 0 <= FROM <= TO <= 1 and STEP > 0"));
        }
        let n = ((to - from) / step + 1e-9).floor() as usize;
        let values = (0..=n)
            .map(|i| ((from + step * i as f64) * 1e9).round() / 1e9)
            .collect();
        Ok((param, values))
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SweepParam::KeepFraction => "keep_fraction",
            SweepParam::MaxShare => "max_share",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepPoint {
    pub value: f64,
    /// `None` when infeasible at this value.
    pub expected_cost_usd: Option<f64>,
    pub cvar_usd: Option<f64>,
    pub committed_avg_gpus: Option<f64>,
}

/// The frontier: cost against one policy's value.
pub fn sweep(
    input: &PlanningInput,
    cfg: &PlannerConfig,
    param: SweepParam,
    values: &[f64],
) -> Result<Vec<SweepPoint>, PlanError> {
    let mut out = Vec::new();
    for &v in values {
        let mut i = input.clone();
        match param {
            SweepParam::KeepFraction => i.policies.keep_fraction = Some(v),
            SweepParam::MaxShare => {
                let of = input
                    .policies
                    .max_share
                    .map_or(crate::input::ShareOf::CommittedGpus, |m| m.0);
                i.policies.max_share = if v > 0.0 { Some((of, v)) } else { None };
            }
        }
        let point = match optimise(&i, &cfg.inner())? {
            Ok(o) => {
                let ev = evaluate(&i, &o.commitments);
                let alpha = input.risk.map_or(0.95, |r| r.cvar_alpha);
                Some((
                    ev.expected_cost_usd,
                    crate::evaluate::cvar(&ev.scenarios, alpha),
                    ev.holdings.iter().map(|h| h.avg_gpus).sum(),
                ))
            }
            Err(_) => None,
        };
        out.push(SweepPoint {
            value: v,
            expected_cost_usd: point.map(|p| p.0),
            cvar_usd: point.map(|p| p.1),
            committed_avg_gpus: point.map(|p| p.2),
        });
    }
    Ok(out)
}

/// The rates at which one term on offer enters, grows in or leaves the optimal plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BreakEven {
    pub provider: String,
    pub accelerator: String,
    pub term_periods: usize,
    pub rate: f64,
    /// GPU-periods of this term in the plan at the offered rate.
    pub planned_gpu_periods: u64,
    /// Not in the plan: it enters at or below this rate (`None`: not even near zero).
    pub enters_below: Option<f64>,
    /// In the plan: more of it is bought at or below this rate.
    pub grows_below: Option<f64>,
    /// In the plan: it leaves above this rate (`None`: stays up to the search limit, i.e. a policy forces it).
    pub leaves_above: Option<f64>,
}

const BISECTION_STEPS: usize = 7;

/// For every term on offer: the break-even rates, by re-solving at other rates (bisection, 7 steps).
pub fn break_even(input: &PlanningInput, cfg: &PlannerConfig) -> Result<Vec<BreakEven>, PlanError> {
    let inner = cfg.inner();
    let amount = |i: &PlanningInput, p: usize, o: usize| -> Result<Option<u64>, PlanError> {
        let opt = &i.providers[p].options[o];
        Ok(match optimise(i, &inner)? {
            Ok(sol) => Some(
                sol.commitments
                    .iter()
                    .filter(|c| {
                        c.provider == p
                            && c.accelerator == opt.accelerator
                            && c.term_periods == opt.term_periods
                            && c.rate == opt.rate
                    })
                    .map(|c| u64::from(c.gpus) * c.term_periods as u64)
                    .sum(),
            ),
            Err(_) => None,
        })
    };
    let with_rate = |p: usize, o: usize, usd: f64| -> PlanningInput {
        let mut i = input.clone();
        i.providers[p].options[o].rate =
            hedge_core::Rate::from_usd_per_hour_f64(usd.max(0.000_001))
                .unwrap_or(hedge_core::Rate::ZERO);
        i
    };
    let mut out = Vec::new();
    for (p, prov) in input.providers.iter().enumerate() {
        for (o, opt) in prov.options.iter().enumerate() {
            let r0 = opt.rate.to_usd_per_hour_f64();
            let Some(base) = amount(input, p, o)? else {
                return Err(PlanError::Unsupported {
                    what: "break-even rates of an infeasible plan".into(),
                });
            };
            let a = opt.accelerator;
            let dearest = input
                .providers
                .iter()
                .filter_map(|q| q.on_demand[a])
                .map(|r| r.to_usd_per_hour_f64())
                .fold(r0, f64::max);
            // sup{ r in [lo, hi] : pred(amount(r)) }, assuming pred(lo) holds and amounts fall with the rate.
            let search = |lo: f64, hi: f64, pred: &dyn Fn(u64) -> bool| -> Result<f64, PlanError> {
                let (mut lo, mut hi) = (lo, hi);
                for _ in 0..BISECTION_STEPS {
                    let mid = 0.5 * (lo + hi);
                    if amount(&with_rate(p, o, mid), p, o)?.is_some_and(pred) {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                Ok((lo * 100.0).round() / 100.0)
            };
            let mut be = BreakEven {
                provider: prov.id.to_string(),
                accelerator: input.accelerators[a].to_string(),
                term_periods: opt.term_periods,
                rate: r0,
                planned_gpu_periods: base,
                enters_below: None,
                grows_below: None,
                leaves_above: None,
            };
            if base == 0 {
                let near_zero = r0 * 0.01;
                if amount(&with_rate(p, o, near_zero), p, o)?.is_some_and(|g| g > 0) {
                    be.enters_below = Some(search(near_zero, r0, &|g| g > 0)?);
                }
            } else {
                let hi = dearest * 2.0;
                if amount(&with_rate(p, o, hi), p, o)?.is_some_and(|g| g > 0) {
                    be.leaves_above = None;
                } else {
                    be.leaves_above = Some(search(r0, hi, &|g| g > 0)?);
                }
                let near_zero = r0 * 0.01;
                let target = base + base / 100 + 1;
                if amount(&with_rate(p, o, near_zero), p, o)?.is_some_and(|g| g >= target) {
                    be.grows_below = Some(search(near_zero, r0, &|g| g >= target)?);
                }
            }
            out.push(be);
        }
    }
    Ok(out)
}

/// The plan's commitments in the JSON shape.
pub fn planned(input: &PlanningInput, cs: &[Resolved]) -> Vec<PlannedCommitment> {
    cs.iter()
        .map(|c| PlannedCommitment {
            provider: input.providers[c.provider].id.clone(),
            accelerator: input.accelerators[c.accelerator].clone(),
            term_periods: c.term_periods,
            start_period: c.start_period,
            gpus: c.gpus,
            rate: c.rate.to_usd_per_hour_f64(),
        })
        .collect()
}

/// Used by tests: a policy name as the evaluator reports it.
pub fn evaluator_policy_name(p: PolicyName) -> &'static str {
    match p {
        PolicyName::MaxShare => "max_share",
        PolicyName::MinProviders => "min_providers",
        PolicyName::Resilience => "survive_loss_of/keep_fraction",
        PolicyName::Budget => "budget_usd",
        PolicyName::UnmetForbid => "unmet_demand",
    }
}

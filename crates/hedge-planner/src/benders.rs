//! L-shaped (Benders) decomposition of the same model, for scale.
//!
//! Given the first stage (so the coverage `X[p,t,a]`), the second stage separates into independent cells
//! `(s, t, a)`. A cell's recourse `Q_s,t,a(X)` is the cost of buying `D − Σ_p X_p` cheapest-first from
//! spot (≤ `σ_p·D`) and on-demand offers, each provider within `cap_p − X_p`, the rest unmet at the
//! penalty. That LP is solved exactly by the greedy fill, and its dual is read off it:
//!
//! - `π` = the price of the marginal piece (0 when commitments cover the demand, the penalty when
//!   capacity runs out);
//! - `μ_p` (provider capacity) and `ν_p` (spot limit) = the cheapest split of `max(0, π − c°_p)` and
//!   `max(0, π − cˢ_p)` between the two limits.
//!
//! LP duality gives the optimality cut `Q(X') ≥ π·(D − Σ_p X'_p) − Σ_p μ_p·(cap_p − X'_p) − Σ_p ν_p·σ_p·D`,
//! exact at the current `X`. The master keeps one recourse variable `θ[t,a] ≥ Σ_s π_s Q_s,t,a` per period
//! and accelerator (multi-cut by cell, aggregated over scenarios), so each cut has one term per provider.
//! Under `unmet_demand: forbid` the master also carries the exact feasibility rows
//! `Σ_{p without a market} X_p + Σ_{p with on-demand} cap_p ≥ max_s D` (only where every market is capped).
//!
//! Stopping rule: `UB − LB ≤ gap·UB`, where `LB` is the master's objective and `UB` the first-stage cost
//! plus the exact expected recourse at the master's point. The CVaR term is not decomposed: a model with
//! `risk` is solved in the extensive form.

use crate::error::PlanError;
use crate::formulation::{first_stage, gpus, usd, usd_money, BuildOptions, FirstStage};
use crate::input::{PlanningInput, Unmet};
use crate::lp::{Family, LpBackend, LpOutcome, SolveOptions, Var};

/// One priced source of GPUs in a cell.
#[derive(Clone, Copy, Debug)]
struct Source {
    price: f64,
    provider: usize,
    spot: bool,
}

/// The per-accelerator market data the cells need.
struct Market {
    /// Sorted by price (then provider, spot first).
    sources: Vec<Source>,
    od: Vec<Option<f64>>,
    spot: Vec<Option<f64>>,
    sigma: Vec<f64>,
    cap: Vec<Option<f64>>,
}

/// A cell's value and an affine minorant `const + Σ_p coef_p X_p` exact at the point.
#[derive(Debug, Clone)]
pub struct CellCut {
    pub value: f64,
    pub constant: f64,
    pub coef: Vec<f64>,
    pub shortfall: f64,
}

fn market(input: &PlanningInput, a: usize) -> Market {
    let np = input.providers.len();
    let mut sources = Vec::new();
    let (mut od, mut spot, mut sigma, mut cap) = (
        vec![None; np],
        vec![None; np],
        vec![0.0; np],
        vec![None; np],
    );
    for (p, prov) in input.providers.iter().enumerate() {
        if let Some(c) = prov.spot[a] {
            if prov.spot_availability[a] > 0.0 {
                sources.push(Source {
                    price: usd(c),
                    provider: p,
                    spot: true,
                });
                spot[p] = Some(usd(c));
                sigma[p] = prov.spot_availability[a];
            }
        }
        if let Some(c) = prov.on_demand[a] {
            sources.push(Source {
                price: usd(c),
                provider: p,
                spot: false,
            });
            od[p] = Some(usd(c));
        }
        cap[p] = prov.capacity[a].map(|c| c as f64);
    }
    sources.sort_by(|x, y| {
        x.price
            .total_cmp(&y.price)
            .then(x.provider.cmp(&y.provider))
            .then(y.spot.cmp(&x.spot))
    });
    Market {
        sources,
        od,
        spot,
        sigma,
        cap,
    }
}

/// The recourse of one cell in $/hour (multiply by the period's hours), with its cut.
fn cell(m: &Market, d: f64, x: &[f64], penalty: Option<f64>) -> CellCut {
    let np = x.len();
    let covered: f64 = x.iter().sum();
    let mut need = d - covered;
    if need <= 1e-9 {
        return CellCut {
            value: 0.0,
            constant: 0.0,
            coef: vec![0.0; np],
            shortfall: 0.0,
        };
    }
    let mut room: Vec<f64> = (0..np)
        .map(|p| m.cap[p].map_or(f64::INFINITY, |c| (c - x[p]).max(0.0)))
        .collect();
    let mut value = 0.0;
    let mut pi = 0.0;
    for s in &m.sources {
        if need <= 1e-9 {
            break;
        }
        let lim = if s.spot {
            m.sigma[s.provider] * d
        } else {
            f64::INFINITY
        };
        let q = need.min(lim).min(room[s.provider]);
        if q <= 0.0 {
            continue;
        }
        room[s.provider] -= q;
        need -= q;
        value += q * s.price;
        pi = s.price;
    }
    let mut shortfall = 0.0;
    if need > 1e-9 {
        match penalty {
            Some(pen) => {
                value += need * pen;
                pi = pen;
            }
            None => {
                shortfall = need;
                // Price the shortfall at the dearest source so the cut stays finite; the caller reports it.
                pi = m.sources.iter().map(|s| s.price).fold(pi, f64::max);
                value += need * pi;
            }
        }
    }
    // Dual multipliers of the provider capacities (μ) and spot limits (ν).
    let mut constant = pi * d;
    let mut coef = vec![-pi; np];
    for p in 0..np {
        let a = m.od[p].map_or(0.0, |c| (pi - c).max(0.0));
        let b = m.spot[p].map_or(0.0, |c| (pi - c).max(0.0));
        let s_lim = m.sigma[p] * d;
        let (mu, nu) = match m.cap[p] {
            None => (0.0, b),
            Some(cap) => {
                let k = (cap - x[p]).max(0.0);
                if k <= s_lim {
                    (a.max(b), 0.0)
                } else {
                    (a, (b - a).max(0.0))
                }
            }
        };
        if let Some(cap) = m.cap[p] {
            constant -= mu * cap;
            coef[p] += mu;
        }
        constant -= nu * s_lim;
    }
    CellCut {
        value,
        constant,
        coef,
        shortfall,
    }
}

/// What the decomposition returns.
pub struct BendersResult {
    pub fs: FirstStage,
    pub values: Vec<f64>,
    pub lower_bound: f64,
    pub upper_bound: f64,
    pub iterations: usize,
    pub cuts: usize,
    /// Every master solve was proven optimal (no MIP time limit hit).
    pub proven: bool,
}

/// Solves by L-shaped decomposition. `Ok(Err(fs))` is an infeasible master (returned for explanation).
pub fn solve(
    input: &PlanningInput,
    backend: &dyn LpBackend,
    build: BuildOptions,
    opts: &SolveOptions,
    gap: f64,
    max_iterations: usize,
) -> Result<Result<BendersResult, FirstStage>, PlanError> {
    if input.risk.is_some_and(|r| r.weight > 0.0) {
        return Err(PlanError::Unsupported {
            what: "the CVaR risk term with the Benders method (use --method extensive)".into(),
        });
    }
    let (np, na, nt) = (
        input.providers.len(),
        input.accelerators.len(),
        input.horizon.periods,
    );
    let h = input.hours_per_period() as f64;
    let penalty = match input.policies.unmet {
        Unmet::Penalty(r) => Some(usd(r)),
        Unmet::Forbid => None,
    };
    let markets: Vec<Market> = (0..na).map(|a| market(input, a)).collect();
    let mut fs = first_stage(input, build)?;

    // θ[t][a]
    let mut theta: Vec<Vec<Option<Var>>> = vec![vec![None; na]; nt];
    for (t, row) in theta.iter_mut().enumerate() {
        for (a, th) in row.iter_mut().enumerate() {
            if input.scenarios.iter().any(|s| s.demand[a][t].0 > 0) {
                *th = Some(fs.lp.var(0.0, f64::INFINITY, 1.0));
            }
        }
    }
    feasibility_rows(input, &markets, &mut fs);
    if let Some(b) = input.policies.budget {
        let mut terms = fs.commit_terms.clone();
        terms.extend(theta.iter().flatten().flatten().map(|v| (*v, 1.0)));
        fs.lp.le(
            terms,
            usd_money(b) - fs.existing_cost,
            Family::Budget,
            format!("expected cost ≤ {b}"),
        );
    }

    let x_at = |fs: &FirstStage, vals: &[f64], a: usize, t: usize| -> Vec<f64> {
        (0..np)
            .map(|p| {
                fs.cover[p][a]
                    .as_ref()
                    .map_or(0.0, |xs| vals[xs[t].0 as usize].max(0.0))
            })
            .collect()
    };
    // Expected recourse of cell (t, a) and its aggregated cut.
    let expected_cut = |a: usize, t: usize, x: &[f64]| -> CellCut {
        let mut agg = CellCut {
            value: 0.0,
            constant: 0.0,
            coef: vec![0.0; np],
            shortfall: 0.0,
        };
        for sc in &input.scenarios {
            let c = cell(&markets[a], gpus(sc.demand[a][t]), x, penalty);
            agg.value += sc.probability * c.value * h;
            agg.constant += sc.probability * c.constant * h;
            for p in 0..np {
                agg.coef[p] += sc.probability * c.coef[p] * h;
            }
            agg.shortfall = agg.shortfall.max(c.shortfall);
        }
        agg
    };
    let mut cuts = 0usize;
    let add_cut = |fs: &mut FirstStage, a: usize, t: usize, th: Var, c: &CellCut| {
        let mut terms = vec![(th, 1.0)];
        for p in 0..np {
            if let Some(xs) = &fs.cover[p][a] {
                if c.coef[p] != 0.0 {
                    terms.push((xs[t], -c.coef[p]));
                }
            }
        }
        fs.lp.ge(
            terms,
            c.constant,
            Family::RecourseCut,
            format!("θ[{t},{a}]"),
        );
    };

    // Initial cuts: coverage at the demand quantiles, spread evenly over the providers that can hold it.
    for a in 0..na {
        let holders: Vec<usize> = (0..np).filter(|&p| fs.cover[p][a].is_some()).collect();
        for t in 0..nt {
            let Some(th) = theta[t][a] else { continue };
            let mut ds: Vec<f64> = input
                .scenarios
                .iter()
                .map(|s| gpus(s.demand[a][t]))
                .collect();
            ds.sort_by(f64::total_cmp);
            let picks = [0.0, 0.25, 0.5, 0.75, 0.9, 1.0];
            for f in picks {
                let total = ds[((ds.len() - 1) as f64 * f).round() as usize];
                let mut x = vec![0.0; np];
                for &p in &holders {
                    x[p] = total / holders.len().max(1) as f64;
                    if let Some(c) = markets[a].cap[p] {
                        x[p] = x[p].min(c);
                    }
                }
                let c = expected_cut(a, t, &x);
                add_cut(&mut fs, a, t, th, &c);
                cuts += 1;
            }
        }
    }

    let mut best: Option<(f64, Vec<f64>)> = None;
    let mut lower = f64::NEG_INFINITY;
    let mut proven = true;
    let integer = fs.lp.has_integers();
    for it in 1..=max_iterations {
        let sol = match backend
            .solve(&fs.lp, opts)
            .map_err(|reason| PlanError::Solver {
                backend: backend.name(),
                reason,
            })? {
            Ok(s) => s,
            Err(LpOutcome::Infeasible) => return Ok(Err(fs)),
            Err(LpOutcome::Unbounded) => {
                return Err(PlanError::Solver {
                    backend: backend.name(),
                    reason: "master problem unbounded".into(),
                })
            }
        };
        // A MILP master solved to a relative gap bounds the optimum only up to that gap.
        let bound = if integer {
            sol.objective * (1.0 - opts.mip_gap)
        } else {
            sol.objective
        };
        lower = lower.max(bound);
        proven &= sol.proven;
        let mut upper = fs.existing_cost
            + fs.commit_terms
                .iter()
                .map(|(v, c)| c * sol.values[v.0 as usize])
                .sum::<f64>();
        let mut new_cuts = Vec::new();
        for a in 0..na {
            for t in 0..nt {
                let Some(th) = theta[t][a] else { continue };
                let x = x_at(&fs, &sol.values, a, t);
                let c = expected_cut(a, t, &x);
                if c.shortfall > 1e-6 {
                    return Err(PlanError::Solver {
                        backend: backend.name(),
                        reason: format!("Benders: second stage short by {:.1} GPUs (spot-only capacity); use --method extensive", c.shortfall),
                    });
                }
                upper += c.value;
                if sol.values[th.0 as usize] < c.value - 1e-7 * c.value.abs() - 1e-6 {
                    new_cuts.push((a, t, th, c));
                }
            }
        }
        if best.as_ref().is_none_or(|b| upper < b.0) {
            best = Some((upper, sol.values.clone()));
        }
        let ub = best.as_ref().map_or(upper, |b| b.0);
        let done = new_cuts.is_empty() || (ub - lower) <= gap * ub.abs().max(1.0);
        if done || it == max_iterations {
            let (upper_bound, values) = best.unwrap_or((upper, sol.values));
            return Ok(Ok(BendersResult {
                fs,
                values,
                lower_bound: lower,
                upper_bound,
                iterations: it,
                cuts,
                proven,
            }));
        }
        for (a, t, th, c) in new_cuts {
            add_cut(&mut fs, a, t, th, &c);
            cuts += 1;
        }
    }
    Err(PlanError::Solver {
        backend: backend.name(),
        reason: "Benders: no iteration ran".into(),
    })
}

/// Under `unmet_demand: forbid`: enough commitments where every market is capped.
fn feasibility_rows(input: &PlanningInput, markets: &[Market], fs: &mut FirstStage) {
    if input.policies.unmet != Unmet::Forbid {
        return;
    }
    let (np, nt) = (input.providers.len(), input.horizon.periods);
    for (a, m) in markets.iter().enumerate() {
        if (0..np).any(|p| m.od[p].is_some() && m.cap[p].is_none()) {
            continue;
        }
        for t in 0..nt {
            let dmax = input
                .scenarios
                .iter()
                .map(|s| gpus(s.demand[a][t]))
                .fold(0.0, f64::max);
            let mut rhs = dmax;
            let mut terms = Vec::new();
            for p in 0..np {
                match (m.od[p], m.cap[p]) {
                    (Some(_), Some(c)) => rhs -= c,
                    _ => {
                        if let Some(xs) = &fs.cover[p][a] {
                            terms.push((xs[t], 1.0));
                        }
                        if m.spot[p].is_some() {
                            rhs -= m.sigma[p] * dmax;
                        }
                    }
                }
            }
            if rhs > 0.0 {
                let detail = format!(
                    "{} period {t}: {:.0} GPUs needed beyond the capped markets",
                    input.accelerators[a], rhs
                );
                fs.lp.ge(terms, rhs, Family::DemandCover, detail);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk(sources: &[(f64, usize, bool)], np: usize) -> Market {
        let mut m = Market {
            sources: Vec::new(),
            od: vec![None; np],
            spot: vec![None; np],
            sigma: vec![0.0; np],
            cap: vec![None; np],
        };
        for &(price, provider, spot) in sources {
            m.sources.push(Source {
                price,
                provider,
                spot,
            });
            if spot {
                m.spot[provider] = Some(price);
                m.sigma[provider] = 0.5;
            } else {
                m.od[provider] = Some(price);
            }
        }
        m.sources.sort_by(|x, y| x.price.total_cmp(&y.price));
        m
    }

    /// The cut is exact at its point and below the value elsewhere (checked by brute force on a grid).
    #[test]
    fn cell_cut_is_an_exact_minorant() {
        let mut m = mk(&[(2.0, 0, true), (5.0, 0, false), (4.0, 1, false)], 2);
        m.cap = vec![Some(60.0), Some(30.0)];
        let d = 100.0;
        for x0 in [0.0, 10.0, 30.0, 55.0] {
            for x1 in [0.0, 5.0, 20.0, 30.0] {
                let c = cell(&m, d, &[x0, x1], Some(9.0));
                let at = c.constant + c.coef[0] * x0 + c.coef[1] * x1;
                assert!(
                    (at - c.value).abs() < 1e-6,
                    "exact at ({x0},{x1}): {at} vs {}",
                    c.value
                );
                for y0 in (0..=60).step_by(5) {
                    for y1 in (0..=30).step_by(5) {
                        let v = cell(&m, d, &[y0 as f64, y1 as f64], Some(9.0)).value;
                        let lb = c.constant + c.coef[0] * y0 as f64 + c.coef[1] * y1 as f64;
                        assert!(
                            lb <= v + 1e-6,
                            "cut from ({x0},{x1}) above value at ({y0},{y1}): {lb} > {v}"
                        );
                    }
                }
            }
        }
    }
}

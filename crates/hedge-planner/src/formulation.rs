//! The model, stated first, then built.
//!
//! # Sets
//! - `P` providers, `A` accelerators, `T = {0, …, n−1}` periods of `H` hours, `S` scenarios with
//!   probabilities `π_s` (summing to 1) and demand `D[s,t,a]` (average GPUs).
//! - `O` commitment options: provider `p(o)`, accelerator `a(o)`, term `k(o)` periods, rate `r(o)` $/GPU-h,
//!   block `b(o)` GPUs, minimum `m(o)` GPUs. `J = {0, …, start_periods−1}` start periods.
//! - `E[p,t,a]`: GPUs of contracts already signed, active in period `t`; `Ē` their remaining cost.
//!
//! # Variables
//! - First stage: `n[o,j] ≥ 0` blocks of option `o` starting in period `j` (`g[o,j] = b(o)·n[o,j]` GPUs;
//!   integer when `b(o) > 1`, continuous otherwise and rounded to whole GPUs afterwards), `z[o,j] ∈ {0,1}`
//!   when `m(o) > 0`, `h[p] ∈ {0,1}` when `min_providers` is set.
//! - Coverage `X[p,t,a] = E[p,t,a] + Σ_{o: p(o)=p, a(o)=a} Σ_{j ≤ t < j+k(o)} g[o,j]`.
//! - Second stage, per scenario `s`, period `t`, accelerator `a`, provider `p`: on-demand `y°[s,t,a,p]`,
//!   spot `yˢ[s,t,a,p]`, and unmet `u[s,t,a]` (only when unmet demand is penalised).
//!
//! # Cost model (as issue 5 states it)
//! A commitment of `g` GPUs at `rate` costs `g·rate·H` in every period of its term, *including periods past
//! the horizon*. Signed contracts cost `Ē` (their periods from the horizon start to their end). Demand that
//! commitments do not cover is bought on demand (or spot, up to `spot_availability·D`) at that provider's
//! price, within its capacity. Expected cost is the probability-weighted sum:
//!
//! `min  Ē + Σ_{o,j} g[o,j]·r(o)·H·k(o) + Σ_s π_s R_s  (+ w·CVaR_α)`, with
//! `R_s = Σ_{t,a,p} H·(c°[p,a]·y°[s,t,a,p] + cˢ[p,a]·yˢ[s,t,a,p]) + Σ_{t,a} H·penalty·u[s,t,a]`.
//!
//! # Constraints (one function per family, each row tagged with its [`Family`])
//! - [`coverage_definition`]: the equation for `X` above.
//! - [`demand_cover`]: `Σ_p X[p,t,a] + Σ_p (y°+yˢ)[s,t,a,p] + u[s,t,a] ≥ D[s,t,a]`.
//! - spot limit (a variable bound): `yˢ[s,t,a,p] ≤ spot_availability[p,a]·D[s,t,a]`.
//! - [`provider_capacity`]: `X[p,t,a] ≤ cap[p,a]` and `X[p,t,a] + y°[s,t,a,p] + yˢ[s,t,a,p] ≤ cap[p,a]`.
//! - [`max_share`]: per period, `Σ_a X[p,t,a] ≤ v·Σ_{q,a} X[q,t,a]` (committed GPUs) or the same over
//!   commitment spend `Σ g·r` (committed spend), for every provider `p`.
//! - [`min_providers`]: `h[p] ≤ Σ_{o at p, j} g[o,j] + Σ_t Σ_a E[p,t,a]`, `Σ_p h[p] ≥ m`.
//! - [`resilience`]: for every set `L` of `survive_loss_of` providers, every `t`, `a`:
//!   `Σ_{p ∉ L} X[p,t,a] ≥ keep_fraction·D̄[t,a]`, where `D̄` is the expected (or peak) demand.
//! - [`budget`]: the expected cost above `≤ budget_usd`.
//! - [`contract_shape`]: `m(o)·z[o,j] ≤ g[o,j] ≤ U·z[o,j]` with `U` the capacity (or 10× the peak demand).
//! - [`risk`]: `ζ_s ≥ C + R_s − η`, `ζ_s ≥ 0`; `CVaR_α = η + Σ_s π_s ζ_s / (1−α)` (Rockafellar–Uryasev).
//!
//! Floats appear only here and in `crate::benders`: [`usd`] and [`gpus`] are the named conversion points
//! from the integer domain.

use crate::error::PlanError;
use crate::input::{MilliGpus, PlanningInput, ShareOf, Unmet};
use crate::lp::{Family, LinearProgram, Var};
use hedge_core::{Money, Rate};

/// $/GPU-hour as a solver float.
pub fn usd(r: Rate) -> f64 {
    r.to_usd_per_hour_f64()
}
/// Dollars as a solver float.
pub fn usd_money(m: Money) -> f64 {
    m.to_usd_f64()
}
/// GPUs as a solver float.
pub fn gpus(q: MilliGpus) -> f64 {
    q.gpus_f64()
}

/// Beyond this many provider subsets the resilience rule is refused rather than built.
const MAX_LOSS_SETS: usize = 5_000;

/// One contract variable: option `option` of provider `provider` starting at `start`.
#[derive(Clone, Debug)]
pub struct ContractVar {
    pub provider: usize,
    pub option: usize,
    pub start: usize,
    /// Number of blocks.
    pub blocks: Var,
    pub block_gpus: f64,
    /// Periods of the horizon the contract is active in.
    pub active: std::ops::Range<usize>,
    pub cost_per_gpu: f64,
}

/// The first stage: contracts, coverage, and every policy that does not involve the second stage.
pub struct FirstStage {
    pub lp: LinearProgram,
    pub contracts: Vec<ContractVar>,
    /// `[p][a][t]`, `Some` when provider `p` can hold `a` (an option or a signed contract).
    pub cover: Vec<Vec<Option<Vec<Var>>>>,
    /// `[p][a][t]` GPUs of signed contracts.
    pub existing: Vec<Vec<Vec<f64>>>,
    /// `Ē`, the signed contracts' remaining cost, in dollars.
    pub existing_cost: f64,
    /// Terms of the commitment cost `Σ g·r·H·k`.
    pub commit_terms: Vec<(Var, f64)>,
}

/// How to build the model.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuildOptions {
    /// Solve the LP relaxation: integer blocks and binaries become continuous.
    pub relax_integers: bool,
    /// Whole GPUs: every contract variable is integer (else only block counts with `b > 1` are).
    pub integer_gpus: bool,
}

fn period_label(input: &PlanningInput, t: usize) -> String {
    let s = input.horizon.start;
    if input.horizon.period_hours == 730 {
        let m = (s.month as usize - 1) + t;
        format!("{:04}-{:02}", s.year + (m / 12) as i32, m % 12 + 1)
    } else {
        format!("period {t}")
    }
}

/// `X` variables and contracts, with their defining rows.
pub fn first_stage(input: &PlanningInput, opts: BuildOptions) -> Result<FirstStage, PlanError> {
    let (np, na, nt) = (
        input.providers.len(),
        input.accelerators.len(),
        input.horizon.periods,
    );
    let h = input.hours_per_period() as f64;
    let mut lp = LinearProgram::default();
    let mut existing = vec![vec![vec![0.0; nt]; na]; np];
    let mut existing_cost = 0.0;
    for (p, prov) in input.providers.iter().enumerate() {
        for e in &prov.existing {
            for t in e.active_periods(&input.horizon) {
                existing[p][e.accelerator][t] += f64::from(e.gpus);
            }
            existing_cost +=
                f64::from(e.gpus) * usd(e.rate) * h * e.periods_owed(&input.horizon) as f64;
        }
    }
    lp.offset = existing_cost;
    let mut cover: Vec<Vec<Option<Vec<Var>>>> = vec![vec![None; na]; np];
    for (p, prov) in input.providers.iter().enumerate() {
        for a in 0..na {
            let holds = prov.options.iter().any(|o| o.accelerator == a)
                || prov
                    .existing
                    .iter()
                    .any(|e| e.accelerator == a && !e.active_periods(&input.horizon).is_empty());
            if holds {
                cover[p][a] = Some((0..nt).map(|_| lp.var(0.0, f64::INFINITY, 0.0)).collect());
            }
        }
    }
    let mut fs = FirstStage {
        lp,
        contracts: Vec::new(),
        cover,
        existing,
        existing_cost,
        commit_terms: Vec::new(),
    };
    contract_variables(input, &mut fs, opts);
    coverage_definition(input, &mut fs);
    contract_shape(input, &mut fs, opts);
    first_stage_capacity(input, &mut fs);
    max_share(input, &mut fs);
    min_providers(input, &mut fs, opts);
    resilience(input, &mut fs)?;
    Ok(fs)
}

fn contract_variables(input: &PlanningInput, fs: &mut FirstStage, opts: BuildOptions) {
    let h = input.hours_per_period() as f64;
    let nt = input.horizon.periods;
    for (p, prov) in input.providers.iter().enumerate() {
        for (oi, o) in prov.options.iter().enumerate() {
            for j in 0..input.horizon.start_periods {
                let b = f64::from(o.block_gpus);
                let cost_per_gpu = usd(o.rate) * h * o.term_periods as f64;
                let integer = (o.block_gpus > 1 || opts.integer_gpus) && !opts.relax_integers;
                let ub = upper_bound_gpus(input, p, o.accelerator) / b;
                let v = if integer {
                    fs.lp.int_var(0.0, ub.floor(), cost_per_gpu * b)
                } else {
                    fs.lp.var(0.0, ub, cost_per_gpu * b)
                };
                fs.commit_terms.push((v, cost_per_gpu * b));
                fs.contracts.push(ContractVar {
                    provider: p,
                    option: oi,
                    start: j,
                    blocks: v,
                    block_gpus: b,
                    active: j..(j + o.term_periods).min(nt),
                    cost_per_gpu,
                });
            }
        }
    }
}

/// `U`: the most GPUs one contract can sensibly hold: the capacity, or 10× the peak demand.
fn upper_bound_gpus(input: &PlanningInput, p: usize, a: usize) -> f64 {
    match input.providers[p].capacity[a] {
        Some(c) => c as f64,
        None => {
            let peak = input
                .scenarios
                .iter()
                .flat_map(|s| s.demand[a].iter())
                .map(|d| gpus(*d))
                .fold(0.0, f64::max);
            (10.0 * peak).max(1.0)
        }
    }
}

/// `X[p,t,a] − Σ active g = E[p,t,a]`.
pub fn coverage_definition(input: &PlanningInput, fs: &mut FirstStage) {
    let (np, na, nt) = (
        input.providers.len(),
        input.accelerators.len(),
        input.horizon.periods,
    );
    let mut rows: Vec<Vec<Vec<Vec<(Var, f64)>>>> = vec![vec![vec![Vec::new(); nt]; na]; np];
    for c in &fs.contracts {
        let a = input.providers[c.provider].options[c.option].accelerator;
        for t in c.active.clone() {
            rows[c.provider][a][t].push((c.blocks, -c.block_gpus));
        }
    }
    for p in 0..np {
        for a in 0..na {
            let Some(xs) = fs.cover[p][a].clone() else {
                continue;
            };
            for t in 0..nt {
                let mut terms = vec![(xs[t], 1.0)];
                terms.extend(rows[p][a][t].iter().copied());
                let detail = format!(
                    "{} {} {}",
                    input.providers[p].id,
                    input.accelerators[a],
                    period_label(input, t)
                );
                fs.lp.eq(
                    terms,
                    fs.existing[p][a][t],
                    Family::CoverageDefinition,
                    detail,
                );
            }
        }
    }
}

/// Integer blocks are integer variables; a minimum contract size is `m·z ≤ g ≤ U·z` with binary `z`.
pub fn contract_shape(input: &PlanningInput, fs: &mut FirstStage, opts: BuildOptions) {
    let contracts = fs.contracts.clone();
    for c in &contracts {
        let o = &input.providers[c.provider].options[c.option];
        if o.min_gpus == 0 {
            continue;
        }
        let u = upper_bound_gpus(input, c.provider, o.accelerator);
        let z = if opts.relax_integers {
            fs.lp.var(0.0, 1.0, 0.0)
        } else {
            fs.lp.int_var(0.0, 1.0, 0.0)
        };
        let detail = format!(
            "{} {} {}-period term starting {}: 0 or at least {} GPUs",
            input.providers[c.provider].id,
            input.accelerators[o.accelerator],
            o.term_periods,
            period_label(input, c.start),
            o.min_gpus
        );
        fs.lp.ge(
            vec![(c.blocks, c.block_gpus), (z, -f64::from(o.min_gpus))],
            0.0,
            Family::ContractShape,
            detail.clone(),
        );
        fs.lp.le(
            vec![(c.blocks, c.block_gpus), (z, -u)],
            0.0,
            Family::ContractShape,
            detail,
        );
    }
}

/// `X[p,t,a] ≤ cap[p,a]`.
pub fn first_stage_capacity(input: &PlanningInput, fs: &mut FirstStage) {
    for (p, prov) in input.providers.iter().enumerate() {
        for (a, cap) in prov.capacity.iter().enumerate() {
            let (Some(cap), Some(xs)) = (cap, fs.cover[p][a].clone()) else {
                continue;
            };
            for (t, x) in xs.iter().enumerate() {
                let detail = format!(
                    "{} {} {}: commitments ≤ {cap} GPUs",
                    prov.id,
                    input.accelerators[a],
                    period_label(input, t)
                );
                fs.lp.le(
                    vec![(*x, 1.0)],
                    *cap as f64,
                    Family::ProviderCapacity,
                    detail,
                );
            }
        }
    }
}

/// Per period, no provider holds more than `v` of committed GPUs (or commitment spend).
pub fn max_share(input: &PlanningInput, fs: &mut FirstStage) {
    let Some((of, v)) = input.policies.max_share else {
        return;
    };
    let (np, na, nt) = (
        input.providers.len(),
        input.accelerators.len(),
        input.horizon.periods,
    );
    if np < 2 && v < 1.0 {
        // One provider always holds 100%: the rule reads "commit nothing".
    }
    let h = input.hours_per_period() as f64;
    for t in 0..nt {
        for p in 0..np {
            let mut terms: Vec<(Var, f64)> = Vec::new();
            let mut rhs = 0.0;
            match of {
                ShareOf::CommittedGpus => {
                    for q in 0..np {
                        let coef = if q == p { 1.0 - v } else { -v };
                        for a in 0..na {
                            if let Some(xs) = &fs.cover[q][a] {
                                terms.push((xs[t], coef));
                            }
                        }
                    }
                }
                ShareOf::CommittedSpend => {
                    for c in &fs.contracts {
                        if !c.active.contains(&t) {
                            continue;
                        }
                        let rate = usd(input.providers[c.provider].options[c.option].rate)
                            * h
                            * c.block_gpus;
                        let coef = if c.provider == p { 1.0 - v } else { -v };
                        terms.push((c.blocks, coef * rate));
                    }
                    for (q, prov) in input.providers.iter().enumerate() {
                        for e in &prov.existing {
                            if e.active_periods(&input.horizon).contains(&t) {
                                let spend = f64::from(e.gpus) * usd(e.rate) * h;
                                let coef = if q == p { 1.0 - v } else { -v };
                                rhs -= coef * spend;
                            }
                        }
                    }
                }
            }
            if terms.is_empty() {
                continue;
            }
            let detail = format!(
                "{} {}: at most {:.0}% of committed {}",
                input.providers[p].id,
                period_label(input, t),
                v * 100.0,
                if of == ShareOf::CommittedGpus {
                    "GPUs"
                } else {
                    "spend"
                }
            );
            // The existing contracts are inside X for the GPU share, so the right-hand side is 0 there.
            fs.lp.le(terms, rhs, Family::MaxShare, detail);
        }
    }
}

/// At least `m` providers hold commitments.
pub fn min_providers(input: &PlanningInput, fs: &mut FirstStage, opts: BuildOptions) {
    let Some(m) = input.policies.min_providers.filter(|m| *m > 0) else {
        return;
    };
    let mut hs = Vec::new();
    for (p, prov) in input.providers.iter().enumerate() {
        let signed: f64 = fs.existing[p].iter().flatten().sum();
        let mut terms: Vec<(Var, f64)> = fs
            .contracts
            .iter()
            .filter(|c| c.provider == p)
            .map(|c| (c.blocks, -c.block_gpus))
            .collect();
        if terms.is_empty() && signed == 0.0 {
            continue;
        }
        let hv = if opts.relax_integers {
            fs.lp.var(0.0, 1.0, 0.0)
        } else {
            fs.lp.int_var(0.0, 1.0, 0.0)
        };
        terms.push((hv, 1.0));
        let minimum = prov
            .options
            .iter()
            .map(|o| o.min_gpus.max(o.block_gpus))
            .min()
            .unwrap_or(1)
            .max(1);
        // h ≤ (Σ g + signed) / minimum: holding means at least one smallest contract.
        for t in terms.iter_mut().filter(|t| t.0 != hv) {
            t.1 /= f64::from(minimum);
        }
        fs.lp.le(
            terms,
            signed / f64::from(minimum),
            Family::MinProviders,
            format!("{} holds a commitment", prov.id),
        );
        hs.push((hv, 1.0));
    }
    fs.lp.ge(
        hs,
        m as f64,
        Family::MinProviders,
        format!("at least {m} providers hold commitments"),
    );
}

/// Every subset of `k` providers, in lexicographic order.
pub fn loss_sets(np: usize, k: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    fn rec(start: usize, np: usize, k: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if cur.len() == k {
            out.push(cur.clone());
            return;
        }
        for i in start..np {
            cur.push(i);
            rec(i + 1, np, k, cur, out);
            cur.pop();
        }
    }
    rec(0, np, k, &mut cur, &mut out);
    out
}

fn binomial(n: usize, k: usize) -> usize {
    let mut r: usize = 1;
    for i in 0..k {
        r = r.saturating_mul(n - i) / (i + 1);
    }
    r
}

/// For every set of `survive_loss_of` providers lost, the others' commitments cover `keep_fraction·D̄`.
pub fn resilience(input: &PlanningInput, fs: &mut FirstStage) -> Result<(), PlanError> {
    let Some(keep) = input.policies.keep_fraction.filter(|k| *k > 0.0) else {
        return Ok(());
    };
    let (np, na, nt) = (
        input.providers.len(),
        input.accelerators.len(),
        input.horizon.periods,
    );
    let k = input.policies.survive_loss_of;
    if binomial(np, k) > MAX_LOSS_SETS {
        return Err(PlanError::Unsupported {
            what: format!("survive_loss_of {k} of {np} providers gives more than {MAX_LOSS_SETS} provider sets"),
        });
    }
    let dbar = input.resilience_demand();
    for lost in loss_sets(np, k) {
        let names: Vec<&str> = lost
            .iter()
            .map(|&p| input.providers[p].id.as_str())
            .collect();
        for a in 0..na {
            for t in 0..nt {
                let need = keep * dbar[a][t];
                if need <= 0.0 {
                    continue;
                }
                let terms: Vec<(Var, f64)> = (0..np)
                    .filter(|p| !lost.contains(p))
                    .filter_map(|p| fs.cover[p][a].as_ref().map(|xs| (xs[t], 1.0)))
                    .collect();
                let detail = format!(
                    "without {} in {}: {} commitments ≥ {:.0}% of {:.0} GPUs",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join("+")
                    },
                    period_label(input, t),
                    input.accelerators[a],
                    keep * 100.0,
                    dbar[a][t]
                );
                fs.lp.ge(terms, need, Family::Resilience, detail);
            }
        }
    }
    Ok(())
}

/// The second stage for every scenario, spelled out (the extensive form).
pub struct SecondStage {
    /// `[s]`: the terms of `R_s`.
    pub recourse_terms: Vec<Vec<(Var, f64)>>,
}

/// Adds `y°`, `yˢ`, `u` and the demand and capacity rows of every scenario.
pub fn second_stage(input: &PlanningInput, fs: &mut FirstStage) -> SecondStage {
    let h = input.hours_per_period() as f64;
    let (na, nt) = (input.accelerators.len(), input.horizon.periods);
    let mut recourse_terms = Vec::new();
    for (s, sc) in input.scenarios.iter().enumerate() {
        let mut terms = Vec::new();
        for a in 0..na {
            for t in 0..nt {
                let d = gpus(sc.demand[a][t]);
                let mut cover: Vec<(Var, f64)> = Vec::new();
                for (p, prov) in input.providers.iter().enumerate() {
                    let x = fs.cover[p][a].as_ref().map(|xs| xs[t]);
                    if let Some(x) = x {
                        cover.push((x, 1.0));
                    }
                    let mut used: Vec<(Var, f64)> = x.map(|x| vec![(x, 1.0)]).unwrap_or_default();
                    if d > 0.0 {
                        if let Some(c) = prov.on_demand[a] {
                            let y = fs.lp.var(0.0, f64::INFINITY, 0.0);
                            terms.push((y, usd(c) * h));
                            cover.push((y, 1.0));
                            used.push((y, 1.0));
                        }
                        if let Some(c) = prov.spot[a] {
                            let lim = prov.spot_availability[a] * d;
                            if lim > 0.0 {
                                let y = fs.lp.var(0.0, lim, 0.0);
                                terms.push((y, usd(c) * h));
                                cover.push((y, 1.0));
                                used.push((y, 1.0));
                            }
                        }
                    }
                    provider_capacity(input, fs, s, p, a, t, used);
                }
                if d > 0.0 {
                    if let Unmet::Penalty(pen) = input.policies.unmet {
                        let u = fs.lp.var(0.0, f64::INFINITY, 0.0);
                        terms.push((u, usd(pen) * h));
                        cover.push((u, 1.0));
                    }
                    demand_cover(input, fs, s, a, t, cover, d);
                }
            }
        }
        recourse_terms.push(terms);
    }
    SecondStage { recourse_terms }
}

/// `Σ_p X + Σ_p (y° + yˢ) + u ≥ D[s,t,a]`.
pub fn demand_cover(
    input: &PlanningInput,
    fs: &mut FirstStage,
    s: usize,
    a: usize,
    t: usize,
    terms: Vec<(Var, f64)>,
    d: f64,
) {
    let detail = format!(
        "scenario {} {} {}: {:.0} GPUs",
        input.scenarios[s].name,
        input.accelerators[a],
        period_label(input, t),
        d
    );
    fs.lp.ge(terms, d, Family::DemandCover, detail);
}

/// `X[p,t,a] + y°[s,t,a,p] + yˢ[s,t,a,p] ≤ cap[p,a]` (only where the scenario buys something).
pub fn provider_capacity(
    input: &PlanningInput,
    fs: &mut FirstStage,
    s: usize,
    p: usize,
    a: usize,
    t: usize,
    used: Vec<(Var, f64)>,
) {
    let Some(cap) = input.providers[p].capacity[a] else {
        return;
    };
    let has_recourse = used
        .iter()
        .any(|(v, _)| fs.cover[p][a].as_ref().is_none_or(|xs| xs[t] != *v));
    if !has_recourse {
        return; // the first-stage row already bounds X alone
    }
    let detail = format!(
        "{} {} {} in scenario {}: ≤ {cap} GPUs",
        input.providers[p].id,
        input.accelerators[a],
        period_label(input, t),
        input.scenarios[s].name
    );
    fs.lp.le(used, cap as f64, Family::ProviderCapacity, detail);
}

/// Expected cost `≤ budget_usd`.
pub fn budget(input: &PlanningInput, fs: &mut FirstStage, expected_recourse: Vec<(Var, f64)>) {
    let Some(b) = input.policies.budget else {
        return;
    };
    let mut terms = fs.commit_terms.clone();
    terms.extend(expected_recourse);
    let detail = format!("expected cost ≤ {b}");
    fs.lp.le(
        terms,
        usd_money(b) - fs.existing_cost,
        Family::Budget,
        detail,
    );
}

/// Adds `w·CVaR_α(C + R_s)` to the objective.
pub fn risk(input: &PlanningInput, fs: &mut FirstStage, recourse: &[Vec<(Var, f64)>]) {
    let Some(r) = input.risk.filter(|r| r.weight > 0.0) else {
        return;
    };
    let eta = fs.lp.var(f64::NEG_INFINITY, f64::INFINITY, r.weight);
    for (s, sc) in input.scenarios.iter().enumerate() {
        let zeta = fs.lp.var(
            0.0,
            f64::INFINITY,
            r.weight * sc.probability / (1.0 - r.cvar_alpha),
        );
        // ζ_s + η − C − R_s ≥ Ē
        let mut terms = vec![(zeta, 1.0), (eta, 1.0)];
        terms.extend(fs.commit_terms.iter().map(|(v, c)| (*v, -c)));
        terms.extend(recourse[s].iter().map(|(v, c)| (*v, -c)));
        fs.lp.ge(
            terms,
            fs.existing_cost,
            Family::Risk,
            format!("CVaR tail of scenario {}", sc.name),
        );
    }
}

/// The whole extensive form: first stage, every scenario's second stage, budget and risk rows, and the
/// expected-cost objective.
pub fn extensive_form(input: &PlanningInput, opts: BuildOptions) -> Result<FirstStage, PlanError> {
    let mut fs = first_stage(input, opts)?;
    let ss = second_stage(input, &mut fs);
    let mut expected = Vec::new();
    for (s, terms) in ss.recourse_terms.iter().enumerate() {
        let pi = input.scenarios[s].probability;
        for &(v, c) in terms {
            fs.lp.add_cost(v, pi * c);
            expected.push((v, pi * c));
        }
    }
    budget(input, &mut fs, expected);
    risk(input, &mut fs, &ss.recourse_terms);
    Ok(fs)
}

/// Rounds a solution's contracts to whole GPUs (whole blocks), dropping empty ones.
pub fn contracts_from(fs: &FirstStage, values: &[f64]) -> Vec<(usize, usize, usize, u32)> {
    let mut out = Vec::new();
    for c in &fs.contracts {
        let blocks = values[c.blocks.0 as usize].max(0.0);
        let g = (blocks * c.block_gpus).round();
        // A relaxed block count rounds to whole blocks.
        let g = ((g / c.block_gpus).round() * c.block_gpus) as u32;
        if g > 0 {
            out.push((c.provider, c.option, c.start, g));
        }
    }
    out
}

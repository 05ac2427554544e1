//! The independent evaluator: the cost and policy compliance of a given portfolio, by direct integer
//! arithmetic over every scenario, period and accelerator. It shares no code with the formulation or the
//! decomposition, so tests use it to check the optimiser, and users use it to compare their own split.
//!
//! Per cell (scenario, period, accelerator): coverage `C = Σ_p C_p` (signed + new contracts active then);
//! demand above `C` is bought cheapest-first among every provider's spot (at most
//! `spot_availability × demand`) and on-demand offers, each provider within `capacity − C_p`; what is still
//! missing is unmet (penalised, or a violation under `unmet_demand: forbid`).

use crate::input::{cost_of, MilliGpus, PlanningInput, ShareOf, Unmet};
use crate::portfolio::Resolved;
use hedge_core::{Money, Rate};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScenarioCost {
    pub scenario: String,
    pub probability: f64,
    pub total_usd: f64,
    pub commitments_usd: f64,
    pub on_demand_usd: f64,
    pub spot_usd: f64,
    pub unmet_penalty_usd: f64,
    pub unmet_gpu_hours: f64,
    #[serde(skip)]
    pub total: Money,
}

/// A broken policy or limit, with how much it is broken by.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    pub policy: String,
    pub detail: String,
    pub amount: f64,
}

/// Committed GPUs and spend of one provider and accelerator.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Holding {
    pub provider: String,
    pub accelerator: String,
    /// Average committed GPUs over the horizon (signed and new).
    pub avg_gpus: f64,
    /// Commitment spend (signed contracts' remaining cost and new contracts' full terms).
    pub spend_usd: f64,
    pub gpu_share: f64,
    pub spend_share: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    pub expected_cost_usd: f64,
    pub cvar_usd: Option<f64>,
    pub cvar_alpha: Option<f64>,
    pub commitment_cost_usd: f64,
    pub scenarios: Vec<ScenarioCost>,
    /// Expected share of demand GPU-hours served by commitments.
    pub coverage: f64,
    /// Expected share of committed GPU-hours (inside the horizon) that serve demand.
    pub utilization: f64,
    /// Expected committed GPU-hours inside the horizon that serve no demand.
    pub waste_gpu_hours: f64,
    pub holdings: Vec<Holding>,
    pub violations: Vec<Violation>,
    #[serde(skip)]
    pub expected_cost: Money,
}

impl Evaluation {
    pub fn complies(&self) -> bool {
        self.violations.is_empty()
    }
    /// Names of the broken policies, deduplicated, in order of first appearance.
    pub fn broken_policies(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for x in &self.violations {
            if !v.contains(&x.policy) {
                v.push(x.policy.clone());
            }
        }
        v
    }
}

/// `[p][a][t]` committed GPUs (signed and new).
fn coverage(input: &PlanningInput, portfolio: &[Resolved]) -> Vec<Vec<Vec<u64>>> {
    let (np, na, nt) = (
        input.providers.len(),
        input.accelerators.len(),
        input.horizon.periods,
    );
    let mut c = vec![vec![vec![0u64; nt]; na]; np];
    for (p, prov) in input.providers.iter().enumerate() {
        for e in &prov.existing {
            for t in e.active_periods(&input.horizon) {
                c[p][e.accelerator][t] += u64::from(e.gpus);
            }
        }
    }
    for r in portfolio {
        for t in r.start_period..(r.start_period + r.term_periods).min(nt) {
            c[r.provider][r.accelerator][t] += u64::from(r.gpus);
        }
    }
    c
}

struct Piece {
    price: Rate,
    provider: usize,
    limit: u64, // milli-GPUs
    spot: bool,
}

/// Evaluates a portfolio of new commitments (on top of the signed ones).
pub fn evaluate(input: &PlanningInput, portfolio: &[Resolved]) -> Evaluation {
    let (np, na, nt) = (
        input.providers.len(),
        input.accelerators.len(),
        input.horizon.periods,
    );
    let h = input.hours_per_period();
    let cov = coverage(input, portfolio);

    // Commitment cost: full terms, past the horizon too.
    let mut spend = vec![vec![Money::ZERO; na]; np];
    for (p, prov) in input.providers.iter().enumerate() {
        for e in &prov.existing {
            spend[p][e.accelerator] += cost_of(
                e.rate,
                MilliGpus::from_gpus(u64::from(e.gpus)),
                h * e.periods_owed(&input.horizon),
            );
        }
    }
    for r in portfolio {
        spend[r.provider][r.accelerator] += cost_of(
            r.rate,
            MilliGpus::from_gpus(u64::from(r.gpus)),
            h * r.term_periods as u64,
        );
    }
    let commitment_cost: Money = spend.iter().flatten().copied().sum();

    let mut scenarios = Vec::new();
    let mut violations = Vec::new();
    let (mut served_by_commit, mut demand_total, mut committed_total) = (0.0, 0.0, 0.0);
    for sc in &input.scenarios {
        let (mut od, mut spot, mut pen) = (Money::ZERO, Money::ZERO, Money::ZERO);
        let mut unmet_mg: u64 = 0;
        let mut worst_unmet: Option<(usize, usize, u64)> = None;
        for a in 0..na {
            for t in 0..nt {
                let d = sc.demand[a][t].0;
                let c_total: u64 = (0..np)
                    .map(|p| cov[p][a][t].saturating_mul(1000))
                    .fold(0u64, u64::saturating_add);
                let used = d.min(c_total);
                served_by_commit += sc.probability * used as f64;
                demand_total += sc.probability * d as f64;
                committed_total += sc.probability * c_total as f64;
                let mut need = d.saturating_sub(c_total);
                if need == 0 {
                    continue;
                }
                let mut room: Vec<u64> = (0..np)
                    .map(|p| match input.providers[p].capacity[a] {
                        Some(cap) => cap
                            .saturating_mul(1000)
                            .saturating_sub(cov[p][a][t].saturating_mul(1000)),
                        None => u64::MAX,
                    })
                    .collect();
                let mut pieces: Vec<Piece> = Vec::new();
                for (p, prov) in input.providers.iter().enumerate() {
                    if let Some(price) = prov.spot[a] {
                        let limit = (prov.spot_availability[a] * d as f64).floor() as u64;
                        pieces.push(Piece {
                            price,
                            provider: p,
                            limit,
                            spot: true,
                        });
                    }
                    if let Some(price) = prov.on_demand[a] {
                        pieces.push(Piece {
                            price,
                            provider: p,
                            limit: u64::MAX,
                            spot: false,
                        });
                    }
                }
                pieces.sort_by_key(|x| (x.price, x.provider, !x.spot));
                for pc in &pieces {
                    if need == 0 {
                        break;
                    }
                    let q = need.min(pc.limit).min(room[pc.provider]);
                    room[pc.provider] -= q;
                    need -= q;
                    let m = cost_of(pc.price, MilliGpus(q), h);
                    if pc.spot {
                        spot += m;
                    } else {
                        od += m;
                    }
                }
                if need > 0 {
                    unmet_mg += need;
                    if worst_unmet.is_none_or(|w| w.2 < need) {
                        worst_unmet = Some((a, t, need));
                    }
                    if let Unmet::Penalty(r) = input.policies.unmet {
                        pen += cost_of(r, MilliGpus(need), h);
                    }
                }
            }
        }
        let unmet_gpu_hours = unmet_mg as f64 / 1000.0 * h as f64;
        if unmet_mg > 0 && input.policies.unmet == Unmet::Forbid {
            let (a, t, q) = worst_unmet.unwrap_or((0, 0, 0));
            violations.push(Violation {
                policy: "unmet_demand".into(),
                detail: format!(
                    "scenario {}: {:.0} GPU-hours cannot be bought within capacity (worst: {} period {t}, {:.0} GPUs short)",
                    sc.name, unmet_gpu_hours, input.accelerators[a], q as f64 / 1000.0
                ),
                amount: unmet_gpu_hours,
            });
        }
        let total = commitment_cost + od + spot + pen;
        scenarios.push(ScenarioCost {
            scenario: sc.name.clone(),
            probability: sc.probability,
            total_usd: total.to_usd_f64(),
            commitments_usd: commitment_cost.to_usd_f64(),
            on_demand_usd: od.to_usd_f64(),
            spot_usd: spot.to_usd_f64(),
            unmet_penalty_usd: pen.to_usd_f64(),
            unmet_gpu_hours,
            total,
        });
    }
    // Probability weighting is the one real-valued step.
    let expected_usd: f64 = scenarios
        .iter()
        .map(|s| s.probability * s.total.to_usd_f64())
        .sum();
    let expected_cost = Money::from_usd_f64(expected_usd.max(0.0)).unwrap_or(Money::MAX);
    let (cvar_usd, cvar_alpha) = match input.risk {
        Some(r) => (Some(cvar(&scenarios, r.cvar_alpha)), Some(r.cvar_alpha)),
        None => (None, None),
    };

    check_policies(input, &cov, portfolio, expected_cost, &mut violations);

    let total_gpu_periods: f64 = cov.iter().flatten().flatten().map(|&g| g as f64).sum();
    let mut holdings = Vec::new();
    for (p, prov) in input.providers.iter().enumerate() {
        for a in 0..na {
            let g: f64 = cov[p][a].iter().map(|&g| g as f64).sum();
            if g == 0.0 && spend[p][a] == Money::ZERO {
                continue;
            }
            holdings.push(Holding {
                provider: prov.id.to_string(),
                accelerator: input.accelerators[a].to_string(),
                avg_gpus: g / nt as f64,
                spend_usd: spend[p][a].to_usd_f64(),
                gpu_share: if total_gpu_periods > 0.0 {
                    g / total_gpu_periods
                } else {
                    0.0
                },
                spend_share: if commitment_cost > Money::ZERO {
                    spend[p][a].to_usd_f64() / commitment_cost.to_usd_f64()
                } else {
                    0.0
                },
            });
        }
    }
    Evaluation {
        expected_cost_usd: expected_cost.to_usd_f64(),
        cvar_usd,
        cvar_alpha,
        commitment_cost_usd: commitment_cost.to_usd_f64(),
        scenarios,
        coverage: if demand_total > 0.0 {
            served_by_commit / demand_total
        } else {
            1.0
        },
        utilization: if committed_total > 0.0 {
            served_by_commit / committed_total
        } else {
            1.0
        },
        waste_gpu_hours: (committed_total - served_by_commit) / 1000.0 * h as f64,
        holdings,
        violations,
        expected_cost,
    }
}

/// CVaR_α of the scenario cost distribution: the expected cost in the worst `1 − α` of probability.
pub fn cvar(scenarios: &[ScenarioCost], alpha: f64) -> f64 {
    let mut v: Vec<(f64, f64)> = scenarios
        .iter()
        .map(|s| (s.total_usd, s.probability))
        .collect();
    v.sort_by(|a, b| b.0.total_cmp(&a.0));
    let tail = 1.0 - alpha;
    let (mut acc, mut mass) = (0.0, 0.0);
    for (c, p) in v {
        let take = p.min(tail - mass);
        if take <= 0.0 {
            break;
        }
        acc += c * take;
        mass += take;
    }
    if mass > 0.0 {
        acc / mass
    } else {
        0.0
    }
}

fn check_policies(
    input: &PlanningInput,
    cov: &[Vec<Vec<u64>>],
    portfolio: &[Resolved],
    expected: Money,
    out: &mut Vec<Violation>,
) {
    let (np, na, nt) = (
        input.providers.len(),
        input.accelerators.len(),
        input.horizon.periods,
    );
    let h = input.hours_per_period() as f64;
    // Exact: committed GPUs are whole numbers, so a shortfall or an excess of any size is a violation. The
    // only tolerance is float noise in the real-valued right-hand sides (`keep_fraction × D̄`, `v × total`):
    // one part in 10^9.
    let noise = |x: f64| 1e-9 * x.abs().max(1.0);
    let period = |t: usize| format!("period {t}");

    // Contract shape against the terms on offer.
    for (i, r) in portfolio.iter().enumerate() {
        let prov = &input.providers[r.provider];
        let offer = prov
            .options
            .iter()
            .filter(|o| o.accelerator == r.accelerator && o.term_periods == r.term_periods)
            .min_by_key(|o| o.rate);
        match offer {
            None => out.push(Violation {
                policy: "terms on offer".into(),
                detail: format!(
                    "commitments[{i}]: {} offers no {}-period {} term",
                    prov.id, r.term_periods, input.accelerators[r.accelerator]
                ),
                amount: f64::from(r.gpus),
            }),
            Some(o) => {
                if r.gpus % o.block_gpus != 0 {
                    out.push(Violation {
                        policy: "block_gpus".into(),
                        detail: format!(
                            "commitments[{i}]: {} GPUs is not a multiple of {}",
                            r.gpus, o.block_gpus
                        ),
                        amount: f64::from(r.gpus % o.block_gpus),
                    });
                }
                if r.gpus > 0 && r.gpus < o.min_gpus {
                    out.push(Violation {
                        policy: "min_gpus".into(),
                        detail: format!(
                            "commitments[{i}]: {} GPUs is below the minimum {}",
                            r.gpus, o.min_gpus
                        ),
                        amount: f64::from(o.min_gpus - r.gpus),
                    });
                }
                if r.start_period >= input.horizon.start_periods {
                    out.push(Violation {
                        policy: "horizon.start_periods".into(),
                        detail: format!(
                            "commitments[{i}] starts in period {}, after the last start period {}",
                            r.start_period,
                            input.horizon.start_periods - 1
                        ),
                        amount: 0.0,
                    });
                }
            }
        }
    }

    // Capacity of committed GPUs.
    for (p, prov) in input.providers.iter().enumerate() {
        for a in 0..na {
            let Some(cap) = prov.capacity[a] else {
                continue;
            };
            for t in 0..nt {
                if cov[p][a][t] > cap {
                    out.push(Violation {
                        policy: "capacity".into(),
                        detail: format!(
                            "{} {} {}: {} GPUs committed, capacity {cap}",
                            prov.id,
                            input.accelerators[a],
                            period(t),
                            cov[p][a][t]
                        ),
                        amount: (cov[p][a][t] - cap) as f64,
                    });
                }
            }
        }
    }

    // max_share.
    if let Some((of, v)) = input.policies.max_share {
        let mut worst: Option<Violation> = None;
        for t in 0..nt {
            let per: Vec<f64> = (0..np)
                .map(|p| match of {
                    ShareOf::CommittedGpus => (0..na).map(|a| cov[p][a][t] as f64).sum(),
                    ShareOf::CommittedSpend => {
                        let mut s = 0.0;
                        for e in &input.providers[p].existing {
                            if e.active_periods(&input.horizon).contains(&t) {
                                s += f64::from(e.gpus) * e.rate.to_usd_per_hour_f64() * h;
                            }
                        }
                        for r in portfolio.iter().filter(|r| r.provider == p) {
                            if (r.start_period..r.start_period + r.term_periods).contains(&t) {
                                s += f64::from(r.gpus) * r.rate.to_usd_per_hour_f64() * h;
                            }
                        }
                        s
                    }
                })
                .collect();
            let total: f64 = per.iter().sum();
            if total <= 0.0 {
                continue;
            }
            for (p, x) in per.iter().enumerate() {
                let over = x - v * total;
                if over > noise(total) && worst.as_ref().is_none_or(|w| w.amount < x / total) {
                    worst = Some(Violation {
                        policy: "max_share".into(),
                        detail: format!(
                            "{} holds {:.1}% of committed {} in {} (limit {:.1}%)",
                            input.providers[p].id,
                            100.0 * x / total,
                            if of == ShareOf::CommittedGpus {
                                "GPUs"
                            } else {
                                "spend"
                            },
                            period(t),
                            100.0 * v
                        ),
                        amount: x / total,
                    });
                }
            }
        }
        out.extend(worst);
    }

    // min_providers.
    if let Some(m) = input.policies.min_providers.filter(|m| *m > 0) {
        let holders = (0..np)
            .filter(|&p| cov[p].iter().flatten().any(|&g| g > 0))
            .count();
        if holders < m {
            out.push(Violation {
                policy: "min_providers".into(),
                detail: format!("{holders} providers hold commitments, at least {m} required"),
                amount: (m - holders) as f64,
            });
        }
    }

    // Resilience.
    if let Some(keep) = input.policies.keep_fraction.filter(|k| *k > 0.0) {
        let dbar = input.resilience_demand();
        let k = input.policies.survive_loss_of;
        let mut worst: Option<Violation> = None;
        let mut cells = 0usize;
        for lost in subsets(np, k) {
            for a in 0..na {
                for t in 0..nt {
                    let rest: f64 = (0..np)
                        .filter(|p| !lost.contains(p))
                        .map(|p| cov[p][a][t] as f64)
                        .sum();
                    let need = keep * dbar[a][t];
                    let short = need - rest;
                    if short > noise(need) {
                        cells += 1;
                    }
                    if short > noise(need) && worst.as_ref().is_none_or(|w| w.amount < short) {
                        let names: Vec<&str> = lost
                            .iter()
                            .map(|&p| input.providers[p].id.as_str())
                            .collect();
                        worst = Some(Violation {
                            policy: "survive_loss_of/keep_fraction".into(),
                            detail: format!(
                                "losing {} in {} leaves {:.0} committed {} GPUs, {} needed ({:.0}% of {})",
                                if names.is_empty() { "no provider".to_owned() } else { names.join("+") },
                                period(t), rest, input.accelerators[a], gpus_text(need), keep * 100.0, gpus_text(dbar[a][t])
                            ),
                            amount: short,
                        });
                    }
                }
            }
        }
        if let Some(mut w) = worst {
            if cells > 1 {
                w.detail.push_str(&format!(
                    " (worst of {cells} (lost providers, accelerator, period) cells short)"
                ));
            }
            out.push(w);
        }
    }

    // Budget.
    if let Some(b) = input.policies.budget {
        if expected > b {
            out.push(Violation {
                policy: "budget_usd".into(),
                detail: format!("expected cost {expected} exceeds the budget {b}"),
                amount: (expected - b).to_usd_f64(),
            });
        }
    }
}

/// GPUs to two decimals without trailing zeros: `11.4`, `3.45`, `12`.
fn gpus_text(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Every subset of size `k` of `0..n`, by the "next combination" rule (written apart from the
/// formulation's recursion on purpose).
fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
    if k > n {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut c: Vec<usize> = (0..k).collect();
    loop {
        out.push(c.clone());
        // The rightmost index that can still move right.
        let Some(i) = (0..k).rev().find(|&i| c[i] < n - k + i) else {
            break;
        };
        c[i] += 1;
        for j in i + 1..k {
            c[j] = c[j - 1] + 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_plan_yaml;
    use crate::portfolio::Resolved;
    use hedge_core::Rate;

    /// Costs worked out by hand: 2 periods of 100 h, demand 10 then 20 GPUs, one 2-period commitment of
    /// 12 GPUs at $2 (paid 12 × 2 × 100 × 2 = $4,800), spot for 10% of demand at $1 then on-demand at $5.
    #[test]
    fn hand_computed_costs_and_policies() {
        let input = parse_plan_yaml(
            "schema: hedge.plan/v1
horizon: {start: 2027-01, periods: 2, period_hours: 100}
accelerators: [H100]
demand:
  - {scenario: only, probability: 1, gpus: {H100: [10, 20]}}
providers:
  - name: a
    on_demand: {H100: 5}
    spot: {H100: 1}
    spot_availability: {H100: 0.1}
    commitments:
      - {accelerator: H100, term_periods: 2, rate: 2}
  - name: b
    on_demand: {H100: 6}
    commitments:
      - {accelerator: H100, term_periods: 2, rate: 2}
policies:
  min_providers: 2
  survive_loss_of: 1
  keep_fraction: 0.5
",
        )
        .unwrap();
        let rate = Rate::from_usd_per_hour_f64(2.0).unwrap();
        let p = vec![Resolved {
            provider: 0,
            accelerator: 0,
            term_periods: 2,
            start_period: 0,
            gpus: 12,
            rate,
        }];
        let ev = evaluate(&input, &p);
        // Period 0: covered (2 GPUs idle). Period 1: 8 short: 2 spot ($1 × 2 × 100) + 6 on demand ($5 × 6 × 100).
        assert_eq!(ev.scenarios[0].commitments_usd, 4_800.0);
        assert_eq!(ev.scenarios[0].spot_usd, 200.0);
        assert_eq!(ev.scenarios[0].on_demand_usd, 3_000.0);
        assert_eq!(ev.expected_cost_usd, 8_000.0);
        assert!((ev.utilization - 22.0 / 24.0).abs() < 1e-12);
        assert!((ev.coverage - 22.0 / 30.0).abs() < 1e-12);
        assert_eq!(
            ev.broken_policies(),
            vec![
                "min_providers".to_owned(),
                "survive_loss_of/keep_fraction".to_owned()
            ]
        );
    }

    #[test]
    fn subsets_enumerate_every_combination() {
        assert_eq!(subsets(4, 2).len(), 6);
        assert_eq!(subsets(3, 0), vec![Vec::<usize>::new()]);
        assert_eq!(subsets(3, 3), vec![vec![0, 1, 2]]);
    }
}

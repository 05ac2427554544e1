//! Rolling re-planning: re-plan at the start of every period (or every `every` periods) along a realised
//! demand path, sign only the commitments that start now, and carry them as signed contracts into the next
//! re-plan. Compared with planning once (every commitment of the first plan signed up front) and with the
//! path's hindsight optimum.
//!
//! # One re-plan (the input as seen at the start of period `k`)
//! [`input_at`] builds it from the plan file's input, the commitments signed so far and the demand realised
//! in periods `0..k`; nothing else is assumed:
//! - **horizon**: periods `k..T` (the horizon starts `k` months later; monthly periods are required, so a
//!   signed contract's start is a month); new commitments may start in `k..K` (`K` = the file's
//!   `start_periods`), and from `k = K` on nothing is re-planned;
//! - **signed contracts**: the file's `existing` plus every commitment signed at earlier re-plans, as
//!   `existing` (paid to the end of their terms, their cost sunk; they count for `max_share`,
//!   `min_providers`, resilience and capacity as in any plan);
//! - **scenarios, conditioned on the history** ([`conditional_scenarios`]): every planning scenario `s` keeps
//!   its probability and its shape, anchored at the last realised level: for `t ≥ k`,
//!   `D'[s,a,t] = D[s,a,t] · h[a,k−1] / D[s,a,k−1]` (a scenario with no demand at `k − 1` is not
//!   rescaled). For scenarios that are multiplicative random walks (the synthetic generator, the forecast's
//!   bootstrap paths) this is the exact conditional law of the future given the present level; for regime
//!   scenarios it is an approximation (each regime is continued from where the path is now);
//! - **policies**: the file's. `budget_usd` bounds each re-plan's remaining cost (signed contracts' remaining
//!   payments plus expected recourse); money already spent is not deducted, so a budget binds less in a
//!   rolling plan than in one plan.
//!
//! The re-plan is the ordinary [`optimise`]; the commitments of its solution that start in its first
//! `every` periods are signed, the rest are dropped (they are decided again later). A re-plan that is
//! infeasible signs nothing (the path is then served on demand) and is counted.
//!
//! # The study ([`study`])
//! On each path: the plan signed once (the stochastic plan's commitments), the rolling plan and the
//! hindsight optimum (the same model and policies, solved knowing the path), each costed by the evaluator
//! on the path. The **share of the gap to hindsight that rolling closes** is
//! `(once − rolling) / (once − hindsight)` of the mean costs.

use crate::error::PlanError;
use crate::evaluate::evaluate;
use crate::input::{ExistingContract, Horizon, MilliGpus, PlanningInput, Scenario, YearMonth};
use crate::outofsample::Distribution;
use crate::plan::{optimise, PlannerConfig};
use crate::portfolio::Resolved;
use serde::Serialize;

/// Period length rolling re-planning requires: one month (730 hours), so a horizon shifted by `k`
/// periods starts on a month.
pub const MONTHLY: u32 = 730;

/// The month `k` months after `m`.
pub fn plus_months(m: YearMonth, k: usize) -> YearMonth {
    let i = i64::from(m.month) - 1 + k as i64;
    YearMonth {
        year: m.year + i.div_euclid(12) as i32,
        month: i.rem_euclid(12) as u32 + 1,
    }
}

/// The planning scenarios over periods `k..T`, conditioned on the demand `realised[a][0..k]` (see the module
/// doc). At `k = 0` they are the planning scenarios.
pub fn conditional_scenarios(
    input: &PlanningInput,
    realised: &[Vec<MilliGpus>],
    k: usize,
) -> Vec<Scenario> {
    input
        .scenarios
        .iter()
        .map(|s| {
            let demand = s
                .demand
                .iter()
                .enumerate()
                .map(|(a, row)| {
                    let ratio = if k == 0 || row[k - 1].0 == 0 {
                        1.0
                    } else {
                        realised[a][k - 1].0 as f64 / row[k - 1].0 as f64
                    };
                    row[k..]
                        .iter()
                        .map(|d| MilliGpus((d.0 as f64 * ratio).round().max(0.0) as u64))
                        .collect()
                })
                .collect();
            Scenario {
                name: s.name.clone(),
                probability: s.probability,
                demand,
            }
        })
        .collect()
}

fn check_monthly(h: &Horizon) -> Result<(), PlanError> {
    if h.period_hours != MONTHLY {
        return Err(PlanError::Invalid {
            field: "horizon.period_hours".into(),
            reason: format!(
                "rolling re-planning needs monthly periods ({MONTHLY} hours), got {}",
                h.period_hours
            ),
        });
    }
    Ok(())
}

/// The input as seen at the start of period `k` (`1 ≤ k < T`, or 0): the remaining horizon, the signed
/// commitments as `existing`, the scenarios conditioned on `realised[a][0..k]`.
pub fn input_at(
    input: &PlanningInput,
    signed: &[Resolved],
    realised: &[Vec<MilliGpus>],
    k: usize,
) -> Result<PlanningInput, PlanError> {
    check_monthly(&input.horizon)?;
    let h = input.horizon;
    if k >= h.periods {
        return Err(PlanError::Invalid {
            field: "period".into(),
            reason: format!("{k} is not before the horizon's end ({})", h.periods),
        });
    }
    if realised.len() != input.accelerators.len() || realised.iter().any(|r| r.len() < k) {
        return Err(PlanError::Invalid {
            field: "realised".into(),
            reason: format!(
                "need {k} realised periods for each of {} accelerators",
                input.accelerators.len()
            ),
        });
    }
    let mut sub = input.clone();
    sub.horizon = Horizon {
        start: plus_months(h.start, k),
        periods: h.periods - k,
        period_hours: h.period_hours,
        start_periods: h.start_periods.saturating_sub(k).max(1),
    };
    sub.scenarios = conditional_scenarios(input, realised, k);
    for c in signed {
        sub.providers[c.provider].existing.push(ExistingContract {
            accelerator: c.accelerator,
            gpus: c.gpus,
            start: plus_months(h.start, c.start_period),
            term_periods: c.term_periods,
            rate: c.rate,
        });
    }
    Ok(sub)
}

/// What rolling re-planning signed along one path.
#[derive(Clone, Debug, PartialEq)]
pub struct Rolled {
    /// Every commitment signed, on the original horizon (start periods from the original start).
    pub commitments: Vec<Resolved>,
    /// Re-plans solved.
    pub replans: usize,
    /// Periods whose re-plan was infeasible (nothing signed then).
    pub infeasible_at: Vec<usize>,
}

/// Re-plans every `every` periods along `realised[a][t]` (the whole path; a re-plan at `k` reads only
/// `0..k`), signing the commitments that start before the next re-plan.
pub fn roll(
    input: &PlanningInput,
    cfg: &PlannerConfig,
    realised: &[Vec<MilliGpus>],
    every: usize,
) -> Result<Rolled, PlanError> {
    check_monthly(&input.horizon)?;
    if every == 0 {
        return Err(PlanError::Invalid {
            field: "every".into(),
            reason: "must be at least 1 period".into(),
        });
    }
    let inner = cfg.inner();
    let (nt, last_start) = (
        input.horizon.periods,
        input.horizon.start_periods.min(input.horizon.periods),
    );
    let mut out = Rolled {
        commitments: Vec::new(),
        replans: 0,
        infeasible_at: Vec::new(),
    };
    let mut k = 0;
    while k < last_start && k < nt {
        let sub = input_at(input, &out.commitments, realised, k)?;
        out.replans += 1;
        match optimise(&sub, &inner)? {
            Ok(o) => {
                for c in o.commitments.into_iter().filter(|c| c.start_period < every) {
                    out.commitments.push(Resolved {
                        start_period: c.start_period + k,
                        ..c
                    });
                }
            }
            Err(_) => out.infeasible_at.push(k),
        }
        k += every;
    }
    Ok(out)
}

/// The input with one scenario, the path (how every plan is costed on it).
pub fn on_path(input: &PlanningInput, path: &Scenario) -> PlanningInput {
    let mut i = input.clone();
    i.scenarios = vec![Scenario {
        probability: 1.0,
        ..path.clone()
    }];
    i.risk = None;
    i
}

/// Rolling re-planning against planning once and against hindsight, over paths.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RollingStudy {
    pub paths: usize,
    /// Re-plan every this many periods.
    pub every: usize,
    /// The plan signed once, up front, costed on each path.
    pub once_usd: Distribution,
    pub rolling_usd: Distribution,
    /// Each path's hindsight optimum (paths whose hindsight model is infeasible are left out of it).
    pub hindsight_usd: Distribution,
    /// `(once − rolling) / (once − hindsight)` of the means (over the paths with a hindsight optimum).
    pub gap_closed: f64,
    /// Share of paths on which rolling is strictly cheaper than planning once.
    pub rolling_cheaper_on: f64,
    /// Mean re-plans per path, and re-plans that were infeasible in all.
    pub replans_per_path: f64,
    pub infeasible_replans: usize,
    /// Policies broken on some path by the rolling plan / the plan signed once (evaluated on that path).
    pub rolling_breaks: Vec<String>,
    pub once_breaks: Vec<String>,
    pub per_path: Vec<PathCosts>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PathCosts {
    pub once_usd: f64,
    pub rolling_usd: f64,
    pub hindsight_usd: Option<f64>,
}

/// Costs `once` (a plan for `input`), rolling re-planning every `every` periods, and the hindsight optimum
/// on every path.
pub fn study(
    input: &PlanningInput,
    cfg: &PlannerConfig,
    once: &[Resolved],
    paths: &[Scenario],
    every: usize,
) -> Result<RollingStudy, PlanError> {
    let inner = cfg.inner();
    let mut per_path = Vec::with_capacity(paths.len());
    let (mut replans, mut infeasible) = (0usize, 0usize);
    let (mut rolling_breaks, mut once_breaks): (Vec<String>, Vec<String>) =
        (Vec::new(), Vec::new());
    for path in paths {
        let pi = on_path(input, path);
        let rolled = roll(input, cfg, &path.demand, every)?;
        replans += rolled.replans;
        infeasible += rolled.infeasible_at.len();
        let eo = evaluate(&pi, once);
        let er = evaluate(&pi, &rolled.commitments);
        for (list, ev) in [(&mut once_breaks, &eo), (&mut rolling_breaks, &er)] {
            for b in ev.broken_policies() {
                if !list.contains(&b) {
                    list.push(b);
                }
            }
        }
        let hindsight = match optimise(&pi, &inner)? {
            Ok(o) => Some(evaluate(&pi, &o.commitments).scenarios[0].total_usd),
            Err(_) => None,
        };
        per_path.push(PathCosts {
            once_usd: eo.scenarios[0].total_usd,
            rolling_usd: er.scenarios[0].total_usd,
            hindsight_usd: hindsight,
        });
    }
    let n = paths.len().max(1) as f64;
    let known: Vec<&PathCosts> = per_path
        .iter()
        .filter(|p| p.hindsight_usd.is_some())
        .collect();
    let mean = |f: &dyn Fn(&PathCosts) -> f64| {
        if known.is_empty() {
            0.0
        } else {
            known.iter().map(|p| f(p)).sum::<f64>() / known.len() as f64
        }
    };
    let (o, r, h) = (
        mean(&|p| p.once_usd),
        mean(&|p| p.rolling_usd),
        mean(&|p| p.hindsight_usd.unwrap_or(0.0)),
    );
    let gap_closed = if o - h > 1e-9 * o.abs().max(1.0) {
        (o - r) / (o - h)
    } else {
        0.0
    };
    Ok(RollingStudy {
        paths: paths.len(),
        every,
        once_usd: Distribution::of(&per_path.iter().map(|p| p.once_usd).collect::<Vec<_>>()),
        rolling_usd: Distribution::of(&per_path.iter().map(|p| p.rolling_usd).collect::<Vec<_>>()),
        hindsight_usd: Distribution::of(
            &known
                .iter()
                .filter_map(|p| p.hindsight_usd)
                .collect::<Vec<_>>(),
        ),
        gap_closed,
        rolling_cheaper_on: per_path
            .iter()
            .filter(|p| p.rolling_usd < p.once_usd)
            .count() as f64
            / n,
        replans_per_path: replans as f64 / n,
        infeasible_replans: infeasible,
        rolling_breaks,
        once_breaks,
        per_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_plan_yaml;

    /// Low or high demand, equally likely, told apart by period 0. Planning once cannot commit for the high
    /// level (a 1-period commitment at $6 against an expected $5 on demand); re-planning at period 1 can.
    const FORK: &str = "schema: hedge.plan/v1
horizon: {start: 2027-01, periods: 2, period_hours: 730}
accelerators: [H100]
demand:
  - {scenario: low, probability: 0.5, gpus: {H100: [10, 10]}}
  - {scenario: high, probability: 0.5, gpus: {H100: [20, 20]}}
providers:
  - name: a
    on_demand: {H100: 10}
    commitments:
      - {accelerator: H100, term_periods: 1, rate: 6}
";

    fn cfg() -> PlannerConfig {
        PlannerConfig {
            price_policies: false,
            baselines: false,
            ..PlannerConfig::default()
        }
    }

    #[test]
    fn plus_months_wraps_years() {
        let m = YearMonth {
            year: 2027,
            month: 11,
        };
        assert_eq!(plus_months(m, 0), m);
        assert_eq!(
            plus_months(m, 2),
            YearMonth {
                year: 2028,
                month: 1
            }
        );
        assert_eq!(
            plus_months(m, 26),
            YearMonth {
                year: 2030,
                month: 1
            }
        );
    }

    #[test]
    fn conditional_scenarios_anchor_each_scenario_at_the_last_realised_level() {
        let input = parse_plan_yaml(FORK).unwrap();
        let g = MilliGpus::from_gpus;
        let c = conditional_scenarios(&input, &[vec![g(30), g(99)]], 1);
        // Period 0 realised 30: low (10) is scaled by 3, high (20) by 1.5.
        assert_eq!(
            (c[0].demand[0].clone(), c[1].demand[0].clone()),
            (vec![g(30)], vec![g(30)])
        );
        assert_eq!(
            conditional_scenarios(&input, &[vec![g(30), g(99)]], 0),
            input.scenarios
        );
        let mut zero = input.clone();
        zero.scenarios[0].demand[0] = vec![g(0), g(4)];
        assert_eq!(
            conditional_scenarios(&zero, &[vec![g(30), g(0)]], 1)[0].demand[0],
            vec![g(4)],
            "not rescaled from zero"
        );
    }

    #[test]
    fn input_at_shifts_the_horizon_and_carries_signed_commitments() {
        let mut input = parse_plan_yaml(FORK).unwrap();
        input.horizon.periods = 4;
        input.horizon.start_periods = 4;
        for s in &mut input.scenarios {
            s.demand[0] = vec![s.demand[0][0]; 4];
        }
        let signed = vec![Resolved {
            provider: 0,
            accelerator: 0,
            term_periods: 3,
            start_period: 0,
            gpus: 10,
            rate: input.providers[0].options[0].rate,
        }];
        let realised = vec![vec![MilliGpus::from_gpus(10); 4]];
        let sub = input_at(&input, &signed, &realised, 2).unwrap();
        assert_eq!(
            sub.horizon.start,
            YearMonth {
                year: 2027,
                month: 3
            }
        );
        assert_eq!((sub.horizon.periods, sub.horizon.start_periods), (2, 2));
        let e = &sub.providers[0].existing[0];
        // Started at 2027-01 for 3 periods: active in the re-plan's period 0 only, one period still owed.
        assert_eq!(
            (e.active_periods(&sub.horizon), e.periods_owed(&sub.horizon)),
            (0..1, 1)
        );
        assert_eq!(
            sub.scenarios[1].demand[0],
            vec![MilliGpus::from_gpus(10); 2]
        );
        let mut weekly = input.clone();
        weekly.horizon.period_hours = 168;
        let err = input_at(&weekly, &[], &realised, 1)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "horizon.period_hours: rolling re-planning needs monthly periods (730 hours), got 168"
        );
        assert!(roll(&input, &cfg(), &realised, 0)
            .unwrap_err()
            .to_string()
            .starts_with("every:"));
    }

    /// Hand-worked, per hour ($; × 730 for a period): hindsight commits every GPU at $6: low 2 × 60 = 120,
    /// high 2 × 120 = 240. Planning once commits the 10 GPUs both scenarios need (6 < 10) but not the high
    /// scenario's 10 more (6 > 0.5 × 10): low 120, high 2 × (60 + 100) = 320. Rolling signs the same 10
    /// for period 0, then at period 1 both conditioned scenarios equal the path: high 160 + 120 = 280,
    /// low 120. Means: once 220, rolling 200, hindsight 180: half the gap closed.
    #[test]
    fn rolling_closes_half_the_gap_on_a_fork_and_matches_once_without_uncertainty() {
        let input = parse_plan_yaml(FORK).unwrap();
        let c = cfg();
        let once = optimise(&input, &c).unwrap().unwrap().commitments;
        let (low, high) = (input.scenarios[0].clone(), input.scenarios[1].clone());
        let s = study(&input, &c, &once, &[low, high.clone()], 1).unwrap();
        let h = 730.0;
        let got: Vec<(f64, f64, Option<f64>)> = s
            .per_path
            .iter()
            .map(|p| (p.once_usd, p.rolling_usd, p.hindsight_usd))
            .collect();
        assert_eq!(
            got,
            vec![
                (120.0 * h, 120.0 * h, Some(120.0 * h)),
                (320.0 * h, 280.0 * h, Some(240.0 * h))
            ]
        );
        assert!((s.gap_closed - 0.5).abs() < 1e-12, "{}", s.gap_closed);
        assert_eq!(
            (
                s.replans_per_path,
                s.infeasible_replans,
                s.rolling_cheaper_on
            ),
            (2.0, 0, 0.5)
        );
        // One scenario, its own path: nothing to learn, rolling costs what planning once does.
        let mut det = input.clone();
        det.scenarios = vec![Scenario {
            probability: 1.0,
            ..high.clone()
        }];
        let once = optimise(&det, &c).unwrap().unwrap().commitments;
        let s = study(&det, &c, &once, &[high], 1).unwrap();
        assert_eq!(s.per_path[0].rolling_usd, s.per_path[0].once_usd);
        assert_eq!(s.gap_closed, 0.0);
    }
}

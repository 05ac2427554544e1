//! Baselines reported beside the plan, each evaluated by the independent evaluator against the plan's
//! policies (so the report shows which policies each one breaks):
//!
//! - **all on-demand**: no new commitments;
//! - **best single provider** (lock-in): the optimiser restricted to one provider's terms, policies
//!   ignored, the cheapest such provider;
//! - **equal split**: the policy-free optimum's commitments, each split equally over the providers that
//!   offer the same accelerator and term (the nearest term where one does not), rounded down to blocks;
//! - **lookback recommender** (AWS/Azure style): at the start, and again whenever its contract ends,
//!   commit the quantity that would have saved most over the last `LOOKBACK` periods of expected demand
//!   (the `1 − r/p` quantile of those periods) at the cheapest on-demand provider's cheapest term.

use crate::error::PlanError;
use crate::evaluate::evaluate;
use crate::input::{MilliGpus, PlanningInput, Policies};
use crate::plan::{optimise, Optimised, PlannerConfig};
use crate::portfolio::Resolved;
use serde::Serialize;

/// Periods the lookback recommender looks back over.
pub const LOOKBACK: usize = 3;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BaselineResult {
    pub name: String,
    pub expected_cost_usd: f64,
    /// Expected cost relative to the plan's (1.25 = 25% dearer).
    pub vs_plan: f64,
    pub new_commitments: usize,
    pub breaks: Vec<String>,
    #[serde(skip)]
    pub commitments: Vec<Resolved>,
}

fn policy_free(input: &PlanningInput) -> PlanningInput {
    let mut i = input.clone();
    i.policies = Policies {
        unmet: input.policies.unmet,
        ..Policies::default()
    };
    i.risk = None;
    i
}

pub fn all(
    input: &PlanningInput,
    cfg: &PlannerConfig,
    plan: &Optimised,
) -> Result<Vec<BaselineResult>, PlanError> {
    let plan_cost = evaluate(input, &plan.commitments)
        .expected_cost_usd
        .max(1e-9);
    let mut out = Vec::new();
    let mut push = |name: &str, cs: Vec<Resolved>| {
        let ev = evaluate(input, &cs);
        out.push(BaselineResult {
            name: name.to_owned(),
            expected_cost_usd: ev.expected_cost_usd,
            vs_plan: ev.expected_cost_usd / plan_cost,
            new_commitments: cs.len(),
            breaks: ev.broken_policies(),
            commitments: cs,
        });
    };
    push("all on-demand", Vec::new());

    let inner = cfg.inner();
    let mut best: Option<(f64, String, Vec<Resolved>)> = None;
    for (p, prov) in input.providers.iter().enumerate() {
        if prov.options.is_empty() {
            continue;
        }
        let mut i = policy_free(input);
        for (q, other) in i.providers.iter_mut().enumerate() {
            if q != p {
                other.options.clear();
            }
        }
        if let Ok(o) = optimise(&i, &inner)? {
            let c = evaluate(input, &o.commitments).expected_cost_usd;
            if best.as_ref().is_none_or(|b| c < b.0) {
                best = Some((c, prov.id.to_string(), o.commitments));
            }
        }
    }
    if let Some((_, name, cs)) = best {
        push(&format!("best single provider ({name})"), cs);
    }

    let free = policy_free(input);
    if let Ok(o) = optimise(&free, &inner)? {
        push("equal split", equal_split(input, &o.commitments));
    }
    push(
        &format!("lookback recommender ({LOOKBACK} periods)"),
        lookback(input),
    );
    Ok(out)
}

/// Splits each commitment equally over the providers offering the accelerator (nearest term).
pub fn equal_split(input: &PlanningInput, cs: &[Resolved]) -> Vec<Resolved> {
    let mut out: Vec<Resolved> = Vec::new();
    for c in cs {
        let offers: Vec<(usize, &crate::input::CommitOption)> = input
            .providers
            .iter()
            .enumerate()
            .filter_map(|(p, prov)| {
                prov.options
                    .iter()
                    .filter(|o| o.accelerator == c.accelerator)
                    .min_by_key(|o| (o.term_periods.abs_diff(c.term_periods), o.rate))
                    .map(|o| (p, o))
            })
            .collect();
        if offers.is_empty() {
            continue;
        }
        let share = c.gpus / offers.len() as u32;
        for (p, o) in offers {
            let g = share / o.block_gpus * o.block_gpus;
            if g == 0 || g < o.min_gpus {
                continue;
            }
            out.push(Resolved {
                provider: p,
                accelerator: c.accelerator,
                term_periods: o.term_periods,
                start_period: c.start_period,
                gpus: g,
                rate: o.rate,
            });
        }
    }
    out
}

/// The lookback recommender, replayed over the horizon on the expected demand.
pub fn lookback(input: &PlanningInput) -> Vec<Resolved> {
    lookback_from(input, None)
}

/// The lookback recommender replayed along a realised path `[a][t]`: its first decision sees only the
/// forecast (the expected demand of the first periods), every later one the path's last `LOOKBACK` periods.
pub fn lookback_on_path(input: &PlanningInput, path: &[Vec<MilliGpus>]) -> Vec<Resolved> {
    lookback_from(input, Some(path))
}

fn lookback_from(input: &PlanningInput, path: Option<&[Vec<MilliGpus>]>) -> Vec<Resolved> {
    let nt = input.horizon.periods;
    let mut out = Vec::new();
    for a in 0..input.accelerators.len() {
        // The cheapest on-demand provider that offers a term for this accelerator, and its cheapest term.
        let pick = input
            .providers
            .iter()
            .enumerate()
            .filter_map(|(p, prov)| {
                let od = prov.on_demand[a]?;
                let o = prov
                    .options
                    .iter()
                    .filter(|o| o.accelerator == a)
                    .min_by_key(|o| o.rate)?;
                Some((od, p, o))
            })
            .min_by_key(|x| x.0);
        let Some((od, p, o)) = pick else { continue };
        let expected: Vec<f64> = (0..nt)
            .map(|t| {
                input
                    .scenarios
                    .iter()
                    .map(|s| s.probability * s.demand[a][t].gpus_f64())
                    .sum()
            })
            .collect();
        let level = 1.0 - o.rate.to_usd_per_hour_f64() / od.to_usd_per_hour_f64();
        let mut start = 0;
        while start < input.horizon.start_periods.min(nt) {
            // "History": the LOOKBACK periods before the decision (the first ones at the start).
            let from = start.saturating_sub(LOOKBACK);
            let realised: Vec<f64> = match path {
                Some(p) => p[a].iter().map(|d| d.gpus_f64()).collect(),
                None => expected.clone(),
            };
            let window = if start == 0 {
                &expected[..LOOKBACK.min(nt)]
            } else {
                &realised[from..start]
            };
            let mut w: Vec<f64> = window.to_vec();
            w.sort_by(f64::total_cmp);
            let g = if level <= 0.0 || w.is_empty() {
                0.0
            } else {
                // Savings of g over the window are maximal at the (1 − r/p) quantile.
                let k = ((w.len() as f64 * level).ceil() as usize).saturating_sub(1);
                w[k.min(w.len() - 1)]
            };
            let mut g = g.floor() as u32;
            if let Some(cap) = input.providers[p].capacity[a] {
                g = g.min(cap as u32);
            }
            g = g / o.block_gpus * o.block_gpus;
            if g < o.min_gpus {
                g = 0;
            }
            if g > 0 {
                out.push(Resolved {
                    provider: p,
                    accelerator: a,
                    term_periods: o.term_periods,
                    start_period: start,
                    gpus: g,
                    rate: o.rate,
                });
            }
            start += o.term_periods;
        }
    }
    out
}

//! Out-of-sample evaluation: how a plan does on demand paths it was not planned on, against the
//! expected-value plan, the lookback recommender, all on-demand and the hindsight optimum of each path.
//!
//! # The path generator (scenario switching with multiplicative noise)
//! Fresh paths are drawn from the plan's own scenarios, so no outside model is assumed:
//! - a path starts in a scenario drawn with the scenarios' probabilities `π`;
//! - at the start of every later period it keeps its scenario with probability `1 − switch` and otherwise
//!   redraws one with probabilities `π` (it may draw the same one), so the scenario in force in any one
//!   period is distributed as `π`, as in the planning set, while a path may change regime part-way;
//! - its demand in period `t` for accelerator `a` is `D[s_t, t, a] · m[t, a]`, where `m` is a
//!   mean-one multiplicative random walk per accelerator: `m[0] = 1`,
//!   `m[t] = m[t−1] · exp(noise · ε − noise²/2)`, `ε` standard normal.
//!
//! With `switch = 0` and `noise = 0` a path is one of the planning scenarios; the defaults (0.1 and 0.03)
//! are not. Everything is seeded ([`rand_chacha::ChaCha8Rng`]); the same seed gives the same paths.
//!
//! # The figures (Birge & Louveaux's definitions, taken over the sampled paths)
//! - `RP`: the plan's mean cost; `EEV`: the expected-value plan's mean cost (that plan is solved on the
//!   one mean scenario, with the same policies); `WS`: the mean of each path's hindsight optimum (the same
//!   model and policies, solved knowing the path).
//! - `VSS = EEV − RP` (what planning on the scenarios saves over planning on their mean);
//!   `EVPI = RP − WS` (what knowing the future would save); regret on a path = plan cost − hindsight cost.
//!
//! Every cost is the independent evaluator's, on the path as a one-scenario input: commitments for their
//! whole terms plus the cheapest-first recourse. Unserved demand (capacity exhausted) is costed at the
//! penalty when `unmet_demand` has one, and reported in GPU-hours either way.

use crate::baselines;
use crate::error::PlanError;
use crate::evaluate::evaluate;
use crate::input::{MilliGpus, PlanningInput, Scenario};
use crate::plan::{optimise, PlannerConfig};
use crate::portfolio::Resolved;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// The path generator's two parameters (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Generator {
    /// Probability, per period, that a path redraws its scenario.
    pub switch: f64,
    /// Per-period volatility of the multiplicative noise.
    pub noise: f64,
}

impl Default for Generator {
    fn default() -> Self {
        Generator {
            switch: 0.1,
            noise: 0.03,
        }
    }
}

fn draw(rng: &mut ChaCha8Rng, probs: &[f64]) -> usize {
    let u: f64 = rng.gen_range(0.0..1.0);
    let mut acc = 0.0;
    for (i, p) in probs.iter().enumerate() {
        acc += p;
        if u < acc {
            return i;
        }
    }
    probs.len() - 1
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.gen_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// `n` fresh demand paths from the plan's scenarios, each a scenario of probability `1/n` named `path-<i>`.
pub fn sample_paths(
    input: &PlanningInput,
    generator: Generator,
    n: usize,
    seed: u64,
) -> Vec<Scenario> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let probs: Vec<f64> = input.scenarios.iter().map(|s| s.probability).collect();
    let (na, nt) = (input.accelerators.len(), input.horizon.periods);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = draw(&mut rng, &probs);
        let mut m = vec![1.0f64; na];
        let mut demand = vec![Vec::with_capacity(nt); na];
        for t in 0..nt {
            if t > 0 {
                if rng.gen_range(0.0..1.0) < generator.switch {
                    s = draw(&mut rng, &probs);
                }
                for x in m.iter_mut() {
                    *x *= (generator.noise * normal(&mut rng)
                        - generator.noise * generator.noise / 2.0)
                        .exp();
                }
            }
            for a in 0..na {
                let d = input.scenarios[s].demand[a][t].0 as f64 * m[a];
                demand[a].push(MilliGpus(d.round().max(0.0) as u64));
            }
        }
        out.push(Scenario {
            name: format!("path-{i}"),
            probability: 1.0 / n as f64,
            demand,
        });
    }
    out
}

/// The one mean scenario `Σ_s π_s D[s]` (the expected-value problem's input).
pub fn mean_input(input: &PlanningInput) -> PlanningInput {
    let (na, nt) = (input.accelerators.len(), input.horizon.periods);
    let demand = (0..na)
        .map(|a| {
            (0..nt)
                .map(|t| {
                    let d: f64 = input
                        .scenarios
                        .iter()
                        .map(|s| s.probability * s.demand[a][t].0 as f64)
                        .sum();
                    MilliGpus(d.round() as u64)
                })
                .collect()
        })
        .collect();
    let mut i = input.clone();
    i.scenarios = vec![Scenario {
        name: "mean".into(),
        probability: 1.0,
        demand,
    }];
    i.risk = None;
    i
}

fn on_path(input: &PlanningInput, path: &Scenario) -> PlanningInput {
    let mut i = input.clone();
    i.scenarios = vec![Scenario {
        probability: 1.0,
        ..path.clone()
    }];
    i.risk = None;
    i
}

/// Percentiles and mean of one plan's (or the regret's) cost over the paths, dollars.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Distribution {
    pub mean: f64,
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Distribution {
    /// Nearest-rank percentiles.
    pub fn of(values: &[f64]) -> Distribution {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let q = |p: f64| -> f64 {
            if v.is_empty() {
                return 0.0;
            }
            let k = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
            v[k - 1]
        };
        Distribution {
            mean: if v.is_empty() {
                0.0
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            },
            p10: q(0.10),
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            max: v.last().copied().unwrap_or(0.0),
        }
    }
}

/// One plan's out-of-sample costs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanCosts {
    pub name: String,
    pub cost_usd: Distribution,
    /// Mean cost relative to the plan's (1.05 = 5% dearer).
    pub vs_plan: f64,
    /// Share of paths on which the plan is strictly cheaper than this one.
    pub plan_cheaper_on: f64,
    /// Mean GPU-hours per path no market could serve (capacity exhausted).
    pub unmet_gpu_hours: f64,
    /// Policies of the plan file this plan breaks on the planning scenarios (for the lookback recommender,
    /// which re-decides on every path: on any path).
    pub breaks: Vec<String>,
    /// Per path, dollars (in path order).
    pub per_path_usd: Vec<f64>,
}

/// The out-of-sample report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutOfSample {
    pub paths: usize,
    pub seed: Option<u64>,
    pub generator: Option<Generator>,
    /// The plan, the expected-value plan, the lookback recommender, all on-demand, the hindsight optimum.
    pub plans: Vec<PlanCosts>,
    /// `EEV − RP`: mean cost of the expected-value plan minus the plan's.
    pub vss_usd: f64,
    /// `RP − WS`: the plan's mean cost minus the mean hindsight optimum.
    pub evpi_usd: f64,
    /// Plan cost minus hindsight optimum, per path.
    pub regret_usd: Distribution,
    /// Paths whose hindsight model was infeasible (left out of WS, EVPI and regret).
    pub hindsight_infeasible: usize,
}

/// Costs `plan` (new commitments on top of the signed ones) on every path, against the expected-value
/// plan, the lookback recommender (re-deciding on each path's realised history), all on-demand and each
/// path's hindsight optimum.
pub fn out_of_sample(
    input: &PlanningInput,
    cfg: &PlannerConfig,
    plan: &[Resolved],
    paths: &[Scenario],
) -> Result<OutOfSample, PlanError> {
    let inner = cfg.inner();
    let ev_plan = match optimise(&mean_input(input), &inner)? {
        Ok(o) => Some(o.commitments),
        Err(_) => None,
    };
    let mut names = vec!["this plan".to_owned()];
    let mut costs: Vec<Vec<f64>> = vec![Vec::new()];
    let mut unmet: Vec<f64> = vec![0.0];
    let mut breaks: Vec<Vec<String>> = vec![evaluate(input, plan).broken_policies()];
    if let Some(ev) = &ev_plan {
        names.push("expected-value plan".into());
        costs.push(Vec::new());
        unmet.push(0.0);
        breaks.push(evaluate(input, ev).broken_policies());
    }
    let lookback_at = names.len();
    for n in [
        format!("lookback recommender ({} periods)", baselines::LOOKBACK),
        "all on-demand".to_owned(),
    ] {
        names.push(n);
        costs.push(Vec::new());
        unmet.push(0.0);
    }
    breaks.push(Vec::new());
    breaks.push(evaluate(input, &[]).broken_policies());
    let mut hindsight: Vec<Option<f64>> = Vec::new();
    for path in paths {
        let pi = on_path(input, path);
        let lookback = baselines::lookback_on_path(input, &path.demand);
        for b in evaluate(input, &lookback).broken_policies() {
            if !breaks[lookback_at].contains(&b) {
                breaks[lookback_at].push(b);
            }
        }
        let mut portfolios: Vec<&[Resolved]> = vec![plan];
        if let Some(ev) = &ev_plan {
            portfolios.push(ev);
        }
        portfolios.push(&lookback);
        portfolios.push(&[]);
        for (k, cs) in portfolios.iter().enumerate() {
            let e = evaluate(&pi, cs);
            costs[k].push(e.scenarios[0].total_usd);
            unmet[k] += e.scenarios[0].unmet_gpu_hours;
        }
        hindsight.push(match optimise(&pi, &inner)? {
            Ok(o) => Some(evaluate(&pi, &o.commitments).scenarios[0].total_usd),
            Err(_) => None,
        });
    }
    let n = paths.len().max(1) as f64;
    let rp = Distribution::of(&costs[0]).mean;
    let mut plans: Vec<PlanCosts> = names
        .into_iter()
        .zip(costs.iter())
        .zip(unmet.iter())
        .zip(breaks)
        .map(|(((name, c), u), breaks)| {
            let d = Distribution::of(c);
            PlanCosts {
                name,
                vs_plan: if rp > 0.0 { d.mean / rp } else { 1.0 },
                plan_cheaper_on: costs[0].iter().zip(c).filter(|(p, x)| p < x).count() as f64 / n,
                unmet_gpu_hours: u / n,
                cost_usd: d,
                breaks,
                per_path_usd: c.clone(),
            }
        })
        .collect();
    let known: Vec<(usize, f64)> = hindsight
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.map(|h| (i, h)))
        .collect();
    let ws_costs: Vec<f64> = known.iter().map(|k| k.1).collect();
    let ws = Distribution::of(&ws_costs);
    let regret: Vec<f64> = known.iter().map(|&(i, h)| costs[0][i] - h).collect();
    let rp_known = if known.is_empty() {
        0.0
    } else {
        known.iter().map(|&(i, _)| costs[0][i]).sum::<f64>() / known.len() as f64
    };
    plans.push(PlanCosts {
        name: "hindsight optimum".into(),
        vs_plan: if rp > 0.0 { ws.mean / rp } else { 1.0 },
        plan_cheaper_on: 0.0,
        unmet_gpu_hours: 0.0,
        cost_usd: ws.clone(),
        breaks: Vec::new(),
        per_path_usd: hindsight.iter().map(|h| h.unwrap_or(f64::NAN)).collect(),
    });
    let vss_usd = if ev_plan.is_some() {
        Distribution::of(&costs[1]).mean - rp
    } else {
        0.0
    };
    Ok(OutOfSample {
        paths: paths.len(),
        seed: None,
        generator: None,
        plans,
        vss_usd,
        evpi_usd: rp_known - ws.mean,
        regret_usd: Distribution::of(&regret),
        hindsight_infeasible: paths.len() - known.len(),
    })
}

/// Samples `n` paths with `generator` and `seed` and evaluates `plan` on them.
pub fn out_of_sample_sampled(
    input: &PlanningInput,
    cfg: &PlannerConfig,
    plan: &[Resolved],
    generator: Generator,
    n: usize,
    seed: u64,
) -> Result<OutOfSample, PlanError> {
    let paths = sample_paths(input, generator, n, seed);
    let mut r = out_of_sample(input, cfg, plan, &paths)?;
    r.seed = Some(seed);
    r.generator = Some(generator);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_plan_yaml;

    const TWO: &str = "schema: hedge.plan/v1
horizon: {start: 2027-01, periods: 6, period_hours: 730}
accelerators: [H100]
demand:
  - {scenario: low, probability: 0.25, gpus: {H100: [10, 10, 10, 10, 10, 10]}}
  - {scenario: high, probability: 0.75, gpus: {H100: [50, 60, 70, 80, 90, 100]}}
providers:
  - name: a
    on_demand: {H100: 6}
    commitments:
      - {accelerator: H100, term_periods: 6, rate: 4}
";

    #[test]
    fn paths_are_seeded_fresh_and_keep_the_mixture() {
        let input = parse_plan_yaml(TWO).unwrap();
        let g = Generator::default();
        let a = sample_paths(&input, g, 400, 7);
        assert_eq!(a, sample_paths(&input, g, 400, 7), "same seed, same paths");
        assert_ne!(a, sample_paths(&input, g, 400, 8));
        // Not the planning scenarios.
        assert!(a
            .iter()
            .all(|p| input.scenarios.iter().all(|s| s.demand != p.demand)));
        // The period-5 mean is near the scenario mixture's (0.25·10 + 0.75·100 = 77.5): the noise has mean
        // one and switching keeps each period's scenario distributed as π.
        let mean: f64 = a.iter().map(|p| p.demand[0][5].gpus_f64()).sum::<f64>() / a.len() as f64;
        assert!((mean - 77.5).abs() < 5.0, "{mean}");
        // Without switching and noise, every path is a planning scenario.
        let exact = sample_paths(
            &input,
            Generator {
                switch: 0.0,
                noise: 0.0,
            },
            50,
            1,
        );
        assert!(exact
            .iter()
            .all(|p| input.scenarios.iter().any(|s| s.demand == p.demand)));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let d = Distribution::of(&(1..=100).map(f64::from).collect::<Vec<_>>());
        assert_eq!(
            (d.p10, d.p50, d.p90, d.p99, d.max, d.mean),
            (10.0, 50.0, 90.0, 99.0, 100.0, 50.5)
        );
    }
}

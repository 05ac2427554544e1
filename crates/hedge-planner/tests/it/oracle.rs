//! The newsvendor oracle: one provider, one accelerator, one term equal to the horizon, starting at
//! period 0. The optimal commitment is the (1 − r/p) quantile of the pooled scenario × period demand
//! (each cell weighted π_s / n). Checked on random instances, on every backend and both methods.

use hedge_core::{Accelerator, ProviderId, Rate};
use hedge_planner::input::*;
use hedge_planner::{optimise, Backend, Method, PlannerConfig};
use proptest::prelude::*;

fn instance(price: f64, rate: f64, demand: &[Vec<u64>], weights: &[u32]) -> PlanningInput {
    let n = demand[0].len();
    let total: u32 = weights.iter().sum();
    let mut scenarios: Vec<Scenario> = demand
        .iter()
        .zip(weights)
        .enumerate()
        .map(|(i, (d, w))| Scenario {
            name: format!("s{i}"),
            probability: f64::from(*w) / f64::from(total),
            demand: vec![d.iter().map(|&g| MilliGpus::from_gpus(g)).collect()],
        })
        .collect();
    let sum: f64 = scenarios.iter().map(|s| s.probability).sum();
    scenarios.last_mut().unwrap().probability += 1.0 - sum;
    PlanningInput {
        horizon: Horizon {
            start: YearMonth {
                year: 2027,
                month: 1,
            },
            periods: n,
            period_hours: 730,
            start_periods: 1,
        },
        accelerators: vec![Accelerator::parse("H100").unwrap()],
        scenarios,
        providers: vec![Provider {
            id: ProviderId::new("solo"),
            on_demand: vec![Some(Rate::from_usd_per_hour_f64(price).unwrap())],
            spot: vec![None],
            spot_availability: vec![0.0],
            capacity: vec![None],
            options: vec![CommitOption {
                accelerator: 0,
                term_periods: n,
                rate: Rate::from_usd_per_hour_f64(rate).unwrap(),
                block_gpus: 1,
                min_gpus: 0,
            }],
            existing: vec![],
        }],
        policies: Policies::default(),
        risk: None,
        price_sources: Vec::new(),
    }
}

/// `P(D < g)` and `P(D ≤ g)` of the pooled demand.
fn cdf(input: &PlanningInput, g: f64) -> (f64, f64) {
    let n = input.horizon.periods as f64;
    let (mut below, mut at_most) = (0.0, 0.0);
    for s in &input.scenarios {
        for d in &s.demand[0] {
            let w = s.probability / n;
            if d.gpus_f64() < g {
                below += w;
            }
            if d.gpus_f64() <= g {
                at_most += w;
            }
        }
    }
    (below, at_most)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]
    #[test]
    fn optimal_commitment_is_the_newsvendor_quantile(
        price in 2.0f64..10.0,
        discount in 0.05f64..0.95,
        periods in 1usize..6,
        demand in prop::collection::vec(prop::collection::vec(0u64..200, 6), 1..4),
        weights in prop::collection::vec(1u32..10, 4),
    ) {
        let rate = (price * (1.0 - discount) * 100.0).round() / 100.0;
        prop_assume!(rate > 0.0 && rate < price);
        let demand: Vec<Vec<u64>> = demand.iter().map(|d| d[..periods].to_vec()).collect();
        let input = instance(price, rate, &demand, &weights[..demand.len()]);
        let level = 1.0 - rate / price;
        for backend in Backend::ALL {
            for method in [Method::Extensive, Method::Benders] {
                let cfg = PlannerConfig { backend, method, ..PlannerConfig::default() };
                let opt = optimise(&input, &cfg).unwrap().unwrap();
                let g: f64 = opt.commitments.iter().map(|c| f64::from(c.gpus)).sum();
                // g is a level-quantile: P(D < g) ≤ level ≤ P(D ≤ g).
                let (below, at_most) = cdf(&input, g);
                prop_assert!(below <= level + 1e-6 && at_most >= level - 1e-6,
                    "{backend} {method:?}: g={g} P(D<g)={below} P(D<=g)={at_most} level={level}");
            }
        }
    }
}

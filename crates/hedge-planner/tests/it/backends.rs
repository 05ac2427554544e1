//! The same expectations on every backend and both methods: equal optima on random small models (with
//! policies), every policy holding in the rounded plan as the independent evaluator sees it, the
//! evaluator agreeing with the solver's objective, never worse than all on-demand, never above capacity.

use hedge_planner::synthetic::{instance, Size};
use hedge_planner::{evaluate, optimise, Backend, Method, PlannerConfig};
use proptest::prelude::*;

const SMALL: Size = Size {
    providers: 3,
    accelerators: 2,
    terms: 2,
    start_periods: 6,
    periods: 12,
    scenarios: 4,
    policies: true,
};

fn solve(seed: u64, size: Size, backend: Backend, method: Method) -> (f64, f64, Vec<String>) {
    let input = instance(seed, size);
    let cfg = PlannerConfig {
        backend,
        method,
        integer_gpus: Some(false),
        ..PlannerConfig::default()
    };
    let opt = optimise(&input, &cfg)
        .unwrap()
        .unwrap_or_else(|i| panic!("{backend} {method:?} infeasible: {i:?}"));
    let ev = evaluate(&input, &opt.commitments);
    (
        opt.objective_usd,
        ev.expected_cost_usd,
        ev.violations.iter().map(|v| v.detail.clone()).collect(),
    )
}

#[test]
fn every_backend_and_method_agree_and_policies_hold() {
    for seed in 0..3 {
        let mut seen: Vec<(String, f64)> = Vec::new();
        for backend in Backend::ALL {
            for method in [Method::Extensive, Method::Benders] {
                let (obj, cost, violations) = solve(seed, SMALL, backend, method);
                assert!(
                    violations.is_empty(),
                    "seed {seed} {backend} {method:?}: {violations:?}"
                );
                // The evaluator's integer arithmetic on the rounded plan agrees with the LP's objective.
                assert!(
                    (obj - cost).abs() <= 2e-3 * cost,
                    "seed {seed} {backend} {method:?}: solver {obj} evaluator {cost}"
                );
                seen.push((format!("{backend}/{method:?}"), obj));
            }
        }
        let best = seen.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
        for (name, cost) in &seen {
            assert!(
                *cost <= best * (1.0 + 2e-4),
                "seed {seed}: {name} {cost} vs best {best}"
            );
        }
    }
}

/// Integer blocks and minimum sizes (a MILP) on every backend and method: the same optimum.
#[test]
fn milp_blocks_and_minimums_agree_on_every_backend_and_method() {
    let text = "schema: hedge.plan/v1
horizon: {start: 2027-01, periods: 4, period_hours: 730}
accelerators: [H100]
demand:
  - {scenario: base, probability: 0.6, gpus: {H100: [37, 45, 52, 61]}}
  - {scenario: high, probability: 0.4, gpus: {H100: [50, 66, 81, 97]}}
providers:
  - name: aws
    on_demand: {H100: 6.0}
    commitments:
      - {accelerator: H100, term_periods: 4, rate: 3.9, block_gpus: 8}
  - name: lambda
    on_demand: {H100: 5.5}
    capacity: {H100: 40}
    commitments:
      - {accelerator: H100, term_periods: 2, rate: 3.2, block_gpus: 8, min_gpus: 24}
policies:
  min_providers: 2
";
    let input = hedge_planner::parse_plan_yaml(text).unwrap();
    let mut costs = Vec::new();
    for backend in Backend::ALL {
        for method in [Method::Extensive, Method::Benders] {
            let cfg = PlannerConfig {
                backend,
                method,
                gap: 1e-6,
                ..PlannerConfig::default()
            };
            let opt = optimise(&input, &cfg).unwrap().unwrap();
            let ev = evaluate(&input, &opt.commitments);
            assert!(
                ev.violations.is_empty(),
                "{backend} {method:?}: {:?}",
                ev.violations
            );
            for c in &opt.commitments {
                assert_eq!(c.gpus % 8, 0, "{backend} {method:?}: {c:?}");
                assert!(
                    c.provider == 0 || c.gpus >= 24,
                    "{backend} {method:?}: {c:?}"
                );
            }
            assert!(
                (opt.objective_usd - ev.expected_cost_usd).abs()
                    <= 1e-6 * ev.expected_cost_usd + 1.0,
                "{backend} {method:?}: solver {} evaluator {}",
                opt.objective_usd,
                ev.expected_cost_usd
            );
            costs.push((format!("{backend}/{method:?}"), ev.expected_cost_usd));
        }
    }
    let best = costs.iter().map(|c| c.1).fold(f64::INFINITY, f64::min);
    for (name, c) in &costs {
        assert!(
            *c <= best * (1.0 + 1e-6) + 1.0,
            "{name}: {c} vs {best}: {costs:?}"
        );
    }
}

#[test]
fn relaxed_large_ish_model_agrees_between_methods() {
    let size = Size {
        providers: 4,
        accelerators: 3,
        terms: 3,
        start_periods: 12,
        periods: 24,
        scenarios: 12,
        policies: true,
    };
    let input = instance(11, size);
    let mut costs = Vec::new();
    for method in [Method::Extensive, Method::Benders] {
        let cfg = PlannerConfig {
            method,
            integer_gpus: Some(false),
            ..PlannerConfig::default()
        };
        let opt = optimise(&input, &cfg).unwrap().unwrap();
        let ev = evaluate(&input, &opt.commitments);
        assert!(ev.violations.is_empty(), "{method:?}: {:?}", ev.violations);
        costs.push(opt.objective_usd);
    }
    assert!((costs[0] - costs[1]).abs() <= 2e-4 * costs[0], "{costs:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]
    #[test]
    fn plan_never_costs_more_than_on_demand_nor_exceeds_capacity(seed in 0u64..10_000) {
        let mut input = instance(seed, Size { policies: false, ..SMALL });
        input.policies = Default::default();
        let opt = optimise(&input, &PlannerConfig { integer_gpus: Some(true), ..PlannerConfig::default() }).unwrap().unwrap();
        let plan = evaluate(&input, &opt.commitments);
        let od = evaluate(&input, &[]);
        prop_assert!(plan.expected_cost_usd <= od.expected_cost_usd * (1.0 + 1e-4) + 1.0);
        prop_assert!(plan.violations.iter().all(|v| v.policy != "capacity"), "{:?}", plan.violations);
    }
}

/// The CVaR term trades expected cost for tail cost: with weight, the tail is no worse and the mean no
/// better than without.
#[test]
fn cvar_weight_lowers_the_tail() {
    let mut input = instance(
        3,
        Size {
            providers: 2,
            accelerators: 1,
            terms: 2,
            start_periods: 4,
            periods: 8,
            scenarios: 6,
            policies: false,
        },
    );
    let base = optimise(&input, &PlannerConfig::default())
        .unwrap()
        .unwrap();
    input.risk = Some(hedge_planner::input::Risk {
        cvar_alpha: 0.8,
        weight: 5.0,
    });
    let risky = optimise(&input, &PlannerConfig::default())
        .unwrap()
        .unwrap();
    let (e0, e1) = (
        evaluate(&input, &base.commitments),
        evaluate(&input, &risky.commitments),
    );
    let (c0, c1) = (e0.cvar_usd.unwrap(), e1.cvar_usd.unwrap());
    assert!(c1 <= c0 * (1.0 + 1e-3), "CVaR {c1} > {c0}");
    assert!(
        e1.expected_cost_usd >= e0.expected_cost_usd * (1.0 - 1e-3),
        "mean {} < {}",
        e1.expected_cost_usd,
        e0.expected_cost_usd
    );
}

/// Every market capped and unmet demand forbidden: the Benders master needs its feasibility rows, and
/// both methods still agree; an over-tight policy is reported infeasible by both.
#[test]
fn capped_markets_and_infeasibility_agree_between_methods() {
    let mut input = instance(5, SMALL);
    for a in 0..input.accelerators.len() {
        let peak = input
            .scenarios
            .iter()
            .flat_map(|s| s.demand[a].iter())
            .map(|d| d.gpus_f64())
            .fold(0.0, f64::max);
        input.providers[0].capacity[a] = Some((peak * 0.5).ceil() as u64);
        input.providers[1].capacity[a] = Some((peak * 0.6).ceil() as u64);
    }
    let mut costs = Vec::new();
    for method in [Method::Extensive, Method::Benders] {
        let cfg = PlannerConfig {
            method,
            integer_gpus: Some(false),
            ..PlannerConfig::default()
        };
        let opt = optimise(&input, &cfg)
            .unwrap()
            .unwrap_or_else(|i| panic!("{method:?}: {i:?}"));
        costs.push(opt.objective_usd);
        let ev = evaluate(&input, &opt.commitments);
        assert!(
            ev.violations.iter().all(|v| v.policy != "unmet_demand"),
            "{method:?}: {:?}",
            ev.violations
        );
    }
    assert!((costs[0] - costs[1]).abs() <= 2e-4 * costs[0], "{costs:?}");

    input.policies.keep_fraction = Some(1.0);
    input.policies.survive_loss_of = 2;
    for method in [Method::Extensive, Method::Benders] {
        let cfg = PlannerConfig {
            method,
            ..PlannerConfig::default()
        };
        let r = optimise(&input, &cfg)
            .unwrap()
            .expect_err("losing 2 of 3 providers cannot leave all demand committed");
        assert!(
            r.conflicts
                .iter()
                .any(|c| c.family == "survive_loss_of/keep_fraction"),
            "{method:?}: {r:?}"
        );
    }
}

//! Fuzz the `hedge.plan/v1` parser: any input gives a validated plan or an error naming a field, never a
//! panic; a parsed plan upholds its invariants and the evaluator can cost it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match hedge_planner::parse_plan_yaml(text) {
        Err(hedge_planner::PlanError::Invalid { field, .. }) => assert!(!field.is_empty()),
        Err(e) => panic!("a parse error must be Invalid with a field: {e}"),
        Ok(plan) => {
            let total: f64 = plan.scenarios.iter().map(|s| s.probability).sum();
            assert!((total - 1.0).abs() <= 1e-6);
            for s in &plan.scenarios {
                assert_eq!(s.demand.len(), plan.accelerators.len());
                assert!(s.demand.iter().all(|d| d.len() == plan.horizon.periods));
            }
            if plan.horizon.periods * plan.scenarios.len() * plan.accelerators.len() <= 100_000 {
                let ev = hedge_planner::evaluate(&plan, &[]);
                assert!(ev.expected_cost_usd >= 0.0);
            }
        }
    }
});

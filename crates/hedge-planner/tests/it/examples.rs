//! Both shipped examples plan, meet every policy (checked by the independent evaluator), and beat every
//! baseline that meets the same policies.

use crate::example;
use hedge_planner::report::render_table;
use hedge_planner::{plan, PlanOutcome, PlannerConfig};

fn check_example(name: &str) -> hedge_planner::PlanReport {
    let input = example(name);
    let out = plan(&input, &PlannerConfig::default()).unwrap();
    let r = match out {
        PlanOutcome::Optimal(r) => r,
        PlanOutcome::Infeasible(i) => panic!("{name}: {}", hedge_planner::report::render_infeasible(&i)),
    };
    println!("{}", render_table(&r, &input));
    assert!(r.violations.is_empty(), "{name}: {:?}", r.violations);
    for b in &r.baselines {
        if b.breaks.is_empty() {
            assert!(
                r.expected_cost_usd <= b.expected_cost_usd * (1.0 + 1e-4),
                "{name}: plan {} costs more than compliant baseline {} {}",
                r.expected_cost_usd,
                b.name,
                b.expected_cost_usd
            );
        }
    }
    assert!(r.expected_cost_usd <= r.all_on_demand_cost_usd * (1.0 + 1e-4) || !r.baselines[0].breaks.is_empty());
    *r
}

#[test]
fn small_team_plans_within_policies() {
    let r = check_example("small-team.yaml");
    assert!(!r.commitments.is_empty());
    assert!(r.savings_rate > 0.0);
}

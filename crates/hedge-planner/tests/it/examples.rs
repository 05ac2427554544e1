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
        PlanOutcome::Infeasible(i) => {
            panic!("{name}: {}", hedge_planner::report::render_infeasible(&i))
        }
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
    assert!(
        r.expected_cost_usd <= r.all_on_demand_cost_usd * (1.0 + 1e-4)
            || !r.baselines[0].breaks.is_empty()
    );
    *r
}

#[test]
fn small_team_plans_within_policies() {
    let r = check_example("small-team.yaml");
    assert!(!r.commitments.is_empty());
    assert!(r.savings_rate > 0.0);
}

/// The frontier lab lands at the seed's scale: hundreds of billions with Oracle and Microsoft, tens with AWS.
#[test]
fn frontier_lab_plans_at_the_seeds_scale() {
    let r = check_example("frontier-lab.yaml");
    let spend = |p: &str| -> f64 {
        r.holdings
            .iter()
            .filter(|h| h.provider == p)
            .map(|h| h.spend_usd)
            .sum()
    };
    let (azure, oci, aws) = (spend("azure"), spend("oci"), spend("aws"));
    println!("azure {azure:.3e} oci {oci:.3e} aws {aws:.3e}");
    assert!((150e9..400e9).contains(&azure), "azure {azure:.3e}");
    assert!((200e9..450e9).contains(&oci), "oci {oci:.3e}");
    assert!((15e9..80e9).contains(&aws), "aws {aws:.3e}");
}

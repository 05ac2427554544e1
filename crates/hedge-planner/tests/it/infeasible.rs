//! Infeasible is a report: which families give way, by how much, and which single policy to drop.

use hedge_planner::report::render_infeasible;
use hedge_planner::{parse_plan_yaml, plan, PlanOutcome, PlannerConfig};

const BASE: &str = "schema: hedge.plan/v1
horizon: {start: 2027-01, periods: 3, period_hours: 730}
accelerators: [H100, L40S]
demand:
  - {scenario: base, probability: 1, gpus: {H100: [100, 100, 100], L40S: [20, 20, 20]}}
providers:
  - name: aws
    on_demand: {H100: 6.0, L40S: 2.0}
    commitments:
      - {accelerator: H100, term_periods: 3, rate: 4.0}
      - {accelerator: L40S, term_periods: 3, rate: 1.5}
  - name: gcp
    on_demand: {H100: 6.5}
    capacity: {H100: 50}
    commitments:
      - {accelerator: H100, term_periods: 3, rate: 4.1}
";

fn infeasible(text: &str) -> hedge_planner::InfeasibilityReport {
    let input = parse_plan_yaml(text).unwrap();
    match plan(&input, &PlannerConfig::default()).unwrap() {
        PlanOutcome::Infeasible(r) => r,
        PlanOutcome::Optimal(_) => panic!("expected infeasible"),
    }
}

#[test]
fn only_one_provider_offers_an_accelerator_so_losing_it_breaks_resilience() {
    let r = infeasible(&format!(
        "{BASE}policies: {{survive_loss_of: 1, keep_fraction: 0.5}}\n"
    ));
    let text = render_infeasible(&r);
    expect_test::expect![[r#"
        INFEASIBLE: no portfolio meets every policy and capacity.
        Least total violation, by constraint family:
        family                         rows  total short  worst                                                  worst row
        survive_loss_of/keep_fraction     3         30.0   10.0  without aws in 2027-01: L40S commitments ≥ 50% of 20 GPUs
        Dropping any one of these makes it feasible: survive_loss_of/keep_fraction
    "#]]
    .assert_eq(&text);
}

#[test]
fn capacity_conflicts_with_forbidden_unmet_demand() {
    // gcp is the only provider; its capacity is below demand.
    let text = BASE.replace("  - name: aws\n    on_demand: {H100: 6.0, L40S: 2.0}\n    commitments:\n      - {accelerator: H100, term_periods: 3, rate: 4.0}\n      - {accelerator: L40S, term_periods: 3, rate: 1.5}\n", "")
        .replace("accelerators: [H100, L40S]", "accelerators: [H100]")
        .replace(", L40S: [20, 20, 20]", "");
    let r = infeasible(&text);
    // The least violation is 50 GPUs in each of 3 periods, taken from the capacity or from the demand.
    let families: Vec<&str> = r.conflicts.iter().map(|c| c.family.as_str()).collect();
    for f in &families {
        assert!(
            [
                "provider capacity",
                "demand must be met (unmet_demand: forbid)"
            ]
            .contains(f),
            "{r:?}"
        );
    }
    let total: f64 = r.conflicts.iter().map(|c| c.total).sum();
    assert!((total - 150.0).abs() < 1e-6, "{r:?}");
    assert!(
        r.dropping_any_restores.is_empty(),
        "no policy is set: {r:?}"
    );
}

#[test]
fn a_share_cap_below_one_over_providers_conflicts_with_resilience() {
    let r = infeasible(&format!(
        "{BASE}policies: {{max_share: {{of: committed_gpus, value: 0.3}}, keep_fraction: 0.5}}\n"
    ));
    let families: Vec<&str> = r.conflicts.iter().map(|c| c.family.as_str()).collect();
    assert!(
        families.contains(&"max_share") || families.contains(&"survive_loss_of/keep_fraction"),
        "{families:?}"
    );
    assert!(
        r.dropping_any_restores.contains(&"max_share".to_owned()),
        "{r:?}"
    );
    assert!(
        r.dropping_any_restores
            .contains(&"survive_loss_of/keep_fraction".to_owned()),
        "{r:?}"
    );
}

//! Snapshot tests of the reports, on a small fixture whose optimum is easy to check by hand.

use hedge_planner::report::{render_break_even, render_sweep, render_table};
use hedge_planner::{
    break_even, parse_plan_yaml, plan, sweep, PlanOutcome, PlannerConfig, SweepParam,
};

/// Two providers, three periods, two scenarios. aws's term (4.0 vs 6.0 on demand) pays for demand that
/// occurs with probability > 1/3 per cell.
const FIXTURE: &str = "schema: hedge.plan/v1
horizon: {start: 2027-01, periods: 3, period_hours: 730}
accelerators: [H100]
demand:
  - {scenario: base, probability: 0.7, gpus: {H100: [100, 120, 140]}}
  - {scenario: high, probability: 0.3, gpus: {H100: [150, 180, 210]}}
providers:
  - name: aws
    on_demand: {H100: 6.0}
    commitments:
      - {accelerator: H100, term_periods: 3, rate: 4.0}
      - {accelerator: H100, term_periods: 1, rate: 4.8}
  - name: gcp
    on_demand: {H100: 6.5}
    spot: {H100: 3.0}
    spot_availability: {H100: 0.1}
    capacity: {H100: 100}
    commitments:
      - {accelerator: H100, term_periods: 3, rate: 4.2, block_gpus: 8}
policies:
  max_share: {of: committed_gpus, value: 0.8}
";

fn check(actual: &str, expect: expect_test::Expect) {
    expect.assert_eq(actual);
}

#[test]
fn table_report() {
    let input = parse_plan_yaml(FIXTURE).unwrap();
    let PlanOutcome::Optimal(r) = plan(&input, &PlannerConfig::default()).unwrap() else {
        panic!("infeasible")
    };
    check(
        &render_table(&r, &input),
        expect_test::expect![[r#"
        Hedge plan: 3 periods of 730 h from 2027-01 (cbc solver, Extensive method, 1 iteration)
        expected cost $1,284,216   CVaR95 $1,793,172
        all on-demand $1,722,654   savings 25.5%
        coverage 80.7%   utilization 100.0%   waste 0 GPU-hours

        New commitments
        provider  accelerator  term    start  gpus  $/GPU-h
        aws              H100     3  2027-01    68     4.00
        aws              H100     1  2027-02     8     4.80
        aws              H100     1  2027-03    26     4.80
        gcp              H100     3  2027-01    32     4.20

        Holdings (signed and new)
        provider  accelerator  avg GPUs     spend  GPU share  spend share
        aws              H100        79  $714,816      71.3%        70.8%
        gcp              H100        32  $294,336      28.7%        29.2%

        Cost per scenario
        scenario  prob       total  commitments  on-demand      spot  unmet GPU-h
        base      0.70  $1,066,092   $1,009,152         $0   $56,940            0
        high      0.30  $1,793,172   $1,009,152   $665,760  $118,260            0

        Prices
        provider  accelerator               market  $/GPU-h                                        source
        aws              H100            on_demand   6.0000       plan file (providers[0].on_demand.H100)
        aws              H100  committed 3 periods   4.0000  plan file (providers[0].commitments[0].rate)
        aws              H100  committed 1 periods   4.8000  plan file (providers[0].commitments[1].rate)
        gcp              H100            on_demand   6.5000       plan file (providers[1].on_demand.H100)
        gcp              H100                 spot   3.0000            plan file (providers[1].spot.H100)
        gcp              H100  committed 3 periods   4.2000  plan file (providers[1].commitments[0].rate)

        Policies
        policy      status    costs
        max_share  binding  $14,016

        Baselines
        plan                              expected cost  vs plan     breaks
        this plan                            $1,284,216    1.000          -
        all on-demand                        $1,722,654    1.341          -
        best single provider (aws)           $1,270,200    0.989  max_share
        equal split                          $1,350,354    1.052          -
        lookback recommender (3 periods)     $1,291,005    1.005  max_share
    "#]],
    );
    let json = serde_json::to_value(&*r).unwrap();
    assert!(json["expected_cost_usd"].as_f64().unwrap() > 0.0);
    assert_eq!(json["horizon"]["start"], "2027-01");
    for k in [
        "provider",
        "accelerator",
        "term_periods",
        "start_period",
        "gpus",
        "rate",
    ] {
        assert!(
            json["commitments"][0].get(k).is_some(),
            "commitments[0].{k} missing"
        );
    }
}

#[test]
fn sweep_and_break_even_reports() {
    let input = parse_plan_yaml(FIXTURE).unwrap();
    let cfg = PlannerConfig::default();
    let values = SweepParam::parse_spec("max_share=0.5:1:0.25").unwrap().1;
    let points = sweep(&input, &cfg, SweepParam::MaxShare, &values).unwrap();
    check(
        &render_sweep(SweepParam::MaxShare, &points),
        expect_test::expect![[r#"
        Frontier: expected cost against max_share
        max_share  expected cost        CVaR  avg committed GPUs
        0.50          $1,314,876  $1,780,908                 112
        0.75          $1,284,216  $1,793,172                 111
        1.00          $1,270,200  $1,779,156                 111
    "#]],
    );
    let be = break_even(&input, &cfg).unwrap();
    check(
        &render_break_even(&be),
        expect_test::expect![[r#"
        Break-even rates ($/GPU-hour): the price to ask for in a negotiation
        provider  accelerator  term  rate  GPU-periods  enters below  grows below  leaves above
        aws              H100     3  4.00          204             -         3.88          4.77
        aws              H100     1  4.80           34             -         4.02          5.95
        gcp              H100     3  4.20           96             -         3.97        forced
    "#]],
    );
}

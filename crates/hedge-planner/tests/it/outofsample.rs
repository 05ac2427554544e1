//! Out-of-sample evaluation (issue 11, item 4) on an instance small enough to work out by hand.

use hedge_planner::outofsample::{out_of_sample, out_of_sample_sampled, Generator};
use hedge_planner::{optimise, parse_plan_yaml, Backend, PlannerConfig};

/// One period of 100 hours, one provider: on demand $10/GPU-h, a one-period term at $6/GPU-h. Demand is
/// 10 or 30 GPUs, each with probability 1/2 (mean 20).
///
/// By hand (costs in dollars, ×100 hours):
/// - the stochastic plan is the newsvendor quantile at 1 − 6/10 = 0.4: commit 10. Low: 10·6 = 6,000;
///   high: 6,000 + 20·10 = 26,000. Mean (RP) 16,000.
/// - the expected-value plan commits the mean, 20. Low: 12,000; high: 12,000 + 10·10 = 22,000. EEV 17,000.
/// - hindsight commits the path's demand: low 6,000, high 18,000. WS 12,000.
/// - VSS = EEV − RP = 1,000; EVPI = RP − WS = 4,000; regret is 0 on low and 8,000 on high.
/// - the lookback recommender's only decision sees the forecast's mean, 20: it costs what the EV plan does.
/// - all on demand: 10,000 and 30,000, mean 20,000.
const HAND: &str = "schema: hedge.plan/v1
horizon: {start: 2027-01, periods: 1, period_hours: 100}
accelerators: [H100]
demand:
  - {scenario: low, probability: 0.5, gpus: {H100: [10]}}
  - {scenario: high, probability: 0.5, gpus: {H100: [30]}}
providers:
  - name: a
    on_demand: {H100: 10}
    commitments:
      - {accelerator: H100, term_periods: 1, rate: 6}
";

#[test]
fn vss_and_evpi_match_the_hand_worked_figures() {
    let input = parse_plan_yaml(HAND).unwrap();
    for backend in Backend::ALL {
        let cfg = PlannerConfig {
            backend,
            ..PlannerConfig::default()
        };
        let plan = optimise(&input, &cfg).unwrap().unwrap().commitments;
        assert_eq!(plan.iter().map(|c| c.gpus).sum::<u32>(), 10, "{backend}");
        // The paths are the two scenarios themselves, once each.
        let r = out_of_sample(&input, &cfg, &plan, &input.scenarios).unwrap();
        let mean = |name: &str| {
            r.plans
                .iter()
                .find(|p| p.name.starts_with(name))
                .unwrap_or_else(|| panic!("{name}"))
                .cost_usd
                .mean
        };
        assert_eq!(mean("this plan"), 16_000.0, "{backend}");
        assert_eq!(mean("expected-value plan"), 17_000.0, "{backend}");
        assert_eq!(mean("lookback recommender"), 17_000.0, "{backend}");
        assert_eq!(mean("all on-demand"), 20_000.0, "{backend}");
        assert_eq!(mean("hindsight optimum"), 12_000.0, "{backend}");
        assert_eq!(r.vss_usd, 1_000.0, "{backend}");
        assert_eq!(r.evpi_usd, 4_000.0, "{backend}");
        assert_eq!(
            (
                r.regret_usd.p50,
                r.regret_usd.p90,
                r.regret_usd.max,
                r.regret_usd.mean
            ),
            (0.0, 8_000.0, 8_000.0, 4_000.0),
            "{backend}"
        );
        assert_eq!(r.hindsight_infeasible, 0);
    }
}

/// Sampled paths: with no switching and no noise every path is `low` or `high`, so with `n_low` of `N`
/// paths low, VSS = (6,000·n_low − 4,000·n_high)/N and EVPI = 8,000·n_high/N (from the per-path figures
/// above).
#[test]
fn sampled_vss_and_evpi_follow_the_path_mix() {
    let input = parse_plan_yaml(HAND).unwrap();
    let cfg = PlannerConfig::default();
    let plan = optimise(&input, &cfg).unwrap().unwrap().commitments;
    let n = 40;
    let r = out_of_sample_sampled(
        &input,
        &cfg,
        &plan,
        Generator {
            switch: 0.0,
            noise: 0.0,
        },
        n,
        3,
    )
    .unwrap();
    let hind = &r
        .plans
        .iter()
        .find(|p| p.name == "hindsight optimum")
        .unwrap()
        .per_path_usd;
    let n_low = hind.iter().filter(|&&h| h == 6_000.0).count() as f64;
    let n_high = hind.iter().filter(|&&h| h == 18_000.0).count() as f64;
    assert_eq!(n_low + n_high, n as f64);
    assert!(
        n_low > 0.0 && n_high > 0.0,
        "the seed should draw both: {n_low} {n_high}"
    );
    let nf = n as f64;
    assert!(
        (r.vss_usd - (6_000.0 * n_low - 4_000.0 * n_high) / nf).abs() < 1e-6,
        "{}",
        r.vss_usd
    );
    assert!(
        (r.evpi_usd - 8_000.0 * n_high / nf).abs() < 1e-6,
        "{}",
        r.evpi_usd
    );
    assert_eq!(r.seed, Some(3));
}

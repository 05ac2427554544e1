//! Prices from the catalog (issue 11, item 2), on the catalog shipped with hedge (`data/catalog.json`).

use hedge_planner::report::render_table;
use hedge_planner::{
    parse_plan_yaml, parse_plan_yaml_with, plan, CatalogSource, PlanOutcome, PlannerConfig,
};

fn with_default(text: &str) -> Result<hedge_planner::PlanningInput, hedge_planner::PlanError> {
    let loaded = hedge_catalog::default_catalog().unwrap();
    parse_plan_yaml_with(
        text,
        Some(CatalogSource {
            catalog: &loaded.catalog,
            label: "default",
        }),
    )
}

const HEAD: &str = "schema: hedge.plan/v1
horizon: {start: 2027-01, periods: 24, period_hours: 730}
accelerators: [H100, L40S]
demand:
  - {scenario: base, probability: 1, gpus: {H100: [40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40], L40S: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]}}
providers:
";

/// aws in us-east-1 from the catalog: on demand $6.88/GPU-h (p5.4xlarge; p5.48xlarge is $55.04 for 8),
/// 12- and 36-month terms at $4.472 and $2.752 (data/extras.yaml's 35% and 60% discounts), spot the
/// cheapest zone's ($10.2397 for 8 GPUs) because the file states a spot availability. The file's
/// negotiated 12-month rate ($4.10) overrides the catalog's; the report names every price's source.
#[test]
fn catalog_fills_prices_and_file_rates_override() {
    let text = format!(
        "{HEAD}  - name: aws
    prices_from: {{region: us-east-1}}
    spot_availability: {{H100: 0.2}}
    commitments:
      - {{accelerator: H100, term_periods: 12, rate: 4.10}}
"
    );
    let input = with_default(&text).unwrap();
    let p = &input.providers[0];
    let usd = |r: Option<hedge_core::Rate>| r.map(|r| r.to_usd_per_hour_f64());
    assert_eq!(usd(p.on_demand[0]), Some(6.88));
    assert_eq!(
        usd(p.spot[0]),
        Some(1.279963),
        "10.2397 / 8, rounded to the micro-dollar"
    );
    assert_eq!(p.spot_availability[0], 0.2);
    assert_eq!(
        (p.on_demand[1], p.spot[1]),
        (None, None),
        "the catalog has no aws L40S in us-east-1"
    );
    let terms: Vec<(usize, f64)> = p
        .options
        .iter()
        .map(|o| (o.term_periods, o.rate.to_usd_per_hour_f64()))
        .collect();
    assert_eq!(terms, vec![(12, 4.10), (36, 2.752)]);
    let src: Vec<(String, String)> = input
        .price_sources
        .iter()
        .map(|s| (s.market.clone(), s.source.clone()))
        .collect();
    assert_eq!(
        src,
        vec![
            (
                "on_demand".into(),
                "catalog default: aws us-east-1 p5.48xlarge".into()
            ),
            (
                "spot".into(),
                "catalog default: aws us-east-1 p5.48xlarge".into()
            ),
            (
                "committed 12 periods".into(),
                "plan file (providers[0].commitments[0].rate; overrides the catalog's 4.47)".into()
            ),
            (
                "committed 36 periods".into(),
                "catalog default: aws us-east-1 p5.48xlarge (36-month term)".into()
            ),
        ]
    );
    // The plan uses them, and the report lists them.
    let PlanOutcome::Optimal(r) = plan(
        &input,
        &PlannerConfig {
            baselines: false,
            price_policies: false,
            ..PlannerConfig::default()
        },
    )
    .unwrap() else {
        panic!("infeasible")
    };
    assert_eq!(r.prices, input.price_sources);
    let table = render_table(&r, &input);
    assert!(
        table.contains("Prices")
            && table.contains("catalog default: aws us-east-1 p5.48xlarge (36-month term)"),
        "{table}"
    );
    // 24 periods at the negotiated $4.10 ($98.40/GPU) beat 36 at the catalog's $2.752 ($99.07/GPU).
    assert!(
        !r.commitments.is_empty()
            && r.commitments
                .iter()
                .all(|c| c.term_periods == 12 && c.rate == 4.10),
        "{:?}",
        r.commitments
    );
}

#[test]
fn prices_from_errors_name_the_field() {
    let provider = |extra: &str| {
        format!("{HEAD}  - name: gcp\n    on_demand: {{H100: 7, L40S: 2}}\n  - name: aws\n    prices_from: {extra}\n")
    };
    let cases = [
        (provider("{region: us-east-1, accelerators: [L40S]}"), "providers[1].prices_from: no L40S offer for aws in us-east-1"),
        (provider("{region: mars-1}"), "providers[1].prices_from.region: the catalog (default) has no offers for aws in mars-1"),
        (provider("{provider: nosuchcloud}"), "providers[1].prices_from: the catalog (default) has no offers for nosuchcloud"),
        (provider("{region: us-east-1, accelerators: [B200]}"), "providers[1].prices_from.accelerators[0]: B200 is not listed in `accelerators`"),
        (provider("{region: us-east-1, colour: red}"), "providers[1].prices_from.colour: unknown field `colour`"),
    ];
    for (text, want) in cases {
        let got = with_default(&text).unwrap_err().to_string();
        assert!(got.starts_with(want), "want {want:?}, got {got:?}");
    }
    // Without a catalog the parser says so (the library never loads one itself).
    let got = parse_plan_yaml(&provider("{region: us-east-1}"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        got,
        "providers[1].prices_from: no catalog was given to take prices from"
    );
}

/// A plan file without `prices_from` names the file as the source of every price.
#[test]
fn file_prices_name_the_file() {
    let input = parse_plan_yaml(&format!("{HEAD}  - name: gcp\n    on_demand: {{H100: 7}}\n    commitments:\n      - {{accelerator: H100, term_periods: 12, rate: 5}}\n")).unwrap();
    let src: Vec<&str> = input
        .price_sources
        .iter()
        .map(|s| s.source.as_str())
        .collect();
    assert_eq!(
        src,
        vec![
            "plan file (providers[0].on_demand.H100)",
            "plan file (providers[0].commitments[0].rate)"
        ]
    );
}

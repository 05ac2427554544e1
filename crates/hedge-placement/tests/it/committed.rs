use crate::*;
use hedge_core::{Accelerator, Market, Money};
use hedge_placement::{MarketRank, OwnedCapacity};

fn owned(
    id: &str,
    provider: &str,
    region: Option<&str>,
    free: u32,
    marginal_usd: f64,
) -> OwnedCapacity {
    OwnedCapacity {
        commitment: id.into(),
        provider: provider.into(),
        accelerator: Accelerator::parse("H100").unwrap(),
        region: region.map(Into::into),
        free_gpus: free,
        marginal_per_gpu_hour: Rate::from_usd_per_hour_f64(marginal_usd).unwrap(),
    }
}

fn cat() -> Catalog {
    catalog(vec![
        offer("lambda", "gpu_8x_h100_sxm5", "H100:8", "us-east-1").od(23.92),
        offer("aws", "p5.48xlarge", "H100:8", "us-east-1/use1-az1")
            .od(98.32)
            .spot(20.0),
        offer("aws", "p5.48xlarge", "H100:8", "us-west-2/usw2-az1").od(98.32),
    ])
}

#[test]
fn idle_owned_capacity_wins_at_zero_marginal_cost() {
    let own = [owned("aws-ri-1", "aws", Some("us-west-2"), 16, 0.0)];
    let c = cat();
    let ctx = PlacementContext::new(&c).with_owned(&own);
    let p = place(&req("H100:8").task(), &ctx, &PlacementSettings::default());
    let ch = p.chosen.clone().unwrap();
    assert_eq!(ch.market, Market::Committed);
    assert_eq!(ch.commitment.as_ref().map(|c| c.as_str()), Some("aws-ri-1"));
    assert_eq!(
        ch.location.region().as_str(),
        "us-west-2",
        "the commitment is regional"
    );
    assert_eq!(ch.hourly_cost, Rate::ZERO);
    expect_test::expect![[r#"
        chosen: aws p5.48xlarge us-west-2/usw2-az1 committed 1xH100:8 alt0 $0.00/h [aws-ri-1]
          alt: lambda gpu_8x_h100_sxm5 us-east-1 on-demand 1xH100:8 alt0 $23.92/h
          alt: aws p5.48xlarge us-east-1/use1-az1 on-demand 1xH100:8 alt0 $98.32/h
    "#]]
    .assert_eq(&render(&p));

    // Two nodes need 16 GPUs: still fits. Three need 24: falls back to paid capacity.
    let mut t = req("H100:8").task();
    t.num_nodes = 2;
    assert_eq!(
        place(&t, &ctx, &PlacementSettings::default())
            .chosen
            .unwrap()
            .market,
        Market::Committed
    );
    t.num_nodes = 3;
    let ch = place(&t, &ctx, &PlacementSettings::default())
        .chosen
        .unwrap();
    assert_eq!(
        (ch.provider.as_str(), ch.market),
        ("lambda", Market::OnDemand)
    );
}

#[test]
fn owned_capacity_is_not_used_beyond_free_gpus_nor_for_other_accelerators() {
    let own = [owned("c1", "aws", None, 7, 0.0)];
    let c = cat();
    let ctx = PlacementContext::new(&c).with_owned(&own);
    let p = place(&req("H100:8").task(), &ctx, &PlacementSettings::default());
    assert_eq!(p.chosen.unwrap().market, Market::OnDemand);
    assert!(p.alternatives.iter().all(|a| a.market != Market::Committed));
    let p = place(&req("H100:1").task(), &ctx, &PlacementSettings::default());
    assert!(
        p.chosen.is_none(),
        "no H100:1 offer exists, owned capacity alone does not make one"
    );
}

#[test]
fn marginal_cost_competes_with_market_prices_unless_priority() {
    // Owned capacity with a marginal cost of $4/GPU-h = $32/h for 8: dearer than lambda's $23.92.
    let own = [owned("c1", "aws", None, 8, 4.0)];
    let c = cat();
    let ctx = PlacementContext::new(&c).with_owned(&own);
    let ch = place(&req("H100:8").task(), &ctx, &PlacementSettings::default())
        .chosen
        .unwrap();
    assert_eq!(ch.provider.as_str(), "lambda");
    let prio = PlacementSettings {
        market_rank: MarketRank::Priority,
        ..Default::default()
    };
    let ch = place(&req("H100:8").task(), &ctx, &prio).chosen.unwrap();
    assert_eq!(
        (ch.market, ch.hourly_cost.hourly()),
        (Market::Committed, Money::from_usd(32))
    );
}

#[test]
fn spot_tasks_use_owned_capacity_only_if_settings_allow() {
    let own = [owned("c1", "aws", None, 8, 0.0)];
    let c = cat();
    let ctx = PlacementContext::new(&c).with_owned(&own);
    let t = req("H100:8").spot().task();
    assert_eq!(
        place(&t, &ctx, &PlacementSettings::default())
            .chosen
            .unwrap()
            .market,
        Market::Committed
    );
    let strict = PlacementSettings {
        committed_serves_spot: false,
        ..Default::default()
    };
    assert_eq!(
        place(&t, &ctx, &strict).chosen.unwrap().market,
        Market::Spot
    );
}

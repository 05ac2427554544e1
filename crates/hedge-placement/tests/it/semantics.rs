use crate::*;
use expect_test::{expect, Expect};
use hedge_core::{Preference, TaskSpec};

fn fixture() -> Catalog {
    catalog(vec![
        offer("aws", "p5.48xlarge", "H100:8", "us-east-1/use1-az1")
            .od(98.32)
            .spot(40.0),
        offer("aws", "p5.48xlarge", "H100:8", "us-east-1/use1-az2")
            .od(98.32)
            .spot(35.5),
        offer("aws", "p5.48xlarge", "H100:8", "us-west-2/usw2-az1")
            .od(98.32)
            .spot(31.0),
        offer("aws", "p4d.24xlarge", "A100:8", "us-east-1/use1-az1")
            .od(32.77)
            .spot(12.0),
        offer("lambda", "gpu_8x_h100_sxm5", "H100:8", "us-east-1").od(23.92),
        offer("lambda", "gpu_1x_h100_pcie", "H100:1", "us-east-1").od(2.49),
        offer("oci", "BM.GPU.H100.8", "H100:8", "us-ashburn-1").od(80.0),
        offer("azure", "Standard_NC24ads_A100_v4", "A100-80GB:1", "eastus")
            .od(3.67)
            .spot(0.9),
        offer("gcp", "n2-standard-8", "", "us-central1/us-central1-a")
            .od(0.39)
            .spot(0.1)
            .shape(8, 32),
    ])
}

fn check(task: TaskSpec, expect: Expect) {
    expect.assert_eq(&render(&place_simple(&task, &fixture())));
}

#[test]
fn cheapest_on_demand() {
    check(
        req("H100:8").task(),
        expect![[r#"
            chosen: lambda gpu_8x_h100_sxm5 us-east-1 on-demand 1xH100:8 alt0 $23.92/h
              alt: oci BM.GPU.H100.8 us-ashburn-1 on-demand 1xH100:8 alt0 $80.00/h
              alt: aws p5.48xlarge us-east-1/use1-az1 on-demand 1xH100:8 alt0 $98.32/h
              rejected[0]: azure: no H100:8 offer
              rejected[0]: gcp: no H100:8 offer
        "#]],
    );
}

#[test]
fn spot_picks_cheapest_zone_and_rejects_providers_without_spot() {
    check(
        req("H100:8").spot().task(),
        expect![[r#"
            chosen: aws p5.48xlarge us-west-2/usw2-az1 spot 1xH100:8 alt0 $31.00/h
              rejected[0]: azure: no H100:8 offer
              rejected[0]: gcp: no H100:8 offer
              rejected[0]: lambda: no spot market
              rejected[0]: oci: no spot market
        "#]],
    );
}

#[test]
fn constraints_narrow_and_explain() {
    check(
        req("H100:8").cloud("aws").region("us-east-1").spot().task(),
        expect![[r#"
            chosen: aws p5.48xlarge us-east-1/use1-az2 spot 1xH100:8 alt0 $35.50/h
        "#]],
    );
    check(
        req("H100:8").region("eu-west-1").task(),
        expect![[r#"
            chosen: none
              rejected[0]: aws: no H100:8 offer in eu-west-1
              rejected[0]: azure: no H100:8 offer
              rejected[0]: gcp: no H100:8 offer
              rejected[0]: lambda: no H100:8 offer in eu-west-1
              rejected[0]: oci: no H100:8 offer in eu-west-1
        "#]],
    );
    check(
        req("H100:8").cloud("aws").instance("p5e.48xlarge").task(),
        expect![[r#"
            chosen: none
              rejected[0]: aws: no H100:8 offer of instance type p5e.48xlarge
        "#]],
    );
    check(
        req("H100:8").cloud("coreweave").task(),
        expect![[r#"
            chosen: none
              rejected[0]: coreweave: not in the catalog
        "#]],
    );
    check(
        req("H100:8").cloud("lambda").cpus_at_least(500).task(),
        expect![[r#"
            chosen: none
              rejected[0]: lambda: no H100:8 offer with the requested vCPUs and memory
        "#]],
    );
}

#[test]
fn num_nodes_multiplies_cost() {
    let mut t = req("H100:8").cloud("lambda").task();
    t.num_nodes = 4;
    check(
        t,
        expect![[r#"
            chosen: lambda gpu_8x_h100_sxm5 us-east-1 on-demand 4xH100:8 alt0 $95.68/h
        "#]],
    );
}

#[test]
fn ordered_takes_first_feasible_alternative_cheapest_takes_cheapest() {
    let alts = vec![req("B200:8"), req("A100:8"), req("H100:8")];
    let ordered = TaskSpec {
        resources: alts.clone(),
        preference: Preference::Ordered,
        ..req("").task()
    };
    check(
        ordered,
        expect![[r#"
            chosen: aws p4d.24xlarge us-east-1/use1-az1 on-demand 1xA100:8 alt1 $32.77/h
              alt: lambda gpu_8x_h100_sxm5 us-east-1 on-demand 1xH100:8 alt2 $23.92/h
              alt: oci BM.GPU.H100.8 us-ashburn-1 on-demand 1xH100:8 alt2 $80.00/h
              rejected[0]: aws: no B200:8 offer
              rejected[0]: azure: no B200:8 offer
              rejected[0]: gcp: no B200:8 offer
              rejected[0]: lambda: no B200:8 offer
              rejected[0]: oci: no B200:8 offer
              rejected[1]: azure: no A100:8 offer
              rejected[1]: gcp: no A100:8 offer
              rejected[1]: lambda: no A100:8 offer
              rejected[1]: oci: no A100:8 offer
              rejected[2]: azure: no H100:8 offer
              rejected[2]: gcp: no H100:8 offer
        "#]],
    );
    let any = TaskSpec {
        resources: alts,
        preference: Preference::Cheapest,
        ..req("").task()
    };
    let p = place_simple(&any, &fixture());
    let c = p.chosen.unwrap();
    assert_eq!((c.provider.as_str(), c.alternative), ("lambda", 2));
}

#[test]
fn spot_allowed_takes_the_cheaper_market() {
    let p = place_simple(&req("A100:8").spot_allowed().task(), &fixture());
    let c = p.chosen.unwrap();
    assert_eq!(
        (c.market, c.hourly_cost.to_string()),
        (hedge_core::Market::Spot, "$12.00/h".to_owned())
    );
    assert_eq!(p.alternatives[0].market, hedge_core::Market::OnDemand);
}

#[test]
fn cpu_only_task_and_allow_list() {
    check(
        req("").cpus_at_least(8).task(),
        expect![[r#"
            chosen: gcp n2-standard-8 us-central1/us-central1-a on-demand 1xcpu alt0 $0.39/h
              alt: lambda gpu_1x_h100_pcie us-east-1 on-demand 1xH100:1 alt0 $2.49/h
              alt: azure Standard_NC24ads_A100_v4 eastus on-demand 1xA100-80GB:1 alt0 $3.67/h
              alt: aws p4d.24xlarge us-east-1/use1-az1 on-demand 1xA100:8 alt0 $32.77/h
              alt: oci BM.GPU.H100.8 us-ashburn-1 on-demand 1xH100:8 alt0 $80.00/h
        "#]],
    );
    let settings = PlacementSettings {
        allowed_providers: Some(vec!["aws".into()]),
        ..Default::default()
    };
    let p = place(
        &req("H100:8").task(),
        &PlacementContext::new(&fixture()),
        &settings,
    );
    expect![[r#"
        chosen: aws p5.48xlarge us-east-1/use1-az1 on-demand 1xH100:8 alt0 $98.32/h
          rejected[0]: azure: not allowed by policy
          rejected[0]: gcp: not allowed by policy
          rejected[0]: lambda: not allowed by policy
          rejected[0]: oci: not allowed by policy
    "#]]
    .assert_eq(&render(&p));
}

#[test]
fn ties_break_by_provider_region_zone_instance() {
    let cat = catalog(vec![
        offer("b", "y", "L4:1", "r2/z1").od(1.0),
        offer("b", "x", "L4:1", "r1/z2").od(1.0),
        offer("a", "z", "L4:1", "r9").od(1.0),
        offer("b", "x", "L4:1", "r1/z1").od(1.0),
        offer("b", "w", "L4:1", "r1").od(1.0),
    ]);
    let p = place_simple(&req("L4:1").task(), &cat);
    assert_eq!(p.chosen.unwrap().provider.as_str(), "a");
    let p = place_simple(&req("L4:1").cloud("b").task(), &cat);
    let c = p.chosen.unwrap();
    assert_eq!(
        (c.instance_type.as_str(), c.location.to_string()),
        ("w", "r1".to_owned())
    );
    // Reversing the catalog order changes nothing.
    let mut offers = cat.into_parts().0;
    offers.reverse();
    let p2 = place_simple(&req("L4:1").cloud("b").task(), &catalog(offers));
    assert_eq!(p2.chosen.unwrap().location.to_string(), "r1");
}

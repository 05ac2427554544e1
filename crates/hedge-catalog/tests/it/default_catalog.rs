//! The curated default catalog shipped in `data/catalog.json`.

use crate::repo;
use hedge_catalog::{curate, default_catalog, Overrides, SkyPilotDir};
use hedge_core::{Accelerator, ProviderId};

#[test]
fn loads_cleanly_with_extras() {
    let d = default_catalog().unwrap();
    assert!(d.diagnostics.is_empty(), "{:#?}", d.diagnostics);
    let c = &d.catalog;
    assert_eq!(c.len(), 671);
    assert_eq!(c.providers().len(), 6);
    let aws = &c.providers()[&ProviderId::parse("aws")];
    assert!(aws.egress_per_gb.is_some() && aws.reliability.is_some());
    assert!(!c.capacities().is_empty());
    assert!(!d.meta.sources.is_empty());
    // Committed prices exist and sit below on-demand per GPU-hour wherever both are known.
    let mut with_committed = 0;
    for o in c.offers() {
        let (Some(acc), Some(od)) = (&o.accelerator, o.prices.on_demand) else {
            continue;
        };
        for cp in &o.prices.committed {
            with_committed += 1;
            if !["lambda"].contains(&o.provider.as_str()) {
                assert!(cp.per_gpu_hour < od.per_unit(acc.count), "{o:?}");
            }
        }
    }
    assert!(with_committed > 300, "{with_committed}");
    // Azure's ND96isr H100 v5 carries the corrected count.
    let h100 = Accelerator::parse("H100").unwrap();
    assert!(c
        .with_accelerator(&h100)
        .iter()
        .map(|&i| c.offer(i))
        .filter(|o| o.instance_type == "Standard_ND96isr_H100_v5")
        .all(|o| o.accelerator.as_ref().unwrap().count == 8));
}

#[test]
fn default_catalog_is_reproducible() {
    let dir = crate::require_data("skypilot-catalog/v8");
    let data = repo().join("data");
    let sky = SkyPilotDir::read(&dir).unwrap();
    let overrides = Overrides::parse(
        "data/overrides.yaml",
        &std::fs::read_to_string(data.join("overrides.yaml")).unwrap(),
    )
    .unwrap();
    let extras = curate::parse_extras(
        "data/extras.yaml",
        &std::fs::read_to_string(data.join("extras.yaml")).unwrap(),
    )
    .unwrap();
    let (json, _) = curate::build_json(
        &sky.files(),
        sky.accelerators.as_deref(),
        &overrides,
        &extras,
    );
    let committed = std::fs::read_to_string(data.join("catalog.json")).unwrap();
    assert!(
        json == committed,
        "data/catalog.json is stale: rebuild it with\n  cargo run -p hedge-catalog --example build-default-catalog -- ../shared/data/skypilot-catalog/v8 data/"
    );
    assert_eq!(
        overrides,
        Overrides::embedded().unwrap(),
        "the embedded overrides are data/overrides.yaml"
    );
}

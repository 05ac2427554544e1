//! The importer on the real SkyPilot v8 files in `../shared/data/skypilot-catalog/v8`.

use crate::require_data;
use hedge_catalog::{load, Format, Severity};
use hedge_core::{Accelerator, Location, Money, ProviderId};
use std::collections::BTreeMap;

fn v8() -> std::path::PathBuf {
    require_data("skypilot-catalog/v8")
}

#[test]
fn counts_per_cloud() {
    let dir = v8();
    let loaded = load(&dir).unwrap();
    assert_eq!(loaded.format, Format::SkyPilotV8);
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    for o in loaded.catalog.offers() {
        *per.entry(o.provider.as_str()).or_default() += 1;
    }
    // Every data row loads, except GCP, where 91 rows (43 host + 48 GPU) join into 43 offers and the 5
    // GPU rows with no a3 host in their zone are dropped with an info diagnostic.
    let want: BTreeMap<&str, usize> = [
        ("aws", 95),
        ("azure", 29),
        ("gcp", 43),
        ("lambda", 408),
        ("nebius", 61),
        ("oci", 35),
    ]
    .into_iter()
    .collect();
    assert_eq!(per, want);
    assert_eq!(
        loaded.count(Severity::Error),
        0,
        "{:#?}",
        loaded.diagnostics
    );
    // The only warnings are the three Azure ND96isr_H100_v5 rows fixed by data/overrides.yaml.
    let warnings: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .collect();
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(warnings
        .iter()
        .all(|d| d.file == "azure/vms.csv" && d.reason.contains("H100:12 -> H100:8")));
    let gcp_info = loaded
        .diagnostics
        .iter()
        .filter(|d| d.file == "gcp/vms.csv" && d.severity == Severity::Info)
        .count();
    assert_eq!(gcp_info, 5);
}

fn find<'a>(
    c: &'a hedge_core::Catalog,
    provider: &str,
    it: &str,
    zone_or_region: &str,
) -> &'a hedge_core::Offer {
    c.offers()
        .iter()
        .find(|o| {
            o.provider.as_str() == provider
                && o.instance_type == it
                && (o.location.zone().map(|z| z.as_str()) == Some(zone_or_region)
                    || (o.location.zone().is_none()
                        && o.location.region().as_str() == zone_or_region))
        })
        .unwrap_or_else(|| panic!("no {provider} {it} in {zone_or_region}"))
}

fn usd(s: &str) -> Money {
    Money::from_usd_f64(s.parse().unwrap()).unwrap()
}

#[test]
fn gcp_prices_are_host_plus_gpu_as_skypilot_computes_them() {
    let dir = v8();
    let c = load(&dir).unwrap().catalog;
    // (instance type, zone, host price, GPU price, host spot, GPU spot), read off gcp/vms.csv by hand.
    for (it, zone, hp, gp, hs, gs) in [
        (
            "a3-highgpu-8g",
            "us-central1-a",
            "9.46006",
            "33.60609",
            "2.88933",
            "23.9408",
        ),
        (
            "a3-highgpu-8g",
            "asia-east1-c",
            "10.95381",
            "90.74744",
            "2.74269",
            "22.7296",
        ),
        (
            "a2-highgpu-8g",
            "me-west1-a",
            "6.5074",
            "25.81839",
            "2.68128",
            "8.464",
        ),
        (
            "a2-highgpu-8g",
            "us-west3-b",
            "7.10564",
            "27.49491",
            "3.24428",
            "12.5184",
        ),
    ] {
        let o = find(&c, "gcp", it, zone);
        assert_eq!(
            o.prices.on_demand.unwrap().hourly(),
            usd(hp) + usd(gp),
            "{it} {zone}"
        );
        assert_eq!(
            o.prices.spot.unwrap().hourly(),
            usd(hs) + usd(gs),
            "{it} {zone}"
        );
        let want_acc = if it.starts_with("a3") {
            "H100:8"
        } else {
            "A100:8"
        };
        assert_eq!(o.accelerator.as_ref().unwrap().to_string(), want_acc);
    }
    // europe-west3: the host is only in zone c, GPU rows in a and c: one offer, in c.
    let ew3: Vec<_> = c
        .offers()
        .iter()
        .filter(|o| o.location.region().as_str() == "europe-west3")
        .collect();
    assert_eq!(ew3.len(), 1);
    assert_eq!(ew3[0].location.zone().unwrap().as_str(), "europe-west3-c");
}

#[test]
fn quirks_on_real_files() {
    let dir = v8();
    let c = load(&dir).unwrap().catalog;
    // AWS zone ids.
    let p4d = find(&c, "aws", "p4d.24xlarge", "apne1-az4");
    assert_eq!(
        p4d.location,
        Location::Zone {
            region: "ap-northeast-1".into(),
            zone: "apne1-az4".into()
        }
    );
    assert_eq!(p4d.prices.spot.unwrap().hourly(), usd("7.5205"));
    // Azure row fixed by the override.
    let nd = find(&c, "azure", "Standard_ND96isr_H100_v5", "eastus");
    assert_eq!(nd.accelerator.as_ref().unwrap().to_string(), "H100:8");
    // OCI: no spot market (empty SpotPrice).
    let oci = find(&c, "oci", "BM.GPU.A10.4", "AF-CASABLANCA-1-AD-1");
    assert_eq!(oci.prices.spot, None);
    assert_eq!(oci.prices.on_demand.unwrap().hourly(), Money::from_usd(8));
    // Lambda (CRLF) CPU rows are CPU-only offers; Nebius "0" accelerator counts too.
    let lambda = ProviderId::parse("lambda");
    assert!(c.cpu_only().iter().any(|&i| c.offer(i).provider == lambda));
    let nebius_cpu = c
        .cpu_only()
        .iter()
        .filter(|&&i| c.offer(i).provider.as_str() == "nebius")
        .count();
    assert_eq!(nebius_cpu, 40);
    // The index finds every H100 offer without a scan, and agrees with one.
    let h100 = Accelerator::parse("H100").unwrap();
    let scan = c
        .offers()
        .iter()
        .filter(|o| o.accelerator.as_ref().is_some_and(|a| a.name == h100))
        .count();
    assert_eq!(c.with_accelerator(&h100).len(), scan);
}

#[test]
fn a_single_vms_csv_loads_with_its_folder_as_provider() {
    let dir = v8();
    let loaded = load(&dir.join("nebius/vms.csv")).unwrap();
    assert_eq!(loaded.catalog.len(), 61);
    assert!(loaded
        .catalog
        .offers()
        .iter()
        .all(|o| o.provider.as_str() == "nebius"));
}

#[test]
fn check_report_on_real_data() {
    let dir = v8();
    let r = hedge_catalog::check(&dir).unwrap();
    assert!(r.is_ok());
    assert_eq!(r.offers, 671);
    assert_eq!(r.providers[&ProviderId::parse("aws")].offers, 95);
    assert_eq!(r.accelerators["H100"], loaded_h100(&dir));
    let text = r.to_string();
    assert!(text.contains("diagnostics: 0 errors, 3 warnings"), "{text}");
}

fn loaded_h100(dir: &std::path::Path) -> usize {
    let c = load(dir).unwrap().catalog;
    c.with_accelerator(&Accelerator::parse("H100").unwrap())
        .len()
}

#[test]
fn check_report_snapshot() {
    let dir = v8();
    let loaded = load(&dir).unwrap();
    let report = hedge_catalog::CheckReport::new("skypilot-catalog/v8", &loaded);
    expect_test::expect![[r#"
        catalog skypilot-catalog/v8 (SkyPilot v8 directory)
        offers: 671
        providers:
          aws          95 offers  15 regions     74 spot      0 committed
          azure        29 offers   7 regions     29 spot      0 committed
          gcp          43 offers  20 regions     43 spot      0 committed
          lambda      408 offers  17 regions      0 spot      0 committed
          nebius       61 offers   3 regions      8 spot      0 committed
          oci          35 offers   2 regions      4 spot      0 committed
        accelerators:
          (cpu only)         74
          A10                21
          A100              137
          A100-80GB          40
          A6000              51
          B200               54
          B300                2
          GB200               2
          GB300               2
          GH200              17
          H100              181
          H200                8
          L40S               14
          MI300X              2
          MI355X              2
          P100                3
          RTX6000            17
          RTXPRO6000          2
          V100               39
          V100-32GB           3
        capacity entries: 0
        diagnostics: 0 errors, 3 warnings, 12 info
          azure/vms.csv:28: warning: override data/overrides.yaml#1 applied: accelerator H100:12 -> H100:8 (ND H100 v5 VMs carry 8 NVIDIA H100 GPUs; the catalog fork lists 12); source: Microsoft Learn, ND-H100-v5 sizes series (learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/ndh100v5-series)
          azure/vms.csv:29: warning: override data/overrides.yaml#1 applied: accelerator H100:12 -> H100:8 (ND H100 v5 VMs carry 8 NVIDIA H100 GPUs; the catalog fork lists 12); source: Microsoft Learn, ND-H100-v5 sizes series (learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/ndh100v5-series)
          azure/vms.csv:30: warning: override data/overrides.yaml#1 applied: accelerator H100:12 -> H100:8 (ND H100 v5 VMs carry 8 NVIDIA H100 GPUs; the catalog fork lists 12); source: Microsoft Learn, ND-H100-v5 sizes series (learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/ndh100v5-series)
          gcp/vms.csv:66: info: GPU-price row for H100:8 in asia-northeast3/asia-northeast3-a has no host VM row in its zone; not launchable, skipped
          gcp/vms.csv:67: info: GPU-price row for H100:8 in asia-northeast3/asia-northeast3-c has no host VM row in its zone; not launchable, skipped
          gcp/vms.csv:76: info: GPU-price row for H100:8 in europe-west2/europe-west2-b has no host VM row in its zone; not launchable, skipped
          gcp/vms.csv:77: info: GPU-price row for H100:8 in europe-west3/europe-west3-a has no host VM row in its zone; not launchable, skipped
          gcp/vms.csv:82: info: GPU-price row for H100:8 in northamerica-northeast2/northamerica-northeast2-c has no host VM row in its zone; not launchable, skipped
          common/accelerators.csv: info: B200 is offered by oci but not listed for it here
          common/accelerators.csv: info: B300 is offered by oci but not listed for it here
          common/accelerators.csv: info: GB200 is offered by oci but not listed for it here
          common/accelerators.csv: info: GB300 is offered by oci but not listed for it here
          common/accelerators.csv: info: MI300X is offered by oci but not listed for it here
          common/accelerators.csv: info: MI355X is offered by oci but not listed for it here
          common/accelerators.csv: info: RTXPRO6000 is offered by oci but not listed for it here
    "#]].assert_eq(&report.to_string());
}

//! The native format: round trips, bad input, and detection by `load`.

use crate::render;
use expect_test::{expect, Expect};
use hedge_catalog::{load_native_str, native, CatalogError, CatalogMeta};
use hedge_core::{
    AccelRequest, Accelerator, Capacity, Catalog, CommittedPrice, Location, Money, Offer, Prices,
    ProviderId, ProviderInfo, Rate, Reliability,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn check(text: &str, want: Expect) {
    let out = match load_native_str("cat.json", text) {
        Ok(l) => render(&l),
        Err(e) => format!("ERROR {e}\n"),
    };
    want.assert_eq(&out);
}

#[test]
fn a_malformed_offer_is_skipped_with_its_position_and_the_rest_loads() {
    check(
        r#"{
  "schema_version": 1,
  "offers": [
    {"provider":"aws","instance_type":"p5.48xlarge","accelerator":"H100:8","region":"us-east-1","zone":"use1-az6","on_demand":98.32},
    {"provider":"aws","instance_type":"p5.48xlarge","accelerator":"H100:8","region":"us-east-1","on_demand":"cheap"},
    {"provider":"aws","instance_type":"p4d","accelerator":"A100:0","region":"us-east-1","on_demand":1},
    {"provider":"aws","instance_type":"p4d","region":"us-east-1","on_demand":1,"spto":2},
    {"provider":"aws","instance_type":"p4d","region":"us-east-1"},
    {"provider":"aws","instance_type":"p4d","region":"us-east-1","on_demand":-3},
    {"provider":"aws","instance_type":"p5.48xlarge","accelerator":"H100:8","region":"us-east-1","zone":"use1-az6","on_demand":90},
    {"provider":"lambda","instance_type":"gpu_1x_h100","accelerator":"H100-SXM","region":"us-east-1","on_demand":2.49,
     "committed":[{"term_months":12,"usd_per_gpu_hour":2.1},{"term_months":36,"usd_per_gpu_hour":1.89}]}
  ]
}"#,
        expect![[r#"
            aws p5.48xlarge H100:8 us-east-1/use1-az6 od=$98.32 spot=-
            lambda gpu_1x_h100 H100:1 us-east-1 od=$2.49 spot=- c12=$2.10 c36=$1.89
            cat.json:5:115: error: offer skipped: invalid type: string "cheap", expected f64
            cat.json:6:5: error: offer skipped: accelerator "A100:0": accelerator count "0" is not a positive whole number
            cat.json:7:85: error: offer skipped: unknown field `spto`, expected one of `provider`, `instance_type`, `accelerator`, `vcpus`, `memory_gib`, `region`, `zone`, `on_demand`, `spot`, `committed`
            cat.json:8:5: error: offer skipped: no price: give at least one of on_demand, spot, committed
            cat.json:9:5: error: offer skipped: on_demand: amount -3 is negative
            cat.json:10:5: warning: duplicate offer aws p5.48xlarge in us-east-1/use1-az6 (first at line 4); skipped
        "#]],
    );
}

#[test]
fn file_level_errors_stop_the_load() {
    check(
        "{\"offers\": []}",
        expect![[r#"
        ERROR cat.json: missing schema_version (this reader understands schema_version 1)
    "#]],
    );
    check(
        "{\"schema_version\": 2, \"offers\": []}",
        expect![[r#"
        ERROR cat.json: schema_version 2 is not supported (this reader understands 1)
    "#]],
    );
    check(
        "{\"schema_version\": 1,\n \"offers\": [\n  {\"provider\": \"aws\",}\n]}",
        expect![[r#"
        ERROR cat.json:3:22: invalid JSON: key must be a string
    "#]],
    );
    check(
        "{\"schema_version\": 1, \"providers\": {\"aws\": {\"egress_usd_per_gb\": -1}}}",
        expect![[r#"
        ERROR cat.json: providers.aws.egress_usd_per_gb: egress_usd_per_gb: amount -1 is negative
    "#]],
    );
    check("{\"schema_version\": 1, \"capacities\": [{\"provider\": \"aws\", \"accelerator\": \"H 100\"}], \"offers\": []}", expect![[r#"
        cat.json:1:38: error: capacity skipped: accelerator: accelerator name "H 100" has characters other than letters, digits, '-', '_' and '.'
    "#]]);
}

#[test]
fn load_detects_native_files_and_rejects_others() {
    let dir = std::env::temp_dir().join(format!("hedge-catalog-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let native_path = dir.join("cat.json");
    std::fs::write(&native_path, "{\"schema_version\": 1, \"offers\": []}").unwrap();
    assert_eq!(
        hedge_catalog::load(&native_path).unwrap().format,
        hedge_catalog::Format::Native
    );
    let other = dir.join("notes.txt");
    std::fs::write(&other, "hello").unwrap();
    assert!(matches!(
        hedge_catalog::load(&other),
        Err(CatalogError::NotACatalog { .. })
    ));
    assert!(matches!(
        hedge_catalog::load(&dir.join("missing.json")),
        Err(CatalogError::Io { .. })
    ));
    let empty_dir = dir.join("empty");
    std::fs::create_dir_all(&empty_dir).unwrap();
    assert!(matches!(
        hedge_catalog::load(&empty_dir),
        Err(CatalogError::NotACatalog { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- round trip ----

fn arb_accel() -> impl Strategy<Value = Option<AccelRequest>> {
    let names = prop::sample::select(vec![
        "H100",
        "A100-80GB",
        "L4",
        "MI300X",
        "Gaudi3",
        "h100-sxm",
        "TPU-v5e",
    ]);
    prop::option::of(
        (names, 1u32..=16).prop_map(|(n, c)| AccelRequest::new(Accelerator::parse(n).unwrap(), c)),
    )
}

fn arb_rate() -> impl Strategy<Value = Rate> {
    (0i64..2_000_000_000_000).prop_map(|m| Rate::per_hour(Money::from_micros(m)))
}

fn arb_offer(i: usize) -> impl Strategy<Value = Offer> {
    (
        prop::sample::select(vec![
            "aws", "gcp", "azure", "lambda", "nebius", "oci", "my-dc",
        ]),
        "[a-zA-Z0-9._-]{1,12}",
        arb_accel(),
        prop::option::of(0u32..4_000_000),
        prop::option::of(0u64..100_000_000),
        "[a-z0-9-]{1,10}",
        prop::option::of("[a-zA-Z0-9-]{1,10}"),
        (prop::option::of(arb_rate()), prop::option::of(arb_rate())),
        prop::collection::btree_map(1u16..=60, arb_rate(), 0..3),
        "[ \"\\\\é\u{1F600}]{0,3}",
    )
        .prop_map(
            move |(p, it, acc, vcpus, mem, region, zone, (od, spot), committed, odd)| {
                let location = match zone {
                    Some(z) => Location::Zone {
                        region: region.as_str().into(),
                        zone: z.as_str().into(),
                    },
                    None => Location::Region {
                        region: region.as_str().into(),
                    },
                };
                let mut committed: Vec<CommittedPrice> = committed
                    .into_iter()
                    .map(|(term_months, per_gpu_hour)| CommittedPrice {
                        term_months,
                        per_gpu_hour,
                    })
                    .collect();
                let on_demand = if od.is_none() && spot.is_none() && committed.is_empty() {
                    Some(Rate::ZERO)
                } else {
                    od
                };
                committed.sort_by_key(|c| c.term_months);
                Offer {
                    provider: ProviderId::parse(p),
                    // Unique per offer (no duplicates), with characters JSON must escape.
                    instance_type: format!("{it}{odd}#{i}"),
                    accelerator: acc,
                    vcpus_milli: vcpus,
                    memory_mib: mem,
                    location,
                    prices: Prices {
                        on_demand,
                        spot,
                        committed,
                    },
                }
            },
        )
}

fn arb_catalog() -> impl Strategy<Value = Catalog> {
    (0usize..40)
        .prop_flat_map(|n| (0..n).map(arb_offer).collect::<Vec<_>>())
        .prop_flat_map(|offers| {
            let providers = prop::collection::btree_map(
                prop::sample::select(vec!["aws", "gcp", "lambda", "coreweave"]),
                (
                    prop::option::of(0i64..10_000_000),
                    prop::option::of((1u64..1_000_000_000, 1u64..1_000_000_000)),
                ),
                0..4,
            );
            let caps = prop::collection::vec(
                (
                    prop::sample::select(vec!["aws", "gcp"]),
                    prop::option::of("[a-z0-9-]{1,8}"),
                    prop::sample::select(vec!["H100", "B200"]),
                    prop::option::of(0u32..100_000),
                    prop::option::of(0u32..100_000),
                ),
                0..4,
            );
            (Just(offers), providers, caps)
        })
        .prop_map(|(offers, providers, caps)| {
            let providers: BTreeMap<ProviderId, ProviderInfo> = providers
                .into_iter()
                .map(|(p, (egress, rel))| {
                    (
                        ProviderId::parse(p),
                        ProviderInfo {
                            egress_per_gb: egress.map(Money::from_micros),
                            reliability: rel.map(|(mtbf_s, mttr_s)| Reliability { mtbf_s, mttr_s }),
                        },
                    )
                })
                .collect();
            let capacities = caps
                .into_iter()
                .map(|(p, r, a, max, quota)| Capacity {
                    provider: ProviderId::parse(p),
                    region: r.map(|r| r.as_str().into()),
                    accelerator: Accelerator::parse(a).unwrap(),
                    max_gpus: max,
                    quota_gpus: quota,
                })
                .collect();
            Catalog::new(offers, providers, capacities)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn write_then_parse_gives_the_same_catalog(c in arb_catalog(), desc in prop::option::of(".{0,20}")) {
        let meta = CatalogMeta { description: desc, sources: vec!["a \"quoted\" source".into()] };
        let text = native::write(&c, &meta);
        let (back, meta_back, diags) = native::parse("rt.json", &text).unwrap();
        prop_assert!(diags.is_empty(), "{diags:?}");
        prop_assert_eq!(back.offers(), c.offers());
        prop_assert_eq!(back.providers(), c.providers());
        prop_assert_eq!(back.capacities(), c.capacities());
        prop_assert_eq!(&meta_back, &meta);
        // And writing again gives the same bytes.
        prop_assert_eq!(native::write(&back, &meta_back), text);
    }

    #[test]
    fn arbitrary_text_never_panics(s in ".{0,300}") {
        let _ = load_native_str("fuzz.json", &s);
    }
}

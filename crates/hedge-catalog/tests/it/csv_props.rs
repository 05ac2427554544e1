//! Property: any offer written as a SkyPilot `vms.csv` row, with the columns in any order, LF or CRLF line
//! endings, a matching `GpuInfo` dict or none, and extra columns, imports as exactly that offer.

use hedge_catalog::{import_skypilot, CloudFile, Overrides, Severity};
use hedge_core::{AccelRequest, Accelerator, Location, Money, Offer, Prices, ProviderId, Rate};
use proptest::prelude::*;

const COLUMNS: [&str; 11] = [
    "InstanceType",
    "AcceleratorName",
    "AcceleratorCount",
    "vCPUs",
    "MemoryGiB",
    "GpuInfo",
    "Price",
    "SpotPrice",
    "Region",
    "AvailabilityZone",
    "Arch",
];

fn rate() -> impl Strategy<Value = Rate> {
    (0i64..1_000_000_000_000).prop_map(|m| Rate::per_hour(Money::from_micros(m)))
}

fn offer(provider: &'static str) -> impl Strategy<Value = Offer> {
    (
        "[A-Za-z0-9][A-Za-z0-9._, \"-]{0,14}[A-Za-z0-9]",
        prop::option::of((
            prop::sample::select(vec!["H100", "A100-80GB", "L4", "MI300X", "Gaudi3"]),
            1u32..=16,
        )),
        prop::option::of(0u32..1_000_000),
        prop::option::of(0u64..10_000_000),
        "[a-z][a-z0-9-]{0,12}",
        prop::option::of("[a-z][a-z0-9-]{0,12}"),
        prop_oneof![
            (rate(), prop::option::of(rate())).prop_map(|(a, b)| (Some(a), b)),
            rate().prop_map(|b| (None, Some(b))),
        ],
    )
        .prop_map(
            move |(it, acc, vcpus, mem, region, zone, (od, spot))| Offer {
                provider: ProviderId::parse(provider),
                instance_type: it,
                accelerator: acc.map(|(n, c)| AccelRequest::new(Accelerator::parse(n).unwrap(), c)),
                vcpus_milli: vcpus,
                memory_mib: mem,
                location: match zone {
                    Some(z) => Location::Zone {
                        region: region.as_str().into(),
                        zone: z.as_str().into(),
                    },
                    None => Location::Region {
                        region: region.as_str().into(),
                    },
                },
                prices: Prices {
                    on_demand: od,
                    spot,
                    committed: vec![],
                },
            },
        )
}

fn usd(r: Option<Rate>) -> String {
    r.map_or(String::new(), |r| r.to_usd_per_hour_f64().to_string())
}

fn cell(o: &Offer, col: &str, with_gpu_info: bool) -> String {
    match col {
        "InstanceType" => o.instance_type.clone(),
        "AcceleratorName" => o
            .accelerator
            .as_ref()
            .map_or(String::new(), |a| a.name.to_string()),
        "AcceleratorCount" => o
            .accelerator
            .as_ref()
            .map_or(String::new(), |a| format!("{}.0", a.count)),
        "vCPUs" => o
            .vcpus_milli
            .map_or(String::new(), |v| (v as f64 / 1000.0).to_string()),
        "MemoryGiB" => o
            .memory_mib
            .map_or(String::new(), |m| (m as f64 / 1024.0).to_string()),
        "GpuInfo" => match (&o.accelerator, with_gpu_info) {
            (Some(a), true) => format!(
                "{{'Gpus': [{{'Name': '{}', 'Count': {}, 'MemoryInfo': {{'SizeInMiB': 81920}}}}]}}",
                a.name, a.count
            ),
            _ => String::new(),
        },
        "Price" => usd(o.prices.on_demand),
        "SpotPrice" => usd(o.prices.spot),
        "Region" => o.location.region().to_string(),
        "AvailabilityZone" => o.location.zone().map_or(String::new(), ToString::to_string),
        _ => "x86_64".into(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]
    #[test]
    fn csv_rows_import_as_the_offers_they_describe(
        offers in prop::collection::vec(offer("aws"), 0..20).prop_map(|mut v| {
            // Distinct instance types, so no row is a duplicate of another.
            for (i, o) in v.iter_mut().enumerate() {
                o.instance_type = format!("{}-{i}", o.instance_type);
            }
            v
        }),
        order in Just(COLUMNS.to_vec()).prop_shuffle(),
        crlf in any::<bool>(),
        gpu_info in any::<bool>(),
    ) {
        let mut w = csv::WriterBuilder::new()
            .terminator(if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
            .from_writer(Vec::new());
        w.write_record(&order).unwrap();
        for o in &offers {
            w.write_record(order.iter().map(|c| cell(o, c, gpu_info))).unwrap();
        }
        let bytes = w.into_inner().unwrap();
        let files = [CloudFile { provider: ProviderId::parse("aws"), label: "aws/vms.csv".into(), bytes: &bytes }];
        let loaded = import_skypilot(&files, None, &Overrides::none());
        let problems: Vec<_> = loaded.diagnostics.iter().filter(|d| d.severity != Severity::Info).collect();
        prop_assert!(problems.is_empty(), "{problems:#?}\n{}", String::from_utf8_lossy(&bytes));
        prop_assert_eq!(loaded.catalog.offers(), offers.as_slice());
    }
}

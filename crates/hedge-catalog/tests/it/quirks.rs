//! One snapshot test per SkyPilot catalog quirk, on small inline files shaped like the real ones.

use crate::render;
use expect_test::{expect, Expect};
use hedge_catalog::{import_skypilot, CloudFile, Overrides};
use hedge_core::ProviderId;

fn check_with(provider: &str, csv: &str, overrides: &Overrides, want: Expect) {
    let files = [CloudFile {
        provider: ProviderId::parse(provider),
        label: format!("{provider}/vms.csv"),
        bytes: csv.as_bytes(),
    }];
    let loaded = import_skypilot(&files, Some(b"AcceleratorName,Clouds\nA100,\"['AWS', 'GCP']\"\nH100,\"['AWS', 'GCP', 'Azure', 'Lambda']\"\n"), overrides);
    want.assert_eq(&render(&loaded));
}

fn check(provider: &str, csv: &str, want: Expect) {
    check_with(provider, csv, &Overrides::none(), want);
}

#[test]
fn gcp_host_and_gpu_rows_are_summed_per_zone() {
    // Host rows carry no accelerator; GPU rows carry no instance type. a3-highgpu-8g comes with 8 H100.
    // us-central1-b has a GPU row but no host row, europe-west4-a a host row but no GPU row: neither is
    // launchable. n1-standard-8 is a plain CPU VM.
    check(
        "gcp",
        "InstanceType,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount,GpuInfo,Region,AvailabilityZone,Price,SpotPrice
a3-highgpu-8g,208.0,1872.0,,,,us-central1,us-central1-a,9.46006,2.88933
a3-highgpu-8g,208.0,1872.0,,,,europe-west4,europe-west4-a,9.93306,2.27469
a2-highgpu-8g,96.0,680.0,,,,us-central1,us-central1-a,5.91582,
n1-standard-8,8.0,30.0,,,,us-central1,us-central1-a,0.379998,0.08
,,,H100,8,{'Gpus': [{'MemoryInfo': {'SizeInMiB': 81920}}]},us-central1,us-central1-a,33.60609,23.9408
,,,H100,8,{'Gpus': [{'MemoryInfo': {'SizeInMiB': 81920}}]},us-central1,us-central1-b,33.60609,23.9408
,,,A100,8,{'Gpus': [{'MemoryInfo': {'SizeInMiB': 40960}}]},us-central1,us-central1-a,23.47126,11.4728
,,,T4,1,,us-central1,us-central1-a,0.35,0.07
",
        expect![[r#"
            gcp a3-highgpu-8g H100:8 us-central1/us-central1-a od=$43.06615 spot=$26.83013 vcpus=208 mem=1916928MiB
            gcp a2-highgpu-8g A100:8 us-central1/us-central1-a od=$29.38708 spot=- vcpus=96 mem=696320MiB
            gcp n1-standard-8 - us-central1/us-central1-a od=$0.379998 spot=$0.08 vcpus=8 mem=30720MiB
            gcp/vms.csv:3: info: a3-highgpu-8g in europe-west4/europe-west4-a has no H100:8 GPU-price row in its zone; not launchable, skipped
            gcp/vms.csv:7: info: GPU-price row for H100:8 in us-central1/us-central1-b has no host VM row in its zone; not launchable, skipped
            gcp/vms.csv:9: info: GPU-price row for T4:1 in us-central1/us-central1-a: T4 attaches to a general-purpose host, which Hedge does not model; skipped
        "#]],
    );
}

#[test]
fn gpu_info_python_dict_is_parsed_and_cross_checked() {
    // Row 2: a well-formed dict that agrees. Row 3: AWS writes the family (A100) for an A100-80GB: fine.
    // Row 4: the dict counts 4 GPUs, the columns 8: warning, columns win. Row 5: not a literal: warning,
    // row still loads. Row 6: a nested string with an escaped quote and a comma.
    check(
        "aws",
        r#"InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone,Arch
p4d.24xlarge,A100,8.0,96.0,1152.0,"{'Gpus': [{'Name': 'A100', 'Manufacturer': 'NVIDIA', 'Count': 8, 'LogicalGpuCount': 8, 'GpuPartitionSize': 1.0, 'Workloads': ['ml-ai'], 'MemoryInfo': {'SizeInMiB': 40960}}], 'TotalGpuMemoryInMiB': 327680}",30.09784,7.5205,us-east-1,use1-az1,x86_64
p4de.24xlarge,A100-80GB,8.0,96.0,1152.0,"{'Gpus': [{'Name': 'A100', 'Count': 8}]}",40.96596,,us-east-1,use1-az2,x86_64
p4d.24xlarge,A100,8.0,96.0,1152.0,"{'Gpus': [{'Name': 'A100', 'Count': 4}]}",30.09784,,us-east-1,use1-az4,x86_64
p4d.24xlarge,A100,8.0,96.0,1152.0,"{'Gpus': [{'Name': 'A100', 'Count': 8}",30.09784,,us-east-1,use1-az5,x86_64
p5.48xlarge,H100,8.0,192.0,2048.0,"{'Gpus': [{'Name': 'H100', 'Note': 'it\'s, odd', 'Count': 8}]}",98.32,,us-east-1,use1-az6,x86_64
"#,
        expect![[r#"
            aws p4d.24xlarge A100:8 us-east-1/use1-az1 od=$30.09784 spot=$7.5205 vcpus=96 mem=1179648MiB
            aws p4de.24xlarge A100-80GB:8 us-east-1/use1-az2 od=$40.96596 spot=- vcpus=96 mem=1179648MiB
            aws p4d.24xlarge A100:8 us-east-1/use1-az4 od=$30.09784 spot=- vcpus=96 mem=1179648MiB
            aws p4d.24xlarge A100:8 us-east-1/use1-az5 od=$30.09784 spot=- vcpus=96 mem=1179648MiB
            aws p5.48xlarge H100:8 us-east-1/use1-az6 od=$98.32 spot=- vcpus=192 mem=2097152MiB
            aws/vms.csv:4: column 6 (GpuInfo): warning: GpuInfo counts 4 GPUs but AcceleratorCount is 8
            aws/vms.csv:5: column 6 (GpuInfo): warning: GpuInfo is not a Python literal (at byte 38: expected ',' or ']'); ignored
            common/accelerators.csv: info: A100-80GB is offered by aws but not listed for it here
        "#]],
    );
}

#[test]
fn crlf_line_endings_and_bom() {
    check(
        "lambda",
        "\u{feff}InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,Region,GpuInfo,SpotPrice\r\ncpu_4x_generalx,,,4.0,16.0,0.2,europe-central-1,,\r\ngpu_8x_h100_sxm5,H100,8.0,208.0,1800.0,23.92,us-east-1,\"{'Gpus': [{'Name': 'H100', 'Count': 8.0}]}\",\r\n",
        expect![[r#"
            lambda cpu_4x_generalx - europe-central-1 od=$0.20 spot=- vcpus=4 mem=16384MiB
            lambda gpu_8x_h100_sxm5 H100:8 us-east-1 od=$23.92 spot=- vcpus=208 mem=1843200MiB
        "#]],
    );
}

#[test]
fn aws_zone_ids_are_kept_as_zones() {
    let csv = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone,Arch
p5.48xlarge,H100,8.0,192.0,2048.0,,98.32,33.1,us-east-1,use1-az6,x86_64
";
    let files = [CloudFile {
        provider: ProviderId::parse("aws"),
        label: "aws/vms.csv".into(),
        bytes: csv.as_bytes(),
    }];
    let loaded = import_skypilot(&files, None, &Overrides::none());
    let loc = &loaded.catalog.offers()[0].location;
    assert_eq!(
        loc,
        &hedge_core::Location::Zone {
            region: "us-east-1".into(),
            zone: "use1-az6".into()
        }
    );
    assert_eq!(loc.zone().map(|z| z.as_str()), Some("use1-az6"));
}

#[test]
fn empty_prices_mean_no_market() {
    // OCI lists no spot prices; a row with neither price is dropped with a warning; a spot-only row loads.
    check(
        "oci",
        "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone
BM.GPU.A10.4,A10,4,128,1024,,8,,af-casablanca-1,AF-CASABLANCA-1-AD-1
BM.GPU.H100.8,H100,8,112,2048,,,,us-ashburn-1,US-ASHBURN-AD-1
BM.GPU.H100.8,H100,8,112,2048,,,40,us-ashburn-1,US-ASHBURN-AD-2
",
        expect![[r#"
            oci BM.GPU.A10.4 A10:4 af-casablanca-1/AF-CASABLANCA-1-AD-1 od=$8.00 spot=- vcpus=128 mem=1048576MiB
            oci BM.GPU.H100.8 H100:8 us-ashburn-1/US-ASHBURN-AD-2 od=- spot=$40.00 vcpus=112 mem=2097152MiB
            oci/vms.csv:3: column 7 (Price): warning: neither Price nor SpotPrice is given; row skipped
            common/accelerators.csv: info: A10 is offered by oci but not listed for it here
            common/accelerators.csv: info: H100 is offered by oci but not listed for it here
        "#]],
    );
}

#[test]
fn columns_are_mapped_by_header_name() {
    // The same row in Nebius's column order and in a shuffled one gives the same offer.
    let a = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,Region,GpuInfo,SpotPrice\ngpu-h100,H100,8,128,1600,23.60,eu-north1,,10.00\n";
    let b = "SpotPrice,Region,Price,MemoryGiB,vCPUs,AcceleratorCount,AcceleratorName,InstanceType,Extra\n10.00,eu-north1,23.60,1600,128,8,H100,gpu-h100,ignored\n";
    let load = |csv: &str| {
        let files = [CloudFile {
            provider: ProviderId::parse("nebius"),
            label: "nebius/vms.csv".into(),
            bytes: csv.as_bytes(),
        }];
        import_skypilot(&files, None, &Overrides::none())
            .catalog
            .offers()
            .to_vec()
    };
    assert_eq!(load(a), load(b));
    assert_eq!(load(a).len(), 1);
}

#[test]
fn override_fixes_azure_nd96isr_and_says_so() {
    check_with(
        "azure",
        "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,Generation
Standard_NC40ads_H100_v5,H100,1,40.0,320,H100,6.98,6.98,eastus,V2
Standard_ND96isr_H100_v5,H100,12,96.0,1900,H100,98.32,98.32,eastus,V2
",
        &Overrides::embedded().unwrap(),
        expect![[r#"
            azure Standard_NC40ads_H100_v5 H100:1 eastus od=$6.98 spot=$6.98 vcpus=40 mem=327680MiB
            azure Standard_ND96isr_H100_v5 H100:8 eastus od=$98.32 spot=$98.32 vcpus=96 mem=1945600MiB
            azure/vms.csv:3: warning: override data/overrides.yaml#1 applied: accelerator H100:12 -> H100:8 (ND H100 v5 VMs carry 8 NVIDIA H100 GPUs; the catalog fork lists 12); source: Microsoft Learn, ND-H100-v5 sizes series (learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/ndh100v5-series)
        "#]],
    );
}

#[test]
fn overrides_can_drop_and_reprice_and_report_unused() {
    let o = Overrides::parse(
        "test-overrides.yaml",
        "schema_version: 1
overrides:
  - match: { provider: aws, instance_type: p5.48xlarge, zone: use1-az6 }
    drop: true
    reason: capacity retired
  - match: { provider: aws, instance_type: p4d.24xlarge }
    set: { price: 20.5, spot_price: 6 }
    reason: negotiated price
  - match: { provider: aws, instance_type: p3.2xlarge }
    set: { vcpus: 8 }
    reason: stale
",
    )
    .unwrap();
    check_with(
        "aws",
        "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone
p5.48xlarge,H100,8.0,192.0,2048.0,,98.32,,us-east-1,use1-az6
p5.48xlarge,H100,8.0,192.0,2048.0,,98.32,,us-east-1,use1-az4
p4d.24xlarge,A100,8.0,96.0,1152.0,,30.09784,,us-east-1,use1-az4
",
        &o,
        expect![[r#"
            aws p5.48xlarge H100:8 us-east-1/use1-az4 od=$98.32 spot=- vcpus=192 mem=2097152MiB
            aws p4d.24xlarge A100:8 us-east-1/use1-az4 od=$20.50 spot=$6.00 vcpus=96 mem=1179648MiB
            aws/vms.csv:2: warning: override test-overrides.yaml#1 applied: row dropped (capacity retired)
            aws/vms.csv:4: warning: override test-overrides.yaml#2 applied: price $30.09784/h -> $20.50/h, spot price none -> $6.00/h (negotiated price)
            test-overrides.yaml: warning: override #3 (aws p3.2xlarge) matched no row
        "#]],
    );
}

#[test]
fn malformed_rows_are_reported_with_line_and_column_and_the_rest_loads() {
    check(
        "aws",
        "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone
p5.48xlarge,H100,8.0,192.0,2048.0,,abc,,us-east-1,use1-az6
p5.48xlarge,H100,8.5,192.0,2048.0,,98.32,,us-east-1,use1-az6
p5.48xlarge,H100,8.0,192.0,2048.0,,-1,,us-east-1,use1-az6
p5.48xlarge,H 100,8.0,192.0,2048.0,,98.32,,us-east-1,use1-az6
p5.48xlarge,H100,8.0,192.0,2048.0,,98.32,,,use1-az6
p5.48xlarge,H100,8.0,192.0
,H100,8.0,192.0,2048.0,,98.32,,us-east-1,use1-az6
p5.48xlarge,,8.0,192.0,2048.0,,98.32,,us-east-1,use1-az6
p5.48xlarge,H100,8.0,lots,2048.0,,98.32,,us-east-1,use1-az6
p5.48xlarge,H100,8.0,192.0,2048.0,,98.32,33.5,us-east-1,use1-az6
",
        expect![[r#"
            aws p5.48xlarge H100:8 us-east-1/use1-az6 od=$98.32 spot=$33.50 vcpus=192 mem=2097152MiB
            aws/vms.csv:2: column 7 (Price): error: Price "abc" is not a price (invalid float literal); row skipped
            aws/vms.csv:3: column 3 (AcceleratorCount): error: AcceleratorCount "8.5": accelerator count "8.5" is not a positive whole number; row skipped
            aws/vms.csv:4: column 7 (Price): error: Price "-1" is not a price (amount -1 is negative); row skipped
            aws/vms.csv:5: column 2 (AcceleratorName): error: AcceleratorName "H 100": accelerator name "H 100" has characters other than letters, digits, '-', '_' and '.'; row skipped
            aws/vms.csv:6: column 9 (Region): error: Region is empty; row skipped
            aws/vms.csv:7: error: row has 4 fields, the header has 10; row skipped
            aws/vms.csv:8: column 1 (InstanceType): error: InstanceType is empty (only GCP catalogs have GPU-price rows without one); row skipped
            aws/vms.csv:9: column 3 (AcceleratorCount): error: AcceleratorCount "8.0" without an AcceleratorName; row skipped
            aws/vms.csv:10: column 4 (vCPUs): error: vCPUs "lots" is not a non-negative number; row skipped
        "#]],
    );
}

#[test]
fn header_problems_are_file_errors_not_panics() {
    check(
        "aws",
        "",
        expect![[r#"
        aws/vms.csv: error: the file is empty: no header row
    "#]],
    );
    check(
        "aws",
        "InstanceType,Region\np5,us-east-1\n",
        expect![[r#"
        aws/vms.csv:1: error: header lacks required column(s) Price
    "#]],
    );
    check(
        "aws",
        "InstanceType,Price,Price,Region\n",
        expect![[r#"
        aws/vms.csv:1: column 3 (Price): error: column "Price" appears twice in the header
    "#]],
    );
}

#[test]
fn invalid_utf8_is_a_located_error() {
    let mut csv = b"InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region\n".to_vec();
    csv.extend_from_slice(b"p5\xff,H100,8,192,2048,,98.32,,us-east-1\n");
    let files = [CloudFile {
        provider: ProviderId::parse("aws"),
        label: "aws/vms.csv".into(),
        bytes: &csv,
    }];
    let loaded = import_skypilot(&files, None, &Overrides::none());
    assert!(loaded.catalog.is_empty());
    let d = loaded
        .diagnostics
        .iter()
        .find(|d| d.severity == hedge_catalog::Severity::Error)
        .unwrap();
    assert_eq!(d.line, Some(2));
    assert!(d.to_string().contains("column 1 (InstanceType)"), "{d}");
    assert!(d.reason.contains("UTF-8"), "{d}");
}

#[test]
fn duplicate_rows_keep_the_first() {
    check(
        "aws",
        "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone
p5.48xlarge,H100,8.0,192.0,2048.0,,98.32,,us-east-1,use1-az6
p5.48xlarge,H100,8.0,192.0,2048.0,,90,,us-east-1,use1-az6
p5.48xlarge,H100,8.0,192.0,2048.0,,98.32,,us-east-1,use1-az4
",
        expect![[r#"
            aws p5.48xlarge H100:8 us-east-1/use1-az6 od=$98.32 spot=- vcpus=192 mem=2097152MiB
            aws p5.48xlarge H100:8 us-east-1/use1-az4 od=$98.32 spot=- vcpus=192 mem=2097152MiB
            aws/vms.csv:3: warning: duplicate row for p5.48xlarge in us-east-1/use1-az6 (first at line 2); skipped
        "#]],
    );
}

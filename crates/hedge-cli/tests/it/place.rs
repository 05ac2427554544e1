use crate::{hedge, render, temp_file, SKY};
use expect_test::{expect, Expect};

fn check(args: &[&str], expect: Expect) {
    expect.assert_eq(&render(&hedge(args)));
}

#[test]
fn place_table_on_the_shared_catalog() {
    check(
        &[
            "place",
            "examples/tasks/03-h100-8-spot.yaml",
            "--catalog",
            SKY,
        ],
        expect![[r#"
            exit: 0
            --- stdout
            task h100-8-spot: nebius gpu-h100-sxm_8gpu-128vcpu-1600gb in eu-north1, spot, 1 node(s), $10.00/h

            RANK  PROVIDER  INSTANCE TYPE                     LOCATION                       MARKET  ACCELERATORS  NODES  $/HOUR
            1     nebius    gpu-h100-sxm_8gpu-128vcpu-1600gb  eu-north1                      spot    H100:8        1      $10.00
            2     aws       p5.48xlarge                       us-east-1/use1-atl2-az1        spot    H100:8        1      $10.2397
            3     gcp       a3-highgpu-8g                     europe-north1/europe-north1-c  spot    H100:8        1      $12.31282
            4     azure     Standard_ND96isr_H100_v5          eastus                         spot    H100:8        1      $98.32

            rejected:
              lambda: no spot market
              oci: no spot market
            --- stderr
        "#]],
    );
}

#[test]
fn place_json_shape() {
    check(
        &[
            "place",
            "examples/tasks/20-multinode.yaml",
            "--catalog",
            SKY,
            "--format",
            "json",
            "--alternatives",
            "2",
        ],
        expect![[r#"
            exit: 0
            --- stdout
            {
              "provider": "lambda",
              "instance_type": "gpu_8x_a100",
              "region": "asia-northeast-1",
              "zone": null,
              "market": "on-demand",
              "accelerators": {
                "name": "A100",
                "count": 8
              },
              "num_nodes": 4,
              "hourly_cost_usd": 63.68,
              "alternatives": [
                {
                  "provider": "gcp",
                  "instance_type": "a2-highgpu-8g",
                  "region": "europe-west4",
                  "zone": "europe-west4-a",
                  "market": "on-demand",
                  "accelerators": {
                    "name": "A100",
                    "count": 8
                  },
                  "num_nodes": 4,
                  "hourly_cost_usd": 77.6868
                },
                {
                  "provider": "aws",
                  "instance_type": "p4d.24xlarge",
                  "region": "us-east-2",
                  "zone": "use2-az1",
                  "market": "on-demand",
                  "accelerators": {
                    "name": "A100",
                    "count": 8
                  },
                  "num_nodes": 4,
                  "hourly_cost_usd": 87.83056
                }
              ],
              "rejected": [
                {
                  "provider": "nebius",
                  "alternative": 0,
                  "reason": "nebius: no A100:8 offer"
                }
              ]
            }
            --- stderr
        "#]],
    );
}

#[test]
fn place_unplaceable_task_exits_1_with_reasons() {
    let t = temp_file(
        "gaudi.yaml",
        "resources:\n  accelerators: Gaudi3:8\n  cloud: aws\n",
    );
    let o = hedge(&["place", t.to_str().unwrap(), "--catalog", SKY]);
    assert_eq!(o.status.code(), Some(1));
    let out = render(&o).replace(t.to_str().unwrap(), "TASK");
    expect![[r#"
        exit: 1
        --- stdout
        task (unnamed): no feasible placement

        rejected:
          aws: no Gaudi3:8 offer
        --- stderr
        error: TASK: no feasible placement (1 rejections)
    "#]]
    .assert_eq(&out);
}

#[test]
fn bad_task_names_file_and_field_and_unknown_fields_warn() {
    let t = temp_file("bad.yaml", "resources:\n  accelerators: H100:0\n");
    let o = hedge(&["place", t.to_str().unwrap(), "--catalog", SKY]);
    expect![[r#"
        exit: 1
        --- stdout
        --- stderr
        error: task file TASK: resources.accelerators: count must be a positive whole number, got 0
    "#]]
    .assert_eq(&render(&o).replace(t.to_str().unwrap(), "TASK"));
    let t = temp_file(
        "typo.yaml",
        "resources:\n  accelerators: H100:8\n  cloud: lambda\n  use_sport: true\n",
    );
    let o = hedge(&[
        "place",
        t.to_str().unwrap(),
        "--catalog",
        SKY,
        "--alternatives",
        "0",
    ]);
    expect![[r#"
        exit: 0
        --- stdout
        task (unnamed): lambda gpu_8x_h100_sxm5 in asia-northeast-1, on-demand, 1 node(s), $31.92/h

        RANK  PROVIDER  INSTANCE TYPE     LOCATION          MARKET     ACCELERATORS  NODES  $/HOUR
        1     lambda    gpu_8x_h100_sxm5  asia-northeast-1  on-demand  H100:8        1      $31.92
        --- stderr
        warning: TASK: resources.use_sport: unknown field, ignored
    "#]]
    .assert_eq(&render(&o).replace(t.to_str().unwrap(), "TASK"));
}

#[test]
fn default_catalog_places_every_example_task() {
    let mut dir: Vec<_> = std::fs::read_dir(crate::repo_root().join("examples/tasks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dir.sort();
    assert!(dir.len() >= 20);
    for p in dir {
        let o = hedge(&["place", p.to_str().unwrap(), "--format", "json"]);
        assert!(o.status.success(), "{}", render(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(
            v["hourly_cost_usd"].as_f64().unwrap() > 0.0,
            "{}",
            render(&o)
        );
    }
}

#[test]
fn offers_filters_and_sorts() {
    check(
        &[
            "offers",
            "--catalog",
            SKY,
            "--gpu",
            "A100:8",
            "--provider",
            "gcp",
            "--spot",
            "--limit",
            "3",
        ],
        expect![[r#"
            exit: 0
            --- stdout
            PROVIDER  INSTANCE TYPE  ACCELERATORS  VCPUS  MEM GIB  LOCATION                     ON-DEMAND/H  SPOT/H     PER GPU/H
            gcp       a2-highgpu-8g  A100:8        96     680      me-west1/me-west1-a          $32.32579    $11.14528  $1.39316
            gcp       a2-highgpu-8g  A100:8        96     680      me-west1/me-west1-c          $32.32579    $11.14528  $1.39316
            gcp       a2-highgpu-8g  A100:8        96     680      europe-west4/europe-west4-a  $19.4217     $11.89872  $1.48734
            (3 of 19 offers shown)
            --- stderr
        "#]],
    );
    check(
        &[
            "offers",
            "--catalog",
            SKY,
            "--gpu",
            "h100",
            "--region",
            "us-east-1",
            "--sort",
            "gpu-price",
            "--limit",
            "4",
        ],
        expect![[r#"
            exit: 0
            --- stdout
            PROVIDER  INSTANCE TYPE     ACCELERATORS  VCPUS  MEM GIB  LOCATION   ON-DEMAND/H  SPOT/H  PER GPU/H
            lambda    gpu_1x_h100_pcie  H100:1        26     200      us-east-1  $3.29        -       $3.29
            lambda    gpu_8x_h100_sxm5  H100:8        208    1800     us-east-1  $31.92       -       $3.99
            lambda    gpu_4x_h100_sxm5  H100:4        104    900      us-east-1  $16.36       -       $4.09
            lambda    gpu_2x_h100_sxm5  H100:2        52     450      us-east-1  $8.38        -       $4.19
            (4 of 18 offers shown)
            --- stderr
        "#]],
    );
    let o = hedge(&[
        "offers",
        "--catalog",
        SKY,
        "--gpu",
        "B200",
        "--format",
        "json",
    ]);
    let v: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!v.is_empty());
    let prices: Vec<f64> = v
        .iter()
        .map(|x| x["on_demand_usd"].as_f64().unwrap())
        .collect();
    assert!(prices.windows(2).all(|w| w[0] <= w[1]), "{prices:?}");
    assert!(v.iter().all(|x| x["accelerators"]["name"] == "B200"));
}

#[test]
fn offers_bad_gpu_is_an_error() {
    check(
        &["offers", "--catalog", SKY, "--gpu", "H100:0"],
        expect![[r#"
            exit: 1
            --- stdout
            --- stderr
            error: --gpu "H100:0": accelerator count "0" is not a positive whole number
        "#]],
    );
}

#[test]
fn catalog_check_counts_the_shared_catalog() {
    let o = hedge(&["catalog", "check", SKY, "--format", "json"]);
    assert!(o.status.success(), "{}", render(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["offers"].as_u64().unwrap() > 500, "{v}");
    assert_eq!(v["errors"], 0);
    let o = hedge(&["catalog", "check", "examples/tasks/01-h100-8.yaml"]);
    assert_eq!(o.status.code(), Some(1), "{}", render(&o));
}

#[test]
fn broken_pipe_is_success() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_hedge"))
        .args(["offers", "--catalog", SKY])
        .current_dir(crate::repo_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before hedge writes
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", render(&o));
    assert!(o.stderr.is_empty(), "{}", render(&o));
}

#!/usr/bin/env bash
# Portfolio study: a year of synthetic Philly-shaped load (10 jobs/h, ~850 GPUs busy on average) on a
# hand-written 3-provider H100 portfolio (examples/portfolios/three-cloud-h100.json: aws 384, gcp 192,
# lambda 128 GPUs for 2027), a 72-hour outage of the largest provider (aws) on 2027-03-01, and
# lock-in vs cheapest-failover vs hedge on the same jobs and outage. Spot pools for hedge: GCP us-central1
# H100 driven by the GCP H100 probe trace of us-central1-a, and AWS us-east-1 H100 driven by the AWS
# us-east-1a V100 availability trace (the only AWS trace there is; its dynamics stand in for H100's).
# Writes bench/sim/results/portfolio-study.{txt,html}. Usage: bash bench/sim/portfolio-study.sh [SEED]
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hedge-target}"
cargo build --release -q -p hedge-cli
H="$CARGO_TARGET_DIR/release/hedge"
D="$(cd .. && pwd)/shared/data"
seed="${1:-7}"
mkdir -p bench/sim/results
args=(--trace "synthetic:$D/philly-derived/philly_job_distribution.csv" --jobs 87600 --jobs-per-hour 10
  --portfolio examples/portfolios/three-cloud-h100.json --compare lock-in,cheapest-failover,hedge
  --outage aws@2027-03-01T00:00+72h --checkpoint-interval 30m --restart-overhead 5m --horizon 365d --seed "$seed"
  --spot-pool "gcp/us-central1:H100:$D/h100-spot/conv/converted_multi_region_aligned_h100_16_merged/us-central1-a_h100_16/full.json:8:16"
  --spot-pool "aws/us-east-1:H100:$D/spot-traces/availability/1-node/aws-02-15-2023/us-east-1a_v100_1.json:8:32")
"$H" simulate "${args[@]}" | tee bench/sim/results/portfolio-study.txt
"$H" simulate "${args[@]}" --format html -o bench/sim/results/portfolio-study.html

# The same study on the portfolio `hedge plan` chooses for this load (bench/sim/portfolio-plan.yaml: flat 850 H100,
# aws/gcp/lambda at the default catalog's prices). Its largest provider is lambda, so lambda goes down.
"$H" plan bench/sim/portfolio-plan.yaml --format json > bench/sim/results/plan.json
planned=("${args[@]}")
planned[7]=bench/sim/results/plan.json                      # --portfolio
planned[11]=lambda@2027-03-01T00:00+72h                     # --outage
"$H" simulate "${planned[@]}" | tee bench/sim/results/portfolio-study-planned.txt

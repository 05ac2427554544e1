#!/usr/bin/env bash
# The plan's portfolio on the plan's own workload: `hedge plan examples/small-team.yaml`, then
# `hedge simulate --workload-from-plan` for each of its scenarios, comparing the simulated cost with the plan's
# expected cost of that scenario. Job sizes: Philly's (duration, GPUs) pairs, and the same pairs as 1-GPU jobs of
# the same GPU-hours (as divisible as the planner's fluid demand), to separate the two causes of the gap.
# Usage: bash bench/sim/plan-workload.sh   (writes bench/sim/results/plan-workload.txt)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hedge-target}"
cargo build --release -q -p hedge-cli
H="$CARGO_TARGET_DIR/release/hedge"
R=bench/sim/results
mkdir -p "$R"
tmp="$(mktemp -d /tmp/plan-workload.XXXXXX)"
"$H" plan examples/small-team.yaml --format json > "$tmp/plan.json"
awk -F, 'NR == 1 { print; next } { print $1 ",1" }' data/traces/philly_job_distribution.csv > "$tmp/philly-1gpu.csv"
{
  for sizes in "data/traces/philly_job_distribution.csv" "$tmp/philly-1gpu.csv"; do
    for scenario in base funding-round pivot; do
      for seed in 7 1; do
        echo "== sizes $(basename "$sizes"), scenario $scenario, seed $seed"
        "$H" simulate --trace "synthetic:$sizes" --workload-from-plan examples/small-team.yaml --scenario "$scenario" \
          --portfolio "$tmp/plan.json" --compare lock-in,cheapest-failover,hedge --seed "$seed" \
          | grep -E "^(total cost|  on-demand|  spot|commitment utilization|served GPU-hours|SLO|waiting|cost \+ delay|rank)|plan's expected|simulated,"
      done
    done
  done
} | sed "s|$tmp/||" | tee "$R/plan-workload.txt"
rm -rf "$tmp"

#!/usr/bin/env bash
# "Can't Be Late" (NSDI'24) reproduced on the shared spot traces: one 48-hour job, restart overhead 0.2 h
# (12 min), tight (52 h) and loose (70 h) deadlines; on-demand only vs greedy vs uniform progress vs the
# omniscient optimum, averaged over 40 evenly spaced start points per trace.
# Usage: bash bench/sim/cant-be-late.sh   (writes bench/sim/results/cbl-*.txt)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hedge-target}"
cargo build --release -q -p hedge-cli
H="$CARGO_TARGET_DIR/release/hedge"
D="$(cd .. && pwd)/shared/data"
mkdir -p bench/sim/results
for deadline in 52 70; do
  # AWS V100/K80 availability traces (1 = available); per-tick V100 spot prices where the artifact has them,
  # else the p3.2xlarge ratio ($0.918 spot / $3.06 on-demand).
  "$H" simulate --trace "spot:$D/spot-traces/availability" --compare on-demand,greedy,uniform-progress,omniscient \
    --job-hours 48 --deadline-hours "$deadline" --restart-overhead 12m --starts 40 \
    --spot-prices "$D/h100-spot/v100_spot_prices.json" | tee "bench/sim/results/cbl-aws-${deadline}h.txt"
  # GCP H100 probes (sky_spot format, 1 = preempted), 14 days per zone; a3-highgpu-8g us-central1 prices.
  : > "bench/sim/results/cbl-h100-${deadline}h.txt"
  for f in "$D"/h100-spot/conv/converted_multi_region_aligned_h100_16_merged/*/full.json; do
    "$H" simulate --trace "spot:$f" --job-hours 48 --deadline-hours "$deadline" --restart-overhead 12m --starts 40 \
      --on-demand-price 82.52543396 --spot-price 18.979008 | sed -n 2p | sed "s|^|$(basename "$(dirname "$f")") |" \
      | tee -a "bench/sim/results/cbl-h100-${deadline}h.txt"
  done
done

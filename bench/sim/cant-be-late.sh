#!/usr/bin/env bash
# "Can't Be Late" (NSDI'24) on the shared spot traces, Hedge against the paper's authors' own code, in one run:
# one 48-hour job, restart overhead 0.2 h (12 min), tight (52 h) and loose (70 h) deadlines; on-demand only,
# greedy, Hedge's uniform progress, Hedge's availability-aware policy and the omniscient optimum
# (`hedge simulate`), and the authors' uniform progress (their simulator's `rc_cr_threshold` strategy, run
# from an unmodified copy of their `sky_spot` package by bench/sim/peer_up.py) on the same traces, prices
# and 40 start points.
# Usage: bash bench/sim/cant-be-late.sh   (writes bench/sim/results/cbl-*.json and cbl-*.txt)
# The authors' code: PEER_REPO, a git directory of github.com/andylizf/skynomad-artifact (default: the
# read-only mirror below); Python 3.10+ with the standard library only.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hedge-target}"
cargo build --release -q -p hedge-cli
H="$CARGO_TARGET_DIR/release/hedge"
D="$(cd .. && pwd)/shared/data"
R=bench/sim/results
PEER_REPO="${PEER_REPO:-/work/.mirror/andylizf+skynomad-artifact/repo}"
mkdir -p "$R"
peer="$(mktemp -d /tmp/cbl-peer.XXXXXX)"
if ! git -C "$PEER_REPO" archive HEAD sky_spot | tar -x -C "$peer"; then
  echo "error: cannot read the authors' simulator from PEER_REPO=$PEER_REPO (a git directory of andylizf/skynomad-artifact)" >&2
  exit 1
fi
echo "authors' code: $(git -C "$PEER_REPO" log -1 --format='%H (%cd)')" | tee "$R/cbl-peer-commit.txt"
for deadline in 52 70; do
  # AWS V100/K80 availability traces (1 = available); per-tick V100 spot prices where the artifact has them,
  # else the p3.2xlarge ratio ($0.918 spot / $3.06 on-demand).
  "$H" simulate --trace "spot:$D/spot-traces/availability" --job-hours 48 --deadline-hours "$deadline" \
    --restart-overhead 12m --starts 40 --spot-prices "$D/h100-spot/v100_spot_prices.json" --format json > "$R/cbl-aws-${deadline}h.json"
  python3 bench/sim/peer_up.py "$peer" "$R/cbl-aws-${deadline}h.json" "$deadline" --spot-prices "$D/h100-spot/v100_spot_prices.json" \
    | tee "$R/cbl-aws-${deadline}h.txt"
  # GCP H100 probes (sky_spot format, 1 = preempted), 14 days per zone; a3-highgpu-8g us-central1 prices.
  out="$R/cbl-h100-${deadline}h.json"
  echo "[" > "$out"; sep=""
  for f in "$D"/h100-spot/conv/converted_multi_region_aligned_h100_16_merged/*/full.json; do
    printf '%s' "$sep" >> "$out"; sep=","
    "$H" simulate --trace "spot:$f" --job-hours 48 --deadline-hours "$deadline" --restart-overhead 12m --starts 40 \
      --on-demand-price 82.52543396 --spot-price 18.979008 --format json | sed '1d;$d' >> "$out"
  done
  echo "]" >> "$out"
  python3 bench/sim/peer_up.py "$peer" "$out" "$deadline" --on-demand-price 82.52543396 --spot-price 18.979008 \
    | tee "$R/cbl-h100-${deadline}h.txt"
done
rm -rf "$peer"

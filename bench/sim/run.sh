#!/usr/bin/env bash
# hedge-sim benchmarks. Prints each figure next to its target and the published anchors.
#   1. core loop: events/s of the event queue alone (target >= 2M events/s);
#   2. the whole Alibaba GPU 2023 trace (gpuspec33, 8,152 pods) with a 72 h outage, 3 policies (target < 1 s each);
#   3. 1M synthetic Philly-shaped jobs on a 100k-GPU, 5-provider fleet (target < 60 s), peak RSS at 100k vs 1M
#      jobs (memory must stay bounded as the trace grows).
# Published anchors: the Alibaba PAI Python simulator takes 51-111 s for 20k jobs; Gavel 3.6-4.2 min per 108-GPU run.
# Usage: bash bench/sim/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hedge-target}"
cargo build --release -q -p hedge-cli
H="$CARGO_TARGET_DIR/release/hedge"
D="$(cd .. && pwd)/shared/data"

echo "== 1. core loop"
cargo bench -q -p hedge-sim --bench core_loop 2>/dev/null | grep "core loop"

echo "== 2. whole Alibaba 2023 trace, aws outage 72 h"
for p in lock-in cheapest-failover hedge; do
  /usr/bin/time -f "%e s wall, %U s user CPU, %M KB peak RSS" "$H" simulate --trace "alibaba2023:$D/alibaba-gpu-v2023/csv/openb_pod_list_gpuspec33.csv" \
    --policy "$p" --outage aws@2027-01-20T00:00+72h --checkpoint-interval 30m --format json 2>&1 >/tmp/hedge-sim-bench.json | sed "s/^/$p: /"
  grep -E '"(events|submitted)"' /tmp/hedge-sim-bench.json | tr -d ' ,\n'; echo
done

echo "== 3. synthetic Philly-shaped jobs on a 100k-GPU, 5-provider fleet (hedge policy, aws outage 72 h)"
caps=(--on-demand-cap aws:H100=20000 --on-demand-cap azure:H100=20000 --on-demand-cap gcp:H100=20000
      --on-demand-cap gcp/us-central1:H100=0 --on-demand-cap lambda:H100=20000 --on-demand-cap nebius:H100=20000)
for n in 100000 1000000; do
  /usr/bin/time -f "%e s wall, %U s user CPU, %M KB peak RSS" "$H" simulate --trace "synthetic:$D/philly-derived/philly_job_distribution.csv" \
    --jobs "$n" --jobs-per-hour 800 --portfolio bench/sim/fleet-100k-portfolio.json --policy hedge \
    --outage aws@2027-01-20T00:00+72h --checkpoint-interval 30m --restart-overhead 5m --seed 1 "${caps[@]}" \
    --format json 2>&1 >/tmp/hedge-sim-bench.json | sed "s/^/$n jobs: /"
  grep -E '"(events|placements|finished|balanced)"' /tmp/hedge-sim-bench.json | tr -d ' ,\n'; echo
done
echo "anchors: Alibaba PAI simulator 51-111 s / 20k jobs (2.5-5.6 ms per job); Gavel 3.6-4.2 min per 108-GPU run"

#!/usr/bin/env bash
# The planner's benchmarks.
#
# `run.sh [scale] [ARGS]`: issue 5's goal model (6 providers x 8 accelerators x 3 terms x 36 start periods,
# 60 periods) at 25/50/100/200/400 scenarios by Benders decomposition, against the extensive form (the
# peer: one LP with every scenario's second stage) measured in the same run, on the same solver.
#   ARGS: [--scenarios 25,50,100,200,400] [--extensive 25] [--backend cbc] [--gap 1e-4]
# `run.sh oos [ARGS]`: out of sample on generated 36-month instances: the stochastic plan against the
# expected-value plan, the lookback recommender, all on-demand and each path's hindsight optimum.
#   ARGS: [--paths 100] [--scenarios 20] [--seeds 1,2,3]
# `run.sh forecast [ARGS]`: forecast accuracy on the real traces in ../shared/data against seasonal naive.
#   ARGS: [--data ../shared/data] [--scenarios 10]
# `run.sh rolling [ARGS]`: rolling re-planning (re-plan every period along each path) against the plan signed
# once and each path's hindsight optimum, on three generated 36-month instances.
#   ARGS: [--paths 300] [--scenarios 20] [--seeds 1,2,3] [--every 1] [--policies off|on]
#         [--generator synthetic|switching]
# `run.sh solvers [ARGS]`: CBC and HiGHS side by side on examples/frontier-lab.yaml (one model, integer blocks
# and minimums). Builds with `--features highs` (HiGHS from source: needs cmake and libclang-dev).
#   ARGS: [--repeat 3] [--gap 1e-4] [--backends cbc,highs] [FILE ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hedge-target}"
bench=scale
case "${1:-}" in
  scale|oos|forecast|rolling|solvers) bench="$1"; shift ;;
esac
features=()
[ "$bench" = solvers ] && features=(--features highs)
cargo bench -q -p hedge-planner "${features[@]}" --bench "$bench" -- "$@"

#!/usr/bin/env bash
# The planner's scale benchmark: issue 5's goal model (6 providers x 8 accelerators x 3 terms x 36 start
# periods, 60 periods) at 25/50/100/200/400 scenarios by Benders decomposition, against the extensive form
# (the peer: one LP with every scenario's second stage) measured in the same run, on the same solver.
# Usage: bash bench/planner/run.sh [--scenarios 25,50,100,200,400] [--extensive 25] [--backend cbc] [--gap 1e-4]
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hedge-target}"
cargo bench -q -p hedge-planner --bench scale -- "$@"

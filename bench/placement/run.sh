#!/usr/bin/env bash
# Hedge vs SkyPilot 0.14.1's optimizer on the same catalog and the same tasks, timed in one run.
#
#   bash bench/placement/run.sh [CATALOG_DIR] [TASK.yaml...]
#
# Defaults: the shared SkyPilot v8 catalog (../shared/data/skypilot-catalog/v8) and examples/tasks/*.yaml.
# Installs skypilot==0.14.1 into $HEDGE_SKYPILOT_VENV (default /var/tmp/hedge-skypilot-venv) if missing.
# SkyPilot runs offline: the CSVs are copied under a temporary $HOME/.sky/catalogs/v8/, HOME and
# SKY_RUNTIME_DIR point at that folder, and the enabled-clouds check is patched (skypilot_place.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
CATALOG=${1:-../shared/data/skypilot-catalog/v8}
shift || true
if [ "$#" -gt 0 ]; then TASKS=("$@"); else TASKS=(examples/tasks/*.yaml); fi
VENV=${HEDGE_SKYPILOT_VENV:-/var/tmp/hedge-skypilot-venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/hedge-target}

if ! "$VENV/bin/python" -c 'import sky' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q skypilot==0.14.1
fi
cargo build --release -q -p hedge-cli --bin hedge
cargo build --release -q -p hedge-placement --example bench_place
HEDGE=$CARGO_TARGET_DIR/release/hedge
BENCH=$CARGO_TARGET_DIR/release/examples/bench_place

OUT=$(mktemp -d /tmp/hedge-bench-placement.XXXXXX)
SKYHOME=$OUT/skyhome
mkdir -p "$SKYHOME/.sky/catalogs/v8" "$OUT/hedge"
cp -r "$CATALOG"/. "$SKYHOME/.sky/catalogs/v8/"

echo "== SkyPilot 0.14.1 optimizer (${#TASKS[@]} tasks)" >&2
HOME=$SKYHOME SKY_RUNTIME_DIR=$SKYHOME "$VENV/bin/python" bench/placement/skypilot_place.py "${TASKS[@]}" \
  > "$OUT/skypilot.jsonl" 2> "$OUT/skypilot.log"
echo "== hedge place --format json" >&2
for t in "${TASKS[@]}"; do
  "$HEDGE" place --format json --catalog "$CATALOG" "$t" > "$OUT/hedge/$(basename "$t" .yaml).json" 2>> "$OUT/hedge.log" || true
done
echo "== hedge in-process timing (real and synthetic 200k-offer catalog)" >&2
"$BENCH" "$CATALOG" "${TASKS[@]}" > "$OUT/bench.json"
python3 bench/placement/compare.py "$OUT"
echo "raw results: $OUT" >&2

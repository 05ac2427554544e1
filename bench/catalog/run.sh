#!/usr/bin/env bash
# Catalog load benchmark. Builds a SYNTHETIC 200k-offer catalog by replicating the real SkyPilot v8 import
# (../shared/data/skypilot-catalog/v8) with renamed regions, then times, in one run:
#   - hedge_catalog::load on the native JSON (goal: under 1 s for 200k offers, release build);
#   - hedge_catalog::load on the same rows as a SkyPilot v8 directory (CSV import, GCP join, overrides);
#   - the peer: pandas.read_csv over the same CSVs, which is how SkyPilot 0.14.1 loads its catalog.
# and prints the ratios. Usage: bash bench/catalog/run.sh [OFFERS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
OFFERS="${1:-200000}"
RUNS="${2:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hedge-target}"
SRC="${HEDGE_SHARED_DATA:-../shared/data}/skypilot-catalog/v8"
[ -d "$SRC" ] || { echo "missing $SRC (the shared data sets)" >&2; exit 1; }
OUT="$(mktemp -d "${TMPDIR:-/tmp}/hedge-catalog-bench.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT

cargo build -q --release -p hedge-catalog --example synth-catalog --example bench-load
BIN="$CARGO_TARGET_DIR/release/examples"
"$BIN/synth-catalog" "$SRC" "$OUT" "$OFFERS"
echo "SYNTHETIC catalog, $(du -h "$OUT/native.json" | cut -f1) native JSON; $RUNS runs each; $(nproc) cores"

native_line="$("$BIN/bench-load" --runs "$RUNS" "$OUT/native.json")"
csv_line="$("$BIN/bench-load" --runs "$RUNS" "$OUT/skypilot")"
echo "hedge native JSON   : ${native_line#"$OUT/"}"
echo "hedge SkyPilot CSVs : ${csv_line#"$OUT/"}"

# The peer: pandas (SkyPilot's reader). Use a Python with pandas, or make a venv for it.
PY=""
for cand in "${HEDGE_BENCH_PYTHON:-}" python3 /var/tmp/hedge-skypilot-venv/bin/python /var/tmp/hedge-bench-pandas-venv/bin/python; do
  [ -n "$cand" ] && "$cand" -c 'import pandas' 2>/dev/null && { PY="$cand"; break; }
done
if [ -z "$PY" ]; then
  echo "(installing pandas into /var/tmp/hedge-bench-pandas-venv for the peer measurement)"
  python3 -m venv /var/tmp/hedge-bench-pandas-venv && /var/tmp/hedge-bench-pandas-venv/bin/pip install -q pandas && PY=/var/tmp/hedge-bench-pandas-venv/bin/python
fi
peer_line="$("$PY" bench/catalog/pandas_load.py "$RUNS" "$OUT/skypilot")"
echo "peer                : $peer_line"

med() { sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p' <<<"$1"; }
cpu() { sed -n 's/.*cpu_ms=\([0-9.]*\).*/\1/p' <<<"$1"; }
awk -v n="$(med "$native_line")" -v c="$(med "$csv_line")" -v p="$(med "$peer_line")" \
    -v nc="$(cpu "$native_line")" -v cc="$(cpu "$csv_line")" -v pc="$(cpu "$peer_line")" -v offers="$OFFERS" -v load="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
  printf "SYNTHETIC %d offers (load average %s on %s):\n", offers, load, "'"$(nproc)"' cores";
  printf "  native load   wall %6.0f ms  cpu %6.0f ms  (goal < 1000 ms: %s)\n", n, nc, (n < 1000 ? "met" : "MISSED");
  printf "  CSV import    wall %6.0f ms  cpu %6.0f ms\n", c, cc;
  printf "  pandas peer   wall %6.0f ms  cpu %6.0f ms\n", p, pc;
  if (cc > 0 && nc > 0) printf "ratio (cpu) pandas.read_csv / hedge CSV import = %.2fx; pandas.read_csv / hedge native = %.2fx\n", pc / cc, pc / nc;
  printf "ratio (wall) pandas.read_csv / hedge CSV import = %.2fx; pandas.read_csv / hedge native = %.2fx\n", p / c, p / n;
}'

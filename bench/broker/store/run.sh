#!/usr/bin/env bash
# Store-level throughput of hedge-store on SQLite and PostgreSQL, with raw-driver baselines measured in the
# same run (crates/hedge-store/benches/store_insert.rs). Starts a throwaway PostgreSQL cluster unless
# HEDGE_TEST_DATABASE_URL is set. Output also goes to bench/broker/store/results.txt.
#
#   bash bench/broker/store/run.sh [--jobs N] [--queue N] [--writers N]
set -euo pipefail
cd "$(dirname "$0")/../../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hedge-target}"
if [ -z "${HEDGE_TEST_DATABASE_URL:-}" ]; then
  for HEDGE_PG_PORT in $(seq 55432 55480); do
    (exec 3<>"/dev/tcp/127.0.0.1/$HEDGE_PG_PORT") 2>/dev/null || break
  done
  export HEDGE_PG_PORT HEDGE_PG_DIR="$(mktemp -d /var/tmp/hedge-pg-bench.XXXXXX)"
  trap 'bash scripts/pg-test-server destroy' EXIT
  eval "$(bash scripts/pg-test-server start)"
fi
cargo bench -q -p hedge-store --bench store_insert -- --pg "$HEDGE_TEST_DATABASE_URL" "$@" \
  | tee bench/broker/store/results.txt

#!/usr/bin/env bash
# The ledger at 1M segments on SQLite and PostgreSQL, with plain-SQL baselines measured in the same run
# (crates/hedge-store/benches/ledger.rs): spend by team and month, and a streamed FOCUS 1.0 export. Starts a
# throwaway PostgreSQL cluster unless HEDGE_TEST_DATABASE_URL is set. Output also goes to
# bench/ledger/results.txt.
#
#   bash bench/ledger/run.sh [--rows N]
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hedge-target}"
if [ -z "${HEDGE_TEST_DATABASE_URL:-}" ]; then
  for HEDGE_PG_PORT in $(seq 55432 55480); do
    (exec 3<>"/dev/tcp/127.0.0.1/$HEDGE_PG_PORT") 2>/dev/null || break
  done
  export HEDGE_PG_PORT HEDGE_PG_DIR="$(mktemp -d /var/tmp/hedge-pg-bench.XXXXXX)"
  trap 'bash scripts/pg-test-server destroy' EXIT
  eval "$(bash scripts/pg-test-server start)"
fi
cargo bench -q -p hedge-store --bench ledger -- --pg "$HEDGE_TEST_DATABASE_URL" "$@" | tee bench/ledger/results.txt

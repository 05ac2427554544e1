#!/usr/bin/env bash
# Compares every on-demand and spot price of Hedge's SkyPilot import (data/catalog.json, or CATALOG) with
# SkyPilot 0.14.1's Resources.get_cost on the same v8 files, offline. Needs a Python with skypilot==0.14.1
# (HEDGE_SKYPILOT_PYTHON, else /var/tmp/hedge-skypilot-venv, else one is made there with pip).
# Usage: bash bench/catalog/check_prices.sh [CATALOG.json]
set -euo pipefail
cd "$(dirname "$0")/../.."
CATALOG="${1:-data/catalog.json}"
SRC="${HEDGE_SHARED_DATA:-../shared/data}/skypilot-catalog/v8"
PY="${HEDGE_SKYPILOT_PYTHON:-/var/tmp/hedge-skypilot-venv/bin/python}"
if ! "$PY" -c 'import sky' 2>/dev/null; then
  python3 -m venv /var/tmp/hedge-skypilot-venv
  /var/tmp/hedge-skypilot-venv/bin/pip install -q 'skypilot==0.14.1'
  PY=/var/tmp/hedge-skypilot-venv/bin/python
fi
HOME_DIR="$(mktemp -d)"
trap 'rm -rf "$HOME_DIR"' EXIT
mkdir -p "$HOME_DIR/.sky/catalogs"
cp -r "$SRC" "$HOME_DIR/.sky/catalogs/v8"
chmod -R u+w "$HOME_DIR/.sky"
HOME="$HOME_DIR" SKY_RUNTIME_DIR="$HOME_DIR" "$PY" bench/catalog/skypilot_prices.py "$CATALOG"

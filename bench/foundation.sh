#!/usr/bin/env bash
# Foundation benchmarks on SQLite and on PostgreSQL (started on loopback by the script).
# Usage: bench/foundation.sh [--services N] [--rate R] [--duration S]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p pave -p pave-loadgen
python3 bench/foundation.py --backend sqlite "$@"
scripts/with-postgres.sh python3 bench/foundation.py --backend postgres "$@"

#!/usr/bin/env bash
# Load benchmark of the flag SDK endpoints (Unleash client API full body and 304, OFREP):
# requests/s, p99 and resident memory. Usage: bench/flags_api.sh [--rate R] [--duration S]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p pave -p pave-loadgen
python3 bench/flags_api.py "$@"

#!/usr/bin/env bash
# Zero failed requests through the router during a rolling update, a blue-green switch and a
# rollback, under steady load. Usage: bench/rollout.sh [--rate R] [--replicas N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p pave -p pave-loadgen
exec python3 bench/rollout.py "$@"

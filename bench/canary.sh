#!/usr/bin/env bash
# Automatic rollback of a bad canary under steady load: the failed share users saw against
# the canary's weight x its error rate, and the time from the failed judgement to all traffic
# on stable. Usage: bench/canary.sh [--rate R] [--weight W] [--error-rate E] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p pave -p pave-loadgen
exec python3 bench/canary.py "$@"

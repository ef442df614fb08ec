#!/usr/bin/env bash
# Zero failed requests through the router while the control plane is SIGKILLed mid rolling,
# blue-green and canary rollouts, and while the pave binary is upgraded; plus what a restart of
# the router itself costs. Usage: bench/failover.sh [--rate R] [--replicas N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p pave -p pave-loadgen
exec python3 bench/failover.py "$@"

#!/usr/bin/env bash
# Pave's flag engine against Unleash's Rust engine (unleash-yggdrasil from crates.io): same flag
# sets, same contexts, one criterion run; prints the ratios. Usage: bench/flags.sh [criterion args]
set -euo pipefail
cd "$(dirname "$0")/flags"
exec cargo bench --bench engines -- "$@"

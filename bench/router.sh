#!/usr/bin/env bash
# Pave's router against nginx and HAProxy (Debian packages): same upstream, same load tool,
# same run. Prints the throughput ratios and the p99 latency each adds.
# Usage: bench/router.sh [--rounds N] [--duration S] [--threads N] ...
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || {
    echo "installing nginx-light (Debian package)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light >/dev/null
}
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || {
    echo "installing haproxy (Debian package)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q haproxy >/dev/null
}
cargo build --release --locked -p pave -p pave-loadgen
exec python3 bench/router.py "$@"

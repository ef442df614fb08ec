#!/usr/bin/env bash
# Load benchmark of the flag SDK endpoints (Unleash client API full body and 304, OFREP):
# requests/s, p99 and resident memory; then against Unleash Edge (crates.io, offline mode,
# same flags) on /api/client/features and /api/frontend, alternating rounds.
# Usage: bench/flags_api.sh [--rate R] [--duration S] [--rounds N] [--no-edge] [--only-edge]
set -euo pipefail
cd "$(dirname "$0")/.."
edge_version=20.1.0
tools="$PWD/target/bench-tools"
cargo build --release --locked -p pave -p pave-loadgen
edge=()
case " $* " in
  *" --no-edge "*)
    echo "*** --no-edge: Unleash Edge is left out, so no ratios against it ***" >&2 ;;
  *)
    [ -x "$tools/bin/unleash-edge" ] || {
      # Edge's default feature is S3 persistence (the AWS SDK), unused offline: left out, which
      # saves most of its build time (long on 2 cores).
      echo "building unleash-edge $edge_version (crates.io); this takes a while" >&2
      CARGO_TARGET_DIR="$PWD/target/bench-tools/build" cargo install --locked --no-default-features \
        --root "$tools" "unleash-edge@$edge_version"
    }
    edge=(--edge "$tools/bin/unleash-edge") ;;
esac
python3 bench/flags_api.py "${edge[@]}" "$@"

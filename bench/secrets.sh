#!/usr/bin/env bash
# Secret scanning throughput: pave (all gitleaks default rules) vs detect-secrets (PyPI) vs
# ripgrep's case-insensitive keyword pass (crates.io), on a real source tree (~160 MB) and a
# generated 1 GB one. Installs both peers under target/bench-tools. Prints MB/s and ratios.
# Usage: bench/secrets.sh [--generated-mb N] [--repeat N] [--skip-detect-secrets-on-generated]
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$PWD/target/bench-tools"
cargo build --release --locked -p pave
[ -x "$tools/bin/rg" ] || cargo install --locked --root "$tools" ripgrep@15.2.0
[ -x "$tools/venv/bin/detect-secrets" ] || {
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet detect-secrets==1.5.0
}
python3 bench/secrets.py --rg "$tools/bin/rg" --detect-secrets "$tools/venv/bin/detect-secrets" "$@"

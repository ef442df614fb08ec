#!/usr/bin/env bash
# Secret scanning throughput: pave (its built-in rules, and all gitleaks default rules) vs
# gitleaks itself (built natively from the Go module proxy), detect-secrets (PyPI) and
# ripgrep's case-insensitive keyword pass (crates.io), on a real source tree (~160 MB) and a
# generated 1 GB one. Installs the peers under target/bench-tools. Prints MB/s and ratios.
# Usage: bench/secrets.sh [--generated-mb N] [--repeat N] [--trees real] [--no-detect-secrets]
#        [--skip-detect-secrets-on-generated] [--no-gitleaks] [--skip-gitleaks-on-generated] [--no-ripgrep]
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$PWD/target/bench-tools"
gitleaks_version=v8.30.1
cargo build --release --locked -p pave
# A peer left out with --no-X is neither installed nor asked for.
wants() { case " $* " in *" --no-$1 "*) return 1 ;; esac; }
peers=()
if wants ripgrep "$@"; then
  [ -x "$tools/bin/rg" ] || cargo install --locked --root "$tools" ripgrep@15.2.0
  peers+=(--rg "$tools/bin/rg")
fi
if wants detect-secrets "$@"; then
  [ -x "$tools/venv/bin/detect-secrets" ] || {
    python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install --quiet detect-secrets==1.5.0
  }
  peers+=(--detect-secrets "$tools/venv/bin/detect-secrets")
fi
if wants gitleaks "$@"; then
  [ -x "$tools/bin/gitleaks" ] || {
    echo "building gitleaks $gitleaks_version (Go module proxy)" >&2
    GOBIN="$tools/bin" GOFLAGS=-mod=mod go install "github.com/zricethezav/gitleaks/v8@$gitleaks_version"
  }
  peers+=(--gitleaks "$tools/bin/gitleaks")
fi
python3 bench/secrets.py "${peers[@]}" "$@"

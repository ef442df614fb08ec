#!/usr/bin/env bash
# Every check CI runs, on a fresh machine: formatting, lints, all tests on SQLite, then the
# store and server tests again on a real PostgreSQL that this script starts (and stops)
# itself on a free loopback port, installing it from Debian's packages if needed.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# The canary analysis tests query a real Prometheus (Debian's package), which they start
# themselves on loopback; install it when missing.
if [ ! -x /usr/bin/prometheus ]; then
  step "installing prometheus (Debian package)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# The real-SDK test runs Unleash's and OpenFeature's official SDKs from the npm registry,
# pinned by package-lock.json.
if command -v npm >/dev/null; then
  step "installing the flag SDKs for the SDK conformance test (npm ci)"
  (cd crates/pave/tests/sdk && npm ci --no-audit --no-fund --loglevel=error)
fi

# The SBOM test validates Pave's CycloneDX output against the official schema with
# cyclonedx-python-lib from PyPI (it bundles the schemas, so validation is offline).
if command -v python3 >/dev/null; then
  step "installing the CycloneDX validator for the SBOM test (pip)"
  [ -x target/cdx-venv/bin/python ] || python3 -m venv target/cdx-venv
  target/cdx-venv/bin/pip install --quiet --disable-pip-version-check "cyclonedx-python-lib[json-validation]==11.12.0"
  export PAVE_CDX_PYTHON="$PWD/target/cdx-venv/bin/python"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests on SQLite"
cargo test --workspace --locked

# Pave's flag engine against Unleash's Yggdrasil on the client specification and generated
# contexts (a package outside the workspace, so the steps above never build Yggdrasil).
step "flag engine against Yggdrasil (differential test)"
PAVE_DIFF_CONTEXTS=400 cargo test --manifest-path bench/flags/Cargo.toml --release --locked --test differential

step "store, engine and server tests on PostgreSQL"
scripts/with-postgres.sh cargo test --locked -p pave-store -p pave-deploy -p pave-server -p pave

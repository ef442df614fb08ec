#!/usr/bin/env bash
# `pave assess` against `git log --format='%H %ct' --all` on one synthetic repository of
# COMMITS commits and TAGS release tags (built once with git fast-import, then reused), in one
# run; prints both times, the ratio, and pave's peak resident memory. Optionally also a real
# repository given as REAL_REPO=/path.
#   bench/assess.sh [COMMITS] [TAGS]      (default 1000000 5000)
set -euo pipefail
cd "$(dirname "$0")/.."
commits=${1:-1000000}
tags=${2:-5000}
repo="bench/out/history-$commits-$tags"
cargo build --release --locked -p pave >&2
if [ ! -d "$repo/.git" ]; then
  echo "building $repo (once)..." >&2
  rm -rf "$repo" && mkdir -p "$repo"
  git -C "$repo" init -q -b main
  python3 bench/gen_history.py "$commits" "$tags" | git -C "$repo" fast-import --quiet --done
fi
python3 - "$repo" "${REAL_REPO:-}" <<'PY'
import os, resource, subprocess, sys, time

def run(cmd, cwd=None):
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"{cmd} failed: {p.stderr.decode()[:500]}")
    return elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.stdout

def best(cmd, cwd=None, n=3):
    results = [run(cmd, cwd) for _ in range(n)]
    return min(r[0] for r in results), max(r[1] for r in results), results[0][2]

for repo in [r for r in sys.argv[1:] if r]:
    git_t, _, out = best(["git", "log", "--format=%H %ct", "--all"], cwd=repo)
    lines = out.count(b"\n")
    pave_t, rss_kb, _ = best([os.path.abspath("target/release/pave"), "assess", repo, "--json"])
    print(f"\n[{repo}] {lines} commits")
    print(f"  git log --format='%H %ct' --all : {git_t:.2f} s (best of 3)")
    print(f"  pave assess --json              : {pave_t:.2f} s (best of 3), peak RSS {rss_kb / 1024:.0f} MB")
    print(f"  ratio pave/git                  : {pave_t / git_t:.2f}x   (target <= 2x, RSS < 1024 MB)")
PY

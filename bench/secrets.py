#!/usr/bin/env python3
"""Secret scanning throughput: `pave scan secrets` with every gitleaks default rule on, against
detect-secrets (PyPI, its default plugins) and against ripgrep (crates.io) searching
case-insensitively for the rules' keywords alone -- the floor for any keyword-prefiltered
scanner. Same trees, same machine, one run; prints MB/s for each and the ratios.

Trees:
  - real: PostgreSQL 15's source tree (Debian's orig tarball of the upstream release, from
    deb.debian.org), about 160 MB;
  - generated: --generated-mb of text (default 1024) made of real source files copied with
    variations, with planted secrets of many kinds.
Each tool scans each tree --repeat times after one warm-up run (the page cache is warm for
all); the best time counts. Targets (issue 7): pave >= 50x detect-secrets, and pave within
2x of ripgrep's keyword pass.

gitleaks itself (built natively from the Go module proxy by bench/secrets.sh) runs as
`gitleaks dir` with its default rules, against pave twice: with Pave's built-in rules (what
each tool does out of the box; issue 16's target: >= 3x gitleaks' throughput) and with
gitleaks' own default rules loaded into Pave (--rules), the same rules on both engines.
Run through bench/secrets.sh."""

import argparse
import hashlib
import json
import lzma
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAVE = os.path.join(ROOT, "target", "release", "pave")
MIRROR = "http://deb.debian.org/debian"


def log(*a):
    print(*a, flush=True)


def fetch_real_tree(cache, package="postgresql-15"):
    """Downloads and unpacks the upstream source tarball Debian ships for `package`."""
    dest = os.path.join(cache, package)
    if os.path.isdir(dest):
        return dest
    os.makedirs(cache, exist_ok=True)
    sources = lzma.decompress(urllib.request.urlopen(f"{MIRROR}/dists/bookworm/main/source/Sources.xz").read())
    for stanza in sources.decode("utf-8", "replace").split("\n\n"):
        if not stanza.startswith(f"Package: {package}\n"):
            continue
        directory = re.search(r"^Directory: (\S+)$", stanza, re.M).group(1)
        orig = re.findall(r"^ [0-9a-f]{32} \d+ (\S+\.orig\.tar\.\w+)$", stanza, re.M)[0]
        break
    else:
        sys.exit(f"{package} is not in Debian's source index")
    archive = os.path.join(cache, orig)
    log(f"downloading {MIRROR}/{directory}/{orig}")
    with urllib.request.urlopen(f"{MIRROR}/{directory}/{orig}") as r, open(archive, "wb") as f:
        shutil.copyfileobj(r, f)
    tmp = dest + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(archive) as t:
        t.extractall(tmp, filter="data")
    inner = os.listdir(tmp)
    os.rename(os.path.join(tmp, inner[0]) if len(inner) == 1 else tmp, dest)
    shutil.rmtree(tmp, ignore_errors=True)
    os.remove(archive)
    return dest


def planted_secret(rng, i):
    """A made-up credential of one of several kinds, assembled so this file holds none."""
    alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    s = lambda n, alphabet=alnum: "".join(rng.choice(alphabet) for _ in range(n))
    kinds = [
        lambda: "AWS_ACCESS_KEY_ID=" + "AK" + "IA" + s(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
        lambda: "token: " + "gh" + "p_" + s(36),
        lambda: 'slack = "' + "xo" + "xb-" + s(10, "0123456789") + "-" + s(13, "0123456789") + "-" + s(24) + '"',
        lambda: "api_secret = '" + s(28) + "'",
        lambda: "STRIPE_KEY=" + "sk" + "_live_" + s(30),
    ]
    return kinds[i % len(kinds)]()


def generate_tree(cache, real, megabytes):
    """`megabytes` of text: the real tree's text files copied with small variations, spread
    over directories of 200 files, one planted secret per 50 files."""
    dest = os.path.join(cache, f"generated-{megabytes}mb")
    marker = os.path.join(dest, ".complete")
    if os.path.exists(marker):
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    texts = []
    for d, _, files in os.walk(real):
        for name in files:
            p = os.path.join(d, name)
            try:
                data = open(p, "rb").read()
            except OSError:
                continue
            if b"\0" in data[:8192] or not (200 < len(data) < 400_000):
                continue
            texts.append((name, data))
    rng = random.Random(7)
    target = megabytes * 1_000_000
    written, n = 0, 0
    log(f"generating {megabytes} MB from {len(texts)} real text files")
    while written < target:
        name, data = texts[n % len(texts)]
        # A variation: the file's lines rotated, so copies are not byte-identical.
        lines = data.split(b"\n")
        k = rng.randrange(len(lines))
        body = b"\n".join(lines[k:] + lines[:k])
        if n % 50 == 0:
            body += b"\n" + planted_secret(rng, n // 50).encode() + b"\n"
        sub = os.path.join(dest, f"d{n // 200:05d}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"{n:07d}-{name}"), "wb") as f:
            f.write(body)
        written += len(body)
        n += 1
    open(marker, "w").close()
    return dest


def tree_bytes(path):
    total, files = 0, 0
    for d, dirs, names in os.walk(path):
        dirs[:] = [x for x in dirs if x != ".git"]
        for name in names:
            total += os.path.getsize(os.path.join(d, name))
            files += 1
    return total, files


def keywords(rules):
    out = set()
    text = open(rules).read()
    for block in re.findall(r"^keywords = \[(.*?)\]", text, re.M | re.S):
        out.update(k.lower() for k in re.findall(r'"([^"]*)"', block))
    return sorted(k for k in out if k)


CPU = {}


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd, ok_codes=(0, 1)):
    """Wall time of one run; its CPU time (user + system of the tool and every process it
    waited for, e.g. detect-secrets' worker pool) is kept in CPU[cmd[0]]."""
    c, t = cpu_seconds(), time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    CPU[cmd[0]] = cpu_seconds() - c
    if p.returncode not in ok_codes:
        sys.exit(f"{cmd[0]} failed ({p.returncode}): {p.stderr.decode()[-2000:]}")
    return dt, p


def best(cmd, repeat, ok_codes=(0, 1)):
    timed(cmd, ok_codes)  # warm-up: the page cache and the tool's own caches
    runs = []
    for _ in range(repeat):
        dt, p = timed(cmd, ok_codes)
        runs.append((dt, p, CPU[cmd[0]]))
    fastest = min(runs, key=lambda r: r[0])
    CPU[cmd[0]] = fastest[2]
    return fastest[0], runs[-1][1]


def gitleaks_findings(path):
    with open(path) as f:
        text = f.read().strip()
    return len(json.loads(text)) if text else 0


def compare_gitleaks(args, tree, mb):
    """gitleaks dir with its default rules against pave with its built-in rules (out of the
    box) and against pave with gitleaks' rules (the same rules, so the engines alone); the
    runs alternate gitleaks and pave so a slow stretch of the shared machine hits both."""
    report = os.path.join(args.cache, "gitleaks-report.json")
    gl_cmd = [args.gitleaks, "dir", tree, "--no-banner", "--log-level", "error", "--exit-code", "0",
              "--report-format", "json", "--report-path", report]
    # gitleaks decodes base64, hex and percent-encoded text and scans it again (5 levels by
    # default); Pave does not, so the engine comparison also runs gitleaks without it.
    gl_plain_cmd = gl_cmd + ["--max-decode-depth", "0"]
    builtin_cmd = [PAVE, "scan", "secrets", tree, "-f", "json"]
    same_cmd = [PAVE, "scan", "secrets", tree, "--config", args.rules, "-f", "json"]
    # No separate warm-up for gitleaks (minutes a run): pave's runs just read the same tree,
    # so the page cache is warm, and gitleaks keeps no cache of its own between runs.
    timed(builtin_cmd)
    gl_runs, gl_plain_runs, builtin_runs, same_runs = [], [], [], []
    for _ in range(args.repeat):
        gl_runs.append((timed(gl_cmd)[0], CPU[args.gitleaks]))
        gl_found = gitleaks_findings(report)
        dt, p = timed(builtin_cmd)
        builtin_runs.append((dt, CPU[PAVE]))
        gl_plain_runs.append((timed(gl_plain_cmd)[0], CPU[args.gitleaks]))
        same_runs.append((timed(same_cmd)[0], CPU[PAVE]))
    gl_s, gl_cpu = min(gl_runs)
    gl_plain_s, gl_plain_cpu = min(gl_plain_runs)
    builtin_s, builtin_cpu = min(builtin_runs)
    pave_gl_s, pave_gl_cpu = min(same_runs)
    builtin_found = len(json.loads(p.stdout)["findings"])
    log(f"  gitleaks dir (its default rules): {gl_s:.2f} s, {mb / gl_s:,.0f} MB/s, {gl_found} findings; "
        f"{gl_cpu:.2f} CPU s")
    log(f"  pave scan secrets (its built-in rules): {builtin_s:.2f} s, {mb / builtin_s:,.0f} MB/s, "
        f"{builtin_found} findings; {builtin_cpu:.2f} CPU s")
    out_of_box = gl_s / builtin_s
    engine = gl_s / pave_gl_s
    log(f"  -> out of the box, pave is {out_of_box:.2f}x gitleaks' throughput (target >= 3x: "
        f"{'met' if out_of_box >= 3 else 'NOT met'}); by CPU time {gl_cpu / builtin_cpu:.2f}x")
    log(f"  gitleaks dir --max-decode-depth 0 (its rules, no decoding): {gl_plain_s:.2f} s, "
        f"{mb / gl_plain_s:,.0f} MB/s; {gl_plain_cpu:.2f} CPU s")
    log(f"  pave scan secrets (gitleaks' rules): {pave_gl_s:.2f} s, {mb / pave_gl_s:,.0f} MB/s; "
        f"{pave_gl_cpu:.2f} CPU s")
    plain = gl_plain_s / pave_gl_s
    log(f"  -> same rules (gitleaks' defaults on both), pave is {engine:.2f}x gitleaks' throughput; "
        f"by CPU time {gl_cpu / pave_gl_cpu:.2f}x")
    log(f"  -> same rules and gitleaks not decoding (the engines alone), pave is {plain:.2f}x; "
        f"by CPU time {gl_plain_cpu / pave_gl_cpu:.2f}x")
    log(f"  (per run, gitleaks / pave built-in: "
        f"{', '.join(f'{g[0] / b[0]:.2f}x' for g, b in zip(gl_runs, builtin_runs))})")
    return {"gitleaks": gl_s, "gitleaks_cpu": gl_cpu, "gitleaks_findings": gl_found, "pave_builtin": builtin_s,
            "pave_builtin_cpu": builtin_cpu, "pave_builtin_findings": builtin_found,
            "ratio_pave_builtin_over_gitleaks": round(out_of_box, 3),
            "ratio_pave_same_rules_over_gitleaks": round(engine, 3), "gitleaks_no_decoding": gl_plain_s,
            "gitleaks_no_decoding_cpu": gl_plain_cpu, "pave_same_rules": pave_gl_s, "pave_same_rules_cpu": pave_gl_cpu,
            "ratio_pave_same_rules_over_gitleaks_no_decoding": round(plain, 3)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", default=os.path.join(ROOT, "..", "shared", "data", "gitleaks", "gitleaks.toml"))
    ap.add_argument("--cache", default=os.path.join(ROOT, "target", "bench-secrets"))
    ap.add_argument("--generated-mb", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--rg", default=shutil.which("rg") or "")
    ap.add_argument("--detect-secrets", default=shutil.which("detect-secrets") or "")
    ap.add_argument("--skip-detect-secrets-on-generated", action="store_true",
                    help="detect-secrets takes tens of minutes on 1 GB; its real-tree rate stands in")
    ap.add_argument("--trees", default="real,generated", help="which trees: real, generated, or both")
    ap.add_argument("--no-ripgrep", action="store_true", help="leave ripgrep out (a detect-secrets-only rerun)")
    ap.add_argument("--gitleaks", default=shutil.which("gitleaks") or "")
    ap.add_argument("--no-gitleaks", action="store_true", help="leave gitleaks out")
    ap.add_argument("--skip-gitleaks-on-generated", action="store_true",
                    help="gitleaks takes minutes a run on 1 GB; its real-tree ratios stand in")
    ap.add_argument("--no-detect-secrets", action="store_true",
                    help="leave detect-secrets out (minutes per tree; its ratio is issue 7's)")
    args = ap.parse_args()
    if not os.path.isfile(args.rules):
        sys.exit(f"gitleaks' rules are missing at {args.rules}")
    tools = [("ripgrep", args.rg, args.no_ripgrep), ("detect-secrets", args.detect_secrets, args.no_detect_secrets),
             ("gitleaks", args.gitleaks, args.no_gitleaks)]
    for tool, path, skipped in tools:
        if not path and not skipped:
            sys.exit(f"{tool} is not installed; bench/secrets.sh installs it")
    kw = keywords(args.rules)
    kwfile = os.path.join(args.cache, "keywords.txt")
    real = fetch_real_tree(args.cache)
    open(kwfile, "w").write("\n".join(kw) + "\n")
    wanted = set(args.trees.split(","))
    # Made only when asked for: a --trees real run needs neither the time nor the disk.
    generated = generate_tree(args.cache, real, args.generated_mb) if "generated" in wanted else None
    log(f"{len(kw)} distinct keywords from {args.rules}; machine: {os.cpu_count()} cores")
    results = {}
    trees = [("real (PostgreSQL 15 source)", real), (f"generated ({args.generated_mb} MB)", generated)]
    trees = [t for t in trees if t[0].split()[0] in wanted]
    # pave and ripgrep first, on a quiet machine; detect-secrets (minutes per tree) last.
    for label, tree in trees:
        size, files = tree_bytes(tree)
        mb = size / 1e6
        log(f"\n{label}: {mb:,.1f} MB in {files:,} files")
        pave_s, p = best([PAVE, "scan", "secrets", tree, "--config", args.rules, "-f", "json"], args.repeat)
        pave_cpu = CPU[PAVE]
        found = len(json.loads(p.stdout)["findings"])
        log(f"  pave scan secrets (all {len(open(args.rules).read().split('[[rules]]')) - 1} rules): "
            f"{pave_s:.2f} s, {mb / pave_s:,.0f} MB/s, {found} findings; {pave_cpu:.2f} CPU s")
        rg_s = None
        if not args.no_ripgrep:
            rg_s, p = best([args.rg, "-uu", "-i", "-F", "-c", "-f", kwfile, tree], args.repeat)
            log(f"  ripgrep -i, the {len(kw)} keywords only: {rg_s:.2f} s, {mb / rg_s:,.0f} MB/s, "
                f"{len(p.stdout.splitlines()):,} files with a keyword; {CPU[args.rg]:.2f} CPU s")
            log(f"  -> pave takes {pave_s / rg_s:.2f}x ripgrep's keyword pass (target <= 2x)")
        results[label] = {"mb": mb, "files": files, "pave": pave_s, "pave_cpu": pave_cpu, "ripgrep": rg_s,
                          "detect-secrets": None}
        if not args.no_gitleaks and not ("generated" in label and args.skip_gitleaks_on_generated):
            results[label].update(compare_gitleaks(args, tree, mb))
    for label, tree in trees:
        if args.no_detect_secrets or ("generated" in label and args.skip_detect_secrets_on_generated):
            continue
        r = results[label]
        # One run: the page cache is warm from the runs above, and a run takes minutes.
        ds_s, p = timed([args.detect_secrets, "scan", "--all-files", tree])
        found = sum(len(v) for v in json.loads(p.stdout)["results"].values())
        ds_cpu = CPU[args.detect_secrets]
        r["detect-secrets"], r["detect-secrets_cpu"] = ds_s, ds_cpu
        log(f"\n{label}: detect-secrets scan --all-files: {ds_s:.1f} s, {r['mb'] / ds_s:,.2f} MB/s, {found} findings; "
            f"{ds_cpu:.1f} CPU s")
        log(f"  -> pave is {ds_s / r['pave']:,.0f}x detect-secrets' throughput (target >= 50x); "
            f"by CPU time (what other load on the machine does not change) {ds_cpu / r['pave_cpu']:,.0f}x")
    log("\n" + json.dumps(results))


if __name__ == "__main__":
    main()

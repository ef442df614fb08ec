#!/usr/bin/env python3
"""Flag API load benchmark. Starts `pave serve` (release build, SQLite) on 127.0.0.1 with 20
flags of every strategy kind (constraints, segments, variants), creates an SDK token, and
drives with pave-loadgen (same machine, same 2 cores):
  - GET /api/client/features, full body (the Unleash server-SDK poll);
  - GET /api/client/features with If-None-Match (the 304 path most polls take);
  - POST /ofrep/v1/evaluate/flags/{key} (one OFREP evaluation with a context);
each first closed loop (peak requests/s), then open loop at --rate (p99 at that rate, which
corrects for coordinated omission). Resident memory is sampled every 0.5 s during the load
to show whether it stays flat. Targets (issue 6): full body >= 20,000 req/s, p99 < 5 ms.

Then Unleash Edge (Unleash's own Rust server, from crates.io; --edge), in offline mode on the
same 20 flags -- its bootstrap file is Pave's own /api/client/features answer -- against pave
serve on /api/client/features and on /api/frontend (evaluated for one context), closed loop at
the same connections in --rounds rounds that alternate which server goes first; prints the
median req/s of each, the ratio with its spread over the rounds, and each server's resident
memory (VmRSS after start, the most during the load, VmHWM). Targets (issue 16): >= 1.0x
Edge's requests/s on both endpoints, at no more memory. --no-edge leaves Edge out.
Every run stops by itself. Run it through bench/flags_api.sh."""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAVE = os.path.join(ROOT, "target", "release", "pave")
LOADGEN = os.path.join(ROOT, "target", "release", "pave-loadgen")
TOKEN = "pave_benchadmintoken000000000000000000000000000000"


def stop(proc):
    """SIGTERM, then SIGKILL if it has not ended within 10 s (by its pid, never by name)."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def environ(pid):
    """The environment process `pid` was executed with."""
    with open(f"/proc/{pid}/environ", "rb") as f:
        pairs = [kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv]
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def wait_http(url, headers=None, timeout=30):
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=1)
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.02)


def flags_yaml(n):
    """n flags mixing what SDKs meet in practice."""
    out = [
        "kind: Environment\nmetadata: {name: production}\nspec: {order: 1, production: true}\n",
        "kind: Segment\nmetadata: {name: beta}\nspec:\n  constraints:\n"
        "    - {contextName: plan, operator: IN, values: [beta, trial]}\n",
    ]
    for i in range(n):
        kind = i % 5
        if kind == 0:
            strategies = ("        - name: flexibleRollout\n          parameters: {rollout: 50, stickiness: default}\n"
                          "          constraints:\n"
                          "            - {contextName: region, operator: IN, values: [eu, us]}\n"
                          "            - {contextName: appVersion, operator: SEMVER_GTE, value: 2.0.0}\n")
        elif kind == 1:
            strategies = "        - name: userWithId\n          parameters: {userIds: 'u1,u2,u3,u4'}\n"
        elif kind == 2:
            strategies = ("        - name: default\n          segments: [beta]\n"
                          "          constraints:\n"
                          "            - {contextName: email, operator: STR_ENDS_WITH, values: ['@example.com'],"
                          " caseInsensitive: true}\n")
        elif kind == 3:
            strategies = "        - name: remoteAddress\n          parameters: {IPs: '10.0.0.0/8, 192.168.1.1'}\n"
        else:
            strategies = "        - name: flexibleRollout\n          parameters: {rollout: 25}\n"
        variants = ("      variants:\n        - {name: blue, payload: {type: string, value: b}}\n"
                    "        - {name: green}\n") if i % 3 == 0 else ""
        out.append(f"kind: Flag\nmetadata: {{name: flag-{i:02}}}\nspec:\n  type: release\n  environments:\n"
                   f"    production:\n      enabled: true\n      strategies:\n{strategies}{variants}")
    return "---\n".join(out)


def pave(url, *args):
    env = dict(os.environ, PAVE_URL=url, PAVE_TOKEN=TOKEN)
    out = subprocess.run([PAVE, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return out.stdout


def loadgen(url, args, rate=None, duration=10, connections=64, method="GET", headers=(), body=None):
    cmd = [LOADGEN, "--url", url, "--duration", str(duration), "--warmup", "2", "--connections",
           str(connections), "--threads", str(args.loadgen_threads), "--method", method, "--json"]
    if rate:
        cmd += ["--rate", str(rate)]
    for h in headers:
        cmd += ["--header", h]
    if body:
        cmd += ["--body-file", body]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop = pid, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.samples.append(rss_mb(self.pid))
            time.sleep(0.5)


EDGE_CLIENT = "*:production.edgebenchclient0000000000000000"
EDGE_FRONTEND = "*:production.edgebenchfrontend000000000000"
# One context for /api/frontend on both servers: it matches some flags' constraints.
FRONTEND_QUERY = "userId=user-42&properties%5Bregion%5D=eu&appName=bench&environment=production"


def compare_edge(args, pave_pid, pave_rss_started, pave_url, client_secret, frontend_secret, bootstrap,
                 body_len, data):
    """Pave and Unleash Edge (offline, bootstrapped from Pave's own answer) on the same
    endpoints, alternating rounds; prints req/s, ratios and memory."""
    port = free_port()
    edge_url = f"http://127.0.0.1:{port}"
    log = open(os.path.join(data, "edge.log"), "w")
    edge = subprocess.Popen([args.edge, "--port", str(port), "--interface", "127.0.0.1", "offline",
                             "--bootstrap-file", bootstrap, "--client-tokens", EDGE_CLIENT,
                             "--frontend-tokens", EDGE_FRONTEND],
                            env=dict(os.environ, RUST_LOG="warn"), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(edge_url + "/api/client/features", {"Authorization": EDGE_CLIENT})
        edge_rss_started = rss_mb(edge.pid)
        req = urllib.request.Request(edge_url + "/api/client/features", headers={"Authorization": EDGE_CLIENT})
        with urllib.request.urlopen(req) as r:
            edge_body = r.read()
        edge_features = json.loads(edge_body)["features"]
        assert len(edge_features) == args.flags, f"Edge serves {len(edge_features)} flags, not {args.flags}"
        answers = {}
        for who, base, tok in (("pave", pave_url, frontend_secret), ("edge", edge_url, EDGE_FRONTEND)):
            req = urllib.request.Request(f"{base}/api/frontend?{FRONTEND_QUERY}", headers={"Authorization": tok})
            with urllib.request.urlopen(req) as r:
                answers[who] = sorted(t["name"] for t in json.loads(r.read())["toggles"])
        if answers["pave"] != answers["edge"]:
            print(f"  note: /api/frontend answers differ: pave {answers['pave']} vs edge {answers['edge']}")
        print(f"\nUnleash Edge ({args.edge}) offline on the same {args.flags} flags; client/features body: "
              f"pave {body_len} bytes, edge {len(edge_body)} bytes; /api/frontend: {len(answers['pave'])} toggles "
              f"on for the context; {args.connections} connections, {args.duration:g} s closed loop per run, "
              f"{args.rounds} rounds alternating")
        servers = {"pave": (pave_url, client_secret, frontend_secret, pave_pid),
                   "edge": (edge_url, EDGE_CLIENT, EDGE_FRONTEND, edge.pid)}
        endpoints = [("/api/client/features", "/api/client/features", 1),
                     ("/api/frontend", f"/api/frontend?{FRONTEND_QUERY}", 2)]
        peak_rss = {"pave": 0.0, "edge": 0.0}
        summary = []
        for label, path, tok in endpoints:
            runs = {"pave": [], "edge": []}
            for rnd in range(args.rounds):
                order = ("pave", "edge") if rnd % 2 == 0 else ("edge", "pave")
                for who in order:
                    base, pid = servers[who][0], servers[who][3]
                    sampler = Sampler(pid)
                    sampler.start()
                    r = loadgen(base + path, args, None, args.duration, args.connections, "GET",
                                [f"Authorization: {servers[who][tok]}"])
                    sampler.stop.set()
                    sampler.join()
                    peak_rss[who] = max(peak_rss[who], max(sampler.samples, default=0.0))
                    if r["failed"]:
                        print(f"  {who} {label} round {rnd + 1}: {r['failed']} FAILED requests")
                    runs[who].append(r["rate"])
                print(f"  {label} round {rnd + 1}: pave {runs['pave'][-1]:,.0f} req/s, edge "
                      f"{runs['edge'][-1]:,.0f} req/s, ratio {runs['pave'][-1] / runs['edge'][-1]:.2f}x")
            per_round = [a / b for a, b in zip(runs["pave"], runs["edge"])]
            med = {w: statistics.median(v) for w, v in runs.items()}
            ratio = med["pave"] / med["edge"]
            summary.append(f"{label}: pave {med['pave']:,.0f} req/s vs edge {med['edge']:,.0f} req/s (medians) -> "
                           f"{ratio:.2f}x (per round {min(per_round):.2f}x..{max(per_round):.2f}x; target >= 1.0x: "
                           f"{'met' if ratio >= 1.0 else 'NOT met'})")
        hwm = {"pave": rss_mb(pave_pid, "VmHWM"), "edge": rss_mb(edge.pid, "VmHWM")}
        print("\nagainst Unleash Edge:")
        for line in summary:
            print("  " + line)
        print(f"  memory: pave after start {pave_rss_started:.1f} MB, most during load {peak_rss['pave']:.1f} MB, "
              f"VmHWM {hwm['pave']:.1f} MB; edge after start {edge_rss_started:.1f} MB, most during load "
              f"{peak_rss['edge']:.1f} MB, VmHWM {hwm['edge']:.1f} MB")
        # What the resident memory is made of: private (anonymous) pages -- heap, buffers, stacks
        # -- and pages of the mapped binary and libraries (clean, shared with the page cache).
        split = {w: (rss_mb(servers[w][3], "RssAnon"), rss_mb(servers[w][3], "RssFile")) for w in servers}
        print(f"  after the load: pave {split['pave'][0]:.1f} MB anonymous + {split['pave'][1]:.1f} MB file-backed; "
              f"edge {split['edge'][0]:.1f} MB anonymous + {split['edge'][1]:.1f} MB file-backed -> anonymous "
              f"pave/edge {split['pave'][0] / split['edge'][0]:.2f}x")
        # `pave serve` runs with one malloc arena (it executes itself again with MALLOC_ARENA_MAX
        # set unless the environment sets it); Edge runs with whatever this environment gives it.
        arenas = {w: environ(servers[w][3]).get("MALLOC_ARENA_MAX", "unset (glibc's default)") for w in servers}
        print(f"  MALLOC_ARENA_MAX: pave {arenas['pave']}, edge {arenas['edge']}")
        mem = peak_rss["pave"] / peak_rss["edge"]
        print(f"  -> most resident during this load, pave/edge {mem:.2f}x (target <= 1.0x: "
              f"{'met' if mem <= 1.0 else 'NOT met'}); pave's VmHWM also covers the apply and the runs above")
    finally:
        stop(edge)
        log.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flags", type=int, default=20)
    ap.add_argument("--rate", type=float, default=20000)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--loadgen-threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the Edge comparison (default 3)")
    ap.add_argument("--edge", default="", help="the unleash-edge binary (bench/flags_api.sh installs it)")
    ap.add_argument("--no-edge", action="store_true", help="leave Unleash Edge out")
    ap.add_argument("--only-edge", action="store_true", help="only the comparison with Unleash Edge")
    args = ap.parse_args()
    if not args.no_edge and not (args.edge and os.access(args.edge, os.X_OK)):
        sys.exit("unleash-edge is not installed (bench/flags_api.sh installs it); --no-edge leaves it out")

    data = tempfile.mkdtemp(prefix="pave-flags-bench-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PAVE_BOOTSTRAP_TOKEN=TOKEN, PAVE_LOG="warn")
    proc = subprocess.Popen([PAVE, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(url + "/healthz")
        rss_started = rss_mb(proc.pid)
        path = os.path.join(data, "flags.yaml")
        with open(path, "w") as f:
            f.write(flags_yaml(args.flags))
        pave(url, "apply", "-f", path)
        out = json.loads(pave(url, "flags", "token", "create", "bench", "--env", "production", "-o", "json"))
        secret = out["secret"]
        time.sleep(0.5)
        req = urllib.request.Request(url + "/api/client/features", headers={"Authorization": secret})
        with urllib.request.urlopen(req) as r:
            body = r.read()
            etag = r.headers["ETag"]
        bootstrap = os.path.join(data, "edge-bootstrap.json")
        with open(bootstrap, "wb") as f:
            f.write(body)
        features = json.loads(body)["features"]
        assert len(features) == args.flags, len(features)
        ctx_path = os.path.join(data, "ctx.json")
        with open(ctx_path, "w") as f:
            json.dump({"context": {"targetingKey": "user-42", "region": "eu", "appVersion": "2.3.1",
                                   "plan": "beta", "email": "a@example.com"}}, f)

        auth = f"Authorization: {secret}"
        cases = [
            ("client/features full body", url + "/api/client/features", "GET", [auth], None),
            ("client/features 304", url + "/api/client/features", "GET", [auth, f"If-None-Match: {etag}"], None),
            ("OFREP single evaluation", url + "/ofrep/v1/evaluate/flags/flag-00", "POST",
             [auth, "Content-Type: application/json"], ctx_path),
        ]
        print(f"pave serve, {args.flags} flags ({len(body)} bytes of JSON), SQLite, loopback; "
              f"pave-loadgen {args.connections} connections on the same 2 cores")
        results = {}
        for name, target, method, headers, bodyf in ([] if args.only_edge else cases):
            sampler = Sampler(proc.pid)
            sampler.start()
            peak = loadgen(target, args, None, args.duration, args.connections, method, headers, bodyf)
            fixed = loadgen(target, args, args.rate, args.duration, args.connections, method, headers, bodyf)
            sampler.stop.set()
            sampler.join()
            rss = sampler.samples
            ok = fixed["failed"] == 0 and peak["failed"] == 0
            results[name] = {"peak": peak, "fixed": fixed, "rss": rss}
            print(f"\n{name}:")
            print(f"  closed loop: {peak['rate']:,.0f} req/s, p50 {peak['latency_ms']['p50']:.2f} ms, "
                  f"p99 {peak['latency_ms']['p99']:.2f} ms, failed {peak['failed']}")
            print(f"  open loop at {args.rate:,.0f}/s: {fixed['rate']:,.0f} req/s answered, p50 "
                  f"{fixed['latency_ms']['p50']:.2f} ms, p99 {fixed['latency_ms']['p99']:.2f} ms, "
                  f"p99.9 {fixed['latency_ms']['p999']:.2f} ms, failed {fixed['failed']}"
                  f"{'' if ok else '  <-- FAILURES'}")
            third = max(1, len(rss) // 3)
            print(f"  resident memory during load: first third max {max(rss[:third]):.1f} MB, "
                  f"last third max {max(rss[-third:]):.1f} MB (min {min(rss):.1f}, max {max(rss):.1f})")
        if not args.only_edge:
            full = results["client/features full body"]
            meets = (full["peak"]["rate"] >= 20000 and full["fixed"]["latency_ms"]["p99"] < 5
                     and full["fixed"]["failed"] == 0)
            print(f"\ntarget (full body >= 20,000 req/s, p99 < 5 ms at {args.rate:,.0f}/s): "
                  f"{'met' if meets else 'NOT met'}")
        if args.no_edge:
            print("\n*** Unleash Edge LEFT OUT (--no-edge): no ratios against it ***")
        else:
            frontend_secret = json.loads(pave(url, "flags", "token", "create", "bench-frontend", "--env",
                                              "production", "--kind", "frontend", "-o", "json"))["secret"]
            time.sleep(0.5)
            compare_edge(args, proc.pid, rss_started, url, secret, frontend_secret, bootstrap, len(body), data)
    finally:
        stop(proc)
        # The router `pave serve` started stops by itself once its socket file is gone.
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
